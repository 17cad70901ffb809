/*
 * qmgr_flush.c - relayq -f: every deferred recipient becomes due now.
 *
 * The flush changes only next-attempt times (attempt counts are kept, so
 * backoff continues where it was); the scan that follows, asked for by
 * qmgr_request.c, does the rest. Recipients in flight cannot be changed
 * here: the time of the flush is kept (qmgr_flushed_ms), and a job sent
 * before it that defers is due again at once (qmgr_result.c). See qmgr(8), THE QMGR SOCKET.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "event.h"
#include "log.h"
#include "qmgr.h"
#include "xalloc.h"

struct qmgr_flush_ctx {
	int64_t		 now;
	struct qmgr_flush_key {
		char	 qid[QID_SIZE];
		uint32_t index;
	}		*keys;
	size_t		 n, alloc;
};

static int qmgr_flush_cb(const char *, uint32_t, int64_t, void *);
static int qmgr_flush_chunk(struct qmgr_flush_ctx *, size_t, size_t,
    struct vbuf *);

static int
qmgr_flush_cb(const char *qid, uint32_t index, int64_t when, void *arg)
{
	struct qmgr_flush_ctx *f = arg;

	if (when <= f->now)
		return 0;
	/* Held (relayq -h): only a release makes these due. */
	if (when >= QSTORE_HELD_NEXT)
		return 1;
	if (f->n == f->alloc) {
		f->alloc = f->alloc == 0 ? 64 : f->alloc * 2;
		f->keys = xreallocarray(f->keys, f->alloc, sizeof(*f->keys));
	}
	snprintf(f->keys[f->n].qid, QID_SIZE, "%s", qid);
	f->keys[f->n++].index = index;
	return 0;
}

/* Makes recipients [from, to) of f due now in one transaction. */
static int
qmgr_flush_chunk(struct qmgr_flush_ctx *f, size_t from, size_t to,
    struct vbuf *why)
{
	struct qstore_txn *txn;
	struct qstore_rcpt r;
	int64_t old;
	size_t i;
	int n = 0;

	if ((txn = qstore_txn_begin(qmgr_queue, 1, why)) == NULL)
		return -1;
	for (i = from; i < to; i++) {
		if (qstore_rcpt_get(txn, f->keys[i].qid, f->keys[i].index,
		    &r) == -1)
			continue;
		old = r.next_attempt;
		r.next_attempt = f->now;
		if (qstore_rcpt_put(txn, &r, old) == -1) {
			/* LMDB has marked the transaction bad. */
			qstore_txn_abort(txn);
			vbuf_setf(why, "update failed");
			return -1;
		}
		n++;
	}
	if (qstore_txn_commit(txn, why) == -1)
		return -1;
	return n;
}

/*
 * relayq -f: every deferred recipient becomes due now. Small transactions,
 * each of which must fit in the free space a nearly full map still has
 * (smtpd leaves qmgr headroom, not a whole queue's); a chunk that does not
 * fit is retried a recipient at a time.
 */
int
qmgr_flush(struct vbuf *why)
{
	struct qmgr_flush_ctx f = { time(NULL), NULL, 0, 0 };
	struct qstore_txn *txn;
	size_t i, end, k;
	int n = 0, got, failed = 0;

	qmgr_flushed_ms = ev_now_ms();
	qmgr_dest_flush_dead();
	if ((txn = qstore_txn_begin(qmgr_queue, 0, why)) == NULL)
		return -1;
	(void)qstore_sched_iter(txn, qmgr_flush_cb, &f);
	qstore_txn_abort(txn);
	for (i = 0; i < f.n; i = end) {
		end = i + QMGR_TXN_UPDATES < f.n ? i + QMGR_TXN_UPDATES : f.n;
		if ((got = qmgr_flush_chunk(&f, i, end, why)) >= 0) {
			n += got;
			continue;
		}
		for (k = i; k < end; k++) {
			if ((got = qmgr_flush_chunk(&f, k, k + 1, why)) >= 0)
				n += got;
			else
				failed++;
		}
	}
	free(f.keys);
	if (failed > 0)
		log_warn("flush: %d recipient(s) could not be updated: %s",
		    failed, why->data);
	return failed > 0 && n == 0 ? -1 : n;
}

