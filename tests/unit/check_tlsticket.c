/*
 * check_tlsticket.c - unit tests for lib/tlsticket: the shared ticket
 * keys' rotation (current, previous, forgotten), that what a reader is
 * handed cannot be written through, that attach refuses objects it
 * could write or does not know, and that readers never see a torn copy
 * while another process rotates.
 */
#include <sys/mman.h>
#include <sys/wait.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <check.h>

#include "tlsticket.h"
#include "vbuf.h"

#define ROTATIONS	20000

static Suite	*tlsticket_suite(void);

START_TEST(test_rotate)
{
	struct vbuf *why = vbuf_create(0);
	struct tlsticket *w, *r;
	struct tlsticket_keys k0, k1, k2;

	w = tlsticket_create(why);
	ck_assert_msg(w != NULL, "%s", why->data);
	r = tlsticket_attach(tlsticket_fd(w), why);
	ck_assert_msg(r != NULL, "%s", why->data);

	ck_assert_int_eq(tlsticket_read(r, &k0), 0);
	ck_assert_uint_eq(k0.generation, 0);
	ck_assert_int_eq(k0.has_previous, 0);

	/* The current key becomes the previous one. */
	ck_assert_int_eq(tlsticket_rotate(w, why), 0);
	ck_assert_int_eq(tlsticket_read(r, &k1), 0);
	ck_assert_uint_eq(k1.generation, 1);
	ck_assert_int_eq(k1.has_previous, 1);
	ck_assert_mem_eq(&k1.previous, &k0.current, sizeof(k0.current));
	ck_assert_mem_ne(k1.current.name, k0.current.name, TLSTICKET_NAME_LEN);
	ck_assert_mem_ne(k1.current.aes, k0.current.aes, TLSTICKET_AES_LEN);

	/* Two rotations on, the first key is gone. */
	ck_assert_int_eq(tlsticket_rotate(w, why), 0);
	ck_assert_int_eq(tlsticket_read(r, &k2), 0);
	ck_assert_uint_eq(k2.generation, 2);
	ck_assert_mem_eq(&k2.previous, &k1.current, sizeof(k1.current));
	ck_assert_mem_ne(k2.current.name, k0.current.name, TLSTICKET_NAME_LEN);
	ck_assert_mem_ne(k2.previous.name, k0.current.name,
	    TLSTICKET_NAME_LEN);

	/* A reader cannot rotate. */
	ck_assert_int_eq(tlsticket_rotate(r, why), -1);
	tlsticket_free(r);
	tlsticket_free(w);
	tlsticket_free(NULL);
	vbuf_free(why);
}
END_TEST

/* Nothing reachable through the descriptor smtpd gets can write. */
START_TEST(test_read_only)
{
	struct vbuf *why = vbuf_create(0);
	struct tlsticket *w;
	unsigned char byte = 0;
	void *p;
	int fd, fd2;
	char path[64];

	w = tlsticket_create(why);
	ck_assert_msg(w != NULL, "%s", why->data);
	fd = tlsticket_fd(w);

	p = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	ck_assert_msg(p == MAP_FAILED, "a writable shared mapping was made");
	ck_assert_int_eq(pwrite(fd, &byte, 1, 0), -1);
	ck_assert_int_eq(ftruncate(fd, 0), -1);
	ck_assert_int_eq(ftruncate(fd, 1 << 20), -1);
	ck_assert_int_eq(fcntl(fd, F_ADD_SEALS, F_SEAL_WRITE), -1);

	/* A read-only mapping cannot be made writable afterwards. */
	p = mmap(NULL, 4096, PROT_READ, MAP_SHARED, fd, 0);
	ck_assert_ptr_ne(p, MAP_FAILED);
	ck_assert_int_eq(mprotect(p, 4096, PROT_READ | PROT_WRITE), -1);
	munmap(p, 4096);

	/* Nor through the object reopened by its /proc path. */
	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	fd2 = open(path, O_RDWR);
	if (fd2 != -1) {
		ck_assert_int_eq(pwrite(fd2, &byte, 1, 0), -1);
		p = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd2,
		    0);
		ck_assert(p == MAP_FAILED);
		close(fd2);
	}
	tlsticket_free(w);
	vbuf_free(why);
}
END_TEST

START_TEST(test_attach_refuses)
{
	struct vbuf *why = vbuf_create(0);
	struct tlsticket *w;
	int fd;

	/* Writable: the right size but no seals. */
	w = tlsticket_create(why);
	ck_assert_ptr_nonnull(w);
	fd = memfd_create("t", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	ck_assert_int_ne(fd, -1);
	ck_assert_int_eq(ftruncate(fd, lseek(tlsticket_fd(w), 0, SEEK_END)),
	    0);
	ck_assert_ptr_null(tlsticket_attach(fd, why));
	ck_assert_ptr_nonnull(strstr(why->data, "not sealed"));
	close(fd);

	/* Not our layout: wrong size. */
	fd = memfd_create("t", MFD_CLOEXEC);
	ck_assert_int_eq(ftruncate(fd, 10), 0);
	ck_assert_ptr_null(tlsticket_attach(fd, why));
	ck_assert_ptr_nonnull(strstr(why->data, "size"));
	close(fd);

	/* Not open at all. */
	ck_assert_ptr_null(tlsticket_attach(1000, why));
	tlsticket_free(w);
	vbuf_free(why);
}
END_TEST

/*
 * A child rotates as fast as it can while this process reads: every copy
 * must be one the writer made whole. Each generation's current key is
 * seen the same every time, and the previous key of generation g is the
 * current key of g - 1.
 */
START_TEST(test_concurrent_reads)
{
	struct vbuf *why = vbuf_create(0);
	struct tlsticket *w, *r;
	struct tlsticket_keys k;
	struct tlsticket_key *cur;
	unsigned char *seen;
	uint64_t last = 0;
	size_t reads = 0;
	pid_t pid;
	int status;

	w = tlsticket_create(why);
	ck_assert_ptr_nonnull(w);
	r = tlsticket_attach(tlsticket_fd(w), why);
	ck_assert_ptr_nonnull(r);
	cur = calloc(ROTATIONS + 1, sizeof(*cur));
	seen = calloc(ROTATIONS + 1, 1);
	ck_assert(cur != NULL && seen != NULL);

	pid = fork();
	ck_assert_int_ne(pid, -1);
	if (pid == 0) {
		for (int i = 0; i < ROTATIONS; i++)
			if (tlsticket_rotate(w, why) == -1)
				_exit(1);
		_exit(0);
	}
	for (;;) {
		int done = waitpid(pid, &status, WNOHANG) == pid;

		ck_assert_int_eq(tlsticket_read(r, &k), 0);
		reads++;
		ck_assert_uint_le(k.generation, ROTATIONS);
		ck_assert_uint_ge(k.generation, last);
		last = k.generation;
		if (seen[k.generation])
			ck_assert_mem_eq(&cur[k.generation], &k.current,
			    sizeof(k.current));
		cur[k.generation] = k.current;
		seen[k.generation] = 1;
		if (k.generation > 0 && seen[k.generation - 1])
			ck_assert_mem_eq(&cur[k.generation - 1], &k.previous,
			    sizeof(k.previous));
		if (done)
			break;
	}
	ck_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	ck_assert_uint_eq(last, ROTATIONS);
	ck_assert_uint_gt(reads, 1);
	free(cur);
	free(seen);
	tlsticket_free(r);
	tlsticket_free(w);
	vbuf_free(why);
}
END_TEST

static Suite *
tlsticket_suite(void)
{
	Suite *s = suite_create("tlsticket");
	TCase *tc = tcase_create("tlsticket");

	tcase_add_test(tc, test_rotate);
	tcase_add_test(tc, test_read_only);
	tcase_add_test(tc, test_attach_refuses);
	tcase_add_test(tc, test_concurrent_reads);
	tcase_set_timeout(tc, 60);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(tlsticket_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
