/*
 * attrconn.c - non-blocking attribute connections on lib/event (see
 * attrconn.h).
 *
 * Callbacks may free the connection they are called for: a use count
 * defers the free until the event handler that called them unwinds.
 */
#include <sys/socket.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "attrconn.h"
#include "event.h"
#include "log.h"
#include "xalloc.h"

#define ATTRCONN_READ_MAX	16384	/* bytes per read(2) */

struct attrconn {
	int			 fd;
	struct vbuf		*in;
	struct vbuf		*out;
	struct vbuf		*why;
	struct attr_list	 list;
	attrconn_record_fn	*record;
	attrconn_error_fn	*error;
	void			*arg;
	uint64_t		 timer;		/* 0: no deadline */
	unsigned		 busy;		/* callbacks running */
	int			 failed;	/* error reported */
	int			 dead;		/* freed by its owner */
};

static void	attrconn_event(int, int, void *);
static void	attrconn_timeout(void *);
static void	attrconn_fail(struct attrconn *, enum attrconn_err,
		    const char *);
static void	attrconn_destroy(struct attrconn *);
static void	attrconn_watch(struct attrconn *);
static int	attrconn_flush(struct attrconn *);
static void	attrconn_input(struct attrconn *);

struct attrconn *
attrconn_create(int fd, size_t in_max, attrconn_record_fn *record,
    attrconn_error_fn *error, void *arg)
{
	struct attrconn *c;

	ASSERT(in_max > 0);
	c = xcalloc(1, sizeof(*c));
	c->fd = fd;
	c->in = vbuf_create(in_max);
	c->out = vbuf_create(0);
	c->why = vbuf_create(0);
	attr_list_init(&c->list);
	c->record = record;
	c->error = error;
	c->arg = arg;
	attrconn_watch(c);
	return c;
}

static void
attrconn_destroy(struct attrconn *c)
{
	attr_list_release(&c->list);
	vbuf_free(c->in);
	vbuf_free(c->out);
	vbuf_free(c->why);
	free(c);
}

void
attrconn_free(struct attrconn *c)
{
	if (c == NULL || c->dead)
		return;
	c->dead = 1;
	if (c->timer != 0)
		ev_timer_del(c->timer);
	c->timer = 0;
	if (!c->failed)
		ev_fd_del(c->fd);
	close(c->fd);
	c->fd = -1;
	if (c->busy == 0)
		attrconn_destroy(c);
}

int
attrconn_fd(const struct attrconn *c)
{
	return c->fd;
}

size_t
attrconn_pending(const struct attrconn *c)
{
	return c->in->len;
}

/* Reads always; writes while something is queued. */
static void
attrconn_watch(struct attrconn *c)
{
	ev_fd_set(c->fd, EV_READ | (c->out->len > 0 ? EV_WRITE : 0),
	    attrconn_event, c);
}

/* Sends what the socket takes; 0, or -1 when the connection broke. */
static int
attrconn_flush(struct attrconn *c)
{
	ssize_t n;

	while (c->out->len > 0) {
		n = send(c->fd, c->out->data, c->out->len, MSG_DONTWAIT |
		    MSG_NOSIGNAL);
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1 && (errno == EAGAIN || errno == EWOULDBLOCK))
			break;
		if (n <= 0) {
			vbuf_setf(c->why, "write: %s", strerror(errno));
			return -1;
		}
		vbuf_consume(c->out, (size_t)n);
	}
	return 0;
}

int
attrconn_send(struct attrconn *c, const struct vbuf *rec)
{
	int queued = c->out->len > 0;

	if (c->failed || c->dead)
		return -1;
	/* A peer that reads nothing cannot make us buffer without end. */
	if (rec->len > ATTRCONN_OUT_MAX - c->out->len)
		return -1;
	(void)vbuf_add(c->out, rec->data, rec->len);
	if (queued)
		return 0;	/* already waiting for EV_WRITE */
	if (attrconn_flush(c) == -1)
		return -1;
	if (c->out->len > 0)
		attrconn_watch(c);
	return 0;
}

void
attrconn_deadline(struct attrconn *c, int64_t ms)
{
	if (c->timer != 0)
		ev_timer_del(c->timer);
	c->timer = 0;
	if (ms >= 0 && !c->failed && !c->dead)
		c->timer = ev_timer_add(ms, attrconn_timeout, c);
}

static void
attrconn_timeout(void *arg)
{
	struct attrconn *c = arg;

	c->timer = 0;
	attrconn_fail(c, ATTRCONN_TIMEOUT, "timeout");
}

/* Reports the failure once; the connection stays silent after it. */
static void
attrconn_fail(struct attrconn *c, enum attrconn_err err, const char *why)
{
	if (c->failed || c->dead)
		return;
	c->failed = 1;
	ev_fd_del(c->fd);
	if (c->timer != 0)
		ev_timer_del(c->timer);
	c->timer = 0;
	c->busy++;
	c->error(c, err, why, c->arg);
	c->busy--;
	if (c->dead && c->busy == 0)
		attrconn_destroy(c);
}

/* Hands every whole record in the buffer to the record callback. */
static void
attrconn_input(struct attrconn *c)
{
	size_t off = 0, used;
	int rc;

	while (!c->dead && !c->failed) {
		rc = attr_decode(&c->list, c->in->data + off, c->in->len -
		    off, &used, c->why);
		if (rc == 0)
			break;
		if (rc == -1) {
			attrconn_fail(c, ATTRCONN_PROTO, c->why->data);
			return;
		}
		off += used;
		c->record(c, &c->list, c->arg);
	}
	if (!c->dead)
		vbuf_consume(c->in, off);
}

static void
attrconn_event(int fd, int events, void *arg)
{
	struct attrconn *c = arg;
	size_t room;
	ssize_t n;

	c->busy++;
	if ((events & EV_WRITE) && c->out->len > 0) {
		if (attrconn_flush(c) == -1) {
			attrconn_fail(c, ATTRCONN_IO, c->why->data);
			goto out;
		}
		if (c->out->len == 0)
			attrconn_watch(c);
	}
	if (!(events & EV_READ))
		goto out;
	room = c->in->cap - c->in->len;
	if (room > ATTRCONN_READ_MAX)
		room = ATTRCONN_READ_MAX;
	if (room == 0 || vbuf_reserve(c->in, room) == -1) {
		attrconn_fail(c, ATTRCONN_TOOBIG, "record too large");
		goto out;
	}
	n = read(fd, c->in->data + c->in->len, room);
	if (n == -1 && (errno == EAGAIN || errno == EWOULDBLOCK ||
	    errno == EINTR))
		goto out;
	if (n <= 0) {
		if (n == 0)
			attrconn_fail(c, ATTRCONN_EOF, "end of stream");
		else {
			vbuf_setf(c->why, "read: %s", strerror(errno));
			attrconn_fail(c, ATTRCONN_IO, c->why->data);
		}
		goto out;
	}
	c->in->len += (size_t)n;
	c->in->data[c->in->len] = '\0';
	attrconn_input(c);
out:
	c->busy--;
	if (c->dead && c->busy == 0)
		attrconn_destroy(c);
}
