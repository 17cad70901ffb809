/*
 * cred.c - SMTP AUTH credentials: the user store, verification and the
 * verified-secret cache (see cred.h and relayctl(8)).
 *
 * Written by relayctl, read by smtpd. Every lookup runs in its own short
 * read transaction, and the KDF runs after that transaction has ended, so
 * a slow hash never pins an LMDB snapshot and a deleted user is refused at
 * once. Records are attribute lists: unknown attributes are ignored, and
 * kept when relayctl changes a record.
 *
 * Policy changes are judged on the current record at every lookup: a
 * disabled user, an expired previous secret (rotation) or a deleted user
 * never reaches the verified-secret cache, which is keyed by the stored
 * hash string and so cannot outlive a new secret either.
 *
 * The hash strings are lib/cred_hash's, the policy lists lib/cred_policy's;
 * this file maps both to and from the attributes of a record.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <lmdb.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#include "attr.h"
#include "b64.h"
#include "cred.h"
#include "cred_hash.h"
#include "mdbdir.h"
#include "outbox.h"
#include "xalloc.h"

#define CRED_SECRET_RAW		24	/* generated secrets: 192 bits */
#define CRED_MAXDBS		4

/*
 * Verified-secret cache: a long-running smtpd would otherwise run the KDF
 * (about 0.1 s, blocking its event loop) for every connection of an
 * application that logs in per message. An entry is an HMAC, under a
 * random per-process key, of the user, the stored hash string and the
 * secret: a deleted user fails the lookup first, and a changed hash (new
 * secret) no longer matches, so the cache never outlives a change.
 */
#define CRED_CACHE_SLOTS	256
#define CRED_CACHE_TTL		300	/* seconds */

struct cred_cache_entry {
	unsigned char	 tag[32];
	time_t		 until;
};

/*
 * A check in three steps (cred_verify_start, _work, _finish), so that the
 * KDF, which takes a tenth of a second, can run outside an event loop.
 */
enum cred_job_kind {
	CRED_JOB_DUMMY,		/* unknown or malformed: the dummy hash */
	CRED_JOB_DISABLED,	/* the work of a wrong secret, then 0 */
	CRED_JOB_CHECK		/* the hash, then the previous one */
};

struct cred_verify_job {
	enum cred_job_kind kind;
	char		 secret[CRED_SECRET_MAX];
	size_t		 secret_len;
	char		 hash[CRED_HASH_MAX + 1];
	char		 old_hash[CRED_HASH_MAX + 1];	/* "": none valid */
	unsigned char	 tag[32], old_tag[32];	/* their cache tags */
	time_t		 now;
	int		 result, matched_old;
};

struct cred_db {
	struct mdbdir	 md;		/* <queue_directory>/cred, "users" */
	unsigned char	 cache_key[32];
	struct cred_cache_entry cache[CRED_CACHE_SLOTS];
};

/* What cred_verify needs of a record, read in one transaction. */
struct cred_secrets {
	char		 hash[CRED_HASH_MAX + 1];
	char		 old_hash[CRED_HASH_MAX + 1];	/* "" if none */
	int64_t		 old_until;
	int		 disabled;
};

/* Policy fields and the attributes that store them. */
static const struct cred_field {
	unsigned	 bit;
	const char	*name;
} cred_fields[] = {
	{ CRED_POLICY_DOMAINS, CRED_ATTR_DOMAINS },
	{ CRED_POLICY_NETWORKS, CRED_ATTR_NETWORKS },
	{ CRED_POLICY_MAX_PER_HOUR, CRED_ATTR_MAX_PER_HOUR },
	{ CRED_POLICY_MAX_PER_DAY, CRED_ATTR_MAX_PER_DAY },
	{ CRED_POLICY_MAX_RCPT, CRED_ATTR_MAX_RCPT },
	{ CRED_POLICY_MAX_SIZE, CRED_ATTR_MAX_SIZE },
	{ CRED_POLICY_DISABLED, CRED_ATTR_DISABLED },
	{ CRED_POLICY_DSN_OFF, CRED_ATTR_DSN_OFF },
	{ CRED_POLICY_POOL, CRED_ATTR_POOL },
	{ CRED_POLICY_LANE, CRED_ATTR_LANE },
};

static int	cred_lookup(struct cred_db *, const char *,
		    struct cred_secrets *);
static time_t	cred_real_now(void);
static int	cred_attr_u64(const struct attr_list *, const char *,
		    uint64_t *);
static int	cred_secrets_from(const struct attr_list *,
		    struct cred_secrets *);
static int	cred_record_policy(const struct attr_list *,
		    struct cred_policy *, struct vbuf *);
static int	cred_cache_tag(const struct cred_db *, const char *,
		    const char *, const char *, size_t, unsigned char[32]);
static int	cred_cache_hit(struct cred_db *, const unsigned char[32],
		    time_t, struct cred_cache_entry **);
static void	cred_job_free(struct cred_verify_job *);
static void	cred_record_put_policy(struct vbuf *,
		    const struct cred_policy *, unsigned);
static int	cred_update(struct cred_db *, const char *,
		    const struct cred_policy *, unsigned, const char *, int64_t,
		    struct vbuf *);
static int	cred_check_writable(const struct cred_db *, const char *,
		    struct vbuf *);

static time_t	(*cred_now)(void) = cred_real_now;

static time_t
cred_real_now(void)
{
	return time(NULL);
}

void
cred_set_clock(time_t (*now)(void))
{
	cred_now = now == NULL ? cred_real_now : now;
}

int
cred_name_ok(const char *user)
{
	size_t i;

	for (i = 0; user[i] != '\0'; i++) {
		unsigned char c = (unsigned char)user[i];

		if (i == CRED_NAME_MAX)
			return 0;
		if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
		    (c >= '0' && c <= '9') || c == '.' || c == '_' ||
		    c == '@' || c == '+' || c == '-')
			continue;
		return 0;
	}
	return i > 0;
}

int
cred_generate_secret(struct vbuf *out)
{
	unsigned char raw[CRED_SECRET_RAW];
	int rc = -1;

	vbuf_reset(out);
	if (RAND_bytes(raw, sizeof(raw)) == 1 &&
	    b64_encode(out, raw, sizeof(raw), B64_URL | B64_NOPAD) == 0)
		rc = 0;
	OPENSSL_cleanse(raw, sizeof(raw));
	if (rc == -1)
		vbuf_wipe(out);
	return rc;
}

struct cred_db *
cred_open(const struct cfg *cfg, int writable, struct vbuf *why)
{
	struct cred_db *db;

	db = xcalloc(1, sizeof(*db));
	if (mdbdir_init(&db->md, cfg, CRED_DIR, CRED_DB_USERS, CRED_MAP_SIZE,
	    CRED_MAXDBS, writable, "credential database", why) == -1)
		goto fail;
	if (RAND_bytes(db->cache_key, sizeof(db->cache_key)) != 1) {
		if (why)
			vbuf_setf(why, "RAND_bytes failed");
		goto fail;
	}
	if (mdbdir_attach(&db->md, why) == -1)
		goto fail;
	return db;
fail:
	cred_close(db);
	return NULL;
}

void
cred_close(struct cred_db *db)
{
	if (db == NULL)
		return;
	mdbdir_release(&db->md);
	free(db);
}

/* A number that may be absent (0); -1 only if present and malformed. */
static int
cred_attr_u64(const struct attr_list *al, const char *name, uint64_t *out)
{
	*out = 0;
	if (attr_get(al, name) == NULL)
		return 0;
	return attr_get_num(al, name, out, NULL);
}

/* Fills cs from a decoded record. Returns 0, or -1 if it is corrupt. */
static int
cred_secrets_from(const struct attr_list *al, struct cred_secrets *cs)
{
	const char *h;
	uint64_t v;

	memset(cs, 0, sizeof(*cs));
	if ((h = attr_get(al, CRED_ATTR_HASH)) == NULL ||
	    strlen(h) >= sizeof(cs->hash))
		return -1;
	memcpy(cs->hash, h, strlen(h) + 1);
	if ((h = attr_get(al, CRED_ATTR_OLD_HASH)) != NULL) {
		if (strlen(h) >= sizeof(cs->old_hash) ||
		    attr_get_int(al, CRED_ATTR_OLD_UNTIL, &cs->old_until,
		    NULL) == -1)
			return -1;
		memcpy(cs->old_hash, h, strlen(h) + 1);
	}
	if (cred_attr_u64(al, CRED_ATTR_DISABLED, &v) == -1 || v > 1)
		return -1;
	cs->disabled = v != 0;
	return 0;
}

/*
 * Reads what cred_verify needs of user's record. Returns 1 if found, 0 if
 * there is no such user, -1 on a database error or a corrupt record.
 */
static int
cred_lookup(struct cred_db *db, const char *user, struct cred_secrets *cs)
{
	struct attr_list al;
	MDB_txn *txn;
	MDB_val key, val;
	size_t used;
	int rc, ret = -1;

	if ((rc = mdbdir_begin(&db->md, MDB_RDONLY, &txn, NULL)) <= 0)
		return rc;
	key.mv_data = (void *)user;
	key.mv_size = strlen(user);
	rc = mdb_get(txn, db->md.dbi, &key, &val);
	if (rc == MDB_NOTFOUND) {
		mdb_txn_abort(txn);
		return 0;
	}
	attr_list_init(&al);
	if (rc == 0 && attr_decode(&al, val.mv_data, val.mv_size, &used,
	    NULL) == 1 && used == val.mv_size &&
	    cred_secrets_from(&al, cs) == 0)
		ret = 1;
	attr_list_release(&al);
	mdb_txn_abort(txn);
	return ret;
}

/* The cache tag of (user, stored hash, secret); see struct cred_db. */
static int
cred_cache_tag(const struct cred_db *db, const char *user, const char *hash,
    const char *secret, size_t secret_len, unsigned char tag[32])
{
	struct vbuf msg;
	unsigned int len = 32;
	int ok;

	vbuf_init(&msg, 0);
	(void)vbuf_add(&msg, user, strlen(user) + 1);
	(void)vbuf_add(&msg, hash, strlen(hash) + 1);
	(void)vbuf_add(&msg, secret, secret_len);
	ok = HMAC(EVP_sha256(), db->cache_key, sizeof(db->cache_key),
	    (const unsigned char *)msg.data, msg.len, tag, &len) != NULL &&
	    len == 32;
	vbuf_wipe(&msg);
	vbuf_release(&msg);
	return ok ? 0 : -1;
}

/* The cache slot of a tag; 1 if it holds the tag, unexpired. */
static int
cred_cache_hit(struct cred_db *db, const unsigned char tag[32], time_t now,
    struct cred_cache_entry **slot)
{
	*slot = &db->cache[(tag[0] | (unsigned)tag[1] << 8) %
	    CRED_CACHE_SLOTS];
	return (*slot)->until > now && CRYPTO_memcmp((*slot)->tag, tag, 32) ==
	    0;
}

/* Frees a job, wiping the secret and the hashes. */
static void
cred_job_free(struct cred_verify_job *job)
{
	if (job == NULL)
		return;
	OPENSSL_cleanse(job, sizeof(*job));
	free(job);
}

int
cred_verify_start(struct cred_db *db, const char *user, const char *secret,
    size_t secret_len, struct cred_verify_job **jobp)
{
	struct cred_verify_job *job;
	struct cred_cache_entry *slot;
	struct cred_secrets cs;
	int rc;

	*jobp = NULL;
	job = xcalloc(1, sizeof(*job));
	/* Unknown, malformed: the KDF work of a known user, then 0. */
	job->kind = CRED_JOB_DUMMY;
	job->secret_len = secret_len > CRED_SECRET_MAX ? CRED_SECRET_MAX :
	    secret_len;
	memcpy(job->secret, secret, job->secret_len);
	job->now = cred_now();
	if (!cred_name_ok(user) || secret_len > CRED_SECRET_MAX)
		goto kdf;
	if ((rc = cred_lookup(db, user, &cs)) == -1) {
		OPENSSL_cleanse(&cs, sizeof(cs));
		cred_job_free(job);
		return -1;
	}
	if (rc == 0)
		goto kdf;
	memcpy(job->hash, cs.hash, sizeof(job->hash));
	if (cs.disabled) {
		/*
		 * The KDF work of a wrong secret, and never the cache: an
		 * entry made before the user was disabled must not count.
		 */
		job->kind = CRED_JOB_DISABLED;
		OPENSSL_cleanse(&cs, sizeof(cs));
		goto kdf;
	}
	job->kind = CRED_JOB_CHECK;
	/* The previous secret only while its grace period runs. */
	if (cs.old_hash[0] != '\0' && cs.old_until > job->now)
		memcpy(job->old_hash, cs.old_hash, sizeof(job->old_hash));
	OPENSSL_cleanse(&cs, sizeof(cs));
	if ((cred_cache_tag(db, user, job->hash, job->secret, secret_len,
	    job->tag) == 0 && cred_cache_hit(db, job->tag, job->now, &slot)) ||
	    (job->old_hash[0] != '\0' && cred_cache_tag(db, user,
	    job->old_hash, job->secret, secret_len, job->old_tag) == 0 &&
	    cred_cache_hit(db, job->old_tag, job->now, &slot))) {
		cred_job_free(job);
		return 1;
	}
kdf:
	*jobp = job;
	return 2;
}

void
cred_verify_work(struct cred_verify_job *job)
{
	switch (job->kind) {
	case CRED_JOB_DUMMY:
		cred_hash_dummy(job->secret, job->secret_len);
		job->result = 0;
		break;
	case CRED_JOB_DISABLED:
		if (cred_hash_verify(job->hash, job->secret, job->secret_len) ==
		    -1)
			cred_hash_dummy(job->secret, job->secret_len);
		job->result = 0;
		break;
	case CRED_JOB_CHECK:
		job->result = cred_hash_verify(job->hash, job->secret,
		    job->secret_len);
		job->matched_old = 0;
		if (job->result == 0 && job->old_hash[0] != '\0') {
			job->result = cred_hash_verify(job->old_hash,
			    job->secret, job->secret_len);
			job->matched_old = job->result == 1;
		}
		break;
	}
}

int
cred_verify_finish(struct cred_db *db, struct cred_verify_job *job)
{
	struct cred_cache_entry *slot;
	int rc = job->result;

	/* Remembered only for a user that was enabled when looked up. */
	if (rc == 1 && job->kind == CRED_JOB_CHECK) {
		const unsigned char *tag = job->matched_old ? job->old_tag :
		    job->tag;

		(void)cred_cache_hit(db, tag, job->now, &slot);
		memcpy(slot->tag, tag, sizeof(slot->tag));
		slot->until = job->now + CRED_CACHE_TTL;
	}
	cred_job_free(job);
	return rc;
}

void
cred_verify_cancel(struct cred_verify_job *job)
{
	cred_job_free(job);
}

int
cred_verify_same(const struct cred_verify_job *a,
    const struct cred_verify_job *b)
{
	/* A stored hash has its own random salt: it names the user. */
	return a->kind == CRED_JOB_CHECK && b->kind == CRED_JOB_CHECK &&
	    strcmp(a->hash, b->hash) == 0 &&
	    strcmp(a->old_hash, b->old_hash) == 0 &&
	    a->secret_len == b->secret_len &&
	    CRYPTO_memcmp(a->secret, b->secret, a->secret_len) == 0;
}

int
cred_verify(struct cred_db *db, const char *user, const char *secret,
    size_t secret_len)
{
	struct cred_verify_job *job;
	int rc;

	if ((rc = cred_verify_start(db, user, secret, secret_len, &job)) !=
	    2)
		return rc;
	cred_verify_work(job);
	return cred_verify_finish(db, job);
}

static int
cred_check_writable(const struct cred_db *db, const char *user,
    struct vbuf *why)
{
	if (!cred_name_ok(user)) {
		if (why)
			vbuf_setf(why, "invalid user name (1-%d characters of "
			    "A-Z a-z 0-9 . _ @ + -)", CRED_NAME_MAX);
		return -1;
	}
	if (!db->md.writable) {
		if (why)
			vbuf_setf(why, "credential database %s opened "
			    "read-only", db->md.dir);
		return -1;
	}
	return 0;
}

/* Appends the policy fields selected by fields; zero values are left out. */
static void
cred_record_put_policy(struct vbuf *rec, const struct cred_policy *pol,
    unsigned fields)
{
	struct vbuf list;

	if (pol == NULL)
		return;
	vbuf_init(&list, 0);
	if ((fields & CRED_POLICY_DOMAINS) && pol->ndomains > 0) {
		cred_policy_format_domains(pol, &list);
		attr_put_str(rec, CRED_ATTR_DOMAINS, list.data);
	}
	if ((fields & CRED_POLICY_NETWORKS) && pol->nnetworks > 0) {
		vbuf_reset(&list);
		cred_policy_format_networks(pol, &list);
		attr_put_str(rec, CRED_ATTR_NETWORKS, list.data);
	}
	vbuf_release(&list);
	if ((fields & CRED_POLICY_MAX_PER_HOUR) && pol->max_per_hour > 0)
		attr_put_num(rec, CRED_ATTR_MAX_PER_HOUR, pol->max_per_hour);
	if ((fields & CRED_POLICY_MAX_PER_DAY) && pol->max_per_day > 0)
		attr_put_num(rec, CRED_ATTR_MAX_PER_DAY, pol->max_per_day);
	if ((fields & CRED_POLICY_MAX_RCPT) && pol->max_recipients > 0)
		attr_put_num(rec, CRED_ATTR_MAX_RCPT, pol->max_recipients);
	if ((fields & CRED_POLICY_MAX_SIZE) && pol->max_size > 0)
		attr_put_num(rec, CRED_ATTR_MAX_SIZE, pol->max_size);
	if ((fields & CRED_POLICY_DISABLED) && pol->disabled)
		attr_put_num(rec, CRED_ATTR_DISABLED, 1);
	if ((fields & CRED_POLICY_DSN_OFF) && pol->dsn_off)
		attr_put_num(rec, CRED_ATTR_DSN_OFF, 1);
	/* Absent: the default pool, as records of older versions. */
	if ((fields & CRED_POLICY_POOL) && pol->pool[0] != '\0')
		attr_put_str(rec, CRED_ATTR_POOL, pol->pool);
	if ((fields & CRED_POLICY_LANE) && pol->bulk)
		attr_put_str(rec, CRED_ATTR_LANE, CRED_LANE_BULK);
}

int
cred_user_add(struct cred_db *db, const char *user, const char *secret,
    size_t len, struct vbuf *why)
{
	return cred_user_add_policy(db, user, secret, len, NULL, 0, why);
}

int
cred_user_add_policy(struct cred_db *db, const char *user, const char *secret,
    size_t len, const struct cred_policy *pol, unsigned fields,
    struct vbuf *why)
{
	struct vbuf hash, rec;
	MDB_txn *txn;
	MDB_val key, val;
	int rc, ret = -1;

	if (cred_check_writable(db, user, why) == -1)
		return -1;
	if (len == 0 || len > CRED_SECRET_MAX) {
		if (why)
			vbuf_setf(why, "user %s: secret must be 1-%d bytes",
			    user, CRED_SECRET_MAX);
		return -1;
	}
	/* Hash before the write transaction: the KDF is slow. */
	vbuf_init(&hash, 0);
	vbuf_init(&rec, 0);
	if (cred_hash_new(secret, len, &hash, why) == -1)
		goto done;
	attr_put_str(&rec, CRED_ATTR_HASH, hash.data);
	attr_put_int(&rec, CRED_ATTR_CREATED, (int64_t)cred_now());
	cred_record_put_policy(&rec, pol, fields);
	attr_end(&rec);

	if (mdbdir_begin(&db->md, 0, &txn, why) <= 0)
		goto done;
	key.mv_data = (void *)user;
	key.mv_size = strlen(user);
	val.mv_data = rec.data;
	val.mv_size = rec.len;
	rc = mdb_put(txn, db->md.dbi, &key, &val, MDB_NOOVERWRITE);
	if (rc != 0) {
		mdb_txn_abort(txn);
		if (rc == MDB_KEYEXIST) {
			if (why)
				vbuf_setf(why, "user %s already exists", user);
		} else
			mdbdir_why(why, &db->md, "write to", rc);
		goto done;
	}
	if ((rc = mdb_txn_commit(txn)) != 0) {
		mdbdir_why(why, &db->md, "commit to", rc);
		goto done;
	}
	ret = 0;
done:
	vbuf_wipe(&hash);
	vbuf_release(&hash);
	vbuf_wipe(&rec);
	vbuf_release(&rec);
	return ret;
}

/*
 * Rewrites user's record in one write transaction: the policy fields
 * selected by fields are replaced by pol's, and with newhash the secret is
 * rotated (the current hash kept as old_hash for grace seconds). Every
 * other attribute, known or not, is copied. Returns 1, 0 (no such user) or
 * -1 (why).
 */
static int
cred_update(struct cred_db *db, const char *user,
    const struct cred_policy *pol, unsigned fields, const char *newhash,
    int64_t grace, struct vbuf *why)
{
	struct attr_list al;
	struct vbuf rec;
	const char *cur = NULL, *name;
	MDB_txn *txn;
	MDB_val key, val;
	size_t used, i, f;
	int rc, ret = -1, skip;

	if (mdbdir_begin(&db->md, 0, &txn, why) <= 0)
		return -1;
	attr_list_init(&al);
	vbuf_init(&rec, 0);
	key.mv_data = (void *)user;
	key.mv_size = strlen(user);
	if ((rc = mdb_get(txn, db->md.dbi, &key, &val)) == MDB_NOTFOUND) {
		if (why)
			vbuf_setf(why, "no such user %s", user);
		ret = 0;
		goto abort;
	}
	if (rc != 0) {
		mdbdir_why(why, &db->md, "read", rc);
		goto abort;
	}
	if (attr_decode(&al, val.mv_data, val.mv_size, &used, NULL) != 1 ||
	    used != val.mv_size ||
	    (newhash != NULL &&
	    (cur = attr_get(&al, CRED_ATTR_HASH)) == NULL)) {
		if (why)
			vbuf_setf(why, "user %s: corrupt record in %s", user,
			    db->md.dir);
		goto abort;
	}
	/* The values point into the map: build the record before mdb_put. */
	for (i = 0; i < al.count; i++) {
		name = al.items[i].name;
		skip = 0;
		for (f = 0; f < sizeof(cred_fields) / sizeof(cred_fields[0]);
		    f++)
			if ((fields & cred_fields[f].bit) &&
			    strcmp(name, cred_fields[f].name) == 0)
				skip = 1;
		if (newhash != NULL && (strcmp(name, CRED_ATTR_HASH) == 0 ||
		    strcmp(name, CRED_ATTR_OLD_HASH) == 0 ||
		    strcmp(name, CRED_ATTR_OLD_UNTIL) == 0))
			skip = 1;
		if (!skip)
			attr_put_str(&rec, name, al.items[i].value);
	}
	cred_record_put_policy(&rec, pol, fields);
	if (newhash != NULL) {
		attr_put_str(&rec, CRED_ATTR_HASH, newhash);
		if (grace > 0) {
			attr_put_str(&rec, CRED_ATTR_OLD_HASH, cur);
			attr_put_int(&rec, CRED_ATTR_OLD_UNTIL,
			    (int64_t)cred_now() + grace);
		}
	}
	attr_end(&rec);
	val.mv_data = rec.data;
	val.mv_size = rec.len;
	if ((rc = mdb_put(txn, db->md.dbi, &key, &val, 0)) != 0) {
		mdbdir_why(why, &db->md, "write to", rc);
		goto abort;
	}
	attr_list_release(&al);
	if ((rc = mdb_txn_commit(txn)) != 0)
		mdbdir_why(why, &db->md, "commit to", rc);
	else
		ret = 1;
	goto done;
abort:
	attr_list_release(&al);
	mdb_txn_abort(txn);
done:
	vbuf_wipe(&rec);
	vbuf_release(&rec);
	return ret;
}

int
cred_user_set(struct cred_db *db, const char *user,
    const struct cred_policy *pol, unsigned fields, struct vbuf *why)
{
	if (cred_check_writable(db, user, why) == -1)
		return -1;
	return cred_update(db, user, pol, fields & CRED_POLICY_ALL, NULL, 0,
	    why);
}

int
cred_user_rotate(struct cred_db *db, const char *user, const char *secret,
    size_t len, int64_t grace, struct vbuf *why)
{
	struct vbuf hash;
	int rc;

	if (cred_check_writable(db, user, why) == -1)
		return -1;
	if (len == 0 || len > CRED_SECRET_MAX) {
		if (why)
			vbuf_setf(why, "user %s: secret must be 1-%d bytes",
			    user, CRED_SECRET_MAX);
		return -1;
	}
	if (grace < 0 || grace > CRED_GRACE_MAX) {
		if (why)
			vbuf_setf(why, "grace period must be 0 to %d seconds",
			    CRED_GRACE_MAX);
		return -1;
	}
	/* Hash before the write transaction: the KDF is slow. */
	vbuf_init(&hash, 0);
	if (cred_hash_new(secret, len, &hash, why) == -1)
		rc = -1;
	else
		rc = cred_update(db, user, NULL, 0, hash.data, grace, why);
	vbuf_wipe(&hash);
	vbuf_release(&hash);
	return rc;
}

int
cred_user_del(struct cred_db *db, const char *user, struct vbuf *why)
{
	MDB_txn *txn;
	MDB_val key;
	int rc;

	if (cred_check_writable(db, user, why) == -1)
		return -1;
	if (mdbdir_begin(&db->md, 0, &txn, why) <= 0)
		return -1;
	key.mv_data = (void *)user;
	key.mv_size = strlen(user);
	rc = mdb_del(txn, db->md.dbi, &key, NULL);
	if (rc != 0) {
		mdb_txn_abort(txn);
		if (rc == MDB_NOTFOUND) {
			if (why)
				vbuf_setf(why, "no such user %s", user);
		} else
			mdbdir_why(why, &db->md, "delete from", rc);
		return -1;
	}
	if ((rc = mdb_txn_commit(txn)) != 0) {
		mdbdir_why(why, &db->md, "commit to", rc);
		return -1;
	}
	return 0;
}

/*
 * Calls cb with each well-formed user name and its decoded record (NULL
 * if it does not decode), in name order, until cb returns nonzero.
 * Returns 0, or -1 on a database error.
 */
static int
cred_records_walk(struct cred_db *db,
    int (*cb)(const char *, const struct attr_list *, void *), void *arg,
    struct vbuf *why)
{
	char name[CRED_NAME_MAX + 1];
	struct attr_list al;
	MDB_cursor *cur;
	MDB_txn *txn;
	MDB_val key, val;
	size_t used;
	int rc, op, ok;

	if ((rc = mdbdir_cursor(&db->md, &txn, &cur, why)) <= 0)
		return rc;
	attr_list_init(&al);
	for (op = MDB_FIRST; (rc = mdb_cursor_get(cur, &key, &val,
	    op)) == 0; op = MDB_NEXT) {
		/* Keys not made by cred_user_add cannot be used; skip them. */
		if (key.mv_size == 0 || key.mv_size > CRED_NAME_MAX)
			continue;
		memcpy(name, key.mv_data, key.mv_size);
		name[key.mv_size] = '\0';
		if (!cred_name_ok(name))
			continue;
		ok = attr_decode(&al, val.mv_data, val.mv_size, &used,
		    NULL) == 1 && used == val.mv_size;
		if (cb(name, ok ? &al : NULL, arg) != 0) {
			rc = MDB_NOTFOUND;
			break;
		}
	}
	attr_list_release(&al);
	mdb_cursor_close(cur);
	mdb_txn_abort(txn);
	if (rc != MDB_NOTFOUND) {
		mdbdir_why(why, &db->md, "read", rc);
		return -1;
	}
	return 0;
}

struct cred_list_ctx {
	int	(*cb)(const char *, int64_t, void *);
	int	(*walk_cb)(const char *, const struct cred_policy *, void *);
	void	*arg;
};

static int
cred_list_record(const char *name, const struct attr_list *al, void *arg)
{
	struct cred_list_ctx *ctx = arg;
	int64_t created = 0;

	if (al != NULL && attr_get_int(al, CRED_ATTR_CREATED, &created,
	    NULL) == -1)
		created = 0;
	return ctx->cb(name, created, ctx->arg);
}

int
cred_user_list(struct cred_db *db,
    int (*cb)(const char *, int64_t, void *), void *arg, struct vbuf *why)
{
	struct cred_list_ctx ctx = { .cb = cb, .arg = arg };

	return cred_records_walk(db, cred_list_record, &ctx, why);
}

static int
cred_walk_record(const char *name, const struct attr_list *al, void *arg)
{
	struct cred_list_ctx *ctx = arg;
	struct cred_policy pol;
	int rc, ok;

	ok = al != NULL && cred_record_policy(al, &pol, NULL) == 0;
	rc = ctx->walk_cb(name, ok ? &pol : NULL, ctx->arg);
	if (ok)
		cred_policy_release(&pol);
	return rc;
}

int
cred_user_walk(struct cred_db *db,
    int (*cb)(const char *, const struct cred_policy *, void *), void *arg,
    struct vbuf *why)
{
	struct cred_list_ctx ctx = { .walk_cb = cb, .arg = arg };

	return cred_records_walk(db, cred_walk_record, &ctx, why);
}

/*
 * Fills out from a decoded record (see cred.h for the attributes). A
 * record without a hash, or with a malformed policy attribute, is corrupt:
 * returns -1 with the reason in why, out released. Returns 0.
 */
static int
cred_record_policy(const struct attr_list *al, struct cred_policy *out,
    struct vbuf *why)
{
	struct vbuf sub;
	const char *s, *bad = NULL;
	uint64_t v, dsn_off;

	memset(out, 0, sizeof(*out));
	vbuf_init(&sub, 0);
	if (attr_get(al, CRED_ATTR_HASH) == NULL)
		bad = CRED_ATTR_HASH;
	else if ((s = attr_get(al, CRED_ATTR_DOMAINS)) != NULL &&
	    cred_policy_parse_domains(out, s, &sub) == -1)
		bad = CRED_ATTR_DOMAINS;
	else if ((s = attr_get(al, CRED_ATTR_NETWORKS)) != NULL &&
	    cred_policy_parse_networks(out, s, &sub) == -1)
		bad = CRED_ATTR_NETWORKS;
	else if (cred_attr_u64(al, CRED_ATTR_MAX_PER_HOUR,
	    &out->max_per_hour) == -1)
		bad = CRED_ATTR_MAX_PER_HOUR;
	else if (cred_attr_u64(al, CRED_ATTR_MAX_PER_DAY,
	    &out->max_per_day) == -1)
		bad = CRED_ATTR_MAX_PER_DAY;
	else if (cred_attr_u64(al, CRED_ATTR_MAX_RCPT,
	    &out->max_recipients) == -1)
		bad = CRED_ATTR_MAX_RCPT;
	else if (cred_attr_u64(al, CRED_ATTR_MAX_SIZE, &out->max_size) == -1)
		bad = CRED_ATTR_MAX_SIZE;
	else if (cred_attr_u64(al, CRED_ATTR_DISABLED, &v) == -1 || v > 1)
		bad = CRED_ATTR_DISABLED;
	else if (cred_attr_u64(al, CRED_ATTR_DSN_OFF, &dsn_off) == -1 ||
	    dsn_off > 1)
		bad = CRED_ATTR_DSN_OFF;
	else if ((s = attr_get(al, CRED_ATTR_POOL)) != NULL &&
	    cred_policy_parse_pool(out, s, &sub) == -1)
		bad = CRED_ATTR_POOL;
	else if ((s = attr_get(al, CRED_ATTR_LANE)) != NULL &&
	    strcmp(s, CRED_LANE_BULK) != 0)
		bad = CRED_ATTR_LANE;
	else if (attr_get(al, CRED_ATTR_OLD_HASH) != NULL &&
	    attr_get_int(al, CRED_ATTR_OLD_UNTIL, &out->old_valid_until,
	    NULL) == -1)
		bad = CRED_ATTR_OLD_UNTIL;
	if (bad != NULL) {
		if (why)
			vbuf_setf(why, "corrupt record: bad %s%s%s", bad,
			    sub.len > 0 ? ": " : "", sub.data);
		vbuf_release(&sub);
		cred_policy_release(out);
		return -1;
	}
	vbuf_release(&sub);
	out->disabled = v != 0;
	out->dsn_off = dsn_off != 0;
	out->bulk = attr_get(al, CRED_ATTR_LANE) != NULL;
	/* Only a running grace period is of interest to anyone. */
	if (attr_get(al, CRED_ATTR_OLD_HASH) == NULL ||
	    out->old_valid_until <= (int64_t)cred_now())
		out->old_valid_until = 0;
	/* As cred_user_list: a missing or malformed time reads as 0. */
	if (attr_get(al, CRED_ATTR_CREATED) == NULL ||
	    attr_get_int(al, CRED_ATTR_CREATED, &out->created, NULL) == -1)
		out->created = 0;
	return 0;
}

int
cred_policy_get(struct cred_db *db, const char *user, struct cred_policy *out,
    struct vbuf *why)
{
	struct attr_list al;
	struct vbuf sub;
	MDB_txn *txn;
	MDB_val key, val;
	size_t used;
	int rc, ret = -1;

	memset(out, 0, sizeof(*out));
	if (!cred_name_ok(user))
		return 0;
	if ((rc = mdbdir_begin(&db->md, MDB_RDONLY, &txn, why)) <= 0)
		return rc;
	key.mv_data = (void *)user;
	key.mv_size = strlen(user);
	if ((rc = mdb_get(txn, db->md.dbi, &key, &val)) == MDB_NOTFOUND) {
		mdb_txn_abort(txn);
		return 0;
	}
	if (rc != 0) {
		mdb_txn_abort(txn);
		mdbdir_why(why, &db->md, "read", rc);
		return -1;
	}
	attr_list_init(&al);
	vbuf_init(&sub, 0);
	if (attr_decode(&al, val.mv_data, val.mv_size, &used, NULL) != 1 ||
	    used != val.mv_size) {
		if (why)
			vbuf_setf(why, "user %s: corrupt record in %s", user,
			    db->md.dir);
	} else if (cred_record_policy(&al, out, &sub) == -1) {
		if (why)
			vbuf_setf(why, "user %s: %s in %s", user, sub.data,
			    db->md.dir);
	} else
		ret = 1;
	vbuf_release(&sub);
	attr_list_release(&al);
	mdb_txn_abort(txn);
	return ret;
}

/* ---- a credential's own webhook (issue 10) ---- */

/* The attributes of a webhook, all replaced together. */
static const char *const cred_wh_attrs[] = {
	CRED_ATTR_WH_URL, CRED_ATTR_WH_EVENTS, CRED_ATTR_WH_FORMAT,
	CRED_ATTR_WH_SECRET, CRED_ATTR_WH_KEY,
};

/* The format names; webhookd maps them to its payload shapes. */
static const char *const cred_wh_formats[] = {
	"petrel", "mailgun", "sendgrid", "postmark",
};

static int	cred_wh_events_ok(const char *, struct vbuf *);
static int	cred_wh_url_ok(const char *, struct vbuf *);

/* 1 if s is printable ASCII without spaces, else 0. */
static int
cred_wh_printable(const char *s)
{
	for (; *s != '\0'; s++)
		if ((unsigned char)*s <= ' ' || (unsigned char)*s >= 0x7f)
			return 0;
	return 1;
}

static int
cred_wh_url_ok(const char *url, struct vbuf *why)
{
	const char *host;

	if (strncmp(url, "https://", 8) == 0)
		host = url + 8;
	else if (strncmp(url, "http://", 7) == 0)
		host = url + 7;
	else {
		vbuf_setf(why, "webhook URL must start with http:// or "
		    "https://");
		return -1;
	}
	if (strlen(url) > CRED_WEBHOOK_URL_MAX) {
		vbuf_setf(why, "webhook URL longer than %d bytes",
		    CRED_WEBHOOK_URL_MAX);
		return -1;
	}
	if (!cred_wh_printable(url)) {
		vbuf_setf(why, "webhook URL contains a space or a control "
		    "character");
		return -1;
	}
	if (*host == '\0' || *host == '/' || *host == '@') {
		vbuf_setf(why, "webhook URL has no host");
		return -1;
	}
	return 0;
}

/* A comma-separated list of event names, each known, none twice. */
static int
cred_wh_events_ok(const char *list, struct vbuf *why)
{
	const char *p = list, *name;
	size_t n, len;
	unsigned seen = 0;
	int k, found;

	for (;;) {
		while (*p == ' ')
			p++;
		n = strcspn(p, ", ");
		found = 0;
		/* A destination's events are of no application's mail. */
		for (k = OUTBOX_ACCEPTED; k <= OUTBOX_KIND_LAST; k++) {
			if (k == OUTBOX_DESTINATION)
				continue;
			name = outbox_kind_name((enum outbox_kind)k);
			len = strlen(name);
			if (n == len && strncmp(p, name, n) == 0) {
				found = 1;
				break;
			}
		}
		if (!found) {
			vbuf_setf(why, "unknown webhook event \"%.*s\" (accepted, "
			    "delivered, deferred, bounced, expired, suppressed, "
			    "deleted)",
			    (int)(n > 64 ? 64 : n), p);
			return -1;
		}
		if (seen & (1u << k)) {
			vbuf_setf(why, "webhook event %s listed twice", name);
			return -1;
		}
		seen |= 1u << k;
		p += n;
		while (*p == ' ')
			p++;
		if (*p == '\0')
			return 0;
		if (*p != ',') {
			vbuf_setf(why, "webhook events: expected a comma-"
			    "separated list");
			return -1;
		}
		p++;
	}
}

int
cred_webhook_check(const struct cred_webhook *wh, struct vbuf *why)
{
	size_t i;
	int ok;

	if (wh == NULL || wh->url == NULL)
		return 0;
	if (cred_wh_url_ok(wh->url, why) == -1)
		return -1;
	if (wh->events != NULL && cred_wh_events_ok(wh->events, why) == -1)
		return -1;
	if (wh->format != NULL) {
		ok = 0;
		for (i = 0; i < sizeof(cred_wh_formats) /
		    sizeof(cred_wh_formats[0]); i++)
			if (strcmp(wh->format, cred_wh_formats[i]) == 0)
				ok = 1;
		if (!ok) {
			vbuf_setf(why, "unknown webhook format \"%.64s\" (%s)",
			    wh->format, CRED_WEBHOOK_FORMATS);
			return -1;
		}
	}
	if (wh->secret != NULL && (wh->secret[0] == '\0' ||
	    strlen(wh->secret) > CRED_WEBHOOK_SECRET_MAX)) {
		vbuf_setf(why, "webhook secret must be 1-%d bytes",
		    CRED_WEBHOOK_SECRET_MAX);
		return -1;
	}
	if (wh->key_pem != NULL && (wh->key_pem[0] == '\0' ||
	    strlen(wh->key_pem) > CRED_WEBHOOK_KEY_MAX)) {
		vbuf_setf(why, "webhook key must be 1-%d bytes",
		    CRED_WEBHOOK_KEY_MAX);
		return -1;
	}
	return 0;
}

void
cred_webhook_release(struct cred_webhook *wh)
{
	if (wh == NULL)
		return;
	free(wh->url);
	free(wh->events);
	free(wh->format);
	if (wh->secret != NULL) {
		OPENSSL_cleanse(wh->secret, strlen(wh->secret));
		free(wh->secret);
	}
	if (wh->key_pem != NULL) {
		OPENSSL_cleanse(wh->key_pem, strlen(wh->key_pem));
		free(wh->key_pem);
	}
	memset(wh, 0, sizeof(*wh));
}

/* A copy of attribute name, or NULL when absent. */
static char *
cred_wh_dup(const struct attr_list *al, const char *name)
{
	const char *v = attr_get(al, name);

	return v == NULL ? NULL : xstrdup(v);
}

int
cred_webhook_get(struct cred_db *db, const char *user,
    struct cred_webhook *out, struct vbuf *why)
{
	struct attr_list al;
	struct vbuf sub;
	MDB_txn *txn;
	MDB_val key, val;
	size_t used;
	int rc, ret = -1;

	memset(out, 0, sizeof(*out));
	if (!cred_name_ok(user))
		return 0;
	if ((rc = mdbdir_begin(&db->md, MDB_RDONLY, &txn, why)) <= 0)
		return rc;
	key.mv_data = (void *)user;
	key.mv_size = strlen(user);
	if ((rc = mdb_get(txn, db->md.dbi, &key, &val)) == MDB_NOTFOUND) {
		mdb_txn_abort(txn);
		return 0;
	}
	if (rc != 0) {
		mdb_txn_abort(txn);
		mdbdir_why(why, &db->md, "read", rc);
		return -1;
	}
	attr_list_init(&al);
	vbuf_init(&sub, 0);
	if (attr_decode(&al, val.mv_data, val.mv_size, &used, NULL) != 1 ||
	    used != val.mv_size) {
		if (why)
			vbuf_setf(why, "user %s: corrupt record in %s", user,
			    db->md.dir);
	} else if ((out->url = cred_wh_dup(&al, CRED_ATTR_WH_URL)) == NULL)
		ret = 1;		/* no webhook of its own */
	else {
		out->events = cred_wh_dup(&al, CRED_ATTR_WH_EVENTS);
		out->format = cred_wh_dup(&al, CRED_ATTR_WH_FORMAT);
		out->secret = cred_wh_dup(&al, CRED_ATTR_WH_SECRET);
		out->key_pem = cred_wh_dup(&al, CRED_ATTR_WH_KEY);
		/* Stored by relayctl after this check: corrupt otherwise. */
		if (cred_webhook_check(out, &sub) == -1) {
			if (why)
				vbuf_setf(why, "user %s: corrupt webhook in "
				    "%s: %s", user, db->md.dir, sub.data);
			cred_webhook_release(out);
		} else
			ret = 1;
	}
	vbuf_release(&sub);
	attr_list_release(&al);
	mdb_txn_abort(txn);
	return ret;
}

int
cred_webhook_set(struct cred_db *db, const char *user,
    const struct cred_webhook *wh, struct vbuf *why)
{
	struct attr_list al;
	struct vbuf rec, sub;
	MDB_txn *txn;
	MDB_val key, val;
	size_t used, i, f;
	int rc, ret = -1, skip;

	if (cred_check_writable(db, user, why) == -1)
		return -1;
	vbuf_init(&sub, 0);
	if (cred_webhook_check(wh, &sub) == -1) {
		if (why)
			vbuf_setf(why, "user %s: %s", user, sub.data);
		vbuf_release(&sub);
		return -1;
	}
	vbuf_release(&sub);
	if (mdbdir_begin(&db->md, 0, &txn, why) <= 0)
		return -1;
	attr_list_init(&al);
	vbuf_init(&rec, 0);
	key.mv_data = (void *)user;
	key.mv_size = strlen(user);
	if ((rc = mdb_get(txn, db->md.dbi, &key, &val)) == MDB_NOTFOUND) {
		if (why)
			vbuf_setf(why, "no such user %s", user);
		ret = 0;
		goto abort;
	}
	if (rc != 0) {
		mdbdir_why(why, &db->md, "read", rc);
		goto abort;
	}
	if (attr_decode(&al, val.mv_data, val.mv_size, &used, NULL) != 1 ||
	    used != val.mv_size) {
		if (why)
			vbuf_setf(why, "user %s: corrupt record in %s", user,
			    db->md.dir);
		goto abort;
	}
	/* Everything but the webhook, known or not, is kept as it is. */
	for (i = 0; i < al.count; i++) {
		skip = 0;
		for (f = 0; f < sizeof(cred_wh_attrs) /
		    sizeof(cred_wh_attrs[0]); f++)
			if (strcmp(al.items[i].name, cred_wh_attrs[f]) == 0)
				skip = 1;
		if (!skip)
			attr_put_str(&rec, al.items[i].name,
			    al.items[i].value);
	}
	if (wh != NULL && wh->url != NULL) {
		attr_put_str(&rec, CRED_ATTR_WH_URL, wh->url);
		if (wh->events != NULL)
			attr_put_str(&rec, CRED_ATTR_WH_EVENTS, wh->events);
		if (wh->format != NULL)
			attr_put_str(&rec, CRED_ATTR_WH_FORMAT, wh->format);
		if (wh->secret != NULL)
			attr_put_str(&rec, CRED_ATTR_WH_SECRET, wh->secret);
		if (wh->key_pem != NULL)
			attr_put_str(&rec, CRED_ATTR_WH_KEY, wh->key_pem);
	}
	attr_end(&rec);
	val.mv_data = rec.data;
	val.mv_size = rec.len;
	if ((rc = mdb_put(txn, db->md.dbi, &key, &val, 0)) != 0) {
		mdbdir_why(why, &db->md, "write to", rc);
		goto abort;
	}
	attr_list_release(&al);
	if ((rc = mdb_txn_commit(txn)) != 0)
		mdbdir_why(why, &db->md, "commit to", rc);
	else
		ret = 1;
	goto done;
abort:
	attr_list_release(&al);
	mdb_txn_abort(txn);
done:
	vbuf_wipe(&rec);
	vbuf_release(&rec);
	return ret;
}
