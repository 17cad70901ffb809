/*
 * qmgr.h - private interfaces of qmgr, the queue manager.
 *
 * qmgr is the only scheduler and the only writer of recipient state. It
 * takes due recipients from the sched index, groups each message's
 * recipients by next hop into jobs, hands jobs to smtp processes and
 * applies their results, all replies of one loop pass in one transaction.
 * Jobs in flight live in memory only: after a crash, whatever is due is
 * tried again (at least once, never lost). See qmgr(8).
 *
 * The rooms, top down: qmgr_daemon.c (the daemon callbacks: start-up and
 * the loop pass) and qmgr_request.c (private/qmgr) drive the others;
 * qmgr_sched.c makes jobs (delivery jobs, report jobs, and the failures
 * of suppressed recipients), qmgr_deliver.c carries delivery jobs to smtp
 * and back, qmgr_bounce.c report jobs to bounce and back, qmgr_result.c
 * applies results and settles messages, qmgr_suppress.c is the
 * suppression list, qmgr_flush.c and qmgr_reconcile.c change the queue
 * for relayq -f and at start-up, qmgr_admin.c for relayq's hold,
 * release, delete and requeue; all of them stand on qmgr_job.c (jobs,
 * the in-flight set, shared state) and qmgr_dest.c (destinations: the
 * pending jobs per next hop and their limits). Nothing calls up.
 * Declarations are grouped by the file that implements them.
 */
#ifndef PETREL_QMGR_H
#define PETREL_QMGR_H

#include <stddef.h>
#include <stdint.h>

#include "cfg.h"
#include "daemon.h"
#include "mailproto.h"
#include "nexthop.h"
#include "qid.h"
#include "qstore.h"
#include "shaping.h"
#include "vbuf.h"

#define QMGR_SCAN_INTERVAL_MS	1000	/* scan even without a trigger */
#define QMGR_ORPHAN_GRACE	3600	/* s; a file without records */
#define QMGR_PRUNE_INTERVAL_MS	3600000	/* counter clean-up */
#define QMGR_COUNTER_KEEP	(2 * 86400)	/* s past a window's start */
/*
 * Recipients per job: RFC 5321 4.5.3.1.8 only promises 100 RCPTs per
 * transaction, and a request must fit in one attribute record.
 */
#define QMGR_JOB_RCPTS_MAX	100
/*
 * Providers (qmgr_provider.c): next-hop keys whose provider is remembered,
 * and how many of the MX hosts smtp names are looked at (a next hop with
 * more is taken for no provider).
 */
#define QMGR_PROV_MAP_MAX	100000
#define QMGR_SRC_MAX		65536	/* source address and scope */
					/* entries (qmgr_source.c) */
#define QMGR_SRC_ADDR_MAX	64	/* an address as text, and NUL */
#define QMGR_PROV_MX_MAX	16
#define QMGR_MX_LIST_MAX	MAIL_MX_LIST_MAX
/* Destinations in one reply to relayctl shaping show. */
#define QMGR_SHAPING_SHOW_MAX	10000
/*
 * Records in one reply to relayctl sources show: every pool address
 * (64 pools of 256 at most) and the entries of qmgr_source.c worth
 * showing, each under 1 KiB, within attrconn's 16 MiB of output.
 */
#define QMGR_SOURCES_SHOW_MAX	20000
/* Jobs waiting for a connection, over all destinations. */
#define QMGR_PENDING_MAX	20000
/*
 * Of them, bulk jobs (the lanes, qmgr(8)): the scheduler loads no more,
 * so a bulk backlog never fills memory to where new transactional mail
 * cannot be loaded; the rest of a bulk backlog waits in the queue.
 */
#define QMGR_BULK_PENDING_MAX	10000
/*
 * Dead-site detection (qmgr_dest.c): this many attempts in a row that
 * set up no session (connection refused or timed out, no address, 421
 * greeting) suspend the destination; a failure streak is remembered
 * this long after its last failure, so a site that fails once an hour
 * is not taken for dead.
 */
#define QMGR_DEST_DEAD_AFTER	3
#define QMGR_DEST_FAIL_MEMORY_MS	(3600 * 1000)
/* The longest backoff or suspension log line's reply quote. */
#define QMGR_DEST_QUOTE_MAX	200
/* The last site failure's reason, as the suspended recipients quote it. */
#define QMGR_DEST_REASON_MAX	256
/*
 * A destination's key: the next hop's key (lib/nexthop) for the default
 * source address pool, "NEXTHOP/POOL" for another pool (a next-hop key
 * has no '/'), so that each pool's connections, rates and failures to a
 * next hop are its own.
 */
#define QMGR_DEST_KEY_MAX	(NEXTHOP_KEY_MAX + 1 + CFG_POOL_NAME_MAX)
/*
 * How long an idle smtp process may still hold its session to the last
 * job's destination: smtp's SMTP_CACHE_IDLE_MS, counted from before the
 * reply reached qmgr, plus a margin for a loop pass's stale clock. Longer
 * than smtp's, so that qmgr never opens a new connection to a destination
 * at its limit while an old one may still be open.
 */
#define QMGR_SMTP_CACHE_MS	2500
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
/* Bounds on what smtp's reply may carry (qmgr_deliver.c). */
#define QMGR_RELAY_MAX		512	/* host[address]:port */
#define QMGR_DKIM_MAX		1024	/* "d=DOMAIN s=SELECTOR" */
#define QMGR_DKIM_KEEP		300	/* of it, kept for accounting */
#define QMGR_STATUS_MAX		16	/* sent, deferred, bounced */
/* The class of a recipient failed by queue.max_lifetime (lib/bclass). */
#define QMGR_CLASS_EXPIRED	"message-expired"
/* The status of a recipient failed because it is suppressed. */
#define QMGR_SUPPRESSED_DSN	"5.1.1"
/* Report requests to bounce (qmgr_bounce.c). */
#define QMGR_BOUNCE_RCPTS_MAX	MAIL_BOUNCE_RCPTS_MAX /* per request */
#define QMGR_BOUNCE_TIMEOUT_MS	60000	/* for bounce's reply */
#define QMGR_BOUNCE_RETRY_MS	10000	/* bounce unreachable: all wait */
#define QMGR_BOUNCE_JOB_RETRY	60	/* s; one request failed: its wait */

struct qmgr_job;
struct qmgr_dest;

/* One recipient of a job, and its result once smtp has given one. */
struct qmgr_rcpt {
	struct qmgr_rcpt	*hnext;		/* in-flight set chain */
	struct qmgr_job		*job;
	uint32_t		 index;
	char			*address;
	int64_t			 old_next;	/* sched key to replace */
	int			 done;		/* a result was recorded */
	int			 applied;	/* committed (or moot) */
	int			 status;	/* QSTORE_DELIVERED ... */
	int			 expired;	/* failed by max_lifetime */
	int			 suppressed;	/* failed: on the list */
	int			 dsn_passed;	/* a DSN-aware next hop took */
						/* it, with NOTIFY passed on */
	char			 dsn[QSTORE_DSN_MAX + 1];
	char			 class[QSTORE_CLASS_MAX + 1];
	char			*reply;
};

/*
 * A job: recipients of one message for one next hop. Made by the
 * scheduler, queued, sent by deliver, given results, applied by result,
 * then freed; its recipients are in flight from creation to free.
 */
struct qmgr_job {
	struct qmgr_job		*next;		/* pending or done list */
	char			 qid[QID_SIZE];
	char			 nexthop[NEXTHOP_KEY_MAX + 1];
	char			 pool[CFG_POOL_NAME_MAX + 1];	/* "": default */
	char			 dest_key[QMGR_DEST_KEY_MAX + 1];
	char			*sender;
	int64_t			 arrival;
	int32_t			 arrival_us;
	struct qmgr_rcpt	*rcpts;
	size_t			 nrcpts;
	int64_t			 dispatched;	/* ms, monotonic */
	char			*dkim;		/* smtp's report, or NULL */
	char			*relay;		/* smtp's report, or NULL */
	int			 resent;	/* sent again, link lost */
	int			 site_fail;	/* smtp set up no session */
	enum qstore_report	 report;	/* a report job (bounce): */
						/* what it asks for; else NONE */
	char			 report_id[QID_SIZE]; /* bounce's answer */
	struct qmgr_dest	*dest;		/* taken from it, at smtp */
	int			 new_conn;	/* took a connection-rate token */
	int			 bulk;		/* the bulk lane (m->bulk) */
	const struct shaping_provider *prov;	/* counted at smtp under it */
	size_t			 src;		/* dest->srcs[src]: the source */
						/* address it leaves from */
};

/*
 * One source address of a destination's pool, with what the limits
 * count per address (shaping.yaml(5)): its jobs at smtp, its buckets of
 * max_message_rate and max_connection_rate, and the on_reply backoff or
 * suspension in force for it (a provider's "too fast" is about the
 * address it came from: the pool's others go on).
 */
struct qmgr_dest_src {
	char			 addr[QMGR_SRC_ADDR_MAX];	/* as text; "": */
						/* no pool, the kernel's pick */
	unsigned		 inflight;	/* jobs at smtp from it */
	unsigned		 binflight;	/* of them, bulk */
	struct shaping_bucket	 bucket;	/* max_message_rate */
	struct shaping_bucket	 conn_bucket;	/* max_connection_rate */
	/* After a reply an on_reply rule matched (qmgr_dest_on_reply): */
	int			 adapt;		/* enum shaping_action; 0 */
	const struct shaping_rule *adapt_rule;	/* the rule in force */
	int64_t			 adapt_until;	/* ms, while adapt is set */
	const char		*ev_state;	/* last announced (destev); */
						/* NULL: normal */
};

/*
 * A destination (qmgr_dest.c): one next-hop key, its pending jobs, the
 * jobs it has at smtp, and its limits from the shaping file.
 */
struct qmgr_dest {
	struct qmgr_dest	*hnext;		/* hash chain */
	struct qmgr_dest	*next;		/* the round-robin ring */
	char			 key[QMGR_DEST_KEY_MAX + 1];
	char			 nexthop[NEXTHOP_KEY_MAX + 1];
	char			 pool[CFG_POOL_NAME_MAX + 1];	/* "": default */
	char			 entry[SHAPING_NAME_MAX + 1]; /* whose limits */
	struct qmgr_job		*head, **tail;	/* pending, FIFO: the */
						/* transactional lane */
	struct qmgr_job		*bhead, **btail; /* the bulk lane */
	size_t			 npending;	/* both lanes */
	size_t			 nbulk;		/* of them, bulk */
	unsigned		 inflight;	/* jobs at smtp, all sources */
	unsigned		 binflight;	/* of them, bulk */
	uint64_t		 sent;		/* jobs handed to smtp */
	struct shaping_limits	 lim;		/* its entry's and provider's; */
						/* a backoff lowers them per */
						/* address: qmgr_dest_src_limits */
	/*
	 * Its pool's source addresses (one, "", without a pool): each has
	 * its own connections and rates under lim; jobs take them in turn,
	 * the pool's turn (every destination's jobs from it: qmgr_dest.c).
	 */
	struct qmgr_dest_src	*srcs;
	size_t			 nsrcs;
	size_t			*src_turn;	/* the next to try first */
	/* After site failures (qmgr_dest_outcome): */
	unsigned		 window;	/* jobs at smtp allowed; 0 any */
	unsigned		 fail_streak;	/* site failures in a row */
	int64_t			 last_fail;	/* ms of the last one */
	int64_t			 dead_until;	/* ms; 0 alive; past: probing */
	char			 reason[QMGR_DEST_REASON_MAX];
	/* Its on_reply rules (qmgr_dest_on_reply), which act per address: */
	const struct shaping_entry *sentry;	/* its entry; NULL default */
	struct qmgr_dest_hit	*hits;		/* nhits per source address, */
	size_t			 nhits;		/* per rule: entry's, */
						/* provider's, default's */
	const struct shaping_provider *prov;	/* its MX hosts', or NULL */
	int			 known;		/* prov is known (else one */
						/* job at a time) */
};

/* An on_reply rule's matches in its current SHAPING_AFTER_WINDOW. */
struct qmgr_dest_hit {
	unsigned		 n;
	int64_t			 since;		/* ms of the first of them */
};

/* qmgr_job.c: the state every room shares, jobs, the in-flight set. */
extern const struct cfg	*qmgr_cfg;
extern struct qstore	*qmgr_queue;
/*
 * When relayq -f last flushed (ms, monotonic; -1 never): a job sent
 * before it that defers is due again at once, since the flush could not
 * change recipients that were in flight.
 */
extern int64_t		 qmgr_flushed_ms;
/*
 * A new job for qid with room for nrcpts recipients, none yet; the
 * caller adds them with qmgr_job_add_rcpt, then queues it.
 */
struct qmgr_job *qmgr_job_create(const char *qid, const char *nexthop,
	    const struct qstore_msginfo *, size_t nrcpts);
/* Adds a recipient (address copied) and puts it in the in-flight set. */
void	qmgr_job_add_rcpt(struct qmgr_job *, uint32_t index,
	    const char *address, int64_t old_next);
/* Takes the recipients out of the in-flight set and frees the job. */
void	qmgr_job_free(struct qmgr_job *);
/* Whether recipient index of qid is in a job not yet freed. */
int	qmgr_job_in_flight(const char *qid, uint32_t index);
/*
 * Records a recipient's result (dsn, reply copied); once per recipient.
 * The class, suppressed and dsn_passed start cleared: the caller sets
 * what it knows.
 */
void	qmgr_job_result(struct qmgr_rcpt *, int status, const char *dsn,
	    const char *reply);
/* Sets the relay smtp reported for the job's results. */
void	qmgr_job_set_relay(struct qmgr_job *, const char *relay);
/* Every recipient has a result: the job waits on the done list. */
void	qmgr_job_done(struct qmgr_job *);
/* The done list, oldest first; unlink with qmgr_job_done_remove. */
struct qmgr_job *qmgr_job_done_first(void);
void	qmgr_job_done_remove(struct qmgr_job *prev, struct qmgr_job *);
/*
 * Results recorded since the last qmgr_job_done_clear (count, and when the
 * first of them came, ms; -1 none), for the result gathering.
 */
size_t	qmgr_job_done_new(int64_t *since);
void	qmgr_job_done_clear(void);

/* qmgr_dest.c: destinations, their queues and limits. */
/* Loads shaping.file (at start-up; a reload restarts qmgr). */
void	qmgr_dest_init(const struct cfg *);
/*
 * Pending jobs, waiting for a connection in their destination's FIFO of
 * their lane; requeue goes first.
 */
void	qmgr_job_queue(struct qmgr_job *);
void	qmgr_job_requeue(struct qmgr_job *);
size_t	qmgr_job_npending(void);
/* Of them, bulk. */
size_t	qmgr_job_nbulk(void);
/*
 * Frees qid's jobs still waiting for a connection (relayq -h, -d): their
 * recipients leave the in-flight set as they were stored. Returns how many.
 */
size_t	qmgr_job_cancel_pending(const char *qid);
/*
 * How many idle smtp sessions to destination key from source address
 * source ("": the kernel's pick; NULL: any) there are, and in *reusable
 * how many of them a job could reuse (under their use limit).
 */
typedef unsigned qmgr_held_fn(const char *key, const char *source,
	    unsigned *reusable);
/*
 * The next job to send, round-robin over the destinations with a job
 * and, within one, over its source addresses: the first address not
 * avoided (qmgr_source_avoid) with a connection under the destination's
 * max_connections and a token of its rate (and, when no idle session
 * from it is held, of its connection rate), one holding an idle session
 * first; NULL none. The limits count per source address (job->src says
 * which), provider_max_connections too (over the provider's
 * destinations); the window after site failures counts all of them
 * together. A destination's transactional job goes
 * before its bulk ones; a bulk job only while bulk_ok (smtp.processes'
 * reserve is free) and fewer than max_connections less
 * transactional_reserve jobs are at smtp from the address (the lanes,
 * qmgr(8)). The job counts against its destination and address until
 * qmgr_dest_release.
 */
struct qmgr_job *qmgr_dest_take(qmgr_held_fn *held, int bulk_ok);
/* Puts a taken job back (no connection to send it on). */
void	qmgr_dest_untake(struct qmgr_job *);
/*
 * What the job's attempt says of its destination, before its release: a
 * session set up (any reply from the server) clears the failure streak
 * and widens the window again; a site failure that deferred recipients
 * halves the window and, the QMGR_DEST_DEAD_AFTER'th in a row, suspends
 * the destination. A bounce (no such domain) says nothing of it. And a
 * deferral whose reply an on_reply rule of the destination's shaping
 * entry (then of the default) matches counts for that rule and the
 * job's source address, which at its after'th match within
 * SHAPING_AFTER_WINDOW puts that address in backoff (its limits lowered)
 * or suspends it, for the rule's time; the destination is suspended
 * when every address of its pool is.
 */
void	qmgr_dest_outcome(const struct qmgr_job *);
/*
 * relayq -f: dead destinations are tried again now, one job at a time,
 * as Postfix's flush does with dead sites (an on_reply suspension, the
 * provider's own request, stays).
 */
void	qmgr_dest_flush_dead(void);
/* The job is back from smtp (or failed there). */
void	qmgr_dest_release(struct qmgr_job *);
/* About how many pending jobs could be taken now (bulk_ok as above). */
size_t	qmgr_dest_ready(qmgr_held_fn *held, int bulk_ok);
/*
 * The smtp processes bulk jobs may not take: the default shaping
 * entry's transactional_reserve of smtp.processes (0 before
 * qmgr_dest_init).
 */
unsigned qmgr_dest_processes_reserve(void);
/*
 * ms until a rate-limited destination with jobs gets a token (of either
 * rate), or until a backoff or suspension ends; -1 none. Ends those due
 * (logged, limits back) and forgets destinations with nothing left.
 */
int64_t	qmgr_dest_next_ms(void);
/*
 * What relayctl shaping show prints of d: "dead" (suspended after site
 * failures), "suspended" (by on_reply rules, every source address),
 * "backoff" (an on_reply rule lowered the limits of a source address, or
 * suspended some but not all), "pacing" (jobs wait for its rate, at every
 * source address with room), "at-limit" (jobs wait for a connection, at
 * every source address; bulk ones, for one outside the transactional
 * reserve), else "normal".
 */
const char *qmgr_dest_state(const struct qmgr_dest *d, qmgr_held_fn *held);
/*
 * The connections of d that bulk jobs may not take now: its
 * transactional_reserve of max_connections (the lowest in force at its
 * source addresses, as a backoff lowers them), or of its window while
 * site failures narrow it (shaping_reserve).
 */
unsigned qmgr_dest_reserve(const struct qmgr_dest *d);
/* d's limits as they are in force for its source address s. */
void	qmgr_dest_src_limits(const struct qmgr_dest *d,
	    const struct qmgr_dest_src *s, struct shaping_limits *lim);
/*
 * The enum shaping_action an on_reply rule has put s under now (a
 * backoff or suspension), else 0.
 */
int	qmgr_dest_src_adapt(const struct qmgr_dest_src *s, int64_t now);
/*
 * Appends to list (space-separated, as qmgr_source_avoid writes it) the
 * addresses of job's destination that an on_reply rule suspends now, for
 * the request's avoid: smtp, which leaves from another address of the
 * pool when the one chosen is avoided, must not take one of those.
 */
void	qmgr_dest_avoid_suspended(const struct qmgr_job *job,
	    struct vbuf *list);
/*
 * d's source addresses in backoff and suspended by on_reply rules now
 * (either pointer may be NULL), and s until the last of them ends; 0
 * none.
 */
int64_t	qmgr_dest_adapt_left(const struct qmgr_dest *d, unsigned *nbackoff,
	    unsigned *nsuspended);
/* Calls fn for each destination; stops (-1) when fn returns nonzero. */
int	qmgr_dest_walk(int (*fn)(const struct qmgr_dest *, void *),
	    void *arg);
const struct shaping *qmgr_dest_shaping(void);
/*
 * The retry_interval of key's shaping entry (its provider's, when known),
 * s; 0: queue.min_backoff.
 */
int64_t	qmgr_dest_retry_interval(const char *key);
/*
 * smtp named the MX hosts of key's next hop (space-separated): the
 * provider they roll up to counts key's jobs from now on, and its limits
 * apply to key's destination.
 */
void	qmgr_dest_learn_mx(const char *key, const char *mx);
/*
 * ms until the destination of key (a job's dest_key) may be tried again
 * when it is suspended now (dead, or by an on_reply rule), else 0: a
 * deferral then is due when the suspension ends, not after the backoff
 * (qmgr_result.c).
 */
int64_t	qmgr_dest_suspended_ms(const char *key);

/*
 * qmgr_destev.c: a destination's changes of state as outbox events,
 * kept in memory (at most QMGR_DESTEV_MAX, the oldest dropped) until
 * the next results transaction or the end of the loop pass. A dead site
 * is one event per address of its pool: room for four pools of
 * CFG_POOL_ADDRS_MAX, or 64 destinations of 16 addresses, dying in one
 * pass (about 1 KiB each).
 */
#define QMGR_DESTEV_MAX		1024
#define QMGR_DESTEV_NORMAL	"normal"
#define QMGR_DESTEV_BACKOFF	"backoff"
#define QMGR_DESTEV_SUSPENDED	"suspended"
#define QMGR_DESTEV_DEAD	"dead"
/*
 * The state of d's mail from its source address s as its events say it:
 * dead (while d's retry time lasts, and after it until a session is set
 * up), suspended (s, by an on_reply rule), backoff, or normal. A static
 * string.
 */
const char *qmgr_destev_state(const struct qmgr_dest *d,
	    const struct qmgr_dest_src *s, int64_t now);
/*
 * Called by qmgr_dest.c after the log line of a change of d's state at
 * its source address s (NULL: at each, a change of d itself): for each
 * whose state (qmgr_destev_state) is not the one last announced, or all
 * when again is set (suspended anew), keeps an event of it with reason
 * (the reply or failure that caused it; copied), naming the address
 * when d has a pool.
 */
void	qmgr_destev_note(struct qmgr_dest *d, struct qmgr_dest_src *s,
	    const char *reason, int again);
/*
 * Puts the events waiting into txn (qmgr_result.c's, or flush's own),
 * their accounting lines held (acct_hold) until acct_release; then
 * qmgr_destev_done says whether txn committed (they are gone) or not
 * (they wait). -1 with why: txn is bad.
 */
int	qmgr_destev_put(struct qstore_txn *txn, struct vbuf *why);
void	qmgr_destev_done(int committed);
/* At the end of a loop pass: what waits, in a transaction of its own. */
void	qmgr_destev_flush(void);
/* Events waiting; dropped since start (or the last reset, for tests). */
size_t	qmgr_destev_waiting(void);
uint64_t qmgr_destev_dropped_total(void);
void	qmgr_destev_reset(void);

/*
 * qmgr_provider.c: the provider of each next-hop key smtp named MX hosts
 * for, and the jobs each provider has at smtp (provider_max_connections).
 */
void	qmgr_provider_init(const struct shaping *);
/* key's provider, as last learned; NULL: none or not known yet. */
const struct shaping_provider *qmgr_provider_of(const char *key);
/*
 * Whether key's provider (or that it has none) is known: always, when the
 * shaping file has no providers.
 */
int	qmgr_provider_known(const char *key);
/*
 * Learns key's provider (or none) from its MX hosts; 1 if key was not
 * known or its provider changed, else 0.
 */
int	qmgr_provider_learn(const char *key, const char *mx);
/*
 * The sessions smtp holds open, idle, to destinations of p from source
 * (NULL: any address; qmgr_deliver.c gives it, nothing calls up): they
 * count against p's connections from that address.
 */
void	qmgr_provider_held_by(unsigned (*)(const struct shaping_provider *,
	    const char *source));
/*
 * Whether p (NULL: none, always) may have one more connection from source
 * address source ("": the kernel's choice): its jobs at smtp and the idle
 * sessions held to it from there are under its cap, which counts per
 * source address as every shaping limit does.
 */
int	qmgr_provider_room(const struct shaping_provider *p,
	    const char *source);
/* A job of p from source goes to smtp / is back (p NULL: no count). */
void	qmgr_provider_take(const struct shaping_provider *p,
	    const char *source);
void	qmgr_provider_release(const struct shaping_provider *p,
	    const char *source);
/* p's jobs at smtp from source; NULL: from every address. */
unsigned qmgr_provider_inflight(const struct shaping_provider *p,
	    const char *source);
/*
 * A token of p's provider_max_message_rate from source (p NULL, or no
 * such rate: always): 1 taken, 0 none now. A token taken for a job that
 * did not go is given back.
 */
int	qmgr_provider_rate_take(const struct shaping_provider *p,
	    const char *source, int64_t now);
void	qmgr_provider_rate_refund(const struct shaping_provider *p,
	    const char *source);
/* ms until p has a token from source; 0 now (or no rate). */
int64_t	qmgr_provider_rate_wait(const struct shaping_provider *p,
	    const char *source, int64_t now);

/*
 * qmgr_source.c: source addresses set aside for a provider (or next hop)
 * after reputation refusals, and warmup addresses' daily caps.
 */
/*
 * The addresses job (or any job of its destination: the same next hop
 * and pool) must not leave from, space-separated, into out.
 */
void	qmgr_source_avoid(const struct qmgr_job *job, struct vbuf *out);
/* Whether addr is one of list's space-separated addresses. */
int	qmgr_source_listed(const char *list, const char *addr);
/*
 * smtp's reply for job: the address it left from (NULL: none or the
 * kernel's), an address refused for its reputation (NULL: none) with the
 * refusal, and whether a recipient was sent (a message counted for
 * warmup, from source).
 */
void	qmgr_source_reply(const struct qmgr_job *job, const char *source,
	    const char *refused, const char *refusal, int sent);
/*
 * Writes the warmup counts not yet written into txn (a results
 * transaction); qmgr_source_done says whether it committed.
 */
int	qmgr_source_put(struct qstore_txn *txn, struct vbuf *why);
void	qmgr_source_done(int committed);
/*
 * relayctl sources show: appends to out one attribute record per source
 * address of each pool, then one per address and scope with a set-aside
 * in force or a warmup count for today (lib/mailproto.h), at most
 * QMGR_SOURCES_SHOW_MAX in all. Returns the number of records.
 */
size_t	qmgr_source_report(struct vbuf *out);
/* Messages counted today for addr (text) and scope; for tests. */
uint64_t qmgr_source_sent_today(const char *addr, const char *scope);
void	qmgr_source_reset(void);

/* qmgr_active.c: the messages taken in this lifetime. */
/*
 * Logs m's "from=<...>, size=N, nrcpt=N (queue active)" line the first
 * time this process takes m (again after a restart, as Postfix does).
 */
void	qmgr_active_take(const struct qstore_msginfo *m);
/* m's records are gone: the next message with its id is new. */
void	qmgr_active_forget(const char *qid);

/* qmgr_sched.c: due recipients into jobs. */
/* Reads the due recipients and queues jobs for at most slots messages. */
void	qmgr_sched_scan(size_t slots);
/* ms (monotonic) when the next future entry falls due; -1 none known. */
int64_t	qmgr_sched_next_due(void);
/* Asks for a scan at the next loop pass; qmgr_sched_wanted reads it. */
void	qmgr_sched_want(void);
int	qmgr_sched_wanted(void);

/* qmgr_deliver.c: connections to smtp, requests out, replies in. */
/* Sends pending jobs while connections and slots allow. */
void	qmgr_deliver_run(void);
/*
 * Slots for more jobs: smtp.processes less those busy and those pending
 * that could go now (jobs held back by a destination's limit do not
 * keep the scheduler from finding other destinations' mail), bounded by
 * QMGR_PENDING_MAX jobs in memory.
 */
size_t	qmgr_deliver_free_slots(void);
/* Jobs at smtp or waiting for a connection. */
size_t	qmgr_deliver_busy(void);
/* A qmgr_held_fn: the idle smtp processes' sessions. */
unsigned qmgr_deliver_held(const char *key, const char *source,
	    unsigned *reusable);
/*
 * Idle smtp processes that may still hold a session to a member of p from
 * source (NULL: from any address).
 */
unsigned qmgr_deliver_held_by(const struct shaping_provider *p,
	    const char *source);

/* qmgr_result.c: results into the queue. */
/* ms until the gathered results are due to be applied; -1 none. */
int64_t	qmgr_results_due_in(void);
/* Applies them; returns how many results it went through. */
size_t	qmgr_results_apply(void);
/* The backoff after a deferral: min * 2^(attempts-1), capped at max. */
int64_t	qmgr_result_backoff(uint32_t attempts);
/*
 * The same from first instead of queue.min_backoff (0: min_backoff),
 * capped at queue.max_backoff or first, the larger.
 */
int64_t	qmgr_result_backoff_from(int64_t first, uint32_t attempts);
/*
 * The delay before the next attempt of a recipient deferred for the
 * attempts-th time with this status and reply: queue.greylist_retry for
 * a first deferral that the bounce rules call greylisting (*greylisted
 * set to 1), else qmgr_result_backoff_from(first, attempts), first being
 * the destination's retry_interval (*greylisted 0).
 */
int64_t	qmgr_result_retry_in(uint32_t attempts, const char *dsn,
	    const char *reply, int64_t first, int *greylisted);
/*
 * The first whole epoch second at least ms from now, for times kept in
 * whole seconds (the index's next attempt, an event's until): rounded up
 * from the current instant, never from the current second.
 */
int64_t	qmgr_epoch_after_ms(int64_t ms);
/* Loads what qmgr_result_retry_in needs (bounce.classes). */
void	qmgr_result_init(const struct cfg *);
/*
 * One more recipient of m is final with no report owed: m's count goes
 * down and at 0 the message's records go, its id added to *removed (to
 * retire the file after the commit). -1 with why: the transaction is bad.
 */
int	qmgr_result_settle(struct qstore_txn *, struct qstore_msginfo *m,
	    char (**removed)[QID_SIZE], size_t *nremoved, struct vbuf *why);
/*
 * The report r's new state (r->state) owes m's sender (RFC 3461):
 * dsn_passed says a DSN-aware next hop took a delivery over.
 */
enum qstore_report qmgr_result_report_owed(const struct qstore_msginfo *m,
	    const struct qstore_rcpt *r, int dsn_passed, int64_t now);
/*
 * Makes the queue map larger when a transaction that records what
 * happened to accepted mail does not fit (qstore_grow); 0 or -1.
 */
int	qmgr_result_grow(void);
/* Retires the files of removed messages, once their commit stands. */
void	qmgr_result_retire(char (*removed)[QID_SIZE], size_t nremoved);

/* qmgr_bounce.c: report requests to bounce, replies applied. */
/* Queues a report job (job->report set) for bounce. */
void	qmgr_bounce_queue(struct qmgr_job *);
/* Sends the next report job when bounce is free. */
void	qmgr_bounce_run(void);
/* Whether reports are taken now (not waiting after a failure). */
int	qmgr_bounce_ready(void);
/* Report jobs queued or at bounce. */
size_t	qmgr_bounce_busy(void);
/*
 * Whether bounce answered a request since the last call: its report is a
 * new message, and the next report job may go (the loop asks for a scan).
 */
int	qmgr_bounce_made(void);
/*
 * A request is at bounce (stopping waits for its answer; queued jobs are
 * only memory: their reports stay owed).
 */
int	qmgr_bounce_in_flight(void);

/* qmgr_suppress.c: the suppression list (lib/suppress). */
#define QMGR_SUPPRESS_PRUNE_MS	60000	/* a bounded prune this often */
/* Opens the list (at start-up); without it nothing is added or checked. */
void	qmgr_suppress_open(void);
/*
 * Whether address is suppressed for mail from sender: 1 with the refusal
 * (after "5.1.1") in reply and the entry's class in class, else 0 (also
 * when the list cannot be read: delivery goes on).
 */
int	qmgr_suppress_check(const char *address, const char *sender,
	    char *reply, size_t reply_size, char *class, size_t class_size);
/*
 * What results add to the list: hard bounces of dead mailboxes, soft
 * bounces counted. Before the results transaction begins.
 */
void	qmgr_suppress_results(struct qmgr_rcpt *const *refs, size_t n);
/* Removes expired entries and old soft-bounce history, a bounded batch. */
void	qmgr_suppress_prune(void);

/* qmgr_flush.c: relayq -f. */
int	qmgr_flush(struct vbuf *why);

/* qmgr_admin.c: relayq -h, -H, -d, -r. */
enum qmgr_admin_op {
	QMGR_ADMIN_HOLD,
	QMGR_ADMIN_RELEASE,
	QMGR_ADMIN_DELETE,
	QMGR_ADMIN_REQUEUE,
};
/*
 * Applies op to the messages sel names; returns how many it changed, or
 * -1 with why set when none could be.
 */
int	qmgr_admin(enum qmgr_admin_op, const struct qstore_select *,
	    struct vbuf *why);
const char *qmgr_admin_name(enum qmgr_admin_op);

/* qmgr_reconcile.c: files against records at start-up. */
void	qmgr_reconcile(void);

/* qmgr_request.c: requests on private/qmgr. */
void	qmgr_request_accept(const struct daemon_listener *);

/* qmgr_daemon.c: the daemon_spec callbacks. */
void	qmgr_init(const struct cfg *);
void	qmgr_service(const struct daemon_listener *);
int64_t	qmgr_loop(void);
int	qmgr_busy(void);

#endif
