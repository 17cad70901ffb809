/*
 * smtp_deliver.c - delivery requests from qmgr on private/smtp.
 *
 * Each smtp process accepts one connection at a time from the shared
 * listener and serves it synchronously: read a request (attr stream),
 * validate it, deliver, reply with one result per recipient, and go on
 * reading requests until qmgr closes the connection. A peer's bad request
 * gets status=1 and the connection is closed; the process never exits
 * because of it. After a successful transaction the SMTP session is kept
 * for SMTP_CACHE_IDLE_MS so the next request for the same next hop skips
 * connection setup and TLS. Every deferred and bounced recipient is
 * classified (lib/bclass, with the rules loaded at start): the class is
 * on its log line and in the reply. The protocol is documented in smtp(8).
 *
 * Smarthost failover: when qmgr's next hop is the first of a transport
 * entry's list, the hops are tried in order, and a hop where no session
 * could be set up (refused, timed out, 421) is remembered as down for
 * smtp.failover_retry: until then it is tried after the others, so mail
 * goes through the next hop at once; after it, the first delivery tries
 * it first again. Each smtp process keeps its own table (no shared
 * state to lock; each learns with one failed connection).
 */
#include <sys/socket.h>
#include <sys/types.h>

#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "attr.h"
#include "log.h"
#include "mailproto.h"
#include "metrics.h"
#include "parse.h"
#include "qid.h"
#include "qstore.h"
#include "smtp.h"
#include "xalloc.h"

static int	serve(int);
static int	wait_request(int, const struct vbuf *);
static int	parse_request(const struct attr_list *, struct smtp_req *,
		    struct vbuf *);
static int	parse_rcpt(void *, struct vbuf *);
static int	parse_avoid(const char *, struct smtp_avoid *, struct vbuf *);
static int	text_ok(const char *, size_t, int);
static void	deliver(struct smtp_req *);
static struct smtp_sess *session_open(struct smtp_req *,
		    const struct smtp_target *, size_t, const char *,
		    struct smtp_fail *);
static void	decide_all(struct smtp_req *, const struct smtp_fail *);
static void	source_refused(struct smtp_req *, const char *, const char *);
static int	reputation_refused(struct smtp_req *,
		    const struct smtp_sess *);
static void	classify(struct smtp_req *);
static void	build_reply(const struct smtp_req *, struct vbuf *);
static void	log_results(const struct smtp_req *, int64_t);
static const char *fmt_delay(char *, size_t, int64_t);
static const char *status_name(enum smtp_rcpt_status);
static void	cache_drop(void);
static struct hop_state *hop_find(const char *, int);
static int	hop_is_down(const char *);
static void	hop_up(const char *);
static void	hop_failed(const struct smtp_target *, size_t, size_t,
		    const struct smtp_fail *);
static void	name_mx(struct smtp_req *, const struct smtp_target *, size_t);
static int	resolve(const struct nexthop *, const struct cfg_transport *,
		    struct smtp_target *, size_t *, struct smtp_fail *);

/* Where attr_scan puts one recipient of a request. */
struct smtp_req_scan {
	struct smtp_req		*req;
	size_t			 max;		/* room in req->rcpts */
	uint64_t		 index;
	const char		*addr;
};

static const struct cfg *smtp_cfg;

/* Failover hops seen down; bounded, the oldest entry is reused. */
#define SMTP_HOPS_MAX	32
struct hop_state {
	char		 key[NEXTHOP_KEY_MAX + 1];	/* "" when free */
	int64_t		 until;		/* monotonic ms; 0: up */
};
static struct hop_state hops[SMTP_HOPS_MAX];
static struct smtp_sess *cache;		/* at most one idle session */
static struct bclass_rules *smtp_bclass;	/* NULL: codes only */

void
smtp_init(const struct cfg *cfg)
{
	struct vbuf why;

	smtp_cfg = cfg;
	vbuf_init(&why, 0);
	if ((smtp_bclass = bclass_load(cfg, &why)) == NULL)
		log_fatal("%s", why.data);
	if (why.len > 0)
		log_warn("bounce classification: %s", why.data);
	vbuf_release(&why);
	/* A server closing mid-write must not kill us; send() reports it. */
	(void)signal(SIGPIPE, SIG_IGN);
	smtp_tls_init(cfg);
	smtp_dkim_init(cfg);
}

static void
cache_drop(void)
{
	if (cache != NULL) {
		smtp_proto_quit(cache);
		cache = NULL;
	}
}

int64_t
smtp_loop(void)
{
	int64_t left;

	if (cache == NULL)
		return -1;
	left = cache->idle_since + SMTP_CACHE_IDLE_MS - smtp_now_ms();
	if (left <= 0 || daemon_stopping()) {
		cache_drop();
		return -1;
	}
	return left;
}

int
smtp_busy(void)
{
	/* Requests are served synchronously: nothing is in flight here. */
	cache_drop();
	return 0;
}

void
smtp_service(const struct daemon_listener *l)
{
	int fd;

	fd = accept4(l->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
	if (fd == -1) {
		/*
		 * Another process took it or the client gave up; or out of
		 * descriptors, and the listener rests a while rather than
		 * spin (lib/daemon).
		 */
		(void)daemon_accept_failed(l, "");
		return;
	}
	(void)serve(fd);
	close(fd);
}

/*
 * Waits up to SMTP_REQ_IDLE_MS for the next request, in slices of at most
 * a second so that SIGTERM is noticed, and closes the cached session when
 * its lifetime ends meanwhile. Returns 0 when there is input, -1 when the
 * connection was idle too long or we are stopping.
 */
static int
wait_request(int fd, const struct vbuf *inbuf)
{
	struct pollfd pfd;
	int64_t now, deadline, left;

	if (inbuf->len > 0)
		return 0;	/* qmgr pipelined the next request */
	deadline = smtp_now_ms() + SMTP_REQ_IDLE_MS;
	for (;;) {
		if (daemon_stopping())
			return -1;
		now = smtp_now_ms();
		if (cache != NULL &&
		    cache->idle_since + SMTP_CACHE_IDLE_MS <= now)
			cache_drop();
		if (now >= deadline)
			return -1;
		left = deadline - now;
		if (cache != NULL &&
		    cache->idle_since + SMTP_CACHE_IDLE_MS - now < left)
			left = cache->idle_since + SMTP_CACHE_IDLE_MS - now;
		if (left > 1000)
			left = 1000;
		pfd.fd = fd;
		pfd.events = POLLIN;
		pfd.revents = 0;
		if (poll(&pfd, 1, (int)left) > 0)
			return 0;
	}
}

/* Deliveries after which the process exits and master starts a new one. */
#define SMTP_MAX_USE	1000

static unsigned smtp_uses;

/* Serves one qmgr connection until EOF, an error or shutdown. */
static int
serve(int fd)
{
	struct vbuf inbuf, out, why;
	struct attr_list l;
	struct smtp_req req;
	size_t used;
	int rc = 0, bad;

	vbuf_init(&inbuf, SMTP_REQ_CAP);
	vbuf_init(&out, 0);
	vbuf_init(&why, 0);
	attr_list_init(&l);
	while (!daemon_stopping() && !daemon_draining()) {
		if (wait_request(fd, &inbuf) == -1)
			break;
		if (attr_read(fd, &inbuf, &l, &used,
		    (int)(smtp_cfg->smtp_command_timeout * 1000), &why) == -1) {
			if (inbuf.len != 0 || strcmp(why.data,
			    "unexpected end of stream") != 0)
				log_warn("request from qmgr: %s",
				    log_safe(why.data));
			rc = -1;
			break;
		}
		memset(&req, 0, sizeof(req));
		vbuf_reset(&out);
		bad = parse_request(&l, &req, &why);
		if (bad) {
			log_warn("bad request from qmgr: %s",
			    log_safe(why.data));
			attr_put_num(&out, MAIL_ATTR_STATUS, MAIL_STAT_FAIL);
			attr_put_str(&out, MAIL_ATTR_REASON, why.data);
			attr_end(&out);
		} else {
			deliver(&req);
			build_reply(&req, &out);
			/* Bounded lifetime: libopendkim leaks per Ed25519 key. */
			if (++smtp_uses >= SMTP_MAX_USE)
				daemon_retire();
		}
		free(req.rcpts);
		free(req.avoid.buf);
		if (attr_write(fd, &out, (int)(smtp_cfg->smtp_command_timeout *
		    1000), &why) == -1) {
			log_warn("reply to qmgr: %s", why.data);
			rc = -1;
			break;
		}
		vbuf_consume(&inbuf, used);
		if (bad) {
			rc = -1;
			break;
		}
	}
	attr_list_release(&l);
	vbuf_release(&inbuf);
	vbuf_release(&out);
	vbuf_release(&why);
	return rc;
}

/*
 * Untrusted text from a peer: non-empty unless empty_ok, at most max
 * bytes, no control characters (so nothing can inject an SMTP command).
 */
static int
text_ok(const char *s, size_t max, int empty_ok)
{
	size_t n;

	for (n = 0; s[n] != '\0'; n++)
		if ((unsigned char)s[n] < 0x20 || s[n] == 0x7f || n >= max)
			return 0;
	return n > 0 || empty_ok;
}

/* One rcpt_index, rcpt group of a request (attr_scan's callback). */
static int
parse_rcpt(void *arg, struct vbuf *why)
{
	struct smtp_req_scan *sc = arg;
	struct smtp_rcpt *r = &sc->req->rcpts[sc->req->nrcpts];

	if (!text_ok(sc->addr, QSTORE_ADDR_MAX, 0)) {
		vbuf_setf(why, "bad recipient \"%s\"", log_safe(sc->addr));
		return -1;
	}
	ASSERT(sc->req->nrcpts < sc->max);
	r->index = sc->index;
	r->addr = sc->addr;
	r->status = SMTP_RCPT_PENDING;
	sc->req->nrcpts++;
	return 0;
}

static int
parse_request(const struct attr_list *l, struct smtp_req *req,
    struct vbuf *why)
{
	struct smtp_req_scan sc;
	struct nexthop nh;
	const char *v = NULL, *qid = NULL, *avoid = NULL, *want = NULL;
	int64_t arrival, arrival_us, qmgr_ms;
	uint64_t tls_level = UINT64_MAX, conn_uses = 0;
	const struct attr_spec rcpt[] = {
		ATTR_UINT(MAIL_ATTR_RCPT_INDEX, ATTR_F_REQUIRED, 0, UINT32_MAX,
		    &sc.index),
		ATTR_STR(MAIL_ATTR_RCPT, ATTR_F_REQUIRED, 1, QSTORE_ADDR_MAX,
		    &sc.addr),
		ATTR_TABLE_END
	};
	const struct attr_spec spec[] = {
		ATTR_STR(MAIL_ATTR_REQUEST, ATTR_F_REQUIRED, 1, ATTR_NAME_MAX,
		    &v),
		ATTR_STR(MAIL_ATTR_QUEUE_ID, ATTR_F_REQUIRED, 1, ATTR_NAME_MAX,
		    &qid),
		ATTR_STR(MAIL_ATTR_NEXTHOP, ATTR_F_REQUIRED, 0, NEXTHOP_KEY_MAX,
		    &req->nexthop),
		ATTR_STR(MAIL_ATTR_SENDER, ATTR_F_REQUIRED, 0, QSTORE_ADDR_MAX,
		    &req->sender),
		ATTR_INT(MAIL_ATTR_ARRIVAL, ATTR_F_REQUIRED, 0,
		    INT64_MAX / 1000000 - 1, &arrival),
		ATTR_INT(MAIL_ATTR_ARRIVAL_US, ATTR_F_REQUIRED, 0, 999999,
		    &arrival_us),
		ATTR_INT(MAIL_ATTR_QMGR_TIME, ATTR_F_REQUIRED, 0,
		    INT64_MAX / 1000, &qmgr_ms),
		ATTR_UINT(MAIL_ATTR_TLS_LEVEL, 0, CFG_SMTP_TLS_MAY,
		    CFG_SMTP_TLS_VERIFY, &tls_level),
		ATTR_UINT(MAIL_ATTR_CONN_USES, 0, 1, UINT32_MAX, &conn_uses),
		ATTR_STR(MAIL_ATTR_POOL, 0, 1, CFG_POOL_NAME_MAX, &req->pool),
		ATTR_STR(MAIL_ATTR_AVOID, 0, 1, MAIL_AVOID_MAX, &avoid),
		ATTR_STR(MAIL_ATTR_SOURCE, 0, 1, sizeof(req->source) - 1,
		    &want),
		ATTR_GROUP(MAIL_ATTR_RCPT_INDEX, ATTR_F_REQUIRED, rcpt,
		    parse_rcpt, &sc),
		ATTR_TABLE_END
	};

	/* Sized before the scan fills it: no growth per recipient. */
	sc.req = req;
	sc.max = attr_count(l, MAIL_ATTR_RCPT_INDEX);
	req->rcpts = xcalloc(sc.max == 0 ? 1 : sc.max, sizeof(*req->rcpts));
	if (attr_scan(l, spec, why) == -1)
		return -1;
	if (strcmp(v, MAIL_REQ_DELIVER) != 0) {
		vbuf_setf(why, "unknown request \"%s\"", log_safe(v));
		return -1;
	}
	if (!qid_ok(qid)) {
		vbuf_setf(why, "bad queue id \"%s\"", log_safe(qid));
		return -1;
	}
	memcpy(req->qid, qid, QID_SIZE);
	if (!text_ok(req->sender, QSTORE_ADDR_MAX, 1)) {
		vbuf_setf(why, "bad sender \"%s\"", log_safe(req->sender));
		return -1;
	}
	/* qmgr's key, not the recipient's: a bad one is qmgr's error. */
	if (nexthop_parse(req->nexthop, &nh, why) == -1)
		return -1;
	req->arrival_us = arrival * 1000000 + arrival_us;
	req->qmgr_ms = qmgr_ms;
	req->dest_tls_level = tls_level == UINT64_MAX ? -1 : (int)tls_level;
	req->conn_uses = (unsigned)conn_uses;
	if (req->pool == NULL)
		req->pool = "";
	else if (!cfg_pool_name_ok(req->pool)) {
		vbuf_setf(why, "bad pool \"%s\"", log_safe(req->pool));
		return -1;
	}
	if (want != NULL && !text_ok(want, sizeof(req->source) - 1, 0)) {
		vbuf_setf(why, "bad source address \"%s\"", log_safe(want));
		return -1;
	}
	req->avoid.want = want;
	return parse_avoid(avoid, &req->avoid, why);
}

/* MAIL_ATTR_AVOID's addresses (NULL: none) into avoid. */
static int
parse_avoid(const char *v, struct smtp_avoid *avoid, struct vbuf *why)
{
	char *a, *save = NULL;

	if (v == NULL)
		return 0;
	if (!text_ok(v, MAIL_AVOID_MAX, 0)) {
		vbuf_setf(why, "bad list of source addresses to avoid");
		return -1;
	}
	avoid->buf = xstrdup(v);
	for (a = strtok_r(avoid->buf, " ", &save); a != NULL;
	    a = strtok_r(NULL, " ", &save)) {
		if (avoid->n == CFG_POOL_ADDRS_MAX) {
			vbuf_setf(why, "more than %d source addresses to "
			    "avoid", CFG_POOL_ADDRS_MAX);
			return -1;
		}
		avoid->addr[avoid->n++] = a;
	}
	return 0;
}

static void
decide_all(struct smtp_req *req, const struct smtp_fail *f)
{
	size_t i;

	for (i = 0; i < req->nrcpts; i++)
		if (req->rcpts[i].status == SMTP_RCPT_PENDING)
			smtp_rcpt_decide(&req->rcpts[i], f->status, f->dsn,
			    f->text);
}

/*
 * Whether a recipient of req was refused on s for the reputation of its
 * source address (bclass_reputation); if so the reply goes back to qmgr,
 * which sets the address aside (qmgr_source.c), and the session is not
 * kept.
 */
static int
reputation_refused(struct smtp_req *req, const struct smtp_sess *s)
{
	const struct smtp_rcpt *r;
	size_t i;

	if (s->source[0] == '\0')
		return 0;
	for (i = 0; i < req->nrcpts; i++) {
		r = &req->rcpts[i];
		if ((r->status == SMTP_RCPT_DEFERRED ||
		    r->status == SMTP_RCPT_BOUNCED) &&
		    bclass_reputation(smtp_bclass, r->dsn, r->reply)) {
			source_refused(req, s->source, r->reply);
			return 1;
		}
	}
	return 0;
}

/*
 * Source address addr was refused for its reputation with reply: it goes
 * back to qmgr (one per reply, the last), and the rest of this request
 * leaves from another address of the pool where it has one.
 */
static void
source_refused(struct smtp_req *req, const char *addr, const char *reply)
{
	(void)snprintf(req->refused, sizeof(req->refused), "%s", addr);
	(void)snprintf(req->refusal, sizeof(req->refusal), "%s", reply);
	if (!smtp_source_avoided(&req->avoid, req->refused) &&
	    req->avoid.n < CFG_POOL_ADDRS_MAX)
		req->avoid.addr[req->avoid.n++] = req->refused;
}

/*
 * Tries the targets in order until one completes session setup. Returns
 * the session, or NULL with fail and req->relay describing the last
 * failure (relay stays "none" when no connection was made).
 */
static struct smtp_sess *
session_open(struct smtp_req *req, const struct smtp_target *t, size_t n,
    const char *key, struct smtp_fail *fail)
{
	struct smtp_sess *s;
	size_t i;

	smtp_fail_set(fail, SMTP_RCPT_DEFERRED, "4.4.1", 1,
	    "no address to connect to");
	for (i = 0; i < n; i++) {
		s = smtp_sess_connect(&t[i], req->src, &req->avoid,
		    smtp_cfg->smtp_connect_timeout * 1000, fail);
		if (s == NULL) {
			(void)snprintf(req->relay, sizeof(req->relay), "none");
			log_debug("%s: %s", req->qid, fail->text);
			hop_failed(t, i, n, fail);
			continue;
		}
		(void)snprintf(s->key, sizeof(s->key), "%s", key);
		(void)snprintf(s->hop, sizeof(s->hop), "%s", t[i].hop);
		(void)snprintf(s->pool, sizeof(s->pool), "%s", req->pool);
		(void)snprintf(req->source, sizeof(req->source), "%s",
		    s->source);
		if (s->source[0] != '\0')
			log_debug("%s: %s: from %s (pool %s)", req->qid,
			    s->relay, s->source, req->pool[0] != '\0' ?
			    req->pool : CFG_POOL_DEFAULT);
		if (smtp_proto_setup(s, smtp_cfg, req->tls_level,
		    fail) == 0) {
			hop_up(t[i].hop);
			return s;
		}
		memcpy(req->relay, s->relay, sizeof(req->relay));
		log_debug("%s: %s: %s", req->qid, s->relay,
		    log_safe(fail->text));
		/* Refused for its address's reputation at the greeting. */
		if (s->source[0] != '\0' && bclass_reputation(smtp_bclass,
		    fail->dsn, fail->text))
			source_refused(req, s->source, fail->text);
		smtp_proto_quit(s);
		if (!fail->next_host)
			break;
		hop_failed(t, i, n, fail);
	}
	return NULL;
}

static struct hop_state *
hop_find(const char *key, int create)
{
	struct hop_state *h, *old = &hops[0];

	for (h = hops; h < hops + SMTP_HOPS_MAX; h++) {
		if (strcmp(h->key, key) == 0)
			return h;
		if (h->key[0] == '\0' || (old->key[0] != '\0' &&
		    h->until < old->until))
			old = h;
	}
	if (!create)
		return NULL;
	(void)snprintf(old->key, sizeof(old->key), "%s", key);
	old->until = 0;
	return old;
}

static int
hop_is_down(const char *key)
{
	struct hop_state *h = hop_find(key, 0);

	return h != NULL && h->until > smtp_now_ms();
}

static void
hop_up(const char *key)
{
	struct hop_state *h;

	if (key[0] == '\0' || (h = hop_find(key, 0)) == NULL ||
	    h->until == 0)
		return;
	log_info("next hop %s is up again", h->key);
	h->until = 0;
}

/*
 * Target i failed with fail; when it was the last address of its hop
 * and the failure sends mail on to another host, the hop is down.
 */
static void
hop_failed(const struct smtp_target *t, size_t i, size_t n,
    const struct smtp_fail *fail)
{
	struct hop_state *h;
	int was_down;

	if (t[i].hop[0] == '\0' || !fail->next_host ||
	    (i + 1 < n && strcmp(t[i + 1].hop, t[i].hop) == 0))
		return;
	h = hop_find(t[i].hop, 1);
	was_down = h->until > smtp_now_ms();
	h->until = smtp_now_ms() + smtp_cfg->smtp_failover_retry * 1000;
	if (!was_down)
		log_warn("next hop %s is down for %" PRId64 "s (%s), %s%s",
		    h->key, smtp_cfg->smtp_failover_retry,
		    log_safe(fail->text), i + 1 < n ? "trying " : "no other "
		    "next hop", i + 1 < n ? t[i + 1].hop : "");
}

/*
 * The addresses to try for nh: its own, or with a failover list ft
 * those of every hop, hops that are up first (in their order), then
 * those down, each hop's share of SMTP_TARGET_MAX bounded so that a
 * hop with many addresses leaves room for the next. Each target names
 * its hop. When no hop resolves, fail is the first hop's failure.
 */
static int
resolve(const struct nexthop *nh, const struct cfg_transport *ft,
    struct smtp_target *t, size_t *n, struct smtp_fail *fail)
{
	char keys[CFG_TRANSPORT_HOPS_MAX][NEXTHOP_KEY_MAX + 1];
	size_t order[CFG_TRANSPORT_HOPS_MAX], norder = 0, i, j, got, lim;
	struct smtp_fail f;
	int pass, failed = 0;

	if (ft == NULL) {
		if (smtp_dns_nexthop(smtp_cfg, nh, t, SMTP_TARGET_MAX, n,
		    fail) == -1)
			return -1;
		for (i = 0; i < *n; i++)
			t[i].hop[0] = '\0';
		return 0;
	}
	for (i = 0; i < ft->nhops; i++)
		if (nexthop_format(&ft->hops[i], keys[i], sizeof(keys[i])) ==
		    -1)
			keys[i][0] = '\0';	/* cfg_load parsed it: not so */
	smtp_fail_set(fail, SMTP_RCPT_DEFERRED, "4.4.1", 0, "no next hop");
	for (pass = 0; pass < 2; pass++)
		for (i = 0; i < ft->nhops; i++)
			if (keys[i][0] != '\0' && hop_is_down(keys[i]) == pass)
				order[norder++] = i;
	*n = 0;
	for (i = 0; i < norder && *n < SMTP_TARGET_MAX; i++) {
		lim = (SMTP_TARGET_MAX - *n) / (norder - i);
		if (lim == 0)
			lim = 1;
		if (smtp_dns_nexthop(smtp_cfg, &ft->hops[order[i]], t + *n,
		    lim, &got, &f) == -1) {
			if (!failed)
				*fail = f;
			failed = 1;
			log_info("next hop %s: %s", keys[order[i]],
			    log_safe(f.text));
			continue;
		}
		for (j = 0; j < got; j++)
			(void)snprintf(t[*n + j].hop, sizeof(t[*n + j].hop),
			    "%s", keys[order[i]]);
		*n += got;
	}
	return *n == 0 ? -1 : 0;
}

/*
 * The hosts the next hop resolved to, each once, for qmgr to roll the
 * destination up into a provider by their names (qmgr_provider.c); none
 * when they do not all fit, since qmgr must see every one.
 */
static void
name_mx(struct smtp_req *req, const struct smtp_target *t, size_t n)
{
	size_t len = 0, i, j, hl;

	req->mx[0] = '\0';
	for (i = 0; i < n; i++) {
		for (j = 0; j < i; j++)
			if (strcasecmp(t[j].host, t[i].host) == 0)
				break;
		if (j < i)
			continue;
		hl = strlen(t[i].host);
		if (hl == 0 || strchr(t[i].host, ' ') != NULL ||
		    len + (len > 0) + hl > MAIL_MX_LIST_MAX) {
			req->mx[0] = '\0';
			return;
		}
		if (len > 0)
			req->mx[len++] = ' ';
		memcpy(req->mx + len, t[i].host, hl + 1);
		len += hl;
	}
}

static void
deliver(struct smtp_req *req)
{
	struct smtp_target targets[SMTP_TARGET_MAX];
	struct smtp_fail fail;
	struct smtp_sess *s = NULL;
	struct nexthop nh;
	struct vbuf why;
	size_t n;
	int64_t end;
	int reused = 0, rc;

	req->t_start = smtp_now_us();
	req->t_setup = 0;
	(void)snprintf(req->relay, sizeof(req->relay), "none");
	req->tls[0] = '\0';
	req->cipher[0] = '\0';
	req->verified = 0;
	/* The destination's level (shaping file), else smtp.tls. */
	req->tls_level = req->dest_tls_level >= 0 ?
	    (enum cfg_smtp_tls)req->dest_tls_level : smtp_cfg->smtp_tls;

	vbuf_init(&why, 256);
	req->qf = qstore_file_open(smtp_cfg->queue_directory, req->qid, &why);
	if (req->qf == NULL) {
		smtp_fail_set(&fail, SMTP_RCPT_DEFERRED, "4.3.0", 0,
		    "cannot open queue file: %s", why.data);
		decide_all(req, &fail);
		goto done;
	}
	/*
	 * The pool's addresses. One the configuration no longer has (a
	 * credential bound to it before it was removed) waits: mail must
	 * not leave from another pool's addresses.
	 */
	req->src = cfg_pool_lookup(smtp_cfg, req->pool);
	if (req->src == NULL && req->pool[0] != '\0') {
		smtp_fail_set(&fail, SMTP_RCPT_DEFERRED, "4.3.5", 0,
		    "source address pool %s is not configured (smtp.pools)",
		    req->pool);
		log_warn("%s: %s", req->qid, fail.text);
		decide_all(req, &fail);
		goto done;
	}
	/* qmgr's key names the next hop and the session cache entry. */
	if (nexthop_parse(req->nexthop, &nh, &why) == -1) {
		/* parse_request checked it: not reached. */
		smtp_fail_set(&fail, SMTP_RCPT_DEFERRED, "4.3.5", 0,
		    "bad next hop: %s", why.data);
		decide_all(req, &fail);
		goto done;
	}
	if (resolve(&nh, cfg_transport_failover(smtp_cfg, req->nexthop),
	    targets, &n, &fail) == -1) {
		req->site_fail = 1;
		decide_all(req, &fail);
		goto done;
	}
	name_mx(req, targets, n);
	/*
	 * qmgr avoids every address of the pool for this next hop (set
	 * aside after reputation refusals, warmup addresses at their cap
	 * for the day, or suspended by an on_reply rule): the mail waits.
	 */
	if (smtp_source_pool_avoided(req->src, &req->avoid)) {
		smtp_fail_set(&fail, SMTP_RCPT_DEFERRED, "4.7.0", 0,
		    "every address of source address pool %s is set aside "
		    "for %s, at its warmup cap or suspended", req->src->name,
		    req->nexthop);
		decide_all(req, &fail);
		goto done;
	}
	/* Signed per attempt: retries and key rotations stay valid. */
	smtp_dkim_sign(smtp_cfg, req);

	/* A cached session to the same next hop skips connection setup. */
	if (cache != NULL) {
		/* Not a backup hop's session once the first is back. */
		/* Nor another pool's: its address is not this mail's. */
		/* Nor one from an address qmgr now avoids. */
		/* Nor from another than the one qmgr counts this job at. */
		if (strcmp(cache->key, req->nexthop) == 0 &&
		    strcmp(cache->pool, req->pool) == 0 &&
		    !smtp_source_avoided(&req->avoid, cache->source) &&
		    (req->avoid.want == NULL ||
		    strcmp(cache->source, req->avoid.want) == 0) &&
		    strcmp(cache->hop, targets[0].hop) == 0 &&
		    cache->tls_level == req->tls_level &&
		    cache->uses < SMTP_CACHE_USES_MAX &&
		    (req->conn_uses == 0 || cache->uses < (int)req->conn_uses) &&
		    smtp_sess_alive(cache)) {
			s = cache;
			cache = NULL;
			reused = 1;
			(void)snprintf(req->source, sizeof(req->source), "%s",
			    s->source);
		} else
			cache_drop();
	}
	for (;;) {
		if (s == NULL && (s = session_open(req, targets, n,
		    req->nexthop, &fail)) == NULL) {
			req->site_fail = 1;
			decide_all(req, &fail);
			goto done;
		}
		req->t_setup = smtp_now_us();
		memcpy(req->relay, s->relay, sizeof(req->relay));
		memcpy(req->tls, s->tls, sizeof(req->tls));
		memcpy(req->cipher, s->cipher, sizeof(req->cipher));
		req->verified = s->verified;
		rc = smtp_proto_deliver(s, smtp_cfg, req, reused);
		if (rc == -2) {
			/* The cached session had died: redial, once. */
			log_debug("%s: cached session to %s is gone",
			    req->qid, s->relay);
			smtp_sess_free(s);
			s = NULL;
			reused = 0;
			continue;
		}
		s->uses++;
		/* Refused for its address's reputation: the others go on. */
		if (reputation_refused(req, s))
			rc = 1;
		if (rc == 0 && !daemon_stopping()) {
			s->idle_since = smtp_now_ms();
			cache = s;
		} else
			smtp_proto_quit(s);
		break;
	}
done:
	if (req->t_setup == 0)
		req->t_setup = smtp_now_us();
	if (req->qf != NULL)
		qstore_file_close(req->qf);
	req->qf = NULL;
	smtp_dkim_free(req);
	vbuf_release(&why);
	classify(req);
	end = smtp_now_us();
	/* The attempt histogram (metricsd(8)): relaxed adds, no call. */
	metrics_attempt((end - req->t_start) / 1000);
	log_results(req, end);
}

/*
 * The class of every recipient that was not sent. A session failure gives
 * every recipient the same reply: classify it once, not per recipient.
 */
static void
classify(struct smtp_req *req)
{
	const struct smtp_rcpt *prev = NULL;
	size_t i;

	for (i = 0; i < req->nrcpts; i++) {
		struct smtp_rcpt *r = &req->rcpts[i];

		if (r->status == SMTP_RCPT_SENT)
			continue;
		if (prev != NULL && strcmp(prev->dsn, r->dsn) == 0 &&
		    strcmp(prev->reply, r->reply) == 0)
			r->cls = prev->cls;
		else
			r->cls = bclass_classify(smtp_bclass, r->dsn,
			    r->reply, NULL);
		prev = r;
	}
}

static const char *
status_name(enum smtp_rcpt_status st)
{
	switch (st) {
	case SMTP_RCPT_SENT:
		return MAIL_STATUS_SENT;
	case SMTP_RCPT_BOUNCED:
		return MAIL_STATUS_BOUNCED;
	default:
		return MAIL_STATUS_DEFERRED;
	}
}

static void
build_reply(const struct smtp_req *req, struct vbuf *out)
{
	size_t i;

	attr_put_num(out, MAIL_ATTR_STATUS, MAIL_STAT_OK);
	attr_put_str(out, MAIL_ATTR_RELAY, req->relay);
	if (req->tls[0] != '\0')
		attr_put_str(out, MAIL_ATTR_TLS, req->tls);
	if (req->dkim[0] != '\0')
		attr_put_str(out, MAIL_ATTR_DKIM, req->dkim);
	if (req->mx[0] != '\0')
		attr_put_str(out, MAIL_ATTR_MX, req->mx);
	if (req->source[0] != '\0')
		attr_put_str(out, MAIL_ATTR_SOURCE, req->source);
	if (req->refused[0] != '\0') {
		attr_put_str(out, MAIL_ATTR_SOURCE_REFUSED, req->refused);
		attr_put_str(out, MAIL_ATTR_SOURCE_REFUSAL, req->refusal);
	}
	/* Said outright, so qmgr need not guess it from the replies. */
	if (req->site_fail)
		attr_put_num(out, MAIL_ATTR_SITE_FAIL, 1);
	for (i = 0; i < req->nrcpts; i++) {
		const struct smtp_rcpt *r = &req->rcpts[i];

		attr_put_num(out, MAIL_ATTR_RCPT_INDEX, r->index);
		attr_put_str(out, MAIL_ATTR_RCPT_STATUS,
		    status_name(r->status));
		attr_put_str(out, MAIL_ATTR_RCPT_DSN, r->dsn[0] != '\0' ?
		    r->dsn : "4.0.0");
		attr_put_str(out, MAIL_ATTR_RCPT_REPLY, r->reply);
		if (r->status != SMTP_RCPT_SENT)
			attr_put_str(out, MAIL_ATTR_RCPT_CLASS,
			    bclass_name(r->cls));
		if (r->dsn_passed)
			attr_put_num(out, MAIL_ATTR_RCPT_DSN_PASSED, 1);
	}
	attr_end(out);
}

/*
 * Postfix's delay format: whole seconds from 10 s, one decimal from 1 s,
 * else two decimals without trailing zeros ("0" below 10 ms).
 */
static const char *
fmt_delay(char *buf, size_t size, int64_t us)
{
	int64_t cs;

	if (us < 0)
		us = 0;
	if (us >= 10000000)
		(void)snprintf(buf, size, "%" PRId64, us / 1000000);
	else if (us >= 1000000)
		(void)snprintf(buf, size, "%" PRId64 ".%" PRId64,
		    us / 1000000, us / 100000 % 10);
	else if ((cs = us / 10000) == 0)
		(void)snprintf(buf, size, "0");
	else if (cs % 10 == 0)
		(void)snprintf(buf, size, "0.%" PRId64, cs / 10);
	else
		(void)snprintf(buf, size, "0.%02" PRId64, cs);
	return buf;
}

/*
 * One line per recipient per attempt, in Postfix's field order with
 * delay=, delays=, dsn=, status= side by side as Postfix's log tools
 * match them (pflogsumm counts nothing with a field between them); what
 * Postfix does not log comes after the reply:
 * the TLS version, cipher and whether the peer was verified, and for
 * a deferred or bounced recipient its class and hard/soft:
 * "dsn=5.1.1, status=bounced (...), class=bad-mailbox, bounce=hard".
 */
static void
log_results(const struct smtp_req *req, int64_t t_end)
{
	char total[24], a[24], b[24], c[24], d[24];
	char cls[BCLASS_NAME_MAX + 32], tls[160];
	int64_t before = req->qmgr_ms * 1000;
	size_t i;

	tls[0] = '\0';
	if (req->tls[0] != '\0')
		(void)snprintf(tls, sizeof(tls), ", tls=%s, cipher=%s, "
		    "verified=%s", req->tls, req->cipher[0] != '\0' ?
		    req->cipher : "unknown", req->verified ? "yes" : "no");

	fmt_delay(total, sizeof(total), t_end - req->arrival_us);
	fmt_delay(a, sizeof(a), before);
	fmt_delay(b, sizeof(b), req->t_start - req->arrival_us - before);
	fmt_delay(c, sizeof(c), req->t_setup - req->t_start);
	fmt_delay(d, sizeof(d), t_end - req->t_setup);
	for (i = 0; i < req->nrcpts; i++) {
		const struct smtp_rcpt *r = &req->rcpts[i];

		cls[0] = '\0';
		if (r->status != SMTP_RCPT_SENT)
			(void)snprintf(cls, sizeof(cls), ", class=%s, bounce=%s",
			    bclass_name(r->cls), r->status ==
			    SMTP_RCPT_BOUNCED ? BCLASS_HARD : BCLASS_SOFT);
		log_info("%s: to=<%s>, relay=%s, delay=%s, delays=%s/%s/%s/%s,"
		    " dsn=%s, status=%s (%s)%s%s", req->qid,
		    log_safe(r->addr), log_safe(req->relay), total, a, b, c, d,
		    r->dsn, status_name(r->status), log_safe(r->reply),
		    tls, cls);
	}
}
