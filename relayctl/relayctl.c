/*
 * relayctl.c - Petrel's credential manager: main and privilege handling.
 *
 * relayctl [-c FILE] [-j] user add NAME [--password-stdin] | list | del NAME
 *
 * Arguments are checked before anything else; then the configuration is
 * loaded and, when run as root, groups, gid and uid are switched to
 * mail_owner (each step checked) before LMDB is opened, so every file
 * under <queue_directory>/cred/ stays owned by mail_owner. A non-root user
 * runs as itself. See relayctl(8).
 */
#include <sys/types.h>

#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cfg.h"
#include "log.h"
#include "relayctl.h"
#include "vbuf.h"

static void	relayctl_usage(void) __attribute__((noreturn));
static int	relayctl_drop_privileges(const struct cfg *);

static void
relayctl_usage(void)
{
	fprintf(stderr,
	    "usage: relayctl [-c FILE] [-j] user add NAME [--password-stdin]\n"
	    "       relayctl [-c FILE] [-j] user list\n"
	    "       relayctl [-c FILE] [-j] user del NAME\n");
	exit(RELAYCTL_EXIT_USAGE);
}

/*
 * As root, becomes mail_owner: supplementary groups, then gid, then uid,
 * then a check that none of it can be undone. Returns 0 or -1 (printed).
 */
static int
relayctl_drop_privileges(const struct cfg *cfg)
{
	struct passwd *pw;

	if (geteuid() != 0)
		return 0;
	errno = 0;
	if ((pw = getpwnam(cfg->mail_owner)) == NULL) {
		fprintf(stderr, "relayctl: mail_owner %s: %s\n",
		    cfg->mail_owner, errno != 0 ? strerror(errno) :
		    "no such user");
		return -1;
	}
	if (pw->pw_uid == 0) {
		fprintf(stderr, "relayctl: mail_owner %s: must not be root\n",
		    cfg->mail_owner);
		return -1;
	}
	if (initgroups(pw->pw_name, pw->pw_gid) == -1 ||
	    setresgid(pw->pw_gid, pw->pw_gid, pw->pw_gid) == -1 ||
	    setresuid(pw->pw_uid, pw->pw_uid, pw->pw_uid) == -1) {
		fprintf(stderr, "relayctl: switch to mail_owner %s: %s\n",
		    cfg->mail_owner, strerror(errno));
		return -1;
	}
	if (setuid(0) != -1 || geteuid() != pw->pw_uid ||
	    getegid() != pw->pw_gid) {
		fprintf(stderr, "relayctl: switch to mail_owner %s: "
		    "privileges still held\n", cfg->mail_owner);
		return -1;
	}
	return 0;
}

int
main(int argc, char *argv[])
{
	struct relayctl_opts opts = { CFG_DEFAULT_PATH, 0 };
	struct relayctl_user_args ua;
	struct vbuf why;
	struct cfg *cfg;
	int ch, ret;

	log_init("relayctl", LOG_DEST_STDERR);
	/* "+": stop at the subcommand, whose words are parsed below. */
	opterr = 0;
	while ((ch = getopt(argc, argv, "+:c:j")) != -1) {
		switch (ch) {
		case 'c':
			opts.config = optarg;
			break;
		case 'j':
			opts.json = 1;
			break;
		case ':':
			fprintf(stderr, "relayctl: option -%c needs an "
			    "argument\n", optopt);
			relayctl_usage();
			/* NOTREACHED */
		default:
			fprintf(stderr, "relayctl: unknown option -%c\n",
			    optopt);
			relayctl_usage();
		}
	}
	argc -= optind;
	argv += optind;

	/* 1. Check the whole command line before touching anything. */
	vbuf_init(&why, 0);
	if (argc < 1 || strcmp(argv[0], "user") != 0) {
		if (argc >= 1)
			fprintf(stderr, "relayctl: unknown command %s\n",
			    argv[0]);
		relayctl_usage();
	}
	if (relayctl_user_parse(argc - 1, argv + 1, &ua, &why) == -1) {
		fprintf(stderr, "relayctl: %s\n", why.data);
		relayctl_usage();
	}

	/* 2. Configuration. */
	if ((cfg = cfg_load(opts.config, &why)) == NULL) {
		fprintf(stderr, "relayctl: %s\n", why.data);
		vbuf_release(&why);
		return RELAYCTL_EXIT_FAIL;
	}
	vbuf_release(&why);

	/* 3. Become mail_owner before LMDB creates or opens any file. */
	if (relayctl_drop_privileges(cfg) == -1) {
		cfg_free(cfg);
		return RELAYCTL_EXIT_FAIL;
	}

	/* 4. The work. */
	ret = relayctl_user_run(cfg, &opts, &ua);
	cfg_free(cfg);
	return ret;
}
