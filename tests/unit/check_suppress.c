/*
 * check_suppress.c - unit tests for lib/suppress: the suppression list in
 * a mkdtemp() queue directory. Case-insensitive addresses, scopes (all
 * domains against one), expiry applied on read, renewal (since kept, an
 * automatic reason never weakening a manual one), deletion, soft-bounce
 * conversion (distinct messages within the window only), pruning, a
 * batch import, a read-only handle that finds the list created later,
 * and one that keeps going with a list it cannot open.
 */
#include <sys/stat.h>
#include <sys/wait.h>

#include <check.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cfg.h"
#include "suppress.h"
#include "vbuf.h"

static char tdir[64], qdir[96];
static struct cfg tcfg;

static void	setup(void);
static void	teardown(void);
static void	entry(struct suppress_entry *, const char *, const char *,
		    enum suppress_reason, int64_t, int64_t);
static int	count_cb(const struct suppress_entry *, void *);
static Suite	*suppress_suite(void);

static void
setup(void)
{
	snprintf(tdir, sizeof(tdir), "/tmp/check_suppress.XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(tdir));
	snprintf(qdir, sizeof(qdir), "%s/queue", tdir);
	ck_assert_int_eq(mkdir(qdir, 0700), 0);
	memset(&tcfg, 0, sizeof(tcfg));
	tcfg.queue_directory = qdir;
	tcfg.suppression_map_size = 64 * 1024 * 1024;
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

static void
entry(struct suppress_entry *e, const char *addr, const char *scope,
    enum suppress_reason r, int64_t since, int64_t expires)
{
	memset(e, 0, sizeof(*e));
	snprintf(e->address, sizeof(e->address), "%s", addr);
	snprintf(e->scope, sizeof(e->scope), "%s", scope);
	e->reason = r;
	e->since = since;
	e->expires = expires;
}

static int
count_cb(const struct suppress_entry *e, void *arg)
{
	(void)e;
	(*(int *)arg)++;
	return 0;
}

START_TEST(test_names)
{
	enum suppress_reason r;
	char out[300];

	ck_assert_str_eq(suppress_reason_name(SUPPRESS_HARD_BOUNCE),
	    "hard-bounce");
	ck_assert_str_eq(suppress_reason_words(SUPPRESS_SOFT_BOUNCES),
	    "soft bounces");
	ck_assert_int_eq(suppress_reason_from_name("unsubscribe", &r), 0);
	ck_assert_int_eq(r, SUPPRESS_UNSUBSCRIBE);
	ck_assert_int_eq(suppress_reason_from_name("Manual", &r), -1);
	ck_assert_int_eq(suppress_address_norm("Bob@Example.COM", out,
	    sizeof(out)), 0);
	ck_assert_str_eq(out, "bob@example.com");
	ck_assert_int_eq(suppress_address_norm("bob", out, sizeof(out)), -1);
	ck_assert_int_eq(suppress_address_norm("@x.org", out, sizeof(out)),
	    -1);
	ck_assert_int_eq(suppress_address_norm("a b@x.org", out,
	    sizeof(out)), -1);
	ck_assert_int_eq(suppress_address_norm("\"a b\"@x.org", out,
	    sizeof(out)), 0);
	ck_assert_int_eq(suppress_scope_norm("Example.ORG", out, sizeof(out)),
	    0);
	ck_assert_str_eq(out, "example.org");
	ck_assert_int_eq(suppress_scope_norm("a,b", out, sizeof(out)), -1);
}
END_TEST

START_TEST(test_case_and_scope)
{
	struct suppress *s;
	struct suppress_entry e, got;
	struct vbuf why;
	int64_t now = time(NULL);

	vbuf_init(&why, 0);
	s = suppress_open(&tcfg, 1, &why);
	ck_assert_msg(s != NULL, "%s", why.data);
	ck_assert_int_eq(suppress_check(s, "a@x.org", "", now, &got, &why),
	    0);
	/* One sending domain only. */
	entry(&e, "Dead@Example.COM", "Shop.example", SUPPRESS_MANUAL, 0, 0);
	ck_assert_int_eq(suppress_add(s, &e, &why), 0);
	ck_assert_int_eq(suppress_check(s, "dead@example.com",
	    "shop.EXAMPLE", now, &got, &why), 1);
	ck_assert_str_eq(got.address, "dead@example.com");
	ck_assert_str_eq(got.scope, "shop.example");
	ck_assert_int_eq(got.reason, SUPPRESS_MANUAL);
	ck_assert(got.since >= now && got.since <= now + 5);
	ck_assert_int_eq(suppress_check(s, "DEAD@example.com", "other.example",
	    now, NULL, &why), 0);
	ck_assert_int_eq(suppress_check(s, "dead@example.com", "", now, NULL,
	    &why), 0);
	/* All domains: wins over the scoped one, also for the null sender. */
	entry(&e, "dead@example.com", "", SUPPRESS_HARD_BOUNCE, 1000, 0);
	snprintf(e.class, sizeof(e.class), "bad-mailbox");
	snprintf(e.reply, sizeof(e.reply), "550 5.1.1 <dead@example.com>: "
	    "User unknown, \"really\"");
	ck_assert_int_eq(suppress_add(s, &e, &why), 0);
	ck_assert_int_eq(suppress_check(s, "dead@EXAMPLE.com", "shop.example",
	    now, &got, &why), 1);
	ck_assert_str_eq(got.scope, "");
	ck_assert_int_eq(got.reason, SUPPRESS_HARD_BOUNCE);
	ck_assert_int_eq(got.since, 1000);
	ck_assert_str_eq(got.class, "bad-mailbox");
	ck_assert_str_eq(got.reply, e.reply);
	ck_assert_int_eq(suppress_check(s, "dead@example.com", "", now, NULL,
	    &why), 1);
	/* A neighbour sharing a prefix is not suppressed. */
	ck_assert_int_eq(suppress_check(s, "dead@example.co", "", now, NULL,
	    &why), 0);
	ck_assert_int_eq(suppress_check(s, "dead@example.comx", "", now,
	    NULL, &why), 0);
	/* Bad input is refused on add, and never matches on check. */
	entry(&e, "no-at-sign", "", SUPPRESS_MANUAL, 0, 0);
	ck_assert_int_eq(suppress_add(s, &e, &why), -1);
	entry(&e, "x@y.org", "bad domain", SUPPRESS_MANUAL, 0, 0);
	ck_assert_int_eq(suppress_add(s, &e, &why), -1);
	ck_assert_int_eq(suppress_check(s, "no-at-sign", "", now, NULL, &why),
	    0);
	suppress_close(s);
	vbuf_release(&why);
}
END_TEST

START_TEST(test_many_scopes)
{
	struct suppress *s;
	struct suppress_entry e, got;
	struct vbuf why;
	char dom[64];
	int i, n = 0;
	int64_t now = time(NULL);

	vbuf_init(&why, 0);
	s = suppress_open(&tcfg, 1, &why);
	ck_assert_ptr_nonnull(s);
	/* More scopes than one check walks: the sender's is still found. */
	for (i = 0; i < 20; i++) {
		snprintf(dom, sizeof(dom), "d%02d.example", i);
		entry(&e, "m@x.org", dom, SUPPRESS_UNSUBSCRIBE, 0, 0);
		ck_assert_int_eq(suppress_add(s, &e, &why), 0);
	}
	ck_assert_int_eq(suppress_check(s, "m@x.org", "d19.example", now,
	    &got, &why), 1);
	ck_assert_str_eq(got.scope, "d19.example");
	ck_assert_int_eq(suppress_check(s, "m@x.org", "d20.example", now,
	    NULL, &why), 0);
	ck_assert_int_eq(suppress_iter_address(s, "M@X.org", now, count_cb,
	    &n, &why), 0);
	ck_assert_int_eq(n, 20);
	ck_assert_int_eq(suppress_del(s, "m@x.org", "d03.example", &why), 1);
	ck_assert_int_eq(suppress_check(s, "m@x.org", "d03.example", now,
	    NULL, &why), 0);
	ck_assert_int_eq(suppress_del(s, "m@x.org", "d03.example", &why), 0);
	ck_assert_int_eq(suppress_del(s, "M@x.org", NULL, &why), 19);
	n = 0;
	ck_assert_int_eq(suppress_iter(s, now, count_cb, &n, &why), 0);
	ck_assert_int_eq(n, 0);
	suppress_close(s);
	vbuf_release(&why);
}
END_TEST

START_TEST(test_expiry_renew)
{
	struct suppress *s;
	struct suppress_entry e, got;
	struct vbuf why;
	int64_t now = time(NULL);
	int n = 0;

	vbuf_init(&why, 0);
	s = suppress_open(&tcfg, 1, &why);
	ck_assert_ptr_nonnull(s);
	entry(&e, "t@x.org", "", SUPPRESS_HARD_BOUNCE, now - 100, now + 10);
	ck_assert_int_eq(suppress_add(s, &e, &why), 0);
	ck_assert_int_eq(suppress_check(s, "t@x.org", "a.example", now, NULL,
	    &why), 1);
	/* Expiry applies on read, before any prune. */
	ck_assert_int_eq(suppress_check(s, "t@x.org", "a.example", now + 10,
	    NULL, &why), 0);
	ck_assert_int_eq(suppress_iter(s, now + 10, count_cb, &n, &why), 0);
	ck_assert_int_eq(n, 0);
	/* Renewal: expires moves, since stays the first one. */
	entry(&e, "T@x.org", "", SUPPRESS_HARD_BOUNCE, now, now + 1000);
	ck_assert_int_eq(suppress_add(s, &e, &why), 0);
	ck_assert_int_eq(suppress_check(s, "t@x.org", "", now + 500, &got,
	    &why), 1);
	ck_assert_int_eq(got.since, now - 100);
	ck_assert_int_eq(got.expires, now + 1000);
	/* A bounce does not weaken a manual entry; manual replaces. */
	entry(&e, "t@x.org", "", SUPPRESS_MANUAL, now, 0);
	ck_assert_int_eq(suppress_add(s, &e, &why), 0);
	entry(&e, "t@x.org", "", SUPPRESS_HARD_BOUNCE, now, now + 5);
	ck_assert_int_eq(suppress_add(s, &e, &why), 0);
	ck_assert_int_eq(suppress_check(s, "t@x.org", "", now + 100, &got,
	    &why), 1);
	ck_assert_int_eq(got.reason, SUPPRESS_MANUAL);
	ck_assert_int_eq(got.expires, 0);
	ck_assert_int_eq(got.since, now - 100);
	/* An expired entry is replaced as new: its since is not kept. */
	entry(&e, "old@x.org", "", SUPPRESS_MANUAL, 50, 60);
	ck_assert_int_eq(suppress_add(s, &e, &why), 0);
	entry(&e, "old@x.org", "", SUPPRESS_COMPLAINT, 0, 0);
	ck_assert_int_eq(suppress_add(s, &e, &why), 0);
	ck_assert_int_eq(suppress_check(s, "old@x.org", "", now, &got, &why),
	    1);
	ck_assert(got.since >= now);
	ck_assert_int_eq(got.reason, SUPPRESS_COMPLAINT);
	suppress_close(s);
	vbuf_release(&why);
}
END_TEST

START_TEST(test_soft_bounces)
{
	struct suppress *s;
	struct suppress_entry got;
	struct vbuf why;
	int64_t now = 1000000, day = 86400, week = 7 * 86400;

	vbuf_init(&why, 0);
	s = suppress_open(&tcfg, 1, &why);
	ck_assert_ptr_nonnull(s);
	/* The same message three times counts once. */
	ck_assert_int_eq(suppress_soft_bounce(s, "Soft@x.org", "Q1", "quota-"
	    "issues", "452 4.2.2 full", now, 3, week, 30 * day, &why), 0);
	ck_assert_int_eq(suppress_soft_bounce(s, "soft@x.org", "Q1", NULL,
	    NULL, now + 10, 3, week, 30 * day, &why), 0);
	ck_assert_int_eq(suppress_soft_bounce(s, "soft@x.org", "Q1", NULL,
	    NULL, now + 20, 3, week, 30 * day, &why), 0);
	/* A second message, then a third outside the window of the first. */
	ck_assert_int_eq(suppress_soft_bounce(s, "soft@x.org", "Q2", NULL,
	    NULL, now + day, 3, week, 30 * day, &why), 0);
	ck_assert_int_eq(suppress_soft_bounce(s, "soft@x.org", "Q3", NULL,
	    NULL, now + 20 + week, 3, week, 30 * day, &why), 0);
	ck_assert_int_eq(suppress_check(s, "soft@x.org", "", now + 20 + week,
	    NULL, &why), 0);
	/* Another address's history does not count. */
	ck_assert_int_eq(suppress_soft_bounce(s, "soft@x.or", "Q4", NULL,
	    NULL, now + week + 30, 3, week, 30 * day, &why), 0);
	/* A third distinct message within the window: suppressed. */
	ck_assert_int_eq(suppress_soft_bounce(s, "soft@x.org", "Q5",
	    "quota-issues", "452 4.2.2 Mailbox full", now + week + 40, 3,
	    week, 30 * day, &why), 1);
	ck_assert_int_eq(suppress_check(s, "soft@x.org", "any.example",
	    now + week + 40, &got, &why), 1);
	ck_assert_int_eq(got.reason, SUPPRESS_SOFT_BOUNCES);
	ck_assert_str_eq(got.scope, "");
	ck_assert_str_eq(got.class, "quota-issues");
	ck_assert_str_eq(got.reply, "452 4.2.2 Mailbox full");
	ck_assert_int_eq(got.since, now + week + 40);
	ck_assert_int_eq(got.expires, now + week + 40 + 30 * day);
	/* The history restarted: one more bounce does not convert again. */
	ck_assert_int_eq(suppress_soft_bounce(s, "soft@x.org", "Q6", NULL,
	    NULL, now + week + 50, 3, week, 0, &why), 0);
	/* ttl 0: never expires. */
	ck_assert_int_eq(suppress_soft_bounce(s, "p@x.org", "A", NULL, NULL,
	    now, 2, week, 0, &why), 0);
	ck_assert_int_eq(suppress_soft_bounce(s, "p@x.org", "B", NULL, NULL,
	    now, 2, week, 0, &why), 1);
	ck_assert_int_eq(suppress_check(s, "p@x.org", "", INT64_MAX / 2, &got,
	    &why), 1);
	ck_assert_int_eq(got.expires, 0);
	suppress_close(s);
	vbuf_release(&why);
}
END_TEST

START_TEST(test_prune)
{
	struct suppress *s;
	struct suppress_entry e;
	struct vbuf why;
	int64_t now = time(NULL), week = 7 * 86400;
	int i, n, total;
	char addr[64];

	vbuf_init(&why, 0);
	s = suppress_open(&tcfg, 1, &why);
	ck_assert_ptr_nonnull(s);
	entry(&e, "gone@x.org", "", SUPPRESS_HARD_BOUNCE, now - 100, now - 1);
	ck_assert_int_eq(suppress_add(s, &e, &why), 0);
	entry(&e, "stays@x.org", "", SUPPRESS_HARD_BOUNCE, now - 100, 0);
	ck_assert_int_eq(suppress_add(s, &e, &why), 0);
	ck_assert_int_eq(suppress_soft_bounce(s, "h@x.org", "Q1", NULL, NULL,
	    now - week + 10, 3, week, 0, &why), 0);
	ck_assert_int_eq(suppress_soft_bounce(s, "h@x.org", "Q2", NULL, NULL,
	    now, 3, week, 0, &why), 0);
	/* One expired entry and one old soft bounce. */
	ck_assert_int_eq(suppress_prune(s, now + 20, week, &why), 2);
	ck_assert_int_eq(suppress_prune(s, now + 20, week, &why), 0);
	ck_assert_int_eq(suppress_check(s, "stays@x.org", "", now, NULL,
	    &why), 1);
	/* Q2 is still there: one more message makes two, not three. */
	ck_assert_int_eq(suppress_soft_bounce(s, "h@x.org", "Q3", NULL, NULL,
	    now, 3, week, 0, &why), 0);
	ck_assert_int_eq(suppress_soft_bounce(s, "h@x.org", "Q4", NULL, NULL,
	    now, 3, week, 0, &why), 1);
	/* Bounded work per call: a large expired set takes several calls. */
	ck_assert_int_eq(suppress_batch_begin(s, &why), 0);
	for (i = 0; i < SUPPRESS_PRUNE_BATCH + 500; i++) {
		snprintf(addr, sizeof(addr), "e%06d@x.org", i);
		entry(&e, addr, "", SUPPRESS_MANUAL, now - 10, now - 5);
		ck_assert_int_eq(suppress_batch_add(s, &e, &why), 0);
	}
	ck_assert_int_eq(suppress_batch_commit(s, &why), 0);
	n = suppress_prune(s, now, week, &why);
	ck_assert(n > 0 && n <= SUPPRESS_PRUNE_BATCH);
	total = n;
	for (i = 0; i < 5; i++) {
		ck_assert_int_ge(n = suppress_prune(s, now, week, &why), 0);
		total += n;
	}
	ck_assert_int_eq(total, SUPPRESS_PRUNE_BATCH + 500);
	ck_assert_int_eq(suppress_check(s, "stays@x.org", "", now, NULL,
	    &why), 1);
	suppress_close(s);
	vbuf_release(&why);
}
END_TEST

START_TEST(test_batch)
{
	struct suppress *s, *ro;
	struct suppress_entry e;
	struct vbuf why;
	char addr[64];
	int64_t now = time(NULL);
	int i, n = 0;

	vbuf_init(&why, 0);
	/* Read-only before anything exists: nothing suppressed. */
	ro = suppress_open(&tcfg, 0, &why);
	ck_assert_msg(ro != NULL, "%s", why.data);
	ck_assert_int_eq(suppress_check(ro, "u1@x.org", "", now, NULL, &why),
	    0);
	s = suppress_open(&tcfg, 1, &why);
	ck_assert_ptr_nonnull(s);
	/* An aborted batch leaves nothing behind. */
	ck_assert_int_eq(suppress_batch_begin(s, &why), 0);
	entry(&e, "u1@x.org", "", SUPPRESS_MANUAL, 0, 0);
	ck_assert_int_eq(suppress_batch_add(s, &e, &why), 0);
	suppress_batch_abort(s);
	ck_assert_int_eq(suppress_check(s, "u1@x.org", "", now, NULL, &why),
	    0);
	/* 20,000 additions, one commit. */
	ck_assert_int_eq(suppress_batch_begin(s, &why), 0);
	ck_assert_int_eq(suppress_batch_begin(s, &why), -1);
	for (i = 0; i < 20000; i++) {
		snprintf(addr, sizeof(addr), "U%d@X.org", i);
		entry(&e, addr, "", SUPPRESS_UNSUBSCRIBE, 0, 0);
		ck_assert_int_eq(suppress_batch_add(s, &e, &why), 0);
	}
	ck_assert_int_eq(suppress_batch_commit(s, &why), 0);
	ck_assert_int_eq(suppress_batch_commit(s, &why), -1);
	ck_assert_int_eq(suppress_iter(s, now, count_cb, &n, &why), 0);
	ck_assert_int_eq(n, 20000);
	/* The read-only handle sees it (looked for again a second later). */
	ck_assert_int_eq(suppress_check(ro, "u19999@x.org", "d.example",
	    now + 1, NULL, &why), 1);
	ck_assert_int_eq(suppress_check(ro, "u20000@x.org", "d.example",
	    now + 1, NULL, &why), 0);
	ck_assert_int_eq(suppress_soft_bounce(ro, "u1@x.org", "Q", NULL, NULL,
	    now, 3, 100, 0, &why), -1);
	suppress_close(ro);
	suppress_close(s);
	vbuf_release(&why);
}
END_TEST

/*
 * Readers that exit without closing (an smtpd that is killed, drained or
 * crashes) leave their slots taken until the writer clears them.
 */
START_TEST(test_reader_check)
{
	struct suppress *s, *ro;
	struct vbuf why;
	pid_t pid;
	int status, i;

	vbuf_init(&why, 0);
	s = suppress_open(&tcfg, 1, &why);
	ck_assert_ptr_nonnull(s);
	ck_assert_int_eq(suppress_reader_check(s), 0);
	for (i = 0; i < 3; i++) {
		if ((pid = fork()) == 0) {
			ro = suppress_open(&tcfg, 0, &why);
			if (ro == NULL || suppress_check(ro, "a@x.org", "",
			    100, NULL, &why) != 0)
				_exit(1);
			_exit(0);	/* no close: the slot stays */
		}
		ck_assert_int_gt(pid, 0);
		ck_assert_int_eq(waitpid(pid, &status, 0), pid);
		ck_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	}
	ck_assert_int_eq(suppress_reader_check(s), 3);
	ck_assert_int_eq(suppress_reader_check(s), 0);
	suppress_close(s);
	vbuf_release(&why);
}
END_TEST

START_TEST(test_readonly_damaged)
{
	struct suppress *ro;
	struct vbuf why;
	char path[160];
	FILE *fp;

	/* A list smtpd cannot open yet: a handle anyway, -1 per check. */
	snprintf(path, sizeof(path), "%s/suppress", qdir);
	ck_assert_int_eq(mkdir(path, 0700), 0);
	snprintf(path, sizeof(path), "%s/suppress/data.mdb", qdir);
	ck_assert_ptr_nonnull(fp = fopen(path, "w"));
	fputs("not an LMDB file, not at all, but long enough to be read\n", fp);
	ck_assert_int_eq(fclose(fp), 0);
	vbuf_init(&why, 0);
	ro = suppress_open(&tcfg, 0, &why);
	ck_assert_ptr_nonnull(ro);
	vbuf_reset(&why);
	ck_assert_int_eq(suppress_check(ro, "a@x.org", "", 100, NULL, &why),
	    -1);
	ck_assert(why.len > 0);
	/* Looked at again at most once a second: meanwhile not suppressed. */
	ck_assert_int_eq(suppress_check(ro, "a@x.org", "", 100, NULL, &why),
	    0);
	ck_assert_int_eq(suppress_check(ro, "a@x.org", "", 101, NULL, &why),
	    -1);
	suppress_close(ro);
	vbuf_release(&why);
}
END_TEST

static Suite *
suppress_suite(void)
{
	Suite *s = suite_create("suppress");
	TCase *tc = tcase_create("core");

	tcase_set_timeout(tc, 60);
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_names);
	tcase_add_test(tc, test_case_and_scope);
	tcase_add_test(tc, test_many_scopes);
	tcase_add_test(tc, test_expiry_renew);
	tcase_add_test(tc, test_soft_bounces);
	tcase_add_test(tc, test_prune);
	tcase_add_test(tc, test_batch);
	tcase_add_test(tc, test_readonly_damaged);
	tcase_add_test(tc, test_reader_check);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(suppress_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
