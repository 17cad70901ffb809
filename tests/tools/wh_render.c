/*
 * wh_render.c - renders one event in a provider's webhook format, as
 * webhookd would send it, for test_webhook_payloads.py: the test posts
 * the request to django-anymail's views, which must accept it (signature
 * included) and read it as the right event.
 *
 *   wh_render FORMAT KIND [--secret S] [--sendgrid-key PEM] [--rcpt ADDR]
 *       [--tags JSON] [--metadata JSON] [--now EPOCH]
 *
 * FORMAT is mailgun, sendgrid or postmark; KIND an event name (accepted,
 * delivered, ...). Prints the request's header lines, an empty line and
 * the body; exit status 3 when the format has no shape for the kind, 1
 * when the request cannot be made (a key that cannot sign).
 * The event is a realistic one of its kind (bounced: 550 5.1.1,
 * bad-mailbox; deferred: 452 4.2.2, quota-issues; ...).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/pem.h>

#include "webhookd.h"

#define WH_RENDER_ID	"5f0c2a6b9e4d4e1a8c3b7d2e1f0a9b8c"

static void	usage(void) __attribute__((noreturn));

static void
usage(void)
{
	fprintf(stderr, "usage: wh_render mailgun|sendgrid|postmark KIND "
	    "[--secret S] [--sendgrid-key PEM] [--rcpt ADDR] [--tags JSON] "
	    "[--metadata JSON] [--now EPOCH]\n");
	exit(2);
}

int
main(int argc, char *argv[])
{
	static const char *const formats[] = { "petrel", "mailgun",
	    "sendgrid", "postmark" };
	const char *rcpts[1];
	struct wh_endpoint ep;
	struct outbox_event ev;
	struct wh_request req;
	struct vbuf why;
	const char *name;
	int64_t now = (int64_t)time(NULL);
	FILE *f;
	size_t i;
	int a, k, rc;

	if (argc < 3)
		usage();
	memset(&ep, 0, sizeof(ep));
	memset(&ev, 0, sizeof(ev));
	memset(&req, 0, sizeof(req));
	ep.format = WH_FORMAT_PETREL;
	for (i = 1; i < sizeof(formats) / sizeof(formats[0]); i++)
		if (strcmp(argv[1], formats[i]) == 0)
			ep.format = (enum wh_format)i;
	if (ep.format == WH_FORMAT_PETREL)
		usage();
	for (k = OUTBOX_ACCEPTED; k <= OUTBOX_KIND_LAST; k++)
		if ((name = outbox_kind_name((enum outbox_kind)k)) != NULL &&
		    strcmp(argv[2], name) == 0)
			ev.kind = (enum outbox_kind)k;
	if (ev.kind == 0)
		usage();
	ev.recipient = "jane@example.org";
	ev.metadata = "{\"order\":\"42\"}";
	ev.tags = "[\"welcome\",\"promo\"]";
	for (a = 3; a + 1 < argc; a += 2) {
		if (strcmp(argv[a], "--secret") == 0) {
			ep.secret = (unsigned char *)argv[a + 1];
			ep.secret_len = strlen(argv[a + 1]);
		} else if (strcmp(argv[a], "--sendgrid-key") == 0) {
			if ((f = fopen(argv[a + 1], "r")) == NULL ||
			    (ep.sendgrid_key = PEM_read_PrivateKey(f, NULL,
			    NULL, NULL)) == NULL) {
				fprintf(stderr, "wh_render: cannot read key "
				    "%s\n", argv[a + 1]);
				return 1;
			}
			fclose(f);
		} else if (strcmp(argv[a], "--rcpt") == 0)
			ev.recipient = argv[a + 1];
		else if (strcmp(argv[a], "--tags") == 0)
			ev.tags = argv[a + 1];
		else if (strcmp(argv[a], "--metadata") == 0)
			ev.metadata = argv[a + 1];
		else if (strcmp(argv[a], "--now") == 0)
			now = strtoll(argv[a + 1], NULL, 10);
		else
			usage();
	}
	if (a != argc)
		usage();

	ev.time_ms = now * 1000 + 123;
	snprintf(ev.qid, sizeof(ev.qid), "%s", "6B1329D7EFE48688");
	ev.sender = "app@shop.example";
	ev.sasl_username = "shop";
	ev.message_id = "<order-42.welcome@shop.example>";
	ev.relay = "mx.example.org[192.0.2.25]:25";
	ev.attempts = 1;
	switch (ev.kind) {
	case OUTBOX_ACCEPTED:
		rcpts[0] = ev.recipient;
		ev.recipients = rcpts;
		ev.nrecipients = 1;
		ev.recipient = NULL;
		ev.relay = NULL;
		ev.size = 2048;
		ev.tls = "TLSv1.3";
		break;
	case OUTBOX_DELIVERED:
		ev.dsn = "2.0.0";
		ev.reply = "250 2.0.0 OK 1764932400 a1si123";
		break;
	case OUTBOX_DEFERRED:
		ev.dsn = "4.2.2";
		ev.reply = "452 4.2.2 The email account that you tried to "
		    "reach is over quota.";
		ev.class = "quota-issues";
		ev.next_attempt = now + 300;
		break;
	case OUTBOX_BOUNCED:
		ev.dsn = "5.1.1";
		ev.reply = "550 5.1.1 The email account that you tried to "
		    "reach does not exist.";
		ev.class = "bad-mailbox";
		break;
	case OUTBOX_EXPIRED:
		ev.dsn = "4.4.1";
		ev.reply = "451 4.4.1 Connection timed out";
		ev.class = "message-expired";
		ev.attempts = 9;
		break;
	case OUTBOX_SUPPRESSED:
		ev.relay = "none";
		ev.dsn = "5.1.1";
		ev.reply = "recipient address suppressed (hard bounce)";
		ev.class = "bad-mailbox";
		ev.attempts = 0;
		break;
	case OUTBOX_DELETED:
		ev.relay = "none";
		ev.reply = "deleted by the administrator";
		break;
	case OUTBOX_DESTINATION:
		/* Of no message: no provider has a shape for it. */
		memset(ev.qid, 0, sizeof(ev.qid));
		ev.sender = ev.recipient = ev.relay = NULL;
		ev.sasl_username = ev.message_id = NULL;
		ev.metadata = ev.tags = NULL;
		ev.attempts = 0;
		ev.destination = "gmail.com:25";
		ev.state = "backoff";
		ev.prev_state = "normal";
		ev.reason = "421 4.7.28 unusual rate";
		ev.until = now + 1800;
		break;
	}
	req.body = vbuf_create(0);
	vbuf_init(&why, 0);
	rc = webhookd_render_esp(&ep, &ev, WH_RENDER_ID, now, &req, &why);
	if (rc != WH_RENDER_OK) {
		/* No shape for this kind (3), or a failure (1): leak nothing. */
		if (rc == WH_RENDER_FAILED)
			fprintf(stderr, "wh_render: %s\n", why.data);
		vbuf_release(&why);
		vbuf_free(req.body);
		EVP_PKEY_free(ep.sendgrid_key);
		return rc == WH_RENDER_NOSHAPE ? 3 : 1;
	}
	vbuf_release(&why);
	for (i = 0; i < req.nheaders; i++)
		printf("%s\n", req.header[i]);
	printf("\n");
	fwrite(req.body->data, 1, req.body->len, stdout);
	vbuf_free(req.body);
	EVP_PKEY_free(ep.sendgrid_key);
	return fflush(stdout) == 0 ? 0 : 1;
}
