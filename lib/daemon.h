/*
 * daemon.h - the skeleton every Petrel daemon runs in.
 *
 * daemon_main() parses "-c FILE [-v] [-s NAME,...] [-k FD,...] [-t FD]",
 * loads the configuration, refuses to run as uid 0, sets up logging, locks
 * the queue for a solitary daemon, adopts the descriptors master passed,
 * calls init, watches the listeners, runs the event loop under a watchdog,
 * calls loop after every pass and handles SIGTERM (stop) and SIGUSR1
 * (drain, for a reload). It never returns.
 *
 * Master-to-child contract (see master(8)): fd 3 is the status pipe (the
 * child writes DAEMON_STATUS_READY once initialised); listening sockets are
 * fds 4, 5, ... in the order of the -s names; -k names the descriptors of
 * the open TLS private keys, in the order of tls.private_key, and -t the
 * read-only TLS session-ticket keys (tlsticket.h), after them (smtpd only).
 * Nothing else is inherited.
 */
#ifndef PETREL_DAEMON_H
#define PETREL_DAEMON_H

#include <stddef.h>
#include <stdint.h>

#include "cfg.h"

#define DAEMON_STATUS_FD	3
#define DAEMON_LISTEN_FD	4
#define DAEMON_STATUS_READY	'R'
#define DAEMON_MAX_KEYS		8	/* TLS private keys (-k) */

struct daemon_listener {
	int		 fd;
	const char	*name;		/* listener name, or socket name */
};

struct daemon_spec {
	const char	*name;
	/*
	 * One instance per queue: daemon_main() holds an exclusive lock on
	 * <queue_directory>/private/<name>.lock for the process's life,
	 * waiting a while for a previous instance that is stopping.
	 */
	int		 solitary;
	/* After config and descriptors; fatal on failure. */
	void		(*init)(const struct cfg *);
	/* A listener is readable: accept and serve (may block briefly). */
	void		(*service)(const struct daemon_listener *);
	/* After every loop pass: returns ms until it wants a call, -1 idle. */
	int64_t		(*loop)(void);
	/* SIGTERM: stop accepting; return nonzero while work is in flight. */
	int		(*busy)(void);
};

void	daemon_main(int argc, char *argv[], const struct daemon_spec *)
	    __attribute__((noreturn));

/* The configuration, listeners and TLS key fd (-1) the skeleton adopted. */
const struct cfg		*daemon_cfg(void);
const struct daemon_listener	*daemon_listeners(size_t *n);
int				 daemon_tls_key_fd(void);	/* the first */
/* Every TLS private key descriptor (-k), in the order master gave them. */
const int			*daemon_tls_key_fds(size_t *n);
/* The TLS session-ticket key object (-t), or -1. */
int				 daemon_tls_ticket_fd(void);
/* Nonzero once SIGTERM arrived: stop soon, ending idle sessions. */
int				 daemon_stopping(void);
/*
 * Nonzero once SIGUSR1 arrived (master is reloading): accept nothing new,
 * let the work in hand, sessions included, end by itself, then exit.
 */
int				 daemon_draining(void);
/*
 * Asks to exit once the work in hand is done, as after SIGUSR1: a use
 * limit, so that memory a library leaks per use stays bounded (Postfix's
 * max_use). master starts a fresh process.
 */
void				 daemon_retire(void);
/* Stops watching the listeners (e.g. at a session limit), and resumes. */
void				 daemon_listeners_pause(int paused);
/*
 * accept() on l failed (errno). Out of descriptors or memory (EMFILE,
 * ENFILE, ENOBUFS, ENOMEM): the connection stays in the kernel's queue and
 * the listener stays readable, so accepting again at once would spin; the
 * listeners are left alone for DAEMON_STARVED_MS, what is open goes on,
 * and "accept on NAME: ERROR: new connections wait" (then detail, may be
 * "") is logged at most once a minute. Returns 1 then; 0 for the errors
 * that only mean "nothing to accept" (logged when unexpected).
 */
#define DAEMON_STARVED_MS	1000
int				 daemon_accept_failed(
				    const struct daemon_listener *l,
				    const char *detail);

#endif
