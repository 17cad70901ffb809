/*
 * check_cidr.c - unit tests for lib/cidr: prefix parsing and matching.
 *
 * Parsing of IPv4 and IPv6 addresses and networks with their error cases,
 * masking of host bits, matching at prefix boundaries, and IPv4-mapped
 * IPv6 clients against IPv4 prefixes.
 */
#include <sys/socket.h>
#include <netinet/in.h>
#include <arpa/inet.h>

#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "cidr.h"

static struct sockaddr_storage	*sa_of(const char *);
static int	 match(const char *, const char *);
static Suite	*cidr_suite(void);

/* A client address as accept(2) would return it. */
static struct sockaddr_storage *
sa_of(const char *addr)
{
	static struct sockaddr_storage ss;
	struct sockaddr_in *sin = (struct sockaddr_in *)&ss;
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&ss;

	memset(&ss, 0, sizeof(ss));
	if (inet_pton(AF_INET, addr, &sin->sin_addr) == 1) {
		sin->sin_family = AF_INET;
		sin->sin_port = htons(25);
	} else {
		ck_assert_int_eq(inet_pton(AF_INET6, addr, &sin6->sin6_addr),
		    1);
		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons(25);
	}
	return &ss;
}

static int
match(const char *net, const char *client)
{
	struct cidr c;

	ck_assert_msg(cidr_parse(net, &c) == 0, "parse %s", net);
	return cidr_match(&c, (struct sockaddr *)sa_of(client));
}

START_TEST(test_parse_ok)
{
	static const uint8_t net10[4] = { 10, 0, 0, 0 };
	static const uint8_t host[4] = { 192, 0, 2, 7 };
	static const uint8_t masked[4] = { 192, 168, 0, 0 };
	uint8_t v6[16];
	struct cidr c;

	ck_assert_int_eq(cidr_parse("10.0.0.0/8", &c), 0);
	ck_assert_int_eq(c.family, AF_INET);
	ck_assert_uint_eq(c.prefix, 8);
	ck_assert_int_eq(memcmp(c.addr, net10, 4), 0);

	ck_assert_int_eq(cidr_parse("192.0.2.7", &c), 0);
	ck_assert_uint_eq(c.prefix, 32);
	ck_assert_int_eq(memcmp(c.addr, host, 4), 0);

	/* Host bits are masked off. */
	ck_assert_int_eq(cidr_parse("192.168.255.255/16", &c), 0);
	ck_assert_int_eq(memcmp(c.addr, masked, 4), 0);
	ck_assert_int_eq(cidr_parse("0.0.0.0/0", &c), 0);
	ck_assert_uint_eq(c.prefix, 0);
	ck_assert_int_eq(cidr_parse("255.255.255.255/0", &c), 0);
	ck_assert_int_eq(c.addr[0], 0);

	ck_assert_int_eq(cidr_parse("::1", &c), 0);
	ck_assert_int_eq(c.family, AF_INET6);
	ck_assert_uint_eq(c.prefix, 128);
	ck_assert_int_eq(c.addr[15], 1);

	ck_assert_int_eq(cidr_parse("2001:db8:ffff::1/35", &c), 0);
	ck_assert_uint_eq(c.prefix, 35);
	ck_assert_int_eq(inet_pton(AF_INET6, "2001:db8:e000::", v6), 1);
	ck_assert_int_eq(memcmp(c.addr, v6, 16), 0);

	ck_assert_int_eq(cidr_parse("::/0", &c), 0);
	ck_assert_int_eq(cidr_parse("::ffff:10.0.0.0/104", &c), 0);
	ck_assert_int_eq(c.family, AF_INET6);
}
END_TEST

START_TEST(test_parse_errors)
{
	static const char *const bad[] = {
		"", "/8", "10.0.0.0/", "10.0.0.0/33", "10.0.0.0/-1",
		"10.0.0.0/+8", "10.0.0.0/8x", "10.0.0.0/ 8", "10.0.0.0/8/8",
		"10.0.0.0/0008", "10.0.0", "10.0.0.256", "010.0.0.1",
		"1.2.3.4.5", " 10.0.0.1", "10.0.0.1 ", "host.example",
		"::1/129", "::1/", "1::2::3", "[::1]", "::1%lo",
		"2001:db8::/64/1", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff:1",
		"0123456789012345678901234567890123456789012345678901234567",
	};
	struct cidr c;
	size_t i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		ck_assert_msg(cidr_parse(bad[i], &c) == -1, "parsed \"%s\"",
		    bad[i]);
	ck_assert_int_eq(cidr_parse(NULL, &c), -1);
	ck_assert_int_eq(cidr_parse("10.0.0.0/8", NULL), -1);
}
END_TEST

START_TEST(test_match_v4)
{
	ck_assert(match("10.0.0.0/8", "10.255.255.255"));
	ck_assert(match("10.0.0.0/8", "10.0.0.0"));
	ck_assert(!match("10.0.0.0/8", "11.0.0.0"));
	ck_assert(!match("10.0.0.0/8", "9.255.255.255"));
	ck_assert(match("192.0.2.128/25", "192.0.2.200"));
	ck_assert(!match("192.0.2.128/25", "192.0.2.127"));
	ck_assert(match("192.0.2.7", "192.0.2.7"));
	ck_assert(!match("192.0.2.7", "192.0.2.6"));
	ck_assert(match("172.16.0.0/12", "172.31.1.1"));
	ck_assert(!match("172.16.0.0/12", "172.32.0.0"));
	ck_assert(match("0.0.0.0/0", "203.0.113.9"));
	/* An IPv4 prefix never matches a real IPv6 client. */
	ck_assert(!match("0.0.0.0/0", "2001:db8::1"));
}
END_TEST

START_TEST(test_match_v6)
{
	ck_assert(match("::1", "::1"));
	ck_assert(!match("::1", "::2"));
	ck_assert(match("2001:db8::/32", "2001:db8:1234::1"));
	ck_assert(!match("2001:db8::/32", "2001:db9::1"));
	ck_assert(match("2001:db8:e000::/35", "2001:db8:ffff::1"));
	ck_assert(!match("2001:db8:e000::/35", "2001:db8:dfff::1"));
	ck_assert(match("::/0", "fe80::1"));
	ck_assert(!match("::/0", "127.0.0.1"));
	ck_assert(!match("2001:db8::/32", "32.1.13.184"));
}
END_TEST

START_TEST(test_match_mapped)
{
	/* A v4 client on a dual-stack socket appears as ::ffff:a.b.c.d. */
	ck_assert(match("127.0.0.0/8", "::ffff:127.0.0.1"));
	ck_assert(match("10.1.0.0/16", "::ffff:10.1.2.3"));
	ck_assert(!match("10.1.0.0/16", "::ffff:10.2.0.1"));
	ck_assert(match("192.0.2.7", "::ffff:192.0.2.7"));
	ck_assert(!match("127.0.0.0/8", "::127.0.0.1"));	/* compatible */
	/* A mapped prefix matches plain IPv4 clients too. */
	ck_assert(match("::ffff:10.0.0.0/104", "10.9.9.9"));
	ck_assert(!match("::ffff:10.0.0.0/104", "11.9.9.9"));
	ck_assert(match("::ffff:0.0.0.0/96", "203.0.113.1"));
	ck_assert(!match("::ffff:0.0.0.0/95", "203.0.113.1"));
}
END_TEST

START_TEST(test_match_list)
{
	struct cidr list[3];
	struct sockaddr_un_like {
		sa_family_t	family;
		char		path[14];
	} unix_sa;

	ck_assert_int_eq(cidr_parse("127.0.0.0/8", &list[0]), 0);
	ck_assert_int_eq(cidr_parse("::1", &list[1]), 0);
	ck_assert_int_eq(cidr_parse("192.0.2.0/24", &list[2]), 0);
	ck_assert(cidr_match_list(list, 3,
	    (struct sockaddr *)sa_of("192.0.2.99")));
	ck_assert(cidr_match_list(list, 3, (struct sockaddr *)sa_of("::1")));
	ck_assert(cidr_match_list(list, 3,
	    (struct sockaddr *)sa_of("::ffff:127.1.2.3")));
	ck_assert(!cidr_match_list(list, 3,
	    (struct sockaddr *)sa_of("198.51.100.1")));
	ck_assert(!cidr_match_list(list, 0,
	    (struct sockaddr *)sa_of("127.0.0.1")));
	ck_assert(!cidr_match_list(list, 3, NULL));

	/* Another address family never matches. */
	memset(&unix_sa, 0, sizeof(unix_sa));
	unix_sa.family = AF_UNIX;
	ck_assert(!cidr_match(&list[0], (struct sockaddr *)&unix_sa));
	ck_assert(!cidr_match(NULL, (struct sockaddr *)sa_of("127.0.0.1")));
}
END_TEST

static Suite *
cidr_suite(void)
{
	Suite *s = suite_create("cidr");
	TCase *tc = tcase_create("cidr");

	tcase_add_test(tc, test_parse_ok);
	tcase_add_test(tc, test_parse_errors);
	tcase_add_test(tc, test_match_v4);
	tcase_add_test(tc, test_match_v6);
	tcase_add_test(tc, test_match_mapped);
	tcase_add_test(tc, test_match_list);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(cidr_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
