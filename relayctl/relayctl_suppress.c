/*
 * relayctl_suppress.c - "relayctl suppression ...": the suppression list
 * (lib/suppress), the addresses Petrel no longer mails.
 *
 * list, show and export only read; add, del and import write, as
 * mail_owner (relayctl_suppress_main drops root after opening the import
 * file, which may be readable by root only). import reads CSV (RFC 4180,
 * the columns export writes, header row optional) or one address per line
 * and adds everything in one transaction: a bad line is reported as
 * FILE:LINE: reason and nothing is imported. Expired entries are never
 * shown. See relayctl(8).
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "json.h"
#include "log.h"
#include "parse.h"
#include "privsep.h"
#include "relayctl.h"
#include "suppress.h"
#include "vbuf.h"
#include "xalloc.h"

#define RELAYCTL_CSV_FIELDS	7	/* the columns below */
#define RELAYCTL_CSV_RECORD_MAX	8192	/* bytes in one record */
#define RELAYCTL_TIME_MAX	INT64_C(253402300799)	/* 9999-12-31 */

/* The CSV columns, in the order export writes them. */
enum relayctl_col {
	RELAYCTL_COL_ADDRESS,
	RELAYCTL_COL_SCOPE,
	RELAYCTL_COL_REASON,
	RELAYCTL_COL_CLASS,
	RELAYCTL_COL_SINCE,
	RELAYCTL_COL_EXPIRES,
	RELAYCTL_COL_REPLY,
};

static const char *const relayctl_cols[RELAYCTL_CSV_FIELDS] = {
	"address", "scope", "reason", "class", "since", "expires", "reply",
};

enum relayctl_supp_cmd {
	RELAYCTL_SUPP_LIST,
	RELAYCTL_SUPP_SHOW,
	RELAYCTL_SUPP_ADD,
	RELAYCTL_SUPP_DEL,
	RELAYCTL_SUPP_IMPORT,
	RELAYCTL_SUPP_EXPORT,
};

/* What a subcommand accepts. */
#define RELAYCTL_S_ADDR		0x01	/* one ADDR */
#define RELAYCTL_S_FILE		0x02	/* one FILE */
#define RELAYCTL_S_DOMAIN	0x04	/* --domain */
#define RELAYCTL_S_ADDOPTS	0x08	/* --reason, --expires */
#define RELAYCTL_S_JSON		0x10	/* -j */

static const struct relayctl_supp_sub {
	const char		*name;
	enum relayctl_supp_cmd	 cmd;
	unsigned		 flags;
	const char		*usage;
} relayctl_supp_subs[] = {
	{ "list", RELAYCTL_SUPP_LIST, RELAYCTL_S_JSON,
	    "relayctl [-c FILE] suppression list [-j]\n"
	    "  Every suppressed address in force: address, scope (* for every\n"
	    "  sending domain), reason, since and expiry, tab-separated.\n" },
	{ "show", RELAYCTL_SUPP_SHOW, RELAYCTL_S_ADDR | RELAYCTL_S_JSON,
	    "relayctl [-c FILE] suppression show ADDR [-j]\n"
	    "  The entries of ADDR (one per scope), with the class and reply\n"
	    "  that caused them. Exit 1 if ADDR is not suppressed.\n" },
	{ "add", RELAYCTL_SUPP_ADD,
	    RELAYCTL_S_ADDR | RELAYCTL_S_DOMAIN | RELAYCTL_S_ADDOPTS,
	    "relayctl [-c FILE] suppression add ADDR [--domain D] "
	    "[--reason R] [--expires T]\n"
	    "  Suppresses ADDR for every sending domain, or for D only.\n"
	    "  R: hard-bounce, soft-bounces, complaint, unsubscribe or manual\n"
	    "  (default). T: a duration from now (30d, 12h), a date\n"
	    "  (YYYY-MM-DD or YYYY-MM-DDTHH:MM:SSZ, UTC) or never (default).\n"
	},
	{ "del", RELAYCTL_SUPP_DEL, RELAYCTL_S_ADDR | RELAYCTL_S_DOMAIN,
	    "relayctl [-c FILE] suppression del ADDR [--domain D]\n"
	    "  Lifts the suppression of ADDR: every entry, or D's only.\n"
	    "  Exit 1 if there was none.\n" },
	{ "import", RELAYCTL_SUPP_IMPORT,
	    RELAYCTL_S_FILE | RELAYCTL_S_DOMAIN | RELAYCTL_S_ADDOPTS,
	    "relayctl [-c FILE] suppression import FILE [--domain D] "
	    "[--reason R] [--expires T]\n"
	    "  Adds every line of FILE (- for stdin) in one transaction: CSV\n"
	    "  as export writes it (header address,scope,reason,class,since,\n"
	    "  expires,reply; RFC 4180 quoting), or one address per line.\n"
	    "  The options fill empty or missing columns. A bad line is\n"
	    "  reported as FILE:LINE and nothing is imported.\n" },
	{ "export", RELAYCTL_SUPP_EXPORT, RELAYCTL_S_JSON,
	    "relayctl [-c FILE] suppression export [-j]\n"
	    "  Every entry in force as CSV with a header row (times in UTC,\n"
	    "  an empty expires for never), or JSON Lines with -j.\n" },
};

struct relayctl_supp_args {
	const struct relayctl_supp_sub *sub;
	const char	*address;	/* show, add, del */
	const char	*file;		/* import */
	const char	*domain;	/* --domain, or NULL */
	enum suppress_reason reason;	/* --reason, default manual */
	int64_t		 expires;	/* --expires, absolute; 0 never */
	int		 json;
	int		 help;
};

/* One CSV record: fields as NUL-terminated strings in buf. */
struct relayctl_csv {
	FILE		*fp;
	unsigned long	 line;		/* the next line to read */
	struct vbuf	 buf;
	size_t		 off[RELAYCTL_CSV_FIELDS + 1];
	size_t		 n;
};

struct relayctl_out {
	struct vbuf	 line;
	int		 json;		/* JSON Lines */
	int		 csv;		/* export */
	int		 show;		/* show: one field a line */
	size_t		 count;		/* entries printed */
};

static void	relayctl_supp_usage(FILE *, const struct relayctl_supp_sub *);
static int	relayctl_supp_parse(int, char *[], struct relayctl_supp_args *,
		    struct vbuf *);
static int	relayctl_parse_when(const char *, int64_t, int, int64_t *);
static void	relayctl_utc_time(int64_t, char *, size_t);
static int	relayctl_csv_next(struct relayctl_csv *, unsigned long *,
		    struct vbuf *);
static void	relayctl_csv_field(struct vbuf *, const char *);
static int	relayctl_print(const struct suppress_entry *, void *);
static int	relayctl_import_row(struct relayctl_csv *, const int *,
		    const struct relayctl_supp_args *, int64_t,
		    struct suppress_entry *, struct vbuf *);
static int	relayctl_supp_import(struct suppress *, FILE *,
		    const struct relayctl_supp_args *);
static int	relayctl_supp_run(const struct cfg *,
		    const struct relayctl_supp_args *, FILE *);

static void
relayctl_supp_usage(FILE *fp, const struct relayctl_supp_sub *sub)
{
	size_t i;

	for (i = 0; i < sizeof(relayctl_supp_subs) /
	    sizeof(relayctl_supp_subs[0]); i++)
		if (sub == NULL || sub == &relayctl_supp_subs[i])
			fprintf(fp, "usage: %s", relayctl_supp_subs[i].usage);
}

/*
 * A time: "" (0), epoch seconds, YYYY-MM-DD, YYYY-MM-DDTHH:MM:SSZ, "never"
 * (0); with durations, also a duration from now ("0" is never). 0 or -1.
 */
static int
relayctl_parse_when(const char *s, int64_t now, int durations, int64_t *out)
{
	static const char *const fmts[] = { "%Y-%m-%dT%H:%M:%SZ", "%Y-%m-%d" };
	struct tm tm;
	const char *end;
	int64_t d;
	size_t i;
	time_t t;

	if (s[0] == '\0' || strcmp(s, "never") == 0) {
		*out = 0;
		return 0;
	}
	if (durations && parse_duration(s, &d) == 0 &&
	    d <= RELAYCTL_TIME_MAX - now) {
		*out = d == 0 ? 0 : now + d;
		return 0;
	}
	if (!durations && parse_i64(s, 0, RELAYCTL_TIME_MAX, out) == 0)
		return 0;
	for (i = 0; i < sizeof(fmts) / sizeof(fmts[0]); i++) {
		memset(&tm, 0, sizeof(tm));
		if ((end = strptime(s, fmts[i], &tm)) == NULL || *end != '\0')
			continue;
		if ((t = timegm(&tm)) == (time_t)-1 || t < 0)
			return -1;
		*out = (int64_t)t;
		return 0;
	}
	return -1;
}

static void
relayctl_utc_time(int64_t when, char *buf, size_t size)
{
	time_t t = (time_t)when;
	struct tm tm;

	if (gmtime_r(&t, &tm) == NULL ||
	    strftime(buf, size, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
		(void)snprintf(buf, size, "%" PRId64, when);
}

static int
relayctl_supp_parse(int argc, char *argv[], struct relayctl_supp_args *sa,
    struct vbuf *why)
{
	const struct relayctl_supp_sub *sub = NULL;
	const char *arg, *val;
	char norm[QSTORE_ADDR_MAX + 1];
	size_t i;
	int a;

	memset(sa, 0, sizeof(*sa));
	sa->reason = SUPPRESS_MANUAL;
	if (argc < 1) {
		vbuf_setf(why, "suppression: missing subcommand");
		return -1;
	}
	if (strcmp(argv[0], "--help") == 0 || strcmp(argv[0], "-h") == 0) {
		sa->help = 1;
		return 0;
	}
	for (i = 0; i < sizeof(relayctl_supp_subs) /
	    sizeof(relayctl_supp_subs[0]); i++)
		if (strcmp(argv[0], relayctl_supp_subs[i].name) == 0)
			sub = &relayctl_supp_subs[i];
	if (sub == NULL) {
		vbuf_setf(why, "suppression: unknown subcommand %s", argv[0]);
		return -1;
	}
	sa->sub = sub;
	for (a = 1; a < argc; a++) {
		arg = argv[a];
		if (strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0) {
			sa->help = 1;
			return 0;
		}
		if (strcmp(arg, "-j") == 0 && (sub->flags & RELAYCTL_S_JSON)) {
			sa->json = 1;
			continue;
		}
		if ((strcmp(arg, "--domain") == 0 &&
		    (sub->flags & RELAYCTL_S_DOMAIN)) ||
		    ((strcmp(arg, "--reason") == 0 ||
		    strcmp(arg, "--expires") == 0) &&
		    (sub->flags & RELAYCTL_S_ADDOPTS))) {
			if (a + 1 >= argc) {
				vbuf_setf(why, "suppression %s: option %s "
				    "needs a value", sub->name, arg);
				return -1;
			}
			val = argv[++a];
			if (strcmp(arg, "--domain") == 0) {
				if (suppress_scope_norm(val, norm,
				    sizeof(norm)) == -1 || val[0] == '\0') {
					vbuf_setf(why, "--domain: invalid "
					    "domain \"%.64s\"", val);
					return -1;
				}
				sa->domain = val;
			} else if (strcmp(arg, "--reason") == 0) {
				if (suppress_reason_from_name(val,
				    &sa->reason) == -1) {
					vbuf_setf(why, "--reason: unknown "
					    "reason \"%.32s\" (hard-bounce, "
					    "soft-bounces, complaint, "
					    "unsubscribe, manual)", val);
					return -1;
				}
			} else if (relayctl_parse_when(val, (int64_t)time(NULL),
			    1, &sa->expires) == -1) {
				vbuf_setf(why, "--expires: invalid time "
				    "\"%.64s\" (a duration like 30d, "
				    "YYYY-MM-DD, YYYY-MM-DDTHH:MM:SSZ or "
				    "never)", val);
				return -1;
			}
			continue;
		}
		if (arg[0] == '-' && arg[1] != '\0') {
			vbuf_setf(why, "suppression %s: unknown option %s",
			    sub->name, arg);
			return -1;
		}
		if ((sub->flags & RELAYCTL_S_ADDR) && sa->address == NULL)
			sa->address = arg;
		else if ((sub->flags & RELAYCTL_S_FILE) && sa->file == NULL)
			sa->file = arg;
		else {
			vbuf_setf(why, "suppression %s: too many arguments",
			    sub->name);
			return -1;
		}
	}
	if ((sub->flags & RELAYCTL_S_ADDR) && sa->address == NULL) {
		vbuf_setf(why, "suppression %s: missing ADDR", sub->name);
		return -1;
	}
	if ((sub->flags & RELAYCTL_S_FILE) && sa->file == NULL) {
		vbuf_setf(why, "suppression %s: missing FILE", sub->name);
		return -1;
	}
	if (sa->address != NULL &&
	    suppress_address_norm(sa->address, norm, sizeof(norm)) == -1) {
		vbuf_setf(why, "invalid address \"%.64s\" (local@domain, at "
		    "most %d bytes)", sa->address, QSTORE_ADDR_MAX);
		return -1;
	}
	return 0;
}

/*
 * Reads one RFC 4180 record (quoted fields may hold commas, doubled
 * quotes and line breaks; records end with LF or CRLF). Blank lines are
 * skipped. Returns 1 (fields in c, *start its first line), 0 at the end,
 * -1 with the reason in why.
 */
static int
relayctl_csv_next(struct relayctl_csv *c, unsigned long *start,
    struct vbuf *why)
{
	int ch, quoted = 0, was_quoted = 0, any = 0;

	vbuf_reset(&c->buf);
	c->n = 0;
	c->off[0] = 0;
	*start = c->line;
	for (;;) {
		ch = getc(c->fp);
		if (ch == EOF) {
			if (ferror(c->fp)) {
				vbuf_setf(why, "read: %s", strerror(errno));
				return -1;
			}
			if (quoted) {
				vbuf_setf(why, "unterminated quoted field");
				return -1;
			}
			if (!any)
				return 0;
			break;
		}
		if (ch == '\n')
			c->line++;
		if (ch == '\0') {
			vbuf_setf(why, "NUL byte");
			return -1;
		}
		if (c->buf.len >= RELAYCTL_CSV_RECORD_MAX) {
			vbuf_setf(why, "record longer than %d bytes",
			    RELAYCTL_CSV_RECORD_MAX);
			return -1;
		}
		if (quoted) {
			if (ch != '"') {
				(void)vbuf_addc(&c->buf, ch);
				continue;
			}
			if ((ch = getc(c->fp)) == '"') {
				(void)vbuf_addc(&c->buf, '"');
				continue;
			}
			quoted = 0;
			if (ch == EOF)
				continue;	/* reported at the top */
			if (ch == '\n')
				c->line++;
			/* Only a separator or the record's end may follow. */
			if (ch != ',' && ch != '\n' && ch != '\r') {
				vbuf_setf(why, "text after a closing quote");
				return -1;
			}
		}
		if (ch == '"' && !was_quoted && c->buf.len == c->off[c->n]) {
			quoted = was_quoted = any = 1;
			continue;
		}
		if (ch == '\r') {
			if ((ch = getc(c->fp)) != '\n') {
				vbuf_setf(why, "CR without LF");
				return -1;
			}
			c->line++;
		}
		if (ch == '\n') {
			if (!any && c->buf.len == 0) {
				*start = c->line;
				continue;	/* a blank line */
			}
			break;
		}
		any = 1;
		if (ch == ',') {
			if (c->n + 1 >= RELAYCTL_CSV_FIELDS) {
				vbuf_setf(why, "more than %d fields",
				    RELAYCTL_CSV_FIELDS);
				return -1;
			}
			(void)vbuf_addc(&c->buf, '\0');
			c->off[++c->n] = c->buf.len;
			was_quoted = 0;
			continue;
		}
		if (ch == '"') {
			vbuf_setf(why, "quote inside an unquoted field");
			return -1;
		}
		(void)vbuf_addc(&c->buf, ch);
	}
	c->n++;
	return 1;
}

/* Appends s as a CSV field, quoted when it needs to be (RFC 4180). */
static void
relayctl_csv_field(struct vbuf *out, const char *s)
{
	const char *p;

	if (strpbrk(s, ",\"\r\n") == NULL &&
	    (s[0] == '\0' || (s[0] != ' ' && s[strlen(s) - 1] != ' '))) {
		(void)vbuf_adds(out, s);
		return;
	}
	(void)vbuf_addc(out, '"');
	for (p = s; *p != '\0'; p++) {
		if (*p == '"')
			(void)vbuf_addc(out, '"');
		(void)vbuf_addc(out, *p);
	}
	(void)vbuf_addc(out, '"');
}

/* One entry of list, show or export. */
static int
relayctl_print(const struct suppress_entry *e, void *arg)
{
	struct relayctl_out *o = arg;
	struct json j;
	char since[32], expires[32];

	vbuf_reset(&o->line);
	relayctl_utc_time(e->since, since, sizeof(since));
	if (e->expires == 0)
		expires[0] = '\0';
	else
		relayctl_utc_time(e->expires, expires, sizeof(expires));
	if (o->json) {
		json_init(&j, &o->line);
		json_object_begin(&j);
		json_kv_str(&j, "address", e->address);
		json_kv_str(&j, "scope", e->scope);
		json_kv_str(&j, "reason", suppress_reason_name(e->reason));
		json_kv_str(&j, "class", e->class);
		json_kv_int(&j, "since", e->since);
		json_key(&j, "expires");
		if (e->expires == 0)
			json_null(&j);
		else
			json_int(&j, e->expires);
		json_kv_str(&j, "reply", e->reply);
		json_object_end(&j);
	} else if (o->csv) {
		relayctl_csv_field(&o->line, e->address);
		(void)vbuf_addc(&o->line, ',');
		relayctl_csv_field(&o->line, e->scope);
		(void)vbuf_addf(&o->line, ",%s,",
		    suppress_reason_name(e->reason));
		relayctl_csv_field(&o->line, e->class);
		(void)vbuf_addf(&o->line, ",%s,%s,", since, expires);
		relayctl_csv_field(&o->line, e->reply);
	} else if (o->show) {
		if (o->count > 0)
			(void)vbuf_addc(&o->line, '\n');
		(void)vbuf_addf(&o->line, "address: %s\nscope: %s\nreason: %s\n"
		    "class: %s\nreply: %s\nsince: %s\nexpires: %s\n",
		    e->address, e->scope[0] == '\0' ? "all sending domains" :
		    e->scope, suppress_reason_name(e->reason),
		    e->class[0] == '\0' ? "-" : e->class,
		    e->reply[0] == '\0' ? "-" : e->reply, since,
		    expires[0] == '\0' ? "never" : expires);
	} else
		(void)vbuf_addf(&o->line, "%s\t%s\t%s\t%s\t%s", e->address,
		    e->scope[0] == '\0' ? "*" : e->scope,
		    suppress_reason_name(e->reason), since,
		    expires[0] == '\0' ? "never" : expires);
	if (!o->show || o->json)
		(void)vbuf_addc(&o->line, '\n');
	o->count++;
	if (fwrite(o->line.data, 1, o->line.len, stdout) != o->line.len)
		return -1;
	return 0;
}

/* One import record into e. 0, or -1 with the reason in why. */
static int
relayctl_import_row(struct relayctl_csv *c, const int *map,
    const struct relayctl_supp_args *sa, int64_t now,
    struct suppress_entry *e, struct vbuf *why)
{
	const char *f[RELAYCTL_CSV_FIELDS];
	size_t i;
	int col;

	for (i = 0; i < RELAYCTL_CSV_FIELDS; i++)
		f[i] = "";
	for (i = 0; i < c->n; i++) {
		if ((col = map[i]) < 0)
			continue;
		f[col] = c->buf.data + c->off[i];
	}
	memset(e, 0, sizeof(*e));
	if (suppress_address_norm(f[RELAYCTL_COL_ADDRESS], e->address,
	    sizeof(e->address)) == -1) {
		vbuf_setf(why, "invalid address \"%s\"",
		    log_safe(f[RELAYCTL_COL_ADDRESS]));
		return -1;
	}
	if (f[RELAYCTL_COL_SCOPE][0] == '\0' && sa->domain != NULL)
		f[RELAYCTL_COL_SCOPE] = sa->domain;
	if (strcmp(f[RELAYCTL_COL_SCOPE], "*") == 0)
		f[RELAYCTL_COL_SCOPE] = "";
	if (suppress_scope_norm(f[RELAYCTL_COL_SCOPE], e->scope,
	    sizeof(e->scope)) == -1) {
		vbuf_setf(why, "invalid scope \"%s\"",
		    log_safe(f[RELAYCTL_COL_SCOPE]));
		return -1;
	}
	e->reason = sa->reason;
	if (f[RELAYCTL_COL_REASON][0] != '\0' &&
	    suppress_reason_from_name(f[RELAYCTL_COL_REASON],
	    &e->reason) == -1) {
		vbuf_setf(why, "unknown reason \"%s\"",
		    log_safe(f[RELAYCTL_COL_REASON]));
		return -1;
	}
	if (strlen(f[RELAYCTL_COL_CLASS]) > SUPPRESS_CLASS_MAX ||
	    strlen(f[RELAYCTL_COL_REPLY]) > QSTORE_REPLY_MAX) {
		vbuf_setf(why, "class longer than %d or reply longer than %d "
		    "bytes", SUPPRESS_CLASS_MAX, QSTORE_REPLY_MAX);
		return -1;
	}
	memcpy(e->class, f[RELAYCTL_COL_CLASS],
	    strlen(f[RELAYCTL_COL_CLASS]) + 1);
	memcpy(e->reply, f[RELAYCTL_COL_REPLY],
	    strlen(f[RELAYCTL_COL_REPLY]) + 1);
	if (relayctl_parse_when(f[RELAYCTL_COL_SINCE], now, 0,
	    &e->since) == -1) {
		vbuf_setf(why, "invalid since \"%s\"",
		    log_safe(f[RELAYCTL_COL_SINCE]));
		return -1;
	}
	if (f[RELAYCTL_COL_EXPIRES][0] == '\0')
		e->expires = sa->expires;
	else if (relayctl_parse_when(f[RELAYCTL_COL_EXPIRES], now, 0,
	    &e->expires) == -1) {
		vbuf_setf(why, "invalid expires \"%s\"",
		    log_safe(f[RELAYCTL_COL_EXPIRES]));
		return -1;
	}
	return 0;
}

static int
relayctl_supp_import(struct suppress *db, FILE *fp,
    const struct relayctl_supp_args *sa)
{
	struct relayctl_csv c;
	struct suppress_entry *e;
	struct vbuf why;
	unsigned long line;
	int64_t now = (int64_t)time(NULL);
	int map[RELAYCTL_CSV_FIELDS], rc, first = 1, ret = RELAYCTL_EXIT_FAIL;
	size_t i, j, n = 0;
	const char *name = strcmp(sa->file, "-") == 0 ? "(stdin)" : sa->file;

	memset(&c, 0, sizeof(c));
	c.fp = fp;
	c.line = 1;
	vbuf_init(&c.buf, 0);
	vbuf_init(&why, 0);
	e = xmalloc(sizeof(*e));
	/* Without a header row the columns are export's, in its order. */
	for (i = 0; i < RELAYCTL_CSV_FIELDS; i++)
		map[i] = (int)i;
	if (suppress_batch_begin(db, &why) == -1) {
		fprintf(stderr, "relayctl: suppression import: %s\n",
		    why.data);
		goto done;
	}
	while ((rc = relayctl_csv_next(&c, &line, &why)) == 1) {
		if (first && strcasecmp(c.buf.data, "address") == 0) {
			/* A header row names the columns, in any order. */
			for (i = 0; i < c.n; i++) {
				for (j = 0; j < RELAYCTL_CSV_FIELDS; j++)
					if (strcasecmp(c.buf.data + c.off[i],
					    relayctl_cols[j]) == 0)
						break;
				if (j == RELAYCTL_CSV_FIELDS) {
					vbuf_setf(&why, "unknown column "
					    "\"%s\"", log_safe(c.buf.data +
					    c.off[i]));
					rc = -1;
					break;
				}
				map[i] = (int)j;
			}
			first = 0;
			if (rc == -1)
				break;
			continue;
		}
		first = 0;
		/* One address per line may carry comments. */
		if (c.n == 1 && c.buf.data[0] == '#')
			continue;
		if (relayctl_import_row(&c, map, sa, now, e, &why) == -1 ||
		    suppress_batch_add(db, e, &why) == -1) {
			rc = -1;
			break;
		}
		n++;
	}
	if (rc == -1) {
		suppress_batch_abort(db);
		fprintf(stderr, "%s:%lu: %s (nothing imported)\n", name, line,
		    why.data);
		goto done;
	}
	if (suppress_batch_commit(db, &why) == -1) {
		fprintf(stderr, "relayctl: suppression import: %s (nothing "
		    "imported)\n", why.data);
		goto done;
	}
	printf("%zu addresses imported\n", n);
	ret = RELAYCTL_EXIT_OK;
done:
	free(e);
	vbuf_release(&c.buf);
	vbuf_release(&why);
	return ret;
}

static int
relayctl_supp_run(const struct cfg *cfg, const struct relayctl_supp_args *sa,
    FILE *in)
{
	struct relayctl_out o;
	struct suppress_entry *e;
	struct suppress *db;
	struct vbuf why;
	int64_t now = (int64_t)time(NULL);
	int rc, ret = RELAYCTL_EXIT_FAIL;
	enum relayctl_supp_cmd cmd = sa->sub->cmd;

	vbuf_init(&why, 0);
	memset(&o, 0, sizeof(o));
	vbuf_init(&o.line, 0);
	/* Reading never creates the environment. */
	if ((db = suppress_open(cfg, cmd == RELAYCTL_SUPP_ADD ||
	    cmd == RELAYCTL_SUPP_DEL || cmd == RELAYCTL_SUPP_IMPORT,
	    &why)) == NULL) {
		fprintf(stderr, "relayctl: suppression list: %s\n", why.data);
		goto done;
	}
	o.json = sa->json;
	switch (cmd) {
	case RELAYCTL_SUPP_EXPORT:
		o.csv = !o.json;
		if (o.csv)
			printf("address,scope,reason,class,since,expires,"
			    "reply\n");
		/* FALLTHROUGH */
	case RELAYCTL_SUPP_LIST:
		if (suppress_iter(db, now, relayctl_print, &o, &why) == -1)
			fprintf(stderr, "relayctl: suppression %s: %s\n",
			    sa->sub->name, why.data);
		else
			ret = RELAYCTL_EXIT_OK;
		break;
	case RELAYCTL_SUPP_SHOW:
		o.show = 1;
		if (suppress_iter_address(db, sa->address, now,
		    relayctl_print, &o, &why) == -1)
			fprintf(stderr, "relayctl: suppression show: %s\n",
			    why.data);
		else if (o.count == 0)
			fprintf(stderr, "relayctl: %s is not suppressed\n",
			    sa->address);
		else
			ret = RELAYCTL_EXIT_OK;
		break;
	case RELAYCTL_SUPP_ADD:
		e = xcalloc(1, sizeof(*e));
		(void)snprintf(e->address, sizeof(e->address), "%s",
		    sa->address);
		if (sa->domain != NULL)
			(void)snprintf(e->scope, sizeof(e->scope), "%s",
			    sa->domain);
		e->reason = sa->reason;
		e->since = now;
		e->expires = sa->expires;
		if (e->expires != 0 && e->expires <= now)
			fprintf(stderr, "relayctl: --expires is in the "
			    "past\n");
		else if (suppress_add(db, e, &why) == -1)
			fprintf(stderr, "relayctl: suppression add %s: %s\n",
			    sa->address, why.data);
		else
			ret = RELAYCTL_EXIT_OK;
		free(e);
		break;
	case RELAYCTL_SUPP_DEL:
		if ((rc = suppress_del(db, sa->address, sa->domain,
		    &why)) == -1)
			fprintf(stderr, "relayctl: suppression del %s: %s\n",
			    sa->address, why.data);
		else if (rc == 0)
			fprintf(stderr, "relayctl: %s is not suppressed%s%s\n",
			    sa->address, sa->domain != NULL ? " for " : "",
			    sa->domain != NULL ? sa->domain : "");
		else
			ret = RELAYCTL_EXIT_OK;
		break;
	case RELAYCTL_SUPP_IMPORT:
		ret = relayctl_supp_import(db, in, sa);
		break;
	}
	if (fflush(stdout) == EOF || ferror(stdout)) {
		fprintf(stderr, "relayctl: write to stdout: %s\n",
		    strerror(errno));
		ret = RELAYCTL_EXIT_FAIL;
	}
done:
	suppress_close(db);
	vbuf_release(&o.line);
	vbuf_release(&why);
	return ret;
}

int
relayctl_suppress_main(int argc, char *argv[],
    const struct relayctl_opts *opts)
{
	struct relayctl_supp_args sa;
	struct vbuf why;
	struct cfg *cfg;
	FILE *in = NULL;
	int ret;

	/* 1. The whole command line first. */
	vbuf_init(&why, 0);
	if (relayctl_supp_parse(argc, argv, &sa, &why) == -1) {
		fprintf(stderr, "relayctl: %s\n", why.data);
		relayctl_supp_usage(stderr, sa.sub);
		vbuf_release(&why);
		return RELAYCTL_EXIT_USAGE;
	}
	if (sa.help) {
		relayctl_supp_usage(stdout, sa.sub);
		vbuf_release(&why);
		return RELAYCTL_EXIT_OK;
	}
	if (opts->json)
		sa.json = 1;
	/* 2. Configuration; the import file, while we may still be root. */
	if ((cfg = cfg_load(opts->config, &why)) == NULL) {
		fprintf(stderr, "relayctl: %s\n", why.data);
		vbuf_release(&why);
		return RELAYCTL_EXIT_FAIL;
	}
	if (sa.file != NULL && (in = strcmp(sa.file, "-") == 0 ? stdin :
	    fopen(sa.file, "r")) == NULL) {
		fprintf(stderr, "relayctl: %s: %s\n", sa.file,
		    strerror(errno));
		cfg_free(cfg);
		vbuf_release(&why);
		return RELAYCTL_EXIT_FAIL;
	}
	/* 3. Become mail_owner before LMDB creates or opens any file. */
	if (privsep_become_owner(cfg, &why) == -1) {
		fprintf(stderr, "relayctl: %s\n", why.data);
		ret = RELAYCTL_EXIT_FAIL;
	} else
		ret = relayctl_supp_run(cfg, &sa, in);
	if (in != NULL && in != stdin)
		(void)fclose(in);
	cfg_free(cfg);
	vbuf_release(&why);
	return ret;
}
