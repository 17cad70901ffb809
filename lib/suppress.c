/*
 * suppress.c - the suppression list (see suppress.h, relayctl(8)).
 *
 * Database "entries": key = lower-cased address, NUL, lower-cased scope
 * ("" for all sending domains), so every entry of an address is adjacent
 * and the all-domains one comes first; value = a fixed layout, version 1:
 * version (1 byte), reason (1), since (8, big-endian), expires (8), class
 * length (1) and bytes, reply length (2, big-endian) and bytes. A fixed
 * layout, not an attribute list, because smtpd decodes it on every RCPT
 * and must not allocate there. Database "soft": key = address, NUL, queue
 * id; value = the time of that message's last soft bounce (8 bytes).
 *
 * The environment is opened MDB_NOTLS: smtpd keeps one read transaction
 * reset between checks (renewed for each, so no snapshot is held across
 * an event-loop pass) and a writer may open others meanwhile.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <lmdb.h>

#include "mdbdir.h"
#include "suppress.h"
#include "xalloc.h"

#define SUPPRESS_MAXDBS		2
#define SUPPRESS_VERSION	1
#define SUPPRESS_HEAD		18	/* version, reason, since, expires */
#define SUPPRESS_VAL_MAX	(SUPPRESS_HEAD + 1 + SUPPRESS_CLASS_MAX + 2 + \
				    QSTORE_REPLY_MAX)
#define SUPPRESS_KEY_MAX	(QSTORE_ADDR_MAX + 1 + SUPPRESS_SCOPE_MAX)
/* Entries of one address walked before looking up the sender's directly. */
#define SUPPRESS_SCAN_MAX	8

struct suppress {
	struct mdbdir	 md;		/* <queue_directory>/suppress */
	MDB_dbi		 soft;
	int		 have_soft;
	MDB_txn		*rtxn;		/* suppress_check's, kept reset */
	MDB_cursor	*rcur;
	MDB_txn		*batch;		/* an open batch, or NULL */
	int64_t		 last_look;	/* read-only, not there: last try */
	/* Where the next suppress_prune resumes, per database. */
	unsigned char	 prune_key[2][SUPPRESS_KEY_MAX + SUPPRESS_QID_MAX];
	size_t		 prune_len[2];
};

static const char *const suppress_names[] = {
	NULL, "hard-bounce", "soft-bounces", "complaint", "unsubscribe",
	"manual",
};
static const char *const suppress_words[] = {
	NULL, "hard bounce", "soft bounces", "complaint", "unsubscribe",
	"manual",
};

static int	suppress_ready(struct suppress *, int64_t, struct vbuf *);
static int	suppress_soft_dbi(struct suppress *, struct vbuf *);
static void	suppress_put64(unsigned char *, int64_t);
static int64_t	suppress_get64(const unsigned char *);
static size_t	suppress_key(unsigned char *, const char *, const char *);
static int	suppress_decode(const MDB_val *, const MDB_val *, size_t,
		    struct suppress_entry *);
static int	suppress_head(const MDB_val *, int64_t *, int64_t *, int *);
static int	suppress_in_force(int64_t, int64_t);
static int	suppress_add_txn(struct suppress *, MDB_txn *,
		    const struct suppress_entry *, int64_t, struct vbuf *);
static int	suppress_walk(struct suppress *, const char *, int64_t,
		    int (*)(const struct suppress_entry *, void *), void *,
		    struct vbuf *);
static int	suppress_prune_db(struct suppress *, MDB_txn *, int,
		    int64_t, int64_t, struct vbuf *);
static void	suppress_lower(char *, const char *, size_t);
static int	suppress_del_prefix(MDB_txn *, MDB_dbi, const unsigned char *,
		    size_t, int *);
static int	suppress_commit(struct suppress *, MDB_txn *, struct vbuf *);
static int	suppress_writer(struct suppress *, struct vbuf *);

/* Names. */

const char *
suppress_reason_name(enum suppress_reason r)
{
	if (r < SUPPRESS_HARD_BOUNCE || r > SUPPRESS_MANUAL)
		return "unknown";
	return suppress_names[r];
}

const char *
suppress_reason_words(enum suppress_reason r)
{
	if (r < SUPPRESS_HARD_BOUNCE || r > SUPPRESS_MANUAL)
		return "unknown";
	return suppress_words[r];
}

int
suppress_reason_from_name(const char *s, enum suppress_reason *r)
{
	int i;

	for (i = SUPPRESS_HARD_BOUNCE; i <= SUPPRESS_MANUAL; i++)
		if (strcmp(s, suppress_names[i]) == 0) {
			*r = (enum suppress_reason)i;
			return 0;
		}
	return -1;
}

static void
suppress_lower(char *out, const char *in, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)in[i];

		out[i] = (char)(c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c);
	}
	out[n] = '\0';
}

int
suppress_address_norm(const char *address, char *out, size_t size)
{
	const char *at;
	size_t i, n = strlen(address);
	int quoted = 0;

	if (n == 0 || n > QSTORE_ADDR_MAX || n >= size)
		return -1;
	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)address[i];

		if (c < 0x20 || c == 0x7f)
			return -1;
		if (c == '"')
			quoted = !quoted;
		else if (c == ' ' && !quoted)
			return -1;
	}
	if ((at = strrchr(address, '@')) == NULL || at == address ||
	    at[1] == '\0')
		return -1;
	suppress_lower(out, address, n);
	return 0;
}

int
suppress_scope_norm(const char *scope, char *out, size_t size)
{
	size_t i, n = strlen(scope);

	if (n > SUPPRESS_SCOPE_MAX || n >= size)
		return -1;
	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)scope[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		    (c >= '0' && c <= '9') || c == '-' || c == '.' ||
		    c >= 0x80))
			return -1;
	}
	if (n > 0 && (scope[0] == '.' || scope[n - 1] == '.'))
		return -1;
	suppress_lower(out, scope, n);
	return 0;
}

/* Records. */

static void
suppress_put64(unsigned char *p, int64_t v)
{
	uint64_t u = (uint64_t)v;
	int i;

	for (i = 7; i >= 0; i--) {
		p[i] = (unsigned char)(u & 0xff);
		u >>= 8;
	}
}

static int64_t
suppress_get64(const unsigned char *p)
{
	uint64_t u = 0;
	int i;

	for (i = 0; i < 8; i++)
		u = (u << 8) | p[i];
	return (int64_t)u;
}

/* Builds address NUL scope (both already normalised). Returns its size. */
static size_t
suppress_key(unsigned char *key, const char *address, const char *scope)
{
	size_t a = strlen(address), s = strlen(scope);

	memcpy(key, address, a);
	key[a] = '\0';
	memcpy(key + a + 1, scope, s);
	return a + 1 + s;
}

static int
suppress_in_force(int64_t expires, int64_t now)
{
	return expires == 0 || expires > now;
}

/* The fixed head of a value: 0, or -1 for a record we cannot read. */
static int
suppress_head(const MDB_val *v, int64_t *since, int64_t *expires,
    int *reason)
{
	const unsigned char *p = v->mv_data;

	if (v->mv_size < SUPPRESS_HEAD + 3 || p[0] != SUPPRESS_VERSION ||
	    p[1] < SUPPRESS_HARD_BOUNCE || p[1] > SUPPRESS_MANUAL)
		return -1;
	*reason = p[1];
	*since = suppress_get64(p + 2);
	*expires = suppress_get64(p + 10);
	return 0;
}

/* Key and value into e; plen is the address part's size plus its NUL. */
static int
suppress_decode(const MDB_val *k, const MDB_val *v, size_t plen,
    struct suppress_entry *e)
{
	const unsigned char *p = v->mv_data;
	size_t clen, rlen, off;
	int reason;

	if (suppress_head(v, &e->since, &e->expires, &reason) == -1 ||
	    plen < 2 || plen - 1 > QSTORE_ADDR_MAX || k->mv_size < plen ||
	    k->mv_size - plen > SUPPRESS_SCOPE_MAX)
		return -1;
	e->reason = (enum suppress_reason)reason;
	off = SUPPRESS_HEAD;
	clen = p[off++];
	if (clen > SUPPRESS_CLASS_MAX || off + clen + 2 > v->mv_size)
		return -1;
	memcpy(e->class, p + off, clen);
	e->class[clen] = '\0';
	off += clen;
	rlen = ((size_t)p[off] << 8) | p[off + 1];
	off += 2;
	if (rlen > QSTORE_REPLY_MAX || off + rlen != v->mv_size)
		return -1;
	memcpy(e->reply, p + off, rlen);
	e->reply[rlen] = '\0';
	memcpy(e->address, k->mv_data, plen - 1);
	e->address[plen - 1] = '\0';
	memcpy(e->scope, (const char *)k->mv_data + plen, k->mv_size - plen);
	e->scope[k->mv_size - plen] = '\0';
	return 0;
}

/* The handle. */

struct suppress *
suppress_open(const struct cfg *cfg, int writable, struct vbuf *why)
{
	struct suppress *s;

	s = xcalloc(1, sizeof(*s));
	if (mdbdir_init(&s->md, cfg, SUPPRESS_DIR, SUPPRESS_DB_ENTRIES,
	    (size_t)cfg->suppression_map_size, SUPPRESS_MAXDBS, writable,
	    "suppression list", why) == -1)
		goto fail;
	s->md.env_flags = MDB_NOTLS;
	/*
	 * A reader that finds the list being created (qmgr starts beside
	 * smtpd) or damaged keeps its handle and tries again later: each
	 * suppress_check reports the error until the list can be read.
	 */
	if (mdbdir_attach(&s->md, why) == -1 && writable)
		goto fail;
	if (writable && suppress_soft_dbi(s, why) == -1)
		goto fail;
	return s;
fail:
	suppress_close(s);
	return NULL;
}

int
suppress_reader_check(struct suppress *s)
{
	int dead = 0;

	if (s == NULL || s->md.env == NULL)
		return 0;
	(void)mdb_reader_check(s->md.env, &dead);
	return dead;
}

void
suppress_close(struct suppress *s)
{
	if (s == NULL)
		return;
	if (s->batch != NULL)
		mdb_txn_abort(s->batch);
	if (s->rcur != NULL)
		mdb_cursor_close(s->rcur);
	if (s->rtxn != NULL)
		mdb_txn_abort(s->rtxn);
	mdbdir_release(&s->md);
	free(s);
}

/* The soft-bounce database of a writable handle, created if missing. */
static int
suppress_soft_dbi(struct suppress *s, struct vbuf *why)
{
	MDB_txn *txn;
	int rc;

	if (s->have_soft)
		return 0;
	if (!s->md.writable) {
		if (why)
			vbuf_setf(why, "suppression list opened read-only");
		return -1;
	}
	if (mdbdir_begin(&s->md, 0, &txn, why) != 1)
		return -1;
	if ((rc = mdb_dbi_open(txn, SUPPRESS_DB_SOFT, MDB_CREATE,
	    &s->soft)) != 0 || (rc = mdb_txn_commit(txn)) != 0) {
		if (rc != 0)
			mdb_txn_abort(txn);
		mdbdir_why(why, &s->md, "open database soft in", rc);
		return -1;
	}
	s->have_soft = 1;
	return 0;
}

/*
 * Attaches if needed: 1 ready, 0 not there yet (read-only), -1 error. A
 * read-only handle that found nothing tries again at most once a second
 * (now), so a missing list costs no system call per RCPT.
 */
static int
suppress_ready(struct suppress *s, int64_t now, struct vbuf *why)
{
	int rc;

	if (s->md.have_dbi)
		return 1;
	if (!s->md.writable && s->last_look == now && now != 0)
		return 0;
	s->last_look = now;
	rc = mdbdir_attach(&s->md, why);
	if (rc == 1 && s->md.writable && suppress_soft_dbi(s, why) == -1)
		return -1;
	return rc;
}

/* Lookups. */

int
suppress_check(struct suppress *s, const char *address,
    const char *sender_domain, int64_t now, struct suppress_entry *e,
    struct vbuf *why)
{
	unsigned char key[SUPPRESS_KEY_MAX];
	char addr[QSTORE_ADDR_MAX + 1], sd[SUPPRESS_SCOPE_MAX + 1];
	MDB_val k, v;
	int64_t since, expires;
	size_t plen, sdlen, n;
	int rc, reason, found = 0, retried = 0;

	if (suppress_address_norm(address, addr, sizeof(addr)) == -1)
		return 0;	/* not an address we could have stored */
	if (sender_domain == NULL ||
	    suppress_scope_norm(sender_domain, sd, sizeof(sd)) == -1)
		sd[0] = '\0';	/* only the all-domains entry can match */
	sdlen = strlen(sd);
	if ((rc = suppress_ready(s, now, why)) <= 0)
		return rc;
again:
	rc = s->rtxn == NULL ? mdb_txn_begin(s->md.env, NULL, MDB_RDONLY,
	    &s->rtxn) : mdb_txn_renew(s->rtxn);
	if (rc != 0) {
		if (s->rcur != NULL)
			mdb_cursor_close(s->rcur);
		if (s->rtxn != NULL)
			mdb_txn_abort(s->rtxn);
		s->rcur = NULL;
		s->rtxn = NULL;
		/* A writer grew the map: adopt its size and try again. */
		if (rc == MDB_MAP_RESIZED && !retried++ &&
		    mdb_env_set_mapsize(s->md.env, 0) == 0)
			goto again;
		mdbdir_why(why, &s->md, "mdb_txn_begin", rc);
		return -1;
	}
	rc = s->rcur == NULL ? mdb_cursor_open(s->rtxn, s->md.dbi, &s->rcur) :
	    mdb_cursor_renew(s->rtxn, s->rcur);
	if (rc != 0) {
		mdb_txn_reset(s->rtxn);
		mdbdir_why(why, &s->md, "mdb_cursor_open", rc);
		return -1;
	}
	plen = suppress_key(key, addr, "");
	k.mv_data = key;
	k.mv_size = plen;
	/* The all-domains key sorts first among the address's entries. */
	rc = mdb_cursor_get(s->rcur, &k, &v, MDB_SET_RANGE);
	for (n = 0; rc == 0 && n < SUPPRESS_SCAN_MAX; n++) {
		if (k.mv_size < plen || memcmp(k.mv_data, key, plen) != 0) {
			rc = MDB_NOTFOUND;
			break;
		}
		if (suppress_head(&v, &since, &expires, &reason) == 0 &&
		    suppress_in_force(expires, now) &&
		    (k.mv_size == plen || (k.mv_size - plen == sdlen &&
		    sdlen > 0 && memcmp((const char *)k.mv_data + plen, sd,
		    sdlen) == 0))) {
			found = 1;
			break;
		}
		rc = mdb_cursor_get(s->rcur, &k, &v, MDB_NEXT);
	}
	if (rc == 0 && !found && sdlen > 0) {
		/* Many scopes for one address: go to the sender's directly. */
		k.mv_size = suppress_key(key, addr, sd);
		k.mv_data = key;
		rc = mdb_cursor_get(s->rcur, &k, &v, MDB_SET_KEY);
		if (rc == 0 && suppress_head(&v, &since, &expires,
		    &reason) == 0 && suppress_in_force(expires, now))
			found = 1;
	}
	if (found && e != NULL && suppress_decode(&k, &v, plen, e) == -1)
		found = 0;	/* unreadable: as if absent */
	mdb_txn_reset(s->rtxn);
	if (rc != 0 && rc != MDB_NOTFOUND) {
		mdbdir_why(why, &s->md, "mdb_cursor_get", rc);
		return -1;
	}
	return found;
}

/* Walks every entry in force, or those of address (not NULL). */
static int
suppress_walk(struct suppress *s, const char *address, int64_t now,
    int (*cb)(const struct suppress_entry *, void *), void *arg,
    struct vbuf *why)
{
	unsigned char key[SUPPRESS_KEY_MAX];
	char addr[QSTORE_ADDR_MAX + 1];
	struct suppress_entry *e;
	MDB_txn *txn;
	MDB_cursor *cur;
	MDB_val k, v;
	const unsigned char *nul;
	size_t plen = 0;
	int rc, ret = 0;

	if (address != NULL &&
	    suppress_address_norm(address, addr, sizeof(addr)) == -1) {
		if (why)
			vbuf_setf(why, "invalid address");
		return -1;
	}
	if ((rc = suppress_ready(s, 0, why)) <= 0)
		return rc;
	if ((rc = mdbdir_cursor(&s->md, &txn, &cur, why)) <= 0)
		return rc;
	e = xmalloc(sizeof(*e));
	if (address != NULL) {
		plen = suppress_key(key, addr, "");
		k.mv_data = key;
		k.mv_size = plen;
		rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
	} else
		rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST);
	for (; rc == 0; rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
		if (address != NULL && (k.mv_size < plen ||
		    memcmp(k.mv_data, key, plen) != 0))
			break;
		if ((nul = memchr(k.mv_data, '\0', k.mv_size)) == NULL)
			continue;
		if (suppress_decode(&k, &v, (size_t)(nul -
		    (const unsigned char *)k.mv_data) + 1, e) == -1 ||
		    !suppress_in_force(e->expires, now))
			continue;
		if (cb(e, arg) != 0) {
			if (why)
				vbuf_setf(why, "stopped");
			ret = -1;
			break;
		}
	}
	if (ret == 0 && rc != 0 && rc != MDB_NOTFOUND) {
		mdbdir_why(why, &s->md, "mdb_cursor_get", rc);
		ret = -1;
	}
	free(e);
	mdb_cursor_close(cur);
	mdb_txn_abort(txn);
	return ret;
}

int
suppress_iter(struct suppress *s, int64_t now,
    int (*cb)(const struct suppress_entry *, void *), void *arg,
    struct vbuf *why)
{
	return suppress_walk(s, NULL, now, cb, arg, why);
}

int
suppress_iter_address(struct suppress *s, const char *address, int64_t now,
    int (*cb)(const struct suppress_entry *, void *), void *arg,
    struct vbuf *why)
{
	return suppress_walk(s, address, now, cb, arg, why);
}

/* Changes. */

/*
 * Deletes every record of dbi whose key starts with prefix[0..plen), adding
 * their number to *n (if not NULL). Returns 0 or an LMDB error.
 */
static int
suppress_del_prefix(MDB_txn *txn, MDB_dbi dbi, const unsigned char *prefix,
    size_t plen, int *n)
{
	MDB_cursor *cur;
	MDB_val k, v;
	int rc;

	if ((rc = mdb_cursor_open(txn, dbi, &cur)) != 0)
		return rc;
	k.mv_data = (void *)prefix;
	k.mv_size = plen;
	/* After a delete, MDB_NEXT gives the record that followed. */
	for (rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE); rc == 0;
	    rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
		if (k.mv_size < plen || memcmp(k.mv_data, prefix, plen) != 0)
			break;
		if ((rc = mdb_cursor_del(cur, 0)) != 0)
			break;
		if (n != NULL)
			(*n)++;
	}
	mdb_cursor_close(cur);
	return rc == MDB_NOTFOUND ? 0 : rc;
}

/* A writable handle, attached: 0, or -1 (why). */
static int
suppress_writer(struct suppress *s, struct vbuf *why)
{
	if (!s->md.writable) {
		if (why)
			vbuf_setf(why, "suppression list opened read-only");
		return -1;
	}
	return suppress_ready(s, 0, why) == 1 ? 0 : -1;
}

/* Commits txn: 0, or -1 (why). */
static int
suppress_commit(struct suppress *s, MDB_txn *txn, struct vbuf *why)
{
	int rc;

	if ((rc = mdb_txn_commit(txn)) != 0) {
		mdbdir_why(why, &s->md, "mdb_txn_commit", rc);
		return -1;
	}
	return 0;
}

/* suppress_add's work inside txn. */
static int
suppress_add_txn(struct suppress *s, MDB_txn *txn,
    const struct suppress_entry *in, int64_t now, struct vbuf *why)
{
	unsigned char key[SUPPRESS_KEY_MAX], val[SUPPRESS_VAL_MAX];
	char addr[QSTORE_ADDR_MAX + 1], scope[SUPPRESS_SCOPE_MAX + 1];
	MDB_val k, v;
	int64_t since, osince, oexpires;
	size_t clen, rlen, off;
	int rc, oreason;

	if (suppress_address_norm(in->address, addr, sizeof(addr)) == -1) {
		if (why)
			vbuf_setf(why, "invalid address");
		return -1;
	}
	if (suppress_scope_norm(in->scope, scope, sizeof(scope)) == -1) {
		if (why)
			vbuf_setf(why, "invalid domain");
		return -1;
	}
	if (in->reason < SUPPRESS_HARD_BOUNCE ||
	    in->reason > SUPPRESS_MANUAL) {
		if (why)
			vbuf_setf(why, "invalid reason");
		return -1;
	}
	clen = strnlen(in->class, sizeof(in->class));
	rlen = strnlen(in->reply, sizeof(in->reply));
	if (clen > SUPPRESS_CLASS_MAX || rlen > QSTORE_REPLY_MAX ||
	    memchr(in->class, '\0', sizeof(in->class)) == NULL ||
	    memchr(in->reply, '\0', sizeof(in->reply)) == NULL) {
		if (why)
			vbuf_setf(why, "class or reply too long");
		return -1;
	}
	if (in->since < 0 || in->expires < 0) {
		if (why)
			vbuf_setf(why, "invalid time");
		return -1;
	}
	since = in->since != 0 ? in->since : now;
	k.mv_size = suppress_key(key, addr, scope);
	k.mv_data = key;
	rc = mdb_get(txn, s->md.dbi, &k, &v);
	if (rc == 0 && suppress_head(&v, &osince, &oexpires, &oreason) == 0 &&
	    suppress_in_force(oexpires, now)) {
		/* A bounce never weakens what a person or a complaint said. */
		if ((in->reason == SUPPRESS_HARD_BOUNCE ||
		    in->reason == SUPPRESS_SOFT_BOUNCES) &&
		    (oreason == SUPPRESS_COMPLAINT ||
		    oreason == SUPPRESS_UNSUBSCRIBE ||
		    oreason == SUPPRESS_MANUAL))
			return 0;
		since = osince;
	} else if (rc != 0 && rc != MDB_NOTFOUND) {
		mdbdir_why(why, &s->md, "mdb_get", rc);
		return -1;
	}
	val[0] = SUPPRESS_VERSION;
	val[1] = (unsigned char)in->reason;
	suppress_put64(val + 2, since);
	suppress_put64(val + 10, in->expires);
	off = SUPPRESS_HEAD;
	val[off++] = (unsigned char)clen;
	memcpy(val + off, in->class, clen);
	off += clen;
	val[off++] = (unsigned char)(rlen >> 8);
	val[off++] = (unsigned char)(rlen & 0xff);
	memcpy(val + off, in->reply, rlen);
	off += rlen;
	v.mv_data = val;
	v.mv_size = off;
	if ((rc = mdb_put(txn, s->md.dbi, &k, &v, 0)) != 0) {
		mdbdir_why(why, &s->md, "mdb_put", rc);
		return -1;
	}
	return 0;
}

int
suppress_add(struct suppress *s, const struct suppress_entry *e,
    struct vbuf *why)
{
	MDB_txn *txn;

	if (s->batch != NULL)
		return suppress_batch_add(s, e, why);
	if (suppress_writer(s, why) == -1 ||
	    mdbdir_begin(&s->md, 0, &txn, why) != 1)
		return -1;
	if (suppress_add_txn(s, txn, e, (int64_t)time(NULL), why) == -1) {
		mdb_txn_abort(txn);
		return -1;
	}
	return suppress_commit(s, txn, why);
}

int
suppress_batch_begin(struct suppress *s, struct vbuf *why)
{
	if (s->batch != NULL) {
		if (why)
			vbuf_setf(why, "a batch is already open");
		return -1;
	}
	if (suppress_writer(s, why) == -1 ||
	    mdbdir_begin(&s->md, 0, &s->batch, why) != 1) {
		s->batch = NULL;
		return -1;
	}
	return 0;
}

int
suppress_batch_add(struct suppress *s, const struct suppress_entry *e,
    struct vbuf *why)
{
	if (s->batch == NULL) {
		if (why)
			vbuf_setf(why, "no batch is open");
		return -1;
	}
	return suppress_add_txn(s, s->batch, e, (int64_t)time(NULL), why);
}

int
suppress_batch_commit(struct suppress *s, struct vbuf *why)
{
	MDB_txn *txn;

	if (s->batch == NULL) {
		if (why)
			vbuf_setf(why, "no batch is open");
		return -1;
	}
	txn = s->batch;
	s->batch = NULL;
	return suppress_commit(s, txn, why);
}

void
suppress_batch_abort(struct suppress *s)
{
	if (s->batch != NULL)
		mdb_txn_abort(s->batch);
	s->batch = NULL;
}

int
suppress_del(struct suppress *s, const char *address, const char *scope,
    struct vbuf *why)
{
	unsigned char key[SUPPRESS_KEY_MAX];
	char addr[QSTORE_ADDR_MAX + 1], sc[SUPPRESS_SCOPE_MAX + 1];
	MDB_txn *txn;
	MDB_val k;
	size_t plen;
	int rc, n = 0;

	if (suppress_address_norm(address, addr, sizeof(addr)) == -1) {
		if (why)
			vbuf_setf(why, "invalid address");
		return -1;
	}
	if (scope != NULL &&
	    suppress_scope_norm(scope, sc, sizeof(sc)) == -1) {
		if (why)
			vbuf_setf(why, "invalid domain");
		return -1;
	}
	if (suppress_writer(s, why) == -1 ||
	    mdbdir_begin(&s->md, 0, &txn, why) != 1)
		return -1;
	if (scope != NULL) {
		k.mv_size = suppress_key(key, addr, sc);
		k.mv_data = key;
		rc = mdb_del(txn, s->md.dbi, &k, NULL);
		if (rc == 0)
			n = 1;
		else if (rc != MDB_NOTFOUND)
			goto fail;
	} else {
		plen = suppress_key(key, addr, "");
		if ((rc = suppress_del_prefix(txn, s->md.dbi, key, plen,
		    &n)) != 0)
			goto fail;
	}
	return suppress_commit(s, txn, why) == -1 ? -1 : n;
fail:
	mdb_txn_abort(txn);
	mdbdir_why(why, &s->md, "delete in", rc);
	return -1;
}

int
suppress_soft_bounce(struct suppress *s, const char *address,
    const char *qid, const char *class, const char *reply, int64_t now,
    unsigned limit, int64_t window, int64_t ttl, struct vbuf *why)
{
	unsigned char key[SUPPRESS_KEY_MAX + SUPPRESS_QID_MAX], when[8];
	char addr[QSTORE_ADDR_MAX + 1];
	struct suppress_entry *e;
	MDB_txn *txn;
	MDB_cursor *cur;
	MDB_val k, v;
	size_t alen, qlen;
	unsigned count = 0;
	int rc, ret = 0;

	if (suppress_address_norm(address, addr, sizeof(addr)) == -1) {
		if (why)
			vbuf_setf(why, "invalid address");
		return -1;
	}
	qlen = strlen(qid);
	if (qlen == 0 || qlen > SUPPRESS_QID_MAX ||
	    memchr(qid, '\0', qlen) != NULL) {
		if (why)
			vbuf_setf(why, "invalid queue id");
		return -1;
	}
	if (suppress_writer(s, why) == -1 || suppress_soft_dbi(s,
	    why) == -1 || mdbdir_begin(&s->md, 0, &txn, why) != 1)
		return -1;
	/* 1. Record this message's bounce (once per message). */
	alen = strlen(addr);
	memcpy(key, addr, alen + 1);
	memcpy(key + alen + 1, qid, qlen);
	k.mv_data = key;
	k.mv_size = alen + 1 + qlen;
	suppress_put64(when, now);
	v.mv_data = when;
	v.mv_size = sizeof(when);
	if ((rc = mdb_put(txn, s->soft, &k, &v, 0)) != 0)
		goto fail;
	/* 2. Count the address's messages within the window; drop older. */
	if ((rc = mdb_cursor_open(txn, s->soft, &cur)) != 0)
		goto fail;
	k.mv_data = key;
	k.mv_size = alen + 1;
	for (rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE); rc == 0;
	    rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
		if (k.mv_size <= alen + 1 ||
		    memcmp(k.mv_data, key, alen + 1) != 0)
			break;
		if (v.mv_size == 8 && suppress_get64(v.mv_data) > now - window)
			count++;
		else if ((rc = mdb_cursor_del(cur, 0)) != 0)
			break;
	}
	mdb_cursor_close(cur);
	if (rc != 0 && rc != MDB_NOTFOUND)
		goto fail;
	/* 3. Enough: suppress for every sending domain, clear the history. */
	if (limit > 0 && count >= limit) {
		e = xcalloc(1, sizeof(*e));
		memcpy(e->address, addr, alen + 1);
		e->reason = SUPPRESS_SOFT_BOUNCES;
		if (class != NULL)
			(void)snprintf(e->class, sizeof(e->class), "%s", class);
		if (reply != NULL)
			(void)snprintf(e->reply, sizeof(e->reply), "%s", reply);
		e->since = now;
		e->expires = ttl > 0 ? now + ttl : 0;
		rc = suppress_add_txn(s, txn, e, now, why);
		free(e);
		if (rc == -1) {
			mdb_txn_abort(txn);
			return -1;
		}
		if ((rc = suppress_del_prefix(txn, s->soft, key, alen + 1,
		    NULL)) != 0)
			goto fail;
		ret = 1;
	}
	return suppress_commit(s, txn, why) == -1 ? -1 : ret;
fail:
	mdb_txn_abort(txn);
	mdbdir_why(why, &s->md, "soft bounce in", rc);
	return -1;
}

/*
 * One bounded pass of prune over database which (0 entries, 1 soft),
 * resuming at the saved key. Returns how many were deleted, -1 (why).
 */
static int
suppress_prune_db(struct suppress *s, MDB_txn *txn, int which, int64_t now,
    int64_t soft_window, struct vbuf *why)
{
	MDB_cursor *cur;
	MDB_val k, v;
	int64_t since, expires;
	size_t seen = 0;
	int rc, reason, n = 0, old;

	if ((rc = mdb_cursor_open(txn, which == 0 ? s->md.dbi : s->soft,
	    &cur)) != 0) {
		mdbdir_why(why, &s->md, "mdb_cursor_open", rc);
		return -1;
	}
	if (s->prune_len[which] > 0) {
		k.mv_data = s->prune_key[which];
		k.mv_size = s->prune_len[which];
		rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
	} else
		rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST);
	while (rc == 0 && seen++ < SUPPRESS_PRUNE_BATCH) {
		if (which == 0)
			old = suppress_head(&v, &since, &expires,
			    &reason) == 0 && !suppress_in_force(expires, now);
		else
			old = v.mv_size != 8 ||
			    suppress_get64(v.mv_data) <= now - soft_window;
		if (old) {
			if ((rc = mdb_cursor_del(cur, 0)) != 0)
				break;
			n++;
		}
		/* After a delete, MDB_NEXT gives the record that followed. */
		rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
	}
	if (rc == 0 && k.mv_size <= sizeof(s->prune_key[which])) {
		/* Stopped at the batch's end: resume at this key next time. */
		memcpy(s->prune_key[which], k.mv_data, k.mv_size);
		s->prune_len[which] = k.mv_size;
	} else
		s->prune_len[which] = 0;	/* the end: start over */
	mdb_cursor_close(cur);
	if (rc != 0 && rc != MDB_NOTFOUND) {
		mdbdir_why(why, &s->md, "prune", rc);
		return -1;
	}
	return n;
}

int
suppress_prune(struct suppress *s, int64_t now, int64_t soft_window,
    struct vbuf *why)
{
	MDB_txn *txn;
	int a, b;

	if (suppress_writer(s, why) == -1 || suppress_soft_dbi(s,
	    why) == -1 || mdbdir_begin(&s->md, 0, &txn, why) != 1)
		return -1;
	if ((a = suppress_prune_db(s, txn, 0, now, soft_window, why)) == -1 ||
	    (b = suppress_prune_db(s, txn, 1, now, soft_window, why)) == -1) {
		mdb_txn_abort(txn);
		s->prune_len[0] = s->prune_len[1] = 0;
		return -1;
	}
	return suppress_commit(s, txn, why) == -1 ? -1 : a + b;
}

void
suppress_entry_reply(const struct suppress_entry *e, const char *address,
    char *buf, size_t size)
{
	struct tm tm;
	time_t since = (time_t)e->since;
	char day[16];

	if (gmtime_r(&since, &tm) == NULL ||
	    strftime(day, sizeof(day), "%Y-%m-%d", &tm) == 0)
		snprintf(day, sizeof(day), "?");
	snprintf(buf, size, "<%s>: Recipient address suppressed (%s, since %s)",
	    address, suppress_reason_words(e->reason), day);
}
