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
 * Hashes are "$scrypt$ln=15,r=8,p=1$<salt>$<hash>" (salt and hash in
 * base64 without padding), so the cost can be raised later: verification
 * reads the parameters from the string and refuses absurd ones. Comparison
 * is constant-time; an unknown user costs one KDF like a known one.
 * Secrets are wiped with OPENSSL_cleanse() once used.
 */
#ifndef PETREL_CRED_H
#define PETREL_CRED_H

#include <stddef.h>
#include <stdint.h>

#include "cfg.h"
#include "vbuf.h"

#define CRED_DIR		"cred"		/* under queue_directory */
#define CRED_DB_USERS		"users"
#define CRED_MAP_SIZE		(64UL * 1024 * 1024)

#define CRED_NAME_MAX		64	/* [A-Za-z0-9._@+-]{1,64} */
#define CRED_SECRET_MAX		1024	/* longer secrets are refused */
#define CRED_HASH_MAX		256	/* longest stored hash string */

/* Attribute names of a "users" record. */
#define CRED_ATTR_HASH		"hash"
#define CRED_ATTR_CREATED	"created"

/* Parameters of new hashes: N = 2^15, r = 8, p = 1, 16-byte salt. */
#define CRED_SCRYPT_LN		15
#define CRED_SCRYPT_R		8
#define CRED_SCRYPT_P		1
#define CRED_SALT_LEN		16
#define CRED_KEY_LEN		32
/* The most memory a stored hash may ask scrypt for; more is corrupt. */
#define CRED_SCRYPT_MAXMEM	(128UL * 1024 * 1024)

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
 * Checks secret[0..secret_len) for user. Returns 1 if it matches, 0 if it
 * does not or the user is unknown or malformed (after the same KDF work
 * either way), -1 on a database error or a corrupt record. Each call runs
 * its own read transaction, so a deleted user is refused at once even in a
 * long-running process; the KDF runs after the transaction has ended.
 */
int	cred_verify(struct cred_db *, const char *user, const char *secret,
	    size_t secret_len);

/*
 * Adds user with secret[0..len) (1..CRED_SECRET_MAX bytes), hashed with the
 * current parameters and stamped with the current time. Returns 0, or -1
 * with the reason in why: bad name, bad secret, user exists, read-only
 * handle, database full ("credential database full"), or I/O.
 */
int	cred_user_add(struct cred_db *, const char *user, const char *secret,
	    size_t len, struct vbuf *why);
/* Deletes user. Returns 0, or -1 with the reason (e.g. no such user). */
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

/* 1 if user is 1..CRED_NAME_MAX bytes of [A-Za-z0-9._@+-], else 0. */
int	cred_name_ok(const char *user);

/*
 * Hashes secret[0..len) with a fresh random salt and the current
 * parameters; replaces the contents of out with the hash string. Returns 0,
 * or -1 with the reason in why.
 */
int	cred_hash(const char *secret, size_t len, struct vbuf *out,
	    struct vbuf *why);
/*
 * Checks secret[0..len) against a stored hash string. Returns 1 on a
 * match, 0 on a mismatch, -1 if stored is malformed or asks for parameters
 * out of bounds (no KDF is run then) or the KDF fails.
 */
int	cred_hash_verify(const char *stored, const char *secret, size_t len);

/*
 * Replaces the contents of out with a new random secret: 24 bytes from
 * RAND_bytes as 32 characters of base64url without padding. Returns 0, or
 * -1 if the random generator failed. Wipe out (vbuf_wipe) when done.
 */
int	cred_generate_secret(struct vbuf *out);

#endif
