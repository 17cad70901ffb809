/*
 * fuzz_cfg.c - libFuzzer target for the configuration loader (lib/cfg.c
 * on libyaml): an operator's typo must give an error naming the file,
 * never a crash.
 *
 * The input is a petrel.yaml, written to a scratch file and loaded.
 * Checked: a file that loads has the keys every program relies on set
 * (mail_owner, queue_directory, myhostname) and frees cleanly; one that
 * does not gives a reason that names the file. Broken invariants abort
 * through ASSERT. Built and run by `make fuzz`; see tests/fuzz/README.md.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cfg.h"
#include "log.h"
#include "vbuf.h"

int	LLVMFuzzerInitialize(int *, char ***);
int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);

static void	fuzz_cleanup(void);

static char fuzz_dir[PATH_MAX];
static char fuzz_path[PATH_MAX + 16];

static void
fuzz_cleanup(void)
{
	(void)unlink(fuzz_path);
	(void)rmdir(fuzz_dir);
}

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	const char *tmp = getenv("TMPDIR");

	(void)argc;
	(void)argv;
	(void)snprintf(fuzz_dir, sizeof(fuzz_dir), "%s/petrel-fuzz-cfg.XXXXXX",
	    tmp != NULL && tmp[0] != '\0' ? tmp : "/tmp");
	if (mkdtemp(fuzz_dir) == NULL)
		log_fatal("fuzz_cfg: mkdtemp: %s", strerror(errno));
	(void)snprintf(fuzz_path, sizeof(fuzz_path), "%s/petrel.yaml",
	    fuzz_dir);
	(void)atexit(fuzz_cleanup);
	return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t len)
{
	struct vbuf *why = vbuf_create(0);
	struct cfg *cfg;
	int fd;

	fd = open(fuzz_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	if (fd == -1 || write(fd, data, len) != (ssize_t)len)
		log_fatal("fuzz_cfg: write %s", fuzz_path);
	(void)close(fd);
	if ((cfg = cfg_load(fuzz_path, why)) == NULL) {
		ASSERT(why->len > 0);
		ASSERT(strstr(why->data, "petrel.yaml") != NULL);
	} else {
		ASSERT(cfg->mail_owner != NULL && cfg->queue_directory != NULL &&
		    cfg->myhostname != NULL);
		cfg_free(cfg);
	}
	vbuf_free(why);
	return 0;
}
