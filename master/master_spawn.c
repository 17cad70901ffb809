/*
 * master_spawn.c - starting one daemon process: descriptors, privileges,
 * exec; and checking at start that the daemons can be run at all.
 *
 * The child gets exactly the contract of daemon.h: the status pipe on fd 3,
 * its sockets from fd 4 on, and (when its row says so: smtpd) the TLS keys
 * and then the sealed, read-only session-ticket key object after them;
 * everything else is closed. Groups (mail_owner's group, plus
 * the row's extra group), gid and uid are dropped and the drop is checked
 * before exec, as OpenSMTPD does. Then PR_SET_PDEATHSIG (the child gets
 * SIGTERM when master dies, even by SIGKILL) and PR_SET_NO_NEW_PRIVS (no
 * exec from the daemon, or from anything an attacker makes it run, can
 * gain privileges through a set-user-ID or file-capability binary).
 *
 * master_spawn_check() runs the same drop in a child that then asks the
 * kernel (faccessat with AT_EACCESS) whether the path and program can be
 * reached and executed: root's own answer would be yes to anything.
 */
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "daemon.h"
#include "log.h"
#include "master.h"

static const char *spawn_dir;
static const char *spawn_cfg;
static uid_t spawn_uid;
static gid_t spawn_gid;
static int spawn_drop;
static int spawn_verbose;
static pid_t spawn_parent;

static int master_drop(const struct master_service *);
static int master_check_child(const struct master_service *, const char *,
    struct vbuf *);
static void master_child(struct master_service *, int,
    const struct master_tls *) __attribute__((noreturn));

void
master_spawn_setup(const char *daemon_dir, const char *cfg_path, uid_t uid,
    gid_t gid, int drop, int verbose)
{
	spawn_dir = daemon_dir;
	spawn_cfg = cfg_path;
	spawn_uid = uid;
	spawn_gid = gid;
	spawn_drop = drop;
	spawn_verbose = verbose;
}

/*
 * In a child: mail_owner's group (and the row's extra group), gid and uid,
 * for good; 0 also when master is not root and there is nothing to drop.
 */
static int
master_drop(const struct master_service *svc)
{
	gid_t groups[2] = { spawn_gid, svc->extra_gid };
	size_t ngroups = svc->extra_gid != (gid_t)-1 ? 2 : 1;

	if (!spawn_drop)
		return 0;
	if (setgroups(ngroups, groups) == -1 ||
	    setresgid(spawn_gid, spawn_gid, spawn_gid) == -1 ||
	    setresuid(spawn_uid, spawn_uid, spawn_uid) == -1 ||
	    getuid() != spawn_uid || geteuid() != spawn_uid ||
	    getgid() != spawn_gid || getegid() != spawn_gid ||
	    setuid(0) != -1)
		return -1;
	return 0;
}

int
master_spawn_check(const struct master_service *svc, const char *who,
    struct vbuf *why)
{
	char msg[1024];
	int pfd[2], status;
	ssize_t n;
	size_t len = 0;
	pid_t pid;

	if (pipe2(pfd, O_CLOEXEC) == -1) {
		vbuf_setf(why, "pipe: %s", strerror(errno));
		return -1;
	}
	if ((pid = fork()) == -1) {
		vbuf_setf(why, "fork: %s", strerror(errno));
		close(pfd[0]);
		close(pfd[1]);
		return -1;
	}
	if (pid == 0) {
		close(pfd[0]);
		if (master_check_child(svc, who, why) == 0)
			_exit(0);
		(void)!write(pfd[1], why->data, why->len);
		_exit(1);
	}
	close(pfd[1]);
	/* The child's reason, if any, until it exits (EOF). */
	while (len < sizeof(msg) - 1) {
		n = read(pfd[0], msg + len, sizeof(msg) - 1 - len);
		if (n > 0)
			len += (size_t)n;
		else if (n == 0 || errno != EINTR)
			break;
	}
	msg[len] = '\0';
	close(pfd[0]);
	while (waitpid(pid, &status, 0) == -1)
		if (errno != EINTR) {
			vbuf_setf(why, "waitpid: %s", strerror(errno));
			return -1;
		}
	if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
		return 0;
	if (len > 0)
		vbuf_setf(why, "%s", msg);
	else
		vbuf_setf(why, "daemon_directory %s: cannot check %s as %s",
		    spawn_dir, svc->row->prog, who);
	return -1;
}

/*
 * The check itself, with svc's credentials: each directory named on the
 * path down to daemon_directory searchable, so the message can name the
 * first that is not, then the program a regular file we may execute.
 */
static int
master_check_child(const struct master_service *svc, const char *who,
    struct vbuf *why)
{
	char path[4096];
	struct stat st;
	size_t i, len;

	if (master_drop(svc) == -1) {
		vbuf_setf(why, "cannot drop privileges to %s for %s", who,
		    svc->row->prog);
		return -1;
	}
	if ((len = strlen(spawn_dir)) >= sizeof(path)) {
		vbuf_setf(why, "daemon_directory %s: path too long",
		    spawn_dir);
		return -1;
	}
	for (i = 1; i <= len; i++) {
		if (i < len && spawn_dir[i] != '/')
			continue;
		memcpy(path, spawn_dir, i);
		path[i] = '\0';
		if (faccessat(AT_FDCWD, path, X_OK, AT_EACCESS) == 0)
			continue;
		if (errno != EACCES)
			vbuf_setf(why, "daemon_directory %s: %s: %s",
			    spawn_dir, path, strerror(errno));
		else if (i == len)
			vbuf_setf(why, "daemon_directory %s: not executable "
			    "by %s", spawn_dir, who);
		else
			vbuf_setf(why, "daemon_directory %s: not executable "
			    "by %s (no search permission on %s)", spawn_dir,
			    who, path);
		return -1;
	}
	if (snprintf(path, sizeof(path), "%s/%s", spawn_dir,
	    svc->row->prog) >= (int)sizeof(path)) {
		vbuf_setf(why, "daemon_directory %s: path too long",
		    spawn_dir);
		return -1;
	}
	if (stat(path, &st) == -1) {
		vbuf_setf(why, "daemon_directory %s: %s: %s", spawn_dir,
		    svc->row->prog, strerror(errno));
		return -1;
	}
	if (!S_ISREG(st.st_mode) ||
	    faccessat(AT_FDCWD, path, X_OK, AT_EACCESS) == -1) {
		vbuf_setf(why, "daemon_directory %s: %s not executable by %s",
		    spawn_dir, svc->row->prog, who);
		return -1;
	}
	return 0;
}

pid_t
master_spawn(struct master_service *svc, const struct master_tls *tls,
    int *status_fd)
{
	int pfd[2];
	pid_t pid;

	if (pipe2(pfd, O_CLOEXEC) == -1) {
		log_warn("pipe: %m");
		return -1;
	}
	spawn_parent = getpid();
	if ((pid = fork()) == -1) {
		log_warn("fork: %m");
		close(pfd[0]);
		close(pfd[1]);
		return -1;
	}
	if (pid == 0) {
		close(pfd[0]);
		master_child(svc, pfd[1], svc->row->pass_key ? tls : NULL);
	}
	close(pfd[1]);
	(void)fcntl(pfd[0], F_SETFL, O_NONBLOCK);
	*status_fd = pfd[0];
	return pid;
}

static void
master_child(struct master_service *svc, int status_wr,
    const struct master_tls *tls)
{
	char path[4096], keyarg[DAEMON_MAX_KEYS * 8], ticketarg[16];
	char *argv[14];
	int tmp[MASTER_MAX_FDS + DAEMON_MAX_KEYS + 2], ntmp = 0, argc = 0;
	int target, first_key = 0, ticket = 0, away;
	size_t i, len;
	sigset_t none;

	/*
	 * 1. Move every descriptor out of the way, then into place. Out of
	 * the way is at or above the end of the range they go to, which is
	 * as low as that can be: a daemon run under a small RLIMIT_NOFILE
	 * must still start (a fixed 256 made F_DUPFD fail under 256).
	 */
	if (tls != NULL && tls->nkeys == 0)
		tls = NULL;
	away = DAEMON_STATUS_FD + 1 + (int)svc->nfds + (tls != NULL ?
	    (int)tls->nkeys + (tls->ticket_fd >= 0) : 0);
	tmp[ntmp++] = fcntl(status_wr, F_DUPFD, away);
	for (i = 0; i < svc->nfds; i++)
		tmp[ntmp++] = fcntl(svc->fds[i], F_DUPFD, away);
	if (tls != NULL) {
		first_key = DAEMON_STATUS_FD + ntmp;
		for (i = 0; i < tls->nkeys; i++)
			tmp[ntmp++] = fcntl(tls->key_fds[i], F_DUPFD, away);
		if (tls->ticket_fd >= 0) {
			ticket = DAEMON_STATUS_FD + ntmp;
			tmp[ntmp++] = fcntl(tls->ticket_fd, F_DUPFD, away);
		}
	}
	for (int k = 0; k < ntmp; k++) {
		if (tmp[k] == -1 || dup2(tmp[k], DAEMON_STATUS_FD + k) == -1) {
			fprintf(stderr, "master: %s: descriptors for the "
			    "daemon: %s\n", svc->row->prog, strerror(errno));
			_exit(111);
		}
	}
	target = DAEMON_STATUS_FD + ntmp;
	if (close_range((unsigned)target, ~0U, 0) == -1) {
		for (int fd = target; fd < 4096; fd++)
			(void)close(fd);
	}

	/* 2. Privileges: groups, gid, uid; then make sure they stuck. */
	if (master_drop(svc) == -1) {
		fprintf(stderr, "master: cannot drop privileges for %s\n",
		    svc->row->prog);
		_exit(111);
	}
	/*
	 * Daemons must not outlive a master killed with SIGKILL, and nothing
	 * they exec may gain privileges (set-user-ID, file capabilities).
	 */
	if (prctl(PR_SET_PDEATHSIG, SIGTERM) == -1 ||
	    getppid() != spawn_parent ||
	    prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == -1)
		_exit(111);
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	signal(SIGPIPE, SIG_DFL);
	signal(SIGHUP, SIG_DFL);
	signal(SIGTERM, SIG_DFL);
	signal(SIGCHLD, SIG_DFL);
	/*
	 * Ignored until daemon_main() catches it: a log reopen (master's
	 * SIGUSR2) must not kill a daemon that has not opened the log yet.
	 */
	signal(SIGUSR2, SIG_IGN);

	/* 3. Exec with the contract on the command line. */
	if (snprintf(path, sizeof(path), "%s/%s", spawn_dir, svc->row->prog) >=
	    (int)sizeof(path))
		_exit(111);
	argv[argc++] = (char *)svc->row->prog;
	argv[argc++] = "-c";
	argv[argc++] = (char *)spawn_cfg;
	if (svc->nfds > 0) {
		argv[argc++] = "-s";
		argv[argc++] = svc->names;
	}
	if (tls != NULL) {
		keyarg[0] = '\0';
		for (i = 0, len = 0; i < tls->nkeys; i++) {
			len += (size_t)snprintf(keyarg + len, sizeof(keyarg) -
			    len, "%s%d", i > 0 ? "," : "", first_key + (int)i);
			if (len >= sizeof(keyarg))
				_exit(111);
		}
		argv[argc++] = "-k";
		argv[argc++] = keyarg;
		if (ticket > 0) {
			snprintf(ticketarg, sizeof(ticketarg), "%d", ticket);
			argv[argc++] = "-t";
			argv[argc++] = ticketarg;
		}
	}
	if (spawn_verbose)
		argv[argc++] = "-v";
	argv[argc] = NULL;
	execv(path, argv);
	fprintf(stderr, "master: exec %s: %s\n", path, strerror(errno));
	_exit(111);
}
