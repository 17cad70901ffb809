/*
 * webhookd_ingest.c - moves events from the queue's outbox into webhookd's
 * own store, with a pending delivery for each endpoint that wants them,
 * and only then lets the outbox forget them.
 *
 * Crash safety. One pass is three commits in this order:
 *   1. the whstore write transaction: the events (enriched from their
 *      message's accepted event), their pending deliveries and the mark
 *      (the last seq ingested);
 *   2. webhookd_log_add (the delivery log's own transaction);
 *   3. outbox_delete_through(last seq) in a queue write transaction.
 * A crash before 1 loses nothing: the events are still in the outbox. A
 * crash between 1 and 3 leaves them in the outbox too; the next pass reads
 * them again (the outbox is read from its oldest event on), and whstore
 * stores an event at most once (whstore_put_event: by seq, below the mark
 * or already there means done), so no delivery is added twice, while the
 * delivery log is given them again (it is idempotent by seq). Only after 3
 * are they out of the outbox, and by then they are durable in whstore.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/pem.h>

#include "log.h"
#include "qstore.h"
#include "webhookd.h"
#include "whstore.h"
#include "xalloc.h"

#define WH_INGEST_BATCH	1000

static struct qstore *wh_queue;
static struct whstore wh_store;
static struct wh_endpoint *wh_eps;
static char **wh_ep_keys;
static size_t wh_neps;

struct whstore *
webhookd_store(void)
{
	return &wh_store;
}

size_t
webhookd_nendpoints(void)
{
	return wh_neps;
}

const struct wh_endpoint *
webhookd_endpoint(size_t i)
{
	return i < wh_neps ? &wh_eps[i] : NULL;
}

const struct wh_endpoint *
webhookd_endpoint_by_key(const char *key)
{
	size_t i;

	if (strncmp(key, "user:", 5) == 0)
		return webhookd_user_endpoint(key + 5);
	for (i = 0; i < wh_neps; i++)
		if (strcmp(wh_ep_keys[i], key) == 0)
			return &wh_eps[i];
	return NULL;
}

/* "delivered,bounced" into a WH_EVENT_BIT set. */
static unsigned
wh_event_set(const char *list)
{
	unsigned set = 0;
	char *copy = xstrdup(list), *p, *tok;
	int k;

	for (p = copy; (tok = strsep(&p, ", ")) != NULL;) {
		if (*tok == '\0')
			continue;
		for (k = OUTBOX_ACCEPTED; k <= OUTBOX_KIND_LAST; k++)
			if (strcmp(tok, outbox_kind_name(k)) == 0)
				set |= WH_EVENT_BIT(k);
	}
	free(copy);
	return set;
}

/*
 * SendGrid's signing key (webhooks[].sendgrid_key_file, a PEM EC private
 * key, as relayctl webhook keygen writes it). Unreadable is fatal, as for
 * secret_file: an endpoint that expects signatures would refuse us.
 */
static EVP_PKEY *
wh_read_key(const char *path)
{
	EVP_PKEY *k;
	FILE *f;

	if ((f = fopen(path, "r")) == NULL)
		log_fatal("webhooks: sendgrid_key_file %s: %s", path,
		    strerror(errno));
	k = PEM_read_PrivateKey(f, NULL, NULL, NULL);
	(void)fclose(f);
	if (k == NULL || EVP_PKEY_base_id(k) != EVP_PKEY_EC)
		log_fatal("webhooks: sendgrid_key_file %s: not a PEM EC "
		    "private key", path);
	return k;
}

/*
 * A secret file through cfg_secret_read, as master checked it at start and
 * reload; fatal if it has changed since into something refused.
 */
static unsigned char *
wh_read_secret(const char *path, size_t *len)
{
	unsigned char *secret;
	struct vbuf why;

	vbuf_init(&why, 0);
	if ((secret = cfg_secret_read(path, len, &why)) == NULL)
		log_fatal("webhooks: secret_file %s", why.data);
	vbuf_release(&why);
	return secret;
}

int
webhookd_ingest_init(const struct cfg *cfg)
{
	struct vbuf why;
	size_t i;

	vbuf_init(&why, 0);
	if ((wh_queue = qstore_open(cfg, &why)) == NULL)
		log_fatal("%s", why.data);
	if (whstore_open(&wh_store, cfg, 1, &why) == -1)
		log_fatal("%s", why.data);
	vbuf_release(&why);
	wh_neps = cfg->nwebhooks;
	wh_eps = xcalloc(wh_neps + 1, sizeof(*wh_eps));
	wh_ep_keys = xcalloc(wh_neps + 1, sizeof(*wh_ep_keys));
	for (i = 0; i < wh_neps; i++) {
		const struct cfg_webhook *w = &cfg->webhooks[i];
		struct wh_endpoint *ep = &wh_eps[i];
		int f;

		ep->url = xstrdup(w->url);
		f = webhookd_format_parse(w->format != NULL ? w->format :
		    "petrel");
		ep->format = f < 0 ? WH_FORMAT_PETREL : (enum wh_format)f;
		ep->events = wh_event_set(w->events != NULL ? w->events :
		    CFG_WEBHOOK_EVENTS);
		if (w->secret_file != NULL)
			ep->secret = wh_read_secret(w->secret_file,
			    &ep->secret_len);
		if (w->sendgrid_key_file != NULL)
			ep->sendgrid_key = wh_read_key(w->sendgrid_key_file);
		ep->ca_file = w->ca_file != NULL ? xstrdup(w->ca_file) : NULL;
		ep->max_concurrent = w->max_concurrent > 0 ?
		    w->max_concurrent : 4;
		ep->timeout_ms = w->timeout > 0 ?
		    (unsigned)w->timeout * 1000 : 10000;
		wh_ep_keys[i] = xmalloc(strlen(w->url) + 5);
		memcpy(wh_ep_keys[i], "cfg:", 4);
		memcpy(wh_ep_keys[i] + 4, w->url, strlen(w->url) + 1);
	}
	return 0;
}

struct wh_ingest_ctx {
	MDB_txn			*wtxn;
	struct outbox_scratch	 sc;
	uint64_t		 first, last;
	size_t			 n;
	int			 failed;
	struct vbuf		*why;
};

static int
wh_ingest_one(const struct outbox_event *oev, void *arg)
{
	struct wh_ingest_ctx *c = arg;
	struct outbox_event ev = *oev;
	const char *keys[CFG_MAX_WEBHOOKS + 1];
	char *userkey = NULL;
	size_t nkeys = 0, i;
	const struct wh_endpoint *uep;
	int fresh, rc;

	/* A crash's re-ingest must not start the join's count again. */
	fresh = ev.seq > whstore_last_seq(&wh_store, c->wtxn);
	if (fresh && ev.kind == OUTBOX_ACCEPTED &&
	    whstore_put_msg(&wh_store, c->wtxn, &ev, c->why) == -1)
		goto fail;
	whstore_enrich(&wh_store, c->wtxn, &ev, &c->sc);
	for (i = 0; i < wh_neps && nkeys < CFG_MAX_WEBHOOKS; i++)
		if ((wh_eps[i].events & WH_EVENT_BIT(ev.kind)) &&
		    webhookd_wants(&wh_eps[i], ev.kind))
			keys[nkeys++] = wh_ep_keys[i];
	if (ev.sasl_username != NULL && *ev.sasl_username != '\0' &&
	    (uep = webhookd_user_endpoint(ev.sasl_username)) != NULL &&
	    (uep->events & WH_EVENT_BIT(ev.kind))) {
		userkey = xmalloc(strlen(ev.sasl_username) + 6);
		memcpy(userkey, "user:", 5);
		memcpy(userkey + 5, ev.sasl_username,
		    strlen(ev.sasl_username) + 1);
		keys[nkeys++] = userkey;
	}
	rc = whstore_put_event(&wh_store, c->wtxn, &ev, keys, nkeys,
	    outbox_now_ms(), c->why);
	free(userkey);
	/*
	 * Stored for the first time: a final event counts its recipient off
	 * the join, in this same transaction (whstore_msg_settle). ev's
	 * strings may point into the join: not used after this.
	 */
	if (rc == -1 || (rc == 1 &&
	    whstore_msg_settle(&wh_store, c->wtxn, &ev, c->why) == -1))
		goto fail;
	if (c->n == 0)
		c->first = ev.seq;
	c->last = ev.seq;
	c->n++;
	return 0;
fail:
	c->failed = 1;
	return 1;
}

/* Gives the delivery log the events numbered from..through, from whstore. */
static void
wh_log_batch(uint64_t from, uint64_t through, size_t n)
{
	struct outbox_scratch *sc;
	struct outbox_event *evs;
	const struct outbox_event **pp;
	struct vbuf why;
	MDB_txn *txn;
	size_t got = 0, i;
	uint64_t seq;

	if (n == 0 || mdbdir_begin(&wh_store.md, MDB_RDONLY, &txn, NULL) != 1)
		return;
	sc = xcalloc(n, sizeof(*sc));
	evs = xcalloc(n, sizeof(*evs));
	pp = xcalloc(n, sizeof(*pp));
	for (seq = from; seq <= through && got < n; seq++) {
		outbox_scratch_init(&sc[got]);
		if (whstore_get_event(&wh_store, txn, seq, &evs[got],
		    &sc[got]) == 0) {
			pp[got] = &evs[got];
			got++;
		} else
			outbox_scratch_release(&sc[got]);
	}
	vbuf_init(&why, 0);
	if (got > 0 && webhookd_log_add(pp, got, &why) == -1)
		log_warn("delivery log: %s", why.data);
	vbuf_release(&why);
	for (i = 0; i < got; i++)
		outbox_scratch_release(&sc[i]);
	mdb_txn_abort(txn);
	free(pp);
	free(evs);
	free(sc);
}

/* whstore_msg_sweep's question: is the message out of the queue? */
static int
wh_msg_gone(const char *qid, void *arg)
{
	struct qstore_msginfo m;

	return qstore_msg_get(arg, qid, &m) == -1 &&
	    qstore_errno() == QSTORE_ERR_NOTFOUND;
}

/*
 * The backstop for the joins' counts (whstore_msg_sweep): a join goes when
 * its message is out of the queue and every event the queue had written
 * by then is ingested. Why that is safe: the queue writes a message's
 * events in the transactions that change its recipients, the last of
 * them before (or with) the one that deletes the message, so a queue
 * snapshot without the message has all of them numbered at most the
 * outbox's last number in that snapshot; our mark at or past that number
 * (read after the snapshot, and it only grows) means they are all in 'E'
 * already, enriched. What the outbox's cap dropped is gone either way.
 * A held message is still in the queue, so its join stays however old.
 */
void
webhookd_msg_sweep(size_t max)
{
	static char resume[QID_SIZE];
	struct outbox_stat st;
	struct qstore_txn *qt;
	struct vbuf why;
	MDB_txn *txn;
	int n;

	vbuf_init(&why, 0);
	if ((qt = qstore_txn_begin(wh_queue, 0, &why)) == NULL)
		goto out;
	if (outbox_stat(qt, &st, &why) == -1 ||
	    mdbdir_begin(&wh_store.md, 0, &txn, &why) != 1) {
		qstore_txn_abort(qt);
		goto out;
	}
	if (whstore_last_seq(&wh_store, txn) < st.last_seq) {
		/* Not caught up: what is left in the outbox may need joins. */
		mdb_txn_abort(txn);
		qstore_txn_abort(qt);
		goto out;
	}
	n = whstore_msg_sweep(&wh_store, txn, resume, max, wh_msg_gone, qt);
	qstore_txn_abort(qt);
	if (n <= 0) {
		mdb_txn_abort(txn);
		if (n < 0)
			vbuf_setf(&why, "cannot walk the joins");
		goto out;
	}
	if (mdb_txn_commit(txn) != 0) {
		vbuf_setf(&why, "commit failed");
		goto out;
	}
	log_info("webhook store: removed %d join(s) of messages gone", n);
out:
	if (why.len > 0)
		log_warn("webhook store: join sweep: %s", why.data);
	vbuf_release(&why);
}

int
webhookd_ingest(void)
{
	struct wh_ingest_ctx c;
	struct qstore_txn *qt;
	struct vbuf why;
	int rc;

	memset(&c, 0, sizeof(c));
	vbuf_init(&why, 0);
	c.why = &why;
	outbox_scratch_init(&c.sc);
	if (mdbdir_begin(&wh_store.md, 0, &c.wtxn, &why) != 1) {
		log_warn("%s", why.data);
		goto bad;
	}
	if ((qt = qstore_txn_begin(wh_queue, 0, &why)) == NULL) {
		mdb_txn_abort(c.wtxn);
		log_warn("outbox: %s", why.data);
		goto bad;
	}
	/*
	 * From the outbox's oldest event on: what is still there was not
	 * deleted, whether or not a previous pass stored it.
	 */
	rc = outbox_iter(qt, 0, WH_INGEST_BATCH, wh_ingest_one, &c, &why);
	qstore_txn_abort(qt);
	if (rc == -1 || c.failed) {
		mdb_txn_abort(c.wtxn);
		log_warn("ingest: %s", why.data);
		goto bad;
	}
	if (c.n == 0) {
		mdb_txn_abort(c.wtxn);
		goto done;
	}
	if ((rc = mdb_txn_commit(c.wtxn)) != 0) {
		mdbdir_why(&why, &wh_store.md, "commit", rc);
		log_warn("%s", why.data);
		goto bad;
	}
	wh_log_batch(c.first, c.last, c.n);
	if ((qt = qstore_txn_begin(wh_queue, 1, &why)) == NULL)
		goto delbad;
	if (outbox_delete_through(qt, c.last, &why) == -1) {
		qstore_txn_abort(qt);
		goto delbad;
	}
	/* qstore_txn_commit frees qt, committed or not. */
	if (qstore_txn_commit(qt, &why) == -1)
		goto delbad;
done:
	outbox_scratch_release(&c.sc);
	vbuf_release(&why);
	return (int)c.n;
delbad:
	/* Stored; the next pass deletes them (see the top of the file). */
	log_warn("outbox delete: %s", why.data);
bad:
	outbox_scratch_release(&c.sc);
	vbuf_release(&why);
	return -1;
}
