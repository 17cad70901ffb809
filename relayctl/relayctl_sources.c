/*
 * relayctl_sources.c - "relayctl sources show [-j]": each source address
 * of each pool, with its warmup day and today's cap while it warms up,
 * then each address and scope (a provider of the shaping file, or a next
 * hop) that qmgr holds a reputation set-aside in force or today's warmup
 * count for (relayctl(8), SOURCE ADDRESSES; qmgr(8), SOURCE ADDRESSES).
 *
 * Set-asides live only in qmgr's memory and the warmup counts it decides
 * by are there too, so the one source is a request=sources on
 * private/qmgr (relayctl_qmgr.c). Every string is checked printable
 * before it reaches a terminal: qmgr passes on a remote server's reply.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "attr.h"
#include "cfg.h"
#include "json.h"
#include "mailproto.h"
#include "privsep.h"
#include "relayctl.h"
#include "shaping.h"
#include "vbuf.h"
#include "xalloc.h"

/* Records believed from qmgr (it sends at most 20000). */
#define SRC_ROWS_MAX		100000
/* An address as inet_ntop writes it. */
#define SRC_ADDR_MAX		63
/* The columns from WARMUP_DAY to SET_ASIDE_UNTIL, and all before REASON. */
#define SRC_NUMS		4
#define SRC_COLS		(3 + SRC_NUMS)

/* One row: a pool's address (pool set) or an address and scope. */
struct src_row {
	size_t		 seq;		/* qmgr's order */
	char		*source;
	char		*pool;		/* address rows; else NULL */
	char		*scope;		/* scope rows; else NULL */
	int64_t		 warmup_day;	/* -1: not warming up */
	int64_t		 warmup_cap;	/* -1: none */
	int64_t		 sent_today;	/* -1: none */
	int64_t		 aside_until;	/* epoch s; -1: not set aside */
	char		*reason;	/* the refusal; NULL: none */
};

struct src_reply {
	struct src_row	*r;
	size_t		 n, cap;
};

static void	src_usage(FILE *, int) __attribute__((noreturn));
static int	src_parse(int, char *[], int *, struct vbuf *);
static int	src_printable(const char *);
static int	src_record(const struct attr_list *, void *, struct vbuf *);
static int	src_cmp(const void *, const void *);
static void	src_numbers(const struct src_row *, char [SRC_NUMS][64]);
static void	src_columns(const struct src_row *, char [SRC_NUMS][64],
		    const char *[SRC_COLS]);
static void	src_print(const struct src_reply *);
static void	src_row_print(const char *const [SRC_COLS],
		    const int [SRC_COLS], const char *);
static void	src_json_num(struct json *, const char *, int64_t);
static void	src_json(const struct src_reply *);
static void	src_reply_release(struct src_reply *);

static void
src_usage(FILE *fp, int code)
{
	fprintf(fp,
	    "usage: relayctl [-c FILE] [-j] sources show [-j]\n"
	    "Shows each source address of each pool (smtp.source_addresses "
	    "is the pool\n"
	    "default), with its warmup day and today's cap while it warms up "
	    "(smtp.warmup),\n"
	    "then each address and scope (a provider, else a next hop) qmgr "
	    "holds a\n"
	    "set-aside for (smtp.reputation_set_aside) or a warmup count "
	    "for today.\n"
	    "Exit status: 0, 1 qmgr cannot be reached, 2 usage.\n");
	exit(code);
}

/* The words after "sources". 0, or -1 with a reason (usage, exit 2). */
static int
src_parse(int argc, char *argv[], int *json, struct vbuf *why)
{
	if (argc < 1) {
		vbuf_setf(why, "sources: a subcommand is needed");
		return -1;
	}
	if (strcmp(argv[0], "show") != 0) {
		vbuf_setf(why, "sources: unknown subcommand %s", argv[0]);
		return -1;
	}
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "-j") != 0) {
			vbuf_setf(why, "sources show: unexpected %s", argv[i]);
			return -1;
		}
		*json = 1;
	}
	return 0;
}

/* Whether s (NULL: yes) shows on a terminal as it is. */
static int
src_printable(const char *s)
{
	for (; s != NULL && *s != '\0'; s++)
		if ((unsigned char)*s < 0x20 || (unsigned char)*s >= 0x7f)
			return 0;
	return 1;
}

/* One record into the src_reply arg. 0, or -1 (why). */
static int
src_record(const struct attr_list *l, void *arg, struct vbuf *why)
{
	struct src_reply *rep = arg;
	const char *source = NULL, *pool = NULL, *scope = NULL;
	const char *reason = NULL;
	struct src_row d;
	const struct attr_spec spec[] = {
		ATTR_STR(MAIL_ATTR_SOURCE, ATTR_F_REQUIRED, 1, SRC_ADDR_MAX,
		    &source),
		ATTR_STR(MAIL_ATTR_POOL, 0, 1, CFG_POOL_NAME_MAX, &pool),
		ATTR_STR(MAIL_ATTR_SCOPE, 0, 1, SHAPING_NAME_MAX, &scope),
		ATTR_INT(MAIL_ATTR_WARMUP_DAY, 0, 1, INT32_MAX,
		    &d.warmup_day),
		ATTR_INT(MAIL_ATTR_WARMUP_CAP, 0, 0, INT64_MAX,
		    &d.warmup_cap),
		ATTR_INT(MAIL_ATTR_SENT_TODAY, 0, 0, INT64_MAX,
		    &d.sent_today),
		ATTR_INT(MAIL_ATTR_ASIDE_UNTIL, 0, 0, INT64_MAX,
		    &d.aside_until),
		ATTR_STR(MAIL_ATTR_ASIDE_REASON, 0, 0, ATTR_VALUE_MAX,
		    &reason),
		ATTR_TABLE_END
	};

	memset(&d, 0, sizeof(d));
	d.warmup_day = d.warmup_cap = d.sent_today = d.aside_until = -1;
	if (attr_scan(l, spec, why) == -1)
		return -1;
	if (rep->n == SRC_ROWS_MAX) {
		vbuf_setf(why, "more than %d records", SRC_ROWS_MAX);
		return -1;
	}
	/* A pool's address, or an address and scope: one, not both. */
	if ((pool == NULL) == (scope == NULL)) {
		vbuf_setf(why, "a record with %s pool and scope",
		    pool == NULL ? "neither" : "both");
		return -1;
	}
	if (pool != NULL && !cfg_pool_name_ok(pool)) {
		vbuf_setf(why, "a pool that is not a pool name");
		return -1;
	}
	if (!src_printable(source) || !src_printable(scope) ||
	    !src_printable(reason)) {
		vbuf_setf(why, "text that does not print");
		return -1;
	}
	if (rep->n == rep->cap) {
		rep->cap = rep->cap == 0 ? 16 : 2 * rep->cap;
		rep->r = xreallocarray(rep->r, rep->cap, sizeof(*rep->r));
	}
	/* The strings point into the input buffer, which moves on. */
	d.seq = rep->n;
	d.source = xstrdup(source);
	d.pool = pool != NULL ? xstrdup(pool) : NULL;
	d.scope = scope != NULL ? xstrdup(scope) : NULL;
	d.reason = reason != NULL ? xstrdup(reason) : NULL;
	rep->r[rep->n++] = d;
	return 0;
}

/* The pools' addresses as qmgr sends them (pool order), then by scope. */
static int
src_cmp(const void *a, const void *b)
{
	const struct src_row *x = a, *y = b;
	int c;

	if ((x->scope == NULL) != (y->scope == NULL))
		return x->scope == NULL ? -1 : 1;
	if (x->scope == NULL)
		return x->seq < y->seq ? -1 : x->seq > y->seq;
	if ((c = strcmp(x->source, y->source)) != 0)
		return c;
	return strcmp(x->scope, y->scope);
}

/* d's columns from WARMUP_DAY to SET_ASIDE_UNTIL; "-" for none. */
static void
src_numbers(const struct src_row *d, char num[SRC_NUMS][64])
{
	const int64_t v[SRC_NUMS - 1] = { d->warmup_day, d->warmup_cap,
	    d->sent_today };
	struct tm tm;
	time_t t = (time_t)d->aside_until;

	for (size_t i = 0; i < SRC_NUMS - 1; i++)
		if (v[i] < 0)
			snprintf(num[i], sizeof(num[i]), "-");
		else
			snprintf(num[i], sizeof(num[i]), "%" PRId64, v[i]);
	if (d->aside_until < 0 || gmtime_r(&t, &tm) == NULL ||
	    strftime(num[3], sizeof(num[3]), "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
		snprintf(num[3], sizeof(num[3]), "-");
}

/* d's columns, "-" for what it has not (num holds the numbers). */
static void
src_columns(const struct src_row *d, char num[SRC_NUMS][64],
    const char *col[SRC_COLS])
{
	src_numbers(d, num);
	col[0] = d->source;
	col[1] = d->pool != NULL ? d->pool : "-";
	col[2] = d->scope != NULL ? d->scope : "-";
	for (size_t c = 3; c < SRC_COLS; c++)
		col[c] = num[c - 3];
}

/*
 * A header line, then one line per row in aligned columns; the refusal
 * last, as it came.
 */
static void
src_print(const struct src_reply *rep)
{
	static const char *head[SRC_COLS] = { "SOURCE", "POOL", "SCOPE",
	    "WARMUP_DAY", "WARMUP_CAP", "SENT_TODAY", "SET_ASIDE_UNTIL" };
	char num[SRC_NUMS][64];
	const char *col[SRC_COLS];
	int w[SRC_COLS];
	size_t i, c;

	for (c = 0; c < SRC_COLS; c++)
		w[c] = (int)strlen(head[c]);
	/* Widths from the data: a scope may be 263 characters. */
	for (i = 0; i < rep->n; i++) {
		src_columns(&rep->r[i], num, col);
		for (c = 0; c < SRC_COLS; c++)
			if ((int)strlen(col[c]) > w[c])
				w[c] = (int)strlen(col[c]);
	}
	src_row_print(head, w, "REASON");
	for (i = 0; i < rep->n; i++) {
		src_columns(&rep->r[i], num, col);
		src_row_print(col, w, rep->r[i].reason != NULL ?
		    rep->r[i].reason : "-");
	}
}

/* One line: text left-aligned, numbers right-aligned, then last. */
static void
src_row_print(const char *const col[SRC_COLS], const int w[SRC_COLS],
    const char *last)
{
	printf("%-*s  %-*s  %-*s  %*s  %*s  %*s  %-*s  %s\n", w[0], col[0],
	    w[1], col[1], w[2], col[2], w[3], col[3], w[4], col[4], w[5],
	    col[5], w[6], col[6], last);
}

/* key: n, or null when n is -1 (none). */
static void
src_json_num(struct json *j, const char *key, int64_t n)
{
	json_key(j, key);
	if (n < 0)
		json_null(j);
	else
		json_int(j, n);
}

/*
 * JSON Lines, one object per row, every member in every object (null
 * where it does not apply: json_kv_str writes NULL so), so that a
 * consumer needs no two shapes.
 */
static void
src_json(const struct src_reply *rep)
{
	struct vbuf out;
	struct json j;

	vbuf_init(&out, 0);
	for (size_t i = 0; i < rep->n; i++) {
		const struct src_row *d = &rep->r[i];

		vbuf_reset(&out);
		json_init(&j, &out);
		json_object_begin(&j);
		json_kv_str(&j, "source", d->source);
		json_kv_str(&j, "pool", d->pool);
		json_kv_str(&j, "scope", d->scope);
		src_json_num(&j, "warmup_day", d->warmup_day);
		src_json_num(&j, "warmup_cap", d->warmup_cap);
		src_json_num(&j, "sent_today", d->sent_today);
		src_json_num(&j, "set_aside_until", d->aside_until);
		json_kv_str(&j, "set_aside_reason", d->reason);
		json_object_end(&j);
		printf("%s\n", out.data);
	}
	vbuf_release(&out);
}

static void
src_reply_release(struct src_reply *rep)
{
	for (size_t i = 0; i < rep->n; i++) {
		free(rep->r[i].source);
		free(rep->r[i].pool);
		free(rep->r[i].scope);
		free(rep->r[i].reason);
	}
	free(rep->r);
}

int
relayctl_sources_main(int argc, char *argv[],
    const struct relayctl_opts *opts)
{
	struct src_reply rep;
	struct vbuf why, *req;
	struct cfg *cfg;
	int json = opts->json, ret;

	for (int i = 0; i < argc; i++)
		if (strcmp(argv[i], "--help") == 0 ||
		    strcmp(argv[i], "-h") == 0)
			src_usage(stdout, RELAYCTL_EXIT_OK);
	vbuf_init(&why, 0);
	if (src_parse(argc, argv, &json, &why) == -1) {
		fprintf(stderr, "relayctl: %s\n", why.data);
		vbuf_release(&why);
		src_usage(stderr, RELAYCTL_EXIT_USAGE);
	}
	if ((cfg = cfg_load(opts->config, &why)) == NULL) {
		fprintf(stderr, "relayctl: %s\n", why.data);
		vbuf_release(&why);
		return RELAYCTL_EXIT_FAIL;
	}
	/* private/qmgr is mail_owner's alone. */
	if (privsep_become_owner(cfg, &why) == -1) {
		fprintf(stderr, "relayctl: %s\n", why.data);
		vbuf_release(&why);
		cfg_free(cfg);
		return RELAYCTL_EXIT_FAIL;
	}
	memset(&rep, 0, sizeof(rep));
	req = vbuf_create(0);
	attr_put_str(req, MAIL_ATTR_REQUEST, MAIL_REQ_SOURCES);
	attr_end(req);
	ret = relayctl_qmgr_list(cfg, "sources", req, src_record, &rep);
	vbuf_free(req);
	if (ret == RELAYCTL_EXIT_OK) {
		if (rep.n > 1)
			qsort(rep.r, rep.n, sizeof(*rep.r), src_cmp);
		if (json)
			src_json(&rep);
		else if (rep.n > 0)
			src_print(&rep);
	}
	if (fflush(stdout) == EOF) {
		fprintf(stderr, "relayctl: stdout: %s\n", strerror(errno));
		ret = RELAYCTL_EXIT_FAIL;
	}
	src_reply_release(&rep);
	vbuf_release(&why);
	cfg_free(cfg);
	return ret;
}
