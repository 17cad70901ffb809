/*
 * master.h - private interfaces of master, the supervisor.
 *
 * master binds the listeners and private sockets, opens the TLS keys while
 * it may still be root, keeps the shared TLS session-ticket keys (creating
 * and rotating them), and runs each daemon of its service table as
 * mail_owner, restarting those that exit with a growing delay. The table
 * (master.c) is Postfix's master.cf compiled in: one row per daemon. See
 * master(8).
 */
#ifndef PETREL_MASTER_H
#define PETREL_MASTER_H

#include <sys/types.h>

#include <stddef.h>
#include <stdint.h>

#include "cfg.h"
#include "daemon.h"
#include "vbuf.h"

/* 64 listeners (CFG_MAX_LISTENERS) and the local submission socket. */
#define MASTER_MAX_FDS		65

/* What a service listens on. */
enum master_listen {
	MASTER_LISTEN_NONE,	/* nothing: it works from the queue */
	MASTER_LISTEN_TCP,	/* every listener of the configuration */
	MASTER_LISTEN_PRIVATE,	/* <queue_directory>/private/<socket> */
};

/* How a service's old processes give way to new ones on SIGHUP. */
enum master_reload {
	/*
	 * SIGTERM, and the old process is gone (SIGKILL after the grace
	 * period) before the new one starts: one instance at a time.
	 */
	MASTER_RELOAD_STOP,
	/*
	 * SIGUSR1: the old processes accept nothing new, finish their
	 * sessions and deliveries and exit, while new ones already run.
	 */
	MASTER_RELOAD_DRAIN,
};

/*
 * One row of the service table, one daemon: everything master's setup,
 * spawn and reload paths need to know about it.
 */
struct master_row {
	const char	*prog;		/* file in daemon_directory */
	/*
	 * Processes to keep running: count when it is not 0, else the
	 * unsigned field of struct cfg at offset count_cfg (a key such as
	 * smtpd.processes). A row sets one of the two.
	 */
	unsigned	 count;
	size_t		 count_cfg;
	enum master_listen listen;
	const char	*socket;	/* MASTER_LISTEN_PRIVATE: its name */
	/* gets the open TLS private keys and the ticket keys */
	int		 pass_key;
	/*
	 * MASTER_LISTEN_TCP: also <queue_directory>/public/submit, after
	 * the TCP listeners, when local_submission.users is set (sendmail).
	 */
	int		 local_submit;
	/*
	 * An extra supplementary group, when group_key (the setting, for
	 * messages) is not NULL: the group named by the char * field of
	 * struct cfg at offset group_cfg. group_use says what it is for,
	 * in the warning given when the group does not exist.
	 */
	const char	*group_key;
	size_t		 group_cfg;
	const char	*group_use;
	enum master_reload reload;
};

/* One service as set up for the configuration in force. */
struct master_service {
	const struct master_row *row;
	unsigned	 count;			/* processes to keep running */
	int		 fds[MASTER_MAX_FDS];	/* its sockets, in order */
	char		 names[512];		/* -s argument */
	size_t		 nfds;
	gid_t		 extra_gid;		/* (gid_t)-1: none */
};

struct master_proc {
	struct master_service	*svc;
	pid_t			 pid;		/* 0: not running */
	int			 status_fd;	/* read end of the status pipe */
	int			 ready;
	int64_t			 started;	/* ms */
	unsigned		 fails;		/* consecutive early exits */
	uint64_t		 restarts;	/* exits restarted after */
	int64_t			 started_s;	/* epoch s, for mstatus */
	int64_t			 next_start;	/* ms; backoff */
};

/* What a pass_key row's processes get (smtpd). */
struct master_tls {
	int		 key_fds[DAEMON_MAX_KEYS]; /* tls.private_key order */
	size_t		 nkeys;
	int		 ticket_fd;	/* tlsticket object, or -1 */
};

/* master_listen.c */
int	master_listen_tcp(const struct cfg_listener *, struct vbuf *why);
int	master_listen_unix(const char *qdir, const char *name, uid_t, gid_t,
	    struct vbuf *why);
/*
 * <qdir>/public/<name>, for local users (sendmail(1)): public/ mode 0755
 * and the socket 0666, both owned by uid/gid. Anyone may connect; the
 * server decides by the peer's credentials (SO_PEERCRED).
 */
int	master_listen_public(const char *qdir, const char *name, uid_t, gid_t,
	    struct vbuf *why);

/* master_spawn.c */
/*
 * Where the programs are, the configuration path they get, who they run
 * as, whether master drops to that (it is root) and -v.
 */
void	master_spawn_setup(const char *daemon_dir, const char *cfg_path,
	    uid_t, gid_t, int drop, int verbose);
/*
 * Whether svc's program can be run by the credentials svc gets (who names
 * them in messages): every directory of daemon_directory searchable, the
 * program an executable file. Returns 0, or -1 with the reason in why.
 */
int	master_spawn_check(const struct master_service *svc, const char *who,
	    struct vbuf *why);
/*
 * Starts one process of svc (with the TLS keys of tls if svc's row says
 * so); returns its pid and the read end of its status pipe, or -1
 * (logged).
 */
pid_t	master_spawn(struct master_service *svc, const struct master_tls *tls,
	    int *status_fd);

#endif
