/*
 * check_webhookd_format.c - the petrel payload, its signature and the
 * stable event id, checked against values computed independently
 * (Python's hmac and hashlib, see the comments).
 */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "webhookd.h"

static Suite	*format_suite(void);

START_TEST(test_sign_vector)
{
	char hex[65];

	/* hmac.new(b'key', b'1700000000.{"a":1}', sha256).hexdigest() */
	webhookd_sign((const unsigned char *)"key", 3, 1700000000,
	    "{\"a\":1}", 7, hex);
	ck_assert_str_eq(hex, "a438e398bfafc57e4396bb7fc2304422"
	    "f0f768e965d073ca313cb52e22e6ad03");
}
END_TEST

START_TEST(test_render_petrel)
{
	struct wh_endpoint ep;
	struct outbox_event ev;
	struct wh_request req;
	char id[WH_ID_SIZE], id2[WH_ID_SIZE], hex[65], want[128];
	size_t i;
	int found = 0;

	memset(&ev, 0, sizeof(ev));
	ev.seq = 7;
	ev.kind = OUTBOX_DELIVERED;
	ev.time_ms = 1000;
	snprintf(ev.qid, sizeof(ev.qid), "%s", "6B13B2B2EB929847");
	ev.sender = "a@example.com";
	ev.recipient = "r@example.org";
	ev.sasl_username = "app1";
	ev.dsn = "2.0.0";
	ev.attempts = 1;
	ev.metadata = "{\"k\":\"v\"}";
	ev.tags = "[\"t\"]";
	/* sha256(b'6B13B2B2EB929847|7|1000|2|r@example.org')[:32] */
	whstore_event_id(&ev, id);
	ck_assert_str_eq(id, "c12234f363bc6fee3d43063a5c07251e");
	whstore_event_id(&ev, id2);
	ck_assert_str_eq(id, id2);

	memset(&ep, 0, sizeof(ep));
	ep.format = WH_FORMAT_PETREL;
	ep.secret = (unsigned char *)"sekrit";
	ep.secret_len = 6;
	memset(&req, 0, sizeof(req));
	req.body = vbuf_create(0);
	ck_assert_int_eq(webhookd_render(&ep, &ev, id, 1700000000, &req, NULL),
	    WH_RENDER_OK);
	ck_assert_ptr_nonnull(strstr(req.body->data,
	    "\"event\":\"delivered\""));
	ck_assert_ptr_nonnull(strstr(req.body->data, "\"user\":\"app1\""));
	ck_assert_ptr_nonnull(strstr(req.body->data,
	    "\"metadata\":{\"k\":\"v\"}"));
	ck_assert_ptr_nonnull(strstr(req.body->data, "\"tags\":[\"t\"]"));
	ck_assert_ptr_nonnull(strstr(req.body->data,
	    "\"timestamp\":\"1970-01-01T00:00:01.000Z\""));
	webhookd_sign(ep.secret, ep.secret_len, 1700000000, req.body->data,
	    req.body->len, hex);
	snprintf(want, sizeof(want), "X-Petrel-Signature: t=1700000000,v1=%s",
	    hex);
	for (i = 0; i < req.nheaders; i++)
		if (strcmp(req.header[i], want) == 0)
			found = 1;
	ck_assert_int_eq(found, 1);
	ck_assert_str_eq(req.header[0], "Content-Type: application/json");
	vbuf_free(req.body);
	ck_assert_int_eq(webhookd_format_parse("sendgrid"),
	    WH_FORMAT_SENDGRID);
	ck_assert_int_eq(webhookd_format_parse("nope"), -1);
}
END_TEST

/*
 * A destination's change of state: the petrel payload has its members and
 * none of a message's; its id is over the destination, as a recipient
 * event's is over the recipient.
 */
START_TEST(test_render_destination)
{
	struct wh_endpoint ep;
	struct outbox_event ev;
	struct wh_request req;
	char id[WH_ID_SIZE];

	memset(&ev, 0, sizeof(ev));
	ev.seq = 7;
	ev.kind = OUTBOX_DESTINATION;
	ev.time_ms = 1000;
	ev.destination = "gmail.com:25";
	ev.entry = "gmail.com";
	ev.state = "backoff";
	ev.prev_state = "normal";
	ev.reason = "421 4.7.28 unusual rate";
	ev.until = 1800;
	ev.max_connections = 1;
	ev.rate_count = 10;
	ev.rate_interval = 60;
	/* sha256(b'|7|1000|8|gmail.com:25')[:32] */
	whstore_event_id(&ev, id);
	ck_assert_str_eq(id, "040f582c61f3efbf587df195ddd197ea");
	memset(&ep, 0, sizeof(ep));
	ep.format = WH_FORMAT_PETREL;
	memset(&req, 0, sizeof(req));
	req.body = vbuf_create(0);
	ck_assert_int_eq(webhookd_render(&ep, &ev, id, 1700000000, &req, NULL),
	    WH_RENDER_OK);
	ck_assert_str_eq(req.body->data, "{\"event\":\"destination\","
	    "\"id\":\"040f582c61f3efbf587df195ddd197ea\","
	    "\"timestamp\":\"1970-01-01T00:00:01.000Z\","
	    "\"destination\":\"gmail.com:25\",\"entry\":\"gmail.com\","
	    "\"source\":null,\"state\":\"backoff\","
	    "\"previous_state\":\"normal\","
	    "\"reason\":\"421 4.7.28 unusual rate\","
	    "\"until\":\"1970-01-01T00:30:00.000Z\",\"max_connections\":1,"
	    "\"rate_count\":10,\"rate_interval\":60}");
	/* Back to normal: no end. */
	ev.state = "normal";
	ev.prev_state = "backoff";
	ev.until = 0;
	ck_assert_int_eq(webhookd_render(&ep, &ev, id, 1700000000, &req, NULL),
	    WH_RENDER_OK);
	ck_assert_ptr_nonnull(strstr(req.body->data, "\"until\":null"));
	/* The pool's address whose state it is, when there is a pool. */
	ev.source = "203.0.113.20";
	ck_assert_int_eq(webhookd_render(&ep, &ev, id, 1700000000, &req, NULL),
	    WH_RENDER_OK);
	ck_assert_ptr_nonnull(strstr(req.body->data,
	    "\"entry\":\"gmail.com\",\"source\":\"203.0.113.20\","));
	vbuf_free(req.body);
}
END_TEST

static Suite *
format_suite(void)
{
	Suite *s = suite_create("webhookd_format");
	TCase *tc = tcase_create("core");

	tcase_add_test(tc, test_sign_vector);
	tcase_add_test(tc, test_render_petrel);
	tcase_add_test(tc, test_render_destination);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(format_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
