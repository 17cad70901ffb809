/*
 * whstore.c - webhookd's durable store of events and their deliveries
 * (see whstore.h for the layout).
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/evp.h>

#include "whstore.h"

#define WHSTORE_MAP_SIZE	((size_t)1 << 30)

static void
whstore_be64(unsigned char *p, uint64_t v)
{
	int i;

	for (i = 7; i >= 0; i--) {
		p[i] = v & 0xff;
		v >>= 8;
	}
}

static uint64_t
whstore_get64(const unsigned char *p)
{
	uint64_t v = 0;
	int i;

	for (i = 0; i < 8; i++)
		v = (v << 8) | p[i];
	return v;
}

static int	whstore_upgrade(struct whstore *, struct vbuf *);
static int	whstore_pidx(struct whstore *, MDB_txn *, uint64_t seq,
		    const char *key, int64_t due_ms, int add, struct vbuf *);

int
whstore_open(struct whstore *s, const struct cfg *cfg, int writable,
    struct vbuf *why)
{
	memset(s, 0, sizeof(*s));
	if (mdbdir_init(&s->md, cfg, WHSTORE_DIR, WHSTORE_DB,
	    WHSTORE_MAP_SIZE, 2, writable, "webhook store", why) == -1)
		return -1;
	if (mdbdir_attach(&s->md, why) == -1)
		return -1;
	if (writable && whstore_upgrade(s, why) == -1)
		return -1;
	return 0;
}

/*
 * A store written before the pending index had its pending deliveries
 * found by a scan of them all: index them once, in one transaction, and
 * mark the layout version, so none is left unsent.
 */
struct whstore_reindex {
	struct whstore	*s;
	MDB_txn		*txn;
	struct vbuf	*why;
	int		 failed;
};

static int
whstore_reindex_one(uint64_t seq, const char *key,
    const struct whstore_dlv *d, void *arg)
{
	struct whstore_reindex *ri = arg;

	if (d->state == WHSTORE_PENDING &&
	    whstore_pidx(ri->s, ri->txn, seq, key, d->due_ms, 1,
	    ri->why) == -1) {
		ri->failed = 1;
		return 1;
	}
	return 0;
}

static int
whstore_upgrade(struct whstore *s, struct vbuf *why)
{
	MDB_val k = { 1, (void *)"V" }, v;
	struct whstore_reindex ri;
	MDB_txn *txn;
	int rc;

	if ((rc = mdbdir_begin(&s->md, 0, &txn, why)) != 1)
		return rc == 0 ? 0 : -1;
	if (mdb_get(txn, s->md.dbi, &k, &v) == 0) {
		mdb_txn_abort(txn);
		return 0;
	}
	ri.s = s;
	ri.txn = txn;
	ri.why = why;
	ri.failed = 0;
	if (whstore_dlv_iter(s, txn, 0, 0, whstore_reindex_one, &ri) == -1 ||
	    ri.failed) {
		mdb_txn_abort(txn);
		if (!ri.failed)
			vbuf_setf(why, "webhook store: cannot open a cursor");
		return -1;
	}
	v.mv_size = 1;
	v.mv_data = (void *)"1";
	if ((rc = mdb_put(txn, s->md.dbi, &k, &v, 0)) != 0)
		mdb_txn_abort(txn);
	else
		rc = mdb_txn_commit(txn);	/* frees txn either way */
	if (rc != 0) {
		mdbdir_why(why, &s->md, "upgrade", rc);
		return -1;
	}
	return 0;
}

/* The pending index's key for a delivery; its length. */
static size_t
whstore_pkey(unsigned char *buf, uint64_t seq, const char *key,
    int64_t due_ms)
{
	size_t n = strlen(key);

	if (n > WHSTORE_KEY_MAX)
		n = WHSTORE_KEY_MAX;
	buf[0] = 'P';
	memcpy(buf + 1, key, n);
	buf[1 + n] = '\0';
	whstore_be64(buf + 2 + n, (uint64_t)(due_ms < 0 ? 0 : due_ms));
	whstore_be64(buf + 10 + n, seq);
	return 18 + n;
}

/* Adds (add) or removes a delivery's pending-index record. */
static int
whstore_pidx(struct whstore *s, MDB_txn *txn, uint64_t seq, const char *key,
    int64_t due_ms, int add, struct vbuf *why)
{
	unsigned char kb[18 + WHSTORE_KEY_MAX];
	MDB_val k, v = { 0, (void *)"" };
	int rc;

	k.mv_size = whstore_pkey(kb, seq, key, due_ms);
	k.mv_data = kb;
	rc = add ? mdb_put(txn, s->md.dbi, &k, &v, 0) :
	    mdb_del(txn, s->md.dbi, &k, NULL);
	if (rc != 0 && !(rc == MDB_NOTFOUND && !add)) {
		mdbdir_why(why, &s->md, add ? "put" : "del", rc);
		return -1;
	}
	return 0;
}

void
whstore_close(struct whstore *s)
{
	mdbdir_release(&s->md);
}

uint64_t
whstore_last_seq(struct whstore *s, MDB_txn *txn)
{
	MDB_val k = { 1, (void *)"S" }, v;

	if (mdb_get(txn, s->md.dbi, &k, &v) != 0 || v.mv_size != 8)
		return 0;
	return whstore_get64(v.mv_data);
}

static size_t
whstore_dkey(unsigned char *buf, uint64_t seq, const char *key)
{
	size_t n = strlen(key);

	if (n > WHSTORE_KEY_MAX)
		n = WHSTORE_KEY_MAX;
	buf[0] = 'Q';
	whstore_be64(buf + 1, seq);
	memcpy(buf + 9, key, n);
	return 9 + n;
}

int
whstore_dlv_get(struct whstore *s, MDB_txn *txn, uint64_t seq,
    const char *key, struct whstore_dlv *d)
{
	unsigned char kb[9 + WHSTORE_KEY_MAX];
	MDB_val k, v;

	k.mv_size = whstore_dkey(kb, seq, key);
	k.mv_data = kb;
	if (mdb_get(txn, s->md.dbi, &k, &v) != 0 || v.mv_size != sizeof(*d))
		return -1;
	memcpy(d, v.mv_data, sizeof(*d));
	return 0;
}

int
whstore_dlv_put(struct whstore *s, MDB_txn *txn, uint64_t seq,
    const char *key, const struct whstore_dlv *d, struct vbuf *why)
{
	unsigned char kb[9 + WHSTORE_KEY_MAX];
	struct whstore_dlv old;
	MDB_val k, v;
	int rc;

	/* The index follows the state: out with the old, in with the new. */
	if (whstore_dlv_get(s, txn, seq, key, &old) == 0 &&
	    old.state == WHSTORE_PENDING &&
	    (d->state != WHSTORE_PENDING || d->due_ms != old.due_ms) &&
	    whstore_pidx(s, txn, seq, key, old.due_ms, 0, why) == -1)
		return -1;
	if (d->state == WHSTORE_PENDING &&
	    whstore_pidx(s, txn, seq, key, d->due_ms, 1, why) == -1)
		return -1;
	k.mv_size = whstore_dkey(kb, seq, key);
	k.mv_data = kb;
	v.mv_size = sizeof(*d);
	v.mv_data = (void *)d;
	if ((rc = mdb_put(txn, s->md.dbi, &k, &v, 0)) != 0) {
		mdbdir_why(why, &s->md, "put", rc);
		return -1;
	}
	return 0;
}

int
whstore_due_iter(struct whstore *s, MDB_txn *txn, int64_t now_ms,
    whstore_dlv_cb *cb, whstore_resume_cb *from, void *arg,
    int64_t *next_due)
{
	unsigned char kb[18 + WHSTORE_KEY_MAX];
	char key[WHSTORE_KEY_MAX + 1], cur_key[WHSTORE_KEY_MAX + 1];
	struct whstore_dlv d;
	MDB_cursor *cur;
	MDB_val k, v;
	int64_t rdue;
	uint64_t rseq;
	int rc, r;

	cur_key[0] = '\0';

	*next_due = 0;
	if (mdb_cursor_open(txn, s->md.dbi, &cur) != 0)
		return -1;
	k.mv_size = 1;
	k.mv_data = (void *)"P";
	rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
	while (rc == 0) {
		const unsigned char *p = k.mv_data, *nul;
		size_t n;
		int64_t due;
		uint64_t seq;

		if (k.mv_size < 18 || p[0] != 'P')
			break;
		n = k.mv_size - 18;
		nul = p + 1 + n;
		if (n > WHSTORE_KEY_MAX || *nul != '\0') {
			rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
			continue;	/* not ours: never written so */
		}
		memcpy(key, p + 1, n);
		key[n] = '\0';
		due = (int64_t)whstore_get64(nul + 1);
		seq = whstore_get64(nul + 9);
		/* A new endpoint: jump past what the caller has in flight. */
		if (from != NULL && strcmp(key, cur_key) != 0) {
			memcpy(cur_key, key, n + 1);
			if (from(key, &rdue, &rseq, arg) == 1 &&
			    (rdue > due || (rdue == due && rseq >= seq))) {
				k.mv_size = whstore_pkey(kb, rseq + 1, key,
				    rdue);
				k.mv_data = kb;
				rc = mdb_cursor_get(cur, &k, &v,
				    MDB_SET_RANGE);
				continue;
			}
		}
		r = WHSTORE_SKIP;
		if (due > now_ms) {
			/* The rest of this endpoint's is later still. */
			if (*next_due == 0 || due < *next_due)
				*next_due = due;
		} else if (whstore_dlv_get(s, txn, seq, key, &d) == 0 &&
		    d.state == WHSTORE_PENDING)
			r = cb(seq, key, &d, arg);
		else
			r = 0;		/* stale: whstore_dlv_put keeps it so */
		if (r == WHSTORE_STOP)
			break;
		if (r == 0) {
			rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
			continue;
		}
		/* Past every record of this endpoint: 'P' key NUL+1. */
		memcpy(kb, p, 1 + n);
		kb[1 + n] = 1;
		k.mv_size = 2 + n;
		k.mv_data = kb;
		rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
	}
	mdb_cursor_close(cur);
	return 0;
}

int
whstore_pending_count(struct whstore *s, MDB_txn *txn, uint64_t *n)
{
	MDB_cursor *cur;
	MDB_val k, v;
	int rc;

	*n = 0;
	if (mdb_cursor_open(txn, s->md.dbi, &cur) != 0)
		return -1;
	k.mv_size = 1;
	k.mv_data = (void *)"P";
	rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
	while (rc == 0 && k.mv_size >= 1 &&
	    ((const unsigned char *)k.mv_data)[0] == 'P') {
		if (k.mv_size >= 18)	/* as whstore_due_iter reads them */
			(*n)++;
		rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
	}
	mdb_cursor_close(cur);
	return rc == 0 || rc == MDB_NOTFOUND ? 0 : -1;
}

int
whstore_put_event(struct whstore *s, MDB_txn *txn,
    const struct outbox_event *ev, const char *const *keys, size_t nkeys,
    int64_t now_ms, struct vbuf *why)
{
	unsigned char kb[9];
	struct whstore_dlv d;
	struct vbuf packed;
	MDB_val k, v;
	size_t i;
	int rc;

	kb[0] = 'E';
	whstore_be64(kb + 1, ev->seq);
	k.mv_size = 9;
	k.mv_data = kb;
	/*
	 * Idempotence: a crash after our commit but before the outbox let
	 * the events go brings the same seqs back; an event already here
	 * keeps its deliveries as they are (no duplicates). Seqs at or below
	 * the mark were stored once, even if pruned since.
	 */
	if (ev->seq <= whstore_last_seq(s, txn) ||
	    mdb_get(txn, s->md.dbi, &k, &v) == 0)
		return 0;
	vbuf_init(&packed, 0);
	outbox_pack(&packed, ev);
	v.mv_size = packed.len;
	v.mv_data = packed.data;
	rc = mdb_put(txn, s->md.dbi, &k, &v, 0);
	vbuf_release(&packed);
	if (rc != 0) {
		mdbdir_why(why, &s->md, "put", rc);
		return -1;
	}
	memset(&d, 0, sizeof(d));
	d.due_ms = now_ms;
	d.last_ms = now_ms;
	d.state = WHSTORE_PENDING;
	for (i = 0; i < nkeys; i++)
		if (whstore_dlv_put(s, txn, ev->seq, keys[i], &d, why) == -1)
			return -1;
	k.mv_size = 1;
	k.mv_data = (void *)"S";
	whstore_be64(kb, ev->seq);
	if (ev->seq > whstore_last_seq(s, txn)) {
		v.mv_size = 8;
		v.mv_data = kb;
		if ((rc = mdb_put(txn, s->md.dbi, &k, &v, 0)) != 0) {
			mdbdir_why(why, &s->md, "put", rc);
			return -1;
		}
	}
	return 1;
}

/* A message's join key ('M' or 'N' then the qid); its length. */
static size_t
whstore_mkey(unsigned char *buf, char prefix, const char *qid)
{
	size_t n = strnlen(qid, QID_SIZE);

	buf[0] = (unsigned char)prefix;
	memcpy(buf + 1, qid, n);
	return 1 + n;
}

int
whstore_put_msg(struct whstore *s, MDB_txn *txn,
    const struct outbox_event *ev, struct vbuf *why)
{
	unsigned char kb[1 + QID_SIZE], nb[4];
	struct vbuf packed;
	MDB_val k, v;
	uint32_t left;
	int rc;

	/* No recipient, no event to join into: nothing to keep. */
	if (ev->nrecipients == 0)
		return 0;
	k.mv_size = whstore_mkey(kb, 'M', ev->qid);
	k.mv_data = kb;
	vbuf_init(&packed, 0);
	outbox_pack(&packed, ev);
	v.mv_size = packed.len;
	v.mv_data = packed.data;
	rc = mdb_put(txn, s->md.dbi, &k, &v, 0);
	vbuf_release(&packed);
	if (rc == 0) {
		left = ev->nrecipients > UINT32_MAX ? UINT32_MAX :
		    (uint32_t)ev->nrecipients;
		nb[0] = left >> 24;
		nb[1] = left >> 16;
		nb[2] = left >> 8;
		nb[3] = left;
		kb[0] = 'N';
		v.mv_size = 4;
		v.mv_data = nb;
		rc = mdb_put(txn, s->md.dbi, &k, &v, 0);
	}
	if (rc != 0) {
		mdbdir_why(why, &s->md, "put", rc);
		return -1;
	}
	return 0;
}

/* Deletes a message's join records ('M' and 'N'); absent is no error. */
static int
whstore_msg_del(struct whstore *s, MDB_txn *txn, const char *qid,
    struct vbuf *why)
{
	unsigned char kb[1 + QID_SIZE];
	MDB_val k;
	int rc;
	const char *p;

	for (p = "MN"; *p != '\0'; p++) {
		k.mv_size = whstore_mkey(kb, *p, qid);
		k.mv_data = kb;
		rc = mdb_del(txn, s->md.dbi, &k, NULL);
		if (rc != 0 && rc != MDB_NOTFOUND) {
			if (why != NULL)
				mdbdir_why(why, &s->md, "del", rc);
			return -1;
		}
	}
	return 0;
}

/*
 * Crash safety: the count moves in the transaction that stores the
 * event and moves the ingest mark on (webhookd_ingest.c), and only for an
 * event stored for the first time, so a crash's re-ingest of the same
 * seqs neither counts a recipient twice nor restarts the count. The
 * events stored already carry what the join gave them (whstore_put_event
 * stores the enriched event), so once the last recipient's final event
 * is in, nothing reads the join again: retries, replays and the delivery
 * log read 'E'. A recipient event that comes after the join is gone
 * (only if the count was wrong) is sent without user, metadata and tags,
 * as one whose accepted event the outbox dropped.
 */
int
whstore_msg_settle(struct whstore *s, MDB_txn *txn,
    const struct outbox_event *ev, struct vbuf *why)
{
	unsigned char kb[1 + QID_SIZE], nb[4];
	const unsigned char *p;
	MDB_val k, v;
	uint32_t left;
	int rc;

	switch (ev->kind) {
	case OUTBOX_DELIVERED:
	case OUTBOX_BOUNCED:
	case OUTBOX_EXPIRED:
	case OUTBOX_SUPPRESSED:
	case OUTBOX_DELETED:
		break;
	default:
		return 0;	/* accepted, deferred: more to come */
	}
	k.mv_size = whstore_mkey(kb, 'N', ev->qid);
	k.mv_data = kb;
	if (mdb_get(txn, s->md.dbi, &k, &v) != 0 || v.mv_size != 4)
		return 0;	/* no count: the sweep's (whstore_msg_sweep) */
	p = v.mv_data;
	left = (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
	    (uint32_t)p[2] << 8 | p[3];
	if (left <= 1)
		return whstore_msg_del(s, txn, ev->qid, why) == -1 ? -1 : 1;
	left--;
	nb[0] = left >> 24;
	nb[1] = left >> 16;
	nb[2] = left >> 8;
	nb[3] = left;
	v.mv_size = 4;
	v.mv_data = nb;
	if ((rc = mdb_put(txn, s->md.dbi, &k, &v, 0)) != 0) {
		mdbdir_why(why, &s->md, "put", rc);
		return -1;
	}
	return 0;
}

int
whstore_msg_sweep(struct whstore *s, MDB_txn *txn, char *resume,
    size_t max, whstore_gone_cb *gone, void *arg)
{
	unsigned char kb[1 + QID_SIZE];
	char (*del)[QID_SIZE];
	MDB_cursor *cur;
	MDB_val k, v;
	size_t seen = 0, ndel = 0, i;
	int rc, removed = 0;

	if (max == 0 || mdb_cursor_open(txn, s->md.dbi, &cur) != 0)
		return max == 0 ? 0 : -1;
	if ((del = calloc(max, sizeof(*del))) == NULL) {
		mdb_cursor_close(cur);
		return -1;
	}
	k.mv_size = whstore_mkey(kb, 'M', resume);
	k.mv_data = kb;
	rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
	/* Start after the one looked at last time. */
	if (rc == 0 && resume[0] != '\0' && k.mv_size == 1 +
	    strnlen(resume, QID_SIZE) && memcmp(k.mv_data, kb, k.mv_size) == 0)
		rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
	resume[0] = '\0';	/* past the last: from the top next time */
	for (; rc == 0 && seen < max; seen++,
	    rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
		const unsigned char *p = k.mv_data;
		size_t n = k.mv_size - 1;

		if (k.mv_size < 2 || p[0] != 'M') {
			resume[0] = '\0';
			break;
		}
		if (n >= QID_SIZE)
			continue;	/* never written so */
		memcpy(resume, p + 1, n);
		resume[n] = '\0';
		if (gone(resume, arg) == 1)
			memcpy(del[ndel++], resume, n + 1);
	}
	if (rc != 0)
		resume[0] = '\0';
	/* Deleted after the walk, so no cursor is moved under us. */
	mdb_cursor_close(cur);
	for (i = 0; i < ndel; i++) {
		if (whstore_msg_del(s, txn, del[i], NULL) == -1) {
			free(del);
			return -1;
		}
		removed++;
	}
	free(del);
	return removed;
}

void
whstore_enrich(struct whstore *s, MDB_txn *txn, struct outbox_event *ev,
    struct outbox_scratch *sc)
{
	unsigned char kb[1 + QID_SIZE];
	struct outbox_event acc;
	MDB_val k, v;

	/* A destination's event is of no message. */
	if (ev->kind == OUTBOX_ACCEPTED || ev->kind == OUTBOX_DESTINATION)
		return;
	k.mv_size = whstore_mkey(kb, 'M', ev->qid);
	k.mv_data = kb;
	if (mdb_get(txn, s->md.dbi, &k, &v) != 0)
		return;
	/* Any seq but 0 (the outbox's own record): acc.seq is unused. */
	if (outbox_unpack(v.mv_data, v.mv_size, 1, &acc, sc) == -1)
		return;
	if (ev->sasl_username == NULL)
		ev->sasl_username = acc.sasl_username;
	if (ev->message_id == NULL)
		ev->message_id = acc.message_id;
	if (ev->metadata == NULL)
		ev->metadata = acc.metadata;
	if (ev->tags == NULL)
		ev->tags = acc.tags;
}

int
whstore_get_event(struct whstore *s, MDB_txn *txn, uint64_t seq,
    struct outbox_event *ev, struct outbox_scratch *sc)
{
	unsigned char kb[9];
	MDB_val k, v;

	kb[0] = 'E';
	whstore_be64(kb + 1, seq);
	k.mv_size = 9;
	k.mv_data = kb;
	if (mdb_get(txn, s->md.dbi, &k, &v) != 0)
		return -1;
	return outbox_unpack(v.mv_data, v.mv_size, seq, ev, sc);
}

int
whstore_dlv_iter(struct whstore *s, MDB_txn *txn, uint64_t from,
    size_t max, whstore_dlv_cb *cb, void *arg)
{
	unsigned char kb[9];
	char key[WHSTORE_KEY_MAX + 1];
	struct whstore_dlv d;
	MDB_cursor *cur;
	MDB_val k, v;
	size_t seen = 0;
	int rc;

	if (mdb_cursor_open(txn, s->md.dbi, &cur) != 0)
		return -1;
	kb[0] = 'Q';
	whstore_be64(kb + 1, from);
	k.mv_size = 9;
	k.mv_data = kb;
	for (rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE); rc == 0;
	    rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
		const unsigned char *p = k.mv_data;

		if (k.mv_size < 9 || p[0] != 'Q')
			break;
		if (v.mv_size != sizeof(d) || k.mv_size - 9 > WHSTORE_KEY_MAX)
			continue;
		memcpy(&d, v.mv_data, sizeof(d));
		memcpy(key, p + 9, k.mv_size - 9);
		key[k.mv_size - 9] = '\0';
		if (cb(whstore_get64(p + 1), key, &d, arg) != 0)
			break;
		if (max != 0 && ++seen >= max)
			break;
	}
	mdb_cursor_close(cur);
	return 0;
}

int
whstore_prune(struct whstore *s, MDB_txn *txn, int64_t now_ms,
    int64_t keep_sent_ms, int64_t dead_ms, size_t max)
{
	unsigned char kb[9];
	MDB_cursor *cur;
	MDB_val k, v, dk, dv;
	uint64_t last = whstore_last_seq(s, txn);
	size_t seen = 0;
	int rc, removed = 0;

	if (mdb_cursor_open(txn, s->md.dbi, &cur) != 0)
		return -1;
	k.mv_size = 1;
	k.mv_data = (void *)"E";
	for (rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
	    rc == 0 && seen < max;
	    seen++) {
		const unsigned char *p = k.mv_data;
		uint64_t seq;
		int keep = 0;
		MDB_cursor *dc;

		if (k.mv_size != 9 || p[0] != 'E')
			break;
		seq = whstore_get64(p + 1);
		if (mdb_cursor_open(txn, s->md.dbi, &dc) != 0)
			break;
		kb[0] = 'Q';
		whstore_be64(kb + 1, seq);
		dk.mv_size = 9;
		dk.mv_data = kb;
		for (rc = mdb_cursor_get(dc, &dk, &dv, MDB_SET_RANGE);
		    rc == 0; rc = mdb_cursor_get(dc, &dk, &dv, MDB_NEXT)) {
			const unsigned char *q = dk.mv_data;
			struct whstore_dlv d;

			if (dk.mv_size < 9 || q[0] != 'Q' ||
			    whstore_get64(q + 1) != seq)
				break;

			if (dv.mv_size != sizeof(d))
				continue;
			memcpy(&d, dv.mv_data, sizeof(d));
			if ((d.state == WHSTORE_SENT &&
			    now_ms - d.last_ms > keep_sent_ms) ||
			    (d.state == WHSTORE_DEAD &&
			    now_ms - d.last_ms > dead_ms))
				(void)mdb_cursor_del(dc, 0);
			else
				keep = 1;
		}
		mdb_cursor_close(dc);
		/* The newest event stays: its seq is the ingest mark. */
		if (!keep && seq != last) {
			(void)mdb_cursor_del(cur, 0);
			removed++;
			rc = mdb_cursor_get(cur, &k, &v, MDB_GET_CURRENT);
			if (rc != 0)
				break;
			p = k.mv_data;
			if (k.mv_size == 9 && p[0] == 'E' &&
			    whstore_get64(p + 1) != seq)
				continue;
		}
		rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
	}
	mdb_cursor_close(cur);
	return removed;
}

void
whstore_event_id(const struct outbox_event *ev, char id[WHSTORE_ID_SIZE])
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;
	struct vbuf in;
	int i;

	vbuf_init(&in, 0);
	(void)vbuf_addf(&in, "%.*s|%" PRIu64 "|%" PRId64 "|%d|%s", QID_SIZE,
	    ev->qid, ev->seq, ev->time_ms, (int)ev->kind,
	    ev->recipient != NULL ? ev->recipient :
	    ev->destination != NULL ? ev->destination : "");
	if (EVP_Digest(in.data, in.len, md, &mdlen, EVP_sha256(), NULL) != 1)
		memset(md, 0, sizeof(md));
	vbuf_release(&in);
	for (i = 0; i < 16; i++)
		snprintf(id + 2 * i, 3, "%02x", md[i]);
}

int
whstore_find_id(struct whstore *s, MDB_txn *txn, const char *id,
    uint64_t *seq)
{
	char have[WHSTORE_ID_SIZE];
	struct outbox_scratch sc;
	struct outbox_event ev;
	MDB_cursor *cur;
	MDB_val k, v;
	int rc, found = -1;

	if (strlen(id) != WHSTORE_ID_SIZE - 1 ||
	    mdb_cursor_open(txn, s->md.dbi, &cur) != 0)
		return -1;
	outbox_scratch_init(&sc);
	k.mv_size = 1;
	k.mv_data = (void *)"E";
	for (rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE); rc == 0;
	    rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
		const unsigned char *p = k.mv_data;
		uint64_t s9;

		if (k.mv_size != 9 || p[0] != 'E')
			break;
		s9 = whstore_get64(p + 1);
		if (outbox_unpack(v.mv_data, v.mv_size, s9, &ev, &sc) == -1)
			continue;
		whstore_event_id(&ev, have);
		if (strcasecmp(have, id) == 0) {
			*seq = s9;
			found = 0;
			break;
		}
	}
	outbox_scratch_release(&sc);
	mdb_cursor_close(cur);
	return found;
}

void
whstore_safe_url(const char *url, char *out, size_t n)
{
	const char *p = strstr(url, "://"), *at, *slash;

	if (p == NULL) {
		snprintf(out, n, "%s", url);
		return;
	}
	p += 3;
	slash = p + strcspn(p, "/?#");
	at = memchr(p, '@', (size_t)(slash - p));
	if (at == NULL)
		snprintf(out, n, "%s", url);
	else
		snprintf(out, n, "%.*s%s", (int)(p - url), url, at + 1);
}
