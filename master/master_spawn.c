/*
 * master_spawn.c - starting one daemon process: descriptors, privileges,
 * exec.
 *
 * The child gets exactly the contract of daemon.h: the status pipe on fd 3,
 * its listeners from fd 4 on, and (smtpd only) the TLS key after them;
 * everything else is closed. Groups, gid and uid are dropped and the drop
 * is checked before exec, as OpenSMTPD does.
 */
#include <sys/prctl.h>
#include <sys/types.h>

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
static gid_t spawn_dkim_gid = (gid_t)-1;
static pid_t spawn_parent;

static void master_child(struct master_service *, int, int)
    __attribute__((noreturn));

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

void
master_spawn_dkim_gid(gid_t gid)
{
	spawn_dkim_gid = gid;
}

pid_t
master_spawn(struct master_service *svc, int key_fd, int *status_fd)
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
		master_child(svc, pfd[1], svc->pass_key ? key_fd : -1);
	}
	close(pfd[1]);
	(void)fcntl(pfd[0], F_SETFL, O_NONBLOCK);
	*status_fd = pfd[0];
	return pid;
}

static void
master_child(struct master_service *svc, int status_wr, int key_fd)
{
	char path[4096], keyarg[16];
	char *argv[12];
	int tmp[MASTER_MAX_FDS + 2], ntmp = 0, argc = 0, target;
	size_t i;
	sigset_t none;

	/* 1. Move every descriptor out of the way, then into place. */
	tmp[ntmp++] = fcntl(status_wr, F_DUPFD, 256);
	for (i = 0; i < svc->nfds; i++)
		tmp[ntmp++] = fcntl(svc->fds[i], F_DUPFD, 256);
	if (key_fd >= 0)
		tmp[ntmp++] = fcntl(key_fd, F_DUPFD, 256);
	for (int k = 0; k < ntmp; k++) {
		if (tmp[k] == -1 || dup2(tmp[k], DAEMON_STATUS_FD + k) == -1)
			_exit(111);
	}
	target = DAEMON_STATUS_FD + ntmp;
	if (close_range((unsigned)target, ~0U, 0) == -1) {
		for (int fd = target; fd < 4096; fd++)
			(void)close(fd);
	}

	/* 2. Privileges: groups, gid, uid; then make sure they stuck. */
	if (spawn_drop) {
		gid_t groups[2] = { spawn_gid, spawn_dkim_gid };
		size_t ngroups = svc->dkim_group &&
		    spawn_dkim_gid != (gid_t)-1 ? 2 : 1;

		/* The DKIM key group for smtp only (smtpd never reads keys). */
		if (setgroups(ngroups, groups) == -1 ||
		    setresgid(spawn_gid, spawn_gid, spawn_gid) == -1 ||
		    setresuid(spawn_uid, spawn_uid, spawn_uid) == -1 ||
		    getuid() != spawn_uid || geteuid() != spawn_uid ||
		    getgid() != spawn_gid || getegid() != spawn_gid ||
		    setuid(0) != -1) {
			fprintf(stderr, "master: cannot drop privileges for "
			    "%s\n", svc->prog);
			_exit(111);
		}
	}
	/* Daemons must not outlive a master killed with SIGKILL. */
	if (prctl(PR_SET_PDEATHSIG, SIGTERM) == -1 ||
	    getppid() != spawn_parent)
		_exit(111);
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	signal(SIGPIPE, SIG_DFL);
	signal(SIGHUP, SIG_DFL);
	signal(SIGTERM, SIG_DFL);
	signal(SIGCHLD, SIG_DFL);

	/* 3. Exec with the contract on the command line. */
	if (snprintf(path, sizeof(path), "%s/%s", spawn_dir, svc->prog) >=
	    (int)sizeof(path))
		_exit(111);
	argv[argc++] = (char *)svc->prog;
	argv[argc++] = "-c";
	argv[argc++] = (char *)spawn_cfg;
	if (svc->nfds > 0) {
		argv[argc++] = "-s";
		argv[argc++] = svc->names;
	}
	if (key_fd >= 0) {
		snprintf(keyarg, sizeof(keyarg), "%d",
		    DAEMON_LISTEN_FD + (int)svc->nfds);
		argv[argc++] = "-k";
		argv[argc++] = keyarg;
	}
	if (spawn_verbose)
		argv[argc++] = "-v";
	argv[argc] = NULL;
	execv(path, argv);
	fprintf(stderr, "master: exec %s: %s\n", path, strerror(errno));
	_exit(111);
}
