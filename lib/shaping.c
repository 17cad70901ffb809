/*
 * shaping.c - the delivery shaping file and the rate token bucket.
 *
 * The file (shaping.file; shipped as etc/shaping.yaml) is YAML:
 *
 *	default:
 *	  max_connections: 10
 *	  max_messages_per_connection: 100
 *	destinations:
 *	  gmail.com:
 *	    max_connections: 5
 *	    max_message_rate: 600/minute
 *	    tls: encrypt
 *	    on_reply:
 *	      - { pattern: "4\\.7\\.28", action: backoff, for: 30m,
 *	          max_message_rate: 10/minute }
 *	providers:
 *	  google:
 *	    mx_suffixes: [.google.com, .googlemail.com]
 *	    provider_max_connections: 5
 *
 * An entry names a next hop: a recipient domain (which also covers its
 * subdomains), a host, or a full next-hop key as the transport table
 * writes it ("[10.0.0.1]:587"). A provider names no destination: qmgr
 * finds a destination's provider by the MX hosts smtp reports
 * (shaping_provider_match). Every error ends the load with
 * "FILE:LINE: KEY: reason" (lib/yamlfile's shape). Nothing here logs.
 * The keys are documented in shaping.yaml(5).
 */
#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <yaml.h>

#include "cfg.h"
#include "nexthop.h"
#include "parse.h"
#include "shaping.h"
#include "xalloc.h"
#include "yamlfile.h"

#define SHAPING_MAX_FILE	(1024 * 1024)
#define SHAPING_MAX_DEPTH	6

struct sh_ctx {
	const char	*file;
	yaml_document_t	*doc;
	struct vbuf	*why;
};

/* The keys of an entry, in the order of sh_limits' tests. */
static const char *const sh_keys[] = {
	"max_connections", "max_messages_per_connection", "max_message_rate",
	"max_connection_rate", "retry_interval", "tls", "on_reply",
	"mx_suffixes", "provider_max_connections",	/* a provider's only */
	"transactional_reserve",
	"provider_max_message_rate",			/* a provider's only */
};

/* The keys of an on_reply rule, in the order of sh_rule's tests. */
static const char *const sh_rule_keys[] = {
	"pattern", "action", "for", "max_message_rate", "max_connections",
	"after",
};

/* tls's values, as smtp.tls in lib/cfg spells them. */
static const struct {
	const char	*name;
	int		 level;
} sh_tls[] = {
	{ "may", CFG_SMTP_TLS_MAY },
	{ "encrypt", CFG_SMTP_TLS_ENCRYPT },
	{ "verify", CFG_SMTP_TLS_VERIFY },
};

static int sh_err(struct sh_ctx *, const yaml_node_t *, const char *,
    const char *, ...) __attribute__((format(printf, 4, 5)));
static int sh_uint(struct sh_ctx *, const yaml_node_t *, const char *,
    const char *, unsigned, unsigned *);
static int sh_rate(struct sh_ctx *, const yaml_node_t *, const char *,
    const char *, unsigned *, unsigned *);
static int sh_reserve(struct sh_ctx *, const yaml_node_t *, const char *,
    const char *, unsigned *);
static int sh_duration(struct sh_ctx *, const yaml_node_t *,
    const char *, const char *, int64_t *);
static int sh_pair(struct sh_ctx *, yaml_node_t *, const char *,
    const yaml_node_pair_t *, const char *const *, size_t, unsigned *,
    char *, size_t, yaml_node_t **, size_t *);
static int sh_rule(struct sh_ctx *, yaml_node_t *, const char *,
    struct shaping_rule *);
static int sh_rules(struct sh_ctx *, yaml_node_t *, const char *,
    struct shaping_rule **, size_t *);
static void sh_rules_free(struct shaping_rule *, size_t);
static int sh_limits(struct sh_ctx *, yaml_node_t *, const char *,
    struct shaping_limits *, int *, int *, struct shaping_rule **,
    size_t *, struct shaping_provider *);
static int sh_suffixes(struct sh_ctx *, yaml_node_t *, const char *,
    struct shaping_provider *);
static int sh_providers(struct sh_ctx *, struct shaping *, yaml_node_t *);
static int sh_suffix_match(const char *, const char *);
static void sh_unset(struct shaping_limits *);
static const struct shaping_entry *sh_find(const struct shaping *,
    const char *);
static int sh_addr_literal(const char *);
static void sh_apply(struct shaping_limits *, const struct shaping_entry *);
static void sh_refill(struct shaping_bucket *, int64_t);

static int
sh_err(struct sh_ctx *ctx, const yaml_node_t *node, const char *key,
    const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	yamlfile_vwhy(ctx->why, ctx->file,
	    node != NULL ? yamlfile_line(node) : 0, key, fmt, ap);
	va_end(ap);
	return -1;
}

int
shaping_parse_rate(const char *s, unsigned *count, unsigned *interval)
{
	static const struct { const char *name; unsigned s; } units[] = {
		{ "s", 1 }, { "sec", 1 }, { "second", 1 },
		{ "m", 60 }, { "min", 60 }, { "minute", 60 },
		{ "h", 3600 }, { "hour", 3600 },
		{ "d", 86400 }, { "day", 86400 },
	};
	char num[16];
	const char *slash;
	uint64_t n;
	size_t len;

	if ((slash = strchr(s, '/')) == NULL ||
	    (len = (size_t)(slash - s)) == 0 || len >= sizeof(num))
		return -1;
	memcpy(num, s, len);
	num[len] = '\0';
	if (parse_u64(num, 1, SHAPING_RATE_MAX, &n) == -1)
		return -1;
	for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++)
		if (strcmp(slash + 1, units[i].name) == 0) {
			*count = (unsigned)n;
			*interval = units[i].s;
			return 0;
		}
	return -1;
}

void
shaping_rate_text(unsigned count, unsigned interval, char *buf, size_t size)
{
	static const struct { unsigned s; const char *unit; } units[] = {
		{ 1, "s" }, { 60, "min" }, { 3600, "h" }, { 86400, "d" },
	};

	if (count == 0 || interval == 0) {
		(void)snprintf(buf, size, "unlimited");
		return;
	}
	for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++)
		if (interval == units[i].s) {
			(void)snprintf(buf, size, "%u/%s", count,
			    units[i].unit);
			return;
		}
	(void)snprintf(buf, size, "%u per %us", count, interval);
}

const char *
shaping_tls_name(int level)
{
	for (size_t i = 0; i < sizeof(sh_tls) / sizeof(sh_tls[0]); i++)
		if (sh_tls[i].level == level)
			return sh_tls[i].name;
	return "unset";
}

/* A whole number from 1 to max into *out. */
static int
sh_uint(struct sh_ctx *ctx, const yaml_node_t *v, const char *kbuf,
    const char *vs, unsigned max, unsigned *out)
{
	uint64_t n;

	if (parse_u64(vs, 1, max, &n) == -1)
		return sh_err(ctx, v, kbuf, "\"%s\": expected a number from "
		    "1 to %u", vs, max);
	*out = (unsigned)n;
	return 0;
}

/* transactional_reserve: N connections (0 to SHAPING_CONN_MAX) or N%. */
static int
sh_reserve(struct sh_ctx *ctx, const yaml_node_t *v, const char *kbuf,
    const char *vs, unsigned *out)
{
	char num[16];
	size_t len = strlen(vs);
	uint64_t n;
	int pct = len > 1 && vs[len - 1] == '%';

	if (len >= sizeof(num) || snprintf(num, sizeof(num), "%.*s",
	    (int)(pct ? len - 1 : len), vs) < 0 ||
	    parse_u64(num, 0, pct ? 100 : SHAPING_CONN_MAX, &n) == -1)
		return sh_err(ctx, v, kbuf, "\"%s\": expected connections "
		    "(0 to %d) or a percentage (0%% to 100%%)", vs,
		    SHAPING_CONN_MAX);
	*out = SHAPING_RESERVE_SET | (pct ? SHAPING_RESERVE_PCT : 0) |
	    (unsigned)n;
	return 0;
}

unsigned
shaping_reserve(const struct shaping_limits *lim, unsigned max)
{
	unsigned r, v = lim->transactional_reserve & SHAPING_RESERVE_VALUE;

	if (max <= 1)
		return 0;
	if (!(lim->transactional_reserve & SHAPING_RESERVE_SET))
		r = (max * SHAPING_RESERVE_DEFAULT + 99) / 100;
	else if (lim->transactional_reserve & SHAPING_RESERVE_PCT)
		r = (max * v + 99) / 100;
	else
		r = v;
	return r < max ? r : max - 1;
}

void
shaping_reserve_text(const struct shaping_limits *lim, char *buf,
    size_t size)
{
	unsigned v = lim->transactional_reserve & SHAPING_RESERVE_VALUE;

	if (!(lim->transactional_reserve & SHAPING_RESERVE_SET))
		(void)snprintf(buf, size, "%u%%", SHAPING_RESERVE_DEFAULT);
	else
		(void)snprintf(buf, size, "%u%s", v,
		    lim->transactional_reserve & SHAPING_RESERVE_PCT ?
		    "%" : "");
}

/* A rate or "unlimited" (count and interval 0). */
static int
sh_rate(struct sh_ctx *ctx, const yaml_node_t *v, const char *kbuf,
    const char *vs, unsigned *count, unsigned *interval)
{
	if (strcmp(vs, "unlimited") == 0) {
		*count = 0;
		*interval = 0;
		return 0;
	}
	if (shaping_parse_rate(vs, count, interval) == -1)
		return sh_err(ctx, v, kbuf, "\"%s\": expected N/second, "
		    "N/minute, N/hour, N/day or unlimited (N from 1 to %d)",
		    vs, SHAPING_RATE_MAX);
	return 0;
}

/* A duration from 1s to SHAPING_RETRY_MAX into *out. */
static int
sh_duration(struct sh_ctx *ctx, const yaml_node_t *v, const char *kbuf,
    const char *vs, int64_t *out)
{
	int64_t d;

	/* petrel.yaml's durations, parsed by the same code. */
	if (parse_duration(vs, &d) == -1 || d < 1 || d > SHAPING_RETRY_MAX)
		return sh_err(ctx, v, kbuf, "\"%s\": expected a duration "
		    "from 1s to 7d (a number with s, m, h or d)", vs);
	*out = d;
	return 0;
}

/*
 * A mapping pair p of node (named key in messages) whose key must be one
 * of keys[0..nkeys), each at most once (seen): its index in *ip, its
 * value in *vp and "key.name" in kbuf. -1 when the key is bad, unknown
 * or repeated (libyaml keeps both of a repeated key, and the second
 * would win without a word), reported.
 */
static int
sh_pair(struct sh_ctx *ctx, yaml_node_t *node, const char *key,
    const yaml_node_pair_t *p, const char *const *keys, size_t nkeys,
    unsigned *seen, char *kbuf, size_t kbufsize, yaml_node_t **vp,
    size_t *ip)
{
	yaml_node_t *k = yaml_document_get_node(ctx->doc, p->key);
	yaml_node_t *v = yaml_document_get_node(ctx->doc, p->value);
	const char *kn;
	size_t i;

	if (k == NULL || v == NULL || k->type != YAML_SCALAR_NODE)
		return sh_err(ctx, node, key, "bad key");
	kn = (const char *)k->data.scalar.value;
	snprintf(kbuf, kbufsize, "%s.%s", key, kn);
	for (i = 0; i < nkeys; i++)
		if (strcmp(kn, keys[i]) == 0)
			break;
	if (i == nkeys)
		return sh_err(ctx, k, kbuf, "unknown key");
	if (*seen & (1u << i))
		return sh_err(ctx, k, kbuf, "given twice");
	*seen |= 1u << i;
	*vp = v;
	*ip = i;
	return 0;
}

/*
 * One on_reply rule's mapping into r (zeroed by the caller); on success
 * r->re is compiled and r->pattern allocated, on failure neither.
 */
static int
sh_rule(struct sh_ctx *ctx, yaml_node_t *node, const char *key,
    struct shaping_rule *r)
{
	yaml_node_pair_t *p;
	yaml_node_t *pnode = NULL;
	char kbuf[SHAPING_NAME_MAX + 96], ebuf[256];
	const char *pattern = NULL;
	unsigned seen = 0, conns = 0;
	size_t i, nkeys = sizeof(sh_rule_keys) / sizeof(sh_rule_keys[0]);
	int rc;

	if (node->type != YAML_MAPPING_NODE)
		return sh_err(ctx, node, key, "expected a mapping with "
		    "pattern, action and for");
	r->after = 1;
	for (p = node->data.mapping.pairs.start;
	    p < node->data.mapping.pairs.top; p++) {
		yaml_node_t *v;
		const char *vs;

		if (sh_pair(ctx, node, key, p, sh_rule_keys, nkeys, &seen, kbuf,
		    sizeof(kbuf), &v, &i) == -1)
			return -1;
		if (v->type != YAML_SCALAR_NODE || v->data.scalar.length == 0)
			return sh_err(ctx, v, kbuf, "expected a value");
		vs = (const char *)v->data.scalar.value;
		switch (i) {
		case 0:
			/* An embedded NUL would cut the pattern short. */
			if (v->data.scalar.length > SHAPING_PATTERN_MAX ||
			    strlen(vs) != v->data.scalar.length)
				return sh_err(ctx, v, kbuf, "a pattern is 1 "
				    "to %d characters", SHAPING_PATTERN_MAX);
			pattern = vs;
			pnode = v;
			break;
		case 1:
			if (strcmp(vs, "backoff") == 0)
				r->action = SHAPING_BACKOFF;
			else if (strcmp(vs, "suspend") == 0)
				r->action = SHAPING_SUSPEND;
			else
				return sh_err(ctx, v, kbuf, "\"%s\": expected "
				    "backoff or suspend", vs);
			break;
		case 2:
			if (sh_duration(ctx, v, kbuf, vs, &r->duration) == -1)
				return -1;
			break;
		case 3:
			if (sh_rate(ctx, v, kbuf, vs, &r->rate_count,
			    &r->rate_interval) == -1)
				return -1;
			r->has_rate = 1;
			break;
		case 4:
			if (sh_uint(ctx, v, kbuf, vs, SHAPING_CONN_MAX,
			    &conns) == -1)
				return -1;
			r->max_connections = conns;
			break;
		case 5:
			if (sh_uint(ctx, v, kbuf, vs, SHAPING_AFTER_MAX,
			    &r->after) == -1)
				return -1;
			break;
		}
	}
	for (i = 0; i < 3; i++)
		if (!(seen & (1u << i)))
			return sh_err(ctx, node, key, "%s is missing",
			    sh_rule_keys[i]);
	if (r->action == SHAPING_BACKOFF && !r->has_rate && conns == 0)
		return sh_err(ctx, node, key, "a backoff needs "
		    "max_message_rate or max_connections");
	if (r->action == SHAPING_SUSPEND && (r->has_rate || conns != 0))
		return sh_err(ctx, node, key, "max_message_rate and "
		    "max_connections are for a backoff, not a suspend");
	if ((rc = regcomp(&r->re, pattern, REG_EXTENDED | REG_ICASE |
	    REG_NOSUB)) != 0) {
		(void)regerror(rc, &r->re, ebuf, sizeof(ebuf));
		snprintf(kbuf, sizeof(kbuf), "%s.pattern", key);
		return sh_err(ctx, pnode, kbuf, "\"%s\": %s", pattern, ebuf);
	}
	r->pattern = xstrdup(pattern);
	return 0;
}

/* An on_reply sequence into *rules, *nrules (none before). */
static int
sh_rules(struct sh_ctx *ctx, yaml_node_t *node, const char *key,
    struct shaping_rule **rules, size_t *nrules)
{
	yaml_node_item_t *it;
	char kbuf[SHAPING_NAME_MAX + 80];
	size_t n;

	if (node->type != YAML_SEQUENCE_NODE)
		return sh_err(ctx, node, key, "expected a list of rules");
	n = (size_t)(node->data.sequence.items.top -
	    node->data.sequence.items.start);
	if (n > SHAPING_RULES_MAX)
		return sh_err(ctx, node, key, "more than %d rules",
		    SHAPING_RULES_MAX);
	if (n == 0)
		return 0;
	/* Allocated once: a compiled regex_t is never moved. */
	*rules = xcalloc(n, sizeof(**rules));
	for (it = node->data.sequence.items.start;
	    it < node->data.sequence.items.top; it++) {
		yaml_node_t *v = yaml_document_get_node(ctx->doc, *it);

		snprintf(kbuf, sizeof(kbuf), "%s[%zu]", key, *nrules + 1);
		if (v == NULL)
			return sh_err(ctx, node, kbuf, "bad rule");
		if (sh_rule(ctx, v, kbuf, &(*rules)[*nrules]) == -1)
			return -1;
		(*nrules)++;
	}
	return 0;
}

static void
sh_rules_free(struct shaping_rule *rules, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		regfree(&rules[i].re);
		free(rules[i].pattern);
	}
	free(rules);
}

/*
 * One entry's mapping; key is its name for messages. prov: the provider
 * whose entry it is, which may also have mx_suffixes,
 * provider_max_connections and provider_max_message_rate; NULL for the
 * default and destinations.
 */
static int
sh_limits(struct sh_ctx *ctx, yaml_node_t *node, const char *key,
    struct shaping_limits *lim, int *has_rate, int *has_conn_rate,
    struct shaping_rule **rules, size_t *nrules,
    struct shaping_provider *prov)
{
	yaml_node_pair_t *p;
	char kbuf[SHAPING_NAME_MAX + 64];
	unsigned seen = 0;

	if (node->type != YAML_MAPPING_NODE)
		return sh_err(ctx, node, key, "expected a mapping");
	for (p = node->data.mapping.pairs.start;
	    p < node->data.mapping.pairs.top; p++) {
		yaml_node_t *v;
		const char *vs;
		int64_t d = 0;
		size_t i, nkeys = sizeof(sh_keys) / sizeof(sh_keys[0]);

		if (sh_pair(ctx, node, key, p, sh_keys, nkeys, &seen, kbuf,
		    sizeof(kbuf), &v, &i) == -1)
			return -1;
		if (i == 6) {
			if (sh_rules(ctx, v, kbuf, rules, nrules) == -1)
				return -1;
			continue;
		}
		if ((i == 7 || i == 8 || i == 10) && prov == NULL)
			return sh_err(ctx, v, kbuf, "only a provider (under "
			    "providers) has this key");
		if (i == 7) {
			if (sh_suffixes(ctx, v, kbuf, prov) == -1)
				return -1;
			continue;
		}
		if (v->type != YAML_SCALAR_NODE || v->data.scalar.length == 0)
			return sh_err(ctx, v, kbuf, "expected a value");
		vs = (const char *)v->data.scalar.value;
		switch (i) {
		case 0:
			if (sh_uint(ctx, v, kbuf, vs, SHAPING_CONN_MAX,
			    &lim->max_connections) == -1)
				return -1;
			break;
		case 1:
			if (sh_uint(ctx, v, kbuf, vs, SHAPING_MSGS_MAX,
			    &lim->max_messages_per_connection) == -1)
				return -1;
			break;
		case 2:
			if (sh_rate(ctx, v, kbuf, vs, &lim->rate_count,
			    &lim->rate_interval) == -1)
				return -1;
			*has_rate = 1;
			break;
		case 3:
			if (sh_rate(ctx, v, kbuf, vs, &lim->conn_rate_count,
			    &lim->conn_rate_interval) == -1)
				return -1;
			*has_conn_rate = 1;
			break;
		case 4:
			if (sh_duration(ctx, v, kbuf, vs, &d) == -1)
				return -1;
			lim->retry_interval = d;
			break;
		case 5:
			for (i = 0; i < sizeof(sh_tls) / sizeof(sh_tls[0]); i++)
				if (strcmp(vs, sh_tls[i].name) == 0)
					break;
			if (i == sizeof(sh_tls) / sizeof(sh_tls[0]))
				return sh_err(ctx, v, kbuf, "\"%s\": expected "
				    "may, encrypt or verify", vs);
			lim->tls = sh_tls[i].level;
			break;
		case 8:
			if (sh_uint(ctx, v, kbuf, vs, SHAPING_CONN_MAX,
			    &prov->max_connections) == -1)
				return -1;
			break;
		case 9:
			if (sh_reserve(ctx, v, kbuf, vs,
			    &lim->transactional_reserve) == -1)
				return -1;
			break;
		case 10:
			if (sh_rate(ctx, v, kbuf, vs, &prov->rate_count,
			    &prov->rate_interval) == -1)
				return -1;
			break;
		}
	}
	if (prov != NULL && prov->nsuffixes == 0)
		return sh_err(ctx, node, key, "mx_suffixes is missing");
	return 0;
}

/*
 * A provider's mx_suffixes: a list of (or one) host name suffixes, such
 * as ".google.com", kept lower case with one leading dot and no final
 * one. A suffix without its leading dot still matches only whole labels.
 */
static int
sh_suffixes(struct sh_ctx *ctx, yaml_node_t *node, const char *key,
    struct shaping_provider *prov)
{
	yaml_node_item_t *it, one = 0;
	yaml_node_item_t *start, *top;
	size_t n;

	if (node->type == YAML_SCALAR_NODE) {
		start = &one;
		top = &one + 1;
	} else if (node->type == YAML_SEQUENCE_NODE) {
		start = node->data.sequence.items.start;
		top = node->data.sequence.items.top;
	} else
		return sh_err(ctx, node, key, "expected a list of host name "
		    "suffixes");
	n = (size_t)(top - start);
	if (n == 0 || n > SHAPING_SUFFIXES_MAX)
		return sh_err(ctx, node, key, "1 to %d suffixes",
		    SHAPING_SUFFIXES_MAX);
	prov->suffixes = xcalloc(n, sizeof(*prov->suffixes));
	for (it = start; it < top; it++) {
		yaml_node_t *v = it == &one ? node :
		    yaml_document_get_node(ctx->doc, *it);
		const char *vs;
		size_t len, j;
		char *suf;

		if (v == NULL || v->type != YAML_SCALAR_NODE)
			return sh_err(ctx, node, key, "expected a host name "
			    "suffix");
		vs = (const char *)v->data.scalar.value;
		len = v->data.scalar.length;
		if (len > 0 && vs[0] == '.') {
			vs++;
			len--;
		}
		if (len > 0 && vs[len - 1] == '.')
			len--;
		if (len == 0 || len > NEXTHOP_HOST_MAX - 1 ||
		    strspn(vs, "abcdefghijklmnopqrstuvwxyz"
		    "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-_") < len ||
		    vs[0] == '.' || strstr(vs, "..") != NULL)
			return sh_err(ctx, v, key, "\"%s\": not a host name "
			    "suffix (such as .google.com)",
			    (const char *)v->data.scalar.value);
		suf = xmalloc(len + 2);
		suf[0] = '.';
		for (j = 0; j < len; j++)
			suf[j + 1] = (char)tolower((unsigned char)vs[j]);
		suf[len + 1] = '\0';
		prov->suffixes[prov->nsuffixes++] = suf;
	}
	return 0;
}

/* The providers mapping: name -> entry with mx_suffixes. */
static int
sh_providers(struct sh_ctx *ctx, struct shaping *sh, yaml_node_t *v)
{
	yaml_node_pair_t *q;

	/* "providers:" with nothing under it: none. */
	if (v->type == YAML_SCALAR_NODE && v->data.scalar.length == 0)
		return 0;
	if (v->type != YAML_MAPPING_NODE)
		return sh_err(ctx, v, "providers", "expected a mapping of "
		    "providers");
	for (q = v->data.mapping.pairs.start; q < v->data.mapping.pairs.top;
	    q++) {
		yaml_node_t *pk = yaml_document_get_node(ctx->doc, q->key);
		yaml_node_t *pv = yaml_document_get_node(ctx->doc, q->value);
		struct shaping_provider *pr;
		const char *name;
		size_t len;

		if (pk == NULL || pv == NULL || pk->type != YAML_SCALAR_NODE)
			return sh_err(ctx, v, "providers", "bad key");
		name = (const char *)pk->data.scalar.value;
		len = pk->data.scalar.length;
		/* No dot: a provider's name is never taken for a domain's. */
		if (len == 0 || len > SHAPING_PROVIDER_NAME_MAX ||
		    strspn(name, "abcdefghijklmnopqrstuvwxyz0123456789-_") !=
		    len)
			return sh_err(ctx, pk, name, "a provider's name is 1 "
			    "to %d of a-z, 0-9, - and _",
			    SHAPING_PROVIDER_NAME_MAX);
		if (shaping_provider_find(sh, name) != NULL)
			return sh_err(ctx, pk, name, "given twice");
		if (sh->nproviders == SHAPING_PROVIDERS_MAX)
			return sh_err(ctx, pk, name, "more than %d providers",
			    SHAPING_PROVIDERS_MAX);
		sh->providers = xreallocarray(sh->providers,
		    sh->nproviders + 1, sizeof(*sh->providers));
		pr = &sh->providers[sh->nproviders];
		memset(pr, 0, sizeof(*pr));
		sh_unset(&pr->e.lim);
		memcpy(pr->e.name, name, len + 1);
		/* Counted before its parts are: freed if they fail. */
		sh->nproviders++;
		if (sh_limits(ctx, pv, pr->e.name, &pr->e.lim,
		    &pr->e.has_rate, &pr->e.has_conn_rate, &pr->e.rules,
		    &pr->e.nrules, pr) == -1)
			return -1;
	}
	return 0;
}

/* Every field unset. */
static void
sh_unset(struct shaping_limits *lim)
{
	memset(lim, 0, sizeof(*lim));
	lim->tls = SHAPING_TLS_UNSET;
}

struct shaping *
shaping_load(const char *path, struct vbuf *why)
{
	struct shaping *sh = xcalloc(1, sizeof(*sh));
	yaml_document_t doc;
	yaml_node_t *root;
	yaml_node_pair_t *p, *q;
	struct sh_ctx ctx = { path, &doc, why };
	int rc, has_rate, has_conn_rate, seen_def = 0, seen_dests = 0;
	int seen_provs = 0;

	sh_unset(&sh->def);
	if (path == NULL || *path == '\0')
		return sh;
	rc = yamlfile_load(path, SHAPING_MAX_FILE, SHAPING_MAX_DEPTH, &doc,
	    why);
	if (rc == 0)
		return sh;
	if (rc < 0) {
		free(sh);
		return NULL;
	}
	root = yaml_document_get_root_node(&doc);
	if (root == NULL || root->type != YAML_MAPPING_NODE) {
		sh_err(&ctx, root, NULL, "expected a mapping with default, "
		    "destinations and providers");
		goto bad;
	}
	for (p = root->data.mapping.pairs.start;
	    p < root->data.mapping.pairs.top; p++) {
		yaml_node_t *k = yaml_document_get_node(&doc, p->key);
		yaml_node_t *v = yaml_document_get_node(&doc, p->value);
		const char *kn;

		if (k == NULL || v == NULL || k->type != YAML_SCALAR_NODE) {
			sh_err(&ctx, root, NULL, "bad key");
			goto bad;
		}
		kn = (const char *)k->data.scalar.value;
		if (strcmp(kn, "default") == 0) {
			if (seen_def++) {
				sh_err(&ctx, k, kn, "given twice");
				goto bad;
			}
			if (sh_limits(&ctx, v, "default", &sh->def,
			    &has_rate, &has_conn_rate, &sh->rules,
			    &sh->nrules, NULL) == -1)
				goto bad;
			continue;
		}
		if (strcmp(kn, "providers") == 0) {
			if (seen_provs++) {
				sh_err(&ctx, k, kn, "given twice");
				goto bad;
			}
			if (sh_providers(&ctx, sh, v) == -1)
				goto bad;
			continue;
		}
		if (strcmp(kn, "destinations") != 0) {
			sh_err(&ctx, k, kn, "unknown key (expected default, "
			    "destinations or providers)");
			goto bad;
		}
		if (seen_dests++) {
			sh_err(&ctx, k, kn, "given twice");
			goto bad;
		}
		/* "destinations:" with nothing under it: no entries. */
		if (v->type == YAML_SCALAR_NODE && v->data.scalar.length == 0)
			continue;
		if (v->type != YAML_MAPPING_NODE) {
			sh_err(&ctx, v, kn, "expected a mapping of "
			    "destinations");
			goto bad;
		}
		for (q = v->data.mapping.pairs.start;
		    q < v->data.mapping.pairs.top; q++) {
			yaml_node_t *dk = yaml_document_get_node(&doc, q->key);
			yaml_node_t *dv = yaml_document_get_node(&doc,
			    q->value);
			struct shaping_entry *e;
			char name[SHAPING_NAME_MAX + 1];
			size_t len;

			if (dk == NULL || dv == NULL ||
			    dk->type != YAML_SCALAR_NODE ||
			    (len = dk->data.scalar.length) == 0 ||
			    len > SHAPING_NAME_MAX ||
			    strlen((const char *)dk->data.scalar.value) != len) {
				sh_err(&ctx, dk != NULL ? dk : v, kn,
				    "a destination name is 1 to %d "
				    "characters", SHAPING_NAME_MAX);
				goto bad;
			}
			for (size_t i = 0; i < len; i++)
				name[i] = tolower(dk->data.scalar.value[i]);
			name[len] = '\0';
			if (strspn(name, "abcdefghijklmnopqrstuvwxyz"
			    "0123456789.-_[]:") != len) {
				sh_err(&ctx, dk, name, "not a domain, host "
				    "or next-hop key");
				goto bad;
			}
			if (sh_find(sh, name) != NULL) {
				sh_err(&ctx, dk, name, "given twice");
				goto bad;
			}
			if (sh->nentries == SHAPING_ENTRIES_MAX) {
				sh_err(&ctx, dk, name, "more than %d "
				    "destinations", SHAPING_ENTRIES_MAX);
				goto bad;
			}
			sh->entries = xreallocarray(sh->entries,
			    sh->nentries + 1, sizeof(*sh->entries));
			e = &sh->entries[sh->nentries];
			memset(e, 0, sizeof(*e));
			sh_unset(&e->lim);
			memcpy(e->name, name, len + 1);
			/* Counted before its rules are: freed if they fail. */
			sh->nentries++;
			if (sh_limits(&ctx, dv, e->name, &e->lim,
			    &e->has_rate, &e->has_conn_rate, &e->rules,
			    &e->nrules, NULL) == -1)
				goto bad;
		}
	}
	yaml_document_delete(&doc);
	return sh;
bad:
	yaml_document_delete(&doc);
	shaping_free(sh);
	return NULL;
}

void
shaping_free(struct shaping *sh)
{
	if (sh == NULL)
		return;
	for (size_t i = 0; i < sh->nentries; i++)
		sh_rules_free(sh->entries[i].rules, sh->entries[i].nrules);
	for (size_t i = 0; i < sh->nproviders; i++) {
		struct shaping_provider *pr = &sh->providers[i];

		sh_rules_free(pr->e.rules, pr->e.nrules);
		for (size_t j = 0; j < pr->nsuffixes; j++)
			free(pr->suffixes[j]);
		free(pr->suffixes);
	}
	free(sh->providers);
	sh_rules_free(sh->rules, sh->nrules);
	free(sh->entries);
	free(sh);
}

/*
 * XXX a linear search: the shipped file has a few dozen entries and a
 * lookup happens once per new destination, not per message.
 */
static const struct shaping_entry *
sh_find(const struct shaping *sh, const char *name)
{
	for (size_t i = 0; i < sh->nentries; i++)
		if (strcmp(sh->entries[i].name, name) == 0)
			return &sh->entries[i];
	return NULL;
}

const struct shaping_entry *
shaping_find(const struct shaping *sh, const char *name)
{
	const struct shaping_entry *e;
	const struct shaping_provider *pr;

	/* shaping_lookup's *entry for no entry. */
	if (strcmp(name, "default") == 0)
		return NULL;
	if ((e = sh_find(sh, name)) != NULL)
		return e;
	return (pr = shaping_provider_find(sh, name)) != NULL ? &pr->e : NULL;
}

const struct shaping_provider *
shaping_provider_find(const struct shaping *sh, const char *name)
{
	for (size_t i = 0; i < sh->nproviders; i++)
		if (strcmp(sh->providers[i].e.name, name) == 0)
			return &sh->providers[i];
	return NULL;
}

/* Whether host ends in suffix (".google.com") at a label boundary. */
static int
sh_suffix_match(const char *host, const char *suffix)
{
	size_t hl = strlen(host), sl = strlen(suffix);

	if (hl > 0 && host[hl - 1] == '.')
		hl--;
	/* The suffix's leading dot is the boundary: "xgoogle.com" is out,
	 * and so is "google.com" itself (no MX host is named that). */
	return hl > sl && strncasecmp(host + hl - sl, suffix, sl) == 0;
}

const struct shaping_provider *
shaping_provider_match(const struct shaping *sh, const char *const *hosts,
    size_t n)
{
	size_t i, j, k;

	if (n == 0)
		return NULL;
	for (i = 0; i < sh->nproviders; i++) {
		const struct shaping_provider *pr = &sh->providers[i];

		for (j = 0; j < n; j++) {
			for (k = 0; k < pr->nsuffixes; k++)
				if (sh_suffix_match(hosts[j], pr->suffixes[k]))
					break;
			if (k == pr->nsuffixes)
				break;
		}
		if (j == n)
			return pr;
	}
	return NULL;
}

int
shaping_rule_match(const struct shaping_rule *r, const char *reply)
{
	return regexec(&r->re, reply, 0, NULL, 0) == 0;
}

const char *
shaping_action_name(int action)
{
	return action == SHAPING_SUSPEND ? "suspend" : "backoff";
}

/* An IPv4 or IPv6 address: its dotted parts are no parent domains. */
static int
sh_addr_literal(const char *host)
{
	return strchr(host, ':') != NULL ||
	    strspn(host, "0123456789.") == strlen(host);
}

/* e's fields that are set, over lim's. */
static void
sh_apply(struct shaping_limits *lim, const struct shaping_entry *e)
{
	if (e->lim.max_connections != 0)
		lim->max_connections = e->lim.max_connections;
	if (e->lim.max_messages_per_connection != 0)
		lim->max_messages_per_connection =
		    e->lim.max_messages_per_connection;
	if (e->has_rate) {
		lim->rate_count = e->lim.rate_count;
		lim->rate_interval = e->lim.rate_interval;
	}
	if (e->has_conn_rate) {
		lim->conn_rate_count = e->lim.conn_rate_count;
		lim->conn_rate_interval = e->lim.conn_rate_interval;
	}
	if (e->lim.retry_interval != 0)
		lim->retry_interval = e->lim.retry_interval;
	if (e->lim.tls != SHAPING_TLS_UNSET)
		lim->tls = e->lim.tls;
	if (e->lim.transactional_reserve != 0)
		lim->transactional_reserve = e->lim.transactional_reserve;
}

void
shaping_lookup(const struct shaping *sh, const char *key,
    struct shaping_limits *lim, const char **entry)
{
	shaping_lookup_provider(sh, key, NULL, lim, entry);
}

void
shaping_lookup_provider(const struct shaping *sh, const char *key,
    const struct shaping_provider *p, struct shaping_limits *lim,
    const char **entry)
{
	const struct shaping_entry *e;
	char lkey[SHAPING_NAME_MAX + 1], host[SHAPING_NAME_MAX + 1];
	const char *h, *colon;
	size_t len;

	*lim = sh->def;
	*entry = "default";
	if (p != NULL) {
		sh_apply(lim, &p->e);
		*entry = p->e.name;
	}
	if ((len = strlen(key)) > SHAPING_NAME_MAX)
		return;
	/* Entry names are lower case; next-hop keys should be too. */
	for (size_t i = 0; i <= len; i++)
		lkey[i] = tolower((unsigned char)key[i]);
	if ((e = sh_find(sh, lkey)) == NULL) {
		/* The host of "[host]:port" or "host:port". */
		h = lkey + (*lkey == '[');
		if (*lkey == '[' && (colon = strchr(h, ']')) != NULL)
			len = (size_t)(colon - h);
		else {
			colon = strrchr(h, ':');
			len = colon != NULL ? (size_t)(colon - h) : strlen(h);
		}
		memcpy(host, h, len);
		host[len] = '\0';
		if (len == 0)
			return;
		if (sh_addr_literal(host))
			e = sh_find(sh, host);
		else
			for (h = host; h != NULL && *h != '\0';
			    h = (h = strchr(h, '.')) != NULL ? h + 1 : NULL)
				if ((e = sh_find(sh, h)) != NULL)
					break;
	}
	if (e == NULL)
		return;
	*entry = e->name;
	sh_apply(lim, e);
}

void
shaping_bucket_init(struct shaping_bucket *b, unsigned count,
    unsigned interval, int64_t now)
{
	b->per_ms = count == 0 || interval == 0 ? 0 :
	    (double)count / ((double)interval * 1000.0);
	b->cap = 1 + (SHAPING_BUCKET_SLACK_MS * b->per_ms < 1 ?
	    SHAPING_BUCKET_SLACK_MS * b->per_ms : 1);
	b->tokens = 1;
	b->last = now;
}

static void
sh_refill(struct shaping_bucket *b, int64_t now)
{
	/* Time is counted once: a clock read earlier than last adds none
	 * and leaves last alone. */
	if (now > b->last) {
		b->tokens += (double)(now - b->last) * b->per_ms;
		if (b->tokens > b->cap)
			b->tokens = b->cap;
		b->last = now;
	}
}

int
shaping_bucket_take(struct shaping_bucket *b, int64_t now)
{
	if (b->per_ms == 0)
		return 1;
	sh_refill(b, now);
	/* A little slack for the ms rounding of the loop's wait. */
	if (b->tokens < 1 - 1e-6)
		return 0;
	b->tokens -= 1;
	return 1;
}

void
shaping_bucket_refund(struct shaping_bucket *b)
{
	if (b->per_ms != 0 && (b->tokens += 1) > b->cap)
		b->tokens = b->cap;
}

int64_t
shaping_bucket_wait(const struct shaping_bucket *b, int64_t now)
{
	double t, w;
	int64_t ms;

	if (b->per_ms == 0)
		return 0;
	t = b->tokens + (now > b->last ? (double)(now - b->last) * b->per_ms :
	    0);
	if (t >= 1 - 1e-6)
		return 0;
	/* Rounded up, but not past the slack take() allows: a wait of one
	 * ms too many is 10% off a 100/second rate. */
	w = (1 - 1e-6 - t) / b->per_ms;
	ms = (int64_t)w;
	return (double)ms < w ? ms + 1 : ms;
}
