/*
 * webhookd_deliver.c - makes the HTTP requests: libcurl's multi interface
 * driven by lib/event (its sockets and its timer are ours to watch), so
 * nothing blocks and there are no threads.
 *
 * Fairness: each pass walks the pending deliveries from where the last
 * pass stopped, a bounded number at a time, and starts every due one
 * whose endpoint is under its max_concurrent; an endpoint at its limit (a
 * slow or dead one) is skipped, not waited for, so its backlog never
 * holds up another endpoint's events.
 *
 * Outcomes are written to whstore as they come: 2xx makes the delivery
 * "sent"; anything else is retried after min_backoff doubling up to
 * max_backoff, until the event is older than events.max_age, and then
 * the delivery is "dead" (a dead letter, kept for dead_letter_age, which
 * relayctl events replay can make pending again). A crash loses at most
 * the outcome of requests in flight: they are still pending and are sent
 * again (at least once; the receiver deduplicates by event id).
 */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>

#include "event.h"
#include "log.h"
#include "webhookd.h"
#include "whstore.h"
#include "xalloc.h"

#define WH_SCAN_BATCH		2000	/* deliveries looked at per pass */
#define WH_MAX_INFLIGHT		256	/* requests at once, all endpoints */
#define WH_REPLY_MAX		1024	/* bytes of the answer kept */

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
};

static CURLM *wh_multi;
static struct wh_req *wh_inflight;
static int wh_ninflight;
static uint64_t wh_timer;
static int wh_timer_set;
static uint64_t wh_scan_from;
static int64_t wh_max_age_ms, wh_min_backoff_ms, wh_max_backoff_ms;

static void	wh_check_done(void);

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

static int
wh_is_inflight(uint64_t seq, const char *key)
{
	struct wh_req *r;

	for (r = wh_inflight; r != NULL; r = r->next)
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

/* Records an outcome in whstore and logs it. */
static void
wh_finish(struct wh_req *r, long code, const char *why_failed)
{
	const struct wh_endpoint *ep = webhookd_endpoint_by_key(r->key);
	struct whstore *s = webhookd_store();
	struct whstore_dlv d;
	const char *outcome;
	char url[512];
	struct vbuf why;
	MDB_txn *txn;
	int64_t now = outbox_now_ms(), back;
	uint32_t i;
	int rc;

	whstore_safe_url(ep != NULL ? ep->url : r->key, url, sizeof(url));
	vbuf_init(&why, 0);
	if (mdbdir_begin(&s->md, 0, &txn, &why) != 1) {
		log_warn("%s", why.data);
		vbuf_release(&why);
		return;
	}
	if (whstore_dlv_get(s, txn, r->seq, r->key, &d) == -1 ||
	    d.state != WHSTORE_PENDING) {
		/* Replayed or pruned meanwhile: nothing to record. */
		mdb_txn_abort(txn);
		vbuf_release(&why);
		return;
	}
	d.tries++;
	d.last_ms = now;
	d.http_status = (int32_t)code;
	if (why_failed == NULL) {
		d.state = WHSTORE_SENT;
		outcome = "sent";
	} else if (now - wh_age_base(r->event_ms, &d) >= wh_max_age_ms) {
		d.state = WHSTORE_DEAD;
		outcome = "dead";
	} else {
		back = wh_min_backoff_ms;
		for (i = 1; i < d.tries && back < wh_max_backoff_ms; i++)
			back *= 2;
		if (back > wh_max_backoff_ms)
			back = wh_max_backoff_ms;
		d.due_ms = now + back;
		outcome = "deferred";
	}
	if (whstore_dlv_put(s, txn, r->seq, r->key, &d, &why) == -1) {
		mdb_txn_abort(txn);
		log_warn("%s", why.data);
		vbuf_release(&why);
		return;
	}
	if ((rc = mdb_txn_commit(txn)) != 0) {
		mdbdir_why(&why, &s->md, "commit", rc);
		log_warn("%s", why.data);
		vbuf_release(&why);
		return;
	}
	vbuf_release(&why);
	if (why_failed == NULL)
		log_info("%s: event=%s to=%s status=sent (HTTP %ld)", r->qid,
		    r->id, url, code);
	else
		log_info("%s: event=%s to=%s status=%s (%s)", r->qid, r->id,
		    url, outcome, why_failed);
	webhookd_log_webhook(r->seq, url, strcmp(outcome, "deferred") == 0 ?
	    "failed" : outcome, code, now);
}

static void
wh_check_done(void)
{
	struct wh_req **pp, *r;
	CURLMsg *m;
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
		code = 0;
		if (m->data.result == CURLE_OK) {
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
			    r->errbuf : curl_easy_strerror(m->data.result));
			wh_finish(r, 0, why);
		}
		curl_multi_remove_handle(wh_multi, r->easy);
		curl_easy_cleanup(r->easy);
		curl_slist_free_all(r->headers);
		free(r);
	}
}

static int
wh_start(const struct wh_endpoint *ep, uint64_t seq, const char *key,
    const struct outbox_event *ev)
{
	struct wh_request req;
	struct wh_req *r;
	size_t i;

	memset(&req, 0, sizeof(req));
	req.body = vbuf_create(0);
	r = xcalloc(1, sizeof(*r));
	r->seq = seq;
	snprintf(r->key, sizeof(r->key), "%s", key);
	snprintf(r->qid, sizeof(r->qid), "%.*s", QID_SIZE, ev->qid);
	r->event_ms = ev->time_ms;
	whstore_event_id(ev, r->id);
	if (webhookd_render(ep, ev, r->id, outbox_now_ms() / 1000,
	    &req) == -1) {
		/* No shape for this kind: done for this endpoint. */
		vbuf_free(req.body);
		return -1;
	}
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
	int64_t		 next_due;	/* earliest future due, ms */
	uint64_t	 last_seq;
	size_t		 seen;
	/* Deliveries without a shape, to mark done after the scan. */
	uint64_t	 noshape_seq[64];
	char		 noshape_key[64][WHSTORE_KEY_MAX + 1];
	size_t		 nnoshape;
};

static int
wh_scan_one(uint64_t seq, const char *key, const struct whstore_dlv *d,
    void *arg)
{
	struct wh_scan *sc = arg;
	const struct wh_endpoint *ep;
	struct outbox_scratch scr;
	struct outbox_event ev;

	sc->last_seq = seq;
	sc->seen++;
	if (d->state != WHSTORE_PENDING)
		return 0;
	if (d->due_ms > sc->now) {
		if (sc->next_due == 0 || d->due_ms < sc->next_due)
			sc->next_due = d->due_ms;
		return 0;
	}
	if (wh_ninflight >= WH_MAX_INFLIGHT)
		return 1;
	if ((ep = webhookd_endpoint_by_key(key)) == NULL)
		return 0;	/* endpoint gone from the configuration */
	if (wh_is_inflight(seq, key) ||
	    wh_inflight_for(key) >= (int)ep->max_concurrent)
		return 0;
	outbox_scratch_init(&scr);
	if (whstore_get_event(webhookd_store(), sc->txn, seq, &ev, &scr) == 0 &&
	    wh_start(ep, seq, key, &ev) == -1 && sc->nnoshape < 64) {
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
	int64_t wait = -1;
	size_t i;
	int running;

	sc = xcalloc(1, sizeof(*sc));
	sc->now = outbox_now_ms();
	if (mdbdir_begin(&s->md, MDB_RDONLY, &txn, NULL) != 1) {
		free(sc);
		return 1000;
	}
	sc->txn = txn;
	(void)whstore_dlv_iter(s, txn, wh_scan_from, WH_SCAN_BATCH,
	    wh_scan_one, sc);
	mdb_txn_abort(txn);
	/* Next pass resumes after this one; from the start when it ended. */
	if (sc->seen >= WH_SCAN_BATCH) {
		wh_scan_from = sc->last_seq + 1;
		wait = 0;
	} else {
		if (wh_scan_from != 0)
			wait = 0;
		wh_scan_from = 0;
	}
	if (sc->next_due != 0) {
		int64_t w = sc->next_due - sc->now;

		if (wait == -1 || w < wait)
			wait = w < 0 ? 0 : w;
	}
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
	}
	free(sc);
	(void)curl_multi_socket_action(wh_multi, CURL_SOCKET_TIMEOUT, 0,
	    &running);
	wh_check_done();
	return wait;
}

int
webhookd_deliver_busy(void)
{
	return wh_ninflight > 0;
}

void
webhookd_deliver_stop(void)
{
	struct wh_req *r;

	while ((r = wh_inflight) != NULL) {
		wh_inflight = r->next;
		curl_multi_remove_handle(wh_multi, r->easy);
		curl_easy_cleanup(r->easy);
		curl_slist_free_all(r->headers);
		free(r);
	}
	wh_ninflight = 0;
}
