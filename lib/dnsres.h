/*
 * dnsres.h - DNS queries through the configured resolver (dns.resolver).
 *
 * A thin wrapper over libresolv's res_n* functions: with dns.resolver set
 * ("IP", "IP:port"; IPv6 resolvers are not supported by this wrapper and
 * are reported as an error), every query goes to that one server; unset,
 * the system resolver (/etc/resolv.conf) is used exactly as res_query(3)
 * would. Used by smtp (MX and address lookups) and relayctl (domain check).
 * The name is not "resolv.h" so as not to shadow the system header.
 */
#ifndef PETREL_DNSRES_H
#define PETREL_DNSRES_H

#include <netinet/in.h>

#include <stddef.h>

#include "cfg.h"
#include "vbuf.h"

#define DNSRES_ANSWER_MAX	65536	/* largest answer buffer needed */

/*
 * Parses a dns.resolver value into sin (port 53 unless given). Returns 0,
 * or -1 with the reason in why (malformed, or an IPv6 address).
 */
int	dnsres_parse(const char *spec, struct sockaddr_in *sin,
	    struct vbuf *why);
/*
 * 1 if cfg names a resolver (queries bypass /etc/resolv.conf), else 0.
 */
int	dnsres_configured(const struct cfg *);
/*
 * res_nquery(3) for name, class IN, type through cfg's resolver; the
 * process keeps one resolver state, set up at the first call and again
 * when dns.resolver changes. Returns the answer length, or -1 with
 * h_errno set (HOST_NOT_FOUND, NO_DATA, TRY_AGAIN, NO_RECOVERY; TRY_AGAIN
 * also when the resolver cannot be set up, reason in why if not NULL).
 */
int	dnsres_query(const struct cfg *, const char *name, int type,
	    unsigned char *answer, int size, struct vbuf *why);

#endif
