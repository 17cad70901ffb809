/*
 * check_qmgr_source.c - unit tests for what relayctl sources show gets
 * from qmgr_source.c (qmgr_source_report), against a real queue: a record
 * per pool address (its warmup day and cap while it warms up), then one
 * per address and scope with a set-aside in force (its end in epoch
 * seconds, the refusal made printable) or today's warmup count, least
 * recently used first; nothing for an address and scope that holds
 * neither.
 */
#include <arpa/inet.h>

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <check.h>

#include "attr.h"
#include "check_qmgr.h"
#include "cidr.h"
#include "mailproto.h"

#define REC_MAX		8

/* The records of one report, decoded. */
struct recs {
	struct vbuf	*out;
	struct attr_list l[REC_MAX];
	size_t		 n;
};

static Suite	*source_suite(void);
static void	 report(struct recs *);
static void	 recs_free(struct recs *);
static int64_t	 num(const struct attr_list *, const char *);

/* The report into r, each record decoded; their count checked. */
static void
report(struct recs *r)
{
	struct vbuf *why = vbuf_create(0);
	size_t off = 0, used, n;

	r->out = vbuf_create(0);
	n = qmgr_source_report(r->out);
	ck_assert_uint_le(n, REC_MAX);
	for (r->n = 0; off < r->out->len; r->n++) {
		ck_assert_uint_lt(r->n, REC_MAX);
		attr_list_init(&r->l[r->n]);
		ck_assert_int_eq(attr_decode(&r->l[r->n], r->out->data + off,
		    r->out->len - off, &used, why), 1);
		off += used;
	}
	ck_assert_uint_eq(r->n, n);
	vbuf_free(why);
}

static void
recs_free(struct recs *r)
{
	for (size_t i = 0; i < r->n; i++)
		attr_list_release(&r->l[i]);
	vbuf_free(r->out);
}

/* name's number in l, or -1 when l has none. */
static int64_t
num(const struct attr_list *l, const char *name)
{
	struct vbuf *why = vbuf_create(0);
	int64_t v = -1;

	if (attr_get(l, name) != NULL)
		ck_assert_int_eq(attr_get_int(l, name, &v, why), 0);
	vbuf_free(why);
	return v;
}

START_TEST(test_report)
{
	struct cidr addrs[2];
	struct cfg_pool pool = { "bulk", addrs, 2 };
	struct cfg_warmup warm;
	uint32_t schedule[] = { 2, 50 };
	struct qmgr_job job;
	struct recs r;
	struct fix f;
	int64_t today = (int64_t)time(NULL) / 86400, until;

	fix_setup(&f);
	ck_assert_int_eq(cidr_parse("192.0.2.1", &addrs[0]), 0);
	ck_assert_int_eq(cidr_parse("192.0.2.2", &addrs[1]), 0);
	warm.addr = addrs[1];
	warm.start_day = today - 1;		/* its second day: cap 50 */
	f.cfg.smtp_pools = &pool;
	f.cfg.nsmtp_pools = 1;
	f.cfg.smtp_warmup = &warm;
	f.cfg.nsmtp_warmup = 1;
	f.cfg.smtp_warmup_schedule = schedule;
	f.cfg.nsmtp_warmup_schedule = 2;
	f.cfg.smtp_reputation_set_aside = 3600;
	qmgr_source_reset();

	/* Nothing held yet: the pool's addresses alone. */
	report(&r);
	ck_assert_uint_eq(r.n, 2);
	ck_assert_str_eq(attr_get(&r.l[0], MAIL_ATTR_SOURCE), "192.0.2.1");
	ck_assert_str_eq(attr_get(&r.l[0], MAIL_ATTR_POOL), "bulk");
	ck_assert_int_eq(num(&r.l[0], MAIL_ATTR_WARMUP_DAY), -1);
	ck_assert_int_eq(num(&r.l[0], MAIL_ATTR_WARMUP_CAP), -1);
	ck_assert_ptr_null(attr_get(&r.l[0], MAIL_ATTR_SCOPE));
	ck_assert_str_eq(attr_get(&r.l[1], MAIL_ATTR_SOURCE), "192.0.2.2");
	ck_assert_int_eq(num(&r.l[1], MAIL_ATTR_WARMUP_DAY), 2);
	ck_assert_int_eq(num(&r.l[1], MAIL_ATTR_WARMUP_CAP), 50);
	recs_free(&r);

	/* Two messages from the warmup address, one refusal of the other. */
	memset(&job, 0, sizeof(job));
	snprintf(job.pool, sizeof(job.pool), "bulk");
	snprintf(job.nexthop, sizeof(job.nexthop), "mx.example:25");
	qmgr_source_reply(&job, "192.0.2.2", NULL, NULL, 1);
	qmgr_source_reply(&job, "192.0.2.2", NULL, NULL, 1);
	/* An established address that sent: nothing to keep. */
	snprintf(job.nexthop, sizeof(job.nexthop), "other.example:25");
	qmgr_source_reply(&job, "192.0.2.1", NULL, NULL, 1);
	/* Refused at 192.0.2.1; on from 192.0.2.2, nothing sent: no count. */
	qmgr_source_reply(&job, "192.0.2.2", "192.0.2.1",
	    "554 listed\x01 here", 0);
	until = (int64_t)time(NULL) + 3600;

	report(&r);
	ck_assert_uint_eq(r.n, 4);
	ck_assert_str_eq(attr_get(&r.l[2], MAIL_ATTR_SOURCE), "192.0.2.2");
	ck_assert_str_eq(attr_get(&r.l[2], MAIL_ATTR_SCOPE), "mx.example:25");
	ck_assert_ptr_null(attr_get(&r.l[2], MAIL_ATTR_POOL));
	ck_assert_int_eq(num(&r.l[2], MAIL_ATTR_SENT_TODAY), 2);
	ck_assert_int_eq(num(&r.l[2], MAIL_ATTR_WARMUP_CAP), 50);
	ck_assert_int_eq(num(&r.l[2], MAIL_ATTR_ASIDE_UNTIL), -1);
	ck_assert_ptr_null(attr_get(&r.l[2], MAIL_ATTR_ASIDE_REASON));
	ck_assert_str_eq(attr_get(&r.l[3], MAIL_ATTR_SOURCE), "192.0.2.1");
	ck_assert_str_eq(attr_get(&r.l[3], MAIL_ATTR_SCOPE),
	    "other.example:25");
	ck_assert_int_le(num(&r.l[3], MAIL_ATTR_ASIDE_UNTIL), until);
	ck_assert_int_ge(num(&r.l[3], MAIL_ATTR_ASIDE_UNTIL), until - 2);
	/* Printable, as the logs have it: a terminal shows it as it is. */
	ck_assert_str_eq(attr_get(&r.l[3], MAIL_ATTR_ASIDE_REASON),
	    "554 listed? here");
	ck_assert_int_eq(num(&r.l[3], MAIL_ATTR_SENT_TODAY), -1);
	ck_assert_int_eq(num(&r.l[3], MAIL_ATTR_WARMUP_CAP), -1);
	recs_free(&r);

	qmgr_source_reset();
	fix_teardown(&f);
}
END_TEST

static Suite *
source_suite(void)
{
	Suite *s;
	TCase *tc;

	/* The shared fixture's helpers this suite does without. */
	(void)fix_commit;
	(void)fix_rcpt;
	(void)fix_held_none;
	(void)fix_pending;
	s = suite_create("qmgr_source");
	tc = tcase_create("report");
	tcase_set_timeout(tc, 20);
	tcase_add_test(tc, test_report);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr;
	int nfailed;

	sr = srunner_create(source_suite());
	srunner_run_all(sr, CK_NORMAL);
	nfailed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return nfailed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
