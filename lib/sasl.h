/*
 * sasl.h - decoding SMTP AUTH responses (RFC 4954): strict base64 and the
 * PLAIN message (RFC 4616).
 *
 * Used by smtpd and by the fuzz targets; both functions are pure, take
 * untrusted input and never read or write outside the given bounds.
 */
#ifndef PETREL_SASL_H
#define PETREL_SASL_H

#include <stddef.h>

/*
 * Decodes strict base64 (RFC 4648 alphabet, padding required, no white
 * space) into out (outsize bytes) and NUL-terminates it, so outsize must
 * exceed the decoded length. Returns 0 with *outlen, or -1 if malformed or
 * too long.
 */
int	sasl_b64_decode(const char *in, unsigned char *out, size_t outsize,
	    size_t *outlen);

struct sasl_plain {
	const char	*authzid;	/* may be "" */
	const char	*authcid;	/* the user name */
	const char	*passwd;	/* may contain no NUL */
	size_t		 passwd_len;
};

/*
 * Splits a decoded PLAIN message "[authzid] NUL authcid NUL passwd"
 * (buf[len] must be NUL). Returns 0, or -1 if a part is missing or the
 * user name is empty. The fields point into buf.
 */
int	sasl_plain_parse(const unsigned char *buf, size_t len,
	    struct sasl_plain *);

#endif
