/*
 * webhookd.h - webhookd's private header: the delivery of events to
 * applications' HTTP endpoints (webhookd(8)). Grouped by the file that
 * implements each declaration, as qmgr.h is.
 */
#ifndef PETREL_WEBHOOKD_H
#define PETREL_WEBHOOKD_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>

#include "outbox.h"
#include "vbuf.h"
#include "whstore.h"

/* The payload shapes an endpoint can ask for (its "format:"). */
enum wh_format {
	WH_FORMAT_PETREL = 0,
	WH_FORMAT_MAILGUN,
	WH_FORMAT_SENDGRID,
	WH_FORMAT_POSTMARK,
};

/* Bit for an event kind in an endpoint's event set. */
#define WH_EVENT_BIT(kind)	(1u << (unsigned)(kind))

/*
 * One endpoint: a row of petrel.yaml's webhooks list, or one credential's
 * own (user != NULL: it gets that application's events and no others).
 */
struct wh_endpoint {
	char		*url;		/* http(s)://[user:pass@]host/... */
	enum wh_format	 format;
	unsigned	 events;	/* WH_EVENT_BIT set */
	unsigned char	*secret;	/* HMAC key (petrel, mailgun); */
	size_t		 secret_len;	/* 0: requests are not signed */
	EVP_PKEY	*sendgrid_key;	/* ECDSA P-256 (sendgrid); or NULL */
	char		*ca_file;	/* NULL: the system's CAs */
	unsigned	 max_concurrent;
	unsigned	 timeout_ms;
	char		*user;		/* a credential's own; NULL otherwise */
};

/* ---- webhookd_format.c: payloads and signatures ---- */

#define WH_HEADERS_MAX	8

/* One HTTP request to make: the body and the headers it needs. */
struct wh_request {
	struct vbuf	*body;
	char		 header[WH_HEADERS_MAX][512];	/* "Name: value" */
	size_t		 nheaders;
};

/* "petrel", "mailgun", ...; and back (-1 if unknown). */
const char	*webhookd_format_name(enum wh_format);
int		 webhookd_format_parse(const char *);
/*
 * What rendering an event for an endpoint came to. No shape and a failure
 * are kept apart because they end differently: an event the format has no
 * shape for is never sent there and counts as done; a request that could
 * not be made (its signature, most likely) is an attempt that failed and
 * is retried with the backoff of any other failure, never counted as
 * delivered.
 */
enum wh_render {
	WH_RENDER_FAILED = -1,	/* not made (why set): retried later */
	WH_RENDER_OK = 0,	/* req is ready to send */
	WH_RENDER_NOSHAPE = 1,	/* no shape for this kind: done */
};

/*
 * Whether an endpoint of ep's format has a shape for events of kind k
 * (a destination's have only petrel's): ingest adds no delivery where it
 * has none.
 */
int	webhookd_wants(const struct wh_endpoint *ep, enum outbox_kind k);

/*
 * Renders event ev (stable id "id", 32 hex digits) for endpoint ep at
 * epoch second now into req (body replaced, headers set, Content-Type
 * first; the signature header where the format signs). Returns an
 * enum wh_render; with WH_RENDER_FAILED, why (which may be NULL) says
 * what failed.
 */
int	webhookd_render(const struct wh_endpoint *ep,
	    const struct outbox_event *ev, const char *id, int64_t now,
	    struct wh_request *req, struct vbuf *why);

/* ---- webhookd_esp.c: the providers' shapes (mailgun, sendgrid, postmark) */

/* As webhookd_render, for ep->format other than WH_FORMAT_PETREL. */
int	webhookd_render_esp(const struct wh_endpoint *ep,
	    const struct outbox_event *ev, const char *id, int64_t now,
	    struct wh_request *req, struct vbuf *why);

/* ---- webhookd_cred.c: each application's own endpoint ---- */

/*
 * The endpoint set for credential user with relayctl user set --webhook,
 * or NULL when it has none. Read from the credential store and cached
 * (changes are seen within seconds). The pointer is valid until control
 * returns to the event loop: callers keep the user name, not the pointer.
 */
const struct wh_endpoint *webhookd_user_endpoint(const char *user);
/*
 * The configuration whose credential store webhookd_user_endpoint reads
 * (by default daemon_cfg()); also empties the cache. For tests.
 */
struct cfg;
void	webhookd_cred_config(const struct cfg *);

/* ---- webhookd_log.c: the searchable delivery log (lib/evlog) ---- */

struct cfg;
/* Opens the delivery log; 0, or -1 with why set. */
int	webhookd_log_init(const struct cfg *, struct vbuf *why);
/*
 * Indexes events (enriched: user, message_id, metadata and tags filled
 * from the message's accepted event) in one transaction; called after
 * webhookd's own store committed them and before the outbox lets them
 * go, so a crash between repeats the call with the same events (it must
 * be idempotent by seq). 0, or -1 with why set.
 */
int	webhookd_log_add(const struct outbox_event *const *evs, size_t n,
	    struct vbuf *why);
/* Records a webhook outcome for event seq ("sent", "failed", "dead"). */
void	webhookd_log_webhook(uint64_t seq, const char *endpoint,
	    const char *outcome, long http_status, int64_t time_ms);
/* Called on every loop pass: writes webhook notes LOG_NOTES_MS old. */
void	webhookd_log_tick(int64_t now_ms);
/* Called about once a minute: prunes past log.retention, a bounded step. */
void	webhookd_log_prune(int64_t now_ms);

/* ---- webhookd_appdata.c: an event's metadata and tags, for the shapes ---- */

/*
 * The application's metadata and tags of an event, read with jansson
 * (which cannot share a file with lib/json: both name a json_null). What
 * is not a JSON object (metadata) or array (tags) counts as absent.
 */
struct wh_appdata {
	int	  meta_ok;	/* ev->metadata is an object */
	size_t	  nmeta;
	char	**meta_key;
	char	**meta_str;	/* a string member's text; any other */
				/* value's compact JSON */
	int	  tags_ok;	/* ev->tags is an array */
	size_t	  ntags;	/* its members */
	char	 *first_tag;	/* the first string member, or NULL */
};
/* Fills ad from ev (allocated; release with webhookd_appdata_release). */
void	webhookd_appdata_parse(const struct outbox_event *ev,
	    struct wh_appdata *ad);
void	webhookd_appdata_release(struct wh_appdata *ad);

/* ---- webhookd_format.c (continued): the petrel signature ---- */

/* An event's stable id is whstore_event_id's (lib/whstore). */
#define WH_ID_SIZE	WHSTORE_ID_SIZE
/* HEX of HMAC-SHA256(key, t + "." + body): X-Petrel-Signature's v1. */
void	webhookd_sign(const unsigned char *key, size_t keylen, int64_t t,
	    const char *body, size_t len, char hex[65]);

/* ---- webhookd_ingest.c: from the outbox into the store ---- */

struct whstore;
int	webhookd_ingest_init(const struct cfg *);
/* One bounded pass; returns the number of events ingested, -1 error. */
int	webhookd_ingest(void);
/* Removes joins of messages gone from the queue (at most max looked at). */
void	webhookd_msg_sweep(size_t max);
struct whstore	*webhookd_store(void);
/* The configured endpoints (petrel.yaml), and one by its key. */
size_t			 webhookd_nendpoints(void);
const struct wh_endpoint *webhookd_endpoint(size_t);
const struct wh_endpoint *webhookd_endpoint_by_key(const char *key);

/* ---- webhookd_deliver.c: HTTP requests on libcurl's multi interface */

int	webhookd_deliver_init(const struct cfg *);
/*
 * Commits finished requests' outcomes when the oldest is WH_DONE_MS old
 * (all: now, whatever their age); starts what is due. Returns ms until
 * something is due or outcomes must be committed, -1 nothing.
 */
int64_t	webhookd_deliver(void);
/* The outcome commit alone; returns ms until it is due, -1 nothing. */
int64_t	webhookd_deliver_flush(int all);
/* Whether a request finished (a slot came free) since the last call. */
int	webhookd_deliver_freed(void);
/*
 * Requests in flight or outcomes not committed (for SIGTERM: with none
 * in flight, it commits the outcomes first).
 */
int	webhookd_deliver_busy(void);

#endif
