/*
 * webhookd_esp.c - the providers' payload shapes (Mailgun, SendGrid,
 * Postmark), so that an application moving from one keeps its webhook
 * handler. Placeholder until they are written: no shape yet.
 */
#include "webhookd.h"

int
webhookd_render_esp(const struct wh_endpoint *ep,
    const struct outbox_event *ev, const char *id, int64_t now,
    struct wh_request *req)
{
	(void)ep;
	(void)ev;
	(void)id;
	(void)now;
	(void)req;
	return -1;
}
