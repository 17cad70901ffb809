/*
 * qmgr_reconcile.c - start-up reconciliation of the queue files with the
 * LMDB records (qmgr(8), START-UP).
 *
 * A file without records was never acknowledged and goes after a grace
 * period; records whose file is gone are removed; stale tmp/ files are
 * cleaned up; files in the wrong msg/ directory are moved. Runs once,
 * before qmgr serves anything; a failure is fatal (master restarts qmgr).
 */
#include <sys/stat.h>

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "qmgr.h"
#include "xalloc.h"

struct qmgr_orphan {
	char		(*qids)[QID_SIZE];
	size_t		 n;
};

static int qmgr_file_cb(const char *, void *);
static int qmgr_msg_cb(const struct qstore_msginfo *, void *);

static int
qmgr_file_cb(const char *qid, void *arg)
{
	struct qmgr_orphan *o = arg;

	o->qids = xreallocarray(o->qids, o->n + 1, QID_SIZE);
	snprintf(o->qids[o->n++], QID_SIZE, "%s", qid);
	return 0;
}

static int
qmgr_msg_cb(const struct qstore_msginfo *m, void *arg)
{
	struct qmgr_orphan *o = arg;
	char path[PATH_MAX];

	if (qstore_file_path(path, sizeof(path), qmgr_cfg->queue_directory,
	    m->qid) == 0 && access(path, F_OK) == -1 && errno == ENOENT) {
		o->qids = xreallocarray(o->qids, o->n + 1, QID_SIZE);
		snprintf(o->qids[o->n++], QID_SIZE, "%s", m->qid);
	}
	return 0;
}

void
qmgr_reconcile(void)
{
	struct qmgr_orphan files = { NULL, 0 }, lost = { NULL, 0 };
	struct qstore_txn *txn;
	struct qstore_msginfo m;
	struct vbuf *why = vbuf_create(0);
	char path[PATH_MAX];
	struct stat st;
	time_t now = time(NULL);
	size_t i;

	if ((i = (size_t)qstore_tmp_clean(qmgr_cfg->queue_directory,
	    QMGR_ORPHAN_GRACE)) > 0)
		log_info("removed %zu stale file(s) from tmp/", i);
	if ((i = (size_t)qstore_file_rehash(qmgr_cfg->queue_directory)) > 0)
		log_info("moved %zu queue file(s) to their msg/ directory", i);
	(void)qstore_file_iter(qmgr_cfg->queue_directory, qmgr_file_cb,
	    &files);
	if ((txn = qstore_txn_begin(qmgr_queue, 1, why)) == NULL)
		log_fatal("reconcile: %s", why->data);
	for (i = 0; i < files.n; i++) {
		if (qstore_msg_get(txn, files.qids[i], &m) == 0 ||
		    qstore_errno() != QSTORE_ERR_NOTFOUND)
			continue;
		if (qstore_file_path(path, sizeof(path),
		    qmgr_cfg->queue_directory, files.qids[i]) == 0 &&
		    stat(path, &st) == 0 && now - st.st_mtime >
		    QMGR_ORPHAN_GRACE) {
			log_info("%s: removed: queue file without records "
			    "(never acknowledged)", files.qids[i]);
			(void)qstore_file_remove(qmgr_cfg->queue_directory,
			    files.qids[i]);
		}
	}
	(void)qstore_msg_iter(txn, qmgr_msg_cb, &lost);
	for (i = 0; i < lost.n; i++) {
		log_warn("%s: queue file missing; recipients dropped",
		    lost.qids[i]);
		(void)qstore_msg_delete(txn, lost.qids[i]);
	}
	if (qstore_txn_commit(txn, why) == -1)
		log_fatal("reconcile: %s", why->data);
	free(files.qids);
	free(lost.qids);
	vbuf_free(why);
}
