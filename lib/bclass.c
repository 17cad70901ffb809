/*
 * bclass.c - bounce classification: rule files, RFC 3463 codes, classes.
 *
 * smtp(8) loads the rules once at start and classifies every deferred and
 * bounced recipient; relayctl(8) "bounce classify" does the same for one
 * text. A rule file is YAML (the shipped one is etc/bounce-classes.yaml):
 *
 *	rules:
 *	  - name: gmail-unknown-user	# [A-Za-z0-9_.-], 1-64, unique
 *	    class: bad-mailbox		# one of the classes, bclass_name()
 *	    status: "5.1.1"		# optional: enhanced code prefix
 *	    code: 550			# optional: the 3-digit reply code
 *	    match: "account that you tried to reach does not exist"
 *
 * match is a POSIX extended regular expression, compiled at load and
 * matched case-insensitively anywhere in the whole reply text (which
 * starts with the reply code when the text came from a server). status
 * is a prefix by components: "5.7" matches 5.7.1 and 5.7.26, not 5.70.1;
 * its first digit may be "x" for either 4 or 5 ("x.7.26"). Every key
 * given must match and a rule needs at least one of status, code, match.
 * The first rule that matches, in file order and then in the order of the
 * files in bounce.classes, decides; without one the enhanced code decides
 * (the table below: RFC 3463, 3886, 4954, 7293, 7372, 7505), then the
 * 3-digit code, then "other".
 *
 * Everything from a file is bounded (file size and nesting, checked by
 * lib/yamlfile; rules, name and regular expression length) and every
 * error ends the load with "FILE:LINE: KEY: reason". Nothing here logs.
 */
#include <ctype.h>
#include <limits.h>
#include <regex.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <yaml.h>

#include "bclass.h"
#include "cfg.h"
#include "log.h"
#include "vbuf.h"
#include "xalloc.h"
#include "yamlfile.h"

#define nitems(a)		(sizeof(a) / sizeof((a)[0]))

#define BCLASS_MAX_FILE		(1024 * 1024)	/* bytes of YAML */
#define BCLASS_MAX_DEPTH	8	/* nested lists and mappings */
#define BCLASS_KEY_MAX		64	/* "rules[999].status", for messages */
#define BCLASS_STATUS_MAX	12	/* "5.123.123" */

/* One rule, compiled. */
struct bclass_rule {
	char		*desc;		/* "NAME (FILE:LINE)" */
	char		*name;
	enum bclass	 cls;
	int		 st[3];		/* status components; -1: 4 or 5 */
	int		 nst;		/* 0: no status */
	int		 code;		/* 0: no code */
	regex_t		 re;
	int		 has_re;
};

struct bclass_rules {
	struct bclass_rule	*rule;
	size_t			 n;
	size_t			 cap;
};

/* A parsed enhanced code, or none (n == 0). */
struct bclass_code {
	int	 v[3];
	int	 n;
};

/* The RFC fallback: subject.detail -> class; detail -1: the subject. */
struct bclass_std {
	int		 subject;
	int		 detail;
	enum bclass	 cls;
	const char	*desc;
};

struct bclass_ctx {
	const char		*file;
	struct vbuf		*why;
	yaml_document_t		*doc;
	struct bclass_rules	*rules;
	size_t			 first;		/* this file's first rule */
};

static const char *const bclass_names[] = {
	[BCLASS_BAD_MAILBOX] = "bad-mailbox",
	[BCLASS_BAD_DOMAIN] = "bad-domain",
	[BCLASS_INACTIVE_MAILBOX] = "inactive-mailbox",
	[BCLASS_QUOTA_ISSUES] = "quota-issues",
	[BCLASS_NO_ANSWER_FROM_HOST] = "no-answer-from-host",
	[BCLASS_ROUTING_ERRORS] = "routing-errors",
	[BCLASS_POLICY_RELATED] = "policy-related",
	[BCLASS_SPAM_RELATED] = "spam-related",
	[BCLASS_VIRUS_RELATED] = "virus-related",
	[BCLASS_CONTENT_RELATED] = "content-related",
	[BCLASS_PROTOCOL_ERRORS] = "protocol-errors",
	[BCLASS_INVALID_SENDER] = "invalid-sender",
	[BCLASS_RELAYING_ISSUES] = "relaying-issues",
	[BCLASS_BAD_CONNECTION] = "bad-connection",
	[BCLASS_BAD_CONFIGURATION] = "bad-configuration",
	[BCLASS_MESSAGE_EXPIRED] = "message-expired",
	[BCLASS_OTHER] = "other",
};

static const char *const bclass_texts[] = {
	[BCLASS_BAD_MAILBOX] = "The recipient's mailbox does not exist.",
	[BCLASS_BAD_DOMAIN] = "The recipient's domain does not exist or "
	    "does not accept mail.",
	[BCLASS_INACTIVE_MAILBOX] = "The recipient's mailbox is disabled or "
	    "no longer in use.",
	[BCLASS_QUOTA_ISSUES] = "The recipient's mailbox is full.",
	[BCLASS_NO_ANSWER_FROM_HOST] = "The recipient's mail server did not "
	    "answer.",
	[BCLASS_ROUTING_ERRORS] = "The way to the recipient's mail server "
	    "could not be found.",
	[BCLASS_POLICY_RELATED] = "The recipient's mail server refused the "
	    "message because of its policy (a rate limit, or sender "
	    "authentication such as SPF, DKIM or DMARC).",
	[BCLASS_SPAM_RELATED] = "The recipient's mail server refused the "
	    "message as spam, or refused the sending server for its "
	    "reputation or a blocklist.",
	[BCLASS_VIRUS_RELATED] = "The recipient's mail server found a virus "
	    "or a forbidden attachment in the message.",
	[BCLASS_CONTENT_RELATED] = "The recipient's mail server refused the "
	    "message because of its content or size.",
	[BCLASS_PROTOCOL_ERRORS] = "The mail servers did not understand each "
	    "other (an SMTP protocol error).",
	[BCLASS_INVALID_SENDER] = "The recipient's mail server refused the "
	    "sender's address.",
	[BCLASS_RELAYING_ISSUES] = "The recipient's mail server refused to "
	    "relay the message.",
	[BCLASS_BAD_CONNECTION] = "The connection to the recipient's mail "
	    "server failed or broke off.",
	[BCLASS_BAD_CONFIGURATION] = "A mail server on the way is not set up "
	    "correctly.",
	[BCLASS_MESSAGE_EXPIRED] = "The message could not be delivered in "
	    "time and expired.",
	[BCLASS_OTHER] = "The message could not be delivered for another "
	    "reason.",
};

/*
 * Enhanced codes (X.subject.detail): RFC 3463, with RFC 3886 (X.1.9),
 * RFC 4954 (X.7.8-X.7.12), RFC 7293 (X.7.17-X.7.19), RFC 7372 (X.7.13-
 * X.7.16, X.7.20-X.7.26) and RFC 7505 (X.1.10, X.7.27). X.1.0, X.2.0 and
 * X.3.0 say nothing definite: other, never a suppressing class on a guess.
 */
static const struct bclass_std bclass_std[] = {
	{ 1, 1, BCLASS_BAD_MAILBOX, "RFC 3463 X.1.1" },
	{ 1, 2, BCLASS_BAD_DOMAIN, "RFC 3463 X.1.2" },
	{ 1, 3, BCLASS_BAD_MAILBOX, "RFC 3463 X.1.3" },
	{ 1, 4, BCLASS_BAD_MAILBOX, "RFC 3463 X.1.4" },
	{ 1, 6, BCLASS_INACTIVE_MAILBOX, "RFC 3463 X.1.6" },
	{ 1, 7, BCLASS_INVALID_SENDER, "RFC 3463 X.1.7" },
	{ 1, 8, BCLASS_INVALID_SENDER, "RFC 3463 X.1.8" },
	{ 1, 10, BCLASS_BAD_DOMAIN, "RFC 3463 X.1.10" },
	{ 1, -1, BCLASS_OTHER, "RFC 3463 X.1.0" },
	{ 2, 1, BCLASS_INACTIVE_MAILBOX, "RFC 3463 X.2.1" },
	{ 2, 2, BCLASS_QUOTA_ISSUES, "RFC 3463 X.2.2" },
	{ 2, 3, BCLASS_CONTENT_RELATED, "RFC 3463 X.2.3" },
	{ 2, -1, BCLASS_OTHER, "RFC 3463 X.2.0" },
	{ 3, 1, BCLASS_QUOTA_ISSUES, "RFC 3463 X.3.1" },
	{ 3, 2, BCLASS_NO_ANSWER_FROM_HOST, "RFC 3463 X.3.2" },
	{ 3, 3, BCLASS_PROTOCOL_ERRORS, "RFC 3463 X.3.3" },
	{ 3, 4, BCLASS_CONTENT_RELATED, "RFC 3463 X.3.4" },
	{ 3, 5, BCLASS_BAD_CONFIGURATION, "RFC 3463 X.3.5" },
	{ 3, -1, BCLASS_OTHER, "RFC 3463 X.3.0" },
	{ 4, 1, BCLASS_NO_ANSWER_FROM_HOST, "RFC 3463 X.4.1" },
	{ 4, 2, BCLASS_BAD_CONNECTION, "RFC 3463 X.4.2" },
	{ 4, 3, BCLASS_ROUTING_ERRORS, "RFC 3463 X.4.3" },
	{ 4, 4, BCLASS_BAD_DOMAIN, "RFC 3463 X.4.4" },
	{ 4, 5, BCLASS_NO_ANSWER_FROM_HOST, "RFC 3463 X.4.5" },
	{ 4, 6, BCLASS_ROUTING_ERRORS, "RFC 3463 X.4.6" },
	{ 4, 7, BCLASS_MESSAGE_EXPIRED, "RFC 3463 X.4.7" },
	{ 4, -1, BCLASS_ROUTING_ERRORS, "RFC 3463 X.4.0" },
	{ 5, -1, BCLASS_PROTOCOL_ERRORS, "RFC 3463 X.5.0" },
	{ 6, -1, BCLASS_CONTENT_RELATED, "RFC 3463 X.6.0" },
	{ 7, 8, BCLASS_BAD_CONFIGURATION, "RFC 3463 X.7.8" },
	{ 7, 10, BCLASS_BAD_CONFIGURATION, "RFC 3463 X.7.10" },
	{ 7, 13, BCLASS_INACTIVE_MAILBOX, "RFC 3463 X.7.13" },
	{ 7, 17, BCLASS_INACTIVE_MAILBOX, "RFC 3463 X.7.17" },
	{ 7, 18, BCLASS_BAD_DOMAIN, "RFC 3463 X.7.18" },
	{ 7, 27, BCLASS_INVALID_SENDER, "RFC 3463 X.7.27" },
	{ 7, -1, BCLASS_POLICY_RELATED, "RFC 3463 X.7.0" },
};

/* The 3-digit codes of RFC 5321 section 4.2.3 that say something. */
static const struct bclass_std bclass_basic[] = {
	{ 421, 0, BCLASS_NO_ANSWER_FROM_HOST, "RFC 5321 421" },
	{ 452, 0, BCLASS_QUOTA_ISSUES, "RFC 5321 452" },
	{ 500, 0, BCLASS_PROTOCOL_ERRORS, "RFC 5321 500" },
	{ 501, 0, BCLASS_PROTOCOL_ERRORS, "RFC 5321 501" },
	{ 502, 0, BCLASS_PROTOCOL_ERRORS, "RFC 5321 502" },
	{ 503, 0, BCLASS_PROTOCOL_ERRORS, "RFC 5321 503" },
	{ 504, 0, BCLASS_PROTOCOL_ERRORS, "RFC 5321 504" },
	{ 552, 0, BCLASS_QUOTA_ISSUES, "RFC 5321 552" },
	{ 553, 0, BCLASS_BAD_MAILBOX, "RFC 5321 553" },
};

static int	 bc_err(struct bclass_ctx *, unsigned long, const char *,
		    const char *, ...) __attribute__((format(printf, 4, 5)));
static int	 bc_walk(struct bclass_ctx *, yaml_node_t *);
static int	 bc_rule(struct bclass_ctx *, yaml_node_t *, size_t);
static int	 bc_scalar(struct bclass_ctx *, yaml_node_t *, unsigned long,
		    const char *, const char **);
static int	 bc_parse_status(const char *, int *, int *);
static int	 bc_name_ok(const char *);
static int	 bc_reply_code(const char *, const char **);
static void	 bc_code_parse(const char *, struct bclass_code *);
static int	 bc_rule_match(const struct bclass_rule *,
		    const struct bclass_code *, int, const char *);
static const struct bclass_rule *bc_first_rule(const struct bclass_rules *,
		    const char *, const char *, struct bclass_code *, int *);
static void	 bc_free_rule(struct bclass_rule *);

const char *
bclass_name(enum bclass c)
{
	if (c < BCLASS_BAD_MAILBOX || c > BCLASS_OTHER)
		return bclass_names[BCLASS_OTHER];
	return bclass_names[c];
}

int
bclass_from_name(const char *s, enum bclass *out)
{
	int c;

	if (s == NULL)
		return -1;
	for (c = BCLASS_BAD_MAILBOX; c <= BCLASS_OTHER; c++)
		if (strcmp(bclass_names[c], s) == 0) {
			*out = (enum bclass)c;
			return 0;
		}
	return -1;
}

int
bclass_suppresses(enum bclass c)
{
	return c == BCLASS_BAD_MAILBOX || c == BCLASS_BAD_DOMAIN ||
	    c == BCLASS_INACTIVE_MAILBOX;
}

const char *
bclass_describe(enum bclass c)
{
	if (c < BCLASS_BAD_MAILBOX || c > BCLASS_OTHER)
		return bclass_texts[BCLASS_OTHER];
	return bclass_texts[c];
}

size_t
bclass_count(const struct bclass_rules *r)
{
	return r == NULL ? 0 : r->n;
}

const char *
bclass_rule_desc(const struct bclass_rules *r, size_t i)
{
	if (r == NULL || i >= r->n)
		return NULL;
	return r->rule[i].desc;
}

void
bclass_free(struct bclass_rules *r)
{
	size_t i;

	if (r == NULL)
		return;
	for (i = 0; i < r->n; i++)
		bc_free_rule(&r->rule[i]);
	free(r->rule);
	free(r);
}

static void
bc_free_rule(struct bclass_rule *rule)
{
	free(rule->desc);
	free(rule->name);
	if (rule->has_re)
		regfree(&rule->re);
	memset(rule, 0, sizeof(*rule));
}

/*
 * Loads one file into rules (appending). Returns 0, -1 with why, or
 * YAMLFILE_MISSING when the file does not exist (why says so).
 */
static int
bc_load_into(struct bclass_rules *rules, const char *path, struct vbuf *why)
{
	struct bclass_ctx ctx;
	yaml_document_t doc;
	int rc;

	memset(&ctx, 0, sizeof(ctx));
	ctx.file = path;
	ctx.why = why;
	ctx.rules = rules;
	ctx.first = rules->n;
	rc = yamlfile_load(path, BCLASS_MAX_FILE, BCLASS_MAX_DEPTH, &doc, why);
	if (rc != 1)
		return rc;	/* an empty file (0) has no rules */
	ctx.doc = &doc;
	rc = bc_walk(&ctx, yaml_document_get_root_node(&doc));
	yaml_document_delete(&doc);
	return rc;
}

struct bclass_rules *
bclass_load_files(char *const *paths, size_t n, struct vbuf *why)
{
	struct bclass_rules *rules = xcalloc(1, sizeof(*rules));
	size_t i;

	if (why != NULL)
		vbuf_reset(why);
	for (i = 0; i < n; i++)
		if (bc_load_into(rules, paths[i], why) != 0) {
			bclass_free(rules);
			return NULL;
		}
	return rules;
}

struct bclass_rules *
bclass_load_file(const char *path, struct vbuf *why)
{
	char *p = (char *)path;

	return bclass_load_files(&p, 1, why);
}

struct bclass_rules *
bclass_load(const struct cfg *cfg, struct vbuf *why)
{
	char where[PATH_MAX + 64];
	const struct cfg_paths *p = &cfg->bounce_classes;
	struct bclass_rules *rules = xcalloc(1, sizeof(*rules));
	struct vbuf one, warn;
	size_t i;
	int rc;

	if (why != NULL)
		vbuf_reset(why);
	vbuf_init(&one, 0);
	vbuf_init(&warn, 0);
	for (i = 0; i < p->n; i++) {
		rc = bc_load_into(rules, p->path[i], &one);
		if (rc == 0)
			continue;
		/* Only the schema's default (line 0) may be missing. */
		if (rc == YAMLFILE_MISSING && p->line[i] == 0) {
			if (warn.len > 0)
				(void)vbuf_adds(&warn, "; ");
			(void)vbuf_addf(&warn, "%s (the default of "
			    "bounce.classes); classifying by status code only",
			    one.data);
			continue;
		}
		if (why != NULL) {
			if (rc == YAMLFILE_MISSING || p->line[i] != 0) {
				/* Where the operator named the file. */
				cfg_paths_where(cfg, "bounce.classes", p, i,
				    where, sizeof(where));
				if (rc == YAMLFILE_MISSING)
					vbuf_setf(why, "%s: %s", where,
					    one.data);
				else
					vbuf_setf(why, "%s (%s)", one.data,
					    where);
			} else
				vbuf_setf(why, "%s", one.data);
		}
		vbuf_release(&one);
		vbuf_release(&warn);
		bclass_free(rules);
		return NULL;
	}
	if (why != NULL && warn.len > 0)
		vbuf_setf(why, "%s", warn.data);
	vbuf_release(&one);
	vbuf_release(&warn);
	return rules;
}

/*
 * Formats "FILE:LINE: KEY: reason" (no LINE when 0, no KEY when NULL).
 * Returns -1 for the caller to pass up.
 */
static int
bc_err(struct bclass_ctx *ctx, unsigned long line, const char *key,
    const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	yamlfile_vwhy(ctx->why, ctx->file, line, key, fmt, ap);
	va_end(ap);
	return -1;
}

/* A scalar: non-empty, no NUL, at most BCLASS_MAX_REGEX bytes. */
static int
bc_scalar(struct bclass_ctx *ctx, yaml_node_t *node, unsigned long line,
    const char *key, const char **out)
{
	const char *s;

	if (node == NULL || node->type != YAML_SCALAR_NODE)
		return bc_err(ctx, line, key, "expected a single value");
	s = (const char *)node->data.scalar.value;
	if (node->data.scalar.length == 0)
		return bc_err(ctx, line, key, "empty value");
	if (strlen(s) != node->data.scalar.length)
		return bc_err(ctx, line, key, "value contains a NUL byte");
	if (node->data.scalar.length > BCLASS_MAX_REGEX)
		return bc_err(ctx, line, key, "longer than %d bytes",
		    BCLASS_MAX_REGEX);
	*out = s;
	return 0;
}

/* The top level: a mapping with one key, rules, a list of mappings. */
static int
bc_walk(struct bclass_ctx *ctx, yaml_node_t *root)
{
	yaml_node_pair_t *p;
	yaml_node_item_t *it;
	yaml_node_t *k, *v = NULL;
	unsigned long vline = yamlfile_line(root);
	size_t i, n;

	if (root->type != YAML_MAPPING_NODE)
		return bc_err(ctx, yamlfile_line(root), NULL,
		    "expected a mapping with the key \"rules\"");
	for (p = root->data.mapping.pairs.start;
	    p < root->data.mapping.pairs.top; p++) {
		k = yaml_document_get_node(ctx->doc, p->key);
		if (k == NULL || k->type != YAML_SCALAR_NODE ||
		    strcmp((const char *)k->data.scalar.value, "rules") != 0)
			return bc_err(ctx, k == NULL ? yamlfile_line(root) :
			    yamlfile_line(k), k != NULL && k->type ==
			    YAML_SCALAR_NODE ? log_safe((const char *)
			    k->data.scalar.value) : NULL,
			    "unknown key (expected \"rules\")");
		if (v != NULL)
			return bc_err(ctx, yamlfile_line(k), "rules",
			    "duplicate key");
		v = yaml_document_get_node(ctx->doc, p->value);
		vline = yamlfile_line(k);
	}
	if (v == NULL)
		return 0;
	/* "rules:" with nothing after it is an empty list. */
	if (v->type == YAML_SCALAR_NODE && v->data.scalar.length == 0)
		return 0;
	if (v->type != YAML_SEQUENCE_NODE)
		return bc_err(ctx, vline, "rules", "expected a list of rules");
	n = (size_t)(v->data.sequence.items.top -
	    v->data.sequence.items.start);
	for (i = 0, it = v->data.sequence.items.start; i < n; i++, it++)
		if (bc_rule(ctx, yaml_document_get_node(ctx->doc, *it),
		    i) == -1)
			return -1;
	return 0;
}

/* One rule: a mapping of name, class, status, code, match. */
static int
bc_rule(struct bclass_ctx *ctx, yaml_node_t *node, size_t index)
{
	char key[BCLASS_KEY_MAX], where[BCLASS_KEY_MAX], errbuf[256];
	struct bclass_rules *rules = ctx->rules;
	struct bclass_rule rule;
	yaml_node_pair_t *p;
	yaml_node_t *k;
	const char *kn, *s = NULL;
	unsigned long line, kline;
	size_t i;
	int rc, seen_class = 0;

	snprintf(where, sizeof(where), "rules[%zu]", index);
	line = node != NULL ? yamlfile_line(node) : 0;
	if (node == NULL || node->type != YAML_MAPPING_NODE)
		return bc_err(ctx, line, where, "expected a mapping (name, "
		    "class, status, code, match)");
	if (rules->n >= BCLASS_MAX_RULES)
		return bc_err(ctx, line, where, "more than %d rules in all",
		    BCLASS_MAX_RULES);
	memset(&rule, 0, sizeof(rule));
	for (p = node->data.mapping.pairs.start;
	    p < node->data.mapping.pairs.top; p++) {
		k = yaml_document_get_node(ctx->doc, p->key);
		if (k == NULL || k->type != YAML_SCALAR_NODE) {
			rc = bc_err(ctx, line, where, "a key must be a name");
			goto fail;
		}
		kn = (const char *)k->data.scalar.value;
		kline = yamlfile_line(k);
		if (strcmp(kn, "name") != 0 && strcmp(kn, "class") != 0 &&
		    strcmp(kn, "status") != 0 && strcmp(kn, "code") != 0 &&
		    strcmp(kn, "match") != 0) {
			rc = bc_err(ctx, kline, where, "unknown key \"%s\"",
			    log_safe(kn));
			goto fail;
		}
		/* kn is one of the five names: this fits. */
		snprintf(key, sizeof(key), "%.20s.%.10s", where, kn);
		if (bc_scalar(ctx, yaml_document_get_node(ctx->doc,
		    p->value), kline, key, &s) == -1) {
			rc = -1;
			goto fail;
		}
		if (strcmp(kn, "name") == 0) {
			if (rule.name != NULL || !bc_name_ok(s)) {
				rc = bc_err(ctx, kline, key, rule.name !=
				    NULL ? "duplicate key" : "\"%s\" is not "
				    "a name of 1 to %d letters, digits, "
				    "'.', '_' or '-'", log_safe(s),
				    BCLASS_MAX_RULE_NAME);
				goto fail;
			}
			rule.name = xstrdup(s);
		} else if (strcmp(kn, "class") == 0) {
			if (seen_class || bclass_from_name(s,
			    &rule.cls) == -1) {
				rc = bc_err(ctx, kline, key, seen_class ?
				    "duplicate key" : "unknown class \"%s\"",
				    log_safe(s));
				goto fail;
			}
			seen_class = 1;
		} else if (strcmp(kn, "status") == 0) {
			if (rule.nst != 0 || bc_parse_status(s, rule.st,
			    &rule.nst) == -1) {
				rc = bc_err(ctx, kline, key, rule.nst != 0 ?
				    "duplicate key" : "\"%s\" is not an "
				    "enhanced status code or prefix (5.7.26, "
				    "4.7, x.1.1)", log_safe(s));
				goto fail;
			}
		} else if (strcmp(kn, "code") == 0) {
			if (rule.code != 0 || strlen(s) != 3 ||
			    s[0] < '2' || s[0] > '5' ||
			    !isdigit((unsigned char)s[1]) ||
			    !isdigit((unsigned char)s[2])) {
				rc = bc_err(ctx, kline, key, rule.code != 0 ?
				    "duplicate key" : "\"%s\" is not a reply "
				    "code (200 to 599)", log_safe(s));
				goto fail;
			}
			rule.code = (s[0] - '0') * 100 + (s[1] - '0') * 10 +
			    (s[2] - '0');
		} else {
			if (rule.has_re) {
				rc = bc_err(ctx, kline, key, "duplicate key");
				goto fail;
			}
			rc = regcomp(&rule.re, s, REG_EXTENDED | REG_ICASE |
			    REG_NOSUB);
			if (rc != 0) {
				(void)regerror(rc, &rule.re, errbuf,
				    sizeof(errbuf));
				rc = bc_err(ctx, kline, key, "bad regular "
				    "expression: %s", errbuf);
				goto fail;
			}
			rule.has_re = 1;
		}
	}
	if (rule.name == NULL) {
		rc = bc_err(ctx, line, where, "name is missing (required)");
		goto fail;
	}
	if (!seen_class) {
		rc = bc_err(ctx, line, where, "class is missing (required)");
		goto fail;
	}
	if (rule.nst == 0 && rule.code == 0 && !rule.has_re) {
		rc = bc_err(ctx, line, where, "needs at least one of status, "
		    "code, match");
		goto fail;
	}
	for (i = ctx->first; i < rules->n; i++)
		if (strcmp(rules->rule[i].name, rule.name) == 0) {
			rc = bc_err(ctx, line, where, "duplicate rule name "
			    "\"%s\" (first: %s)", rule.name,
			    rules->rule[i].desc);
			goto fail;
		}
	{
		struct vbuf d;

		vbuf_init(&d, 0);
		(void)vbuf_addf(&d, "%s (%s:%lu)", rule.name, ctx->file, line);
		rule.desc = xstrdup(d.data);
		vbuf_release(&d);
	}
	if (rules->n == rules->cap) {
		rules->cap = rules->cap == 0 ? 32 : rules->cap * 2;
		rules->rule = xreallocarray(rules->rule, rules->cap,
		    sizeof(*rules->rule));
	}
	rules->rule[rules->n++] = rule;
	return 0;
fail:
	bc_free_rule(&rule);
	return rc;
}

static int
bc_name_ok(const char *s)
{
	size_t i;

	for (i = 0; s[i] != '\0'; i++)
		if (!isalnum((unsigned char)s[i]) && s[i] != '.' &&
		    s[i] != '_' && s[i] != '-')
			return 0;
	return i > 0 && i <= BCLASS_MAX_RULE_NAME;
}

/*
 * "D", "D.S" or "D.S.D": the class 2, 4, 5 or x (4 or 5), then numbers of
 * 1-3 digits (RFC 3463 section 2).
 */
static int
bc_parse_status(const char *s, int *v, int *n)
{
	int k = 0, d;

	if (s[0] == 'x' || s[0] == 'X')
		v[0] = -1;
	else if (s[0] == '2' || s[0] == '4' || s[0] == '5')
		v[0] = s[0] - '0';
	else
		return -1;
	s++;
	for (k = 1; *s == '.' && k < 3; k++) {
		s++;
		for (v[k] = 0, d = 0; isdigit((unsigned char)*s) && d < 3;
		    d++, s++)
			v[k] = v[k] * 10 + (*s - '0');
		if (d == 0)
			return -1;
	}
	if (*s != '\0')
		return -1;
	*n = k;
	return 0;
}

/*
 * The 3-digit code at the start of reply ("550 ", "550-" or "550" alone),
 * else 0. *rest gets what follows the code and its separator.
 */
static int
bc_reply_code(const char *reply, const char **rest)
{
	*rest = reply;
	if (reply[0] < '2' || reply[0] > '5' ||
	    !isdigit((unsigned char)reply[1]) ||
	    !isdigit((unsigned char)reply[2]) ||
	    (reply[3] != '\0' && reply[3] != ' ' && reply[3] != '-'))
		return 0;
	*rest = reply + (reply[3] == '\0' ? 3 : 4);
	return (reply[0] - '0') * 100 + (reply[1] - '0') * 10 +
	    (reply[2] - '0');
}

/* "D.S.D" at the start of s (class 2, 4 or 5), else c->n = 0. */
static void
bc_code_parse(const char *s, struct bclass_code *c)
{
	int k, d;

	c->n = 0;
	if (s == NULL || (s[0] != '2' && s[0] != '4' && s[0] != '5') ||
	    s[1] != '.')
		return;
	c->v[0] = s[0] - '0';
	s++;
	for (k = 1; k < 3; k++) {
		if (*s++ != '.')
			return;
		for (c->v[k] = 0, d = 0; isdigit((unsigned char)*s) && d < 3;
		    d++, s++)
			c->v[k] = c->v[k] * 10 + (*s - '0');
		if (d == 0 || isdigit((unsigned char)*s))
			return;
	}
	if (*s != '\0' && *s != ' ' && *s != ',' && *s != ';')
		return;
	c->n = 3;
}

static int
bc_rule_match(const struct bclass_rule *r, const struct bclass_code *c,
    int code, const char *text)
{
	int k;

	if (r->code != 0 && r->code != code)
		return 0;
	if (r->nst != 0) {
		if (c->n == 0)
			return 0;
		if (r->st[0] == -1 ? c->v[0] != 4 && c->v[0] != 5 :
		    r->st[0] != c->v[0])
			return 0;
		for (k = 1; k < r->nst; k++)
			if (r->st[k] != c->v[k])
				return 0;
	}
	if (r->has_re && regexec(&r->re, text, 0, NULL, 0) != 0)
		return 0;
	return 1;
}

/* The enhanced code of dsn, else the one after reply's 3-digit code. */
static void
bc_effective(const char *dsn, const char *reply, struct bclass_code *c,
    int *code)
{
	const char *rest;

	*code = bc_reply_code(reply, &rest);
	bc_code_parse(dsn, c);
	if (c->n == 0 && *code != 0) {
		while (*rest == ' ')
			rest++;
		bc_code_parse(rest, c);
		/* A code of another class than the reply's is not its. */
		if (c->n != 0 && c->v[0] != *code / 100)
			c->n = 0;
	}
}

int
bclass_status(const char *dsn, const char *reply, char *buf, size_t size)
{
	struct bclass_code c;
	int code;

	bc_effective(dsn, reply == NULL ? "" : reply, &c, &code);
	if (size > 0)
		buf[0] = '\0';
	if (c.n != 0)
		(void)snprintf(buf, size, "%d.%d.%d", c.v[0], c.v[1], c.v[2]);
	return code;
}

int
bclass_hard(const char *dsn, const char *reply)
{
	struct bclass_code c;
	int code;

	bc_effective(dsn, reply == NULL ? "" : reply, &c, &code);
	if (c.n != 0)
		return c.v[0] == 5;
	return code / 100 == 5;
}

/* The first rule that matches, or NULL; c and code are set either way. */
static const struct bclass_rule *
bc_first_rule(const struct bclass_rules *rules, const char *dsn,
    const char *text, struct bclass_code *c, int *code)
{
	char buf[BCLASS_MAX_TEXT + 1];
	size_t i;

	bc_effective(dsn, text, c, code);
	/* regexec needs a string: bound what it looks at. */
	if (strlen(text) > BCLASS_MAX_TEXT) {
		memcpy(buf, text, BCLASS_MAX_TEXT);
		buf[BCLASS_MAX_TEXT] = '\0';
		text = buf;
	}
	for (i = 0; rules != NULL && i < rules->n; i++)
		if (bc_rule_match(&rules->rule[i], c, *code, text))
			return &rules->rule[i];
	return NULL;
}

enum bclass
bclass_classify(const struct bclass_rules *rules, const char *dsn,
    const char *reply, const char **rule)
{
	const struct bclass_rule *r;
	struct bclass_code c;
	size_t i;
	int code;

	r = bc_first_rule(rules, dsn, reply == NULL ? "" : reply, &c, &code);
	if (r != NULL) {
		if (rule != NULL)
			*rule = r->desc;
		return r->cls;
	}
	if (c.n != 0 && c.v[0] != 2) {
		for (i = 0; i < nitems(bclass_std); i++)
			if (bclass_std[i].subject == c.v[1] &&
			    (bclass_std[i].detail == c.v[2] ||
			    bclass_std[i].detail == -1)) {
				if (rule != NULL)
					*rule = bclass_std[i].desc;
				return bclass_std[i].cls;
			}
	}
	for (i = 0; i < nitems(bclass_basic); i++)
		if (bclass_basic[i].subject == code) {
			if (rule != NULL)
				*rule = bclass_basic[i].desc;
			return bclass_basic[i].cls;
		}
	if (rule != NULL)
		*rule = "default";
	return BCLASS_OTHER;
}

/*
 * Greylisting is told by the rule that decides, not by its class: a
 * greylisted reply is policy-related like any other policy deferral, but
 * qmgr retries it after the greylist window (queue.greylist_retry) rather
 * than the general backoff. A rule named "greylisting" or
 * "greylisting-SOMETHING" marks it, so an operator's own file can add one.
 */
int
bclass_reputation(const struct bclass_rules *rules, const char *dsn,
    const char *reply)
{
	const struct bclass_rule *r;
	struct bclass_code c;
	int code;

	r = bc_first_rule(rules, dsn, reply == NULL ? "" : reply, &c, &code);
	if (r == NULL || (r->cls != BCLASS_SPAM_RELATED &&
	    r->cls != BCLASS_POLICY_RELATED))
		return 0;
	return strstr(r->name, "blocklist") != NULL ||
	    strstr(r->name, "block-list") != NULL ||
	    strstr(r->name, "reputation") != NULL;
}

int
bclass_greylisting(const struct bclass_rules *rules, const char *dsn,
    const char *reply)
{
	const struct bclass_rule *r;
	struct bclass_code c;
	size_t n = strlen(BCLASS_GREYLIST_RULE);
	int code;

	r = bc_first_rule(rules, dsn, reply == NULL ? "" : reply, &c, &code);
	if (r == NULL || strncmp(r->name, BCLASS_GREYLIST_RULE, n) != 0)
		return 0;
	return r->name[n] == '\0' || r->name[n] == '-';
}
