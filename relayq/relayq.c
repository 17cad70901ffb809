/*
 * relayq.c - the postqueue-style queue tool: list the queue (like mailq),
 * as JSON Lines with -j (postqueue -j member names), flush it with -f, or
 * print the outbox of events (what webhookd will deliver) with -e.
 * See relayq(1).
 *
 * relayq only reads the queue index; a flush is a request to qmgr, which
 * alone changes recipient state. As root it first becomes mail_owner.
 */

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "attr.h"
#include "cfg.h"
#include "json.h"
#include "log.h"
#include "mailconn.h"
#include "mailproto.h"
#include "outbox.h"
#include "privsep.h"
#include "qstore.h"
#include "xalloc.h"

#define RELAYQ_FLUSH_TIMEOUT_MS	10000

struct relayq_ctx {
	struct qstore_txn	*txn;
	int			 json;
	size_t			 nmsgs;
	size_t			 nrcpts;
	uint64_t		 bytes;
	struct vbuf		*out;
};

static void relayq_usage(void) __attribute__((noreturn));
static struct qstore *relayq_open(const struct cfg *, int,
    struct relayq_ctx *, struct vbuf *);
static int relayq_list(const struct cfg *, int);
static int relayq_events(const struct cfg *, int);
static int relayq_event_cb(const struct outbox_event *, void *);
static int relayq_flush(const struct cfg *);
static int relayq_msg_cb(const struct qstore_msginfo *, void *);

static void
relayq_usage(void)
{
	fprintf(stderr, "usage: relayq [-c FILE] [-j | -f | -e [-j]]\n");
	exit(2);
}

struct relayq_rcpts {
	struct qstore_rcpt	*r;
	size_t			 n;
};

static int
relayq_rcpt_cb(const struct qstore_rcpt *r, void *arg)
{
	struct relayq_rcpts *rs = arg;

	if (r->state == QSTORE_DELIVERED || r->state == QSTORE_FAILED)
		return 0;
	rs->r = xreallocarray(rs->r, rs->n + 1, sizeof(*rs->r));
	rs->r[rs->n++] = *r;
	return 0;
}

static int
relayq_msg_cb(const struct qstore_msginfo *m, void *arg)
{
	struct relayq_ctx *ctx = arg;
	struct relayq_rcpts rs = { NULL, 0 };
	int deferred = 0;
	size_t i;

	(void)qstore_rcpt_iter(ctx->txn, m->qid, relayq_rcpt_cb, &rs);
	for (i = 0; i < rs.n; i++)
		if (rs.r[i].state == QSTORE_DEFERRED)
			deferred = 1;
	ctx->nmsgs++;
	ctx->nrcpts += rs.n;
	ctx->bytes += m->size;
	if (ctx->json) {
		struct json j;

		json_init(&j, ctx->out);
		json_object_begin(&j);
		json_kv_str(&j, "queue_name", deferred ? "deferred" :
		    "active");
		json_kv_str(&j, "queue_id", m->qid);
		json_kv_int(&j, "arrival_time", m->arrival);
		json_kv_int(&j, "message_size", (int64_t)m->size);
		json_kv_str(&j, "sender", m->sender);
		json_key(&j, "recipients");
		json_array_begin(&j);
		for (i = 0; i < rs.n; i++) {
			json_object_begin(&j);
			json_kv_str(&j, "address", rs.r[i].address);
			if (rs.r[i].reply[0] != '\0')
				json_kv_str(&j, "delay_reason", rs.r[i].reply);
			json_kv_str(&j, "state",
			    qstore_state_name(rs.r[i].state));
			json_kv_int(&j, "attempts", rs.r[i].attempts);
			json_kv_int(&j, "next_attempt", rs.r[i].next_attempt);
			if (rs.r[i].dsn[0] != '\0')
				json_kv_str(&j, "dsn", rs.r[i].dsn);
			json_object_end(&j);
		}
		json_array_end(&j);
		json_object_end(&j);
		vbuf_addc(ctx->out, '\n');
	} else {
		char when[64];
		time_t t = (time_t)m->arrival;
		struct tm tm;

		localtime_r(&t, &tm);
		strftime(when, sizeof(when), "%a %b %e %H:%M:%S", &tm);
		vbuf_addf(ctx->out, "%-16s%s %8" PRIu64 " %s  %s\n", m->qid,
		    deferred ? " " : "*", m->size, when, m->sender[0] != '\0' ?
		    m->sender : "MAILER-DAEMON");
		for (i = 0; i < rs.n; i++) {
			if (rs.r[i].reply[0] != '\0')
				vbuf_addf(ctx->out, "%*s(%s)\n", 18, "",
				    log_safe(rs.r[i].reply));
			vbuf_addf(ctx->out, "%*s%s\n", 42, "",
			    rs.r[i].address);
		}
		vbuf_addc(ctx->out, '\n');
	}
	free(rs.r);
	return 0;
}

/*
 * Opens the queue and a read transaction in ctx; NULL after printing why
 * (why is freed then).
 */
static struct qstore *
relayq_open(const struct cfg *cfg, int json, struct relayq_ctx *ctx,
    struct vbuf *why)
{
	struct qstore *qs;

	if ((qs = qstore_open(cfg, why)) == NULL) {
		fprintf(stderr, "relayq: queue %s: %s\n", cfg->queue_directory,
		    why->data);
		vbuf_free(why);
		return NULL;
	}
	memset(ctx, 0, sizeof(*ctx));
	ctx->json = json;
	ctx->out = vbuf_create(0);
	if ((ctx->txn = qstore_txn_begin(qs, 0, why)) == NULL) {
		fprintf(stderr, "relayq: %s\n", why->data);
		vbuf_free(ctx->out);
		vbuf_free(why);
		qstore_close(qs);
		return NULL;
	}
	return qs;
}

static int
relayq_list(const struct cfg *cfg, int json)
{
	struct relayq_ctx ctx;
	struct qstore *qs;
	struct vbuf *why = vbuf_create(0);

	if ((qs = relayq_open(cfg, json, &ctx, why)) == NULL)
		return 1;
	(void)qstore_msg_iter(ctx.txn, relayq_msg_cb, &ctx);
	/*
	 * Printed only after the read transaction ends: a reader left open
	 * by a paused pipe would keep LMDB from reusing pages.
	 */
	qstore_txn_abort(ctx.txn);
	fwrite(ctx.out->data, 1, ctx.out->len, stdout);
	if (!json) {
		if (ctx.nmsgs == 0)
			printf("Mail queue is empty\n");
		else
			printf("-- %" PRIu64 " Kbytes in %zu Request%s.\n",
			    (ctx.bytes + 1023) / 1024, ctx.nmsgs,
			    ctx.nmsgs == 1 ? "" : "s");
	}
	fflush(stdout);
	vbuf_free(ctx.out);
	vbuf_free(why);
	qstore_close(qs);
	return ferror(stdout) ? 1 : 0;
}

static int
relayq_event_cb(const struct outbox_event *ev, void *arg)
{
	struct relayq_ctx *ctx = arg;
	struct json j;

	ctx->nmsgs++;
	if (ctx->json) {
		json_init(&j, ctx->out);
		outbox_json(&j, ev);
		vbuf_addc(ctx->out, '\n');
		return 0;
	}
	vbuf_addf(ctx->out, "%" PRIu64 " %s %s", ev->seq,
	    outbox_kind_name(ev->kind), ev->qid);
	if (ev->kind == OUTBOX_ACCEPTED)
		vbuf_addf(ctx->out, " from=<%s>, size=%" PRIu64 ", nrcpt=%zu",
		    log_safe(ev->sender != NULL ? ev->sender : ""), ev->size,
		    ev->nrecipients);
	else
		vbuf_addf(ctx->out, " to=<%s>, dsn=%s (%s)",
		    log_safe(ev->recipient != NULL ? ev->recipient : ""),
		    ev->dsn != NULL ? ev->dsn : "", log_safe(ev->reply != NULL ?
		    ev->reply : ""));
	vbuf_addc(ctx->out, '\n');
	return 0;
}

/*
 * The outbox, oldest first: -j as JSON Lines (each the accounting log's
 * object plus "seq"), else one line per event and a summary.
 */
static int
relayq_events(const struct cfg *cfg, int json)
{
	struct relayq_ctx ctx;
	struct outbox_stat st;
	struct qstore *qs;
	struct vbuf *why = vbuf_create(0);
	int rc;

	if ((qs = relayq_open(cfg, json, &ctx, why)) == NULL)
		return 1;
	rc = outbox_stat(ctx.txn, &st, why);
	if (rc == 0)
		rc = outbox_iter(ctx.txn, 0, 0, relayq_event_cb, &ctx, why);
	/* Printed after the read transaction ends, as relayq_list does. */
	qstore_txn_abort(ctx.txn);
	if (rc == -1) {
		fprintf(stderr, "relayq: outbox: %s\n", why->data);
		vbuf_free(ctx.out);
		vbuf_free(why);
		qstore_close(qs);
		return 1;
	}
	fwrite(ctx.out->data, 1, ctx.out->len, stdout);
	if (!json)
		printf("-- %" PRIu64 " event%s, %" PRIu64 " dropped over the "
		    "cap, last sequence number %" PRIu64 ".\n", st.events,
		    st.events == 1 ? "" : "s", st.dropped, st.last_seq);
	fflush(stdout);
	vbuf_free(ctx.out);
	vbuf_free(why);
	qstore_close(qs);
	return ferror(stdout) ? 1 : 0;
}

static int
relayq_flush(const struct cfg *cfg)
{
	struct attr_list l;
	struct vbuf *req, *in, *why;
	const char *reason = "no reason given";
	uint64_t status = MAIL_STAT_FAIL, count = 0;
	size_t used;
	int fd, rc = 1;
	const struct attr_spec spec[] = {
		ATTR_UINT(MAIL_ATTR_STATUS, ATTR_F_REQUIRED, 0, UINT32_MAX,
		    &status),
		ATTR_STR(MAIL_ATTR_REASON, 0, 0, ATTR_VALUE_MAX, &reason),
		ATTR_UINT(MAIL_ATTR_COUNT, 0, 0, UINT64_MAX, &count),
		ATTR_TABLE_END
	};

	why = vbuf_create(0);
	if ((fd = mail_connect(cfg->queue_directory, MAIL_SOCK_QMGR,
	    why)) == -1) {
		fprintf(stderr, "relayq: cannot flush: %s (is Petrel "
		    "running?)\n", why->data);
		vbuf_free(why);
		return 1;
	}
	req = vbuf_create(0);
	in = vbuf_create(ATTR_VALUE_MAX);
	attr_list_init(&l);
	attr_put_str(req, MAIL_ATTR_REQUEST, MAIL_REQ_FLUSH);
	attr_end(req);
	if (attr_write(fd, req, RELAYQ_FLUSH_TIMEOUT_MS, why) == -1 ||
	    attr_read(fd, in, &l, &used, RELAYQ_FLUSH_TIMEOUT_MS, why) == -1)
		fprintf(stderr, "relayq: flush request: %s\n", why->data);
	else if (attr_scan(&l, spec, why) == -1)
		fprintf(stderr, "relayq: flush failed: %s\n", why->data);
	else if (status != MAIL_STAT_OK)
		fprintf(stderr, "relayq: flush failed: %s\n", reason);
	else {
		fprintf(stderr, "relayq: %" PRIu64 " deferred recipient(s) "
		    "scheduled for delivery now\n", count);
		rc = 0;
	}
	attr_list_release(&l);
	vbuf_free(req);
	vbuf_free(in);
	vbuf_free(why);
	close(fd);
	return rc;
}

int
main(int argc, char *argv[])
{
	const char *path = CFG_DEFAULT_PATH;
	struct vbuf *why;
	struct cfg *cfg;
	int ch, json = 0, flush = 0, events = 0, rc;

	log_init("relayq", LOG_DEST_STDERR);
	while ((ch = getopt(argc, argv, "c:efj")) != -1) {
		switch (ch) {
		case 'c':
			path = optarg;
			break;
		case 'e':
			events = 1;
			break;
		case 'f':
			flush = 1;
			break;
		case 'j':
			json = 1;
			break;
		default:
			relayq_usage();
		}
	}
	if (optind != argc || (json && flush) || (events && flush))
		relayq_usage();
	why = vbuf_create(0);
	if ((cfg = cfg_load(path, why)) == NULL) {
		fprintf(stderr, "relayq: %s\n", why->data);
		return 1;
	}
	if (privsep_become_owner(cfg, why) == -1) {
		fprintf(stderr, "relayq: %s\n", why->data);
		return 1;
	}
	vbuf_free(why);
	rc = flush ? relayq_flush(cfg) : events ? relayq_events(cfg, json) :
	    relayq_list(cfg, json);
	cfg_free(cfg);
	return rc;
}
