/*
 * fuzz_dotstuff.c - libFuzzer target for the DATA framing state machine in
 * lib/dotstuff.c (the SMTP smuggling defence).
 *
 * Input layout: byte 0 picks how many split points follow (0-7), each one
 * byte; byte 1 + k sets an output cap; the rest is the DATA stream as it
 * comes off the network. Checked: feeding in pieces equals feeding it
 * whole; only CRLF "." CRLF (or "." CRLF at the very start) ends the data,
 * at its first occurrence; the output holds no bare CR or LF; a cap on
 * the output never changes the framing; dot-stuffing what was received and
 * receiving it again gives it back, and what dotstuff_tx sends ends exactly
 * at its own terminator. Broken invariants abort through ASSERT. Built and
 * run by `make fuzz`; see tests/fuzz/README.md.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "dotstuff.h"
#include "log.h"
#include "vbuf.h"

#define FUZZ_SPLITS_MAX	7

int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);

static size_t	fuzz_rx(const char *, size_t, const size_t *, size_t,
		    struct vbuf *, int *);
static size_t	fuzz_end(const char *, size_t);
static void	fuzz_crlf_only(const struct vbuf *);
static void	fuzz_tx(const char *, size_t, const size_t *, size_t,
		    struct vbuf *);

/*
 * Feeds in[0..len) to a new receiver in pieces ending at cuts[] (sorted;
 * past len means len), stopping at the end of data as smtpd does. Returns the
 * bytes consumed; sets *done.
 */
static size_t
fuzz_rx(const char *in, size_t len, const size_t *cuts, size_t ncuts,
    struct vbuf *out, int *done)
{
	struct dotstuff_rx rx;
	size_t pos = 0, end, used, k;

	dotstuff_rx_init(&rx);
	for (k = 0; k <= ncuts && !rx.done; k++) {
		end = k < ncuts ? cuts[k] : len;
		if (end > len)
			end = len;
		if (end < pos)
			continue;
		used = dotstuff_rx_feed(&rx, in + pos, end - pos, out);
		ASSERT(used <= end - pos);
		/* Short only at the end of data. */
		ASSERT(used == end - pos || rx.done);
		pos += used;
	}
	*done = rx.done;
	return pos;
}

/*
 * Reference: where the data ends (just past the first CRLF "." CRLF, or
 * past "." CRLF at the start), or 0 if it does not.
 */
static size_t
fuzz_end(const char *in, size_t len)
{
	const char *p;

	if (len >= 3 && memcmp(in, ".\r\n", 3) == 0)
		return 3;
	p = memmem(in, len, "\r\n.\r\n", 5);
	return p == NULL ? 0 : (size_t)(p - in) + 5;
}

/* Every CR is followed by LF and every LF preceded by CR. */
static void
fuzz_crlf_only(const struct vbuf *vb)
{
	size_t i;

	ASSERT(vb->data[vb->len] == '\0');
	for (i = 0; i < vb->len; i++) {
		if (vb->data[i] == '\r')
			ASSERT(i + 1 < vb->len && vb->data[i + 1] == '\n');
		else if (vb->data[i] == '\n')
			ASSERT(i > 0 && vb->data[i - 1] == '\r');
	}
}

/* Dot-stuffs in[0..len) in pieces ending at cuts[], then finishes. */
static void
fuzz_tx(const char *in, size_t len, const size_t *cuts, size_t ncuts,
    struct vbuf *out)
{
	struct dotstuff_tx tx;
	size_t pos = 0, end, k;

	dotstuff_tx_init(&tx);
	for (k = 0; k <= ncuts; k++) {
		end = k < ncuts ? cuts[k] : len;
		if (end > len)
			end = len;
		if (end < pos)
			continue;
		dotstuff_tx_feed(&tx, in + pos, end - pos, out);
		pos = end;
	}
	dotstuff_tx_finish(&tx, out);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct vbuf whole, split, capped, sent, back;
	size_t ncuts, cuts[FUZZ_SPLITS_MAX], k, j, len, used, used2, end;
	size_t cap, t;
	const char *in;
	int done, done2;

	if (size < 2)
		return 0;
	ncuts = data[0] % (FUZZ_SPLITS_MAX + 1);
	if (size < 2 + ncuts)
		return 0;
	in = (const char *)data + 2 + ncuts;
	len = size - 2 - ncuts;
	for (k = 0; k < ncuts; k++)
		cuts[k] = len == 0 ? 0 : data[1 + k] % (len + 1);
	/* Sorted, so the pieces are consecutive (insertion sort). */
	for (k = 1; k < ncuts; k++)
		for (j = k; j > 0 && cuts[j - 1] > cuts[j]; j--) {
			t = cuts[j];
			cuts[j] = cuts[j - 1];
			cuts[j - 1] = t;
		}
	cap = data[1 + ncuts];

	/* Whole, then in pieces: the same bytes and the same framing. */
	vbuf_init(&whole, 0);
	used = fuzz_rx(in, len, NULL, 0, &whole, &done);
	vbuf_init(&split, 0);
	used2 = fuzz_rx(in, len, cuts, ncuts, &split, &done2);
	ASSERT(used == used2 && done == done2);
	ASSERT(whole.len == split.len &&
	    memcmp(whole.data, split.data, whole.len) == 0);

	/* Only the first CRLF.CRLF ends the data. */
	end = fuzz_end(in, len);
	if (end == 0)
		ASSERT(!done && used == len);
	else
		ASSERT(done && used == end);

	/* No bare CR or LF reaches the queue file. */
	fuzz_crlf_only(&whole);
	/* The output grows by at most three bytes per input byte. */
	ASSERT(whole.len <= used * 3);

	/* A full buffer never changes where the data ends. */
	vbuf_init(&capped, cap + 1);
	used2 = fuzz_rx(in, len, cuts, ncuts, &capped, &done2);
	ASSERT(used == used2 && done == done2 && capped.len <= cap + 1);

	/*
	 * Round trip: stuffing what was received and receiving it again
	 * gives it back (with a final CRLF when it lacked one), and ends
	 * exactly at the terminator tx wrote.
	 */
	vbuf_init(&sent, 0);
	fuzz_tx(whole.data, whole.len, cuts, ncuts, &sent);
	vbuf_init(&back, 0);
	used2 = fuzz_rx(sent.data, sent.len, NULL, 0, &back, &done2);
	ASSERT(done2 && used2 == sent.len);
	if (whole.len > 0 && (whole.len < 2 ||
	    memcmp(whole.data + whole.len - 2, "\r\n", 2) != 0))
		(void)vbuf_add(&whole, "\r\n", 2);
	ASSERT(back.len == whole.len &&
	    memcmp(back.data, whole.data, whole.len) == 0);

	/* Stuffing raw bytes (bare CR, LF) still never ends early. */
	vbuf_reset(&sent);
	fuzz_tx(in, len, cuts, ncuts, &sent);
	vbuf_reset(&back);
	used2 = fuzz_rx(sent.data, sent.len, cuts, ncuts, &back, &done2);
	ASSERT(done2 && used2 == sent.len);

	vbuf_release(&back);
	vbuf_release(&sent);
	vbuf_release(&capped);
	vbuf_release(&split);
	vbuf_release(&whole);
	return 0;
}
