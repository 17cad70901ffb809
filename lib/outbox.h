/*
 * outbox.h - events, written inside the transaction that makes them true.
 *
 * Every change a consumer may want to hear of (a message accepted; a
 * recipient delivered, deferred, bounced, expired or suppressed; a
 * destination's state changed) is one event struct.
 * The process that makes the change puts the event into the queue
 * environment's "events" database in the same LMDB write transaction
 * (smtpd in qstore_commit, qmgr in its result commit), so an event exists
 * exactly when its change does. The exception is a destination's state,
 * which lives in qmgr's memory only: its events are written after the
 * change, once per loop pass (qmgr_destev.c says what a crash loses). After the commit the same struct is
 * rendered to the JSON accounting log (lib/acct), so the log and the outbox
 * never disagree.
 *
 * The outbox is read by relayq -o and, later, drained by webhookd. Until a
 * consumer deletes what it has delivered, the outbox is bounded: past
 * outbox.max_events events, events older than outbox.max_age, or events
 * taking more than outbox.max_share percent of queue.map_size, each put
 * drops the oldest events (a bounded number at a time), counts them, and
 * never fails because of the outbox. See qmgr(8), EVENTS.
 */
#ifndef PETREL_OUTBOX_H
#define PETREL_OUTBOX_H

#include <inttypes.h>
#include <stddef.h>
#include <stdint.h>

#include "attr.h"
#include "json.h"
#include "qid.h"
#include "qstore.h"
#include "vbuf.h"

enum outbox_kind {
	OUTBOX_ACCEPTED = 1,
	OUTBOX_DELIVERED,
	OUTBOX_DEFERRED,
	OUTBOX_BOUNCED,
	OUTBOX_EXPIRED,
	OUTBOX_SUPPRESSED,	/* failed without an attempt: on the list */
	OUTBOX_DELETED,		/* removed by an administrator (relayq -d) */
	OUTBOX_DESTINATION,	/* a destination's state changed (qmgr): */
				/* no queue id (qid ""), no message */
};
#define OUTBOX_KIND_LAST	OUTBOX_DESTINATION

/*
 * One event. Strings are borrowed: outbox_put copies them into the
 * record; outbox_iter points them into storage valid during its callback.
 * A NULL string is absent. Which members a kind uses is in qmgr(8).
 */
struct outbox_event {
	uint64_t		 seq;		/* set by outbox_put and iter */
	enum outbox_kind	 kind;
	int64_t			 time_ms;	/* epoch milliseconds */
	char			 qid[QID_SIZE];
	const char		*sender;	/* "" is the null sender */
	const char		*recipient;	/* recipient events */
	const char *const	*recipients;	/* accepted: all of them */
	size_t			 nrecipients;
	const char		*relay;
	const char		*dsn;
	const char		*reply;
	uint32_t		 attempts;
	int64_t			 delay;		/* s since arrival */
	int64_t			 next_attempt;	/* deferred: epoch s */
	const char		*dkim;
	uint64_t		 size;		/* accepted: message bytes */
	const char		*client;
	const char		*helo;
	const char		*sasl_username;
	const char		*tls;		/* accepted over TLS: version */
	const char		*listener;
	const char		*class;		/* failure class (bounces) */
	const char		*message_id;	/* accepted: "<...>" as in the */
						/* header (smtpd's if it added one) */
	const char		*metadata;	/* application's JSON object, */
						/* compact, valid (smtpd checks) */
	const char		*tags;		/* application's JSON array of */
						/* strings, compact, valid */
	/* OUTBOX_DESTINATION (qmgr(8), DESTINATION EVENTS): */
	const char		*destination;	/* the next-hop key */
	const char		*entry;		/* shaping entry applied */
	const char		*source;	/* the pool's address whose */
						/* state it is; NULL: no pool */
	const char		*state;		/* normal, backoff, */
	const char		*prev_state;	/* suspended, dead */
	const char		*reason;	/* the reply or failure */
	int64_t			 until;		/* epoch s; 0: no end */
	uint32_t		 max_connections; /* in force; 0: any */
	uint32_t		 rate_count;	/* max_message_rate in */
	uint32_t		 rate_interval;	/* force, per s; 0: none */
};

/*
 * The storage form of an event, shared with webhookd's own stores
 * (lib/whstore, lib/evlog) so that an event is encoded one way
 * everywhere. outbox_pack writes ev (seq is not part of it) into out,
 * replacing what out held. outbox_unpack decodes a packed event into ev,
 * whose strings then point into data and into scratch, valid until
 * scratch is reused or released; seq is set from the argument. Returns 0,
 * or -1 if the bytes are not a packed event.
 */
struct outbox_scratch {
	struct attr_list	 l;
	const char		**rcpts;
	size_t			 rcpts_alloc;
};
void	outbox_scratch_init(struct outbox_scratch *);
void	outbox_scratch_release(struct outbox_scratch *);
void	outbox_pack(struct vbuf *out, const struct outbox_event *);
int	outbox_unpack(const void *data, size_t len, uint64_t seq,
	    struct outbox_event *, struct outbox_scratch *);

/* The event name for a kind ("accepted", ...); NULL if unknown. */
const char	*outbox_kind_name(enum outbox_kind);
/* The current time in epoch milliseconds, for time_ms. */
int64_t		 outbox_now_ms(void);

/*
 * Appends the event under the next sequence number, in the caller's write
 * transaction, and drops the oldest events while the outbox is over its
 * cap (at most OUTBOX_DROP_BATCH per put; the age cap is looked at when
 * the number is a multiple of OUTBOX_AGE_EVERY). Returns the number dropped
 * (>= 0), or -1 with qstore_errno() and why set: the transaction is then
 * bad and must be aborted. Drops are counted in the outbox's own record
 * and, once the transaction commits, in qstore_events_dropped().
 */
#define OUTBOX_DROP_BATCH	64
#define OUTBOX_AGE_EVERY	64
int	outbox_put(struct qstore_txn *, const struct outbox_event *,
	    struct vbuf *why);

/*
 * Calls cb for each event from sequence number "from" on, oldest first,
 * until cb returns nonzero or max events (0: no limit) were seen. Returns
 * 0, or -1 with qstore_errno() and why set (a record that does not decode
 * is skipped, not an error).
 */
typedef int outbox_cb(const struct outbox_event *, void *arg);
int	outbox_iter(struct qstore_txn *, uint64_t from, size_t max,
	    outbox_cb *, void *arg, struct vbuf *why);

/*
 * For webhookd, the outbox's one consumer: deletes every event numbered
 * "through" or less, in the caller's write transaction, and remembers
 * the number so that it is never given out again. Returns the number
 * deleted (>= 0), or -1 with qstore_errno() and why set.
 */
int	outbox_delete_through(struct qstore_txn *, uint64_t through,
	    struct vbuf *why);

/* What the outbox holds now, and its lifetime counters. */
struct outbox_stat {
	uint64_t	 events;	/* held now */
	uint64_t	 bytes;		/* pages of the events database */
	uint64_t	 last_seq;	/* the last number given out */
	uint64_t	 dropped;	/* over the cap, since the queue began */
	int64_t		 oldest_ms;	/* 0 when empty */
};
int	outbox_stat(struct qstore_txn *, struct outbox_stat *,
	    struct vbuf *why);

/*
 * For daemons, after their commits: how many events this process's
 * transactions have dropped over the cap since it last reported, or 0
 * when there are none or it reported less than OUTBOX_WARN_INTERVAL_MS
 * ago. The caller logs OUTBOX_DROPPED_FMT with that number (one warning
 * line an hour at most); the total is in relayq -o.
 */
#define OUTBOX_WARN_INTERVAL_MS	3600000
#define OUTBOX_DROPPED_FMT	"outbox: dropped the %" PRIu64 " oldest " \
	"event(s) over its cap (outbox.max_events, outbox.max_age, " \
	"outbox.max_share): nothing consumes them; see relayq -o"
uint64_t	outbox_dropped_to_report(struct qstore *, int64_t now_ms);

/*
 * Writes the event as one JSON object: "seq" (only when set, as
 * outbox_iter sets it), "time" (RFC 3339, UTC, ms),
 * "event", "queue_id", then the members its kind has (qmgr(8),
 * ACCOUNTING); a destination event has no "queue_id" but "destination"
 * and the members of its state (qmgr(8), DESTINATION EVENTS). The accounting log and relayq -o -j both use it.
 */
void	outbox_json(struct json *, const struct outbox_event *);

#endif
