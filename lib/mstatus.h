/*
 * mstatus.h - master's status file: which daemons run, since when, and how
 * often they were restarted, for relayctl status.
 *
 * master rewrites <queue_directory>/master.status (mode 0640, owned by
 * mail_owner) whenever a child starts or exits, through a temporary file
 * and rename(2), so a reader sees the old or the new file, never a torn
 * one; it removes the file when it stops. A file left by a master that was
 * killed names a pid that is gone (or is no master), which the reader
 * checks. The file is one attribute record (lib/attr), the encoding every
 * other internal record uses:
 *   version=1 master_pid= master_started= updated=
 *   then per process slot: proc=PROGRAM pid= (0: not running) started=
 *   restarts= fails= next_start= ready=
 * Times are epoch seconds. See master(8) and relayctl(8).
 */
#ifndef PETREL_MSTATUS_H
#define PETREL_MSTATUS_H

#include <sys/types.h>

#include <stddef.h>
#include <stdint.h>

#include "vbuf.h"

#define MSTATUS_FILE		"master.status"
#define MSTATUS_VERSION		1
#define MSTATUS_PROCS_MAX	512	/* slots a reader accepts */
#define MSTATUS_PROG_MAX	31
#define MSTATUS_SIZE_MAX	(256 * 1024)	/* bytes a reader accepts */

/* One process slot of master's table. */
struct mstatus_proc {
	char		 prog[MSTATUS_PROG_MAX + 1];
	int64_t		 pid;		/* 0: not running (waiting to start) */
	int64_t		 started;	/* epoch s of the current process */
	uint64_t	 restarts;	/* exits restarted after */
	uint64_t	 fails;		/* failed exits in a row (backoff) */
	int64_t		 next_start;	/* not running: epoch s, 0 now */
	int		 ready;		/* running and past its start-up */
};

struct mstatus {
	int64_t			 master_pid;
	int64_t			 master_started;
	int64_t			 updated;
	struct mstatus_proc	*procs;
	size_t			 nprocs;
};

/*
 * Writes st as qdir/master.status: a new temporary file (O_EXCL,
 * O_NOFOLLOW: the directory belongs to mail_owner), fchown to uid/gid
 * when running as root, then rename over the old file. Returns 0, or -1
 * with the reason in why (the old file, if any, stays).
 */
int	mstatus_write(const char *qdir, const struct mstatus *st, uid_t, gid_t,
	    struct vbuf *why);
/* Removes qdir/master.status (master's clean exit). */
void	mstatus_remove(const char *qdir);
/*
 * Reads qdir/master.status into st (release with mstatus_release).
 * Returns 1 read, 0 there is none, -1 unreadable or malformed (why).
 */
int	mstatus_read(const char *qdir, struct mstatus *st, struct vbuf *why);
void	mstatus_release(struct mstatus *);
/*
 * Whether pid is a live process whose program name is "master" (so a
 * file left behind by a killed master, whose pid was reused since, does
 * not pass for a running one). 1 yes, 0 no.
 */
int	mstatus_master_alive(int64_t pid);

#endif
