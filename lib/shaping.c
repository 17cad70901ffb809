/*
 * shaping.c - the delivery shaping file and the rate token bucket.
 *
 * The file (shaping.file; shipped as etc/shaping.yaml) is YAML:
 *
 *	default:
 *	  max_connections: 10
 *	destinations:
 *	  gmail.com:
 *	    max_connections: 5
 *	    max_message_rate: 600/minute
 *
 * An entry names a next hop: a recipient domain (which also covers its
 * subdomains), a host, or a full next-hop key as the transport table
 * writes it ("[10.0.0.1]:587"). Every error ends the load with
 * "FILE:LINE: KEY: reason" (lib/yamlfile's shape). Nothing here logs.
 */
#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <yaml.h>

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

static int sh_err(struct sh_ctx *, const yaml_node_t *, const char *,
    const char *, ...) __attribute__((format(printf, 4, 5)));
static int sh_limits(struct sh_ctx *, yaml_node_t *, const char *,
    struct shaping_limits *, int *);

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
	};
	unsigned long n;
	char *end;

	if (!isdigit((unsigned char)*s))
		return -1;
	errno = 0;
	n = strtoul(s, &end, 10);
	if (errno != 0 || n == 0 || n > SHAPING_RATE_MAX || *end != '/')
		return -1;
	for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++)
		if (strcmp(end + 1, units[i].name) == 0) {
			*count = (unsigned)n;
			*interval = units[i].s;
			return 0;
		}
	return -1;
}

/* One entry's mapping; key is its name for messages. */
static int
sh_limits(struct sh_ctx *ctx, yaml_node_t *node, const char *key,
    struct shaping_limits *lim, int *has_rate)
{
	yaml_node_pair_t *p;
	char kbuf[SHAPING_NAME_MAX + 64];

	if (node->type != YAML_MAPPING_NODE)
		return sh_err(ctx, node, key, "expected a mapping");
	for (p = node->data.mapping.pairs.start;
	    p < node->data.mapping.pairs.top; p++) {
		yaml_node_t *k = yaml_document_get_node(ctx->doc, p->key);
		yaml_node_t *v = yaml_document_get_node(ctx->doc, p->value);
		const char *kn, *vs;
		unsigned long n;
		char *end;

		if (k == NULL || v == NULL || k->type != YAML_SCALAR_NODE)
			return sh_err(ctx, node, key, "bad key");
		kn = (const char *)k->data.scalar.value;
		snprintf(kbuf, sizeof(kbuf), "%s.%s", key, kn);
		if (v->type != YAML_SCALAR_NODE || v->data.scalar.length == 0)
			return sh_err(ctx, v, kbuf, "expected a value");
		vs = (const char *)v->data.scalar.value;
		if (strcmp(kn, "max_connections") == 0) {
			errno = 0;
			n = strtoul(vs, &end, 10);
			if (!isdigit((unsigned char)*vs) || *end != '\0' ||
			    errno != 0 || n < 1 || n > SHAPING_CONN_MAX)
				return sh_err(ctx, v, kbuf, "\"%s\": expected "
				    "a number from 1 to %d", vs,
				    SHAPING_CONN_MAX);
			lim->max_connections = (unsigned)n;
		} else if (strcmp(kn, "max_message_rate") == 0) {
			if (strcmp(vs, "unlimited") == 0) {
				lim->rate_count = 0;
				lim->rate_interval = 0;
			} else if (shaping_parse_rate(vs, &lim->rate_count,
			    &lim->rate_interval) == -1)
				return sh_err(ctx, v, kbuf, "\"%s\": expected "
				    "N/second, N/minute, N/hour or unlimited "
				    "(N from 1 to %d)", vs, SHAPING_RATE_MAX);
			*has_rate = 1;
		} else
			return sh_err(ctx, k, kbuf, "unknown key");
	}
	return 0;
}

struct shaping *
shaping_load(const char *path, struct vbuf *why)
{
	struct shaping *sh = xcalloc(1, sizeof(*sh));
	yaml_document_t doc;
	yaml_node_t *root;
	yaml_node_pair_t *p, *q;
	struct sh_ctx ctx = { path, &doc, why };
	int rc, has_rate;

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
		sh_err(&ctx, root, NULL, "expected a mapping with default "
		    "and destinations");
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
			if (sh_limits(&ctx, v, "default", &sh->def,
			    &has_rate) == -1)
				goto bad;
			continue;
		}
		if (strcmp(kn, "destinations") != 0) {
			sh_err(&ctx, k, kn, "unknown key (expected default "
			    "or destinations)");
			goto bad;
		}
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
			for (size_t i = 0; i < sh->nentries; i++)
				if (strcmp(sh->entries[i].name, name) == 0) {
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
			memcpy(e->name, name, len + 1);
			if (sh_limits(&ctx, dv, e->name, &e->lim,
			    &e->has_rate) == -1)
				goto bad;
			sh->nentries++;
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
	free(sh->entries);
	free(sh);
}

static const struct shaping_entry *
sh_find(const struct shaping *sh, const char *name)
{
	for (size_t i = 0; i < sh->nentries; i++)
		if (strcmp(sh->entries[i].name, name) == 0)
			return &sh->entries[i];
	return NULL;
}

void
shaping_lookup(const struct shaping *sh, const char *key,
    struct shaping_limits *lim, const char **entry)
{
	const struct shaping_entry *e;
	char host[SHAPING_NAME_MAX + 1];
	const char *h, *colon;
	size_t len;

	*lim = sh->def;
	*entry = "default";
	if ((e = sh_find(sh, key)) == NULL) {
		/* The host of "[host]:port" or "host:port". */
		h = key + (*key == '[');
		colon = strrchr(h, ':');
		len = colon != NULL ? (size_t)(colon - h) : strlen(h);
		if (len > 0 && h[len - 1] == ']')
			len--;
		if (len >= sizeof(host))
			return;
		memcpy(host, h, len);
		host[len] = '\0';
		for (h = host; h != NULL && *h != '\0';
		    h = (h = strchr(h, '.')) != NULL ? h + 1 : NULL)
			if ((e = sh_find(sh, h)) != NULL)
				break;
	}
	if (e == NULL)
		return;
	*entry = e->name;
	if (e->lim.max_connections != 0)
		lim->max_connections = e->lim.max_connections;
	if (e->has_rate) {
		lim->rate_count = e->lim.rate_count;
		lim->rate_interval = e->lim.rate_interval;
	}
}

void
shaping_bucket_init(struct shaping_bucket *b, unsigned count,
    unsigned interval, int64_t now)
{
	b->per_ms = count == 0 || interval == 0 ? 0 :
	    (double)count / ((double)interval * 1000.0);
	b->tokens = 1;
	b->last = now;
}

static void
sh_refill(struct shaping_bucket *b, int64_t now)
{
	if (now > b->last) {
		b->tokens += (double)(now - b->last) * b->per_ms;
		if (b->tokens > 1)
			b->tokens = 1;
	}
	b->last = now;
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
	if (b->per_ms != 0 && (b->tokens += 1) > 1)
		b->tokens = 1;
}

int64_t
shaping_bucket_wait(const struct shaping_bucket *b, int64_t now)
{
	double t;

	if (b->per_ms == 0)
		return 0;
	t = b->tokens + (now > b->last ? (double)(now - b->last) * b->per_ms :
	    0);
	if (t >= 1 - 1e-6)
		return 0;
	return (int64_t)((1 - t) / b->per_ms) + 1;
}
