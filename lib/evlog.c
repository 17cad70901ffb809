/*
 * evlog.c - the searchable delivery log (see evlog.h for the layout).
 *
 * Crash safety: evlog_add puts a batch and its index entries in one LMDB
 * write transaction (synced at commit), so after a crash either all of
 * the batch is there or none; webhookd calls it before the outbox lets
 * the events go, and a repeated batch is skipped event by event (the ev
 * record's seq is the idempotence key, put with MDB_NOOVERWRITE). Prune
 * deletes an event's index entries and webhook notes in the same
 * transaction as the event, so no index entry outlives its event (and a
 * search skips one that would anyway).
 */
#include <sys/stat.h>

#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <lmdb.h>

#include "evlog.h"
#include "xalloc.h"

enum { IX_RCPT, IX_FROM, IX_MID, IX_QID, IX_USER, IX_N };
static const char *const ix_names[IX_N] = {
	"rcpt", "from", "mid", "qid", "user"
};
#define KEY_MAX		500	/* under LMDB's 511-byte key limit */
#define WH_MAX		64	/* webhook notes shown per event */
#define TXN_RETRY	2

struct evlog {
	MDB_env		*env;
	MDB_dbi		 ev, wh, ix[IX_N];
	char		*dir;
	uint64_t	 map_size;
	int		 writable;
	struct vbuf	 pack;
	struct outbox_scratch scr;
};

static void
be64_put(unsigned char *p, uint64_t v)
{
	int i;

	for (i = 7; i >= 0; i--) {
		p[i] = v & 0xff;
		v >>= 8;
	}
}

static uint64_t
be64_get(const unsigned char *p)
{
	uint64_t v = 0;
	int i;

	for (i = 0; i < 8; i++)
		v = (v << 8) | p[i];
	return v;
}

static void
lmdb_why(struct vbuf *why, const struct evlog *l, const char *op, int rc)
{
	if (why == NULL)
		return;
	if (rc == MDB_MAP_FULL)
		vbuf_setf(why, "delivery log %s full (log.map_size %llu MiB)",
		    l->dir, (unsigned long long)(l->map_size >> 20));
	else
		vbuf_setf(why, "%s %s: %s", op, l->dir, mdb_strerror(rc));
}

/*
 * The index key of s for index ix in buf (KEY_MAX + 1 bytes): lower-case,
 * Message-IDs without <>, the null sender as "<>". Returns its length;
 * 0 means "nothing to index".
 */
static size_t
ix_key(int ix, const char *s, char *buf)
{
	size_t n, i;

	if (s == NULL)
		return 0;
	if (ix == IX_FROM && s[0] == '\0')
		s = "<>";
	n = strlen(s);
	if (ix == IX_MID) {
		while (n > 0 && (*s == '<' || isspace((unsigned char)*s))) {
			s++;
			n--;
		}
		while (n > 0 && (s[n - 1] == '>' ||
		    isspace((unsigned char)s[n - 1])))
			n--;
	}
	if (n > KEY_MAX)
		n = KEY_MAX;
	for (i = 0; i < n; i++)
		buf[i] = tolower((unsigned char)s[i]);
	buf[n] = '\0';
	return n;
}

struct evlog *
evlog_open_dir(const char *dir, uint64_t map_size, int writable,
    struct vbuf *why)
{
	struct evlog *l;
	struct stat st;
	MDB_txn *txn;
	unsigned dflags, xflags;
	int rc, i;

	l = xcalloc(1, sizeof(*l));
	l->dir = xstrdup(dir);
	l->map_size = map_size;
	l->writable = writable != 0;
	vbuf_init(&l->pack, 0);
	outbox_scratch_init(&l->scr);
	if (writable && mkdir(dir, 0700) == -1 && errno != EEXIST) {
		if (why)
			vbuf_setf(why, "mkdir %s: %s", dir, strerror(errno));
		goto fail;
	}
	errno = 0;
	if (stat(dir, &st) == -1 || !S_ISDIR(st.st_mode)) {
		if (why)
			vbuf_setf(why, "no delivery log at %s (webhookd "
			    "writes it): %s", dir, errno == 0 ?
			    "not a directory" : strerror(errno));
		goto fail;
	}
	if ((rc = mdb_env_create(&l->env)) != 0) {
		l->env = NULL;
		lmdb_why(why, l, "mdb_env_create", rc);
		goto fail;
	}
	if ((rc = mdb_env_set_mapsize(l->env, map_size)) != 0 ||
	    (rc = mdb_env_set_maxdbs(l->env, IX_N + 2)) != 0 ||
	    (rc = mdb_env_open(l->env, dir, MDB_NOTLS |
	    (writable ? 0 : MDB_RDONLY), 0600)) != 0) {
		if (rc == ENOENT && why) {
			vbuf_setf(why, "no delivery log in %s yet (webhookd "
			    "writes it)", dir);
			goto fail;
		}
		lmdb_why(why, l, "open", rc);
		goto fail;
	}
	if (writable)
		(void)mdb_reader_check(l->env, NULL);
	if ((rc = mdb_txn_begin(l->env, NULL, writable ? 0 : MDB_RDONLY,
	    &txn)) != 0) {
		lmdb_why(why, l, "mdb_txn_begin", rc);
		goto fail;
	}
	xflags = writable ? MDB_CREATE : 0;
	dflags = MDB_DUPSORT | MDB_DUPFIXED | xflags;
	if ((rc = mdb_dbi_open(txn, "ev", xflags, &l->ev)) != 0 ||
	    (rc = mdb_dbi_open(txn, "wh", MDB_DUPSORT | xflags,
	    &l->wh)) != 0)
		goto dbfail;
	for (i = 0; i < IX_N; i++)
		if ((rc = mdb_dbi_open(txn, ix_names[i], dflags,
		    &l->ix[i])) != 0)
			goto dbfail;
	if ((rc = mdb_txn_commit(txn)) != 0) {
		lmdb_why(why, l, "mdb_txn_commit", rc);
		goto fail;
	}
	return l;
dbfail:
	mdb_txn_abort(txn);
	if (rc == MDB_NOTFOUND && why)
		vbuf_setf(why, "no delivery log in %s yet (webhookd writes "
		    "it)", dir);
	else
		lmdb_why(why, l, "open databases in", rc);
fail:
	evlog_close(l);
	return NULL;
}

struct evlog *
evlog_open(const struct cfg *cfg, int writable, struct vbuf *why)
{
	struct vbuf dir;
	struct evlog *l;

	if (cfg->queue_directory == NULL || cfg->queue_directory[0] == '\0') {
		if (why)
			vbuf_setf(why, "queue_directory is not set");
		return NULL;
	}
	vbuf_init(&dir, 0);
	(void)vbuf_addf(&dir, "%s/log", cfg->queue_directory);
	l = evlog_open_dir(dir.data, cfg->log_map_size, writable, why);
	vbuf_release(&dir);
	return l;
}

void
evlog_close(struct evlog *l)
{
	if (l == NULL)
		return;
	if (l->env)
		mdb_env_close(l->env);
	vbuf_release(&l->pack);
	outbox_scratch_release(&l->scr);
	free(l->dir);
	free(l);
}

/* Puts (or, del, deletes) every index entry of ev under seq. */
static int
ix_apply(struct evlog *l, MDB_txn *txn, const struct outbox_event *ev,
    const unsigned char sk[8], int del)
{
	char buf[KEY_MAX + 1];
	const char *one[1];
	const char *const *rc;
	size_t nr, i, kl;
	MDB_val k, v;
	int r, ix;

	for (ix = 0; ix < IX_N; ix++) {
		const char *s = NULL;

		switch (ix) {
		case IX_RCPT:
			continue;
		case IX_FROM:
			s = ev->sender;
			break;
		case IX_MID:
			s = ev->message_id;
			break;
		case IX_QID:
			s = ev->qid[0] ? ev->qid : NULL;
			break;
		case IX_USER:
			s = ev->sasl_username;
			break;
		}
		if ((kl = ix_key(ix, s, buf)) == 0)
			continue;
		k.mv_data = buf;
		k.mv_size = kl;
		v.mv_data = (void *)sk;
		v.mv_size = 8;
		r = del ? mdb_del(txn, l->ix[ix], &k, &v) :
		    mdb_put(txn, l->ix[ix], &k, &v, 0);
		if (r != 0 && !(del && r == MDB_NOTFOUND))
			return r;
	}
	if (ev->recipient != NULL) {
		one[0] = ev->recipient;
		rc = one;
		nr = 1;
	} else {
		rc = ev->recipients;
		nr = ev->nrecipients;
	}
	for (i = 0; i < nr; i++) {
		if ((kl = ix_key(IX_RCPT, rc[i], buf)) == 0)
			continue;
		k.mv_data = buf;
		k.mv_size = kl;
		v.mv_data = (void *)sk;
		v.mv_size = 8;
		r = del ? mdb_del(txn, l->ix[IX_RCPT], &k, &v) :
		    mdb_put(txn, l->ix[IX_RCPT], &k, &v, 0);
		if (r != 0 && !(del && r == MDB_NOTFOUND))
			return r;
	}
	return 0;
}

int
evlog_add(struct evlog *l, const struct outbox_event *const *evs, size_t n,
    struct vbuf *why)
{
	unsigned char sk[8], *p;
	MDB_txn *txn;
	MDB_val k, v;
	size_t i;
	int rc, added = 0;

	if (!l->writable) {
		if (why)
			vbuf_setf(why, "delivery log opened read-only");
		return -1;
	}
	if ((rc = mdb_txn_begin(l->env, NULL, 0, &txn)) != 0) {
		lmdb_why(why, l, "mdb_txn_begin", rc);
		return -1;
	}
	for (i = 0; i < n; i++) {
		const struct outbox_event *ev = evs[i];

		be64_put(sk, ev->seq);
		outbox_pack(&l->pack, ev);
		k.mv_data = sk;
		k.mv_size = 8;
		v.mv_data = NULL;
		v.mv_size = 8 + l->pack.len;
		rc = mdb_put(txn, l->ev, &k, &v, MDB_NOOVERWRITE |
		    MDB_RESERVE);
		if (rc == MDB_KEYEXIST)
			continue;	/* a repeated batch: already indexed */
		if (rc != 0)
			goto fail;
		p = v.mv_data;
		be64_put(p, (uint64_t)ev->time_ms);
		memcpy(p + 8, l->pack.data, l->pack.len);
		if ((rc = ix_apply(l, txn, ev, sk, 0)) != 0)
			goto fail;
		added++;
	}
	if ((rc = mdb_txn_commit(txn)) != 0) {
		lmdb_why(why, l, "mdb_txn_commit", rc);
		return -1;
	}
	return added;
fail:
	mdb_txn_abort(txn);
	lmdb_why(why, l, "index event in", rc);
	return -1;
}

/* Puts one webhook note in txn. */
static int
wh_put(struct evlog *l, MDB_txn *txn, const struct evlog_note *nt)
{
	unsigned char sk[8], rec[8 + 4 + 32 + EVLOG_WH_ENDPOINT_MAX + 2];
	const char *outcome = nt->wh.outcome, *endpoint = nt->wh.endpoint;
	long st = nt->wh.http_status;
	size_t ol, el;
	MDB_val k, v;

	if (outcome == NULL)
		outcome = "";
	if (endpoint == NULL)
		endpoint = "";
	ol = strnlen(outcome, 31);
	el = strnlen(endpoint, EVLOG_WH_ENDPOINT_MAX);
	be64_put(rec, (uint64_t)nt->wh.time_ms);
	rec[8] = (st >> 24) & 0xff;
	rec[9] = (st >> 16) & 0xff;
	rec[10] = (st >> 8) & 0xff;
	rec[11] = st & 0xff;
	memcpy(rec + 12, outcome, ol);
	rec[12 + ol] = '\0';
	memcpy(rec + 13 + ol, endpoint, el);
	rec[13 + ol + el] = '\0';
	be64_put(sk, nt->seq);
	k.mv_data = sk;
	k.mv_size = 8;
	v.mv_data = rec;
	v.mv_size = 14 + ol + el;
	return mdb_put(txn, l->wh, &k, &v, 0);
}

int
evlog_webhooks(struct evlog *l, const struct evlog_note *nts, size_t n,
    struct vbuf *why)
{
	MDB_txn *txn;
	size_t i;
	int rc;

	if (n == 0)
		return 0;
	if ((rc = mdb_txn_begin(l->env, NULL, 0, &txn)) != 0) {
		lmdb_why(why, l, "mdb_txn_begin", rc);
		return -1;
	}
	for (i = 0; i < n; i++)
		if ((rc = wh_put(l, txn, &nts[i])) != 0) {
			mdb_txn_abort(txn);
			lmdb_why(why, l, "note webhook in", rc);
			return -1;
		}
	if ((rc = mdb_txn_commit(txn)) != 0) {
		lmdb_why(why, l, "mdb_txn_commit", rc);
		return -1;
	}
	return 0;
}

int
evlog_webhook(struct evlog *l, uint64_t seq, const char *endpoint,
    const char *outcome, long http_status, int64_t time_ms, struct vbuf *why)
{
	struct evlog_note nt;

	nt.seq = seq;
	nt.wh.time_ms = time_ms;
	nt.wh.http_status = http_status;
	nt.wh.outcome = outcome;
	nt.wh.endpoint = endpoint;
	return evlog_webhooks(l, &nt, 1, why);
}

/* Decodes an ev value; 0, or -1 if it is not one. */
static int
ev_decode(struct evlog *l, uint64_t seq, const MDB_val *v,
    struct outbox_event *ev)
{
	const unsigned char *p = v->mv_data;

	if (v->mv_size < 8)
		return -1;
	if (outbox_unpack(p + 8, v->mv_size - 8, seq, ev, &l->scr) == -1)
		return -1;
	return 0;
}

/* The webhook notes of seq into whs (at most WH_MAX); their number. */
static size_t
wh_load(struct evlog *l, MDB_txn *txn, uint64_t seq,
    struct evlog_webhook *whs)
{
	unsigned char sk[8];
	MDB_cursor *c;
	MDB_val k, v;
	size_t n = 0;
	int rc;

	if (mdb_cursor_open(txn, l->wh, &c) != 0)
		return 0;
	be64_put(sk, seq);
	k.mv_data = sk;
	k.mv_size = 8;
	for (rc = mdb_cursor_get(c, &k, &v, MDB_SET_KEY); rc == 0 &&
	    n < WH_MAX; rc = mdb_cursor_get(c, &k, &v, MDB_NEXT_DUP)) {
		const unsigned char *p = v.mv_data;
		const char *o, *e;

		if (v.mv_size < 14 || p[v.mv_size - 1] != '\0')
			continue;
		o = (const char *)p + 12;
		e = memchr(o, '\0', v.mv_size - 12);
		if (e == NULL || e + 1 >= (const char *)p + v.mv_size)
			continue;
		whs[n].time_ms = (int64_t)be64_get(p);
		whs[n].http_status = (long)(int32_t)(((uint32_t)p[8] << 24) |
		    ((uint32_t)p[9] << 16) | ((uint32_t)p[10] << 8) | p[11]);
		whs[n].outcome = o;
		whs[n].endpoint = e + 1;
		n++;
	}
	mdb_cursor_close(c);
	return n;
}

static int
eqci(const char *a, const char *b)
{
	return a != NULL && b != NULL && strcasecmp(a, b) == 0;
}

/* Message-IDs compare without brackets and case. */
static int
mid_eq(const char *a, const char *q)
{
	char ka[KEY_MAX + 1], kq[KEY_MAX + 1];

	if (a == NULL)
		return 0;
	ix_key(IX_MID, a, ka);
	ix_key(IX_MID, q, kq);
	return strcmp(ka, kq) == 0;
}

/* Whether ev matches every member of q (time aside). */
static int
ev_match(const struct outbox_event *ev, const struct evlog_query *q)
{
	size_t i;
	int hit;

	if (q->kind != 0 && ev->kind != q->kind)
		return 0;
	if (q->since_ms != 0 && ev->time_ms < q->since_ms)
		return 0;
	if (q->until_ms != 0 && ev->time_ms > q->until_ms)
		return 0;
	if (q->from != NULL) {
		const char *s = ev->sender;

		if (s != NULL && s[0] == '\0')
			s = "<>";
		if (!eqci(s, q->from))
			return 0;
	}
	if (q->message_id != NULL && !mid_eq(ev->message_id, q->message_id))
		return 0;
	if (q->queue_id != NULL && !eqci(ev->qid, q->queue_id))
		return 0;
	if (q->user != NULL && !eqci(ev->sasl_username, q->user))
		return 0;
	if (q->to != NULL) {
		hit = eqci(ev->recipient, q->to);
		for (i = 0; !hit && ev->recipient == NULL &&
		    i < ev->nrecipients; i++)
			hit = eqci(ev->recipients[i], q->to);
		if (!hit)
			return 0;
	}
	return 1;
}

/* Looks seq up, and calls cb if it matches. 1: cb stopped; 0; -1. */
struct walk {
	struct evlog		*l;
	MDB_txn			*txn;
	const struct evlog_query *q;
	evlog_cb		*cb;
	void			*arg;
	long			 given;
	int			 older;	/* set: past since by the slack */
};

static int
walk_one(struct walk *w, uint64_t seq, const MDB_val *val)
{
	struct evlog_webhook whs[WH_MAX];
	struct outbox_event ev;
	unsigned char sk[8];
	MDB_val k, v;
	size_t nwh;
	int64_t t;

	if (val == NULL) {
		be64_put(sk, seq);
		k.mv_data = sk;
		k.mv_size = 8;
		if (mdb_get(w->txn, w->l->ev, &k, &v) != 0)
			return 0;	/* index entry without event */
		val = &v;
	}
	if (val->mv_size < 8)
		return 0;
	t = (int64_t)be64_get(val->mv_data);
	if (w->q->since_ms != 0 && t < w->q->since_ms - EVLOG_TIME_SLACK_MS &&
	    !w->q->oldest_first) {
		w->older = 1;
		return 0;
	}
	if (w->q->until_ms != 0 && t > w->q->until_ms + EVLOG_TIME_SLACK_MS &&
	    w->q->oldest_first) {
		w->older = 1;	/* past the end, walking forwards */
		return 0;
	}
	if (w->q->until_ms != 0 && t > w->q->until_ms)
		return 0;
	if (ev_decode(w->l, seq, val, &ev) == -1 || !ev_match(&ev, w->q))
		return 0;
	nwh = wh_load(w->l, w->txn, seq, whs);
	w->given++;
	return w->cb(&ev, whs, nwh, w->arg) != 0 ? 1 : 0;
}

long
evlog_search(struct evlog *l, const struct evlog_query *q, evlog_cb *cb,
    void *arg, struct vbuf *why)
{
	const char *qs[IX_N];
	char buf[KEY_MAX + 1], best_key[KEY_MAX + 1];
	size_t limit, cnt, best_cnt = 0, kl, best_kl = 0;
	struct walk w;
	MDB_cursor *c = NULL;
	MDB_val k, v;
	int ix, best = -1, rc;

	limit = q->limit == 0 ? EVLOG_DEFAULT_LIMIT : q->limit;
	qs[IX_RCPT] = q->to;
	qs[IX_FROM] = q->from;
	qs[IX_MID] = q->message_id;
	qs[IX_QID] = q->queue_id;
	qs[IX_USER] = q->user;
	memset(&w, 0, sizeof(w));
	w.l = l;
	w.q = q;
	w.cb = cb;
	w.arg = arg;
	if ((rc = mdb_txn_begin(l->env, NULL, MDB_RDONLY, &w.txn)) != 0) {
		lmdb_why(why, l, "mdb_txn_begin", rc);
		return -1;
	}
	/* The most selective index: fewest dups under the query's key. */
	for (ix = 0; ix < IX_N; ix++) {
		if (qs[ix] == NULL)
			continue;
		kl = ix_key(ix, qs[ix], buf);
		if ((rc = mdb_cursor_open(w.txn, l->ix[ix], &c)) != 0)
			goto fail;
		k.mv_data = buf;
		k.mv_size = kl;
		cnt = 0;
		if (kl > 0 && mdb_cursor_get(c, &k, &v, MDB_SET) == 0)
			(void)mdb_cursor_count(c, &cnt);
		mdb_cursor_close(c);
		c = NULL;
		if (best == -1 || cnt < best_cnt) {
			best = ix;
			best_cnt = cnt;
			memcpy(best_key, buf, kl + 1);
			best_kl = kl;
		}
	}
	if (best != -1) {
		if (best_cnt == 0)
			goto done;
		if ((rc = mdb_cursor_open(w.txn, l->ix[best], &c)) != 0)
			goto fail;
		k.mv_data = best_key;
		k.mv_size = best_kl;
		if ((rc = mdb_cursor_get(c, &k, &v, MDB_SET)) != 0 ||
		    (rc = mdb_cursor_get(c, &k, &v, q->oldest_first ?
		    MDB_FIRST_DUP : MDB_LAST_DUP)) != 0)
			goto fail;
		for (;;) {
			if (v.mv_size == 8 &&
			    walk_one(&w, be64_get(v.mv_data), NULL) != 0)
				break;
			if (w.older || (size_t)w.given >= limit)
				break;
			rc = mdb_cursor_get(c, &k, &v, q->oldest_first ?
			    MDB_NEXT_DUP : MDB_PREV_DUP);
			if (rc == MDB_NOTFOUND)
				break;
			if (rc != 0)
				goto fail;
		}
	} else {
		if ((rc = mdb_cursor_open(w.txn, l->ev, &c)) != 0)
			goto fail;
		for (rc = mdb_cursor_get(c, &k, &v, q->oldest_first ?
		    MDB_FIRST : MDB_LAST); rc == 0;
		    rc = mdb_cursor_get(c, &k, &v, q->oldest_first ?
		    MDB_NEXT : MDB_PREV)) {
			if (k.mv_size == 8 &&
			    walk_one(&w, be64_get(k.mv_data), &v) != 0)
				break;
			if (w.older || (size_t)w.given >= limit)
				break;
		}
		if (rc != 0 && rc != MDB_NOTFOUND)
			goto fail;
	}
done:
	if (c)
		mdb_cursor_close(c);
	mdb_txn_abort(w.txn);
	return w.given;
fail:
	if (c)
		mdb_cursor_close(c);
	mdb_txn_abort(w.txn);
	lmdb_why(why, l, "search", rc);
	return -1;
}

static int
seq_cmp(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

/* Appends the seqs under key of index ix to *v (bounded). */
static int
seqs_of(struct evlog *l, MDB_txn *txn, int ix, const char *s,
    uint64_t **v, size_t *n, size_t *alloc)
{
	char buf[KEY_MAX + 1];
	MDB_cursor *c;
	MDB_val k, d;
	size_t kl;
	int rc;

	if ((kl = ix_key(ix, s, buf)) == 0)
		return 0;
	if ((rc = mdb_cursor_open(txn, l->ix[ix], &c)) != 0)
		return rc;
	k.mv_data = buf;
	k.mv_size = kl;
	for (rc = mdb_cursor_get(c, &k, &d, MDB_SET); rc == 0 &&
	    *n < EVLOG_STORY_MAX; rc = mdb_cursor_get(c, &k, &d,
	    MDB_NEXT_DUP)) {
		if (d.mv_size != 8)
			continue;
		if (*n == *alloc) {
			*alloc = *alloc ? *alloc * 2 : 64;
			*v = xreallocarray(*v, *alloc, sizeof(**v));
		}
		(*v)[(*n)++] = be64_get(d.mv_data);
	}
	mdb_cursor_close(c);
	return rc == MDB_NOTFOUND || rc == 0 ? 0 : rc;
}

long
evlog_story(struct evlog *l, const char *key, evlog_cb *cb, void *arg,
    struct vbuf *why)
{
	struct evlog_query q;
	struct walk w;
	struct outbox_event ev;
	uint64_t *seqs = NULL, *mids = NULL;
	size_t n = 0, alloc = 0, nm = 0, malloc_ = 0, i, j;
	char qids[16][QID_SIZE];
	size_t nq = 0;
	unsigned char sk[8];
	MDB_val k, v;
	int rc;

	memset(&q, 0, sizeof(q));
	memset(&w, 0, sizeof(w));
	w.l = l;
	w.q = &q;
	w.cb = cb;
	w.arg = arg;
	if ((rc = mdb_txn_begin(l->env, NULL, MDB_RDONLY, &w.txn)) != 0) {
		lmdb_why(why, l, "mdb_txn_begin", rc);
		return -1;
	}
	if ((rc = seqs_of(l, w.txn, IX_QID, key, &seqs, &n, &alloc)) != 0)
		goto fail;
	if (n == 0) {
		/* A Message-ID: the queue ids that carried it. */
		if ((rc = seqs_of(l, w.txn, IX_MID, key, &mids, &nm,
		    &malloc_)) != 0)
			goto fail;
		for (i = 0; i < nm && nq < 16; i++) {
			be64_put(sk, mids[i]);
			k.mv_data = sk;
			k.mv_size = 8;
			if (mdb_get(w.txn, l->ev, &k, &v) != 0 ||
			    ev_decode(l, mids[i], &v, &ev) == -1 ||
			    ev.qid[0] == '\0')
				continue;
			for (j = 0; j < nq; j++)
				if (strcmp(qids[j], ev.qid) == 0)
					break;
			if (j < nq)
				continue;
			memcpy(qids[nq++], ev.qid, QID_SIZE);
		}
		for (j = 0; j < nq; j++)
			if ((rc = seqs_of(l, w.txn, IX_QID, qids[j], &seqs,
			    &n, &alloc)) != 0)
				goto fail;
	}
	if (n > 0)		/* qsort(NULL, 0, ...) is undefined */
		qsort(seqs, n, sizeof(*seqs), seq_cmp);
	for (i = 0; i < n; i++) {
		if (i > 0 && seqs[i] == seqs[i - 1])
			continue;
		if (walk_one(&w, seqs[i], NULL) != 0)
			break;
	}
	mdb_txn_abort(w.txn);
	free(seqs);
	free(mids);
	return w.given;
fail:
	mdb_txn_abort(w.txn);
	free(seqs);
	free(mids);
	lmdb_why(why, l, "story", rc);
	return -1;
}

long
evlog_prune(struct evlog *l, int64_t before_ms, size_t max, struct vbuf *why)
{
	struct outbox_event ev;
	unsigned char sk[8];
	MDB_cursor *c;
	MDB_txn *txn;
	MDB_val k, v;
	long done = 0;
	uint64_t seq;
	int rc;

	if ((rc = mdb_txn_begin(l->env, NULL, 0, &txn)) != 0) {
		lmdb_why(why, l, "mdb_txn_begin", rc);
		return -1;
	}
	if ((rc = mdb_cursor_open(txn, l->ev, &c)) != 0)
		goto fail;
	/*
	 * Oldest seq first; stops at the first event not old enough (seq
	 * order follows time order to within EVLOG_TIME_SLACK_MS, so an
	 * event a little out of order is pruned a little late).
	 */
	while ((size_t)done < max &&
	    (rc = mdb_cursor_get(c, &k, &v, MDB_FIRST)) == 0) {
		if (k.mv_size != 8 || v.mv_size < 8)
			goto drop;
		if ((int64_t)be64_get(v.mv_data) >= before_ms)
			break;
		seq = be64_get(k.mv_data);
		memcpy(sk, k.mv_data, 8);
		if (ev_decode(l, seq, &v, &ev) == 0 &&
		    (rc = ix_apply(l, txn, &ev, sk, 1)) != 0)
			goto cfail;
		k.mv_data = sk;
		k.mv_size = 8;
		rc = mdb_del(txn, l->wh, &k, NULL);
		if (rc != 0 && rc != MDB_NOTFOUND)
			goto cfail;
		/* The cursor may have moved: put it back on the event. */
		if ((rc = mdb_cursor_get(c, &k, &v, MDB_SET)) != 0)
			goto cfail;
drop:
		if ((rc = mdb_cursor_del(c, 0)) != 0)
			goto cfail;
		done++;
	}
	if (rc != 0 && rc != MDB_NOTFOUND)
		goto cfail;
	mdb_cursor_close(c);
	if ((rc = mdb_txn_commit(txn)) != 0) {
		lmdb_why(why, l, "mdb_txn_commit", rc);
		return -1;
	}
	return done;
cfail:
	mdb_cursor_close(c);
fail:
	mdb_txn_abort(txn);
	lmdb_why(why, l, "prune", rc);
	return -1;
}

int
evlog_stat(struct evlog *l, struct evlog_stat *st, struct vbuf *why)
{
	MDB_envinfo info;
	MDB_stat ms;
	MDB_cursor *c;
	MDB_txn *txn;
	MDB_val k, v;
	unsigned i;
	int rc;

	memset(st, 0, sizeof(*st));
	if ((rc = mdb_txn_begin(l->env, NULL, MDB_RDONLY, &txn)) != 0) {
		lmdb_why(why, l, "mdb_txn_begin", rc);
		return -1;
	}
	if ((rc = mdb_stat(txn, l->ev, &ms)) != 0)
		goto fail;
	st->events = ms.ms_entries;
	st->bytes = (uint64_t)ms.ms_psize * (ms.ms_branch_pages +
	    ms.ms_leaf_pages + ms.ms_overflow_pages);
	for (i = 0; i < IX_N; i++)
		if (mdb_stat(txn, l->ix[i], &ms) == 0)
			st->bytes += (uint64_t)ms.ms_psize *
			    (ms.ms_branch_pages + ms.ms_leaf_pages +
			    ms.ms_overflow_pages);
	if ((rc = mdb_cursor_open(txn, l->ev, &c)) != 0)
		goto fail;
	if (mdb_cursor_get(c, &k, &v, MDB_FIRST) == 0 && k.mv_size == 8 &&
	    v.mv_size >= 8) {
		st->first_seq = be64_get(k.mv_data);
		st->oldest_ms = (int64_t)be64_get(v.mv_data);
	}
	if (mdb_cursor_get(c, &k, &v, MDB_LAST) == 0 && k.mv_size == 8 &&
	    v.mv_size >= 8) {
		st->last_seq = be64_get(k.mv_data);
		st->newest_ms = (int64_t)be64_get(v.mv_data);
	}
	mdb_cursor_close(c);
	if (mdb_env_info(l->env, &info) == 0)
		st->map_size = info.me_mapsize;
	mdb_txn_abort(txn);
	return 0;
fail:
	mdb_txn_abort(txn);
	lmdb_why(why, l, "stat", rc);
	return -1;
}
