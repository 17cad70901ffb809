/*
 * evlog_bench.c - times lib/evlog, the searchable delivery log, for
 * bench/README.md (issue 10, "Delivery log"), and fills a small log for
 * tests/integration/test_evlog.py.
 *
 * evlog_bench bench DIR N K: fills a log under the empty directory DIR
 * with N events in batches of 1000, one write transaction (one fsync)
 * each, as webhookd does; the traffic is realistic in shape: messages
 * from 2,000 senders and 50 credentials to 200,000 recipients (a few
 * popular, most rare), each accepted then delivered, one in ten deferred
 * first, one in twenty bounced 5.1.1. Prints the ingest rate, then times
 * K searches by a random known recipient (newest first, limit 100, as
 * relayctl log search --to does) and K stories by queue id, with p50,
 * p99 and max.
 *
 * evlog_bench sample QUEUEDIR: writes a fixed, small history into
 * QUEUEDIR/log (times relative to now) for the relayctl-level test.
 *
 * A benchmark and test tool, not part of Petrel: built by
 * `make bench-tools` into build/evlog_bench.
 */
#include <sys/stat.h>

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "evlog.h"
#include "outbox.h"
#include "parse.h"
#include "vbuf.h"

#define BATCH		1000
#define NRCPT		200000
#define NSENDER		2000
#define NUSER		50

static double	eb_now(void);
static uint64_t	eb_rand(void);
static int	eb_count(const struct outbox_event *,
		    const struct evlog_webhook *, size_t, void *);
static int	eb_dcmp(const void *, const void *);
static int	eb_bench(const char *, uint64_t, uint64_t);
static int	eb_sample(const char *);

static uint64_t eb_state = 88172645463325252ULL;

static double
eb_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* xorshift64: reproducible, fast. */
static uint64_t
eb_rand(void)
{
	eb_state ^= eb_state << 13;
	eb_state ^= eb_state >> 7;
	eb_state ^= eb_state << 17;
	return eb_state;
}

static int
eb_count(const struct outbox_event *ev, const struct evlog_webhook *whs,
    size_t nwh, void *arg)
{
	(void)ev;
	(void)whs;
	(void)nwh;
	(*(long *)arg)++;
	return 0;
}

static int
eb_dcmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

/* A recipient: a few popular (skewed by squaring), most rare. */
static uint64_t
eb_rcpt(void)
{
	uint64_t r = eb_rand() % NRCPT;

	if (eb_rand() % 4 == 0)
		r = (r * r) / NRCPT;
	return r;
}

struct eb_msg {
	char	 sender[64], rcpt[64], user[16], mid[64], relay[64];
	char	 qid[QID_SIZE];
};

static int
eb_bench(const char *dir, uint64_t n, uint64_t k)
{
	struct outbox_event evs[BATCH];
	const struct outbox_event *p[BATCH];
	const char *rl[BATCH][1];
	struct eb_msg *m;
	struct evlog_query q;
	struct evlog_stat st;
	struct evlog *l;
	struct vbuf why;
	double t0, t, *lat, ingest = 0, slowest = 0;
	uint64_t seq = 0, msgno = 0, i, j, nb = 0;
	int64_t tms = 1764000000000LL;
	long got, total = 0;
	char key[64];
	int step = 0;

	vbuf_init(&why, 0);
	if ((l = evlog_open_dir(dir, 64ULL << 30, 1, &why)) == NULL) {
		fprintf(stderr, "evlog_bench: %s\n", why.data);
		return 1;
	}
	m = calloc(BATCH, sizeof(*m));
	lat = calloc(k ? k : 1, sizeof(*lat));
	if (m == NULL || lat == NULL)
		return 1;
	/* Each message: accepted, [deferred,] delivered or bounced. */
	while (seq < n) {
		size_t b = 0;

		while (b < BATCH && seq < n) {
			struct outbox_event *e = &evs[b];
			struct eb_msg *mm = &m[b];
			uint64_t r;

			if (step == 0) {
				msgno++;
				r = eb_rcpt();
				snprintf(mm->rcpt, sizeof(mm->rcpt),
				    "user%06llu@rcpt%llu.example",
				    (unsigned long long)r,
				    (unsigned long long)(r % 5000));
				snprintf(mm->sender, sizeof(mm->sender),
				    "app%llu@sender%llu.example",
				    (unsigned long long)(msgno % NSENDER),
				    (unsigned long long)(msgno % 97));
				snprintf(mm->user, sizeof(mm->user), "app%llu",
				    (unsigned long long)(msgno % NUSER));
				snprintf(mm->mid, sizeof(mm->mid),
				    "<%llu.bench@sender.example>",
				    (unsigned long long)msgno);
				snprintf(mm->qid, sizeof(mm->qid), "%016llX",
				    (unsigned long long)msgno);
				snprintf(mm->relay, sizeof(mm->relay),
				    "mx%llu.rcpt.example[192.0.2.%llu]:25",
				    (unsigned long long)(r % 5000),
				    (unsigned long long)(r % 250));
			} else if (b > 0)
				memcpy(mm, &m[b - 1], sizeof(*mm));
			memset(e, 0, sizeof(*e));
			e->seq = ++seq;
			tms += 2;	/* about 500 events a second */
			e->time_ms = tms;
			memcpy(e->qid, mm->qid, QID_SIZE);
			e->sender = mm->sender;
			e->sasl_username = mm->user;
			e->message_id = mm->mid;
			e->tags = "[\"newsletter\"]";
			e->metadata = "{\"customer\":\"42\"}";
			if (step == 0) {
				rl[b][0] = mm->rcpt;
				e->kind = OUTBOX_ACCEPTED;
				e->recipients = rl[b];
				e->nrecipients = 1;
				e->client = "app.example[198.51.100.7]";
				e->helo = "app.example";
				e->tls = "TLSv1.3";
				e->listener = "submission";
				e->size = 4000 + msgno % 30000;
				step = msgno % 10 == 0 ? 1 : 2;
			} else {
				e->recipient = mm->rcpt;
				e->relay = mm->relay;
				e->attempts = step == 1 ? 1 : 2;
				if (step == 1) {
					e->kind = OUTBOX_DEFERRED;
					e->dsn = "4.7.1";
					e->reply = "451 4.7.1 Greylisted, try "
					    "again in 5 minutes";
					e->next_attempt = tms / 1000 + 300;
					e->delay = 1;
					step = 2;
				} else if (msgno % 20 == 3) {
					e->kind = OUTBOX_BOUNCED;
					e->dsn = "5.1.1";
					e->class = "bad-mailbox";
					e->reply = "550 5.1.1 <user> User "
					    "unknown";
					step = 0;
				} else {
					e->kind = OUTBOX_DELIVERED;
					e->dsn = "2.0.0";
					e->reply = "250 2.0.0 Ok: queued as "
					    "ABCDEF0123";
					e->dkim = "sender.example:s1";
					step = 0;
				}
			}
			p[b] = e;
			b++;
		}
		/* The m[] copies must hold: carry the last one over. */
		t0 = eb_now();
		if (evlog_add(l, p, b, &why) < 0) {
			fprintf(stderr, "evlog_bench: %s\n", why.data);
			return 1;
		}
		t = eb_now() - t0;
		ingest += t;
		if (t > slowest)
			slowest = t;
		nb++;
		memcpy(&m[0], &m[b - 1], sizeof(m[0]));
		if (nb % 500 == 0)
			fprintf(stderr, "%llu events, %.0f/s\n",
			    (unsigned long long)seq, seq / ingest);
	}
	if (evlog_stat(l, &st, &why) == -1)
		return 1;
	printf("events %llu, %llu batches of %d: ingest %.0f events/s "
	    "(mean batch %.1f ms, slowest %.1f ms), %.0f bytes/event\n",
	    (unsigned long long)st.events, (unsigned long long)nb, BATCH,
	    n / ingest, ingest / nb * 1e3, slowest * 1e3,
	    (double)st.bytes / (st.events ? st.events : 1));
	fflush(stdout);

	/* Searches by a recipient known to the log (cold pages included). */
	for (i = 0; i < k; i++) {
		uint64_t r = eb_rcpt();

		snprintf(key, sizeof(key), "user%06llu@rcpt%llu.example",
		    (unsigned long long)r, (unsigned long long)(r % 5000));
		memset(&q, 0, sizeof(q));
		q.to = key;
		got = 0;
		t0 = eb_now();
		if (evlog_search(l, &q, eb_count, &got, &why) < 0) {
			fprintf(stderr, "evlog_bench: %s\n", why.data);
			return 1;
		}
		lat[i] = (eb_now() - t0) * 1e3;
		total += got;
	}
	if (k > 0) {
		qsort(lat, k, sizeof(*lat), eb_dcmp);
		printf("search --to: %llu lookups, %.1f events each: p50 "
		    "%.3f ms, p99 %.3f ms, max %.3f ms\n",
		    (unsigned long long)k, (double)total / k, lat[k / 2],
		    lat[k * 99 / 100], lat[k - 1]);
	}
	for (i = 0; i < k; i++) {
		j = 1 + eb_rand() % msgno;
		snprintf(key, sizeof(key), "%016llX", (unsigned long long)j);
		got = 0;
		t0 = eb_now();
		if (evlog_story(l, key, eb_count, &got, &why) < 0)
			return 1;
		lat[i] = (eb_now() - t0) * 1e3;
	}
	if (k > 0) {
		qsort(lat, k, sizeof(*lat), eb_dcmp);
		printf("show QUEUEID: %llu lookups: p50 %.3f ms, p99 %.3f ms, "
		    "max %.3f ms\n", (unsigned long long)k, lat[k / 2],
		    lat[k * 99 / 100], lat[k - 1]);
	}
	/* A user's whole day for export, oldest first. */
	memset(&q, 0, sizeof(q));
	q.user = "app7";
	q.since_ms = tms - 86400000LL;
	q.until_ms = tms;
	q.limit = EVLOG_NO_LIMIT;
	q.oldest_first = 1;
	got = 0;
	t0 = eb_now();
	if (evlog_search(l, &q, eb_count, &got, &why) < 0)
		return 1;
	printf("export --user (last 24 h of the log): %ld events in %.0f ms\n",
	    got, (eb_now() - t0) * 1e3);
	/* Pruning the oldest 10,000 events, as webhookd's minute steps do. */
	t0 = eb_now();
	got = evlog_prune(l, tms, 5000, &why);
	printf("prune: %ld events in %.1f ms\n", got, (eb_now() - t0) * 1e3);
	evlog_close(l);
	free(m);
	free(lat);
	vbuf_release(&why);
	return 0;
}

/*
 * The sample history, relative to now: message 00000000000000A1 from
 * alice@sender.example (user app1, TLS) to bob@example.org and
 * carol@example.net: bob deferred 451 then delivered, carol bounced 550
 * 5.1.1 (class bad-mailbox), with webhook notes; message
 * 00000000000000B2 (user app2) to bob, delivered.
 */
static int
eb_sample(const char *qdir)
{
	static const char *const rc[] = { "Bob@Example.org",
	    "carol@example.net" };
	static const char *const rc2[] = { "bob@example.org" };
	struct outbox_event e[6];
	const struct outbox_event *p[6];
	struct evlog *l;
	struct vbuf why, dir;
	int64_t now = outbox_now_ms();
	int i;

	vbuf_init(&why, 0);
	vbuf_init(&dir, 0);
	(void)vbuf_addf(&dir, "%s/log", qdir);
	if ((l = evlog_open_dir(dir.data, 64 << 20, 1, &why)) == NULL) {
		fprintf(stderr, "evlog_bench: %s\n", why.data);
		return 1;
	}
	memset(e, 0, sizeof(e));
	for (i = 0; i < 6; i++) {
		e[i].seq = 100 + i;
		e[i].time_ms = now - (6 - i) * 600000LL;	/* 10 min */
		snprintf(e[i].qid, sizeof(e[i].qid), "%s",
		    i < 4 ? "00000000000000A1" : "00000000000000B2");
		e[i].sender = i < 4 ? "alice@sender.example" : "";
		e[i].sasl_username = i < 4 ? "app1" : "app2";
		e[i].message_id = i < 4 ? "<m1@sender.example>" :
		    "<m2@sender.example>";
		e[i].tags = "[\"welcome\"]";
		e[i].metadata = "{\"order\":\"17, \\\"big\\\"\"}";
		e[i].relay = "mx.example.org[127.0.0.1]:2525";
		p[i] = &e[i];
	}
	e[0].kind = OUTBOX_ACCEPTED;
	e[0].recipients = rc;
	e[0].nrecipients = 2;
	e[0].client = "app.example[127.0.0.1]";
	e[0].tls = "TLSv1.3";
	e[0].size = 1234;
	e[1].kind = OUTBOX_DEFERRED;
	e[1].recipient = "bob@example.org";
	e[1].attempts = 1;
	e[1].dsn = "4.7.1";
	e[1].reply = "451 4.7.1 Greylisted";
	e[1].next_attempt = (now - 3 * 600000LL) / 1000;
	e[2].kind = OUTBOX_BOUNCED;
	e[2].recipient = "carol@example.net";
	e[2].attempts = 1;
	e[2].dsn = "5.1.1";
	e[2].class = "bad-mailbox";
	e[2].reply = "550 5.1.1 <carol@example.net>: User unknown";
	e[3].kind = OUTBOX_DELIVERED;
	e[3].recipient = "bob@example.org";
	e[3].attempts = 2;
	e[3].dsn = "2.0.0";
	e[3].reply = "250 2.0.0 Ok";
	e[4].kind = OUTBOX_ACCEPTED;
	e[4].recipients = rc2;
	e[4].nrecipients = 1;
	e[4].client = "other.example[127.0.0.1]";
	e[5].kind = OUTBOX_DELIVERED;
	e[5].recipient = "bob@example.org";
	e[5].attempts = 1;
	e[5].dsn = "2.0.0";
	e[5].reply = "250 2.0.0 Ok";
	if (evlog_add(l, p, 6, &why) != 6 ||
	    evlog_webhook(l, 102, "https://app.example/hooks", "failed", 500,
	    now - 1000, &why) == -1 ||
	    evlog_webhook(l, 102, "https://app.example/hooks", "sent", 200,
	    now, &why) == -1) {
		fprintf(stderr, "evlog_bench: %s\n", why.data);
		return 1;
	}
	evlog_close(l);
	vbuf_release(&why);
	vbuf_release(&dir);
	return 0;
}

int
main(int argc, char *argv[])
{
	uint64_t n, k;

	if (argc == 3 && strcmp(argv[1], "sample") == 0)
		return eb_sample(argv[2]);
	if (argc == 5 && strcmp(argv[1], "bench") == 0 &&
	    parse_u64(argv[3], 1, 100000000, &n) == 0 &&
	    parse_u64(argv[4], 0, 10000000, &k) == 0)
		return eb_bench(argv[2], n, k);
	fprintf(stderr, "usage: evlog_bench bench DIR N K\n"
	    "       evlog_bench sample QUEUEDIR\n");
	return 2;
}
