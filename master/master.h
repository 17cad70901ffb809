/*
 * master.h - private interfaces of master, the supervisor.
 *
 * master binds the listeners and private sockets, opens the TLS key while
 * it may still be root, and runs each daemon as mail_owner, restarting
 * those that exit with a growing delay. See master(8).
 */
#ifndef PETREL_MASTER_H
#define PETREL_MASTER_H

#include <sys/types.h>

#include <stdint.h>

#include "cfg.h"

#define MASTER_MAX_FDS		64

/* The descriptors master hands to one kind of daemon. */
struct master_service {
	const char	*prog;			/* smtpd, qmgr, smtp */
	unsigned	 count;			/* processes to keep running */
	int		 fds[MASTER_MAX_FDS];	/* listeners, in order */
	char		 names[512];		/* -s argument */
	size_t		 nfds;
	int		 pass_key;		/* hand over the TLS key */
	int		 dkim_group;		/* also in dkim.group (smtp) */
};

struct master_proc {
	struct master_service	*svc;
	pid_t			 pid;		/* 0: not running */
	int			 status_fd;	/* read end of the status pipe */
	int			 ready;
	int64_t			 started;	/* ms */
	unsigned		 fails;		/* consecutive early exits */
	int64_t			 next_start;	/* ms; backoff */
};

/* master_listen.c */
int	master_listen_tcp(const struct cfg_listener *, struct vbuf *why);
int	master_listen_unix(const char *qdir, const char *name, uid_t, gid_t,
	    struct vbuf *why);

/* master_spawn.c */
void	master_spawn_setup(const char *daemon_dir, const char *cfg_path,
	    uid_t, gid_t, int drop, int verbose);
/* The dkim.group gid, or -1 when there is none: smtp alone gets it. */
void	master_spawn_dkim_gid(gid_t);
pid_t	master_spawn(struct master_service *, int key_fd, int *status_fd);

#endif
