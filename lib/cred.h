/*
 * cred.h - SMTP AUTH credentials: scrypt hashes in their own LMDB.
 *
 * relayctl(8) writes credentials, smtpd reads them. They live in their own
 * LMDB environment at <queue_directory>/cred/ (mode 0700, owned by
 * mail_owner), database "users": key = the user name (no NUL), value = an
 * attribute record (lib/attr) holding at least "hash" (the KDF string) and
 * "created" (epoch seconds). Readers look up the attributes they know and
 * ignore the rest, so per-user policy can be added as new attributes
 * without a format change.
 *
 * Per-credential policy (issue 3) is stored as more attributes of the same
 * record: "domains" (comma-separated, lower case), "networks"
 * (comma-separated CIDR prefixes), "max_per_hour", "max_per_day",
 * "max_recipients", "max_size" (absent or 0: no limit of its own),
 * "disabled" (1), "dsn_off" (1: no delivery reports for its messages;
 * absent: reports on), "lane" (bulk; absent: the transactional lane,
 * issue 11), and, while a rotation grace period runs, "old_hash"
 * and "old_valid_until" (epoch seconds). Records written before these
 * existed read as "no restrictions" and reports on.
 *
 * A credential's own webhook endpoint (issue 10, webhookd(8)) is five
 * more attributes: "webhook_url", "webhook_events" (comma-separated event
 * names; absent: the default set), "webhook_format" (absent: petrel),
 * "webhook_secret" (the signing key of petrel and mailgun payloads) and
 * "webhook_key" (a PEM ECDSA P-256 private key, SendGrid's signature).
 * Records without them have no endpoint of their own. relayctl never
 * prints the secret or the key once stored.
 *
 * "hash" and "old_hash" are scrypt strings (lib/cred_hash); the policy
 * lists are parsed and matched by lib/cred_policy, which this header
 * includes. An unknown user costs one KDF like a known one. Secrets are
 * wiped with OPENSSL_cleanse() once used.
 */
#ifndef PETREL_CRED_H
#define PETREL_CRED_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "cfg.h"
#include "cred_policy.h"
#include "vbuf.h"

#define CRED_DIR		"cred"		/* under queue_directory */
#define CRED_DB_USERS		"users"
#define CRED_MAP_SIZE		(64UL * 1024 * 1024)

#define CRED_NAME_MAX		64	/* [A-Za-z0-9._@+-]{1,64} */
#define CRED_SECRET_MAX		1024	/* longer secrets are refused */

/* Attribute names of a "users" record. */
#define CRED_ATTR_HASH		"hash"
#define CRED_ATTR_CREATED	"created"
#define CRED_ATTR_DOMAINS	"domains"
#define CRED_ATTR_NETWORKS	"networks"
#define CRED_ATTR_MAX_PER_HOUR	"max_per_hour"
#define CRED_ATTR_MAX_PER_DAY	"max_per_day"
#define CRED_ATTR_MAX_RCPT	"max_recipients"
#define CRED_ATTR_MAX_SIZE	"max_size"
#define CRED_ATTR_DISABLED	"disabled"
#define CRED_ATTR_DSN_OFF	"dsn_off"
#define CRED_ATTR_POOL		"pool"
#define CRED_ATTR_LANE		"lane"
#define CRED_LANE_BULK		"bulk"	/* the only value stored */
#define CRED_ATTR_OLD_HASH	"old_hash"
#define CRED_ATTR_OLD_UNTIL	"old_valid_until"

#define CRED_ATTR_WH_URL	"webhook_url"
#define CRED_ATTR_WH_EVENTS	"webhook_events"
#define CRED_ATTR_WH_FORMAT	"webhook_format"
#define CRED_ATTR_WH_SECRET	"webhook_secret"
#define CRED_ATTR_WH_KEY	"webhook_key"

#define CRED_GRACE_MAX		(366 * 86400)	/* longest rotation grace */

/* Bounds of a credential's webhook; the PEM of a P-256 key is ~250 B. */
#define CRED_WEBHOOK_URL_MAX	2048
#define CRED_WEBHOOK_SECRET_MAX	1024
#define CRED_WEBHOOK_KEY_MAX	4096

struct cred_db;

/*
 * Opens the credential environment of cfg->queue_directory. Call it after
 * fork, in the process that uses it. writable: create cred/ (0700) and the
 * database if missing, and allow cred_user_add/del (relayctl). Read-only
 * (smtpd): a missing environment or database is not an error; it counts as
 * "no users" and is looked for again at each cred_verify, so users added
 * later are seen. Returns a handle (free with cred_close), or NULL with the
 * reason in why.
 */
struct cred_db	*cred_open(const struct cfg *, int writable, struct vbuf *why);
/* Closes the environment; NULL is a no-op. */
void		 cred_close(struct cred_db *);

/*
 * Checks secret[0..secret_len) for user. Returns 1 if it matches the
 * current secret, or the previous one while a rotation grace period runs;
 * 0 if it does not, or the user is unknown, malformed or disabled (after
 * the same KDF work in every case); -1 on a database error or a corrupt
 * record. Each call runs its own read transaction, so a deleted, disabled
 * or rotated user is judged on the current record even in a long-running
 * process (the verified-secret cache is keyed by the stored hash and is
 * never consulted for a disabled user or an expired previous secret); the
 * KDF runs after the transaction has ended. XXX: while a grace period runs
 * a wrong secret costs two KDF runs, a right one one or two.
 */
int	cred_verify(struct cred_db *, const char *user, const char *secret,
	    size_t secret_len);
/*
 * cred_verify in three steps, for a process that must not wait for the
 * KDF: cred_verify_start (the lookup and the cache, in the caller's
 * thread) returns 1, 0 or -1 as cred_verify when it can decide, or 2 with
 * a job; cred_verify_work (the KDF; any thread, touches nothing shared)
 * runs it; cred_verify_finish (the caller's thread again) records a
 * match in the cache, frees the job and returns 1 or 0 (or -1 for a
 * corrupt stored hash). cred_verify_cancel frees a job instead.
 */
struct cred_verify_job;
int	cred_verify_start(struct cred_db *, const char *user,
	    const char *secret, size_t secret_len, struct cred_verify_job **);
void	cred_verify_work(struct cred_verify_job *);
int	cred_verify_finish(struct cred_db *, struct cred_verify_job *);
void	cred_verify_cancel(struct cred_verify_job *);
/*
 * Returns 1 when jobs a and b check the same secret of the same enabled
 * user against the same stored hashes, so that one's result is the
 * other's (a caller with both under way runs the KDF once), else 0.
 * Neither job is changed; jobs of unknown or disabled users never match.
 */
int	cred_verify_same(const struct cred_verify_job *a,
	    const struct cred_verify_job *b);

/*
 * Adds user with secret[0..len) (1..CRED_SECRET_MAX bytes), hashed with the
 * current parameters and stamped with the current time. Returns 0, or -1
 * with the reason in why: bad name, bad secret, user exists, read-only
 * handle, database full ("credential database full"), or I/O.
 */
int	cred_user_add(struct cred_db *, const char *user, const char *secret,
	    size_t len, struct vbuf *why);
/*
 * Like cred_user_add, and also stores the fields of pol selected by fields
 * (CRED_POLICY_*; zero values and empty lists are not stored). pol may be
 * NULL (fields ignored). pol->created is ignored: the record is stamped now.
 */
int	cred_user_add_policy(struct cred_db *, const char *user,
	    const char *secret, size_t len, const struct cred_policy *pol,
	    unsigned fields, struct vbuf *why);
/*
 * Replaces the fields of user's policy selected by fields (CRED_POLICY_*)
 * with those of pol, in one write transaction; the others, the secret and
 * any attribute this version does not know are kept. A zero limit or an
 * empty list removes the restriction. Returns 1 done, 0 no such user, -1
 * error (reason in why).
 */
int	cred_user_set(struct cred_db *, const char *user,
	    const struct cred_policy *pol, unsigned fields, struct vbuf *why);
/*
 * Gives user the new secret[0..len). With grace > 0 (seconds, at most
 * CRED_GRACE_MAX) the current secret stays valid until now + grace, as the
 * "previous" one; a previous secret from an earlier rotation is dropped.
 * With grace 0 the current secret stops working at once. Returns 1 done,
 * 0 no such user, -1 error (reason in why).
 */
int	cred_user_rotate(struct cred_db *, const char *user, const char *secret,
	    size_t len, int64_t grace, struct vbuf *why);
/*
 * Deletes user. Returns 0, or -1 with the reason in why; for a user that
 * does not exist the reason is exactly "no such user <user>".
 */
int	cred_user_del(struct cred_db *, const char *user, struct vbuf *why);
/*
 * Calls cb for every user, in byte order of the names, with the creation
 * time (0 if the record has none). user is valid only during the call.
 * cb returns 0 to go on, anything else to stop early. Returns 0 (also when
 * stopped), or -1 with the reason in why. cb runs inside a read
 * transaction: it must not call other cred_ functions on this handle.
 */
int	cred_user_list(struct cred_db *,
	    int (*cb)(const char *user, int64_t created, void *arg), void *arg,
	    struct vbuf *why);

/*
 * Like cred_user_list, with each user's policy (old_valid_until is 0 once
 * the grace period is over). pol is NULL when the record cannot be read
 * (a corrupt record: such a user cannot log in). Same rules for cb.
 */
int	cred_user_walk(struct cred_db *,
	    int (*cb)(const char *user, const struct cred_policy *pol,
	    void *arg), void *arg, struct vbuf *why);

/*
 * 1 found (out filled; release with cred_policy_release), 0 no such user
 * (also when the database does not exist yet), -1 error or a corrupt record
 * (why). One read transaction. out->old_valid_until is 0 unless a grace
 * period is running. out is overwritten without being released first; on
 * any return it is safe to pass to cred_policy_release.
 */
int	cred_policy_get(struct cred_db *, const char *user,
	    struct cred_policy *out, struct vbuf *why);
/*
 * A credential's own webhook endpoint. All strings are NUL-terminated and
 * owned by the struct (cred_webhook_get) or by the caller (set).
 */
struct cred_webhook {
	char	*url;		/* http(s)://...; NULL: none */
	char	*events;	/* "delivered,bounced"; NULL: the default */
	char	*format;	/* petrel, mailgun, sendgrid, postmark; */
				/* NULL: petrel */
	char	*secret;	/* HMAC key; NULL: not signed that way */
	char	*key_pem;	/* ECDSA P-256 private key (PEM); NULL */
};

/* The events a webhook gets when it names none: as a petrel.yaml one. */
#define CRED_WEBHOOK_EVENTS_DEFAULT	CFG_WEBHOOK_EVENTS

/* The payload formats a webhook may ask for (webhookd(8), FORMATS). */
#define CRED_WEBHOOK_FORMATS	"petrel, mailgun, sendgrid, postmark"

/*
 * Checks wh before it is stored: url http:// or https:// with a host, at
 * most CRED_WEBHOOK_URL_MAX bytes, no space or control character; events
 * a comma-separated list of event names (accepted, delivered, deferred,
 * bounced, expired, suppressed, deleted; spaces allowed around names); format one
 * of CRED_WEBHOOK_FORMATS; secret and key_pem within their bounds. A NULL
 * url is "no webhook" and always valid. Returns 0, or -1 with why (not
 * NULL) set.
 */
int	cred_webhook_check(const struct cred_webhook *, struct vbuf *why);
/*
 * Reads user's webhook into out (out->url NULL: none). Returns 1 found
 * (release out with cred_webhook_release), 0 no such user (also when the
 * database does not exist), -1 error or corrupt record (why). One read
 * transaction. On any return out is safe to release.
 */
int	cred_webhook_get(struct cred_db *, const char *user,
	    struct cred_webhook *out, struct vbuf *why);
/*
 * Replaces user's webhook with wh (checked with cred_webhook_check; a
 * NULL wh or wh->url removes it), keeping every other attribute, in one
 * write transaction. Returns 1 done, 0 no such user, -1 error (why).
 */
int	cred_webhook_set(struct cred_db *, const char *user,
	    const struct cred_webhook *wh, struct vbuf *why);
/* Frees the strings, wiping the secret and the key first. */
void	cred_webhook_release(struct cred_webhook *);

/*
 * Test hook: makes every cred_ function read the time from now() instead
 * of time(NULL); NULL restores the real clock.
 */
void	cred_set_clock(time_t (*now)(void));

/* 1 if user is 1..CRED_NAME_MAX bytes of [A-Za-z0-9._@+-], else 0. */
int	cred_name_ok(const char *user);

/*
 * Replaces the contents of out with a new random secret: 24 bytes from
 * RAND_bytes as 32 characters of base64url without padding. Returns 0, or
 * -1 if the random generator failed. Wipe out (vbuf_wipe) when done.
 */
int	cred_generate_secret(struct vbuf *out);

#endif
