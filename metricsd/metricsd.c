/*
 * metricsd.c - the Prometheus endpoint: GET /metrics on metrics.listen.
 * See metricsd(8) for every metric.
 *
 * Why a daemon of its own: the counters are bumped by the daemons that own
 * them in shared counter files (lib/metrics.h: relaxed atomic adds, no
 * system call on the hot path), so serving them needs nobody's help but
 * read access to those files. Only this process links the HTTP library
 * (libmicrohttpd), it runs unprivileged like every daemon, and it is
 * started by master only when metrics.listen is set, as webhookd is only
 * with webhooks:. It binds the address itself (a port above 1023).
 *
 * libmicrohttpd runs in "external select" mode with epoll: its one epoll
 * descriptor goes into the skeleton's event loop, so the process stays
 * single-threaded like every other daemon.
 *
 * Queue depth and map use are not counters: they are read at scrape time
 * from the queue's LMDB in one read transaction (as relayctl status does),
 * which costs one walk of the index per scrape and nothing in between.
 * The webhook backlog is read the same way: the outbox's size from the
 * queue, and the pending deliveries from webhookd's store (its pending
 * index only, not the deliveries already sent).
 *
 * The same walk counts the recipients not yet final by destination, the
 * next-hop key qmgr groups them by (the transport table applied as
 * qmgr_sched.c does), and keeps the MD_TOP_DESTS largest: a queue can
 * hold mail for any number of domains, and a label per domain would grow
 * Prometheus's series without bound, so the rest are summed as "other".
 *
 * Shaping state is qmgr's alone (in memory): metricsd asks it on
 * private/qmgr (request=shaping, qmgr_request.c), with a short
 * deadline (MD_QMGR_TIMEOUT_MS) so that a busy or absent qmgr costs the
 * scrape its shaping series, never the scrape. Bounded the same way.
 */
#include <sys/socket.h>

#include <arpa/inet.h>
#include <netinet/in.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <microhttpd.h>

#include <unistd.h>

#include "attr.h"
#include "cfg.h"
#include "daemon.h"
#include "event.h"
#include "log.h"
#include "mailconn.h"
#include "mailproto.h"
#include "metrics.h"
#include "nexthop.h"
#include "outbox.h"
#include "qstore.h"
#include "smtpcmd.h"
#include "vbuf.h"
#include "whstore.h"
#include "xalloc.h"

#define MD_MAX_CONNECTIONS	16
#define MD_TIMEOUT_S		10
#define MD_MAX_LABELS		(METRICS_NSLOTS + 1)	/* merged, +other */
#define MD_MAX_CREDS		(METRICS_CRED_SLOTS + 1) /* merged, +other */
#define MD_TOP_DESTS		50	/* destinations labelled; the rest "other" */
/* Destinations told apart during one walk: past it, new ones go to "other"
 * at once (the top would then be approximate); bounds metricsd's memory. */
#define MD_DESTS_MAX		100000
#define MD_QMGR_TIMEOUT_MS	1000	/* the whole shaping exchange */
#define MD_SHAPING_MAX		10000	/* records read (QMGR_SHAPING_SHOW_MAX) */

/* The counter files, by the daemon that writes them. */
static const char *const md_files[] = { "smtpd", "qmgr", "smtp", "bounce",
    "webhookd" };
#define MD_NFILES	(sizeof(md_files) / sizeof(md_files[0]))

static struct MHD_Daemon *md_httpd;
static const struct cfg *md_cfg;
static struct qstore *md_queue;
static struct whstore md_wh;
static int md_wh_open;		/* md_wh set up (it attaches lazily) */

/* One labelled family's series merged over every file. */
struct md_label {
	char		label[METRICS_LABEL_MAX];
	uint64_t	n;
};
struct md_family {
	struct md_label	l[MD_MAX_LABELS];
	size_t		n;
};

static void
md_merge(const char *label, uint64_t n, void *arg)
{
	struct md_family *f = arg;
	size_t i;

	for (i = 0; i < f->n; i++)
		if (strcmp(f->l[i].label, label) == 0) {
			f->l[i].n += n;
			return;
		}
	if (f->n == MD_MAX_LABELS)
		return;
	snprintf(f->l[f->n].label, sizeof(f->l[f->n].label), "%s", label);
	f->l[f->n].n = n;
	f->n++;
}

/* The credential table merged over every file. */
struct md_cred {
	char		label[METRICS_LABEL_MAX];
	uint64_t	n[METRICS_NOUTCOMES];
};
struct md_creds {
	struct md_cred	c[MD_MAX_CREDS];
	size_t		n;
};

static void
md_merge_cred(const char *label, const uint64_t *n, void *arg)
{
	struct md_creds *f = arg;
	size_t i, k;

	for (i = 0; i < f->n; i++)
		if (strcmp(f->c[i].label, label) == 0)
			break;
	if (i == f->n) {
		if (f->n == MD_MAX_CREDS)
			return;
		memset(&f->c[i], 0, sizeof(f->c[i]));
		snprintf(f->c[i].label, sizeof(f->c[i].label), "%s", label);
		f->n++;
	}
	for (k = 0; k < METRICS_NOUTCOMES; k++)
		f->c[i].n[k] += n[k];
}

/* A label value, escaped as the text format wants (\\, \", \n). */
static void
md_label_value(struct vbuf *out, const char *s)
{
	for (; *s != '\0'; s++) {
		if (*s == '\\' || *s == '"')
			(void)vbuf_addc(out, '\\');
		if (*s == '\n') {
			(void)vbuf_adds(out, "\\n");
			continue;
		}
		(void)vbuf_addc(out, *s);
	}
}

static void
md_head(struct vbuf *out, const char *name, const char *type,
    const char *help)
{
	vbuf_addf(out, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void
md_family(struct vbuf *out, struct metrics_view *const *v,
    enum metrics_family fam, const char *name, const char *label,
    const char *help)
{
	static struct md_family f;
	size_t i;

	f.n = 0;
	for (i = 0; i < MD_NFILES; i++)
		if (v[i] != NULL)
			metrics_view_labels(v[i], fam, md_merge, &f);
	md_head(out, name, "counter", help);
	for (i = 0; i < f.n; i++) {
		vbuf_addf(out, "%s{%s=\"", name, label);
		md_label_value(out, f.l[i].label);
		vbuf_addf(out, "\"} %llu\n", (unsigned long long)f.l[i].n);
	}
}

static uint64_t
md_sum(struct metrics_view *const *v, enum metrics_id id)
{
	uint64_t n = 0;
	size_t i;

	for (i = 0; i < MD_NFILES; i++)
		if (v[i] != NULL)
			n += metrics_view_get(v[i], id);
	return n;
}

static void
md_counter(struct vbuf *out, struct metrics_view *const *v,
    enum metrics_id id, const char *name, const char *help)
{
	md_head(out, name, "counter", help);
	vbuf_addf(out, "%s %llu\n", name, (unsigned long long)md_sum(v, id));
}

/* Recipients not yet final of one destination, during one walk. */
struct md_dest {
	char		key[NEXTHOP_KEY_MAX + 1];
	uint64_t	n;
};

struct md_walk {
	struct qstore_txn	*txn;
	uint64_t		 by_state[4];
	uint64_t		 messages;
	struct outbox_stat	 ob;
	int			 ob_ok;
	struct md_dest		*dests;		/* in the order first seen */
	size_t			 ndests, dests_alloc;
	uint32_t		*index;		/* open addressing: dest + 1 */
	size_t			 index_size;	/* a power of two, or 0 */
	uint64_t		 dests_over;	/* past MD_DESTS_MAX */
};

/* FNV-1a of a next-hop key. */
static uint32_t
md_hash(const char *s)
{
	uint32_t h = 2166136261u;

	for (; *s != '\0'; s++) {
		h ^= (unsigned char)*s;
		h *= 16777619u;
	}
	return h;
}

/* Rebuilds the index at twice its size: kept under half full. */
static void
md_dest_grow(struct md_walk *w)
{
	size_t i, j, size = w->index_size == 0 ? 1024 : w->index_size * 2;

	free(w->index);
	w->index = xcalloc(size, sizeof(*w->index));
	w->index_size = size;
	for (i = 0; i < w->ndests; i++) {
		for (j = md_hash(w->dests[i].key) & (size - 1);
		    w->index[j] != 0; j = (j + 1) & (size - 1))
			;
		w->index[j] = (uint32_t)i + 1;
	}
}

static void
md_dest_count(struct md_walk *w, const char *key)
{
	struct md_dest *d;
	size_t j;

	if (w->index_size == 0)
		md_dest_grow(w);
	for (j = md_hash(key) & (w->index_size - 1); w->index[j] != 0;
	    j = (j + 1) & (w->index_size - 1)) {
		d = &w->dests[w->index[j] - 1];
		if (strcmp(d->key, key) == 0) {
			d->n++;
			return;
		}
	}
	if (w->ndests == MD_DESTS_MAX) {
		w->dests_over++;
		return;
	}
	if (w->ndests == w->dests_alloc) {
		w->dests_alloc = w->dests_alloc == 0 ? 256 :
		    w->dests_alloc * 2;
		w->dests = xreallocarray(w->dests, w->dests_alloc,
		    sizeof(*w->dests));
	}
	d = &w->dests[w->ndests];
	snprintf(d->key, sizeof(d->key), "%s", key);
	d->n = 1;
	w->index[j] = (uint32_t)++w->ndests;
	if (w->ndests * 2 > w->index_size)
		md_dest_grow(w);
}

static int
md_rcpt_cb(const struct qstore_rcpt *r, void *arg)
{
	struct md_walk *w = arg;
	char dom[QSTORE_ADDR_MAX + 1], key[NEXTHOP_KEY_MAX + 1];

	if ((unsigned)r->state < 4)
		w->by_state[r->state]++;
	if (r->state != QSTORE_PENDING && r->state != QSTORE_DEFERRED)
		return 0;
	/* The next hop qmgr would send it to (qmgr_sched.c). */
	smtpcmd_addr_domain(r->address, dom, sizeof(dom));
	/* No domain (RCPT TO:<postmaster>): qmgr has no next hop either. */
	if (cfg_nexthop_key(md_cfg, dom, key, sizeof(key)) == -1)
		snprintf(key, sizeof(key), "%s", "none");
	md_dest_count(w, key);
	return 0;
}

static int
md_msg_cb(const struct qstore_msginfo *m, void *arg)
{
	struct md_walk *w = arg;

	w->messages++;
	(void)qstore_rcpt_iter(w->txn, m->qid, md_rcpt_cb, w);
	return 0;
}

/* Most recipients first; equal counts by key, so the top is stable. */
static int
md_dest_cmp(const void *a, const void *b)
{
	const struct md_dest *x = a, *y = b;

	if (x->n != y->n)
		return x->n > y->n ? -1 : 1;
	return strcmp(x->key, y->key);
}

static void
md_dest_render(struct vbuf *out, struct md_walk *w)
{
	const char *name = "petrel_queue_destination_recipients";
	uint64_t other = w->dests_over;
	size_t i;

	if (w->ndests > 0)
		qsort(w->dests, w->ndests, sizeof(*w->dests), md_dest_cmp);
	md_head(out, name, "gauge", "Recipients not yet final (pending or "
	    "deferred), by destination (next hop), the 50 largest; the rest "
	    "summed as \"other\".");
	for (i = 0; i < w->ndests; i++) {
		if (i >= MD_TOP_DESTS) {
			other += w->dests[i].n;
			continue;
		}
		vbuf_addf(out, "%s{destination=\"", name);
		md_label_value(out, w->dests[i].key);
		vbuf_addf(out, "\"} %llu\n", (unsigned long long)w->dests[i].n);
	}
	vbuf_addf(out, "%s{destination=\"other\"} %llu\n", name,
	    (unsigned long long)other);
}

/* Queue depth by recipient state and map use, from one read transaction. */
static void
md_queue_render(struct vbuf *out)
{
	static const char *const states[] = { "pending", "deferred",
	    "delivered", "failed" };
	struct md_walk w;
	struct vbuf why;
	size_t i;
	int pct, ok = 0;

	memset(&w, 0, sizeof(w));
	vbuf_init(&why, 0);
	if (md_queue == NULL)
		md_queue = qstore_open(md_cfg, &why);
	if (md_queue != NULL &&
	    (w.txn = qstore_txn_begin(md_queue, 0, &why)) != NULL) {
		ok = qstore_msg_iter(w.txn, md_msg_cb, &w) != -1;
		w.ob_ok = outbox_stat(w.txn, &w.ob, &why) != -1;
		pct = qstore_txn_used_pct(w.txn, 0);
		qstore_txn_abort(w.txn);
	}
	if (!ok) {
		free(w.dests);
		free(w.index);
		log_warn("cannot read the queue: %s", why.len > 0 ?
		    why.data : "a read error");
		vbuf_release(&why);
		md_head(out, "petrel_queue_up", "gauge",
		    "1 if the queue could be read for this scrape.");
		vbuf_adds(out, "petrel_queue_up 0\n");
		return;
	}
	vbuf_release(&why);
	md_head(out, "petrel_queue_up", "gauge",
	    "1 if the queue could be read for this scrape.");
	vbuf_adds(out, "petrel_queue_up 1\n");
	md_head(out, "petrel_queue_messages", "gauge",
	    "Messages in the queue.");
	vbuf_addf(out, "petrel_queue_messages %llu\n",
	    (unsigned long long)w.messages);
	md_head(out, "petrel_queue_recipients", "gauge",
	    "Recipient records in the queue, by state.");
	for (i = 0; i < 4; i++)
		vbuf_addf(out, "petrel_queue_recipients{state=\"%s\"} %llu\n",
		    states[i], (unsigned long long)w.by_state[i]);
	md_head(out, "petrel_queue_map_used_ratio", "gauge",
	    "Share of the queue's LMDB map (queue.map_size) in use.");
	vbuf_addf(out, "petrel_queue_map_used_ratio %.2f\n", pct / 100.0);
	md_dest_render(out, &w);
	free(w.dests);
	free(w.index);
	if (!w.ob_ok)
		return;
	md_head(out, "petrel_outbox_events", "gauge",
	    "Events in the queue's outbox not yet taken by webhookd.");
	vbuf_addf(out, "petrel_outbox_events %llu\n",
	    (unsigned long long)w.ob.events);
	md_head(out, "petrel_outbox_dropped_total", "counter",
	    "Outbox events dropped over its cap since the queue began.");
	vbuf_addf(out, "petrel_outbox_dropped_total %llu\n",
	    (unsigned long long)w.ob.dropped);
}

/*
 * Webhook deliveries waiting in webhookd's store. The gauge is absent
 * when the store cannot be read, 0 before webhookd has made it.
 */
static void
md_webhook_render(struct vbuf *out)
{
	struct vbuf why;
	MDB_txn *txn;
	uint64_t n = 0;
	int rc;

	vbuf_init(&why, 0);
	if (!md_wh_open) {
		if (whstore_open(&md_wh, md_cfg, 0, &why) == -1) {
			log_warn("cannot read the webhook store: %s", why.data);
			vbuf_release(&why);
			return;
		}
		md_wh_open = 1;
	}
	rc = mdbdir_begin(&md_wh.md, MDB_RDONLY, &txn, &why);
	if (rc == 1) {
		if (whstore_pending_count(&md_wh, txn, &n) == -1)
			rc = -1;
		mdb_txn_abort(txn);
	}
	if (rc == -1) {
		log_warn("cannot read the webhook store: %s", why.len > 0 ?
		    why.data : "a read error");
		vbuf_release(&why);
		return;
	}
	vbuf_release(&why);
	md_head(out, "petrel_webhook_pending", "gauge",
	    "Webhook deliveries waiting to be sent or retried (the backlog).");
	vbuf_addf(out, "petrel_webhook_pending %llu\n", (unsigned long long)n);
}

static void
md_latency(struct vbuf *out, struct metrics_view *const *v)
{
	const char *name = "petrel_delivery_latency_seconds";
	uint64_t cum = 0;
	size_t i;

	md_head(out, name, "histogram", "End-to-end latency: time from "
	    "arrival to delivery, per delivered recipient.");
	for (i = 0; i < METRICS_NBUCKETS; i++) {
		cum += md_sum(v, (enum metrics_id)(METRICS_LAT_0 + i));
		vbuf_addf(out, "%s_bucket{le=\"%lld\"} %llu\n", name,
		    (long long)metrics_buckets[i], (unsigned long long)cum);
	}
	cum += md_sum(v, METRICS_LAT_LAST);
	vbuf_addf(out, "%s_bucket{le=\"+Inf\"} %llu\n", name,
	    (unsigned long long)cum);
	vbuf_addf(out, "%s_sum %llu\n%s_count %llu\n", name,
	    (unsigned long long)md_sum(v, METRICS_LAT_SUM), name,
	    (unsigned long long)cum);
}

/* One delivery attempt's duration (smtp), from milliseconds. */
static void
md_attempts(struct vbuf *out, struct metrics_view *const *v)
{
	const char *name = "petrel_delivery_attempt_seconds";
	uint64_t cum = 0;
	size_t i;

	md_head(out, name, "histogram", "Duration of each delivery attempt: "
	    "one smtp transaction to one next hop, connection included.");
	for (i = 0; i < METRICS_NBUCKETS; i++) {
		cum += md_sum(v, (enum metrics_id)(METRICS_ATT_0 + i));
		vbuf_addf(out, "%s_bucket{le=\"%g\"} %llu\n", name,
		    metrics_att_buckets_ms[i] / 1000.0, (unsigned long long)cum);
	}
	cum += md_sum(v, METRICS_ATT_LAST);
	vbuf_addf(out, "%s_bucket{le=\"+Inf\"} %llu\n", name,
	    (unsigned long long)cum);
	vbuf_addf(out, "%s_sum %.3f\n%s_count %llu\n", name,
	    md_sum(v, METRICS_ATT_SUM_MS) / 1000.0, name,
	    (unsigned long long)cum);
}

/* Recipients' outcomes by credential (qmgr counts them). */
static void
md_credentials(struct vbuf *out, struct metrics_view *const *v)
{
	static struct md_creds f;
	const char *name = "petrel_recipients_by_credential_total";
	size_t i, k;

	f.n = 0;
	for (i = 0; i < MD_NFILES; i++)
		if (v[i] != NULL)
			metrics_view_credentials(v[i], md_merge_cred, &f);
	md_head(out, name, "counter", "Recipient outcomes by the credential "
	    "that submitted the message (\"none\": without one), "
	    "deferrals once per attempt.");
	for (i = 0; i < f.n; i++)
		for (k = 0; k < METRICS_NOUTCOMES; k++) {
			vbuf_addf(out, "%s{credential=\"", name);
			md_label_value(out, f.c[i].label);
			vbuf_addf(out, "\",outcome=\"%s\"} %llu\n",
			    metrics_outcome_name((enum metrics_outcome)k),
			    (unsigned long long)f.c[i].n[k]);
		}
}

/* One destination of qmgr's shaping reply. */
struct md_shape {
	char		key[NEXTHOP_KEY_MAX + 1];
	char		state[16];
	uint64_t	pending, conns, max_conn, rate_count, rate_interval;
};

/* The states qmgr_dest_state names; another one is shown as it comes. */
static const char *const md_shape_states[] = { "normal", "pacing",
    "at-limit", "backoff", "suspended", "dead" };
#define MD_NSTATES	(sizeof(md_shape_states) / sizeof(md_shape_states[0]))

/* Busiest first (pending jobs, then connections), then by key. */
static int
md_shape_cmp(const void *a, const void *b)
{
	const struct md_shape *x = a, *y = b;

	if (x->pending + x->conns != y->pending + y->conns)
		return x->pending + x->conns > y->pending + y->conns ? -1 : 1;
	return strcmp(x->key, y->key);
}

/*
 * Asks qmgr for its destinations (request=shaping): one record each,
 * then status=0. Returns how many were read
 * into *shapes (the caller frees it), or -1 with the reason in why.
 */
static ssize_t
md_shaping_ask(struct md_shape **shapes, struct vbuf *why)
{
	struct attr_list l;
	struct vbuf *req, *in;
	struct md_shape *sh = NULL, one;
	const char *key, *state;
	uint64_t status;
	int64_t deadline = ev_now_ms() + MD_QMGR_TIMEOUT_MS, left;
	size_t used, n = 0, alloc = 0;
	ssize_t rc = -1;
	int fd;
	const struct attr_spec rec[] = {
		ATTR_STR(MAIL_ATTR_NEXTHOP, ATTR_F_REQUIRED, 1, NEXTHOP_KEY_MAX,
		    &key),
		ATTR_STR(MAIL_ATTR_STATE, ATTR_F_REQUIRED, 1,
		    sizeof(one.state) - 1, &state),
		ATTR_UINT(MAIL_ATTR_PENDING, 0, 0, UINT64_MAX, &one.pending),
		ATTR_UINT(MAIL_ATTR_CONNS, 0, 0, UINT64_MAX, &one.conns),
		ATTR_UINT(MAIL_ATTR_MAX_CONN, 0, 0, UINT64_MAX, &one.max_conn),
		ATTR_UINT(MAIL_ATTR_RATE_COUNT, 0, 0, UINT64_MAX,
		    &one.rate_count),
		ATTR_UINT(MAIL_ATTR_RATE_INTERVAL, 0, 0, UINT64_MAX,
		    &one.rate_interval),
		ATTR_TABLE_END
	};
	const struct attr_spec end[] = {
		ATTR_UINT(MAIL_ATTR_STATUS, ATTR_F_REQUIRED, 0, UINT32_MAX,
		    &status),
		ATTR_TABLE_END
	};

	*shapes = NULL;
	if ((fd = mail_connect(md_cfg->queue_directory, MAIL_SOCK_QMGR,
	    why)) == -1)
		return -1;
	req = vbuf_create(0);
	in = vbuf_create(ATTR_VALUE_MAX);
	attr_list_init(&l);
	attr_put_str(req, MAIL_ATTR_REQUEST, MAIL_REQ_SHAPING);
	attr_end(req);
	if (attr_write(fd, req, MD_QMGR_TIMEOUT_MS, why) == -1)
		goto out;
	for (;;) {
		if ((left = deadline - ev_now_ms()) <= 0) {
			vbuf_setf(why, "timeout");
			goto out;
		}
		if (attr_read(fd, in, &l, &used, (int)left, why) == -1)
			goto out;
		if (attr_get(&l, MAIL_ATTR_STATUS) != NULL) {
			if (attr_scan(&l, end, why) == -1)
				goto out;
			if (status != MAIL_STAT_OK) {
				vbuf_setf(why, "status %llu",
				    (unsigned long long)status);
				goto out;
			}
			break;
		}
		memset(&one, 0, sizeof(one));
		if (attr_scan(&l, rec, why) == -1)
			goto out;
		snprintf(one.key, sizeof(one.key), "%s", key);
		snprintf(one.state, sizeof(one.state), "%s", state);
		vbuf_consume(in, used);
		if (n == MD_SHAPING_MAX)
			continue;
		if (n == alloc) {
			alloc = alloc == 0 ? 64 : alloc * 2;
			sh = xreallocarray(sh, alloc, sizeof(*sh));
		}
		sh[n++] = one;
	}
	*shapes = sh;
	sh = NULL;
	rc = (ssize_t)n;
out:
	free(sh);
	attr_list_release(&l);
	vbuf_free(req);
	vbuf_free(in);
	(void)close(fd);
	return rc;
}

/*
 * Shaping state per destination, as qmgr sees it now: the MD_TOP_DESTS
 * busiest destinations by name, the rest summed as "other" (pending and
 * connections only: a state or a limit does not add up), and how many
 * destinations are in each state over all of them.
 */
static void
md_shaping_render(struct vbuf *out)
{
	struct md_shape *sh;
	struct vbuf why;
	uint64_t by_state[MD_NSTATES], opend = 0, oconn = 0;
	ssize_t n;
	size_t i, k, top;

	vbuf_init(&why, 0);
	md_head(out, "petrel_shaping_up", "gauge",
	    "1 if qmgr answered the shaping request for this scrape.");
	if ((n = md_shaping_ask(&sh, &why)) == -1) {
		log_warn("shaping state from qmgr: %s", why.data);
		vbuf_release(&why);
		vbuf_adds(out, "petrel_shaping_up 0\n");
		return;
	}
	vbuf_release(&why);
	vbuf_adds(out, "petrel_shaping_up 1\n");
	if (n > 0)
		qsort(sh, (size_t)n, sizeof(*sh), md_shape_cmp);
	top = (size_t)n < MD_TOP_DESTS ? (size_t)n : MD_TOP_DESTS;
	memset(by_state, 0, sizeof(by_state));
	for (i = 0; i < (size_t)n; i++) {
		for (k = 0; k < MD_NSTATES; k++)
			if (strcmp(sh[i].state, md_shape_states[k]) == 0)
				by_state[k]++;
		if (i >= top) {
			opend += sh[i].pending;
			oconn += sh[i].conns;
		}
	}
	md_head(out, "petrel_shaping_destinations", "gauge",
	    "Destinations qmgr is scheduling (with jobs, or a rate "
	    "recovering), by shaping state.");
	for (k = 0; k < MD_NSTATES; k++)
		vbuf_addf(out, "petrel_shaping_destinations{state=\"%s\"} "
		    "%llu\n", md_shape_states[k],
		    (unsigned long long)by_state[k]);
#define MD_SHAPE_SERIES(metric, field)					\
	for (i = 0; i < top; i++) {					\
		vbuf_addf(out, "%s{destination=\"", metric);		\
		md_label_value(out, sh[i].key);				\
		vbuf_addf(out, "\"} %llu\n",				\
		    (unsigned long long)(field));			\
	}
	md_head(out, "petrel_shaping_pending", "gauge",
	    "Delivery jobs waiting for their destination's limits, the 50 "
	    "busiest destinations; the rest summed as \"other\".");
	MD_SHAPE_SERIES("petrel_shaping_pending", sh[i].pending);
	vbuf_addf(out, "petrel_shaping_pending{destination=\"other\"} %llu\n",
	    (unsigned long long)opend);
	md_head(out, "petrel_shaping_connections", "gauge",
	    "Connections of the destination: jobs at smtp and idle sessions "
	    "held for it.");
	MD_SHAPE_SERIES("petrel_shaping_connections", sh[i].conns);
	vbuf_addf(out, "petrel_shaping_connections{destination=\"other\"} "
	    "%llu\n", (unsigned long long)oconn);
	md_head(out, "petrel_shaping_max_connections", "gauge",
	    "The destination's max_connections (0: no limit).");
	MD_SHAPE_SERIES("petrel_shaping_max_connections", sh[i].max_conn);
	md_head(out, "petrel_shaping_message_rate_limit", "gauge",
	    "The destination's max_message_rate, messages per second "
	    "(0: no limit).");
	for (i = 0; i < top; i++) {
		vbuf_addf(out, "petrel_shaping_message_rate_limit"
		    "{destination=\"");
		md_label_value(out, sh[i].key);
		vbuf_addf(out, "\"} %g\n", sh[i].rate_interval == 0 ? 0.0 :
		    (double)sh[i].rate_count / (double)sh[i].rate_interval);
	}
#undef MD_SHAPE_SERIES
	md_head(out, "petrel_shaping_state", "gauge",
	    "1 for the destination's shaping state now, 0 for the others.");
	for (i = 0; i < top; i++) {
		int known = 0;

		for (k = 0; k < MD_NSTATES; k++) {
			known |= strcmp(sh[i].state, md_shape_states[k]) == 0;
			vbuf_addf(out, "petrel_shaping_state{destination=\"");
			md_label_value(out, sh[i].key);
			vbuf_addf(out, "\",state=\"%s\"} %d\n",
			    md_shape_states[k],
			    strcmp(sh[i].state, md_shape_states[k]) == 0);
		}
		if (known)
			continue;
		vbuf_addf(out, "petrel_shaping_state{destination=\"");
		md_label_value(out, sh[i].key);
		vbuf_adds(out, "\",state=\"");
		md_label_value(out, sh[i].state);
		vbuf_adds(out, "\"} 1\n");
	}
	free(sh);
}

/* The whole exposition, in the text format (version 0.0.4). */
static void
md_render(struct vbuf *out)
{
	struct metrics_view *v[MD_NFILES];
	size_t i;

	for (i = 0; i < MD_NFILES; i++)
		v[i] = metrics_view_open(md_cfg->queue_directory, md_files[i]);
	md_family(out, v, METRICS_F_ACCEPTED, "petrel_messages_accepted_total",
	    "credential", "Messages accepted, by credential (\"none\": "
	    "unauthenticated, e.g. bounce's reports).");
	md_counter(out, v, METRICS_ACCEPTED_RCPTS,
	    "petrel_recipients_accepted_total",
	    "Recipients of the messages accepted.");
	md_counter(out, v, METRICS_ACCEPTED_BYTES,
	    "petrel_accepted_bytes_total", "Bytes of the messages accepted.");
	md_counter(out, v, METRICS_DELIVERED,
	    "petrel_recipients_delivered_total", "Recipients delivered.");
	md_family(out, v, METRICS_F_DEFERRED,
	    "petrel_recipients_deferred_total", "class",
	    "Delivery attempts deferred, by failure class.");
	md_family(out, v, METRICS_F_BOUNCED,
	    "petrel_recipients_bounced_total", "class",
	    "Recipients failed permanently, by failure class.");
	md_counter(out, v, METRICS_EXPIRED, "petrel_recipients_expired_total",
	    "Recipients failed at queue.max_lifetime.");
	md_counter(out, v, METRICS_SUPPRESSED,
	    "petrel_recipients_suppressed_total",
	    "Recipients failed without an attempt: on the suppression list.");
	md_counter(out, v, METRICS_DELETED, "petrel_recipients_deleted_total",
	    "Recipients deleted by an administrator (relayq -d).");
	md_credentials(out, v);
	md_head(out, "petrel_delivered_dkim_total", "counter",
	    "Recipients delivered, by whether the message was DKIM-signed.");
	vbuf_addf(out, "petrel_delivered_dkim_total{dkim=\"signed\"} %llu\n",
	    (unsigned long long)md_sum(v, METRICS_DKIM_SIGNED));
	vbuf_addf(out, "petrel_delivered_dkim_total{dkim=\"unsigned\"} %llu\n",
	    (unsigned long long)md_sum(v, METRICS_DKIM_UNSIGNED));
	md_latency(out, v);
	md_attempts(out, v);
	md_head(out, "petrel_dkim_signatures_total", "counter",
	    "DKIM signing by smtp, once per delivery attempt, by result.");
	vbuf_addf(out, "petrel_dkim_signatures_total{result=\"signed\"} "
	    "%llu\n", (unsigned long long)md_sum(v, METRICS_DKIM_SIGN_OK));
	vbuf_addf(out, "petrel_dkim_signatures_total{result=\"no_key\"} "
	    "%llu\n", (unsigned long long)md_sum(v, METRICS_DKIM_SIGN_NOKEY));
	vbuf_addf(out, "petrel_dkim_signatures_total{result=\"error\"} "
	    "%llu\n", (unsigned long long)md_sum(v, METRICS_DKIM_SIGN_ERROR));
	md_head(out, "petrel_webhook_deliveries_total", "counter",
	    "Webhook requests webhookd made, by outcome.");
	vbuf_addf(out, "petrel_webhook_deliveries_total{result=\"sent\"} "
	    "%llu\n", (unsigned long long)md_sum(v, METRICS_WH_SENT));
	vbuf_addf(out, "petrel_webhook_deliveries_total{result=\"failed\"} "
	    "%llu\n", (unsigned long long)md_sum(v, METRICS_WH_FAILED));
	vbuf_addf(out, "petrel_webhook_deliveries_total{result=\"dead\"} "
	    "%llu\n", (unsigned long long)md_sum(v, METRICS_WH_DEAD));
	md_counter(out, v, METRICS_SESSIONS, "petrel_smtpd_sessions_total",
	    "SMTP sessions smtpd served.");
	md_head(out, "petrel_smtpd_tls_total", "counter",
	    "TLS handshakes smtpd completed, by protocol version.");
	vbuf_addf(out, "petrel_smtpd_tls_total{version=\"TLSv1.2\"} %llu\n",
	    (unsigned long long)md_sum(v, METRICS_TLS_12));
	vbuf_addf(out, "petrel_smtpd_tls_total{version=\"TLSv1.3\"} %llu\n",
	    (unsigned long long)md_sum(v, METRICS_TLS_13));
	vbuf_addf(out, "petrel_smtpd_tls_total{version=\"other\"} %llu\n",
	    (unsigned long long)md_sum(v, METRICS_TLS_OTHER));
	md_counter(out, v, METRICS_AUTH_FAILURES,
	    "petrel_smtpd_auth_failures_total", "Failed AUTH attempts.");
	md_counter(out, v, METRICS_AUTH_BLOCKED,
	    "petrel_smtpd_auth_blocked_total",
	    "AUTH attempts refused because the client or user was blocked.");
	for (i = 0; i < MD_NFILES; i++)
		metrics_view_close(v[i]);
	md_queue_render(out);
	md_webhook_render(out);
	md_shaping_render(out);
}

static enum MHD_Result
md_answer(void *cls, struct MHD_Connection *c, const char *url,
    const char *method, const char *version, const char *upload,
    size_t *upload_len, void **state)
{
	struct MHD_Response *r;
	struct vbuf *out;
	unsigned status = MHD_HTTP_OK;
	enum MHD_Result ret;

	(void)cls;
	(void)version;
	(void)upload;
	(void)upload_len;
	(void)state;
	out = vbuf_create(0);
	if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0) {
		status = MHD_HTTP_METHOD_NOT_ALLOWED;
		vbuf_adds(out, "method not allowed\n");
	} else if (strcmp(url, "/metrics") != 0) {
		status = MHD_HTTP_NOT_FOUND;
		vbuf_adds(out, "not found: try /metrics\n");
	} else
		md_render(out);
	r = MHD_create_response_from_buffer(out->len, out->data,
	    MHD_RESPMEM_MUST_COPY);
	vbuf_free(out);
	if (r == NULL)
		return MHD_NO;
	(void)MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE,
	    status == MHD_HTTP_OK ? "text/plain; version=0.0.4; charset=utf-8" :
	    "text/plain");
	if (status == MHD_HTTP_METHOD_NOT_ALLOWED)
		(void)MHD_add_response_header(r, MHD_HTTP_HEADER_ALLOW,
		    "GET, HEAD");
	ret = MHD_queue_response(c, status, r);
	MHD_destroy_response(r);
	return ret;
}

static void
md_on_fd(int fd, int events, void *arg)
{
	(void)fd;
	(void)events;
	(void)arg;
	(void)MHD_run(md_httpd);
}

/* metrics.listen, checked by cfg.c: IPv4:port or [IPv6]:port. */
static int
md_addr(const char *s, struct sockaddr_storage *ss)
{
	struct sockaddr_in *sin = (struct sockaddr_in *)ss;
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)ss;
	char host[64];
	const char *colon = strrchr(s, ':');
	size_t n;
	int port;

	memset(ss, 0, sizeof(*ss));
	if (colon == NULL || (port = atoi(colon + 1)) <= 0 || port > 65535)
		return -1;
	n = (size_t)(colon - s);
	if (s[0] == '[' && n >= 2) {
		s++;
		n -= 2;
	}
	if (n >= sizeof(host))
		return -1;
	memcpy(host, s, n);
	host[n] = '\0';
	if (inet_pton(AF_INET, host, &sin->sin_addr) == 1) {
		sin->sin_family = AF_INET;
		sin->sin_port = htons((uint16_t)port);
		return 0;
	}
	if (inet_pton(AF_INET6, host, &sin6->sin6_addr) == 1) {
		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons((uint16_t)port);
		return 0;
	}
	return -1;
}

static void
metricsd_init(const struct cfg *cfg)
{
	const union MHD_DaemonInfo *info;
	struct sockaddr_storage ss;
	unsigned flags = MHD_USE_EPOLL;

	md_cfg = cfg;
	if (cfg->metrics_listen == NULL)
		log_fatal("metrics.listen is not set");
	if (md_addr(cfg->metrics_listen, &ss) == -1)
		log_fatal("metrics.listen: bad address %s", cfg->metrics_listen);
	if (ss.ss_family == AF_INET6)
		flags |= MHD_USE_IPv6;
	md_httpd = MHD_start_daemon(flags, 0, NULL, NULL, md_answer, NULL,
	    MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&ss,
	    MHD_OPTION_CONNECTION_LIMIT, (unsigned)MD_MAX_CONNECTIONS,
	    MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)MD_TIMEOUT_S,
	    MHD_OPTION_END);
	if (md_httpd == NULL)
		log_fatal("cannot listen on %s (in use, or a port below 1024?)",
		    cfg->metrics_listen);
	if ((info = MHD_get_daemon_info(md_httpd,
	    MHD_DAEMON_INFO_EPOLL_FD)) == NULL)
		log_fatal("libmicrohttpd: no epoll descriptor");
	ev_fd_set(info->epoll_fd, EV_READ, md_on_fd, NULL);
	log_info("serving metrics on http://%s/metrics", cfg->metrics_listen);
}

/* MHD's own timers (connection timeouts): ms until it wants a call. */
static int64_t
metricsd_loop(void)
{
	MHD_UNSIGNED_LONG_LONG ms;

	(void)MHD_run(md_httpd);
	if (MHD_get_timeout(md_httpd, &ms) == MHD_YES)
		return ms > 60000 ? 60000 : (int64_t)ms;
	return -1;
}

int
main(int argc, char *argv[])
{
	static const struct daemon_spec spec = {
		.name = "metricsd",
		.solitary = 1,			/* one listener per queue */
		.init = metricsd_init,
		.loop = metricsd_loop,
	};

	daemon_main(argc, argv, &spec);
	/* NOTREACHED */
}
