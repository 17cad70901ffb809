/*
 * qmgr_source.c - which source addresses a job may leave from: those not
 * set aside for its next hop's provider after a reputation refusal, and,
 * of the addresses being warmed up (smtp.warmup), those under their
 * daily cap for that provider.
 *
 * smtp picks the address (smtp_source.c, in turn across the pool), but
 * only qmgr sees every smtp process's replies and every destination's
 * provider, so the decisions are made here and travel in each request as
 * the addresses to avoid (MAIL_ATTR_AVOID). smtp names in each reply the
 * address it left from (MAIL_ATTR_SOURCE) and, when the next hop refused
 * an address for its reputation (lib/bclass, bclass_reputation), that
 * address and reply (MAIL_ATTR_SOURCE_REFUSED, MAIL_ATTR_SOURCE_REFUSAL). The scope of both is the destination's
 * provider when its MX hosts matched one (every domain hosted there
 * shares it: one refusal from Gmail sets the address aside for every
 * Google Workspace domain), else its next hop.
 *
 * A set-aside lasts smtp.reputation_set_aside and lives in memory only:
 * after a restart the first refusal teaches qmgr again. A warmup count is
 * durable: a message sent counts once smtp reports it, and goes into the
 * counters database (db counters, the UTC day's window) in the next
 * results transaction, the one that records its recipients' results, so
 * a crash loses a count only with the result it came with (the message
 * is then sent again and counted again). Jobs already at smtp when an
 * address reaches its cap may each still leave from it: the cap can be
 * passed by at most the jobs in flight to that provider.
 *
 * A warmup address never takes over another address's mail: when every
 * established (not warming up) address of a pool is set aside for a
 * provider, the pool's warmup addresses are avoided too and the mail
 * waits, as it does when every address is set aside. See qmgr(8),
 * SOURCE ADDRESSES.
 *
 * relayctl sources show (relayctl(8), SOURCE ADDRESSES) prints what is
 * here: qmgr_source_report writes it, record by record. A count that is
 * only in the database (after a restart, until a job for that scope
 * reads it back) is not shown.
 */
#include <sys/socket.h>

#include <arpa/inet.h>

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "attr.h"
#include "cidr.h"
#include "event.h"
#include "log.h"
#include "mailproto.h"
#include "qmgr.h"
#include "xalloc.h"

#define QMGR_SRC_BUCKETS	1024
#define QMGR_SRC_DAY		86400

/* One source address and scope: its set-aside and its warmup count. */
struct qmgr_src {
	struct qmgr_src	*hnext;
	struct qmgr_src	*older, *newer;		/* last used order */
	struct qmgr_src	*dnext;			/* the unwritten list */
	char		 addr[64];
	char		 scope[SHAPING_NAME_MAX + 1];
	int64_t		 aside_until;		/* ms (ev_now_ms); 0 none */
	char		*aside_reason;		/* the refusal, log_safe */
	int64_t		 day;			/* of sent; -1 none loaded */
	uint64_t	 sent;			/* messages that day */
	uint64_t	 unwritten;		/* of them, not in the db */
	uint64_t	 putting;		/* of those, in the open txn */
	int		 dirty;			/* on the unwritten list */
	int		 capped;		/* the cap was logged that day */
};

static struct qmgr_src *qmgr_src_hash[QMGR_SRC_BUCKETS];
static struct qmgr_src *qmgr_src_oldest, *qmgr_src_newest;
static struct qmgr_src *qmgr_src_dirty;
static size_t qmgr_src_count;
static int64_t qmgr_src_aside_last;	/* ms: the latest set-aside's end */

static unsigned qmgr_source_hashkey(const char *, const char *);
static struct qmgr_src *qmgr_source_get(const char *, const char *, int);
static void qmgr_source_touch(struct qmgr_src *);
static void qmgr_source_evict(void);
static const char *qmgr_source_scope(const struct qmgr_job *);
static int qmgr_source_load(struct qmgr_src *, int64_t);
static int qmgr_source_counter_key(const struct qmgr_src *, char *, size_t);
static int qmgr_source_capped(const struct cidr *, const char *,
    const char *, int64_t);
static int qmgr_source_aside(const char *, const char *, int64_t);
static const struct cidr *qmgr_source_of_pool(const struct qmgr_job *,
    const char *, char *);

static unsigned
qmgr_source_hashkey(const char *addr, const char *scope)
{
	unsigned h = 5381;

	for (; *addr != '\0'; addr++)
		h = h * 33 + (unsigned char)*addr;
	for (h = h * 33 + ' '; *scope != '\0'; scope++)
		h = h * 33 + (unsigned char)*scope;
	return h % QMGR_SRC_BUCKETS;
}

/* The entry of addr and scope, created when asked (NULL otherwise). */
static struct qmgr_src *
qmgr_source_get(const char *addr, const char *scope, int create)
{
	unsigned h = qmgr_source_hashkey(addr, scope);
	struct qmgr_src *e;

	for (e = qmgr_src_hash[h]; e != NULL; e = e->hnext)
		if (strcmp(e->addr, addr) == 0 && strcmp(e->scope, scope) == 0)
			break;
	if (e == NULL && create) {
		if (qmgr_src_count >= QMGR_SRC_MAX)
			qmgr_source_evict();
		e = xcalloc(1, sizeof(*e));
		(void)snprintf(e->addr, sizeof(e->addr), "%s", addr);
		(void)snprintf(e->scope, sizeof(e->scope), "%s", scope);
		e->day = -1;
		e->hnext = qmgr_src_hash[h];
		qmgr_src_hash[h] = e;
		qmgr_src_count++;
	}
	if (e != NULL)
		qmgr_source_touch(e);
	return e;
}

/* e becomes the most recently used. */
static void
qmgr_source_touch(struct qmgr_src *e)
{
	if (qmgr_src_newest == e)
		return;
	if (e->older != NULL)
		e->older->newer = e->newer;
	if (e->newer != NULL)
		e->newer->older = e->older;
	if (qmgr_src_oldest == e)
		qmgr_src_oldest = e->newer;
	e->older = qmgr_src_newest;
	e->newer = NULL;
	if (qmgr_src_newest != NULL)
		qmgr_src_newest->newer = e;
	qmgr_src_newest = e;
	if (qmgr_src_oldest == NULL)
		qmgr_src_oldest = e;
}

/*
 * Forgets the least recently used entry that holds nothing the database
 * lacks and no set-aside in force (a warmup count is read back from the
 * database when needed again). With none such the table grows past its
 * bound until the next results transaction writes the counts.
 */
static void
qmgr_source_evict(void)
{
	int64_t now = ev_now_ms();
	struct qmgr_src *e, **pp;

	for (e = qmgr_src_oldest; e != NULL; e = e->newer)
		if (!e->dirty && e->aside_until <= now)
			break;
	if (e == NULL)
		return;
	for (pp = &qmgr_src_hash[qmgr_source_hashkey(e->addr, e->scope)];
	    *pp != e; pp = &(*pp)->hnext)
		;
	*pp = e->hnext;
	if (e->older != NULL)
		e->older->newer = e->newer;
	else
		qmgr_src_oldest = e->newer;
	if (e->newer != NULL)
		e->newer->older = e->older;
	else
		qmgr_src_newest = e->older;
	free(e->aside_reason);
	free(e);
	qmgr_src_count--;
}

/* The provider's name when the job's next hop has a known one, else it. */
static const char *
qmgr_source_scope(const struct qmgr_job *job)
{
	const struct shaping_provider *p = qmgr_provider_of(job->nexthop);

	return p != NULL ? p->e.name : job->nexthop;
}

static int
qmgr_source_counter_key(const struct qmgr_src *e, char *key, size_t size)
{
	int n = snprintf(key, size, "warmup %s %s", e->addr, e->scope);

	return n > 0 && (size_t)n < size ? 0 : -1;
}

/*
 * e's count for day, from the database when e has none for it. -1 when
 * the database cannot be read (the address is then avoided: better a
 * wait than a cap passed).
 */
static int
qmgr_source_load(struct qmgr_src *e, int64_t day)
{
	char key[QSTORE_COUNTER_KEY_MAX + 1];
	struct qstore_txn *txn;
	struct vbuf *why;
	uint64_t n = 0;
	int rc = -1;

	if (e->day == day)
		return 0;
	if (qmgr_source_counter_key(e, key, sizeof(key)) == -1)
		return -1;
	why = vbuf_create(0);
	if ((txn = qstore_txn_begin(qmgr_queue, 0, why)) != NULL) {
		rc = qstore_counter_get(txn, key, day * QMGR_SRC_DAY, &n);
		qstore_txn_abort(txn);
	}
	if (rc == -1)
		log_warn("warmup count of %s for %s: cannot read the queue "
		    "database: %s", e->addr, e->scope, why->data[0] != '\0' ?
		    why->data : "counter read");
	vbuf_free(why);
	if (rc == -1)
		return -1;
	/* The day is over: what it had not written no longer matters. */
	e->day = day;
	e->sent = n;
	e->unwritten = 0;
	e->capped = 0;
	return 0;
}

/* Whether warmup address c (text a) has reached its cap for scope today. */
static int
qmgr_source_capped(const struct cidr *c, const char *a, const char *scope,
    int64_t day)
{
	int64_t cap = cfg_warmup_cap(qmgr_cfg, c, day);
	struct qmgr_src *e;

	if (cap < 0)
		return 0;
	e = qmgr_source_get(a, scope, 1);
	if (qmgr_source_load(e, day) == -1)
		return 1;
	if (e->sent < (uint64_t)cap)
		return 0;
	if (!e->capped) {
		log_info("source address %s reached its warmup cap for %s: "
		    "%" PRIu64 " of %" PRId64 " message(s) today", a, scope,
		    e->sent, cap);
		e->capped = 1;
	}
	return 1;
}

/* Whether a is set aside for scope now. */
static int
qmgr_source_aside(const char *a, const char *scope, int64_t now)
{
	struct qmgr_src *e;

	if (qmgr_src_aside_last <= now)
		return 0;	/* none in force: no lookup */
	e = qmgr_source_get(a, scope, 0);
	return e != NULL && e->aside_until > now;
}

void
qmgr_source_avoid(const struct qmgr_job *job, struct vbuf *out)
{
	const struct cfg_pool *pool;
	const char *scope;
	int64_t now = ev_now_ms(), day = (int64_t)time(NULL) / QMGR_SRC_DAY;
	size_t i, nwarm = 0, nwarm_avoided = 0, nopen = 0;
	char a[64];
	int warm;

	vbuf_reset(out);
	if (qmgr_cfg->nsmtp_warmup == 0 && qmgr_src_aside_last <= now)
		return;		/* the usual case: nothing to look up */
	if ((pool = cfg_pool_lookup(qmgr_cfg, job->pool)) == NULL)
		return;
	scope = qmgr_source_scope(job);
	for (i = 0; i < pool->naddrs; i++) {
		(void)inet_ntop(pool->addrs[i].family, pool->addrs[i].addr, a,
		    sizeof(a));
		warm = cfg_warmup_cap(qmgr_cfg, &pool->addrs[i], day) >= 0;
		if (qmgr_source_aside(a, scope, now) || (warm &&
		    qmgr_source_capped(&pool->addrs[i], a, scope, day))) {
			(void)vbuf_addf(out, "%s%s", out->len > 0 ? " " : "", a);
			nwarm_avoided += warm;
		} else if (!warm)
			nopen++;
		nwarm += warm;
	}
	/* Established addresses all set aside: no warmup one stands in. */
	if (nopen == 0 && nwarm < pool->naddrs && nwarm_avoided < nwarm)
		for (i = 0; i < pool->naddrs; i++) {
			if (cfg_warmup_cap(qmgr_cfg, &pool->addrs[i], day) < 0)
				continue;
			(void)inet_ntop(pool->addrs[i].family,
			    pool->addrs[i].addr, a, sizeof(a));
			if (!qmgr_source_aside(a, scope, now) &&
			    !qmgr_source_capped(&pool->addrs[i], a, scope, day))
				(void)vbuf_addf(out, "%s%s", out->len > 0 ? " " :
				    "", a);
		}
}

int
qmgr_source_listed(const char *list, const char *addr)
{
	size_t n = strlen(addr);
	const char *p;

	if (n == 0)
		return 0;
	for (p = list; (p = strstr(p, addr)) != NULL; p += n)
		if ((p == list || p[-1] == ' ') && (p[n] == ' ' ||
		    p[n] == '\0'))
			return 1;
	return 0;
}

/*
 * The address of job's pool that text names, with its text as written
 * here (a, 64 bytes), or NULL: smtp names only its pool's addresses.
 */
static const struct cidr *
qmgr_source_of_pool(const struct qmgr_job *job, const char *text, char *a)
{
	const struct cfg_pool *pool = cfg_pool_lookup(qmgr_cfg, job->pool);
	struct cidr c;
	size_t i;

	if (text == NULL || pool == NULL || cidr_parse(text, &c) == -1)
		return NULL;
	for (i = 0; i < pool->naddrs; i++)
		if (pool->addrs[i].family == c.family && memcmp(
		    pool->addrs[i].addr, c.addr, c.family == AF_INET ? 4 :
		    16) == 0) {
			(void)inet_ntop(c.family, c.addr, a, 64);
			return &pool->addrs[i];
		}
	return NULL;
}

void
qmgr_source_reply(const struct qmgr_job *job, const char *source,
    const char *refused, const char *refusal, int sent)
{
	const struct cidr *c;
	const char *scope = qmgr_source_scope(job);
	int64_t now = ev_now_ms(), day = (int64_t)time(NULL) / QMGR_SRC_DAY;
	struct qmgr_src *e;
	char a[64];

	if (qmgr_cfg->smtp_reputation_set_aside > 0 &&
	    qmgr_source_of_pool(job, refused, a) != NULL) {
		e = qmgr_source_get(a, scope, 1);
		/* Printable and bounded: relayctl sources show prints it. */
		free(e->aside_reason);
		e->aside_reason = xstrdup(log_safe(refusal != NULL ? refusal :
		    ""));
		if (e->aside_until <= now)
			log_warn("source address %s set aside for %s for %"
			    PRId64 "s: %s", a, scope,
			    qmgr_cfg->smtp_reputation_set_aside,
			    e->aside_reason);
		e->aside_until = now + qmgr_cfg->smtp_reputation_set_aside *
		    1000;
		if (e->aside_until > qmgr_src_aside_last)
			qmgr_src_aside_last = e->aside_until;
	}
	if (!sent || (c = qmgr_source_of_pool(job, source, a)) == NULL ||
	    cfg_warmup_cap(qmgr_cfg, c, day) < 0)
		return;
	e = qmgr_source_get(a, scope, 1);
	if (qmgr_source_load(e, day) == -1)
		return;
	e->sent++;
	e->unwritten++;
	if (!e->dirty) {
		e->dirty = 1;
		e->dnext = qmgr_src_dirty;
		qmgr_src_dirty = e;
	}
}

int
qmgr_source_put(struct qstore_txn *txn, struct vbuf *why)
{
	char key[QSTORE_COUNTER_KEY_MAX + 1];
	struct qmgr_src *e;

	for (e = qmgr_src_dirty; e != NULL; e = e->dnext) {
		e->putting = 0;
		if (e->unwritten == 0 ||
		    qmgr_source_counter_key(e, key, sizeof(key)) == -1)
			continue;
		if (qstore_counter_add(txn, key, e->day * QMGR_SRC_DAY,
		    e->unwritten, NULL) == -1) {
			vbuf_setf(why, "warmup count of %s for %s", e->addr,
			    e->scope);
			return -1;
		}
		e->putting = e->unwritten;
	}
	return 0;
}

void
qmgr_source_done(int committed)
{
	struct qmgr_src *e, **pp = &qmgr_src_dirty;

	while ((e = *pp) != NULL) {
		if (committed)
			e->unwritten -= e->putting;
		e->putting = 0;
		if (e->unwritten == 0) {
			e->dirty = 0;
			*pp = e->dnext;
			e->dnext = NULL;
		} else
			pp = &e->dnext;
	}
}

size_t
qmgr_source_report(struct vbuf *out)
{
	const struct cfg_pool *pool;
	const struct qmgr_src *e;
	int64_t now = ev_now_ms(), wall = (int64_t)time(NULL);
	int64_t day = wall / QMGR_SRC_DAY, wday, cap;
	struct cidr c;
	char a[64];
	size_t n = 0, p, i;

	/* 1. Every address of every pool, whether mail has used it or not. */
	for (p = 0; p < qmgr_cfg->nsmtp_pools; p++) {
		pool = &qmgr_cfg->smtp_pools[p];
		for (i = 0; i < pool->naddrs; i++) {
			if (n == QMGR_SOURCES_SHOW_MAX)
				return n;
			(void)inet_ntop(pool->addrs[i].family,
			    pool->addrs[i].addr, a, sizeof(a));
			attr_put_str(out, MAIL_ATTR_SOURCE, a);
			attr_put_str(out, MAIL_ATTR_POOL, pool->name);
			wday = cfg_warmup_day(qmgr_cfg, &pool->addrs[i], day);
			if (wday > 0) {
				attr_put_int(out, MAIL_ATTR_WARMUP_DAY, wday);
				attr_put_int(out, MAIL_ATTR_WARMUP_CAP,
				    cfg_warmup_cap(qmgr_cfg, &pool->addrs[i],
				    day));
			}
			attr_end(out);
			n++;
		}
	}
	/*
	 * 2. Each address and scope with a set-aside in force or today's
	 * warmup count, least recently used first; walked without
	 * qmgr_source_get, which would reorder the list.
	 */
	for (e = qmgr_src_oldest; e != NULL; e = e->newer) {
		cap = e->day == day && cidr_parse(e->addr, &c) == 0 ?
		    cfg_warmup_cap(qmgr_cfg, &c, day) : -1;
		if (e->aside_until <= now && cap < 0)
			continue;
		if (n == QMGR_SOURCES_SHOW_MAX)
			break;
		attr_put_str(out, MAIL_ATTR_SOURCE, e->addr);
		attr_put_str(out, MAIL_ATTR_SCOPE, e->scope);
		if (e->aside_until > now) {
			/* ev_now_ms is monotonic: the wall clock's end. */
			attr_put_int(out, MAIL_ATTR_ASIDE_UNTIL, wall +
			    (e->aside_until - now + 999) / 1000);
			if (e->aside_reason != NULL)
				attr_put_str(out, MAIL_ATTR_ASIDE_REASON,
				    e->aside_reason);
		}
		if (cap >= 0) {
			attr_put_num(out, MAIL_ATTR_SENT_TODAY, e->sent);
			attr_put_int(out, MAIL_ATTR_WARMUP_CAP, cap);
		}
		attr_end(out);
		n++;
	}
	return n;
}

uint64_t
qmgr_source_sent_today(const char *addr, const char *scope)
{
	struct qmgr_src *e = qmgr_source_get(addr, scope, 0);
	int64_t day = (int64_t)time(NULL) / QMGR_SRC_DAY;

	return e != NULL && e->day == day ? e->sent : 0;
}

void
qmgr_source_reset(void)
{
	struct qmgr_src *e, *next;

	for (e = qmgr_src_oldest; e != NULL; e = next) {
		next = e->newer;
		free(e->aside_reason);
		free(e);
	}
	memset(qmgr_src_hash, 0, sizeof(qmgr_src_hash));
	qmgr_src_oldest = qmgr_src_newest = qmgr_src_dirty = NULL;
	qmgr_src_count = 0;
	qmgr_src_aside_last = 0;
}
