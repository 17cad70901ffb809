/*
 * outbox.c - the events database of the queue environment (see outbox.h).
 *
 * Keys are 64-bit big-endian sequence numbers, so LMDB's order is the
 * order of events and each put appends (MDB_APPEND). Key 0 is the
 * outbox's own record, put with the first event: the count of events
 * dropped over the cap, and a sequence number that is at least the last
 * one given out whenever the outbox has no event after it, so numbers are
 * never reused. A put rewrites it only when it drops events (the next
 * number is otherwise the last key's plus one, and a put touches no page
 * but the last); a consumer that deletes the last events must write it
 * first. An event's value is its time in milliseconds (8 bytes,
 * big-endian, so the age cap reads no more), then its members as one
 * attribute record (lib/attr), the house's record encoding. outbox.c is
 * a friend of the queue store: it uses qstore_int.h for the transaction
 * and the events database's handle.
 */
#include <sys/time.h>

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <lmdb.h>

#include "attr.h"
#include "outbox.h"
#include "parse.h"
#include "qstore.h"
#include "qstore_int.h"
#include "xalloc.h"

/* Attribute names inside an event record (storage only, not a wire). */
#define OB_KIND		"kind"
#define OB_QID		"queue_id"
#define OB_SENDER	"sender"
#define OB_RCPT		"recipient"
#define OB_RCPTS	"rcpt"
#define OB_RELAY	"relay"
#define OB_DSN		"dsn"
#define OB_REPLY	"reply"
#define OB_ATTEMPTS	"attempts"
#define OB_DELAY	"delay"
#define OB_NEXT		"next_attempt"
#define OB_DKIM		"dkim"
#define OB_SIZE		"size"
#define OB_CLIENT	"client"
#define OB_HELO		"helo"
#define OB_SASL		"sasl_username"
#define OB_TLS		"tls"
#define OB_LISTENER	"listener"
#define OB_CLASS	"class"
#define OB_METADATA	"metadata"
#define OB_MSGID	"message_id"
#define OB_TAGS		"tags"
#define OB_DEST		"destination"
#define OB_ENTRY	"entry"
#define OB_SOURCE	"source"
#define OB_STATE	"state"
#define OB_PREV		"previous_state"
#define OB_REASON	"reason"
#define OB_UNTIL	"until"
#define OB_MAXCONN	"max_connections"
#define OB_RATE_COUNT	"rate_count"
#define OB_RATE_IVL	"rate_interval"

#define OB_TIME_LEN	8

struct outbox_meta {
	uint64_t	 last_seq;
	uint64_t	 dropped;
};

static void	outbox_be64(unsigned char *, uint64_t);
static uint64_t	outbox_get64(const unsigned char *);
static int	outbox_meta_get(MDB_txn *, MDB_dbi, struct outbox_meta *);
static int	outbox_meta_put(MDB_txn *, MDB_dbi, const struct outbox_meta *);
static int	outbox_over_cap(struct qstore *, MDB_txn *);
static int	outbox_too_old(struct qstore *, const MDB_val *, int64_t);
static int	outbox_decode(const MDB_val *, const MDB_val *,
		    struct outbox_event *, struct attr_list *,
		    const char ***rcpts, size_t *rcpts_alloc);
static void	outbox_put_opt(struct vbuf *, const char *, const char *);
static void	outbox_json_dest(struct json *, const struct outbox_event *);

static const char *const outbox_kind_names[] = {
	[OUTBOX_ACCEPTED] = "accepted",
	[OUTBOX_DELIVERED] = "delivered",
	[OUTBOX_DEFERRED] = "deferred",
	[OUTBOX_BOUNCED] = "bounced",
	[OUTBOX_EXPIRED] = "expired",
	[OUTBOX_SUPPRESSED] = "suppressed",
	[OUTBOX_DELETED] = "deleted",
	[OUTBOX_DESTINATION] = "destination",
};

const char *
outbox_kind_name(enum outbox_kind k)
{
	if ((unsigned)k >= sizeof(outbox_kind_names) /
	    sizeof(outbox_kind_names[0]))
		return NULL;
	return outbox_kind_names[k];
}

int64_t
outbox_now_ms(void)
{
	struct timeval tv;

	gettimeofday(&tv, NULL);
	return (int64_t)tv.tv_sec * 1000 + tv.tv_usec / 1000;
}

static void
outbox_be64(unsigned char *p, uint64_t v)
{
	for (int i = 7; i >= 0; i--) {
		p[i] = (unsigned char)(v & 0xff);
		v >>= 8;
	}
}

static uint64_t
outbox_get64(const unsigned char *p)
{
	uint64_t v = 0;

	for (int i = 0; i < 8; i++)
		v = v << 8 | p[i];
	return v;
}

static int
outbox_meta_get(MDB_txn *txn, MDB_dbi dbi, struct outbox_meta *m)
{
	unsigned char key[8] = { 0 };
	MDB_val k = { sizeof(key), key }, v;
	int rc;

	memset(m, 0, sizeof(*m));
	rc = mdb_get(txn, dbi, &k, &v);
	if (rc == MDB_NOTFOUND)
		return 0;
	if (rc != 0)
		return rc;
	if (v.mv_size >= 16) {
		m->last_seq = outbox_get64(v.mv_data);
		m->dropped = outbox_get64((const unsigned char *)v.mv_data + 8);
	}
	return 0;
}

static int
outbox_meta_put(MDB_txn *txn, MDB_dbi dbi, const struct outbox_meta *m)
{
	unsigned char key[8] = { 0 }, val[16];
	MDB_val k = { sizeof(key), key }, v = { sizeof(val), val };

	outbox_be64(val, m->last_seq);
	outbox_be64(val + 8, m->dropped);
	return mdb_put(txn, dbi, &k, &v, 0);
}

/*
 * Whether the outbox holds more than outbox.max_events events, or more
 * than outbox.max_share percent of queue.map_size in its pages (so that
 * the outbox alone can never push smtpd's admission into 452): 1 or 0,
 * or an LMDB error code from mdb_stat (never 1).
 */
static int
outbox_over_cap(struct qstore *qs, MDB_txn *txn)
{
	MDB_stat st;
	uint64_t pages;
	int rc;

	if ((rc = mdb_stat(txn, qs->db_events, &st)) != 0)
		return rc;
	/* Key 0, the outbox's own record (put with the first event). */
	if (st.ms_entries > 0 && st.ms_entries - 1 > qs->outbox_max_events)
		return 1;
	pages = (uint64_t)st.ms_branch_pages + st.ms_leaf_pages +
	    st.ms_overflow_pages;
	return pages * st.ms_psize * 100 > qs->map_size *
	    qs->outbox_max_share;
}

/* Whether the event stored as v is older than outbox.max_age. */
static int
outbox_too_old(struct qstore *qs, const MDB_val *v, int64_t now_ms)
{
	return v->mv_size >= OB_TIME_LEN && qs->outbox_max_age > 0 &&
	    (int64_t)outbox_get64(v->mv_data) <
	    now_ms - qs->outbox_max_age * 1000;
}

static void
outbox_put_opt(struct vbuf *out, const char *name, const char *value)
{
	if (value != NULL)
		attr_put_str(out, name, value);
}

void
outbox_pack(struct vbuf *out, const struct outbox_event *ev)
{
	unsigned char t[OB_TIME_LEN];

	outbox_be64(t, (uint64_t)ev->time_ms);
	vbuf_reset(out);
	(void)vbuf_add(out, t, sizeof(t));
	attr_put_num(out, OB_KIND, (uint64_t)ev->kind);
	attr_put_str(out, OB_QID, ev->qid);
	outbox_put_opt(out, OB_SENDER, ev->sender);
	outbox_put_opt(out, OB_RCPT, ev->recipient);
	for (size_t i = 0; i < ev->nrecipients; i++)
		attr_put_str(out, OB_RCPTS, ev->recipients[i]);
	outbox_put_opt(out, OB_RELAY, ev->relay);
	outbox_put_opt(out, OB_DSN, ev->dsn);
	outbox_put_opt(out, OB_REPLY, ev->reply);
	if (ev->kind != OUTBOX_ACCEPTED && ev->kind != OUTBOX_DESTINATION) {
		attr_put_num(out, OB_ATTEMPTS, ev->attempts);
		attr_put_int(out, OB_DELAY, ev->delay);
	}
	if (ev->kind == OUTBOX_DEFERRED)
		attr_put_int(out, OB_NEXT, ev->next_attempt);
	outbox_put_opt(out, OB_DKIM, ev->dkim);
	if (ev->kind == OUTBOX_ACCEPTED)
		attr_put_num(out, OB_SIZE, ev->size);
	outbox_put_opt(out, OB_CLIENT, ev->client);
	outbox_put_opt(out, OB_HELO, ev->helo);
	outbox_put_opt(out, OB_SASL, ev->sasl_username);
	outbox_put_opt(out, OB_TLS, ev->tls);
	outbox_put_opt(out, OB_LISTENER, ev->listener);
	outbox_put_opt(out, OB_CLASS, ev->class);
	outbox_put_opt(out, OB_METADATA, ev->metadata);
	outbox_put_opt(out, OB_MSGID, ev->message_id);
	outbox_put_opt(out, OB_TAGS, ev->tags);
	if (ev->kind == OUTBOX_DESTINATION) {
		outbox_put_opt(out, OB_DEST, ev->destination);
		outbox_put_opt(out, OB_ENTRY, ev->entry);
		outbox_put_opt(out, OB_SOURCE, ev->source);
		outbox_put_opt(out, OB_STATE, ev->state);
		outbox_put_opt(out, OB_PREV, ev->prev_state);
		outbox_put_opt(out, OB_REASON, ev->reason);
		attr_put_int(out, OB_UNTIL, ev->until);
		attr_put_num(out, OB_MAXCONN, ev->max_connections);
		attr_put_num(out, OB_RATE_COUNT, ev->rate_count);
		attr_put_num(out, OB_RATE_IVL, ev->rate_interval);
	}
	attr_end(out);
}

int
outbox_put(struct qstore_txn *t, const struct outbox_event *ev,
    struct vbuf *why)
{
	struct qstore *qs = t->qs;
	/*
	 * Scratch for the record, kept across calls: qmgr puts one event per
	 * result. Not reentrant; daemons are single-threaded.
	 */
	static struct vbuf *val;
	struct outbox_meta meta;
	unsigned char key[8];
	uint64_t seq;
	MDB_cursor *c;
	MDB_val k, v;
	int rc, dropped = 0, check_age;

	if ((rc = mdb_cursor_open(t->txn, qs->db_events, &c)) != 0)
		return qstore_mdb_fail(rc, why, "events: cursor");
	/*
	 * 1. The next number follows the last event's; with no event left,
	 * the one the outbox's own record keeps.
	 */
	rc = mdb_cursor_get(c, &k, &v, MDB_LAST);
	if (rc == 0 && k.mv_size == 8 && outbox_get64(k.mv_data) != 0)
		seq = outbox_get64(k.mv_data) + 1;
	else if (rc != 0 && rc != MDB_NOTFOUND)
		goto fail;
	else {
		int empty = rc == MDB_NOTFOUND;

		if ((rc = outbox_meta_get(t->txn, qs->db_events, &meta)) != 0)
			goto fail;
		seq = meta.last_seq + 1;
		/*
		 * A new outbox gets its own record first, so that the count
		 * of events is always the entries less one.
		 */
		if (empty && (rc = outbox_meta_put(t->txn, qs->db_events,
		    &meta)) != 0)
			goto fail;
	}
	if (val == NULL)
		val = vbuf_create(0);
	outbox_pack(val, ev);
	outbox_be64(key, seq);
	k.mv_data = key;
	k.mv_size = sizeof(key);
	v.mv_data = val->data;
	v.mv_size = val->len;
	if ((rc = mdb_cursor_put(c, &k, &v, MDB_APPEND)) != 0)
		goto fail;

	/*
	 * 2. Over the cap, the oldest go, a bounded number per put and
	 * never the event just put. Count and share cost one mdb_stat; the
	 * age needs the oldest event, so it is looked at every
	 * OUTBOX_AGE_EVERY events (and while dropping).
	 */
	check_age = seq % OUTBOX_AGE_EVERY == 0;
	while (dropped < OUTBOX_DROP_BATCH) {
		unsigned char first[8];
		int over = outbox_over_cap(qs, t->txn);

		if (over != 0 && over != 1) {
			rc = over;
			break;
		}
		if (!over && !check_age)
			break;
		/* The first key after the outbox's own record, key 0. */
		outbox_be64(first, 1);
		k.mv_data = first;
		k.mv_size = sizeof(first);
		if ((rc = mdb_cursor_get(c, &k, &v, MDB_SET_RANGE)) != 0)
			break;
		if (k.mv_size != 8 || outbox_get64(k.mv_data) == seq)
			break;
		if (!over && !outbox_too_old(qs, &v, ev->time_ms))
			break;
		if ((rc = mdb_cursor_del(c, 0)) != 0)
			break;
		dropped++;
	}
	if (rc != 0 && rc != MDB_NOTFOUND)
		goto fail;
	mdb_cursor_close(c);
	if (dropped == 0)
		return 0;
	/* The outbox's own record: the count, and the number. */
	if ((rc = outbox_meta_get(t->txn, qs->db_events, &meta)) != 0)
		return qstore_mdb_fail(rc, why, "events: read");
	meta.last_seq = seq;
	meta.dropped += (uint64_t)dropped;
	if ((rc = outbox_meta_put(t->txn, qs->db_events, &meta)) != 0)
		return qstore_mdb_fail(rc, why, "events: write");
	t->dropped += (uint64_t)dropped;
	return dropped;
fail:
	mdb_cursor_close(c);
	return qstore_mdb_fail(rc, why, "events: put");
}

static int
outbox_decode(const MDB_val *k, const MDB_val *v, struct outbox_event *ev,
    struct attr_list *l, const char ***rcpts, size_t *rcpts_alloc)
{
	size_t used, n = 0, i;
	uint64_t u;
	int64_t s;
	const char *q;

	memset(ev, 0, sizeof(*ev));
	if (k->mv_size != 8 || v->mv_size < OB_TIME_LEN)
		return -1;
	ev->seq = outbox_get64(k->mv_data);
	ev->time_ms = (int64_t)outbox_get64(v->mv_data);
	if (attr_decode(l, (const char *)v->mv_data + OB_TIME_LEN,
	    v->mv_size - OB_TIME_LEN, &used, NULL) != 1)
		return -1;
	if (attr_get_num(l, OB_KIND, &u, NULL) == -1 ||
	    outbox_kind_name((enum outbox_kind)u) == NULL)
		return -1;
	ev->kind = (enum outbox_kind)u;
	/* A destination's event is of no message: its queue id is "". */
	q = attr_get(l, OB_QID);
	if (ev->kind == OUTBOX_DESTINATION) {
		if (q == NULL || *q != '\0' ||
		    (ev->destination = attr_get(l, OB_DEST)) == NULL ||
		    (ev->state = attr_get(l, OB_STATE)) == NULL)
			return -1;
		ev->entry = attr_get(l, OB_ENTRY);
		ev->source = attr_get(l, OB_SOURCE);
		ev->prev_state = attr_get(l, OB_PREV);
		ev->reason = attr_get(l, OB_REASON);
		if (attr_get_int(l, OB_UNTIL, &s, NULL) == 0)
			ev->until = s;
		if (attr_get_num(l, OB_MAXCONN, &u, NULL) == 0 &&
		    u <= UINT32_MAX)
			ev->max_connections = (uint32_t)u;
		if (attr_get_num(l, OB_RATE_COUNT, &u, NULL) == 0 &&
		    u <= UINT32_MAX)
			ev->rate_count = (uint32_t)u;
		if (attr_get_num(l, OB_RATE_IVL, &u, NULL) == 0 &&
		    u <= UINT32_MAX)
			ev->rate_interval = (uint32_t)u;
	} else if (q == NULL || !qid_ok(q))
		return -1;
	snprintf(ev->qid, sizeof(ev->qid), "%s", q);
	ev->sender = attr_get(l, OB_SENDER);
	ev->recipient = attr_get(l, OB_RCPT);
	for (i = 0; i < l->count; i++) {
		if (strcmp(l->items[i].name, OB_RCPTS) != 0)
			continue;
		if (n == *rcpts_alloc) {
			*rcpts_alloc = *rcpts_alloc * 2 + 8;
			*rcpts = xreallocarray(*rcpts, *rcpts_alloc,
			    sizeof(**rcpts));
		}
		(*rcpts)[n++] = l->items[i].value;
	}
	ev->recipients = *rcpts;
	ev->nrecipients = n;
	ev->relay = attr_get(l, OB_RELAY);
	ev->dsn = attr_get(l, OB_DSN);
	ev->reply = attr_get(l, OB_REPLY);
	if (attr_get_num(l, OB_ATTEMPTS, &u, NULL) == 0 && u <= UINT32_MAX)
		ev->attempts = (uint32_t)u;
	if (attr_get_int(l, OB_DELAY, &s, NULL) == 0)
		ev->delay = s;
	if (attr_get_int(l, OB_NEXT, &s, NULL) == 0)
		ev->next_attempt = s;
	ev->dkim = attr_get(l, OB_DKIM);
	if (attr_get_num(l, OB_SIZE, &u, NULL) == 0)
		ev->size = u;
	ev->client = attr_get(l, OB_CLIENT);
	ev->helo = attr_get(l, OB_HELO);
	ev->sasl_username = attr_get(l, OB_SASL);
	ev->tls = attr_get(l, OB_TLS);
	ev->listener = attr_get(l, OB_LISTENER);
	ev->class = attr_get(l, OB_CLASS);
	ev->metadata = attr_get(l, OB_METADATA);
	ev->message_id = attr_get(l, OB_MSGID);
	ev->tags = attr_get(l, OB_TAGS);
	return 0;
}

void
outbox_scratch_init(struct outbox_scratch *sc)
{
	attr_list_init(&sc->l);
	sc->rcpts = NULL;
	sc->rcpts_alloc = 0;
}

void
outbox_scratch_release(struct outbox_scratch *sc)
{
	attr_list_release(&sc->l);
	free(sc->rcpts);
	sc->rcpts = NULL;
	sc->rcpts_alloc = 0;
}

int
outbox_unpack(const void *data, size_t len, uint64_t seq,
    struct outbox_event *ev, struct outbox_scratch *sc)
{
	unsigned char key[8];
	MDB_val k, v;

	outbox_be64(key, seq);
	k.mv_data = key;
	k.mv_size = sizeof(key);
	v.mv_data = (void *)(uintptr_t)data;
	v.mv_size = len;
	return outbox_decode(&k, &v, ev, &sc->l, &sc->rcpts,
	    &sc->rcpts_alloc);
}

/*
 * The outbox's own record keeps the highest number deleted, because
 * outbox_put numbers the next event after the last one left, or after
 * that record's number when none is left: without it, an outbox emptied
 * by its consumer would give out numbers again that the consumer has
 * already seen and recorded.
 */
int
outbox_delete_through(struct qstore_txn *t, uint64_t through,
    struct vbuf *why)
{
	struct outbox_meta meta;
	unsigned char first[8];
	MDB_cursor *c;
	MDB_val k, v;
	int rc, n = 0;

	if ((rc = mdb_cursor_open(t->txn, t->qs->db_events, &c)) != 0)
		return qstore_mdb_fail(rc, why, "events: cursor");
	outbox_be64(first, 1);
	k.mv_data = first;
	k.mv_size = sizeof(first);
	for (rc = mdb_cursor_get(c, &k, &v, MDB_SET_RANGE); rc == 0;
	    rc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
		if (k.mv_size != 8 || outbox_get64(k.mv_data) > through)
			break;
		if ((rc = mdb_cursor_del(c, 0)) != 0)
			break;
		n++;
	}
	mdb_cursor_close(c);
	if (rc != 0 && rc != MDB_NOTFOUND)
		return qstore_mdb_fail(rc, why, "events: delete");
	if ((rc = outbox_meta_get(t->txn, t->qs->db_events, &meta)) != 0)
		return qstore_mdb_fail(rc, why, "events: read");
	if (meta.last_seq < through) {
		meta.last_seq = through;
		if ((rc = outbox_meta_put(t->txn, t->qs->db_events,
		    &meta)) != 0)
			return qstore_mdb_fail(rc, why, "events: write");
	}
	return n;
}

int
outbox_iter(struct qstore_txn *t, uint64_t from, size_t max, outbox_cb *cb,
    void *arg, struct vbuf *why)
{
	unsigned char key[8];
	struct outbox_event ev;
	struct attr_list l;
	const char **rcpts = NULL;
	size_t nrcpts = 0, seen = 0;
	MDB_cursor *c;
	MDB_val k, v;
	MDB_cursor_op op = MDB_SET_RANGE;
	int rc;

	if ((rc = mdb_cursor_open(t->txn, t->qs->db_events, &c)) != 0)
		return qstore_mdb_fail(rc, why, "events: cursor");
	attr_list_init(&l);
	outbox_be64(key, from > 0 ? from : 1);
	k.mv_data = key;
	k.mv_size = sizeof(key);
	while ((rc = mdb_cursor_get(c, &k, &v, op)) == 0) {
		op = MDB_NEXT;
		if (outbox_decode(&k, &v, &ev, &l, &rcpts, &nrcpts) == -1)
			continue;
		if (cb(&ev, arg) != 0 || (max > 0 && ++seen >= max))
			break;
	}
	attr_list_release(&l);
	free(rcpts);
	mdb_cursor_close(c);
	if (rc != 0 && rc != MDB_NOTFOUND)
		return qstore_mdb_fail(rc, why, "events: read");
	return 0;
}

int
outbox_stat(struct qstore_txn *t, struct outbox_stat *os, struct vbuf *why)
{
	unsigned char first[8];
	struct outbox_meta meta;
	MDB_cursor *c;
	MDB_stat st;
	MDB_val k, v;
	int rc;

	memset(os, 0, sizeof(*os));
	if ((rc = outbox_meta_get(t->txn, t->qs->db_events, &meta)) != 0 ||
	    (rc = mdb_stat(t->txn, t->qs->db_events, &st)) != 0)
		return qstore_mdb_fail(rc, why, "events: stat");
	os->last_seq = meta.last_seq;
	os->dropped = meta.dropped;
	os->events = st.ms_entries;
	os->bytes = ((uint64_t)st.ms_branch_pages + st.ms_leaf_pages +
	    st.ms_overflow_pages) * st.ms_psize;
	if ((rc = mdb_cursor_open(t->txn, t->qs->db_events, &c)) != 0)
		return qstore_mdb_fail(rc, why, "events: cursor");
	/* Key 0 is not an event. */
	if (mdb_cursor_get(c, &k, &v, MDB_FIRST) == 0 && k.mv_size == 8 &&
	    outbox_get64(k.mv_data) == 0 && os->events > 0)
		os->events--;
	outbox_be64(first, 1);
	k.mv_data = first;
	k.mv_size = sizeof(first);
	if (mdb_cursor_get(c, &k, &v, MDB_SET_RANGE) == 0 &&
	    v.mv_size >= OB_TIME_LEN)
		os->oldest_ms = (int64_t)outbox_get64(v.mv_data);
	if (mdb_cursor_get(c, &k, &v, MDB_LAST) == 0 && k.mv_size == 8 &&
	    outbox_get64(k.mv_data) > os->last_seq)
		os->last_seq = outbox_get64(k.mv_data);
	mdb_cursor_close(c);
	return 0;
}

uint64_t
outbox_dropped_to_report(struct qstore *qs, int64_t now_ms)
{
	static uint64_t reported;
	static int64_t reported_at;
	uint64_t dropped = qstore_events_dropped(qs), n;

	if (dropped <= reported || (reported_at != 0 &&
	    now_ms - reported_at < OUTBOX_WARN_INTERVAL_MS))
		return 0;
	n = dropped - reported;
	reported = dropped;
	reported_at = now_ms;
	return n;
}

/* A destination event's members (qmgr(8), DESTINATION EVENTS). */
static void
outbox_json_dest(struct json *j, const struct outbox_event *ev)
{
	json_kv_str(j, "destination", ev->destination);
	if (ev->entry != NULL)
		json_kv_str(j, "entry", ev->entry);
	if (ev->source != NULL)
		json_kv_str(j, "source", ev->source);
	json_kv_str(j, "state", ev->state);
	if (ev->prev_state != NULL)
		json_kv_str(j, "previous_state", ev->prev_state);
	if (ev->reason != NULL)
		json_kv_str(j, "reason", ev->reason);
	json_kv_int(j, "until", ev->until);
	json_kv_int(j, "max_connections", ev->max_connections);
	json_kv_int(j, "rate_count", ev->rate_count);
	json_kv_int(j, "rate_interval", ev->rate_interval);
}

void
outbox_json(struct json *j, const struct outbox_event *ev)
{
	time_t secs = (time_t)(ev->time_ms / 1000);
	struct tm tm;
	char ts[64];

	gmtime_r(&secs, &tm);
	snprintf(ts, sizeof(ts), "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ",
	    tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
	    tm.tm_min, tm.tm_sec, (int)(ev->time_ms % 1000));
	json_object_begin(j);
	if (ev->seq != 0)
		json_kv_int(j, "seq", (int64_t)ev->seq);
	json_kv_str(j, "time", ts);
	json_kv_str(j, "event", outbox_kind_name(ev->kind));
	if (ev->kind == OUTBOX_DESTINATION) {
		outbox_json_dest(j, ev);
		json_object_end(j);
		return;
	}
	json_kv_str(j, "queue_id", ev->qid);
	json_kv_str(j, "sender", ev->sender);
	if (ev->kind == OUTBOX_ACCEPTED) {
		json_key(j, "recipients");
		json_array_begin(j);
		for (size_t i = 0; i < ev->nrecipients; i++)
			json_str(j, ev->recipients[i]);
		json_array_end(j);
		json_kv_int(j, "size", (int64_t)ev->size);
		json_kv_str(j, "client", ev->client);
		json_kv_str(j, "helo", ev->helo);
		json_kv_str(j, "sasl_username", ev->sasl_username);
		json_kv_str(j, "tls", ev->tls);
		json_kv_str(j, "listener", ev->listener);
	} else {
		json_kv_str(j, "recipient", ev->recipient);
		/* Set only where joined from the accepted event (evlog). */
		if (ev->sasl_username != NULL)
			json_kv_str(j, "sasl_username", ev->sasl_username);
		json_kv_str(j, "relay", ev->relay);
		json_kv_str(j, "dsn", ev->dsn);
		json_kv_str(j, "reply", ev->reply);
		json_kv_int(j, "attempts", ev->attempts);
		json_kv_int(j, "delay", ev->delay);
		if (ev->kind == OUTBOX_DEFERRED)
			json_kv_int(j, "next_attempt", ev->next_attempt);
		/* "d=DOMAIN s=SELECTOR", or "unsigned". */
		if (ev->dkim != NULL)
			json_kv_str(j, "dkim", ev->dkim);
	}
	if (ev->class != NULL)
		json_kv_str(j, "class", ev->class);
	if (ev->message_id != NULL)
		json_kv_str(j, "message_id", ev->message_id);
	if (ev->metadata != NULL) {
		json_key(j, "metadata");
		json_raw(j, ev->metadata);
	}
	if (ev->tags != NULL) {
		json_key(j, "tags");
		json_raw(j, ev->tags);
	}
	json_object_end(j);
}
