/*
 * smtp_source.c - the source address of an outbound connection.
 *
 * A connection leaves from the address of the message's pool (smtp.pools;
 * smtp.source_addresses is the pool "default") that qmgr chose for the
 * job (MAIL_ATTR_SOURCE): qmgr counts each destination's connections and
 * rates per source address, and takes the pool's addresses in turn. When
 * that address cannot reach the host (a pool of both families, a host of
 * the other), the next usable one in turn is taken instead. qmgr, which
 * sees every smtp process's replies, also names the addresses not to use
 * (MAIL_ATTR_AVOID): those set aside for the next hop's provider after a
 * reputation refusal, and warmup addresses at their daily cap for it
 * (qmgr_source.c). The others carry on; when none is left the mail waits
 * (smtp_deliver.c).
 */
#include <sys/socket.h>
#include <sys/types.h>

#include <arpa/inet.h>
#include <netinet/in.h>

#include <stdio.h>
#include <string.h>

#include "log.h"
#include "smtp.h"

static unsigned turns[CFG_POOLS_MAX];

static int	usable(const struct cidr *, const struct smtp_target *);
static int	avoided_cidr(const struct smtp_avoid *, const struct cidr *);

int
smtp_source_avoided(const struct smtp_avoid *avoid, const char *addr)
{
	for (size_t i = 0; avoid != NULL && i < avoid->n; i++)
		if (strcmp(avoid->addr[i], addr) == 0)
			return 1;
	return 0;
}

/* Whether c, as text, is in avoid. */
static int
avoided_cidr(const struct smtp_avoid *avoid, const struct cidr *c)
{
	char a[64];

	if (avoid == NULL || avoid->n == 0)
		return 0;
	(void)inet_ntop(c->family, c->addr, a, sizeof(a));
	return smtp_source_avoided(avoid, a);
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
    const struct smtp_target *t, const struct smtp_avoid *avoid,
    struct sockaddr_storage *ss, socklen_t *len, char *src, size_t srcsize)
{
	const struct cidr *c, *pick = NULL, *avoided = NULL;
	size_t i, p;
	unsigned *turn;
	char a[64];

	src[0] = '\0';
	if (cfg == NULL || pool == NULL || pool->naddrs == 0)
		return 0;
	p = (size_t)(pool - cfg->smtp_pools);
	ASSERT(p < cfg->nsmtp_pools && p < CFG_POOLS_MAX);
	turn = &turns[p];
	for (i = 0; avoid != NULL && avoid->want != NULL &&
	    i < pool->naddrs && pick == NULL; i++) {
		c = &pool->addrs[i];
		(void)inet_ntop(c->family, c->addr, a, sizeof(a));
		/* Not once refused in this request (source_refused). */
		if (strcmp(a, avoid->want) == 0 && usable(c, t) &&
		    !smtp_source_avoided(avoid, a))
			pick = c;
	}
	for (i = 0; i < pool->naddrs && pick == NULL; i++) {
		c = &pool->addrs[(*turn + i) % pool->naddrs];
		if (!usable(c, t))
			continue;
		if (!avoided_cidr(avoid, c))
			pick = c;
		else if (avoided == NULL)
			avoided = c;
	}
	/*
	 * smtp_deliver.c waits when the whole pool is avoided; this is a
	 * pool of two families whose addresses of t's are all avoided.
	 */
	if (pick == NULL && (pick = avoided) == NULL)
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

int
smtp_source_pool_avoided(const struct cfg_pool *pool,
    const struct smtp_avoid *avoid)
{
	if (pool == NULL || pool->naddrs == 0)
		return 0;
	for (size_t i = 0; i < pool->naddrs; i++)
		if (!avoided_cidr(avoid, &pool->addrs[i]))
			return 0;
	return 1;
}
