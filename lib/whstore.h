/*
 * whstore.h - webhookd's durable store (<queue_directory>/webhook/), an
 * LMDB environment of its own, shared with relayctl events.
 *
 * One named database, records told apart by a one-byte prefix:
 *   'S'                      the last outbox seq ingested (8 bytes BE)
 *   'E' seq(8 BE)            an ingested event, outbox_pack()ed, enriched
 *   'M' qid                  the message's accepted event (the join)
 *   'N' qid                  recipients of the message whose final event
 *                            is not ingested yet (4 bytes BE); with 'M'
 *   'Q' seq(8 BE) endpoint   one delivery of event seq to an endpoint:
 *                            struct whstore_dlv (pending, sent or dead)
 *   'P' endpoint NUL due(8 BE) seq(8 BE)
 *                            the pending index: one (empty) record per
 *                            pending delivery, kept by whstore_dlv_put
 *   'V'                      the layout's version (1: with 'P')
 * Endpoint keys are "cfg:<url>" or "user:<name>".
 *
 * The pending index is what lets webhookd find what is due without
 * reading the deliveries already sent (kept a day: millions at volume),
 * endpoint by endpoint, so each endpoint's free slots are filled in every
 * pass whatever another endpoint's backlog.
 */
#ifndef PETREL_WHSTORE_H
#define PETREL_WHSTORE_H

#include <stddef.h>
#include <stdint.h>

#include <lmdb.h>

#include "cfg.h"
#include "mdbdir.h"
#include "outbox.h"
#include "vbuf.h"

#define WHSTORE_DIR	"webhook"
#define WHSTORE_DB	"webhook"
#define WHSTORE_KEY_MAX	480

enum whstore_state {
	WHSTORE_PENDING = 0,
	WHSTORE_SENT,
	WHSTORE_DEAD,
};

/* One delivery's state, stored packed (little-endian host order). */
struct whstore_dlv {
	int64_t		 due_ms;	/* pending: next try */
	int64_t		 last_ms;	/* last try or state change */
	uint32_t	 tries;
	uint32_t	 state;		/* enum whstore_state */
	int32_t		 http_status;	/* last answer, 0: none */
	uint32_t	 replayed_s;	/* last relayctl events replay, epoch
					   seconds (0: never): a replayed
					   delivery's max_age counts from it */
};

#define WHSTORE_ID_SIZE	33	/* an event id: 32 hex digits and a NUL */

struct whstore {
	struct mdbdir	 md;
};

int	whstore_open(struct whstore *, const struct cfg *, int writable,
	    struct vbuf *why);
void	whstore_close(struct whstore *);

/* The last outbox seq ingested (0: none), in txn. */
uint64_t whstore_last_seq(struct whstore *, MDB_txn *);
/*
 * Stores event ev (already enriched) under its seq and a pending
 * delivery due now for each endpoint key in keys, and moves the last seq
 * on. Idempotent: an event already stored is left alone with its
 * deliveries (returns 0 and adds nothing). Returns 1 stored, 0 already
 * there, -1 error (why).
 */
int	whstore_put_event(struct whstore *, MDB_txn *,
	    const struct outbox_event *ev, const char *const *keys,
	    size_t nkeys, int64_t now_ms, struct vbuf *why);
/*
 * The join: stores an accepted event's record for its qid, and the
 * number of its recipients still to be heard of. Call it only for an
 * event newly ingested (seq above whstore_last_seq), never on a crash's
 * re-ingest, or the count would start again.
 */
int	whstore_put_msg(struct whstore *, MDB_txn *,
	    const struct outbox_event *ev, struct vbuf *why);
/*
 * After a recipient event was newly stored (whstore_put_event returned
 * 1), in the same transaction: a final one (delivered, bounced, expired,
 * suppressed, deleted) counts its recipient off, and the message's join
 * records go with the last. ev's strings must not be used afterwards
 * (enrichment pointed them into the record just deleted). 1 removed, 0
 * not (yet), -1 error (why).
 */
int	whstore_msg_settle(struct whstore *, MDB_txn *,
	    const struct outbox_event *ev, struct vbuf *why);
/*
 * The backstop for joins whose count cannot reach zero (final events
 * dropped by the outbox's cap while webhookd was down, a store written
 * before 'N', a message set aside as corrupt): looks at up to max 'M'
 * records after qid *resume (a QID_SIZE buffer; "" from the first) and
 * removes those for which gone(qid) says 1. The caller's gone() must only
 * say so when no event of the message can still come (see webhookd.c).
 * *resume is left at the last looked at, or "" after the last of all.
 * Returns the number removed, or -1.
 */
typedef int whstore_gone_cb(const char *qid, void *arg);
int	whstore_msg_sweep(struct whstore *, MDB_txn *, char *resume,
	    size_t max, whstore_gone_cb *gone, void *arg);
/*
 * Fills ev's user, message_id, metadata and tags from the message's
 * accepted event, when stored (strings point into txn / scratch).
 */
void	whstore_enrich(struct whstore *, MDB_txn *, struct outbox_event *ev,
	    struct outbox_scratch *);
/* Reads event seq into ev (scratch as outbox_unpack). 0, or -1 absent. */
int	whstore_get_event(struct whstore *, MDB_txn *, uint64_t seq,
	    struct outbox_event *ev, struct outbox_scratch *);

typedef int whstore_dlv_cb(uint64_t seq, const char *key,
	    const struct whstore_dlv *, void *arg);

int	whstore_dlv_get(struct whstore *, MDB_txn *, uint64_t seq,
	    const char *key, struct whstore_dlv *);
/* Stores a delivery's state, and its pending-index record to match. */
int	whstore_dlv_put(struct whstore *, MDB_txn *, uint64_t seq,
	    const char *key, const struct whstore_dlv *, struct vbuf *why);

/*
 * Calls cb for the pending deliveries due at now_ms, endpoint by endpoint
 * (in key order) and each endpoint's in due order. cb returns 0 to go on,
 * WHSTORE_SKIP to leave the rest of this endpoint's for another time, or
 * WHSTORE_STOP. *next_due is set to the earliest due time after now_ms
 * seen (0: none), so the caller knows when to look again. 0, or -1.
 */
#define WHSTORE_SKIP	1
#define WHSTORE_STOP	2
/*
 * Where to resume an endpoint's walk (from, optional): returns 1 and
 * sets *due and *seq to start after that entry (what the caller knows is
 * in flight up to there), 0 to start at the endpoint's first.
 */
typedef int whstore_resume_cb(const char *key, int64_t *due, uint64_t *seq,
	    void *arg);
int	whstore_due_iter(struct whstore *, MDB_txn *, int64_t now_ms,
	    whstore_dlv_cb *, whstore_resume_cb *from, void *arg,
	    int64_t *next_due);

/*
 * Counts the pending deliveries (the webhook backlog) into *n from the
 * pending index alone: one cursor walk over its keys, not over the
 * deliveries already sent (metricsd(8) at each scrape). 0, or -1.
 */
int	whstore_pending_count(struct whstore *, MDB_txn *, uint64_t *n);

/*
 * Calls cb for every delivery from seq "from" on, in seq order, until cb
 * returns nonzero or max were seen.
 */
int	whstore_dlv_iter(struct whstore *, MDB_txn *, uint64_t from,
	    size_t max, whstore_dlv_cb *, void *arg);

/*
 * Prunes: deliveries sent more than keep_sent_ms ago, dead ones older
 * than dead_ms, and events without deliveries left (at most max events
 * looked at). Returns the number of events removed.
 */
int	whstore_prune(struct whstore *, MDB_txn *, int64_t now_ms,
	    int64_t keep_sent_ms, int64_t dead_ms, size_t max);

/*
 * The event's stable id (what webhooks carry as their event id): from
 * what the stored event is, never from when it is sent, so it is the
 * same on every retry, replay and after a crash's re-ingest.
 */
void	whstore_event_id(const struct outbox_event *, char id[WHSTORE_ID_SIZE]);
/*
 * The seq of the stored event whose id is id (32 hex digits, any case).
 * Ids are digests, not keys: this reads every stored event (relayctl
 * events show and replay; not for a hot path). 0, or -1 absent.
 */
int	whstore_find_id(struct whstore *, MDB_txn *, const char *id,
	    uint64_t *seq);
/*
 * An endpoint's URL as it may be shown or logged: without userinfo, ever
 * (it may hold a password).
 */
void	whstore_safe_url(const char *url, char *out, size_t n);

#endif
