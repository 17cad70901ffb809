/*
 * check_nexthop.c - unit tests for lib/nexthop: the canonical key of a
 * recipient domain (plain, upper case, address literals, via a transport
 * entry, IP hosts), parsing every notation with its errors, and the
 * round trip key -> parse -> format; plus cfg_nexthop_key, which applies
 * the transport table.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <check.h>

#include "cfg.h"
#include "nexthop.h"
#include "vbuf.h"

static Suite	*nexthop_suite(void);
static const char *key_of(const char *, const struct nexthop *);

/* The key of domain (via may be NULL); "ERR" when there is none. */
static const char *
key_of(const char *domain, const struct nexthop *via)
{
	static char key[NEXTHOP_KEY_MAX + 1];

	if (nexthop_key(domain, via, key, sizeof(key)) == -1) {
		ck_assert_str_eq(key, "");
		return "ERR";
	}
	return key;
}

START_TEST(test_key_domain)
{
	char big[NEXTHOP_HOST_MAX + 2];

	ck_assert_str_eq(key_of("example.com", NULL), "example.com:25");
	ck_assert_str_eq(key_of("Mail.EXAMPLE.com", NULL),
	    "mail.example.com:25");
	ck_assert_str_eq(key_of("[192.0.2.1]", NULL), "[192.0.2.1]:25");
	ck_assert_str_eq(key_of("[IPv6:2001:DB8::1]", NULL),
	    "[2001:db8::1]:25");
	ck_assert_str_eq(key_of("[ipv6:::1]", NULL), "[::1]:25");
	ck_assert_str_eq(key_of("", NULL), "ERR");
	memset(big, 'a', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	ck_assert_str_eq(key_of(big, NULL), "ERR");
	big[sizeof(big) - 2] = '\0';
	ck_assert_str_ne(key_of(big, NULL), "ERR");
}
END_TEST

START_TEST(test_key_via)
{
	struct nexthop via = { "Relay.Example.net", 2525, 1 };
	struct nexthop mx = { "relay.example.net", 0, 0 };
	struct nexthop ip = { "192.0.2.9", 587, 0 };

	ck_assert_str_eq(key_of("example.com", &via),
	    "[relay.example.net]:2525");
	/* Every domain sent to the same relay has the same key. */
	ck_assert_str_eq(key_of("other.org", &via), key_of("example.com",
	    &via));
	ck_assert_str_eq(key_of("example.com", &mx), "relay.example.net:25");
	/* An address is never an MX name. */
	ck_assert_str_eq(key_of("example.com", &ip), "[192.0.2.9]:587");
}
END_TEST

START_TEST(test_parse)
{
	struct vbuf *why = vbuf_create(0);
	struct nexthop nh;

	ck_assert_int_eq(nexthop_parse("[h.example]:2525", &nh, why), 0);
	ck_assert_str_eq(nh.host, "h.example");
	ck_assert_uint_eq(nh.port, 2525);
	ck_assert_int_eq(nh.no_mx, 1);
	ck_assert_int_eq(nexthop_parse("h.example:26", &nh, why), 0);
	ck_assert_str_eq(nh.host, "h.example");
	ck_assert_uint_eq(nh.port, 26);
	ck_assert_int_eq(nh.no_mx, 0);
	ck_assert_int_eq(nexthop_parse("h.example", &nh, why), 0);
	ck_assert_uint_eq(nh.port, 25);
	ck_assert_int_eq(nexthop_parse("[2001:db8::1]", &nh, why), 0);
	ck_assert_str_eq(nh.host, "2001:db8::1");
	ck_assert_int_eq(nh.no_mx, 1);

	ck_assert_int_eq(nexthop_parse("[h:25", &nh, why), -1);
	ck_assert_ptr_nonnull(strstr(why->data, "missing ]"));
	ck_assert_int_eq(nexthop_parse("[h]:0", &nh, why), -1);
	ck_assert_ptr_nonnull(strstr(why->data, "port must be 1 to 65535"));
	ck_assert_int_eq(nexthop_parse("h:65536", &nh, why), -1);
	ck_assert_int_eq(nexthop_parse("h:123456", &nh, why), -1);
	ck_assert_int_eq(nexthop_parse("h:", &nh, why), -1);
	ck_assert_int_eq(nexthop_parse("[h]25", &nh, why), -1);
	ck_assert_ptr_nonnull(strstr(why->data, "expected [host]:port"));
	ck_assert_int_eq(nexthop_parse("2001:db8::1", &nh, why), -1);
	ck_assert_ptr_nonnull(strstr(why->data, "needs brackets"));
	ck_assert_int_eq(nexthop_parse("[]:25", &nh, why), -1);
	ck_assert_ptr_nonnull(strstr(why->data, "bad host"));
	ck_assert_int_eq(nexthop_parse("", &nh, why), -1);
	ck_assert_int_eq(nexthop_parse(":25", &nh, why), -1);
	ck_assert_int_eq(nexthop_parse("a b:25", &nh, why), -1);
	ck_assert_ptr_nonnull(strstr(why->data, "not a host name"));
	ck_assert_int_eq(nexthop_parse("a\r\nRSET:25", &nh, why), -1);
	vbuf_free(why);
}
END_TEST

START_TEST(test_roundtrip)
{
	static const char *domains[] = {
		"example.com", "[192.0.2.1]", "[IPv6:2001:db8::2]", "x_y.test",
	};
	char key[NEXTHOP_KEY_MAX + 1], again[NEXTHOP_KEY_MAX + 1];
	struct vbuf *why = vbuf_create(0);
	struct nexthop nh, via = { "relay.test", 2525, 1 };
	size_t i;

	for (i = 0; i < sizeof(domains) / sizeof(domains[0]); i++) {
		ck_assert_int_eq(nexthop_key(domains[i], i == 3 ? &via : NULL,
		    key, sizeof(key)), 0);
		ck_assert_msg(nexthop_parse(key, &nh, why) == 0, "%s: %s",
		    key, why->data);
		ck_assert_int_eq(nexthop_format(&nh, again, sizeof(again)), 0);
		ck_assert_str_eq(again, key);
	}
	ck_assert_int_eq(nexthop_format(&nh, again, 5), -1);
	vbuf_free(why);
}
END_TEST

START_TEST(test_cfg_transport)
{
	struct cfg cfg;
	struct cfg_transport tr[2] = {
		{ "example.com", "relay.test", 2525, 1, NULL, 0 },
		{ "*", "smarthost.test", 25, 0, NULL, 0 },
	};
	char key[NEXTHOP_KEY_MAX + 1];

	memset(&cfg, 0, sizeof(cfg));
	ck_assert_int_eq(cfg_nexthop_key(&cfg, "a.example.org", key,
	    sizeof(key)), 0);
	ck_assert_str_eq(key, "a.example.org:25");
	cfg.transports = tr;
	cfg.ntransports = 2;
	ck_assert_int_eq(cfg_nexthop_key(&cfg, "sub.EXAMPLE.com", key,
	    sizeof(key)), 0);
	ck_assert_str_eq(key, "[relay.test]:2525");
	ck_assert_int_eq(cfg_nexthop_key(&cfg, "example.org", key,
	    sizeof(key)), 0);
	ck_assert_str_eq(key, "smarthost.test:25");
	ck_assert_int_eq(cfg_nexthop_key(&cfg, "", key, sizeof(key)), -1);
}
END_TEST

/* smtp finds a failover list by qmgr's key, the first hop's. */
START_TEST(test_cfg_failover)
{
	struct cfg cfg;
	struct nexthop hops[2] = {
		{ "relay-a.test", 587, 1 },
		{ "relay-b.test", 587, 1 },
	};
	struct cfg_transport tr[2] = {
		{ "example.com", "relay.test", 2525, 1, NULL, 0 },
		{ "*", "relay-a.test", 587, 1, hops, 2 },
	};
	char key[NEXTHOP_KEY_MAX + 1];

	memset(&cfg, 0, sizeof(cfg));
	cfg.transports = tr;
	cfg.ntransports = 2;
	ck_assert_int_eq(cfg_nexthop_key(&cfg, "example.org", key,
	    sizeof(key)), 0);
	ck_assert_str_eq(key, "[relay-a.test]:587");
	ck_assert_ptr_eq(cfg_transport_failover(&cfg, key), &tr[1]);
	ck_assert_ptr_null(cfg_transport_failover(&cfg,
	    "[relay.test]:2525"));
	ck_assert_ptr_null(cfg_transport_failover(&cfg,
	    "[relay-b.test]:587"));
	ck_assert_ptr_null(cfg_transport_failover(&cfg, "relay-a.test:587"));
}
END_TEST

static Suite *
nexthop_suite(void)
{
	Suite *s;
	TCase *tc;

	s = suite_create("nexthop");
	tc = tcase_create("key");
	tcase_add_test(tc, test_key_domain);
	tcase_add_test(tc, test_key_via);
	tcase_add_test(tc, test_parse);
	tcase_add_test(tc, test_roundtrip);
	tcase_add_test(tc, test_cfg_transport);
	tcase_add_test(tc, test_cfg_failover);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr;
	int nfailed;

	sr = srunner_create(nexthop_suite());
	srunner_run_all(sr, CK_NORMAL);
	nfailed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return nfailed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
