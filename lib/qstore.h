/*
 * qstore.h - the queue: immutable message files plus an LMDB index.
 *
 * Layout under queue_directory: msg/<h>/<queueid> (being written, then
 * committed; h comes from the id's seconds and its process digit, see
 * qstore_hash), tmp/ (where older versions wrote new messages; only
 * cleaned now), corrupt/ (kept for inspection),
 * free/ (delivered messages' files, to be written over by new ones),
 * private/ (sockets), db/ (the LMDB environment: named databases msg, rcpt,
 * sched, counters, events). A committed file is an envelope header of
 * "name=value" lines ended by an empty line, then the exact bytes to send
 * (CRLF, dot-unstuffed, our Received: first). It never changes after
 * commit. The module's code is in qstore.c, qfile.c and counter.c
 * (qstore_int.h).
 *
 * Who writes what: smtpd inserts new messages (qstore_new_*, qstore_commit);
 * qmgr alone changes recipient state and deletes; smtp and relayq only read.
 * A message is acknowledged only after qstore_commit() returned 0: the file
 * and its directory are fsync'd and the LMDB transaction is committed.
 */
#ifndef PETREL_QSTORE_H
#define PETREL_QSTORE_H

#include <sys/types.h>

#include <stddef.h>
#include <stdint.h>

#include "cfg.h"
#include "qid.h"
#include "vbuf.h"

#define QSTORE_ADDR_MAX		256	/* RFC 5321 4.5.3.1.3 path */
#define QSTORE_REPLY_MAX	512
#define QSTORE_DSN_MAX		15
#define QSTORE_TEXT_MAX		255	/* client, auth user */
#define QSTORE_SRCPOOL_MAX	63	/* a source pool name (cfg.h) */
#define QSTORE_ORCPT_MAX	500	/* RFC 3461 4.2: ORCPT's value */
#define QSTORE_ENVID_MAX	100	/* RFC 3461 4.4: ENVID's value */
#define QSTORE_CLASS_MAX	31	/* a bounce class name (lib/bclass) */
#define QSTORE_RELAY_MAX	300	/* host[address]:port */

/*
 * RFC 3461 NOTIFY, per recipient, as bits; 0 when the client gave none
 * (then failures are reported, and delays when bounce.delay_warning is
 * set, as RFC 3461 4.1 allows).
 */
#define QSTORE_NOTIFY_NEVER	0x01
#define QSTORE_NOTIFY_SUCCESS	0x02
#define QSTORE_NOTIFY_FAILURE	0x04
#define QSTORE_NOTIFY_DELAY	0x08

/* RFC 3461 RET: what of the original a failure report carries. */
enum qstore_ret {
	QSTORE_RET_DEFAULT = 0,	/* not given: the headers */
	QSTORE_RET_HDRS,
	QSTORE_RET_FULL,
};

/*
 * A delivery report (DSN) that a recipient is owed: qmgr asks bounce for
 * it and clears it once bounce has committed the report. Until then the
 * recipient keeps a schedule entry, so a crash loses no report.
 */
enum qstore_report {
	QSTORE_REPORT_NONE = 0,
	QSTORE_REPORT_FAILED,	/* Action: failed */
	QSTORE_REPORT_DELAYED,	/* Action: delayed (a delay warning) */
	QSTORE_REPORT_RELAYED,	/* Action: relayed (NOTIFY=SUCCESS) */
};

enum qstore_rcpt_state {
	QSTORE_PENDING = 0,
	QSTORE_DEFERRED,
	QSTORE_DELIVERED,
	QSTORE_FAILED,
};

/* Error kinds returned through qstore_errno after a -1. */
enum qstore_err {
	QSTORE_ERR_OK = 0,
	QSTORE_ERR_IO,		/* disk error: 451 4.3.0 */
	QSTORE_ERR_FULL,	/* disk or LMDB map full: 452 4.3.1 */
	QSTORE_ERR_NOTFOUND,
	QSTORE_ERR_CORRUPT,
	QSTORE_ERR_LIMIT,	/* a counter's limit was reached: 451 4.7.1 */
};

/* The envelope at the head of a message file. */
struct qstore_envelope {
	char		*sender;	/* "" for the null sender */
	char		**rcpts;
	size_t		 nrcpts;
	int64_t		 arrival;	/* epoch seconds */
	int32_t		 arrival_us;
	char		*client_addr;	/* may be "" */
	char		*client_name;	/* helo name, may be "" */
	char		*auth_user;	/* "" when not authenticated */
	/* RFC 3461 parameters; all absent when the client gave none. */
	unsigned	*notify;	/* per recipient QSTORE_NOTIFY_*, or NULL */
	char		**orcpts;	/* per recipient ORCPT as given */
					/* ("rfc822;xtext"), NULL or "" none */
	char		*envid;		/* ENVID as given (xtext), NULL or "" */
	enum qstore_ret	 ret;
	int		 dsn_off;	/* the credential turned reports off */
	int		 smtputf8;	/* MAIL had SMTPUTF8 (RFC 6531) */
	/*
	 * The credential's source address pool (smtp.pools); NULL or ""
	 * for the default pool ("P=", absent then).
	 */
	char		*pool;
	int		 bulk;		/* the bulk lane (L=bulk); 0: */
					/* transactional */
};

/* Per-message record (db msg). */
struct qstore_msginfo {
	char		 qid[QID_SIZE];
	char		 sender[QSTORE_ADDR_MAX + 1];
	char		 client_addr[QSTORE_TEXT_MAX + 1];
	char		 auth_user[QSTORE_TEXT_MAX + 1];
	uint64_t	 size;		/* bytes of message data */
	int64_t		 arrival;
	int32_t		 arrival_us;
	uint32_t	 nrcpts;
	uint32_t	 left;		/* recipients not yet final, or */
					/* final and owed a report */
	int		 dsn_off;	/* no delivery reports (credential) */
	char		 pool[QSTORE_SRCPOOL_MAX + 1];	/* "": default */
	int		 bulk;		/* the bulk lane ("lane=bulk"; */
					/* absent: transactional) */
	int64_t		 held;		/* on hold since (epoch s); 0 not */
};

/*
 * Where a held message's scheduled recipients wait (relayq -h): their
 * schedule entries sit at this time, after every real one, so that a scan,
 * which stops at the first entry in the future, never reaches them and
 * nothing can deliver or expire them; qmgr makes them due again when the
 * message is released. Far below INT64_MAX so that sums with it cannot
 * overflow.
 */
#define QSTORE_HELD_NEXT	(INT64_C(1) << 62)

/* Per-recipient record (db rcpt). */
struct qstore_rcpt {
	char			 qid[QID_SIZE];
	uint32_t		 index;
	char			 address[QSTORE_ADDR_MAX + 1];
	enum qstore_rcpt_state	 state;
	uint32_t		 attempts;
	int64_t			 next_attempt;	/* epoch seconds */
	char			 dsn[QSTORE_DSN_MAX + 1];
	char			 reply[QSTORE_REPLY_MAX + 1];
	unsigned		 notify;	/* QSTORE_NOTIFY_* bits */
	char			 class[QSTORE_CLASS_MAX + 1]; /* "" none */
	char			 relay[QSTORE_RELAY_MAX + 1]; /* "" none */
	int64_t			 last_attempt;	/* epoch s; 0 none */
	enum qstore_report	 report;	/* owed; see above */
	int			 warned;	/* a delay report was made */
};

struct qstore;
struct qstore_new;
struct qstore_txn;
struct qstore_file;

/* The kind of the last failure in this thread. */
enum qstore_err	 qstore_errno(void);
const char	*qstore_state_name(enum qstore_rcpt_state);

/*
 * Creates the queue directory tree (mode 0700 below the top) owned by uid
 * and gid; existing parts are fixed up. Used by master and the setup script.
 */
int	qstore_create_dirs(const char *qdir, uid_t, gid_t, struct vbuf *why);

/* Opens the LMDB environment; call after fork, in the process that uses it. */
struct qstore	*qstore_open(const struct cfg *, struct vbuf *why);
void		 qstore_close(struct qstore *);
/*
 * Before a second thread of the process uses the store (smtpd's commit
 * thread): from then on a remap of the LMDB map, when qmgr has grown it,
 * waits until no other thread of this process is in a transaction. Each
 * thread may hold one transaction at a time; qstore_new_* objects and
 * the events they point to belong to one thread at a time.
 */
void		 qstore_threads(struct qstore *);
const char	*qstore_dir(const struct qstore *);
/*
 * For bounce: this handle's new messages are delivery reports, which
 * the queue owes for mail it already accepted, so they may use the
 * headroom that new mail from clients leaves to qmgr (up to
 * QSTORE_REPORT_ADMIT_PCT of the map instead of half). Without it, a
 * half-full queue could neither report its failures nor, since a failed
 * message waits for its report, shrink.
 */
#define QSTORE_REPORT_ADMIT_PCT	90
void		 qstore_admit_reports(struct qstore *);
/* Clears stale LMDB reader slots; returns how many (qmgr, periodically). */
int		 qstore_reader_check(struct qstore *);

/*
 * Writing a new message: begin creates msg/<h>/<qid> (or takes a file from
 * free/ under that name) and writes the envelope header (env->arrival is
 * filled in from the id); write appends message bytes (buffered); finish
 * flushes and starts write-back. qstore_commit() fsyncs every file of the
 * batch, then each directory touched, then inserts every message's records
 * and recipients in one LMDB transaction (group commit). On any failure
 * the caller aborts each message; nothing was acknowledged.
 */
struct qstore_new *qstore_new_begin(struct qstore *, struct qstore_envelope *,
		    struct vbuf *why);
const char	*qstore_new_id(const struct qstore_new *);
int		 qstore_new_write(struct qstore_new *, const void *, size_t,
		    struct vbuf *why);
uint64_t	 qstore_new_size(const struct qstore_new *);
int		 qstore_new_finish(struct qstore_new *, struct vbuf *why);
/*
 * Before qstore_new_finish: replaces the message data written so far with
 * what transform appends to out when given it (the envelope header stays).
 * For the rare message that must change after it was received (lines
 * over 998 octets, smtpd(8)); the data is read back whole, so a message
 * costs twice its size in memory here. 0, or -1 with why set.
 */
typedef void qstore_transform(const char *data, size_t len, struct vbuf *out,
    void *arg);
int		 qstore_new_rewrite(struct qstore_new *, qstore_transform *,
		    void *arg, struct vbuf *why);
int		 qstore_commit(struct qstore *, struct qstore_new **, size_t,
		    struct vbuf *why);
/*
 * Charges the message against a counter at commit: if the counter key
 * already holds limit or more in the window starting at window_start, the
 * message is not inserted (its status becomes QSTORE_ERR_LIMIT, the rest
 * of the batch goes on); else the counter grows by one in the same
 * transaction as the message. Up to QSTORE_CHARGES_MAX charges.
 */
#define QSTORE_CHARGES_MAX	4
#define QSTORE_COUNTER_KEY_MAX	300
int		 qstore_new_charge(struct qstore_new *, const char *key,
		    int64_t window_start, uint64_t limit);
/*
 * The message's "accepted" event (lib/outbox), put into the outbox in the
 * transaction that inserts the message. Borrowed: it must stay valid until
 * qstore_commit returns.
 */
struct outbox_event;
void		 qstore_new_event(struct qstore_new *,
		    const struct outbox_event *);
/*
 * Scheduled delivery (X-Petrel-Deliver-After): the recipients' first
 * attempt is at when (epoch seconds) instead of at arrival, so qmgr's
 * scan, which stops at the first entry in the future, holds them until
 * then. A time before arrival is arrival.
 */
void		 qstore_new_first_attempt(struct qstore_new *, int64_t when);
/*
 * Puts the message in the bulk lane (X-Petrel-Priority: bulk) after
 * qstore_new_begin: in its msg record and in the file's envelope. The
 * envelope is still in memory until the first qstore_new_write that fills
 * the write buffer; returns 0, or -1 (nothing changed) when it has already
 * been written.
 */
int		 qstore_new_bulk(struct qstore_new *);
/*
 * After qstore_commit returned 0: QSTORE_ERR_OK; QSTORE_ERR_LIMIT (over a
 * charged counter); or QSTORE_ERR_IO, the file was removed before the
 * commit (see qstore_commit). Only QSTORE_ERR_OK has records.
 */
enum qstore_err	 qstore_new_status(const struct qstore_new *);
/* Removes the file of an uncommitted message and frees it. */
void		 qstore_new_abort(struct qstore_new *);
/* Frees a committed message handle. */
void		 qstore_new_free(struct qstore_new *);

/* Transactions over the index (write = 1 for qmgr's state changes). */
struct qstore_txn *qstore_txn_begin(struct qstore *, int write,
		    struct vbuf *why);
int		 qstore_txn_commit(struct qstore_txn *, struct vbuf *why);
void		 qstore_txn_abort(struct qstore_txn *);
/*
 * Outbox events this process's committed transactions dropped over the
 * outbox's cap (lib/outbox), for a daemon's warning.
 */
uint64_t	 qstore_events_dropped(const struct qstore *);

/* Lookups: 0 found, -1 with qstore_errno() NOTFOUND or another error. */
int	qstore_msg_get(struct qstore_txn *, const char *qid,
	    struct qstore_msginfo *);
int	qstore_msg_put(struct qstore_txn *, const struct qstore_msginfo *);
int	qstore_rcpt_get(struct qstore_txn *, const char *qid, uint32_t index,
	    struct qstore_rcpt *);
/*
 * Stores a recipient and keeps its schedule entry in step: pending and
 * deferred recipients, and final ones still owed a report, are due at
 * next_attempt; other final ones are unscheduled.
 * old_next_attempt is the value the record had (to find the old entry).
 */
int	qstore_rcpt_put(struct qstore_txn *, const struct qstore_rcpt *,
	    int64_t old_next_attempt);
/*
 * Deletes a recipient record and its schedule entry (r as stored). A
 * delivered recipient needs no record: deleting it frees space where
 * rewriting it would take more.
 */
int	qstore_rcpt_remove(struct qstore_txn *, const struct qstore_rcpt *r);
/*
 * How full the map is, in percent, free-list pages counted as free; exact
 * only from "above" percent up (below it the free list is not read).
 */
int	qstore_txn_used_pct(struct qstore_txn *, int above);
/*
 * Makes the LMDB map larger, by a quarter of queue.map_size (at least
 * 1 MiB), up to twice queue.map_size; for qmgr, which must record what
 * happened to mail already accepted when the map is full. Only with no
 * transaction open in this process. Other processes adopt the new size
 * at their next transaction. 0 with the new size in bytes, or -1
 * (QSTORE_ERR_FULL at the limit).
 */
int	qstore_grow(struct qstore *, uint64_t *new_size, struct vbuf *why);
/* Deletes the message's msg, rcpt and sched records. */
int	qstore_msg_delete(struct qstore_txn *, const char *qid);

/*
 * Counters (db counters): a count per key and fixed window, shared by all
 * processes and kept across restarts (rate limits, failed logins, blocks).
 * get yields 0 when the stored window is not window_start; add starts a
 * new window at 0 the same way and returns the new count. read returns the
 * raw window and count (e.g. a block's end time). prune removes counters
 * whose window started before the given time. Keys are text.
 */
int	qstore_counter_get(struct qstore_txn *, const char *key,
	    int64_t window_start, uint64_t *count);
int	qstore_counter_add(struct qstore_txn *, const char *key,
	    int64_t window_start, uint64_t n, uint64_t *count);
int	qstore_counter_read(struct qstore_txn *, const char *key,
	    int64_t *window_start, uint64_t *count);
int	qstore_counter_prune(struct qstore_txn *, int64_t before);

/* Iterators: the callback returns 0 to go on, nonzero to stop. */
typedef int qstore_sched_cb(const char *qid, uint32_t index, int64_t when,
	    void *arg);
typedef int qstore_msg_cb(const struct qstore_msginfo *, void *arg);
typedef int qstore_rcpt_cb(const struct qstore_rcpt *, void *arg);
/* Schedule entries in time order, starting at the earliest. */
int	qstore_sched_iter(struct qstore_txn *, qstore_sched_cb *, void *);
/*
 * Schedule entries due at or before until (epoch s), newest first: how
 * qmgr finds fresh work behind a long backlog (the priority lanes).
 */
int	qstore_sched_iter_back(struct qstore_txn *, int64_t until,
	    qstore_sched_cb *, void *);
int	qstore_msg_iter(struct qstore_txn *, qstore_msg_cb *, void *);
int	qstore_rcpt_iter(struct qstore_txn *, const char *qid,
	    qstore_rcpt_cb *, void *);

/*
 * Which messages an administrator's command names (relayq, and qmgr for
 * relayq's requests): qid one message or NULL for all; domain, when not
 * NULL, only messages with a recipient not yet final at that domain (the
 * part after the last "@", case-insensitive); sender, when not NULL, only
 * messages from that envelope sender (case-insensitive; "" the null
 * sender). qstore_select_match returns 1 when m is named, else 0.
 */
struct qstore_select {
	const char	*qid;
	const char	*domain;
	const char	*sender;
};
int	qstore_select_match(struct qstore_txn *, const struct qstore_msginfo *m,
	    const struct qstore_select *);

/* Committed message files (smtp reads them; qmgr removes them). */
struct qstore_file *qstore_file_open(const char *qdir, const char *qid,
		    struct vbuf *why);
const struct qstore_envelope *qstore_file_envelope(const struct qstore_file *);
int		 qstore_file_fd(const struct qstore_file *);
off_t		 qstore_file_body_offset(const struct qstore_file *);
off_t		 qstore_file_body_size(const struct qstore_file *);
void		 qstore_file_close(struct qstore_file *);
/* Where a committed message's file is: 0, or -1 (bad id, too long). */
int	qstore_file_path(char *buf, size_t size, const char *qdir,
	    const char *qid);
/*
 * A delivered message's file, after its records are gone: moved (linked,
 * then unlinked) to free/ for qstore_new_begin to write the next message
 * over it (small files, while the pool has room), else unlinked.
 */
int	qstore_file_retire(struct qstore *, const char *qid);
/* Unlinks msg/<h>/<qid> (after its records are gone). */
int		 qstore_file_remove(const char *qdir, const char *qid);
/* Moves a damaged file to corrupt/. */
int		 qstore_file_quarantine(const char *qdir, const char *qid);
/*
 * Removes tmp/ files unchanged (ctime) for max_age seconds: messages whose
 * writer died before they were committed, under an older version that
 * wrote there (a writer that dies now leaves a file in msg/ without
 * records, which the start-up reconciliation removes). Returns how many.
 */
int		 qstore_tmp_clean(const char *qdir, int64_t max_age);
/*
 * Moves committed files that are not in the msg/<h>/ their id names (a
 * queue written by an older Petrel, whose h was the id's last digit) to
 * the right one, and syncs the directories. Returns how many moved.
 */
int		 qstore_file_rehash(const char *qdir);
/* Calls cb for every committed file's id (qmgr's start-up reconcile). */
int		 qstore_file_iter(const char *qdir,
		    int (*cb)(const char *qid, void *), void *arg);

#endif
