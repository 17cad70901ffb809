/*
 * smtp_dnsanswer.c - DNS answers, parsed: the MX and A/AAAA records smtp
 * looks for. Resolvers relay whatever anyone publishes, so this is kept
 * apart from the lookups, pure and bounded, for fuzz_dns_answer.
 */
#include <sys/socket.h>
#include <sys/types.h>

#include <arpa/inet.h>
#include <arpa/nameser.h>
#include <netinet/in.h>
#include <resolv.h>

#include <stdio.h>
#include <string.h>

#include "smtp.h"
#include "vbuf.h"

/*
 * The MX records of an answer (what anyone may publish, relayed by a
 * resolver): names expanded, trailing dots gone, over-long names and
 * records that are not MX/IN skipped. SMTP_DNS_OK with *n records, or
 * NODATA / TEMPFAIL (malformed) with why set.
 */
int
smtp_dns_parse_mx(const unsigned char *ans, size_t len, struct smtp_mx *mx,
    size_t max, size_t *n, struct vbuf *why)
{
	char name[NS_MAXDNAME];
	ns_msg msg;
	ns_rr rr;
	int count, i;

	*n = 0;
	if (len > SMTP_DNS_ANSWER_MAX || ns_initparse(ans, (int)len,
	    &msg) == -1) {
		vbuf_setf(why, "malformed DNS reply");
		return SMTP_DNS_TEMPFAIL;
	}
	count = ns_msg_count(msg, ns_s_an);
	for (i = 0; i < count && *n < max; i++) {
		const unsigned char *rd;
		size_t nl;

		if (ns_parserr(&msg, ns_s_an, i, &rr) == -1)
			break;
		if (ns_rr_type(rr) != ns_t_mx || ns_rr_class(rr) != ns_c_in)
			continue;
		if (ns_rr_rdlen(rr) < 3)
			continue;
		rd = ns_rr_rdata(rr);
		if (dn_expand(ns_msg_base(msg), ns_msg_end(msg), rd + 2, name,
		    sizeof(name)) < 0)
			continue;
		nl = strlen(name);
		while (nl > 0 && name[nl - 1] == '.')
			name[--nl] = '\0';
		if (nl > SMTP_HOST_MAX)
			continue;
		mx[*n].pref = ns_get16(rd);
		memcpy(mx[*n].host, name, nl + 1);
		(*n)++;
	}
	if (*n == 0) {
		vbuf_setf(why, "No MX records");
		return SMTP_DNS_NODATA;
	}
	return SMTP_DNS_OK;
}

/*
 * Appends the addresses of type (ns_t_a or ns_t_aaaa) in an answer to
 * t[*n..max), each a target host:port. Records of another type, class or
 * length are skipped. Returns 0, or -1 if the answer is malformed.
 */
int
smtp_dns_parse_addrs(const unsigned char *ans, size_t len, int type,
    const char *host, uint16_t port, struct smtp_target *t, size_t max,
    size_t *n)
{
	ns_msg msg;
	ns_rr rr;
	int count, i;

	if (len > SMTP_DNS_ANSWER_MAX || ns_initparse(ans, (int)len,
	    &msg) == -1)
		return -1;
	count = ns_msg_count(msg, ns_s_an);
	for (i = 0; i < count && *n < max; i++) {
		struct smtp_target *p = &t[*n];

		if (ns_parserr(&msg, ns_s_an, i, &rr) == -1)
			break;
		if ((int)ns_rr_type(rr) != type || ns_rr_class(rr) != ns_c_in)
			continue;
		memset(p, 0, sizeof(*p));
		if (type == ns_t_a && ns_rr_rdlen(rr) == 4) {
			struct sockaddr_in *sin = (struct sockaddr_in *)&p->ss;

			sin->sin_family = AF_INET;
			memcpy(&sin->sin_addr, ns_rr_rdata(rr), 4);
			sin->sin_port = htons(port);
			p->sslen = sizeof(*sin);
			inet_ntop(AF_INET, &sin->sin_addr, p->ip,
			    sizeof(p->ip));
		} else if (type == ns_t_aaaa && ns_rr_rdlen(rr) == 16) {
			struct sockaddr_in6 *s6 =
			    (struct sockaddr_in6 *)&p->ss;

			s6->sin6_family = AF_INET6;
			memcpy(&s6->sin6_addr, ns_rr_rdata(rr), 16);
			s6->sin6_port = htons(port);
			p->sslen = sizeof(*s6);
			inet_ntop(AF_INET6, &s6->sin6_addr, p->ip,
			    sizeof(p->ip));
		} else
			continue;
		p->port = port;
		(void)snprintf(p->host, sizeof(p->host), "%s", host);
		(*n)++;
	}
	return 0;
}
