/*
 * sasl.c - SMTP AUTH response decoding (see sasl.h). The base64 itself is
 * lib/b64's strict decoder, with padding required.
 */
#include <string.h>

#include "b64.h"
#include "sasl.h"

int
sasl_b64_decode(const char *in, unsigned char *out, size_t outsize,
    size_t *outlen)
{
	size_t n = strlen(in);

	/*
	 * Room for every whole group and the NUL is asked for before the
	 * padding is known: a response is refused for its length alone, never
	 * for what it decodes to.
	 */
	if (n / 4 * 3 >= outsize ||
	    b64_decode(in, n, out, outsize - 1, outlen, 0) == -1)
		return -1;
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
