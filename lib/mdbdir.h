/*
 * mdbdir.h - one LMDB environment with one named database in a directory
 * under queue_directory, opened lazily.
 *
 * The plumbing shared by the small registries that live in their own
 * environment beside the queue: the credential store (lib/cred, cred/) and
 * the DKIM domain registry (lib/dkimkey, domains/). A writable handle
 * (relayctl) creates the directory (0700), the environment and the
 * database; a read-only handle (smtpd, smtp) treats a missing environment
 * or database as "not there yet" and looks again at the next attach, so
 * what is created later is seen. Open it after fork, in the process that
 * uses it (STYLE.md, LMDB rules).
 */
#ifndef PETREL_MDBDIR_H
#define PETREL_MDBDIR_H

#include <stddef.h>

#include <lmdb.h>

#include "cfg.h"
#include "vbuf.h"

/*
 * Embedded in the owner's handle. Read env, dbi and writable after a
 * successful mdbdir_attach; dir for messages. The rest is private.
 */
struct mdbdir {
	char		*dir;		/* <queue_directory>/<subdir> */
	const char	*what;		/* "credential database", for */
					/* messages; not owned */
	const char	*dbname;	/* the named database; not owned */
	MDB_env		*env;		/* NULL: read-only and not there yet */
	MDB_dbi		 dbi;
	int		 have_dbi;
	int		 writable;
	size_t		 map_size;	/* bytes */
	unsigned	 maxdbs;
	unsigned	 env_flags;	/* more mdb_env_open flags (e.g. */
					/* MDB_NOTLS), set before attach */
};

/*
 * Sets m up for <cfg->queue_directory>/<subdir> and database dbname (both
 * strings, like what, must outlive m). writable: mkdir the directory 0700
 * if it is missing. The caller may set m->env_flags afterwards. Does not open the environment: call mdbdir_attach.
 * Returns 0, or -1 with the reason in why ("queue_directory is not set",
 * "mkdir DIR: ...", "DIR: not a directory"); m is then released. Either
 * way m must be released with mdbdir_release.
 */
int	mdbdir_init(struct mdbdir *m, const struct cfg *cfg, const char *subdir,
	    const char *dbname, size_t map_size, unsigned maxdbs, int writable,
	    const char *what, struct vbuf *why);

/*
 * Opens the environment and the database if that has not happened yet
 * (a writable handle also clears stale readers once). Returns 1 when ready
 * (m->env and m->dbi usable), 0 when a read-only handle finds no
 * environment or database yet (try again later), -1 on error (why, which
 * may be NULL).
 */
int	mdbdir_attach(struct mdbdir *m, struct vbuf *why);

/*
 * mdbdir_attach, then begins a transaction (flags: 0 to write, or
 * MDB_RDONLY) in *txn. Returns 1 (the caller commits or aborts *txn), 0
 * not there yet (a read-only handle; no transaction), -1 error (why).
 */
int	mdbdir_begin(struct mdbdir *m, unsigned flags, MDB_txn **txn,
	    struct vbuf *why);

/*
 * mdbdir_begin(MDB_RDONLY), then opens a cursor on the database in *cur.
 * Returns 1 (close *cur, then abort *txn), 0 not there yet, -1 error
 * (why).
 */
int	mdbdir_cursor(struct mdbdir *m, MDB_txn **txn, MDB_cursor **cur,
	    struct vbuf *why);

/*
 * Sets why (if not NULL) to the reason an LMDB call failed with rc during
 * op on m: "<what> DIR full (map size N MiB)" for MDB_MAP_FULL, else
 * "<op> DIR: <mdb_strerror>".
 */
void	mdbdir_why(struct vbuf *why, const struct mdbdir *m, const char *op,
	    int rc);

/* Closes the environment and frees dir; safe to call twice. */
void	mdbdir_release(struct mdbdir *m);

#endif
