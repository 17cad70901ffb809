/*
 * dotstuff.c - DATA dot-unstuffing and dot-stuffing (see dotstuff.h).
 */
#include "dotstuff.h"

enum {
	RX_BOL,		/* at the start of a line, after a real CRLF */
	RX_BOL_BARE,	/* at the start of a line, after a bare CR or LF */
	RX_TEXT,	/* inside a line */
	RX_CR,		/* inside a line, a CR held back */
	RX_DOT,		/* "." at the start of a line */
	RX_DOT_CR,	/* ".\r" at the start of a line */
};

void
dotstuff_rx_init(struct dotstuff_rx *rx)
{
	rx->state = RX_BOL;
	rx->done = 0;
}

size_t
dotstuff_rx_feed(struct dotstuff_rx *rx, const char *in, size_t len,
    struct vbuf *out)
{
	size_t i, run;

	for (i = 0; i < len && !rx->done; i++) {
		char c = in[i];

		switch (rx->state) {
		case RX_TEXT:
			if (c != '\r' && c != '\n') {
				/* Copy the run of plain text up to CR or LF. */
				for (run = i; run < len && in[run] != '\r' &&
				    in[run] != '\n'; run++)
					;
				(void)vbuf_add(out, in + i, run - i);
				i = run - 1;
			} else if (c == '\r')
				rx->state = RX_CR;
			else {
				(void)vbuf_add(out, "\r\n", 2);
				rx->state = RX_BOL_BARE;
			}
			break;
		case RX_BOL:
		case RX_BOL_BARE:
			/* After a bare line end a dot is text, never the end. */
			if (c == '.' && rx->state == RX_BOL)
				rx->state = RX_DOT;
			else if (c == '\r')
				rx->state = RX_CR;
			else if (c == '\n') {
				(void)vbuf_add(out, "\r\n", 2);
				rx->state = RX_BOL_BARE;
			} else {
				(void)vbuf_addc(out, c);
				rx->state = RX_TEXT;
			}
			break;
		case RX_CR:
			/* A line ends here; a bare CR is made a CRLF. */
			(void)vbuf_add(out, "\r\n", 2);
			if (c == '\n')
				rx->state = RX_BOL;
			else {
				rx->state = RX_BOL_BARE;
				i--;	/* c starts the next line */
			}
			break;
		case RX_DOT:
			if (c == '\r')
				rx->state = RX_DOT_CR;
			else if (c == '\n') {
				/* ".\n" is not the end: keep it as a line. */
				(void)vbuf_add(out, ".\r\n", 3);
				rx->state = RX_BOL_BARE;
			} else {
				/* A stuffed dot: drop it, keep the rest. */
				rx->state = RX_TEXT;
				i--;
			}
			break;
		case RX_DOT_CR:
			if (c == '\n') {
				rx->done = 1;
				break;
			}
			/* ".\r" then more is not the end either. */
			(void)vbuf_add(out, ".\r\n", 3);
			rx->state = RX_BOL_BARE;
			i--;
			break;
		}
	}
	return i;
}

void
dotstuff_tx_init(struct dotstuff_tx *tx)
{
	tx->bol = 1;
	tx->last_cr = 0;
}

void
dotstuff_tx_feed(struct dotstuff_tx *tx, const char *p, size_t len,
    struct vbuf *out)
{
	size_t i, start = 0;

	for (i = 0; i < len; i++) {
		if (tx->bol && p[i] == '.') {
			(void)vbuf_add(out, p + start, i - start);
			(void)vbuf_addc(out, '.');
			start = i;
		}
		tx->bol = tx->last_cr && p[i] == '\n';
		tx->last_cr = p[i] == '\r';
	}
	(void)vbuf_add(out, p + start, len - start);
}

void
dotstuff_tx_finish(struct dotstuff_tx *tx, struct vbuf *out)
{
	if (!tx->bol)
		(void)vbuf_add(out, "\r\n", 2);
	(void)vbuf_add(out, ".\r\n", 3);
}

void
dotstuff_bdat_feed(struct dotstuff_rx *rx, const char *in, size_t len,
    struct vbuf *out)
{
	size_t i, run;

	for (i = 0; i < len; i++) {
		char c = in[i];

		if (rx->state == RX_CR) {
			/* A line ends here; a bare CR is made a CRLF. */
			(void)vbuf_add(out, "\r\n", 2);
			rx->state = RX_TEXT;
			if (c == '\n')
				continue;
		}
		if (c == '\r')
			rx->state = RX_CR;
		else if (c == '\n')
			(void)vbuf_add(out, "\r\n", 2);
		else {
			for (run = i; run < len && in[run] != '\r' &&
			    in[run] != '\n'; run++)
				;
			(void)vbuf_add(out, in + i, run - i);
			i = run - 1;
		}
	}
}

void
dotstuff_bdat_end(struct dotstuff_rx *rx, struct vbuf *out)
{
	if (rx->state == RX_CR)
		(void)vbuf_add(out, "\r\n", 2);
	rx->state = RX_TEXT;
	rx->done = 1;
}
