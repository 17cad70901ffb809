/*
 * relayctl_status.c - "relayctl status": one screen (or one JSON object
 * with -j) that says whether everything is fine (relayctl(8), STATUS).
 *
 * It reads, never writes: master's status file (lib/mstatus) for the
 * daemons, the configuration for the listeners, each tls.certificate for
 * its expiry (read before the switch to mail_owner, as a root-only file
 * may be), then as mail_owner the queue (lib/qstore), the delivery log
 * (lib/evlog) or else the tail of the accounting log, the suppression
 * list (lib/suppress), webhookd's store (lib/whstore), and statvfs(2) of
 * the queue filesystem. What needs attention is listed in words; the
 * exit status says whether there was any (RELAYCTL_STATUS_* below).
 */
#include <sys/types.h>
#include <sys/statvfs.h>

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include <openssl/asn1.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "cfg.h"
#include "evlog.h"
#include "json.h"
#include "mstatus.h"
#include "outbox.h"
#include "privsep.h"
#include "qstore.h"
#include "relayctl.h"
#include "suppress.h"
#include "vbuf.h"
#include "whstore.h"
#include "xalloc.h"

/* Thresholds of the attention list (relayctl(8)). */
#define ST_CERT_WARN_DAYS	14
#define ST_MAP_WARN_PCT		75
#define ST_DISK_WARN_PCT	90
#define ST_LOOP_FAILS		3	/* as master's "keeps failing" */
#define ST_WINDOW_SHORT		(5 * 60)
#define ST_WINDOW_LONG		(60 * 60)
#define ST_TOP_MAX		5	/* top deferring destinations */
#define ST_DEST_MAX		1024	/* destinations counted */
/*
 * XXX: without a delivery log, only the last this many bytes of the
 * accounting log are read; a busier hour is undercounted (said in the
 * output as "partial").
 */
#define ST_ACCT_TAIL		(32 * 1024 * 1024)
#define ST_ATTENTION_MAX	64

struct st_cert {
	const char	*path;
	int64_t		 not_after;	/* epoch s; 0 unreadable */
	char		 error[256];
};

struct st_window {
	uint64_t	 delivered, deferred, bounced;
};

struct st_dest {
	char		 name[256];
	uint64_t	 count;
};

struct st {
	const struct cfg	*cfg;
	int64_t			 now;
	/* master */
	int			 master_running;
	int			 master_unknown;	/* unreadable file */
	struct mstatus		 ms;
	int			 have_ms;
	/* certificates */
	struct st_cert		*certs;
	size_t			 ncerts;
	/* queue */
	int			 queue_ok;
	uint64_t		 messages;
	uint64_t		 rcpt[4];	/* by enum qstore_rcpt_state */
	int			 map_pct;
	/* activity */
	const char		*source;	/* evlog, accounting, none */
	const char		*source_path;
	int			 partial;
	struct st_window	 w5, w60;
	struct st_dest		*dests;
	size_t			 ndests;
	/* suppression list, webhooks */
	int64_t			 suppressed;	/* -1 unknown */
	int64_t			 wh_pending, wh_dead;	/* -1 no store */
	/* disk */
	int			 disk_ok;
	uint64_t		 disk_size, disk_free;
	int			 disk_pct;
	/* attention */
	char			*attention[ST_ATTENTION_MAX];
	size_t			 nattention;
};

static void	status_usage(FILE *, int) __attribute__((noreturn));
static void	st_attention(struct st *, const char *, ...)
		    __attribute__((format(printf, 2, 3)));
static void	st_master(struct st *);
static void	st_certs(struct st *);
static void	st_queue(struct st *);
static int	st_msg_cb(const struct qstore_msginfo *, void *);
static int	st_rcpt_cb(const struct qstore_rcpt *, void *);
static void	st_activity(struct st *);
static void	st_count(struct st *, const char *, int64_t, const char *);
static int	st_evlog_cb(const struct outbox_event *,
		    const struct evlog_webhook *, size_t, void *);
static void	st_acct_cb(const char *, int64_t, const char *, void *);
static int	st_dest_cmp(const void *, const void *);
static void	st_suppress(struct st *);
static int	st_supp_cb(const struct suppress_entry *, void *);
static void	st_webhooks(struct st *);
static int	st_wh_cb(uint64_t, const char *, const struct whstore_dlv *,
		    void *);
static void	st_disk(struct st *);
static void	st_judge(struct st *);
static void	st_print(const struct st *);
static void	st_json(const struct st *);
static void	st_duration(int64_t, char *, size_t);
static void	st_date(int64_t, char *, size_t);

static void
status_usage(FILE *fp, int code)
{
	fprintf(fp,
	    "usage: relayctl [-c FILE] [-j] status [-j]\n"
	    "Shows master and each daemon (pid, uptime, restarts), the "
	    "listeners and\n"
	    "certificate expiry, queue depth, recent deliveries and "
	    "deferrals, the\n"
	    "suppression list, the webhook backlog, disk and queue map use, "
	    "and what\n"
	    "needs attention. Exit status: 0 all is fine, 1 something needs "
	    "attention,\n"
	    "2 usage, 3 master is not running.\n");
	exit(code);
}

static void
st_attention(struct st *st, const char *fmt, ...)
{
	va_list ap;
	char buf[512];

	if (st->nattention >= ST_ATTENTION_MAX)
		return;
	va_start(ap, fmt);
	(void)vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	st->attention[st->nattention++] = xstrdup(buf);
}

static void
st_duration(int64_t s, char *buf, size_t size)
{
	if (s < 0)
		s = 0;
	if (s >= 86400)
		snprintf(buf, size, "%lldd %lldh", (long long)(s / 86400),
		    (long long)(s % 86400 / 3600));
	else if (s >= 3600)
		snprintf(buf, size, "%lldh %lldm", (long long)(s / 3600),
		    (long long)(s % 3600 / 60));
	else if (s >= 60)
		snprintf(buf, size, "%lldm %llds", (long long)(s / 60),
		    (long long)(s % 60));
	else
		snprintf(buf, size, "%llds", (long long)s);
}

static void
st_date(int64_t t, char *buf, size_t size)
{
	time_t tt = (time_t)t;
	struct tm tm;

	if (gmtime_r(&tt, &tm) == NULL ||
	    strftime(buf, size, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
		snprintf(buf, size, "%lld", (long long)t);
}

/* master's status file, and whether the master it names is alive. */
static void
st_master(struct st *st)
{
	struct vbuf why;
	int rc;

	vbuf_init(&why, 0);
	rc = mstatus_read(st->cfg->queue_directory, &st->ms, &why);
	if (rc == -1) {
		/* Not "not running": we cannot tell (run as root?). */
		st_attention(st, "cannot read master's status file: %s",
		    why.data);
		st->master_unknown = 1;
	}
	st->have_ms = rc == 1;
	st->master_running = st->have_ms &&
	    mstatus_master_alive(st->ms.master_pid);
	vbuf_release(&why);
}

/* Each tls.certificate's notAfter; read while still root. */
static void
st_certs(struct st *st)
{
	const struct cfg_paths *p = &st->cfg->tls_certificates;
	struct tm tm;
	X509 *x;
	FILE *f;

	st->certs = xcalloc(p->n > 0 ? p->n : 1, sizeof(*st->certs));
	for (size_t i = 0; i < p->n; i++) {
		struct st_cert *c = &st->certs[st->ncerts++];

		c->path = p->path[i];
		if ((f = fopen(c->path, "re")) == NULL) {
			snprintf(c->error, sizeof(c->error), "%s",
			    strerror(errno));
			continue;
		}
		x = PEM_read_X509(f, NULL, NULL, NULL);
		(void)fclose(f);
		memset(&tm, 0, sizeof(tm));
		if (x == NULL || ASN1_TIME_to_tm(X509_get0_notAfter(x),
		    &tm) != 1)
			snprintf(c->error, sizeof(c->error),
			    "not a PEM certificate");
		else
			c->not_after = (int64_t)timegm(&tm);
		X509_free(x);
	}
}

static int
st_rcpt_cb(const struct qstore_rcpt *r, void *arg)
{
	struct st *st = arg;

	if ((unsigned)r->state < 4)
		st->rcpt[r->state]++;
	return 0;
}

/* Per message: its recipients, in the same read transaction. */
struct st_walk {
	struct st		*st;
	struct qstore_txn	*txn;
};

static int
st_msg_cb(const struct qstore_msginfo *m, void *arg)
{
	struct st_walk *w = arg;

	w->st->messages++;
	(void)qstore_rcpt_iter(w->txn, m->qid, st_rcpt_cb, w->st);
	return 0;
}

/* Queue depth by recipient state, and the queue map's use. */
static void
st_queue(struct st *st)
{
	struct qstore *qs;
	struct st_walk w;
	struct vbuf why;

	vbuf_init(&why, 0);
	if ((qs = qstore_open(st->cfg, &why)) == NULL ||
	    (w.txn = qstore_txn_begin(qs, 0, &why)) == NULL) {
		st_attention(st, "cannot read the queue: %s", why.data);
		qstore_close(qs);
		vbuf_release(&why);
		return;
	}
	w.st = st;
	if (qstore_msg_iter(w.txn, st_msg_cb, &w) == -1)
		st_attention(st, "cannot read the queue: a read error");
	else
		st->queue_ok = 1;
	st->map_pct = qstore_txn_used_pct(w.txn, 0);
	qstore_txn_abort(w.txn);
	qstore_close(qs);
	vbuf_release(&why);
}

/* One event of kind name at time t (epoch ms) for recipient rcpt. */
static void
st_count(struct st *st, const char *kind, int64_t t_ms, const char *rcpt)
{
	int64_t age = st->now - t_ms / 1000;
	const char *dom;
	size_t i;
	int which;

	if (age < 0)
		age = 0;
	if (age > ST_WINDOW_LONG)
		return;
	if (strcmp(kind, "delivered") == 0)
		which = 0;
	else if (strcmp(kind, "deferred") == 0)
		which = 1;
	else if (strcmp(kind, "bounced") == 0 || strcmp(kind, "expired") == 0)
		which = 2;
	else
		return;
	if (which == 0) {
		st->w60.delivered++;
		st->w5.delivered += age <= ST_WINDOW_SHORT;
	} else if (which == 2) {
		st->w60.bounced++;
		st->w5.bounced += age <= ST_WINDOW_SHORT;
	} else {
		st->w60.deferred++;
		st->w5.deferred += age <= ST_WINDOW_SHORT;
		/* The destination: the recipient's domain. */
		if (rcpt == NULL || (dom = strrchr(rcpt, '@')) == NULL ||
		    dom[1] == '\0')
			dom = "(unknown)";
		else
			dom++;
		for (i = 0; i < st->ndests; i++)
			if (strcasecmp(st->dests[i].name, dom) == 0)
				break;
		if (i == st->ndests) {
			if (st->ndests >= ST_DEST_MAX)
				return;
			st->ndests++;
			snprintf(st->dests[i].name, sizeof(st->dests[i].name),
			    "%s", dom);
		}
		st->dests[i].count++;
	}
}

static int
st_evlog_cb(const struct outbox_event *ev, const struct evlog_webhook *whs,
    size_t nwh, void *arg)
{
	const char *name = outbox_kind_name(ev->kind);

	(void)whs;
	(void)nwh;
	if (name != NULL)
		st_count(arg, name, ev->time_ms, ev->recipient);
	return 0;
}

/* An accounting log line, from relayctl_acct_tail. */
static void
st_acct_cb(const char *event, int64_t time_s, const char *rcpt, void *arg)
{
	st_count(arg, event, time_s * 1000, rcpt);
}

static int
st_dest_cmp(const void *a, const void *b)
{
	const struct st_dest *x = a, *y = b;

	if (x->count != y->count)
		return x->count < y->count ? 1 : -1;
	return strcmp(x->name, y->name);
}

/*
 * Deliveries and deferrals of the last hour: from the delivery log that
 * webhookd keeps when there is one, else from the accounting log.
 */
static void
st_activity(struct st *st)
{
	struct evlog_query q;
	struct evlog *l;
	struct vbuf why;

	st->dests = xcalloc(ST_DEST_MAX, sizeof(*st->dests));
	st->source = "none";
	vbuf_init(&why, 0);
	if ((l = evlog_open(st->cfg, 0, &why)) != NULL) {
		memset(&q, 0, sizeof(q));
		q.since_ms = (st->now - ST_WINDOW_LONG) * 1000;
		q.limit = EVLOG_NO_LIMIT;
		if (evlog_search(l, &q, st_evlog_cb, st, &why) < 0)
			st_attention(st, "cannot read the delivery log: %s",
			    why.data);
		else {
			st->source = "evlog";
			st->source_path = "delivery log (webhookd)";
		}
		evlog_close(l);
	} else if (st->cfg->log_accounting != NULL) {
		if (relayctl_acct_tail(st->cfg->log_accounting, ST_ACCT_TAIL,
		    st_acct_cb, st, &st->partial) == -1)
			st_attention(st, "cannot read the accounting log %s: "
			    "%s", st->cfg->log_accounting, strerror(errno));
		else {
			st->source = "accounting";
			st->source_path = st->cfg->log_accounting;
		}
	}
	qsort(st->dests, st->ndests, sizeof(*st->dests), st_dest_cmp);
	vbuf_release(&why);
}

static int
st_supp_cb(const struct suppress_entry *e, void *arg)
{
	(void)e;
	(*(int64_t *)arg)++;
	return 0;
}

static void
st_suppress(struct st *st)
{
	struct suppress *s;
	struct vbuf why;

	vbuf_init(&why, 0);
	st->suppressed = -1;
	if ((s = suppress_open(st->cfg, 0, &why)) == NULL) {
		st_attention(st, "cannot read the suppression list: %s",
		    why.data);
		vbuf_release(&why);
		return;
	}
	st->suppressed = 0;
	/* A list not created yet reads as empty (0). */
	if (suppress_iter(s, st->now, st_supp_cb, &st->suppressed, &why) ==
	    -1) {
		st_attention(st, "cannot read the suppression list: %s",
		    why.data);
		st->suppressed = -1;
	}
	suppress_close(s);
	vbuf_release(&why);
}

static int
st_wh_cb(uint64_t seq, const char *key, const struct whstore_dlv *d,
    void *arg)
{
	struct st *st = arg;

	(void)seq;
	(void)key;
	if (d->state == WHSTORE_PENDING)
		st->wh_pending++;
	else if (d->state == WHSTORE_DEAD)
		st->wh_dead++;
	return 0;
}

/* Webhook deliveries waiting (pending) and given up (dead). */
static void
st_webhooks(struct st *st)
{
	struct whstore ws;
	struct vbuf why;
	MDB_txn *txn;
	int rc;

	st->wh_pending = st->wh_dead = -1;
	vbuf_init(&why, 0);
	if (whstore_open(&ws, st->cfg, 0, &why) == -1) {
		st_attention(st, "cannot read the webhook store: %s",
		    why.data);
		vbuf_release(&why);
		return;
	}
	rc = mdbdir_begin(&ws.md, MDB_RDONLY, &txn, &why);
	if (rc == -1)
		st_attention(st, "cannot read the webhook store: %s",
		    why.data);
	else if (rc == 1) {
		st->wh_pending = st->wh_dead = 0;
		(void)whstore_dlv_iter(&ws, txn, 0, 0, st_wh_cb, st);
		mdb_txn_abort(txn);
	}
	whstore_close(&ws);
	vbuf_release(&why);
}

static void
st_disk(struct st *st)
{
	struct statvfs sv;

	if (statvfs(st->cfg->queue_directory, &sv) == -1) {
		st_attention(st, "statvfs %s: %s", st->cfg->queue_directory,
		    strerror(errno));
		return;
	}
	st->disk_ok = 1;
	st->disk_size = (uint64_t)sv.f_blocks * sv.f_frsize;
	st->disk_free = (uint64_t)sv.f_bavail * sv.f_frsize;
	/* As df(1): used over what an unprivileged user could have. */
	if (sv.f_blocks - sv.f_bfree + sv.f_bavail > 0)
		st->disk_pct = (int)(((uint64_t)(sv.f_blocks - sv.f_bfree) *
		    100 + (sv.f_blocks - sv.f_bfree + sv.f_bavail) - 1) /
		    (sv.f_blocks - sv.f_bfree + sv.f_bavail));
}

/* The attention list, from what was gathered. */
static void
st_judge(struct st *st)
{
	char d[64];

	if (!st->master_running && !st->master_unknown)
		st_attention(st, st->have_ms ? "master is not running (it "
		    "stopped without removing its status file: killed?)" :
		    "master is not running");
	for (size_t i = 0; st->master_running && i < st->ms.nprocs; i++) {
		const struct mstatus_proc *p = &st->ms.procs[i];

		if (p->fails >= ST_LOOP_FAILS)
			st_attention(st, "%s is restarting in a loop (failed "
			    "%" PRIu64 " times in a row); see the log",
			    p->prog, p->fails);
		else if (p->pid == 0)
			st_attention(st, "%s is not running (restarting)",
			    p->prog);
	}
	for (size_t i = 0; i < st->ncerts; i++) {
		const struct st_cert *c = &st->certs[i];
		int64_t left = c->not_after - st->now;

		if (c->not_after == 0) {
			st_attention(st, "certificate %s: %s", c->path,
			    c->error);
			continue;
		}
		st_date(c->not_after, d, sizeof(d));
		if (left <= 0)
			st_attention(st, "certificate %s expired on %s",
			    c->path, d);
		else if (left < ST_CERT_WARN_DAYS * 86400)
			st_attention(st, "certificate %s expires in %lld "
			    "day(s), on %s", c->path, (long long)(left /
			    86400), d);
	}
	if (st->queue_ok && st->map_pct > ST_MAP_WARN_PCT)
		st_attention(st, "the queue map is %d%% full (queue.map_size)",
		    st->map_pct);
	if (st->disk_ok && st->disk_pct >= ST_DISK_WARN_PCT)
		st_attention(st, "the queue filesystem is %d%% full",
		    st->disk_pct);
}

static void
st_print(const struct st *st)
{
	char a[64], b[64];
	static const char *tls_names[] = { "none", "starttls", "implicit" };

	if (st->master_running) {
		st_duration(st->now - st->ms.master_started, a, sizeof(a));
		printf("master: running, pid %" PRId64 ", up %s\n",
		    st->ms.master_pid, a);
		for (size_t i = 0; i < st->ms.nprocs; i++) {
			const struct mstatus_proc *p = &st->ms.procs[i];

			if (p->pid != 0) {
				st_duration(st->now - p->started, a,
				    sizeof(a));
				printf("  %-9s pid %-7" PRId64 " up %-9s "
				    "restarts %" PRIu64 "%s\n", p->prog, p->pid,
				    a, p->restarts, p->ready ? "" :
				    ", starting");
			} else {
				st_duration(p->next_start - st->now, a,
				    sizeof(a));
				printf("  %-9s not running, next start in %s,"
				    " restarts %" PRIu64 ", failed %" PRIu64
				    " in a row\n", p->prog, a, p->restarts,
				    p->fails);
			}
		}
	} else if (st->master_unknown)
		printf("master: unknown (its status file cannot be read)\n");
	else
		printf("master: not running\n");
	printf("listeners:\n");
	for (size_t i = 0; i < st->cfg->nlisteners; i++) {
		const struct cfg_listener *l = &st->cfg->listeners[i];

		printf("  %-12s %s %s\n", l->name, l->address,
		    (unsigned)l->tls < 3 ? tls_names[l->tls] : "?");
	}
	for (size_t i = 0; i < st->ncerts; i++) {
		const struct st_cert *c = &st->certs[i];

		if (c->not_after == 0) {
			printf("certificate: %s: %s\n", c->path, c->error);
			continue;
		}
		st_date(c->not_after, a, sizeof(a));
		printf("certificate: %s expires %s (in %lld day(s))\n",
		    c->path, a, (long long)((c->not_after - st->now) /
		    86400));
	}
	if (st->queue_ok)
		printf("queue: %" PRIu64 " message(s); recipients: %" PRIu64
		    " active, %" PRIu64 " deferred, %" PRIu64 " failed "
		    "(report owed)\n", st->messages, st->rcpt[QSTORE_PENDING],
		    st->rcpt[QSTORE_DEFERRED], st->rcpt[QSTORE_FAILED]);
	printf("activity (from %s%s%s):\n", strcmp(st->source, "none") == 0 ?
	    "nothing: no delivery log or accounting log" : st->source,
	    st->source_path != NULL ? ", " : "",
	    st->source_path != NULL ? st->source_path : "");
	printf("  last 5 min: %" PRIu64 " delivered, %" PRIu64 " deferred, %"
	    PRIu64 " bounced\n", st->w5.delivered, st->w5.deferred,
	    st->w5.bounced);
	printf("  last hour:  %" PRIu64 " delivered, %" PRIu64 " deferred, %"
	    PRIu64 " bounced%s\n", st->w60.delivered, st->w60.deferred,
	    st->w60.bounced, st->partial ? " (partial: log tail only)" : "");
	if (st->ndests > 0) {
		printf("  top deferring destinations (last hour):");
		for (size_t i = 0; i < st->ndests && i < ST_TOP_MAX; i++)
			printf("%s %s (%" PRIu64 ")", i > 0 ? "," : "",
			    st->dests[i].name, st->dests[i].count);
		printf("\n");
	}
	if (st->suppressed >= 0)
		printf("suppression list: %" PRId64 " address(es)\n",
		    st->suppressed);
	if (st->wh_pending >= 0)
		printf("webhooks: %" PRId64 " pending, %" PRId64 " dead\n",
		    st->wh_pending, st->wh_dead);
	else
		printf("webhooks: no store (webhookd has not run)\n");
	if (st->disk_ok) {
		snprintf(a, sizeof(a), "%.1f GiB", (double)st->disk_free /
		    (1024.0 * 1024 * 1024));
		snprintf(b, sizeof(b), "%.1f GiB", (double)st->disk_size /
		    (1024.0 * 1024 * 1024));
		printf("disk: %s %d%% used, %s free of %s\n",
		    st->cfg->queue_directory, st->disk_pct, a, b);
	}
	if (st->queue_ok)
		printf("queue map: %d%% used of %" PRIu64 " MiB\n",
		    st->map_pct, st->cfg->queue_map_size / (1024 * 1024));
	if (st->nattention == 0)
		printf("status: all is fine\n");
	else {
		printf("attention:\n");
		for (size_t i = 0; i < st->nattention; i++)
			printf("  - %s\n", st->attention[i]);
	}
}

static void
st_json(const struct st *st)
{
	static const char *tls_names[] = { "none", "starttls", "implicit" };
	struct vbuf out;
	struct json j;

	vbuf_init(&out, 0);
	json_init(&j, &out);
	json_object_begin(&j);
	json_key(&j, "ok");
	json_bool(&j, st->nattention == 0);
	json_key(&j, "master");
	json_object_begin(&j);
	json_key(&j, "running");
	json_bool(&j, st->master_running);
	json_kv_str(&j, "state", st->master_running ? "running" :
	    st->master_unknown ? "unknown" : "stopped");
	if (st->master_running) {
		json_kv_int(&j, "pid", st->ms.master_pid);
		json_kv_int(&j, "started", st->ms.master_started);
		json_kv_int(&j, "uptime", st->now - st->ms.master_started);
	}
	json_object_end(&j);
	json_key(&j, "daemons");
	json_array_begin(&j);
	for (size_t i = 0; st->master_running && i < st->ms.nprocs; i++) {
		const struct mstatus_proc *p = &st->ms.procs[i];

		json_object_begin(&j);
		json_kv_str(&j, "name", p->prog);
		json_kv_int(&j, "pid", p->pid);
		json_key(&j, "ready");
		json_bool(&j, p->ready);
		if (p->pid != 0) {
			json_kv_int(&j, "started", p->started);
			json_kv_int(&j, "uptime", st->now - p->started);
		} else
			json_kv_int(&j, "next_start", p->next_start);
		json_kv_int(&j, "restarts", (int64_t)p->restarts);
		json_kv_int(&j, "fails", (int64_t)p->fails);
		json_object_end(&j);
	}
	json_array_end(&j);
	json_key(&j, "listeners");
	json_array_begin(&j);
	for (size_t i = 0; i < st->cfg->nlisteners; i++) {
		const struct cfg_listener *l = &st->cfg->listeners[i];

		json_object_begin(&j);
		json_kv_str(&j, "name", l->name);
		json_kv_str(&j, "address", l->address);
		json_kv_str(&j, "tls", (unsigned)l->tls < 3 ?
		    tls_names[l->tls] : "?");
		json_object_end(&j);
	}
	json_array_end(&j);
	json_key(&j, "certificates");
	json_array_begin(&j);
	for (size_t i = 0; i < st->ncerts; i++) {
		const struct st_cert *c = &st->certs[i];
		char d[64];

		json_object_begin(&j);
		json_kv_str(&j, "path", c->path);
		if (c->not_after != 0) {
			st_date(c->not_after, d, sizeof(d));
			json_kv_int(&j, "not_after", c->not_after);
			json_kv_str(&j, "expires", d);
			json_kv_int(&j, "days_left", (c->not_after - st->now) /
			    86400);
		} else
			json_kv_str(&j, "error", c->error);
		json_object_end(&j);
	}
	json_array_end(&j);
	json_key(&j, "queue");
	if (st->queue_ok) {
		json_object_begin(&j);
		json_kv_int(&j, "messages", (int64_t)st->messages);
		json_kv_int(&j, "active", (int64_t)st->rcpt[QSTORE_PENDING]);
		json_kv_int(&j, "deferred",
		    (int64_t)st->rcpt[QSTORE_DEFERRED]);
		json_kv_int(&j, "failed", (int64_t)st->rcpt[QSTORE_FAILED]);
		json_kv_int(&j, "map_used_pct", st->map_pct);
		json_kv_int(&j, "map_size", (int64_t)st->cfg->queue_map_size);
		json_object_end(&j);
	} else
		json_null(&j);
	json_key(&j, "activity");
	json_object_begin(&j);
	json_kv_str(&j, "source", st->source);
	json_key(&j, "partial");
	json_bool(&j, st->partial);
	for (int w = 0; w < 2; w++) {
		const struct st_window *win = w == 0 ? &st->w5 : &st->w60;

		json_key(&j, w == 0 ? "last_5m" : "last_1h");
		json_object_begin(&j);
		json_kv_int(&j, "delivered", (int64_t)win->delivered);
		json_kv_int(&j, "deferred", (int64_t)win->deferred);
		json_kv_int(&j, "bounced", (int64_t)win->bounced);
		json_object_end(&j);
	}
	json_key(&j, "top_deferred");
	json_array_begin(&j);
	for (size_t i = 0; i < st->ndests && i < ST_TOP_MAX; i++) {
		json_object_begin(&j);
		json_kv_str(&j, "destination", st->dests[i].name);
		json_kv_int(&j, "count", (int64_t)st->dests[i].count);
		json_object_end(&j);
	}
	json_array_end(&j);
	json_object_end(&j);
	json_key(&j, "suppressed");
	if (st->suppressed >= 0)
		json_int(&j, st->suppressed);
	else
		json_null(&j);
	json_key(&j, "webhooks");
	if (st->wh_pending >= 0) {
		json_object_begin(&j);
		json_kv_int(&j, "pending", st->wh_pending);
		json_kv_int(&j, "dead", st->wh_dead);
		json_object_end(&j);
	} else
		json_null(&j);
	json_key(&j, "disk");
	if (st->disk_ok) {
		json_object_begin(&j);
		json_kv_str(&j, "path", st->cfg->queue_directory);
		json_kv_int(&j, "size", (int64_t)st->disk_size);
		json_kv_int(&j, "free", (int64_t)st->disk_free);
		json_kv_int(&j, "used_pct", st->disk_pct);
		json_object_end(&j);
	} else
		json_null(&j);
	json_key(&j, "attention");
	json_array_begin(&j);
	for (size_t i = 0; i < st->nattention; i++)
		json_str(&j, st->attention[i]);
	json_array_end(&j);
	json_object_end(&j);
	printf("%s\n", out.data);
	vbuf_release(&out);
}

int
relayctl_status_main(int argc, char *argv[], const struct relayctl_opts *opts)
{
	struct st st;
	struct vbuf why;
	struct cfg *cfg;
	int json = opts->json, ret;

	for (int i = 0; i < argc; i++) {
		if (strcmp(argv[i], "--help") == 0 ||
		    strcmp(argv[i], "-h") == 0)
			status_usage(stdout, RELAYCTL_EXIT_OK);
		else if (strcmp(argv[i], "-j") == 0)
			json = 1;
		else {
			fprintf(stderr, "relayctl: status: unknown argument "
			    "%s\n", argv[i]);
			status_usage(stderr, RELAYCTL_EXIT_USAGE);
		}
	}
	vbuf_init(&why, 0);
	if ((cfg = cfg_load(opts->config, &why)) == NULL) {
		fprintf(stderr, "relayctl: %s\n", why.data);
		vbuf_release(&why);
		return RELAYCTL_EXIT_FAIL;
	}
	memset(&st, 0, sizeof(st));
	st.cfg = cfg;
	st.now = (int64_t)time(NULL);
	/* 1. What root may read: the certificates. */
	st_certs(&st);
	/* 2. The rest as mail_owner, as every other subcommand. */
	if (privsep_become_owner(cfg, &why) == -1) {
		fprintf(stderr, "relayctl: %s\n", why.data);
		vbuf_release(&why);
		free(st.certs);
		cfg_free(cfg);
		return RELAYCTL_EXIT_FAIL;
	}
	st_master(&st);
	st_queue(&st);
	st_activity(&st);
	st_suppress(&st);
	st_webhooks(&st);
	st_disk(&st);
	st_judge(&st);
	if (json)
		st_json(&st);
	else
		st_print(&st);
	if (!st.master_running && !st.master_unknown)
		ret = RELAYCTL_STATUS_DOWN;
	else
		ret = st.nattention == 0 ? RELAYCTL_EXIT_OK :
		    RELAYCTL_STATUS_ATTENTION;
	if (fflush(stdout) == EOF) {
		fprintf(stderr, "relayctl: stdout: %s\n", strerror(errno));
		ret = RELAYCTL_EXIT_FAIL;
	}
	for (size_t i = 0; i < st.nattention; i++)
		free(st.attention[i]);
	mstatus_release(&st.ms);
	free(st.certs);
	free(st.dests);
	vbuf_release(&why);
	cfg_free(cfg);
	return ret;
}
