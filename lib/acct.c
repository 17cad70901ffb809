/*
 * acct.c - JSON accounting log writer (see acct.h).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "acct.h"
#include "json.h"
#include "log.h"
#include "metrics.h"
#include "vbuf.h"
#include "xalloc.h"

static int acct_fd = -1;
static struct vbuf *acct_buf;
static struct vbuf *acct_held;	/* non-NULL while held */
static char *acct_path;		/* for acct_reopen() */

int
acct_open(const char *path)
{
	if (acct_fd != -1) {
		close(acct_fd);
		acct_fd = -1;
	}
	free(acct_path);
	acct_path = NULL;
	if (path == NULL)
		return 0;
	acct_fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
	if (acct_fd == -1)
		return -1;
	acct_path = xstrdup(path);
	return 0;
}

int
acct_reopen(void)
{
	int fd;

	if (acct_fd == -1 || acct_path == NULL)
		return 0;
	fd = open(acct_path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
	if (fd == -1)
		return -1;
	/* Events held for a transaction go to the new file on release. */
	close(acct_fd);
	acct_fd = fd;
	return 0;
}

int
acct_enabled(void)
{
	return acct_fd != -1;
}

void
acct_event(const struct outbox_event *ev)
{
	struct json j;
	ssize_t n;

	/* The counters see every event, held like its line (metrics.h). */
	metrics_event(ev);
	if (acct_fd == -1)
		return;
	if (acct_buf == NULL)
		acct_buf = vbuf_create(0);
	vbuf_reset(acct_buf);
	json_init(&j, acct_buf);
	outbox_json(&j, ev);
	(void)vbuf_addc(acct_buf, '\n');
	if (acct_held != NULL) {
		(void)vbuf_add(acct_held, acct_buf->data, acct_buf->len);
		return;
	}
	n = write(acct_fd, acct_buf->data, acct_buf->len);
	if (n == -1)
		log_warn("accounting log: write: %m");
	else if (n != (ssize_t)acct_buf->len)
		log_warn("accounting log: short write");
}

void
acct_hold(void)
{
	metrics_hold();
	if (acct_held == NULL)
		acct_held = vbuf_create(0);
}

void
acct_release(int commit)
{
	ssize_t n;

	metrics_release(commit);
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
