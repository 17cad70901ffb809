/*
 * event.c - poll(2)-based event loop with millisecond timers (see event.h).
 *
 * fds live in a table indexed by descriptor; the pollfd array is rebuilt
 * each pass, which is cheap at the few hundred descriptors a daemon holds.
 */
#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <time.h>

#include "event.h"
#include "log.h"
#include "xalloc.h"

struct ev_fd {
	int		 events;
	ev_fd_cb	*cb;
	void		*arg;
};

struct ev_timer {
	uint64_t	 id;
	int64_t		 when;
	ev_timer_cb	*cb;
	void		*arg;
};

static struct ev_fd *ev_fds;
static int ev_nfds_alloc;
static struct pollfd *ev_pfds;
static struct ev_timer *ev_timers;
static size_t ev_ntimers, ev_ntimers_alloc;
static uint64_t ev_timer_next_id = 1;

void
ev_init(void)
{
	if (ev_fds != NULL)
		return;
	ev_nfds_alloc = 64;
	ev_fds = xcalloc((size_t)ev_nfds_alloc, sizeof(*ev_fds));
	ev_pfds = xcalloc((size_t)ev_nfds_alloc, sizeof(*ev_pfds));
}

int64_t
ev_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void
ev_fd_set(int fd, int events, ev_fd_cb *cb, void *arg)
{
	ASSERT(fd >= 0);
	ev_init();
	if (fd >= ev_nfds_alloc) {
		int n = ev_nfds_alloc;

		while (n <= fd)
			n *= 2;
		ev_fds = xreallocarray(ev_fds, (size_t)n, sizeof(*ev_fds));
		ev_pfds = xreallocarray(ev_pfds, (size_t)n, sizeof(*ev_pfds));
		for (int i = ev_nfds_alloc; i < n; i++)
			ev_fds[i].events = 0;
		ev_nfds_alloc = n;
	}
	ev_fds[fd].events = events;
	ev_fds[fd].cb = cb;
	ev_fds[fd].arg = arg;
}

void
ev_fd_del(int fd)
{
	if (fd >= 0 && fd < ev_nfds_alloc)
		ev_fds[fd].events = 0;
}

uint64_t
ev_timer_add(int64_t ms, ev_timer_cb *cb, void *arg)
{
	if (ev_ntimers == ev_ntimers_alloc) {
		ev_ntimers_alloc = ev_ntimers_alloc ? ev_ntimers_alloc * 2 : 16;
		ev_timers = xreallocarray(ev_timers, ev_ntimers_alloc,
		    sizeof(*ev_timers));
	}
	ev_timers[ev_ntimers].id = ev_timer_next_id++;
	ev_timers[ev_ntimers].when = ev_now_ms() + (ms < 0 ? 0 : ms);
	ev_timers[ev_ntimers].cb = cb;
	ev_timers[ev_ntimers].arg = arg;
	return ev_timers[ev_ntimers++].id;
}

void
ev_timer_del(uint64_t id)
{
	for (size_t i = 0; i < ev_ntimers; i++) {
		if (ev_timers[i].id == id) {
			ev_timers[i] = ev_timers[--ev_ntimers];
			return;
		}
	}
}

static int
ev_run_timers(void)
{
	int64_t now = ev_now_ms();
	int ran = 0;
	size_t i;

	/* The earliest due timer, one at a time: callbacks change the table. */
	for (;;) {
		struct ev_timer t;

		size_t best = ev_ntimers;

		for (i = 0; i < ev_ntimers; i++) {
			if (ev_timers[i].when > now)
				continue;
			if (best == ev_ntimers ||
			    ev_timers[i].when < ev_timers[best].when ||
			    (ev_timers[i].when == ev_timers[best].when &&
			    ev_timers[i].id < ev_timers[best].id))
				best = i;
		}
		if (best == ev_ntimers)
			return ran;
		t = ev_timers[best];
		ev_timers[best] = ev_timers[--ev_ntimers];
		t.cb(t.arg);
		ran++;
	}
}

int
ev_run_once(int64_t max_wait_ms)
{
	int64_t wait = max_wait_ms, now;
	int n = 0, i, ran = 0, rc;

	ev_init();
	now = ev_now_ms();
	for (size_t t = 0; t < ev_ntimers; t++) {
		int64_t d = ev_timers[t].when - now;

		if (d < 0)
			d = 0;
		if (wait < 0 || d < wait)
			wait = d;
	}
	for (i = 0; i < ev_nfds_alloc; i++) {
		if (ev_fds[i].events == 0)
			continue;
		ev_pfds[n].fd = i;
		ev_pfds[n].events = (short)(((ev_fds[i].events & EV_READ) ?
		    POLLIN : 0) | ((ev_fds[i].events & EV_WRITE) ?
		    POLLOUT : 0));
		ev_pfds[n].revents = 0;
		n++;
	}
	rc = poll(ev_pfds, (nfds_t)n, wait > INT32_MAX ? INT32_MAX :
	    (int)wait);
	if (rc == -1) {
		if (errno == EINTR)
			return -1;
		log_fatal("poll: %m");
	}
	for (i = 0; i < n && rc > 0; i++) {
		int fd = ev_pfds[i].fd, ev = 0;

		if (ev_pfds[i].revents == 0)
			continue;
		if (ev_pfds[i].revents & (POLLIN | POLLHUP | POLLERR))
			ev |= EV_READ;
		if (ev_pfds[i].revents & (POLLOUT | POLLHUP | POLLERR))
			ev |= EV_WRITE;
		/* The fd may have been removed or replaced by a callback. */
		ev &= ev_fds[fd].events;
		if (ev == 0 || ev_fds[fd].cb == NULL)
			continue;
		ev_fds[fd].cb(fd, ev, ev_fds[fd].arg);
		ran++;
	}
	ran += ev_run_timers();
	return ran;
}
