/*
 * metrics.h - counters for the Prometheus endpoint (metricsd(8)), kept in
 * shared counter files in the queue directory.
 *
 * Why files and atomics: the counters must cost the hot path (a message
 * accepted, a recipient delivered) nothing measurable, must survive the
 * daemon that owns them being restarted, and must be readable by a
 * separate, unprivileged process that alone links the HTTP library. So
 * each daemon kind maps <queue_directory>/metrics/<daemon> with
 * MAP_SHARED and bumps counters with relaxed atomic adds: no system call,
 * no lock, no message to another process. Processes of the same kind
 * (several smtpd) share one file, since the adds are atomic. metricsd
 * maps the files read-only and renders them on each scrape.
 *
 * A file has a fixed layout (struct metrics_file in metrics.c): fixed
 * counters indexed by enum metrics_id, and a bounded table of labelled
 * counters (credential, bounce class) whose slots are claimed once with a
 * compare-and-swap. When the table is full, new labels count under
 * "other": label cardinality stays bounded whatever clients send.
 *
 * Recipients' outcomes by credential have a table of their own
 * (METRICS_CRED_SLOTS credentials, each with a counter per outcome, then
 * "other"): qmgr counts there as it records each result, and the table
 * is not shared with the families above, so many credentials can never
 * push the failure classes into "other", nor the other way round.
 *
 * Most counters come from the events of lib/outbox (accepted, delivered,
 * deferred, ...): lib/acct.c hands every event to metrics_event, and
 * holds them with the accounting lines while the transaction they describe
 * is open (metrics_hold/metrics_release), so a rolled-back transaction
 * counts nothing.
 */
#ifndef PETREL_METRICS_H
#define PETREL_METRICS_H

#include <stddef.h>
#include <stdint.h>

#include "outbox.h"

/* Fixed counters. Their names and help are in metrics.c's table. */
enum metrics_id {
	METRICS_ACCEPTED_RCPTS = 0,
	METRICS_ACCEPTED_BYTES,
	METRICS_DELIVERED,
	METRICS_EXPIRED,
	METRICS_SUPPRESSED,
	METRICS_DELETED,
	METRICS_DKIM_SIGNED,
	METRICS_DKIM_UNSIGNED,
	METRICS_SESSIONS,
	METRICS_TLS_12,
	METRICS_TLS_13,
	METRICS_TLS_OTHER,
	METRICS_AUTH_FAILURES,
	METRICS_AUTH_BLOCKED,
	/* Delivery latency (arrival to delivered) buckets, non-cumulative. */
	METRICS_LAT_0,
	METRICS_LAT_LAST = METRICS_LAT_0 + 11,
	METRICS_LAT_SUM,		/* seconds */
	/* A family's count once its slot table is full: label "other". */
	METRICS_OVERFLOW_0,
	METRICS_OVERFLOW_LAST = METRICS_OVERFLOW_0 + 2,
	/* smtp: DKIM signing, once per delivery attempt (smtp_dkim.c). */
	METRICS_DKIM_SIGN_OK,
	METRICS_DKIM_SIGN_NOKEY,	/* no key for the From: domain */
	METRICS_DKIM_SIGN_ERROR,	/* a key, but it could not sign */
	/* smtp: duration of one delivery request (one next hop, one
	 * transaction), buckets non-cumulative, the sum in milliseconds. */
	METRICS_ATT_0,
	METRICS_ATT_LAST = METRICS_ATT_0 + 11,
	METRICS_ATT_SUM_MS,
	/* webhookd: outcomes of webhook requests (webhookd_deliver.c). */
	METRICS_WH_SENT,
	METRICS_WH_FAILED,		/* to be tried again */
	METRICS_WH_DEAD,		/* failed past events.max_age */
	METRICS_NFIXED
};

/* Labelled counter families (the slot table). */
enum metrics_family {
	METRICS_F_ACCEPTED = 1,		/* messages, label credential */
	METRICS_F_DEFERRED,		/* recipients, label class */
	METRICS_F_BOUNCED,		/* recipients, label class */
	METRICS_F_LAST = METRICS_F_BOUNCED
};

/* Outcomes of a recipient, counted by credential (metrics_credential). */
enum metrics_outcome {
	METRICS_O_DELIVERED = 0,
	METRICS_O_DEFERRED,		/* one per deferred attempt */
	METRICS_O_BOUNCED,		/* failed by the next hop, or lost */
	METRICS_O_EXPIRED,		/* failed at queue.max_lifetime */
	METRICS_O_SUPPRESSED,		/* failed: on the suppression list */
	METRICS_NOUTCOMES
};

#define METRICS_NBUCKETS	11	/* finite latency buckets */
#define METRICS_NSLOTS		512
#define METRICS_LABEL_MAX	64	/* bytes, with the NUL */
#define METRICS_CRED_SLOTS	64	/* credentials counted by name */

/* The latency bucket bounds, seconds (the last bucket is +Inf). */
extern const int64_t metrics_buckets[METRICS_NBUCKETS];
/* The delivery attempt bucket bounds, milliseconds (then +Inf). */
extern const int64_t metrics_att_buckets_ms[METRICS_NBUCKETS];

/*
 * Maps <queue_dir>/metrics/<name> for writing, creating it (and the
 * directory) as needed. Returns 0, or -1 with the reason in why; counting
 * is then a no-op. Called by daemon_main() when metrics.listen is set.
 */
struct vbuf;
int	metrics_open(const char *queue_dir, const char *name, struct vbuf *why);
/* Whether metrics_open succeeded (counting is on). */
int	metrics_enabled(void);

void	metrics_add(enum metrics_id, uint64_t);
void	metrics_add_label(enum metrics_family, const char *label, uint64_t);

/*
 * Counts n recipients of credential cred (NULL or "": "none", mail
 * without one such as delivery reports) with outcome o. The first
 * METRICS_CRED_SLOTS credentials seen get a slot each; later ones count
 * under "other". Held like every bump while a transaction is open.
 */
void	metrics_credential(const char *cred, enum metrics_outcome o,
	    uint64_t n);
/* The outcome's label value: "delivered", "deferred", ... */
const char *metrics_outcome_name(enum metrics_outcome);

/* One delivery attempt of ms milliseconds (smtp): the histogram. */
void	metrics_attempt(int64_t ms);

/* Counts an event (acct.c calls it for each one). */
void	metrics_event(const struct outbox_event *);
void	metrics_hold(void);
void	metrics_release(int commit);

/*
 * Reading (metricsd): maps a counter file read-only. Returns NULL if it
 * does not exist or is not a counter file of this layout.
 */
struct metrics_view;
struct metrics_view	*metrics_view_open(const char *queue_dir,
			    const char *name);
void			 metrics_view_close(struct metrics_view *);
uint64_t		 metrics_view_get(const struct metrics_view *,
			    enum metrics_id);
/* Calls cb for each claimed slot of the family. */
void			 metrics_view_labels(const struct metrics_view *,
			    enum metrics_family,
			    void (*cb)(const char *label, uint64_t, void *),
			    void *arg);
/*
 * Calls cb for each credential with a slot, with its counts indexed by
 * enum metrics_outcome, then for "other" if anything counted there.
 */
void			 metrics_view_credentials(const struct metrics_view *,
			    void (*cb)(const char *cred, const uint64_t *,
			    void *), void *arg);

#endif
