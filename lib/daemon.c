/*
 * daemon.c - the daemon skeleton (see daemon.h and master(8)).
 *
 * Every daemon's main() hands a spec to daemon_main(), which owns start-up,
 * the event loop, the watchdog, SIGTERM, SIGUSR1 (drain) and SIGUSR2 (reopen
 * the accounting log after rotation). Signal handlers only set flags.
 * A solitary daemon (qmgr) holds a lock in the queue's private/ directory
 * for its whole life, so two never run on one queue.
 */
#include <sys/file.h>
#include <sys/socket.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "acct.h"
#include "daemon.h"
#include "event.h"
#include "log.h"
#include "metrics.h"
#include "parse.h"
#include "xalloc.h"

/* As master's: 64 listeners and smtpd's local submission socket. */
#define DAEMON_MAX_LISTENERS	65
/*
 * A loop pass that takes this long is a hang and SIGALRM ends the process
 * (Postfix's daemon_timeout). Idle waits are cut to DAEMON_IDLE_WAIT_MS so
 * that an idle daemon re-arms the watchdog long before it fires.
 */
#define DAEMON_WATCHDOG_SEC	18000
/*
 * Also bounds how late a SIGTERM that lands between the flag check and
 * poll() is noticed.
 */
#define DAEMON_IDLE_WAIT_MS	1000
#define DAEMON_STOP_GRACE_MS	30000	/* in-flight work after SIGTERM */
#define DAEMON_DRAIN_GRACE_MS	3600000	/* sessions after SIGUSR1 (reload) */
/*
 * How long a solitary daemon waits for the lock: a predecessor that got
 * SIGTERM has DAEMON_STOP_GRACE_MS to finish, then a little more.
 */
#define DAEMON_LOCK_WAIT_MS	(DAEMON_STOP_GRACE_MS + 5000)
#define DAEMON_LOCK_POLL_MS	100

static const struct cfg *daemon_the_cfg;
static struct daemon_listener daemon_lsn[DAEMON_MAX_LISTENERS];
static size_t daemon_nlsn;
static int daemon_key_fds[DAEMON_MAX_KEYS];
static size_t daemon_nkeys;
static int daemon_ticket_fd = -1;
static volatile sig_atomic_t daemon_sigterm;
static volatile sig_atomic_t daemon_drain;	/* SIGUSR1 from master */
static volatile sig_atomic_t daemon_reopen;	/* SIGUSR2 from master */
static const struct daemon_spec *daemon_the_spec;
static int daemon_paused;
static int64_t daemon_starved_warned;	/* ms: the last warning */
static uint64_t daemon_starved_timer;	/* resumes the listeners */

static void daemon_on_signal(int);
static void daemon_on_listener(int, int, void *);
static void daemon_starved_end(void *);
static void daemon_usage(const char *) __attribute__((noreturn));
static void daemon_watch_listeners(int);
static void daemon_lock_solitary(const char *, const char *);
static void daemon_close_listeners(void);
static int daemon_parse_fds(const char *);

const struct cfg *
daemon_cfg(void)
{
	return daemon_the_cfg;
}

const struct daemon_listener *
daemon_listeners(size_t *n)
{
	*n = daemon_nlsn;
	return daemon_lsn;
}

int
daemon_tls_key_fd(void)
{
	return daemon_nkeys > 0 ? daemon_key_fds[0] : -1;
}

const int *
daemon_tls_key_fds(size_t *n)
{
	*n = daemon_nkeys;
	return daemon_key_fds;
}

int
daemon_tls_ticket_fd(void)
{
	return daemon_ticket_fd;
}

/* "-k FD,FD,...": at most DAEMON_MAX_KEYS descriptor numbers. */
static int
daemon_parse_fds(const char *arg)
{
	char num[16];
	const char *p = arg, *end;
	uint64_t fd;
	size_t len;

	daemon_nkeys = 0;
	for (;;) {
		if ((end = strchr(p, ',')) == NULL)
			end = p + strlen(p);
		if ((len = (size_t)(end - p)) == 0 || len >= sizeof(num) ||
		    daemon_nkeys == DAEMON_MAX_KEYS)
			return -1;
		memcpy(num, p, len);
		num[len] = '\0';
		if (parse_u64(num, 0, 1024, &fd) == -1)
			return -1;
		daemon_key_fds[daemon_nkeys++] = (int)fd;
		if (*end == '\0')
			return 0;
		p = end + 1;
	}
}

int
daemon_stopping(void)
{
	return daemon_sigterm != 0;
}

static void
daemon_on_signal(int sig)
{
	if (sig == SIGUSR1)
		daemon_drain = 1;
	else if (sig == SIGUSR2)
		daemon_reopen = 1;
	else
		daemon_sigterm = 1;
}

void
daemon_retire(void)
{
	daemon_drain = 1;
}

int
daemon_draining(void)
{
	return daemon_drain != 0;
}

static void
daemon_on_listener(int fd, int events, void *arg)
{
	(void)fd;
	(void)events;
	daemon_the_spec->service(arg);
}

static void
daemon_watch_listeners(int on)
{
	for (size_t i = 0; i < daemon_nlsn; i++) {
		if (on)
			ev_fd_set(daemon_lsn[i].fd, EV_READ,
			    daemon_on_listener, &daemon_lsn[i]);
		else
			ev_fd_del(daemon_lsn[i].fd);
	}
}

/*
 * A stopping or draining daemon lets go of its listening sockets at once
 * and only finishes what it holds. On a reload master and the new
 * processes keep the sockets, so nothing changes for clients. When master
 * died (its daemons get SIGTERM through PR_SET_PDEATHSIG), these copies
 * were the last ones: closed, the ports are free for a new master at
 * once, rather than kept for the whole grace while nobody accepts.
 */
static void
daemon_close_listeners(void)
{
	daemon_watch_listeners(0);
	for (size_t i = 0; i < daemon_nlsn; i++)
		(void)close(daemon_lsn[i].fd);
	daemon_nlsn = 0;
}

void
daemon_listeners_pause(int paused)
{
	if (paused == daemon_paused || daemon_sigterm || daemon_drain)
		return;
	daemon_paused = paused;
	daemon_watch_listeners(!paused);
}

static void
daemon_starved_end(void *arg)
{
	(void)arg;
	daemon_starved_timer = 0;
	daemon_listeners_pause(0);
}

int
daemon_accept_failed(const struct daemon_listener *l, const char *detail)
{
	int64_t now;
	int err = errno;

	if (err == EAGAIN || err == EWOULDBLOCK || err == EINTR ||
	    err == ECONNABORTED)
		return 0;	/* another process took it, or it went away */
	if (err != EMFILE && err != ENFILE && err != ENOBUFS && err != ENOMEM) {
		log_warn("accept on %s: %s", l->name, strerror(err));
		return 0;
	}
	now = ev_now_ms();
	if (daemon_starved_warned == 0 || now - daemon_starved_warned >=
	    60000) {
		log_warn("accept on %s: %s: new connections wait%s", l->name,
		    strerror(err), detail);
		daemon_starved_warned = now;
	}
	daemon_listeners_pause(1);
	if (daemon_starved_timer == 0)
		daemon_starved_timer = ev_timer_add(DAEMON_STARVED_MS,
		    daemon_starved_end, NULL);
	return 1;
}

static void
daemon_usage(const char *name)
{
	fprintf(stderr, "usage: %s -c FILE [-v] [-s NAME,...] [-k FD,...] "
	    "[-t FD]\n", name);
	fprintf(stderr, "%s is started by master(8), not by hand.\n", name);
	exit(2);
}

/*
 * Takes <queue_directory>/private/<name>.lock for good (the descriptor
 * stays open until exit). master starts one solitary daemon and replaces
 * it stop-first, but cannot see one that a previous master left behind
 * when it was killed: that one got SIGTERM (PR_SET_PDEATHSIG) and is
 * waited for; one that still holds the lock after DAEMON_LOCK_WAIT_MS is
 * another instance, and this one gives up (master retries later).
 */
static void
daemon_lock_solitary(const char *name, const char *qdir)
{
	char path[PATH_MAX];
	int fd, tries;

	if (snprintf(path, sizeof(path), "%s/private/%s.lock", qdir, name) >=
	    (int)sizeof(path))
		log_fatal("%s/private/%s.lock: path too long", qdir, name);
	if ((fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600)) == -1)
		log_fatal("open %s: %m", path);
	for (tries = 0; flock(fd, LOCK_EX | LOCK_NB) == -1; tries++) {
		if (errno != EWOULDBLOCK && errno != EINTR)
			log_fatal("lock %s: %m", path);
		if (tries == 0)
			log_info("waiting for the %s holding %s to exit", name,
			    path);
		if (tries >= DAEMON_LOCK_WAIT_MS / DAEMON_LOCK_POLL_MS)
			log_fatal("another %s is running on %s", name, qdir);
		usleep(DAEMON_LOCK_POLL_MS * 1000);
	}
}

void
daemon_main(int argc, char *argv[], const struct daemon_spec *spec)
{
	struct sigaction sa;
	struct vbuf *why;
	const char *cfg_path = CFG_DEFAULT_PATH;
	char *names = NULL, *p, *next;
	int64_t stop_deadline = -1;
	uint64_t kfd;
	int ch;

	daemon_the_spec = spec;
	log_init(spec->name, LOG_DEST_STDERR);

	/* 1. Arguments. */
	while ((ch = getopt(argc, argv, "c:k:s:t:v")) != -1) {
		switch (ch) {
		case 'c':
			cfg_path = optarg;
			break;
		case 'k':
			if (daemon_parse_fds(optarg) == -1)
				daemon_usage(spec->name);
			break;
		case 't':
			if (parse_u64(optarg, 0, 1024, &kfd) == -1)
				daemon_usage(spec->name);
			daemon_ticket_fd = (int)kfd;
			break;
		case 's':
			names = xstrdup(optarg);
			break;
		case 'v':
			log_set_verbose(log_get_verbose() + 1);
			break;
		default:
			daemon_usage(spec->name);
		}
	}
	if (optind != argc)
		daemon_usage(spec->name);

	/* 2. Configuration and logging. */
	why = vbuf_create(0);
	if ((daemon_the_cfg = cfg_load(cfg_path, why)) == NULL)
		log_fatal("%s", why->data);
	vbuf_free(why);
	log_init_name(daemon_the_cfg->log_syslog_name, spec->name,
	    daemon_the_cfg->log_destination == CFG_LOG_SYSLOG ?
	    LOG_DEST_SYSLOG : LOG_DEST_STDERR);

	/* 3. Daemon code never runs as root. */
	if (geteuid() == 0 || getuid() == 0)
		log_fatal("refusing to run as root; %s is started by master",
		    spec->name);
	if (spec->solitary)
		daemon_lock_solitary(spec->name,
		    daemon_the_cfg->queue_directory);
	/* Counters for metricsd(8), only when it runs: a failure only
	 * loses the counters, never mail. */
	if (daemon_the_cfg->metrics_listen != NULL) {
		why = vbuf_create(0);
		if (metrics_open(daemon_the_cfg->queue_directory, spec->name,
		    why) == -1)
			log_warn("metrics: %s", why->data);
		vbuf_free(why);
	}

	/* 4. Adopt the listeners master passed, in -s order. */
	for (p = names; p != NULL && *p != '\0'; p = next) {
		int fd = DAEMON_LISTEN_FD + (int)daemon_nlsn;

		if ((next = strchr(p, ',')) != NULL)
			*next++ = '\0';
		if (daemon_nlsn == DAEMON_MAX_LISTENERS)
			log_fatal("too many listeners");
		if (fcntl(fd, F_GETFD) == -1)
			log_fatal("listener %s: descriptor %d not open", p, fd);
		if (fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK) == -1)
			log_fatal("listener %s: fcntl: %m", p);
		(void)fcntl(fd, F_SETFD, FD_CLOEXEC);
		daemon_lsn[daemon_nlsn].fd = fd;
		daemon_lsn[daemon_nlsn].name = p;
		daemon_nlsn++;
	}
	(void)fcntl(DAEMON_STATUS_FD, F_SETFD, FD_CLOEXEC);

	/* 5. Signals: handlers only set flags. */
	memset(&sa, 0, sizeof(sa));
	sigemptyset(&sa.sa_mask);
	sa.sa_handler = daemon_on_signal;
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGUSR1, &sa, NULL);
	sigaction(SIGUSR2, &sa, NULL);
	sa.sa_handler = SIG_IGN;
	sigaction(SIGPIPE, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);

	/* 6. The daemon's own start-up, then tell master we are ready. */
	ev_init();
	if (spec->init != NULL)
		spec->init(daemon_the_cfg);
	if (fcntl(DAEMON_STATUS_FD, F_GETFD) != -1) {
		char c = DAEMON_STATUS_READY;

		(void)!write(DAEMON_STATUS_FD, &c, 1);
	}
	daemon_watch_listeners(1);

	/* 7. The loop, under a watchdog. */
	for (;;) {
		int64_t wait;

		/*
		 * Log rotation (master's SIGUSR2): the accounting log takes
		 * its next event in the new file. On failure the old one
		 * (renamed) keeps them.
		 */
		if (daemon_reopen) {
			daemon_reopen = 0;
			if (acct_reopen() == -1)
				log_warn("accounting log: reopen: %m");
		}
		wait = spec->loop != NULL ? spec->loop() : -1;
		if (daemon_sigterm || daemon_drain) {
			int64_t grace = daemon_sigterm ? DAEMON_STOP_GRACE_MS :
			    DAEMON_DRAIN_GRACE_MS;

			/* A drain may turn into a stop: the shorter wins. */
			if (stop_deadline < 0 || ev_now_ms() + grace <
			    stop_deadline) {
				daemon_close_listeners();
				stop_deadline = ev_now_ms() + grace;
			}
			if (spec->busy == NULL || !spec->busy())
				break;
			if (ev_now_ms() >= stop_deadline) {
				log_warn("stopping with work in flight");
				break;
			}
			if (wait < 0 || wait > 200)
				wait = 200;
		}
		if (wait < 0 || wait > DAEMON_IDLE_WAIT_MS)
			wait = DAEMON_IDLE_WAIT_MS;
		alarm(DAEMON_WATCHDOG_SEC);
		(void)ev_run_once(wait);
	}
	log_debug("stopped");
	exit(0);
}
