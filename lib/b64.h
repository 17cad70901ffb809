/*
 * b64.h - base64 (RFC 4648), the one codec of the tree.
 *
 * A generic module: it knows nothing of mail. smtpd decodes SMTP AUTH
 * responses with it (through lib/sasl, strict, padding required), lib/cred
 * stores scrypt salts and keys without padding and makes secrets in the
 * URL alphabet, and relayctl encodes DKIM public keys for DNS. Decoding is
 * strict: no white space, no character outside the alphabet, no padding
 * out of place, and the output is bounded by the caller's buffer.
 */
#ifndef PETREL_B64_H
#define PETREL_B64_H

#include <stddef.h>

#include "vbuf.h"

/* Flags of b64_encode and b64_decode. */
#define B64_URL		0x01	/* RFC 4648 section 5: '-' and '_' */
#define B64_NOPAD	0x02	/* no '=' written, and none accepted */

/* Characters b64_encode writes for len bytes (without a NUL). */
size_t	b64_encoded_len(size_t len, int flags);

/*
 * Appends the base64 of in[0..len) to out. Returns 0, or -1 if out's cap
 * does not leave room (out is then unchanged).
 */
int	b64_encode(struct vbuf *out, const void *in, size_t len, int flags);

/*
 * Decodes in[0..len) into out[0..outsize) and sets *outlen; nothing is
 * written past outsize and no NUL is added. Returns 0, or -1 if in is
 * malformed or the result does not fit. With padding (the default), len
 * is a multiple of 4 and '=' may only end the last group (one or two);
 * as in OpenSSL, bits below the last whole byte are ignored, so every
 * string a lenient encoder makes is read. With B64_NOPAD, '=' is refused,
 * len % 4 must not be 1, and those bits must be zero (one encoding per
 * value, for strings we write ourselves). The empty string decodes to
 * zero bytes.
 */
int	b64_decode(const char *in, size_t len, unsigned char *out,
	    size_t outsize, size_t *outlen, int flags);

#endif
