/*
 * qmgr.h - private interfaces of qmgr, the queue manager.
 *
 * qmgr is the only scheduler and the only writer of recipient state. It
 * takes due recipients from the sched index, groups each message's
 * recipients by next hop into jobs, hands jobs to smtp processes and
 * applies their results, all replies of one loop pass in one transaction.
 * Jobs in flight live in memory only: after a crash, whatever is due is
 * tried again (at least once, never lost). See qmgr(8).
 */
#ifndef PETREL_QMGR_H
#define PETREL_QMGR_H

#include <stdint.h>

#include "cfg.h"
#include "qstore.h"
#include "vbuf.h"

#define QMGR_SCAN_INTERVAL_MS	1000	/* scan even without a trigger */
#define QMGR_ORPHAN_GRACE	3600	/* s; a file without records */
#define QMGR_PRUNE_INTERVAL_MS	3600000	/* counter clean-up */
#define QMGR_COUNTER_KEEP	(2 * 86400)	/* s past a window's start */
#define QMGR_NEXTHOP_MAX	300
/* Bounds on what smtp's reply may carry (qmgr_deliver.c). */
#define QMGR_RELAY_MAX		512	/* host[address]:port */
#define QMGR_DKIM_MAX		1024	/* "d=DOMAIN s=SELECTOR" */
#define QMGR_DKIM_KEEP		300	/* of it, kept for accounting */
#define QMGR_STATUS_MAX		16	/* sent, deferred, bounced */
/*
 * Recipients per job: RFC 5321 4.5.3.1.8 only promises 100 RCPTs per
 * transaction, and a request must fit in one attribute record.
 */
#define QMGR_JOB_RCPTS_MAX	100
/* Results are gathered this long before they are applied. */
#define QMGR_RESULTS_DELAY_MS	10
/* Recipient updates per write transaction (flush, results). */
#define QMGR_TXN_UPDATES	64
/* Above this share of the queue map, deferrals are stored without reply. */
#define QMGR_REPLY_KEEP_PCT	75
/* Repeated warnings about a full map: at most one line this often. */
#define QMGR_WARN_INTERVAL_MS	60000
/* Results that could not be recorded (queue map full) are tried again. */
#define QMGR_RESULTS_RETRY_MS	1000

struct qmgr_rcpt {
	uint32_t	 index;
	char		*address;
	int64_t		 old_next;	/* sched key to replace */
	int		 done;		/* a result was applied */
};

struct qmgr_job {
	struct qmgr_job		*next;
	char			 qid[QID_SIZE];
	char			 domain[QMGR_NEXTHOP_MAX + 1];
	char			*sender;
	int64_t			 arrival;
	int32_t			 arrival_us;
	struct qmgr_rcpt	*rcpts;
	size_t			 nrcpts;
	int64_t			 dispatched;	/* ms, monotonic */
	char			*dkim;		/* smtp's report, or NULL */
	int			 resent;	/* sent again after a lost link */
};

/* One result from smtp for one recipient. */
struct qmgr_result {
	struct qmgr_job		*job;
	struct qmgr_rcpt	*rcpt;
	int			 status;	/* QSTORE_DELIVERED ... */
	char			 dsn[QSTORE_DSN_MAX + 1];
	char			*reply;
	char			*relay;
	int			 applied;	/* committed (or moot) */
};

/* qmgr.c */
extern const struct cfg	*qmgr_cfg;
extern struct qstore	*qmgr_queue;
void	qmgr_want_scan(void);

/* qmgr_sched.c */
void	qmgr_sched_scan(void);
int	qmgr_sched_in_flight(const char *qid);
void	qmgr_sched_release(struct qmgr_job *);
void	qmgr_job_free(struct qmgr_job *);
int64_t	qmgr_sched_next_due(void);
void	qmgr_reconcile(void);
int	qmgr_flush(struct vbuf *why);

/* qmgr_deliver.c */
size_t	qmgr_deliver_free_slots(void);
void	qmgr_deliver_start(struct qmgr_job *);
void	qmgr_deliver_check_deadlines(void);
void	qmgr_results_add(struct qmgr_job *, struct qmgr_rcpt *, int status,
	    const char *dsn, const char *reply, const char *relay);
void	qmgr_results_apply(void);
int64_t	qmgr_results_due_in(void);
size_t	qmgr_deliver_busy(void);

/* qmgr_request.c */
void	qmgr_request_accept(int listen_fd);

#endif
