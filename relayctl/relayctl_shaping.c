/*
 * relayctl_shaping.c - "relayctl shaping show [DEST] [-j]": the
 * destinations qmgr is delivering to now, each with the shaping entry
 * that applies to it, its state, its backlog and its limits (relayctl(8),
 * SHAPING; shaping.yaml(5)).
 *
 * Destinations live only in qmgr's memory, so the one source is a
 * request=shaping on private/qmgr, answered by a record per destination
 * and then a status record (relayctl_qmgr.c). The socket is mail_owner's
 * (0600): relayctl becomes mail_owner before it connects. The state word
 * is printed as qmgr sends it, so a state qmgr learns later needs no
 * change here. DEST is a next-hop key ("[host]:port", "host:port") or a
 * recipient domain, made into its key as qmgr does (cfg_nexthop_key: its
 * transport entry, else the domain with port 25).
 */
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "attr.h"
#include "cfg.h"
#include "json.h"
#include "mailproto.h"
#include "nexthop.h"
#include "privsep.h"
#include "relayctl.h"
#include "shaping.h"
#include "vbuf.h"
#include "xalloc.h"

/* Records believed from qmgr (it sends at most 10000). */
#define SH_DESTS_MAX		100000
#define SH_STATE_MAX		32
/* transactional_reserve as qmgr writes it: "N" or "N%". */
#define SH_RESERVE_MAX		15
/* The table's columns: the words left-aligned, the numbers right. */
#define SH_NUMS			8
#define SH_LEFT			3
#define SH_COLS			(SH_LEFT + SH_NUMS)

struct sh_args {
	const char	*dest;		/* DEST as given, or NULL */
	int		 is_key;	/* DEST is a next-hop key */
	int		 json;
};

/* One destination as qmgr describes it. */
struct sh_dest {
	char		*key;
	char		*entry;
	char		*state;
	uint64_t	 max_conn;	/* 0: no limit */
	uint64_t	 conns;
	uint64_t	 rate_count;
	uint64_t	 rate_interval;	/* s; 0: no limit */
	uint64_t	 pending;
	uint64_t	 sent;
	uint64_t	 failures;	/* site failures in a row */
	uint64_t	 suspended_for;	/* s left dead; 0 not dead */
	char		*last_failure;	/* NULL: none */
	char		*provider;	/* NULL: none known */
	uint64_t	 prov_conns;	/* the provider's jobs at smtp */
	uint64_t	 prov_max;	/* 0: no limit */
	uint64_t	 prov_rate_count;	/* messages per ... */
	uint64_t	 prov_rate_interval;	/* ... s; 0: no limit */
	/* The lanes: jobs waiting and at smtp, each lane apart. */
	uint64_t	 t_pending, t_inflight;
	uint64_t	 b_pending, b_inflight;
	char		*reserve;	/* as configured; NULL: not sent */
	uint64_t	 reserved;	/* connections bulk may not take */
	uint64_t	 nsources;	/* source addresses, each limited */
	uint64_t	 nbackoff;	/* of them, in backoff */
	uint64_t	 nsuspended;	/* and suspended (on_reply) */
};

struct sh_reply {
	struct sh_dest	*d;
	size_t		 n, cap;
};

static void	sh_usage(FILE *, int) __attribute__((noreturn));
static int	sh_parse(int, char *[], struct sh_args *, struct vbuf *);
static int	sh_key(const struct cfg *, const struct sh_args *, char *,
		    size_t);
static int	sh_reserve_ok(const char *);
static int	sh_record(const struct attr_list *, void *, struct vbuf *);
static void	sh_lane(uint64_t, uint64_t, char *, size_t);
static void	sh_reserve(const struct sh_dest *, char *, size_t);
static int	sh_request(const struct cfg *, const char *,
		    struct sh_reply *);
static int	sh_cmp(const void *, const void *);
static void	sh_rate(uint64_t, uint64_t, char *, size_t);
static void	sh_limit(uint64_t, char *, size_t);
static void	sh_numbers(const struct sh_dest *, char [SH_NUMS][64]);
static void	sh_print(const struct sh_reply *);
static void	sh_columns(const struct sh_dest *, char [SH_NUMS][64],
		    const char *[SH_COLS]);
static void	sh_row(const char *const [SH_COLS], const int [SH_COLS]);
static void	sh_json(const struct sh_reply *);
static void	sh_json_uint(struct json *, const char *, uint64_t, int);
static void	sh_reply_release(struct sh_reply *);

static void
sh_usage(FILE *fp, int code)
{
	fprintf(fp,
	    "usage: relayctl [-c FILE] [-j] shaping show [DEST] [-j]\n"
	    "Shows each destination qmgr is delivering to: the shaping entry "
	    "that applies,\n"
	    "its state (as qmgr names it: normal, at-limit, pacing, ...), "
	    "jobs pending,\n"
	    "connections in use, jobs sent, max_connections, "
	    "max_message_rate,\n"
	    "and per lane (transactional, bulk) the jobs waiting/at smtp "
	    "and the reserve.\n"
	    "DEST: a next hop as qmgr keys it ([host]:port, host:port), or a "
	    "recipient\n"
	    "domain (its transport entry, else DOMAIN:25). Exit status: 0, "
	    "1 qmgr cannot\n"
	    "be reached or does not have DEST, 2 usage.\n");
	exit(code);
}

/* The words after "shaping". 0, or -1 with a reason (usage, exit 2). */
static int
sh_parse(int argc, char *argv[], struct sh_args *a, struct vbuf *why)
{
	struct nexthop nh;
	struct vbuf bad;

	memset(a, 0, sizeof(*a));
	if (argc < 1) {
		vbuf_setf(why, "shaping: a subcommand is needed");
		return -1;
	}
	if (strcmp(argv[0], "show") != 0) {
		vbuf_setf(why, "shaping: unknown subcommand %s", argv[0]);
		return -1;
	}
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "-j") == 0)
			a->json = 1;
		else if (argv[i][0] != '-' && a->dest == NULL)
			a->dest = argv[i];
		else {
			vbuf_setf(why, "shaping show: unexpected %s", argv[i]);
			return -1;
		}
	}
	/* An address literal is a recipient domain, as qmgr reads it. */
	if (a->dest == NULL || strncasecmp(a->dest, "[IPv6:", 6) == 0)
		return 0;
	/* Brackets or a port make a next-hop key; else it is a domain. */
	a->is_key = a->dest[0] == '[' || strchr(a->dest, ':') != NULL;
	vbuf_init(&bad, 0);
	if (nexthop_parse(a->dest, &nh, &bad) == -1) {
		vbuf_setf(why, "shaping show: %s", bad.data);
		vbuf_release(&bad);
		return -1;
	}
	vbuf_release(&bad);
	return 0;
}

/* DEST's next-hop key into key (NEXTHOP_KEY_MAX + 1 bytes). 0 or -1. */
static int
sh_key(const struct cfg *cfg, const struct sh_args *a, char *key,
    size_t size)
{
	struct nexthop nh;
	struct vbuf why;
	int rc;

	if (!a->is_key)
		return cfg_nexthop_key(cfg, a->dest, key, size);
	vbuf_init(&why, 0);
	rc = nexthop_parse(a->dest, &nh, &why);
	vbuf_release(&why);
	if (rc == -1)
		return -1;
	/* Keys are lower case (nexthop.h); DEST may not be. */
	for (char *p = nh.host; *p != '\0'; p++)
		*p = (char)tolower((unsigned char)*p);
	return nexthop_format(&nh, key, size);
}

/* Digits, then "%" or nothing: printed as it came. */
static int
sh_reserve_ok(const char *s)
{
	const char *p = s;

	while (isdigit((unsigned char)*p))
		p++;
	return p > s && (*p == '\0' || (p[0] == '%' && p[1] == '\0'));
}

/* One destination record into r. 0, or -1 (why). */
static int
sh_record(const struct attr_list *l, void *arg, struct vbuf *why)
{
	struct sh_reply *r = arg;
	const char *key = NULL, *entry = NULL, *state = NULL, *last = NULL;
	const char *pool = NULL, *prov = NULL, *reserve = NULL;
	struct vbuf k;
	struct sh_dest d;
	const struct attr_spec spec[] = {
		ATTR_STR(MAIL_ATTR_NEXTHOP, ATTR_F_REQUIRED, 1,
		    NEXTHOP_KEY_MAX, &key),
		ATTR_STR(MAIL_ATTR_ENTRY, ATTR_F_REQUIRED, 1,
		    SHAPING_NAME_MAX, &entry),
		ATTR_STR(MAIL_ATTR_STATE, ATTR_F_REQUIRED, 1, SH_STATE_MAX,
		    &state),
		ATTR_UINT(MAIL_ATTR_MAX_CONN, 0, 0, UINT32_MAX, &d.max_conn),
		ATTR_UINT(MAIL_ATTR_CONNS, 0, 0, UINT32_MAX, &d.conns),
		ATTR_UINT(MAIL_ATTR_RATE_COUNT, 0, 0, UINT32_MAX,
		    &d.rate_count),
		ATTR_UINT(MAIL_ATTR_RATE_INTERVAL, 0, 0, UINT32_MAX,
		    &d.rate_interval),
		ATTR_UINT(MAIL_ATTR_PENDING, 0, 0, UINT64_MAX, &d.pending),
		ATTR_UINT(MAIL_ATTR_SENT, 0, 0, UINT64_MAX, &d.sent),
		ATTR_UINT(MAIL_ATTR_FAILURES, 0, 0, UINT32_MAX, &d.failures),
		ATTR_UINT(MAIL_ATTR_SUSPENDED, 0, 0, UINT32_MAX,
		    &d.suspended_for),
		ATTR_STR(MAIL_ATTR_LAST_FAILURE, 0, 0, ATTR_VALUE_MAX, &last),
		ATTR_STR(MAIL_ATTR_PROVIDER, 0, 1, SHAPING_PROVIDER_NAME_MAX,
		    &prov),
		ATTR_UINT(MAIL_ATTR_PROV_CONNS, 0, 0, UINT32_MAX,
		    &d.prov_conns),
		ATTR_UINT(MAIL_ATTR_PROV_MAX, 0, 0, UINT32_MAX, &d.prov_max),
		ATTR_UINT(MAIL_ATTR_PROV_RATE_COUNT, 0, 0, UINT32_MAX,
		    &d.prov_rate_count),
		ATTR_UINT(MAIL_ATTR_PROV_RATE_IVL, 0, 0, UINT32_MAX,
		    &d.prov_rate_interval),
		ATTR_STR(MAIL_ATTR_POOL, 0, 1, CFG_POOL_NAME_MAX, &pool),
		ATTR_UINT(MAIL_ATTR_T_PENDING, 0, 0, UINT64_MAX, &d.t_pending),
		ATTR_UINT(MAIL_ATTR_T_INFLIGHT, 0, 0, UINT32_MAX,
		    &d.t_inflight),
		ATTR_UINT(MAIL_ATTR_B_PENDING, 0, 0, UINT64_MAX, &d.b_pending),
		ATTR_UINT(MAIL_ATTR_B_INFLIGHT, 0, 0, UINT32_MAX,
		    &d.b_inflight),
		ATTR_STR(MAIL_ATTR_RESERVE, 0, 1, SH_RESERVE_MAX, &reserve),
		ATTR_UINT(MAIL_ATTR_RESERVED, 0, 0, UINT32_MAX, &d.reserved),
		ATTR_UINT(MAIL_ATTR_NSOURCES, 0, 0, UINT32_MAX, &d.nsources),
		ATTR_UINT(MAIL_ATTR_NBACKOFF, 0, 0, UINT32_MAX, &d.nbackoff),
		ATTR_UINT(MAIL_ATTR_NSUSPENDED, 0, 0, UINT32_MAX,
		    &d.nsuspended),
		ATTR_TABLE_END
	};

	memset(&d, 0, sizeof(d));
	if (attr_scan(l, spec, why) == -1)
		return -1;
	if (r->n == SH_DESTS_MAX) {
		vbuf_setf(why, "more than %d destinations", SH_DESTS_MAX);
		return -1;
	}
	/* Printed as it came: only what a terminal shows safely. */
	for (const char *p = state; *p != '\0'; p++)
		if (!isalnum((unsigned char)*p) && *p != '-' && *p != '_') {
			vbuf_setf(why, "a state that is not a word");
			return -1;
		}
	if (r->n == r->cap) {
		r->cap = r->cap == 0 ? 16 : 2 * r->cap;
		r->d = xreallocarray(r->d, r->cap, sizeof(*r->d));
	}
	if (pool != NULL && !cfg_pool_name_ok(pool)) {
		vbuf_setf(why, "a pool that is not a pool name");
		return -1;
	}
	if (reserve != NULL && !sh_reserve_ok(reserve)) {
		vbuf_setf(why, "a transactional_reserve that is not N or N%%");
		return -1;
	}
	/* The strings point into the input buffer, which moves on. */
	/* Another pool's destination: qmgr's key, "NEXTHOP/POOL". */
	vbuf_init(&k, 0);
	(void)vbuf_addf(&k, "%s%s%s", key, pool != NULL ? "/" : "",
	    pool != NULL ? pool : "");
	d.key = xstrdup(k.data);
	vbuf_release(&k);
	d.entry = xstrdup(entry);
	d.state = xstrdup(state);
	d.last_failure = last != NULL ? xstrdup(last) : NULL;
	d.provider = prov != NULL ? xstrdup(prov) : NULL;
	d.reserve = reserve != NULL ? xstrdup(reserve) : NULL;
	r->d[r->n++] = d;
	return 0;
}

/*
 * The shaping request, for key only when it is not NULL; the records
 * into r. Returns an exit status, after printing why on stderr.
 */
static int
sh_request(const struct cfg *cfg, const char *key, struct sh_reply *r)
{
	struct vbuf *req = vbuf_create(0);
	int rc;

	attr_put_str(req, MAIL_ATTR_REQUEST, MAIL_REQ_SHAPING);
	if (key != NULL)
		attr_put_str(req, MAIL_ATTR_NEXTHOP, key);
	attr_end(req);
	rc = relayctl_qmgr_list(cfg, "shaping", req, sh_record, r);
	vbuf_free(req);
	return rc;
}

static int
sh_cmp(const void *a, const void *b)
{
	const struct sh_dest *x = a, *y = b;

	return strcmp(x->key, y->key);
}

/*
 * A rate of count per interval s as shaping.yaml(5) writes it ("30/min"),
 * or "-" for no limit.
 */
static void
sh_rate(uint64_t count, uint64_t interval, char *buf, size_t size)
{
	/* qmgr sends what shaping_parse_rate read: 32 bits each. */
	if (interval == 0 || count == 0)
		snprintf(buf, size, "-");
	else
		shaping_rate_text((unsigned)count, (unsigned)interval, buf,
		    size);
}

/* A limit where 0 means none: the number, or "-". */
static void
sh_limit(uint64_t n, char *buf, size_t size)
{
	if (n == 0)
		snprintf(buf, size, "-");
	else
		snprintf(buf, size, "%" PRIu64, n);
}

/* A lane's column: its jobs waiting, "/", its jobs at smtp. */
static void
sh_lane(uint64_t pending, uint64_t inflight, char *buf, size_t size)
{
	snprintf(buf, size, "%" PRIu64 "/%" PRIu64, pending, inflight);
}

/*
 * The RESERVE column: the connections reserved now, then what the file
 * says when that is not the same number ("1(20%)", "2(3)": a reserve is
 * never all of max_connections), so the column has no blank.
 */
static void
sh_reserve(const struct sh_dest *d, char *buf, size_t size)
{
	char n[32];

	snprintf(n, sizeof(n), "%" PRIu64, d->reserved);
	if (d->reserve == NULL || strcmp(d->reserve, n) == 0)
		snprintf(buf, size, "%s", n);
	else
		snprintf(buf, size, "%s(%s)", n, d->reserve);
}

/* d's numeric columns as printed: pending to reserve. */
static void
sh_numbers(const struct sh_dest *d, char num[SH_NUMS][64])
{
	snprintf(num[0], sizeof(num[0]), "%" PRIu64, d->pending);
	snprintf(num[1], sizeof(num[1]), "%" PRIu64, d->conns);
	sh_limit(d->max_conn, num[2], sizeof(num[2]));
	sh_rate(d->rate_count, d->rate_interval, num[3], sizeof(num[3]));
	snprintf(num[4], sizeof(num[4]), "%" PRIu64, d->sent);
	sh_lane(d->t_pending, d->t_inflight, num[5], sizeof(num[5]));
	sh_lane(d->b_pending, d->b_inflight, num[6], sizeof(num[6]));
	sh_reserve(d, num[7], sizeof(num[7]));
}

/* d's columns into col, the numbers' text in num. */
static void
sh_columns(const struct sh_dest *d, char num[SH_NUMS][64],
    const char *col[SH_COLS])
{
	sh_numbers(d, num);
	col[0] = d->key;
	col[1] = d->entry;
	col[2] = d->state;
	for (size_t c = SH_LEFT; c < SH_COLS; c++)
		col[c] = num[c - SH_LEFT];
}

/* One line of the table, each column w wide, two spaces between. */
static void
sh_row(const char *const col[SH_COLS], const int w[SH_COLS])
{
	for (size_t c = 0; c < SH_COLS; c++)
		printf("%s%*s", c == 0 ? "" : "  ",
		    c < SH_LEFT ? -w[c] : w[c], col[c]);
	printf("\n");
}

/* A header line, then one line per destination, in aligned columns. */
static void
sh_print(const struct sh_reply *r)
{
	static const char *const head[SH_COLS] = { "DESTINATION", "ENTRY",
	    "STATE", "PENDING", "CONNECTIONS", "MAX_CONNECTIONS",
	    "MAX_MESSAGE_RATE", "SENT", "TRANSACTIONAL", "BULK", "RESERVE" };
	char num[SH_NUMS][64];
	const char *col[SH_COLS];
	int w[SH_COLS];
	size_t i, c;

	for (c = 0; c < SH_COLS; c++)
		w[c] = (int)strlen(head[c]);
	/* Widths from the data: a key may be 263 characters. */
	for (i = 0; i < r->n; i++) {
		sh_columns(&r->d[i], num, col);
		for (c = 0; c < SH_COLS; c++)
			if ((int)strlen(col[c]) > w[c])
				w[c] = (int)strlen(col[c]);
	}
	sh_row(head, w);
	for (i = 0; i < r->n; i++) {
		sh_columns(&r->d[i], num, col);
		sh_row(col, w);
	}
}

/* key: v, or null when v is 0 and zero_null says 0 means no limit. */
static void
sh_json_uint(struct json *j, const char *key, uint64_t v, int zero_null)
{
	json_key(j, key);
	if (v == 0 && zero_null)
		json_null(j);
	else
		json_uint(j, v);
}

/* JSON Lines, one object per destination, as the other listings. */
static void
sh_json(const struct sh_reply *r)
{
	struct vbuf out;
	struct json j;
	char rate[64];

	vbuf_init(&out, 0);
	for (size_t i = 0; i < r->n; i++) {
		const struct sh_dest *d = &r->d[i];

		vbuf_reset(&out);
		json_init(&j, &out);
		json_object_begin(&j);
		json_kv_str(&j, "destination", d->key);
		json_kv_str(&j, "entry", d->entry);
		json_kv_str(&j, "state", d->state);
		sh_json_uint(&j, "pending", d->pending, 0);
		sh_json_uint(&j, "connections", d->conns, 0);
		sh_json_uint(&j, "sent", d->sent, 0);
		sh_json_uint(&j, "max_connections", d->max_conn, 1);
		sh_rate(d->rate_count, d->rate_interval, rate, sizeof(rate));
		json_kv_str(&j, "max_message_rate", strcmp(rate, "-") == 0 ?
		    NULL : rate);
		sh_json_uint(&j, "rate_count", d->rate_count, 0);
		sh_json_uint(&j, "rate_interval", d->rate_interval, 0);
		sh_json_uint(&j, "failures", d->failures, 0);
		sh_json_uint(&j, "suspended_for", d->suspended_for, 0);
		json_kv_str(&j, "last_failure", d->last_failure);
		json_kv_str(&j, "provider", d->provider);
		sh_json_uint(&j, "provider_connections", d->prov_conns, 0);
		sh_json_uint(&j, "provider_max_connections", d->prov_max, 1);
		sh_rate(d->prov_rate_count, d->prov_rate_interval, rate,
		    sizeof(rate));
		json_kv_str(&j, "provider_max_message_rate",
		    strcmp(rate, "-") == 0 ? NULL : rate);
		sh_json_uint(&j, "transactional_pending", d->t_pending, 0);
		sh_json_uint(&j, "transactional_in_flight", d->t_inflight, 0);
		sh_json_uint(&j, "bulk_pending", d->b_pending, 0);
		sh_json_uint(&j, "bulk_in_flight", d->b_inflight, 0);
		json_kv_str(&j, "transactional_reserve", d->reserve);
		sh_json_uint(&j, "reserved_connections", d->reserved, 0);
		sh_json_uint(&j, "source_addresses", d->nsources, 0);
		sh_json_uint(&j, "sources_in_backoff", d->nbackoff, 0);
		sh_json_uint(&j, "sources_suspended", d->nsuspended, 0);
		json_object_end(&j);
		printf("%s\n", out.data);
	}
	vbuf_release(&out);
}

static void
sh_reply_release(struct sh_reply *r)
{
	for (size_t i = 0; i < r->n; i++) {
		free(r->d[i].key);
		free(r->d[i].entry);
		free(r->d[i].state);
		free(r->d[i].last_failure);
		free(r->d[i].provider);
		free(r->d[i].reserve);
	}
	free(r->d);
}

int
relayctl_shaping_main(int argc, char *argv[],
    const struct relayctl_opts *opts)
{
	char key[NEXTHOP_KEY_MAX + 1];
	struct sh_reply r;
	struct sh_args a;
	struct vbuf why;
	struct cfg *cfg;
	int ret;

	for (int i = 0; i < argc; i++)
		if (strcmp(argv[i], "--help") == 0 ||
		    strcmp(argv[i], "-h") == 0)
			sh_usage(stdout, RELAYCTL_EXIT_OK);
	vbuf_init(&why, 0);
	if (sh_parse(argc, argv, &a, &why) == -1) {
		fprintf(stderr, "relayctl: %s\n", why.data);
		vbuf_release(&why);
		sh_usage(stderr, RELAYCTL_EXIT_USAGE);
	}
	if (opts->json)
		a.json = 1;
	if ((cfg = cfg_load(opts->config, &why)) == NULL) {
		fprintf(stderr, "relayctl: %s\n", why.data);
		vbuf_release(&why);
		return RELAYCTL_EXIT_FAIL;
	}
	if (a.dest != NULL && sh_key(cfg, &a, key, sizeof(key)) == -1) {
		fprintf(stderr, "relayctl: shaping show: not a destination: "
		    "%s\n", a.dest);
		vbuf_release(&why);
		cfg_free(cfg);
		sh_usage(stderr, RELAYCTL_EXIT_USAGE);
	}
	/* private/qmgr is mail_owner's alone. */
	if (privsep_become_owner(cfg, &why) == -1) {
		fprintf(stderr, "relayctl: %s\n", why.data);
		vbuf_release(&why);
		cfg_free(cfg);
		return RELAYCTL_EXIT_FAIL;
	}
	memset(&r, 0, sizeof(r));
	ret = sh_request(cfg, a.dest != NULL ? key : NULL, &r);
	if (ret == RELAYCTL_EXIT_OK) {
		if (r.n > 1)
			qsort(r.d, r.n, sizeof(*r.d), sh_cmp);
		if (a.json)
			sh_json(&r);
		else if (r.n > 0)
			sh_print(&r);
		/* Like a user or a message that is not there (show). */
		if (a.dest != NULL && r.n == 0) {
			fprintf(stderr, "relayctl: %s: qmgr has no destination "
			    "%s (nothing waiting or in flight for it)\n",
			    a.dest, key);
			ret = RELAYCTL_EXIT_FAIL;
		}
	}
	if (fflush(stdout) == EOF) {
		fprintf(stderr, "relayctl: stdout: %s\n", strerror(errno));
		ret = RELAYCTL_EXIT_FAIL;
	}
	sh_reply_release(&r);
	vbuf_release(&why);
	cfg_free(cfg);
	return ret;
}
