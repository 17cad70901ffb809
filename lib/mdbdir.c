/*
 * mdbdir.c - one LMDB environment with one named database in a directory
 * under queue_directory, opened lazily (see mdbdir.h).
 *
 * Used by lib/cred (credentials, written by relayctl, read by smtpd),
 * lib/dkimkey (domain registry, written by relayctl, read by smtp and
 * smtpd) and lib/suppress (suppression list, written by relayctl and
 * qmgr, read by smtpd; a second database of its own). A read-only handle never creates anything: until relayctl has
 * made the environment and the database, attach reports "not there yet"
 * and the caller answers as for an empty store.
 */
#include <sys/stat.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <lmdb.h>

#include "mdbdir.h"
#include "xalloc.h"

int
mdbdir_init(struct mdbdir *m, const struct cfg *cfg, const char *subdir,
    const char *dbname, size_t map_size, unsigned maxdbs, int writable,
    const char *what, struct vbuf *why)
{
	struct vbuf path;
	struct stat st;

	memset(m, 0, sizeof(*m));
	m->what = what;
	m->dbname = dbname;
	m->map_size = map_size;
	m->maxdbs = maxdbs;
	m->writable = writable != 0;
	if (cfg->queue_directory == NULL || cfg->queue_directory[0] == '\0') {
		if (why)
			vbuf_setf(why, "queue_directory is not set");
		return -1;
	}
	vbuf_init(&path, 0);
	(void)vbuf_addf(&path, "%s/%s", cfg->queue_directory, subdir);
	m->dir = xstrdup(path.data);
	vbuf_release(&path);

	if (m->writable && mkdir(m->dir, 0700) == -1 && errno != EEXIST) {
		if (why)
			vbuf_setf(why, "mkdir %s: %s", m->dir,
			    strerror(errno));
		goto fail;
	}
	if (stat(m->dir, &st) == 0 && !S_ISDIR(st.st_mode)) {
		if (why)
			vbuf_setf(why, "%s: not a directory", m->dir);
		goto fail;
	}
	return 0;
fail:
	mdbdir_release(m);
	return -1;
}

void
mdbdir_why(struct vbuf *why, const struct mdbdir *m, const char *op, int rc)
{
	if (why == NULL)
		return;
	if (rc == MDB_MAP_FULL)
		vbuf_setf(why, "%s %s full (map size %lu MiB)", m->what,
		    m->dir, (unsigned long)(m->map_size / (1024 * 1024)));
	else
		vbuf_setf(why, "%s %s: %s", op, m->dir, mdb_strerror(rc));
}

int
mdbdir_attach(struct mdbdir *m, struct vbuf *why)
{
	struct vbuf op;
	MDB_txn *txn;
	int rc;

	if (m->env == NULL) {
		if ((rc = mdb_env_create(&m->env)) != 0) {
			m->env = NULL;
			mdbdir_why(why, m, "mdb_env_create", rc);
			return -1;
		}
		if ((rc = mdb_env_set_mapsize(m->env, m->map_size)) != 0 ||
		    (rc = mdb_env_set_maxdbs(m->env, m->maxdbs)) != 0 ||
		    (rc = mdb_env_open(m->env, m->dir, m->env_flags |
		    (m->writable ? 0 : MDB_RDONLY), 0600)) != 0) {
			mdb_env_close(m->env);
			m->env = NULL;
			if (rc == ENOENT && !m->writable)
				return 0;
			mdbdir_why(why, m, "open", rc);
			return -1;
		}
		if (m->writable)
			(void)mdb_reader_check(m->env, NULL);
	}
	if (m->have_dbi)
		return 1;
	if ((rc = mdb_txn_begin(m->env, NULL,
	    m->writable ? 0 : MDB_RDONLY, &txn)) != 0) {
		mdbdir_why(why, m, "mdb_txn_begin", rc);
		return -1;
	}
	rc = mdb_dbi_open(txn, m->dbname, m->writable ? MDB_CREATE : 0,
	    &m->dbi);
	if (rc == MDB_NOTFOUND && !m->writable) {
		mdb_txn_abort(txn);
		return 0;
	}
	if (rc != 0) {
		mdb_txn_abort(txn);
		vbuf_init(&op, 0);
		(void)vbuf_addf(&op, "open database %s in", m->dbname);
		mdbdir_why(why, m, op.data, rc);
		vbuf_release(&op);
		return -1;
	}
	/* Committing keeps the handle open beyond this transaction. */
	if ((rc = mdb_txn_commit(txn)) != 0) {
		mdbdir_why(why, m, "mdb_txn_commit", rc);
		return -1;
	}
	m->have_dbi = 1;
	return 1;
}

int
mdbdir_begin(struct mdbdir *m, unsigned flags, MDB_txn **txn,
    struct vbuf *why)
{
	int rc;

	if ((rc = mdbdir_attach(m, why)) <= 0)
		return rc;
	if ((rc = mdb_txn_begin(m->env, NULL, flags, txn)) != 0) {
		mdbdir_why(why, m, "mdb_txn_begin", rc);
		return -1;
	}
	return 1;
}

int
mdbdir_cursor(struct mdbdir *m, MDB_txn **txn, MDB_cursor **cur,
    struct vbuf *why)
{
	int rc;

	if ((rc = mdbdir_begin(m, MDB_RDONLY, txn, why)) <= 0)
		return rc;
	if ((rc = mdb_cursor_open(*txn, m->dbi, cur)) != 0) {
		mdb_txn_abort(*txn);
		mdbdir_why(why, m, "mdb_cursor_open", rc);
		return -1;
	}
	return 1;
}

void
mdbdir_release(struct mdbdir *m)
{
	if (m->env != NULL)
		mdb_env_close(m->env);
	m->env = NULL;
	m->have_dbi = 0;
	free(m->dir);
	m->dir = NULL;
}
