/*
 * webhookd_format.c - what an endpoint receives: the format name, the
 * dispatch to a shape, the petrel shape (webhookd(8), PAYLOAD) and its
 * signature, and the stable event id.
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <openssl/hmac.h>

#include "json.h"
#include "webhookd.h"

static const char *const wh_format_names[] = {
	[WH_FORMAT_PETREL] = "petrel",
	[WH_FORMAT_MAILGUN] = "mailgun",
	[WH_FORMAT_SENDGRID] = "sendgrid",
	[WH_FORMAT_POSTMARK] = "postmark",
};

const char *
webhookd_format_name(enum wh_format f)
{
	if ((unsigned)f >= sizeof(wh_format_names) / sizeof(*wh_format_names))
		return NULL;
	return wh_format_names[f];
}

int
webhookd_format_parse(const char *s)
{
	size_t i;

	for (i = 0; i < sizeof(wh_format_names) / sizeof(*wh_format_names);
	    i++)
		if (strcmp(s, wh_format_names[i]) == 0)
			return (int)i;
	return -1;
}

void
webhookd_sign(const unsigned char *key, size_t keylen, int64_t t,
    const char *body, size_t len, char hex[65])
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0, i;
	struct vbuf in;

	vbuf_init(&in, 0);
	(void)vbuf_addf(&in, "%" PRId64 ".", t);
	(void)vbuf_add(&in, body, len);
	if (HMAC(EVP_sha256(), key, (int)keylen,
	    (const unsigned char *)in.data, in.len, md, &mdlen) == NULL)
		mdlen = 0;
	vbuf_release(&in);
	hex[0] = '\0';
	for (i = 0; i < mdlen && i < 32; i++)
		snprintf(hex + 2 * i, 3, "%02x", md[i]);
}

int
webhookd_wants(const struct wh_endpoint *ep, enum outbox_kind k)
{
	return k != OUTBOX_DESTINATION || ep->format == WH_FORMAT_PETREL;
}

static void
wh_time(char buf[64], size_t n, int64_t ms)
{
	time_t t = (time_t)(ms / 1000);
	struct tm tm;

	gmtime_r(&t, &tm);
	snprintf(buf, n, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ",
	    tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
	    tm.tm_min, tm.tm_sec, (int)(ms % 1000));
}

/*
 * A destination's change of state (webhookd(8), PAYLOAD): of no message,
 * so no queue id, recipient, metadata or tags.
 */
static void
wh_petrel_dest(struct json *j, const struct outbox_event *ev)
{
	char ts[64];

	json_kv_str(j, "destination", ev->destination);
	json_kv_str(j, "entry", ev->entry);
	json_kv_str(j, "source", ev->source);
	json_kv_str(j, "state", ev->state);
	json_kv_str(j, "previous_state", ev->prev_state);
	json_kv_str(j, "reason", ev->reason);
	if (ev->until > 0) {
		wh_time(ts, sizeof(ts), ev->until * 1000);
		json_kv_str(j, "until", ts);
	} else
		json_kv_str(j, "until", NULL);
	json_kv_int(j, "max_connections", ev->max_connections);
	json_kv_int(j, "rate_count", ev->rate_count);
	json_kv_int(j, "rate_interval", ev->rate_interval);
}

static void
wh_petrel(const struct outbox_event *ev, const char *id, struct vbuf *out)
{
	struct json j;
	char ts[64];

	json_init(&j, out);
	json_object_begin(&j);
	json_kv_str(&j, "event", outbox_kind_name(ev->kind));
	json_kv_str(&j, "id", id);
	wh_time(ts, sizeof(ts), ev->time_ms);
	json_kv_str(&j, "timestamp", ts);
	if (ev->kind == OUTBOX_DESTINATION) {
		wh_petrel_dest(&j, ev);
		json_object_end(&j);
		return;
	}
	json_kv_str(&j, "queue_id", ev->qid);
	if (ev->message_id != NULL)
		json_kv_str(&j, "message_id", ev->message_id);
	if (ev->sender != NULL)
		json_kv_str(&j, "sender", ev->sender);
	if (ev->recipient != NULL)
		json_kv_str(&j, "recipient", ev->recipient);
	else if (ev->kind == OUTBOX_ACCEPTED) {
		size_t i;

		json_key(&j, "recipients");
		json_array_begin(&j);
		for (i = 0; i < ev->nrecipients; i++)
			json_str(&j, ev->recipients[i]);
		json_array_end(&j);
	}
	if (ev->sasl_username != NULL)
		json_kv_str(&j, "user", ev->sasl_username);
	if (ev->dsn != NULL)
		json_kv_str(&j, "status", ev->dsn);
	if (ev->class != NULL)
		json_kv_str(&j, "class", ev->class);
	if (ev->kind == OUTBOX_BOUNCED || ev->kind == OUTBOX_EXPIRED ||
	    ev->kind == OUTBOX_SUPPRESSED)
		json_kv_str(&j, "severity", "hard");
	else if (ev->kind == OUTBOX_DEFERRED)
		json_kv_str(&j, "severity", "soft");
	if (ev->reply != NULL)
		json_kv_str(&j, "reply", ev->reply);
	if (ev->relay != NULL)
		json_kv_str(&j, "relay", ev->relay);
	if (ev->tls != NULL)
		json_kv_str(&j, "tls", ev->tls);
	if (ev->kind != OUTBOX_ACCEPTED)
		json_kv_int(&j, "attempts", ev->attempts);
	if (ev->kind == OUTBOX_DEFERRED && ev->next_attempt > 0) {
		wh_time(ts, sizeof(ts), ev->next_attempt * 1000);
		json_kv_str(&j, "next_attempt", ts);
	}
	json_key(&j, "metadata");
	json_raw(&j, ev->metadata != NULL && *ev->metadata != '\0' ?
	    ev->metadata : "{}");
	json_key(&j, "tags");
	json_raw(&j, ev->tags != NULL && *ev->tags != '\0' ? ev->tags : "[]");
	json_object_end(&j);
}

int
webhookd_render(const struct wh_endpoint *ep, const struct outbox_event *ev,
    const char *id, int64_t now, struct wh_request *req, struct vbuf *why)
{
	char hex[65];

	/* The providers have no event for a destination: never sent. */
	if (ep->format != WH_FORMAT_PETREL && ev->kind == OUTBOX_DESTINATION)
		return WH_RENDER_NOSHAPE;
	if (ep->format != WH_FORMAT_PETREL)
		return webhookd_render_esp(ep, ev, id, now, req, why);
	vbuf_reset(req->body);
	wh_petrel(ev, id, req->body);
	req->nheaders = 0;
	snprintf(req->header[req->nheaders++], sizeof(req->header[0]),
	    "Content-Type: application/json");
	snprintf(req->header[req->nheaders++], sizeof(req->header[0]),
	    "X-Petrel-Event-Id: %s", id);
	if (ep->secret_len > 0) {
		webhookd_sign(ep->secret, ep->secret_len, now,
		    req->body->data, req->body->len, hex);
		if (hex[0] == '\0') {
			/* Unsigned, a checking handler would refuse it. */
			if (why != NULL)
				vbuf_setf(why, "HMAC-SHA256 signature failed");
			return WH_RENDER_FAILED;
		}
		snprintf(req->header[req->nheaders++],
		    sizeof(req->header[0]),
		    "X-Petrel-Signature: t=%" PRId64 ",v1=%s", now, hex);
	}
	return WH_RENDER_OK;
}
