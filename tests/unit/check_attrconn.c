/*
 * check_attrconn.c - unit tests for lib/attrconn: records split across
 * reads, several records in one read, a record over the cap, bad framing,
 * end of stream, the deadline, the write queue, and a connection freed
 * from inside its own callback. Each test drives lib/event over a
 * socketpair.
 */
#include <sys/socket.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <check.h>

#include "attr.h"
#include "attrconn.h"
#include "event.h"
#include "vbuf.h"

struct seen {
	int			 records;
	char			 values[256];	/* "v1,v2,..." */
	int			 errors;
	enum attrconn_err	 err;
	int			 free_on_record;
	struct attrconn		*c;
};

static Suite	*attrconn_suite(void);
static void	 on_record(struct attrconn *, const struct attr_list *,
		    void *);
static void	 on_error(struct attrconn *, enum attrconn_err, const char *,
		    void *);
static struct attrconn *setup(int[2], size_t, struct seen *);
static void	 run_until(struct seen *, int, int, int64_t);
static void	 put(int, const struct vbuf *, size_t, size_t);

static void
on_record(struct attrconn *c, const struct attr_list *l, void *arg)
{
	struct seen *s = arg;
	const char *v = attr_get(l, "v");
	size_t len = strlen(s->values);

	s->records++;
	snprintf(s->values + len, sizeof(s->values) - len, "%s%s",
	    len > 0 ? "," : "", v != NULL ? v : "?");
	if (s->free_on_record) {
		attrconn_free(c);
		s->c = NULL;
	}
}

static void
on_error(struct attrconn *c, enum attrconn_err err, const char *why,
    void *arg)
{
	struct seen *s = arg;

	ck_assert_ptr_nonnull(why);
	s->errors++;
	s->err = err;
	attrconn_free(c);
	s->c = NULL;
}

static struct attrconn *
setup(int sv[2], size_t cap, struct seen *s)
{
	memset(s, 0, sizeof(*s));
	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0,
	    sv), 0);
	ev_init();
	s->c = attrconn_create(sv[0], cap, on_record, on_error, s);
	return s->c;
}

/* Runs the loop until records and errors are reached or ms pass. */
static void
run_until(struct seen *s, int records, int errors, int64_t ms)
{
	int64_t end = ev_now_ms() + ms;

	while ((s->records < records || s->errors < errors) &&
	    ev_now_ms() < end)
		(void)ev_run_once(10);
}

/* Writes bytes [from, to) of b to fd. */
static void
put(int fd, const struct vbuf *b, size_t from, size_t to)
{
	ck_assert_int_eq(write(fd, b->data + from, to - from),
	    (ssize_t)(to - from));
}

START_TEST(test_partial_and_pipelined)
{
	struct vbuf *b = vbuf_create(0);
	struct seen s;
	int sv[2];
	size_t half;

	setup(sv, 1024, &s);
	attr_put_str(b, "v", "one");
	attr_end(b);
	half = b->len;
	attr_put_str(b, "v", "two");
	attr_end(b);
	attr_put_str(b, "v", "three");
	attr_end(b);
	/* The first record in two pieces: nothing until it is whole. */
	put(sv[1], b, 0, 3);
	run_until(&s, 1, 0, 50);
	ck_assert_int_eq(s.records, 0);
	ck_assert_uint_eq(attrconn_pending(s.c), 3);
	put(sv[1], b, 3, half + 2);
	run_until(&s, 1, 0, 1000);
	ck_assert_int_eq(s.records, 1);
	ck_assert_uint_eq(attrconn_pending(s.c), 2);
	/* The rest of the second and all of the third in one write. */
	put(sv[1], b, half + 2, b->len);
	run_until(&s, 3, 0, 1000);
	ck_assert_int_eq(s.records, 3);
	ck_assert_str_eq(s.values, "one,two,three");
	ck_assert_uint_eq(attrconn_pending(s.c), 0);
	ck_assert_int_eq(s.errors, 0);
	attrconn_free(s.c);
	close(sv[1]);
	vbuf_free(b);
}
END_TEST

START_TEST(test_oversize)
{
	struct vbuf *b = vbuf_create(0);
	char big[200];
	struct seen s;
	int sv[2];

	setup(sv, 64, &s);
	memset(big, 'x', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	attr_put_str(b, "v", big);
	attr_end(b);
	put(sv[1], b, 0, b->len);
	run_until(&s, 1, 1, 1000);
	ck_assert_int_eq(s.records, 0);
	ck_assert_int_eq(s.errors, 1);
	ck_assert_int_eq(s.err, ATTRCONN_TOOBIG);
	close(sv[1]);
	vbuf_free(b);
}
END_TEST

START_TEST(test_bad_framing)
{
	struct vbuf *b = vbuf_create(0);
	char name[100];
	struct seen s;
	int sv[2];

	setup(sv, 4096, &s);
	memset(name, 'n', sizeof(name) - 1);
	name[sizeof(name) - 1] = '\0';
	attr_put_str(b, name, "v");
	attr_end(b);
	put(sv[1], b, 0, b->len);
	run_until(&s, 1, 1, 1000);
	ck_assert_int_eq(s.errors, 1);
	ck_assert_int_eq(s.err, ATTRCONN_PROTO);
	close(sv[1]);
	vbuf_free(b);
}
END_TEST

START_TEST(test_eof)
{
	struct seen s;
	int sv[2];

	setup(sv, 4096, &s);
	close(sv[1]);
	run_until(&s, 0, 1, 1000);
	ck_assert_int_eq(s.errors, 1);
	ck_assert_int_eq(s.err, ATTRCONN_EOF);
}
END_TEST

START_TEST(test_deadline)
{
	struct vbuf *b = vbuf_create(0);
	struct seen s;
	int sv[2];
	int64_t start;

	setup(sv, 4096, &s);
	/* A cleared deadline does not fire. */
	attrconn_deadline(s.c, 20);
	attrconn_deadline(s.c, -1);
	run_until(&s, 0, 1, 100);
	ck_assert_int_eq(s.errors, 0);
	/* A record does not clear it; only the owner does. */
	start = ev_now_ms();
	attrconn_deadline(s.c, 100);
	attr_put_str(b, "v", "one");
	attr_end(b);
	put(sv[1], b, 0, b->len);
	run_until(&s, 1, 1, 2000);
	ck_assert_int_eq(s.records, 1);
	ck_assert_int_eq(s.errors, 1);
	ck_assert_int_eq(s.err, ATTRCONN_TIMEOUT);
	ck_assert_int_ge(ev_now_ms() - start, 100);
	close(sv[1]);
	vbuf_free(b);
}
END_TEST

START_TEST(test_send_queue)
{
	struct vbuf *b = vbuf_create(0), *in = vbuf_create(0);
	struct attr_list l;
	struct seen s;
	char buf[65536];
	size_t used, sent = 0, i;
	ssize_t n;
	int sv[2];

	setup(sv, 4096, &s);
	/* More than the socket buffers hold: the rest waits for EV_WRITE. */
	attr_put_str(b, "v", "x");
	attr_end(b);
	for (i = 0; i < 200000; i++) {
		ck_assert_int_eq(attrconn_send(s.c, b), 0);
		sent += b->len;
	}
	while (in->len < sent) {
		(void)ev_run_once(10);
		while ((n = read(sv[1], buf, sizeof(buf))) > 0)
			ck_assert_int_eq(vbuf_add(in, buf, (size_t)n), 0);
	}
	ck_assert_uint_eq(in->len, sent);
	attr_list_init(&l);
	ck_assert_int_eq(attr_decode(&l, in->data, in->len, &used, NULL), 1);
	ck_assert_str_eq(attr_get(&l, "v"), "x");
	/* A broken connection is reported to the sender. */
	close(sv[1]);
	ck_assert_int_eq(attrconn_send(s.c, b), -1);
	attrconn_free(s.c);
	attr_list_release(&l);
	vbuf_free(b);
	vbuf_free(in);
}
END_TEST

START_TEST(test_free_in_callback)
{
	struct vbuf *b = vbuf_create(0);
	struct seen s;
	int sv[2];

	setup(sv, 4096, &s);
	s.free_on_record = 1;
	attr_put_str(b, "v", "one");
	attr_end(b);
	attr_put_str(b, "v", "two");
	attr_end(b);
	put(sv[1], b, 0, b->len);
	run_until(&s, 2, 0, 200);
	/* Freed at the first record: the second is never delivered. */
	ck_assert_int_eq(s.records, 1);
	ck_assert_int_eq(s.errors, 0);
	ck_assert_int_eq(fcntl(sv[0], F_GETFD), -1);
	ck_assert_int_eq(errno, EBADF);
	close(sv[1]);
	vbuf_free(b);
}
END_TEST

static Suite *
attrconn_suite(void)
{
	Suite *s;
	TCase *tc;

	s = suite_create("attrconn");
	tc = tcase_create("conn");
	tcase_set_timeout(tc, 10);
	tcase_add_test(tc, test_partial_and_pipelined);
	tcase_add_test(tc, test_oversize);
	tcase_add_test(tc, test_bad_framing);
	tcase_add_test(tc, test_eof);
	tcase_add_test(tc, test_deadline);
	tcase_add_test(tc, test_send_queue);
	tcase_add_test(tc, test_free_in_callback);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr;
	int nfailed;

	sr = srunner_create(attrconn_suite());
	srunner_run_all(sr, CK_NORMAL);
	nfailed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return nfailed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
