/*
 * fuzz_mimefold.c - libFuzzer target for lib/mimefold.c, which walks the
 * MIME structure of messages that applications send (untrusted) to make
 * their lines fit the 998-octet limit.
 *
 * The input is a message. Checked: no output line is longer than the
 * limit, whatever the input; an input without a long line comes back
 * byte for byte with nothing forced; the output fits on a second pass
 * unchanged in length or better (folding is idempotent in its result).
 * Broken invariants abort through ASSERT. Built and run by `make fuzz`;
 * see tests/fuzz/README.md.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "log.h"
#include "mimefold.h"
#include "vbuf.h"

int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t len)
{
	struct vbuf *out = vbuf_create(0), *again = vbuf_create(0);
	const char *msg = (const char *)data;
	unsigned forced, forced2;

	mimefold(msg, len, out, &forced);
	ASSERT(mimefold_longest(out->data, out->len) <= MIMEFOLD_LINE_MAX);
	if (mimefold_longest(msg, len) <= MIMEFOLD_LINE_MAX) {
		ASSERT(forced == 0);
		ASSERT(out->len == len && memcmp(out->data, msg, len) == 0);
	}
	/* What fits is left alone. */
	mimefold(out->data, out->len, again, &forced2);
	ASSERT(forced2 == 0);
	ASSERT(again->len == out->len &&
	    memcmp(again->data, out->data, out->len) == 0);
	vbuf_free(out);
	vbuf_free(again);
	return 0;
}
