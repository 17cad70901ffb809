/*
 * check_metrics.c - unit tests for lib/metrics: events land in the right
 * counters of the shared file, held bumps count only on commit, labels
 * are merged per (family, label) and overflow to "other" when the slot
 * table is full, a second writer of the same kind shares the file, and a
 * file of another layout is not read. Outcomes by credential have their
 * own bounded table, "none" for mail without a credential, and a file of
 * the layout before that table (magic "PetMetr2") is neither read nor
 * kept.
 */
#include <sys/wait.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <check.h>

#include "metrics.h"
#include "outbox.h"
#include "vbuf.h"

static Suite	*metrics_suite(void);
static void	 sum_label(const char *, uint64_t, void *);
static void	 sum_cred(const char *, const uint64_t *, void *);

static char dir[] = "/tmp/check_metrics.XXXXXX";

struct want {
	const char	*label;
	uint64_t	 n;
	size_t		 series;
};

static void
sum_label(const char *label, uint64_t n, void *arg)
{
	struct want *w = arg;

	w->series++;
	if (strcmp(label, w->label) == 0)
		w->n += n;
}

struct want_cred {
	const char	*cred;
	uint64_t	 n[METRICS_NOUTCOMES];
	size_t		 series;
};

static void
sum_cred(const char *cred, const uint64_t *n, void *arg)
{
	struct want_cred *w = arg;
	size_t k;

	w->series++;
	if (strcmp(cred, w->cred) == 0)
		for (k = 0; k < METRICS_NOUTCOMES; k++)
			w->n[k] += n[k];
}

static struct want_cred
cred_count(const struct metrics_view *v, const char *cred)
{
	struct want_cred w;

	memset(&w, 0, sizeof(w));
	w.cred = cred;
	metrics_view_credentials(v, sum_cred, &w);
	return w;
}

static uint64_t
label_count(const struct metrics_view *v, enum metrics_family f,
    const char *label, size_t *series)
{
	struct want w = { label, 0, 0 };

	metrics_view_labels(v, f, sum_label, &w);
	if (series != NULL)
		*series = w.series;
	return w.n;
}

START_TEST(test_events_hold_and_labels)
{
	struct vbuf *why = vbuf_create(0);
	struct metrics_view *v;
	struct outbox_event ev;
	char label[32];
	size_t series, i;
	pid_t pid;
	int st;

	ck_assert_ptr_nonnull(mkdtemp(dir));
	ck_assert_ptr_null(metrics_view_open(dir, "qmgr"));
	ck_assert_int_eq(metrics_open(dir, "qmgr", why), 0);
	ck_assert(metrics_enabled());
	v = metrics_view_open(dir, "qmgr");
	ck_assert_ptr_nonnull(v);

	memset(&ev, 0, sizeof(ev));
	ev.kind = OUTBOX_ACCEPTED;
	ev.sasl_username = "shop";
	ev.nrecipients = 3;
	ev.size = 1000;
	metrics_event(&ev);
	ev.sasl_username = NULL;
	metrics_event(&ev);
	ck_assert_uint_eq(label_count(v, METRICS_F_ACCEPTED, "shop", NULL), 1);
	ck_assert_uint_eq(label_count(v, METRICS_F_ACCEPTED, "none", NULL), 1);
	ck_assert_uint_eq(metrics_view_get(v, METRICS_ACCEPTED_RCPTS), 6);
	ck_assert_uint_eq(metrics_view_get(v, METRICS_ACCEPTED_BYTES), 2000);

	/* Held: nothing until commit; an abort drops it. */
	memset(&ev, 0, sizeof(ev));
	ev.kind = OUTBOX_DELIVERED;
	ev.delay = 7;
	ev.dkim = "d=example.com s=sel";
	metrics_hold();
	metrics_event(&ev);
	ck_assert_uint_eq(metrics_view_get(v, METRICS_DELIVERED), 0);
	metrics_release(0);
	ck_assert_uint_eq(metrics_view_get(v, METRICS_DELIVERED), 0);
	metrics_hold();
	metrics_event(&ev);
	ev.dkim = "unsigned";
	ev.delay = 100000000;
	metrics_event(&ev);
	metrics_release(1);
	ck_assert_uint_eq(metrics_view_get(v, METRICS_DELIVERED), 2);
	ck_assert_uint_eq(metrics_view_get(v, METRICS_DKIM_SIGNED), 1);
	ck_assert_uint_eq(metrics_view_get(v, METRICS_DKIM_UNSIGNED), 1);
	/* 7 s falls in the "10" bucket (index 2), the other in +Inf. */
	ck_assert_uint_eq(metrics_view_get(v, METRICS_LAT_0 + 2), 1);
	ck_assert_uint_eq(metrics_view_get(v, METRICS_LAT_LAST), 1);
	ck_assert_uint_eq(metrics_view_get(v, METRICS_LAT_SUM), 100000007);

	/* Attempts (smtp): 40 ms in the 0.05 s bucket, 50 ms too (le is
	 * inclusive), 2 s in 2.5 s (index 5), an hour in +Inf; the sum in
	 * milliseconds. Not held: they follow no transaction. */
	metrics_attempt(40);
	metrics_attempt(50);
	metrics_attempt(2000);
	metrics_attempt(3600000);
	ck_assert_uint_eq(metrics_view_get(v, METRICS_ATT_0), 2);
	ck_assert_uint_eq(metrics_view_get(v, METRICS_ATT_0 + 5), 1);
	ck_assert_uint_eq(metrics_view_get(v, METRICS_ATT_LAST), 1);
	ck_assert_uint_eq(metrics_view_get(v, METRICS_ATT_SUM_MS),
	    40 + 50 + 2000 + 3600000);
	/* The new fixed counters have slots of their own. */
	metrics_add(METRICS_DKIM_SIGN_OK, 2);
	metrics_add(METRICS_WH_DEAD, 3);
	ck_assert_uint_eq(metrics_view_get(v, METRICS_DKIM_SIGN_OK), 2);
	ck_assert_uint_eq(metrics_view_get(v, METRICS_DKIM_SIGN_NOKEY), 0);
	ck_assert_uint_eq(metrics_view_get(v, METRICS_WH_DEAD), 3);
	ck_assert_uint_eq(metrics_view_get(v, METRICS_WH_SENT), 0);

	/* Another process of the same kind adds to the same counters. */
	pid = fork();
	ck_assert_int_ne(pid, -1);
	if (pid == 0) {
		struct vbuf *w2 = vbuf_create(0);

		if (metrics_open(dir, "qmgr", w2) == -1)
			_exit(1);
		metrics_add_label(METRICS_F_DEFERRED, "greylisting", 5);
		_exit(0);
	}
	ck_assert_int_eq(waitpid(pid, &st, 0), pid);
	ck_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	metrics_add_label(METRICS_F_DEFERRED, "greylisting", 1);
	ck_assert_uint_eq(label_count(v, METRICS_F_DEFERRED, "greylisting",
	    &series), 6);
	ck_assert_uint_eq(series, 1);

	/* The slot table is bounded: past it, new labels are "other". */
	for (i = 0; i < METRICS_NSLOTS + 10; i++) {
		snprintf(label, sizeof(label), "class-%zu", i);
		metrics_add_label(METRICS_F_BOUNCED, label, 1);
	}
	ck_assert_uint_eq(label_count(v, METRICS_F_BOUNCED, "other", &series),
	    METRICS_NSLOTS + 10 - (METRICS_NSLOTS - 3));
	ck_assert_uint_le(series, METRICS_NSLOTS + 1);
	metrics_view_close(v);

	/* Another file layout is not read. */
	{
		char path[256];
		FILE *f;

		snprintf(path, sizeof(path), "%s/metrics/smtpd", dir);
		f = fopen(path, "w");
		ck_assert_ptr_nonnull(f);
		fputs("not a counter file", f);
		fclose(f);
		ck_assert_ptr_null(metrics_view_open(dir, "smtpd"));
		unlink(path);
		snprintf(path, sizeof(path), "%s/metrics/qmgr", dir);
		unlink(path);
		snprintf(path, sizeof(path), "%s/metrics", dir);
		rmdir(path);
		rmdir(dir);
	}
	vbuf_free(why);
}
END_TEST

START_TEST(test_credentials)
{
	char cdir[] = "/tmp/check_metrics_cred.XXXXXX", path[256], name[32];
	struct vbuf *why = vbuf_create(0);
	struct metrics_view *v;
	struct want_cred w;
	uint64_t junk[64];
	size_t i;
	FILE *f;

	ck_assert_ptr_nonnull(mkdtemp(cdir));
	ck_assert_int_eq(metrics_open(cdir, "qmgr", why), 0);
	v = metrics_view_open(cdir, "qmgr");
	ck_assert_ptr_nonnull(v);
	ck_assert_str_eq(metrics_outcome_name(METRICS_O_SUPPRESSED),
	    "suppressed");

	metrics_credential("shop", METRICS_O_DELIVERED, 1);
	metrics_credential("shop", METRICS_O_DELIVERED, 1);
	metrics_credential("shop", METRICS_O_DEFERRED, 3);
	metrics_credential(NULL, METRICS_O_DELIVERED, 1);
	metrics_credential("", METRICS_O_BOUNCED, 1);
	/* Held with a transaction: an abort drops it, a commit adds it. */
	metrics_hold();
	metrics_credential("shop", METRICS_O_SUPPRESSED, 1);
	metrics_release(0);
	metrics_hold();
	metrics_credential("shop", METRICS_O_EXPIRED, 1);
	ck_assert_uint_eq(cred_count(v, "shop").n[METRICS_O_EXPIRED], 0);
	metrics_release(1);
	w = cred_count(v, "shop");
	ck_assert_uint_eq(w.n[METRICS_O_DELIVERED], 2);
	ck_assert_uint_eq(w.n[METRICS_O_DEFERRED], 3);
	ck_assert_uint_eq(w.n[METRICS_O_SUPPRESSED], 0);
	ck_assert_uint_eq(w.n[METRICS_O_EXPIRED], 1);
	ck_assert_uint_eq(w.series, 2);		/* shop and none */
	w = cred_count(v, "none");
	ck_assert_uint_eq(w.n[METRICS_O_DELIVERED], 1);
	ck_assert_uint_eq(w.n[METRICS_O_BOUNCED], 1);
	/* The labelled families are untouched: a table of its own. */
	ck_assert_uint_eq(label_count(v, METRICS_F_ACCEPTED, "shop", NULL), 0);

	/* Bounded: METRICS_CRED_SLOTS credentials, then "other". */
	for (i = 0; i < METRICS_CRED_SLOTS + 10; i++) {
		snprintf(name, sizeof(name), "app-%zu", i);
		metrics_credential(name, METRICS_O_DELIVERED, 1);
	}
	w = cred_count(v, "other");
	ck_assert_uint_eq(w.n[METRICS_O_DELIVERED],
	    METRICS_CRED_SLOTS + 10 - (METRICS_CRED_SLOTS - 2));
	ck_assert_uint_eq(w.series, METRICS_CRED_SLOTS + 1);
	metrics_view_close(v);

	/* A file of the previous layout ("PetMetr2", then anything) is not
	 * read, and a writer starts it again from zero. */
	snprintf(path, sizeof(path), "%s/metrics/smtpd", cdir);
	f = fopen(path, "w");
	ck_assert_ptr_nonnull(f);
	memset(junk, 0xff, sizeof(junk));
	junk[0] = UINT64_C(0x5065744d65747232);
	ck_assert_uint_eq(fwrite(junk, sizeof(junk), 1, f), 1);
	fclose(f);
	ck_assert_ptr_null(metrics_view_open(cdir, "smtpd"));
	ck_assert_int_eq(metrics_open(cdir, "smtpd", why), 0);
	v = metrics_view_open(cdir, "smtpd");
	ck_assert_ptr_nonnull(v);
	ck_assert_uint_eq(metrics_view_get(v, METRICS_ACCEPTED_RCPTS), 0);
	ck_assert_uint_eq(cred_count(v, "other").series, 0);
	metrics_view_close(v);

	unlink(path);
	snprintf(path, sizeof(path), "%s/metrics/qmgr", cdir);
	unlink(path);
	snprintf(path, sizeof(path), "%s/metrics", cdir);
	rmdir(path);
	rmdir(cdir);
	vbuf_free(why);
}
END_TEST

static Suite *
metrics_suite(void)
{
	Suite *s = suite_create("metrics");
	TCase *tc = tcase_create("core");

	tcase_add_test(tc, test_events_hold_and_labels);
	tcase_add_test(tc, test_credentials);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(metrics_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
