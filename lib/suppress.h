/*
 * suppress.h - the suppression list: recipient addresses that are not
 * mailed any more (hard bounces, repeated soft bounces, complaints,
 * unsubscribes, manual entries).
 *
 * An LMDB environment of its own at <queue_directory>/suppress/, with its
 * own map size (suppression.map_size), so a large list never takes the
 * queue's room. relayctl writes it ("relayctl suppression ...") and qmgr
 * writes it (automatic additions, soft-bounce history, pruning); smtpd
 * reads it at RCPT TO. Addresses are stored lower-cased (ASCII) and so
 * compare case-insensitively; an entry is for every sending domain (scope
 * "") or for one. Expired entries are ignored on read and deleted by
 * suppress_prune. Open it after fork, in the process that uses it. See
 * relayctl(8), smtpd(8) and petrel.yaml(5), "suppression".
 */
#ifndef PETREL_SUPPRESS_H
#define PETREL_SUPPRESS_H

#include <stddef.h>
#include <stdint.h>

#include "cfg.h"
#include "qstore.h"
#include "vbuf.h"

#define SUPPRESS_DIR		"suppress"	/* under queue_directory */
#define SUPPRESS_DB_ENTRIES	"entries"	/* address\0scope -> entry */
#define SUPPRESS_DB_SOFT	"soft"		/* address\0qid -> when */
/*
 * A scope is a domain name (RFC 1035: 253 characters written out); with
 * an address of QSTORE_ADDR_MAX and the separator the key stays within
 * LMDB's 511 bytes.
 */
#define SUPPRESS_SCOPE_MAX	253
#define SUPPRESS_CLASS_MAX	31
#define SUPPRESS_QID_MAX	64

enum suppress_reason {
	SUPPRESS_HARD_BOUNCE = 1,
	SUPPRESS_SOFT_BOUNCES,
	SUPPRESS_COMPLAINT,
	SUPPRESS_UNSUBSCRIBE,
	SUPPRESS_MANUAL,
};

struct suppress_entry {
	char			address[QSTORE_ADDR_MAX + 1]; /* lower-cased */
	char			scope[256];	/* sending domain; "" all */
	enum suppress_reason	reason;
	char			class[32];	/* "" if none */
	char			reply[QSTORE_REPLY_MAX + 1]; /* "" if none */
	int64_t			since;		/* epoch s */
	int64_t			expires;	/* epoch s; 0 never */
};

struct suppress;

/*
 * Opens the registry of cfg->queue_directory with map size
 * cfg->suppression_map_size. writable (relayctl, qmgr): creates suppress/
 * (0700), the environment and both databases if missing. Read-only
 * (smtpd): a missing environment means nothing is suppressed, and it is
 * looked for again at most once a second, so one created later is seen;
 * an environment that cannot be opened yet is no reason to fail either
 * (suppress_check reports it). Returns a handle (suppress_close), or NULL
 * with the reason in why.
 */
struct suppress	*suppress_open(const struct cfg *, int writable,
		    struct vbuf *why);
void		 suppress_close(struct suppress *);
/*
 * Clears the reader slots of processes that died holding the list open
 * (smtpd keeps a read transaction reset between lookups, so every smtpd
 * that exits leaves one; at maxreaders the RCPT check stops working).
 * Returns how many; for qmgr, periodically.
 */
int		 suppress_reader_check(struct suppress *);

/*
 * Is address suppressed for mail from sender_domain ("" for the null
 * sender)? Both compare case-insensitively. Returns 1 (e, if not NULL,
 * filled with the all-domains entry if there is one in force, else the
 * sender domain's), 0 no, -1 error (why). Entries with expires <= now do
 * not count. One read-only transaction and one B-tree descent (the
 * entries of one address are adjacent); the transaction and cursor are
 * kept reset in the handle, so nothing is allocated per call.
 */
int	suppress_check(struct suppress *, const char *address,
	    const char *sender_domain, int64_t now, struct suppress_entry *e,
	    struct vbuf *why);

/*
 * Inserts or renews e (address and scope are lower-cased here; since 0
 * means now). An existing entry for the same address and scope is
 * replaced, but keeps its since when it was still in force (the list
 * says how long an address has been suppressed; a renewal moves expires).
 * An automatic reason (hard-bounce, soft-bounces) never replaces an entry
 * in force whose reason is complaint, unsubscribe or manual: that entry
 * stays as it is. Returns 0 (added, renewed or kept), -1 error (why: a bad
 * address, scope, class or reply, or an LMDB error; "... full" when the
 * map is full).
 */
int	suppress_add(struct suppress *, const struct suppress_entry *,
	    struct vbuf *why);

/*
 * Removes address's entry for scope, or with scope NULL every entry of
 * address. Returns how many were removed (0: none), -1 error (why).
 */
int	suppress_del(struct suppress *, const char *address,
	    const char *scope, struct vbuf *why);

/*
 * A soft bounce of address on message qid at now. Recorded in the history
 * (one entry per address and message: the same message soft-bouncing again
 * counts once, at its latest time). When limit distinct messages have
 * soft-bounced within the last window seconds (when > now - window; older
 * history of the address is deleted on the way), the address is added
 * for every sending domain as SUPPRESS_SOFT_BOUNCES, expires now + ttl
 * (ttl 0: never), with class and reply (NULL or "" for none) and the
 * rules of suppress_add, its history is cleared, and 1 is returned; 0:
 * recorded only; -1 error (why: "opened read-only" for a read-only
 * handle). One write transaction. qid is at most SUPPRESS_QID_MAX bytes.
 */
int	suppress_soft_bounce(struct suppress *, const char *address,
	    const char *qid, const char *class, const char *reply,
	    int64_t now, unsigned limit, int64_t window, int64_t ttl,
	    struct vbuf *why);

/*
 * Deletes expired entries and soft-bounce history older than soft_window.
 * Bounded: each call looks at no more than SUPPRESS_PRUNE_BATCH records
 * of each database, resuming where the previous call stopped and wrapping
 * around, so a resident daemon can call it from its event loop (every
 * minute, say). Returns how many records were deleted, -1 error (why).
 */
#define SUPPRESS_PRUNE_BATCH	10000
int	suppress_prune(struct suppress *, int64_t now, int64_t soft_window,
	    struct vbuf *why);

/*
 * Calls cb for every entry in force at now, in address then scope order,
 * in one read transaction. cb returns 0 to go on, -1 to stop. Returns 0,
 * -1 on error or when cb stopped (why says which).
 */
int	suppress_iter(struct suppress *, int64_t now,
	    int (*cb)(const struct suppress_entry *, void *), void *arg,
	    struct vbuf *why);
/* The same for the entries of one address only. */
int	suppress_iter_address(struct suppress *, const char *address,
	    int64_t now, int (*cb)(const struct suppress_entry *, void *),
	    void *arg, struct vbuf *why);

/*
 * Many additions in one write transaction (relayctl suppression import):
 * one commit, one fsync, all or nothing. suppress_batch_begin returns 0
 * or -1 (why); then suppress_batch_add (as suppress_add; on -1 the batch
 * is still open: abort it) any number of times, then suppress_batch_commit
 * (0 or -1; the batch is closed either way) or suppress_batch_abort. No
 * other write on the handle while a batch is open.
 */
int	suppress_batch_begin(struct suppress *, struct vbuf *why);
int	suppress_batch_add(struct suppress *, const struct suppress_entry *,
	    struct vbuf *why);
int	suppress_batch_commit(struct suppress *, struct vbuf *why);
void	suppress_batch_abort(struct suppress *);

/*
 * The text after "550 5.1.1 " that refuses address because of e, the
 * same at RCPT TO (smtpd) and before delivery (qmgr):
 * "<ADDR>: Recipient address suppressed (hard bounce, since YYYY-MM-DD)",
 * the day (UTC) the entry was first added.
 */
void	suppress_entry_reply(const struct suppress_entry *e,
	    const char *address, char *buf, size_t size);

/* "hard-bounce", "soft-bounces", "complaint", "unsubscribe", "manual". */
const char *suppress_reason_name(enum suppress_reason);
/* Words for replies: "hard bounce", "soft bounces", ... */
const char *suppress_reason_words(enum suppress_reason);
/* The reason named s (suppress_reason_name's names). 0, or -1. */
int	suppress_reason_from_name(const char *, enum suppress_reason *);

/*
 * Lower-cases address into out (size at least QSTORE_ADDR_MAX + 1) after
 * checking it: 1 to QSTORE_ADDR_MAX bytes, no control characters or
 * spaces outside a quoted local part, an '@' with something on both
 * sides. 0, or -1.
 */
int	suppress_address_norm(const char *address, char *out, size_t size);
/*
 * Lower-cases a scope: "" or a domain of at most SUPPRESS_SCOPE_MAX
 * characters (letters, digits, '-', '.', and bytes >= 0x80). 0, or -1.
 */
int	suppress_scope_norm(const char *scope, char *out, size_t size);

#endif
