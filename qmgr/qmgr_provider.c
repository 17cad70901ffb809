/*
 * qmgr_provider.c - providers: which destinations share a receiving
 * provider, learned from their MX hosts, and the connections each provider
 * has at smtp and the messages it was sent from each source address
 * (provider_max_connections and provider_max_message_rate count per
 * source address, as every shaping limit does).
 *
 * The shaping file's providers (shaping.yaml(5)) are named by the suffixes
 * of their MX hosts, as KumoMTA rolls sites up: every Google Workspace
 * domain has its MX at .google.com, and Google's limits are for all of
 * them together. qmgr resolves nothing itself; smtp, which does, names the
 * MX hosts of the next hop in each reply (MAIL_ATTR_MX), and this room
 * remembers the provider they match for the next-hop key, or that it has
 * none. Until then qmgr_dest.c sends a destination one job at a time, so
 * that a burst to a provider's customer domain never goes out under the
 * default's limits before its first reply tells whose it is.
 *
 * The map is bounded (QMGR_PROV_MAP_MAX keys, the least recently learned
 * forgotten first) and lives in memory only: after a restart it is learned
 * again from the first replies. Every reply refreshes its key, so a domain
 * that moves its MX to another provider is counted under the new one from
 * its next reply on.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "event.h"
#include "log.h"
#include "qmgr.h"
#include "xalloc.h"

#define QMGR_PROV_BUCKETS	4096

/* One next-hop key and the provider its MX hosts matched (or none). */
struct qmgr_prov_key {
	struct qmgr_prov_key	*hnext;
	struct qmgr_prov_key	*older, *newer;	/* learned order */
	const struct shaping_provider *prov;	/* NULL: none matched */
	char			 key[NEXTHOP_KEY_MAX + 1];
};

/*
 * A provider's jobs at smtp from one source address, and its bucket of
 * provider_max_message_rate from there (kept while qmgr runs: forgetting
 * it would let a burst through).
 */
struct qmgr_prov_src {
	char			 addr[QMGR_SRC_ADDR_MAX];	/* "": the */
						/* kernel's choice */
	unsigned		 n;
	struct shaping_bucket	 bucket;
};

/* Per provider: its source addresses seen, a few (the pools'). */
struct qmgr_prov_count {
	struct qmgr_prov_src	*srcs;
	size_t			 nsrcs;
};

static const struct shaping *qmgr_prov_shaping;
static unsigned (*qmgr_prov_held)(const struct shaping_provider *,
    const char *);
static struct qmgr_prov_count *qmgr_prov_inflight;	/* per provider */
static size_t qmgr_prov_ninflight;
static struct qmgr_prov_key *qmgr_prov_hash[QMGR_PROV_BUCKETS];
static struct qmgr_prov_key *qmgr_prov_oldest, *qmgr_prov_newest;
static size_t qmgr_prov_count;

static unsigned qmgr_provider_hashkey(const char *);
static struct qmgr_prov_key *qmgr_provider_find(const char *);
static void qmgr_provider_unlink(struct qmgr_prov_key *);
static void qmgr_provider_append(struct qmgr_prov_key *);
static void qmgr_provider_forget_oldest(void);
static size_t qmgr_provider_index(const struct shaping_provider *);
static struct qmgr_prov_src *qmgr_provider_src(
    const struct shaping_provider *, const char *, int);

static unsigned
qmgr_provider_hashkey(const char *key)
{
	unsigned h = 5381;

	for (; *key != '\0'; key++)
		h = h * 33 + (unsigned char)*key;
	return h % QMGR_PROV_BUCKETS;
}

void
qmgr_provider_init(const struct shaping *sh)
{
	struct qmgr_prov_key *k, *next;

	for (k = qmgr_prov_oldest; k != NULL; k = next) {
		next = k->newer;
		free(k);
	}
	memset(qmgr_prov_hash, 0, sizeof(qmgr_prov_hash));
	qmgr_prov_oldest = qmgr_prov_newest = NULL;
	qmgr_prov_count = 0;
	for (size_t i = 0; i < qmgr_prov_ninflight; i++)
		free(qmgr_prov_inflight[i].srcs);
	free(qmgr_prov_inflight);
	qmgr_prov_inflight = NULL;
	qmgr_prov_ninflight = 0;
	qmgr_prov_shaping = sh;
	if (sh != NULL && sh->nproviders > 0) {
		qmgr_prov_ninflight = sh->nproviders;
		qmgr_prov_inflight = xcalloc(sh->nproviders,
		    sizeof(*qmgr_prov_inflight));
	}
}

static struct qmgr_prov_key *
qmgr_provider_find(const char *key)
{
	struct qmgr_prov_key *k;

	for (k = qmgr_prov_hash[qmgr_provider_hashkey(key)]; k != NULL;
	    k = k->hnext)
		if (strcmp(k->key, key) == 0)
			return k;
	return NULL;
}

static void
qmgr_provider_unlink(struct qmgr_prov_key *k)
{
	if (k->older != NULL)
		k->older->newer = k->newer;
	else
		qmgr_prov_oldest = k->newer;
	if (k->newer != NULL)
		k->newer->older = k->older;
	else
		qmgr_prov_newest = k->older;
	k->older = k->newer = NULL;
}

static void
qmgr_provider_append(struct qmgr_prov_key *k)
{
	k->older = qmgr_prov_newest;
	k->newer = NULL;
	if (qmgr_prov_newest != NULL)
		qmgr_prov_newest->newer = k;
	else
		qmgr_prov_oldest = k;
	qmgr_prov_newest = k;
}

static void
qmgr_provider_forget_oldest(void)
{
	struct qmgr_prov_key *k = qmgr_prov_oldest, **pp;

	if (k == NULL)
		return;
	qmgr_provider_unlink(k);
	for (pp = &qmgr_prov_hash[qmgr_provider_hashkey(k->key)];
	    *pp != NULL; pp = &(*pp)->hnext)
		if (*pp == k) {
			*pp = k->hnext;
			break;
		}
	qmgr_prov_count--;
	free(k);
}

const struct shaping_provider *
qmgr_provider_of(const char *key)
{
	const struct qmgr_prov_key *k;

	if (qmgr_prov_shaping == NULL || qmgr_prov_shaping->nproviders == 0)
		return NULL;
	return (k = qmgr_provider_find(key)) != NULL ? k->prov : NULL;
}

int
qmgr_provider_known(const char *key)
{
	if (qmgr_prov_shaping == NULL || qmgr_prov_shaping->nproviders == 0)
		return 1;
	return qmgr_provider_find(key) != NULL;
}

int
qmgr_provider_learn(const char *key, const char *mx)
{
	const char *hosts[QMGR_PROV_MX_MAX];
	char buf[QMGR_MX_LIST_MAX + 1], *p, *tok;
	const struct shaping_provider *prov;
	struct qmgr_prov_key *k;
	size_t n = 0;
	unsigned h;

	if (qmgr_prov_shaping == NULL || qmgr_prov_shaping->nproviders == 0)
		return 0;
	(void)snprintf(buf, sizeof(buf), "%s", mx);
	for (p = buf; n < QMGR_PROV_MX_MAX &&
	    (tok = strsep(&p, " ")) != NULL; )
		if (*tok != '\0')
			hosts[n++] = tok;
	/* More hosts than we look at: "every MX matches" is not known. */
	if (p != NULL && strspn(p, " ") != strlen(p))
		n = 0;
	prov = shaping_provider_match(qmgr_prov_shaping, hosts, n);
	if ((k = qmgr_provider_find(key)) != NULL) {
		qmgr_provider_unlink(k);
		qmgr_provider_append(k);
		if (k->prov == prov)
			return 0;
		log_info("%s: provider %s (MX %s)", key,
		    prov != NULL ? prov->e.name : "none", log_safe(mx));
		k->prov = prov;
		return 1;
	}
	if (qmgr_prov_count >= QMGR_PROV_MAP_MAX)
		qmgr_provider_forget_oldest();
	k = xcalloc(1, sizeof(*k));
	(void)snprintf(k->key, sizeof(k->key), "%s", key);
	k->prov = prov;
	h = qmgr_provider_hashkey(k->key);
	k->hnext = qmgr_prov_hash[h];
	qmgr_prov_hash[h] = k;
	qmgr_provider_append(k);
	qmgr_prov_count++;
	if (prov != NULL)
		log_info("%s: provider %s (MX %s)", key, prov->e.name,
		    log_safe(mx));
	return 1;
}

static size_t
qmgr_provider_index(const struct shaping_provider *p)
{
	return (size_t)(p - qmgr_prov_shaping->providers);
}

/*
 * p's counts from source, made when create is set (else NULL when there
 * are none).
 */
static struct qmgr_prov_src *
qmgr_provider_src(const struct shaping_provider *p, const char *source,
    int create)
{
	struct qmgr_prov_count *c = &qmgr_prov_inflight[qmgr_provider_index(p)];
	struct qmgr_prov_src *s;

	for (size_t i = 0; i < c->nsrcs; i++)
		if (strcmp(c->srcs[i].addr, source) == 0)
			return &c->srcs[i];
	if (!create)
		return NULL;
	c->srcs = xreallocarray(c->srcs, c->nsrcs + 1, sizeof(*c->srcs));
	s = &c->srcs[c->nsrcs++];
	(void)snprintf(s->addr, sizeof(s->addr), "%s", source);
	s->n = 0;
	shaping_bucket_init(&s->bucket, p->rate_count, p->rate_interval,
	    ev_now_ms());
	return s;
}

void
qmgr_provider_held_by(unsigned (*held)(const struct shaping_provider *,
    const char *))
{
	qmgr_prov_held = held;
}

int
qmgr_provider_room(const struct shaping_provider *p, const char *source)
{
	unsigned open;

	if (p == NULL || p->max_connections == 0)
		return 1;
	open = qmgr_provider_inflight(p, source);
	/* Sessions smtp keeps open to its destinations are connections. */
	if (qmgr_prov_held != NULL)
		open += qmgr_prov_held(p, source);
	return open < p->max_connections;
}

void
qmgr_provider_take(const struct shaping_provider *p, const char *source)
{
	if (p != NULL)
		qmgr_provider_src(p, source, 1)->n++;
}

void
qmgr_provider_release(const struct shaping_provider *p, const char *source)
{
	struct qmgr_prov_src *s;

	if (p != NULL && (s = qmgr_provider_src(p, source, 0)) != NULL &&
	    s->n > 0)
		s->n--;
}

unsigned
qmgr_provider_inflight(const struct shaping_provider *p, const char *source)
{
	const struct qmgr_prov_count *c;
	const struct qmgr_prov_src *s;
	unsigned all = 0;

	if (p == NULL)
		return 0;
	if (source != NULL)
		return (s = qmgr_provider_src(p, source, 0)) != NULL ? s->n : 0;
	c = &qmgr_prov_inflight[qmgr_provider_index(p)];
	for (size_t i = 0; i < c->nsrcs; i++)
		all += c->srcs[i].n;
	return all;
}

int
qmgr_provider_rate_take(const struct shaping_provider *p, const char *source,
    int64_t now)
{
	if (p == NULL || p->rate_count == 0)
		return 1;
	return shaping_bucket_take(&qmgr_provider_src(p, source, 1)->bucket,
	    now);
}

void
qmgr_provider_rate_refund(const struct shaping_provider *p,
    const char *source)
{
	struct qmgr_prov_src *s;

	if (p != NULL && p->rate_count != 0 &&
	    (s = qmgr_provider_src(p, source, 0)) != NULL)
		shaping_bucket_refund(&s->bucket);
}

int64_t
qmgr_provider_rate_wait(const struct shaping_provider *p, const char *source,
    int64_t now)
{
	const struct qmgr_prov_src *s;

	if (p == NULL || p->rate_count == 0 ||
	    (s = qmgr_provider_src(p, source, 0)) == NULL)
		return 0;
	return shaping_bucket_wait(&s->bucket, now);
}
