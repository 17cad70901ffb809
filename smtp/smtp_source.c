/*
 * smtp_source.c - the source address of an outbound connection.
 *
 * A connection leaves from the next address of the message's pool
 * (smtp.pools; smtp.source_addresses is the pool "default"), in turn,
 * so a pool's addresses share its mail. An address that a next hop
 * refused for its reputation (bclass_reputation: a blocklist listing,
 * a low IP reputation) is set aside for that next hop for
 * smtp.reputation_set_aside, and the pool's other addresses carry on;
 * when all of them are set aside the mail waits (smtp_deliver.c).
 *
 * Each smtp process keeps its own turns and its own table, as it does
 * the failover hops (no shared state to lock; each process learns from
 * one refusal). XXX The table is keyed by next hop, not yet by the
 * provider of shaping.yaml (every MX of one provider): two domains
 * hosted by one provider each cost a refusal. See smtp(8).
 */
#include <sys/socket.h>
#include <sys/types.h>

#include <arpa/inet.h>
#include <netinet/in.h>

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "log.h"
#include "smtp.h"

#define SMTP_ASIDE_MAX	256	/* set-aside entries; the oldest reused */

struct smtp_aside {
	char		 addr[64];			/* "" when free */
	char		 key[NEXTHOP_KEY_MAX + 1];	/* next hop */
	int64_t		 until;				/* monotonic ms */
};

static struct smtp_aside asides[SMTP_ASIDE_MAX];
static unsigned turns[CFG_POOLS_MAX];

static int	aside_find(const char *, const char *);
static int	usable(const struct cidr *, const struct smtp_target *);

/* Whether addr is set aside for key now. */
static int
aside_find(const char *addr, const char *key)
{
	int64_t now = smtp_now_ms();
	size_t i;

	for (i = 0; i < SMTP_ASIDE_MAX; i++)
		if (asides[i].addr[0] != '\0' && asides[i].until > now &&
		    strcmp(asides[i].addr, addr) == 0 &&
		    strcmp(asides[i].key, key) == 0)
			return 1;
	return 0;
}

/* Whether c may be the source for t: its family, loopback to loopback. */
static int
usable(const struct cidr *c, const struct smtp_target *t)
{
	int target_lo, source_lo;

	if (c->family != t->ss.ss_family)
		return 0;
	target_lo = (t->ss.ss_family == AF_INET && ntohl(((const struct
	    sockaddr_in *)&t->ss)->sin_addr.s_addr) >> 24 == 127) ||
	    (t->ss.ss_family == AF_INET6 && IN6_IS_ADDR_LOOPBACK(
	    &((const struct sockaddr_in6 *)&t->ss)->sin6_addr));
	source_lo = (c->family == AF_INET && c->addr[0] == 127) ||
	    (c->family == AF_INET6 && IN6_IS_ADDR_LOOPBACK(
	    (const struct in6_addr *)c->addr));
	return !target_lo || source_lo;
}

int
smtp_source_pick(const struct cfg *cfg, const struct cfg_pool *pool,
    const struct smtp_target *t, const char *key,
    struct sockaddr_storage *ss, socklen_t *len, char *src, size_t srcsize)
{
	const struct cidr *c, *pick = NULL, *aside = NULL;
	char a[64];
	size_t i, p;
	unsigned *turn;

	src[0] = '\0';
	if (cfg == NULL || pool == NULL || pool->naddrs == 0)
		return 0;
	p = (size_t)(pool - cfg->smtp_pools);
	ASSERT(p < cfg->nsmtp_pools && p < CFG_POOLS_MAX);
	turn = &turns[p];
	for (i = 0; i < pool->naddrs && pick == NULL; i++) {
		c = &pool->addrs[(*turn + i) % pool->naddrs];
		if (!usable(c, t))
			continue;
		(void)inet_ntop(c->family, c->addr, a, sizeof(a));
		if (!aside_find(a, key))
			pick = c;
		else if (aside == NULL)
			aside = c;	/* only if every usable one is aside */
	}
	if (pick == NULL && (pick = aside) == NULL)
		return 0;
	c = pick;
	*turn = (unsigned)((size_t)(c - pool->addrs) + 1) % pool->naddrs;
	(void)inet_ntop(c->family, c->addr, src, (socklen_t)srcsize);
	memset(ss, 0, sizeof(*ss));
	if (c->family == AF_INET) {
		struct sockaddr_in *sin = (struct sockaddr_in *)ss;

		sin->sin_family = AF_INET;
		memcpy(&sin->sin_addr, c->addr, 4);
		*len = sizeof(*sin);
	} else {
		struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)ss;

		sin6->sin6_family = AF_INET6;
		memcpy(&sin6->sin6_addr, c->addr, 16);
		*len = sizeof(*sin6);
	}
	return 1;
}

void
smtp_source_set_aside(const struct cfg *cfg, const char *addr,
    const char *key, const char *why)
{
	struct smtp_aside *e, *old = &asides[0];
	int64_t now = smtp_now_ms();
	size_t i;

	if (cfg == NULL || cfg->smtp_reputation_set_aside == 0 ||
	    addr[0] == '\0')
		return;
	for (i = 0, e = NULL; i < SMTP_ASIDE_MAX && e == NULL; i++) {
		if (strcmp(asides[i].addr, addr) == 0 &&
		    strcmp(asides[i].key, key) == 0)
			e = &asides[i];
		else if (asides[i].until < old->until)
			old = &asides[i];	/* free or expired first */
	}
	if (e == NULL) {
		e = old;
		(void)snprintf(e->addr, sizeof(e->addr), "%s", addr);
		(void)snprintf(e->key, sizeof(e->key), "%s", key);
		e->until = 0;
	}
	if (e->until <= now)
		log_warn("source address %s set aside for %s for %" PRId64
		    "s: %s", addr, key, cfg->smtp_reputation_set_aside,
		    log_safe(why));
	e->until = now + cfg->smtp_reputation_set_aside * 1000;
}

int
smtp_source_pool_aside(const struct cfg_pool *pool, const char *key)
{
	char a[64];
	size_t i;

	if (pool == NULL || pool->naddrs == 0)
		return 0;
	for (i = 0; i < pool->naddrs; i++) {
		(void)inet_ntop(pool->addrs[i].family, pool->addrs[i].addr, a,
		    sizeof(a));
		if (!aside_find(a, key))
			return 0;
	}
	return 1;
}
