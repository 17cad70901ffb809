/*
 * b64.c - base64 encoding and strict decoding (see b64.h).
 *
 * A table-free codec over the two RFC 4648 alphabets. Decoding reads every
 * character through b64_value, so white space, NULs and characters of the
 * other alphabet are errors; it counts bits as it goes and checks the room
 * left before each byte, so a short output buffer is never overrun.
 */
#include <stdint.h>
#include <string.h>

#include "b64.h"

static const char b64_std[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
static const char b64_url[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

static int	b64_value(int, int);

/* The 6-bit value of c in the alphabet of flags, or -1. */
static int
b64_value(int c, int flags)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == ((flags & B64_URL) ? '-' : '+'))
		return 62;
	if (c == ((flags & B64_URL) ? '_' : '/'))
		return 63;
	return -1;
}

size_t
b64_encoded_len(size_t len, int flags)
{
	if (flags & B64_NOPAD)
		return len / 3 * 4 + (len % 3 == 0 ? 0 : len % 3 + 1);
	return (len + 2) / 3 * 4;
}

int
b64_encode(struct vbuf *out, const void *in, size_t len, int flags)
{
	const char *alpha = (flags & B64_URL) ? b64_url : b64_std;
	const unsigned char *p = in;
	size_t n, i, o;
	uint32_t v;
	char *d;

	if (len > (SIZE_MAX - 4) / 4 * 3)
		return -1;
	n = b64_encoded_len(len, flags);
	/* Room for n bytes and the NUL, within the cap. */
	if (vbuf_reserve(out, n) == -1)
		return -1;
	d = out->data + out->len;
	for (i = 0, o = 0; i + 3 <= len; i += 3) {
		v = (uint32_t)p[i] << 16 | (uint32_t)p[i + 1] << 8 | p[i + 2];
		d[o++] = alpha[v >> 18 & 63];
		d[o++] = alpha[v >> 12 & 63];
		d[o++] = alpha[v >> 6 & 63];
		d[o++] = alpha[v & 63];
	}
	if (len - i > 0) {
		v = (uint32_t)p[i] << 16;
		if (len - i == 2)
			v |= (uint32_t)p[i + 1] << 8;
		d[o++] = alpha[v >> 18 & 63];
		d[o++] = alpha[v >> 12 & 63];
		if (len - i == 2)
			d[o++] = alpha[v >> 6 & 63];
		else if (!(flags & B64_NOPAD))
			d[o++] = '=';
		if (!(flags & B64_NOPAD))
			d[o++] = '=';
	}
	out->len += o;
	out->data[out->len] = '\0';
	return 0;
}

int
b64_decode(const char *in, size_t len, unsigned char *out, size_t outsize,
    size_t *outlen, int flags)
{
	uint32_t acc = 0;
	size_t i, o = 0, pad = 0;
	int bits = 0, v;

	if ((flags & B64_NOPAD) ? len % 4 == 1 : len % 4 != 0)
		return -1;
	for (i = 0; i < len; i++) {
		/* '=' only in the last two places, then nothing else. */
		if (in[i] == '=' && !(flags & B64_NOPAD) && i + 2 >= len) {
			pad++;
			continue;
		}
		if (pad > 0 || (v = b64_value((unsigned char)in[i],
		    flags)) == -1)
			return -1;
		acc = (acc << 6 | (uint32_t)v) & 0xffffff;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			if (o == outsize)
				return -1;
			out[o++] = (unsigned char)(acc >> bits);
		}
	}
	if ((flags & B64_NOPAD) && (acc & ((1U << bits) - 1)) != 0)
		return -1;
	*outlen = o;
	return 0;
}
