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
/* relayctl status: 1 something needs attention, 3 master is not running. */
#define RELAYCTL_STATUS_ATTENTION	1
#define RELAYCTL_STATUS_DOWN		3

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
	/* set --webhook ...: the credential's own endpoint (issue 10) */
	unsigned		 wh_given;	/* RELAYCTL_WH_* given */
	const char		*wh_url;	/* "": remove the webhook */
	const char		*wh_events;	/* "": the default set */
	const char		*wh_format;
	struct vbuf		 wh_secret;	/* --webhook-secret-file's */
};

#define RELAYCTL_WH_URL		0x01
#define RELAYCTL_WH_EVENTS	0x02
#define RELAYCTL_WH_FORMAT	0x04
#define RELAYCTL_WH_SECRET	0x08

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

/* relayctl_dkimgen.c */

/* Key types relayctl can generate. */
enum relayctl_dkim_type {
	RELAYCTL_DKIM_RSA2048,
	RELAYCTL_DKIM_RSA3072,
	RELAYCTL_DKIM_ED25519,
};

#define RELAYCTL_DKIM_TXT_STRING_MAX	255	/* RFC 1035 character-string */

/*
 * Generates a key pair: the private key as PKCS#8 PEM replaces the
 * contents of pem (wipe it with vbuf_wipe). Returns 0, or -1 (why).
 */
int	relayctl_dkim_generate(enum relayctl_dkim_type, struct vbuf *pem,
	    struct vbuf *why);
/*
 * The DNS p= value of the private key in pem[0..len): base64 of the DER
 * SubjectPublicKeyInfo for RSA, of the raw 32-byte key for Ed25519 (RFC
 * 8463). Replaces the contents of p; sets *alg and *bits when not NULL.
 * Returns 0, or -1 (why).
 */
int	relayctl_dkim_public(const char *pem, size_t len, struct vbuf *p,
	    enum dkimkey_alg *alg, unsigned *bits, struct vbuf *why);
/*
 * Appends the DKIM TXT record value as quoted strings of at most 255 bytes,
 * separated by sep: "v=DKIM1; k=rsa; "<sep>"p=..."<sep>"...".
 */
void	relayctl_dkim_txt_record(enum dkimkey_alg, const char *p,
	    const char *sep, struct vbuf *out);
/* Appends s as quoted strings of at most 255 bytes, separated by sep. */
void	relayctl_dkim_txt_quote(const char *s, const char *sep,
	    struct vbuf *out);
/*
 * Writes a key file (dkimkey_key_path): creates the directories and
 * writes through a temporary file, fsync and rename. As root the
 * directories are 0750 and the file 0640, owned by root and group
 * cfg->dkim_group (which must exist); otherwise 0700 and 0600, owned by
 * the caller. An existing file is an error. Returns 0, or -1 (why).
 */
int	relayctl_dkim_key_write(const struct cfg *, const char *domain,
	    const char *selector, const char *pem, size_t len,
	    struct vbuf *why);
/* 1 if the key file exists, 0 if not, -1 on another error (why). */
int	relayctl_dkim_key_exists(const struct cfg *, const char *domain,
	    const char *selector, struct vbuf *why);
/*
 * Removes one key file, or with selector NULL every *.pem file of domain
 * (and temporary files a crash left) and its directory. A missing file
 * is not an error. 0 or -1 (why).
 */
int	relayctl_dkim_key_remove(const struct cfg *, const char *domain,
	    const char *selector, struct vbuf *why);

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
	enum relayctl_dkim_type	 type;		/* add, rotate: --key */
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
 * Runs a parsed domain command other than check (relayctl.c runs
 * relayctl_domain_check). Called with the privileges relayctl was started
 * with: as root it writes key files itself and does every registry step
 * in a child switched to mail_owner, which sends its result back as an
 * attribute record. Returns an exit status.
 */
int	relayctl_domain_run(const struct cfg *,
	    const struct relayctl_domain_args *);
/*
 * The registry record of da->domain, read as mail_owner (in a child when
 * root). Returns an exit status; RELAYCTL_EXIT_OK with out filled (release
 * with dkimkey_domain_release). Not registered: RELAYCTL_EXIT_FAIL,
 * reported on stderr.
 */
int	relayctl_domain_fetch(const struct cfg *,
	    const struct relayctl_domain_args *, struct dkimkey_domain *out);

/* relayctl_suppress.c */

/*
 * "suppression ...": parses the words after "suppression", loads the
 * configuration, opens an import file, switches to mail_owner and runs
 * the command against the suppression list. Returns an exit status.
 */
int	relayctl_suppress_main(int argc, char *argv[],
	    const struct relayctl_opts *);

/* relayctl_log.c */

/*
 * "log search|show|export": parses the words after "log", loads the
 * configuration, becomes mail_owner and reads the delivery log
 * (lib/evlog). Returns an exit status.
 */
int	relayctl_log_main(int argc, char *argv[],
	    const struct relayctl_opts *);
/* Epoch ms as RFC 3339 UTC with milliseconds ("...T14:02:00.123Z"). */
void	relayctl_log_time(char *buf, size_t len, int64_t ms);

/* relayctl_events.c */

/*
 * "events list|show|replay": parses the words after "events", loads the
 * configuration, becomes mail_owner and reads (replay: writes) the
 * webhook store (lib/whstore). Returns an exit status.
 */
int	relayctl_events_main(int argc, char *argv[],
	    const struct relayctl_opts *);

/* relayctl_check.c */

/*
 * "domain check": judges the domain's DKIM, SPF, DMARC, MX and PTR
 * records, through dns.resolver; the active selector comes from
 * relayctl_domain_fetch. Exit status 0 only if every required check
 * (dkim, spf, dmarc) passes.
 */
int	relayctl_domain_check(const struct cfg *,
	    const struct relayctl_domain_args *);

/* relayctl_txt.c: TXT answers as domain check reads them (pure) */
#define RELAYCTL_TXT_MAX	16	/* TXT records looked at per name */
#define RELAYCTL_TXT_LEN	4096	/* bytes kept of one TXT record */

/* TXT records of one name, each its strings joined. */
struct relayctl_txt {
	struct vbuf	 rec[RELAYCTL_TXT_MAX];
	size_t		 n;
};

int	relayctl_txt_parse(const unsigned char *, size_t,
	    struct relayctl_txt *);
void	relayctl_txt_free(struct relayctl_txt *);
size_t	relayctl_txt_join(const unsigned char *, size_t, char *out);
void	relayctl_txt_nospace(const char *, struct vbuf *);
int	relayctl_txt_tag(const char *rec, const char *tag, struct vbuf *);
const char *relayctl_txt_dmarc(const struct relayctl_txt *, size_t *nrec);

/* relayctl_webhook.c */

/*
 * A new ECDSA P-256 key for SendGrid-style signed webhooks: the private
 * key as PKCS#8 PEM replaces pem (wipe it), and the public key, base64 of
 * its DER SubjectPublicKeyInfo (SendGrid's "verification key"), pub.
 * Returns 0, or -1 (why).
 */
int	relayctl_webhook_keygen(struct vbuf *pem, struct vbuf *pub,
	    struct vbuf *why);
/*
 * The verification key of the private key in pem[0..len), which must be
 * an ECDSA P-256 key, into pub as above. Returns 0, or -1 (why).
 */
int	relayctl_webhook_public(const char *pem, size_t len, struct vbuf *pub,
	    struct vbuf *why);
/*
 * "webhook keygen FILE": writes a new key (0600, never over an existing
 * file) and prints its verification key. Needs no configuration and
 * keeps the caller's privileges. Returns an exit status.
 */
int	relayctl_webhook_main(int argc, char *argv[],
	    const struct relayctl_opts *);

/* relayctl_status.c */

/*
 * "status [-j]": master, the daemons, listeners, certificates, queue,
 * recent deliveries, suppression list, webhooks, disk; and what needs
 * attention. Returns RELAYCTL_EXIT_OK when all is fine,
 * RELAYCTL_STATUS_ATTENTION, RELAYCTL_STATUS_DOWN (master not running),
 * or RELAYCTL_EXIT_FAIL / RELAYCTL_EXIT_USAGE.
 */
int	relayctl_status_main(int argc, char *argv[],
	    const struct relayctl_opts *);

/* relayctl_shaping.c */

/*
 * "shaping show [DEST] [-j]": parses the words after "shaping", loads the
 * configuration, becomes mail_owner and asks qmgr for its destinations
 * (request=shaping on private/qmgr). Returns an exit status:
 * RELAYCTL_EXIT_FAIL when qmgr cannot be reached or has no DEST.
 */
int	relayctl_shaping_main(int argc, char *argv[],
	    const struct relayctl_opts *);

/* relayctl_sources.c */

/*
 * "sources show [-j]": loads the configuration, becomes mail_owner and
 * asks qmgr for its source addresses, set-asides and warmup counts
 * (request=sources on private/qmgr). Returns an exit status:
 * RELAYCTL_EXIT_FAIL when qmgr cannot be reached.
 */
int	relayctl_sources_main(int argc, char *argv[],
	    const struct relayctl_opts *);

/* relayctl_qmgr.c */

struct attr_list;
/* One row record of a listing into arg: 0, or -1 with a reason in why. */
typedef int relayctl_qmgr_record_fn(const struct attr_list *, void *arg,
	    struct vbuf *why);
/*
 * Sends req (an attribute record, request=... first) on private/qmgr and
 * hands each record of the reply before the status record to record; the
 * status must be 0 and its count the records handed. what names the
 * listing in messages ("shaping"). Returns an exit status, after printing
 * why on stderr (RELAYCTL_EXIT_FAIL: qmgr cannot be reached, a bad reply).
 */
int	relayctl_qmgr_list(const struct cfg *, const char *what,
	    const struct vbuf *req, relayctl_qmgr_record_fn *record, void *arg);

/* relayctl_acctlog.c */

/*
 * Reads the accounting log at path, only its last tail bytes when it is
 * longer (then *partial is set and the first, cut, line skipped), and
 * calls cb with each event line's "event", its "time" in epoch seconds
 * and its "recipient" (NULL when absent). Lines that are not such JSON
 * objects, or longer than RELAYCTL_ACCT_LINE_MAX, are skipped. Returns 0,
 * or -1 with errno when the file cannot be opened.
 */
#define RELAYCTL_ACCT_LINE_MAX	(64 * 1024)
typedef void relayctl_acct_cb(const char *event, int64_t time_s,
	    const char *recipient, void *arg);
int	relayctl_acct_tail(const char *path, size_t tail, relayctl_acct_cb *,
	    void *arg, int *partial);

/* relayctl_bounce.c */

/*
 * "bounce ..." (argv[0] is the subcommand: classify, or --help): parses
 * its own words and runs. Needs no privileges. Returns an exit status.
 */
int	relayctl_bounce(int argc, char *argv[], const struct relayctl_opts *);

#endif
