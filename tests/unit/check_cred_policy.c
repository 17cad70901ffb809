/*
 * check_cred_policy.c - unit tests for lib/cred_policy: domain and network
 * lists parsed (with their bounds and error messages), matched and
 * formatted, in memory.
 */
#include <sys/socket.h>
#include <netinet/in.h>
#include <arpa/inet.h>

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cidr.h"
#include "cred_policy.h"
#include "vbuf.h"

static struct sockaddr_storage *sa_of(const char *,
		    struct sockaddr_storage *);
static Suite	*cred_policy_suite(void);

/* Fills ss with the IPv4 or IPv6 address a (port 25). */
static struct sockaddr_storage *
sa_of(const char *a, struct sockaddr_storage *ss)
{
	struct sockaddr_in *sin = (struct sockaddr_in *)(void *)ss;
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)(void *)ss;

	memset(ss, 0, sizeof(*ss));
	if (strchr(a, ':') != NULL) {
		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons(25);
		ck_assert_int_eq(inet_pton(AF_INET6, a, &sin6->sin6_addr), 1);
	} else {
		sin->sin_family = AF_INET;
		sin->sin_port = htons(25);
		ck_assert_int_eq(inet_pton(AF_INET, a, &sin->sin_addr), 1);
	}
	return ss;
}

START_TEST(test_policy_domains)
{
	struct cred_policy p;
	struct vbuf why, out;
	char big[300];
	size_t i;

	vbuf_init(&why, 0);
	vbuf_init(&out, 0);
	memset(&p, 0, sizeof(p));
	/* Empty list: any domain. */
	ck_assert_int_eq(cred_policy_domain_ok(&p, "anything.example"), 1);
	ck_assert_int_eq(cred_policy_domain_ok(&p, ""), 1);

	ck_assert_int_eq(cred_policy_parse_domains(&p,
	    "Example.COM, b.example ,[192.0.2.1]", &why), 0);
	ck_assert_uint_eq(p.ndomains, 3);
	cred_policy_format_domains(&p, &out);
	ck_assert_str_eq(out.data, "example.com,b.example,[192.0.2.1]");
	ck_assert_int_eq(cred_policy_domain_ok(&p, "example.com"), 1);
	ck_assert_int_eq(cred_policy_domain_ok(&p, "EXAMPLE.Com"), 1);
	ck_assert_int_eq(cred_policy_domain_ok(&p, "mail.example.com"), 1);
	ck_assert_int_eq(cred_policy_domain_ok(&p, "a.B.Example.COM"), 1);
	ck_assert_int_eq(cred_policy_domain_ok(&p, "b.example"), 1);
	ck_assert_int_eq(cred_policy_domain_ok(&p, "[192.0.2.1]"), 1);
	ck_assert_int_eq(cred_policy_domain_ok(&p, "badexample.com"), 0);
	ck_assert_int_eq(cred_policy_domain_ok(&p, "example.com.evil"), 0);
	ck_assert_int_eq(cred_policy_domain_ok(&p, ".example.com"), 0);
	ck_assert_int_eq(cred_policy_domain_ok(&p, "com"), 0);
	ck_assert_int_eq(cred_policy_domain_ok(&p, "c.example"), 0);
	ck_assert_int_eq(cred_policy_domain_ok(&p, ""), 0);
	ck_assert_int_eq(cred_policy_domain_ok(&p, NULL), 0);

	/* Bad lists are refused whole and leave the policy unchanged. */
	ck_assert_int_eq(cred_policy_parse_domains(&p, "a.example,,b.example",
	    &why), -1);
	ck_assert_int_eq(cred_policy_parse_domains(&p, "a..example", &why),
	    -1);
	ck_assert_msg(strstr(why.data, "invalid domain \"a..example\"") !=
	    NULL, "%s", why.data);
	ck_assert_int_eq(cred_policy_parse_domains(&p, "bad domain", &why),
	    -1);
	ck_assert_int_eq(cred_policy_parse_domains(&p, "-x.example", &why),
	    -1);
	ck_assert_int_eq(cred_policy_parse_domains(&p, "x.example,", &why),
	    -1);
	ck_assert_int_eq(cred_policy_parse_domains(&p, "a\nb", &why), -1);
	ck_assert_msg(strstr(why.data, "\"a?b\"") != NULL, "%s", why.data);
	memset(big, 'a', sizeof(big));
	big[sizeof(big) - 1] = '\0';
	ck_assert_int_eq(cred_policy_parse_domains(&p, big, &why), -1);
	vbuf_reset(&out);
	for (i = 0; i <= CRED_POLICY_DOMAINS_MAX; i++)
		(void)vbuf_addf(&out, "%sd%zu.example", i ? "," : "", i);
	ck_assert_int_eq(cred_policy_parse_domains(&p, out.data, &why), -1);
	ck_assert_msg(strstr(why.data, "more than") != NULL, "%s", why.data);
	ck_assert_uint_eq(p.ndomains, 3);

	/* "" clears. */
	ck_assert_int_eq(cred_policy_parse_domains(&p, "", &why), 0);
	ck_assert_uint_eq(p.ndomains, 0);
	ck_assert_int_eq(cred_policy_domain_ok(&p, "x.example"), 1);
	cred_policy_release(&p);
	vbuf_release(&why);
	vbuf_release(&out);
}
END_TEST

START_TEST(test_policy_networks)
{
	struct sockaddr_storage ss;
	struct sockaddr *sa = (struct sockaddr *)&ss;
	struct cred_policy p;
	struct vbuf why, out;

	vbuf_init(&why, 0);
	vbuf_init(&out, 0);
	memset(&p, 0, sizeof(p));
	ck_assert_int_eq(cred_policy_network_ok(&p,
	    (struct sockaddr *)sa_of("198.51.100.1", &ss)), 1);
	ck_assert_int_eq(cred_policy_network_ok(&p, NULL), 1);

	ck_assert_int_eq(cred_policy_parse_networks(&p,
	    "192.0.2.0/24, 2001:db8::/32,10.1.2.3", &why), 0);
	cred_policy_format_networks(&p, &out);
	ck_assert_str_eq(out.data, "192.0.2.0/24,2001:db8::/32,10.1.2.3/32");
	(void)sa_of("192.0.2.55", &ss);
	ck_assert_int_eq(cred_policy_network_ok(&p, sa), 1);
	(void)sa_of("192.0.3.1", &ss);
	ck_assert_int_eq(cred_policy_network_ok(&p, sa), 0);
	(void)sa_of("10.1.2.3", &ss);
	ck_assert_int_eq(cred_policy_network_ok(&p, sa), 1);
	(void)sa_of("10.1.2.4", &ss);
	ck_assert_int_eq(cred_policy_network_ok(&p, sa), 0);
	(void)sa_of("2001:db8:1::25", &ss);
	ck_assert_int_eq(cred_policy_network_ok(&p, sa), 1);
	(void)sa_of("2001:db9::1", &ss);
	ck_assert_int_eq(cred_policy_network_ok(&p, sa), 0);
	(void)sa_of("::ffff:192.0.2.7", &ss);	/* IPv4 on an IPv6 socket */
	ck_assert_int_eq(cred_policy_network_ok(&p, sa), 1);
	(void)sa_of("::1", &ss);
	ck_assert_int_eq(cred_policy_network_ok(&p, sa), 0);
	ck_assert_int_eq(cred_policy_network_ok(&p, NULL), 0);

	ck_assert_int_eq(cred_policy_parse_networks(&p, "192.0.2.0/33",
	    &why), -1);
	ck_assert_msg(strstr(why.data, "192.0.2.0/33") != NULL, "%s",
	    why.data);
	ck_assert_int_eq(cred_policy_parse_networks(&p, "300.1.1.1", &why),
	    -1);
	ck_assert_int_eq(cred_policy_parse_networks(&p, "10.1", &why), -1);
	ck_assert_int_eq(cred_policy_parse_networks(&p, "x", &why), -1);
	ck_assert_int_eq(cred_policy_parse_networks(&p, "10.0.0.0/8,", &why),
	    -1);
	ck_assert_int_eq(cred_policy_parse_networks(&p,
	    "2001:db8::/129", &why), -1);
	ck_assert_int_eq(cred_policy_parse_networks(&p,
	    "1111:2222:3333:4444:5555:6666:7777:8888:9999/64", &why), -1);
	ck_assert_uint_eq(p.nnetworks, 3);
	ck_assert_int_eq(cred_policy_parse_networks(&p, "", &why), 0);
	ck_assert_uint_eq(p.nnetworks, 0);
	cred_policy_release(&p);
	vbuf_release(&why);
	vbuf_release(&out);
}
END_TEST

START_TEST(test_policy_format_cidr)
{
	struct cidr c;
	struct vbuf out;

	vbuf_init(&out, 0);
	ck_assert_int_eq(cidr_parse("192.0.2.77/24", &c), 0);
	cred_policy_format_cidr(&c, &out);
	ck_assert_str_eq(out.data, "192.0.2.0/24");
	(void)vbuf_addc(&out, ' ');
	ck_assert_int_eq(cidr_parse("2001:db8::1", &c), 0);
	cred_policy_format_cidr(&c, &out);
	ck_assert_str_eq(out.data, "192.0.2.0/24 2001:db8::1/128");
	vbuf_release(&out);
}
END_TEST

static Suite *
cred_policy_suite(void)
{
	Suite *s = suite_create("cred_policy");
	TCase *tc;

	tc = tcase_create("lists");
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_policy_domains);
	tcase_add_test(tc, test_policy_networks);
	tcase_add_test(tc, test_policy_format_cidr);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(cred_policy_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
