/*
 * qmgr_active.c - the messages qmgr has taken in this lifetime, for the
 * "QUEUEID: from=<sender>, size=N, nrcpt=N (queue active)" line.
 *
 * Postfix's qmgr logs that line when a message enters its active queue;
 * Postfix's log tools (pflogsumm and the like) take sender, size and
 * recipient count from it, and count a queue id once however often the
 * line appears. Petrel has no active-queue directory, so "taken" means
 * "first scheduled by this qmgr process": an in-memory set of queue ids,
 * dropped from when the message is removed. Nothing is written to LMDB
 * for it (the scan is the hot path, and a record per message would add a
 * write transaction per message for a log line); after a restart the set
 * is empty and the line is logged again when the message is next taken,
 * as Postfix logs it again after a restart. The set is bounded: at
 * QMGR_ACTIVE_MAX ids it is emptied, which only repeats a line the tools
 * already de-duplicate.
 */
#include <inttypes.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "qid.h"
#include "qmgr.h"
#include "xalloc.h"

#define QMGR_ACTIVE_BUCKETS	4096
#define QMGR_ACTIVE_MAX		1000000

struct qmgr_active {
	struct qmgr_active	*next;
	char			 qid[QID_SIZE];
};

static struct qmgr_active *qmgr_active_tab[QMGR_ACTIVE_BUCKETS];
static size_t qmgr_active_count;

static unsigned qmgr_active_hash(const char *);
static void qmgr_active_clear(void);

/* FNV-1a: queue ids are not chosen by peers in a way that matters here. */
static unsigned
qmgr_active_hash(const char *qid)
{
	uint32_t h = 2166136261u;

	for (; *qid != '\0'; qid++)
		h = (h ^ (unsigned char)*qid) * 16777619u;
	return h % QMGR_ACTIVE_BUCKETS;
}

static void
qmgr_active_clear(void)
{
	struct qmgr_active *a, *next;
	size_t i;

	for (i = 0; i < QMGR_ACTIVE_BUCKETS; i++) {
		for (a = qmgr_active_tab[i]; a != NULL; a = next) {
			next = a->next;
			free(a);
		}
		qmgr_active_tab[i] = NULL;
	}
	qmgr_active_count = 0;
}

void
qmgr_active_take(const struct qstore_msginfo *m)
{
	struct qmgr_active *a;
	unsigned h = qmgr_active_hash(m->qid);

	for (a = qmgr_active_tab[h]; a != NULL; a = a->next)
		if (strcmp(a->qid, m->qid) == 0)
			return;
	if (qmgr_active_count >= QMGR_ACTIVE_MAX)
		qmgr_active_clear();
	a = xcalloc(1, sizeof(*a));
	memcpy(a->qid, m->qid, sizeof(a->qid));
	a->qid[sizeof(a->qid) - 1] = '\0';
	a->next = qmgr_active_tab[h];
	qmgr_active_tab[h] = a;
	qmgr_active_count++;
	log_info("%s: from=<%s>, size=%" PRIu64 ", nrcpt=%" PRIu32
	    " (queue active)", m->qid, log_safe(m->sender), m->size,
	    m->nrcpts);
}

void
qmgr_active_forget(const char *qid)
{
	struct qmgr_active **ap, *a;

	for (ap = &qmgr_active_tab[qmgr_active_hash(qid)]; (a = *ap) != NULL;
	    ap = &a->next) {
		if (strcmp(a->qid, qid) == 0) {
			*ap = a->next;
			free(a);
			qmgr_active_count--;
			return;
		}
	}
}
