/*
 * dnsres.c - DNS queries through the configured resolver. See dnsres.h.
 *
 * glibc keeps the name servers of a struct __res_state in nsaddr_list
 * (IPv4) after res_ninit(3); replacing the first one and setting nscount
 * to 1 sends every query to dns.resolver, on its port.
 */
#include <sys/socket.h>
#include <sys/types.h>

#include <arpa/inet.h>
#include <arpa/nameser.h>
#include <netdb.h>
#include <netinet/in.h>
#include <resolv.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dnsres.h"
#include "parse.h"

static int	dnsres_setup(const struct cfg *, struct vbuf *);

static struct __res_state dnsres_state;
static int dnsres_ready;
static char dnsres_spec[128];	/* resolver of dnsres_state; "" system */

int
dnsres_parse(const char *spec, struct sockaddr_in *sin, struct vbuf *why)
{
	char host[64];
	const char *colon;
	uint64_t port = NAMESERVER_PORT;
	size_t n;

	memset(sin, 0, sizeof(*sin));
	sin->sin_family = AF_INET;
	if (spec[0] == '[' || ((colon = strchr(spec, ':')) != NULL &&
	    strchr(colon + 1, ':') != NULL)) {
		if (why != NULL)
			vbuf_setf(why, "dns.resolver: IPv6 resolver "
			    "addresses are not supported");
		return -1;
	}
	n = colon != NULL ? (size_t)(colon - spec) : strlen(spec);
	if (n == 0 || n >= sizeof(host))
		goto bad;
	memcpy(host, spec, n);
	host[n] = '\0';
	if (inet_pton(AF_INET, host, &sin->sin_addr) != 1)
		goto bad;
	if (colon != NULL && parse_u64(colon + 1, 1, 65535, &port) == -1)
		goto bad;
	sin->sin_port = htons((uint16_t)port);
	return 0;
bad:
	if (why != NULL)
		vbuf_setf(why, "dns.resolver: not an address: %.64s", spec);
	return -1;
}

int
dnsres_configured(const struct cfg *cfg)
{
	return cfg != NULL && cfg->dns_resolver != NULL &&
	    cfg->dns_resolver[0] != '\0';
}

/* (Re)initialises dnsres_state for cfg's resolver. 0 or -1. */
static int
dnsres_setup(const struct cfg *cfg, struct vbuf *why)
{
	struct sockaddr_in sin;
	const char *spec;

	spec = dnsres_configured(cfg) ? cfg->dns_resolver : "";
	if (dnsres_ready && strcmp(spec, dnsres_spec) == 0)
		return 0;
	if (strlen(spec) >= sizeof(dnsres_spec)) {
		if (why != NULL)
			vbuf_setf(why, "dns.resolver: too long");
		return -1;
	}
	if (spec[0] != '\0' && dnsres_parse(spec, &sin, why) == -1)
		return -1;
	if (dnsres_ready) {
		res_nclose(&dnsres_state);
		dnsres_ready = 0;
	}
	memset(&dnsres_state, 0, sizeof(dnsres_state));
	if (res_ninit(&dnsres_state) == -1) {
		if (why != NULL)
			vbuf_setf(why, "resolver initialisation failed");
		return -1;
	}
	if (spec[0] != '\0') {
		dnsres_state.nsaddr_list[0] = sin;
		dnsres_state.nscount = 1;
	}
	memcpy(dnsres_spec, spec, strlen(spec) + 1);
	dnsres_ready = 1;
	return 0;
}

int
dnsres_query(const struct cfg *cfg, const char *name, int type,
    unsigned char *answer, int size, struct vbuf *why)
{
	int len;

	if (dnsres_setup(cfg, why) == -1) {
		h_errno = TRY_AGAIN;
		return -1;
	}
	len = res_nquery(&dnsres_state, name, ns_c_in, type, answer, size);
	if (len < 0)
		h_errno = dnsres_state.res_h_errno;
	else if (len > size)
		len = size;	/* truncated answer: parse what fits */
	return len;
}
