/*
 * webhookd_esp.c - the providers' payload shapes (Mailgun, SendGrid,
 * Postmark), so that an application moving from one keeps its webhook
 * handler, its signature check included.
 *
 * Used by webhookd_render for an endpoint whose format is not petrel.
 * Each shape follows what the provider sends and what the handlers people
 * use read (django-anymail's tracking views are the test's consumer):
 *
 *   mailgun   {"signature": {timestamp, token, signature},
 *             "event-data": {...}}, one event per request; signature =
 *             hex HMAC-SHA256(endpoint secret, timestamp + token).
 *   sendgrid  a JSON array of events (one per recipient); with an ECDSA
 *             P-256 key, signed as SendGrid's signed event webhook:
 *             base64(DER ECDSA(SHA-256(timestamp + body))).
 *   postmark  one object, RecordType Delivery or Bounce; Postmark signs
 *             nothing: its handlers check HTTP basic auth, which the
 *             endpoint's URL carries (https://user:pass@host/...).
 *
 * The event's own id (32 hex digits, the same on every retry) becomes the
 * provider's event id (Mailgun's token and event id, SendGrid's
 * sg_event_id, Postmark's numeric ID), so handlers that deduplicate keep
 * doing so. Field by field in webhookd(8), FORMATS.
 *
 * Metadata and tags are compact, valid JSON (smtpd checked them): they
 * are written as they are where a shape takes JSON, and read with jansson
 * (webhookd_appdata.c) where it takes parts of them.
 */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "b64.h"
#include "bclass.h"
#include "json.h"
#include "webhookd.h"

/* Headers every shape sends, and SendGrid's signature headers. */
#define ESP_CONTENT_TYPE	"Content-Type: application/json"
#define ESP_SG_SIG_HDR		"X-Twilio-Email-Event-Webhook-Signature"
#define ESP_SG_TS_HDR		"X-Twilio-Email-Event-Webhook-Timestamp"

/* Room for any struct tm as RFC 3339 (the compiler counts ints). */
#define ESP_TIME_SIZE		96

/* Postmark has no server of ours to name; its field is kept, as 0. */
#define ESP_PM_SERVER_ID	0
#define ESP_PM_STREAM		"outbound"

/* What Mailgun says of a recipient it did not try (its code 605). */
#define ESP_MG_SUPPRESS_CODE	605
#define ESP_MG_SUPPRESS_TEXT	"Not delivering to previously bounced address"

/* A Postmark bounce type: Type, TypeCode, Name, Description. */
struct esp_pm_type {
	const char	*type;
	int		 code;
	const char	*name;
	const char	*description;
};

static const struct esp_pm_type esp_pm_hard = { "HardBounce", 1,
    "Hard bounce", "The server was unable to deliver your message (ex: "
    "unknown user, mailbox not found)." };
static const struct esp_pm_type esp_pm_transient = { "Transient", 2,
    "Message delayed", "The server could not temporarily deliver your "
    "message (ex: Message is delayed due to network troubles)." };
static const struct esp_pm_type esp_pm_soft = { "SoftBounce", 4096,
    "Soft bounce", "Unable to temporarily deliver this email." };
static const struct esp_pm_type esp_pm_virus = { "VirusNotification", 8192,
    "Virus notification", "Bounce or notification from recipient's "
    "server indicating a virus." };
static const struct esp_pm_type esp_pm_deactivated = { "ManuallyDeactivated",
    100002, "Manually deactivated", "The email was manually "
    "deactivated." };
static const struct esp_pm_type esp_pm_blocked = { "Blocked", 100006,
    "ISP block", "The server was unable to deliver your message because "
    "of a block by the receiving server." };

/*
 * Keys SendGrid's events use (and django-anymail's list of them): custom
 * args, which SendGrid puts at the top level, may not take one of these
 * names, or a handler would read our metadata as SendGrid's field.
 */
static const char *const esp_sg_reserved[] = {
	"anymail_id", "asm_group_id", "attempt", "bounce_classification",
	"category", "cert_err", "email", "event", "ip",
	"marketing_campaign_id", "marketing_campaign_name", "newsletter",
	"nlvx_campaign_id", "nlvx_campaign_split_id", "nlvx_user_id", "pool",
	"post_type", "reason", "response", "send_at", "sg_event_id",
	"sg_message_id", "smtp-id", "status", "timestamp", "tls", "type",
	"url", "url_offset", "useragent",
};

static void	esp_meta(struct json *, const struct outbox_event *,
		    const struct wh_appdata *);
static void	esp_tags(struct json *, const struct outbox_event *,
		    const struct wh_appdata *);
static void	esp_time(int64_t ms, char[ESP_TIME_SIZE]);
static int	esp_reply_code(const struct outbox_event *, char *, size_t);
static void	esp_no_brackets(const char *, char *, size_t);
static void	esp_relay_host(const char *, char *, size_t);
static const char *esp_domain(const char *);
static int	esp_header(struct wh_request *, const char *, ...)
		    __attribute__((format(printf, 2, 3)));
static int	esp_hmac_hex(const unsigned char *, size_t, const char *,
		    size_t, char *, size_t);
static int	esp_content_type(struct wh_request *, struct vbuf *);
static int	esp_mailgun(const struct wh_endpoint *,
		    const struct outbox_event *, const char *, int64_t,
		    struct wh_request *, const struct wh_appdata *,
		    struct vbuf *);
static void	esp_sendgrid_one(struct json *, const struct outbox_event *,
		    const char *, const char *, const char *,
		    const struct wh_appdata *);
static int	esp_sendgrid(const struct wh_endpoint *,
		    const struct outbox_event *, const char *, int64_t,
		    struct wh_request *, const struct wh_appdata *,
		    struct vbuf *);
static int	esp_sendgrid_sign(EVP_PKEY *, const char *,
		    const struct vbuf *, struct vbuf *, struct vbuf *);
static const struct esp_pm_type *esp_pm_bounce_type(
		    const struct outbox_event *);
static int	esp_postmark(const struct outbox_event *, const char *,
		    struct wh_request *, const struct wh_appdata *,
		    struct vbuf *);

/* The metadata object as it is, or {}. */
static void
esp_meta(struct json *j, const struct outbox_event *ev,
    const struct wh_appdata *ad)
{
	if (ad->meta_ok)
		json_raw(j, ev->metadata);
	else {
		json_object_begin(j);
		json_object_end(j);
	}
}

/* The tags array as it is, or []. */
static void
esp_tags(struct json *j, const struct outbox_event *ev,
    const struct wh_appdata *ad)
{
	if (ad->tags_ok)
		json_raw(j, ev->tags);
	else {
		json_array_begin(j);
		json_array_end(j);
	}
}

/* Epoch milliseconds as RFC 3339 UTC with milliseconds. */
static void
esp_time(int64_t ms, char buf[ESP_TIME_SIZE])
{
	time_t secs = (time_t)(ms / 1000);
	struct tm tm;

	if (ms < 0 || gmtime_r(&secs, &tm) == NULL)
		memset(&tm, 0, sizeof(tm));
	snprintf(buf, ESP_TIME_SIZE, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ",
	    tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
	    tm.tm_min, tm.tm_sec, (int)(ms < 0 ? 0 : ms % 1000));
}

/*
 * The reply's 3-digit code (0 if none) and the enhanced status code into
 * dsn ("" if none), as lib/bclass reads them.
 */
static int
esp_reply_code(const struct outbox_event *ev, char *dsn, size_t size)
{
	return bclass_status(ev->dsn, ev->reply, dsn, size);
}

/* "<a@b>" as "a@b" (Mailgun's and Postmark's Message-ID form). */
static void
esp_no_brackets(const char *mid, char *buf, size_t size)
{
	size_t len;

	if (mid == NULL) {
		buf[0] = '\0';
		return;
	}
	len = strlen(mid);
	if (len >= 2 && mid[0] == '<' && mid[len - 1] == '>') {
		mid++;
		len -= 2;
	}
	snprintf(buf, size, "%.*s", (int)(len > size - 1 ? size - 1 : len),
	    mid);
}

/* "host[ip]:port" as "host"; "none" and NULL as "". */
static void
esp_relay_host(const char *relay, char *buf, size_t size)
{
	size_t n;

	if (relay == NULL || strcmp(relay, "none") == 0) {
		buf[0] = '\0';
		return;
	}
	n = strcspn(relay, "[");
	snprintf(buf, size, "%.*s", (int)(n > size - 1 ? size - 1 : n),
	    relay);
}

/* The domain of an address ("" if it has none). */
static const char *
esp_domain(const char *addr)
{
	const char *at;

	if (addr == NULL || (at = strrchr(addr, '@')) == NULL)
		return "";
	return at + 1;
}

/* Adds one "Name: value" header. Returns 0, or -1 if it does not fit. */
static int
esp_header(struct wh_request *req, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (req->nheaders >= WH_HEADERS_MAX)
		return -1;
	va_start(ap, fmt);
	n = vsnprintf(req->header[req->nheaders],
	    sizeof(req->header[req->nheaders]), fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= sizeof(req->header[req->nheaders]))
		return -1;
	req->nheaders++;
	return 0;
}

/* The Content-Type header every shape ends with: an enum wh_render. */
static int
esp_content_type(struct wh_request *req, struct vbuf *why)
{
	if (esp_header(req, ESP_CONTENT_TYPE) == -1) {
		if (why != NULL)
			vbuf_setf(why, "too many headers");
		return WH_RENDER_FAILED;
	}
	return WH_RENDER_OK;
}

/* Hex HMAC-SHA256 of msg under key into hex (65 bytes). 0 or -1. */
static int
esp_hmac_hex(const unsigned char *key, size_t keylen, const char *msg,
    size_t msglen, char *hex, size_t size)
{
	unsigned char mac[EVP_MAX_MD_SIZE];
	unsigned int maclen = 0, i;

	if (size < 65 || HMAC(EVP_sha256(), key, (int)keylen,
	    (const unsigned char *)msg, msglen, mac, &maclen) == NULL ||
	    maclen != 32)
		return -1;
	for (i = 0; i < maclen; i++)
		snprintf(hex + 2 * i, 3, "%02x", mac[i]);
	OPENSSL_cleanse(mac, sizeof(mac));
	return 0;
}

/*
 * Mailgun: accepted is "accepted"; delivered "delivered"; deferred
 * "failed" with severity temporary; bounced, expired and suppressed
 * "failed" with severity permanent and reason bounce, old (Mailgun's
 * "tried for too long") and suppress-bounce.
 */
static int
esp_mailgun(const struct wh_endpoint *ep, const struct outbox_event *ev,
    const char *id, int64_t now, struct wh_request *req,
    const struct wh_appdata *app, struct vbuf *why)
{
	char ts[24], sig[65], host[256], mid[1000], dsn[32];
	const char *event, *severity = NULL, *reason = NULL, *level;
	const char *rcpt, *desc = "";
	struct vbuf msg, targets;
	struct json j;
	enum bclass bc;
	int code;
	size_t i;

	rcpt = ev->recipient;
	switch (ev->kind) {
	case OUTBOX_ACCEPTED:
		event = "accepted";
		level = "info";
		/*
		 * XXX: Mailgun sends one accepted event per recipient; one
		 * request carries one event, so the first recipient is the
		 * "recipient" and envelope.targets lists them all.
		 */
		rcpt = ev->nrecipients > 0 ? ev->recipients[0] : "";
		break;
	case OUTBOX_DELIVERED:
		event = "delivered";
		level = "info";
		break;
	case OUTBOX_DEFERRED:
		event = "failed";
		severity = "temporary";
		reason = "generic";
		level = "warn";
		break;
	case OUTBOX_BOUNCED:
		event = "failed";
		severity = "permanent";
		reason = "bounce";
		level = "error";
		break;
	case OUTBOX_EXPIRED:
		event = "failed";
		severity = "permanent";
		reason = "old";
		level = "error";
		break;
	case OUTBOX_SUPPRESSED:
		event = "failed";
		severity = "permanent";
		reason = "suppress-bounce";
		level = "error";
		break;
	default:
		return WH_RENDER_NOSHAPE;
	}
	if (rcpt == NULL)
		rcpt = "";
	snprintf(ts, sizeof(ts), "%" PRId64, now);

	/* Signed as Mailgun signs: HMAC-SHA256(key, timestamp + token). */
	vbuf_init(&msg, 0);
	(void)vbuf_adds(&msg, ts);
	(void)vbuf_adds(&msg, id);
	sig[0] = '\0';
	if (ep->secret_len > 0 && esp_hmac_hex(ep->secret, ep->secret_len,
	    msg.data, msg.len, sig, sizeof(sig)) == -1) {
		vbuf_release(&msg);
		if (why != NULL)
			vbuf_setf(why, "HMAC-SHA256 signature failed");
		return WH_RENDER_FAILED;
	}
	vbuf_release(&msg);

	vbuf_reset(req->body);
	json_init(&j, req->body);
	json_object_begin(&j);
	json_key(&j, "signature");
	json_object_begin(&j);
	json_kv_str(&j, "timestamp", ts);
	json_kv_str(&j, "token", id);
	json_kv_str(&j, "signature", sig);
	json_object_end(&j);

	json_key(&j, "event-data");
	json_object_begin(&j);
	json_kv_str(&j, "id", id);
	json_key(&j, "timestamp");
	json_double(&j, (double)ev->time_ms / 1000.0, 3);
	json_kv_str(&j, "log-level", level);
	json_kv_str(&j, "event", event);
	if (severity != NULL)
		json_kv_str(&j, "severity", severity);
	if (reason != NULL)
		json_kv_str(&j, "reason", reason);
	json_kv_str(&j, "recipient", rcpt);
	json_kv_str(&j, "recipient-domain", esp_domain(rcpt));
	if (ev->kind == OUTBOX_ACCEPTED)
		json_kv_str(&j, "method", "smtp");

	json_key(&j, "envelope");
	json_object_begin(&j);
	json_kv_str(&j, "transport", "smtp");
	json_kv_str(&j, "sender", ev->sender != NULL ? ev->sender : "");
	vbuf_init(&targets, 0);
	if (ev->kind == OUTBOX_ACCEPTED)
		for (i = 0; i < ev->nrecipients; i++) {
			if (i > 0)
				(void)vbuf_addc(&targets, ',');
			(void)vbuf_adds(&targets, ev->recipients[i]);
		}
	else
		(void)vbuf_adds(&targets, rcpt);
	json_kv_str(&j, "targets", targets.data);
	vbuf_release(&targets);
	json_object_end(&j);

	json_key(&j, "flags");
	json_object_begin(&j);
	json_key(&j, "is-authenticated");
	json_bool(&j, ev->sasl_username != NULL);
	json_key(&j, "is-routed");
	json_bool(&j, 0);
	json_key(&j, "is-system-test");
	json_bool(&j, 0);
	json_key(&j, "is-test-mode");
	json_bool(&j, 0);
	json_object_end(&j);

	if (ev->kind != OUTBOX_ACCEPTED) {
		code = esp_reply_code(ev, dsn, sizeof(dsn));
		if (ev->class != NULL && bclass_from_name(ev->class, &bc) == 0)
			desc = bclass_describe(bc);
		if (ev->kind == OUTBOX_SUPPRESSED) {
			code = ESP_MG_SUPPRESS_CODE;
			desc = ESP_MG_SUPPRESS_TEXT;
		}
		esp_relay_host(ev->relay, host, sizeof(host));
		json_key(&j, "delivery-status");
		json_object_begin(&j);
		json_key(&j, "tls");
		json_bool(&j, ev->tls != NULL);
		json_kv_str(&j, "mx-host", host);
		json_kv_int(&j, "attempt-no", ev->attempts);
		json_kv_str(&j, "description", desc);
		json_kv_int(&j, "code", code);
		if (dsn[0] != '\0')
			json_kv_str(&j, "enhanced-code", dsn);
		json_kv_str(&j, "message", ev->reply != NULL ? ev->reply :
		    "");
		if (ev->kind == OUTBOX_DEFERRED && ev->next_attempt > 0)
			json_kv_int(&j, "retry-seconds",
			    ev->next_attempt * 1000 > ev->time_ms ?
			    ev->next_attempt - ev->time_ms / 1000 : 0);
		json_object_end(&j);
	}

	esp_no_brackets(ev->message_id, mid, sizeof(mid));
	json_key(&j, "message");
	json_object_begin(&j);
	json_key(&j, "headers");
	json_object_begin(&j);
	if (mid[0] != '\0')
		json_kv_str(&j, "message-id", mid);
	json_kv_str(&j, "from", ev->sender != NULL ? ev->sender : "");
	json_kv_str(&j, "to", rcpt);
	json_object_end(&j);
	json_key(&j, "attachments");
	json_array_begin(&j);
	json_array_end(&j);
	if (ev->kind == OUTBOX_ACCEPTED)
		json_kv_int(&j, "size", (int64_t)ev->size);
	json_object_end(&j);

	json_key(&j, "campaigns");
	json_array_begin(&j);
	json_array_end(&j);
	json_key(&j, "tags");
	esp_tags(&j, ev, app);
	json_key(&j, "user-variables");
	esp_meta(&j, ev, app);
	json_object_end(&j);
	json_object_end(&j);
	return esp_content_type(req, why);
}

/* One SendGrid event object for recipient rcpt, with event id eid. */
static void
esp_sendgrid_one(struct json *j, const struct outbox_event *ev,
    const char *rcpt, const char *eid, const char *event,
    const struct wh_appdata *app)
{
	const char *type, *reply = ev->reply != NULL ? ev->reply : "";
	char dsn[32];
	enum bclass bc;
	size_t i, m;
	int skip;

	json_object_begin(j);
	json_kv_str(j, "email", rcpt);
	json_kv_int(j, "timestamp", ev->time_ms / 1000);
	if (ev->message_id != NULL)
		json_kv_str(j, "smtp-id", ev->message_id);
	json_kv_str(j, "event", event);
	json_kv_str(j, "sg_event_id", eid);
	/* The queue id is what SendGrid's X-Message-Id is to SMTP users. */
	json_kv_str(j, "sg_message_id", ev->qid);
	if (app->tags_ok && app->ntags > 0) {
		json_key(j, "category");
		json_raw(j, ev->tags);
	}
	(void)esp_reply_code(ev, dsn, sizeof(dsn));
	switch (ev->kind) {
	case OUTBOX_DELIVERED:
		json_kv_str(j, "response", reply);
		json_kv_int(j, "tls", ev->tls != NULL);
		break;
	case OUTBOX_DEFERRED:
		json_kv_str(j, "response", reply);
		/* SendGrid sends the count as a string. */
		{
			char n[16];

			snprintf(n, sizeof(n), "%" PRIu32, ev->attempts);
			json_kv_str(j, "attempt", n);
		}
		break;
	case OUTBOX_BOUNCED:
	case OUTBOX_EXPIRED:
		type = "bounce";
		if (ev->kind == OUTBOX_EXPIRED)
			type = "expired";
		else if (ev->class != NULL &&
		    bclass_from_name(ev->class, &bc) == 0 &&
		    (bc == BCLASS_POLICY_RELATED || bc == BCLASS_SPAM_RELATED ||
		    bc == BCLASS_VIRUS_RELATED ||
		    bc == BCLASS_CONTENT_RELATED))
			type = "blocked";	/* refused for the sender */
		json_kv_str(j, "reason", reply);
		json_kv_str(j, "status", dsn);
		json_kv_str(j, "type", type);
		break;
	case OUTBOX_SUPPRESSED:
		json_kv_str(j, "reason", "Bounced Address");
		json_kv_str(j, "status", dsn);
		break;
	default:
		break;
	}
	/* Custom args: strings, at the top level, never over our keys. */
	for (m = 0; m < app->nmeta; m++) {
		skip = 0;
		for (i = 0; i < sizeof(esp_sg_reserved) /
		    sizeof(esp_sg_reserved[0]); i++)
			if (strcmp(app->meta_key[m], esp_sg_reserved[i]) == 0)
				skip = 1;
		if (!skip)
			json_kv_str(j, app->meta_key[m], app->meta_str[m]);
	}
	json_object_end(j);
}

/*
 * SendGrid: accepted is "processed" (one event per recipient), delivered
 * "delivered", deferred "deferred", bounced and expired "bounce" (type
 * bounce, blocked or expired), suppressed "dropped".
 */
static int
esp_sendgrid(const struct wh_endpoint *ep, const struct outbox_event *ev,
    const char *id, int64_t now, struct wh_request *req,
    const struct wh_appdata *app, struct vbuf *why)
{
	char eid[64], ts[24];
	const char *event;
	struct vbuf sig;
	struct json j;
	size_t i;

	switch (ev->kind) {
	case OUTBOX_ACCEPTED:
		event = "processed";
		break;
	case OUTBOX_DELIVERED:
		event = "delivered";
		break;
	case OUTBOX_DEFERRED:
		event = "deferred";
		break;
	case OUTBOX_BOUNCED:
	case OUTBOX_EXPIRED:
		event = "bounce";
		break;
	case OUTBOX_SUPPRESSED:
		event = "dropped";
		break;
	default:
		return WH_RENDER_NOSHAPE;
	}
	vbuf_reset(req->body);
	json_init(&j, req->body);
	json_array_begin(&j);
	if (ev->kind == OUTBOX_ACCEPTED) {
		/* Each recipient's event its own id: ID.INDEX. */
		for (i = 0; i < ev->nrecipients; i++) {
			snprintf(eid, sizeof(eid), "%s.%zu", id, i);
			esp_sendgrid_one(&j, ev, ev->recipients[i], eid, event,
			    app);
		}
	} else
		esp_sendgrid_one(&j, ev, ev->recipient != NULL ?
		    ev->recipient : "", id, event, app);
	json_array_end(&j);
	if (esp_content_type(req, why) == WH_RENDER_FAILED)
		return WH_RENDER_FAILED;
	if (ep->sendgrid_key == NULL)
		return WH_RENDER_OK;
	snprintf(ts, sizeof(ts), "%" PRId64, now);
	vbuf_init(&sig, 0);
	if (esp_sendgrid_sign(ep->sendgrid_key, ts, req->body, &sig,
	    why) == -1) {
		vbuf_release(&sig);
		return WH_RENDER_FAILED;
	}
	if (esp_header(req, "%s: %s", ESP_SG_SIG_HDR, sig.data) == -1 ||
	    esp_header(req, "%s: %s", ESP_SG_TS_HDR, ts) == -1) {
		vbuf_release(&sig);
		if (why != NULL)
			vbuf_setf(why, "too many headers");
		return WH_RENDER_FAILED;
	}
	vbuf_release(&sig);
	return WH_RENDER_OK;
}

/*
 * SendGrid's signed event webhook: ECDSA with SHA-256 over the timestamp
 * header's text followed by the body, the DER signature in base64 into
 * out. Returns 0, or -1 with why (which may be NULL) set from OpenSSL's
 * error queue, which is left empty either way: curl reads the same
 * thread's queue after its own TLS calls.
 */
static int
esp_sendgrid_sign(EVP_PKEY *key, const char *ts, const struct vbuf *body,
    struct vbuf *out, struct vbuf *why)
{
	unsigned char der[256];
	char err[256];
	size_t len = sizeof(der);
	unsigned long e;
	EVP_MD_CTX *ctx;
	int ok;

	ERR_clear_error();
	ok = (ctx = EVP_MD_CTX_new()) != NULL &&
	    EVP_DigestSignInit(ctx, NULL, EVP_sha256(), NULL, key) == 1 &&
	    EVP_DigestSignUpdate(ctx, ts, strlen(ts)) == 1 &&
	    EVP_DigestSignUpdate(ctx, body->data, body->len) == 1 &&
	    EVP_DigestSignFinal(ctx, der, &len) == 1;
	EVP_MD_CTX_free(ctx);
	if (!ok) {
		if ((e = ERR_get_error()) != 0)
			ERR_error_string_n(e, err, sizeof(err));
		else
			snprintf(err, sizeof(err), "%s", "no reason given");
		ERR_clear_error();
		if (why != NULL)
			vbuf_setf(why, "ECDSA signature failed: %s", err);
		return -1;
	}
	vbuf_reset(out);
	if (b64_encode(out, der, len, 0) == -1) {
		if (why != NULL)
			vbuf_setf(why, "ECDSA signature: base64 failed");
		return -1;
	}
	return 0;
}

/*
 * The Postmark bounce type of a failure: a deferral is Transient; an
 * expiry a SoftBounce; a suppressed address ManuallyDeactivated (on our
 * list, not tried); a bounce by its class: a full mailbox SoftBounce,
 * spam or policy refusals Blocked, a virus VirusNotification, the rest
 * HardBounce.
 */
static const struct esp_pm_type *
esp_pm_bounce_type(const struct outbox_event *ev)
{
	enum bclass bc;

	switch (ev->kind) {
	case OUTBOX_DEFERRED:
		return &esp_pm_transient;
	case OUTBOX_EXPIRED:
		return &esp_pm_soft;
	case OUTBOX_SUPPRESSED:
		return &esp_pm_deactivated;
	default:
		break;
	}
	if (ev->class == NULL || bclass_from_name(ev->class, &bc) == -1)
		return &esp_pm_hard;
	switch (bc) {
	case BCLASS_QUOTA_ISSUES:
		return &esp_pm_soft;
	case BCLASS_POLICY_RELATED:
	case BCLASS_SPAM_RELATED:
		return &esp_pm_blocked;
	case BCLASS_VIRUS_RELATED:
		return &esp_pm_virus;
	default:
		return &esp_pm_hard;
	}
}

/*
 * Postmark: delivered is a Delivery record; deferred, bounced, expired
 * and suppressed Bounce records (esp_pm_bounce_type). Postmark has no
 * record for a message accepted: WH_RENDER_NOSHAPE.
 */
static int
esp_postmark(const struct outbox_event *ev, const char *id,
    struct wh_request *req, const struct wh_appdata *app, struct vbuf *why)
{
	const struct esp_pm_type *pt;
	char when[ESP_TIME_SIZE], mid[1000], hex[14];
	struct json j;
	enum bclass bc;
	int inactive;

	if (ev->kind == OUTBOX_ACCEPTED || ev->kind < OUTBOX_ACCEPTED ||
	    ev->kind > OUTBOX_SUPPRESSED)
		return WH_RENDER_NOSHAPE;
	esp_time(ev->time_ms, when);
	esp_no_brackets(ev->message_id, mid, sizeof(mid));
	if (mid[0] == '\0')
		snprintf(mid, sizeof(mid), "%s", ev->qid);
	vbuf_reset(req->body);
	json_init(&j, req->body);
	json_object_begin(&j);
	if (ev->kind == OUTBOX_DELIVERED) {
		json_kv_str(&j, "RecordType", "Delivery");
		json_kv_int(&j, "ServerID", ESP_PM_SERVER_ID);
		json_kv_str(&j, "MessageStream", ESP_PM_STREAM);
		json_kv_str(&j, "MessageID", mid);
		json_kv_str(&j, "Recipient", ev->recipient);
		json_kv_str(&j, "Tag", (app->first_tag != NULL ? app->first_tag : ""));
		json_kv_str(&j, "DeliveredAt", when);
		json_kv_str(&j, "Details", ev->reply != NULL ? ev->reply : "");
	} else {
		pt = esp_pm_bounce_type(ev);
		/*
		 * Postmark's ID is a number: the event id's first 52 bits,
		 * exact in every JSON reader, and the same on each retry.
		 */
		snprintf(hex, sizeof(hex), "%.13s", id);
		/* Inactive: Postmark will not send there again. */
		inactive = ev->kind == OUTBOX_SUPPRESSED ||
		    (ev->kind == OUTBOX_BOUNCED && ev->class != NULL &&
		    bclass_from_name(ev->class, &bc) == 0 &&
		    bclass_suppresses(bc));
		json_kv_str(&j, "RecordType", "Bounce");
		json_kv_int(&j, "ID", (int64_t)strtoull(hex, NULL, 16));
		json_kv_str(&j, "Type", pt->type);
		json_kv_int(&j, "TypeCode", pt->code);
		json_kv_str(&j, "Name", pt->name);
		json_kv_str(&j, "Tag", (app->first_tag != NULL ? app->first_tag : ""));
		json_kv_str(&j, "MessageID", mid);
		json_kv_int(&j, "ServerID", ESP_PM_SERVER_ID);
		json_kv_str(&j, "MessageStream", ESP_PM_STREAM);
		json_kv_str(&j, "Description", pt->description);
		json_kv_str(&j, "Details", ev->reply != NULL ? ev->reply : "");
		json_kv_str(&j, "Email", ev->recipient);
		json_kv_str(&j, "From", ev->sender != NULL ? ev->sender : "");
		json_kv_str(&j, "BouncedAt", when);
		json_key(&j, "DumpAvailable");
		json_bool(&j, 0);
		json_key(&j, "Inactive");
		json_bool(&j, inactive);
		json_key(&j, "CanActivate");
		json_bool(&j, 1);
		json_kv_str(&j, "Subject", "");
	}
	json_key(&j, "Metadata");
	esp_meta(&j, ev, app);
	json_object_end(&j);
	return esp_content_type(req, why);
}

int
webhookd_render_esp(const struct wh_endpoint *ep,
    const struct outbox_event *ev, const char *id, int64_t now,
    struct wh_request *req, struct vbuf *why)
{
	struct wh_appdata app;
	int rc;

	req->nheaders = 0;
	webhookd_appdata_parse(ev, &app);
	switch (ep->format) {
	case WH_FORMAT_MAILGUN:
		rc = esp_mailgun(ep, ev, id, now, req, &app, why);
		break;
	case WH_FORMAT_SENDGRID:
		rc = esp_sendgrid(ep, ev, id, now, req, &app, why);
		break;
	case WH_FORMAT_POSTMARK:
		rc = esp_postmark(ev, id, req, &app, why);
		break;
	default:
		rc = WH_RENDER_NOSHAPE;
		break;
	}
	webhookd_appdata_release(&app);
	return rc;
}
