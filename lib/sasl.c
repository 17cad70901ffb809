/*
 * sasl.c - SMTP AUTH response decoding (see sasl.h).
 */
#include <string.h>

#include <openssl/evp.h>

#include "sasl.h"

int
sasl_b64_decode(const char *in, unsigned char *out, size_t outsize,
    size_t *outlen)
{
	size_t n = strlen(in), pad = 0, i;
	int rc;

	if (n == 0) {
		if (outsize == 0)
			return -1;
		out[0] = '\0';
		*outlen = 0;
		return 0;
	}
	/* EVP_DecodeBlock writes whole groups: n / 4 * 3 bytes, plus NUL. */
	if (n % 4 != 0 || n / 4 * 3 >= outsize || n > 0x7fffffff)
		return -1;
	for (i = 0; i < n; i++) {
		char c = in[i];

		if (c == '=') {
			if (i < n - 2)
				return -1;
			pad++;
		} else if (pad > 0 || !((c >= 'A' && c <= 'Z') ||
		    (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
		    c == '+' || c == '/'))
			return -1;
	}
	rc = EVP_DecodeBlock(out, (const unsigned char *)in, (int)n);
	if (rc < 0 || (size_t)rc < pad)
		return -1;
	*outlen = (size_t)rc - pad;
	out[*outlen] = '\0';
	return 0;
}

int
sasl_plain_parse(const unsigned char *buf, size_t len, struct sasl_plain *p)
{
	const char *s = (const char *)buf;
	size_t alen, ulen;

	alen = strnlen(s, len);
	if (alen >= len)
		return -1;
	ulen = strnlen(s + alen + 1, len - alen - 1);
	if (alen + 1 + ulen >= len || ulen == 0)
		return -1;
	p->authzid = s;
	p->authcid = s + alen + 1;
	p->passwd = s + alen + 1 + ulen + 1;
	p->passwd_len = len - (alen + 1 + ulen + 1);
	/* A NUL inside the password would make it ambiguous. */
	if (memchr(p->passwd, '\0', p->passwd_len) != NULL)
		return -1;
	return 0;
}
