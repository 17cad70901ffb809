/*
 * check_dsnparam.c - unit tests for lib/dsnparam, the RFC 3461 parameters
 * smtpd takes on MAIL FROM and RCPT TO: RET and ENVID, NOTIFY and ORCPT,
 * each with its error cases (repeats, NEVER with others, empty items,
 * malformed or unprintable xtext, the 100 and 500 byte limits, a bad
 * addr-type), the reply text of a refusal, values kept exactly as given,
 * and NOTIFY's format for the next hop.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dsnparam.h"
#include "vbuf.h"

static Suite	*dsnparam_suite(void);
static unsigned	 notify_of(const char *);
static int	 orcpt_ok(const char *);

/* NOTIFY's bits, or ~0u if refused. */
static unsigned
notify_of(const char *v)
{
	struct dsnparam_rcpt r;

	memset(&r, 0, sizeof(r));
	if (dsnparam_rcpt(&r, "NOTIFY", v, NULL) != 1)
		return ~0u;
	return r.notify;
}

static int
orcpt_ok(const char *v)
{
	struct dsnparam_rcpt r;
	int rc;

	memset(&r, 0, sizeof(r));
	rc = dsnparam_rcpt(&r, "ORCPT", v, NULL);
	if (rc == 1)
		ck_assert_str_eq(r.orcpt, v);
	else
		ck_assert_str_eq(r.orcpt, "");
	return rc == 1;
}

START_TEST(test_ret)
{
	struct dsnparam_mail m;
	struct vbuf why;

	vbuf_init(&why, 0);
	memset(&m, 0, sizeof(m));
	ck_assert_int_eq(dsnparam_mail(&m, "RET", "full", &why), 1);
	ck_assert_int_eq(m.ret, QSTORE_RET_FULL);
	ck_assert_int_eq(dsnparam_mail(&m, "RET", "HDRS", &why), -1);
	ck_assert_str_eq(why.data, "5.5.4 Bad RET parameter syntax");
	ck_assert_int_eq(m.ret, QSTORE_RET_FULL);
	memset(&m, 0, sizeof(m));
	ck_assert_int_eq(dsnparam_mail(&m, "RET", "HDRS", &why), 1);
	ck_assert_int_eq(m.ret, QSTORE_RET_HDRS);
	memset(&m, 0, sizeof(m));
	ck_assert_int_eq(dsnparam_mail(&m, "RET", "", &why), -1);
	ck_assert_int_eq(dsnparam_mail(&m, "RET", "FULLX", &why), -1);
	ck_assert_int_eq(dsnparam_mail(&m, "RET", "HEADERS", &why), -1);
	ck_assert_int_eq(m.have_ret, 0);
	/* Not a DSN parameter: left alone. */
	ck_assert_int_eq(dsnparam_mail(&m, "SIZE", "100", &why), 0);
	ck_assert_int_eq(dsnparam_mail(&m, "NOTIFY", "NEVER", &why), 0);
	vbuf_release(&why);
}
END_TEST

START_TEST(test_envid)
{
	struct dsnparam_mail m;
	struct vbuf why;
	char big[QSTORE_ENVID_MAX + 2];

	vbuf_init(&why, 0);
	memset(&m, 0, sizeof(m));
	ck_assert_int_eq(dsnparam_mail(&m, "ENVID", "QQ314159+2Bx", &why), 1);
	ck_assert_str_eq(m.envid, "QQ314159+2Bx");
	ck_assert_int_eq(dsnparam_mail(&m, "ENVID", "again", &why), -1);
	ck_assert_str_eq(why.data, "5.5.4 Bad ENVID parameter syntax");
	ck_assert_str_eq(m.envid, "QQ314159+2Bx");

	memset(&m, 0, sizeof(m));
	ck_assert_int_eq(dsnparam_mail(&m, "ENVID", "", &why), -1);
	ck_assert_int_eq(dsnparam_mail(&m, "ENVID", "a+2b", &why), -1);
	ck_assert_int_eq(dsnparam_mail(&m, "ENVID", "a=b", &why), -1);
	ck_assert_int_eq(dsnparam_mail(&m, "ENVID", "a+0Db", &why), -1);
	ck_assert_int_eq(dsnparam_mail(&m, "ENVID", "a+80b", &why), -1);
	ck_assert_str_eq(m.envid, "");
	/* A space is printable: allowed encoded. */
	ck_assert_int_eq(dsnparam_mail(&m, "ENVID", "a+20b", &why), 1);

	memset(big, 'x', sizeof(big));
	big[QSTORE_ENVID_MAX] = '\0';
	memset(&m, 0, sizeof(m));
	ck_assert_int_eq(dsnparam_mail(&m, "ENVID", big, &why), 1);
	ck_assert_str_eq(m.envid, big);
	big[QSTORE_ENVID_MAX] = 'x';
	big[QSTORE_ENVID_MAX + 1] = '\0';
	memset(&m, 0, sizeof(m));
	ck_assert_int_eq(dsnparam_mail(&m, "ENVID", big, &why), -1);
	vbuf_release(&why);
}
END_TEST

START_TEST(test_notify)
{
	struct dsnparam_rcpt r;
	struct vbuf why;

	ck_assert_uint_eq(notify_of("NEVER"), QSTORE_NOTIFY_NEVER);
	ck_assert_uint_eq(notify_of("never"), QSTORE_NOTIFY_NEVER);
	ck_assert_uint_eq(notify_of("SUCCESS"), QSTORE_NOTIFY_SUCCESS);
	ck_assert_uint_eq(notify_of("FAILURE,DELAY"),
	    QSTORE_NOTIFY_FAILURE | QSTORE_NOTIFY_DELAY);
	ck_assert_uint_eq(notify_of("delay,Success,FAILURE"),
	    QSTORE_NOTIFY_SUCCESS | QSTORE_NOTIFY_FAILURE |
	    QSTORE_NOTIFY_DELAY);
	ck_assert_uint_eq(notify_of("SUCCESS,SUCCESS"),
	    QSTORE_NOTIFY_SUCCESS);
	/* NEVER alone; no empty or unknown items. */
	ck_assert_uint_eq(notify_of("NEVER,SUCCESS"), ~0u);
	ck_assert_uint_eq(notify_of("FAILURE,NEVER"), ~0u);
	ck_assert_uint_eq(notify_of(""), ~0u);
	ck_assert_uint_eq(notify_of(","), ~0u);
	ck_assert_uint_eq(notify_of("SUCCESS,"), ~0u);
	ck_assert_uint_eq(notify_of(",SUCCESS"), ~0u);
	ck_assert_uint_eq(notify_of("SUCCESS,,FAILURE"), ~0u);
	ck_assert_uint_eq(notify_of("SUCCES"), ~0u);
	ck_assert_uint_eq(notify_of("SUCCESSX"), ~0u);
	ck_assert_uint_eq(notify_of("ALWAYS"), ~0u);

	vbuf_init(&why, 0);
	memset(&r, 0, sizeof(r));
	ck_assert_int_eq(dsnparam_rcpt(&r, "NOTIFY", "SUCCESS", &why), 1);
	ck_assert_int_eq(dsnparam_rcpt(&r, "NOTIFY", "FAILURE", &why), -1);
	ck_assert_str_eq(why.data, "5.5.4 Bad NOTIFY parameter syntax");
	ck_assert_uint_eq(r.notify, QSTORE_NOTIFY_SUCCESS);
	ck_assert_int_eq(dsnparam_rcpt(&r, "RET", "FULL", &why), 0);
	ck_assert_int_eq(dsnparam_rcpt(&r, "FOO", "", &why), 0);
	vbuf_release(&why);
}
END_TEST

START_TEST(test_orcpt)
{
	struct dsnparam_rcpt r;
	struct vbuf why;
	char big[QSTORE_ORCPT_MAX + 2];

	ck_assert(orcpt_ok("rfc822;bob@example.com"));
	ck_assert(orcpt_ok("rfc822;bob+2B2@example.com"));
	ck_assert(orcpt_ok("RFC822;bob@example.com"));
	ck_assert(orcpt_ok("x-local;bob"));
	ck_assert(orcpt_ok("utf-8;bob@example.com"));
	ck_assert(orcpt_ok("rfc822;a;b"));	/* ';' is xtext */
	ck_assert(orcpt_ok("rfc822;+22a+20b+22@example.com"));
	ck_assert(!orcpt_ok(""));
	ck_assert(!orcpt_ok("rfc822"));
	ck_assert(!orcpt_ok(";bob@example.com"));
	ck_assert(!orcpt_ok("rfc822;"));
	ck_assert(!orcpt_ok("rfc(822);bob@example.com"));
	ck_assert(!orcpt_ok("rfc.822;bob@example.com"));
	ck_assert(!orcpt_ok("rfc822;bob+2b@example.com"));
	ck_assert(!orcpt_ok("rfc822;bob=x@example.com"));
	ck_assert(!orcpt_ok("rfc822;bob+0A@example.com"));
	ck_assert(!orcpt_ok("rfc822;bob+00@example.com"));
	ck_assert(!orcpt_ok("rfc822;bob+C3+A9@example.com"));

	/* 500 bytes in all, addr-type and ';' included. */
	memset(big, 'a', sizeof(big));
	memcpy(big, "rfc822;", 7);
	big[QSTORE_ORCPT_MAX] = '\0';
	ck_assert(orcpt_ok(big));
	big[QSTORE_ORCPT_MAX] = 'a';
	big[QSTORE_ORCPT_MAX + 1] = '\0';
	ck_assert(!orcpt_ok(big));

	vbuf_init(&why, 0);
	memset(&r, 0, sizeof(r));
	ck_assert_int_eq(dsnparam_rcpt(&r, "ORCPT", "rfc822;a@b.c", &why), 1);
	ck_assert_int_eq(dsnparam_rcpt(&r, "ORCPT", "rfc822;x@b.c", &why),
	    -1);
	ck_assert_str_eq(why.data, "5.5.4 Bad ORCPT parameter syntax");
	ck_assert_str_eq(r.orcpt, "rfc822;a@b.c");
	vbuf_release(&why);
}
END_TEST

START_TEST(test_notify_format)
{
	static const char *in[] = { "NEVER", "SUCCESS", "FAILURE", "DELAY",
	    "SUCCESS,FAILURE", "SUCCESS,FAILURE,DELAY", "FAILURE,DELAY" };
	struct vbuf v;
	size_t i;

	vbuf_init(&v, 0);
	for (i = 0; i < sizeof(in) / sizeof(in[0]); i++) {
		vbuf_reset(&v);
		dsnparam_notify_format(notify_of(in[i]), &v);
		ck_assert_str_eq(v.data, in[i]);
	}
	vbuf_reset(&v);
	dsnparam_notify_format(notify_of("delay,success"), &v);
	ck_assert_str_eq(v.data, "SUCCESS,DELAY");
	vbuf_reset(&v);
	dsnparam_notify_format(0, &v);
	ck_assert_str_eq(v.data, "");
	/* A damaged value never sends NEVER with others. */
	vbuf_reset(&v);
	dsnparam_notify_format(QSTORE_NOTIFY_NEVER | QSTORE_NOTIFY_SUCCESS |
	    0x80, &v);
	ck_assert_str_eq(v.data, "NEVER");
	vbuf_release(&v);
}
END_TEST

static Suite *
dsnparam_suite(void)
{
	Suite *s = suite_create("dsnparam");
	TCase *tc = tcase_create("core");

	tcase_add_test(tc, test_ret);
	tcase_add_test(tc, test_envid);
	tcase_add_test(tc, test_notify);
	tcase_add_test(tc, test_orcpt);
	tcase_add_test(tc, test_notify_format);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(dsnparam_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
