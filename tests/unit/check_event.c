/*
 * check_event.c - unit tests for lib/event: fd callbacks on pipes, removal
 * from inside callbacks, timers and their order, signal interruption.
 */
#include <sys/time.h>

#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <check.h>

#include "event.h"

#define LOG_MAX	16

struct fd_log {
	int	 n;
	int	 fd[LOG_MAX];
	int	 events[LOG_MAX];
	void	*arg[LOG_MAX];
	int	 del_fd;		/* fd the callback removes, or -1 */
};

static Suite	*event_suite(void);
static void	 sleep_ms(long);
static void	 make_pipe(int[2]);
static void	 fd_cb(int, int, void *);
static void	 timer_cb(void *);
static void	 timer_del_cb(void *);
static void	 timer_rearm_cb(void *);
static void	 on_alarm(int);

/* Timer callbacks append their tag here. */
static char timer_order[64];
static size_t timer_norder;
static uint64_t timer_victim;

static void
sleep_ms(long ms)
{
	struct timespec ts;

	ts.tv_sec = ms / 1000;
	ts.tv_nsec = (ms % 1000) * 1000000L;
	while (nanosleep(&ts, &ts) == -1 && errno == EINTR)
		;
}

static void
make_pipe(int p[2])
{
	ck_assert_int_eq(pipe(p), 0);
}

static void
fd_cb(int fd, int events, void *arg)
{
	struct fd_log *log = arg;

	ck_assert_int_lt(log->n, LOG_MAX);
	log->fd[log->n] = fd;
	log->events[log->n] = events;
	log->arg[log->n] = arg;
	log->n++;
	if (log->del_fd != -1)
		ev_fd_del(log->del_fd);
}

static void
timer_cb(void *arg)
{
	if (timer_norder < sizeof(timer_order) - 1)
		timer_order[timer_norder++] = *(const char *)arg;
	timer_order[timer_norder] = '\0';
}

/* Records itself, then removes the timer in timer_victim. */
static void
timer_del_cb(void *arg)
{
	timer_cb(arg);
	ev_timer_del(timer_victim);
}

/* Records itself and arms a follow-up timer tagged 'R'. */
static void
timer_rearm_cb(void *arg)
{
	static const char r = 'R';

	timer_cb(arg);
	(void)ev_timer_add(0, timer_cb, (void *)&r);
}

static void
on_alarm(int sig)
{
	(void)sig;
}

START_TEST(test_now_ms)
{
	int64_t a, b;

	a = ev_now_ms();
	ck_assert_int_gt(a, 0);
	sleep_ms(30);
	b = ev_now_ms();
	ck_assert_int_ge(b - a, 29);
	ck_assert_int_lt(b - a, 2000);
}
END_TEST

START_TEST(test_fd_read)
{
	struct fd_log log = { .del_fd = -1 };
	int p[2], n;
	char c;

	ev_init();
	ev_init();		/* idempotent */
	make_pipe(p);
	ev_fd_set(p[0], EV_READ, fd_cb, &log);

	/* Nothing to read: waits about max_wait, runs nothing. */
	{
		int64_t t0 = ev_now_ms(), dt;

		ck_assert_int_eq(ev_run_once(50), 0);
		dt = ev_now_ms() - t0;
		ck_assert_int_ge(dt, 45);
		ck_assert_int_lt(dt, 2000);
	}
	ck_assert_int_eq(log.n, 0);

	ck_assert_int_eq(write(p[1], "x", 1), 1);
	n = ev_run_once(1000);
	ck_assert_int_eq(n, 1);
	ck_assert_int_eq(log.n, 1);
	ck_assert_int_eq(log.fd[0], p[0]);
	ck_assert_int_eq(log.events[0], EV_READ);
	ck_assert_ptr_eq(log.arg[0], &log);

	/* Level-triggered: still readable until drained. */
	ck_assert_int_eq(ev_run_once(0), 1);
	ck_assert_int_eq(log.n, 2);
	ck_assert_int_eq(read(p[0], &c, 1), 1);
	ck_assert_int_eq(ev_run_once(10), 0);
	ck_assert_int_eq(log.n, 2);

	/* EOF on the pipe is reported as readable. */
	close(p[1]);
	ck_assert_int_eq(ev_run_once(1000), 1);
	ck_assert_int_eq(log.n, 3);
	ck_assert_int_ne(log.events[2] & EV_READ, 0);

	ev_fd_del(p[0]);
	close(p[0]);
}
END_TEST

START_TEST(test_fd_write_and_del)
{
	struct fd_log log = { .del_fd = -1 };
	int p[2];

	make_pipe(p);
	ev_fd_set(p[1], EV_WRITE, fd_cb, &log);
	ck_assert_int_eq(ev_run_once(1000), 1);
	ck_assert_int_eq(log.fd[0], p[1]);
	ck_assert_int_eq(log.events[0], EV_WRITE);

	/* Asking only for reads on a writable fd runs nothing. */
	ev_fd_set(p[1], EV_READ, fd_cb, &log);
	ck_assert_int_eq(ev_run_once(10), 0);

	/* Removed fds are not polled, whether by ev_fd_del or events 0. */
	ev_fd_set(p[1], EV_WRITE, fd_cb, &log);
	ev_fd_del(p[1]);
	ck_assert_int_eq(ev_run_once(10), 0);
	ev_fd_set(p[1], EV_WRITE, fd_cb, &log);
	ev_fd_set(p[1], 0, fd_cb, &log);
	ck_assert_int_eq(ev_run_once(10), 0);
	ck_assert_int_eq(log.n, 1);

	/* Deleting something never registered is harmless. */
	ev_fd_del(p[0]);
	ev_fd_del(-1);
	ev_fd_del(100000);
	close(p[0]);
	close(p[1]);
}
END_TEST

/* One callback per fd: a second ev_fd_set replaces the callback and arg. */
START_TEST(test_fd_replace)
{
	struct fd_log a = { .del_fd = -1 }, b = { .del_fd = -1 };
	int p[2];

	make_pipe(p);
	ev_fd_set(p[1], EV_WRITE, fd_cb, &a);
	ev_fd_set(p[1], EV_WRITE | EV_READ, fd_cb, &b);
	ck_assert_int_eq(ev_run_once(1000), 1);
	ck_assert_int_eq(a.n, 0);
	ck_assert_int_eq(b.n, 1);
	ck_assert_int_eq(b.events[0], EV_WRITE);
	ev_fd_del(p[1]);
	close(p[0]);
	close(p[1]);
}
END_TEST

/* A callback that removes another ready fd keeps it from running. */
START_TEST(test_fd_del_other_in_callback)
{
	struct fd_log a = { .del_fd = -1 }, b = { .del_fd = -1 };
	int p[2], q[2];

	make_pipe(p);
	make_pipe(q);
	a.del_fd = q[0];
	b.del_fd = p[0];
	ev_fd_set(p[0], EV_READ, fd_cb, &a);
	ev_fd_set(q[0], EV_READ, fd_cb, &b);
	ck_assert_int_eq(write(p[1], "x", 1), 1);
	ck_assert_int_eq(write(q[1], "y", 1), 1);
	ck_assert_int_eq(ev_run_once(1000), 1);
	ck_assert_int_eq(a.n + b.n, 1);
	ev_fd_del(p[0]);
	ev_fd_del(q[0]);
	close(p[0]);
	close(p[1]);
	close(q[0]);
	close(q[1]);
}
END_TEST

/* A callback that removes itself is not called again. */
START_TEST(test_fd_del_self)
{
	struct fd_log log = { .del_fd = -1 };
	int p[2];

	make_pipe(p);
	log.del_fd = p[1];
	ev_fd_set(p[1], EV_WRITE, fd_cb, &log);
	ck_assert_int_eq(ev_run_once(1000), 1);
	ck_assert_int_eq(ev_run_once(10), 0);
	ck_assert_int_eq(log.n, 1);
	close(p[0]);
	close(p[1]);
}
END_TEST

/* Descriptors past the initial table size work. */
START_TEST(test_fd_high)
{
	struct fd_log log = { .del_fd = -1 };
	int p[2], hi = 700;

	make_pipe(p);
	ck_assert_int_eq(dup2(p[0], hi), hi);
	ev_fd_set(hi, EV_READ, fd_cb, &log);
	ev_fd_set(p[1], EV_WRITE, fd_cb, &log);
	ck_assert_int_eq(write(p[1], "x", 1), 1);
	ck_assert_int_eq(ev_run_once(1000), 2);
	ck_assert_int_eq(log.n, 2);
	ck_assert_int_eq(log.fd[0], p[1]);	/* polled in fd order */
	ck_assert_int_eq(log.fd[1], hi);
	ck_assert_int_eq(log.events[1], EV_READ);
	ev_fd_del(hi);
	ev_fd_del(p[1]);
	close(hi);
	close(p[0]);
	close(p[1]);
}
END_TEST

START_TEST(test_timer_fires)
{
	static const char a = 'a';
	int64_t t0, dt;
	int n;

	timer_norder = 0;
	t0 = ev_now_ms();
	(void)ev_timer_add(60, timer_cb, (void *)&a);
	/* ev_run_once waits for the timer, not for max_wait. */
	n = ev_run_once(5000);
	dt = ev_now_ms() - t0;
	ck_assert_int_eq(n, 1);
	ck_assert_str_eq(timer_order, "a");
	ck_assert_int_ge(dt, 60);
	ck_assert_int_lt(dt, 2000);
	/* One-shot. */
	ck_assert_int_eq(ev_run_once(20), 0);
	ck_assert_str_eq(timer_order, "a");
}
END_TEST

START_TEST(test_timer_not_early)
{
	static const char a = 'a';

	timer_norder = 0;
	timer_order[0] = '\0';
	(void)ev_timer_add(200, timer_cb, (void *)&a);
	/* max_wait shorter than the timer: nothing runs yet. */
	ck_assert_int_eq(ev_run_once(20), 0);
	ck_assert_str_eq(timer_order, "");
	while (timer_norder == 0)
		ck_assert_int_ge(ev_run_once(-1), 0);
	ck_assert_str_eq(timer_order, "a");
}
END_TEST

/* Timers armed out of order fire by deadline, one loop pass at a time. */
START_TEST(test_timer_order)
{
	static const char tags[] = "cabed";
	static const int64_t ms[] = { 90, 10, 50, 130, 110 };
	size_t i;

	timer_norder = 0;
	for (i = 0; i < 5; i++)
		(void)ev_timer_add(ms[i], timer_cb, (void *)&tags[i]);
	while (timer_norder < 5)
		ck_assert_int_ge(ev_run_once(-1), 0);
	ck_assert_str_eq(timer_order, "abcde");
}
END_TEST

/*
 * Timers that are all overdue in one pass (the process was busy) must
 * still run in deadline order. BUG in lib/event.c ev_run_timers(): it
 * runs the first due timer in table order, and the table is not sorted
 * (ev_timer_del also swaps the last entry in), so this fails until
 * ev_run_timers picks the due timer with the smallest (when, id).
 */
START_TEST(test_timer_order_overdue)
{
	static const char tags[] = "cabed";
	static const int64_t ms[] = { 40, 10, 20, 60, 50 };
	size_t i;

	timer_norder = 0;
	for (i = 0; i < 5; i++)
		(void)ev_timer_add(ms[i], timer_cb, (void *)&tags[i]);
	sleep_ms(100);
	ck_assert_int_eq(ev_run_once(0), 5);
	ck_assert_msg(strcmp(timer_order, "abcde") == 0,
	    "BUG lib/event.c ev_run_timers: overdue timers ran as %s",
	    timer_order);
}
END_TEST

/*
 * Equal deadlines run in the order they were armed. Same BUG in
 * lib/event.c ev_run_timers() as above (swap-with-last reorders them).
 */
START_TEST(test_timer_same_deadline)
{
	static const char tags[] = "abcd";
	size_t i;

	timer_norder = 0;
	for (i = 0; i < 4; i++)
		(void)ev_timer_add(0, timer_cb, (void *)&tags[i]);
	ck_assert_int_eq(ev_run_once(0), 4);
	ck_assert_msg(strcmp(timer_order, "abcd") == 0,
	    "BUG lib/event.c ev_run_timers: equal deadlines ran as %s",
	    timer_order);
}
END_TEST

START_TEST(test_timer_del)
{
	static const char a = 'a', b = 'b', c = 'c';
	uint64_t ida, idb, idc;

	timer_norder = 0;
	ida = ev_timer_add(20, timer_cb, (void *)&a);
	idb = ev_timer_add(30, timer_cb, (void *)&b);
	idc = ev_timer_add(40, timer_cb, (void *)&c);
	ck_assert_uint_ne(ida, idb);
	ck_assert_uint_ne(idb, idc);
	ev_timer_del(idb);
	ev_timer_del(idb);		/* twice is harmless */
	ev_timer_del(0);
	ev_timer_del(UINT64_MAX);
	sleep_ms(60);
	ck_assert_int_eq(ev_run_once(0), 2);
	ck_assert_int_eq(timer_norder, 2);
	ck_assert_ptr_null(strchr(timer_order, 'b'));
	/* Deleting a timer that already fired is harmless. */
	ev_timer_del(ida);
	ck_assert_int_eq(ev_run_once(50), 0);
	ck_assert_int_eq(timer_norder, 2);
}
END_TEST

/* A timer callback can delete another timer due in the same pass. */
START_TEST(test_timer_del_in_callback)
{
	static const char a = 'a', b = 'b';
	uint64_t ida;

	timer_norder = 0;
	ida = ev_timer_add(0, timer_del_cb, (void *)&a);
	timer_victim = ev_timer_add(0, timer_del_cb, (void *)&b);
	(void)ida;
	ck_assert_int_eq(ev_run_once(0), 1);
	ck_assert_int_eq(timer_norder, 1);
	ck_assert_int_eq(ev_run_once(20), 0);
}
END_TEST

/* A timer callback can arm a new timer, which then fires. */
START_TEST(test_timer_rearm)
{
	static const char a = 'a';
	int i;

	timer_norder = 0;
	(void)ev_timer_add(10, timer_rearm_cb, (void *)&a);
	for (i = 0; i < 100 && timer_norder < 2; i++)
		ck_assert_int_ge(ev_run_once(100), 0);
	ck_assert_str_eq(timer_order, "aR");
}
END_TEST

/* Fds and timers in the same loop; the return value counts both. */
START_TEST(test_fd_and_timer)
{
	static const char a = 'a';
	struct fd_log log = { .del_fd = -1 };
	int p[2], total = 0, i;

	timer_norder = 0;
	make_pipe(p);
	ev_fd_set(p[1], EV_WRITE, fd_cb, &log);
	(void)ev_timer_add(0, timer_cb, (void *)&a);
	for (i = 0; i < 5 && (log.n == 0 || timer_norder == 0); i++)
		total += ev_run_once(100);
	ck_assert_int_eq(log.n, 1);
	ck_assert_int_eq(timer_norder, 1);
	ck_assert_int_eq(total, 2);
	ev_fd_del(p[1]);
	close(p[0]);
	close(p[1]);
}
END_TEST

/* A signal interrupts the wait: -1, so the caller can check its flags. */
START_TEST(test_signal_interrupts)
{
	struct sigaction sa;
	struct itimerval it;
	int p[2];
	int64_t t0, dt;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_alarm;
	sigemptyset(&sa.sa_mask);
	sa.sa_flags = 0;		/* no SA_RESTART */
	ck_assert_int_eq(sigaction(SIGALRM, &sa, NULL), 0);
	make_pipe(p);
	ev_fd_set(p[0], EV_READ, fd_cb, NULL);
	memset(&it, 0, sizeof(it));
	it.it_value.tv_usec = 50000;
	ck_assert_int_eq(setitimer(ITIMER_REAL, &it, NULL), 0);
	t0 = ev_now_ms();
	ck_assert_int_eq(ev_run_once(3000), -1);
	dt = ev_now_ms() - t0;
	ck_assert_int_lt(dt, 2000);
	ev_fd_del(p[0]);
	close(p[0]);
	close(p[1]);
}
END_TEST

static Suite *
event_suite(void)
{
	Suite *s;
	TCase *tc;

	s = suite_create("event");
	tc = tcase_create("fd");
	tcase_set_timeout(tc, 10);
	tcase_add_test(tc, test_now_ms);
	tcase_add_test(tc, test_fd_read);
	tcase_add_test(tc, test_fd_write_and_del);
	tcase_add_test(tc, test_fd_replace);
	tcase_add_test(tc, test_fd_del_other_in_callback);
	tcase_add_test(tc, test_fd_del_self);
	tcase_add_test(tc, test_fd_high);
	tcase_add_test(tc, test_signal_interrupts);
	suite_add_tcase(s, tc);
	tc = tcase_create("timer");
	tcase_set_timeout(tc, 10);
	tcase_add_test(tc, test_timer_fires);
	tcase_add_test(tc, test_timer_not_early);
	tcase_add_test(tc, test_timer_order);
	tcase_add_test(tc, test_timer_order_overdue);
	tcase_add_test(tc, test_timer_same_deadline);
	tcase_add_test(tc, test_timer_del);
	tcase_add_test(tc, test_timer_del_in_callback);
	tcase_add_test(tc, test_timer_rearm);
	tcase_add_test(tc, test_fd_and_timer);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr;
	int nfailed;

	sr = srunner_create(event_suite());
	srunner_run_all(sr, CK_NORMAL);
	nfailed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return nfailed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
