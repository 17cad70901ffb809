/*
 * qmgr_request.c - requests on private/qmgr: triggers from smtpd (no
 * reply), flush from relayq (reply status=0, count=N), relayq's hold,
 * release, delete and requeue (qmgr_admin.c; the same reply), and
 * relayctl shaping show (a record per destination, then the same) and
 * relayctl sources show (a record per source address, qmgr_source.c).
 *
 * Each client is a lib/attrconn connection; a peer that breaks the
 * protocol loses its connection and qmgr goes on. See qmgr(8).
 */
#include <sys/socket.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "attr.h"
#include "attrconn.h"
#include "event.h"
#include "log.h"
#include "mailproto.h"
#include "qmgr.h"

#define QMGR_CLIENTS_MAX	256
#define QMGR_CLIENT_IN_MAX	65536
#define QMGR_REQ_NAME_MAX	64

static size_t qmgr_nclients;

static void qmgr_client_record(struct attrconn *, const struct attr_list *,
    void *);
static void qmgr_client_error(struct attrconn *, enum attrconn_err,
    const char *, void *);
static void qmgr_client_close(struct attrconn *);
static void qmgr_request_flush(struct attrconn *);
static void qmgr_request_admin(struct attrconn *, const struct attr_list *,
    enum qmgr_admin_op);
static void qmgr_request_shaping(struct attrconn *, const struct attr_list *);
static int qmgr_shaping_one(const struct qmgr_dest *, void *);
static void qmgr_request_sources(struct attrconn *);

/*
 * Accepts every client waiting on private/qmgr. Out of descriptors, the
 * listener is left alone for a while (daemon_accept_failed) rather than
 * polled again at once: it stays readable, and qmgr would spin.
 */
void
qmgr_request_accept(const struct daemon_listener *l)
{
	int fd;

	while ((fd = accept4(l->fd, NULL, NULL, SOCK_NONBLOCK |
	    SOCK_CLOEXEC)) != -1) {
		if (qmgr_nclients >= QMGR_CLIENTS_MAX) {
			close(fd);
			continue;
		}
		qmgr_nclients++;
		(void)attrconn_create(fd, QMGR_CLIENT_IN_MAX,
		    qmgr_client_record, qmgr_client_error, NULL);
	}
	(void)daemon_accept_failed(l, "");
}

static void
qmgr_client_close(struct attrconn *c)
{
	attrconn_free(c);
	qmgr_nclients--;
}

static void
qmgr_client_error(struct attrconn *c, enum attrconn_err err,
    const char *why, void *arg)
{
	(void)arg;
	if (err == ATTRCONN_TOOBIG)
		log_warn("private/qmgr: request too large");
	else if (err == ATTRCONN_PROTO)
		log_warn("private/qmgr: protocol error: %s", why);
	qmgr_client_close(c);
}

static void
qmgr_client_record(struct attrconn *c, const struct attr_list *l, void *arg)
{
	const char *req = NULL;
	struct vbuf why;
	const struct attr_spec spec[] = {
		ATTR_STR(MAIL_ATTR_REQUEST, ATTR_F_REQUIRED, 1,
		    QMGR_REQ_NAME_MAX, &req),
		ATTR_TABLE_END
	};

	(void)arg;
	vbuf_init(&why, 0);
	if (attr_scan(l, spec, &why) == -1) {
		log_warn("private/qmgr: protocol error: %s", why.data);
		qmgr_client_close(c);
	} else if (strcmp(req, MAIL_REQ_TRIGGER) == 0)
		qmgr_sched_want();
	else if (strcmp(req, MAIL_REQ_FLUSH) == 0)
		qmgr_request_flush(c);
	else if (strcmp(req, MAIL_REQ_HOLD) == 0)
		qmgr_request_admin(c, l, QMGR_ADMIN_HOLD);
	else if (strcmp(req, MAIL_REQ_RELEASE) == 0)
		qmgr_request_admin(c, l, QMGR_ADMIN_RELEASE);
	else if (strcmp(req, MAIL_REQ_DELETE) == 0)
		qmgr_request_admin(c, l, QMGR_ADMIN_DELETE);
	else if (strcmp(req, MAIL_REQ_REQUEUE) == 0)
		qmgr_request_admin(c, l, QMGR_ADMIN_REQUEUE);
	else if (strcmp(req, MAIL_REQ_SHAPING) == 0)
		qmgr_request_shaping(c, l);
	else if (strcmp(req, MAIL_REQ_SOURCES) == 0)
		qmgr_request_sources(c);
	else {
		log_warn("private/qmgr: unknown request %s", log_safe(req));
		qmgr_client_close(c);
	}
	vbuf_release(&why);
}

/* relayq -f: makes deferred recipients due and says how many. */
static void
qmgr_request_flush(struct attrconn *c)
{
	struct vbuf *reply = vbuf_create(0), *why = vbuf_create(0);
	int count;

	if ((count = qmgr_flush(why)) == -1) {
		attr_put_num(reply, MAIL_ATTR_STATUS, MAIL_STAT_FAIL);
		attr_put_str(reply, MAIL_ATTR_REASON, why->data);
	} else {
		attr_put_num(reply, MAIL_ATTR_STATUS, MAIL_STAT_OK);
		attr_put_int(reply, MAIL_ATTR_COUNT, count);
		log_info("flush: %d recipient(s) made due", count);
	}
	qmgr_sched_want();
	attr_end(reply);
	if (attrconn_send(c, reply) == -1)
		qmgr_client_close(c);
	vbuf_free(reply);
	vbuf_free(why);
}

/*
 * relayq -h, -H, -d, -r: the messages named by queue_id (or ALL), domain
 * and sender; replies status=0, count=N (messages changed). A malformed
 * request gets a failure reply, not a closed connection, so that relayq
 * can say why.
 */
static void
qmgr_request_admin(struct attrconn *c, const struct attr_list *l,
    enum qmgr_admin_op op)
{
	struct vbuf *reply = vbuf_create(0), *why = vbuf_create(0);
	const char *qid = NULL, *domain = NULL, *sender = NULL;
	struct qstore_select sel;
	int count = -1;
	const struct attr_spec spec[] = {
		ATTR_STR(MAIL_ATTR_QUEUE_ID, ATTR_F_REQUIRED, 1, QID_LEN,
		    &qid),
		ATTR_STR(MAIL_ATTR_DOMAIN, 0, 1, QSTORE_ADDR_MAX, &domain),
		ATTR_STR(MAIL_ATTR_SENDER, 0, 0, QSTORE_ADDR_MAX, &sender),
		ATTR_TABLE_END
	};

	if (attr_scan(l, spec, why) == 0 && strcmp(qid, MAIL_QID_ALL) != 0 &&
	    !qid_ok(qid))
		vbuf_setf(why, "bad queue id");
	else if (why->len == 0) {
		sel.qid = strcmp(qid, MAIL_QID_ALL) == 0 ? NULL : qid;
		sel.domain = domain;
		sel.sender = sender;
		count = qmgr_admin(op, &sel, why);
	}
	if (count == -1) {
		attr_put_num(reply, MAIL_ATTR_STATUS, MAIL_STAT_FAIL);
		attr_put_str(reply, MAIL_ATTR_REASON, why->data);
	} else {
		attr_put_num(reply, MAIL_ATTR_STATUS, MAIL_STAT_OK);
		attr_put_int(reply, MAIL_ATTR_COUNT, count);
		log_info("%s: %d message(s)", qmgr_admin_name(op), count);
	}
	/* Released or requeued recipients are due now. */
	qmgr_sched_want();
	attr_end(reply);
	if (attrconn_send(c, reply) == -1)
		qmgr_client_close(c);
	vbuf_free(reply);
	vbuf_free(why);
}

/* What qmgr_shaping_one adds to: the reply, its filter and count. */
struct qmgr_shaping_reply {
	struct vbuf	*out;
	const char	*only;		/* one next-hop key, or NULL */
	size_t		 n;
};

static int
qmgr_shaping_one(const struct qmgr_dest *d, void *arg)
{
	struct qmgr_shaping_reply *r = arg;
	const struct qmgr_dest_src *shown = &d->srcs[0];
	struct shaping_limits lim;
	unsigned held, reusable, nbackoff, nsuspended;
	int64_t now = ev_now_ms(), until;
	char reserve[16];

	if (r->only != NULL && strcmp(r->only, d->nexthop) != 0)
		return 0;
	if (r->n == QMGR_SHAPING_SHOW_MAX)
		return 1;
	held = qmgr_deliver_held(d->key, NULL, &reusable);
	/* The limits in force: a backoff's while one address has it. */
	for (size_t i = 0; i < d->nsrcs; i++)
		if (qmgr_dest_src_adapt(&d->srcs[i], now) == SHAPING_BACKOFF) {
			shown = &d->srcs[i];
			break;
		}
	qmgr_dest_src_limits(d, shown, &lim);
	attr_put_str(r->out, MAIL_ATTR_NEXTHOP, d->nexthop);
	if (d->pool[0] != '\0')
		attr_put_str(r->out, MAIL_ATTR_POOL, d->pool);
	attr_put_str(r->out, MAIL_ATTR_ENTRY, d->entry);
	attr_put_num(r->out, MAIL_ATTR_MAX_CONN, lim.max_connections);
	attr_put_num(r->out, MAIL_ATTR_CONNS, d->inflight + held);
	attr_put_num(r->out, MAIL_ATTR_RATE_COUNT, lim.rate_count);
	attr_put_num(r->out, MAIL_ATTR_RATE_INTERVAL, lim.rate_interval);
	attr_put_num(r->out, MAIL_ATTR_PENDING, d->npending);
	attr_put_num(r->out, MAIL_ATTR_SENT, d->sent);
	attr_put_num(r->out, MAIL_ATTR_T_PENDING, d->npending - d->nbulk);
	attr_put_num(r->out, MAIL_ATTR_T_INFLIGHT, d->inflight - d->binflight);
	attr_put_num(r->out, MAIL_ATTR_B_PENDING, d->nbulk);
	attr_put_num(r->out, MAIL_ATTR_B_INFLIGHT, d->binflight);
	shaping_reserve_text(&d->lim, reserve, sizeof(reserve));
	attr_put_str(r->out, MAIL_ATTR_RESERVE, reserve);
	attr_put_num(r->out, MAIL_ATTR_RESERVED, qmgr_dest_reserve(d));
	attr_put_num(r->out, MAIL_ATTR_NSOURCES, d->nsrcs);
	attr_put_str(r->out, MAIL_ATTR_STATE,
	    qmgr_dest_state(d, qmgr_deliver_held));
	attr_put_num(r->out, MAIL_ATTR_FAILURES, d->fail_streak);
	/* Suspended by on_reply rules (every address) is suspended too. */
	attr_put_int(r->out, MAIL_ATTR_SUSPENDED,
	    (qmgr_dest_suspended_ms(d->key) + 999) / 1000);
	until = qmgr_dest_adapt_left(d, &nbackoff, &nsuspended);
	attr_put_int(r->out, MAIL_ATTR_UNTIL, until);
	attr_put_num(r->out, MAIL_ATTR_NBACKOFF, nbackoff);
	attr_put_num(r->out, MAIL_ATTR_NSUSPENDED, nsuspended);
	if (d->fail_streak > 0)
		attr_put_str(r->out, MAIL_ATTR_LAST_FAILURE, d->reason);
	if (d->prov != NULL) {
		attr_put_str(r->out, MAIL_ATTR_PROVIDER, d->prov->e.name);
		attr_put_num(r->out, MAIL_ATTR_PROV_CONNS,
		    qmgr_provider_inflight(d->prov, NULL));
		attr_put_num(r->out, MAIL_ATTR_PROV_MAX,
		    d->prov->max_connections);
		attr_put_num(r->out, MAIL_ATTR_PROV_RATE_COUNT,
		    d->prov->rate_count);
		attr_put_num(r->out, MAIL_ATTR_PROV_RATE_IVL,
		    d->prov->rate_interval);
	}
	attr_end(r->out);
	r->n++;
	return 0;
}

/*
 * relayctl shaping show [DEST]: the destinations qmgr knows now (those
 * with jobs, or a rate still recovering), at most QMGR_SHAPING_SHOW_MAX,
 * one record each, then status=0, count=N. The records are small and
 * sent in one buffer; a client too slow to take them loses its
 * connection like any other.
 */
static void
qmgr_request_shaping(struct attrconn *c, const struct attr_list *l)
{
	struct qmgr_shaping_reply r;
	struct vbuf *why = vbuf_create(0);
	const char *req = NULL;
	const struct attr_spec spec[] = {
		ATTR_STR(MAIL_ATTR_REQUEST, ATTR_F_REQUIRED, 1,
		    QMGR_REQ_NAME_MAX, &req),
		ATTR_STR(MAIL_ATTR_NEXTHOP, 0, 1, NEXTHOP_KEY_MAX, &r.only),
		ATTR_TABLE_END
	};

	r.out = vbuf_create(0);
	r.only = NULL;
	r.n = 0;
	if (attr_scan(l, spec, why) == -1) {
		attr_put_num(r.out, MAIL_ATTR_STATUS, MAIL_STAT_FAIL);
		attr_put_str(r.out, MAIL_ATTR_REASON, why->data);
	} else {
		(void)qmgr_dest_walk(qmgr_shaping_one, &r);
		attr_put_num(r.out, MAIL_ATTR_STATUS, MAIL_STAT_OK);
		attr_put_int(r.out, MAIL_ATTR_COUNT, (int64_t)r.n);
	}
	attr_end(r.out);
	if (attrconn_send(c, r.out) == -1)
		qmgr_client_close(c);
	vbuf_free(r.out);
	vbuf_free(why);
}

/* relayctl sources show: qmgr_source.c's records, then status=0, count=N. */
static void
qmgr_request_sources(struct attrconn *c)
{
	struct vbuf *out = vbuf_create(0);
	size_t n = qmgr_source_report(out);

	attr_put_num(out, MAIL_ATTR_STATUS, MAIL_STAT_OK);
	attr_put_int(out, MAIL_ATTR_COUNT, (int64_t)n);
	attr_end(out);
	if (attrconn_send(c, out) == -1)
		qmgr_client_close(c);
	vbuf_free(out);
}
