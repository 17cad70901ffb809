/*
 * qmgr_daemon.c - qmgr's daemon callbacks: start-up, the listener, and
 * the loop pass that drives the other rooms (results first, then new
 * work, then sending it), plus the hourly counter clean-up. See qmgr(8).
 */
#include <stdlib.h>
#include <time.h>

#include "acct.h"
#include "daemon.h"
#include "event.h"
#include "log.h"
#include "qmgr.h"

static int64_t qmgr_last_scan, qmgr_last_reader_check, qmgr_last_prune;
static int64_t qmgr_last_suppress_prune;

static void qmgr_prune_counters(void);

void
qmgr_init(const struct cfg *cfg)
{
	struct vbuf *why = vbuf_create(0);

	qmgr_cfg = cfg;
	qmgr_result_init(cfg);
	if ((qmgr_queue = qstore_open(cfg, why)) == NULL)
		log_fatal("queue %s: %s", cfg->queue_directory, why->data);
	vbuf_free(why);
	if (acct_open(cfg->log_accounting) == -1)
		log_warn("accounting log %s: %m", cfg->log_accounting);
	/* Slots of processes that died holding a read transaction. */
	if (qstore_reader_check(qmgr_queue) > 0)
		log_info("cleared stale LMDB reader slots");
	qmgr_reconcile();
	qmgr_suppress_open();
	qmgr_dest_init(cfg);
	qmgr_provider_held_by(qmgr_deliver_held_by);
}

void
qmgr_service(const struct daemon_listener *l)
{
	qmgr_request_accept(l);
}

int64_t
qmgr_loop(void)
{
	int64_t now = ev_now_ms(), next, wait;

	/* 1. Results first: they free slots and may make more work due. */
	if ((qmgr_results_due_in() == 0 || daemon_stopping()) &&
	    qmgr_results_apply() > 0)
		qmgr_sched_want();
	/* A report made: a new message, and room for the next report. */
	if (qmgr_bounce_made())
		qmgr_sched_want();
	/* Jobs waiting for a connection (smtp was busy or unreachable). */
	qmgr_deliver_run();
	/* 2. Then new work, when asked or on the timer. */
	if (daemon_stopping())
		return qmgr_busy() ? 200 : -1;
	if (now - qmgr_last_reader_check > 60000) {
		(void)qstore_reader_check(qmgr_queue);
		qmgr_last_reader_check = now;
	}
	if (now - qmgr_last_prune > QMGR_PRUNE_INTERVAL_MS) {
		qmgr_prune_counters();
		qmgr_last_prune = now;
	}
	if (now - qmgr_last_suppress_prune > QMGR_SUPPRESS_PRUNE_MS) {
		qmgr_suppress_prune();
		qmgr_last_suppress_prune = now;
	}
	next = qmgr_sched_next_due();
	if (qmgr_sched_wanted() || now - qmgr_last_scan >=
	    QMGR_SCAN_INTERVAL_MS || (next >= 0 && next <= now)) {
		if (qmgr_deliver_free_slots() > 0) {
			qmgr_last_scan = now;
			qmgr_sched_scan(qmgr_deliver_free_slots());
			/* 3. What the scan made goes out at once. */
			qmgr_deliver_run();
		}
	}
	qmgr_bounce_run();
	wait = QMGR_SCAN_INTERVAL_MS;
	next = qmgr_sched_next_due();
	/* Past due with every slot busy: a freed slot wakes the loop. */
	if (next >= 0 && next - now < wait && qmgr_deliver_free_slots() > 0)
		wait = next - now < 0 ? 0 : next - now;
	if ((next = qmgr_results_due_in()) >= 0 && next < wait)
		wait = next;
	/* A rate-limited destination's next token. */
	if ((next = qmgr_dest_next_ms()) >= 0 && next < wait)
		wait = next;
	return wait;
}

/*
 * Drops rate, failed-login and block counters whose window is long over,
 * so that addresses seen once do not stay in the database for ever.
 */
static void
qmgr_prune_counters(void)
{
	struct qstore_txn *txn;
	int n;

	if ((txn = qstore_txn_begin(qmgr_queue, 1, NULL)) == NULL)
		return;
	n = qstore_counter_prune(txn, (int64_t)time(NULL) - QMGR_COUNTER_KEEP);
	if (qstore_txn_commit(txn, NULL) == 0 && n > 0)
		log_info("removed %d expired counter(s)", n);
}

int
qmgr_busy(void)
{
	return qmgr_deliver_busy() > 0 || qmgr_results_due_in() >= 0 ||
	    qmgr_bounce_in_flight();
}
