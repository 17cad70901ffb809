/*
 * fuzz_sasl.c - libFuzzer target for the SMTP AUTH decoder in lib/sasl.c:
 * strict base64, then the PLAIN message.
 *
 * The input is an AUTH response line (it ends at the first NUL, as smtpd's
 * lines do). It is decoded into buffers of several sizes, tiny ones
 * included, each allocated at exactly that size so AddressSanitizer sees
 * any write past it; the result is compared with a simple reference
 * decoder, then split as PLAIN. The raw input is also handed to the PLAIN
 * parser directly. Broken invariants abort through ASSERT. Built and run by
 * `make fuzz`; see tests/fuzz/README.md.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "sasl.h"
#include "xalloc.h"

int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);

static int	fuzz_b64_value(int);
static int	fuzz_b64_ref(const char *, size_t, unsigned char *, size_t *);
static void	fuzz_plain(const unsigned char *, size_t);

/* The RFC 4648 value of c, or -1. */
static int
fuzz_b64_value(int c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+')
		return 62;
	if (c == '/')
		return 63;
	return -1;
}

/*
 * Reference strict decoder: groups of four, "=" only as the last one or
 * two characters, nothing else. out needs n / 4 * 3 bytes. Bits below
 * the last whole byte are ignored, as OpenSSL does.
 */
static int
fuzz_b64_ref(const char *in, size_t n, unsigned char *out, size_t *outlen)
{
	size_t i, j, pad, o = 0;
	int v[4];

	if (n % 4 != 0)
		return -1;
	for (i = 0; i < n; i += 4) {
		pad = 0;
		for (j = 0; j < 4; j++) {
			if (in[i + j] == '=' && i + 4 == n && j >= 2) {
				v[j] = 0;
				pad++;
				continue;
			}
			if (pad > 0)
				return -1;
			if ((v[j] = fuzz_b64_value((unsigned char)in[i + j]))
			    == -1)
				return -1;
		}
		out[o++] = (unsigned char)(v[0] << 2 | v[1] >> 4);
		if (pad < 2)
			out[o++] = (unsigned char)((v[1] & 0xf) << 4 |
			    v[2] >> 2);
		if (pad < 1)
			out[o++] = (unsigned char)((v[2] & 0x3) << 6 | v[3]);
	}
	*outlen = o;
	return 0;
}

static void
fuzz_plain(const unsigned char *buf, size_t len)
{
	struct sasl_plain p;
	size_t i, nuls, first, alen, ulen;
	int rc, want;

	ASSERT(buf[len] == '\0');
	/* Valid iff exactly two NULs and a non-empty user between them. */
	for (i = 0, nuls = 0, first = 0; i < len; i++)
		if (buf[i] == '\0' && nuls++ == 0)
			first = i;
	want = nuls == 2 && first + 1 < len && buf[first + 1] != '\0';

	memset(&p, 0, sizeof(p));
	rc = sasl_plain_parse(buf, len, &p);
	ASSERT(rc == 0 || rc == -1);
	ASSERT((rc == 0) == want);
	if (rc == -1)
		return;
	ASSERT(p.authzid == (const char *)buf);
	alen = strlen(p.authzid);
	ASSERT(p.authcid == (const char *)buf + alen + 1);
	ulen = strlen(p.authcid);
	ASSERT(ulen > 0);
	ASSERT(p.passwd == p.authcid + ulen + 1);
	ASSERT(p.passwd >= (const char *)buf &&
	    p.passwd <= (const char *)buf + len);
	ASSERT(alen + 1 + ulen + 1 + p.passwd_len == len);
	ASSERT(p.passwd[p.passwd_len] == '\0');
	ASSERT(memchr(p.passwd, '\0', p.passwd_len) == NULL);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *in;
	unsigned char *ref, *out;
	size_t n, i, k, reflen, outlen, sizes[10];
	int refrc, rc;

	in = xmalloc(size + 1);
	if (size > 0)
		memcpy(in, data, size);
	in[size] = '\0';
	n = strlen(in);

	ref = xmalloc(n / 4 * 3 + 1);
	reflen = 0;
	refrc = fuzz_b64_ref(in, n, ref, &reflen);

	/* Tiny, around the exact need, and roomy. */
	sizes[0] = 0;
	sizes[1] = 1;
	sizes[2] = 2;
	sizes[3] = 3;
	sizes[4] = 4;
	sizes[5] = n / 4 * 3;
	sizes[6] = n / 4 * 3 + 1;
	sizes[7] = refrc == 0 ? reflen : 1;
	sizes[8] = refrc == 0 ? reflen + 1 : 1;
	sizes[9] = 512;	/* smtpd's AUTH buffer */
	for (k = 0; k < sizeof(sizes) / sizeof(sizes[0]); k++) {
		/* Size 0 gets NULL: nothing may be written. */
		out = sizes[k] == 0 ? NULL : xmalloc(sizes[k]);
		outlen = (size_t)-1;
		rc = sasl_b64_decode(in, out, sizes[k], &outlen);
		ASSERT(rc == 0 || rc == -1);
		if (rc == 0) {
			ASSERT(refrc == 0);
			ASSERT(outlen < sizes[k] && outlen == reflen);
			ASSERT(memcmp(out, ref, outlen) == 0);
			ASSERT(out[outlen] == '\0');
			fuzz_plain(out, outlen);
		} else if (refrc == 0) {
			/* Refused only for want of room, never by accident. */
			ASSERT(n / 4 * 3 >= sizes[k]);
		}
		free(out);
	}

	/* The PLAIN parser on arbitrary bytes, NULs included. */
	out = xmalloc(size + 1);
	if (size > 0)
		memcpy(out, data, size);
	out[size] = '\0';
	fuzz_plain(out, size);
	for (i = 0; i < size && i < 8; i++)
		fuzz_plain(out + size - i, i);
	free(out);

	free(ref);
	free(in);
	return 0;
}
