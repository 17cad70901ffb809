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
#include "cred.h"
#include "dkimkey.h"
#include "vbuf.h"

/* Exit status: 0 success, 1 failure, 2 bad arguments (usage printed). */
#define RELAYCTL_EXIT_OK	0
#define RELAYCTL_EXIT_FAIL	1
#define RELAYCTL_EXIT_USAGE	2

/* Options common to every subcommand. */
struct relayctl_opts {
	const char	*config;	/* -c FILE */
	int		 json;		/* -j: JSON output */
};

/* relayctl_user.c */

/* A parsed "user ..." command line. */
enum relayctl_user_cmd {
	RELAYCTL_USER_ADD,
	RELAYCTL_USER_LIST,
	RELAYCTL_USER_DEL,
	RELAYCTL_USER_SET,
	RELAYCTL_USER_SHOW,
	RELAYCTL_USER_ROTATE,
	RELAYCTL_USER_DISABLE,
	RELAYCTL_USER_ENABLE,
};

#define RELAYCTL_GRACE_DEFAULT	(24 * 3600)	/* user rotate --grace */

struct relayctl_user_args {
	enum relayctl_user_cmd	 cmd;
	const char		*name;		/* all but list */
	int			 password_stdin; /* add, rotate */
	int			 json;		/* show, list: -j */
	struct cred_policy	 policy;	/* add, set: the options */
	unsigned		 fields;	/* CRED_POLICY_* given */
	int64_t			 grace;		/* rotate --grace, seconds */
};

/*
 * Parses the words after "user" (argv[0] is the subcommand). Returns 0, or
 * -1 with a one-line reason in why (the caller prints usage, exits 2).
 * Release the result with relayctl_user_args_release, also after -1.
 */
int	relayctl_user_parse(int argc, char *argv[],
	    struct relayctl_user_args *, struct vbuf *why);
void	relayctl_user_args_release(struct relayctl_user_args *);
/*
 * Runs a parsed user command against the configuration's credential
 * database; privileges must already be dropped. Prints results on stdout
 * and "relayctl: ..." diagnostics on stderr. Returns an exit status.
 */
int	relayctl_user_run(const struct cfg *, const struct relayctl_opts *,
	    const struct relayctl_user_args *);

/* relayctl_domain.c */

enum relayctl_domain_cmd {
	RELAYCTL_DOMAIN_ADD,
	RELAYCTL_DOMAIN_LIST,
	RELAYCTL_DOMAIN_SHOW,
	RELAYCTL_DOMAIN_DEL,
	RELAYCTL_DOMAIN_ROTATE,
	RELAYCTL_DOMAIN_CHECK,
};

/* A parsed "domain ..." command line. */
struct relayctl_domain_args {
	enum relayctl_domain_cmd cmd;
	char			 domain[256];	/* normalised; "" for list */
	char			 selector[DKIMKEY_SELECTOR_MAX + 1]; /* "" */
	enum dkimkey_type	 type;		/* add, rotate: --key */
	int64_t			 at;		/* rotate: --at */
	int			 have_at;
	int			 json;		/* list, show, check: -j */
};

/*
 * Parses the words after "domain" (argv[0] is the subcommand). Returns 0,
 * or -1 with a one-line reason in why (the caller prints usage, exits 2).
 */
int	relayctl_domain_parse(int argc, char *argv[],
	    struct relayctl_domain_args *, struct vbuf *why);
void	relayctl_domain_args_release(struct relayctl_domain_args *);
/*
 * Runs a parsed domain command. Called with the privileges relayctl was
 * started with: as root it writes key files itself and does every
 * registry step in a child switched to mail_owner. Returns an exit status.
 */
int	relayctl_domain_run(const struct cfg *, const struct relayctl_opts *,
	    const struct relayctl_domain_args *);
/*
 * The registry record of da->domain as text, read as mail_owner: "created
 * N" then one line per selector, "NAME ALG BITS ACTIVE_FROM". Returns an
 * exit status (not registered: RELAYCTL_EXIT_FAIL, reported on stderr).
 */
int	relayctl_domain_fetch(const struct cfg *,
	    const struct relayctl_domain_args *, struct vbuf *res);

/* relayctl_check.c */

/*
 * "domain check": judges the domain's DKIM, SPF, DMARC, MX and PTR
 * records, through dns.resolver. Exit status 0 only if every required
 * check (dkim, spf, dmarc) passes.
 */
int	relayctl_domain_check(const struct cfg *,
	    const struct relayctl_domain_args *);

#endif
