/*
 * qid.c - queue ids (see qid.h).
 *
 * The random part comes from OpenSSL so two processes creating a message in
 * the same microsecond still differ; the file system create (O_EXCL) is the
 * final guard against a collision.
 */
#include <sys/time.h>

#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <openssl/rand.h>

#include "log.h"
#include "qid.h"

void
qid_new(char buf[QID_SIZE], int64_t *sec, int32_t *usec)
{
	static struct timeval last;
	struct timeval tv;
	unsigned char r[1];
	int n;

	/*
	 * One id per microsecond per process: the last three digits only
	 * tell processes apart (random bits would collide by the birthday
	 * bound if one process made several ids in the same microsecond).
	 * The first of them is the process's own (pid & 15), so that the
	 * queue store can give each process its directory (qstore_hash) and
	 * several smtpd processes do not queue on one directory's lock; two
	 * processes that share it differ by the last two, 8 random bits, in
	 * the same microsecond, and the exclusive create (or link) of the
	 * file is the final guard: a taken id is drawn again.
	 */
	do {
		gettimeofday(&tv, NULL);
	} while (tv.tv_sec == last.tv_sec && tv.tv_usec == last.tv_usec);
	last = tv;
	if (RAND_bytes(r, sizeof(r)) != 1)
		log_fatal("qid_new: RAND_bytes failed");
	n = snprintf(buf, QID_SIZE, "%08llX%05lX%03X",
	    (unsigned long long)tv.tv_sec & 0xffffffffULL,
	    (unsigned long)tv.tv_usec & 0xfffffUL,
	    ((unsigned)getpid() & 0xfU) << 8 | (unsigned)r[0]);
	ASSERT(n == QID_LEN);
	*sec = tv.tv_sec;
	*usec = (int32_t)tv.tv_usec;
}

char
qid_proc_digit(void)
{
	return "0123456789ABCDEF"[(unsigned)getpid() & 0xfU];
}

int
qid_ok(const char *s)
{
	size_t i;

	if (s == NULL)
		return 0;
	for (i = 0; i < QID_LEN; i++)
		if (!((s[i] >= '0' && s[i] <= '9') ||
		    (s[i] >= 'A' && s[i] <= 'F')))
			return 0;
	return s[QID_LEN] == '\0';
}
