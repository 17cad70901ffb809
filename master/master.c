/*
 * master.c - the supervisor: binds the listeners, creates the private
 * sockets, starts the daemons of its service table as mail_owner and
 * keeps them running. See master(8).
 *
 * master_table below is the one place that names the daemons (Postfix's
 * master.cf, compiled in): setup, spawn and reload read only its rows, so
 * a new daemon is a new row. SIGTERM stops the suite (children get
 * SIGTERM, then SIGKILL after a grace period). SIGHUP re-reads the
 * configuration: an invalid file is reported and the old one stays in
 * force; a valid one replaces each service's processes as its row's reload
 * policy says. SIGUSR2 (logrotate) makes sure the accounting log exists,
 * owned by mail_owner, and passes the signal on so that every daemon opens
 * it again. A daemon that exits early is restarted with a growing
 * delay, never in a tight loop.
 *
 * TLS: master opens every tls.private_key while it may be root and hands
 * the descriptors to smtpd. It also owns the session-ticket keys
 * (tlsticket.h): one sealed shared object, created when a listener first
 * uses TLS and kept across reloads (a reload does not cost clients their
 * tickets), which every smtpd maps read-only; master puts a new key in it
 * every tls.ticket_lifetime, keeping the one before for a period more.
 */
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <grp.h>
#include <pwd.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "bclass.h"
#include "daemon.h"
#include "event.h"
#include "log.h"
#include "shaping.h"
#include "mailproto.h"
#include "mstatus.h"
#include "master.h"
#include "privsep.h"
#include "qstore.h"
#include "tlsticket.h"
#include "xalloc.h"

#define MASTER_BACKOFF_MIN_MS	1000
#define MASTER_BACKOFF_MAX_MS	60000
#define MASTER_STABLE_MS	10000	/* running this long resets backoff */
#define MASTER_STOP_GRACE_MS	35000
#define MASTER_MAX_RETIRING	512

/*
 * The services. qmgr's count is fixed at one and its reload policy is
 * stop-first, so two schedulers never run at once (its daemon_spec is
 * also solitary: daemon_main() locks it, for the case master cannot see,
 * a previous master's qmgr still finishing). smtpd and smtp drain on
 * reload so no session or delivery is cut. smtp alone gets the DKIM key
 * group: the client-facing smtpd never reads the keys. bounce drains too:
 * the report in hand is committed before the old process exits, and two
 * bounce processes only ever insert new messages.
 */
static const struct master_row master_table[] = {
	{
		.prog = "smtpd",
		.count_cfg = offsetof(struct cfg, smtpd_processes),
		.listen = MASTER_LISTEN_TCP,
		.pass_key = 1,
		.local_submit = 1,
		.reload = MASTER_RELOAD_DRAIN,
	},
	{
		.prog = "qmgr",
		.count = 1,
		.listen = MASTER_LISTEN_PRIVATE,
		.socket = MAIL_SOCK_QMGR,
		.reload = MASTER_RELOAD_STOP,
	},
	{
		.prog = "smtp",
		.count_cfg = offsetof(struct cfg, smtp_processes),
		.listen = MASTER_LISTEN_PRIVATE,
		.socket = MAIL_SOCK_SMTP,
		.group_key = "dkim.group",
		.group_cfg = offsetof(struct cfg, dkim_group),
		.group_use = "read DKIM keys",
		.reload = MASTER_RELOAD_DRAIN,
	},
	{
		.prog = "bounce",
		.count = 1,
		.listen = MASTER_LISTEN_PRIVATE,
		.socket = MAIL_SOCK_BOUNCE,
		.reload = MASTER_RELOAD_DRAIN,
	},
	{
		/*
		 * webhookd works from the outbox and its own store: no
		 * socket. One instance, and only with webhooks: in the
		 * configuration (webhookd_processes). A reload stops it
		 * rather than draining: it is solitary (the new one waits
		 * for the old one's lock anyway), and a request cut short
		 * is still pending in its store and is sent again.
		 */
		.prog = "webhookd",
		.count_cfg = offsetof(struct cfg, webhookd_processes),
		.listen = MASTER_LISTEN_NONE,
		.reload = MASTER_RELOAD_STOP,
	},
	{
		/*
		 * metricsd serves the counters the others keep
		 * (lib/metrics.h) over HTTP, only with metrics.listen set
		 * (metricsd_processes). It binds that address itself, so
		 * the port must be above 1023; a reload stops it first so
		 * the new one can bind the same address.
		 */
		.prog = "metricsd",
		.count_cfg = offsetof(struct cfg, metricsd_processes),
		.listen = MASTER_LISTEN_NONE,
		.reload = MASTER_RELOAD_STOP,
	},
};
#define MASTER_NSVC	(sizeof(master_table) / sizeof(master_table[0]))

/*
 * A reload keeps the sockets whose address did not change (so no client
 * is refused while daemons are replaced): they wait here, by address,
 * until the new setup takes them.
 */
struct master_kept {
	char	key[320];	/* "tcp:ADDRESS" or "unix:PATH" */
	int	fd;
};

/* A TCP row takes at most MASTER_MAX_FDS, any other row one. */
static struct master_kept master_kept[MASTER_MAX_FDS + MASTER_NSVC];
static size_t master_nkept;
/* Old daemons finishing their work after a reload; never restarted. */
static pid_t master_retiring[MASTER_MAX_RETIRING];
static size_t master_nretiring;

static volatile sig_atomic_t master_got_term, master_got_hup;
static volatile sig_atomic_t master_got_reopen;
static int master_stopping;	/* reload: children stopping, no restarts */
static struct cfg *master_cfg;
static const char *master_cfg_path;
static struct master_service master_svc[MASTER_NSVC];
static struct master_proc *master_procs;
static size_t master_nprocs;
static struct master_tls master_tls = { .ticket_fd = -1 };
static struct tlsticket *master_ticket;
static int64_t master_ticket_next;	/* ms: next rotation */
static uid_t master_uid;
static gid_t master_gid;
static int64_t master_started_s;	/* epoch s, for mstatus */
static int master_dirty;		/* the status file is out of date */
static int master_publish_failed;	/* warned about it already */

static void master_usage(void) __attribute__((noreturn));
static void master_log_init(const struct cfg *);
static void master_on_signal(int);
static int master_setup(struct cfg *, struct vbuf *);
static int master_acct_create(const struct cfg *, struct vbuf *);
static void master_reopen(void);
static int master_svc_setup(const struct cfg *, struct master_service *,
    int *, struct vbuf *);
static size_t master_sock_count(const struct cfg *,
    const struct master_row *);
static void master_sock_key(const struct cfg *, const struct master_row *,
    size_t, char *, size_t);
static void master_check_programs(const struct cfg *);
static void master_teardown(void);
static void master_procs_build(void);
static void master_reap(void);
static void master_start_due(void);
static void master_status(int, int, void *);
static void master_stop_all(void);
static void master_reload(void);
static int master_check_classes(const struct cfg *, struct vbuf *);
static int master_check_files(const struct cfg *, struct vbuf *);
static int master_kept_take(const char *);
static void master_kept_save(const struct cfg *);
static void master_kept_close(void);
static int master_tls_setup(const struct cfg *, struct vbuf *);
static void master_tls_close(void);
static void master_ticket_tick(void);
static void master_publish(void);

/* "NAME/master", as the daemons log "NAME/program" (log.syslog_name). */
static void
master_log_init(const struct cfg *cfg)
{
	log_init_name(cfg->log_syslog_name, "master",
	    cfg->log_destination == CFG_LOG_SYSLOG ? LOG_DEST_SYSLOG :
	    LOG_DEST_STDERR);
}

static void
master_usage(void)
{
	fprintf(stderr, "usage: master [-c FILE] [-f] [-v]\n");
	exit(2);
}

static void
master_on_signal(int sig)
{
	if (sig == SIGHUP)
		master_got_hup = 1;
	else if (sig == SIGUSR2)
		master_got_reopen = 1;
	else if (sig != SIGCHLD)
		master_got_term = 1;
}

/* The sockets a row listens on under cfg. */
static size_t
master_sock_count(const struct cfg *cfg, const struct master_row *row)
{
	switch (row->listen) {
	case MASTER_LISTEN_TCP:
		return cfg->nlisteners + (row->local_submit &&
		    cfg->nlocal_submission_users > 0);
	case MASTER_LISTEN_PRIVATE:
		return 1;
	case MASTER_LISTEN_NONE:
		break;
	}
	return 0;
}

/*
 * The address of a row's i-th socket, "tcp:ADDRESS" or "unix:PATH": what
 * a reload compares to keep a socket whose address did not change.
 */
static void
master_sock_key(const struct cfg *cfg, const struct master_row *row,
    size_t i, char *key, size_t size)
{
	if (row->listen == MASTER_LISTEN_TCP && i >= cfg->nlisteners)
		snprintf(key, size, "unix:%s/%s/%s", cfg->queue_directory,
		    MAIL_DIR_PUBLIC, MAIL_SOCK_SUBMIT);
	else if (row->listen == MASTER_LISTEN_TCP)
		snprintf(key, size, "tcp:%s", cfg->listeners[i].address);
	else
		snprintf(key, size, "unix:%s/%s", cfg->queue_directory,
		    row->socket);
}

/*
 * One row under cfg: its process count, extra group and sockets (kept
 * ones taken back, others bound). Sets *need_tls when a TLS listener is
 * among them. -1: the sockets opened so far stay in svc for teardown.
 */
static int
master_svc_setup(const struct cfg *cfg, struct master_service *svc,
    int *need_tls, struct vbuf *why)
{
	const struct master_row *row = svc->row;
	char key[sizeof(master_kept[0].key)];
	const char *name;
	size_t i, n, len;
	int fd, local;

	ASSERT(row->count > 0 || row->count_cfg > 0);
	svc->count = row->count > 0 ? row->count :
	    *(const unsigned *)(const void *)((const char *)cfg +
	    row->count_cfg);
	svc->extra_gid = (gid_t)-1;
	if (row->group_key != NULL && geteuid() == 0) {
		const char *gname = *(char *const *)(const void *)
		    ((const char *)cfg + row->group_cfg);
		struct group *gr = getgrnam(gname);

		if (gr == NULL)
			log_warn("%s %s: no such group; %s cannot %s (create "
			    "it with groupadd --system %s)", row->group_key,
			    gname, row->prog, row->group_use, gname);
		else
			svc->extra_gid = gr->gr_gid;
	}

	if ((n = master_sock_count(cfg, row)) > MASTER_MAX_FDS) {
		vbuf_setf(why, "too many listeners");
		return -1;
	}
	for (i = 0; i < n; i++) {
		master_sock_key(cfg, row, i, key, sizeof(key));
		local = row->listen == MASTER_LISTEN_TCP &&
		    i >= cfg->nlisteners;
		if ((fd = master_kept_take(key)) == -1) {
			if (local)
				fd = master_listen_public(cfg->queue_directory,
				    MAIL_SOCK_SUBMIT, master_uid, master_gid,
				    why);
			else if (row->listen == MASTER_LISTEN_TCP)
				fd = master_listen_tcp(&cfg->listeners[i],
				    why);
			else
				fd = master_listen_unix(cfg->queue_directory,
				    row->socket, master_uid, master_gid, why);
			if (fd == -1)
				return -1;
		}
		svc->fds[svc->nfds++] = fd;
		if (local)
			name = MAIL_LISTENER_SUBMIT;
		else if (row->listen == MASTER_LISTEN_TCP) {
			name = cfg->listeners[i].name;
			if (cfg->listeners[i].tls != CFG_TLS_NONE)
				*need_tls = 1;
		} else
			name = row->socket;
		len = strlen(svc->names);
		if (snprintf(svc->names + len, sizeof(svc->names) - len,
		    "%s%s", i > 0 ? "," : "", name) >=
		    (int)(sizeof(svc->names) - len)) {
			vbuf_setf(why, "listener names too long");
			return -1;
		}
	}
	return 0;
}

/* Binds everything a configuration needs; -1 leaves nothing open. */
static int
master_setup(struct cfg *cfg, struct vbuf *why)
{
	size_t s;
	int need_tls = 0;

	memset(master_svc, 0, sizeof(master_svc));
	for (s = 0; s < MASTER_NSVC; s++)
		master_svc[s].row = &master_table[s];
	if (qstore_create_dirs(cfg->queue_directory, master_uid, master_gid,
	    why) == -1)
		return -1;
	for (s = 0; s < MASTER_NSVC; s++)
		if (master_svc_setup(cfg, &master_svc[s], &need_tls, why) == -1)
			goto fail;

	if (master_acct_create(cfg, why) == -1)
		goto fail;

	if (need_tls && master_tls_setup(cfg, why) == -1)
		goto fail;
	return 0;
fail:
	master_teardown();
	return -1;
}

/* The accounting log is written by the daemons as mail_owner. */
static int
master_acct_create(const struct cfg *cfg, struct vbuf *why)
{
	int fd;

	if (cfg->log_accounting == NULL)
		return 0;
	fd = open(cfg->log_accounting, O_WRONLY | O_APPEND | O_CREAT |
	    O_CLOEXEC, 0640);
	if (fd == -1 || fchown(fd, master_uid, master_gid) == -1) {
		vbuf_setf(why, "log.accounting %s: %s", cfg->log_accounting,
		    strerror(errno));
		if (fd != -1)
			close(fd);
		return -1;
	}
	close(fd);
	return 0;
}

/*
 * SIGUSR2, after logrotate renamed the accounting log: the new file is
 * made (or given to mail_owner, if logrotate made it), then every daemon,
 * retiring ones too, is told to open it again. A daemon still starting
 * ignores the signal (master_spawn.c) and opens the new file anyway.
 * Events written before a daemon reopens go to the end of the renamed
 * file: none is lost.
 */
static void
master_reopen(void)
{
	struct vbuf *why = vbuf_create(0);
	size_t i;

	master_got_reopen = 0;
	if (master_acct_create(master_cfg, why) == -1)
		log_warn("%s", why->data);
	vbuf_free(why);
	for (i = 0; i < master_nprocs; i++)
		if (master_procs[i].pid > 0)
			kill(master_procs[i].pid, SIGUSR2);
	for (i = 0; i < master_nretiring; i++)
		kill(master_retiring[i], SIGUSR2);
	log_info("reopening the accounting log");
}

/*
 * The keys are opened here, while master may still be root; the ticket
 * keys are made on first use and kept, their period set from cfg.
 */
static int
master_tls_setup(const struct cfg *cfg, struct vbuf *why)
{
	const struct cfg_paths *keys = &cfg->tls_private_keys;
	char where[PATH_MAX + 64];
	int64_t period;
	size_t i;
	int fd;

	ASSERT(keys->n <= DAEMON_MAX_KEYS);
	for (i = 0; i < keys->n; i++) {
		if ((fd = open(keys->path[i], O_RDONLY | O_CLOEXEC)) == -1) {
			cfg_paths_where(cfg, "tls.private_key", keys, i, where,
			    sizeof(where));
			vbuf_setf(why, "%s: %s: %s", where, keys->path[i],
			    strerror(errno));
			return -1;
		}
		master_tls.key_fds[master_tls.nkeys++] = fd;
	}
	master_tls.ticket_fd = -1;
	if (cfg->tls_ticket_lifetime == 0)
		return 0;
	period = cfg->tls_ticket_lifetime * 1000;
	if (master_ticket == NULL) {
		if ((master_ticket = tlsticket_create(why)) == NULL)
			return -1;
		master_ticket_next = ev_now_ms() + period;
	} else if (master_ticket_next > ev_now_ms() + period)
		master_ticket_next = ev_now_ms() + period;
	master_tls.ticket_fd = tlsticket_fd(master_ticket);
	return 0;
}

static void
master_tls_close(void)
{
	for (size_t i = 0; i < master_tls.nkeys; i++)
		close(master_tls.key_fds[i]);
	master_tls.nkeys = 0;
	/* The ticket keys stay: only their descriptor is not handed out. */
	master_tls.ticket_fd = -1;
}

/*
 * A new ticket key once a period is over. Tickets sealed with the one
 * before are still accepted (and replaced) for one more period, so a
 * ticket lives one to two periods (smtpd's session timeout, three, only
 * bounds a chain of TLS 1.2 renewals).
 */
static void
master_ticket_tick(void)
{
	struct vbuf *why;
	int64_t now = ev_now_ms();

	if (master_ticket == NULL || master_tls.ticket_fd == -1 ||
	    now < master_ticket_next)
		return;
	why = vbuf_create(0);
	if (tlsticket_rotate(master_ticket, why) == -1)
		log_warn("%s; keeping the current TLS ticket key", why->data);
	else
		log_info("TLS session ticket key rotated");
	vbuf_free(why);
	master_ticket_next = now + master_cfg->tls_ticket_lifetime * 1000;
}

/*
 * A duplicate of the kept socket for key, or -1. The kept one stays
 * until master_kept_close(), so a failed setup loses nothing.
 */
static int
master_kept_take(const char *key)
{
	for (size_t i = 0; i < master_nkept; i++)
		if (strcmp(master_kept[i].key, key) == 0)
			return fcntl(master_kept[i].fd, F_DUPFD_CLOEXEC, 3);
	return -1;
}

/* Moves the running sockets to the kept table, by address. */
static void
master_kept_save(const struct cfg *cfg)
{
	master_nkept = 0;
	for (size_t s = 0; s < MASTER_NSVC; s++) {
		struct master_service *svc = &master_svc[s];

		for (size_t i = 0; i < svc->nfds; i++) {
			master_sock_key(cfg, svc->row, i,
			    master_kept[master_nkept].key,
			    sizeof(master_kept[0].key));
			master_kept[master_nkept++].fd = svc->fds[i];
		}
		svc->nfds = 0;
	}
}

static void
master_kept_close(void)
{
	for (size_t i = 0; i < master_nkept; i++)
		close(master_kept[i].fd);
	master_nkept = 0;
}

static void
master_teardown(void)
{
	for (size_t s = 0; s < MASTER_NSVC; s++) {
		for (size_t i = 0; i < master_svc[s].nfds; i++)
			close(master_svc[s].fds[i]);
		master_svc[s].nfds = 0;
	}
	master_tls_close();
}

static void
master_procs_build(void)
{
	size_t n = 0, k = 0;

	for (size_t s = 0; s < MASTER_NSVC; s++)
		n += master_svc[s].count;
	free(master_procs);
	master_procs = xcalloc(n, sizeof(*master_procs));
	master_nprocs = n;
	for (size_t s = 0; s < MASTER_NSVC; s++) {
		for (unsigned i = 0; i < master_svc[s].count; i++) {
			master_procs[k].svc = &master_svc[s];
			master_procs[k].status_fd = -1;
			k++;
		}
	}
	master_dirty = 1;
}

/*
 * Publishes the process table for relayctl status: a file rewritten
 * (temporary file + rename) when a child starts or exits, rather than a
 * control socket, so that master, which runs as root, serves no requests
 * and parses no input, and so that the reader can tell a master that
 * stopped (no file) or was killed (a file naming a dead pid) without a
 * connection timing out. See mstatus.h.
 */
static void
master_publish(void)
{
	struct mstatus st;
	struct vbuf *why;
	int64_t now = ev_now_ms();
	time_t wall = time(NULL);

	master_dirty = 0;
	memset(&st, 0, sizeof(st));
	st.master_pid = getpid();
	st.master_started = master_started_s;
	st.updated = wall;
	st.procs = xcalloc(master_nprocs > 0 ? master_nprocs : 1,
	    sizeof(*st.procs));
	for (size_t i = 0; i < master_nprocs; i++) {
		const struct master_proc *p = &master_procs[i];
		struct mstatus_proc *q = &st.procs[st.nprocs++];

		snprintf(q->prog, sizeof(q->prog), "%s", p->svc->row->prog);
		q->pid = p->pid;
		q->started = p->pid != 0 ? p->started_s : 0;
		q->restarts = p->restarts;
		q->fails = p->fails;
		q->ready = p->pid != 0 && p->ready;
		if (p->pid == 0 && p->next_start > now)
			q->next_start = wall + (p->next_start - now + 999) /
			    1000;
	}
	why = vbuf_create(0);
	if (mstatus_write(master_cfg->queue_directory, &st, master_uid,
	    master_gid, why) == -1) {
		if (!master_publish_failed)
			log_warn("status file: %s", why->data);
		master_publish_failed = 1;
	} else
		master_publish_failed = 0;
	vbuf_free(why);
	free(st.procs);
}

static void
master_status(int fd, int events, void *arg)
{
	struct master_proc *p = arg;
	char buf[64];
	ssize_t n;

	(void)events;
	n = read(fd, buf, sizeof(buf));
	if (n > 0) {
		/* Published: relayctl status tells a daemon still starting. */
		if (memchr(buf, DAEMON_STATUS_READY, (size_t)n) != NULL &&
		    !p->ready) {
			p->ready = 1;
			master_dirty = 1;
		}
		return;
	}
	if (n == -1 && errno == EAGAIN)
		return;
	/* EOF: the child is gone or closed its pipe; wait reaps it. */
	ev_fd_del(fd);
	close(fd);
	p->status_fd = -1;
}

static void
master_start_due(void)
{
	int64_t now = ev_now_ms();

	if (master_got_term || master_stopping)
		return;
	for (size_t i = 0; i < master_nprocs; i++) {
		struct master_proc *p = &master_procs[i];

		if (p->pid != 0 || now < p->next_start)
			continue;
		p->pid = master_spawn(p->svc, &master_tls, &p->status_fd);
		if (p->pid == -1) {
			p->pid = 0;
			p->next_start = now + MASTER_BACKOFF_MIN_MS;
			continue;
		}
		p->ready = 0;
		p->started = now;
		p->started_s = time(NULL);
		master_dirty = 1;
		ev_fd_set(p->status_fd, EV_READ, master_status, p);
		log_debug("started %s pid %ld", p->svc->row->prog,
		    (long)p->pid);
	}
}

static void
master_reap(void)
{
	int64_t now = ev_now_ms(), delay;
	pid_t pid;
	int status;

	while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
		for (size_t i = 0; i < master_nretiring; i++) {
			if (master_retiring[i] == pid) {
				master_retiring[i] =
				    master_retiring[--master_nretiring];
				break;
			}
		}
		for (size_t i = 0; i < master_nprocs; i++) {
			struct master_proc *p = &master_procs[i];

			if (p->pid != pid)
				continue;
			p->pid = 0;
			master_dirty = 1;
			if (p->status_fd != -1) {
				ev_fd_del(p->status_fd);
				close(p->status_fd);
				p->status_fd = -1;
			}
			if (master_got_term || master_stopping)
				break;
			p->restarts++;
			if (WIFSIGNALED(status))
				log_warn("process %s pid %ld killed by signal "
				    "%d", p->svc->row->prog, (long)pid,
				    WTERMSIG(status));
			else if (WEXITSTATUS(status) != 0)
				log_warn("process %s pid %ld exit status %d",
				    p->svc->row->prog, (long)pid,
				    WEXITSTATUS(status));
			/*
			 * A run that was ready and stable clears the count;
			 * then a failed exit counts one. Clean exits restart
			 * at once.
			 */
			if (p->ready && now - p->started >= MASTER_STABLE_MS)
				p->fails = 0;
			/* A clean exit (a use limit) is no failure. */
			if (!p->ready || (WIFEXITED(status) &&
			    WEXITSTATUS(status) != 0) || WIFSIGNALED(status)) {
				if (p->fails < 16)
					p->fails++;
			}
			delay = p->fails == 0 ? 0 : MASTER_BACKOFF_MIN_MS <<
			    (p->fails - 1);
			if (delay > MASTER_BACKOFF_MAX_MS)
				delay = MASTER_BACKOFF_MAX_MS;
			if (p->fails >= 3)
				log_warn("%s keeps failing (%u times); next "
				    "start in %lld s", p->svc->row->prog,
				    p->fails, (long long)(delay / 1000));
			p->next_start = now + delay;
			break;
		}
	}
}

static void
master_stop_all(void)
{
	int64_t deadline = ev_now_ms() + MASTER_STOP_GRACE_MS;
	int left;

	for (size_t i = 0; i < master_nprocs; i++)
		if (master_procs[i].pid != 0)
			kill(master_procs[i].pid, SIGTERM);
	for (size_t i = 0; i < master_nretiring; i++)
		kill(master_retiring[i], SIGTERM);
	for (;;) {
		master_reap();
		left = (int)master_nretiring;
		for (size_t i = 0; i < master_nprocs; i++)
			if (master_procs[i].pid != 0)
				left++;
		if (left == 0)
			return;
		if (ev_now_ms() >= deadline) {
			log_warn("%d process(es) did not stop; killing", left);
			for (size_t i = 0; i < master_nprocs; i++)
				if (master_procs[i].pid != 0)
					kill(master_procs[i].pid, SIGKILL);
			for (size_t i = 0; i < master_nretiring; i++)
				kill(master_retiring[i], SIGKILL);
			deadline = ev_now_ms() + 5000;
		}
		usleep(50000);
	}
}

/*
 * SIGHUP. The new configuration is checked and its sockets set up first
 * (unchanged addresses keep their sockets, so nothing is refused); only
 * then are the daemons replaced, each as its row's reload policy says:
 * a stop-first service (qmgr: one scheduler at a time) is stopped before
 * its new process starts, while the old processes of a draining service
 * (smtpd, smtp) accept nothing new, finish their sessions and deliveries,
 * and exit. New sessions get the new configuration, TLS certificate and
 * key.
 */
/*
 * The bounce classification rule files (bounce.classes) are part of the
 * configuration: a missing or broken file the operator named stops the
 * start (or the reload) here, not each smtp process later. 0 or -1 (why).
 */
static int
master_check_classes(const struct cfg *cfg, struct vbuf *why)
{
	struct bclass_rules *rules;

	struct shaping *sh;

	if ((rules = bclass_load(cfg, why)) == NULL)
		return -1;
	bclass_free(rules);
	/* The shaping file (shaping.file) likewise, for qmgr. */
	if ((sh = shaping_load(cfg->shaping_file, why)) == NULL)
		return -1;
	shaping_free(sh);
	return 0;
}

/*
 * The webhooks' files (cfg_check_files), opened as webhookd will open
 * them: as mail_owner. As root that takes a child that becomes
 * mail_owner, so a file only root can read is reported here, with its
 * line, and not later as webhookd exiting at every restart.
 */
static int
master_check_files(const struct cfg *cfg, struct vbuf *why)
{
	char buf[1024];
	ssize_t n;
	size_t got = 0;
	pid_t pid;
	int fds[2], status;

	if (cfg->nwebhooks == 0)
		return 0;
	if (geteuid() != 0)
		return cfg_check_files(cfg, why);
	if (pipe2(fds, O_CLOEXEC) == -1) {
		vbuf_setf(why, "pipe: %s", strerror(errno));
		return -1;
	}
	if ((pid = fork()) == -1) {
		vbuf_setf(why, "fork: %s", strerror(errno));
		(void)close(fds[0]);
		(void)close(fds[1]);
		return -1;
	}
	if (pid == 0) {
		(void)close(fds[0]);
		if (privsep_become_owner(cfg, why) == 0 &&
		    cfg_check_files(cfg, why) == 0)
			_exit(0);
		/* A short write leaves the generic message: still fatal. */
		_exit(write(fds[1], why->data, why->len) < 0 ? 2 : 1);
	}
	(void)close(fds[1]);
	while (got < sizeof(buf) - 1 && ((n = read(fds[0], buf + got,
	    sizeof(buf) - 1 - got)) > 0 || (n == -1 && errno == EINTR)))
		if (n > 0)
			got += (size_t)n;
	buf[got] = '\0';
	(void)close(fds[0]);
	while (waitpid(pid, &status, 0) == -1)
		if (errno != EINTR) {
			status = 1;
			break;
		}
	if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
		return 0;
	vbuf_setf(why, "%s", got > 0 ? buf : "webhook files: check failed");
	return -1;
}

static void
master_reload(void)
{
	struct vbuf *why = vbuf_create(0);
	struct cfg *ncfg;
	int64_t deadline;

	master_got_hup = 0;
	if ((ncfg = cfg_load(master_cfg_path, why)) == NULL ||
	    master_check_classes(ncfg, why) == -1 ||
	    master_check_files(ncfg, why) == -1) {
		log_warn("reload: %s; keeping the running configuration",
		    why->data);
		cfg_free(ncfg);
		vbuf_free(why);
		return;
	}
	/* 1. The new sockets and key, before anything is stopped. */
	master_kept_save(master_cfg);
	master_tls_close();
	if (master_setup(ncfg, why) == -1) {
		log_warn("reload: %s; keeping the running configuration",
		    why->data);
		cfg_free(ncfg);
		if (master_setup(master_cfg, why) == -1)
			log_fatal("cannot restore the old configuration: %s",
			    why->data);
		master_kept_close();
		vbuf_free(why);
		return;
	}
	master_kept_close();
	cfg_free(master_cfg);
	master_cfg = ncfg;
	master_log_init(master_cfg);
	log_info("reload: configuration %s re-read; replacing daemons",
	    master_cfg_path);

	/* 2. The old daemons stop or drain, by their rows. */
	master_stopping = 1;
	for (size_t i = 0; i < master_nprocs; i++) {
		struct master_proc *p = &master_procs[i];

		if (p->pid == 0)
			continue;
		if (p->svc->row->reload == MASTER_RELOAD_STOP) {
			kill(p->pid, SIGTERM);
			deadline = ev_now_ms() + MASTER_STOP_GRACE_MS;
			while (p->pid != 0 && ev_now_ms() < deadline) {
				usleep(20000);
				master_reap();
			}
			if (p->pid != 0) {
				kill(p->pid, SIGKILL);
				while (p->pid != 0) {
					usleep(20000);
					master_reap();
				}
			}
			continue;
		}
		kill(p->pid, SIGUSR1);
		if (p->status_fd != -1) {
			ev_fd_del(p->status_fd);
			close(p->status_fd);
		}
		if (master_nretiring < MASTER_MAX_RETIRING)
			master_retiring[master_nretiring++] = p->pid;
		else
			kill(p->pid, SIGTERM);
		p->pid = 0;
	}
	master_stopping = 0;

	/* 3. A new process table, started by the main loop. */
	master_procs_build();
	vbuf_free(why);
}

/*
 * Fatal unless every service's program can be run by the credentials it
 * gets: otherwise each start would only log "exec: Permission denied",
 * again at every restart.
 */
static void
master_check_programs(const struct cfg *cfg)
{
	struct vbuf *why = vbuf_create(0);
	struct passwd *pw;
	char who[128];

	if (geteuid() == 0)
		snprintf(who, sizeof(who), "mail_owner %s", cfg->mail_owner);
	else if ((pw = getpwuid(geteuid())) != NULL)
		snprintf(who, sizeof(who), "user %s", pw->pw_name);
	else
		snprintf(who, sizeof(who), "uid %lu",
		    (unsigned long)geteuid());
	for (size_t s = 0; s < MASTER_NSVC; s++)
		if (master_spawn_check(&master_svc[s], who, why) == -1)
			log_fatal("%s", why->data);
	vbuf_free(why);
}

int
main(int argc, char *argv[])
{
	struct sigaction sa;
	struct vbuf *why;
	char exe[PATH_MAX], lockpath[PATH_MAX], *daemon_dir;
	int ch, foreground = 0, verbose = 0, lockfd;
	ssize_t n;

	log_init("master", LOG_DEST_STDERR);
	master_cfg_path = CFG_DEFAULT_PATH;
	while ((ch = getopt(argc, argv, "c:fv")) != -1) {
		switch (ch) {
		case 'c':
			master_cfg_path = optarg;
			break;
		case 'f':
			foreground = 1;
			break;
		case 'v':
			verbose = 1;
			log_set_verbose(1);
			break;
		default:
			master_usage();
		}
	}
	if (optind != argc)
		master_usage();
	/* Daemons get the path after daemon(3) has changed to "/". */
	if ((master_cfg_path = realpath(master_cfg_path, NULL)) == NULL)
		log_fatal("configuration file: %m");

	/* 1. Configuration. */
	why = vbuf_create(0);
	if ((master_cfg = cfg_load(master_cfg_path, why)) == NULL ||
	    master_check_classes(master_cfg, why) == -1)
		log_fatal("%s", why->data);
	master_log_init(master_cfg);

	/*
	 * 2. Who the daemons run as (and own the queue): the same lookup
	 * relayctl and relayq make before they create the queue tree on a
	 * fresh installation (lib/privsep).
	 */
	if (privsep_owner_ids(master_cfg, &master_uid, &master_gid, why) ==
	    -1 || master_check_files(master_cfg, why) == -1)
		log_fatal("%s", why->data);

	/* 3. Where the daemons are: daemon_directory, else next to us. */
	if (master_cfg->daemon_directory != NULL)
		daemon_dir = xstrdup(master_cfg->daemon_directory);
	else {
		if ((n = readlink("/proc/self/exe", exe, sizeof(exe) - 1)) ==
		    -1)
			log_fatal("readlink /proc/self/exe: %m");
		exe[n] = '\0';
		daemon_dir = xstrdup(dirname(exe));
	}

	/* 4. Queue tree, one master per queue, sockets, listeners, key. */
	if (qstore_create_dirs(master_cfg->queue_directory, master_uid,
	    master_gid, why) == -1)
		log_fatal("%s", why->data);
	snprintf(lockpath, sizeof(lockpath), "%s/master.lock",
	    master_cfg->queue_directory);
	if ((lockfd = open(lockpath, O_RDWR | O_CREAT | O_CLOEXEC, 0600)) ==
	    -1)
		log_fatal("open %s: %m", lockpath);
	if (flock(lockfd, LOCK_EX | LOCK_NB) == -1)
		log_fatal("another master is running on %s",
		    master_cfg->queue_directory);
	if (master_setup(master_cfg, why) == -1)
		log_fatal("%s", why->data);
	vbuf_free(why);

	/* 5. The daemons can be run, said once here, not at every restart. */
	master_spawn_setup(daemon_dir, master_cfg_path, master_uid,
	    master_gid, geteuid() == 0, verbose);
	master_check_programs(master_cfg);

	/* 6. Background unless -f. */
	if (!foreground && daemon(0, 0) == -1)
		log_fatal("daemon: %m");

	/* 7. Signals only set flags; the loop does the work. */
	memset(&sa, 0, sizeof(sa));
	sigemptyset(&sa.sa_mask);
	sa.sa_handler = master_on_signal;
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	sigaction(SIGUSR2, &sa, NULL);
	sigaction(SIGCHLD, &sa, NULL);
	sa.sa_handler = SIG_IGN;
	sigaction(SIGPIPE, &sa, NULL);

	master_started_s = time(NULL);
	master_procs_build();
	log_info("daemon started -- Petrel, configuration %s",
	    master_cfg_path);

	/* 8. Supervise. */
	while (!master_got_term) {
		master_reap();
		if (master_got_hup)
			master_reload();
		if (master_got_reopen)
			master_reopen();
		master_start_due();
		if (master_dirty)
			master_publish();
		master_ticket_tick();
		(void)ev_run_once(1000);
	}
	log_info("terminating on signal");
	master_stop_all();
	master_teardown();
	tlsticket_free(master_ticket);
	mstatus_remove(master_cfg->queue_directory);
	(void)unlink(lockpath);
	exit(0);
}
