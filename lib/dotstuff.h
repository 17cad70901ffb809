/*
 * dotstuff.h - SMTP DATA framing: dot-unstuffing on receipt, dot-stuffing
 * on sending (RFC 5321 section 4.5.2).
 *
 * Receiving: only CRLF "." CRLF ends the data. A bare CR or a bare LF is
 * stored as CRLF, and a "." line after a bare line end, or ended by one, is
 * text, never the end (SMTP smuggling). smtpd feeds network bytes in any
 * split; the state machine carries partial lines across calls.
 */
#ifndef PETREL_DOTSTUFF_H
#define PETREL_DOTSTUFF_H

#include <stddef.h>

#include "vbuf.h"

struct dotstuff_rx {
	int	state;
	int	done;
};

/* Starts a new DATA body (the first byte is at the start of a line). */
void	dotstuff_rx_init(struct dotstuff_rx *);
/*
 * Consumes bytes from in[0..len) and appends the unstuffed message bytes
 * to out (which may be capped: the caller checks its own size limit).
 * Returns the number of bytes consumed: less than len only when the end of
 * data was reached (rx->done is then set and the rest belongs to the next
 * command, e.g. pipelined QUIT).
 */
size_t	dotstuff_rx_feed(struct dotstuff_rx *, const char *in, size_t len,
	    struct vbuf *out);

/*
 * BDAT (RFC 3030): chunks carry the message as it is, with no dot-
 * stuffing and no end marker, but line ends get the same treatment as in
 * DATA (a bare CR or LF is stored as CRLF) so that nothing we forward can
 * be read as a different line structure by the next hop. rx carries a CR
 * that ends one chunk into the next; start with dotstuff_rx_init, feed
 * every chunk, call dotstuff_bdat_end after the LAST one.
 */
void	dotstuff_bdat_feed(struct dotstuff_rx *, const char *in, size_t len,
	    struct vbuf *out);
void	dotstuff_bdat_end(struct dotstuff_rx *, struct vbuf *out);

struct dotstuff_tx {
	int	bol;		/* at the beginning of a line */
	int	last_cr;
};

/* Sending: call init, feed the message in pieces, then finish. */
void	dotstuff_tx_init(struct dotstuff_tx *);
void	dotstuff_tx_feed(struct dotstuff_tx *, const char *, size_t,
	    struct vbuf *out);
/* Appends CRLF if the message did not end in one, then ".\r\n". */
void	dotstuff_tx_finish(struct dotstuff_tx *, struct vbuf *out);

#endif
