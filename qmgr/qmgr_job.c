/*
 * qmgr_job.c - jobs and the in-flight set: the ground floor of qmgr.
 *
 * A job is made by the scheduler, waits in its destination's queue
 * (qmgr_dest.c) for a connection, goes to smtp (qmgr_deliver.c), gets one result per
 * recipient, waits on the done list until its results are applied
 * (qmgr_result.c), and is freed. From creation to free its recipients
 * are in the in-flight set, so no scan picks them again, while the
 * message's other recipients stay free to go: the unit in flight is the
 * recipient, not the message. The set is a hash of (queue id, index)
 * chained through the recipients themselves (no allocation of its own).
 * Also here: the configuration and queue handle every room shares.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "event.h"
#include "qmgr.h"
#include "xalloc.h"

#define QMGR_INFLIGHT_BUCKETS	4096

const struct cfg *qmgr_cfg;
struct qstore *qmgr_queue;
int64_t qmgr_flushed_ms = -1;

static struct qmgr_rcpt *qmgr_inflight[QMGR_INFLIGHT_BUCKETS];
static struct qmgr_job *qmgr_done, **qmgr_done_tail = &qmgr_done;
static size_t qmgr_done_nnew;
static int64_t qmgr_done_since = -1;

static unsigned qmgr_job_hash(const char *, uint32_t);

static unsigned
qmgr_job_hash(const char *qid, uint32_t index)
{
	unsigned h = 5381;

	for (; *qid != '\0'; qid++)
		h = h * 33 + (unsigned char)*qid;
	h = h * 33 + index;
	return h % QMGR_INFLIGHT_BUCKETS;
}

int
qmgr_job_in_flight(const char *qid, uint32_t index)
{
	const struct qmgr_rcpt *r;

	for (r = qmgr_inflight[qmgr_job_hash(qid, index)]; r != NULL;
	    r = r->hnext)
		if (r->index == index && strcmp(r->job->qid, qid) == 0)
			return 1;
	return 0;
}

struct qmgr_job *
qmgr_job_create(const char *qid, const char *nexthop,
    const struct qstore_msginfo *m, size_t nrcpts)
{
	struct qmgr_job *job;

	job = xcalloc(1, sizeof(*job));
	snprintf(job->qid, sizeof(job->qid), "%s", qid);
	snprintf(job->nexthop, sizeof(job->nexthop), "%s", nexthop);
	/* The message's source address pool keeps its destinations apart. */
	snprintf(job->pool, sizeof(job->pool), "%s", m->pool);
	if (job->pool[0] == '\0')
		snprintf(job->dest_key, sizeof(job->dest_key), "%s", nexthop);
	else
		snprintf(job->dest_key, sizeof(job->dest_key), "%s/%s",
		    nexthop, job->pool);
	job->sender = xstrdup(m->sender);
	job->arrival = m->arrival;
	job->arrival_us = m->arrival_us;
	job->bulk = m->bulk;
	/* Sized once: the in-flight chains point into this array. */
	job->rcpts = xcalloc(nrcpts == 0 ? 1 : nrcpts, sizeof(*job->rcpts));
	return job;
}

void
qmgr_job_add_rcpt(struct qmgr_job *job, uint32_t index, const char *address,
    int64_t old_next)
{
	struct qmgr_rcpt *r = &job->rcpts[job->nrcpts++];
	unsigned h = qmgr_job_hash(job->qid, index);

	r->job = job;
	r->index = index;
	r->address = xstrdup(address);
	r->old_next = old_next;
	r->hnext = qmgr_inflight[h];
	qmgr_inflight[h] = r;
}

void
qmgr_job_free(struct qmgr_job *job)
{
	struct qmgr_rcpt **pp;
	size_t i;

	if (job == NULL)
		return;
	for (i = 0; i < job->nrcpts; i++) {
		struct qmgr_rcpt *r = &job->rcpts[i];

		for (pp = &qmgr_inflight[qmgr_job_hash(job->qid, r->index)];
		    *pp != NULL; pp = &(*pp)->hnext)
			if (*pp == r) {
				*pp = r->hnext;
				break;
			}
		free(r->address);
		free(r->reply);
	}
	free(job->rcpts);
	free(job->sender);
	free(job->dkim);
	free(job->relay);
	free(job);
}

void
qmgr_job_result(struct qmgr_rcpt *r, int status, const char *dsn,
    const char *reply)
{
	r->status = status;
	r->expired = 0;
	r->suppressed = 0;
	r->dsn_passed = 0;
	r->class[0] = '\0';
	snprintf(r->dsn, sizeof(r->dsn), "%s", dsn);
	free(r->reply);
	r->reply = xstrdup(reply);
	r->done = 1;
	r->applied = 0;
}

void
qmgr_job_set_relay(struct qmgr_job *job, const char *relay)
{
	free(job->relay);
	job->relay = xstrdup(relay);
}

void
qmgr_job_done(struct qmgr_job *job)
{
	job->next = NULL;
	*qmgr_done_tail = job;
	qmgr_done_tail = &job->next;
	qmgr_done_nnew += job->nrcpts;
	if (qmgr_done_since < 0)
		qmgr_done_since = ev_now_ms();
}

struct qmgr_job *
qmgr_job_done_first(void)
{
	return qmgr_done;
}

void
qmgr_job_done_remove(struct qmgr_job *prev, struct qmgr_job *job)
{
	if (prev == NULL)
		qmgr_done = job->next;
	else
		prev->next = job->next;
	if (qmgr_done_tail == &job->next)
		qmgr_done_tail = prev == NULL ? &qmgr_done : &prev->next;
	job->next = NULL;
}

size_t
qmgr_job_done_new(int64_t *since)
{
	*since = qmgr_done_since;
	return qmgr_done_nnew;
}

void
qmgr_job_done_clear(void)
{
	qmgr_done_nnew = 0;
	qmgr_done_since = -1;
}
