/*
 * relayq.c - the postqueue/postsuper/qshape-style queue tool: list the
 * queue (like mailq; JSON Lines with -j, postqueue -j member names), show
 * one message (-e), summarise it by recipient domain and age (-s, like
 * qshape), print the outbox of events (-o), flush it (-f), and hold,
 * release, delete or requeue messages (-h, -H, -d, -r, like postsuper),
 * by id, ALL, recipient domain or sender. See relayq(1).
 *
 * relayq only reads the queue index; flush, hold, release, delete and
 * requeue are requests to qmgr, which alone changes recipient state. As
 * root it first becomes mail_owner.
 */

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
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
/* An administration request over a whole queue takes longer. */
#define RELAYQ_ADMIN_TIMEOUT_MS	120000
#define RELAYQ_IDS_MAX		1000	/* -h ID ... on one command line */
/* qshape's age buckets, in minutes; a last column for older. */
#define RELAYQ_NBUCKETS		10
static const int relayq_buckets[RELAYQ_NBUCKETS] = {
	5, 10, 20, 40, 80, 160, 320, 640, 1280, 2560
};
#define RELAYQ_NCOLS		(RELAYQ_NBUCKETS + 1)

enum relayq_mode {
	RELAYQ_LIST,
	RELAYQ_SHOW,		/* -e ID */
	RELAYQ_SUMMARY,		/* -s */
	RELAYQ_OUTBOX,		/* -o */
	RELAYQ_FLUSH,		/* -f */
	RELAYQ_ADMIN,		/* -h, -H, -d, -r */
};

struct relayq_ctx {
	struct qstore_txn	*txn;
	const struct qstore_select *sel;
	int			 json;
	size_t			 nmsgs;
	size_t			 nrcpts;
	uint64_t		 bytes;
	struct vbuf		*out;
};

struct relayq_rcpts;
static void relayq_usage(int) __attribute__((noreturn));
static struct qstore *relayq_open(const struct cfg *, int,
    struct relayq_ctx *, struct vbuf *);
static int relayq_list(const struct cfg *, const struct qstore_select *,
    int);
static int relayq_events(const struct cfg *, int);
static int relayq_event_cb(const struct outbox_event *, void *);
static int relayq_flush(const struct cfg *);
static int relayq_request(const struct cfg *, const char *,
    const struct qstore_select *, uint64_t *, int);
static int relayq_admin(const struct cfg *, const char *, char **, size_t,
    const struct qstore_select *, int);
static int relayq_show(const struct cfg *, const char *, int);
static int relayq_summary(const struct cfg *, const struct qstore_select *,
    int);
static void relayq_json_lane(struct json *, const struct qstore_msginfo *);
static const char *relayq_queue_name(const struct qstore_msginfo *,
    const struct relayq_rcpts *);
static int relayq_rcpt_all_cb(const struct qstore_rcpt *, void *);
static void relayq_time(char *, size_t, int64_t);
static int relayq_shape_rcpt_cb(const struct qstore_rcpt *, void *);
static int relayq_shape_msg_cb(const struct qstore_msginfo *, void *);
static int relayq_dom_cmp(const void *, const void *);
struct relayq_dom;
static void relayq_shape_row(struct vbuf *, const struct relayq_dom *, int);
static void relayq_set_mode(enum relayq_mode *, enum relayq_mode);
static int relayq_msg_cb(const struct qstore_msginfo *, void *);

static const char relayq_usage_text[] =
    "usage: relayq [-c FILE] [-j] [--domain D] [--sender S]\n"
    "       relayq [-c FILE] [-j] -s [--domain D] [--sender S]\n"
    "       relayq [-c FILE] [-j] -e ID\n"
    "       relayq [-c FILE] [-j] -o\n"
    "       relayq [-c FILE] -f\n"
    "       relayq [-c FILE] [-j] -h|-H|-d|-r ID|ALL ... [--domain D] "
    "[--sender S]\n"
    "  -s  summary by recipient domain and age (minutes), like qshape\n"
    "  -e  show one message: envelope, each recipient's state\n"
    "  -o  print the outbox of events (was -e before)\n"
    "  -f  flush: every deferred recipient due now\n"
    "  -h  hold, -H release, -d delete, -r requeue (repeat for more ids)\n"
    "  -j  JSON Lines; --help this text\n";

/* Bad arguments exit 2; --help prints the same text and exits 0. */
static void
relayq_usage(int ok)
{
	fputs(relayq_usage_text, ok ? stdout : stderr);
	exit(ok ? 0 : 2);
}

struct relayq_rcpts {
	struct qstore_rcpt	*r;
	size_t			 n;
};

static int
relayq_rcpt_all_cb(const struct qstore_rcpt *r, void *arg)
{
	struct relayq_rcpts *rs = arg;

	rs->r = xreallocarray(rs->r, rs->n + 1, sizeof(*rs->r));
	rs->r[rs->n++] = *r;
	return 0;
}

/*
 * The message's priority lane and source address pool (relayctl user
 * --lane, --pool; X-Petrel-Priority): which connections it may take.
 */
static void
relayq_json_lane(struct json *j, const struct qstore_msginfo *m)
{
	json_kv_str(j, "lane", m->bulk ? "bulk" : "transactional");
	json_kv_str(j, "pool", m->pool[0] != '\0' ? m->pool : "default");
}

/*
 * Postfix's queue names: "hold" for a held message, "deferred" when a
 * recipient is deferred, else "active".
 */
static const char *
relayq_queue_name(const struct qstore_msginfo *m,
    const struct relayq_rcpts *rs)
{
	if (m->held != 0)
		return "hold";
	for (size_t i = 0; i < rs->n; i++)
		if (rs->r[i].state == QSTORE_DEFERRED)
			return "deferred";
	return "active";
}

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
	const char *qname;
	size_t i;

	if (ctx->sel != NULL && !qstore_select_match(ctx->txn, m, ctx->sel))
		return 0;
	(void)qstore_rcpt_iter(ctx->txn, m->qid, relayq_rcpt_cb, &rs);
	qname = relayq_queue_name(m, &rs);
	ctx->nmsgs++;
	ctx->nrcpts += rs.n;
	ctx->bytes += m->size;
	if (ctx->json) {
		struct json j;

		json_init(&j, ctx->out);
		json_object_begin(&j);
		json_kv_str(&j, "queue_name", qname);
		json_kv_str(&j, "queue_id", m->qid);
		json_kv_int(&j, "arrival_time", m->arrival);
		json_kv_int(&j, "message_size", (int64_t)m->size);
		json_kv_str(&j, "sender", m->sender);
		if (m->held != 0)
			json_kv_int(&j, "held_since", m->held);
		relayq_json_lane(&j, m);
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
		    m->held != 0 ? "!" : strcmp(qname, "deferred") == 0 ?
		    " " : "*", m->size, when, m->sender[0] != '\0' ?
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
relayq_list(const struct cfg *cfg, const struct qstore_select *sel, int json)
{
	struct relayq_ctx ctx;
	struct qstore *qs;
	struct vbuf *why = vbuf_create(0);

	if ((qs = relayq_open(cfg, json, &ctx, why)) == NULL)
		return 1;
	ctx.sel = sel;
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
	if (ev->kind == OUTBOX_DESTINATION) {
		/*
		 * Of no message: the destination, the pool's address when
		 * the event is of one, and its new state.
		 */
		vbuf_addf(ctx->out, "%" PRIu64 " %s %s", ev->seq,
		    outbox_kind_name(ev->kind), log_safe(ev->destination));
		if (ev->source != NULL)
			vbuf_addf(ctx->out, " source=%s", log_safe(ev->source));
		vbuf_addf(ctx->out, " state=%s (%s)\n", ev->state,
		    log_safe(ev->reason != NULL ? ev->reason : ""));
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

/*
 * One request to qmgr on private/qmgr: flush (sel NULL) or an
 * administration request; *count is qmgr's count. 0, or 1 after printing
 * why on standard error.
 */
static int
relayq_request(const struct cfg *cfg, const char *name,
    const struct qstore_select *sel, uint64_t *count, int timeout_ms)
{
	struct attr_list l;
	struct vbuf *req, *in, *why;
	const char *reason = "no reason given";
	uint64_t status = MAIL_STAT_FAIL;
	size_t used;
	int fd, rc = 1;
	const struct attr_spec spec[] = {
		ATTR_UINT(MAIL_ATTR_STATUS, ATTR_F_REQUIRED, 0, UINT32_MAX,
		    &status),
		ATTR_STR(MAIL_ATTR_REASON, 0, 0, ATTR_VALUE_MAX, &reason),
		ATTR_UINT(MAIL_ATTR_COUNT, 0, 0, UINT64_MAX, count),
		ATTR_TABLE_END
	};

	*count = 0;
	why = vbuf_create(0);
	if ((fd = mail_connect(cfg->queue_directory, MAIL_SOCK_QMGR,
	    why)) == -1) {
		fprintf(stderr, "relayq: cannot %s: %s (is Petrel "
		    "running?)\n", name, why->data);
		vbuf_free(why);
		return 1;
	}
	req = vbuf_create(0);
	in = vbuf_create(ATTR_VALUE_MAX);
	attr_list_init(&l);
	attr_put_str(req, MAIL_ATTR_REQUEST, name);
	if (sel != NULL) {
		attr_put_str(req, MAIL_ATTR_QUEUE_ID, sel->qid != NULL ?
		    sel->qid : MAIL_QID_ALL);
		if (sel->domain != NULL)
			attr_put_str(req, MAIL_ATTR_DOMAIN, sel->domain);
		if (sel->sender != NULL)
			attr_put_str(req, MAIL_ATTR_SENDER, sel->sender);
	}
	attr_end(req);
	if (attr_write(fd, req, timeout_ms, why) == -1 ||
	    attr_read(fd, in, &l, &used, timeout_ms, why) == -1)
		fprintf(stderr, "relayq: %s request: %s\n", name, why->data);
	else if (attr_scan(&l, spec, why) == -1)
		fprintf(stderr, "relayq: %s failed: %s\n", name, why->data);
	else if (status != MAIL_STAT_OK)
		fprintf(stderr, "relayq: %s failed: %s\n", name, reason);
	else
		rc = 0;
	attr_list_release(&l);
	vbuf_free(req);
	vbuf_free(in);
	vbuf_free(why);
	close(fd);
	return rc;
}

static int
relayq_flush(const struct cfg *cfg)
{
	uint64_t count;

	if (relayq_request(cfg, MAIL_REQ_FLUSH, NULL, &count,
	    RELAYQ_FLUSH_TIMEOUT_MS) != 0)
		return 1;
	fprintf(stderr, "relayq: %" PRIu64 " deferred recipient(s) "
	    "scheduled for delivery now\n", count);
	return 0;
}

/*
 * -h, -H, -d, -r: one request per id (or ALL), with the selection; the
 * total number of messages changed on standard error, or with -j as one
 * JSON object on standard output.
 */
static int
relayq_admin(const struct cfg *cfg, const char *name, char **ids, size_t nids,
    const struct qstore_select *sel0, int json)
{
	struct qstore_select sel = *sel0;
	uint64_t count, total = 0;
	struct vbuf *out;
	struct json j;
	int rc = 0;

	for (size_t i = 0; i < nids; i++) {
		sel.qid = strcmp(ids[i], MAIL_QID_ALL) == 0 ? NULL : ids[i];
		if (relayq_request(cfg, name, &sel, &count,
		    RELAYQ_ADMIN_TIMEOUT_MS) != 0) {
			rc = 1;
			continue;
		}
		if (count == 0 && sel.qid != NULL)
			fprintf(stderr, "relayq: %s: %s: no such message, or "
			    "nothing to change\n", name, sel.qid);
		total += count;
	}
	if (json) {
		out = vbuf_create(0);
		json_init(&j, out);
		json_object_begin(&j);
		json_kv_str(&j, "action", name);
		json_kv_int(&j, "messages", (int64_t)total);
		json_kv_str(&j, "status", rc == 0 ? "ok" : "failed");
		json_object_end(&j);
		vbuf_addc(out, '\n');
		fwrite(out->data, 1, out->len, stdout);
		vbuf_free(out);
		fflush(stdout);
	} else
		fprintf(stderr, "relayq: %s: %" PRIu64 " message(s)\n", name,
		    total);
	return rc != 0 || ferror(stdout) ? 1 : 0;
}

static void
relayq_time(char *buf, size_t size, int64_t t)
{
	time_t tt = (time_t)t;
	struct tm tm;

	localtime_r(&tt, &tm);
	strftime(buf, size, "%a %b %e %H:%M:%S %Y", &tm);
}

/* -e ID: one message, every recipient the index still has. */
static int
relayq_show(const struct cfg *cfg, const char *qid, int json)
{
	struct relayq_rcpts rs = { NULL, 0 };
	struct relayq_ctx ctx;
	struct qstore_msginfo m;
	struct qstore *qs;
	struct vbuf *why = vbuf_create(0), *out;
	struct json j;
	char when[64];
	const char *qname;
	size_t i;
	int found;

	if ((qs = relayq_open(cfg, json, &ctx, why)) == NULL)
		return 1;
	if ((found = qstore_msg_get(ctx.txn, qid, &m) == 0))
		(void)qstore_rcpt_iter(ctx.txn, qid, relayq_rcpt_all_cb, &rs);
	qstore_txn_abort(ctx.txn);
	out = ctx.out;
	if (!found) {
		fprintf(stderr, "relayq: %s: no such message in the queue\n",
		    qid);
		vbuf_free(out);
		vbuf_free(why);
		qstore_close(qs);
		return 1;
	}
	qname = relayq_queue_name(&m, &rs);
	if (json) {
		json_init(&j, out);
		json_object_begin(&j);
		json_kv_str(&j, "queue_name", qname);
		json_kv_str(&j, "queue_id", m.qid);
		json_kv_int(&j, "arrival_time", m.arrival);
		json_kv_int(&j, "message_size", (int64_t)m.size);
		json_kv_str(&j, "sender", m.sender);
		json_kv_str(&j, "client", m.client_addr);
		json_kv_str(&j, "sasl_username", m.auth_user);
		if (m.held != 0)
			json_kv_int(&j, "held_since", m.held);
		relayq_json_lane(&j, &m);
		json_key(&j, "recipients");
		json_array_begin(&j);
		for (i = 0; i < rs.n; i++) {
			const struct qstore_rcpt *r = &rs.r[i];

			json_object_begin(&j);
			json_kv_str(&j, "address", r->address);
			if (r->reply[0] != '\0')
				json_kv_str(&j, "delay_reason", r->reply);
			json_kv_str(&j, "state", qstore_state_name(r->state));
			json_kv_int(&j, "attempts", r->attempts);
			if (r->state == QSTORE_PENDING ||
			    r->state == QSTORE_DEFERRED) {
				if (r->next_attempt < QSTORE_HELD_NEXT)
					json_kv_int(&j, "next_attempt",
					    r->next_attempt);
			}
			if (r->last_attempt != 0)
				json_kv_int(&j, "last_attempt",
				    r->last_attempt);
			if (r->dsn[0] != '\0')
				json_kv_str(&j, "dsn", r->dsn);
			if (r->class[0] != '\0')
				json_kv_str(&j, "class", r->class);
			if (r->relay[0] != '\0')
				json_kv_str(&j, "relay", r->relay);
			json_object_end(&j);
		}
		json_array_end(&j);
		json_object_end(&j);
		vbuf_addc(out, '\n');
	} else {
		vbuf_addf(out, "queue_id: %s\nqueue_name: %s\n", m.qid, qname);
		relayq_time(when, sizeof(when), m.arrival);
		vbuf_addf(out, "arrival_time: %s\nmessage_size: %" PRIu64
		    "\nsender: %s\n", when, m.size, m.sender[0] != '\0' ?
		    log_safe(m.sender) : "MAILER-DAEMON");
		if (m.client_addr[0] != '\0')
			vbuf_addf(out, "client: %s\n", log_safe(m.client_addr));
		if (m.auth_user[0] != '\0')
			vbuf_addf(out, "sasl_username: %s\n",
			    log_safe(m.auth_user));
		if (m.held != 0) {
			relayq_time(when, sizeof(when), m.held);
			vbuf_addf(out, "held_since: %s\n", when);
		}
		vbuf_addf(out, "lane: %s\npool: %s\n", m.bulk ? "bulk" :
		    "transactional", m.pool[0] != '\0' ? m.pool : "default");
		for (i = 0; i < rs.n; i++) {
			const struct qstore_rcpt *r = &rs.r[i];

			vbuf_addf(out, "recipient: %s\n  state: %s, attempts: "
			    "%" PRIu32 "\n", log_safe(r->address),
			    qstore_state_name(r->state), r->attempts);
			if (r->last_attempt != 0) {
				relayq_time(when, sizeof(when),
				    r->last_attempt);
				vbuf_addf(out, "  last_attempt: %s\n", when);
			}
			if ((r->state == QSTORE_PENDING ||
			    r->state == QSTORE_DEFERRED) &&
			    r->next_attempt < QSTORE_HELD_NEXT) {
				relayq_time(when, sizeof(when),
				    r->next_attempt);
				vbuf_addf(out, "  next_attempt: %s\n", when);
			}
			if (r->dsn[0] != '\0')
				vbuf_addf(out, "  dsn: %s\n", r->dsn);
			if (r->class[0] != '\0')
				vbuf_addf(out, "  class: %s\n", r->class);
			if (r->relay[0] != '\0')
				vbuf_addf(out, "  relay: %s\n",
				    log_safe(r->relay));
			if (r->reply[0] != '\0')
				vbuf_addf(out, "  reply: %s\n",
				    log_safe(r->reply));
		}
	}
	fwrite(out->data, 1, out->len, stdout);
	fflush(stdout);
	free(rs.r);
	vbuf_free(out);
	vbuf_free(why);
	qstore_close(qs);
	return ferror(stdout) ? 1 : 0;
}

/* -s: recipients not yet final, by domain and age bucket (qshape). */
struct relayq_dom {
	char		 name[QSTORE_ADDR_MAX + 1];
	uint64_t	 total;
	uint64_t	 col[RELAYQ_NCOLS];
};

struct relayq_shape {
	struct qstore_txn	*txn;
	const struct qstore_select *sel;
	int64_t			 now;
	struct relayq_dom	 all;
	struct relayq_dom	*d;
	size_t			 n, alloc;
};

struct relayq_shape_msg {
	struct relayq_shape	*sh;
	int			 col;
};

static int
relayq_shape_rcpt_cb(const struct qstore_rcpt *r, void *arg)
{
	struct relayq_shape_msg *sm = arg;
	struct relayq_shape *sh = sm->sh;
	const char *at, *dom;
	size_t i;

	if (r->state != QSTORE_PENDING && r->state != QSTORE_DEFERRED)
		return 0;
	dom = (at = strrchr(r->address, '@')) != NULL ? at + 1 : "";
	/* --domain: only that domain's recipients are counted. */
	if (sh->sel->domain != NULL && strcasecmp(dom, sh->sel->domain) != 0)
		return 0;
	for (i = 0; i < sh->n; i++)
		if (strcasecmp(sh->d[i].name, dom) == 0)
			break;
	if (i == sh->n) {
		if (sh->n == sh->alloc) {
			sh->alloc = sh->alloc == 0 ? 16 : sh->alloc * 2;
			sh->d = xreallocarray(sh->d, sh->alloc,
			    sizeof(*sh->d));
		}
		memset(&sh->d[i], 0, sizeof(sh->d[i]));
		snprintf(sh->d[i].name, sizeof(sh->d[i].name), "%s", dom);
		for (char *p = sh->d[i].name; *p != '\0'; p++)
			if (*p >= 'A' && *p <= 'Z')
				*p = (char)(*p - 'A' + 'a');
		sh->n++;
	}
	sh->d[i].total++;
	sh->d[i].col[sm->col]++;
	sh->all.total++;
	sh->all.col[sm->col]++;
	return 0;
}

static int
relayq_shape_msg_cb(const struct qstore_msginfo *m, void *arg)
{
	struct relayq_shape *sh = arg;
	struct relayq_shape_msg sm = { sh, RELAYQ_NBUCKETS };
	int64_t age = (sh->now - m->arrival) / 60;

	if (!qstore_select_match(sh->txn, m, sh->sel))
		return 0;
	for (int b = 0; b < RELAYQ_NBUCKETS - 1; b++)
		if (age <= relayq_buckets[b]) {
			sm.col = b;
			break;
		}
	if (sm.col == RELAYQ_NBUCKETS)
		sm.col = RELAYQ_NBUCKETS - 1;	/* over 1280: "1280+" */
	(void)qstore_rcpt_iter(sh->txn, m->qid, relayq_shape_rcpt_cb, &sm);
	return 0;
}

static int
relayq_dom_cmp(const void *a, const void *b)
{
	const struct relayq_dom *x = a, *y = b;

	if (x->total != y->total)
		return x->total > y->total ? -1 : 1;
	return strcmp(x->name, y->name);
}

static const char *const relayq_col_names[RELAYQ_NBUCKETS] = {
	"5", "10", "20", "40", "80", "160", "320", "640", "1280", "1280+"
};

static void
relayq_shape_row(struct vbuf *out, const struct relayq_dom *d, int json)
{
	struct json j;

	if (json) {
		json_init(&j, out);
		json_object_begin(&j);
		json_kv_str(&j, "domain", d->name);
		json_kv_int(&j, "T", (int64_t)d->total);
		for (int c = 0; c < RELAYQ_NBUCKETS; c++)
			json_kv_int(&j, relayq_col_names[c],
			    (int64_t)d->col[c]);
		json_object_end(&j);
		vbuf_addc(out, '\n');
		return;
	}
	vbuf_addf(out, "%30s %6" PRIu64, log_safe(d->name), d->total);
	for (int c = 0; c < RELAYQ_NBUCKETS; c++)
		vbuf_addf(out, " %5" PRIu64, d->col[c]);
	vbuf_addc(out, '\n');
}

static int
relayq_summary(const struct cfg *cfg, const struct qstore_select *sel,
    int json)
{
	struct relayq_shape sh;
	struct relayq_ctx ctx;
	struct qstore *qs;
	struct vbuf *why = vbuf_create(0);
	size_t i;

	if ((qs = relayq_open(cfg, json, &ctx, why)) == NULL)
		return 1;
	memset(&sh, 0, sizeof(sh));
	sh.txn = ctx.txn;
	sh.sel = sel;
	sh.now = time(NULL);
	snprintf(sh.all.name, sizeof(sh.all.name), "TOTAL");
	(void)qstore_msg_iter(ctx.txn, relayq_shape_msg_cb, &sh);
	qstore_txn_abort(ctx.txn);
	if (sh.n > 1)
		qsort(sh.d, sh.n, sizeof(*sh.d), relayq_dom_cmp);
	if (!json) {
		vbuf_addf(ctx.out, "%30s %6s", "", "T");
		for (int c = 0; c < RELAYQ_NBUCKETS; c++)
			vbuf_addf(ctx.out, " %5s", relayq_col_names[c]);
		vbuf_addc(ctx.out, '\n');
		relayq_shape_row(ctx.out, &sh.all, 0);
	}
	for (i = 0; i < sh.n; i++)
		relayq_shape_row(ctx.out, &sh.d[i], json);
	fwrite(ctx.out->data, 1, ctx.out->len, stdout);
	fflush(stdout);
	free(sh.d);
	vbuf_free(ctx.out);
	vbuf_free(why);
	qstore_close(qs);
	return ferror(stdout) ? 1 : 0;
}

/* Sets the mode once; a second, different one is a usage error. */
static void
relayq_set_mode(enum relayq_mode *mode, enum relayq_mode m)
{
	if (*mode != RELAYQ_LIST && *mode != m)
		relayq_usage(0);
	*mode = m;
}

int
main(int argc, char *argv[])
{
	static const struct option longopts[] = {
		{ "help", no_argument, NULL, 'y' },
		{ "domain", required_argument, NULL, 'D' },
		{ "sender", required_argument, NULL, 'S' },
		{ "outbox", no_argument, NULL, 'o' },
		{ NULL, 0, NULL, 0 }
	};
	const char *path = CFG_DEFAULT_PATH, *admin = NULL, *show = NULL;
	struct qstore_select sel = { NULL, NULL, NULL };
	enum relayq_mode mode = RELAYQ_LIST;
	char *ids[RELAYQ_IDS_MAX];
	size_t nids = 0;
	struct vbuf *why;
	struct cfg *cfg;
	int ch, json = 0, rc = 1;

	log_init("relayq", LOG_DEST_STDERR);
	while ((ch = getopt_long(argc, argv, "c:d:e:fh:H:jor:s", longopts,
	    NULL)) != -1) {
		const char *name = NULL;

		switch (ch) {
		case 'c':
			path = optarg;
			break;
		case 'y':
			relayq_usage(1);
			/* NOTREACHED */
		case 'D':
			if (optarg[0] == '\0' || strlen(optarg) >
			    QSTORE_ADDR_MAX) {
				fprintf(stderr, "relayq: --domain: empty or "
				    "too long\n");
				relayq_usage(0);
			}
			sel.domain = optarg;
			break;
		case 'S':
			if (strlen(optarg) > QSTORE_ADDR_MAX) {
				fprintf(stderr, "relayq: --sender: too long\n");
				relayq_usage(0);
			}
			sel.sender = optarg;
			break;
		case 'e':
			relayq_set_mode(&mode, RELAYQ_SHOW);
			if (show != NULL || !qid_ok(optarg)) {
				fprintf(stderr, "relayq: -e: one queue id "
				    "(16 upper-case hexadecimal digits)\n");
				relayq_usage(0);
			}
			show = optarg;
			break;
		case 'f':
			relayq_set_mode(&mode, RELAYQ_FLUSH);
			break;
		case 'j':
			json = 1;
			break;
		case 'o':
			relayq_set_mode(&mode, RELAYQ_OUTBOX);
			break;
		case 's':
			relayq_set_mode(&mode, RELAYQ_SUMMARY);
			break;
		case 'h':
			name = MAIL_REQ_HOLD;
			break;
		case 'H':
			name = MAIL_REQ_RELEASE;
			break;
		case 'd':
			name = MAIL_REQ_DELETE;
			break;
		case 'r':
			name = MAIL_REQ_REQUEUE;
			break;
		default:
			relayq_usage(0);
		}
		if (name == NULL)
			continue;
		relayq_set_mode(&mode, RELAYQ_ADMIN);
		if (admin != NULL && strcmp(admin, name) != 0)
			relayq_usage(0);	/* one action at a time */
		admin = name;
		/* "ALL" in upper case only, as postsuper asks. */
		if (strcmp(optarg, MAIL_QID_ALL) != 0 && !qid_ok(optarg)) {
			fprintf(stderr, "relayq: -%c: %s: not a queue id or "
			    "ALL\n", ch, log_safe(optarg));
			relayq_usage(0);
		}
		if (nids == RELAYQ_IDS_MAX) {
			fprintf(stderr, "relayq: more than %d ids\n",
			    RELAYQ_IDS_MAX);
			relayq_usage(0);
		}
		ids[nids++] = optarg;
	}
	if (optind != argc || (json && mode == RELAYQ_FLUSH))
		relayq_usage(0);
	/* Selection applies to listings and actions, not to these. */
	if ((sel.domain != NULL || sel.sender != NULL) &&
	    (mode == RELAYQ_SHOW || mode == RELAYQ_OUTBOX ||
	    mode == RELAYQ_FLUSH))
		relayq_usage(0);
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
	switch (mode) {
	case RELAYQ_LIST:
		rc = relayq_list(cfg, &sel, json);
		break;
	case RELAYQ_SHOW:
		rc = relayq_show(cfg, show, json);
		break;
	case RELAYQ_SUMMARY:
		rc = relayq_summary(cfg, &sel, json);
		break;
	case RELAYQ_OUTBOX:
		rc = relayq_events(cfg, json);
		break;
	case RELAYQ_FLUSH:
		rc = relayq_flush(cfg);
		break;
	case RELAYQ_ADMIN:
		rc = relayq_admin(cfg, admin, ids, nids, &sel, json);
		break;
	}
	cfg_free(cfg);
	return rc;
}
