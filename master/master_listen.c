/*
 * master_listen.c - master's listening sockets: TCP listeners from the
 * configuration and UNIX sockets under <queue_directory>/private/.
 */
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

#include <errno.h>
#include <netdb.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "master.h"

#define MASTER_BACKLOG	511

int
master_listen_tcp(const struct cfg_listener *l, struct vbuf *why)
{
	struct addrinfo hints, *res;
	const char *host = strcmp(l->host, "*") == 0 ? NULL : l->host;
	int fd, on = 1, rc;

	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_PASSIVE | AI_NUMERICHOST | AI_NUMERICSERV;
	if ((rc = getaddrinfo(host, l->port, &hints, &res)) != 0) {
		vbuf_setf(why, "listener %s: %s: %s", l->name, l->address,
		    gai_strerror(rc));
		return -1;
	}
	fd = socket(res->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd == -1) {
		vbuf_setf(why, "listener %s: socket: %s", l->name,
		    strerror(errno));
		freeaddrinfo(res);
		return -1;
	}
	(void)setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on));
	if (bind(fd, res->ai_addr, res->ai_addrlen) == -1 ||
	    listen(fd, MASTER_BACKLOG) == -1) {
		vbuf_setf(why, "listener %s: bind %s: %s", l->name, l->address,
		    strerror(errno));
		close(fd);
		freeaddrinfo(res);
		return -1;
	}
	freeaddrinfo(res);
	return fd;
}

int
master_listen_unix(const char *qdir, const char *name, uid_t uid, gid_t gid,
    struct vbuf *why)
{
	struct sockaddr_un sun;
	int fd;

	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	if (snprintf(sun.sun_path, sizeof(sun.sun_path), "%s/private/%s",
	    qdir, name) >= (int)sizeof(sun.sun_path)) {
		vbuf_setf(why, "%s/private/%s: path too long for a socket",
		    qdir, name);
		return -1;
	}
	(void)unlink(sun.sun_path);
	if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) == -1 ||
	    bind(fd, (struct sockaddr *)&sun, sizeof(sun)) == -1 ||
	    chown(sun.sun_path, uid, gid) == -1 ||
	    chmod(sun.sun_path, 0600) == -1 ||
	    listen(fd, MASTER_BACKLOG) == -1) {
		vbuf_setf(why, "socket %s: %s", sun.sun_path, strerror(errno));
		if (fd != -1)
			close(fd);
		return -1;
	}
	return fd;
}
