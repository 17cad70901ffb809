/*
 * mimefold.h - makes a message fit SMTP's line limit without losing
 * content.
 *
 * RFC 5322 2.1.1 and RFC 5321 4.5.3.1.6 allow at most 998 octets on a
 * line before its CRLF. Applications send longer ones every day (HTML
 * mailers that never wrap); a receiver may refuse, truncate or rewrap
 * them, and a rewrap breaks the DKIM signature. smtpd hands such a
 * message to mimefold() before it is queued, and what leaves Petrel then
 * has no long line:
 *
 * - a header field is folded at whitespace (unfolding gives it back);
 * - a MIME leaf part with a long line and an identity encoding (7bit,
 *   8bit, binary, or none) is re-encoded as quoted-printable, whose soft
 *   line breaks decode to the original text, and its
 *   Content-Transfer-Encoding field says so; multipart and message/rfc822
 *   entities are walked (to a bounded depth);
 * - a message with no MIME structure at all (neither MIME-Version nor
 *   Content-Type) becomes a text/plain quoted-printable MIME message with
 *   the charset its bytes show (us-ascii, utf-8, else unknown-8bit);
 * - only where none of that is possible (a long line inside base64 or
 *   quoted-printable, a header with no whitespace to fold at, structure
 *   deeper than the bound) is a line split by force, which changes its
 *   content: counted in *forced for the log.
 *
 * The input is a whole message with CRLF line ends (as smtpd stores it);
 * nothing in it is trusted.
 */
#ifndef PETREL_MIMEFOLD_H
#define PETREL_MIMEFOLD_H

#include <stddef.h>

#include "vbuf.h"

#define MIMEFOLD_LINE_MAX	998	/* octets before CRLF */
#define MIMEFOLD_DEPTH_MAX	16	/* nested multiparts walked */

/* The length of the longest line in buf, without its CR LF. */
size_t	mimefold_longest(const char *buf, size_t len);

/*
 * Appends msg, made to fit, to out. *forced is set to the number of lines
 * that had to be split by force (0 when no content changed).
 */
void	mimefold(const char *msg, size_t len, struct vbuf *out,
	    unsigned *forced);

#endif
