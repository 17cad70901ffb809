/*
 * check_vbuf.c - unit tests for lib/vbuf: growth, caps, formatting,
 * consume/truncate and wiping.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <check.h>

#include "vbuf.h"

static Suite	*vbuf_suite(void);
static void	 assert_terminated(const struct vbuf *);

/* Every buffer keeps its invariants: NUL after len, len < size. */
static void
assert_terminated(const struct vbuf *vb)
{
	ck_assert_ptr_nonnull(vb->data);
	ck_assert_uint_lt(vb->len, vb->size);
	ck_assert_int_eq(vb->data[vb->len], '\0');
	if (vb->cap != 0)
		ck_assert_uint_le(vb->len, vb->cap);
}

START_TEST(test_create_empty)
{
	struct vbuf *vb;

	vb = vbuf_create(0);
	ck_assert_uint_eq(vb->len, 0);
	ck_assert_str_eq(vb->data, "");
	ck_assert_uint_eq(vb->cap, 0);
	assert_terminated(vb);
	vbuf_free(vb);
	vbuf_free(NULL);
}
END_TEST

START_TEST(test_init_release)
{
	struct vbuf vb;

	vbuf_init(&vb, 10);
	ck_assert_uint_eq(vb.cap, 10);
	ck_assert_int_eq(vbuf_adds(&vb, "hello"), 0);
	ck_assert_str_eq(vb.data, "hello");
	vbuf_release(&vb);
	ck_assert_ptr_null(vb.data);
	ck_assert_uint_eq(vb.len, 0);
}
END_TEST

START_TEST(test_add_growth)
{
	struct vbuf *vb;
	char chunk[37];
	size_t i, j;

	vb = vbuf_create(0);
	/* Many small appends across several doublings. */
	for (i = 0; i < 2000; i++) {
		for (j = 0; j < sizeof(chunk); j++)
			chunk[j] = (char)('a' + (i + j) % 26);
		ck_assert_int_eq(vbuf_add(vb, chunk, sizeof(chunk)), 0);
		assert_terminated(vb);
	}
	ck_assert_uint_eq(vb->len, 2000 * sizeof(chunk));
	for (i = 0; i < 2000; i++)
		for (j = 0; j < sizeof(chunk); j++)
			ck_assert_int_eq(vb->data[i * sizeof(chunk) + j],
			    'a' + (int)((i + j) % 26));
	/* One large append. */
	vbuf_reset(vb);
	ck_assert_uint_eq(vb->len, 0);
	ck_assert_str_eq(vb->data, "");
	{
		char *big = malloc(1 << 20);

		ck_assert_ptr_nonnull(big);
		memset(big, 'z', 1 << 20);
		ck_assert_int_eq(vbuf_add(vb, big, 1 << 20), 0);
		ck_assert_uint_eq(vb->len, 1 << 20);
		ck_assert_mem_eq(vb->data, big, 1 << 20);
		assert_terminated(vb);
		free(big);
	}
	vbuf_free(vb);
}
END_TEST

START_TEST(test_binary_safe)
{
	struct vbuf *vb;
	static const char bin[] = { 'a', '\0', 'b', '\xff', '\0' };

	vb = vbuf_create(0);
	ck_assert_int_eq(vbuf_add(vb, bin, sizeof(bin)), 0);
	ck_assert_int_eq(vbuf_addc(vb, 0), 0);
	ck_assert_int_eq(vbuf_addc(vb, 0xfe), 0);
	ck_assert_uint_eq(vb->len, sizeof(bin) + 2);
	ck_assert_mem_eq(vb->data, bin, sizeof(bin));
	ck_assert_int_eq(vb->data[5], '\0');
	ck_assert_int_eq((unsigned char)vb->data[6], 0xfe);
	assert_terminated(vb);
	/* Adding nothing is fine, even with a NULL pointer. */
	ck_assert_int_eq(vbuf_add(vb, NULL, 0), 0);
	ck_assert_uint_eq(vb->len, sizeof(bin) + 2);
	vbuf_free(vb);
}
END_TEST

START_TEST(test_cap_enforced)
{
	struct vbuf *vb;

	vb = vbuf_create(10);
	/* Exactly the cap fits. */
	ck_assert_int_eq(vbuf_adds(vb, "0123456789"), 0);
	ck_assert_uint_eq(vb->len, 10);
	ck_assert_int_eq(vbuf_addc(vb, 'x'), -1);
	ck_assert_int_eq(vbuf_adds(vb, "x"), -1);
	ck_assert_str_eq(vb->data, "0123456789");		/* unchanged */
	ck_assert_uint_eq(vb->len, 10);
	assert_terminated(vb);
	/* Adding nothing at the cap still succeeds. */
	ck_assert_int_eq(vbuf_add(vb, "", 0), 0);

	vbuf_reset(vb);
	ck_assert_int_eq(vbuf_adds(vb, "abc"), 0);
	/* A single append over the cap fails as a whole. */
	ck_assert_int_eq(vbuf_adds(vb, "defghijkl"), -1);
	ck_assert_str_eq(vb->data, "abc");
	ck_assert_uint_eq(vb->len, 3);
	ck_assert_int_eq(vbuf_adds(vb, "defghij"), 0);
	ck_assert_str_eq(vb->data, "abcdefghij");
	vbuf_free(vb);
}
END_TEST

START_TEST(test_cap_large)
{
	struct vbuf *vb;
	char *big;
	size_t cap = 100000;

	/* The cap holds past the initial allocation too. */
	vb = vbuf_create(cap);
	big = malloc(cap + 1);
	ck_assert_ptr_nonnull(big);
	memset(big, 'q', cap + 1);
	ck_assert_int_eq(vbuf_add(vb, big, cap + 1), -1);
	ck_assert_uint_eq(vb->len, 0);
	ck_assert_int_eq(vbuf_add(vb, big, cap - 1), 0);
	ck_assert_int_eq(vbuf_add(vb, big, 2), -1);
	ck_assert_int_eq(vbuf_add(vb, big, 1), 0);
	ck_assert_uint_eq(vb->len, cap);
	assert_terminated(vb);
	free(big);
	vbuf_free(vb);
}
END_TEST

START_TEST(test_addf)
{
	struct vbuf *vb;

	vb = vbuf_create(0);
	ck_assert_int_eq(vbuf_addf(vb, "%d-%s", 42, "x"), 0);
	ck_assert_int_eq(vbuf_addf(vb, "/%05u", 7u), 0);
	ck_assert_str_eq(vb->data, "42-x/00007");
	ck_assert_uint_eq(vb->len, strlen("42-x/00007"));
	/* An empty format adds nothing. */
	ck_assert_int_eq(vbuf_addf(vb, "%s", ""), 0);
	ck_assert_uint_eq(vb->len, strlen("42-x/00007"));
	ck_assert_int_eq(vbuf_setf(vb, "v=%d", -1), 0);
	ck_assert_str_eq(vb->data, "v=-1");
	ck_assert_uint_eq(vb->len, 4);
	vbuf_free(vb);
}
END_TEST

START_TEST(test_addf_long)
{
	struct vbuf *vb;
	char *s;
	size_t n = 10000, i;

	s = malloc(n + 1);
	ck_assert_ptr_nonnull(s);
	for (i = 0; i < n; i++)
		s[i] = (char)('A' + i % 26);
	s[n] = '\0';

	vb = vbuf_create(0);
	ck_assert_int_eq(vbuf_adds(vb, "head:"), 0);
	/* Output much longer than the current allocation. */
	ck_assert_int_eq(vbuf_addf(vb, "[%s]%d", s, 12345), 0);
	ck_assert_uint_eq(vb->len, 5 + 1 + n + 1 + 5);
	ck_assert_mem_eq(vb->data, "head:[", 6);
	ck_assert_mem_eq(vb->data + 6, s, n);
	ck_assert_str_eq(vb->data + 6 + n, "]12345");
	assert_terminated(vb);
	vbuf_free(vb);
	/* Output that exactly fills, or just passes, the free space. */
	vb = vbuf_create(0);
	ck_assert_uint_lt(vb->size, n);
	s[vb->size - 1] = '\0';
	ck_assert_int_eq(vbuf_addf(vb, "%s", s), 0);
	ck_assert_uint_eq(vb->len, strlen(s));
	assert_terminated(vb);
	vbuf_free(vb);
	vb = vbuf_create(0);
	s[vb->size - 1] = 'X';
	s[vb->size] = '\0';
	ck_assert_int_eq(vbuf_addf(vb, "%s", s), 0);
	ck_assert_uint_eq(vb->len, strlen(s));
	ck_assert_str_eq(vb->data, s);
	assert_terminated(vb);
	free(s);
	vbuf_free(vb);
}
END_TEST

START_TEST(test_addf_cap)
{
	struct vbuf *vb;
	char s[301];

	memset(s, 'y', 300);
	s[300] = '\0';

	/* Over the cap after growing: fails, contents unchanged. */
	vb = vbuf_create(100);
	ck_assert_int_eq(vbuf_adds(vb, "abc"), 0);
	ck_assert_int_eq(vbuf_addf(vb, "%s", s), -1);
	ck_assert_str_eq(vb->data, "abc");
	ck_assert_uint_eq(vb->len, 3);
	assert_terminated(vb);
	/* Over the cap but within the allocation: still fails. */
	vbuf_free(vb);
	vb = vbuf_create(10);
	ck_assert_int_eq(vbuf_adds(vb, "ab"), 0);
	ck_assert_int_eq(vbuf_addf(vb, "%s", "0123456789"), -1);
	ck_assert_str_eq(vb->data, "ab");
	ck_assert_uint_eq(vb->len, 2);
	assert_terminated(vb);
	/* Exactly to the cap works. */
	ck_assert_int_eq(vbuf_addf(vb, "%s", "01234567"), 0);
	ck_assert_str_eq(vb->data, "ab01234567");
	ck_assert_int_eq(vbuf_addf(vb, "%s", "z"), -1);
	ck_assert_str_eq(vb->data, "ab01234567");
	/* setf over the cap leaves no stale bytes behind. */
	ck_assert_int_eq(vbuf_setf(vb, "%s", s), -1);
	ck_assert_uint_eq(vb->len, 0);
	assert_terminated(vb);
	vbuf_free(vb);
}
END_TEST

START_TEST(test_consume)
{
	struct vbuf *vb;

	vb = vbuf_create(0);
	ck_assert_int_eq(vbuf_adds(vb, "hello world"), 0);
	vbuf_consume(vb, 0);
	ck_assert_str_eq(vb->data, "hello world");
	vbuf_consume(vb, 6);
	ck_assert_str_eq(vb->data, "world");
	ck_assert_uint_eq(vb->len, 5);
	assert_terminated(vb);
	vbuf_consume(vb, 5);
	ck_assert_str_eq(vb->data, "");
	ck_assert_uint_eq(vb->len, 0);
	ck_assert_int_eq(vbuf_adds(vb, "abc"), 0);
	vbuf_consume(vb, 1000);
	ck_assert_uint_eq(vb->len, 0);
	assert_terminated(vb);
	/* Binary contents survive the move. */
	ck_assert_int_eq(vbuf_add(vb, "x\0y\0z", 5), 0);
	vbuf_consume(vb, 1);
	ck_assert_uint_eq(vb->len, 4);
	ck_assert_mem_eq(vb->data, "\0y\0z", 5);
	vbuf_free(vb);
}
END_TEST

START_TEST(test_truncate)
{
	struct vbuf *vb;

	vb = vbuf_create(0);
	ck_assert_int_eq(vbuf_adds(vb, "abcdef"), 0);
	vbuf_truncate(vb, 100);
	ck_assert_str_eq(vb->data, "abcdef");
	ck_assert_uint_eq(vb->len, 6);
	vbuf_truncate(vb, 6);
	ck_assert_str_eq(vb->data, "abcdef");
	vbuf_truncate(vb, 3);
	ck_assert_str_eq(vb->data, "abc");
	ck_assert_uint_eq(vb->len, 3);
	assert_terminated(vb);
	vbuf_truncate(vb, 0);
	ck_assert_str_eq(vb->data, "");
	ck_assert_uint_eq(vb->len, 0);
	vbuf_free(vb);
}
END_TEST

START_TEST(test_reserve)
{
	struct vbuf *vb;

	vb = vbuf_create(0);
	ck_assert_int_eq(vbuf_adds(vb, "ab"), 0);
	ck_assert_int_eq(vbuf_reserve(vb, 5000), 0);
	ck_assert_uint_eq(vb->len, 2);
	ck_assert_uint_ge(vb->size, 2 + 5000 + 1);
	ck_assert_str_eq(vb->data, "ab");
	/* Impossible sizes fail instead of wrapping around. */
	ck_assert_int_eq(vbuf_reserve(vb, SIZE_MAX), -1);
	ck_assert_int_eq(vbuf_reserve(vb, SIZE_MAX - 2), -1);
	ck_assert_int_eq(vbuf_add(vb, "x", SIZE_MAX), -1);
	ck_assert_str_eq(vb->data, "ab");
	vbuf_free(vb);

	vb = vbuf_create(8);
	ck_assert_int_eq(vbuf_reserve(vb, 8), 0);
	ck_assert_int_eq(vbuf_reserve(vb, 9), -1);
	ck_assert_int_eq(vbuf_adds(vb, "abc"), 0);
	ck_assert_int_eq(vbuf_reserve(vb, 5), 0);
	ck_assert_int_eq(vbuf_reserve(vb, 6), -1);
	vbuf_free(vb);
}
END_TEST

START_TEST(test_wipe)
{
	struct vbuf *vb;
	size_t i;

	vb = vbuf_create(0);
	ck_assert_int_eq(vbuf_adds(vb, "secret password 12345"), 0);
	vbuf_wipe(vb);
	ck_assert_uint_eq(vb->len, 0);
	for (i = 0; i < vb->size; i++)
		ck_assert_int_eq(vb->data[i], '\0');
	/* Still usable afterwards. */
	ck_assert_int_eq(vbuf_adds(vb, "again"), 0);
	ck_assert_str_eq(vb->data, "again");
	vbuf_free(vb);
}
END_TEST

static Suite *
vbuf_suite(void)
{
	Suite *s;
	TCase *tc;

	s = suite_create("vbuf");
	tc = tcase_create("core");
	tcase_add_test(tc, test_create_empty);
	tcase_add_test(tc, test_init_release);
	tcase_add_test(tc, test_add_growth);
	tcase_add_test(tc, test_binary_safe);
	tcase_add_test(tc, test_cap_enforced);
	tcase_add_test(tc, test_cap_large);
	tcase_add_test(tc, test_addf);
	tcase_add_test(tc, test_addf_long);
	tcase_add_test(tc, test_addf_cap);
	tcase_add_test(tc, test_consume);
	tcase_add_test(tc, test_truncate);
	tcase_add_test(tc, test_reserve);
	tcase_add_test(tc, test_wipe);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr;
	int nfailed;

	sr = srunner_create(vbuf_suite());
	srunner_run_all(sr, CK_NORMAL);
	nfailed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return nfailed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
