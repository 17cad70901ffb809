/*
 * acct.c - JSON accounting log writer (see acct.h).
 */
#include <sys/time.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <time.h>
#include <unistd.h>

#include "acct.h"
#include "log.h"
#include "vbuf.h"

static int acct_fd = -1;
static struct vbuf *acct_buf;
static struct vbuf *acct_held;	/* non-NULL while held */

int
acct_open(const char *path)
{
	if (acct_fd != -1) {
		close(acct_fd);
		acct_fd = -1;
	}
	if (path == NULL)
		return 0;
	acct_fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
	return acct_fd == -1 ? -1 : 0;
}

int
acct_enabled(void)
{
	return acct_fd != -1;
}

void
acct_begin(struct json *j, const char *event, const char *qid)
{
	struct timeval tv;
	struct tm tm;
	char ts[64];

	if (acct_buf == NULL)
		acct_buf = vbuf_create(0);
	vbuf_reset(acct_buf);
	gettimeofday(&tv, NULL);
	gmtime_r(&tv.tv_sec, &tm);
	snprintf(ts, sizeof(ts), "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ",
	    tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
	    tm.tm_min, tm.tm_sec, (long)tv.tv_usec / 1000);
	json_init(j, acct_buf);
	json_object_begin(j);
	json_kv_str(j, "time", ts);
	json_kv_str(j, "event", event);
	json_kv_str(j, "queue_id", qid);
}

void
acct_emit(struct json *j)
{
	ssize_t n;

	json_object_end(j);
	(void)vbuf_addc(j->out, '\n');
	if (acct_fd == -1)
		return;
	if (acct_held != NULL) {
		(void)vbuf_add(acct_held, j->out->data, j->out->len);
		return;
	}
	n = write(acct_fd, j->out->data, j->out->len);
	if (n == -1)
		log_warn("accounting log: write: %m");
	else if (n != (ssize_t)j->out->len)
		log_warn("accounting log: short write");
}

void
acct_hold(void)
{
	if (acct_held == NULL)
		acct_held = vbuf_create(0);
}

void
acct_release(int commit)
{
	ssize_t n;

	if (acct_held == NULL)
		return;
	if (commit && acct_fd != -1 && acct_held->len > 0) {
		n = write(acct_fd, acct_held->data, acct_held->len);
		if (n == -1)
			log_warn("accounting log: write: %m");
		else if (n != (ssize_t)acct_held->len)
			log_warn("accounting log: short write");
	}
	vbuf_free(acct_held);
	acct_held = NULL;
}
