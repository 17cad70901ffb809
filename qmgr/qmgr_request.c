/*
 * qmgr_request.c - requests on private/qmgr: triggers from smtpd (no
 * reply) and flush from relayq (reply status=0, count=N).
 *
 * A peer that breaks the protocol loses its connection; qmgr goes on.
 */
#include <sys/socket.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "attr.h"
#include "event.h"
#include "log.h"
#include "mailproto.h"
#include "qmgr.h"
#include "xalloc.h"

#define QMGR_CLIENTS_MAX	256
#define QMGR_CLIENT_IN_MAX	65536

struct qmgr_client {
	int		 fd;
	struct vbuf	*in;
};

static size_t qmgr_nclients;

static void qmgr_client_event(int, int, void *);
static void qmgr_client_close(struct qmgr_client *);

void
qmgr_request_accept(int listen_fd)
{
	struct qmgr_client *c;
	int fd;

	while ((fd = accept4(listen_fd, NULL, NULL, SOCK_NONBLOCK |
	    SOCK_CLOEXEC)) != -1) {
		if (qmgr_nclients >= QMGR_CLIENTS_MAX) {
			close(fd);
			continue;
		}
		c = xcalloc(1, sizeof(*c));
		c->fd = fd;
		c->in = vbuf_create(QMGR_CLIENT_IN_MAX);
		qmgr_nclients++;
		ev_fd_set(fd, EV_READ, qmgr_client_event, c);
	}
}

static void
qmgr_client_close(struct qmgr_client *c)
{
	ev_fd_del(c->fd);
	close(c->fd);
	vbuf_free(c->in);
	free(c);
	qmgr_nclients--;
}

static void
qmgr_client_event(int fd, int events, void *arg)
{
	struct qmgr_client *c = arg;
	struct attr_list l;
	struct vbuf *why, *reply;
	const char *req;
	size_t used;
	ssize_t n;
	int rc, count;

	(void)events;
	if (vbuf_reserve(c->in, 4096) == -1) {
		log_warn("private/qmgr: request too large");
		qmgr_client_close(c);
		return;
	}
	n = read(fd, c->in->data + c->in->len, 4096);
	if (n == -1 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n <= 0) {
		qmgr_client_close(c);
		return;
	}
	c->in->len += (size_t)n;
	attr_list_init(&l);
	why = vbuf_create(0);
	for (;;) {
		rc = attr_decode(&l, c->in->data, c->in->len, &used, why);
		if (rc == 0)
			break;
		if (rc == -1 || (req = attr_get(&l, MAIL_ATTR_REQUEST)) ==
		    NULL) {
			log_warn("private/qmgr: protocol error: %s",
			    rc == -1 ? why->data : "no request");
			qmgr_client_close(c);
			goto done;
		}
		if (strcmp(req, MAIL_REQ_TRIGGER) == 0)
			qmgr_want_scan();
		else if (strcmp(req, MAIL_REQ_FLUSH) == 0) {
			reply = vbuf_create(0);
			if ((count = qmgr_flush(why)) == -1) {
				attr_put_str(reply, MAIL_ATTR_STATUS, "1");
				attr_put_str(reply, MAIL_ATTR_REASON,
				    why->data);
			} else {
				attr_put_str(reply, MAIL_ATTR_STATUS, "0");
				attr_put_int(reply, "count", count);
				log_info("flush: %d recipient(s) made due",
				    count);
			}
			attr_end(reply);
			(void)attr_write(fd, reply, 1000, NULL);
			vbuf_free(reply);
		} else {
			log_warn("private/qmgr: unknown request %s",
			    log_safe(req));
			qmgr_client_close(c);
			goto done;
		}
		vbuf_consume(c->in, used);
	}
done:
	attr_list_release(&l);
	vbuf_free(why);
}
