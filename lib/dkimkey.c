/*
 * dkimkey.c - sending domains and their DKIM keys (see dkimkey.h and
 * relayctl(8)).
 *
 * The registry is an LMDB environment written by relayctl as mail_owner
 * and read by smtp and smtpd; each call runs one short transaction, so a
 * long-running process sees domains and rotations made later. Private keys
 * are PEM files, readable only by root and the dkim.group group that smtp
 * alone is given; this file reads them. relayctl generates and writes
 * them (relayctl/relayctl_dkimgen.c) under the paths dkimkey_key_path
 * gives.
 */
#include <sys/stat.h>
#include <sys/types.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <lmdb.h>
#include <openssl/crypto.h>

#include "attr.h"
#include "dkimkey.h"
#include "idna.h"
#include "mdbdir.h"
#include "parse.h"
#include "smtpcmd.h"
#include "xalloc.h"

#define DKIMKEY_MAXDBS		2

struct dkimkey_db {
	struct mdbdir	 md;		/* <queue_directory>/domains */
};

static time_t	dkimkey_real_now(void);
static int	dkimkey_store(struct dkimkey_db *, MDB_txn *, const char *,
		    const struct dkimkey_domain *, struct vbuf *);
static int	dkimkey_get_txn(struct dkimkey_db *, MDB_txn *, const char *,
		    struct dkimkey_domain *, struct vbuf *);

static time_t	(*dkimkey_now)(void) = dkimkey_real_now;

static time_t
dkimkey_real_now(void)
{
	return time(NULL);
}

void
dkimkey_set_clock(time_t (*now)(void))
{
	dkimkey_now = now != NULL ? now : dkimkey_real_now;
}

/* Names. */

int
dkimkey_domain_norm(const char *in, char *out, size_t size)
{
	size_t i, n = strlen(in);

	if (n == 0 || n > SMTP_DOMAIN_MAX || n >= size ||
	    size > 0x7fffffff)
		return -1;
	/*
	 * d= is an A-label (RFC 6376 3.5): a name given in U-labels, as an
	 * SMTPUTF8 sender's may be, is looked up in its A-label form.
	 */
	if (idna_domain_ascii(in, out, size) == -1)
		return -1;
	n = strlen(out);
	for (i = 0; i < n; i++)
		if ((unsigned char)out[i] >= 0x80)
			return -1;
	if (out[0] == '[' || !smtpcmd_domain_ok(out) ||
	    strchr(out, '.') == NULL)
		return -1;
	return 0;
}

int
dkimkey_selector_ok(const char *s)
{
	size_t i, label = 0, n = strlen(s);

	if (n == 0 || n > DKIMKEY_SELECTOR_MAX)
		return 0;
	for (i = 0; i < n; i++) {
		if (s[i] == '.') {
			if (label == 0 || s[i - 1] == '-')
				return 0;
			label = 0;
		} else if ((s[i] >= 'a' && s[i] <= 'z') ||
		    (s[i] >= '0' && s[i] <= '9') || (s[i] == '-' && label > 0))
			label++;
		else
			return 0;
	}
	return label > 0 && s[n - 1] != '-';
}

const char *
dkimkey_alg_name(enum dkimkey_alg alg)
{
	return alg == DKIMKEY_ED25519_SHA256 ? DKIMKEY_ALG_ED25519 :
	    DKIMKEY_ALG_RSA;
}

int
dkimkey_alg_parse(const char *s, enum dkimkey_alg *alg)
{
	if (strcmp(s, DKIMKEY_ALG_RSA) == 0)
		*alg = DKIMKEY_RSA_SHA256;
	else if (strcmp(s, DKIMKEY_ALG_ED25519) == 0)
		*alg = DKIMKEY_ED25519_SHA256;
	else
		return -1;
	return 0;
}

/* The registry. */

struct dkimkey_db *
dkimkey_open(const struct cfg *cfg, int writable, struct vbuf *why)
{
	struct dkimkey_db *db;

	db = xcalloc(1, sizeof(*db));
	if (mdbdir_init(&db->md, cfg, DKIMKEY_DIR, DKIMKEY_DB_DOMAINS,
	    DKIMKEY_MAP_SIZE, DKIMKEY_MAXDBS, writable, "domain registry",
	    why) == -1 || mdbdir_attach(&db->md, why) == -1) {
		dkimkey_close(db);
		return NULL;
	}
	return db;
}

void
dkimkey_close(struct dkimkey_db *db)
{
	if (db == NULL)
		return;
	mdbdir_release(&db->md);
	free(db);
}

void
dkimkey_domain_release(struct dkimkey_domain *d)
{
	if (d == NULL)
		return;
	free(d->sels);
	memset(d, 0, sizeof(*d));
}

int
dkimkey_domain_decode(const char *domain, const void *buf, size_t len,
    struct dkimkey_domain *out, struct vbuf *why)
{
	struct attr_list al;
	struct dkimkey_selector *cur = NULL;
	const char *name, *v, *bad = NULL;
	uint64_t u;
	size_t used, i;
	int64_t t;

	memset(out, 0, sizeof(*out));
	if (strlen(domain) >= sizeof(out->name)) {
		if (why)
			vbuf_setf(why, "domain name too long");
		return -1;
	}
	memcpy(out->name, domain, strlen(domain) + 1);
	attr_list_init(&al);
	if (attr_decode(&al, buf, len, &used, NULL) != 1 || used != len) {
		bad = "record";
		goto done;
	}
	for (i = 0; i < al.count && bad == NULL; i++) {
		name = al.items[i].name;
		v = al.items[i].value;
		if (strcmp(name, DKIMKEY_ATTR_CREATED) == 0) {
			if (parse_i64(v, INT64_MIN, INT64_MAX, &t) == -1)
				bad = name;
			else
				out->created = t;
		} else if (strcmp(name, DKIMKEY_ATTR_SELECTOR) == 0) {
			if (out->nsels == DKIMKEY_SELECTORS_MAX ||
			    !dkimkey_selector_ok(v)) {
				bad = name;
				continue;
			}
			out->sels = xreallocarray(out->sels, out->nsels + 1,
			    sizeof(*out->sels));
			cur = &out->sels[out->nsels++];
			memset(cur, 0, sizeof(*cur));
			cur->active_from = -1;
			cur->alg = (enum dkimkey_alg)-1;
			memcpy(cur->name, v, strlen(v) + 1);
		} else if (cur == NULL)
			continue;
		else if (strcmp(name, DKIMKEY_ATTR_ALG) == 0) {
			if (dkimkey_alg_parse(v, &cur->alg) == -1)
				bad = name;
		} else if (strcmp(name, DKIMKEY_ATTR_BITS) == 0) {
			if (parse_u64(v, 0, 16384, &u) == -1)
				bad = name;
			else
				cur->bits = (unsigned)u;
		} else if (strcmp(name, DKIMKEY_ATTR_ACTIVE) == 0) {
			if (parse_i64(v, 0, INT64_MAX, &t) == -1)
				bad = name;
			else
				cur->active_from = t;
		}
	}
	for (i = 0; i < out->nsels && bad == NULL; i++)
		if (out->sels[i].active_from < 0 ||
		    (out->sels[i].alg != DKIMKEY_RSA_SHA256 &&
		    out->sels[i].alg != DKIMKEY_ED25519_SHA256))
			bad = "selector group";
done:
	attr_list_release(&al);
	if (bad != NULL) {
		if (why)
			vbuf_setf(why, "domain %s: corrupt record (bad %s)",
			    domain, bad);
		dkimkey_domain_release(out);
		return -1;
	}
	return 0;
}

void
dkimkey_domain_encode(const struct dkimkey_domain *d, struct vbuf *rec)
{
	size_t i;

	attr_put_int(rec, DKIMKEY_ATTR_CREATED, d->created);
	for (i = 0; i < d->nsels; i++) {
		attr_put_str(rec, DKIMKEY_ATTR_SELECTOR, d->sels[i].name);
		attr_put_str(rec, DKIMKEY_ATTR_ALG,
		    dkimkey_alg_name(d->sels[i].alg));
		attr_put_num(rec, DKIMKEY_ATTR_BITS, d->sels[i].bits);
		attr_put_int(rec, DKIMKEY_ATTR_ACTIVE, d->sels[i].active_from);
	}
	attr_end(rec);
}

/*
 * Stores d under domain (or deletes the domain when d is NULL) and
 * commits; the transaction ends either way. Returns 0, or -1 with why.
 */
static int
dkimkey_store(struct dkimkey_db *db, MDB_txn *txn, const char *domain,
    const struct dkimkey_domain *d, struct vbuf *why)
{
	struct vbuf rec;
	MDB_val key, val;
	int rc;

	key.mv_data = (void *)domain;
	key.mv_size = strlen(domain);
	vbuf_init(&rec, 0);
	if (d == NULL)
		rc = mdb_del(txn, db->md.dbi, &key, NULL);
	else {
		dkimkey_domain_encode(d, &rec);
		val.mv_data = rec.data;
		val.mv_size = rec.len;
		rc = mdb_put(txn, db->md.dbi, &key, &val, 0);
	}
	vbuf_release(&rec);
	if (rc != 0) {
		mdb_txn_abort(txn);
		mdbdir_why(why, &db->md, "write to", rc);
		return -1;
	}
	if ((rc = mdb_txn_commit(txn)) != 0) {
		mdbdir_why(why, &db->md, "commit to", rc);
		return -1;
	}
	return 0;
}

static int
dkimkey_get_txn(struct dkimkey_db *db, MDB_txn *txn, const char *domain,
    struct dkimkey_domain *out, struct vbuf *why)
{
	MDB_val key, val;
	int rc;

	memset(out, 0, sizeof(*out));
	key.mv_data = (void *)domain;
	key.mv_size = strlen(domain);
	if ((rc = mdb_get(txn, db->md.dbi, &key, &val)) == MDB_NOTFOUND)
		return 0;
	if (rc != 0) {
		mdbdir_why(why, &db->md, "read", rc);
		return -1;
	}
	return dkimkey_domain_decode(domain, val.mv_data, val.mv_size, out,
	    why) == 0 ? 1 : -1;
}

int
dkimkey_domain_get(struct dkimkey_db *db, const char *domain,
    struct dkimkey_domain *out, struct vbuf *why)
{
	MDB_txn *txn;
	int rc;

	memset(out, 0, sizeof(*out));
	if ((rc = mdbdir_begin(&db->md, MDB_RDONLY, &txn, why)) <= 0)
		return rc;
	rc = dkimkey_get_txn(db, txn, domain, out, why);
	mdb_txn_abort(txn);
	return rc;
}

int
dkimkey_domain_covered(struct dkimkey_db *db, const char *domain,
    char *found, size_t size, struct vbuf *why)
{
	char norm[SMTP_DOMAIN_MAX + 1];
	const char *d;
	MDB_txn *txn;
	MDB_val key, val;
	int rc, ret = 0;

	if (dkimkey_domain_norm(domain, norm, sizeof(norm)) == -1)
		return 0;
	if ((rc = mdbdir_begin(&db->md, MDB_RDONLY, &txn, why)) <= 0)
		return rc;
	/* The domain, then each parent that still has two labels. */
	for (d = norm; d != NULL && strchr(d, '.') != NULL;
	    d = strchr(d, '.') != NULL ? strchr(d, '.') + 1 : NULL) {
		key.mv_data = (void *)d;
		key.mv_size = strlen(d);
		rc = mdb_get(txn, db->md.dbi, &key, &val);
		if (rc == 0) {
			if (found != NULL && size > strlen(d))
				memcpy(found, d, strlen(d) + 1);
			ret = 1;
			break;
		}
		if (rc != MDB_NOTFOUND) {
			mdbdir_why(why, &db->md, "read", rc);
			ret = -1;
			break;
		}
	}
	mdb_txn_abort(txn);
	return ret;
}

int
dkimkey_selector_add(struct dkimkey_db *db, const char *domain,
    const struct dkimkey_selector *sel, int must_be_new, struct vbuf *why)
{
	struct dkimkey_domain d;
	MDB_txn *txn;
	size_t i;
	int rc, ret = -1;

	if (!db->md.writable) {
		if (why)
			vbuf_setf(why, "domain registry opened read-only");
		return -1;
	}
	if (!dkimkey_selector_ok(sel->name)) {
		if (why)
			vbuf_setf(why, "invalid selector");
		return -1;
	}
	if (mdbdir_begin(&db->md, 0, &txn, why) <= 0)
		return -1;
	if ((rc = dkimkey_get_txn(db, txn, domain, &d, why)) == -1)
		goto abort;
	if (rc == 1 && must_be_new) {
		if (why)
			vbuf_setf(why, "domain %s is already registered "
			    "(use rotate to add a key)", domain);
		goto abort;
	}
	if (rc == 0) {
		if (strlen(domain) >= sizeof(d.name)) {
			if (why)
				vbuf_setf(why, "domain name too long");
			goto abort;
		}
		memcpy(d.name, domain, strlen(domain) + 1);
		d.created = (int64_t)dkimkey_now();
	}
	for (i = 0; i < d.nsels; i++)
		if (strcmp(d.sels[i].name, sel->name) == 0) {
			if (why)
				vbuf_setf(why, "domain %s already has selector "
				    "%s", domain, sel->name);
			goto abort;
		}
	if (d.nsels == DKIMKEY_SELECTORS_MAX) {
		if (why)
			vbuf_setf(why, "domain %s has %d selectors: delete "
			    "old ones first", domain, DKIMKEY_SELECTORS_MAX);
		goto abort;
	}
	d.sels = xreallocarray(d.sels, d.nsels + 1, sizeof(*d.sels));
	d.sels[d.nsels++] = *sel;
	ret = dkimkey_store(db, txn, domain, &d, why);
	goto done;
abort:
	mdb_txn_abort(txn);
done:
	dkimkey_domain_release(&d);
	return ret;
}

int
dkimkey_selector_del(struct dkimkey_db *db, const char *domain,
    const char *selector, struct vbuf *why)
{
	struct dkimkey_domain d;
	MDB_txn *txn;
	size_t i;
	int rc, ret = -1;

	if (!db->md.writable) {
		if (why)
			vbuf_setf(why, "domain registry opened read-only");
		return -1;
	}
	if (mdbdir_begin(&db->md, 0, &txn, why) <= 0)
		return -1;
	if ((rc = dkimkey_get_txn(db, txn, domain, &d, why)) <= 0) {
		if (rc == 0 && why)
			vbuf_setf(why, "no such domain %s", domain);
		ret = rc;
		goto abort;
	}
	if (selector != NULL) {
		for (i = 0; i < d.nsels; i++)
			if (strcmp(d.sels[i].name, selector) == 0)
				break;
		if (i == d.nsels) {
			if (why)
				vbuf_setf(why, "domain %s has no selector %s",
				    domain, selector);
			ret = 0;
			goto abort;
		}
		memmove(&d.sels[i], &d.sels[i + 1],
		    (d.nsels - i - 1) * sizeof(*d.sels));
		d.nsels--;
	}
	ret = dkimkey_store(db, txn, domain, selector == NULL ? NULL : &d,
	    why) == 0 ? 1 : -1;
	goto done;
abort:
	mdb_txn_abort(txn);
done:
	dkimkey_domain_release(&d);
	return ret;
}

int
dkimkey_domain_walk(struct dkimkey_db *db,
    int (*cb)(const struct dkimkey_domain *, void *), void *arg,
    struct vbuf *why)
{
	char name[SMTP_DOMAIN_MAX + 1];
	struct dkimkey_domain d;
	MDB_cursor *cur;
	MDB_txn *txn;
	MDB_val key, val;
	int rc, op, stop;

	if ((rc = mdbdir_cursor(&db->md, &txn, &cur, why)) <= 0)
		return rc;
	for (op = MDB_FIRST; (rc = mdb_cursor_get(cur, &key, &val,
	    op)) == 0; op = MDB_NEXT) {
		if (key.mv_size == 0 || key.mv_size > SMTP_DOMAIN_MAX)
			continue;
		memcpy(name, key.mv_data, key.mv_size);
		name[key.mv_size] = '\0';
		if (dkimkey_domain_decode(name, val.mv_data, val.mv_size, &d,
		    why) == -1) {
			rc = -1;
			break;
		}
		stop = cb(&d, arg);
		dkimkey_domain_release(&d);
		if (stop) {
			rc = MDB_NOTFOUND;
			break;
		}
	}
	mdb_cursor_close(cur);
	mdb_txn_abort(txn);
	if (rc == -1)
		return -1;
	if (rc != MDB_NOTFOUND) {
		mdbdir_why(why, &db->md, "read", rc);
		return -1;
	}
	return 0;
}

int
dkimkey_active(const struct dkimkey_domain *d, time_t now)
{
	size_t i;
	int best = -1;

	for (i = 0; i < d->nsels; i++) {
		if (d->sels[i].active_from > (int64_t)now)
			continue;
		if (best == -1 ||
		    d->sels[i].active_from >= d->sels[best].active_from)
			best = (int)i;
	}
	return best;
}

/* Signing lookup (smtp). */

int
dkimkey_signing_lookup(const struct cfg *cfg, const char *from_domain,
    time_t now, struct dkimkey_signing *out, struct vbuf *why)
{
	struct dkimkey_db *db;
	int rc;

	memset(out, 0, sizeof(*out));
	if ((db = dkimkey_open(cfg, 0, why)) == NULL)
		return -1;
	rc = dkimkey_signing_find(db, cfg, from_domain, now, out, why);
	dkimkey_close(db);
	return rc;
}

int
dkimkey_signing_select(struct dkimkey_db *db, const char *from_domain,
    time_t now, struct dkimkey_signing *out, struct vbuf *why)
{
	char norm[SMTP_DOMAIN_MAX + 1];
	struct dkimkey_domain d;
	const char *p;
	int rc, idx;

	memset(out, 0, sizeof(*out));
	if (dkimkey_domain_norm(from_domain, norm, sizeof(norm)) == -1)
		return 0;
	memset(&d, 0, sizeof(d));
	rc = 0;
	for (p = norm; p != NULL && strchr(p, '.') != NULL;
	    p = strchr(p, '.') + 1) {
		if ((rc = dkimkey_domain_get(db, p, &d, why)) != 0)
			break;
	}
	if (rc <= 0)
		return rc;
	/* The closest registered domain decides, even with no key active. */
	if ((idx = dkimkey_active(&d, now)) == -1) {
		dkimkey_domain_release(&d);
		return 0;
	}
	memcpy(out->domain, d.name, strlen(d.name) + 1);
	memcpy(out->selector, d.sels[idx].name,
	    strlen(d.sels[idx].name) + 1);
	out->alg = d.sels[idx].alg;
	dkimkey_domain_release(&d);
	return 1;
}

int
dkimkey_signing_find(struct dkimkey_db *db, const struct cfg *cfg,
    const char *from_domain, time_t now, struct dkimkey_signing *out,
    struct vbuf *why)
{
	struct vbuf pem;
	int rc;

	if ((rc = dkimkey_signing_select(db, from_domain, now, out, why)) <= 0)
		return rc;
	vbuf_init(&pem, 0);
	if (dkimkey_key_read(cfg, out->domain, out->selector, &pem,
	    why) == -1) {
		vbuf_wipe(&pem);
		vbuf_release(&pem);
		memset(out, 0, sizeof(*out));
		return -1;
	}
	out->pem = pem.data;		/* ownership passes to out */
	out->pem_len = pem.len;
	return 1;
}

void
dkimkey_signing_free(struct dkimkey_signing *s)
{
	if (s == NULL)
		return;
	if (s->pem != NULL) {
		OPENSSL_cleanse(s->pem, s->pem_len);
		free(s->pem);
	}
	memset(s, 0, sizeof(*s));
}

/* Key files. */

int
dkimkey_key_path(const struct cfg *cfg, const char *domain,
    const char *selector, struct vbuf *path, struct vbuf *why)
{
	char norm[SMTP_DOMAIN_MAX + 1];

	if (cfg->dkim_key_directory == NULL ||
	    cfg->dkim_key_directory[0] == '\0') {
		if (why)
			vbuf_setf(why, "dkim.key_directory is not set");
		return -1;
	}
	/* Both are checked again here: they become path components. */
	if ((domain != NULL && (dkimkey_domain_norm(domain, norm,
	    sizeof(norm)) == -1 || strcmp(norm, domain) != 0)) ||
	    (selector != NULL && !dkimkey_selector_ok(selector))) {
		if (why)
			vbuf_setf(why, "invalid domain or selector");
		return -1;
	}
	vbuf_reset(path);
	(void)vbuf_adds(path, cfg->dkim_key_directory);
	if (domain != NULL)
		(void)vbuf_addf(path, "/%s", domain);
	if (selector != NULL)
		(void)vbuf_addf(path, "/%s.pem", selector);
	return 0;
}

int
dkimkey_key_stat(const struct cfg *cfg, const char *domain,
    const char *selector, struct dkimkey_key_id *id, struct vbuf *why)
{
	struct vbuf path;
	struct stat st;
	int ret = -1;

	memset(id, 0, sizeof(*id));
	vbuf_init(&path, 0);
	if (dkimkey_key_path(cfg, domain, selector, &path, why) == -1)
		goto done;
	/* lstat: dkimkey_key_read refuses a link (O_NOFOLLOW) too. */
	if (lstat(path.data, &st) == -1) {
		if (why)
			vbuf_setf(why, "stat %s: %s", path.data,
			    strerror(errno));
		goto done;
	}
	if (!S_ISREG(st.st_mode)) {
		if (why)
			vbuf_setf(why, "%s: not a regular file", path.data);
		goto done;
	}
	id->dev = (uint64_t)st.st_dev;
	id->ino = (uint64_t)st.st_ino;
	id->size = (int64_t)st.st_size;
	id->mtime_ns = (int64_t)st.st_mtim.tv_sec * 1000000000 +
	    st.st_mtim.tv_nsec;
	id->ctime_ns = (int64_t)st.st_ctim.tv_sec * 1000000000 +
	    st.st_ctim.tv_nsec;
	ret = 0;
done:
	vbuf_release(&path);
	return ret;
}

int
dkimkey_key_id_eq(const struct dkimkey_key_id *a,
    const struct dkimkey_key_id *b)
{
	return a->dev == b->dev && a->ino == b->ino && a->size == b->size &&
	    a->mtime_ns == b->mtime_ns && a->ctime_ns == b->ctime_ns;
}

int
dkimkey_key_read(const struct cfg *cfg, const char *domain,
    const char *selector, struct vbuf *pem, struct vbuf *why)
{
	struct vbuf path;
	struct stat st;
	char buf[4096];
	ssize_t n;
	int fd, ret = -1;

	vbuf_init(&path, 0);
	if (dkimkey_key_path(cfg, domain, selector, &path, why) == -1)
		goto done;
	if ((fd = open(path.data, O_RDONLY | O_NOFOLLOW | O_CLOEXEC)) == -1) {
		if (why)
			vbuf_setf(why, "open %s: %s", path.data,
			    strerror(errno));
		goto done;
	}
	if (fstat(fd, &st) == -1 || !S_ISREG(st.st_mode) ||
	    st.st_size > DKIMKEY_PEM_MAX) {
		if (why)
			vbuf_setf(why, "%s: not a regular file of at most %d "
			    "bytes", path.data, DKIMKEY_PEM_MAX);
		(void)close(fd);
		goto done;
	}
	vbuf_wipe(pem);
	for (;;) {
		if ((n = read(fd, buf, sizeof(buf))) == -1 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		if (pem->len + (size_t)n > DKIMKEY_PEM_MAX) {
			n = -1;
			errno = EFBIG;
			break;
		}
		(void)vbuf_add(pem, buf, (size_t)n);
	}
	OPENSSL_cleanse(buf, sizeof(buf));
	(void)close(fd);
	if (n < 0 || pem->len == 0) {
		if (why)
			vbuf_setf(why, "read %s: %s", path.data,
			    n < 0 ? strerror(errno) : "empty file");
		vbuf_wipe(pem);
		goto done;
	}
	ret = 0;
done:
	vbuf_release(&path);
	return ret;
}
