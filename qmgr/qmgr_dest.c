/*
 * qmgr_dest.c - destinations: the pending jobs per next hop, and the
 * limits that pace each one (shaping.file, lib/shaping).
 *
 * Modelled on Postfix's qmgr_queue.c: a destination is a next-hop key
 * (the recipient domain, or the transport entry's next hop) and a source
 * address pool, with its own FIFO of jobs waiting for a connection and
 * the jobs it has at smtp. Its limits count per source address of the
 * pool (struct qmgr_dest_src), as PowerMTA's virtual MTAs and KumoMTA's
 * egress sources: each address has its jobs at smtp under
 * max_connections and token buckets for its message rate and its rate
 * of new connections, and the dispatcher picks the address of each job
 * (smtp leaves from it), the pool's addresses in turn. The dispatcher
 * (qmgr_dest_take) goes round the destinations that have a job and
 * room, one job each turn, so a destination at its limit, or one with a
 * long backlog, holds only its own mail; smtp.processes stays the cap
 * over all of them (qmgr_deliver.c).
 *
 * Each destination has two FIFOs, one per lane (qmgr(8), Lanes): a
 * credential's lane, or X-Petrel-Priority: bulk, put a message's jobs in
 * the transactional or the bulk one. The dispatcher takes a destination's
 * transactional job first, and a bulk job only while fewer than
 * max_connections less its transactional_reserve jobs are at smtp, so the
 * reserved connections are free for transactional mail however long the
 * bulk backlog is; the default entry's reserve of smtp.processes is kept
 * the same way (qmgr_deliver.c says whether it is free: bulk_ok).
 *
 * A destination lives while it has jobs, pending or at smtp, and, when
 * rate-limited, until its buckets are full again (forgetting it earlier
 * would reset a bucket and let a burst through).
 *
 * A destination whose attempts set up no session (refused, timed out, a
 * 421 greeting) is served by a narrower window, halved at each such
 * failure and widened by one at each success, as Postfix's destination
 * concurrency window; QMGR_DEST_DEAD_AFTER of them in a row make it dead
 * for its retry_interval (else queue.min_backoff): its pending jobs and
 * those that come meanwhile are deferred at once with "delivery
 * temporarily suspended" and its last failure, instead of each taking an
 * smtp process through a connection timeout. After that one job at a
 * time probes it; the first session set up brings it back.
 *
 * A destination's shaping entry may have on_reply rules (shaping.yaml(5)):
 * a deferral whose remote reply matches one (a provider saying "too
 * fast") counts for it at the source address the job left from, and at
 * its after'th match within an hour puts that address in backoff
 * (max_connections and max_message_rate replaced, the rate's bucket
 * emptied) or suspends it, for the rule's time: providers throttle and
 * block a sending address, so the pool's other addresses go on as they
 * were (PowerMTA's backoff is per virtual MTA and domain, KumoMTA's
 * suspension per egress source and site). A destination all of whose
 * addresses are suspended is suspended as a dead site is (the same
 * deferral of its jobs, quoting that reply). It comes back by itself:
 * qmgr_dest_expire runs wherever destinations are looked at, and
 * qmgr_dest_next_ms wakes the loop at the end, so a backlog held back
 * goes on without new mail.
 *
 * A destination whose MX hosts smtp has named, and which roll up to a
 * provider of the shaping file (qmgr_provider.c), takes the provider's
 * limits under its own destination entry's, and its jobs at smtp count
 * against the provider's provider_max_connections with those of every
 * other destination of the provider from the same source address. While
 * the shaping file has providers, a destination not yet known to be one's
 * or none's (qmgr_provider_known) has one job at a time, as Postfix's new
 * destinations start with a narrow window: its first reply says whose it
 * is.
 *
 * A new connection, which takes a token of max_connection_rate, is one
 * made when smtp holds no idle session to the destination from the job's
 * source address that it may reuse (qmgr_deliver_held's reusable: under
 * max_messages_per_connection as far as qmgr counts). A session smtp had
 * to open again on its own (the server closed the cached one; smtp's own
 * SMTP_CACHE_USES_MAX) is not seen here: see shaping.yaml(5), BUGS.
 */
#include <sys/socket.h>

#include <arpa/inet.h>

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "event.h"
#include "log.h"
#include "parse.h"
#include "qmgr.h"
#include "xalloc.h"

#define QMGR_DEST_BUCKETS	1024

/*
 * A provider's on_reply action at one source address of a pool: what a
 * reply to one of its destinations set off, which every destination of
 * the provider in that pool takes at that address, those that join it
 * later included (qmgr_dest_inherit). At most one per provider, pool and
 * address, which the configuration bounds; kept while qmgr runs (an
 * ended one is looked at no more).
 */
struct qmgr_prov_adapt {
	const struct shaping_provider *prov;
	char		 pool[CFG_POOL_NAME_MAX + 1];
	char		 addr[QMGR_SRC_ADDR_MAX];
	const struct shaping_rule *rule;
	int64_t		 until;			/* ms */
	char		 reply[QMGR_DEST_REASON_MAX];
};

static struct qmgr_dest *qmgr_dest_hash[QMGR_DEST_BUCKETS];
static struct qmgr_dest *qmgr_dest_all;		/* round-robin ring order */
static struct qmgr_dest *qmgr_dest_cursor;	/* served last */
static size_t qmgr_dest_count;
static size_t qmgr_npending;
static size_t qmgr_nbulk;
static struct shaping *qmgr_shaping;
static struct qmgr_prov_adapt *qmgr_prov_adapts;
static size_t qmgr_nprov_adapts;
/*
 * Each pool's next source address to try first, shared by the pool's
 * destinations, so that its addresses take turns across all its mail
 * (a destination with one job at a time is forgotten between jobs); the
 * last, for destinations with no pool.
 */
static size_t qmgr_pool_turns[CFG_POOLS_MAX + 1];

static unsigned qmgr_dest_hashkey(const char *);
static struct qmgr_dest *qmgr_dest_get(const struct qmgr_job *, int);
static struct qmgr_dest *qmgr_dest_find(const char *);
static void qmgr_dest_enqueue(struct qmgr_job *, int);
static void qmgr_dest_limits(struct qmgr_dest *, int64_t);
static void qmgr_dest_gc(struct qmgr_dest *, int64_t);
static int qmgr_dest_dead(const struct qmgr_dest *, int64_t);
static void qmgr_dest_sources(struct qmgr_dest *);
static int qmgr_dest_room(const struct qmgr_dest *,
    const struct qmgr_dest_src *, unsigned, int);
static int qmgr_dest_bulk_room(const struct qmgr_dest *,
    const struct qmgr_dest_src *);
static const char *qmgr_dest_avoid(const struct qmgr_dest *);
static unsigned qmgr_dest_src_held(const struct qmgr_dest *,
    const struct qmgr_dest_src *, qmgr_held_fn *, unsigned, unsigned,
    unsigned *);
static int qmgr_dest_take_tokens(const struct qmgr_dest *,
    struct qmgr_dest_src *, int, int64_t);
static int64_t qmgr_dest_src_wait(const struct qmgr_dest *,
    const struct qmgr_dest_src *, int, int64_t);
static struct qmgr_job *qmgr_dest_take_from(struct qmgr_dest *,
    qmgr_held_fn *, int, int64_t);
static size_t qmgr_dest_ready_one(struct qmgr_dest *, qmgr_held_fn *, int,
    int64_t);
static unsigned qmgr_dest_max(const struct qmgr_dest *);
static void qmgr_dest_push(struct qmgr_dest *, struct qmgr_job *, int);
static struct qmgr_job *qmgr_dest_pop(struct qmgr_dest *, int);
static void qmgr_dest_defer_job(const struct qmgr_dest *,
    struct qmgr_job *);
static void qmgr_dest_suspend(struct qmgr_dest *, int64_t);
static void qmgr_dest_defer_pending(struct qmgr_dest *);
static int qmgr_dest_suspended(const struct qmgr_dest *, int64_t);
static unsigned qmgr_dest_src_max(const struct qmgr_dest *,
    const struct qmgr_dest_src *);
static void qmgr_dest_src_buckets(const struct qmgr_dest *,
    struct qmgr_dest_src *, int64_t);
static const struct shaping_rule *qmgr_dest_rule(const struct qmgr_dest *,
    size_t);
static const char *qmgr_dest_rule_match(const struct shaping_rule *,
    const struct qmgr_job *);
static void qmgr_dest_on_reply(struct qmgr_dest *, const struct qmgr_job *,
    int64_t);
static void qmgr_dest_adapt(struct qmgr_dest *, struct qmgr_dest_src *,
    const struct shaping_rule *, const char *, int64_t);
static void qmgr_dest_expire(struct qmgr_dest *, int64_t);
static void qmgr_dest_provider_adapt(struct qmgr_dest *,
    const struct qmgr_dest_src *, const struct shaping_rule *, const char *,
    int64_t);
static void qmgr_dest_inherit(struct qmgr_dest *, const char *, int64_t);
static struct qmgr_prov_adapt *qmgr_prov_adapt_find(const struct qmgr_dest *,
    const struct qmgr_dest_src *);
static void qmgr_dest_limits_text(const struct qmgr_dest *,
    const struct qmgr_dest_src *, char *, size_t);
static void qmgr_dest_changed(struct qmgr_dest *, struct qmgr_dest_src *,
    const char *, const char *, int, const char *, ...)
    __attribute__((format(printf, 6, 7)));

static unsigned
qmgr_dest_hashkey(const char *key)
{
	unsigned h = 5381;

	for (; *key != '\0'; key++)
		h = h * 33 + (unsigned char)*key;
	return h % QMGR_DEST_BUCKETS;
}

void
qmgr_dest_init(const struct cfg *cfg)
{
	struct vbuf *why = vbuf_create(0);

	/* They name the old file's providers and rules. */
	free(qmgr_prov_adapts);
	qmgr_prov_adapts = NULL;
	qmgr_nprov_adapts = 0;
	/* master checked the file; a change since is reported here. */
	if ((qmgr_shaping = shaping_load(cfg->shaping_file, why)) == NULL) {
		log_warn("%s; delivery is not shaped", why->data);
		qmgr_shaping = shaping_load(NULL, NULL);
	} else if (cfg->shaping_file != NULL)
		log_info("shaping: %s: %zu destination entr%s, %zu provider%s",
		    cfg->shaping_file, qmgr_shaping->nentries,
		    qmgr_shaping->nentries == 1 ? "y" : "ies",
		    qmgr_shaping->nproviders,
		    qmgr_shaping->nproviders == 1 ? "" : "s");
	vbuf_free(why);
	qmgr_provider_init(qmgr_shaping);
}

static void
qmgr_dest_limits(struct qmgr_dest *d, int64_t now)
{
	const char *entry = "default";
	size_t n;

	/* Before qmgr_dest_init (unit tests): no limits. */
	if (qmgr_shaping != NULL) {
		shaping_lookup_provider(qmgr_shaping, d->nexthop, d->prov,
		    &d->lim, &entry);
		/* Its own entry's rules; the provider's come after them. */
		d->sentry = d->prov != NULL && entry == d->prov->e.name ?
		    NULL : shaping_find(qmgr_shaping, entry);
		/*
		 * The rules change only with the provider (a reload restarts
		 * qmgr), and qmgr_dest_learn_mx drops the counts then.
		 */
		n = qmgr_shaping->nrules +
		    (d->sentry != NULL ? d->sentry->nrules : 0) +
		    (d->prov != NULL ? d->prov->e.nrules : 0);
		if (d->hits == NULL && n > 0) {
			d->hits = xcalloc(n * d->nsrcs, sizeof(*d->hits));
			d->nhits = n;
		}
	}
	snprintf(d->entry, sizeof(d->entry), "%s", entry);
	for (n = 0; n < d->nsrcs; n++)
		qmgr_dest_src_buckets(d, &d->srcs[n], now);
}

/* max_connections in force for s: a backoff's, else d's. */
static unsigned
qmgr_dest_src_max(const struct qmgr_dest *d, const struct qmgr_dest_src *s)
{
	if (s->adapt == SHAPING_BACKOFF && s->adapt_rule->max_connections != 0)
		return s->adapt_rule->max_connections;
	return d->lim.max_connections;
}

void
qmgr_dest_src_limits(const struct qmgr_dest *d, const struct qmgr_dest_src *s,
    struct shaping_limits *lim)
{
	*lim = d->lim;
	lim->max_connections = qmgr_dest_src_max(d, s);
	if (s->adapt == SHAPING_BACKOFF && s->adapt_rule->has_rate) {
		lim->rate_count = s->adapt_rule->rate_count;
		lim->rate_interval = s->adapt_rule->rate_interval;
	}
}

int
qmgr_dest_src_adapt(const struct qmgr_dest_src *s, int64_t now)
{
	return now < s->adapt_until ? s->adapt : 0;
}

void
qmgr_dest_avoid_suspended(const struct qmgr_job *job, struct vbuf *list)
{
	const struct qmgr_dest *d = job->dest;
	const struct qmgr_dest_src *s;
	int64_t now = ev_now_ms();

	if (d == NULL || d->nsrcs < 2)
		return;
	for (size_t i = 0; i < d->nsrcs; i++) {
		s = &d->srcs[i];
		if (qmgr_dest_src_adapt(s, now) == SHAPING_SUSPEND &&
		    !qmgr_source_listed(list->len > 0 ? list->data : "",
		    s->addr))
			(void)vbuf_addf(list, "%s%s", list->len > 0 ? " " : "",
			    s->addr);
	}
}

/* s's buckets afresh, for the rates in force for it. */
static void
qmgr_dest_src_buckets(const struct qmgr_dest *d, struct qmgr_dest_src *s,
    int64_t now)
{
	struct shaping_limits lim;

	qmgr_dest_src_limits(d, s, &lim);
	shaping_bucket_init(&s->bucket, lim.rate_count, lim.rate_interval,
	    now);
	shaping_bucket_init(&s->conn_bucket, lim.conn_rate_count,
	    lim.conn_rate_interval, now);
	/* Told to slow down: the next message waits an interval. */
	if (s->adapt == SHAPING_BACKOFF && s->adapt_rule->has_rate)
		s->bucket.tokens = 0;
}

/*
 * ms until every bucket of d (of each source address) has a token: 0
 * when none holds it back.
 */
static int64_t
qmgr_dest_wait(const struct qmgr_dest *d, int64_t now)
{
	int64_t w, most = 0;

	for (size_t i = 0; i < d->nsrcs; i++) {
		w = shaping_bucket_wait(&d->srcs[i].bucket, now);
		if (w > most)
			most = w;
		w = shaping_bucket_wait(&d->srcs[i].conn_bucket, now);
		if (w > most)
			most = w;
	}
	return most;
}

/*
 * d's source addresses: its pool's (smtp.pools; smtp.source_addresses
 * is the pool "default"), else one, "", for the kernel's choice. A pool
 * the configuration no longer has gets one too: smtp defers its mail.
 */
static void
qmgr_dest_sources(struct qmgr_dest *d)
{
	const struct cfg_pool *pool = cfg_pool_lookup(qmgr_cfg, d->pool);
	size_t i;

	d->nsrcs = pool != NULL && pool->naddrs > 0 ? pool->naddrs : 1;
	d->src_turn = &qmgr_pool_turns[pool != NULL ?
	    (size_t)(pool - qmgr_cfg->smtp_pools) : CFG_POOLS_MAX];
	d->srcs = xcalloc(d->nsrcs, sizeof(*d->srcs));
	for (i = 0; pool != NULL && i < pool->naddrs; i++)
		(void)inet_ntop(pool->addrs[i].family, pool->addrs[i].addr,
		    d->srcs[i].addr, sizeof(d->srcs[i].addr));
}

/* The destination of job's key; created when create is set. */
static struct qmgr_dest *
qmgr_dest_get(const struct qmgr_job *job, int create)
{
	struct qmgr_dest *d, **pp;
	unsigned h;

	if ((d = qmgr_dest_find(job->dest_key)) != NULL || !create)
		return d;
	h = qmgr_dest_hashkey(job->dest_key);
	d = xcalloc(1, sizeof(*d));
	snprintf(d->key, sizeof(d->key), "%s", job->dest_key);
	snprintf(d->nexthop, sizeof(d->nexthop), "%s", job->nexthop);
	snprintf(d->pool, sizeof(d->pool), "%s", job->pool);
	d->tail = &d->head;
	d->btail = &d->bhead;
	d->prov = qmgr_provider_of(job->nexthop);
	d->known = qmgr_provider_known(job->nexthop);
	qmgr_dest_sources(d);
	qmgr_dest_limits(d, ev_now_ms());
	qmgr_dest_inherit(d, NULL, ev_now_ms());
	d->hnext = qmgr_dest_hash[h];
	qmgr_dest_hash[h] = d;
	/* At the end of the ring: destinations are served as they came. */
	for (pp = &qmgr_dest_all; *pp != NULL; pp = &(*pp)->next)
		;
	*pp = d;
	qmgr_dest_count++;
	return d;
}

/* The destination of key (next hop, "/POOL" but for the default), or NULL. */
static struct qmgr_dest *
qmgr_dest_find(const char *key)
{
	struct qmgr_dest *d;

	for (d = qmgr_dest_hash[qmgr_dest_hashkey(key)]; d != NULL;
	    d = d->hnext)
		if (strcmp(d->key, key) == 0)
			return d;
	return NULL;
}

/* Forgets d when nothing is left to remember about it. */
static void
qmgr_dest_gc(struct qmgr_dest *d, int64_t now)
{
	struct qmgr_dest **pp;

	if (d->head != NULL || d->bhead != NULL || d->inflight > 0 ||
	    qmgr_dest_wait(d, now) > 0)
		return;
	/* A failing site's streak and window outlive its jobs. */
	if (d->fail_streak > 0 && now - d->last_fail < QMGR_DEST_FAIL_MEMORY_MS)
		return;
	/* So are a backoff and the matches counted towards one. */
	for (size_t i = 0; i < d->nsrcs; i++)
		if (d->srcs[i].adapt != 0)
			return;
	for (size_t i = 0; i < d->nhits * d->nsrcs; i++)
		if (d->hits[i].n > 0 &&
		    now - d->hits[i].since < SHAPING_AFTER_WINDOW * 1000)
			return;
	/* Still dead (probing) for its events: normal again, said once. */
	if (d->dead_until != 0) {
		d->dead_until = 0;
		qmgr_dest_changed(d, NULL, NULL, "failures forgotten", 0,
		    "none for an hour");
	}
	for (pp = &qmgr_dest_hash[qmgr_dest_hashkey(d->key)]; *pp != NULL;
	    pp = &(*pp)->hnext)
		if (*pp == d) {
			*pp = d->hnext;
			break;
		}
	for (pp = &qmgr_dest_all; *pp != NULL; pp = &(*pp)->next)
		if (*pp == d) {
			*pp = d->next;
			break;
		}
	if (qmgr_dest_cursor == d)
		qmgr_dest_cursor = NULL;
	qmgr_dest_count--;
	free(d->hits);
	free(d->srcs);
	free(d);
}

void
qmgr_job_queue(struct qmgr_job *job)
{
	qmgr_dest_enqueue(job, 0);
}

/*
 * Sent again after a lost connection: it goes before the others, unless
 * its destination was suspended meanwhile (then it is deferred, as a
 * new job would be).
 */
void
qmgr_job_requeue(struct qmgr_job *job)
{
	qmgr_dest_enqueue(job, 1);
}

/*
 * job into its destination's lane (front: at its head), or deferred at
 * once when the destination is suspended.
 */
static void
qmgr_dest_enqueue(struct qmgr_job *job, int front)
{
	struct qmgr_dest *d = qmgr_dest_get(job, 1);
	int64_t now = ev_now_ms();

	qmgr_dest_expire(d, now);
	if (qmgr_dest_suspended(d, now)) {
		qmgr_dest_defer_job(d, job);
		return;
	}
	qmgr_dest_push(d, job, front);
}

/* Puts job at the end (front: at the head) of its lane's FIFO in d. */
static void
qmgr_dest_push(struct qmgr_dest *d, struct qmgr_job *job, int front)
{
	struct qmgr_job **head = job->bulk ? &d->bhead : &d->head;
	struct qmgr_job ***tail = job->bulk ? &d->btail : &d->tail;

	if (front) {
		job->next = *head;
		*head = job;
		if (*tail == head)
			*tail = &job->next;
	} else {
		job->next = NULL;
		**tail = job;
		*tail = &job->next;
	}
	d->npending++;
	qmgr_npending++;
	if (job->bulk) {
		d->nbulk++;
		qmgr_nbulk++;
	}
}

/* Takes the first job of d's bulk (else transactional) FIFO, or NULL. */
static struct qmgr_job *
qmgr_dest_pop(struct qmgr_dest *d, int bulk)
{
	struct qmgr_job **head = bulk ? &d->bhead : &d->head;
	struct qmgr_job *job;

	if ((job = *head) == NULL)
		return NULL;
	if ((*head = job->next) == NULL) {
		if (bulk)
			d->btail = &d->bhead;
		else
			d->tail = &d->head;
	}
	job->next = NULL;
	d->npending--;
	qmgr_npending--;
	if (bulk) {
		d->nbulk--;
		qmgr_nbulk--;
	}
	return job;
}

size_t
qmgr_job_npending(void)
{
	return qmgr_npending;
}

size_t
qmgr_job_nbulk(void)
{
	return qmgr_nbulk;
}

size_t
qmgr_job_cancel_pending(const char *qid)
{
	struct qmgr_dest *d, *dnext;
	struct qmgr_job *job, *kept, **ktail;
	size_t n = 0;

	for (d = qmgr_dest_all; d != NULL; d = dnext) {
		dnext = d->next;
		/* Each lane: the pending jobs stay in their order. */
		for (int bulk = 0; bulk <= 1; bulk++) {
			kept = NULL;
			ktail = &kept;
			while ((job = qmgr_dest_pop(d, bulk)) != NULL) {
				if (strcmp(job->qid, qid) == 0) {
					qmgr_job_free(job);
					n++;
				} else {
					*ktail = job;
					ktail = &job->next;
				}
			}
			while ((job = kept) != NULL) {
				kept = job->next;
				qmgr_dest_push(d, job, 0);
			}
		}
		qmgr_dest_gc(d, ev_now_ms());
	}
	return n;
}

/*
 * Whether d may start one more job of the lane now from source address
 * s, which no on_reply rule suspends: a session smtp already holds to it
 * from s (held) is reused without a new connection; else it needs a
 * connection under max_connections and provider_max_connections from s,
 * and under the window (which counts every address). A bulk job also
 * needs a connection outside the transactional reserve, held session or
 * not (it would keep the session from a transactional job). The tokens of
 * the rates are qmgr_dest_take_tokens'.
 */
static int
qmgr_dest_room(const struct qmgr_dest *d, const struct qmgr_dest_src *s,
    unsigned held, int bulk)
{
	unsigned max;

	if ((bulk ? d->bhead : d->head) == NULL)
		return 0;
	if (bulk && !qmgr_dest_bulk_room(d, s))
		return 0;
	/* Whose it is (which provider) is not known yet: one at a time. */
	if (!d->known && d->inflight > 0)
		return 0;
	/* Its mail goes from the pool's other addresses meanwhile. */
	if (s->adapt == SHAPING_SUSPEND)
		return 0;
	max = qmgr_dest_src_max(d, s);
	if (held == 0 && max != 0 && s->inflight >= max)
		return 0;
	/* Narrowed by site failures; a held session is a working one. */
	if (held == 0 && d->window != 0 && d->inflight >= d->window)
		return 0;
	/* The provider's connections from s, all its destinations. */
	if (held == 0 && !qmgr_provider_room(d->prov, s->addr))
		return 0;
	return 1;
}

/*
 * Whether a bulk job to d from s leaves the transactional reserve free:
 * that of s's max_connections, of the window while site failures narrow
 * it, and of its provider's provider_max_connections (the same share).
 */
static int
qmgr_dest_bulk_room(const struct qmgr_dest *d, const struct qmgr_dest_src *s)
{
	unsigned max = qmgr_dest_src_max(d, s), pmax;

	if (max != 0 && s->inflight + shaping_reserve(&d->lim, max) >= max)
		return 0;
	if (d->window != 0 &&
	    d->inflight + shaping_reserve(&d->lim, d->window) >= d->window)
		return 0;
	if (d->prov == NULL || (pmax = d->prov->max_connections) == 0)
		return 1;
	return qmgr_provider_inflight(d->prov, s->addr) +
	    shaping_reserve(&d->lim, pmax) < pmax;
}

/*
 * d's connections: max_connections (the lowest in force at its source
 * addresses), or its narrowed window; 0 any.
 */
static unsigned
qmgr_dest_max(const struct qmgr_dest *d)
{
	unsigned max = 0, m;

	for (size_t i = 0; i < d->nsrcs; i++)
		if ((m = qmgr_dest_src_max(d, &d->srcs[i])) != 0 &&
		    (max == 0 || m < max))
			max = m;

	if (d->window != 0 && (max == 0 || d->window < max))
		max = d->window;
	return max;
}

unsigned
qmgr_dest_reserve(const struct qmgr_dest *d)
{
	return shaping_reserve(&d->lim, qmgr_dest_max(d));
}

static int
qmgr_dest_dead(const struct qmgr_dest *d, int64_t now)
{
	return d->dead_until != 0 && now < d->dead_until;
}

/*
 * Dead, or suspended by on_reply rules at every source address: its jobs
 * are deferred.
 */
static int
qmgr_dest_suspended(const struct qmgr_dest *d, int64_t now)
{
	if (qmgr_dest_dead(d, now))
		return 1;
	for (size_t i = 0; i < d->nsrcs; i++)
		if (qmgr_dest_src_adapt(&d->srcs[i], now) != SHAPING_SUSPEND)
			return 0;
	return 1;
}

/*
 * Defers every recipient of job, which never reaches smtp, with d's last
 * failure; logged as smtp logs a deferral, so log tools and relayctl log
 * see one line per recipient and attempt as usual.
 */
static void
qmgr_dest_defer_job(const struct qmgr_dest *d, struct qmgr_job *job)
{
	char why[QMGR_DEST_REASON_MAX + 64];
	int64_t delay = (int64_t)time(NULL) - job->arrival;

	(void)snprintf(why, sizeof(why), "delivery temporarily suspended: %s",
	    d->reason);
	for (size_t i = 0; i < job->nrcpts; i++) {
		if (job->rcpts[i].done)
			continue;
		qmgr_job_result(&job->rcpts[i], QSTORE_DEFERRED, "4.4.1", why);
		log_info("%s: to=<%s>, relay=none, delay=%" PRId64
		    ", delays=%" PRId64 "/0/0/0, dsn=4.4.1, status=deferred (%s)",
		    job->qid, log_safe(job->rcpts[i].address),
		    delay < 0 ? 0 : delay, delay < 0 ? 0 : delay,
		    log_safe(why));
	}
	qmgr_job_set_relay(job, "none");
	/*
	 * Tried now, after any flush so far: a deferral of a job sent before
	 * a flush is due again at once (qmgr_result.c), which for a job that
	 * never left here would go round as fast as the loop turns.
	 */
	job->dispatched = ev_now_ms();
	qmgr_job_done(job);
}

void
qmgr_dest_flush_dead(void)
{
	struct qmgr_dest *d;
	int64_t now = ev_now_ms();

	for (d = qmgr_dest_all; d != NULL; d = d->next)
		if (qmgr_dest_dead(d, now)) {
			/* Its streak stays: one more failure, and it is dead. */
			d->dead_until = 0;
			qmgr_dest_changed(d, NULL, NULL,
			    "suspension lifted by a flush", 0,
			    "the next failure suspends it again");
		}
}

/* d is dead until its retry interval has passed: its jobs are deferred. */
static void
qmgr_dest_suspend(struct qmgr_dest *d, int64_t now)
{
	int64_t secs = d->lim.retry_interval > 0 ? d->lim.retry_interval :
	    qmgr_cfg->queue_min_backoff;
	char dur[32];

	if (secs < 1)
		secs = 1;
	d->dead_until = now + secs * 1000;
	parse_duration_format(secs, dur, sizeof(dur));
	qmgr_dest_changed(d, NULL, QMGR_DESTEV_DEAD, d->reason, 1,
	    "%u attempts in a row set up no session, mail deferred for %s",
	    d->fail_streak, dur);
	qmgr_dest_defer_pending(d);
}

/* Defers d's pending jobs with d->reason: d is suspended. */
static void
qmgr_dest_defer_pending(struct qmgr_dest *d)
{
	struct qmgr_job *job;

	while ((job = qmgr_dest_pop(d, 0)) != NULL ||
	    (job = qmgr_dest_pop(d, 1)) != NULL)
		qmgr_dest_defer_job(d, job);
}

void
qmgr_dest_outcome(const struct qmgr_job *job)
{
	struct qmgr_dest *d = job->dest;
	const char *why = NULL;
	int64_t now = ev_now_ms();
	int deferred = 0;
	unsigned half;

	if (d == NULL)
		return;
	qmgr_dest_on_reply(d, job, now);
	if (!job->site_fail) {
		/* The server answered: the site is up. */
		if (d->dead_until != 0) {
			d->dead_until = 0;
			qmgr_dest_changed(d, NULL, NULL, "a session was set up", 0,
			    "the site is up again after %u failure(s)",
			    d->fail_streak);
		}
		d->fail_streak = 0;
		if (d->window != 0 && ++d->window >= qmgr_cfg->smtp_processes)
			d->window = 0;
		return;
	}
	for (size_t i = 0; i < job->nrcpts && !deferred; i++) {
		const struct qmgr_rcpt *r = &job->rcpts[i];

		if (!r->done || r->status == QSTORE_DEFERRED) {
			deferred = 1;
			why = r->done ? r->reply : NULL;
		}
	}
	if (!deferred)
		return;
	if (d->fail_streak > 0 && now - d->last_fail >= QMGR_DEST_FAIL_MEMORY_MS)
		d->fail_streak = 0;
	d->fail_streak++;
	d->last_fail = now;
	(void)snprintf(d->reason, sizeof(d->reason), "%s",
	    why != NULL && *why != '\0' ? why : "no session could be set up");
	/* This job is still counted in inflight. */
	half = d->inflight / 2;
	d->window = half > 0 ? half : 1;
	if (d->fail_streak >= QMGR_DEST_DEAD_AFTER &&
	    !qmgr_dest_suspended(d, now))
		qmgr_dest_suspend(d, now);
}

/* d's i'th on_reply rule: its entry's, its provider's, the default's. */
static const struct shaping_rule *
qmgr_dest_rule(const struct qmgr_dest *d, size_t i)
{
	size_t own = d->sentry != NULL ? d->sentry->nrules : 0;
	size_t prov = d->prov != NULL ? d->prov->e.nrules : 0;

	if (i < own)
		return &d->sentry->rules[i];
	if (i < own + prov)
		return &d->prov->e.rules[i - own];
	return &qmgr_shaping->rules[i - own - prov];
}

/* The reply of a deferred recipient of job that r matches, or NULL. */
static const char *
qmgr_dest_rule_match(const struct shaping_rule *r, const struct qmgr_job *job)
{
	const struct qmgr_rcpt *rc;
	const char *last = NULL;

	for (size_t k = 0; k < job->nrcpts; k++) {
		rc = &job->rcpts[k];
		if (!rc->done || rc->status != QSTORE_DEFERRED ||
		    rc->reply == NULL || *rc->reply == '\0')
			continue;
		/* A session's failure gives every recipient its reply. */
		if (last != NULL && strcmp(last, rc->reply) == 0)
			continue;
		last = rc->reply;
		if (shaping_rule_match(r, rc->reply))
			return rc->reply;
	}
	return NULL;
}

/*
 * The first rule that matches a deferral of job counts it, once per
 * attempt, at the source address the job left from; at its after'th
 * match there within SHAPING_AFTER_WINDOW (counted from the first) it
 * acts on that address.
 */
static void
qmgr_dest_on_reply(struct qmgr_dest *d, const struct qmgr_job *job,
    int64_t now)
{
	struct qmgr_dest_src *s = &d->srcs[job->src];
	const struct shaping_rule *r = NULL;
	const char *reply = NULL;
	struct qmgr_dest_hit *h;
	size_t i;

	qmgr_dest_expire(d, now);
	for (i = 0; i < d->nhits; i++) {
		r = qmgr_dest_rule(d, i);
		if ((reply = qmgr_dest_rule_match(r, job)) != NULL)
			break;
	}
	if (reply == NULL)
		return;
	h = &d->hits[job->src * d->nhits + i];
	if (h->n == 0 || now - h->since >= SHAPING_AFTER_WINDOW * 1000) {
		h->n = 0;
		h->since = now;
	}
	if (++h->n < r->after)
		return;
	h->n = 0;
	qmgr_dest_adapt(d, s, r, reply, now);
	/* A provider's rule: its other destinations in the pool too. */
	if (d->prov != NULL && r >= d->prov->e.rules &&
	    r < d->prov->e.rules + d->prov->e.nrules)
		qmgr_dest_provider_adapt(d, s, r, reply, now);
}

/* The action kept for d's provider at s, an address of d's pool; NULL. */
static struct qmgr_prov_adapt *
qmgr_prov_adapt_find(const struct qmgr_dest *d, const struct qmgr_dest_src *s)
{
	for (size_t i = 0; i < qmgr_nprov_adapts; i++)
		if (qmgr_prov_adapts[i].prov == d->prov &&
		    strcmp(qmgr_prov_adapts[i].pool, d->pool) == 0 &&
		    strcmp(qmgr_prov_adapts[i].addr, s->addr) == 0)
			return &qmgr_prov_adapts[i];
	return NULL;
}

/*
 * The provider's rule r acted on d at its address s: it acts on every
 * other destination of d's provider in d's pool at that address, and is
 * kept for those that join later. Providers rate-limit and block a
 * sending address, not a domain: Gmail's 4.7.28 to gmail.com is as much
 * about every Google Workspace domain.
 */
static void
qmgr_dest_provider_adapt(struct qmgr_dest *d, const struct qmgr_dest_src *s,
    const struct shaping_rule *r, const char *reply, int64_t now)
{
	struct qmgr_prov_adapt *pa = qmgr_prov_adapt_find(d, s);
	struct qmgr_dest *o;

	if (pa == NULL) {
		qmgr_prov_adapts = xreallocarray(qmgr_prov_adapts,
		    qmgr_nprov_adapts + 1, sizeof(*qmgr_prov_adapts));
		pa = &qmgr_prov_adapts[qmgr_nprov_adapts++];
		memset(pa, 0, sizeof(*pa));
		pa->prov = d->prov;
		(void)snprintf(pa->pool, sizeof(pa->pool), "%s", d->pool);
		(void)snprintf(pa->addr, sizeof(pa->addr), "%s", s->addr);
	}
	/* As for one destination: a backoff never cuts a suspension short. */
	if (pa->until > now && pa->rule->action == SHAPING_SUSPEND &&
	    r->action == SHAPING_BACKOFF)
		return;
	pa->rule = r;
	pa->until = s->adapt_rule == r ? s->adapt_until :
	    now + r->duration * 1000;
	(void)snprintf(pa->reply, sizeof(pa->reply), "%s", reply);
	for (o = qmgr_dest_all; o != NULL; o = o->next)
		if (o != d && o->prov == d->prov &&
		    strcmp(o->pool, d->pool) == 0)
			qmgr_dest_inherit(o, s->addr, now);
}

/*
 * d (new, or new to its provider) takes its provider's on_reply actions
 * in force in its pool, each at its address, until the provider's end;
 * only the one at addr when addr is not NULL (the action just taken: a
 * provider of many domains and a pool of many addresses would otherwise
 * go over every pair at each match).
 */
static void
qmgr_dest_inherit(struct qmgr_dest *d, const char *addr, int64_t now)
{
	const struct qmgr_prov_adapt *pa;
	struct qmgr_dest_src *s;
	int64_t had;

	if (d->prov == NULL)
		return;
	qmgr_dest_expire(d, now);
	for (size_t i = 0; i < d->nsrcs; i++) {
		s = &d->srcs[i];
		if (addr != NULL && strcmp(s->addr, addr) != 0)
			continue;
		if ((pa = qmgr_prov_adapt_find(d, s)) == NULL ||
		    pa->until <= now)
			continue;
		had = s->adapt_rule == pa->rule ? s->adapt_until : 0;
		qmgr_dest_adapt(d, s, pa->rule, pa->reply, now);
		/* Ends with the provider's, or later if s's own is longer. */
		if (s->adapt_rule == pa->rule)
			s->adapt_until = had > pa->until ? had : pa->until;
	}
}

/*
 * d's limits in force at s, for its log lines: "rate 10/min, connections
 * 1".
 */
static void
qmgr_dest_limits_text(const struct qmgr_dest *d,
    const struct qmgr_dest_src *s, char *buf, size_t size)
{
	struct shaping_limits lim;
	char rate[64], conns[32];

	qmgr_dest_src_limits(d, s, &lim);
	shaping_rate_text(lim.rate_count, lim.rate_interval, rate,
	    sizeof(rate));
	if (lim.max_connections == 0)
		(void)snprintf(conns, sizeof(conns), "unlimited");
	else
		(void)snprintf(conns, sizeof(conns), "%u",
		    lim.max_connections);
	(void)snprintf(buf, size, "rate %s, connections %s", rate, conns);
}

/*
 * A change of d's state at its source address s (NULL: of d itself, at
 * every address): one line, "destination KEY: STATE (reason), what
 * changed", "destination KEY from ADDR: ..." for an address of a pool
 * (state NULL: the state its events give it now, which a dead site keeps
 * while probed), then its events (qmgr_destev_note, with again). The
 * reason may be a remote reply: made safe, and cut at
 * QMGR_DEST_QUOTE_MAX.
 */
static void
qmgr_dest_changed(struct qmgr_dest *d, struct qmgr_dest_src *s,
    const char *state, const char *reason, int again, const char *fmt, ...)
{
	char what[256];
	va_list ap;

	va_start(ap, fmt);
	(void)vsnprintf(what, sizeof(what), fmt, ap);
	va_end(ap);
	log_info("destination %s%s%s: %s (%.*s)%s%s", d->key,
	    s != NULL && s->addr[0] != '\0' ? " from " : "",
	    s != NULL ? s->addr : "", state != NULL ? state :
	    qmgr_destev_state(d, s, ev_now_ms()), QMGR_DEST_QUOTE_MAX,
	    log_safe(reason), what[0] != '\0' ? ", " : "", what);
	qmgr_destev_note(d, s, reason, again);
}

/*
 * Rule r acts on d at its source address s: its time starts again. The
 * same state again (replies of jobs sent before it began) only extends
 * it; a backoff never cuts a running suspension short. When s was the
 * last address of d not suspended, d's pending jobs are deferred.
 */
static void
qmgr_dest_adapt(struct qmgr_dest *d, struct qmgr_dest_src *s,
    const struct shaping_rule *r, const char *reply, int64_t now)
{
	char limits[128], dur[32];
	int64_t until = now + r->duration * 1000;

	if (s->adapt == SHAPING_SUSPEND && r->action == SHAPING_BACKOFF)
		return;
	if (s->adapt == r->action && s->adapt_rule == r) {
		if (until > s->adapt_until)
			s->adapt_until = until;
		return;
	}
	s->adapt = r->action;
	s->adapt_rule = r;
	s->adapt_until = until;
	qmgr_dest_src_buckets(d, s, now);
	parse_duration_format(r->duration, dur, sizeof(dur));
	if (r->action == SHAPING_SUSPEND) {
		(void)snprintf(d->reason, sizeof(d->reason), "%s", reply);
		if (!qmgr_dest_suspended(d, now)) {
			qmgr_dest_changed(d, s, QMGR_DESTEV_SUSPENDED, reply,
			    0, "mail from it held for %s", dur);
			return;
		}
		qmgr_dest_changed(d, s, QMGR_DESTEV_SUSPENDED, reply, 0,
		    "mail deferred for %s", dur);
		qmgr_dest_defer_pending(d);
		return;
	}
	qmgr_dest_limits_text(d, s, limits, sizeof(limits));
	qmgr_dest_changed(d, s, QMGR_DESTEV_BACKOFF, reply, 0, "%s for %s",
	    limits, dur);
}

/* The backoffs or suspensions of d's addresses that are over end. */
static void
qmgr_dest_expire(struct qmgr_dest *d, int64_t now)
{
	struct qmgr_dest_src *s;
	const char *what;
	char limits[128];

	for (size_t i = 0; i < d->nsrcs; i++) {
		s = &d->srcs[i];
		if (s->adapt == 0 || now < s->adapt_until)
			continue;
		what = s->adapt == SHAPING_SUSPEND ? "suspension ended" :
		    "backoff ended";
		s->adapt = 0;
		s->adapt_rule = NULL;
		s->adapt_until = 0;
		qmgr_dest_src_buckets(d, s, now);
		qmgr_dest_limits_text(d, s, limits, sizeof(limits));
		qmgr_dest_changed(d, s, NULL, what, 0, "%s", limits);
	}
}

int64_t
qmgr_dest_adapt_left(const struct qmgr_dest *d, unsigned *nbackoff,
    unsigned *nsuspended)
{
	int64_t now = ev_now_ms(), last = 0;
	unsigned nb = 0, ns = 0;
	int a;

	for (size_t i = 0; i < d->nsrcs; i++) {
		if ((a = qmgr_dest_src_adapt(&d->srcs[i], now)) == 0)
			continue;
		nb += a == SHAPING_BACKOFF;
		ns += a == SHAPING_SUSPEND;
		if (d->srcs[i].adapt_until > last)
			last = d->srcs[i].adapt_until;
	}
	if (nbackoff != NULL)
		*nbackoff = nb;
	if (nsuspended != NULL)
		*nsuspended = ns;
	return last > now ? (last - now + 999) / 1000 : 0;
}

/*
 * Takes a token of s's message rate, for a new connection one of its
 * connection rate, and one of d's provider's message rate from s: all or
 * none.
 */
static int
qmgr_dest_take_tokens(const struct qmgr_dest *d, struct qmgr_dest_src *s,
    int new_conn, int64_t now)
{
	if (!shaping_bucket_take(&s->bucket, now))
		return 0;
	if (new_conn && !shaping_bucket_take(&s->conn_bucket, now)) {
		shaping_bucket_refund(&s->bucket);
		return 0;
	}
	if (!qmgr_provider_rate_take(d->prov, s->addr, now)) {
		shaping_bucket_refund(&s->bucket);
		if (new_conn)
			shaping_bucket_refund(&s->conn_bucket);
		return 0;
	}
	return 1;
}

/*
 * ms until a job of d may take the tokens it needs from s (new_conn: a
 * connection's too); 0 now.
 */
static int64_t
qmgr_dest_src_wait(const struct qmgr_dest *d, const struct qmgr_dest_src *s,
    int new_conn, int64_t now)
{
	int64_t w = shaping_bucket_wait(&s->bucket, now), cw, pw;

	if (new_conn && (cw = shaping_bucket_wait(&s->conn_bucket, now)) > w)
		w = cw;
	if ((pw = qmgr_provider_rate_wait(d->prov, s->addr, now)) > w)
		w = pw;
	return w;
}

/*
 * The addresses d's jobs must not leave from now (set aside, or at their
 * warmup cap), as qmgr_source_avoid lists them for d's first pending job
 * (all of d's jobs have its next hop and pool); NULL for none. NULL too
 * when it names every address not suspended by an on_reply rule: the job
 * goes anyway, and smtp defers it saying why (else it would wait in
 * memory, neither sent nor deferred, until a suspension or a set-aside
 * ended).
 */
static const char *
qmgr_dest_avoid(const struct qmgr_dest *d)
{
	static struct vbuf *list;
	const struct qmgr_job *job = d->head != NULL ? d->head : d->bhead;
	int64_t now;
	size_t navoided = 0;

	if (job == NULL || d->srcs[0].addr[0] == '\0')
		return NULL;
	if (list == NULL)
		list = vbuf_create(MAIL_AVOID_MAX);
	qmgr_source_avoid(job, list);
	if (list->len == 0)
		return NULL;
	now = ev_now_ms();
	for (size_t i = 0; i < d->nsrcs; i++)
		navoided += qmgr_source_listed(list->data, d->srcs[i].addr) ||
		    qmgr_dest_src_adapt(&d->srcs[i], now) == SHAPING_SUSPEND;
	return navoided < d->nsrcs ? list->data : NULL;
}

/*
 * The idle sessions smtp holds to d from s, and in *reusable how many a
 * job could reuse, given d's totals (all, any): those are s's when d has
 * one address, or hold none (no lookup per address then).
 */
static unsigned
qmgr_dest_src_held(const struct qmgr_dest *d, const struct qmgr_dest_src *s,
    qmgr_held_fn *held, unsigned all, unsigned any, unsigned *reusable)
{
	if (all == 0 || d->nsrcs == 1) {
		*reusable = any;
		return all;
	}
	return held(d->key, s->addr, reusable);
}

/*
 * A job of d from the first of its source addresses, in turn, that may
 * start one now (qmgr_dest_take); NULL none.
 */
static struct qmgr_job *
qmgr_dest_take_from(struct qmgr_dest *d, qmgr_held_fn *held, int bulk_ok,
    int64_t now)
{
	struct qmgr_dest_src *s;
	struct qmgr_job *job;
	const char *avoid;
	unsigned all_held, any_reusable, nheld, reusable;
	size_t i, k;
	int bulk, pass;

	if (d->head == NULL && d->bhead == NULL)
		return NULL;
	avoid = qmgr_dest_avoid(d);
	all_held = held(d->key, NULL, &any_reusable);
	/* An address with an idle session first: no new connection. */
	for (pass = any_reusable > 0 ? 0 : 1; pass < 2; pass++)
		for (k = 0; k < d->nsrcs; k++) {
			i = (*d->src_turn + k) % d->nsrcs;
			s = &d->srcs[i];
			if (avoid != NULL &&
			    qmgr_source_listed(avoid, s->addr))
				continue;
			nheld = qmgr_dest_src_held(d, s, held, all_held,
			    any_reusable, &reusable);
			/* Pass 0 tried those with one. */
			if ((pass == 0) != (reusable > 0))
				continue;
			/* Transactional first; bulk outside the reserves. */
			bulk = !qmgr_dest_room(d, s, nheld, 0);
			if ((bulk && (!bulk_ok ||
			    !qmgr_dest_room(d, s, nheld, 1))) ||
			    !qmgr_dest_take_tokens(d, s, reusable == 0, now))
				continue;
			job = qmgr_dest_pop(d, bulk);
			d->inflight++;
			s->inflight++;
			if (bulk) {
				d->binflight++;
				s->binflight++;
			}
			d->sent++;
			*d->src_turn = (i + 1) % d->nsrcs;
			job->dest = d;
			job->src = i;
			job->prov = d->prov;
			qmgr_provider_take(job->prov, s->addr);
			job->new_conn = reusable == 0;
			return job;
		}
	return NULL;
}

struct qmgr_job *
qmgr_dest_take(qmgr_held_fn *held, int bulk_ok)
{
	struct qmgr_dest *d, *start;
	struct qmgr_job *job;
	int64_t now = ev_now_ms();

	if (qmgr_dest_all == NULL)
		return NULL;
	/* Round the ring once, starting after the destination served last. */
	start = qmgr_dest_cursor != NULL && qmgr_dest_cursor->next != NULL ?
	    qmgr_dest_cursor->next : qmgr_dest_all;
	d = start;
	do {
		qmgr_dest_expire(d, now);
		if ((job = qmgr_dest_take_from(d, held, bulk_ok, now)) !=
		    NULL) {
			qmgr_dest_cursor = d;
			return job;
		}
		d = d->next != NULL ? d->next : qmgr_dest_all;
	} while (d != start);
	return NULL;
}

void
qmgr_dest_untake(struct qmgr_job *job)
{
	struct qmgr_dest *d = job->dest;
	struct qmgr_dest_src *s = &d->srcs[job->src];

	job->dest = NULL;
	d->inflight--;
	s->inflight--;
	if (job->bulk) {
		d->binflight--;
		s->binflight--;
	}
	d->sent--;
	qmgr_provider_release(job->prov, s->addr);
	qmgr_provider_rate_refund(job->prov, s->addr);
	job->prov = NULL;
	shaping_bucket_refund(&s->bucket);
	if (job->new_conn)
		shaping_bucket_refund(&s->conn_bucket);
	qmgr_job_requeue(job);
}

void
qmgr_dest_release(struct qmgr_job *job)
{
	struct qmgr_dest *d = job->dest;
	struct qmgr_dest_src *s;

	if (d == NULL)
		return;
	s = &d->srcs[job->src];
	job->dest = NULL;
	d->inflight--;
	s->inflight--;
	if (job->bulk) {
		d->binflight--;
		s->binflight--;
	}
	qmgr_provider_release(job->prov, s->addr);
	job->prov = NULL;
	qmgr_dest_gc(d, ev_now_ms());
}

/*
 * About how many of d's pending jobs could go now: over its source
 * addresses, the room each has for the lanes that may go (avoided
 * addresses counted too: an estimate for the scheduler's slots).
 */
static size_t
qmgr_dest_ready_one(struct qmgr_dest *d, qmgr_held_fn *held, int bulk_ok,
    int64_t now)
{
	const struct qmgr_dest_src *s;
	size_t n = 0, room, ready;
	unsigned all_held, any_reusable, nheld, reusable, max;

	if (d->npending == 0)
		return 0;
	all_held = held(d->key, NULL, &any_reusable);
	for (size_t i = 0; i < d->nsrcs && n < d->npending; i++) {
		s = &d->srcs[i];
		nheld = qmgr_dest_src_held(d, s, held, all_held, any_reusable,
		    &reusable);
		/* The jobs of the lanes that may go; bulk only if any may. */
		ready = qmgr_dest_room(d, s, nheld, 0) ?
		    d->npending - d->nbulk : 0;
		if (bulk_ok && qmgr_dest_room(d, s, nheld, 1))
			ready += d->nbulk;
		if (ready == 0 ||
		    qmgr_dest_src_wait(d, s, reusable == 0, now) > 0)
			continue;
		if (!d->known)
			return 1;
		/* A backoff's max_connections, where one is in force. */
		max = qmgr_dest_src_max(d, s);
		room = max == 0 ? ready : max > s->inflight ?
		    max - s->inflight : 1;
		n += room < ready ? room : ready;
	}
	return n < d->npending ? n : d->npending;
}

size_t
qmgr_dest_ready(qmgr_held_fn *held, int bulk_ok)
{
	struct qmgr_dest *d;
	size_t n = 0;
	int64_t now = ev_now_ms();

	for (d = qmgr_dest_all; d != NULL; d = d->next) {
		qmgr_dest_expire(d, now);
		n += qmgr_dest_ready_one(d, held, bulk_ok, now);
	}
	return n;
}

unsigned
qmgr_dest_processes_reserve(void)
{
	if (qmgr_shaping == NULL)
		return 0;
	return shaping_reserve(&qmgr_shaping->def, qmgr_cfg->smtp_processes);
}

int64_t
qmgr_dest_next_ms(void)
{
	struct qmgr_dest *d, *dnext;
	int64_t now = ev_now_ms(), best = -1, w, cw;

	for (d = qmgr_dest_all; d != NULL; d = dnext) {
		dnext = d->next;
		/* The end of a backoff or suspension: logged, limits back. */
		qmgr_dest_expire(d, now);
		for (size_t i = 0; i < d->nsrcs; i++)
			if (d->srcs[i].adapt != 0 && (best < 0 ||
			    d->srcs[i].adapt_until - now < best))
				best = d->srcs[i].adapt_until - now;
		if (d->head == NULL && d->bhead == NULL) {
			qmgr_dest_gc(d, now);
			continue;
		}
		/*
		 * Any source's buckets may be what holds it back (and whether
		 * the connection rate does depends on whether a session is
		 * held by then): the earliest wait.
		 */
		for (size_t i = 0; i < d->nsrcs; i++) {
			w = qmgr_dest_src_wait(d, &d->srcs[i], 0, now);
			cw = qmgr_dest_src_wait(d, &d->srcs[i], 1, now);
			if (w == 0)
				w = cw;
			if (w > 0 && (best < 0 || w < best))
				best = w;
		}
	}
	return best;
}

const char *
qmgr_dest_state(const struct qmgr_dest *d, qmgr_held_fn *held)
{
	const struct qmgr_dest_src *s;
	int64_t now = ev_now_ms();
	unsigned nheld, reusable, nbackoff, nsuspended;
	int room = 0;

	if (qmgr_dest_dead(d, now))
		return "dead";
	(void)qmgr_dest_adapt_left(d, &nbackoff, &nsuspended);
	if (nsuspended == d->nsrcs)
		return "suspended";
	if (nbackoff + nsuspended > 0)
		return "backoff";
	if (d->head == NULL && d->bhead == NULL)
		return "normal";
	for (size_t i = 0; i < d->nsrcs; i++) {
		s = &d->srcs[i];
		nheld = held(d->key, d->nsrcs > 1 ? s->addr : NULL, &reusable);
		/* Only bulk waits: for connections outside the reserve. */
		if (!qmgr_dest_room(d, s, nheld, 0) &&
		    !qmgr_dest_room(d, s, nheld, 1))
			continue;
		room = 1;
		if (qmgr_dest_src_wait(d, s, reusable == 0, now) == 0)
			return "normal";
	}
	return room ? "pacing" : "at-limit";
}

int
qmgr_dest_walk(int (*fn)(const struct qmgr_dest *, void *), void *arg)
{
	const struct qmgr_dest *d;

	for (d = qmgr_dest_all; d != NULL; d = d->next)
		if (fn(d, arg) != 0)
			return -1;
	return 0;
}

const struct shaping *
qmgr_dest_shaping(void)
{
	return qmgr_shaping;
}

int64_t
qmgr_dest_retry_interval(const char *key)
{
	struct shaping_limits lim;
	const char *entry;

	if (qmgr_shaping == NULL)
		return 0;
	shaping_lookup_provider(qmgr_shaping, key, qmgr_provider_of(key), &lim,
	    &entry);
	return lim.retry_interval;
}

void
qmgr_dest_learn_mx(const char *key, const char *mx)
{
	const struct shaping_provider *prov;
	struct qmgr_dest *d;

	if (!qmgr_provider_learn(key, mx))
		return;
	/* Every pool's destination of that next hop (a change is rare). */
	for (d = qmgr_dest_all; d != NULL; d = d->next) {
		if (strcmp(d->nexthop, key) != 0)
			continue;
		d->known = 1;
		if ((prov = qmgr_provider_of(key)) == d->prov)
			continue;
		/* Jobs at smtp stay counted under the provider they went. */
		d->prov = prov;
		free(d->hits);
		d->hits = NULL;
		d->nhits = 0;
		qmgr_dest_limits(d, ev_now_ms());
		qmgr_dest_inherit(d, NULL, ev_now_ms());
	}
}

int64_t
qmgr_dest_suspended_ms(const char *key)
{
	const struct qmgr_dest *d = qmgr_dest_find(key);
	int64_t now = ev_now_ms(), until = 0, first = 0;

	if (d == NULL || !qmgr_dest_suspended(d, now))
		return 0;
	if (qmgr_dest_dead(d, now))
		until = d->dead_until;
	/* Suspended at every address too: till the first comes back. */
	for (size_t i = 0; i < d->nsrcs; i++) {
		if (qmgr_dest_src_adapt(&d->srcs[i], now) != SHAPING_SUSPEND) {
			first = 0;
			break;
		}
		if (first == 0 || d->srcs[i].adapt_until < first)
			first = d->srcs[i].adapt_until;
	}
	if (first > until)
		until = first;
	return until > now ? until - now : 0;
}
