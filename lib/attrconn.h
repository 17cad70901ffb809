/*
 * attrconn.h - one non-blocking attribute connection for resident daemons.
 *
 * A resident daemon (qmgr) talks to its peers over many connections at
 * once from one event loop. An attrconn owns one such connection: the
 * descriptor registered with lib/event, an input buffer with a hard cap,
 * an optional deadline, a write queue, and two callbacks: one per decoded
 * record (attr.h), one when the connection fails (end of stream, I/O
 * error, bad framing, a record over the cap, the deadline passed). A
 * misbehaving peer costs its connection, never the daemon.
 */
#ifndef PETREL_ATTRCONN_H
#define PETREL_ATTRCONN_H

#include <stddef.h>
#include <stdint.h>

#include "attr.h"
#include "vbuf.h"

enum attrconn_err {
	ATTRCONN_EOF = 1,	/* the peer closed the connection */
	ATTRCONN_IO,		/* read or write failed */
	ATTRCONN_PROTO,		/* bad framing (attr_decode's limits) */
	ATTRCONN_TOOBIG,	/* an incomplete record filled the cap */
	ATTRCONN_TIMEOUT,	/* the deadline passed */
};

struct attrconn;

/*
 * One decoded record; l points into the input buffer and is valid for the
 * call only. The callback may send, set the deadline, or free c.
 */
typedef void attrconn_record_fn(struct attrconn *c, const struct attr_list *l,
    void *arg);
/*
 * The connection failed (why says how, for a log line); no more records
 * come. The callback frees c (it may do so later, but c stays silent).
 */
typedef void attrconn_error_fn(struct attrconn *c, enum attrconn_err err,
    const char *why, void *arg);

/*
 * Takes over fd (non-blocking, or used only with MSG_DONTWAIT) and starts
 * reading. in_max caps the bytes of one incomplete record. Free with
 * attrconn_free, which closes fd.
 */
struct attrconn	*attrconn_create(int fd, size_t in_max, attrconn_record_fn *,
		    attrconn_error_fn *, void *arg);
/* Closes the descriptor and frees c (safe inside its own callbacks). */
void		 attrconn_free(struct attrconn *);
/*
 * Queues the encoded record rec and sends what the socket takes now; the
 * rest goes as the socket drains. Returns 0, or -1 when the connection is
 * broken or would hold more than ATTRCONN_OUT_MAX unsent bytes (the
 * caller frees it; the error callback is not called).
 */
#define ATTRCONN_OUT_MAX	(16 * 1024 * 1024)
int		 attrconn_send(struct attrconn *, const struct vbuf *rec);
/* Fails c with ATTRCONN_TIMEOUT ms from now; -1 clears the deadline. */
void		 attrconn_deadline(struct attrconn *, int64_t ms);
/* Bytes of an incomplete record received since the last whole one. */
size_t		 attrconn_pending(const struct attrconn *);
int		 attrconn_fd(const struct attrconn *);

#endif
