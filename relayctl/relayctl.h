/*
 * relayctl.h - private interface of relayctl(8), the credential manager.
 *
 * relayctl.c parses the global options, loads the configuration and drops
 * root privileges to mail_owner before anything opens LMDB; the
 * subcommands live in relayctl_<concern>.c. Grouped by implementing file.
 */
#ifndef PETREL_RELAYCTL_H
#define PETREL_RELAYCTL_H

#include "cfg.h"

/* Exit status: 0 success, 1 failure, 2 bad arguments (usage printed). */
#define RELAYCTL_EXIT_OK	0
#define RELAYCTL_EXIT_FAIL	1
#define RELAYCTL_EXIT_USAGE	2

/* Options common to every subcommand. */
struct relayctl_opts {
	const char	*config;	/* -c FILE */
	int		 json;		/* -j: JSON Lines output */
};

/* relayctl_user.c */

/* A parsed "user ..." command line. */
enum relayctl_user_cmd {
	RELAYCTL_USER_ADD,
	RELAYCTL_USER_LIST,
	RELAYCTL_USER_DEL,
};

struct relayctl_user_args {
	enum relayctl_user_cmd	 cmd;
	const char		*name;		/* add, del */
	int			 password_stdin; /* add --password-stdin */
};

/*
 * Parses the words after "user" (argv[0] is the subcommand). Returns 0, or
 * -1 with a one-line reason in why (the caller prints usage, exits 2).
 */
int	relayctl_user_parse(int argc, char *argv[],
	    struct relayctl_user_args *, struct vbuf *why);
/*
 * Runs a parsed user command against the configuration's credential
 * database; privileges must already be dropped. Prints results on stdout
 * and "relayctl: ..." diagnostics on stderr. Returns an exit status.
 */
int	relayctl_user_run(const struct cfg *, const struct relayctl_opts *,
	    const struct relayctl_user_args *);

#endif
