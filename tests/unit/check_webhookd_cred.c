/*
 * check_webhookd_cred.c - unit tests for webhookd_cred.c: a credential's
 * webhook, written with lib/cred as relayctl writes it, becomes an
 * endpoint (format, events, HMAC secret, SendGrid key, owner); users
 * without one, unknown users and a missing store have none; lookups are
 * cached, and a new configuration empties the cache.
 */
#include <sys/stat.h>

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/pem.h>

#include "cfg.h"
#include "cred.h"
#include "vbuf.h"
#include "webhookd.h"

static char qdir[64];
static struct cfg tcfg;

static Suite	*cred_suite(void);
static void	 setup(void);
static void	 teardown(void);
static char	*ec_pem(void);

static void
setup(void)
{
	snprintf(qdir, sizeof(qdir), "/tmp/check_whcred.XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(qdir));
	memset(&tcfg, 0, sizeof(tcfg));
	tcfg.queue_directory = qdir;
	webhookd_cred_config(&tcfg);
}

static void
teardown(void)
{
	char buf[256];

	webhookd_cred_config(NULL);
	snprintf(buf, sizeof(buf), "%s/%s/data.mdb", qdir, CRED_DIR);
	(void)unlink(buf);
	snprintf(buf, sizeof(buf), "%s/%s/lock.mdb", qdir, CRED_DIR);
	(void)unlink(buf);
	snprintf(buf, sizeof(buf), "%s/%s", qdir, CRED_DIR);
	(void)rmdir(buf);
	(void)rmdir(qdir);
}

/* A new P-256 private key as PEM (malloc'd). */
static char *
ec_pem(void)
{
	EVP_PKEY_CTX *ctx;
	EVP_PKEY *key = NULL;
	BIO *bio;
	char *data, *out;
	long n;

	ctx = EVP_PKEY_CTX_new_from_name(NULL, "EC", NULL);
	ck_assert_int_eq(EVP_PKEY_keygen_init(ctx), 1);
	ck_assert_int_eq(EVP_PKEY_CTX_set_group_name(ctx, "P-256"), 1);
	ck_assert_int_eq(EVP_PKEY_keygen(ctx, &key), 1);
	bio = BIO_new(BIO_s_mem());
	ck_assert_int_eq(PEM_write_bio_PrivateKey(bio, key, NULL, NULL, 0,
	    NULL, NULL), 1);
	n = BIO_get_mem_data(bio, &data);
	out = strndup(data, (size_t)n);
	BIO_free(bio);
	EVP_PKEY_free(key);
	EVP_PKEY_CTX_free(ctx);
	return out;
}

START_TEST(test_none)
{
	/* No store at all: nobody has an endpoint, nothing is created. */
	ck_assert_ptr_null(webhookd_user_endpoint("app"));
	ck_assert_ptr_null(webhookd_user_endpoint(NULL));
	ck_assert_ptr_null(webhookd_user_endpoint("bad name"));
}
END_TEST

START_TEST(test_endpoint)
{
	const struct wh_endpoint *ep;
	struct cred_webhook wh;
	struct cred_db *db;
	struct vbuf why;
	char *pem;

	vbuf_init(&why, 0);
	db = cred_open(&tcfg, 1, &why);
	ck_assert_ptr_nonnull(db);
	ck_assert_int_eq(cred_user_add(db, "app", "pw", 2, &why), 0);
	ck_assert_int_eq(cred_user_add(db, "plain", "pw", 2, &why), 0);
	ck_assert_int_eq(cred_user_add(db, "sg", "pw", 2, &why), 0);
	memset(&wh, 0, sizeof(wh));
	wh.url = "https://u:p@app.example/hooks";
	wh.format = "mailgun";
	wh.events = "delivered, bounced";
	wh.secret = "key-1";
	ck_assert_int_eq(cred_webhook_set(db, "app", &wh, &why), 1);
	pem = ec_pem();
	memset(&wh, 0, sizeof(wh));
	wh.url = "http://127.0.0.1:9/sg";
	wh.format = "sendgrid";
	wh.key_pem = pem;
	ck_assert_int_eq(cred_webhook_set(db, "sg", &wh, &why), 1);

	ep = webhookd_user_endpoint("app");
	ck_assert_ptr_nonnull(ep);
	ck_assert_str_eq(ep->url, "https://u:p@app.example/hooks");
	ck_assert_int_eq(ep->format, WH_FORMAT_MAILGUN);
	ck_assert_uint_eq(ep->events, WH_EVENT_BIT(OUTBOX_DELIVERED) |
	    WH_EVENT_BIT(OUTBOX_BOUNCED));
	ck_assert_uint_eq(ep->secret_len, 5);
	ck_assert_int_eq(memcmp(ep->secret, "key-1", 5), 0);
	ck_assert_ptr_null(ep->sendgrid_key);
	ck_assert_str_eq(ep->user, "app");
	ck_assert_uint_gt(ep->max_concurrent, 0);

	ck_assert_ptr_null(webhookd_user_endpoint("plain"));
	ck_assert_ptr_null(webhookd_user_endpoint("nobody"));

	ep = webhookd_user_endpoint("sg");
	ck_assert_ptr_nonnull(ep);
	ck_assert_int_eq(ep->format, WH_FORMAT_SENDGRID);
	ck_assert_ptr_nonnull(ep->sendgrid_key);
	ck_assert_uint_eq(ep->secret_len, 0);
	/* The default events: all of them, as for a petrel.yaml endpoint. */
	ck_assert_uint_eq(ep->events, WH_EVENT_BIT(OUTBOX_ACCEPTED) |
	    WH_EVENT_BIT(OUTBOX_DELIVERED) |
	    WH_EVENT_BIT(OUTBOX_DEFERRED) | WH_EVENT_BIT(OUTBOX_BOUNCED) |
	    WH_EVENT_BIT(OUTBOX_EXPIRED) | WH_EVENT_BIT(OUTBOX_SUPPRESSED) |
	    WH_EVENT_BIT(OUTBOX_DELETED));

	/* Cached: a change is not read again at once... */
	ck_assert_int_eq(cred_webhook_set(db, "app", NULL, &why), 1);
	ck_assert_ptr_nonnull(webhookd_user_endpoint("app"));
	/* ...but is once the cache is new (or WH_CRED_REFRESH_MS later). */
	webhookd_cred_config(&tcfg);
	ck_assert_ptr_null(webhookd_user_endpoint("app"));
	ck_assert_ptr_nonnull(webhookd_user_endpoint("sg"));

	cred_close(db);
	free(pem);
	vbuf_release(&why);
}
END_TEST

static Suite *
cred_suite(void)
{
	Suite *s = suite_create("webhookd_cred");
	TCase *tc;

	tc = tcase_create("endpoints");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_none);
	tcase_add_test(tc, test_endpoint);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr;
	int nfailed;

	sr = srunner_create(cred_suite());
	srunner_run_all(sr, CK_NORMAL);
	nfailed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return nfailed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
