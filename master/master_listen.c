/*
 * master_listen.c - master's listening sockets: TCP listeners from the
 * configuration, UNIX sockets under <queue_directory>/private/ and the
 * local submission socket under <queue_directory>/public/.
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
#include "mailproto.h"
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

static int master_listen_path(const char *, const char *, const char *,
    uid_t, gid_t, mode_t, struct vbuf *);

int
master_listen_unix(const char *qdir, const char *name, uid_t uid, gid_t gid,
    struct vbuf *why)
{
	return master_listen_path(qdir, MAIL_DIR_PRIVATE, name, uid, gid,
	    0600, why);
}

int
master_listen_public(const char *qdir, const char *name, uid_t uid,
    gid_t gid, struct vbuf *why)
{
	char dir[sizeof(((struct sockaddr_un *)0)->sun_path)];

	/*
	 * Not world-writable: local users may connect, never create files
	 * (Postfix's maildrop is group-writable through postdrop; here no
	 * file is ever written by a local user).
	 */
	if (snprintf(dir, sizeof(dir), "%s/%s", qdir, MAIL_DIR_PUBLIC) >=
	    (int)sizeof(dir)) {
		vbuf_setf(why, "%s/%s: path too long for a socket", qdir,
		    MAIL_DIR_PUBLIC);
		return -1;
	}
	if ((mkdir(dir, 0755) == -1 && errno != EEXIST) ||
	    chown(dir, uid, gid) == -1 || chmod(dir, 0755) == -1) {
		vbuf_setf(why, "%s: %s", dir, strerror(errno));
		return -1;
	}
	return master_listen_path(qdir, MAIL_DIR_PUBLIC, name, uid, gid,
	    0666, why);
}

static int
master_listen_path(const char *qdir, const char *sub, const char *name,
    uid_t uid, gid_t gid, mode_t mode, struct vbuf *why)
{
	struct sockaddr_un sun;
	int fd;

	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	if (snprintf(sun.sun_path, sizeof(sun.sun_path), "%s/%s/%s",
	    qdir, sub, name) >= (int)sizeof(sun.sun_path)) {
		vbuf_setf(why, "%s/%s/%s: path too long for a socket",
		    qdir, sub, name);
		return -1;
	}
	(void)unlink(sun.sun_path);
	if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) == -1 ||
	    bind(fd, (struct sockaddr *)&sun, sizeof(sun)) == -1 ||
	    chown(sun.sun_path, uid, gid) == -1 ||
	    chmod(sun.sun_path, mode) == -1 ||
	    listen(fd, MASTER_BACKLOG) == -1) {
		vbuf_setf(why, "socket %s: %s", sun.sun_path, strerror(errno));
		if (fd != -1)
			close(fd);
		return -1;
	}
	return fd;
}
