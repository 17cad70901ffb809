/*
 * webhookd_log.c - webhookd's side of the searchable delivery log
 * (lib/evlog): every event webhookd takes from the outbox is indexed, its
 * webhook outcomes noted, and events past log.retention pruned in bounded
 * steps once a minute.
 *
 * Crash safety: webhookd_log_add commits its batch (one LMDB transaction,
 * synced) before webhookd lets the outbox delete the events, so a crash
 * in between repeats the batch, which evlog_add skips event by event
 * (idempotent by seq). A webhook note lost in a crash only leaves the
 * story without that line; delivery itself is webhookd's own store's.
 */
#include <stdint.h>

#include "cfg.h"
#include "evlog.h"
#include "log.h"
#include "webhookd.h"

/*
 * Pruning: steps of LOG_PRUNE_STEP events, one write transaction each (so
 * no transaction is long), until nothing is old enough or LOG_PRUNE_MS
 * have passed. bench/evlog_bench measured about 11,000 events/s pruned
 * in a 5,000,000-event log, so one call a minute removes some 10,000
 * events: 15 million a day, more than this relay's daily volume at the
 * sizes log.map_size allows; a larger backlog is worked off over calls.
 */
#define LOG_PRUNE_STEP	1000
#define LOG_PRUNE_MS	1000

static struct evlog	*evl;
static int64_t		 retention_ms;

int
webhookd_log_init(const struct cfg *cfg, struct vbuf *why)
{
	if (evl != NULL)
		return 0;
	retention_ms = cfg->log_retention * 1000;
	if ((evl = evlog_open(cfg, 1, why)) == NULL)
		return -1;
	return 0;
}

int
webhookd_log_add(const struct outbox_event *const *evs, size_t n,
    struct vbuf *why)
{
	if (evl == NULL || n == 0)
		return 0;
	return evlog_add(evl, evs, n, why) < 0 ? -1 : 0;
}

void
webhookd_log_webhook(uint64_t seq, const char *endpoint, const char *outcome,
    long http_status, int64_t time_ms)
{
	struct vbuf why;

	if (evl == NULL)
		return;
	vbuf_init(&why, 0);
	if (evlog_webhook(evl, seq, endpoint, outcome, http_status, time_ms,
	    &why) == -1)
		log_warn("delivery log: %s", why.data);
	vbuf_release(&why);
}

void
webhookd_log_prune(int64_t now_ms)
{
	struct vbuf why;
	int64_t t0;
	long n;

	if (evl == NULL || retention_ms <= 0)
		return;
	vbuf_init(&why, 0);
	t0 = outbox_now_ms();
	do {
		n = evlog_prune(evl, now_ms - retention_ms, LOG_PRUNE_STEP,
		    &why);
		if (n < 0)
			log_warn("delivery log: %s", why.data);
	} while (n == LOG_PRUNE_STEP && outbox_now_ms() - t0 < LOG_PRUNE_MS);
	vbuf_release(&why);
}
