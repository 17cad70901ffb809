/*
 * webhookd_deliver.c - makes the HTTP requests: libcurl's multi interface
 * driven by lib/event (its sockets and its timer are ours to watch), so
 * nothing blocks and there are no threads.
 *
 * Fairness: each pass walks whstore's pending index endpoint by endpoint
 * and starts the due deliveries that fit under each endpoint's
 * max_concurrent; an endpoint at its limit (a slow or dead one) is
 * skipped, not waited for, so its backlog never holds up another
 * endpoint's events, and nothing already sent is read again.
 *
 * Outcomes are written to whstore in batches: one transaction (two
 * fsyncs) for everything that finished within WH_DONE_MS, or
 * WH_DONE_MAX outcomes, never one per request (a commit per request held
 * an endpoint to the disk's fsync rate: 40,000 events took 5 minutes to
 * send in bench/). Until its batch commits, a finished delivery counts
 * as in flight, so it is not sent twice. 2xx makes the delivery
 * "sent"; anything else is retried after min_backoff doubling up to
 * max_backoff, until the event is older than events.max_age, and then
 * the delivery is "dead" (a dead letter, kept for dead_letter_age, which
 * relayctl events replay can make pending again). A crash loses at most
 * the outcomes of requests in flight or not yet committed: they are
 * still pending and are sent again (at least once; the receiver
 * deduplicates by event id).
 */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>

#include "event.h"
#include "log.h"
#include "metrics.h"
#include "webhookd.h"
#include "whstore.h"
#include "xalloc.h"

#define WH_MAX_INFLIGHT		256	/* requests at once, all endpoints */
#define WH_REPLY_MAX		1024	/* bytes of the answer kept */
#define WH_DONE_MS		50	/* outcomes wait at most this long */
#define WH_DONE_MAX		1024	/* or this many, for their commit */
#define WH_WARN_EVERY_MS	60000	/* one warning a minute per endpoint */
#define WH_WARN_MAX		64	/* endpoints whose warnings are paced */

struct wh_req {
	struct wh_req		*next;
	CURL			*easy;
	struct curl_slist	*headers;
	uint64_t		 seq;
	char			 key[WHSTORE_KEY_MAX + 1];
	char			 qid[QID_SIZE + 1];
	char			 id[WH_ID_SIZE];
	int64_t			 event_ms;
	char			 reply[WH_REPLY_MAX];
	size_t			 reply_len;
	char			 errbuf[CURL_ERROR_SIZE];
	/* Once finished, until its batch commits: */
	long			 code;		/* HTTP status, 0: none */
	int			 ok;		/* 2xx */
	char			 failed[CURL_ERROR_SIZE + 64]; /* why not */
	int64_t			 done_ms;
};

static CURLM *wh_multi;
static struct wh_req *wh_inflight;
static int wh_ninflight;
static struct wh_req *wh_done;		/* finished, outcome not committed */
static int wh_ndone;
static int wh_freed;			/* a request finished since asked */

/*
 * Per endpoint, the index entry of the last delivery started since the
 * last outcome commit: a rescan after a request finishes resumes there,
 * not at the endpoint's first due entry, past everything in flight or
 * waiting for the commit (which may be hundreds at a fast endpoint).
 * Emptied at each commit, when those entries leave the index.
 */
#define WH_RESUME_MAX	64
struct wh_resume {
	char		 key[WHSTORE_KEY_MAX + 1];
	int64_t		 due;
	uint64_t	 seq;
};
static struct wh_resume wh_resume[WH_RESUME_MAX];
static int wh_nresume;
static uint64_t wh_timer;
static int wh_timer_set;
static int64_t wh_max_age_ms, wh_min_backoff_ms, wh_max_backoff_ms;

/*
 * The warnings an operator must act on (a certificate that does not
 * verify, a request that could not be signed) come once a minute per
 * endpoint and cause, not once per event and try: a dead endpoint with
 * thousands of events pending would bury the log. Each try is still
 * logged at info level with its outcome.
 */
enum wh_warn_kind {
	WH_WARN_TLS,
	WH_WARN_RENDER,
	WH_WARN_KINDS
};
struct wh_warned {
	char		 key[WHSTORE_KEY_MAX + 1];
	int64_t		 last_ms[WH_WARN_KINDS];
};
static struct wh_warned wh_warned[WH_WARN_MAX];
static int wh_nwarned;

static void	wh_check_done(void);

static int64_t
wh_warned_last(const struct wh_warned *w)
{
	int64_t last = 0;
	int k;

	for (k = 0; k < WH_WARN_KINDS; k++)
		if (w->last_ms[k] > last)
			last = w->last_ms[k];
	return last;
}

/* Whether endpoint key's warning of this kind is due (and notes it). */
static int
wh_warn_due(const char *key, enum wh_warn_kind kind)
{
	int64_t now = outbox_now_ms();
	int i, oldest = 0;

	for (i = 0; i < wh_nwarned; i++) {
		if (strcmp(wh_warned[i].key, key) == 0)
			break;
		if (wh_warned_last(&wh_warned[i]) <
		    wh_warned_last(&wh_warned[oldest]))
			oldest = i;
	}
	if (i == wh_nwarned) {
		/* Full: forget the endpoint warned about least lately. */
		if (wh_nwarned == WH_WARN_MAX)
			i = oldest;
		else
			wh_nwarned++;
		memset(&wh_warned[i], 0, sizeof(wh_warned[i]));
		snprintf(wh_warned[i].key, sizeof(wh_warned[i].key), "%s",
		    key);
	}
	if (wh_warned[i].last_ms[kind] != 0 &&
	    now - wh_warned[i].last_ms[kind] < WH_WARN_EVERY_MS &&
	    now >= wh_warned[i].last_ms[kind])
		return 0;
	wh_warned[i].last_ms[kind] = now;
	return 1;
}

static void
wh_sock_cb(int fd, int events, void *arg)
{
	int running, mask = 0;

	(void)arg;
	if (events & EV_READ)
		mask |= CURL_CSELECT_IN;
	if (events & EV_WRITE)
		mask |= CURL_CSELECT_OUT;
	(void)curl_multi_socket_action(wh_multi, fd, mask, &running);
	wh_check_done();
}

static int
wh_socketfunction(CURL *e, curl_socket_t fd, int what, void *u, void *sp)
{
	(void)e;
	(void)u;
	(void)sp;
	switch (what) {
	case CURL_POLL_REMOVE:
		ev_fd_del(fd);
		break;
	case CURL_POLL_IN:
		ev_fd_set(fd, EV_READ, wh_sock_cb, NULL);
		break;
	case CURL_POLL_OUT:
		ev_fd_set(fd, EV_WRITE, wh_sock_cb, NULL);
		break;
	case CURL_POLL_INOUT:
		ev_fd_set(fd, EV_READ | EV_WRITE, wh_sock_cb, NULL);
		break;
	}
	return 0;
}

static void
wh_timer_cb(void *arg)
{
	int running;

	(void)arg;
	wh_timer_set = 0;
	(void)curl_multi_socket_action(wh_multi, CURL_SOCKET_TIMEOUT, 0,
	    &running);
	wh_check_done();
}

static int
wh_timerfunction(CURLM *m, long ms, void *u)
{
	(void)m;
	(void)u;
	if (wh_timer_set) {
		ev_timer_del(wh_timer);
		wh_timer_set = 0;
	}
	if (ms >= 0) {
		wh_timer = ev_timer_add(ms, wh_timer_cb, NULL);
		wh_timer_set = 1;
	}
	return 0;
}

static size_t
wh_write(char *p, size_t size, size_t n, void *arg)
{
	struct wh_req *r = arg;
	size_t len = size * n, room = sizeof(r->reply) - 1 - r->reply_len;

	if (room > 0) {
		if (len < room)
			room = len;
		memcpy(r->reply + r->reply_len, p, room);
		r->reply_len += room;
		r->reply[r->reply_len] = '\0';
	}
	return len;
}

int
webhookd_deliver_init(const struct cfg *cfg)
{
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != 0)
		log_fatal("curl_global_init failed");
	if ((wh_multi = curl_multi_init()) == NULL)
		log_fatal("curl_multi_init failed");
	curl_multi_setopt(wh_multi, CURLMOPT_SOCKETFUNCTION,
	    wh_socketfunction);
	curl_multi_setopt(wh_multi, CURLMOPT_TIMERFUNCTION, wh_timerfunction);
	wh_max_age_ms = cfg->events_max_age * 1000;
	wh_min_backoff_ms = cfg->events_min_backoff * 1000;
	wh_max_backoff_ms = cfg->events_max_backoff * 1000;
	return 0;
}

static int
wh_inflight_for(const char *key)
{
	struct wh_req *r;
	int n = 0;

	for (r = wh_inflight; r != NULL; r = r->next)
		if (strcmp(r->key, key) == 0)
			n++;
	return n;
}

/* In flight, or finished with its outcome not yet committed. */
static int
wh_is_inflight(uint64_t seq, const char *key)
{
	struct wh_req *r;

	for (r = wh_inflight; r != NULL; r = r->next)
		if (r->seq == seq && strcmp(r->key, key) == 0)
			return 1;
	for (r = wh_done; r != NULL; r = r->next)
		if (r->seq == seq && strcmp(r->key, key) == 0)
			return 1;
	return 0;
}

/*
 * Where a delivery's max_age counts from: the event's time, or its last
 * relayctl events replay (an operator replays a dead letter once the
 * endpoint is back; a failure then gets a full max_age of retries, not
 * one try and the dead-letter state again).
 */
static int64_t
wh_age_base(int64_t event_ms, const struct whstore_dlv *d)
{
	int64_t replayed_ms = (int64_t)d->replayed_s * 1000;

	return replayed_ms > event_ms ? replayed_ms : event_ms;
}

/*
 * Applies r's outcome to its delivery in txn; the outcome's name
 * ("sent", "deferred", "dead"), or NULL when there is nothing to record
 * (replayed or pruned meanwhile).
 */
static const char *
wh_record(MDB_txn *txn, const struct wh_req *r, struct vbuf *why)
{
	struct whstore *s = webhookd_store();
	struct whstore_dlv d;
	int64_t back;
	uint32_t i;

	if (whstore_dlv_get(s, txn, r->seq, r->key, &d) == -1 ||
	    d.state != WHSTORE_PENDING)
		return NULL;
	d.tries++;
	d.last_ms = r->done_ms;
	d.http_status = (int32_t)r->code;
	if (r->ok)
		d.state = WHSTORE_SENT;
	else if (r->done_ms - wh_age_base(r->event_ms, &d) >= wh_max_age_ms)
		d.state = WHSTORE_DEAD;
	else {
		back = wh_min_backoff_ms;
		for (i = 1; i < d.tries && back < wh_max_backoff_ms; i++)
			back *= 2;
		if (back > wh_max_backoff_ms)
			back = wh_max_backoff_ms;
		d.due_ms = r->done_ms + back;
	}
	if (whstore_dlv_put(s, txn, r->seq, r->key, &d, why) == -1)
		return NULL;
	return d.state == WHSTORE_SENT ? "sent" :
	    d.state == WHSTORE_DEAD ? "dead" : "deferred";
}

/*
 * Commits the finished requests' outcomes in one transaction, then logs
 * them. When the commit fails they are dropped: their deliveries are
 * still pending and are sent again (at least once).
 */
static void
wh_commit_done(void)
{
	struct whstore *s = webhookd_store();
	const struct wh_endpoint *ep;
	struct wh_req *r, *list = wh_done;
	const char **outcome;
	char url[512];
	struct vbuf why;
	MDB_txn *txn;
	int i, rc, committed = 0;

	if (list == NULL)
		return;
	wh_done = NULL;
	outcome = xcalloc((size_t)wh_ndone, sizeof(*outcome));
	wh_ndone = 0;
	wh_nresume = 0;
	vbuf_init(&why, 0);
	if (mdbdir_begin(&s->md, 0, &txn, &why) == 1) {
		for (r = list, i = 0; r != NULL; r = r->next, i++)
			outcome[i] = wh_record(txn, r, &why);
		if ((rc = mdb_txn_commit(txn)) == 0)
			committed = 1;
		else
			mdbdir_why(&why, &s->md, "commit", rc);
	}
	if (!committed)
		log_warn("%s (outcomes not recorded: sent again)", why.data);
	for (r = list, i = 0; r != NULL; r = list, i++) {
		list = r->next;
		if (committed && outcome[i] != NULL) {
			/* Counted once recorded, as the outcome stands. */
			metrics_add(r->ok ? METRICS_WH_SENT :
			    strcmp(outcome[i], "dead") == 0 ? METRICS_WH_DEAD :
			    METRICS_WH_FAILED, 1);
			ep = webhookd_endpoint_by_key(r->key);
			whstore_safe_url(ep != NULL ? ep->url : r->key, url,
			    sizeof(url));
			if (r->ok)
				log_info("%s: event=%s to=%s status=sent "
				    "(HTTP %ld)", r->qid, r->id, url, r->code);
			else
				log_info("%s: event=%s to=%s status=%s (%s)",
				    r->qid, r->id, url, outcome[i], r->failed);
			webhookd_log_webhook(r->seq, url,
			    strcmp(outcome[i], "deferred") == 0 ? "failed" :
			    outcome[i], r->code, r->done_ms);
		}
		free(r);
	}
	free(outcome);
	vbuf_release(&why);
}

/*
 * Moves a finished request to the batch its outcome waits in; the caller
 * commits the batch when it is full (wh_finish), or leaves it to the next
 * flush (never from inside a scan, which holds a read transaction).
 */
static void
wh_done_add(struct wh_req *r, long code, const char *why_failed)
{
	curl_easy_cleanup(r->easy);
	r->easy = NULL;
	curl_slist_free_all(r->headers);
	r->headers = NULL;
	r->code = code;
	r->ok = why_failed == NULL;
	snprintf(r->failed, sizeof(r->failed), "%s",
	    why_failed != NULL ? why_failed : "");
	r->done_ms = outbox_now_ms();
	wh_freed = 1;
	r->next = wh_done;
	wh_done = r;
	wh_ndone++;
}

static void
wh_finish(struct wh_req *r, long code, const char *why_failed)
{
	wh_done_add(r, code, why_failed);
	if (wh_ndone >= WH_DONE_MAX)
		wh_commit_done();
}

/*
 * The warning for a request that failed because the endpoint's
 * certificate did not verify (or its ca_file could not be used): what an
 * operator must fix, so said at warning level with the endpoint and
 * curl's reason; the events stay pending and are retried.
 */
static void
wh_warn_tls(const struct wh_req *r, CURLcode result, const char *reason)
{
	const struct wh_endpoint *ep;
	char url[512];

	if (result != CURLE_PEER_FAILED_VERIFICATION &&
	    result != CURLE_SSL_CACERT_BADFILE)
		return;
	if (!wh_warn_due(r->key, WH_WARN_TLS))
		return;
	ep = webhookd_endpoint_by_key(r->key);
	whstore_safe_url(ep != NULL ? ep->url : r->key, url, sizeof(url));
	log_warn("webhook %s: TLS certificate did not verify with %s%s (%s); "
	    "events are kept and retried", url,
	    ep != NULL && ep->ca_file != NULL ? "ca_file " : "the system's CAs",
	    ep != NULL && ep->ca_file != NULL ? ep->ca_file : "",
	    log_safe(reason));
}

static void
wh_check_done(void)
{
	struct wh_req **pp, *r;
	CURLMsg *m;
	CURLcode result;
	char why[CURL_ERROR_SIZE + 64];
	int left;
	long code;

	while ((m = curl_multi_info_read(wh_multi, &left)) != NULL) {
		if (m->msg != CURLMSG_DONE)
			continue;
		for (pp = &wh_inflight; *pp != NULL; pp = &(*pp)->next)
			if ((*pp)->easy == m->easy_handle)
				break;
		if ((r = *pp) == NULL)
			continue;
		*pp = r->next;
		wh_ninflight--;
		/* m does not outlive the handle's removal. */
		result = m->data.result;
		curl_multi_remove_handle(wh_multi, r->easy);
		code = 0;
		if (result == CURLE_OK) {
			curl_easy_getinfo(r->easy, CURLINFO_RESPONSE_CODE,
			    &code);
			if (code >= 200 && code < 300)
				wh_finish(r, code, NULL);
			else {
				snprintf(why, sizeof(why), "HTTP %ld %.60s",
				    code, r->reply);
				why[strcspn(why, "\r\n")] = '\0';
				wh_finish(r, code, why);
			}
		} else {
			snprintf(why, sizeof(why), "%s", r->errbuf[0] != '\0' ?
			    r->errbuf : curl_easy_strerror(result));
			wh_warn_tls(r, result, why);
			wh_finish(r, 0, why);
		}
	}
}

/*
 * Starts the request of one delivery. Returns 0 (started, or recorded
 * as a failed try), or -1 when the endpoint's format has no shape for
 * this kind of event (nothing to send: done for this endpoint).
 */
static int
wh_start(const struct wh_endpoint *ep, uint64_t seq, const char *key,
    const struct outbox_event *ev)
{
	struct wh_request req;
	struct wh_req *r;
	struct vbuf why;
	char url[512], failed[CURL_ERROR_SIZE + 64];
	size_t i;
	int rc;

	memset(&req, 0, sizeof(req));
	req.body = vbuf_create(0);
	r = xcalloc(1, sizeof(*r));
	r->seq = seq;
	snprintf(r->key, sizeof(r->key), "%s", key);
	/* A destination's event has no queue id to start its lines. */
	snprintf(r->qid, sizeof(r->qid), "%.*s", QID_SIZE,
	    ev->kind == OUTBOX_DESTINATION ? "destination" : ev->qid);
	r->event_ms = ev->time_ms;
	whstore_event_id(ev, r->id);
	vbuf_init(&why, 0);
	rc = webhookd_render(ep, ev, r->id, outbox_now_ms() / 1000, &req,
	    &why);
	if (rc != WH_RENDER_OK)
		vbuf_free(req.body);
	if (rc == WH_RENDER_NOSHAPE) {
		vbuf_release(&why);
		free(r);
		return -1;
	}
	if (rc == WH_RENDER_FAILED) {
		/*
		 * Not sent, and not done: a try that failed like any other,
		 * retried with the backoff and dead after max_age (a key
		 * that cannot sign is an operator's to fix, then replay).
		 */
		if (wh_warn_due(key, WH_WARN_RENDER)) {
			whstore_safe_url(ep->url, url, sizeof(url));
			log_warn("webhook %s: event %s of %s not sent: %s; "
			    "retried later", url, r->id, r->qid, why.data);
		}
		snprintf(failed, sizeof(failed), "not sent: %s", why.data);
		vbuf_release(&why);
		wh_done_add(r, 0, failed);
		return 0;
	}
	vbuf_release(&why);
	for (i = 0; i < req.nheaders; i++)
		r->headers = curl_slist_append(r->headers, req.header[i]);
	r->headers = curl_slist_append(r->headers, "Expect:");
	if ((r->easy = curl_easy_init()) == NULL) {
		vbuf_free(req.body);
		curl_slist_free_all(r->headers);
		free(r);
		return 0;
	}
	curl_easy_setopt(r->easy, CURLOPT_URL, ep->url);
	curl_easy_setopt(r->easy, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(r->easy, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(r->easy, CURLOPT_POSTFIELDSIZE, (long)req.body->len);
	curl_easy_setopt(r->easy, CURLOPT_COPYPOSTFIELDS, req.body->data);
	curl_easy_setopt(r->easy, CURLOPT_HTTPHEADER, r->headers);
	curl_easy_setopt(r->easy, CURLOPT_TIMEOUT_MS, (long)ep->timeout_ms);
	curl_easy_setopt(r->easy, CURLOPT_CONNECTTIMEOUT_MS,
	    (long)ep->timeout_ms);
	curl_easy_setopt(r->easy, CURLOPT_USERAGENT, "petrel-webhookd");
	curl_easy_setopt(r->easy, CURLOPT_SSL_VERIFYPEER, 1L);
	curl_easy_setopt(r->easy, CURLOPT_SSL_VERIFYHOST, 2L);
	if (ep->ca_file != NULL)
		curl_easy_setopt(r->easy, CURLOPT_CAINFO, ep->ca_file);
	curl_easy_setopt(r->easy, CURLOPT_WRITEFUNCTION, wh_write);
	curl_easy_setopt(r->easy, CURLOPT_WRITEDATA, r);
	curl_easy_setopt(r->easy, CURLOPT_ERRORBUFFER, r->errbuf);
	vbuf_free(req.body);
	r->next = wh_inflight;
	wh_inflight = r;
	wh_ninflight++;
	curl_multi_add_handle(wh_multi, r->easy);
	return 0;
}

struct wh_scan {
	MDB_txn		*txn;
	int64_t		 now;
	/* Deliveries without a shape, to mark done after the scan. */
	uint64_t	 noshape_seq[64];
	char		 noshape_key[64][WHSTORE_KEY_MAX + 1];
	size_t		 nnoshape;
};

static int
wh_resume_from(const char *key, int64_t *due, uint64_t *seq, void *arg)
{
	int i;

	(void)arg;
	for (i = 0; i < wh_nresume; i++)
		if (strcmp(wh_resume[i].key, key) == 0) {
			*due = wh_resume[i].due;
			*seq = wh_resume[i].seq;
			return 1;
		}
	return 0;
}

static void
wh_resume_note(const char *key, int64_t due, uint64_t seq)
{
	int i;

	for (i = 0; i < wh_nresume; i++)
		if (strcmp(wh_resume[i].key, key) == 0)
			break;
	if (i == wh_nresume) {
		if (wh_nresume == WH_RESUME_MAX)
			return;		/* walks from its first: slower, right */
		snprintf(wh_resume[i].key, sizeof(wh_resume[i].key), "%s",
		    key);
		wh_nresume++;
	}
	wh_resume[i].due = due;
	wh_resume[i].seq = seq;
}

static int
wh_scan_one(uint64_t seq, const char *key, const struct whstore_dlv *d,
    void *arg)
{
	struct wh_scan *sc = arg;
	const struct wh_endpoint *ep;
	struct outbox_scratch scr;
	struct outbox_event ev;

	if (wh_ninflight >= WH_MAX_INFLIGHT)
		return WHSTORE_STOP;
	if ((ep = webhookd_endpoint_by_key(key)) == NULL ||
	    wh_inflight_for(key) >= (int)ep->max_concurrent)
		return WHSTORE_SKIP;	/* gone from the configuration, or full */
	if (wh_is_inflight(seq, key))
		return 0;
	wh_resume_note(key, d->due_ms, seq);
	outbox_scratch_init(&scr);
	if (whstore_get_event(webhookd_store(), sc->txn, seq, &ev, &scr) == 0 &&
	    wh_start(ep, seq, key, &ev) == -1) {
		if (sc->nnoshape == 64) {
			outbox_scratch_release(&scr);
			return WHSTORE_STOP;
		}
		sc->noshape_seq[sc->nnoshape] = seq;
		snprintf(sc->noshape_key[sc->nnoshape],
		    sizeof(sc->noshape_key[0]), "%s", key);
		sc->nnoshape++;
	}
	outbox_scratch_release(&scr);
	return 0;
}

int64_t
webhookd_deliver(void)
{
	struct whstore *s = webhookd_store();
	struct wh_scan *sc;
	struct whstore_dlv d;
	MDB_txn *txn;
	int64_t wait = -1, next_due = 0;
	size_t i;
	int running;

	webhookd_deliver_flush(0);
	sc = xcalloc(1, sizeof(*sc));
	sc->now = outbox_now_ms();
	if (mdbdir_begin(&s->md, MDB_RDONLY, &txn, NULL) != 1) {
		free(sc);
		return 1000;
	}
	sc->txn = txn;
	(void)whstore_due_iter(s, txn, sc->now, wh_scan_one, wh_resume_from,
	    sc, &next_due);
	mdb_txn_abort(txn);
	if (next_due != 0)
		wait = next_due - sc->now < 0 ? 0 : next_due - sc->now;
	if (sc->nnoshape > 0 &&
	    mdbdir_begin(&s->md, 0, &txn, NULL) == 1) {
		for (i = 0; i < sc->nnoshape; i++)
			if (whstore_dlv_get(s, txn, sc->noshape_seq[i],
			    sc->noshape_key[i], &d) == 0) {
				d.state = WHSTORE_SENT;
				d.last_ms = sc->now;
				(void)whstore_dlv_put(s, txn,
				    sc->noshape_seq[i], sc->noshape_key[i],
				    &d, NULL);
			}
		if (mdb_txn_commit(txn) != 0)
			log_warn("webhook store: commit failed");
		wait = 0;	/* more may be waiting behind them */
	}
	free(sc);
	(void)curl_multi_socket_action(wh_multi, CURL_SOCKET_TIMEOUT, 0,
	    &running);
	wh_check_done();
	if (wh_done != NULL && (wait == -1 || wait > WH_DONE_MS))
		wait = WH_DONE_MS;
	return wait;
}

int64_t
webhookd_deliver_flush(int all)
{
	struct wh_req *r;
	int64_t oldest = 0, now = outbox_now_ms();

	for (r = wh_done; r != NULL; r = r->next)
		if (oldest == 0 || r->done_ms < oldest)
			oldest = r->done_ms;
	if (wh_done != NULL && (all || now - oldest >= WH_DONE_MS)) {
		wh_commit_done();
		return -1;
	}
	return wh_done == NULL ? -1 : oldest + WH_DONE_MS - now;
}

int
webhookd_deliver_busy(void)
{
	if (wh_ninflight == 0)
		(void)webhookd_deliver_flush(1);
	return wh_ninflight > 0 || wh_done != NULL;
}

int
webhookd_deliver_freed(void)
{
	int f = wh_freed;

	wh_freed = 0;
	return f;
}
