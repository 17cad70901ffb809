/*
 * check_smtp_source.c - unit tests for smtp's choice of a connection's
 * source address (smtp_source.c): the address qmgr chose for the job
 * when it can reach the host and was not refused earlier in the same
 * request, else the pool's next usable one in turn; none (the kernel's
 * choice) for a host of a family the pool lacks.
 */
#include <sys/socket.h>

#include <arpa/inet.h>
#include <netinet/in.h>

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cfg.h"
#include "cidr.h"
#include "smtp.h"

static Suite	*source_suite(void);
static void	 fix_pool(struct cfg *, struct cfg_pool *, struct cidr *);
static void	 fix_target(struct smtp_target *, int family, const char *);
static const char *pick(const struct cfg *, const struct smtp_target *,
		    const struct smtp_avoid *);

/* A pool "p" of three loopback addresses, the configuration's only. */
static void
fix_pool(struct cfg *cfg, struct cfg_pool *pool, struct cidr *addrs)
{
	memset(cfg, 0, sizeof(*cfg));
	ck_assert_int_eq(cidr_parse("127.0.0.2", &addrs[0]), 0);
	ck_assert_int_eq(cidr_parse("127.0.0.3", &addrs[1]), 0);
	ck_assert_int_eq(cidr_parse("127.0.0.4", &addrs[2]), 0);
	pool->name = (char *)"p";
	pool->addrs = addrs;
	pool->naddrs = 3;
	cfg->smtp_pools = pool;
	cfg->nsmtp_pools = 1;
}

static void
fix_target(struct smtp_target *t, int family, const char *ip)
{
	memset(t, 0, sizeof(*t));
	t->ss.ss_family = (sa_family_t)family;
	if (family == AF_INET)
		ck_assert_int_eq(inet_pton(AF_INET, ip,
		    &((struct sockaddr_in *)&t->ss)->sin_addr), 1);
	else
		ck_assert_int_eq(inet_pton(AF_INET6, ip,
		    &((struct sockaddr_in6 *)&t->ss)->sin6_addr), 1);
}

/* The address smtp_source_pick takes, as text; "" for none. */
static const char *
pick(const struct cfg *cfg, const struct smtp_target *t,
    const struct smtp_avoid *avoid)
{
	static char src[64];
	struct sockaddr_storage ss;
	socklen_t len = 0;
	int rc;

	rc = smtp_source_pick(cfg, &cfg->smtp_pools[0], t, avoid, &ss, &len,
	    src, sizeof(src));
	ck_assert_int_eq(rc, src[0] != '\0');
	return src;
}

START_TEST(test_wanted_address)
{
	struct cfg cfg;
	struct cfg_pool pool;
	struct cidr addrs[3];
	struct smtp_target t;
	struct smtp_avoid avoid;

	fix_pool(&cfg, &pool, addrs);
	fix_target(&t, AF_INET, "127.0.0.1");
	memset(&avoid, 0, sizeof(avoid));
	/* qmgr's choice, again and again: not the pool's turn. */
	avoid.want = "127.0.0.3";
	ck_assert_str_eq(pick(&cfg, &t, &avoid), "127.0.0.3");
	ck_assert_str_eq(pick(&cfg, &t, &avoid), "127.0.0.3");
	/* Refused earlier in this request: the next one in turn instead. */
	avoid.addr[avoid.n++] = "127.0.0.3";
	ck_assert_str_ne(pick(&cfg, &t, &avoid), "127.0.0.3");
	/* An address the pool does not have is not bound. */
	memset(&avoid, 0, sizeof(avoid));
	avoid.want = "192.0.2.1";
	ck_assert_str_ne(pick(&cfg, &t, &avoid), "192.0.2.1");
}
END_TEST

START_TEST(test_in_turn_without_a_choice)
{
	struct cfg cfg;
	struct cfg_pool pool;
	struct cidr addrs[3];
	struct smtp_target t;
	char a[64], b[64], c[64];

	fix_pool(&cfg, &pool, addrs);
	fix_target(&t, AF_INET, "127.0.0.1");
	/* Three picks, three addresses. */
	snprintf(a, sizeof(a), "%s", pick(&cfg, &t, NULL));
	snprintf(b, sizeof(b), "%s", pick(&cfg, &t, NULL));
	snprintf(c, sizeof(c), "%s", pick(&cfg, &t, NULL));
	ck_assert_str_ne(a, b);
	ck_assert_str_ne(b, c);
	ck_assert_str_ne(a, c);
}
END_TEST

START_TEST(test_other_family)
{
	struct cfg cfg;
	struct cfg_pool pool;
	struct cidr addrs[3];
	struct smtp_target t;
	struct smtp_avoid avoid;

	fix_pool(&cfg, &pool, addrs);
	fix_target(&t, AF_INET6, "2001:db8::25");
	memset(&avoid, 0, sizeof(avoid));
	avoid.want = "127.0.0.2";
	/* An IPv4 pool cannot reach an IPv6 host: the kernel chooses. */
	ck_assert_str_eq(pick(&cfg, &t, &avoid), "");
}
END_TEST

static Suite *
source_suite(void)
{
	Suite *s = suite_create("smtp_source");
	TCase *tc = tcase_create("core");

	tcase_add_test(tc, test_wanted_address);
	tcase_add_test(tc, test_in_turn_without_a_choice);
	tcase_add_test(tc, test_other_family);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(source_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
