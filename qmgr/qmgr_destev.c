/*
 * qmgr_destev.c - a destination's changes of state, as events in the
 * outbox (lib/outbox, OUTBOX_DESTINATION; qmgr(8), DESTINATION EVENTS).
 *
 * qmgr_dest.c logs each change of a destination's state (normal,
 * backoff, suspended, dead) in one line and then calls qmgr_destev_note,
 * which compares the state with the one last announced for it and, when
 * they differ, keeps an event in memory. The state is that of the
 * destination's mail from one source address of its pool, since on_reply
 * rules act per address (qmgr_dest.c): a change at one address is one
 * event naming it, a change of the destination itself (a dead site) one
 * event per address whose state it changes; a destination with no pool
 * has one address, and its events name none. Most changes happen outside any
 * transaction (a timer ends a backoff; smtp's reply suspends a site before
 * its results are applied), so the events wait here, at most
 * QMGR_DESTEV_MAX of them, and go into the outbox in the next results
 * transaction (qmgr_destev_put) or, at the end of the loop pass, in one
 * write transaction of their own (qmgr_destev_flush): one commit per pass
 * at most, never one per change. When more than QMGR_DESTEV_MAX wait (the
 * queue cannot be written), the oldest are dropped and counted, and a
 * warning says how many.
 *
 * Crash semantics: a destination's state is not durable (qmgr rebuilds it
 * from the replies it gets after a restart, qmgr(8), BUGS), and neither is
 * an event of it not yet written: a crash, or a SIGKILL, between a change
 * and the end of its loop pass loses that event. A written event is in
 * the outbox like any other, and its accounting log line is written after
 * its commit, so the two never disagree.
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "acct.h"
#include "event.h"
#include "log.h"
#include "outbox.h"
#include "qmgr.h"

struct qmgr_destev {
	int64_t		 time_ms;	/* epoch ms of the change */
	char		 dest[QMGR_DEST_KEY_MAX + 1];	/* "NEXTHOP/POOL" */
	char		 entry[SHAPING_NAME_MAX + 1];
	char		 source[QMGR_SRC_ADDR_MAX];	/* "": no pool */
	const char	*state;		/* static strings */
	const char	*prev;
	char		 reason[QMGR_DEST_REASON_MAX];
	int64_t		 until;		/* epoch s; 0 none */
	uint32_t	 max_connections;
	uint32_t	 rate_count;
	uint32_t	 rate_interval;
};

static struct qmgr_destev qmgr_destev_ring[QMGR_DESTEV_MAX];
static size_t qmgr_destev_first;	/* the oldest waiting */
static size_t qmgr_destev_n;		/* waiting */
static size_t qmgr_destev_nput;		/* of them, in an open transaction */
static uint64_t qmgr_destev_dropped;	/* not yet warned about */
static uint64_t qmgr_destev_dropped_all;

static void qmgr_destev_note_one(struct qmgr_dest *, struct qmgr_dest_src *,
    const char *, int, int64_t);
static void qmgr_destev_event(const struct qmgr_destev *,
    struct outbox_event *);

const char *
qmgr_destev_state(const struct qmgr_dest *d, const struct qmgr_dest_src *s,
    int64_t now)
{
	unsigned nbackoff = 0, nsuspended = 0;
	int a;

	if (d->dead_until != 0 && now < d->dead_until)
		return QMGR_DESTEV_DEAD;
	/* d as a whole: suspended at every address, backoff at some. */
	if (s == NULL)
		(void)qmgr_dest_adapt_left(d, &nbackoff, &nsuspended);
	else if ((a = qmgr_dest_src_adapt(s, now)) != 0) {
		nbackoff = a == SHAPING_BACKOFF;
		nsuspended = a == SHAPING_SUSPEND;
	}
	if (nsuspended == (s == NULL ? d->nsrcs : 1))
		return QMGR_DESTEV_SUSPENDED;
	/* Probing after its retry time: dead until a session is set up. */
	if (d->dead_until != 0)
		return QMGR_DESTEV_DEAD;
	if (nbackoff + nsuspended > 0)
		return QMGR_DESTEV_BACKOFF;
	return QMGR_DESTEV_NORMAL;
}

void
qmgr_destev_note(struct qmgr_dest *d, struct qmgr_dest_src *s,
    const char *reason, int again)
{
	int64_t now = ev_now_ms();

	if (s != NULL) {
		qmgr_destev_note_one(d, s, reason, again, now);
		return;
	}
	for (size_t i = 0; i < d->nsrcs; i++)
		qmgr_destev_note_one(d, &d->srcs[i], reason, again, now);
}

/* qmgr_destev_note at one address s of d. */
static void
qmgr_destev_note_one(struct qmgr_dest *d, struct qmgr_dest_src *s,
    const char *reason, int again, int64_t now)
{
	const char *st = qmgr_destev_state(d, s, now);
	const char *prev = s->ev_state != NULL ? s->ev_state :
	    QMGR_DESTEV_NORMAL;
	struct shaping_limits lim;
	struct qmgr_destev *e;
	int64_t until = 0;

	if (strcmp(st, prev) == 0 && !again)
		return;
	s->ev_state = st;
	if (qmgr_destev_n == QMGR_DESTEV_MAX) {
		qmgr_destev_dropped++;
		qmgr_destev_dropped_all++;
		/* Not reached: no change is made inside a transaction. */
		if (qmgr_destev_nput > 0)
			return;
		/* Full: the oldest goes. */
		qmgr_destev_first = (qmgr_destev_first + 1) % QMGR_DESTEV_MAX;
		qmgr_destev_n--;
	}
	e = &qmgr_destev_ring[(qmgr_destev_first + qmgr_destev_n++) %
	    QMGR_DESTEV_MAX];
	memset(e, 0, sizeof(*e));
	e->time_ms = outbox_now_ms();
	(void)snprintf(e->dest, sizeof(e->dest), "%s", d->key);
	(void)snprintf(e->entry, sizeof(e->entry), "%s", d->entry);
	(void)snprintf(e->source, sizeof(e->source), "%s", s->addr);
	e->state = st;
	e->prev = prev;
	(void)snprintf(e->reason, sizeof(e->reason), "%s",
	    reason != NULL ? reason : "");
	if (strcmp(st, QMGR_DESTEV_DEAD) == 0) {
		if (d->dead_until > now)
			until = d->dead_until;
	} else if (strcmp(st, QMGR_DESTEV_NORMAL) != 0 &&
	    s->adapt_until > now)
		until = s->adapt_until;
	e->until = until != 0 ? qmgr_epoch_after_ms(until - now) : 0;
	qmgr_dest_src_limits(d, s, &lim);
	e->max_connections = lim.max_connections;
	e->rate_count = lim.rate_count;
	e->rate_interval = lim.rate_interval;
}

size_t
qmgr_destev_waiting(void)
{
	return qmgr_destev_n;
}

uint64_t
qmgr_destev_dropped_total(void)
{
	return qmgr_destev_dropped_all;
}

static void
qmgr_destev_event(const struct qmgr_destev *e, struct outbox_event *ev)
{
	memset(ev, 0, sizeof(*ev));
	ev->kind = OUTBOX_DESTINATION;
	ev->time_ms = e->time_ms;
	ev->destination = e->dest;
	ev->entry = e->entry[0] != '\0' ? e->entry : NULL;
	ev->source = e->source[0] != '\0' ? e->source : NULL;
	ev->state = e->state;
	ev->prev_state = e->prev;
	ev->reason = e->reason[0] != '\0' ? e->reason : NULL;
	ev->until = e->until;
	ev->max_connections = e->max_connections;
	ev->rate_count = e->rate_count;
	ev->rate_interval = e->rate_interval;
}

int
qmgr_destev_put(struct qstore_txn *txn, struct vbuf *why)
{
	struct outbox_event ev;
	size_t i;

	/* The accounting lines wait for the commit (acct_hold). */
	acct_hold();
	for (i = qmgr_destev_nput; i < qmgr_destev_n; i++) {
		qmgr_destev_event(&qmgr_destev_ring[(qmgr_destev_first + i) %
		    QMGR_DESTEV_MAX], &ev);
		if (outbox_put(txn, &ev, why) == -1)
			return -1;
		acct_event(&ev);
	}
	qmgr_destev_nput = qmgr_destev_n;
	return 0;
}

void
qmgr_destev_done(int committed)
{
	if (committed) {
		qmgr_destev_first = (qmgr_destev_first + qmgr_destev_nput) %
		    QMGR_DESTEV_MAX;
		qmgr_destev_n -= qmgr_destev_nput;
	}
	qmgr_destev_nput = 0;
}

void
qmgr_destev_flush(void)
{
	static int64_t warned_ms = -QMGR_WARN_INTERVAL_MS;
	struct qstore_txn *txn;
	struct vbuf *why;
	uint64_t dropped;
	int64_t now = ev_now_ms();

	if (qmgr_destev_dropped > 0) {
		log_warn("destination events: dropped the %" PRIu64 " oldest "
		    "change(s) of state not yet written to the outbox (more "
		    "than %d waiting)", qmgr_destev_dropped, QMGR_DESTEV_MAX);
		qmgr_destev_dropped = 0;
	}
	if (qmgr_destev_n == 0)
		return;
	why = vbuf_create(0);
	if ((txn = qstore_txn_begin(qmgr_queue, 1, why)) == NULL)
		goto fail;
	if (qmgr_destev_put(txn, why) == -1) {
		qstore_txn_abort(txn);
		goto fail;
	}
	/* qstore_txn_commit ends txn, committed or not. */
	if (qstore_txn_commit(txn, why) == -1)
		goto fail;
	acct_release(1);
	qmgr_destev_done(1);
	if ((dropped = outbox_dropped_to_report(qmgr_queue,
	    outbox_now_ms())) > 0)
		log_warn(OUTBOX_DROPPED_FMT, dropped);
	vbuf_free(why);
	return;
fail:
	acct_release(0);
	qmgr_destev_done(0);
	/* They wait for the next pass; one line a minute says so. */
	if (now - warned_ms >= QMGR_WARN_INTERVAL_MS) {
		log_warn("destination events: %zu not written to the outbox: "
		    "%s; trying again", qmgr_destev_n, why->data);
		warned_ms = now;
	}
	vbuf_free(why);
}

void
qmgr_destev_reset(void)
{
	qmgr_destev_first = qmgr_destev_n = qmgr_destev_nput = 0;
	qmgr_destev_dropped = qmgr_destev_dropped_all = 0;
}
