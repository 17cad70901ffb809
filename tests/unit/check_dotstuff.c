/*
 * check_dotstuff.c - unit tests for lib/dotstuff: DATA framing both ways.
 *
 * Receiving: only CRLF "." CRLF ends the data, whatever the split of the
 * input across reads; stuffed dots are removed; bytes after the end are
 * left for the next command; the SMTP smuggling variants (bare LF or bare
 * CR around the dot) are data, and every bare CR or LF is stored as CRLF.
 * Sending: dots at the start of a line are doubled and the end is added.
 * A round trip of CRLF-only text gives back the original.
 */
#include <check.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dotstuff.h"
#include "vbuf.h"

static size_t	 rx_split(const char *, size_t, size_t, struct vbuf *, int *);
static size_t	 rx_bytes(const char *, size_t, struct vbuf *, int *);
static void	 rx_expect(const char *, const char *, size_t);
static void	 tx_all(const char *, size_t, struct vbuf *);
static uint32_t	 xorshift(uint32_t *);
static Suite	*dotstuff_suite(void);

/*
 * Feeds in[0..len) as two pieces split at cut; returns the bytes consumed
 * and sets *done.
 */
static size_t
rx_split(const char *in, size_t len, size_t cut, struct vbuf *out, int *done)
{
	struct dotstuff_rx rx;
	size_t used;

	dotstuff_rx_init(&rx);
	used = dotstuff_rx_feed(&rx, in, cut, out);
	if (!rx.done) {
		ck_assert_uint_eq(used, cut);
		used += dotstuff_rx_feed(&rx, in + cut, len - cut, out);
	}
	*done = rx.done;
	return used;
}

/* Feeds one byte at a time. */
static size_t
rx_bytes(const char *in, size_t len, struct vbuf *out, int *done)
{
	struct dotstuff_rx rx;
	size_t i, used = 0, n;

	dotstuff_rx_init(&rx);
	for (i = 0; i < len; i++) {
		n = dotstuff_rx_feed(&rx, in + i, 1, out);
		used += n;
		if (rx.done) {
			ck_assert_uint_eq(n, 1);
			break;
		}
		ck_assert_uint_eq(n, 1);
	}
	/* After the end nothing more is taken. */
	if (rx.done && i + 1 < len)
		ck_assert_uint_eq(dotstuff_rx_feed(&rx, in + i + 1, len - i - 1,
		    out), 0);
	*done = rx.done;
	return used;
}

/*
 * in must give exactly want (NUL-terminated, binary-free expected text)
 * and consume used bytes, ending the data when used < strlen(in) or when
 * the input ends in the terminator; checked whole, in every two-piece
 * split and byte by byte.
 */
static void
rx_expect(const char *in, const char *want, size_t want_used)
{
	size_t len = strlen(in), cut, used;
	struct vbuf *out = vbuf_create(0);
	int done;

	for (cut = 0; cut <= len; cut++) {
		vbuf_reset(out);
		used = rx_split(in, len, cut, out, &done);
		ck_assert_msg(done, "not done, cut %zu: %s", cut, in);
		ck_assert_uint_eq(used, want_used);
		ck_assert_uint_eq(out->len, strlen(want));
		ck_assert_msg(memcmp(out->data, want, out->len) == 0,
		    "cut %zu: got \"%s\"", cut, out->data);
	}
	vbuf_reset(out);
	used = rx_bytes(in, len, out, &done);
	ck_assert(done);
	ck_assert_uint_eq(used, want_used);
	ck_assert_str_eq(out->data, want);
	vbuf_free(out);
}

static void
tx_all(const char *in, size_t len, struct vbuf *out)
{
	struct dotstuff_tx tx;

	dotstuff_tx_init(&tx);
	dotstuff_tx_feed(&tx, in, len, out);
	dotstuff_tx_finish(&tx, out);
}

static uint32_t
xorshift(uint32_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 17;
	*s ^= *s << 5;
	return *s;
}

START_TEST(test_rx_normal)
{
	rx_expect("Subject: x\r\n\r\nHello\r\n.\r\n",
	    "Subject: x\r\n\r\nHello\r\n", 24);
	/* A dot inside a line or at its end is text. */
	rx_expect("a.b\r\nc.\r\n.\r\n", "a.b\r\nc.\r\n", 12);
}
END_TEST

START_TEST(test_rx_empty)
{
	rx_expect(".\r\n", "", 3);
	rx_expect("\r\n.\r\n", "\r\n", 5);
}
END_TEST

START_TEST(test_rx_unstuff)
{
	/* "..x" is ".x"; ".." alone is "."; "..." is "..". */
	rx_expect("..a\r\n..\r\n...\r\nb\r\n..\r\n.\r\n",
	    ".a\r\n.\r\n..\r\nb\r\n.\r\n", 24);
	/* A stuffed first line. */
	rx_expect("..\r\n.\r\n", ".\r\n", 7);
	/* A single leading dot followed by text: the dot is dropped. */
	rx_expect(".x\r\n.\r\n", "x\r\n", 7);
}
END_TEST

START_TEST(test_rx_pipelined)
{
	static const char in[] = "Hi\r\n.\r\nQUIT\r\n";
	struct dotstuff_rx rx;
	struct vbuf *out = vbuf_create(0);
	size_t used;

	/* The bytes after the end belong to the next command. */
	rx_expect(in, "Hi\r\n", 7);
	rx_expect("Hi\r\n.\r\n.\r\n", "Hi\r\n", 7);

	dotstuff_rx_init(&rx);
	used = dotstuff_rx_feed(&rx, in, sizeof(in) - 1, out);
	ck_assert(rx.done);
	ck_assert_uint_eq(used, 7);
	ck_assert_str_eq(in + used, "QUIT\r\n");
	ck_assert_uint_eq(dotstuff_rx_feed(&rx, "more", 4, out), 0);
	ck_assert_str_eq(out->data, "Hi\r\n");

	/* init starts over. */
	vbuf_reset(out);
	dotstuff_rx_init(&rx);
	ck_assert(!rx.done);
	ck_assert_uint_eq(dotstuff_rx_feed(&rx, "x\r\n.\r\n", 6, out), 6);
	ck_assert(rx.done);
	ck_assert_str_eq(out->data, "x\r\n");
	vbuf_free(out);
}
END_TEST

START_TEST(test_rx_smuggling)
{
	/*
	 * Each variant sits between "a" and "b", followed by the real end.
	 * None of them ends the data; every bare CR or LF becomes CRLF, so
	 * the stored line is a lone "." (which tx stuffs again on sending),
	 * and each case is stored as "a\r\n.\r\nb\r\n".
	 */
	static const char *variants[] = {
		"\n.\n",	/* bare LF both sides */
		"\r\n.\n",	/* CRLF, dot, bare LF */
		"\n.\r\n",	/* bare LF, dot, CRLF */
		"\r.\r",	/* bare CR both sides */
		"\r.\r\n",	/* bare CR, dot, CRLF */
		"\r\n.\r",	/* CRLF, dot, bare CR */
		"\n.\r",	/* bare LF, dot, bare CR */
		"\r.\n",	/* bare CR, dot, bare LF */
	};
	char in[64];
	size_t i;
	int n;

	for (i = 0; i < sizeof(variants) / sizeof(variants[0]); i++) {
		n = snprintf(in, sizeof(in), "a%sb\r\n.\r\n", variants[i]);
		ck_assert(n > 0 && (size_t)n < sizeof(in));
		rx_expect(in, "a\r\n.\r\nb\r\n", (size_t)n);
	}

	/* Variants at the very start of the data. */
	rx_expect(".\nb\r\n.\r\n", ".\r\nb\r\n", 8);
	rx_expect(".\rb\r\n.\r\n", ".\r\nb\r\n", 8);

	/* Without the real end the data is not done and all is consumed. */
	for (i = 0; i < sizeof(variants) / sizeof(variants[0]); i++) {
		struct dotstuff_rx rx;
		struct vbuf *out = vbuf_create(0);

		n = snprintf(in, sizeof(in), "a%sQUIT\r\n", variants[i]);
		dotstuff_rx_init(&rx);
		ck_assert_uint_eq(dotstuff_rx_feed(&rx, in, (size_t)n, out),
		    (size_t)n);
		ck_assert_msg(!rx.done, "variant %zu ended the data", i);
		vbuf_free(out);
	}
}
END_TEST

START_TEST(test_rx_bare)
{
	/* Bare CR and bare LF are stored as CRLF; a CR run each counts. */
	rx_expect("a\rb\nc\r\n.\r\n", "a\r\nb\r\nc\r\n", 10);
	rx_expect("a\r\r\nb\r\n.\r\n", "a\r\n\r\nb\r\n", 10);
	rx_expect("a\n\nb\r\n.\r\n", "a\r\n\r\nb\r\n", 9);
	/* A real CRLF right after a bare CR still ends the data. */
	rx_expect("a\r\r\n.\r\n", "a\r\n\r\n", 7);
	/* A dot after a bare line end is text, not stuffing. */
	rx_expect("a\n..b\r\n.\r\n", "a\r\n..b\r\n", 10);
	/* ".\r\r\n": the lone dot line, then an empty line. */
	rx_expect(".\r\r\n.\r\n", ".\r\n\r\n", 7);
}
END_TEST

START_TEST(test_rx_binary)
{
	static const char in[] = "a\0b\x80\xff\r\n.\r\n";
	struct dotstuff_rx rx;
	struct vbuf *out = vbuf_create(0);

	/* NUL and 8-bit bytes pass through unchanged. */
	dotstuff_rx_init(&rx);
	ck_assert_uint_eq(dotstuff_rx_feed(&rx, in, sizeof(in) - 1, out),
	    sizeof(in) - 1);
	ck_assert(rx.done);
	ck_assert_uint_eq(out->len, 7);
	ck_assert(memcmp(out->data, "a\0b\x80\xff\r\n", 7) == 0);
	vbuf_free(out);
}
END_TEST

/*
 * BDAT chunks: no stuffing and no end marker, line ends as in DATA, and a
 * CR that ends one chunk pairs with an LF that starts the next.
 */
static void
bdat_expect(const char *const *chunks, size_t n, const char *want)
{
	struct dotstuff_rx rx;
	struct vbuf *out = vbuf_create(0);

	dotstuff_rx_init(&rx);
	for (size_t i = 0; i < n; i++)
		dotstuff_bdat_feed(&rx, chunks[i], strlen(chunks[i]), out);
	dotstuff_bdat_end(&rx, out);
	ck_assert_uint_eq(out->len, strlen(want));
	ck_assert_mem_eq(out->data, want, out->len);
	vbuf_free(out);
}

START_TEST(test_bdat)
{
	static const char *plain[] = { "Subject: x\r\n\r\n.hi\r\n.\r\n" };
	static const char *split_crlf[] = { "a\r", "\nb\r\n" };
	static const char *bare[] = { "a\nb\rc", "\r" };
	static const char *empty[] = { "", "" };

	/* Dots are text: nothing is unstuffed and nothing ends the data. */
	bdat_expect(plain, 1, "Subject: x\r\n\r\n.hi\r\n.\r\n");
	bdat_expect(split_crlf, 2, "a\r\nb\r\n");
	/* Bare LF, bare CR, and a CR at the very end become CRLF. */
	bdat_expect(bare, 2, "a\r\nb\r\nc\r\n");
	bdat_expect(empty, 2, "");
}
END_TEST

START_TEST(test_tx_stuff)
{
	struct vbuf *out = vbuf_create(0);

	tx_all(".a\r\nb.\r\n.\r\n..\r\nc\r\n", 18, out);
	ck_assert_str_eq(out->data, "..a\r\nb.\r\n..\r\n...\r\nc\r\n.\r\n");

	vbuf_reset(out);
	tx_all("abc\r\n", 5, out);
	ck_assert_str_eq(out->data, "abc\r\n.\r\n");
	vbuf_free(out);
}
END_TEST

START_TEST(test_tx_finish)
{
	struct vbuf *out = vbuf_create(0);

	/* A missing final CRLF is added before the end. */
	tx_all("abc", 3, out);
	ck_assert_str_eq(out->data, "abc\r\n.\r\n");
	vbuf_reset(out);
	tx_all("abc\r\n.", 6, out);
	ck_assert_str_eq(out->data, "abc\r\n..\r\n.\r\n");
	/* An empty message is just the end. */
	vbuf_reset(out);
	tx_all("", 0, out);
	ck_assert_str_eq(out->data, ".\r\n");
	vbuf_reset(out);
	tx_all("\r\n", 2, out);
	ck_assert_str_eq(out->data, "\r\n.\r\n");
	vbuf_free(out);
}
END_TEST

START_TEST(test_tx_split)
{
	static const char in[] = "x\r\n.a\r\n..\r\nb\r\n.";
	static const char want[] = "x\r\n..a\r\n...\r\nb\r\n..\r\n.\r\n";
	struct dotstuff_tx tx;
	struct vbuf *out = vbuf_create(0);
	size_t len = sizeof(in) - 1, cut, i;

	/* Every two-piece split, and byte by byte. */
	for (cut = 0; cut <= len; cut++) {
		vbuf_reset(out);
		dotstuff_tx_init(&tx);
		dotstuff_tx_feed(&tx, in, cut, out);
		dotstuff_tx_feed(&tx, in + cut, len - cut, out);
		dotstuff_tx_finish(&tx, out);
		ck_assert_msg(strcmp(out->data, want) == 0, "cut %zu", cut);
	}
	vbuf_reset(out);
	dotstuff_tx_init(&tx);
	for (i = 0; i < len; i++)
		dotstuff_tx_feed(&tx, in + i, 1, out);
	dotstuff_tx_finish(&tx, out);
	ck_assert_str_eq(out->data, want);
	vbuf_free(out);
}
END_TEST

START_TEST(test_roundtrip)
{
	static const char alphabet[] = ".a. \t:x";
	struct vbuf *msg = vbuf_create(0), *wire = vbuf_create(0);
	struct vbuf *back = vbuf_create(0);
	struct dotstuff_rx rx;
	uint32_t seed = 0x2545f491;
	int round, lines, l, k, ln;
	size_t used, cut;

	for (round = 0; round < 300; round++) {
		vbuf_reset(msg);
		lines = (int)(xorshift(&seed) % 8);
		for (l = 0; l < lines; l++) {
			ln = (int)(xorshift(&seed) % 6);
			for (k = 0; k < ln; k++)
				vbuf_addc(msg, alphabet[xorshift(&seed) %
				    (sizeof(alphabet) - 1)]);
			vbuf_add(msg, "\r\n", 2);
		}
		vbuf_reset(wire);
		tx_all(msg->data, msg->len, wire);
		/* The wire form ends in exactly one terminator. */
		ck_assert(wire->len >= 3);
		ck_assert(memcmp(wire->data + wire->len - 3, ".\r\n", 3) == 0);
		vbuf_add(wire, "QUIT\r\n", 6);

		cut = xorshift(&seed) % (wire->len + 1);
		vbuf_reset(back);
		dotstuff_rx_init(&rx);
		used = dotstuff_rx_feed(&rx, wire->data, cut, back);
		if (!rx.done)
			used += dotstuff_rx_feed(&rx, wire->data + cut,
			    wire->len - cut, back);
		ck_assert(rx.done);
		ck_assert_uint_eq(used, wire->len - 6);
		ck_assert_uint_eq(back->len, msg->len);
		ck_assert_msg(memcmp(back->data, msg->data, msg->len) == 0,
		    "round %d: \"%s\" came back as \"%s\"", round, msg->data,
		    back->data);
	}
	vbuf_free(msg);
	vbuf_free(wire);
	vbuf_free(back);
}
END_TEST

static Suite *
dotstuff_suite(void)
{
	Suite *s = suite_create("dotstuff");
	TCase *rx = tcase_create("rx");
	TCase *tx = tcase_create("tx");

	tcase_add_test(rx, test_rx_normal);
	tcase_add_test(rx, test_rx_empty);
	tcase_add_test(rx, test_rx_unstuff);
	tcase_add_test(rx, test_rx_pipelined);
	tcase_add_test(rx, test_rx_smuggling);
	tcase_add_test(rx, test_rx_bare);
	tcase_add_test(rx, test_rx_binary);
	tcase_add_test(rx, test_bdat);
	tcase_add_test(tx, test_tx_stuff);
	tcase_add_test(tx, test_tx_finish);
	tcase_add_test(tx, test_tx_split);
	tcase_add_test(tx, test_roundtrip);
	suite_add_tcase(s, rx);
	suite_add_tcase(s, tx);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(dotstuff_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
