/*
 * check_json.c - unit tests for lib/json: commas and nesting, every value
 * type, string escaping and UTF-8 repair.
 */
#include <math.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <check.h>

#include "json.h"
#include "vbuf.h"

static Suite	*json_suite(void);
static void	 check_quote(const char *, const char *);

/* Writes s as a lone string value and compares with the expected JSON. */
static void
check_quote(const char *s, const char *want)
{
	struct vbuf *vb;
	struct json j;

	vb = vbuf_create(0);
	json_init(&j, vb);
	json_str(&j, s);
	ck_assert_str_eq(vb->data, want);
	vbuf_free(vb);
}

START_TEST(test_empty)
{
	struct vbuf *vb;
	struct json j;

	vb = vbuf_create(0);
	json_init(&j, vb);
	json_object_begin(&j);
	json_object_end(&j);
	ck_assert_str_eq(vb->data, "{}");
	vbuf_reset(vb);
	json_init(&j, vb);
	json_array_begin(&j);
	json_array_end(&j);
	ck_assert_str_eq(vb->data, "[]");
	vbuf_free(vb);
}
END_TEST

START_TEST(test_flat_object)
{
	struct vbuf *vb;
	struct json j;

	vb = vbuf_create(0);
	json_init(&j, vb);
	json_object_begin(&j);
	json_kv_str(&j, "event", "delivered");
	json_kv_int(&j, "size", 4096);
	json_kv_str(&j, "auth", NULL);
	json_key(&j, "tls");
	json_bool(&j, 1);
	json_key(&j, "dkim");
	json_bool(&j, 0);
	json_key(&j, "x");
	json_null(&j);
	json_key(&j, "big");
	json_uint(&j, UINT64_MAX);
	json_key(&j, "min");
	json_int(&j, INT64_MIN);
	json_key(&j, "delay");
	json_double(&j, 1.23456, 2);
	json_key(&j, "d0");
	json_double(&j, 2.5, 0);
	json_object_end(&j);
	ck_assert_str_eq(vb->data,
	    "{\"event\":\"delivered\",\"size\":4096,\"auth\":null,"
	    "\"tls\":true,\"dkim\":false,\"x\":null,"
	    "\"big\":18446744073709551615,\"min\":-9223372036854775808,"
	    "\"delay\":1.23,\"d0\":2}");
	vbuf_free(vb);
}
END_TEST

START_TEST(test_nesting)
{
	struct vbuf *vb;
	struct json j;

	vb = vbuf_create(0);
	ck_assert_int_eq(vbuf_adds(vb, "prefix "), 0);	/* json appends */
	json_init(&j, vb);
	json_object_begin(&j);
	json_kv_str(&j, "queue_id", "4Xyz");
	json_key(&j, "recipients");
	json_array_begin(&j);
	json_object_begin(&j);
	json_kv_str(&j, "address", "a@example.com");
	json_kv_int(&j, "attempts", 1);
	json_object_end(&j);
	json_object_begin(&j);
	json_kv_str(&j, "address", "b@example.com");
	json_key(&j, "tags");
	json_array_begin(&j);
	json_array_end(&j);
	json_object_end(&j);
	json_object_begin(&j);
	json_object_end(&j);
	json_array_end(&j);
	json_key(&j, "empty");
	json_object_begin(&j);
	json_object_end(&j);
	json_key(&j, "list");
	json_array_begin(&j);
	json_int(&j, 1);
	json_str(&j, "two");
	json_null(&j);
	json_bool(&j, 1);
	json_array_begin(&j);
	json_uint(&j, 3);
	json_array_end(&j);
	json_array_end(&j);
	json_kv_int(&j, "last", -1);
	json_object_end(&j);
	ck_assert_str_eq(vb->data,
	    "prefix {\"queue_id\":\"4Xyz\",\"recipients\":["
	    "{\"address\":\"a@example.com\",\"attempts\":1},"
	    "{\"address\":\"b@example.com\",\"tags\":[]},{}],"
	    "\"empty\":{},\"list\":[1,\"two\",null,true,[3]],\"last\":-1}");
	vbuf_free(vb);
}
END_TEST

START_TEST(test_max_depth)
{
	struct vbuf *vb;
	struct json j;
	int i;

	/* 15 levels are allowed. */
	vb = vbuf_create(0);
	json_init(&j, vb);
	for (i = 0; i < 15; i++)
		json_array_begin(&j);
	json_int(&j, 0);
	for (i = 0; i < 15; i++)
		json_array_end(&j);
	ck_assert_str_eq(vb->data, "[[[[[[[[[[[[[[[0]]]]]]]]]]]]]]]");
	vbuf_free(vb);
}
END_TEST

/* Deeper nesting is a programming error: an assertion, not an overflow. */
START_TEST(test_too_deep)
{
	struct vbuf *vb;
	struct json j;
	int i;

	vb = vbuf_create(0);
	json_init(&j, vb);
	for (i = 0; i < 16; i++)
		json_object_begin(&j);
	vbuf_free(vb);
}
END_TEST

START_TEST(test_unbalanced_end)
{
	struct vbuf *vb;
	struct json j;

	vb = vbuf_create(0);
	json_init(&j, vb);
	json_object_end(&j);
	vbuf_free(vb);
}
END_TEST

START_TEST(test_escape_ascii)
{
	check_quote("", "\"\"");
	check_quote("plain text 123", "\"plain text 123\"");
	check_quote("say \"hi\"", "\"say \\\"hi\\\"\"");
	check_quote("a\\b", "\"a\\\\b\"");
	check_quote("/", "\"/\"");
	check_quote("l1\nl2\r\n\tx", "\"l1\\nl2\\r\\n\\tx\"");
	check_quote("\x01\x08\x0c\x1b\x1f", "\"\\u0001\\u0008\\u000c"
	    "\\u001b\\u001f\"");
	check_quote("del\x7f", "\"del\\u007f\"");
	check_quote(" ~", "\" ~\"");
}
END_TEST

START_TEST(test_escape_key)
{
	struct vbuf *vb;
	struct json j;

	vb = vbuf_create(0);
	json_init(&j, vb);
	json_object_begin(&j);
	json_kv_str(&j, "k\"\n\xff", "v");
	json_object_end(&j);
	ck_assert_str_eq(vb->data, "{\"k\\\"\\n\\ufffd\":\"v\"}");
	vbuf_free(vb);
}
END_TEST

START_TEST(test_utf8_valid)
{
	/* Valid multibyte sequences are copied as they are. */
	check_quote("caf\xc3\xa9", "\"caf\xc3\xa9\"");		/* U+00E9 */
	check_quote("\xc2\x80", "\"\xc2\x80\"");		/* U+0080 */
	check_quote("\xdf\xbf", "\"\xdf\xbf\"");		/* U+07FF */
	check_quote("\xe0\xa0\x80", "\"\xe0\xa0\x80\"");	/* U+0800 */
	check_quote("\xe2\x82\xac", "\"\xe2\x82\xac\"");	/* U+20AC */
	check_quote("\xed\x9f\xbf", "\"\xed\x9f\xbf\"");	/* U+D7FF */
	check_quote("\xee\x80\x80", "\"\xee\x80\x80\"");	/* U+E000 */
	check_quote("\xef\xbf\xbd", "\"\xef\xbf\xbd\"");	/* U+FFFD */
	/* U+10000, an emoji, U+10FFFF. */
	check_quote("\xf0\x90\x80\x80", "\"\xf0\x90\x80\x80\"");
	check_quote("\xf0\x9f\x98\x80", "\"\xf0\x9f\x98\x80\"");
	check_quote("\xf4\x8f\xbf\xbf", "\"\xf4\x8f\xbf\xbf\"");
	check_quote("\xe6\x97\xa5\xe6\x9c\xac\"x",
	    "\"\xe6\x97\xa5\xe6\x9c\xac\\\"x\"");
}
END_TEST

START_TEST(test_utf8_invalid)
{
	/* Each byte that does not start a valid sequence becomes U+FFFD. */
	check_quote("\xff", "\"\\ufffd\"");
	check_quote("\xfe\xfe", "\"\\ufffd\\ufffd\"");
	check_quote("a\x80z", "\"a\\ufffdz\"");		/* lone continuation */
	check_quote("a\xc3", "\"a\\ufffd\"");		/* truncated at end */
	check_quote("\xc3z", "\"\\ufffdz\"");		/* truncated mid */
	check_quote("\xe2\x82", "\"\\ufffd\\ufffd\"");
	check_quote("\xf0\x9f\x98", "\"\\ufffd\\ufffd\\ufffd\"");
	/* Overlong forms. */
	check_quote("\xc0\xaf", "\"\\ufffd\\ufffd\"");
	check_quote("\xc1\xbf", "\"\\ufffd\\ufffd\"");
	check_quote("\xe0\x80\xaf", "\"\\ufffd\\ufffd\\ufffd\"");
	check_quote("\xf0\x80\x80\xaf",
	    "\"\\ufffd\\ufffd\\ufffd\\ufffd\"");
	/* UTF-16 surrogates are not characters. */
	check_quote("\xed\xa0\x80", "\"\\ufffd\\ufffd\\ufffd\"");
	check_quote("\xed\xbf\xbf", "\"\\ufffd\\ufffd\\ufffd\"");
	/* Past U+10FFFF, and 5- and 6-byte forms. */
	check_quote("\xf4\x90\x80\x80",
	    "\"\\ufffd\\ufffd\\ufffd\\ufffd\"");
	check_quote("\xf8\x88\x80\x80\x80",
	    "\"\\ufffd\\ufffd\\ufffd\\ufffd\\ufffd\"");
	/* Bad bytes do not swallow a following quote or control. */
	check_quote("\xc3\"", "\"\\ufffd\\\"\"");
	check_quote("\xe2\n", "\"\\ufffd\\n\"");
	/* Valid text around invalid bytes survives. */
	check_quote("\xc3\xa9\xff\xc3\xa9", "\"\xc3\xa9\\ufffd\xc3\xa9\"");
}
END_TEST

/*
 * json.h promises "the output is always valid JSON", but NaN and infinity
 * print as "nan"/"inf". BUG in lib/json.c json_double(): fails until it
 * writes null for non-finite values.
 */
START_TEST(test_double_nonfinite)
{
	struct vbuf *vb;
	struct json j;

	vb = vbuf_create(0);
	json_init(&j, vb);
	json_array_begin(&j);
	json_double(&j, NAN, 1);
	json_double(&j, INFINITY, 1);
	json_double(&j, -INFINITY, 1);
	json_double(&j, 0.5, 1);
	json_array_end(&j);
	ck_assert_msg(strcmp(vb->data, "[null,null,null,0.5]") == 0,
	    "BUG lib/json.c json_double: non-finite gives invalid JSON: %s",
	    vb->data);
	vbuf_free(vb);
}
END_TEST

static Suite *
json_suite(void)
{
	Suite *s;
	TCase *tc;

	s = suite_create("json");
	tc = tcase_create("structure");
	tcase_add_test(tc, test_empty);
	tcase_add_test(tc, test_flat_object);
	tcase_add_test(tc, test_nesting);
	tcase_add_test(tc, test_max_depth);
	tcase_add_test_raise_signal(tc, test_too_deep, SIGABRT);
	tcase_add_test_raise_signal(tc, test_unbalanced_end, SIGABRT);
	suite_add_tcase(s, tc);
	tc = tcase_create("strings");
	tcase_add_test(tc, test_escape_ascii);
	tcase_add_test(tc, test_escape_key);
	tcase_add_test(tc, test_utf8_valid);
	tcase_add_test(tc, test_utf8_invalid);
	suite_add_tcase(s, tc);
	tc = tcase_create("numbers");
	tcase_add_test(tc, test_double_nonfinite);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr;
	int nfailed;

	sr = srunner_create(json_suite());
	srunner_run_all(sr, CK_NORMAL);
	nfailed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return nfailed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
