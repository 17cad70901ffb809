/*
 * mailconn.c - connecting to private/<name> service sockets (see
 * mailconn.h).
 */
#include <sys/socket.h>
#include <sys/un.h>

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "mailconn.h"

int
mail_connect(const char *queue_dir, const char *name, struct vbuf *why)
{
	struct sockaddr_un sun;
	int fd;

	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	if (snprintf(sun.sun_path, sizeof(sun.sun_path), "%s/private/%s",
	    queue_dir, name) >= (int)sizeof(sun.sun_path)) {
		if (why != NULL)
			vbuf_setf(why, "connect to %s/private/%s: path too "
			    "long for a socket", queue_dir, name);
		return -1;
	}
	if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC,
	    0)) == -1) {
		if (why != NULL)
			vbuf_setf(why, "socket: %s", strerror(errno));
		return -1;
	}
	/* Non-blocking: a full backlog fails at once (EAGAIN), never waits. */
	if (connect(fd, (struct sockaddr *)&sun, sizeof(sun)) == -1) {
		if (why != NULL)
			vbuf_setf(why, "connect to %s: %s", sun.sun_path,
			    strerror(errno));
		close(fd);
		return -1;
	}
	return fd;
}
