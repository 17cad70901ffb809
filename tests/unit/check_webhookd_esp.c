/*
 * check_webhookd_esp.c - unit tests for webhookd_esp.c: the Mailgun,
 * SendGrid and Postmark payloads of every kind of event, read back with
 * jansson, and their signatures checked here with OpenSSL's verify calls
 * (HMAC recomputed, ECDSA verified with the public half of the key).
 * django-anymail reads the same payloads in test_webhook_formats.
 */
#include <stdlib.h>
#include <string.h>

#include <check.h>
/*
 * jansson and lib/json (through webhookd.h) both declare a json_null;
 * jansson's is renamed here, and not used.
 */
#define json_null	jansson_json_null
#include <jansson.h>
#undef json_null
#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/pem.h>

#include "b64.h"
#include "vbuf.h"
#include "webhookd.h"

#define ID	"0123456789abcdef0123456789abcdef"
#define NOW	1700000000
#define KEY	"key-test-signing"

static Suite	*esp_suite(void);
static void	 event_init(struct outbox_event *, enum outbox_kind);
static void	 endpoint_init(struct wh_endpoint *, enum wh_format);
static json_t	*render(const struct wh_endpoint *,
		    const struct outbox_event *, struct wh_request *);
static const char *header(const struct wh_request *, const char *);
static const char *jstr(const json_t *, const char *);

static const char *const rcpts[] = { "a@example.org", "b@example.net" };

/* A recipient event as qmgr writes it, enriched as webhookd does. */
static void
event_init(struct outbox_event *ev, enum outbox_kind kind)
{
	memset(ev, 0, sizeof(*ev));
	ev->kind = kind;
	ev->time_ms = 1699999999123LL;
	snprintf(ev->qid, sizeof(ev->qid), "%s", "4Fq2Zk1mNx0p");
	ev->sender = "app@sender.example";
	ev->recipient = "user@example.org";
	ev->relay = "mx.example.org[192.0.2.1]:25";
	ev->attempts = 2;
	ev->sasl_username = "app1";
	ev->message_id = "<m1@sender.example>";
	ev->metadata = "{\"order\":\"42\",\"n\":7,\"event\":\"x\"}";
	ev->tags = "[\"welcome\",\"promo\"]";
	switch (kind) {
	case OUTBOX_ACCEPTED:
		ev->recipient = NULL;
		ev->relay = NULL;
		ev->recipients = rcpts;
		ev->nrecipients = 2;
		ev->size = 1234;
		ev->tls = "TLSv1.3";
		break;
	case OUTBOX_DELIVERED:
		ev->dsn = "2.0.0";
		ev->reply = "250 2.0.0 Ok: queued as X";
		break;
	case OUTBOX_DEFERRED:
		ev->dsn = "4.2.2";
		ev->reply = "452 4.2.2 Mailbox full";
		ev->class = "quota-issues";
		ev->next_attempt = 1700000300;
		break;
	case OUTBOX_BOUNCED:
		ev->dsn = "5.1.1";
		ev->reply = "550 5.1.1 No such user";
		ev->class = "bad-mailbox";
		break;
	case OUTBOX_EXPIRED:
		ev->dsn = "4.4.7";
		ev->reply = "451 4.4.1 Connection refused";
		ev->class = "message-expired";
		break;
	case OUTBOX_SUPPRESSED:
		ev->relay = "none";
		ev->dsn = "5.1.1";
		ev->reply = "recipient address is suppressed: hard bounce";
		ev->class = "bad-mailbox";
		ev->attempts = 0;
		break;
	case OUTBOX_DELETED:
		ev->relay = "none";
		ev->reply = "deleted by the administrator";
		break;
	case OUTBOX_DESTINATION:
		/* Of no message (qmgr_destev.c). */
		memset(ev->qid, 0, sizeof(ev->qid));
		ev->sender = ev->recipient = ev->relay = NULL;
		ev->sasl_username = ev->message_id = NULL;
		ev->metadata = ev->tags = NULL;
		ev->attempts = 0;
		ev->destination = "gmail.com:25";
		ev->state = "backoff";
		ev->prev_state = "normal";
		ev->reason = "421 4.7.28 unusual rate";
		ev->until = 1700001800;
		break;
	}
}

static void
endpoint_init(struct wh_endpoint *ep, enum wh_format f)
{
	memset(ep, 0, sizeof(*ep));
	ep->url = "http://127.0.0.1:1/hook";
	ep->format = f;
	ep->secret = (unsigned char *)KEY;
	ep->secret_len = strlen(KEY);
}

/* Renders and parses the body (NULL if render refused). */
static json_t *
render(const struct wh_endpoint *ep, const struct outbox_event *ev,
    struct wh_request *req)
{
	json_error_t err;
	json_t *root;

	memset(req, 0, sizeof(*req));
	req->body = vbuf_create(0);
	if (webhookd_render_esp(ep, ev, ID, NOW, req, NULL) != WH_RENDER_OK)
		return NULL;
	ck_assert_uint_ge(req->nheaders, 1);
	ck_assert_str_eq(req->header[0], "Content-Type: application/json");
	root = json_loads(req->body->data, 0, &err);
	ck_assert_msg(root != NULL, "body is not JSON: %s: %s", err.text,
	    req->body->data);
	return root;
}

/* The value of header name in req, or NULL. */
static const char *
header(const struct wh_request *req, const char *name)
{
	size_t i, n = strlen(name);

	for (i = 0; i < req->nheaders; i++)
		if (strncmp(req->header[i], name, n) == 0 &&
		    req->header[i][n] == ':')
			return req->header[i] + n + 2;
	return NULL;
}

static const char *
jstr(const json_t *o, const char *key)
{
	const char *s = json_string_value(json_object_get(o, key));

	ck_assert_msg(s != NULL, "no string member %s", key);
	return s;
}

START_TEST(test_mailgun_delivered)
{
	struct wh_endpoint ep;
	struct outbox_event ev;
	struct wh_request req;
	json_t *root, *sig, *ed, *ds, *uv;
	unsigned char mac[32];
	unsigned int maclen = 32;
	char hex[65], ts[16];
	int i;

	endpoint_init(&ep, WH_FORMAT_MAILGUN);
	event_init(&ev, OUTBOX_DELIVERED);
	root = render(&ep, &ev, &req);
	ck_assert_ptr_nonnull(root);
	sig = json_object_get(root, "signature");
	ck_assert_str_eq(jstr(sig, "timestamp"), "1700000000");
	ck_assert_str_eq(jstr(sig, "token"), ID);
	/* HMAC-SHA256(key, timestamp + token), as Mailgun documents. */
	snprintf(ts, sizeof(ts), "%d%s", NOW, "");
	{
		char msg[64];

		snprintf(msg, sizeof(msg), "%s%s", ts, ID);
		ck_assert_ptr_nonnull(HMAC(EVP_sha256(), KEY, strlen(KEY),
		    (unsigned char *)msg, strlen(msg), mac, &maclen));
	}
	for (i = 0; i < 32; i++)
		snprintf(hex + 2 * i, 3, "%02x", mac[i]);
	ck_assert_str_eq(jstr(sig, "signature"), hex);

	ed = json_object_get(root, "event-data");
	ck_assert_str_eq(jstr(ed, "event"), "delivered");
	ck_assert_str_eq(jstr(ed, "id"), ID);
	ck_assert_str_eq(jstr(ed, "recipient"), "user@example.org");
	ck_assert_str_eq(jstr(ed, "recipient-domain"), "example.org");
	ck_assert_ptr_null(json_object_get(ed, "severity"));
	ck_assert(json_real_value(json_object_get(ed, "timestamp")) >
	    1699999999.1 && json_real_value(json_object_get(ed,
	    "timestamp")) < 1699999999.2);
	ck_assert_str_eq(jstr(json_object_get(json_object_get(ed, "message"),
	    "headers"), "message-id"), "m1@sender.example");
	ds = json_object_get(ed, "delivery-status");
	ck_assert_int_eq(json_integer_value(json_object_get(ds, "code")), 250);
	ck_assert_str_eq(jstr(ds, "message"), "250 2.0.0 Ok: queued as X");
	ck_assert_str_eq(jstr(ds, "mx-host"), "mx.example.org");
	ck_assert_int_eq(json_integer_value(json_object_get(ds,
	    "attempt-no")), 2);
	uv = json_object_get(ed, "user-variables");
	ck_assert_str_eq(jstr(uv, "order"), "42");
	ck_assert_int_eq(json_integer_value(json_object_get(uv, "n")), 7);
	ck_assert_int_eq(json_array_size(json_object_get(ed, "tags")), 2);
	ck_assert_str_eq(json_string_value(json_array_get(json_object_get(ed,
	    "tags"), 1)), "promo");
	json_decref(root);
	vbuf_free(req.body);
}
END_TEST

START_TEST(test_mailgun_kinds)
{
	static const struct {
		enum outbox_kind kind;
		const char *event, *severity, *reason;
		int code;
	} t[] = {
		{ OUTBOX_ACCEPTED, "accepted", NULL, NULL, 0 },
		{ OUTBOX_DEFERRED, "failed", "temporary", "generic", 452 },
		{ OUTBOX_BOUNCED, "failed", "permanent", "bounce", 550 },
		{ OUTBOX_EXPIRED, "failed", "permanent", "old", 451 },
		{ OUTBOX_SUPPRESSED, "failed", "permanent", "suppress-bounce",
		    605 },
	};
	struct wh_endpoint ep;
	struct outbox_event ev;
	struct wh_request req;
	json_t *root, *ed, *ds;
	size_t i;

	endpoint_init(&ep, WH_FORMAT_MAILGUN);
	for (i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		event_init(&ev, t[i].kind);
		root = render(&ep, &ev, &req);
		ck_assert_ptr_nonnull(root);
		ed = json_object_get(root, "event-data");
		ck_assert_str_eq(jstr(ed, "event"), t[i].event);
		if (t[i].severity == NULL) {
			ck_assert_ptr_null(json_object_get(ed, "severity"));
			/* accepted: the first recipient, all as targets */
			ck_assert_str_eq(jstr(ed, "recipient"),
			    "a@example.org");
			ck_assert_str_eq(jstr(json_object_get(ed, "envelope"),
			    "targets"), "a@example.org,b@example.net");
			ck_assert_ptr_null(json_object_get(ed,
			    "delivery-status"));
		} else {
			ck_assert_str_eq(jstr(ed, "severity"), t[i].severity);
			ck_assert_str_eq(jstr(ed, "reason"), t[i].reason);
			ds = json_object_get(ed, "delivery-status");
			ck_assert_int_eq(json_integer_value(json_object_get(ds,
			    "code")), t[i].code);
		}
		if (t[i].kind == OUTBOX_BOUNCED) {
			ds = json_object_get(ed, "delivery-status");
			ck_assert_str_eq(jstr(ds, "enhanced-code"), "5.1.1");
			ck_assert_str_eq(jstr(ds, "message"),
			    "550 5.1.1 No such user");
		}
		if (t[i].kind == OUTBOX_DEFERRED)
			ck_assert_int_eq(json_integer_value(json_object_get(
			    json_object_get(ed, "delivery-status"),
			    "retry-seconds")), 301);
		json_decref(root);
		vbuf_free(req.body);
	}
}
END_TEST

/* Without a secret the signature is empty: a handler refuses it. */
START_TEST(test_mailgun_unsigned)
{
	struct wh_endpoint ep;
	struct outbox_event ev;
	struct wh_request req;
	json_t *root;

	endpoint_init(&ep, WH_FORMAT_MAILGUN);
	ep.secret = NULL;
	ep.secret_len = 0;
	event_init(&ev, OUTBOX_BOUNCED);
	root = render(&ep, &ev, &req);
	ck_assert_str_eq(jstr(json_object_get(root, "signature"),
	    "signature"), "");
	json_decref(root);
	vbuf_free(req.body);
}
END_TEST

START_TEST(test_sendgrid_kinds)
{
	static const struct {
		enum outbox_kind kind;
		const char *event, *type, *field, *value;
	} t[] = {
		{ OUTBOX_DELIVERED, "delivered", NULL, "response",
		    "250 2.0.0 Ok: queued as X" },
		{ OUTBOX_DEFERRED, "deferred", NULL, "attempt", "2" },
		{ OUTBOX_BOUNCED, "bounce", "bounce", "status", "5.1.1" },
		{ OUTBOX_EXPIRED, "bounce", "expired", "reason",
		    "451 4.4.1 Connection refused" },
		{ OUTBOX_SUPPRESSED, "dropped", NULL, "reason",
		    "Bounced Address" },
	};
	struct wh_endpoint ep;
	struct outbox_event ev;
	struct wh_request req;
	json_t *root, *e;
	size_t i;

	endpoint_init(&ep, WH_FORMAT_SENDGRID);
	for (i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		event_init(&ev, t[i].kind);
		root = render(&ep, &ev, &req);
		ck_assert(json_is_array(root));
		ck_assert_int_eq(json_array_size(root), 1);
		e = json_array_get(root, 0);
		ck_assert_str_eq(jstr(e, "event"), t[i].event);
		ck_assert_str_eq(jstr(e, "email"), "user@example.org");
		ck_assert_str_eq(jstr(e, "sg_event_id"), ID);
		ck_assert_str_eq(jstr(e, "sg_message_id"), "4Fq2Zk1mNx0p");
		ck_assert_str_eq(jstr(e, "smtp-id"), "<m1@sender.example>");
		ck_assert_int_eq(json_integer_value(json_object_get(e,
		    "timestamp")), 1699999999);
		ck_assert_str_eq(jstr(e, t[i].field), t[i].value);
		if (t[i].type != NULL)
			ck_assert_str_eq(jstr(e, "type"), t[i].type);
		else
			ck_assert_ptr_null(json_object_get(e, "type"));
		/* Custom args at the top level, as strings. */
		ck_assert_str_eq(jstr(e, "order"), "42");
		ck_assert_str_eq(jstr(e, "n"), "7");
		/* A metadata key named like SendGrid's field is left out. */
		ck_assert_str_eq(jstr(e, "event"), t[i].event);
		ck_assert_str_eq(json_string_value(json_array_get(
		    json_object_get(e, "category"), 0)), "welcome");
		ck_assert_ptr_null(header(&req, "X-Twilio-Email-Event-Webhook-"
		    "Signature"));
		json_decref(root);
		vbuf_free(req.body);
	}
}
END_TEST

/* A spam or policy refusal is SendGrid's "blocked". */
START_TEST(test_sendgrid_blocked)
{
	struct wh_endpoint ep;
	struct outbox_event ev;
	struct wh_request req;
	json_t *root;

	endpoint_init(&ep, WH_FORMAT_SENDGRID);
	event_init(&ev, OUTBOX_BOUNCED);
	ev.dsn = "5.7.1";
	ev.reply = "550 5.7.1 Message rejected as spam";
	ev.class = "spam-related";
	ev.tags = NULL;
	root = render(&ep, &ev, &req);
	ck_assert_str_eq(jstr(json_array_get(root, 0), "type"), "blocked");
	ck_assert_ptr_null(json_object_get(json_array_get(root, 0),
	    "category"));
	json_decref(root);
	vbuf_free(req.body);
}
END_TEST

START_TEST(test_sendgrid_processed)
{
	struct wh_endpoint ep;
	struct outbox_event ev;
	struct wh_request req;
	json_t *root;

	endpoint_init(&ep, WH_FORMAT_SENDGRID);
	event_init(&ev, OUTBOX_ACCEPTED);
	root = render(&ep, &ev, &req);
	ck_assert_int_eq(json_array_size(root), 2);
	ck_assert_str_eq(jstr(json_array_get(root, 0), "event"), "processed");
	ck_assert_str_eq(jstr(json_array_get(root, 1), "email"),
	    "b@example.net");
	ck_assert_str_eq(jstr(json_array_get(root, 0), "sg_event_id"),
	    ID ".0");
	ck_assert_str_eq(jstr(json_array_get(root, 1), "sg_event_id"),
	    ID ".1");
	json_decref(root);
	vbuf_free(req.body);
}
END_TEST

/* SendGrid's signed event webhook, verified with the public key. */
START_TEST(test_sendgrid_signed)
{
	struct wh_endpoint ep;
	struct outbox_event ev;
	struct wh_request req;
	unsigned char der[256];
	size_t derlen;
	EVP_PKEY_CTX *kctx;
	EVP_MD_CTX *mctx;
	EVP_PKEY *key = NULL;
	const char *sig, *ts;
	json_t *root;
	int pass;

	kctx = EVP_PKEY_CTX_new_from_name(NULL, "EC", NULL);
	ck_assert_ptr_nonnull(kctx);
	ck_assert_int_eq(EVP_PKEY_keygen_init(kctx), 1);
	ck_assert_int_eq(EVP_PKEY_CTX_set_group_name(kctx, "P-256"), 1);
	ck_assert_int_eq(EVP_PKEY_keygen(kctx, &key), 1);
	EVP_PKEY_CTX_free(kctx);

	endpoint_init(&ep, WH_FORMAT_SENDGRID);
	ep.sendgrid_key = key;
	event_init(&ev, OUTBOX_DELIVERED);
	root = render(&ep, &ev, &req);
	json_decref(root);
	ts = header(&req, "X-Twilio-Email-Event-Webhook-Timestamp");
	sig = header(&req, "X-Twilio-Email-Event-Webhook-Signature");
	ck_assert_ptr_nonnull(ts);
	ck_assert_ptr_nonnull(sig);
	ck_assert_str_eq(ts, "1700000000");
	ck_assert_int_eq(b64_decode(sig, strlen(sig), der, sizeof(der),
	    &derlen, 0), 0);
	for (pass = 0; pass < 2; pass++) {
		/* Pass 1: one byte of the body changed must not verify. */
		if (pass == 1)
			req.body->data[5] ^= 1;
		mctx = EVP_MD_CTX_new();
		ck_assert_int_eq(EVP_DigestVerifyInit(mctx, NULL,
		    EVP_sha256(), NULL, key), 1);
		ck_assert_int_eq(EVP_DigestVerifyUpdate(mctx, ts,
		    strlen(ts)), 1);
		ck_assert_int_eq(EVP_DigestVerifyUpdate(mctx, req.body->data,
		    req.body->len), 1);
		ck_assert_int_eq(EVP_DigestVerifyFinal(mctx, der, derlen),
		    pass == 0 ? 1 : 0);
		EVP_MD_CTX_free(mctx);
	}
	EVP_PKEY_free(key);
	vbuf_free(req.body);
}
END_TEST

START_TEST(test_postmark_kinds)
{
	static const struct {
		enum outbox_kind kind;
		const char *record, *type;
		int code, inactive;
	} t[] = {
		{ OUTBOX_DELIVERED, "Delivery", NULL, 0, 0 },
		{ OUTBOX_DEFERRED, "Bounce", "Transient", 2, 0 },
		{ OUTBOX_BOUNCED, "Bounce", "HardBounce", 1, 1 },
		{ OUTBOX_EXPIRED, "Bounce", "SoftBounce", 4096, 0 },
		{ OUTBOX_SUPPRESSED, "Bounce", "ManuallyDeactivated", 100002,
		    1 },
	};
	struct wh_endpoint ep;
	struct outbox_event ev;
	struct wh_request req;
	json_t *root;
	size_t i;

	endpoint_init(&ep, WH_FORMAT_POSTMARK);
	for (i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		event_init(&ev, t[i].kind);
		root = render(&ep, &ev, &req);
		ck_assert_ptr_nonnull(root);
		ck_assert_str_eq(jstr(root, "RecordType"), t[i].record);
		ck_assert_str_eq(jstr(root, "MessageID"), "m1@sender.example");
		ck_assert_str_eq(jstr(root, "Tag"), "welcome");
		ck_assert_str_eq(jstr(json_object_get(root, "Metadata"),
		    "order"), "42");
		ck_assert_str_eq(jstr(root, "Details"), ev.reply);
		if (t[i].type == NULL) {
			ck_assert_str_eq(jstr(root, "Recipient"),
			    "user@example.org");
			ck_assert_str_eq(jstr(root, "DeliveredAt"),
			    "2023-11-14T22:13:19.123Z");
		} else {
			ck_assert_str_eq(jstr(root, "Type"), t[i].type);
			ck_assert_int_eq(json_integer_value(json_object_get(
			    root, "TypeCode")), t[i].code);
			ck_assert_str_eq(jstr(root, "Email"),
			    "user@example.org");
			ck_assert_str_eq(jstr(root, "BouncedAt"),
			    "2023-11-14T22:13:19.123Z");
			ck_assert_int_eq(json_is_true(json_object_get(root,
			    "Inactive")), t[i].inactive);
			/* The first 13 hex digits of the event id. */
			ck_assert_int_eq(json_integer_value(json_object_get(
			    root, "ID")), 0x0123456789abcLL);
		}
		json_decref(root);
		vbuf_free(req.body);
	}
	/* Postmark has no record of a message accepted. */
	event_init(&ev, OUTBOX_ACCEPTED);
	ck_assert_ptr_null(render(&ep, &ev, &req));
	vbuf_free(req.body);
}
END_TEST

/*
 * An administrator's delete (relayq -d) has no shape in any ESP format:
 * render says so (WH_RENDER_NOSHAPE, not a failure), so webhookd sends it
 * only to petrel endpoints and counts it done for the others.
 */
START_TEST(test_deleted_not_sent)
{
	static const enum wh_format fmts[] = { WH_FORMAT_MAILGUN,
	    WH_FORMAT_SENDGRID, WH_FORMAT_POSTMARK };
	struct wh_endpoint ep;
	struct outbox_event ev;
	struct wh_request req;

	for (size_t i = 0; i < sizeof(fmts) / sizeof(fmts[0]); i++) {
		endpoint_init(&ep, fmts[i]);
		event_init(&ev, OUTBOX_DELETED);
		memset(&req, 0, sizeof(req));
		req.body = vbuf_create(0);
		ck_assert_int_eq(webhookd_render_esp(&ep, &ev, ID, NOW, &req,
		    NULL), WH_RENDER_NOSHAPE);
		/* Nor a destination's change of state: petrel's only. */
		event_init(&ev, OUTBOX_DESTINATION);
		ck_assert_int_eq(webhookd_render(&ep, &ev, ID, NOW, &req,
		    NULL), WH_RENDER_NOSHAPE);
		ck_assert_int_eq(webhookd_render_esp(&ep, &ev, ID, NOW, &req,
		    NULL), WH_RENDER_NOSHAPE);
		ck_assert(!webhookd_wants(&ep, OUTBOX_DESTINATION));
		ck_assert(webhookd_wants(&ep, OUTBOX_DELIVERED));
		vbuf_free(req.body);
	}
	endpoint_init(&ep, WH_FORMAT_PETREL);
	ck_assert(webhookd_wants(&ep, OUTBOX_DESTINATION));
	/* Postmark has no record for a message accepted. */
	endpoint_init(&ep, WH_FORMAT_POSTMARK);
	event_init(&ev, OUTBOX_ACCEPTED);
	memset(&req, 0, sizeof(req));
	req.body = vbuf_create(0);
	ck_assert_int_eq(webhookd_render_esp(&ep, &ev, ID, NOW, &req, NULL),
	    WH_RENDER_NOSHAPE);
	vbuf_free(req.body);
}
END_TEST

/*
 * An EC key that loads (webhookd accepts it as a sendgrid_key_file) but
 * cannot sign: a curve over a 20-bit field whose group order is under
 * the 64 bits OpenSSL's ECDSA requires. It stands in for any signing
 * failure: render must say WH_RENDER_FAILED, with a reason, never
 * WH_RENDER_NOSHAPE (which would count the event as done).
 */
static const char unsignable_key[] =
    "-----BEGIN EC PRIVATE KEY-----\n"
    "MEgCAQEEAwAwOaAyMDACAQEwDgYHKoZIzj0BAQIDD0JDMAoEAwFzkAQDCNEXBAcEAAAECimyAgMP\n"
    "PoMCAQGhCgMIAAQIXNILMhI=\n"
    "-----END EC PRIVATE KEY-----\n";

START_TEST(test_sendgrid_sign_fails)
{
	struct wh_endpoint ep;
	struct outbox_event ev;
	struct wh_request req;
	struct vbuf why;
	BIO *bio;
	EVP_PKEY *key;

	bio = BIO_new_mem_buf(unsignable_key, -1);
	ck_assert_ptr_nonnull(bio);
	key = PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL);
	BIO_free(bio);
	ck_assert_ptr_nonnull(key);
	ck_assert_int_eq(EVP_PKEY_get_base_id(key), EVP_PKEY_EC);

	endpoint_init(&ep, WH_FORMAT_SENDGRID);
	ep.sendgrid_key = key;
	event_init(&ev, OUTBOX_DELIVERED);
	memset(&req, 0, sizeof(req));
	req.body = vbuf_create(0);
	vbuf_init(&why, 0);
	ck_assert_int_eq(webhookd_render_esp(&ep, &ev, ID, NOW, &req, &why),
	    WH_RENDER_FAILED);
	ck_assert_msg(strstr(why.data, "ECDSA signature failed") != NULL,
	    "why: %s", why.data);
	/* Without a why to fill, the same answer. */
	ck_assert_int_eq(webhookd_render_esp(&ep, &ev, ID, NOW, &req, NULL),
	    WH_RENDER_FAILED);
	/* A kind with no shape is still no shape, whatever the key. */
	event_init(&ev, OUTBOX_DELETED);
	ck_assert_int_eq(webhookd_render_esp(&ep, &ev, ID, NOW, &req, NULL),
	    WH_RENDER_NOSHAPE);
	vbuf_release(&why);
	vbuf_free(req.body);
	EVP_PKEY_free(key);
}
END_TEST

/* Metadata and tags that are not an object and an array are left out. */
START_TEST(test_bad_app_data)
{
	struct wh_endpoint ep;
	struct outbox_event ev;
	struct wh_request req;
	json_t *root, *ed;

	endpoint_init(&ep, WH_FORMAT_MAILGUN);
	event_init(&ev, OUTBOX_DELIVERED);
	ev.metadata = "[1,2]";
	ev.tags = "{\"a\":1";
	ev.message_id = NULL;
	root = render(&ep, &ev, &req);
	ed = json_object_get(root, "event-data");
	ck_assert_int_eq(json_object_size(json_object_get(ed,
	    "user-variables")), 0);
	ck_assert_int_eq(json_array_size(json_object_get(ed, "tags")), 0);
	ck_assert_ptr_null(json_object_get(json_object_get(json_object_get(
	    ed, "message"), "headers"), "message-id"));
	json_decref(root);
	vbuf_free(req.body);

	endpoint_init(&ep, WH_FORMAT_POSTMARK);
	root = render(&ep, &ev, &req);
	ck_assert_str_eq(jstr(root, "Tag"), "");
	/* No Message-ID: the queue id stands in. */
	ck_assert_str_eq(jstr(root, "MessageID"), "4Fq2Zk1mNx0p");
	json_decref(root);
	vbuf_free(req.body);
}
END_TEST

static Suite *
esp_suite(void)
{
	Suite *s = suite_create("webhookd_esp");
	TCase *tc;

	tc = tcase_create("mailgun");
	tcase_add_test(tc, test_mailgun_delivered);
	tcase_add_test(tc, test_mailgun_kinds);
	tcase_add_test(tc, test_mailgun_unsigned);
	suite_add_tcase(s, tc);
	tc = tcase_create("sendgrid");
	tcase_add_test(tc, test_sendgrid_kinds);
	tcase_add_test(tc, test_sendgrid_blocked);
	tcase_add_test(tc, test_sendgrid_processed);
	tcase_add_test(tc, test_sendgrid_signed);
	tcase_add_test(tc, test_sendgrid_sign_fails);
	suite_add_tcase(s, tc);
	tc = tcase_create("postmark");
	tcase_add_test(tc, test_postmark_kinds);
	tcase_add_test(tc, test_bad_app_data);
	tcase_add_test(tc, test_deleted_not_sent);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr;
	int nfailed;

	sr = srunner_create(esp_suite());
	srunner_run_all(sr, CK_NORMAL);
	nfailed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return nfailed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
