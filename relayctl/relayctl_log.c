/*
 * relayctl_log.c - "relayctl log search|show|export": the searchable
 * delivery log that webhookd keeps (lib/evlog, relayctl(8)).
 *
 * The words are checked first, then the configuration is loaded and the
 * process becomes mail_owner before the log's LMDB environment is opened
 * (read-only: relayctl never writes the log).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "cfg.h"
#include "evlog.h"
#include "json.h"
#include "outbox.h"
#include "parse.h"
#include "privsep.h"
#include "relayctl.h"
#include "vbuf.h"

#define LOG_LIMIT_MAX	1000000

enum log_cmd { LOG_SEARCH, LOG_SHOW, LOG_EXPORT };

struct log_args {
	enum log_cmd		 cmd;
	struct evlog_query	 q;
	const char		*key;		/* show */
	int			 json;
	int			 csv;		/* export --format csv */
};

struct log_out {
	const struct log_args	*a;
	struct vbuf		 line;
	int			 story_head;
};

static void
log_usage(FILE *fp, int code)
{
	fprintf(fp,
	    "usage: relayctl [-c FILE] log search [--to ADDR] [--from ADDR] "
	    "[--message-id ID]\n"
	    "           [--queue-id ID] [--user NAME] [--since T] "
	    "[--until T] [--event E]\n"
	    "           [--limit N] [-j]\n"
	    "       relayctl [-c FILE] log show QUEUEID|MESSAGE-ID [-j]\n"
	    "       relayctl [-c FILE] log export --user NAME --since T "
	    "--until T\n"
	    "           [--format jsonl|csv]\n"
	    "T: RFC 3339 (2026-12-05T14:02:00Z, 2026-12-05) or a duration "
	    "back from now (2h, 3d)\n"
	    "E: accepted, delivered, deferred, bounced, expired, deleted, "
	    "suppressed\n");
	exit(code);
}

/*
 * A time for --since/--until in epoch ms: a duration back from now
 * ("2h", "3d"), RFC 3339 with Z or a numeric offset, or a date. 0 or -1.
 */
static int
log_parse_time(const char *s, int64_t *out_ms)
{
	static const char *const fmts[] = {
		"%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M",
		"%Y-%m-%d"
	};
	struct tm tm;
	const char *end;
	int64_t d, off;
	size_t i;
	time_t t;
	int hh, mm;

	if (parse_duration(s, &d) == 0 && d >= 0 && d < 100LL * 365 * 86400) {
		*out_ms = ((int64_t)time(NULL) - d) * 1000;
		return 0;
	}
	for (i = 0; i < sizeof(fmts) / sizeof(fmts[0]); i++) {
		memset(&tm, 0, sizeof(tm));
		if ((end = strptime(s, fmts[i], &tm)) == NULL)
			continue;
		off = 0;
		if (*end == '.')	/* fractions of a second: ignored */
			while (*++end >= '0' && *end <= '9')
				;
		if (*end == 'Z' || *end == 'z')
			end++;
		else if ((*end == '+' || *end == '-') &&
		    sscanf(end + 1, "%2d:%2d", &hh, &mm) == 2 &&
		    strlen(end) == 6) {
			off = (hh * 3600 + mm * 60) * (*end == '+' ? 1 : -1);
			end += 6;
		}
		if (*end != '\0')
			continue;
		if ((t = timegm(&tm)) == (time_t)-1)
			return -1;
		*out_ms = ((int64_t)t - off) * 1000;
		return 0;
	}
	return -1;
}

static int
log_parse_kind(const char *s, enum outbox_kind *k)
{
	int i;

	for (i = OUTBOX_ACCEPTED; i <= OUTBOX_KIND_LAST; i++)
		if (strcasecmp(s, outbox_kind_name((enum outbox_kind)i)) == 0) {
			*k = (enum outbox_kind)i;
			return 0;
		}
	return -1;
}

static int
log_parse(int argc, char *argv[], struct log_args *a, struct vbuf *why)
{
	const char *fmt = NULL, *v;
	uint64_t u;
	int i;

	memset(a, 0, sizeof(*a));
	if (argc < 1) {
		vbuf_setf(why, "log: a subcommand is needed");
		return -1;
	}
	if (strcmp(argv[0], "search") == 0)
		a->cmd = LOG_SEARCH;
	else if (strcmp(argv[0], "show") == 0)
		a->cmd = LOG_SHOW;
	else if (strcmp(argv[0], "export") == 0)
		a->cmd = LOG_EXPORT;
	else {
		vbuf_setf(why, "log: unknown subcommand %.64s", argv[0]);
		return -1;
	}
	for (i = 1; i < argc; i++) {
		const char *o = argv[i];

		if (strcmp(o, "-j") == 0 || strcmp(o, "--json") == 0) {
			a->json = 1;
			continue;
		}
		if (o[0] != '-' && a->cmd == LOG_SHOW && a->key == NULL) {
			a->key = o;
			continue;
		}
		if (o[0] != '-' || i + 1 >= argc) {
			vbuf_setf(why, "log %s: unexpected %.64s", argv[0], o);
			return -1;
		}
		v = argv[++i];
		if (strcmp(o, "--to") == 0 && a->cmd == LOG_SEARCH)
			a->q.to = v;
		else if (strcmp(o, "--from") == 0 && a->cmd == LOG_SEARCH)
			a->q.from = v;
		else if (strcmp(o, "--message-id") == 0 &&
		    a->cmd == LOG_SEARCH)
			a->q.message_id = v;
		else if (strcmp(o, "--queue-id") == 0 && a->cmd == LOG_SEARCH)
			a->q.queue_id = v;
		else if (strcmp(o, "--user") == 0 && a->cmd != LOG_SHOW)
			a->q.user = v;
		else if ((strcmp(o, "--since") == 0 ||
		    strcmp(o, "--until") == 0) && a->cmd != LOG_SHOW) {
			if (log_parse_time(v, o[2] == 's' ? &a->q.since_ms :
			    &a->q.until_ms) == -1) {
				vbuf_setf(why, "%s: invalid time "
				    "\"%.64s\" (RFC 3339 like "
				    "2026-12-05T14:02:00Z, a date, or a "
				    "duration back from now like 2h)", o, v);
				return -1;
			}
		} else if (strcmp(o, "--event") == 0 && a->cmd == LOG_SEARCH) {
			if (log_parse_kind(v, &a->q.kind) == -1) {
				vbuf_setf(why, "--event: unknown event "
				    "\"%.64s\"", v);
				return -1;
			}
		} else if (strcmp(o, "--limit") == 0 && a->cmd == LOG_SEARCH) {
			if (parse_u64(v, 1, LOG_LIMIT_MAX, &u) == -1) {
				vbuf_setf(why, "--limit: not a number from 1 "
				    "to %d: \"%.64s\"", LOG_LIMIT_MAX, v);
				return -1;
			}
			a->q.limit = (size_t)u;
		} else if (strcmp(o, "--format") == 0 && a->cmd == LOG_EXPORT)
			fmt = v;
		else {
			vbuf_setf(why, "log %s: unknown option %.64s", argv[0],
			    o);
			return -1;
		}
	}
	if (a->cmd == LOG_SHOW && a->key == NULL) {
		vbuf_setf(why, "log show: a queue id or Message-ID is needed");
		return -1;
	}
	if (a->cmd == LOG_EXPORT) {
		if (a->q.user == NULL || a->q.since_ms == 0 ||
		    a->q.until_ms == 0) {
			vbuf_setf(why, "log export: --user, --since and "
			    "--until are needed");
			return -1;
		}
		if (fmt == NULL || strcmp(fmt, "jsonl") == 0)
			a->json = 1;
		else if (strcmp(fmt, "csv") == 0)
			a->csv = 1;
		else {
			vbuf_setf(why, "--format: jsonl or csv, not \"%.32s\"",
			    fmt);
			return -1;
		}
		a->q.limit = EVLOG_NO_LIMIT;
		a->q.oldest_first = 1;
	}
	if (a->q.since_ms != 0 && a->q.until_ms != 0 &&
	    a->q.since_ms > a->q.until_ms) {
		vbuf_setf(why, "--since is after --until");
		return -1;
	}
	return 0;
}

void
relayctl_log_time(char *buf, size_t len, int64_t ms)
{
	time_t secs = (time_t)(ms / 1000);
	struct tm tm;

	gmtime_r(&secs, &tm);
	snprintf(buf, len, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ",
	    tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
	    tm.tm_min, tm.tm_sec, (int)(ms % 1000));
}

/* Appends s as a CSV field (RFC 4180 quoting when needed). */
static void
log_csv_field(struct vbuf *out, const char *s, int comma)
{
	const char *p;

	if (comma)
		(void)vbuf_addc(out, ',');
	if (s == NULL)
		return;
	if (strpbrk(s, ",\"\r\n") == NULL) {
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

#define LOG_CSV_HEADER	"time,event,queue_id,message_id,sender,recipient," \
	"user,status,class,reply,relay,attempts,tls,tags,metadata"

/* The recipient column: the recipient, or an accepted event's, joined. */
static void
log_rcpts(struct vbuf *out, const struct outbox_event *ev)
{
	size_t i;

	if (ev->recipient != NULL) {
		(void)vbuf_adds(out, ev->recipient);
		return;
	}
	for (i = 0; i < ev->nrecipients; i++)
		(void)vbuf_addf(out, "%s%s", i ? " " : "", ev->recipients[i]);
}

static void
log_json(struct vbuf *out, const struct outbox_event *ev,
    const struct evlog_webhook *whs, size_t nwh)
{
	struct json j;
	char ts[64];
	size_t i;

	json_init(&j, out);
	outbox_json(&j, ev);
	if (nwh == 0 || out->len == 0 || out->data[out->len - 1] != '}')
		return;
	/* One more member of the same object: the webhooks sent for it. */
	vbuf_truncate(out, out->len - 1);
	(void)vbuf_adds(out, ",\"webhooks\":");
	json_init(&j, out);
	json_array_begin(&j);
	for (i = 0; i < nwh; i++) {
		relayctl_log_time(ts, sizeof(ts), whs[i].time_ms);
		json_object_begin(&j);
		json_kv_str(&j, "time", ts);
		json_kv_str(&j, "outcome", whs[i].outcome);
		json_kv_int(&j, "http_status", whs[i].http_status);
		json_kv_str(&j, "endpoint", whs[i].endpoint);
		json_object_end(&j);
	}
	json_array_end(&j);
	(void)vbuf_addc(out, '}');
}

static void
log_csv(struct vbuf *out, const struct outbox_event *ev)
{
	struct vbuf r;
	char ts[64], att[24];

	vbuf_init(&r, 0);
	log_rcpts(&r, ev);
	relayctl_log_time(ts, sizeof(ts), ev->time_ms);
	snprintf(att, sizeof(att), "%u", (unsigned)ev->attempts);
	log_csv_field(out, ts, 0);
	log_csv_field(out, outbox_kind_name(ev->kind), 1);
	log_csv_field(out, ev->qid, 1);
	log_csv_field(out, ev->message_id, 1);
	log_csv_field(out, ev->sender, 1);
	log_csv_field(out, r.data, 1);
	log_csv_field(out, ev->sasl_username, 1);
	log_csv_field(out, ev->dsn, 1);
	log_csv_field(out, ev->class, 1);
	/* A destination's event: its state and reason, and its key. */
	if (ev->kind == OUTBOX_DESTINATION) {
		vbuf_reset(&r);
		(void)vbuf_addf(&r, "%s: %s", ev->state,
		    ev->reason != NULL ? ev->reason : "");
		log_csv_field(out, r.data, 1);
		log_csv_field(out, ev->destination, 1);
	} else {
		log_csv_field(out, ev->reply, 1);
		log_csv_field(out, ev->relay, 1);
	}
	log_csv_field(out, ev->kind == OUTBOX_ACCEPTED ||
	    ev->kind == OUTBOX_DESTINATION ? "" : att, 1);
	log_csv_field(out, ev->tls, 1);
	log_csv_field(out, ev->tags, 1);
	log_csv_field(out, ev->metadata, 1);
	vbuf_release(&r);
}

/* One line per event for search: the facts an operator looks for. */
static void
log_text(struct vbuf *out, const struct outbox_event *ev,
    const struct evlog_webhook *whs, size_t nwh)
{
	char ts[64];
	size_t i;

	relayctl_log_time(ts, sizeof(ts), ev->time_ms);
	/* A destination's change of state: of no message. */
	if (ev->kind == OUTBOX_DESTINATION) {
		(void)vbuf_addf(out, "%s %-10s %s", ts,
		    outbox_kind_name(ev->kind), ev->destination);
		if (ev->source != NULL)
			(void)vbuf_addf(out, " source=%s", ev->source);
		(void)vbuf_addf(out, " state=%s previous=%s", ev->state,
		    ev->prev_state != NULL ? ev->prev_state : "-");
		if (ev->entry != NULL)
			(void)vbuf_addf(out, " entry=%s", ev->entry);
		if (ev->reason != NULL)
			(void)vbuf_addf(out, " reason=\"%s\"", ev->reason);
		for (i = 0; i < nwh; i++)
			(void)vbuf_addf(out, " webhook=%s/%ld",
			    whs[i].outcome, whs[i].http_status);
		return;
	}
	(void)vbuf_addf(out, "%s %-10s %s from=<%s> to=", ts,
	    outbox_kind_name(ev->kind), ev->qid,
	    ev->sender ? ev->sender : "");
	log_rcpts(out, ev);
	if (ev->sasl_username)
		(void)vbuf_addf(out, " user=%s", ev->sasl_username);
	if (ev->kind == OUTBOX_ACCEPTED) {
		if (ev->message_id)
			(void)vbuf_addf(out, " message-id=%s",
			    ev->message_id);
		if (ev->client)
			(void)vbuf_addf(out, " client=%s", ev->client);
		(void)vbuf_addf(out, " tls=%s", ev->tls ? ev->tls : "none");
	} else {
		if (ev->relay)
			(void)vbuf_addf(out, " relay=%s", ev->relay);
		if (ev->dsn)
			(void)vbuf_addf(out, " dsn=%s", ev->dsn);
		if (ev->class)
			(void)vbuf_addf(out, " class=%s", ev->class);
		if (ev->attempts)
			(void)vbuf_addf(out, " attempts=%u",
			    (unsigned)ev->attempts);
		if (ev->reply)
			(void)vbuf_addf(out, " reply=\"%s\"", ev->reply);
	}
	for (i = 0; i < nwh; i++)
		(void)vbuf_addf(out, " webhook=%s/%ld", whs[i].outcome,
		    whs[i].http_status);
}

/* The story, line by line, in words. */
static void
log_story_text(struct log_out *o, const struct outbox_event *ev,
    const struct evlog_webhook *whs, size_t nwh)
{
	struct vbuf *out = &o->line;
	char ts[64], na[64];
	size_t i;

	if (!o->story_head) {
		(void)vbuf_addf(out, "Queue ID %s", ev->qid);
		if (ev->message_id)
			(void)vbuf_addf(out, ", Message-ID %s",
			    ev->message_id);
		(void)vbuf_addc(out, '\n');
		o->story_head = 1;
	}
	relayctl_log_time(ts, sizeof(ts), ev->time_ms);
	(void)vbuf_addf(out, "%s  ", ts);
	switch (ev->kind) {
	case OUTBOX_ACCEPTED:
		(void)vbuf_addf(out, "accepted from <%s>",
		    ev->sender ? ev->sender : "");
		if (ev->sasl_username)
			(void)vbuf_addf(out, " (user %s)", ev->sasl_username);
		(void)vbuf_addf(out, " client %s, %s, %llu bytes, for ",
		    ev->client ? ev->client : "?",
		    ev->tls ? ev->tls : "no TLS",
		    (unsigned long long)ev->size);
		log_rcpts(out, ev);
		break;
	case OUTBOX_DEFERRED:
		(void)vbuf_addf(out, "deferred %s, attempt %u",
		    ev->recipient ? ev->recipient : "",
		    (unsigned)ev->attempts);
		if (ev->next_attempt) {
			relayctl_log_time(na, sizeof(na), ev->next_attempt * 1000);
			(void)vbuf_addf(out, ", next attempt %s", na);
		}
		break;
	default:
		(void)vbuf_addf(out, "%s %s", outbox_kind_name(ev->kind),
		    ev->recipient ? ev->recipient : "");
		if (ev->attempts)
			(void)vbuf_addf(out, ", attempt %u",
			    (unsigned)ev->attempts);
		break;
	}
	if (ev->kind != OUTBOX_ACCEPTED) {
		if (ev->relay)
			(void)vbuf_addf(out, " via %s", ev->relay);
		if (ev->dsn)
			(void)vbuf_addf(out, " status %s", ev->dsn);
		if (ev->class)
			(void)vbuf_addf(out, " (class %s)", ev->class);
		if (ev->reply)
			(void)vbuf_addf(out, "\n    reply: %s", ev->reply);
	}
	for (i = 0; i < nwh; i++) {
		relayctl_log_time(na, sizeof(na), whs[i].time_ms);
		(void)vbuf_addf(out, "\n    webhook %s", whs[i].outcome);
		if (whs[i].http_status)
			(void)vbuf_addf(out, " (HTTP %ld)",
			    whs[i].http_status);
		(void)vbuf_addf(out, " %s at %s", whs[i].endpoint, na);
	}
}

static int
log_cb(const struct outbox_event *ev, const struct evlog_webhook *whs,
    size_t nwh, void *arg)
{
	struct log_out *o = arg;

	vbuf_reset(&o->line);
	if (o->a->json)
		log_json(&o->line, ev, whs, nwh);
	else if (o->a->csv)
		log_csv(&o->line, ev);
	else if (o->a->cmd == LOG_SHOW)
		log_story_text(o, ev, whs, nwh);
	else
		log_text(&o->line, ev, whs, nwh);
	(void)vbuf_addc(&o->line, '\n');
	return fwrite(o->line.data, 1, o->line.len, stdout) == o->line.len ?
	    0 : 1;
}

int
relayctl_log_main(int argc, char *argv[], const struct relayctl_opts *opts)
{
	struct log_args a;
	struct log_out o;
	struct evlog *l;
	struct vbuf why;
	struct cfg *cfg;
	long n;
	int ret = RELAYCTL_EXIT_OK;

	vbuf_init(&why, 0);
	for (int i = 0; i < argc; i++)
		if (strcmp(argv[i], "--help") == 0 ||
		    strcmp(argv[i], "-h") == 0)
			log_usage(stdout, RELAYCTL_EXIT_OK);
	if (log_parse(argc, argv, &a, &why) == -1) {
		fprintf(stderr, "relayctl: %s\n", why.data);
		vbuf_release(&why);
		log_usage(stderr, RELAYCTL_EXIT_USAGE);
	}
	if (opts->json && a.cmd != LOG_EXPORT)
		a.json = 1;
	if ((cfg = cfg_load(opts->config, &why)) == NULL) {
		fprintf(stderr, "relayctl: %s\n", why.data);
		vbuf_release(&why);
		return RELAYCTL_EXIT_FAIL;
	}
	/* Become mail_owner before LMDB opens (and its lock file). */
	if (privsep_become_owner(cfg, &why) == -1 ||
	    (l = evlog_open(cfg, 0, &why)) == NULL) {
		fprintf(stderr, "relayctl: %s\n", why.data);
		vbuf_release(&why);
		cfg_free(cfg);
		return RELAYCTL_EXIT_FAIL;
	}
	memset(&o, 0, sizeof(o));
	o.a = &a;
	vbuf_init(&o.line, 0);
	if (a.csv)
		printf("%s\n", LOG_CSV_HEADER);
	if (a.cmd == LOG_SHOW)
		n = evlog_story(l, a.key, log_cb, &o, &why);
	else
		n = evlog_search(l, &a.q, log_cb, &o, &why);
	if (n < 0) {
		fprintf(stderr, "relayctl: %s\n", why.data);
		ret = RELAYCTL_EXIT_FAIL;
	} else if (n == 0 && a.cmd == LOG_SHOW) {
		fprintf(stderr, "relayctl: %s: not in the delivery log\n",
		    a.key);
		ret = RELAYCTL_EXIT_FAIL;
	}
	if (fflush(stdout) == EOF) {
		fprintf(stderr, "relayctl: stdout: %s\n", strerror(errno));
		ret = RELAYCTL_EXIT_FAIL;
	}
	vbuf_release(&o.line);
	evlog_close(l);
	vbuf_release(&why);
	cfg_free(cfg);
	return ret;
}
