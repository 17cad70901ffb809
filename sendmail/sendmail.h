/*
 * sendmail.h - private interfaces of sendmail, the Postfix-compatible
 * command that local programs (cron, PHP's mail(), mailx) call to send.
 *
 * sendmail is no daemon and holds no privilege: it reads the message from
 * standard input, then speaks SMTP to smtpd over the local submission
 * socket <queue_directory>/public/submit, where smtpd names the caller by
 * its peer credentials. Exit codes are sysexits.h's. See sendmail(1).
 */
#ifndef PETREL_SENDMAIL_H
#define PETREL_SENDMAIL_H

#include <stddef.h>
#include <stdint.h>

#include "cfg.h"
#include "vbuf.h"

#define SENDMAIL_ADDR_MAX	512	/* RFC 5321 path, with room */
#define SENDMAIL_MAX_RCPTS	10000	/* command line and -t together */

struct sendmail_rcpts {
	char	**v;
	size_t	  n;
};

/* What the caller asked for (command line), and what the message says. */
struct sendmail_msg {
	int		 extract;	/* -t: recipients from the headers */
	int		 ignore_dots;	/* -i, -oi: a lone "." is text */
	const char	*fullname;	/* -F, or NULL */
	struct vbuf	*data;		/* the message: CRLF lines */
	char		 from_hdr[SENDMAIL_ADDR_MAX]; /* From:'s address, "" */
	int		 eight_bit;	/* a byte over 127 somewhere */
};

/* sendmail_msg.c */
/*
 * Adds addr to r (copied); -1 with why when it is unusable (empty, too
 * long, a control character) or r is full.
 */
int	sendmail_rcpt_add(struct sendmail_rcpts *, const char *addr,
	    struct vbuf *why);
void	sendmail_rcpts_free(struct sendmail_rcpts *);
/*
 * Reads the message from fd (at most max bytes) into m->data as CRLF
 * lines: up to a lone "." line unless m->ignore_dots. Returns 0, or -1
 * with why (a read error, or over max: *too_big set).
 */
int	sendmail_msg_read(struct sendmail_msg *, int fd, uint64_t max,
	    int *too_big, struct vbuf *why);
/*
 * The header block: with m->extract, the addresses of To:, Cc: and Bcc:
 * go into rcpts and the Bcc: fields are removed; From:'s first address
 * goes into m->from_hdr. Then adds what a message needs and lacks
 * (From: with sender and m->fullname, Date:), as Postfix's cleanup does
 * for local submissions. Returns 0, or -1 with why.
 */
int	sendmail_msg_headers(struct sendmail_msg *, struct sendmail_rcpts *,
	    const char *sender, struct vbuf *why);

/* sendmail_smtp.c */
/*
 * Connects to the local submission socket of cfg. Returns the socket,
 * or -1 with *ex (a sysexits code) and why.
 */
int	sendmail_connect(const struct cfg *, int *ex, struct vbuf *why);
/*
 * One transaction on fd: greeting, EHLO, MAIL, every RCPT, DATA. A
 * refused recipient refuses the message (nothing is sent to the others:
 * the caller may run again without duplicates). Returns EX_OK, or a
 * sysexits code with the server's reply in why.
 */
int	sendmail_send(int fd, const struct cfg *, const char *sender,
	    const struct sendmail_rcpts *, const struct sendmail_msg *,
	    struct vbuf *why);
/*
 * -bs: SMTP between standard input/output and fd, until either side
 * closes. Returns EX_OK, EX_NOPERM when the greeting refused the user
 * (printed to standard output as well), or EX_IOERR.
 */
int	sendmail_relay(int fd, const struct cfg *, struct vbuf *why);
/* The sysexits code for an SMTP reply (code and its text). */
int	sendmail_reply_exit(int code, const char *text);

#endif
