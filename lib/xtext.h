/*
 * xtext.h - RFC 3461 section 4 "xtext", the encoding of the DSN ESMTP
 * parameters ENVID and ORCPT.
 *
 * xtext is printable US-ASCII from '!' (33) to '~' (126) except '+' and
 * '=', which stand for themselves, and "+XX" (two upper-case hexadecimal
 * digits) for any other octet. smtpd checks what a client sends with
 * xtext_valid (lib/dsnparam) and stores it still encoded; smtp encodes the
 * recipient address for an ORCPT of its own with xtext_encode; bounce
 * decodes ENVID and ORCPT for its reports with xtext_decode.
 */
#ifndef PETREL_XTEXT_H
#define PETREL_XTEXT_H

#include <stddef.h>

#include "vbuf.h"

/*
 * 1 if s is well-formed xtext of at most maxlen bytes (as encoded; "" is
 * well-formed), else 0. Hexadecimal digits must be upper case (RFC 3461
 * section 4: "two upper case hexadecimal digits").
 */
int	xtext_valid(const char *s, size_t maxlen);
/*
 * The decoded form of s, NUL-terminated, in memory the caller frees; NULL
 * if s is not well-formed xtext or decodes to a NUL byte. Never NULL for
 * lack of memory (xalloc).
 */
char	*xtext_decode(const char *s);
/*
 * Appends the xtext of s to out: octets from 33 to 126 except '+' and
 * '=' as they are, every other one as "+XX".
 */
void	xtext_encode(struct vbuf *out, const char *s);

#endif
