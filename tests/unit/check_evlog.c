/*
 * check_evlog.c - unit tests for lib/evlog, the searchable delivery log,
 * in a mkdtemp() queue directory: add and an idempotent re-add of the
 * same batch, each index (recipient, sender, Message-ID, queue id, user),
 * newest-first order, time bounds, the limit, event kinds, the story of
 * one message with its webhook notes, prune removing index entries too,
 * case-insensitive addresses, and a read-only handle.
 */
#include <sys/stat.h>
#include <sys/wait.h>

#include <check.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <lmdb.h>

#include "cfg.h"
#include "evlog.h"
#include "vbuf.h"

static char tdir[64], qdir[96];
static struct cfg tcfg;

#define T0	1700000000000LL	/* epoch ms of the first event */

struct got {
	uint64_t	 seq[64];
	int		 kind[64];
	size_t		 nwh[64];
	char		 wh0[64][64];
	size_t		 n;
};

static void	setup(void);
static void	teardown(void);
static int	got_cb(const struct outbox_event *,
		    const struct evlog_webhook *, size_t, void *);
static void	mk(struct outbox_event *, uint64_t, enum outbox_kind,
		    const char *, const char *, const char *);
static struct evlog *fill(void);
static long	search(struct evlog *, const struct evlog_query *,
		    struct got *);
static Suite	*evlog_suite(void);

static const char *const rcpts1[] = { "Bob@Example.ORG", "carol@x.net" };

static void
setup(void)
{
	snprintf(tdir, sizeof(tdir), "/tmp/check_evlog.XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(tdir));
	snprintf(qdir, sizeof(qdir), "%s/queue", tdir);
	ck_assert_int_eq(mkdir(qdir, 0700), 0);
	memset(&tcfg, 0, sizeof(tcfg));
	tcfg.queue_directory = qdir;
	tcfg.log_map_size = 64 * 1024 * 1024;
}

static void
teardown(void)
{
	pid_t pid;

	/* No system(3): a child runs rm. */
	if ((pid = fork()) == 0) {
		execlp("rm", "rm", "-rf", tdir, (char *)NULL);
		_exit(127);
	}
	if (pid > 0)
		(void)waitpid(pid, NULL, 0);
}

static int
got_cb(const struct outbox_event *ev, const struct evlog_webhook *whs,
    size_t nwh, void *arg)
{
	struct got *g = arg;

	ck_assert_uint_lt(g->n, 64);
	g->seq[g->n] = ev->seq;
	g->kind[g->n] = ev->kind;
	g->nwh[g->n] = nwh;
	if (nwh > 0)
		snprintf(g->wh0[g->n], sizeof(g->wh0[0]), "%s %ld %s",
		    whs[0].outcome, whs[0].http_status, whs[0].endpoint);
	g->n++;
	return 0;
}

/* Event seq at T0 + seq minutes. */
static void
mk(struct outbox_event *ev, uint64_t seq, enum outbox_kind kind,
    const char *qid, const char *rcpt, const char *user)
{
	memset(ev, 0, sizeof(*ev));
	ev->seq = seq;
	ev->kind = kind;
	ev->time_ms = T0 + (int64_t)seq * 60000;
	snprintf(ev->qid, sizeof(ev->qid), "%s", qid);
	ev->sender = "Alice@Sender.example";
	ev->recipient = rcpt;
	ev->sasl_username = user;
	ev->message_id = "<M1.abc@Sender.example>";
	ev->reply = "250 2.0.0 ok";
	ev->relay = "mx.example.org[127.0.0.1]:25";
}

/*
 * Message A (qid 00000000000A1AAA, user app1): 1 accepted for bob and carol,
 * 2 deferred bob, 3 delivered carol, 4 delivered bob.
 * Message B (qid 00000000000B2BBB, user app2, null sender, other Message-ID):
 * 5 accepted for bob, 6 bounced bob.
 */
static struct evlog *
fill(void)
{
	struct outbox_event e[6];
	const struct outbox_event *p[6];
	struct evlog *l;
	struct vbuf why;
	size_t i;

	vbuf_init(&why, 0);
	mk(&e[0], 1, OUTBOX_ACCEPTED, "00000000000A1AAA", NULL, "app1");
	e[0].recipients = rcpts1;
	e[0].nrecipients = 2;
	e[0].tls = "TLSv1.3";
	e[0].client = "client.example[127.0.0.1]";
	mk(&e[1], 2, OUTBOX_DEFERRED, "00000000000A1AAA", "bob@example.org",
	    "app1");
	e[1].reply = "451 4.7.1 try later";
	mk(&e[2], 3, OUTBOX_DELIVERED, "00000000000A1AAA", "carol@x.net",
	    "app1");
	mk(&e[3], 4, OUTBOX_DELIVERED, "00000000000A1AAA", "bob@example.org",
	    "app1");
	mk(&e[4], 5, OUTBOX_ACCEPTED, "00000000000B2BBB", NULL, "app2");
	e[4].recipients = rcpts1;
	e[4].nrecipients = 1;
	e[4].sender = "";
	e[4].message_id = "<Other@b>";
	mk(&e[5], 6, OUTBOX_BOUNCED, "00000000000B2BBB", "bob@example.org",
	    "app2");
	e[5].sender = "";
	e[5].message_id = "<Other@b>";
	e[5].class = "mailbox";
	e[5].dsn = "5.1.1";
	for (i = 0; i < 6; i++)
		p[i] = &e[i];
	l = evlog_open(&tcfg, 1, &why);
	ck_assert_msg(l != NULL, "%s", why.data);
	ck_assert_int_eq(evlog_add(l, p, 6, &why), 6);
	vbuf_release(&why);
	return l;
}

static long
search(struct evlog *l, const struct evlog_query *q, struct got *g)
{
	struct vbuf why;
	long n;

	vbuf_init(&why, 0);
	memset(g, 0, sizeof(*g));
	n = evlog_search(l, q, got_cb, g, &why);
	ck_assert_msg(n >= 0, "%s", why.data);
	ck_assert_uint_eq((size_t)n, g->n);
	vbuf_release(&why);
	return n;
}

START_TEST(test_add_idempotent)
{
	struct evlog_query q;
	struct evlog_stat st;
	struct outbox_event e;
	const struct outbox_event *p = &e;
	struct evlog *l = fill();
	struct vbuf why;
	struct got g;

	vbuf_init(&why, 0);
	/* The same event again (a batch repeated after a crash). */
	mk(&e, 4, OUTBOX_DELIVERED, "00000000000A1AAA", "bob@example.org",
	    "app1");
	ck_assert_int_eq(evlog_add(l, &p, 1, &why), 0);
	memset(&q, 0, sizeof(q));
	q.to = "bob@example.org";
	ck_assert_int_eq(search(l, &q, &g), 5);
	ck_assert_int_eq(evlog_stat(l, &st, &why), 0);
	ck_assert_uint_eq(st.events, 6);
	ck_assert_uint_eq(st.first_seq, 1);
	ck_assert_uint_eq(st.last_seq, 6);
	ck_assert_int_eq(st.oldest_ms, T0 + 60000);
	ck_assert_int_eq(st.newest_ms, T0 + 6 * 60000);
	evlog_close(l);
	vbuf_release(&why);
}
END_TEST

START_TEST(test_indexes_newest_first)
{
	struct evlog_query q;
	struct evlog *l = fill();
	struct got g;

	memset(&q, 0, sizeof(q));
	/* Recipient, any case: bob is in accepted 1 and 5 too. */
	q.to = "BOB@example.org";
	ck_assert_int_eq(search(l, &q, &g), 5);
	ck_assert_uint_eq(g.seq[0], 6);
	ck_assert_uint_eq(g.seq[1], 5);
	ck_assert_uint_eq(g.seq[2], 4);
	ck_assert_uint_eq(g.seq[3], 2);
	ck_assert_uint_eq(g.seq[4], 1);
	q.to = "carol@X.NET";
	ck_assert_int_eq(search(l, &q, &g), 2);
	ck_assert_uint_eq(g.seq[0], 3);
	q.to = "nobody@x.net";
	ck_assert_int_eq(search(l, &q, &g), 0);

	memset(&q, 0, sizeof(q));
	q.from = "alice@sender.EXAMPLE";
	ck_assert_int_eq(search(l, &q, &g), 4);
	ck_assert_uint_eq(g.seq[0], 4);
	q.from = "<>";
	ck_assert_int_eq(search(l, &q, &g), 2);
	ck_assert_uint_eq(g.seq[0], 6);

	memset(&q, 0, sizeof(q));
	q.message_id = "m1.ABC@sender.example";	/* no brackets */
	ck_assert_int_eq(search(l, &q, &g), 4);
	q.message_id = "<other@B>";
	ck_assert_int_eq(search(l, &q, &g), 2);

	memset(&q, 0, sizeof(q));
	q.queue_id = "00000000000B2BBB";
	ck_assert_int_eq(search(l, &q, &g), 2);
	ck_assert_uint_eq(g.seq[1], 5);

	memset(&q, 0, sizeof(q));
	q.user = "APP1";
	ck_assert_int_eq(search(l, &q, &g), 4);
	q.user = "app2";
	ck_assert_int_eq(search(l, &q, &g), 2);

	/* Two criteria: both must hold, whichever index is walked. */
	memset(&q, 0, sizeof(q));
	q.to = "bob@example.org";
	q.user = "app2";
	ck_assert_int_eq(search(l, &q, &g), 2);
	ck_assert_uint_eq(g.seq[0], 6);
	ck_assert_uint_eq(g.seq[1], 5);

	/* No index: the whole log, newest first. */
	memset(&q, 0, sizeof(q));
	ck_assert_int_eq(search(l, &q, &g), 6);
	ck_assert_uint_eq(g.seq[0], 6);
	ck_assert_uint_eq(g.seq[5], 1);
	evlog_close(l);
}
END_TEST

START_TEST(test_time_kind_limit)
{
	struct evlog_query q;
	struct evlog *l = fill();
	struct got g;

	memset(&q, 0, sizeof(q));
	q.to = "bob@example.org";
	q.since_ms = T0 + 2 * 60000;	/* inclusive */
	q.until_ms = T0 + 5 * 60000;
	ck_assert_int_eq(search(l, &q, &g), 3);
	ck_assert_uint_eq(g.seq[0], 5);
	ck_assert_uint_eq(g.seq[2], 2);
	/* Without an index too. */
	q.to = NULL;
	ck_assert_int_eq(search(l, &q, &g), 4);

	memset(&q, 0, sizeof(q));
	q.to = "bob@example.org";
	q.kind = OUTBOX_DELIVERED;
	ck_assert_int_eq(search(l, &q, &g), 1);
	ck_assert_uint_eq(g.seq[0], 4);
	q.kind = OUTBOX_BOUNCED;
	ck_assert_int_eq(search(l, &q, &g), 1);
	ck_assert_int_eq(g.kind[0], OUTBOX_BOUNCED);

	memset(&q, 0, sizeof(q));
	q.to = "bob@example.org";
	q.limit = 2;
	ck_assert_int_eq(search(l, &q, &g), 2);
	ck_assert_uint_eq(g.seq[0], 6);
	ck_assert_uint_eq(g.seq[1], 5);
	/* Oldest first (export), with and without an index. */
	q.oldest_first = 1;
	q.limit = EVLOG_NO_LIMIT;
	q.until_ms = T0 + 4 * 60000;
	ck_assert_int_eq(search(l, &q, &g), 3);
	ck_assert_uint_eq(g.seq[0], 1);
	ck_assert_uint_eq(g.seq[2], 4);
	q.to = NULL;
	ck_assert_int_eq(search(l, &q, &g), 4);
	ck_assert_uint_eq(g.seq[0], 1);
	ck_assert_uint_eq(g.seq[3], 4);
	evlog_close(l);
}
END_TEST

START_TEST(test_story_webhooks)
{
	struct evlog *l = fill();
	struct vbuf why;
	struct got g;

	vbuf_init(&why, 0);
	ck_assert_int_eq(evlog_webhook(l, 4, "https://app.example/hook",
	    "failed", 500, T0 + 5 * 60000, &why), 0);
	ck_assert_int_eq(evlog_webhook(l, 4, "https://app.example/hook",
	    "sent", 200, T0 + 6 * 60000, &why), 0);

	/* A batch of notes in one transaction, as webhookd writes them. */
	{
		struct evlog_note nt[2];

		memset(nt, 0, sizeof(nt));
		nt[0].seq = 6;
		nt[0].wh.time_ms = T0 + 7 * 60000;
		nt[0].wh.http_status = 0;
		nt[0].wh.outcome = "dead";
		nt[0].wh.endpoint = "https://down.example/";
		nt[1] = nt[0];
		nt[1].seq = 5;
		nt[1].wh.outcome = "sent";
		nt[1].wh.http_status = 204;
		ck_assert_int_eq(evlog_webhooks(l, nt, 2, &why), 0);
	}
	memset(&g, 0, sizeof(g));
	ck_assert_int_eq(evlog_story(l, "00000000000B2BBB", got_cb, &g, &why),
	    2);
	ck_assert_str_eq(g.wh0[0], "sent 204 https://down.example/");
	ck_assert_str_eq(g.wh0[1], "dead 0 https://down.example/");

	memset(&g, 0, sizeof(g));
	ck_assert_int_eq(evlog_story(l, "00000000000A1AAA", got_cb, &g,
	    &why), 4);
	ck_assert_uint_eq(g.seq[0], 1);	/* oldest first */
	ck_assert_uint_eq(g.seq[3], 4);
	ck_assert_uint_eq(g.nwh[0], 0);
	ck_assert_uint_eq(g.nwh[3], 2);
	ck_assert_str_eq(g.wh0[3], "failed 500 https://app.example/hook");

	/* By Message-ID, brackets or not, any case. */
	memset(&g, 0, sizeof(g));
	ck_assert_int_eq(evlog_story(l, "<OTHER@b>", got_cb, &g, &why), 2);
	ck_assert_uint_eq(g.nwh[1], 1);
	ck_assert_uint_eq(g.seq[0], 5);
	ck_assert_uint_eq(g.seq[1], 6);
	memset(&g, 0, sizeof(g));
	ck_assert_int_eq(evlog_story(l, "nothing@here", got_cb, &g, &why),
	    0);
	evlog_close(l);
	vbuf_release(&why);
}
END_TEST

START_TEST(test_prune)
{
	struct evlog_query q;
	struct evlog_stat st;
	struct evlog *l = fill();
	struct vbuf why;
	struct got g;

	vbuf_init(&why, 0);
	ck_assert_int_eq(evlog_webhook(l, 2, "u", "sent", 200, T0, &why), 0);
	/* Older than event 4: 1, 2, 3, at most 2 per call. */
	ck_assert_int_eq(evlog_prune(l, T0 + 4 * 60000, 2, &why), 2);
	ck_assert_int_eq(evlog_prune(l, T0 + 4 * 60000, 2, &why), 1);
	ck_assert_int_eq(evlog_prune(l, T0 + 4 * 60000, 2, &why), 0);
	ck_assert_int_eq(evlog_stat(l, &st, &why), 0);
	ck_assert_uint_eq(st.events, 3);
	ck_assert_uint_eq(st.first_seq, 4);

	memset(&q, 0, sizeof(q));
	q.to = "carol@x.net";
	ck_assert_int_eq(search(l, &q, &g), 0);
	q.to = "bob@example.org";
	ck_assert_int_eq(search(l, &q, &g), 3);
	ck_assert_uint_eq(g.seq[2], 4);

	/* The index entries themselves are gone, not just skipped. */
	evlog_close(l);
	{
		MDB_env *env;
		MDB_txn *txn;
		MDB_dbi dbi;
		MDB_stat ms;
		char dir[160];
		static const char *const dbs[] = { "rcpt", "qid", "user",
		    "mid", "from" };
		static const size_t want[] = { 3, 3, 3, 3, 3 };
		size_t i;

		snprintf(dir, sizeof(dir), "%s/log", qdir);
		ck_assert_int_eq(mdb_env_create(&env), 0);
		ck_assert_int_eq(mdb_env_set_maxdbs(env, 8), 0);
		ck_assert_int_eq(mdb_env_open(env, dir, MDB_RDONLY, 0600), 0);
		ck_assert_int_eq(mdb_txn_begin(env, NULL, MDB_RDONLY, &txn),
		    0);
		for (i = 0; i < 5; i++) {
			ck_assert_int_eq(mdb_dbi_open(txn, dbs[i], 0, &dbi),
			    0);
			ck_assert_int_eq(mdb_stat(txn, dbi, &ms), 0);
			ck_assert_msg(ms.ms_entries == want[i], "%s: %zu",
			    dbs[i], (size_t)ms.ms_entries);
		}
		ck_assert_int_eq(mdb_dbi_open(txn, "wh", 0, &dbi), 0);
		ck_assert_int_eq(mdb_stat(txn, dbi, &ms), 0);
		ck_assert_uint_eq(ms.ms_entries, 0);
		mdb_txn_abort(txn);
		mdb_env_close(env);
	}
	vbuf_release(&why);
}
END_TEST

START_TEST(test_readonly)
{
	struct evlog_query q;
	struct evlog *l, *ro;
	struct vbuf why;
	struct got g;

	vbuf_init(&why, 0);
	ck_assert_ptr_null(evlog_open(&tcfg, 0, &why));
	ck_assert_ptr_nonnull(strstr(why.data, "no delivery log"));
	l = fill();
	ro = evlog_open(&tcfg, 0, &why);
	ck_assert_msg(ro != NULL, "%s", why.data);
	memset(&q, 0, sizeof(q));
	q.queue_id = "00000000000a1aaa";
	ck_assert_int_eq(search(ro, &q, &g), 4);
	ck_assert_int_eq(evlog_add(ro, NULL, 0, &why), -1);
	evlog_close(ro);
	evlog_close(l);
	vbuf_release(&why);
}
END_TEST

static Suite *
evlog_suite(void)
{
	Suite *s = suite_create("evlog");
	TCase *tc = tcase_create("core");

	tcase_set_timeout(tc, 60);
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_add_idempotent);
	tcase_add_test(tc, test_indexes_newest_first);
	tcase_add_test(tc, test_time_kind_limit);
	tcase_add_test(tc, test_story_webhooks);
	tcase_add_test(tc, test_prune);
	tcase_add_test(tc, test_readonly);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(evlog_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
