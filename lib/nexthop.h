/*
 * nexthop.h - the next hop of a recipient domain, computed in one place.
 *
 * qmgr groups recipients into jobs by next hop and sends the next hop to
 * smtp, which resolves it and caches sessions by it; the transport table
 * of petrel.yaml names next hops in the same notation (cfg_nexthop_key in
 * lib/cfg applies the table). All three go through here, as Postfix's
 * nexthop does. The canonical key is
 * "[host]:port" when the host's address records are used as they are (a
 * bracketed transport entry, an address literal) and "host:port" when
 * the host's MX records are looked up first; the host is lower case,
 * IPv6 addresses are bare inside the brackets.
 */
#ifndef PETREL_NEXTHOP_H
#define PETREL_NEXTHOP_H

#include <stddef.h>
#include <stdint.h>

#include "vbuf.h"

#define NEXTHOP_HOST_MAX	255	/* RFC 1035 name length */
#define NEXTHOP_KEY_MAX		(NEXTHOP_HOST_MAX + 8)	/* "[" "]:65535" */
#define NEXTHOP_PORT_DEFAULT	25

struct nexthop {
	char		 host[NEXTHOP_HOST_MAX + 1];
	uint16_t	 port;
	int		 no_mx;		/* use host's addresses, skip MX */
};

/*
 * The next hop for recipient domain: via when not NULL (the transport
 * entry that matches the domain), else the domain itself (an address
 * literal, "[192.0.2.1]" or "[IPv6:2001:db8::1]", as that address).
 * Writes the canonical key into key (NEXTHOP_KEY_MAX + 1 bytes do) and
 * returns 0; -1 when domain is empty or too long (key is then "").
 */
int	nexthop_key(const char *domain, const struct nexthop *via, char *key,
	    size_t size);

/*
 * Parses "[host]:port", "host:port", "[host]" or "host" (the default port
 * is 25; brackets skip MX). Returns 0, or -1 with a reason in why. The
 * host is only checked for length and for characters that no host name
 * or address has; callers that need a strict host name check it.
 */
int	nexthop_parse(const char *s, struct nexthop *, struct vbuf *why);

/* Writes nh's canonical key into key; -1 if it does not fit. */
int	nexthop_format(const struct nexthop *, char *key, size_t size);

#endif
