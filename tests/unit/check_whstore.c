/*
 * check_whstore.c - webhookd's store (lib/whstore) in a mkdtemp() queue
 * directory: an event stored twice (a crash's re-ingest) keeps one set of
 * deliveries; the join enriches recipient events; dead and replayed
 * deliveries; pruning keeps the ingest mark; an event found by its id;
 * URLs shown without userinfo; the pending index (due in order, endpoint
 * by endpoint, skipping, following state changes, rebuilt for an old
 * store); the join goes with its message's last final event, and the
 * sweep removes joins of messages gone.
 */
#include <sys/stat.h>
#include <sys/wait.h>

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cfg.h"
#include "whstore.h"

static char tdir[64], qdir[96];
static struct cfg tcfg;

static void	setup(void);
static void	teardown(void);
static int	count_cb(uint64_t, const char *, const struct whstore_dlv *,
		    void *);
static Suite	*whstore_suite(void);
static int	has_join(struct whstore *, MDB_txn *, const char *qid);
static int	gone_cb(const char *qid, void *arg);
static void	mk_event(struct outbox_event *, uint64_t, enum outbox_kind,
		    const char *, const char *);

/* Whether a recipient event of qid would be enriched (its join is there). */
static int
has_join(struct whstore *s, MDB_txn *txn, const char *qid)
{
	struct outbox_event ev;
	struct outbox_scratch sc;
	int have;

	memset(&ev, 0, sizeof(ev));
	ev.kind = OUTBOX_DELIVERED;
	snprintf(ev.qid, sizeof(ev.qid), "%s", qid);
	outbox_scratch_init(&sc);
	whstore_enrich(s, txn, &ev, &sc);
	have = ev.sasl_username != NULL;
	outbox_scratch_release(&sc);
	return have;
}

/* Gone from the queue: the qids ending in '0'. */
static int
gone_cb(const char *qid, void *arg)
{
	(*(int *)arg)++;
	return qid[strlen(qid) - 1] == '0';
}

static void
setup(void)
{
	snprintf(tdir, sizeof(tdir), "/tmp/check_whstore.XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(tdir));
	snprintf(qdir, sizeof(qdir), "%s/queue", tdir);
	ck_assert_int_eq(mkdir(qdir, 0700), 0);
	memset(&tcfg, 0, sizeof(tcfg));
	tcfg.queue_directory = qdir;
}

static void
teardown(void)
{
	pid_t pid;

	if ((pid = fork()) == 0) {
		execlp("rm", "rm", "-rf", tdir, (char *)NULL);
		_exit(127);
	}
	if (pid > 0)
		(void)waitpid(pid, NULL, 0);
}

static int
count_cb(uint64_t seq, const char *key, const struct whstore_dlv *d,
    void *arg)
{
	int *n = arg;

	(void)seq;
	(void)key;
	(void)d;
	(*n)++;
	return 0;
}

START_TEST(test_idempotent_and_join)
{
	struct whstore s;
	struct vbuf why;
	struct outbox_event acc, dlv, got;
	struct outbox_scratch sc;
	const char *keys[] = { "cfg:https://a/", "user:app1" };
	const char *rcpts[] = { "r@example.org" };
	MDB_txn *txn;
	int n = 0;

	vbuf_init(&why, 0);
	ck_assert_int_eq(whstore_open(&s, &tcfg, 1, &why), 0);
	memset(&acc, 0, sizeof(acc));
	acc.seq = 1;
	acc.kind = OUTBOX_ACCEPTED;
	acc.time_ms = 1000;
	snprintf(acc.qid, sizeof(acc.qid), "%s", "6B13B2B2EB929847");
	acc.sender = "a@example.com";
	acc.recipients = rcpts;
	acc.nrecipients = 1;
	acc.sasl_username = "app1";
	acc.message_id = "<m@x>";
	acc.metadata = "{\"k\":\"v\"}";
	acc.tags = "[\"t\"]";
	memset(&dlv, 0, sizeof(dlv));
	dlv.seq = 2;
	dlv.kind = OUTBOX_DELIVERED;
	dlv.time_ms = 2000;
	snprintf(dlv.qid, sizeof(dlv.qid), "%s", "6B13B2B2EB929847");
	dlv.recipient = "r@example.org";
	outbox_scratch_init(&sc);

	ck_assert_int_eq(mdbdir_begin(&s.md, 0, &txn, &why), 1);
	ck_assert_int_eq(whstore_put_msg(&s, txn, &acc, &why), 0);
	ck_assert_int_eq(whstore_put_event(&s, txn, &acc, keys, 2, 5, &why),
	    1);
	whstore_enrich(&s, txn, &dlv, &sc);
	ck_assert_str_eq(dlv.sasl_username, "app1");
	ck_assert_str_eq(dlv.metadata, "{\"k\":\"v\"}");
	ck_assert_str_eq(dlv.tags, "[\"t\"]");
	ck_assert_str_eq(dlv.message_id, "<m@x>");
	ck_assert_int_eq(whstore_put_event(&s, txn, &dlv, keys, 1, 5, &why),
	    1);
	ck_assert_int_eq(mdb_txn_commit(txn), 0);
	outbox_scratch_release(&sc);

	/* A crash's re-ingest: the same seqs again add nothing. */
	ck_assert_int_eq(mdbdir_begin(&s.md, 0, &txn, &why), 1);
	ck_assert_int_eq(whstore_put_event(&s, txn, &acc, keys, 2, 9, &why),
	    0);
	ck_assert_int_eq(whstore_put_event(&s, txn, &dlv, keys, 2, 9, &why),
	    0);
	ck_assert_uint_eq(whstore_last_seq(&s, txn), 2);
	ck_assert_int_eq(whstore_dlv_iter(&s, txn, 0, 0, count_cb, &n), 0);
	ck_assert_int_eq(n, 3);
	outbox_scratch_init(&sc);
	ck_assert_int_eq(whstore_get_event(&s, txn, 2, &got, &sc), 0);
	ck_assert_str_eq(got.sasl_username, "app1");
	ck_assert_str_eq(got.recipient, "r@example.org");
	outbox_scratch_release(&sc);
	mdb_txn_abort(txn);
	whstore_close(&s);
	vbuf_release(&why);
}
END_TEST

START_TEST(test_dead_replay_prune)
{
	struct whstore s;
	struct vbuf why;
	struct outbox_event ev;
	struct whstore_dlv d;
	const char *keys[] = { "cfg:https://a/" };
	MDB_txn *txn;
	uint64_t seq;
	int n = 0;

	vbuf_init(&why, 0);
	ck_assert_int_eq(whstore_open(&s, &tcfg, 1, &why), 0);
	ck_assert_int_eq(mdbdir_begin(&s.md, 0, &txn, &why), 1);
	for (seq = 1; seq <= 3; seq++) {
		memset(&ev, 0, sizeof(ev));
		ev.seq = seq;
		ev.kind = OUTBOX_DELIVERED;
		ev.time_ms = 1000;
		snprintf(ev.qid, sizeof(ev.qid), "%s", "6B13B2B2EB929848");
		ev.recipient = "r@x";
		ck_assert_int_eq(whstore_put_event(&s, txn, &ev, keys, 1, 1000,
		    &why), 1);
	}
	/* 1 sent long ago, 2 dead, 3 pending. */
	ck_assert_int_eq(whstore_dlv_get(&s, txn, 1, keys[0], &d), 0);
	d.state = WHSTORE_SENT;
	d.last_ms = 1000;
	ck_assert_int_eq(whstore_dlv_put(&s, txn, 1, keys[0], &d, &why), 0);
	ck_assert_int_eq(whstore_dlv_get(&s, txn, 2, keys[0], &d), 0);
	d.state = WHSTORE_DEAD;
	d.last_ms = 900000;
	ck_assert_int_eq(whstore_dlv_put(&s, txn, 2, keys[0], &d, &why), 0);
	/* Prune at 1,000,000 ms, keeping sent 1000 ms, dead 500,000 ms. */
	ck_assert_int_eq(whstore_prune(&s, txn, 1000000, 1000, 500000, 100),
	    1);
	ck_assert_int_eq(whstore_dlv_iter(&s, txn, 0, 0, count_cb, &n), 0);
	ck_assert_int_eq(n, 2);
	/* Replay the dead letter: pending again, due now. */
	ck_assert_int_eq(whstore_dlv_get(&s, txn, 2, keys[0], &d), 0);
	ck_assert_uint_eq(d.state, WHSTORE_DEAD);
	d.state = WHSTORE_PENDING;
	d.due_ms = 1000000;
	ck_assert_int_eq(whstore_dlv_put(&s, txn, 2, keys[0], &d, &why), 0);
	/* Past dead_letter_age, a dead one goes, with its event. */
	ck_assert_int_eq(whstore_dlv_get(&s, txn, 3, keys[0], &d), 0);
	d.state = WHSTORE_DEAD;
	d.last_ms = 0;
	ck_assert_int_eq(whstore_dlv_put(&s, txn, 3, keys[0], &d, &why), 0);
	ck_assert_int_eq(whstore_prune(&s, txn, 1000000, 1000, 500000, 100),
	    0);	/* 3 is the ingest mark: its event stays */
	n = 0;
	ck_assert_int_eq(whstore_dlv_iter(&s, txn, 0, 0, count_cb, &n), 0);
	ck_assert_int_eq(n, 1);
	ck_assert_int_eq(mdb_txn_commit(txn), 0);
	whstore_close(&s);
	vbuf_release(&why);
}
END_TEST

START_TEST(test_find_id_and_safe_url)
{
	struct whstore s;
	struct vbuf why;
	struct outbox_event ev;
	const char *keys[] = { "cfg:https://a/" };
	char id[WHSTORE_ID_SIZE], id2[WHSTORE_ID_SIZE], url[128];
	MDB_txn *txn;
	uint64_t seq, found = 0;
	size_t i;

	vbuf_init(&why, 0);
	ck_assert_int_eq(whstore_open(&s, &tcfg, 1, &why), 0);
	ck_assert_int_eq(mdbdir_begin(&s.md, 0, &txn, &why), 1);
	memset(&ev, 0, sizeof(ev));
	ev.kind = OUTBOX_BOUNCED;
	ev.time_ms = 5000;
	snprintf(ev.qid, sizeof(ev.qid), "%s", "6B13B2B2EB929848");
	ev.recipient = "r@x";
	for (seq = 1; seq <= 5; seq++) {
		ev.seq = seq;
		ck_assert_int_eq(whstore_put_event(&s, txn, &ev, keys, 1, 1000,
		    &why), 1);
	}
	ev.seq = 4;
	whstore_event_id(&ev, id);
	ck_assert_uint_eq(strlen(id), 32);
	ck_assert_int_eq(whstore_find_id(&s, txn, id, &found), 0);
	ck_assert_uint_eq(found, 4);
	/* Any case; and an id differs with the seq alone. */
	for (i = 0; id[i] != '\0'; i++)
		id2[i] = (char)(id[i] >= 'a' ? id[i] - 'a' + 'A' : id[i]);
	id2[i] = '\0';
	ck_assert_int_eq(whstore_find_id(&s, txn, id2, &found), 0);
	ck_assert_uint_eq(found, 4);
	ev.seq = 3;
	whstore_event_id(&ev, id2);
	ck_assert_str_ne(id, id2);
	ck_assert_int_eq(whstore_find_id(&s, txn,
	    "0123456789abcdef0123456789abcdef", &found), -1);
	ck_assert_int_eq(whstore_find_id(&s, txn, "abc", &found), -1);
	mdb_txn_abort(txn);
	whstore_close(&s);
	vbuf_release(&why);

	whstore_safe_url("https://u:secret@h.example:8443/p?q=1@x", url,
	    sizeof(url));
	ck_assert_str_eq(url, "https://h.example:8443/p?q=1@x");
	whstore_safe_url("http://h.example/a@b", url, sizeof(url));
	ck_assert_str_eq(url, "http://h.example/a@b");
	whstore_safe_url("not a url", url, sizeof(url));
	ck_assert_str_eq(url, "not a url");
}
END_TEST

struct due_seen {
	char	 got[32][40];
	size_t	 n;
	int	 skip_b;	/* WHSTORE_SKIP on endpoint b's first */
};

static int
due_cb(uint64_t seq, const char *key, const struct whstore_dlv *d,
    void *arg)
{
	struct due_seen *ds = arg;

	ck_assert_uint_eq(d->state, WHSTORE_PENDING);
	snprintf(ds->got[ds->n++], sizeof(ds->got[0]), "%s/%llu", key,
	    (unsigned long long)seq);
	return ds->skip_b && strcmp(key, "b") == 0 ? WHSTORE_SKIP : 0;
}

static int
resume_a3(const char *key, int64_t *due, uint64_t *seq, void *arg)
{
	(void)arg;
	if (strcmp(key, "a") != 0)
		return 0;
	*due = 97;	/* put at 100 - seq */
	*seq = 3;
	return 1;
}

START_TEST(test_pending_index)
{
	struct whstore s;
	struct vbuf why;
	struct outbox_event ev;
	struct whstore_dlv d;
	struct due_seen ds;
	const char *keys[] = { "b", "a" };
	MDB_val k = { 1, (void *)"V" };
	MDB_txn *txn;
	uint64_t seq;
	int64_t next;

	vbuf_init(&why, 0);
	ck_assert_int_eq(whstore_open(&s, &tcfg, 1, &why), 0);
	ck_assert_int_eq(mdbdir_begin(&s.md, 0, &txn, &why), 1);
	memset(&ev, 0, sizeof(ev));
	ev.kind = OUTBOX_DELIVERED;
	snprintf(ev.qid, sizeof(ev.qid), "%s", "6B13B2B2EB929848");
	for (seq = 1; seq <= 3; seq++) {
		ev.seq = seq;
		ck_assert_int_eq(whstore_put_event(&s, txn, &ev, keys, 2,
		    (int64_t)(100 - seq), &why), 1);
	}
	/* a/2 later; b/1 sent. */
	ck_assert_int_eq(whstore_dlv_get(&s, txn, 2, "a", &d), 0);
	d.due_ms = 500;
	ck_assert_int_eq(whstore_dlv_put(&s, txn, 2, "a", &d, &why), 0);
	ck_assert_int_eq(whstore_dlv_get(&s, txn, 1, "b", &d), 0);
	d.state = WHSTORE_SENT;
	ck_assert_int_eq(whstore_dlv_put(&s, txn, 1, "b", &d, &why), 0);

	memset(&ds, 0, sizeof(ds));
	ck_assert_int_eq(whstore_due_iter(&s, txn, 200, due_cb, NULL, &ds, &next),
	    0);
	/* Endpoints in order, each by due time (seq 3 was due first). */
	ck_assert_uint_eq(ds.n, 4);
	ck_assert_str_eq(ds.got[0], "a/3");
	ck_assert_str_eq(ds.got[1], "a/1");
	ck_assert_str_eq(ds.got[2], "b/3");
	ck_assert_str_eq(ds.got[3], "b/2");
	ck_assert_int_eq(next, 500);
	/* The backlog (metricsd): the 5 pending, not b/1, which is sent. */
	{
		uint64_t npend;

		ck_assert_int_eq(whstore_pending_count(&s, txn, &npend), 0);
		ck_assert_uint_eq(npend, 5);
	}
	/* Resuming endpoint a after a/3 (its first) starts at a/1. */
	memset(&ds, 0, sizeof(ds));
	ck_assert_int_eq(whstore_due_iter(&s, txn, 200, due_cb, resume_a3,
	    &ds, &next), 0);
	ck_assert_uint_eq(ds.n, 3);
	ck_assert_str_eq(ds.got[0], "a/1");
	ck_assert_str_eq(ds.got[1], "b/3");
	/* SKIP leaves the rest of an endpoint's. */
	memset(&ds, 0, sizeof(ds));
	ds.skip_b = 1;
	ck_assert_int_eq(whstore_due_iter(&s, txn, 1000, due_cb, NULL, &ds, &next),
	    0);
	ck_assert_uint_eq(ds.n, 4);
	ck_assert_str_eq(ds.got[2], "a/2");
	ck_assert_str_eq(ds.got[3], "b/3");
	ck_assert_int_eq(next, 0);

	/* A store from before the index: dropped, then rebuilt at open. */
	ck_assert_int_eq(mdb_del(txn, s.md.dbi, &k, NULL), 0);
	ck_assert_int_eq(mdb_txn_commit(txn), 0);
	ck_assert_int_eq(mdbdir_begin(&s.md, 0, &txn, &why), 1);
	{
		MDB_cursor *cur;
		MDB_val ck = { 1, (void *)"P" }, cv;

		ck_assert_int_eq(mdb_cursor_open(txn, s.md.dbi, &cur), 0);
		while (mdb_cursor_get(cur, &ck, &cv, MDB_SET_RANGE) == 0 &&
		    ((const char *)ck.mv_data)[0] == 'P') {
			ck_assert_int_eq(mdb_cursor_del(cur, 0), 0);
			ck.mv_size = 1;
			ck.mv_data = (void *)"P";
		}
		mdb_cursor_close(cur);
	}
	ck_assert_int_eq(mdb_txn_commit(txn), 0);
	whstore_close(&s);
	ck_assert_int_eq(whstore_open(&s, &tcfg, 1, &why), 0);
	ck_assert_int_eq(mdbdir_begin(&s.md, MDB_RDONLY, &txn, &why), 1);
	memset(&ds, 0, sizeof(ds));
	ck_assert_int_eq(whstore_due_iter(&s, txn, 1000, due_cb, NULL, &ds, &next),
	    0);
	ck_assert_uint_eq(ds.n, 5);
	mdb_txn_abort(txn);
	whstore_close(&s);
	vbuf_release(&why);
}
END_TEST

static void
mk_event(struct outbox_event *ev, uint64_t seq, enum outbox_kind kind,
    const char *qid, const char *rcpt)
{
	memset(ev, 0, sizeof(*ev));
	ev->seq = seq;
	ev->kind = kind;
	ev->time_ms = (int64_t)seq * 1000;
	snprintf(ev->qid, sizeof(ev->qid), "%s", qid);
	ev->recipient = rcpt;
}

START_TEST(test_join_settle)
{
	static const char qid[] = "6B13B2B2EB929847";
	const char *rcpts[] = { "r1@example.org", "r2@example.org" };
	const char *keys[] = { "cfg:https://a/" };
	struct whstore s;
	struct vbuf why;
	struct outbox_event acc, ev;
	MDB_txn *txn;

	vbuf_init(&why, 0);
	ck_assert_int_eq(whstore_open(&s, &tcfg, 1, &why), 0);
	mk_event(&acc, 1, OUTBOX_ACCEPTED, qid, NULL);
	acc.recipients = rcpts;
	acc.nrecipients = 2;
	acc.sasl_username = "app1";

	ck_assert_int_eq(mdbdir_begin(&s.md, 0, &txn, &why), 1);
	ck_assert_int_eq(whstore_put_msg(&s, txn, &acc, &why), 0);
	ck_assert_int_eq(whstore_put_event(&s, txn, &acc, keys, 1, 5, &why),
	    1);
	/* Deferred is not final: the join stays. */
	mk_event(&ev, 2, OUTBOX_DEFERRED, qid, rcpts[0]);
	ck_assert_int_eq(whstore_msg_settle(&s, txn, &ev, &why), 0);
	/* One of two recipients final: it stays for the other. */
	mk_event(&ev, 3, OUTBOX_DELIVERED, qid, rcpts[0]);
	ck_assert_int_eq(whstore_msg_settle(&s, txn, &ev, &why), 0);
	ck_assert_int_eq(has_join(&s, txn, qid), 1);
	ck_assert_int_eq(mdb_txn_commit(txn), 0);

	/* The last recipient's final event takes the join with it. */
	ck_assert_int_eq(mdbdir_begin(&s.md, 0, &txn, &why), 1);
	mk_event(&ev, 4, OUTBOX_BOUNCED, qid, rcpts[1]);
	ck_assert_int_eq(whstore_msg_settle(&s, txn, &ev, &why), 1);
	ck_assert_int_eq(has_join(&s, txn, qid), 0);
	/* A stray final event after that is no error and no underflow. */
	mk_event(&ev, 5, OUTBOX_DELETED, qid, rcpts[1]);
	ck_assert_int_eq(whstore_msg_settle(&s, txn, &ev, &why), 0);
	ck_assert_int_eq(mdb_txn_commit(txn), 0);

	/* Every final kind counts; none with no recipients is kept. */
	ck_assert_int_eq(mdbdir_begin(&s.md, 0, &txn, &why), 1);
	mk_event(&acc, 6, OUTBOX_ACCEPTED, "7000000000000001", NULL);
	acc.recipients = rcpts;
	acc.nrecipients = 2;
	acc.sasl_username = "app1";
	ck_assert_int_eq(whstore_put_msg(&s, txn, &acc, &why), 0);
	mk_event(&ev, 7, OUTBOX_EXPIRED, acc.qid, rcpts[0]);
	ck_assert_int_eq(whstore_msg_settle(&s, txn, &ev, &why), 0);
	mk_event(&ev, 8, OUTBOX_SUPPRESSED, acc.qid, rcpts[1]);
	ck_assert_int_eq(whstore_msg_settle(&s, txn, &ev, &why), 1);
	ck_assert_int_eq(has_join(&s, txn, acc.qid), 0);
	mk_event(&acc, 9, OUTBOX_ACCEPTED, "7000000000000002", NULL);
	acc.sasl_username = "app1";
	ck_assert_int_eq(whstore_put_msg(&s, txn, &acc, &why), 0);
	ck_assert_int_eq(has_join(&s, txn, acc.qid), 0);
	mdb_txn_abort(txn);
	whstore_close(&s);
	vbuf_release(&why);
}
END_TEST

START_TEST(test_join_sweep)
{
	static const char *qids[] = { "AAAAAAAAAAAAAAA0", "BBBBBBBBBBBBBBB1",
	    "CCCCCCCCCCCCCCC0", "DDDDDDDDDDDDDDD0" };
	const char *rcpts[] = { "r@example.org" };
	char resume[QID_SIZE] = "";
	struct whstore s;
	struct vbuf why;
	struct outbox_event acc;
	MDB_txn *txn;
	size_t i;
	int asked = 0;

	vbuf_init(&why, 0);
	ck_assert_int_eq(whstore_open(&s, &tcfg, 1, &why), 0);
	ck_assert_int_eq(mdbdir_begin(&s.md, 0, &txn, &why), 1);
	for (i = 0; i < 4; i++) {
		mk_event(&acc, i + 1, OUTBOX_ACCEPTED, qids[i], NULL);
		acc.recipients = rcpts;
		acc.nrecipients = 1;
		acc.sasl_username = "app1";
		ck_assert_int_eq(whstore_put_msg(&s, txn, &acc, &why), 0);
	}
	ck_assert_int_eq(has_join(&s, txn, qids[1]), 1);
	/* Two looked at: A gone, B kept; it resumes after B. */
	ck_assert_int_eq(whstore_msg_sweep(&s, txn, resume, 2, gone_cb,
	    &asked), 1);
	ck_assert_int_eq(asked, 2);
	ck_assert_str_eq(resume, qids[1]);
	ck_assert_int_eq(has_join(&s, txn, qids[1]), 1);
	ck_assert_int_eq(mdb_txn_commit(txn), 0);
	ck_assert_int_eq(mdbdir_begin(&s.md, 0, &txn, &why), 1);
	/* The rest: C and D gone, and the walk starts over next time. */
	ck_assert_int_eq(whstore_msg_sweep(&s, txn, resume, 10, gone_cb,
	    &asked), 2);
	ck_assert_int_eq(asked, 4);
	ck_assert_str_eq(resume, "");
	ck_assert_int_eq(has_join(&s, txn, qids[0]), 0);
	ck_assert_int_eq(has_join(&s, txn, qids[1]), 1);
	ck_assert_int_eq(has_join(&s, txn, qids[2]), 0);
	ck_assert_int_eq(has_join(&s, txn, qids[3]), 0);
	/* Only B is left; its count went with nothing else. */
	ck_assert_int_eq(whstore_msg_sweep(&s, txn, resume, 10, gone_cb,
	    &asked), 0);
	ck_assert_int_eq(asked, 5);
	ck_assert_int_eq(has_join(&s, txn, qids[1]), 1);
	ck_assert_int_eq(mdb_txn_commit(txn), 0);
	whstore_close(&s);
	vbuf_release(&why);
}
END_TEST

static Suite *
whstore_suite(void)
{
	Suite *s = suite_create("whstore");
	TCase *tc = tcase_create("core");

	tcase_set_timeout(tc, 60);
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_idempotent_and_join);
	tcase_add_test(tc, test_find_id_and_safe_url);
	tcase_add_test(tc, test_pending_index);
	tcase_add_test(tc, test_dead_replay_prune);
	tcase_add_test(tc, test_join_settle);
	tcase_add_test(tc, test_join_sweep);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(whstore_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
