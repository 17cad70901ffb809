/*
 * httpsink.c - an HTTP/1.1 endpoint that accepts every POST and does
 * nothing else, for measuring webhookd (issue 10) without measuring a
 * web framework: bench.py points one webhook endpoint at it and reads
 * how many events arrived.
 *
 * usage: httpsink [-s STATUS] [-d MS] PORT COUNTFILE
 *
 * Listens on 127.0.0.1:PORT, answers each request with STATUS (default
 * 200) and an empty body, MS milliseconds after it arrived (default 0: at
 * once; -d makes a slow endpoint, each connection waiting for its own
 * reply while the others go on), keeps connections alive, and rewrites
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
	int		 fd;
	size_t		 len;
	size_t		 need;		/* bytes of the request being held */
	long long	 due_ms;	/* its reply's time; 0: none held */
	struct conn	*prev, *next;	/* every open connection */
	char		 buf[SINK_BUF];
};

static volatile sig_atomic_t sink_stop;
static unsigned long sink_requests;
static const char *sink_countfile;
static char sink_reply[128];
static size_t sink_reply_len;
static long sink_delay_ms;
static struct conn *sink_conns;

static void	sink_on_signal(int);
static void	sink_write_count(void);
static int	sink_listen(int);
static void	sink_accept(int, int);
static int	sink_serve(struct conn *);
static int	sink_answer(struct conn *);
static int	sink_send(struct conn *);
static long long sink_now_ms(void);
static int	sink_due(int);
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
			continue;
		}
		c->next = sink_conns;
		if (sink_conns != NULL)
			sink_conns->prev = c;
		sink_conns = c;
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
	return sink_answer(c);
}

static long long
sink_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Sends the reply to the request held in c and drops the request. */
static int
sink_send(struct conn *c)
{
	if (write(c->fd, sink_reply, sink_reply_len) !=
	    (ssize_t)sink_reply_len)
		return -1;
	sink_requests++;
	memmove(c->buf, c->buf + c->need, c->len - c->need);
	c->len -= c->need;
	c->need = 0;
	c->due_ms = 0;
	return 0;
}

/*
 * Answers the complete requests in c's buffer, or holds the first one
 * until its reply is due (-d). Returns 0 to keep the connection, -1 to
 * close it.
 */
static int
sink_answer(struct conn *c)
{
	char *end, *cl;
	size_t head, body;

	while (c->due_ms == 0) {
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
		c->need = head + body;
		if (c->len < c->need)
			return 0;
		if (sink_delay_ms > 0) {
			/* Held: no reply, and no next request read, till due. */
			c->due_ms = sink_now_ms() + sink_delay_ms;
			return 0;
		}
		if (sink_send(c) == -1)
			return -1;
	}
	return 0;
}

/*
 * Sends the replies that are due. Returns the milliseconds until the next
 * one (at most 100, the count file's period).
 */
static int
sink_due(int ep)
{
	struct conn *c, *next;
	long long now = sink_now_ms(), wait = 100;

	for (c = sink_conns; c != NULL; c = next) {
		next = c->next;
		if (c->due_ms == 0)
			continue;
		if (c->due_ms <= now) {
			if (sink_send(c) == -1 || sink_answer(c) == -1) {
				sink_close(ep, c);
				continue;
			}
		}
		if (c->due_ms != 0 && c->due_ms - now < wait)
			wait = c->due_ms - now < 0 ? 0 : c->due_ms - now;
	}
	return (int)wait;
}

static void
sink_close(int ep, struct conn *c)
{
	(void)epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
	close(c->fd);
	if (c->prev != NULL)
		c->prev->next = c->next;
	else
		sink_conns = c->next;
	if (c->next != NULL)
		c->next->prev = c->prev;
	free(c);
}

int
main(int argc, char *argv[])
{
	struct epoll_event evs[SINK_EVENTS], ev;
	struct sigaction sa;
	struct timespec last, now;
	int ch, port, status = 200, lfd, ep, n, i, wait = 100;
	char *end;

	while ((ch = getopt(argc, argv, "d:s:")) != -1) {
		switch (ch) {
		case 'd':
			sink_delay_ms = strtol(optarg, &end, 10);
			if (*optarg == '\0' || *end != '\0' ||
			    sink_delay_ms < 0 || sink_delay_ms > 600000)
				goto usage;
			break;
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
		n = epoll_wait(ep, evs, SINK_EVENTS, wait);
		for (i = 0; i < n; i++) {
			if (evs[i].data.ptr == NULL)
				sink_accept(ep, lfd);
			else if (sink_serve(evs[i].data.ptr) == -1)
				sink_close(ep, evs[i].data.ptr);
		}
		wait = sink_due(ep);
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
	fprintf(stderr, "usage: httpsink [-s STATUS] [-d MS] PORT COUNTFILE\n");
	return 2;
}
