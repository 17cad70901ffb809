/*
 * xtext.c - RFC 3461 xtext: check, decode, encode. See xtext.h.
 */
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "xalloc.h"
#include "xtext.h"

static int	xtext_hex(int);

/* The value of an upper-case hexadecimal digit, or -1. */
static int
xtext_hex(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

int
xtext_valid(const char *s, size_t maxlen)
{
	size_t i;

	for (i = 0; s[i] != '\0'; i++) {
		if (i >= maxlen)
			return 0;
		if (s[i] == '+') {
			if (xtext_hex((unsigned char)s[i + 1]) == -1 ||
			    xtext_hex((unsigned char)s[i + 2]) == -1)
				return 0;
			i += 2;
			if (i >= maxlen)
				return 0;
			continue;
		}
		if ((unsigned char)s[i] < 33 || (unsigned char)s[i] > 126 ||
		    s[i] == '=')
			return 0;
	}
	return 1;
}

char *
xtext_decode(const char *s)
{
	char *out;
	size_t i, n = 0;
	int c;

	if (!xtext_valid(s, strlen(s)))
		return NULL;
	out = xmalloc(strlen(s) + 1);
	for (i = 0; s[i] != '\0'; i++) {
		if (s[i] == '+') {
			c = xtext_hex((unsigned char)s[i + 1]) * 16 +
			    xtext_hex((unsigned char)s[i + 2]);
			i += 2;
			if (c == 0) {
				free(out);
				return NULL;
			}
			out[n++] = (char)c;
		} else
			out[n++] = s[i];
	}
	out[n] = '\0';
	return out;
}

void
xtext_encode(struct vbuf *out, const char *s)
{
	static const char hex[] = "0123456789ABCDEF";
	unsigned char c;

	for (; *s != '\0'; s++) {
		c = (unsigned char)*s;
		if (c < 33 || c > 126 || c == '+' || c == '=') {
			(void)vbuf_addc(out, '+');
			(void)vbuf_addc(out, hex[c >> 4]);
			(void)vbuf_addc(out, hex[c & 0x0f]);
		} else
			(void)vbuf_addc(out, c);
	}
}
