/*
 * smtp_dns.c - next-hop resolution for smtp(8).
 *
 * The next hop comes from qmgr as lib/nexthop's key (the transport table
 * entry for the recipient domain, else the domain itself): "[host]:port"
 * is that host's addresses, "host:port" its MX hosts in preference order,
 * else (no MX records) the host itself as an implicit MX (RFC 5321 5.1).
 * A null MX (RFC 7505) means the domain accepts no mail. All lookups go
 * through a small resolver interface (struct smtp_dns_ops) so that tests and a future
 * configurable resolver can replace the system one: MX records come from
 * libresolv's res_query, addresses from getaddrinfo (so /etc/hosts works
 * for transport hosts such as "localhost"). With dns.resolver set, MX and
 * A/AAAA records come from that server through lib/dnsres instead (names
 * without a dot, such as "localhost", still go to getaddrinfo).
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
#include "log.h"
#include "smtp.h"
#include "vbuf.h"

static int	sys_mx(const char *, struct smtp_mx *, size_t, size_t *,
		    struct vbuf *);
static int	sys_addr(const char *, uint16_t, struct smtp_target *, size_t,
		    size_t *, struct vbuf *);
static int	mx_cmp(const void *, const void *);
static void	mx_sort(struct smtp_mx *, size_t);
static int	is_ip_literal(const char *);
static int	res_addr(const char *, uint16_t, struct smtp_target *, size_t,
		    size_t *, struct vbuf *);
static int	herr_status(int, struct vbuf *);

static const struct smtp_dns_ops sys_ops = {
	.mx = sys_mx,
	.addr = sys_addr,
};
static const struct smtp_dns_ops *dns_ops = &sys_ops;
static int res_ready;
static const struct cfg *dns_cfg;	/* of the current smtp_dns_nexthop */

void
smtp_dns_set_ops(const struct smtp_dns_ops *ops)
{
	dns_ops = ops == NULL ? &sys_ops : ops;
}

/* MX records of domain through res_query(3); the names are expanded. */
static int
sys_mx(const char *domain, struct smtp_mx *mx, size_t max, size_t *n,
    struct vbuf *why)
{
	static unsigned char ans[SMTP_DNS_ANSWER_MAX];
	int len;

	*n = 0;
	if (dnsres_configured(dns_cfg)) {
		vbuf_reset(why);
		len = dnsres_query(dns_cfg, domain, ns_t_mx, ans, sizeof(ans),
		    why);
		if (len < 0)
			return herr_status(h_errno, why);
		goto parse;
	}
	if (!res_ready) {
		if (res_init() == -1) {
			vbuf_setf(why, "resolver initialisation failed");
			return SMTP_DNS_TEMPFAIL;
		}
		res_ready = 1;
	}
	len = res_query(domain, ns_c_in, ns_t_mx, ans, sizeof(ans));
	if (len < 0) {
		switch (h_errno) {
		case HOST_NOT_FOUND:
			vbuf_setf(why, "Host not found");
			return SMTP_DNS_NOTFOUND;
		case NO_DATA:
			vbuf_setf(why, "No address associated with name");
			return SMTP_DNS_NODATA;
		default:
			/* TRY_AGAIN, NO_RECOVERY, no server: keep queued. */
			vbuf_setf(why, "Host not found, try again");
			return SMTP_DNS_TEMPFAIL;
		}
	}
parse:
	if ((size_t)len > sizeof(ans))
		len = sizeof(ans);
	return smtp_dns_parse_mx(ans, (size_t)len, mx, max, n, why);
}

/* Addresses of host through getaddrinfo(3), in the order it sorts them. */
static int
sys_addr(const char *host, uint16_t port, struct smtp_target *t, size_t max,
    size_t *n, struct vbuf *why)
{
	struct addrinfo hints, *res, *ai;
	int rc;

	*n = 0;
	if (dnsres_configured(dns_cfg) && strchr(host, '.') != NULL &&
	    !is_ip_literal(host))
		return res_addr(host, port, t, max, n, why);
	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_protocol = IPPROTO_TCP;
	rc = getaddrinfo(host, NULL, &hints, &res);
	if (rc != 0) {
		vbuf_setf(why, "%s", gai_strerror(rc));
		switch (rc) {
		case EAI_NONAME:
			return SMTP_DNS_NOTFOUND;
#ifdef EAI_NODATA
		case EAI_NODATA:
			return SMTP_DNS_NODATA;
#endif
		default:
			return SMTP_DNS_TEMPFAIL;
		}
	}
	for (ai = res; ai != NULL && *n < max; ai = ai->ai_next) {
		struct smtp_target *p = &t[*n];

		if ((ai->ai_family != AF_INET && ai->ai_family != AF_INET6) ||
		    ai->ai_addrlen > sizeof(p->ss))
			continue;
		memset(p, 0, sizeof(*p));
		memcpy(&p->ss, ai->ai_addr, ai->ai_addrlen);
		p->sslen = ai->ai_addrlen;
		p->port = port;
		if (ai->ai_family == AF_INET) {
			struct sockaddr_in *sin = (struct sockaddr_in *)&p->ss;

			sin->sin_port = htons(port);
			inet_ntop(AF_INET, &sin->sin_addr, p->ip,
			    sizeof(p->ip));
		} else {
			struct sockaddr_in6 *s6 =
			    (struct sockaddr_in6 *)&p->ss;

			s6->sin6_port = htons(port);
			inet_ntop(AF_INET6, &s6->sin6_addr, p->ip,
			    sizeof(p->ip));
		}
		(void)snprintf(p->host, sizeof(p->host), "%s", host);
		(*n)++;
	}
	freeaddrinfo(res);
	if (*n == 0) {
		vbuf_setf(why, "No address associated with name");
		return SMTP_DNS_NODATA;
	}
	return SMTP_DNS_OK;
}

/* h_errno of a failed query as a smtp_dns_status, with the reason. */
static int
herr_status(int herr, struct vbuf *why)
{
	switch (herr) {
	case HOST_NOT_FOUND:
		vbuf_setf(why, "Host not found");
		return SMTP_DNS_NOTFOUND;
	case NO_DATA:
		vbuf_setf(why, "No address associated with name");
		return SMTP_DNS_NODATA;
	default:
		if (why->len == 0)
			vbuf_setf(why, "Host not found, try again");
		return SMTP_DNS_TEMPFAIL;
	}
}

/* A, then AAAA records of host through the configured resolver. */
static int
res_addr(const char *host, uint16_t port, struct smtp_target *t, size_t max,
    size_t *n, struct vbuf *why)
{
	static unsigned char ans[SMTP_DNS_ANSWER_MAX];
	static const int types[] = { ns_t_a, ns_t_aaaa };
	size_t k;
	int len, rc = SMTP_DNS_NODATA, st;

	*n = 0;
	for (k = 0; k < sizeof(types) / sizeof(types[0]); k++) {
		vbuf_reset(why);
		len = dnsres_query(dns_cfg, host, types[k], ans, sizeof(ans),
		    why);
		if (len < 0) {
			st = herr_status(h_errno, why);
			if (st == SMTP_DNS_TEMPFAIL || (st ==
			    SMTP_DNS_NOTFOUND && rc != SMTP_DNS_TEMPFAIL))
				rc = st;
			continue;
		}
		if (smtp_dns_parse_addrs(ans, (size_t)len, types[k], host,
		    port, t, max, n) == -1)
			rc = SMTP_DNS_TEMPFAIL;
	}
	if (*n > 0)
		return SMTP_DNS_OK;
	if (rc == SMTP_DNS_NODATA)
		vbuf_setf(why, "No address associated with name");
	else if (rc == SMTP_DNS_NOTFOUND)
		vbuf_setf(why, "Host not found");
	return rc;
}

static int
mx_cmp(const void *a, const void *b)
{
	const struct smtp_mx *x = a, *y = b;

	return x->pref < y->pref ? -1 : x->pref > y->pref;
}

/* Preference order; hosts of equal preference in random order (5.1). */
static void
mx_sort(struct smtp_mx *mx, size_t n)
{
	size_t i, j, k;

	qsort(mx, n, sizeof(*mx), mx_cmp);
	for (i = 0; i < n; i = j) {
		for (j = i + 1; j < n && mx[j].pref == mx[i].pref; j++)
			;
		for (k = j - 1; k > i; k--) {
			size_t r;
			struct smtp_mx tmp = mx[k];

			r = i + arc4random_uniform((uint32_t)(k - i + 1));
			mx[k] = mx[r];
			mx[r] = tmp;
		}
	}
}

static int
is_ip_literal(const char *s)
{
	unsigned char buf[sizeof(struct in6_addr)];

	return inet_pton(AF_INET, s, buf) == 1 ||
	    inet_pton(AF_INET6, s, buf) == 1;
}

int
smtp_dns_nexthop(const struct cfg *cfg, const struct nexthop *nh,
    struct smtp_target *t, size_t max, size_t *n, struct smtp_fail *fail)
{
	struct smtp_mx mx[SMTP_MX_MAX];
	const char *host = nh->host;
	struct vbuf why;
	size_t nmx, i, got;
	uint16_t port = nh->port;
	int no_mx = nh->no_mx, rc, temp = 0, nulls = 0;

	*n = 0;
	dns_cfg = cfg;
	/* An address is never looked up as a name. */
	if (is_ip_literal(host))
		no_mx = 1;

	vbuf_init(&why, 256);
	if (!no_mx) {
		rc = dns_ops->mx(host, mx, SMTP_MX_MAX, &nmx, &why);
		switch (rc) {
		case SMTP_DNS_OK:
			break;
		case SMTP_DNS_NODATA:
			no_mx = 1;	/* implicit MX: the domain itself */
			break;
		case SMTP_DNS_NOTFOUND:
			smtp_fail_set(fail, SMTP_RCPT_BOUNCED, "5.4.4", 0,
			    "Host or domain name not found. Name service "
			    "error for name=%s type=MX: %s", host, why.data);
			goto fail;
		default:
			smtp_fail_set(fail, SMTP_RCPT_DEFERRED, "4.4.3", 0,
			    "Host or domain name not found. Name service "
			    "error for name=%s type=MX: %s", host, why.data);
			goto fail;
		}
	}
	if (no_mx) {
		(void)snprintf(mx[0].host, sizeof(mx[0].host), "%s", host);
		mx[0].pref = 0;
		nmx = 1;
	} else {
		mx_sort(mx, nmx);
		for (i = 0; i < nmx; i++)
			if (mx[i].host[0] == '\0')
				nulls++;
		if (nulls > 0 && (size_t)nulls == nmx) {
			smtp_fail_set(fail, SMTP_RCPT_BOUNCED, "5.1.10", 0,
			    "Domain %s does not accept mail (nullMX)", host);
			goto fail;
		}
	}
	for (i = 0; i < nmx && *n < max; i++) {
		size_t lim = max - *n;

		if (mx[i].host[0] == '\0')
			continue;	/* a stray null MX among real ones */
		if (lim > SMTP_ADDR_PER_HOST)
			lim = SMTP_ADDR_PER_HOST;
		rc = dns_ops->addr(mx[i].host, port, t + *n, lim, &got, &why);
		if (rc == SMTP_DNS_OK) {
			*n += got;
			continue;
		}
		if (rc == SMTP_DNS_TEMPFAIL)
			temp = 1;
		log_debug("%s: address lookup: %s", log_safe(mx[i].host),
		    why.data);
	}
	if (*n == 0) {
		if (temp)
			smtp_fail_set(fail, SMTP_RCPT_DEFERRED, "4.4.3", 0,
			    "Host or domain name not found. Name service "
			    "error for name=%s type=A: %s",
			    nmx == 1 ? mx[0].host : host, why.data);
		else
			smtp_fail_set(fail, SMTP_RCPT_BOUNCED, "5.4.4", 0,
			    "Host or domain name not found. Name service "
			    "error for name=%s type=A: %s",
			    nmx == 1 ? mx[0].host : host, why.data);
		goto fail;
	}
	vbuf_release(&why);
	return 0;

fail:
	vbuf_release(&why);
	return -1;
}
