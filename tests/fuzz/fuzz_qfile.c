/*
 * fuzz_qfile.c - libFuzzer target for the queue file envelope reader
 * (lib/qfile.c, qstore_file_open). Queue files are written by smtpd and
 * bounce, but are read back by qmgr, smtp and bounce after crashes, disk
 * errors and hand edits: the reader must refuse what is not an envelope,
 * never crash on it.
 *
 * The input is a whole queue file, written to msg/<h>/<qid> of a scratch
 * queue directory and opened. Checked for a file that opens: a sender
 * and at least one recipient, every string an in-bounds C string, the
 * per-recipient DSN arrays as long as the recipients, and the body inside
 * the file. Broken invariants abort through ASSERT. Built and run by
 * `make fuzz`; see tests/fuzz/README.md.
 */
#include <sys/stat.h>
#include <sys/types.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "qid.h"
#include "qstore.h"
#include "vbuf.h"

int	LLVMFuzzerInitialize(int *, char ***);
int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);

static void	fuzz_cleanup(void);

static char fuzz_qdir[PATH_MAX];
static char fuzz_path[PATH_MAX];
static char fuzz_qid[QID_SIZE];

static void
fuzz_cleanup(void)
{
	char d[PATH_MAX + 8], *slash;

	(void)unlink(fuzz_path);
	(void)snprintf(d, sizeof(d), "%s", fuzz_path);
	if ((slash = strrchr(d, '/')) != NULL) {
		*slash = '\0';
		(void)rmdir(d);
	}
	(void)snprintf(d, sizeof(d), "%s/msg", fuzz_qdir);
	(void)rmdir(d);
	(void)rmdir(fuzz_qdir);
}

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	const char *tmp = getenv("TMPDIR");
	char d[PATH_MAX + 8], *slash;
	int64_t sec;
	int32_t usec;

	(void)argc;
	(void)argv;
	(void)snprintf(fuzz_qdir, sizeof(fuzz_qdir), "%s/petrel-fuzz-qf.XXXXXX",
	    tmp != NULL && tmp[0] != '\0' ? tmp : "/tmp");
	if (mkdtemp(fuzz_qdir) == NULL)
		log_fatal("fuzz_qfile: mkdtemp: %s", strerror(errno));
	qid_new(fuzz_qid, &sec, &usec);
	if (qstore_file_path(fuzz_path, sizeof(fuzz_path), fuzz_qdir,
	    fuzz_qid) == -1)
		log_fatal("fuzz_qfile: queue file path");
	(void)snprintf(d, sizeof(d), "%s/msg", fuzz_qdir);
	if (mkdir(d, 0700) == -1)
		log_fatal("fuzz_qfile: mkdir %s: %s", d, strerror(errno));
	(void)snprintf(d, sizeof(d), "%s", fuzz_path);
	if ((slash = strrchr(d, '/')) != NULL)
		*slash = '\0';
	if (mkdir(d, 0700) == -1)
		log_fatal("fuzz_qfile: mkdir %s: %s", d, strerror(errno));
	(void)atexit(fuzz_cleanup);
	return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t len)
{
	const struct qstore_envelope *env;
	struct qstore_file *qf;
	struct vbuf *why = vbuf_create(0);
	int fd;

	fd = open(fuzz_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	if (fd == -1 || write(fd, data, len) != (ssize_t)len)
		log_fatal("fuzz_qfile: write %s", fuzz_path);
	(void)close(fd);
	if ((qf = qstore_file_open(fuzz_qdir, fuzz_qid, why)) == NULL) {
		ASSERT(why->len > 0);
		vbuf_free(why);
		return 0;
	}
	env = qstore_file_envelope(qf);
	ASSERT(env->sender != NULL && env->nrcpts > 0);
	ASSERT(env->client_addr != NULL && env->client_name != NULL &&
	    env->auth_user != NULL);
	for (size_t i = 0; i < env->nrcpts; i++) {
		ASSERT(env->rcpts[i] != NULL);
		(void)strlen(env->rcpts[i]);
		if (env->orcpts != NULL && env->orcpts[i] != NULL)
			(void)strlen(env->orcpts[i]);
		if (env->notify != NULL)
			ASSERT(env->notify[i] <= 0xff);
	}
	(void)strlen(env->sender);
	if (env->envid != NULL)
		(void)strlen(env->envid);
	ASSERT(qstore_file_body_offset(qf) >= 0 &&
	    (size_t)qstore_file_body_offset(qf) <= len);
	ASSERT((size_t)(qstore_file_body_offset(qf) +
	    qstore_file_body_size(qf)) == len);
	qstore_file_close(qf);
	vbuf_free(why);
	return 0;
}
