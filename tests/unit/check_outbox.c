/*
 * check_outbox.c - unit tests for lib/outbox: events in the queue's LMDB
 * environment.
 *
 * Each test opens a queue in a mkdtemp() directory. Covered: the put and
 * iterate round trip of every member; sequence numbers; an event exists
 * exactly when its transaction commits (abort leaves none, qstore_commit
 * puts a message's accepted event and none for a message over its rate);
 * the caps by count, age and share of the map, with the dropped count in
 * the outbox and in qstore_events_dropped; the JSON rendering.
 */
#include <sys/stat.h>
#include <sys/types.h>

#include <check.h>
#include <ftw.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cfg.h"
#include "json.h"
#include "outbox.h"
#include "qid.h"
#include "qstore.h"
#include "vbuf.h"

#define EV_MAX	128

struct fix {
	char		 dir[256];
	struct cfg	 cfg;
	struct qstore	*qs;
	struct vbuf	*why;
};

/* Events seen by collect_cb, rendered to JSON (strings die with iter). */
struct seen {
	size_t		 n;
	uint64_t	 seq[EV_MAX];
	char		 json[EV_MAX][1024];
};

static void	 fix_setup(struct fix *, uint64_t map_size, unsigned max_events,
		    int64_t max_age, unsigned max_share);
static void	 fix_teardown(struct fix *);
static int	 rm_cb(const char *, const struct stat *, int, struct FTW *);
static void	 event_fill(struct outbox_event *, enum outbox_kind,
		    const char *qid, int64_t time_ms);
static int	 put_one(struct fix *, const struct outbox_event *, int commit);
static int	 collect_cb(const struct outbox_event *, void *);
static void	 collect(struct fix *, struct seen *);
static void	 render(const struct outbox_event *, char *, size_t);
static void	 stat_get(struct fix *, struct outbox_stat *);
static Suite	*outbox_suite(void);

static int
rm_cb(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
	(void)st;
	(void)type;
	(void)ftw;
	return remove(path);
}

static void
fix_setup(struct fix *f, uint64_t map_size, unsigned max_events,
    int64_t max_age, unsigned max_share)
{
	const char *base = getenv("TMPDIR");

	memset(f, 0, sizeof(*f));
	snprintf(f->dir, sizeof(f->dir), "%s/check_outbox.XXXXXX",
	    base != NULL ? base : "/tmp");
	ck_assert_ptr_nonnull(mkdtemp(f->dir));
	f->why = vbuf_create(0);
	ck_assert_msg(qstore_create_dirs(f->dir, getuid(), getgid(), f->why) ==
	    0, "create_dirs: %s", f->why->data);
	f->cfg.queue_directory = f->dir;
	f->cfg.queue_map_size = map_size;
	f->cfg.outbox_max_events = max_events;
	f->cfg.outbox_max_age = max_age;
	f->cfg.outbox_max_share = max_share;
	f->qs = qstore_open(&f->cfg, f->why);
	ck_assert_msg(f->qs != NULL, "qstore_open: %s", f->why->data);
}

static void
fix_teardown(struct fix *f)
{
	qstore_close(f->qs);
	vbuf_free(f->why);
	(void)nftw(f->dir, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
}

static void
event_fill(struct outbox_event *ev, enum outbox_kind kind, const char *qid,
    int64_t time_ms)
{
	memset(ev, 0, sizeof(*ev));
	ev->kind = kind;
	ev->time_ms = time_ms;
	snprintf(ev->qid, sizeof(ev->qid), "%s", qid);
	ev->sender = "app@example.org";
	ev->recipient = "rcpt@example.net";
	ev->relay = "mx.example.net[192.0.2.1]:25";
	ev->dsn = "4.2.0";
	ev->reply = "451 4.2.0 try later";
	ev->attempts = 3;
	ev->delay = 42;
	ev->next_attempt = 1795382420;
	ev->dkim = "d=example.org s=s1";
}

/* One put in its own write transaction; returns what outbox_put did. */
static int
put_one(struct fix *f, const struct outbox_event *ev, int commit)
{
	struct qstore_txn *t = qstore_txn_begin(f->qs, 1, f->why);
	int n;

	ck_assert_msg(t != NULL, "begin: %s", f->why->data);
	n = outbox_put(t, ev, f->why);
	ck_assert_msg(n >= 0, "put: %s", f->why->data);
	if (commit)
		ck_assert_int_eq(qstore_txn_commit(t, f->why), 0);
	else
		qstore_txn_abort(t);
	return n;
}

static void
render(const struct outbox_event *ev, char *buf, size_t size)
{
	struct vbuf *out = vbuf_create(0);
	struct json j;

	json_init(&j, out);
	outbox_json(&j, ev);
	ck_assert_uint_lt(out->len, size);
	memcpy(buf, out->data, out->len + 1);
	vbuf_free(out);
}

static int
collect_cb(const struct outbox_event *ev, void *arg)
{
	struct seen *s = arg;

	ck_assert_uint_lt(s->n, EV_MAX);
	s->seq[s->n] = ev->seq;
	render(ev, s->json[s->n], sizeof(s->json[0]));
	s->n++;
	return 0;
}

static void
collect(struct fix *f, struct seen *s)
{
	struct qstore_txn *t = qstore_txn_begin(f->qs, 0, f->why);

	memset(s, 0, sizeof(*s));
	ck_assert_ptr_nonnull(t);
	ck_assert_int_eq(outbox_iter(t, 0, 0, collect_cb, s, f->why), 0);
	qstore_txn_abort(t);
}

static void
stat_get(struct fix *f, struct outbox_stat *st)
{
	struct qstore_txn *t = qstore_txn_begin(f->qs, 0, f->why);

	ck_assert_ptr_nonnull(t);
	ck_assert_int_eq(outbox_stat(t, st, f->why), 0);
	qstore_txn_abort(t);
}

START_TEST(test_round_trip)
{
	static const char *const rcpts[] = { "a@example.net",
	    "b@example.net" };
	struct outbox_event ev, acc;
	struct fix f;
	struct seen s;
	char want[1024];
	const char *qid = "6B035B66E02C8761";

	fix_setup(&f, 16 << 20, 1000, 86400, 10);
	event_fill(&ev, OUTBOX_DEFERRED, qid, 1795382360123LL);
	memset(&acc, 0, sizeof(acc));
	acc.kind = OUTBOX_ACCEPTED;
	acc.time_ms = 1795382360001LL;
	snprintf(acc.qid, sizeof(acc.qid), "%s", qid);
	acc.sender = "";
	acc.recipients = rcpts;
	acc.nrecipients = 2;
	acc.size = 4096;
	acc.client = "127.0.0.1";
	acc.helo = "app.example";
	acc.sasl_username = "app";
	acc.tls = "TLSv1.3";
	acc.listener = "submission";
	acc.message_id = "<m1@app.example>";
	acc.metadata = "{\"order\":\"42\"}";
	acc.tags = "[\"welcome\",\"eu\"]";
	ck_assert_int_eq(put_one(&f, &acc, 1), 0);
	ck_assert_int_eq(put_one(&f, &ev, 1), 0);
	collect(&f, &s);
	ck_assert_uint_eq(s.n, 2);
	ck_assert_uint_eq(s.seq[0], 1);
	ck_assert_uint_eq(s.seq[1], 2);
	/* Decoded events render as the originals do, plus their "seq". */
	acc.seq = 1;
	render(&acc, want, sizeof(want));
	ck_assert_str_eq(s.json[0], want);
	ev.seq = 2;
	render(&ev, want, sizeof(want));
	ck_assert_str_eq(s.json[1], want);
	fix_teardown(&f);
}
END_TEST

/*
 * The consumer's delete: events through a number go, later ones stay, and
 * an outbox it emptied never gives out a number again (outbox_put would,
 * if the delete did not remember the highest number).
 */
START_TEST(test_delete_through)
{
	struct outbox_event ev;
	struct qstore_txn *t;
	struct fix f;
	struct seen s;

	fix_setup(&f, 16 << 20, 1000, 86400, 10);
	event_fill(&ev, OUTBOX_DELIVERED, "6B035B66E02C8761", outbox_now_ms());
	for (int i = 0; i < 3; i++)
		put_one(&f, &ev, 1);
	t = qstore_txn_begin(f.qs, 1, f.why);
	ck_assert_ptr_nonnull(t);
	ck_assert_int_eq(outbox_delete_through(t, 2, f.why), 2);
	ck_assert_int_eq(qstore_txn_commit(t, f.why), 0);
	collect(&f, &s);
	ck_assert_uint_eq(s.n, 1);
	ck_assert_uint_eq(s.seq[0], 3);
	t = qstore_txn_begin(f.qs, 1, f.why);
	ck_assert_ptr_nonnull(t);
	ck_assert_int_eq(outbox_delete_through(t, 3, f.why), 1);
	ck_assert_int_eq(qstore_txn_commit(t, f.why), 0);
	collect(&f, &s);
	ck_assert_uint_eq(s.n, 0);
	put_one(&f, &ev, 1);
	collect(&f, &s);
	ck_assert_uint_eq(s.n, 1);
	ck_assert_uint_eq(s.seq[0], 4);
	fix_teardown(&f);
}
END_TEST

/* A packed event unpacks to the same event, under the number given. */
START_TEST(test_pack_unpack)
{
	static const char *const rcpts[] = { "a@example.net",
	    "b@example.net" };
	struct outbox_scratch sc;
	struct outbox_event ev, got;
	struct vbuf *packed = vbuf_create(0);
	char want[1024], have[1024];

	memset(&ev, 0, sizeof(ev));
	ev.kind = OUTBOX_ACCEPTED;
	ev.time_ms = 1795382360001LL;
	snprintf(ev.qid, sizeof(ev.qid), "6B035B66E02C8761");
	ev.sender = "app@example.org";
	ev.recipients = rcpts;
	ev.nrecipients = 2;
	ev.sasl_username = "shop";
	ev.message_id = "<m1@app.example>";
	ev.metadata = "{\"order\":\"42\",\"n\":{\"a\":[1,2]}}";
	ev.tags = "[\"welcome\"]";
	outbox_pack(packed, &ev);
	outbox_scratch_init(&sc);
	ck_assert_int_eq(outbox_unpack(packed->data, packed->len, 9, &got,
	    &sc), 0);
	ck_assert_uint_eq(got.seq, 9);
	ev.seq = 9;
	render(&ev, want, sizeof(want));
	render(&got, have, sizeof(have));
	ck_assert_str_eq(have, want);
	/* Metadata and tags are JSON values in the rendering, not strings. */
	ck_assert_ptr_nonnull(strstr(have, "\"metadata\":{\"order\":\"42\""));
	ck_assert_ptr_nonnull(strstr(have, "\"tags\":[\"welcome\"]"));
	ck_assert_ptr_nonnull(strstr(have, "\"message_id\":\"<m1@app.example>\""));
	ck_assert_int_eq(outbox_unpack("xy", 2, 1, &got, &sc), -1);
	outbox_scratch_release(&sc);
	vbuf_free(packed);
}
END_TEST

/*
 * A destination's event has no queue id, sender or recipient: it packs,
 * unpacks and renders with its own members; one without a destination
 * does not unpack, nor does a message event without a queue id.
 */
START_TEST(test_destination)
{
	struct outbox_scratch sc;
	struct outbox_event ev, got;
	struct vbuf *packed = vbuf_create(0);
	char want[1024], have[1024];

	memset(&ev, 0, sizeof(ev));
	ev.kind = OUTBOX_DESTINATION;
	ev.time_ms = 1795382360123LL;
	ev.destination = "gmail.com:25";
	ev.entry = "google";
	ev.source = "203.0.113.20";
	ev.state = "backoff";
	ev.prev_state = "normal";
	ev.reason = "421 4.7.28 unusual rate";
	ev.until = 1795384160;
	ev.max_connections = 1;
	ev.rate_count = 10;
	ev.rate_interval = 60;
	render(&ev, want, sizeof(want));
	ck_assert_str_eq(want, "{\"time\":\"2026-11-22T21:19:20.123Z\","
	    "\"event\":\"destination\",\"destination\":\"gmail.com:25\","
	    "\"entry\":\"google\",\"source\":\"203.0.113.20\","
	    "\"state\":\"backoff\","
	    "\"previous_state\":\"normal\","
	    "\"reason\":\"421 4.7.28 unusual rate\",\"until\":1795384160,"
	    "\"max_connections\":1,\"rate_count\":10,\"rate_interval\":60}");
	outbox_pack(packed, &ev);
	outbox_scratch_init(&sc);
	ck_assert_int_eq(outbox_unpack(packed->data, packed->len, 5, &got,
	    &sc), 0);
	ck_assert_str_eq(got.qid, "");
	ck_assert_ptr_null(got.recipient);
	ck_assert_ptr_null(got.sender);
	ev.seq = 5;
	render(&ev, want, sizeof(want));
	render(&got, have, sizeof(have));
	ck_assert_str_eq(have, want);
	ev.destination = NULL;
	outbox_pack(packed, &ev);
	ck_assert_int_eq(outbox_unpack(packed->data, packed->len, 5, &got,
	    &sc), -1);
	ev.destination = "gmail.com:25";
	ev.kind = OUTBOX_DEFERRED;
	outbox_pack(packed, &ev);
	ck_assert_int_eq(outbox_unpack(packed->data, packed->len, 5, &got,
	    &sc), -1);
	outbox_scratch_release(&sc);
	vbuf_free(packed);
}
END_TEST

START_TEST(test_json)
{
	static const char *const rcpts[] = { "a@example.net" };
	struct outbox_event ev;
	char got[1024];

	event_fill(&ev, OUTBOX_DEFERRED, "6B035B66E02C8761", 1795382360123LL);
	render(&ev, got, sizeof(got));
	ck_assert_str_eq(got, "{\"time\":\"2026-11-22T21:19:20.123Z\","
	    "\"event\":\"deferred\",\"queue_id\":\"6B035B66E02C8761\","
	    "\"sender\":\"app@example.org\",\"recipient\":\"rcpt@example.net\","
	    "\"relay\":\"mx.example.net[192.0.2.1]:25\",\"dsn\":\"4.2.0\","
	    "\"reply\":\"451 4.2.0 try later\",\"attempts\":3,\"delay\":42,"
	    "\"next_attempt\":1795382420,\"dkim\":\"d=example.org s=s1\"}");
	/* Only a deferral has a next attempt; an expiry is its own event. */
	ev.kind = OUTBOX_EXPIRED;
	ev.dkim = NULL;
	ev.seq = 7;
	render(&ev, got, sizeof(got));
	ck_assert_str_eq(got, "{\"seq\":7,\"time\":\"2026-11-22T21:19:20.123Z\","
	    "\"event\":\"expired\",\"queue_id\":\"6B035B66E02C8761\","
	    "\"sender\":\"app@example.org\",\"recipient\":\"rcpt@example.net\","
	    "\"relay\":\"mx.example.net[192.0.2.1]:25\",\"dsn\":\"4.2.0\","
	    "\"reply\":\"451 4.2.0 try later\",\"attempts\":3,\"delay\":42}");
	memset(&ev, 0, sizeof(ev));
	ev.kind = OUTBOX_ACCEPTED;
	ev.time_ms = 1795382360001LL;
	snprintf(ev.qid, sizeof(ev.qid), "6B035B66E02C8761");
	ev.sender = "app@example.org";
	ev.recipients = rcpts;
	ev.nrecipients = 1;
	ev.size = 12;
	ev.client = "127.0.0.1";
	ev.helo = "h";
	ev.listener = "587";
	render(&ev, got, sizeof(got));
	ck_assert_str_eq(got, "{\"time\":\"2026-11-22T21:19:20.001Z\","
	    "\"event\":\"accepted\",\"queue_id\":\"6B035B66E02C8761\","
	    "\"sender\":\"app@example.org\",\"recipients\":[\"a@example.net\"],"
	    "\"size\":12,\"client\":\"127.0.0.1\",\"helo\":\"h\","
	    "\"sasl_username\":null,\"tls\":null,\"listener\":\"587\"}");
}
END_TEST

START_TEST(test_abort_leaves_nothing)
{
	struct outbox_event ev;
	struct outbox_stat st;
	struct fix f;
	struct seen s;

	fix_setup(&f, 16 << 20, 1000, 86400, 10);
	event_fill(&ev, OUTBOX_DELIVERED, "6B035B66E02C8761", outbox_now_ms());
	(void)put_one(&f, &ev, 0);
	collect(&f, &s);
	ck_assert_uint_eq(s.n, 0);
	stat_get(&f, &st);
	ck_assert_uint_eq(st.events, 0);
	ck_assert_uint_eq(st.last_seq, 0);
	/* The number the aborted put took is given out again. */
	(void)put_one(&f, &ev, 1);
	collect(&f, &s);
	ck_assert_uint_eq(s.n, 1);
	ck_assert_uint_eq(s.seq[0], 1);
	fix_teardown(&f);
}
END_TEST

/* The accepted event goes in with the message, and only with it. */
START_TEST(test_commit_puts_accepted)
{
	struct qstore_envelope env;
	struct outbox_event ev[2];
	struct qstore_new *qn[2];
	char *rcpts[] = { "r@example.net" };
	struct fix f;
	struct seen s;
	int64_t window = 1000;

	fix_setup(&f, 16 << 20, 1000, 86400, 10);
	for (int i = 0; i < 2; i++) {
		memset(&env, 0, sizeof(env));
		env.sender = "app@example.org";
		env.rcpts = rcpts;
		env.nrcpts = 1;
		env.client_addr = "";
		env.client_name = "";
		env.auth_user = "";
		qn[i] = qstore_new_begin(f.qs, &env, f.why);
		ck_assert_ptr_nonnull(qn[i]);
		ck_assert_int_eq(qstore_new_write(qn[i], "x\r\n", 3, f.why), 0);
		ck_assert_int_eq(qstore_new_finish(qn[i], f.why), 0);
		memset(&ev[i], 0, sizeof(ev[i]));
		ev[i].kind = OUTBOX_ACCEPTED;
		ev[i].time_ms = outbox_now_ms();
		snprintf(ev[i].qid, sizeof(ev[i].qid), "%s",
		    qstore_new_id(qn[i]));
		ev[i].sender = env.sender;
		qstore_new_event(qn[i], &ev[i]);
		/* A limit of one: the second message is over it. */
		ck_assert_int_eq(qstore_new_charge(qn[i], "rate:app", window,
		    1), 0);
	}
	ck_assert_msg(qstore_commit(f.qs, qn, 2, f.why) == 0, "commit: %s",
	    f.why->data);
	ck_assert_int_eq(qstore_new_status(qn[0]), QSTORE_ERR_OK);
	ck_assert_int_eq(qstore_new_status(qn[1]), QSTORE_ERR_LIMIT);
	collect(&f, &s);
	ck_assert_uint_eq(s.n, 1);
	ck_assert_ptr_nonnull(strstr(s.json[0], ev[0].qid));
	qstore_new_free(qn[0]);
	qstore_new_abort(qn[1]);
	fix_teardown(&f);
}
END_TEST

START_TEST(test_cap_count)
{
	struct outbox_event ev;
	struct outbox_stat st;
	struct fix f;
	struct seen s;
	int dropped = 0;

	fix_setup(&f, 16 << 20, 10, 86400, 10);
	event_fill(&ev, OUTBOX_DELIVERED, "6B035B66E02C8761", outbox_now_ms());
	for (int i = 0; i < 25; i++)
		dropped += put_one(&f, &ev, 1);
	ck_assert_int_eq(dropped, 15);
	/* Drops in a transaction that did not commit do not count. */
	ck_assert_int_eq(put_one(&f, &ev, 0), 1);
	ck_assert_uint_eq(qstore_events_dropped(f.qs), 15);
	stat_get(&f, &st);
	ck_assert_uint_eq(st.events, 10);
	ck_assert_uint_eq(st.dropped, 15);
	ck_assert_uint_eq(st.last_seq, 25);
	collect(&f, &s);
	ck_assert_uint_eq(s.n, 10);
	ck_assert_uint_eq(s.seq[0], 16);
	ck_assert_uint_eq(s.seq[9], 25);
	fix_teardown(&f);
}
END_TEST

START_TEST(test_cap_age)
{
	struct outbox_event ev;
	struct outbox_stat st;
	struct fix f;
	struct seen s;
	int64_t now = outbox_now_ms();
	int dropped = 0;

	fix_setup(&f, 16 << 20, 1000, 60, 10);
	event_fill(&ev, OUTBOX_DELIVERED, "6B035B66E02C8761", now - 120000);
	ck_assert_int_eq(put_one(&f, &ev, 1), 0);
	event_fill(&ev, OUTBOX_DELIVERED, "6B035B66E02C8761", now - 30000);
	ck_assert_int_eq(put_one(&f, &ev, 1), 0);
	/* The age is looked at with every OUTBOX_AGE_EVERY-th number. */
	event_fill(&ev, OUTBOX_DELIVERED, "6B035B66E02C8761", now);
	for (int i = 3; i < OUTBOX_AGE_EVERY; i++)
		dropped += put_one(&f, &ev, 1);
	ck_assert_int_eq(dropped, 0);
	ck_assert_int_eq(put_one(&f, &ev, 1), 1);
	stat_get(&f, &st);
	ck_assert_uint_eq(st.events, OUTBOX_AGE_EVERY - 1);
	ck_assert_uint_eq(st.dropped, 1);
	ck_assert_uint_eq(st.last_seq, OUTBOX_AGE_EVERY);
	ck_assert_int_eq(st.oldest_ms, now - 30000);
	collect(&f, &s);
	ck_assert_uint_eq(s.seq[0], 2);
	fix_teardown(&f);
}
END_TEST

/* Large events in a small map: the outbox stays within its share. */
START_TEST(test_cap_share)
{
	static char reply[4000];
	struct outbox_event ev;
	struct outbox_stat st;
	struct fix f;
	uint64_t map = 4 << 20;
	int dropped = 0;

	memset(reply, 'x', sizeof(reply) - 1);
	fix_setup(&f, map, 1000000, 86400, 5);
	event_fill(&ev, OUTBOX_DEFERRED, "6B035B66E02C8761", outbox_now_ms());
	ev.reply = reply;
	for (int i = 0; i < 400; i++)
		dropped += put_one(&f, &ev, 1);
	stat_get(&f, &st);
	ck_assert_int_gt(dropped, 0);
	ck_assert_uint_eq(st.events + st.dropped, 400);
	/* At most one event's pages over the share. */
	ck_assert_uint_le(st.bytes, map * 5 / 100 + 2 * 4096);
	fix_teardown(&f);
}
END_TEST

static Suite *
outbox_suite(void)
{
	Suite *s = suite_create("outbox");
	TCase *tc = tcase_create("outbox");

	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_round_trip);
	tcase_add_test(tc, test_json);
	tcase_add_test(tc, test_delete_through);
	tcase_add_test(tc, test_pack_unpack);
	tcase_add_test(tc, test_destination);
	tcase_add_test(tc, test_abort_leaves_nothing);
	tcase_add_test(tc, test_commit_puts_accepted);
	tcase_add_test(tc, test_cap_count);
	tcase_add_test(tc, test_cap_age);
	tcase_add_test(tc, test_cap_share);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(outbox_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
