/*
 * webhookd.c - the events daemon: the outbox's one consumer. It moves
 * each event into its own store (lib/whstore) and sends it to every
 * endpoint that wants it, signed, retried until a 2xx or max_age. See
 * webhookd(8).
 */
#include <stddef.h>
#include <stdint.h>

#include <lmdb.h>

#include "daemon.h"
#include "event.h"
#include "log.h"
#include "outbox.h"
#include "webhookd.h"
#include "whstore.h"

#define WH_INGEST_EVERY_MS	250	/* outbox poll */
#define WH_RESCAN_MS		0	/* after a request ends */
#define WH_PRUNE_EVERY_MS	60000
#define WH_PRUNE_BATCH		1000	/* events looked at per prune */
#define WH_SWEEP_BATCH		5000	/* joins looked at per prune */
#define WH_KEEP_SENT_MS		(24LL * 3600 * 1000)	/* history of sent */

static int64_t wh_next_ingest, wh_next_prune, wh_next_scan;
static int64_t wh_dead_ms;

static void
webhookd_init(const struct cfg *cfg)
{
	struct vbuf why;

	(void)webhookd_ingest_init(cfg);
	(void)webhookd_deliver_init(cfg);
	vbuf_init(&why, 0);
	if (webhookd_log_init(cfg, &why) == -1)
		log_warn("delivery log: %s", why.data);
	vbuf_release(&why);
	wh_dead_ms = cfg->events_dead_age * 1000;
	log_info("%zu endpoint(s)", webhookd_nendpoints());
}

static void
webhookd_prune(int64_t now)
{
	struct whstore *s = webhookd_store();
	MDB_txn *txn;

	if (mdbdir_begin(&s->md, 0, &txn, NULL) != 1)
		return;
	if (whstore_prune(s, txn, now, WH_KEEP_SENT_MS, wh_dead_ms,
	    WH_PRUNE_BATCH) < 0 || mdb_txn_commit(txn) != 0) {
		log_warn("webhook store: prune failed");
		return;
	}
	webhookd_msg_sweep(WH_SWEEP_BATCH);
	webhookd_log_prune(now);
}

/* After every loop pass: ingest on its tick, start what is due. */
static int64_t
webhookd_loop(void)
{
	int64_t now = ev_now_ms(), wait, w;
	int n = 0;

	if (daemon_stopping())
		return webhookd_deliver_busy() ? 200 : -1;
	if (now >= wh_next_ingest) {
		/* Bounded batches; more waiting means go again at once. */
		n = webhookd_ingest();
		wh_next_ingest = n > 0 ? now : now + WH_INGEST_EVERY_MS;
		if (n > 0)
			wh_next_scan = now;
	}
	webhookd_log_tick(outbox_now_ms());
	if (now >= wh_next_prune) {
		webhookd_prune(outbox_now_ms());
		wh_next_prune = now + WH_PRUNE_EVERY_MS;
	}
	/* A free slot is filled at once (the rescan resumes, it is cheap). */
	if (webhookd_deliver_freed() && wh_next_scan > now + WH_RESCAN_MS)
		wh_next_scan = now + WH_RESCAN_MS;
	if (now >= wh_next_scan) {
		w = webhookd_deliver();
		/* Rescan on the ingest tick or when something falls due. */
		wh_next_scan = now + (w >= 0 && w < WH_INGEST_EVERY_MS ?
		    w : WH_INGEST_EVERY_MS);
	} else if ((w = webhookd_deliver_flush(0)) >= 0 &&
	    now + w < wh_next_scan)
		wh_next_scan = now + w;
	wait = wh_next_ingest - now;
	if (wh_next_scan - now < wait)
		wait = wh_next_scan - now;
	return wait < 0 ? 0 : wait;
}

static int
webhookd_busy(void)
{
	return webhookd_deliver_busy();
}

int
main(int argc, char *argv[])
{
	static const struct daemon_spec spec = {
		.name = "webhookd",
		.solitary = 1,			/* one consumer per queue */
		.init = webhookd_init,		/* queue, store, endpoints */
		.loop = webhookd_loop,		/* ingest and deliver */
		.busy = webhookd_busy,		/* requests in flight */
	};

	daemon_main(argc, argv, &spec);
	/* NOTREACHED */
}
