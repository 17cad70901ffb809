/*
 * check_b64.c - unit tests for lib/b64: the RFC 4648 test vectors in both
 * alphabets, with and without padding, round trips of every length and
 * byte value, strict refusal of malformed input (white space, NULs,
 * foreign characters, misplaced padding, impossible lengths, stray bits
 * without padding), and the bounds on the output buffer and the vbuf cap.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "b64.h"
#include "vbuf.h"

static Suite	*b64_suite(void);

/* RFC 4648 section 10. */
static const struct {
	const char	*plain;
	const char	*padded;
	const char	*bare;
} vectors[] = {
	{ "", "", "" },
	{ "f", "Zg==", "Zg" },
	{ "fo", "Zm8=", "Zm8" },
	{ "foo", "Zm9v", "Zm9v" },
	{ "foob", "Zm9vYg==", "Zm9vYg" },
	{ "fooba", "Zm9vYmE=", "Zm9vYmE" },
	{ "foobar", "Zm9vYmFy", "Zm9vYmFy" },
};

START_TEST(test_vectors)
{
	unsigned char out[16];
	struct vbuf v;
	size_t i, n, len;

	vbuf_init(&v, 0);
	for (i = 0; i < sizeof(vectors) / sizeof(vectors[0]); i++) {
		len = strlen(vectors[i].plain);
		vbuf_reset(&v);
		ck_assert_int_eq(b64_encode(&v, vectors[i].plain, len, 0), 0);
		ck_assert_str_eq(v.data, vectors[i].padded);
		ck_assert_uint_eq(b64_encoded_len(len, 0), v.len);
		vbuf_reset(&v);
		ck_assert_int_eq(b64_encode(&v, vectors[i].plain, len,
		    B64_NOPAD), 0);
		ck_assert_str_eq(v.data, vectors[i].bare);
		ck_assert_uint_eq(b64_encoded_len(len, B64_NOPAD), v.len);

		n = (size_t)-1;
		ck_assert_int_eq(b64_decode(vectors[i].padded,
		    strlen(vectors[i].padded), out, sizeof(out), &n, 0), 0);
		ck_assert_uint_eq(n, len);
		ck_assert(memcmp(out, vectors[i].plain, len) == 0);
		n = (size_t)-1;
		ck_assert_int_eq(b64_decode(vectors[i].bare,
		    strlen(vectors[i].bare), out, sizeof(out), &n,
		    B64_NOPAD), 0);
		ck_assert_uint_eq(n, len);
		ck_assert(memcmp(out, vectors[i].plain, len) == 0);
	}
	/* Appends to what is there. */
	vbuf_setf(&v, "x:");
	ck_assert_int_eq(b64_encode(&v, "foo", 3, 0), 0);
	ck_assert_str_eq(v.data, "x:Zm9v");
	vbuf_release(&v);
}
END_TEST

START_TEST(test_alphabets)
{
	static const unsigned char in[] = { 0xfb, 0xff, 0xbf };
	unsigned char out[4];
	struct vbuf v;
	size_t n;

	vbuf_init(&v, 0);
	ck_assert_int_eq(b64_encode(&v, in, sizeof(in), 0), 0);
	ck_assert_str_eq(v.data, "+/+/");
	vbuf_reset(&v);
	ck_assert_int_eq(b64_encode(&v, in, sizeof(in), B64_URL), 0);
	ck_assert_str_eq(v.data, "-_-_");
	ck_assert_int_eq(b64_decode("-_-_", 4, out, sizeof(out), &n,
	    B64_URL), 0);
	ck_assert_uint_eq(n, 3);
	ck_assert(memcmp(out, in, 3) == 0);
	/* Each alphabet refuses the other's two characters. */
	ck_assert_int_eq(b64_decode("-_-_", 4, out, sizeof(out), &n, 0), -1);
	ck_assert_int_eq(b64_decode("+/+/", 4, out, sizeof(out), &n,
	    B64_URL), -1);
	vbuf_release(&v);
}
END_TEST

START_TEST(test_roundtrip)
{
	static const int flags[] = { 0, B64_NOPAD, B64_URL,
	    B64_URL | B64_NOPAD };
	unsigned char in[300], out[300];
	struct vbuf v;
	size_t len, f, i, n;

	for (i = 0; i < sizeof(in); i++)
		in[i] = (unsigned char)(i * 7 + 3);
	vbuf_init(&v, 0);
	for (f = 0; f < sizeof(flags) / sizeof(flags[0]); f++)
		for (len = 0; len <= sizeof(in); len++) {
			vbuf_reset(&v);
			ck_assert_int_eq(b64_encode(&v, in, len, flags[f]), 0);
			ck_assert_uint_eq(v.len, b64_encoded_len(len,
			    flags[f]));
			ck_assert_uint_eq(strlen(v.data), v.len);
			n = (size_t)-1;
			ck_assert_int_eq(b64_decode(v.data, v.len, out, len, &n,
			    flags[f]), 0);
			ck_assert_uint_eq(n, len);
			ck_assert(len == 0 || memcmp(out, in, len) == 0);
		}
	vbuf_release(&v);
}
END_TEST

START_TEST(test_bad_input)
{
	static const char *bad_padded[] = {
		"Zg=", "Zg", "Z", "Zm9", "Zm9vY", "Zg= =", " Zg==", "Zg==\n",
		"Zg\r\n==", "Z===", "====", "Zg==Zg==", "Zm=v", "Zg=A",
		"Zm9v\tYmFy", "Zm9v*mFy", "Zm9v.mFy", "Zm9vYmF\xff",
	};
	static const char *bad_bare[] = {
		"Z", "Zm9vY", "Zg==", "Zm8=", " Zg", "Zg ", "Z\ng", "Zh",
		"Zm9", "Zm8A=",
	};
	unsigned char out[64];
	size_t i, n;

	for (i = 0; i < sizeof(bad_padded) / sizeof(bad_padded[0]); i++)
		ck_assert_msg(b64_decode(bad_padded[i], strlen(bad_padded[i]),
		    out, sizeof(out), &n, 0) == -1, "accepted \"%s\"",
		    bad_padded[i]);
	for (i = 0; i < sizeof(bad_bare) / sizeof(bad_bare[0]); i++)
		ck_assert_msg(b64_decode(bad_bare[i], strlen(bad_bare[i]),
		    out, sizeof(out), &n, B64_NOPAD) == -1, "accepted \"%s\"",
		    bad_bare[i]);
	/* A NUL inside the given length is a foreign character. */
	ck_assert_int_eq(b64_decode("Zm\0v", 4, out, sizeof(out), &n, 0), -1);
	ck_assert_int_eq(b64_decode("Zm\0v", 4, out, sizeof(out), &n,
	    B64_NOPAD), -1);
	/*
	 * With padding, bits below the last byte are ignored, as OpenSSL
	 * does ("Zh==" reads as "Zg=="); without, they make it malformed.
	 */
	ck_assert_int_eq(b64_decode("Zh==", 4, out, sizeof(out), &n, 0), 0);
	ck_assert_uint_eq(n, 1);
	ck_assert_int_eq(out[0], 'f');
	ck_assert_int_eq(b64_decode("Zh", 2, out, sizeof(out), &n, B64_NOPAD),
	    -1);
	ck_assert_int_eq(b64_decode("Zm9=", 4, out, sizeof(out), &n, 0), 0);
	ck_assert_uint_eq(n, 2);
	ck_assert_int_eq(b64_decode("Zm9", 3, out, sizeof(out), &n,
	    B64_NOPAD), -1);
}
END_TEST

START_TEST(test_limits)
{
	unsigned char *out;
	struct vbuf v;
	size_t n, i;

	/* Exactly the room needed, then one byte less (allocated exactly). */
	out = malloc(6);
	ck_assert_ptr_nonnull(out);
	ck_assert_int_eq(b64_decode("Zm9vYmFy", 8, out, 6, &n, 0), 0);
	ck_assert_uint_eq(n, 6);
	ck_assert(memcmp(out, "foobar", 6) == 0);
	ck_assert_int_eq(b64_decode("Zm9vYmFy", 8, out, 5, &n, 0), -1);
	ck_assert_int_eq(b64_decode("Zm9vYmE=", 8, out, 5, &n, 0), 0);
	ck_assert_uint_eq(n, 5);
	ck_assert_int_eq(b64_decode("Zm9vYmE", 7, out, 4, &n, B64_NOPAD), -1);
	free(out);
	/* No room at all: only the empty string decodes. */
	n = 99;
	ck_assert_int_eq(b64_decode("", 0, NULL, 0, &n, 0), 0);
	ck_assert_uint_eq(n, 0);
	ck_assert_int_eq(b64_decode("Zg==", 4, NULL, 0, &n, 0), -1);

	/* A capped vbuf: a result past the cap is refused, out unchanged. */
	vbuf_init(&v, 8);
	(void)vbuf_adds(&v, "ab");
	ck_assert_int_eq(b64_encode(&v, "foob", 4, 0), -1);
	ck_assert_str_eq(v.data, "ab");
	ck_assert_int_eq(b64_encode(&v, "foo", 3, 0), 0);
	ck_assert_str_eq(v.data, "abZm9v");
	ck_assert_int_eq(b64_encode(&v, "f", 1, B64_NOPAD), 0);
	ck_assert_str_eq(v.data, "abZm9vZg");
	ck_assert_int_eq(b64_encode(&v, "", 0, 0), 0);
	ck_assert_int_eq(b64_encode(&v, "f", 1, B64_NOPAD), -1);
	vbuf_release(&v);

	/* Lengths. */
	for (i = 0; i < 10; i++) {
		ck_assert_uint_eq(b64_encoded_len(i, 0), (i + 2) / 3 * 4);
		ck_assert_uint_eq(b64_encoded_len(i, B64_NOPAD),
		    (i * 8 + 5) / 6);
	}
}
END_TEST

static Suite *
b64_suite(void)
{
	Suite *s = suite_create("b64");
	TCase *tc;

	tc = tcase_create("codec");
	tcase_add_test(tc, test_vectors);
	tcase_add_test(tc, test_alphabets);
	tcase_add_test(tc, test_roundtrip);
	tcase_add_test(tc, test_bad_input);
	tcase_add_test(tc, test_limits);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(b64_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
