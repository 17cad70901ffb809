/*
 * qmgr_suppress.c - qmgr and the suppression list (lib/suppress): what a
 * result adds to it, the check before a recipient goes to smtp, and the
 * background pruning.
 *
 * Added automatically (petrel.yaml(5), suppression): a hard failure whose
 * class says the mailbox is dead (bclass_suppresses: bad-mailbox,
 * bad-domain, inactive-mailbox) suppresses the address for every sending
 * domain for suppression.bounce_ttl; a policy, spam or reputation
 * refusal is about the sender and suppresses nothing. A soft bounce (a
 * deferral whose class is about the mailbox, or a full mailbox even when
 * refused for good) is counted once per message, and soft_limit messages
 * within soft_window suppress the address as "soft-bounces". Once a
 * minute: a bounded prune, and the reader slots of exited processes.
 *
 * These writes go to the list's own environment, before the results
 * transaction begins (never under the queue's writer lock, which smtpd
 * needs for every message it accepts; the hard bounces of a batch in one
 * transaction): a crash after them repeats the result, which adds
 * nothing new (an add renews, a soft bounce counts once per message); a
 * crash before them repeats the delivery. A recipient already queued
 * when its address becomes suppressed is failed at its next attempt,
 * without a connection (qmgr_sched.c asks here first).
 */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "bclass.h"
#include "log.h"
#include "qmgr.h"
#include "smtpcmd.h"
#include "suppress.h"

static struct suppress *qmgr_supp;
static int qmgr_supp_warned;

static int qmgr_suppress_soft(enum bclass, int);
static int qmgr_suppress_kind(const struct qmgr_rcpt *, int64_t,
    struct suppress_entry *);
static void qmgr_suppress_error(const struct vbuf *);

void
qmgr_suppress_open(void)
{
	struct vbuf *why = vbuf_create(0);

	/* Without the list qmgr still delivers: it only adds nothing. */
	if ((qmgr_supp = suppress_open(qmgr_cfg, 1, why)) == NULL)
		log_warn("suppression list: %s; nothing is added to it or "
		    "checked before delivery", why->data);
	vbuf_free(why);
}

/* One warning until the list works again, not one per recipient. */
static void
qmgr_suppress_error(const struct vbuf *why)
{
	if (!qmgr_supp_warned)
		log_warn("suppression list: %s", why->data);
	qmgr_supp_warned = 1;
}

int
qmgr_suppress_check(const char *address, const char *sender, char *reply,
    size_t reply_size, char *class, size_t class_size)
{
	struct suppress_entry e;
	struct vbuf *why;
	char dom[SMTP_DOMAIN_MAX + 1];
	int rc;

	if (qmgr_supp == NULL)
		return 0;
	smtpcmd_addr_domain(sender, dom, sizeof(dom));
	why = vbuf_create(0);
	rc = suppress_check(qmgr_supp, address, dom, time(NULL), &e, why);
	if (rc == -1)
		qmgr_suppress_error(why);
	else
		qmgr_supp_warned = 0;
	vbuf_free(why);
	if (rc != 1)
		return 0;
	suppress_entry_reply(&e, address, reply, reply_size);
	snprintf(class, class_size, "%s", e.class[0] != '\0' ? e.class :
	    bclass_name(BCLASS_BAD_MAILBOX));
	return 1;
}

/*
 * A soft bounce: a deferral whose class is about the mailbox itself (not
 * the host, the network, the sender or the content), or a full mailbox
 * however it was refused.
 */
static int
qmgr_suppress_soft(enum bclass class, int deferred)
{
	if (class == BCLASS_QUOTA_ISSUES)
		return 1;
	return deferred && (class == BCLASS_BAD_MAILBOX ||
	    class == BCLASS_INACTIVE_MAILBOX);
}

/*
 * What one result means for the list: 1 a hard bounce of a dead mailbox
 * (e filled), 2 a soft bounce, 0 nothing.
 */
static int
qmgr_suppress_kind(const struct qmgr_rcpt *res, int64_t now,
    struct suppress_entry *e)
{
	enum bclass class;

	if (res->suppressed || res->expired || res->status == QSTORE_DELIVERED ||
	    bclass_from_name(res->class, &class) == -1)
		return 0;
	if (res->status == QSTORE_FAILED && bclass_suppresses(class)) {
		memset(e, 0, sizeof(*e));
		snprintf(e->address, sizeof(e->address), "%s", res->address);
		e->reason = SUPPRESS_HARD_BOUNCE;
		snprintf(e->class, sizeof(e->class), "%s", res->class);
		snprintf(e->reply, sizeof(e->reply), "%s", res->reply);
		e->since = now;
		e->expires = qmgr_cfg->suppression_bounce_ttl == 0 ? 0 :
		    now + qmgr_cfg->suppression_bounce_ttl;
		return 1;
	}
	return qmgr_suppress_soft(class, res->status == QSTORE_DEFERRED) ?
	    2 : 0;
}

void
qmgr_suppress_results(struct qmgr_rcpt *const *refs, size_t n)
{
	struct suppress_entry e;
	struct vbuf *why;
	int64_t now = time(NULL);
	size_t i, nhard = 0;
	int rc;

	if (qmgr_supp == NULL)
		return;
	why = vbuf_create(0);
	/* The hard bounces in one transaction: one commit, not one each. */
	for (i = 0; i < n; i++) {
		if (refs[i]->applied || qmgr_suppress_kind(refs[i], now,
		    &e) != 1)
			continue;
		if (nhard++ == 0 && suppress_batch_begin(qmgr_supp, why) == -1)
			goto out;
		if (suppress_batch_add(qmgr_supp, &e, why) == -1) {
			suppress_batch_abort(qmgr_supp);
			goto out;
		}
		log_info("%s: to=<%s>: suppressed: hard bounce (%s)",
		    refs[i]->job->qid, log_safe(e.address), e.class);
	}
	if (nhard > 0 && suppress_batch_commit(qmgr_supp, why) == -1)
		goto out;
	for (i = 0; i < n; i++) {
		if (refs[i]->applied || qmgr_suppress_kind(refs[i], now,
		    &e) != 2)
			continue;
		rc = suppress_soft_bounce(qmgr_supp, refs[i]->address,
		    refs[i]->job->qid, refs[i]->class, refs[i]->reply, now,
		    qmgr_cfg->suppression_soft_limit,
		    qmgr_cfg->suppression_soft_window,
		    qmgr_cfg->suppression_bounce_ttl, why);
		if (rc == -1)
			goto out;
		if (rc == 1)
			log_info("%s: to=<%s>: suppressed: soft bounces on %u "
			    "messages (%s)", refs[i]->job->qid,
			    log_safe(refs[i]->address),
			    qmgr_cfg->suppression_soft_limit, refs[i]->class);
	}
	vbuf_free(why);
	return;
out:
	qmgr_suppress_error(why);
	vbuf_free(why);
}

void
qmgr_suppress_prune(void)
{
	struct vbuf *why;
	int n;

	if (qmgr_supp == NULL)
		return;
	if ((n = suppress_reader_check(qmgr_supp)) > 0)
		log_info("suppression list: cleared %d stale reader slot(s)",
		    n);
	why = vbuf_create(0);
	n = suppress_prune(qmgr_supp, time(NULL),
	    qmgr_cfg->suppression_soft_window, why);
	if (n == -1)
		qmgr_suppress_error(why);
	else if (n > 0)
		log_info("suppression list: removed %d expired record(s)", n);
	vbuf_free(why);
}
