/*
 * webhookd_log.c - webhookd's side of the searchable delivery log
 * (lib/evlog). Placeholder until the log exists: nothing is indexed.
 */
#include "webhookd.h"

int
webhookd_log_init(const struct cfg *cfg, struct vbuf *why)
{
	(void)cfg;
	(void)why;
	return 0;
}

int
webhookd_log_add(const struct outbox_event *const *evs, size_t n,
    struct vbuf *why)
{
	(void)evs;
	(void)n;
	(void)why;
	return 0;
}

void
webhookd_log_webhook(uint64_t seq, const char *endpoint, const char *outcome,
    long http_status, int64_t time_ms)
{
	(void)seq;
	(void)endpoint;
	(void)outcome;
	(void)http_status;
	(void)time_ms;
}

void
webhookd_log_prune(int64_t now_ms)
{
	(void)now_ms;
}
