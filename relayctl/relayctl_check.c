/*
 * relayctl_check.c - "relayctl domain check DOMAIN": looks up the DNS
 * records a sending domain needs and judges each one.
 *
 * Required: the DKIM key at the active selector matches our private key,
 * SPF (evaluated with libspf2) passes for every source address of every
 * pool (smtp.source_addresses, smtp.pools), and a DMARC record exists. Warnings only: MX records, and
 * forward-confirmed reverse DNS of the source addresses. Every query goes
 * through lib/dnsres, so dns.resolver applies; libspf2 is given a DNS
 * layer of our own for the same reason (its resolv layer always reads
 * /etc/resolv.conf). Answers are parsed with ns_initparse/ns_parserr and
 * every record count and length is bounded. See relayctl(8).
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
#include <strings.h>
#include <time.h>

#include <spf2/spf.h>

#include "dkimkey.h"
#include "dnsres.h"
#include "json.h"
#include "relayctl.h"
#include "vbuf.h"
#include "xalloc.h"

#define CHECK_RR_MAX	32	/* records of other types per answer */

enum check_res {
	CHECK_PASS,
	CHECK_WARN,
	CHECK_FAIL,
};

struct check {
	const char	*name;
	int		 required;
	enum check_res	 res;
	struct vbuf	 detail;
	struct vbuf	 fix;
};

struct check_run {
	const struct cfg *cfg;
	const char	*domain;
	struct check	*checks;
	size_t		 n;
};

static struct check *check_new(struct check_run *, const char *, int);
static void	check_set(struct check *, enum check_res, const char *,
		    const char *, ...) __attribute__((format(printf, 4, 5)));
static int	check_query(const struct cfg *, const char *, int,
		    unsigned char *, ns_msg *, struct vbuf *);
static int	check_txt_get(const struct cfg *, const char *,
		    struct relayctl_txt *, struct vbuf *);
static int	check_selector(const struct cfg *,
		    const struct relayctl_domain_args *, char *, size_t);
static void	check_dkim(struct check_run *,
		    const struct relayctl_domain_args *);
static SPF_dns_rr_t *check_spf_lookup(SPF_dns_server_t *, const char *,
		    ns_type, int);
static void	check_spf(struct check_run *);
static void	check_dmarc(struct check_run *);
static void	check_mx(struct check_run *);
static void	check_ptr(struct check_run *);
static const char *check_res_name(enum check_res);
static int	check_print(const struct check_run *, int);

static unsigned char check_ans[DNSRES_ANSWER_MAX];

static struct check *
check_new(struct check_run *run, const char *name, int required)
{
	struct check *c;

	run->checks = xreallocarray(run->checks, run->n + 1,
	    sizeof(*run->checks));
	c = &run->checks[run->n++];
	memset(c, 0, sizeof(*c));
	c->name = name;
	c->required = required;
	c->res = CHECK_FAIL;
	vbuf_init(&c->detail, 0);
	vbuf_init(&c->fix, 0);
	return c;
}

static void
check_set(struct check *c, enum check_res res, const char *fix,
    const char *fmt, ...)
{
	va_list ap;

	c->res = res;
	vbuf_reset(&c->detail);
	va_start(ap, fmt);
	(void)vbuf_vaddf(&c->detail, fmt, ap);
	va_end(ap);
	vbuf_reset(&c->fix);
	if (fix != NULL)
		(void)vbuf_adds(&c->fix, fix);
}

/*
 * One query into check_ans, parsed into msg. Returns 1 (answer), 0 (no
 * such name or no record of that type), -1 (lookup failed; why).
 */
static int
check_query(const struct cfg *cfg, const char *name, int type,
    unsigned char *ans, ns_msg *msg, struct vbuf *why)
{
	int len;

	vbuf_reset(why);
	len = dnsres_query(cfg, name, type, ans, DNSRES_ANSWER_MAX, why);
	if (len < 0) {
		switch (h_errno) {
		case HOST_NOT_FOUND:
		case NO_DATA:
			return 0;
		default:
			if (why->len == 0)
				vbuf_setf(why, "DNS lookup of %s failed (%s)",
				    name, hstrerror(h_errno));
			return -1;
		}
	}
	if (ns_initparse(ans, len, msg) == -1) {
		vbuf_setf(why, "malformed DNS reply for %s", name);
		return -1;
	}
	return ns_msg_count(*msg, ns_s_an) > 0;
}

/*
 * The TXT records of name (relayctl_txt.c parses them). 1 some, 0 none,
 * -1 lookup failed (why).
 */
static int
check_txt_get(const struct cfg *cfg, const char *name,
    struct relayctl_txt *t, struct vbuf *why)
{
	ns_msg msg;
	int rc;

	t->n = 0;
	if ((rc = check_query(cfg, name, ns_t_txt, check_ans, &msg,
	    why)) <= 0)
		return rc;
	if ((rc = relayctl_txt_parse(ns_msg_base(msg),
	    (size_t)(ns_msg_end(msg) - ns_msg_base(msg)), t)) == -1)
		vbuf_setf(why, "malformed DNS reply for %s", name);
	return rc;
}

/*
 * The active selector of the domain, from the registry (read as
 * mail_owner). 1 found, 0 none active, -1 not registered or error
 * (reported on stderr by the registry step).
 */
static int
check_selector(const struct cfg *cfg, const struct relayctl_domain_args *da,
    char *out, size_t size)
{
	struct dkimkey_domain d;
	int idx, rc = -1;

	if (relayctl_domain_fetch(cfg, da, &d) != RELAYCTL_EXIT_OK)
		return -1;
	if ((idx = dkimkey_active(&d, time(NULL))) == -1)
		rc = 0;
	else {
		(void)snprintf(out, size, "%s", d.sels[idx].name);
		rc = 1;
	}
	dkimkey_domain_release(&d);
	return rc;
}

static void
check_dkim(struct check_run *run, const struct relayctl_domain_args *da)
{
	char sel[DKIMKEY_SELECTOR_MAX + 1], name[NS_MAXDNAME];
	struct check *c = check_new(run, "dkim", 1);
	struct relayctl_txt t;
	struct vbuf pem, p, why, val, pub;
	size_t i;
	int rc, found = 0;

	memset(&t, 0, sizeof(t));
	vbuf_init(&pem, 0);
	vbuf_init(&p, 0);
	vbuf_init(&why, 0);
	vbuf_init(&val, 0);
	vbuf_init(&pub, 0);
	if ((rc = check_selector(run->cfg, da, sel, sizeof(sel))) == -1) {
		check_set(c, CHECK_FAIL, "register it: relayctl domain add "
		    "DOMAIN", "%s is not a registered sending domain",
		    run->domain);
		goto done;
	}
	if (rc == 0) {
		check_set(c, CHECK_FAIL, "add a key: relayctl domain rotate "
		    "DOMAIN", "no DKIM selector of %s is active", run->domain);
		goto done;
	}
	if (dkimkey_key_read(run->cfg, run->domain, sel, &pem, &why) == -1 ||
	    relayctl_dkim_public(pem.data, pem.len, &p, NULL, NULL,
	    &why) == -1) {
		check_set(c, CHECK_FAIL, "run as root or a member of "
		    "dkim.group; check dkim.key_directory",
		    "cannot read the private key of selector %s: %s", sel,
		    why.data);
		goto done;
	}
	(void)snprintf(name, sizeof(name), "%s._domainkey.%s", sel,
	    run->domain);
	if ((rc = check_txt_get(run->cfg, name, &t, &why)) == -1) {
		check_set(c, CHECK_FAIL, "check dns.resolver and the domain's "
		    "name servers", "%s", why.data);
		goto done;
	}
	if (rc == 0) {
		check_set(c, CHECK_FAIL, "publish the TXT record shown by "
		    "`relayctl domain show DOMAIN`", "no TXT record at %s",
		    name);
		goto done;
	}
	for (i = 0; i < t.n; i++) {
		if (!relayctl_txt_tag(t.rec[i].data, "p", &val))
			continue;
		found = 1;
		relayctl_txt_nospace(val.data, &pub);
		if (strcmp(pub.data, p.data) == 0) {
			check_set(c, CHECK_PASS, NULL, "%s publishes the "
			    "public key of our active key (selector %s)",
			    name, sel);
			goto done;
		}
	}
	if (found)
		check_set(c, CHECK_FAIL, "replace the TXT record with the one "
		    "shown by `relayctl domain show DOMAIN`",
		    "the key published at %s (p=) does not match our private "
		    "key for selector %s", name, sel);
	else
		check_set(c, CHECK_FAIL, "publish the TXT record shown by "
		    "`relayctl domain show DOMAIN`",
		    "TXT record at %s has no p= tag (not a DKIM key)", name);
done:
	relayctl_txt_free(&t);
	vbuf_wipe(&pem);
	vbuf_release(&pem);
	vbuf_release(&p);
	vbuf_release(&why);
	vbuf_release(&val);
	vbuf_release(&pub);
}

/*
 * libspf2 DNS layer: one query through dnsres (so dns.resolver applies),
 * the answer converted to libspf2's record set the way its resolv layer
 * does (TXT strings joined, names expanded).
 */
static SPF_dns_rr_t *
check_spf_lookup(SPF_dns_server_t *srv, const char *domain, ns_type type,
    int should_cache)
{
	static unsigned char ans[DNSRES_ANSWER_MAX];
	const struct cfg *cfg = srv->hook;
	char name[NS_MAXDNAME];
	const unsigned char *rd;
	SPF_dns_rr_t *rr;
	ns_msg msg;
	ns_rr r;
	size_t l;
	int len, count, i, cnt = 0;

	(void)should_cache;
	len = dnsres_query(cfg, domain, (int)type, ans, sizeof(ans), NULL);
	if (len < 0) {
		if (h_errno == HOST_NOT_FOUND)
			return SPF_dns_rr_new_nxdomain(srv, domain);
		return SPF_dns_rr_new_init(srv, domain, type, 0,
		    h_errno == NO_DATA ? NO_DATA : TRY_AGAIN);
	}
	if ((rr = SPF_dns_rr_new_init(srv, domain, type, 0,
	    NETDB_SUCCESS)) == NULL)
		return NULL;
	if (ns_initparse(ans, len, &msg) == -1) {
		rr->herrno = TRY_AGAIN;
		return rr;
	}
	count = ns_msg_count(msg, ns_s_an);
	for (i = 0; i < count && cnt < CHECK_RR_MAX; i++) {
		if (ns_parserr(&msg, ns_s_an, i, &r) == -1)
			break;
		if (ns_rr_type(r) != type || ns_rr_class(r) != ns_c_in)
			continue;
		rd = ns_rr_rdata(r);
		l = ns_rr_rdlen(r);
		switch (type) {
		case ns_t_a:
		case ns_t_aaaa:
			if (l != (type == ns_t_a ? 4U : 16U) ||
			    SPF_dns_rr_buf_realloc(rr, cnt, l) != SPF_E_SUCCESS)
				continue;
			memcpy(rr->rr[cnt], rd, l);
			break;
		case ns_t_mx:
		case ns_t_ptr:
			if (type == ns_t_mx) {
				if (l < 3)
					continue;
				rd += 2;
			}
			if (dn_expand(ns_msg_base(msg), ns_msg_end(msg), rd,
			    name, sizeof(name)) < 0)
				continue;
			l = strlen(name) + 1;
			if (SPF_dns_rr_buf_realloc(rr, cnt, l) != SPF_E_SUCCESS)
				continue;
			memcpy(rr->rr[cnt], name, l);
			break;
		case ns_t_txt:
		case ns_t_spf:
			if (SPF_dns_rr_buf_realloc(rr, cnt, l + 1) !=
			    SPF_E_SUCCESS)
				continue;
			(void)relayctl_txt_join(rd, l, rr->rr[cnt]->txt);
			break;
		default:
			continue;
		}
		cnt++;
	}
	rr->num_rr = cnt;
	if (cnt == 0)
		rr->herrno = NO_DATA;
	return rr;
}

static void
check_spf(struct check_run *run)
{
	char addr[INET6_ADDRSTRLEN], from[320];
	SPF_dns_server_t dns;
	SPF_server_t *srv;
	SPF_request_t *req;
	SPF_response_t *resp;
	SPF_result_t r;
	struct check *c;
	struct vbuf fix, msgs;
	const struct cidr *a;
	size_t i;
	int j, nm;

	if (cfg_source_address(run->cfg, 0) == NULL) {
		c = check_new(run, "spf", 1);
		check_set(c, CHECK_WARN, "set smtp.source_addresses to the "
		    "relay's sending addresses, then run the check again",
		    "smtp.source_addresses is not set: the sending addresses "
		    "to evaluate SPF for are unknown");
		return;
	}
	memset(&dns, 0, sizeof(dns));
	dns.lookup = check_spf_lookup;
	dns.name = "petrel";
	dns.hook = (void *)(uintptr_t)run->cfg;
	vbuf_init(&fix, 0);
	vbuf_init(&msgs, 0);
	(void)snprintf(from, sizeof(from), "postmaster@%s", run->domain);
	if ((srv = SPF_server_new_dns(&dns, 0)) == NULL) {
		c = check_new(run, "spf", 1);
		check_set(c, CHECK_FAIL, NULL, "libspf2: cannot create "
		    "the SPF server");
		goto done;
	}
	/* Every address of every pool (smtp.pools) may send. */
	for (i = 0; (a = cfg_source_address(run->cfg, i)) != NULL; i++) {
		c = check_new(run, "spf", 1);
		inet_ntop(a->family, a->addr, addr, sizeof(addr));
		vbuf_reset(&fix);
		(void)vbuf_addf(&fix, "add %s:%s to the SPF record of %s",
		    a->family == AF_INET ? "ip4" : "ip6", addr, run->domain);
		if ((req = SPF_request_new(srv)) == NULL) {
			check_set(c, CHECK_FAIL, NULL, "libspf2: out of "
			    "memory");
			continue;
		}
		if ((a->family == AF_INET ? SPF_request_set_ipv4(req,
		    *(const struct in_addr *)(const void *)a->addr) :
		    SPF_request_set_ipv6(req,
		    *(const struct in6_addr *)(const void *)a->addr)) !=
		    SPF_E_SUCCESS || SPF_request_set_env_from(req, from) != 0) {
			check_set(c, CHECK_FAIL, NULL, "libspf2: bad request "
			    "for %s", addr);
			SPF_request_free(req);
			continue;
		}
		resp = NULL;
		(void)SPF_request_query_mailfrom(req, &resp);
		r = resp != NULL ? SPF_response_result(resp) :
		    SPF_RESULT_TEMPERROR;
		vbuf_reset(&msgs);
		if (resp != NULL) {
			nm = SPF_response_messages(resp);
			for (j = 0; j < nm && j < 8; j++) {
				SPF_error_t *e = SPF_response_message(resp, j);

				if (e == NULL || SPF_error_message(e) == NULL)
					continue;
				(void)vbuf_addf(&msgs, "%s%s", msgs.len > 0 ?
				    "; " : "", SPF_error_message(e));
			}
			if (msgs.len == 0 && SPF_response_errcode(resp) !=
			    SPF_E_SUCCESS)
				(void)vbuf_adds(&msgs, SPF_strerror(
				    SPF_response_errcode(resp)));
		}
		switch (r) {
		case SPF_RESULT_PASS:
			check_set(c, CHECK_PASS, NULL, "%s: pass for %s", addr,
			    from);
			break;
		case SPF_RESULT_SOFTFAIL:
		case SPF_RESULT_NEUTRAL:
		case SPF_RESULT_NONE:
			check_set(c, CHECK_FAIL, fix.data, "%s: %s for %s%s",
			    addr, SPF_strresult(r), from, r ==
			    SPF_RESULT_NONE ? " (no SPF record)" : "");
			break;
		case SPF_RESULT_FAIL:
			check_set(c, CHECK_FAIL, fix.data, "%s: fail for %s "
			    "(the SPF record does not authorise it)", addr,
			    from);
			break;
		case SPF_RESULT_TEMPERROR:
			check_set(c, CHECK_WARN, "check dns.resolver and the "
			    "domain's name servers, then run the check again",
			    "%s: temperror%s%s", addr, msgs.len > 0 ? ": " :
			    "", msgs.data);
			break;
		default:
			check_set(c, CHECK_FAIL, "fix the SPF record of the "
			    "domain (RFC 7208: at most 10 DNS lookups)",
			    "%s: permerror: %s", addr, msgs.len > 0 ?
			    msgs.data : SPF_strresult(r));
			break;
		}
		if (resp != NULL)
			SPF_response_free(resp);
		SPF_request_free(req);
	}
	SPF_server_free(srv);
done:
	vbuf_release(&fix);
	vbuf_release(&msgs);
}

static void
check_dmarc(struct check_run *run)
{
	char name[NS_MAXDNAME];
	struct check *c = check_new(run, "dmarc", 1);
	struct relayctl_txt t;
	struct vbuf why, p, val, notes;
	const char *rec = NULL;
	size_t nrec = 0;
	int rc;

	memset(&t, 0, sizeof(t));
	vbuf_init(&why, 0);
	vbuf_init(&p, 0);
	vbuf_init(&val, 0);
	vbuf_init(&notes, 0);
	(void)snprintf(name, sizeof(name), "_dmarc.%s", run->domain);
	if ((rc = check_txt_get(run->cfg, name, &t, &why)) == -1) {
		check_set(c, CHECK_FAIL, "check dns.resolver and the domain's "
		    "name servers", "%s", why.data);
		goto done;
	}
	rec = relayctl_txt_dmarc(&t, &nrec);
	if (nrec == 0) {
		vbuf_reset(&val);
		(void)vbuf_addf(&val, "publish TXT \"v=DMARC1; p=none; "
		    "rua=mailto:dmarc-reports@%s\" at %s, as printed by "
		    "`relayctl domain add`", run->domain, name);
		check_set(c, CHECK_FAIL, val.data, "no DMARC record at %s",
		    name);
		goto done;
	}
	if (nrec > 1) {
		check_set(c, CHECK_FAIL, "keep exactly one v=DMARC1 record",
		    "%zu DMARC records at %s: receivers ignore them all",
		    nrec, name);
		goto done;
	}
	if (!relayctl_txt_tag(rec, "p", &p) || (strcasecmp(p.data, "none") != 0 &&
	    strcasecmp(p.data, "quarantine") != 0 &&
	    strcasecmp(p.data, "reject") != 0)) {
		check_set(c, CHECK_FAIL, "add p=none (then quarantine, then "
		    "reject)", "DMARC record at %s has no valid p= policy",
		    name);
		goto done;
	}
	(void)vbuf_addf(&notes, "; DKIM aligns (we sign with d=%s)",
	    run->domain);
	if (relayctl_txt_tag(rec, "adkim", &val) && strcasecmp(val.data, "s") == 0)
		(void)vbuf_adds(&notes, ", also under adkim=s (strict)");
	if (relayctl_txt_tag(rec, "aspf", &val) && strcasecmp(val.data, "s") == 0)
		(void)vbuf_addf(&notes, "; aspf=s (strict): SPF aligns only "
		    "when the envelope sender's domain is exactly %s",
		    run->domain);
	if (strcasecmp(p.data, "none") == 0)
		check_set(c, CHECK_PASS, "after 30 to 90 days of clean "
		    "aggregate reports, tighten to p=quarantine, then "
		    "p=reject", "p=none (monitoring only)%s", notes.data);
	else
		check_set(c, CHECK_PASS, NULL, "p=%s%s", p.data, notes.data);
done:
	relayctl_txt_free(&t);
	vbuf_release(&why);
	vbuf_release(&p);
	vbuf_release(&val);
	vbuf_release(&notes);
}

static void
check_mx(struct check_run *run)
{
	char name[NS_MAXDNAME];
	struct check *c = check_new(run, "mx", 0);
	struct vbuf why, list;
	ns_msg msg;
	ns_rr rr;
	int rc, count, i, n = 0, nulls = 0;

	vbuf_init(&why, 0);
	vbuf_init(&list, 0);
	rc = check_query(run->cfg, run->domain, ns_t_mx, check_ans, &msg,
	    &why);
	if (rc == -1) {
		check_set(c, CHECK_WARN, "check dns.resolver and the domain's "
		    "name servers", "%s", why.data);
		goto done;
	}
	count = rc == 1 ? ns_msg_count(msg, ns_s_an) : 0;
	for (i = 0; i < count && n < CHECK_RR_MAX; i++) {
		if (ns_parserr(&msg, ns_s_an, i, &rr) == -1)
			break;
		if (ns_rr_type(rr) != ns_t_mx || ns_rr_rdlen(rr) < 3 ||
		    dn_expand(ns_msg_base(msg), ns_msg_end(msg),
		    ns_rr_rdata(rr) + 2, name, sizeof(name)) < 0)
			continue;
		if (name[0] == '\0' || strcmp(name, ".") == 0)
			nulls++;
		else if (list.len < 512)
			(void)vbuf_addf(&list, "%s%s (%u)", n > 0 ? ", " : "",
			    name, ns_get16(ns_rr_rdata(rr)));
		n++;
	}
	if (n > 0 && nulls == n)
		check_set(c, CHECK_WARN, "publish MX records if the domain "
		    "should receive mail", "%s has a null MX: bounces and "
		    "replies to it are refused", run->domain);
	else if (n == 0)
		check_set(c, CHECK_WARN, "publish MX records so bounces and "
		    "replies reach the domain", "no MX records for %s",
		    run->domain);
	else
		check_set(c, CHECK_PASS, NULL, "%s", list.data);
done:
	vbuf_release(&why);
	vbuf_release(&list);
}

static void
check_ptr(struct check_run *run)
{
	char addr[INET6_ADDRSTRLEN], rev[NS_MAXDNAME], name[NS_MAXDNAME];
	struct check *c;
	const struct cidr *a;
	struct vbuf why, names;
	ns_msg msg, fmsg;
	ns_rr rr, frr;
	unsigned char *fans;
	size_t i, k, off;
	int rc, count, fcount, j, m, confirmed;

	fans = xmalloc(DNSRES_ANSWER_MAX);
	vbuf_init(&why, 0);
	vbuf_init(&names, 0);
	for (i = 0; (a = cfg_source_address(run->cfg, i)) != NULL; i++) {
		c = check_new(run, "ptr", 0);
		inet_ntop(a->family, a->addr, addr, sizeof(addr));
		if (a->family == AF_INET)
			(void)snprintf(rev, sizeof(rev),
			    "%u.%u.%u.%u.in-addr.arpa", a->addr[3],
			    a->addr[2], a->addr[1], a->addr[0]);
		else {
			for (k = 0, off = 0; k < 16; k++)
				off += (size_t)snprintf(rev + off,
				    sizeof(rev) - off, "%x.%x.",
				    a->addr[15 - k] & 0xf,
				    a->addr[15 - k] >> 4);
			(void)snprintf(rev + off, sizeof(rev) - off,
			    "ip6.arpa");
		}
		rc = check_query(run->cfg, rev, ns_t_ptr, check_ans, &msg,
		    &why);
		if (rc == -1) {
			check_set(c, CHECK_WARN, "check dns.resolver", "%s: %s",
			    addr, why.data);
			continue;
		}
		confirmed = 0;
		vbuf_reset(&names);
		count = rc == 1 ? ns_msg_count(msg, ns_s_an) : 0;
		for (j = 0; j < count && j < CHECK_RR_MAX && !confirmed; j++) {
			if (ns_parserr(&msg, ns_s_an, j, &rr) == -1)
				break;
			if (ns_rr_type(rr) != ns_t_ptr ||
			    dn_expand(ns_msg_base(msg), ns_msg_end(msg),
			    ns_rr_rdata(rr), name, sizeof(name)) < 0)
				continue;
			if (names.len < 512)
				(void)vbuf_addf(&names, "%s%s",
				    names.len > 0 ? ", " : "", name);
			if (check_query(run->cfg, name, a->family == AF_INET ?
			    ns_t_a : ns_t_aaaa, fans, &fmsg, &why) != 1)
				continue;
			fcount = ns_msg_count(fmsg, ns_s_an);
			for (m = 0; m < fcount && m < CHECK_RR_MAX; m++) {
				if (ns_parserr(&fmsg, ns_s_an, m, &frr) == -1)
					break;
				if (ns_rr_rdlen(frr) == (a->family == AF_INET ?
				    4U : 16U) && (ns_rr_type(frr) == ns_t_a ||
				    ns_rr_type(frr) == ns_t_aaaa) &&
				    memcmp(ns_rr_rdata(frr), a->addr,
				    ns_rr_rdlen(frr)) == 0) {
					confirmed = 1;
					break;
				}
			}
		}
		if (confirmed)
			check_set(c, CHECK_PASS, NULL, "%s -> %s -> %s", addr,
			    name, addr);
		else if (names.len == 0)
			check_set(c, CHECK_WARN, "ask the address's provider "
			    "for a PTR record naming the relay (and an A/AAAA "
			    "record of that name back to it)",
			    "%s has no PTR record", addr);
		else
			check_set(c, CHECK_WARN, "make the PTR name resolve "
			    "back to the address", "%s -> %s, which does not "
			    "resolve back to %s", addr, names.data, addr);
	}
	free(fans);
	vbuf_release(&why);
	vbuf_release(&names);
}

static const char *
check_res_name(enum check_res r)
{
	return r == CHECK_PASS ? "PASS" : r == CHECK_WARN ? "WARN" : "FAIL";
}

/* Prints the results; returns whether every required check passed. */
static int
check_print(const struct check_run *run, int json)
{
	struct vbuf out;
	struct json j;
	size_t i;
	int ok = 1;

	for (i = 0; i < run->n; i++)
		if (run->checks[i].required && run->checks[i].res != CHECK_PASS)
			ok = 0;
	vbuf_init(&out, 0);
	if (json) {
		json_init(&j, &out);
		json_object_begin(&j);
		json_kv_str(&j, "domain", run->domain);
		json_key(&j, "checks");
		json_array_begin(&j);
		for (i = 0; i < run->n; i++) {
			const struct check *c = &run->checks[i];

			json_object_begin(&j);
			json_kv_str(&j, "name", c->name);
			json_kv_str(&j, "result", check_res_name(c->res));
			json_kv_str(&j, "detail", c->detail.data);
			json_key(&j, "fix");
			if (c->fix.len > 0)
				json_str(&j, c->fix.data);
			else
				json_null(&j);
			json_key(&j, "required");
			json_bool(&j, c->required);
			json_object_end(&j);
		}
		json_array_end(&j);
		json_key(&j, "ok");
		json_bool(&j, ok);
		json_object_end(&j);
		(void)vbuf_addc(&out, '\n');
	} else
		for (i = 0; i < run->n; i++) {
			const struct check *c = &run->checks[i];

			(void)vbuf_addf(&out, "%s  %s: %s", check_res_name(
			    c->res), c->name, c->detail.data);
			if (c->fix.len > 0)
				(void)vbuf_addf(&out, " \u2014 fix: %s",
				    c->fix.data);
			(void)vbuf_addc(&out, '\n');
		}
	(void)fputs(out.data, stdout);
	(void)fflush(stdout);
	vbuf_release(&out);
	return ok;
}

int
relayctl_domain_check(const struct cfg *cfg,
    const struct relayctl_domain_args *da)
{
	struct check_run run;
	struct vbuf why;
	size_t i;
	int ok;

	memset(&run, 0, sizeof(run));
	run.cfg = cfg;
	run.domain = da->domain;
	vbuf_init(&why, 0);
	if (dnsres_configured(cfg) && dnsres_parse(cfg->dns_resolver,
	    &(struct sockaddr_in){ 0 }, &why) == -1) {
		fprintf(stderr, "relayctl: %s\n", why.data);
		vbuf_release(&why);
		return RELAYCTL_EXIT_FAIL;
	}
	vbuf_release(&why);
	check_dkim(&run, da);
	check_spf(&run);
	check_dmarc(&run);
	check_mx(&run);
	check_ptr(&run);
	ok = check_print(&run, da->json);
	for (i = 0; i < run.n; i++) {
		vbuf_release(&run.checks[i].detail);
		vbuf_release(&run.checks[i].fix);
	}
	free(run.checks);
	return ok ? RELAYCTL_EXIT_OK : RELAYCTL_EXIT_FAIL;
}
