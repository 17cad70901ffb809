/*
 * httpsink.c - an HTTP/1.1 endpoint that accepts every POST and does
 * nothing else, for measuring webhookd (issue 10) without measuring a
 * web framework: bench.py points one webhook endpoint at it and reads
 * how many events arrived.
 *
 * usage: httpsink [-s STATUS] PORT COUNTFILE
 *
 * Listens on 127.0.0.1:PORT, answers each request with STATUS (default
 * 200) and an empty body, keeps connections alive, and rewrites
 * COUNTFILE with the number of requests answered about ten times a
 * second (and at exit on SIGTERM or SIGINT). Requests carry their body
 * with Content-Length, as libcurl sends a POST; anything else closes the
 * connection. Single-threaded, epoll, bounded buffers.
 */
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/types.h>

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#define SINK_BUF	(256 * 1024)	/* one request's head and body */
#define SINK_EVENTS	64

struct conn {
	int	 fd;
	size_t	 len;
	char	 buf[SINK_BUF];
};

static volatile sig_atomic_t sink_stop;
static unsigned long sink_requests;
static const char *sink_countfile;
static char sink_reply[128];
static size_t sink_reply_len;

static void	sink_on_signal(int);
static void	sink_write_count(void);
static int	sink_listen(int);
static void	sink_accept(int, int);
static int	sink_serve(struct conn *);
static void	sink_close(int, struct conn *);

static void
sink_on_signal(int sig)
{
	(void)sig;
	sink_stop = 1;
}

/* Replaced by rename, so a reader never sees a half-written number. */
static void
sink_write_count(void)
{
	char tmp[4096];
	FILE *f;

	snprintf(tmp, sizeof(tmp), "%s.tmp", sink_countfile);
	if ((f = fopen(tmp, "w")) == NULL)
		return;
	fprintf(f, "%lu\n", sink_requests);
	if (fclose(f) == 0)
		(void)rename(tmp, sink_countfile);
}

static int
sink_listen(int port)
{
	struct sockaddr_in sin;
	int fd, one = 1;

	if ((fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0)) == -1)
		return -1;
	(void)setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_port = htons((unsigned short)port);
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (bind(fd, (struct sockaddr *)&sin, sizeof(sin)) == -1 ||
	    listen(fd, 512) == -1) {
		close(fd);
		return -1;
	}
	return fd;
}

static void
sink_accept(int ep, int lfd)
{
	struct epoll_event ev;
	struct conn *c;
	int fd, one = 1;

	while ((fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK)) != -1) {
		(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one,
		    sizeof(one));
		if ((c = calloc(1, sizeof(*c))) == NULL) {
			close(fd);
			continue;
		}
		c->fd = fd;
		ev.events = EPOLLIN;
		ev.data.ptr = c;
		if (epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) == -1) {
			close(fd);
			free(c);
		}
	}
}

/*
 * Reads what has arrived and answers every complete request in it.
 * Returns 0 to keep the connection, -1 to close it.
 */
static int
sink_serve(struct conn *c)
{
	ssize_t n;
	char *end, *cl;
	size_t head, body, need;

	for (;;) {
		if (c->len == sizeof(c->buf) - 1)
			return -1;
		n = read(c->fd, c->buf + c->len, sizeof(c->buf) - 1 - c->len);
		if (n == 0)
			return -1;
		if (n == -1)
			break;
		c->len += (size_t)n;
	}
	if (errno != EAGAIN && errno != EWOULDBLOCK)
		return -1;
	for (;;) {
		c->buf[c->len] = '\0';
		if ((end = strstr(c->buf, "\r\n\r\n")) == NULL)
			return 0;
		head = (size_t)(end - c->buf) + 4;
		body = 0;
		if ((cl = strcasestr(c->buf, "\r\nContent-Length:")) != NULL &&
		    cl < end)
			body = strtoul(cl + 17, NULL, 10);
		if (body > sizeof(c->buf) - 1 - head)
			return -1;
		need = head + body;
		if (c->len < need)
			return 0;
		if (write(c->fd, sink_reply, sink_reply_len) !=
		    (ssize_t)sink_reply_len)
			return -1;
		sink_requests++;
		memmove(c->buf, c->buf + need, c->len - need);
		c->len -= need;
	}
}

static void
sink_close(int ep, struct conn *c)
{
	(void)epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
	close(c->fd);
	free(c);
}

int
main(int argc, char *argv[])
{
	struct epoll_event evs[SINK_EVENTS], ev;
	struct sigaction sa;
	struct timespec last, now;
	int ch, port, status = 200, lfd, ep, n, i;

	while ((ch = getopt(argc, argv, "s:")) != -1) {
		switch (ch) {
		case 's':
			status = atoi(optarg);
			break;
		default:
			goto usage;
		}
	}
	if (argc - optind != 2 || (port = atoi(argv[optind])) <= 0 ||
	    port > 65535 || status < 100 || status > 599)
		goto usage;
	sink_countfile = argv[optind + 1];
	sink_reply_len = (size_t)snprintf(sink_reply, sizeof(sink_reply),
	    "HTTP/1.1 %d Sink\r\nContent-Length: 0\r\n\r\n", status);
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = sink_on_signal;
	(void)sigaction(SIGTERM, &sa, NULL);
	(void)sigaction(SIGINT, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	if ((lfd = sink_listen(port)) == -1) {
		fprintf(stderr, "httpsink: listen 127.0.0.1:%d: %s\n", port,
		    strerror(errno));
		return 1;
	}
	if ((ep = epoll_create1(0)) == -1)
		return 1;
	ev.events = EPOLLIN;
	ev.data.ptr = NULL;
	if (epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &ev) == -1)
		return 1;
	sink_write_count();
	clock_gettime(CLOCK_MONOTONIC, &last);
	while (!sink_stop) {
		n = epoll_wait(ep, evs, SINK_EVENTS, 100);
		for (i = 0; i < n; i++) {
			if (evs[i].data.ptr == NULL)
				sink_accept(ep, lfd);
			else if (sink_serve(evs[i].data.ptr) == -1)
				sink_close(ep, evs[i].data.ptr);
		}
		clock_gettime(CLOCK_MONOTONIC, &now);
		if ((now.tv_sec - last.tv_sec) * 1000 +
		    (now.tv_nsec - last.tv_nsec) / 1000000 >= 100) {
			sink_write_count();
			last = now;
		}
	}
	sink_write_count();
	return 0;
usage:
	fprintf(stderr, "usage: httpsink [-s STATUS] PORT COUNTFILE\n");
	return 2;
}
