/*
 * webhookd_log.c - webhookd's side of the searchable delivery log
 * (lib/evlog): every event webhookd takes from the outbox is indexed, its
 * webhook outcomes noted, and events past log.retention pruned in bounded
 * steps once a minute.
 *
 * Crash safety: webhookd_log_add commits its batch (one LMDB transaction,
 * synced) before webhookd lets the outbox delete the events, so a crash
 * in between repeats the batch, which evlog_add skips event by event
 * (idempotent by seq). Webhook notes are kept in memory and written in
 * one transaction (one fsync) with the next batch of events, when
 * LOG_NOTES_MAX are pending or the oldest is LOG_NOTES_MS old (checked
 * on every pass of webhookd's loop, so a quiet endpoint's last outcome
 * is searchable within about a second), or at the minute's prune, so that an endpoint taking thousands of events a second
 * costs no fsync each. A note lost in a crash only leaves the story
 * without that line; delivery itself is webhookd's own store's.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

#define LOG_NOTES_MAX	1024
#define LOG_NOTES_MS	1000

struct log_note {
	uint64_t	 seq;
	int64_t		 time_ms;
	long		 http_status;
	char		 outcome[32];
	char		 endpoint[EVLOG_WH_ENDPOINT_MAX + 1];
};

static struct evlog	*evl;
static int64_t		 retention_ms;
static struct log_note	*notes;		/* LOG_NOTES_MAX */
static size_t		 nnotes;
static int64_t		 notes_since;	/* the oldest pending note's arrival */

static void	log_notes_flush(void);

/* Writes the pending webhook notes, one transaction for all. */
static void
log_notes_flush(void)
{
	struct evlog_note nt[LOG_NOTES_MAX];
	struct vbuf why;
	size_t i;

	if (nnotes == 0)
		return;
	for (i = 0; i < nnotes; i++) {
		nt[i].seq = notes[i].seq;
		nt[i].wh.time_ms = notes[i].time_ms;
		nt[i].wh.http_status = notes[i].http_status;
		nt[i].wh.outcome = notes[i].outcome;
		nt[i].wh.endpoint = notes[i].endpoint;
	}
	vbuf_init(&why, 0);
	if (evlog_webhooks(evl, nt, nnotes, &why) == -1)
		log_warn("delivery log: %zu webhook note(s) lost: %s", nnotes,
		    why.data);
	vbuf_release(&why);
	nnotes = 0;
}

int
webhookd_log_init(const struct cfg *cfg, struct vbuf *why)
{
	if (evl != NULL)
		return 0;
	retention_ms = cfg->log_retention * 1000;
	if ((evl = evlog_open(cfg, 1, why)) == NULL)
		return -1;
	if (notes == NULL && (notes = calloc(LOG_NOTES_MAX,
	    sizeof(*notes))) == NULL) {
		vbuf_setf(why, "delivery log: out of memory");
		return -1;
	}
	return 0;
}

int
webhookd_log_add(const struct outbox_event *const *evs, size_t n,
    struct vbuf *why)
{
	if (evl == NULL)
		return 0;
	log_notes_flush();
	if (n == 0)
		return 0;
	return evlog_add(evl, evs, n, why) < 0 ? -1 : 0;
}

void
webhookd_log_webhook(uint64_t seq, const char *endpoint, const char *outcome,
    long http_status, int64_t time_ms)
{
	struct log_note *nt;

	if (evl == NULL)
		return;
	if (nnotes == LOG_NOTES_MAX)
		log_notes_flush();
	nt = &notes[nnotes];
	nt->seq = seq;
	nt->time_ms = time_ms;
	nt->http_status = http_status;
	snprintf(nt->outcome, sizeof(nt->outcome), "%s",
	    outcome ? outcome : "");
	snprintf(nt->endpoint, sizeof(nt->endpoint), "%s",
	    endpoint ? endpoint : "");
	if (nnotes++ == 0)
		notes_since = outbox_now_ms();
	if (nnotes == LOG_NOTES_MAX ||
	    outbox_now_ms() - notes_since >= LOG_NOTES_MS)
		log_notes_flush();
}

void
webhookd_log_tick(int64_t now_ms)
{
	if (evl != NULL && nnotes > 0 && now_ms - notes_since >= LOG_NOTES_MS)
		log_notes_flush();
}

void
webhookd_log_prune(int64_t now_ms)
{
	struct vbuf why;
	int64_t t0;
	long n;

	if (evl == NULL)
		return;
	log_notes_flush();
	if (retention_ms <= 0)
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
