/*
 * event.h - a small single-threaded event loop: fd callbacks and timers.
 *
 * One loop per process (Redis's ae.c in spirit), built on poll(2). Callbacks
 * may add and remove fds and timers freely, including their own.
 */
#ifndef PETREL_EVENT_H
#define PETREL_EVENT_H

#include <stdint.h>

#define EV_READ		0x1
#define EV_WRITE	0x2

typedef void ev_fd_cb(int fd, int events, void *arg);
typedef void ev_timer_cb(void *arg);

/* Creates the process's loop (idempotent). */
void	 ev_init(void);
/* Sets the events of interest for fd (0 removes it). One callback per fd. */
void	 ev_fd_set(int fd, int events, ev_fd_cb *cb, void *arg);
void	 ev_fd_del(int fd);
/* Arms a one-shot timer; returns an id for ev_timer_del. */
uint64_t ev_timer_add(int64_t ms, ev_timer_cb *cb, void *arg);
void	 ev_timer_del(uint64_t id);
/*
 * Waits at most max_wait_ms (-1 = until something happens) and runs what is
 * ready. Returns the number of callbacks run, or -1 when poll was
 * interrupted by a signal (the caller checks its flags).
 */
int	 ev_run_once(int64_t max_wait_ms);
/* Monotonic milliseconds. */
int64_t	 ev_now_ms(void);

#endif
