/*
 * cred_policy.c - per-credential policy lists: parsing, matching and
 * formatting (see cred_policy.h).
 *
 * Lists come from relayctl's command line and from stored records, so
 * both are untrusted here: every entry is bounded and checked, a bad list
 * is refused whole and leaves the policy as it was, and a bad entry is
 * quoted back with its non-printable bytes replaced.
 */
#include <sys/socket.h>
#include <arpa/inet.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "cfg.h"
#include "cred_policy.h"
#include "idna.h"
#include "smtpcmd.h"
#include "xalloc.h"

static const char *cred_policy_split(const char **, char *, size_t,
		    size_t *);
static void	cred_policy_safe(struct vbuf *, const char *);

void
cred_policy_release(struct cred_policy *pol)
{
	size_t i;

	if (pol == NULL)
		return;
	for (i = 0; i < pol->ndomains; i++)
		free(pol->domains[i]);
	free(pol->domains);
	free(pol->networks);
	memset(pol, 0, sizeof(*pol));
}

int
cred_policy_domain_ok(const struct cred_policy *pol, const char *domain)
{
	size_t i, dlen, alen;
	const char *a;

	if (pol->ndomains == 0)
		return 1;
	if (domain == NULL)
		return 0;
	dlen = strlen(domain);
	for (i = 0; i < pol->ndomains; i++) {
		a = pol->domains[i];
		alen = strlen(a);
		if (dlen == alen && strcasecmp(domain, a) == 0)
			return 1;
		/* A subdomain: at least one label, then ".", then a. */
		if (dlen > alen + 1 && domain[dlen - alen - 1] == '.' &&
		    domain[0] != '.' &&
		    strcasecmp(domain + dlen - alen, a) == 0)
			return 1;
	}
	return 0;
}

int
cred_policy_network_ok(const struct cred_policy *pol,
    const struct sockaddr *sa)
{
	if (pol->nnetworks == 0)
		return 1;
	if (sa == NULL)
		return 0;
	return cidr_match_list(pol->networks, pol->nnetworks, sa);
}

/*
 * Copies the next comma-separated entry of *sp, without surrounding
 * spaces, into buf[0..size) and advances *sp past it (to NULL after the
 * last). Returns buf, or NULL if the entry does not fit (*len is then its
 * length).
 */
static const char *
cred_policy_split(const char **sp, char *buf, size_t size, size_t *len)
{
	const char *s = *sp, *comma, *end;

	comma = strchr(s, ',');
	end = comma == NULL ? s + strlen(s) : comma;
	*sp = comma == NULL ? NULL : comma + 1;
	while (s < end && *s == ' ')
		s++;
	while (end > s && end[-1] == ' ')
		end--;
	*len = (size_t)(end - s);
	if (*len >= size)
		return NULL;
	memcpy(buf, s, *len);
	buf[*len] = '\0';
	return buf;
}

/* Appends s quoted, with bytes outside printable ASCII as '?'. */
static void
cred_policy_safe(struct vbuf *why, const char *s)
{
	size_t i;

	(void)vbuf_addc(why, '"');
	for (i = 0; s[i] != '\0' && i < 80; i++)
		(void)vbuf_addc(why, s[i] > 0x20 && s[i] < 0x7f ? s[i] : '?');
	(void)vbuf_adds(why, s[i] != '\0' ? "...\"" : "\"");
}

int
cred_policy_parse_domains(struct cred_policy *pol, const char *s,
    struct vbuf *why)
{
	char buf[SMTP_DOMAIN_MAX + 2], **list = NULL;
	const char *p = s;
	size_t n = 0, len, i;

	if (*s == '\0')
		p = NULL;
	while (p != NULL) {
		if (n == CRED_POLICY_DOMAINS_MAX) {
			if (why)
				vbuf_setf(why, "more than %d domains",
				    CRED_POLICY_DOMAINS_MAX);
			goto fail;
		}
		if (cred_policy_split(&p, buf, sizeof(buf), &len) == NULL) {
			if (why)
				vbuf_setf(why, "domain longer than %d bytes",
				    SMTP_DOMAIN_MAX);
			goto fail;
		}
		/* One form for comparing: lower-case A-labels (lib/idna). */
		if (len > 0 && idna_domain_ascii(buf, buf, sizeof(buf)) == -1)
			len = 0;
		if (len == 0 || !smtpcmd_domain_ok(buf)) {
			if (why) {
				vbuf_setf(why, "invalid domain ");
				cred_policy_safe(why, buf);
			}
			goto fail;
		}
		list = xreallocarray(list, n + 1, sizeof(*list));
		list[n++] = xstrdup(buf);
	}
	for (i = 0; i < pol->ndomains; i++)
		free(pol->domains[i]);
	free(pol->domains);
	pol->domains = list;
	pol->ndomains = n;
	return 0;
fail:
	for (i = 0; i < n; i++)
		free(list[i]);
	free(list);
	return -1;
}

_Static_assert(CRED_POLICY_POOL_MAX == CFG_POOL_NAME_MAX, "pool name size");

int
cred_policy_parse_pool(struct cred_policy *pol, const char *s,
    struct vbuf *why)
{
	if (!cfg_pool_name_ok(s)) {
		vbuf_setf(why, "invalid pool name \"%s\" (1-%d characters of "
		    "a-z 0-9 _ -)", s, CRED_POLICY_POOL_MAX);
		return -1;
	}
	(void)snprintf(pol->pool, sizeof(pol->pool), "%s",
	    strcmp(s, CFG_POOL_DEFAULT) == 0 ? "" : s);
	return 0;
}

int
cred_policy_parse_networks(struct cred_policy *pol, const char *s,
    struct vbuf *why)
{
	char buf[INET6_ADDRSTRLEN + 8];
	struct cidr *list = NULL;
	const char *p = s;
	size_t n = 0, len;

	if (*s == '\0')
		p = NULL;
	while (p != NULL) {
		if (n == CRED_POLICY_NETWORKS_MAX) {
			if (why)
				vbuf_setf(why, "more than %d networks",
				    CRED_POLICY_NETWORKS_MAX);
			goto fail;
		}
		list = xreallocarray(list, n + 1, sizeof(*list));
		if (cred_policy_split(&p, buf, sizeof(buf), &len) == NULL ||
		    len == 0 || cidr_parse(buf, &list[n]) == -1) {
			if (why) {
				vbuf_setf(why, "invalid network (CIDR) ");
				cred_policy_safe(why, len < sizeof(buf) ? buf :
				    "(too long)");
			}
			goto fail;
		}
		n++;
	}
	free(pol->networks);
	pol->networks = list;
	pol->nnetworks = n;
	return 0;
fail:
	free(list);
	return -1;
}

void
cred_policy_format_domains(const struct cred_policy *pol, struct vbuf *out)
{
	size_t i;

	for (i = 0; i < pol->ndomains; i++) {
		if (i > 0)
			(void)vbuf_addc(out, ',');
		(void)vbuf_adds(out, pol->domains[i]);
	}
}

void
cred_policy_format_networks(const struct cred_policy *pol, struct vbuf *out)
{
	size_t i;

	for (i = 0; i < pol->nnetworks; i++) {
		if (i > 0)
			(void)vbuf_addc(out, ',');
		cred_policy_format_cidr(&pol->networks[i], out);
	}
}

void
cred_policy_format_cidr(const struct cidr *c, struct vbuf *out)
{
	char buf[INET6_ADDRSTRLEN];

	if (inet_ntop(c->family, c->addr, buf, sizeof(buf)) == NULL)
		(void)vbuf_adds(out, "?");
	else
		(void)vbuf_addf(out, "%s/%u", buf, c->prefix);
}
