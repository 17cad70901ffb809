/*
 * evlog.h - the searchable delivery log: every event webhookd has seen,
 * indexed by recipient, sender, Message-ID, queue id and credential, kept
 * for log.retention (relayctl log search|show|export, webhookd(8)).
 *
 * Its own LMDB environment at <queue_directory>/log/, so that a large log
 * never takes the queue's room (map size log.map_size). Databases:
 *   ev    seq (be64) -> event time_ms (be64), then the event as
 *         outbox_pack writes it (the one storage encoding)
 *   rcpt, from, mid, qid, user
 *         DUPSORT|DUPFIXED: lower-cased key -> seq (be64) dups, so the
 *         newest event of a key is its last dup (from: "<>" for the null
 *         sender; mid: the Message-ID without its angle brackets)
 *   wh    DUPSORT: seq (be64) -> webhook outcome (time, HTTP status,
 *         outcome, endpoint), in time order
 * webhookd is the one writer; relayctl opens it read-only as mail_owner.
 */
#ifndef PETREL_EVLOG_H
#define PETREL_EVLOG_H

#include <stddef.h>
#include <stdint.h>

#include "cfg.h"
#include "outbox.h"
#include "vbuf.h"

struct evlog;

/*
 * Opens the log of cfg's queue directory (log.map_size). writable
 * (webhookd): creates the directory and databases if missing. Read-only
 * (relayctl): returns NULL with "no delivery log yet" style reason in why
 * when there is none. NULL with why on error.
 */
struct evlog	*evlog_open(const struct cfg *cfg, int writable,
		    struct vbuf *why);
/* The same for a directory of one's own (tests, bench). */
struct evlog	*evlog_open_dir(const char *dir, uint64_t map_size,
		    int writable, struct vbuf *why);
void		 evlog_close(struct evlog *);

/*
 * Indexes n events in one write transaction (one fsync). Idempotent by
 * seq: an event whose seq is already in the log is skipped, so a batch
 * repeated after a crash indexes nothing twice. Returns the number of
 * events newly added (>= 0), or -1 with why (nothing of the batch is
 * then in the log).
 */
int	evlog_add(struct evlog *, const struct outbox_event *const *evs,
	    size_t n, struct vbuf *why);

/* One webhook outcome of an event ("sent", "failed", "dead"). */
#define EVLOG_WH_ENDPOINT_MAX	400	/* longer endpoints are cut */
struct evlog_webhook {
	int64_t		 time_ms;
	long		 http_status;	/* 0: no HTTP answer */
	const char	*outcome;
	const char	*endpoint;
};
/* Records it; 0, or -1 with why (an unknown seq is recorded anyway). */
int	evlog_webhook(struct evlog *, uint64_t seq, const char *endpoint,
	    const char *outcome, long http_status, int64_t time_ms,
	    struct vbuf *why);
/* Records n outcomes in one write transaction (one fsync). */
struct evlog_note {
	uint64_t		 seq;
	struct evlog_webhook	 wh;
};
int	evlog_webhooks(struct evlog *, const struct evlog_note *, size_t n,
	    struct vbuf *why);

/*
 * A search. NULL / 0 members do not filter. Addresses, Message-IDs
 * (with or without <>) and user names compare case-insensitively.
 * since/until are epoch ms, inclusive. limit 0 means EVLOG_DEFAULT_LIMIT;
 * EVLOG_NO_LIMIT for all (export).
 */
#define EVLOG_DEFAULT_LIMIT	100
#define EVLOG_NO_LIMIT		((size_t)-1)
struct evlog_query {
	const char	*to;
	const char	*from;
	const char	*message_id;
	const char	*queue_id;
	const char	*user;
	int64_t		 since_ms;
	int64_t		 until_ms;
	enum outbox_kind kind;		/* 0: any */
	size_t		 limit;
	int		 oldest_first;	/* export: chronological */
};

/*
 * Called per event with its webhook outcomes; everything points into
 * storage valid during the call. Nonzero stops the walk.
 */
typedef int evlog_cb(const struct outbox_event *,
	    const struct evlog_webhook *whs, size_t nwh, void *arg);

/*
 * Calls cb for each matching event, newest first (by seq, which follows
 * commit order; oldest first with q->oldest_first), at most limit.
 * Walks the most selective index the query names (the one with fewest
 * entries for its key); with none, the whole log from the newest (the
 * oldest). Returns the number of events given to cb, or -1 with why.
 */
long	evlog_search(struct evlog *, const struct evlog_query *,
	    evlog_cb *, void *arg, struct vbuf *why);

/*
 * The story of one message: every event of the queue id (or of the
 * queue ids that carried this Message-ID), oldest first, each with its
 * webhook outcomes. Returns the number of events (0: unknown), or -1.
 */
#define EVLOG_STORY_MAX		10000
long	evlog_story(struct evlog *, const char *qid_or_msgid,
	    evlog_cb *, void *arg, struct vbuf *why);

/*
 * Deletes events older than before_ms (with their index entries and
 * webhook outcomes), at most max of them, oldest first, in one write
 * transaction. Returns the number deleted (max: call again), or -1.
 */
long	evlog_prune(struct evlog *, int64_t before_ms, size_t max,
	    struct vbuf *why);

struct evlog_stat {
	uint64_t	 events;
	uint64_t	 first_seq, last_seq;
	int64_t		 oldest_ms, newest_ms;	/* 0 when empty */
	uint64_t	 bytes;		/* pages in use */
	uint64_t	 map_size;
};
int	evlog_stat(struct evlog *, struct evlog_stat *, struct vbuf *why);

/*
 * Events seq order and time order agree to within this: a time-bounded
 * walk, newest first, stops at the first event older than since by more.
 */
#define EVLOG_TIME_SLACK_MS	(10 * 60 * 1000)

#endif
