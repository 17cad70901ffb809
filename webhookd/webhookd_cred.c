/*
 * webhookd_cred.c - each application's own webhook endpoint, from the
 * credential store (relayctl user set NAME --webhook URL ...).
 *
 * relayctl writes a credential's webhook into its record (lib/cred);
 * webhookd reads it here, read-only, the way smtpd reads credentials: a
 * missing store is "no endpoints". Lookups are cached per user for
 * WH_CRED_REFRESH_MS, so a change is seen within seconds and a busy
 * relay does not open a read transaction per event. A cached endpoint
 * replaced by a refresh is not freed at once but retired for
 * WH_CRED_RETIRE_MS: a caller may still hold it until control returns to
 * the event loop (webhookd.h), which is far sooner. The cache holds at
 * most WH_CRED_MAX users; past that the oldest entry is dropped (and
 * retired). See webhookd(8) and relayctl(8).
 */
#include <stdlib.h>
#include <string.h>

#include <openssl/bio.h>
#include <openssl/crypto.h>
#include <openssl/pem.h>

#include "cred.h"
#include "daemon.h"
#include "log.h"
#include "webhookd.h"
#include "xalloc.h"

#define WH_CRED_REFRESH_MS	5000	/* a change is seen within this */
#define WH_CRED_RETIRE_MS	10000	/* a replaced endpoint lives on */
#define WH_CRED_MAX		4096	/* users cached */
#define WH_CRED_RETIRED_MAX	(2 * WH_CRED_MAX)

/*
 * A credential's endpoint has no petrel.yaml row: its connection limits
 * are events.credential_max_concurrent and events.credential_timeout,
 * the same for every credential (these are the fallbacks if the
 * configuration has none, as in unit tests).
 */
#define WH_CRED_CONCURRENT	4
#define WH_CRED_TIMEOUT_MS	10000

struct wh_cred_entry {
	char			 user[CRED_NAME_MAX + 1];
	int64_t			 loaded_ms;
	struct wh_endpoint	*ep;		/* NULL: none */
};

struct wh_cred_retired {
	struct wh_endpoint	*ep;
	int64_t			 since_ms;
};

static const struct cfg		*wh_cred_cfg;
static struct cred_db		*wh_cred_db;
static struct wh_cred_entry	*wh_cred_cache;
static size_t			 wh_cred_n;
static struct wh_cred_retired	*wh_cred_ret;
static size_t			 wh_cred_nret;

static void	wh_cred_ep_free(struct wh_endpoint *);
static void	wh_cred_retire(struct wh_endpoint *, int64_t);
static void	wh_cred_reap(int64_t);
static int	wh_cred_events(const char *, unsigned *);
static int	wh_cred_load(const char *, struct wh_endpoint **);
static EVP_PKEY	*wh_cred_key(const char *);

void
webhookd_cred_config(const struct cfg *cfg)
{
	size_t i;

	wh_cred_cfg = cfg;
	cred_close(wh_cred_db);
	wh_cred_db = NULL;
	for (i = 0; i < wh_cred_n; i++)
		wh_cred_ep_free(wh_cred_cache[i].ep);
	wh_cred_n = 0;
	for (i = 0; i < wh_cred_nret; i++)
		wh_cred_ep_free(wh_cred_ret[i].ep);
	wh_cred_nret = 0;
}

static void
wh_cred_ep_free(struct wh_endpoint *ep)
{
	if (ep == NULL)
		return;
	free(ep->url);
	if (ep->secret != NULL) {
		OPENSSL_cleanse(ep->secret, ep->secret_len);
		free(ep->secret);
	}
	EVP_PKEY_free(ep->sendgrid_key);
	free(ep->ca_file);
	free(ep->user);
	free(ep);
}

static void
wh_cred_retire(struct wh_endpoint *ep, int64_t now)
{
	if (ep == NULL)
		return;
	if (wh_cred_ret == NULL)
		wh_cred_ret = xreallocarray(NULL, WH_CRED_RETIRED_MAX,
		    sizeof(*wh_cred_ret));
	if (wh_cred_nret == WH_CRED_RETIRED_MAX) {
		/* Full: the oldest has been retired the longest. */
		wh_cred_ep_free(wh_cred_ret[0].ep);
		memmove(wh_cred_ret, wh_cred_ret + 1,
		    --wh_cred_nret * sizeof(*wh_cred_ret));
	}
	wh_cred_ret[wh_cred_nret].ep = ep;
	wh_cred_ret[wh_cred_nret++].since_ms = now;
}

/* Frees what has been retired long enough (oldest first). */
static void
wh_cred_reap(int64_t now)
{
	size_t i = 0;

	while (i < wh_cred_nret &&
	    now - wh_cred_ret[i].since_ms >= WH_CRED_RETIRE_MS)
		wh_cred_ep_free(wh_cred_ret[i++].ep);
	if (i > 0) {
		memmove(wh_cred_ret, wh_cred_ret + i,
		    (wh_cred_nret - i) * sizeof(*wh_cred_ret));
		wh_cred_nret -= i;
	}
}

/* The WH_EVENT_BIT set of a stored list (lib/cred checked it). 0/-1. */
static int
wh_cred_events(const char *list, unsigned *bits)
{
	const char *p = list, *name;
	size_t n;
	int k, found;

	*bits = 0;
	while (*p != '\0') {
		p += strspn(p, ", ");
		if ((n = strcspn(p, ", ")) == 0)
			break;
		found = 0;
		for (k = OUTBOX_ACCEPTED; k <= OUTBOX_KIND_LAST; k++) {
			name = outbox_kind_name((enum outbox_kind)k);
			/* Of no application's mail (lib/cred refuses it). */
			if (k == OUTBOX_DESTINATION)
				continue;
			if (strlen(name) == n && strncmp(p, name, n) == 0) {
				*bits |= WH_EVENT_BIT(k);
				found = 1;
			}
		}
		if (!found)
			return -1;
		p += n;
	}
	return *bits == 0 ? -1 : 0;
}

/* A stored SendGrid signing key; NULL if it is not one. */
static EVP_PKEY *
wh_cred_key(const char *pem)
{
	EVP_PKEY *key;
	BIO *bio;

	if ((bio = BIO_new_mem_buf(pem, -1)) == NULL)
		return NULL;
	key = PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL);
	BIO_free(bio);
	if (key != NULL && EVP_PKEY_get_base_id(key) != EVP_PKEY_EC) {
		EVP_PKEY_free(key);
		key = NULL;
	}
	return key;
}

/*
 * Reads user's webhook into *out (NULL when it has none, or it cannot be
 * used: logged). Returns 0, or -1 on a database error (logged), when the
 * caller keeps what it had.
 */
static int
wh_cred_load(const char *user, struct wh_endpoint **out)
{
	struct cred_webhook wh;
	struct wh_endpoint *ep;
	struct vbuf why;
	int rc, fmt;

	*out = NULL;
	vbuf_init(&why, 0);
	if (wh_cred_db == NULL &&
	    (wh_cred_db = cred_open(wh_cred_cfg, 0, &why)) == NULL) {
		log_warn("credential webhooks: %s", why.data);
		vbuf_release(&why);
		return -1;
	}
	rc = cred_webhook_get(wh_cred_db, user, &wh, &why);
	if (rc == -1) {
		log_warn("credential %s: webhook: %s", log_safe(user),
		    why.data);
		/* A corrupt record has no endpoint; an I/O error keeps it. */
		rc = strstr(why.data, "corrupt") != NULL ? 0 : -1;
		vbuf_release(&why);
		return rc;
	}
	vbuf_release(&why);
	if (rc == 0 || wh.url == NULL) {
		cred_webhook_release(&wh);
		return 0;
	}
	ep = xcalloc(1, sizeof(*ep));
	ep->url = xstrdup(wh.url);
	ep->user = xstrdup(user);
	ep->max_concurrent = wh_cred_cfg->events_credential_max_concurrent > 0 ?
	    wh_cred_cfg->events_credential_max_concurrent : WH_CRED_CONCURRENT;
	ep->timeout_ms = wh_cred_cfg->events_credential_timeout > 0 ?
	    (unsigned)wh_cred_cfg->events_credential_timeout * 1000 :
	    WH_CRED_TIMEOUT_MS;
	if ((fmt = webhookd_format_parse(wh.format != NULL ? wh.format :
	    "petrel")) == -1) {
		log_warn("credential %s: webhook format %s unknown: no "
		    "webhook", log_safe(user), log_safe(wh.format));
		goto bad;
	}
	ep->format = (enum wh_format)fmt;
	if (wh_cred_events(wh.events != NULL ? wh.events :
	    CRED_WEBHOOK_EVENTS_DEFAULT, &ep->events) == -1) {
		log_warn("credential %s: webhook events \"%s\" unknown: no "
		    "webhook", log_safe(user), log_safe(wh.events));
		goto bad;
	}
	if (wh.secret != NULL) {
		ep->secret_len = strlen(wh.secret);
		ep->secret = xmalloc(ep->secret_len + 1);
		memcpy(ep->secret, wh.secret, ep->secret_len + 1);
	}
	if (wh.key_pem != NULL &&
	    (ep->sendgrid_key = wh_cred_key(wh.key_pem)) == NULL) {
		/* Unsigned requests would be refused by a checking handler
		 * anyway; better none than ones that look forged. */
		log_warn("credential %s: webhook key is not an EC private "
		    "key: no webhook", log_safe(user));
		goto bad;
	}
	cred_webhook_release(&wh);
	*out = ep;
	return 0;
bad:
	cred_webhook_release(&wh);
	wh_cred_ep_free(ep);
	return 0;
}

const struct wh_endpoint *
webhookd_user_endpoint(const char *user)
{
	struct wh_cred_entry *e = NULL;
	struct wh_endpoint *ep;
	int64_t now;
	size_t i, oldest = 0;

	if (user == NULL || !cred_name_ok(user))
		return NULL;
	if (wh_cred_cfg == NULL && (wh_cred_cfg = daemon_cfg()) == NULL)
		return NULL;
	now = outbox_now_ms();
	wh_cred_reap(now);
	for (i = 0; i < wh_cred_n; i++) {
		if (strcmp(wh_cred_cache[i].user, user) == 0) {
			e = &wh_cred_cache[i];
			break;
		}
		if (wh_cred_cache[i].loaded_ms < wh_cred_cache[oldest].loaded_ms)
			oldest = i;
	}
	if (e != NULL && now - e->loaded_ms < WH_CRED_REFRESH_MS &&
	    now >= e->loaded_ms)
		return e->ep;
	if (e == NULL) {
		if (wh_cred_cache == NULL)
			wh_cred_cache = xreallocarray(NULL, WH_CRED_MAX,
			    sizeof(*wh_cred_cache));
		if (wh_cred_n == WH_CRED_MAX) {
			e = &wh_cred_cache[oldest];
			wh_cred_retire(e->ep, now);
		} else
			e = &wh_cred_cache[wh_cred_n++];
		memset(e, 0, sizeof(*e));
		snprintf(e->user, sizeof(e->user), "%s", user);
	}
	if (wh_cred_load(user, &ep) == -1) {
		/* Try again at the next refresh; keep what worked. */
		e->loaded_ms = now;
		return e->ep;
	}
	wh_cred_retire(e->ep, now);
	e->ep = ep;
	e->loaded_ms = now;
	return e->ep;
}
