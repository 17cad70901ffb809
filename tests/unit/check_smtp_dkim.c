/*
 * check_smtp_dkim.c - unit tests for smtp's DKIM signing (smtp_dkim.c):
 * the per-process cache of parsed keys (a hit parses nothing; a new
 * selector, a replaced key file or an evicted key is parsed again; a file
 * of the wrong type or no key is refused), and signing a queued message
 * whose signature libopendkim's verifier then checks against the public
 * key, before and after a rotation in the same process. The queue and the
 * key directory live in a mkdtemp() directory; no DNS (the verifier's key
 * lookup is a callback). dkimpy checks the same signatures end to end in
 * tests/integration/test_dkim.py.
 */
#include <sys/stat.h>
#include <sys/wait.h>

#include <check.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <opendkim/dkim.h>

#include "b64.h"
#include "cfg.h"
#include "dkimkey.h"
#include "qstore.h"
#include "smtp.h"
#include "vbuf.h"

static char tdir[64], qdir[96], kdir[96];
static struct cfg tcfg;
/* The TXT record the verifier's key lookup returns. */
static char txt[2048];

static void	setup(void);
static void	teardown(void);
static void	write_key(const char *, const char *, enum dkimkey_alg);
static void	add_key(const char *, const char *, enum dkimkey_alg,
		    int64_t);
static void	sel_fill(struct dkimkey_signing *, const char *,
		    const char *, enum dkimkey_alg);
static void	set_txt(const char *, const char *);
static void	queue_msg(struct qstore *, const char *, char *);
static DKIM_CBSTAT txt_lookup(DKIM *, DKIM_SIGINFO *, u_char *, size_t);
static DKIM_STAT verify(const char *, const char *);
static void	sign_and_verify(const char *, const char *);
static Suite	*smtp_dkim_suite(void);

#define MSG	"From: App <app@example.com>\r\n" \
		"To: rcpt@example.org\r\n" \
		"Subject: a test\r\n" \
		"Date: Fri, 4 Dec 2026 12:00:00 +0000\r\n" \
		"Message-ID: <1@example.com>\r\n" \
		"\r\n" \
		"Hello,  world \r\n" \
		"\r\n" \
		"\r\n"

static void
setup(void)
{
	struct vbuf why;

	snprintf(tdir, sizeof(tdir), "/tmp/check_smtp_dkim.XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(tdir));
	snprintf(qdir, sizeof(qdir), "%s/queue", tdir);
	snprintf(kdir, sizeof(kdir), "%s/dkim", tdir);
	ck_assert_int_eq(mkdir(qdir, 0700), 0);
	memset(&tcfg, 0, sizeof(tcfg));
	tcfg.queue_directory = qdir;
	tcfg.queue_map_size = 16UL * 1024 * 1024;
	tcfg.dkim_key_directory = kdir;
	tcfg.dkim_group = (char *)"root";
	vbuf_init(&why, 0);
	ck_assert_msg(qstore_create_dirs(qdir, getuid(), getgid(), &why) == 0,
	    "%s", why.data);
	vbuf_release(&why);
	smtp_dkim_key_flush();
}

static void
teardown(void)
{
	pid_t pid;

	smtp_dkim_key_flush();
	/* No system(3): a child runs rm. */
	if ((pid = fork()) == 0) {
		execlp("rm", "rm", "-rf", tdir, (char *)NULL);
		_exit(127);
	}
	if (pid > 0)
		(void)waitpid(pid, NULL, 0);
}

/*
 * Writes a fresh key file for domain and sel as relayctl does: a new file
 * renamed over the old one, so a rewrite is a new inode.
 */
static void
write_key(const char *domain, const char *sel, enum dkimkey_alg alg)
{
	struct vbuf path, tmp;
	EVP_PKEY *pkey;
	FILE *fp;

	vbuf_init(&path, 0);
	vbuf_init(&tmp, 0);
	pkey = alg == DKIMKEY_ED25519_SHA256 ?
	    EVP_PKEY_Q_keygen(NULL, NULL, "ED25519") :
	    EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
	ck_assert_ptr_nonnull(pkey);
	ck_assert_int_eq(dkimkey_key_path(&tcfg, NULL, NULL, &path, NULL), 0);
	(void)mkdir(path.data, 0700);
	ck_assert_int_eq(dkimkey_key_path(&tcfg, domain, NULL, &path, NULL),
	    0);
	(void)mkdir(path.data, 0700);
	ck_assert_int_eq(dkimkey_key_path(&tcfg, domain, sel, &path, NULL), 0);
	vbuf_setf(&tmp, "%s.tmp", path.data);
	ck_assert_ptr_nonnull(fp = fopen(tmp.data, "w"));
	ck_assert_int_eq(PEM_write_PKCS8PrivateKey(fp, pkey, NULL, NULL, 0,
	    NULL, NULL), 1);
	ck_assert_int_eq(fclose(fp), 0);
	ck_assert_int_eq(rename(tmp.data, path.data), 0);
	EVP_PKEY_free(pkey);
	vbuf_release(&path);
	vbuf_release(&tmp);
}

/* Writes a key file and registers its selector, active from active. */
static void
add_key(const char *domain, const char *sel, enum dkimkey_alg alg,
    int64_t active)
{
	struct dkimkey_selector s;
	struct dkimkey_db *db;
	struct vbuf why;

	vbuf_init(&why, 0);
	write_key(domain, sel, alg);
	memset(&s, 0, sizeof(s));
	snprintf(s.name, sizeof(s.name), "%s", sel);
	s.alg = alg;
	s.bits = alg == DKIMKEY_ED25519_SHA256 ? 0 : 2048;
	s.active_from = active;
	db = dkimkey_open(&tcfg, 1, &why);
	ck_assert_msg(db != NULL, "%s", why.data);
	ck_assert_msg(dkimkey_selector_add(db, domain, &s, 0, &why) == 0,
	    "%s", why.data);
	dkimkey_close(db);
	vbuf_release(&why);
}

static void
sel_fill(struct dkimkey_signing *s, const char *domain, const char *sel,
    enum dkimkey_alg alg)
{
	memset(s, 0, sizeof(*s));
	snprintf(s->domain, sizeof(s->domain), "%s", domain);
	snprintf(s->selector, sizeof(s->selector), "%s", sel);
	s->alg = alg;
}

/* The DNS record of the key file of domain and sel, for txt_lookup. */
static void
set_txt(const char *domain, const char *sel)
{
	struct vbuf pem, b64;
	unsigned char *der = NULL, raw[32];
	size_t rawlen = sizeof(raw);
	EVP_PKEY *pkey;
	BIO *bio;
	int len;

	vbuf_init(&pem, 0);
	vbuf_init(&b64, 0);
	ck_assert_int_eq(dkimkey_key_read(&tcfg, domain, sel, &pem, NULL), 0);
	ck_assert_ptr_nonnull(bio = BIO_new_mem_buf(pem.data, (int)pem.len));
	ck_assert_ptr_nonnull(pkey = PEM_read_bio_PrivateKey(bio, NULL, NULL,
	    NULL));
	BIO_free(bio);
	if (EVP_PKEY_get_base_id(pkey) == EVP_PKEY_ED25519) {
		ck_assert_int_eq(EVP_PKEY_get_raw_public_key(pkey, raw,
		    &rawlen), 1);
		ck_assert_int_eq(b64_encode(&b64, raw, rawlen, 0), 0);
		snprintf(txt, sizeof(txt), "v=DKIM1; k=ed25519; p=%s",
		    b64.data);
	} else {
		ck_assert_int_gt(len = i2d_PUBKEY(pkey, &der), 0);
		ck_assert_int_eq(b64_encode(&b64, der, (size_t)len, 0), 0);
		snprintf(txt, sizeof(txt), "v=DKIM1; k=rsa; p=%s", b64.data);
		OPENSSL_free(der);
	}
	EVP_PKEY_free(pkey);
	vbuf_release(&pem);
	vbuf_release(&b64);
}

/* Queues MSG; qid gets its queue id. */
static void
queue_msg(struct qstore *qs, const char *body, char *qid)
{
	struct qstore_envelope env;
	struct qstore_new *qn;
	struct vbuf why;
	char *rcpts[] = { (char *)"rcpt@example.org" };

	vbuf_init(&why, 0);
	memset(&env, 0, sizeof(env));
	env.sender = (char *)"app@example.com";
	env.rcpts = rcpts;
	env.nrcpts = 1;
	env.arrival = (int64_t)time(NULL);
	env.client_addr = (char *)"127.0.0.1";
	env.client_name = (char *)"client.example";
	env.auth_user = (char *)"";
	ck_assert_msg((qn = qstore_new_begin(qs, &env, &why)) != NULL, "%s",
	    why.data);
	ck_assert_int_eq(qstore_new_write(qn, body, strlen(body), &why), 0);
	ck_assert_int_eq(qstore_new_finish(qn, &why), 0);
	memcpy(qid, qstore_new_id(qn), QID_SIZE);
	ck_assert_msg(qstore_commit(qs, &qn, 1, &why) == 0, "%s", why.data);
	qstore_new_free(qn);
	vbuf_release(&why);
}

static DKIM_CBSTAT
txt_lookup(DKIM *dkim, DKIM_SIGINFO *sig, u_char *buf, size_t buflen)
{
	(void)dkim;
	(void)sig;
	if (strlen(txt) >= buflen)
		return DKIM_CBSTAT_ERROR;
	memcpy(buf, txt, strlen(txt) + 1);
	return DKIM_CBSTAT_CONTINUE;
}

/*
 * Runs libopendkim's verifier over sighdr (a DKIM-Signature field with
 * its CRLF) on top of msg; the key is txt. Returns dkim_eom's status.
 */
static DKIM_STAT
verify(const char *sighdr, const char *msg)
{
	struct vbuf all;
	DKIM_LIB *lib;
	DKIM *dkim;
	DKIM_STAT st;
	const char *p, *end, *line, *nl;

	vbuf_init(&all, 0);
	(void)vbuf_adds(&all, sighdr);
	(void)vbuf_adds(&all, msg);
	ck_assert_ptr_nonnull(lib = dkim_init(NULL, NULL));
	ck_assert_int_eq(dkim_set_key_lookup(lib, txt_lookup), DKIM_STAT_OK);
	ck_assert_ptr_nonnull(dkim = dkim_verify(lib, (const u_char *)"t",
	    NULL, &st));
	p = all.data;
	end = strstr(all.data, "\r\n\r\n") + 2;
	while (p < end) {
		line = p;
		do {
			nl = strstr(p, "\r\n");
			p = nl + 2;
		} while (p < end && (*p == ' ' || *p == '\t'));
		ck_assert_int_eq(dkim_header(dkim, (u_char *)(uintptr_t)line,
		    (size_t)(p - 2 - line)), DKIM_STAT_OK);
	}
	ck_assert_int_eq(dkim_eoh(dkim), DKIM_STAT_OK);
	ck_assert_int_eq(dkim_body(dkim, (u_char *)(uintptr_t)(end + 2),
	    strlen(end + 2)), DKIM_STAT_OK);
	st = dkim_eom(dkim, NULL);
	(void)dkim_free(dkim);
	dkim_close(lib);
	vbuf_release(&all);
	return st;
}

/*
 * Queues MSG, signs it as smtp does and checks the result names domain
 * and sel and verifies with sel's public key.
 */
static void
sign_and_verify(const char *domain, const char *sel)
{
	struct smtp_req req;
	struct qstore *qs;
	struct vbuf why;
	char want[128];

	vbuf_init(&why, 0);
	ck_assert_msg((qs = qstore_open(&tcfg, &why)) != NULL, "%s",
	    why.data);
	memset(&req, 0, sizeof(req));
	queue_msg(qs, MSG, req.qid);
	ck_assert_msg((req.qf = qstore_file_open(qdir, req.qid, &why)) !=
	    NULL, "%s", why.data);
	smtp_dkim_sign(&tcfg, &req);
	snprintf(want, sizeof(want), "d=%s s=%s", domain, sel);
	ck_assert_str_eq(req.dkim, want);
	ck_assert_ptr_nonnull(req.dkim_sig);
	ck_assert_uint_eq(strlen(req.dkim_sig), req.dkim_sig_len);
	ck_assert(strncmp(req.dkim_sig, "DKIM-Signature: v=1;", 20) == 0);
	set_txt(domain, sel);
	ck_assert_msg(verify(req.dkim_sig, MSG) == DKIM_STAT_OK,
	    "libopendkim does not verify:\n%s", req.dkim_sig);
	/* Changed in transit: the same signature fails. */
	ck_assert_int_ne(verify(req.dkim_sig, "From: app@example.com\r\n\r\n"
	    "other\r\n"), DKIM_STAT_OK);
	smtp_dkim_free(&req);
	qstore_file_close(req.qf);
	qstore_close(qs);
	vbuf_release(&why);
}

START_TEST(test_cache_hit)
{
	struct dkimkey_signing s;
	struct vbuf why;
	EVP_PKEY *k1, *k2;
	unsigned long n0 = smtp_dkim_key_loads();

	vbuf_init(&why, 0);
	write_key("example.com", "s1", DKIMKEY_ED25519_SHA256);
	sel_fill(&s, "example.com", "s1", DKIMKEY_ED25519_SHA256);
	k1 = smtp_dkim_key(&tcfg, &s, &why);
	ck_assert_msg(k1 != NULL, "%s", why.data);
	ck_assert_uint_eq(smtp_dkim_key_loads(), n0 + 1);
	k2 = smtp_dkim_key(&tcfg, &s, &why);
	ck_assert_ptr_eq(k1, k2);
	ck_assert_uint_eq(smtp_dkim_key_loads(), n0 + 1);
	vbuf_release(&why);
}
END_TEST

START_TEST(test_cache_new_selector_and_replaced_file)
{
	struct dkimkey_signing s1, s2;
	struct vbuf why;
	unsigned char pub1[32], pub2[32];
	size_t len = sizeof(pub1);
	EVP_PKEY *k;
	unsigned long n0 = smtp_dkim_key_loads();

	vbuf_init(&why, 0);
	write_key("example.com", "s1", DKIMKEY_ED25519_SHA256);
	write_key("example.com", "s2", DKIMKEY_ED25519_SHA256);
	sel_fill(&s1, "example.com", "s1", DKIMKEY_ED25519_SHA256);
	sel_fill(&s2, "example.com", "s2", DKIMKEY_ED25519_SHA256);
	ck_assert_ptr_nonnull(k = smtp_dkim_key(&tcfg, &s1, &why));
	ck_assert_int_eq(EVP_PKEY_get_raw_public_key(k, pub1, &len), 1);
	/* A rotation: the new selector is parsed, the old one stays. */
	ck_assert_ptr_nonnull(smtp_dkim_key(&tcfg, &s2, &why));
	ck_assert_uint_eq(smtp_dkim_key_loads(), n0 + 2);
	ck_assert_ptr_eq(smtp_dkim_key(&tcfg, &s1, &why), k);
	ck_assert_uint_eq(smtp_dkim_key_loads(), n0 + 2);
	/* The same selector with a new key file: parsed again. */
	write_key("example.com", "s1", DKIMKEY_ED25519_SHA256);
	ck_assert_ptr_nonnull(k = smtp_dkim_key(&tcfg, &s1, &why));
	ck_assert_uint_eq(smtp_dkim_key_loads(), n0 + 3);
	len = sizeof(pub2);
	ck_assert_int_eq(EVP_PKEY_get_raw_public_key(k, pub2, &len), 1);
	ck_assert(memcmp(pub1, pub2, sizeof(pub1)) != 0);
	ck_assert_ptr_eq(smtp_dkim_key(&tcfg, &s1, &why), k);
	ck_assert_uint_eq(smtp_dkim_key_loads(), n0 + 3);
	vbuf_release(&why);
}
END_TEST

START_TEST(test_cache_eviction)
{
	struct dkimkey_signing s;
	struct vbuf why;
	char name[16];
	unsigned long n0 = smtp_dkim_key_loads();
	int i;

	vbuf_init(&why, 0);
	for (i = 0; i <= SMTP_DKIM_KEYS_MAX; i++) {
		snprintf(name, sizeof(name), "s%d", i);
		write_key("example.com", name, DKIMKEY_ED25519_SHA256);
		sel_fill(&s, "example.com", name, DKIMKEY_ED25519_SHA256);
		ck_assert_msg(smtp_dkim_key(&tcfg, &s, &why) != NULL, "%s",
		    why.data);
	}
	ck_assert_uint_eq(smtp_dkim_key_loads(),
	    n0 + SMTP_DKIM_KEYS_MAX + 1);
	/* The most recent are kept; the least recently used, s0, is not. */
	sel_fill(&s, "example.com", "s1", DKIMKEY_ED25519_SHA256);
	ck_assert_ptr_nonnull(smtp_dkim_key(&tcfg, &s, &why));
	ck_assert_uint_eq(smtp_dkim_key_loads(),
	    n0 + SMTP_DKIM_KEYS_MAX + 1);
	sel_fill(&s, "example.com", "s0", DKIMKEY_ED25519_SHA256);
	ck_assert_ptr_nonnull(smtp_dkim_key(&tcfg, &s, &why));
	ck_assert_uint_eq(smtp_dkim_key_loads(),
	    n0 + SMTP_DKIM_KEYS_MAX + 2);
	vbuf_release(&why);
}
END_TEST

START_TEST(test_cache_refuses)
{
	struct dkimkey_signing s;
	struct vbuf why, path;
	FILE *fp;

	vbuf_init(&why, 0);
	vbuf_init(&path, 0);
	/* No file. */
	sel_fill(&s, "example.com", "none", DKIMKEY_RSA_SHA256);
	ck_assert_ptr_null(smtp_dkim_key(&tcfg, &s, &why));
	ck_assert_ptr_nonnull(strstr(why.data, "none.pem"));
	/* An Ed25519 key where the registry says RSA. */
	write_key("example.com", "e1", DKIMKEY_ED25519_SHA256);
	sel_fill(&s, "example.com", "e1", DKIMKEY_RSA_SHA256);
	ck_assert_ptr_null(smtp_dkim_key(&tcfg, &s, &why));
	ck_assert_ptr_nonnull(strstr(why.data, "not a usable rsa-sha256"));
	/* Not a key at all. */
	ck_assert_int_eq(dkimkey_key_path(&tcfg, "example.com", "bad", &path,
	    NULL), 0);
	ck_assert_ptr_nonnull(fp = fopen(path.data, "w"));
	fputs("-----BEGIN PRIVATE KEY-----\nnot base64\n"
	    "-----END PRIVATE KEY-----\n", fp);
	ck_assert_int_eq(fclose(fp), 0);
	sel_fill(&s, "example.com", "bad", DKIMKEY_ED25519_SHA256);
	ck_assert_ptr_null(smtp_dkim_key(&tcfg, &s, &why));
	ck_assert_ptr_nonnull(strstr(why.data, "not a PEM private key"));
	vbuf_release(&why);
	vbuf_release(&path);
}
END_TEST

START_TEST(test_sign_verify_rotate)
{
	int64_t now = (int64_t)time(NULL);
	unsigned long n0;

	add_key("example.com", "r1", DKIMKEY_RSA_SHA256, now - 100);
	smtp_dkim_init(&tcfg);
	n0 = smtp_dkim_key_loads();
	sign_and_verify("example.com", "r1");
	sign_and_verify("example.com", "r1");
	ck_assert_uint_eq(smtp_dkim_key_loads(), n0 + 1);
	/* Rotation in the same process: the next message takes it up. */
	add_key("example.com", "e2", DKIMKEY_ED25519_SHA256, now - 50);
	sign_and_verify("example.com", "e2");
	ck_assert_uint_eq(smtp_dkim_key_loads(), n0 + 2);
	/* A key not active yet is not used. */
	add_key("example.com", "r3", DKIMKEY_RSA_SHA256, now + 3600);
	sign_and_verify("example.com", "e2");
	ck_assert_uint_eq(smtp_dkim_key_loads(), n0 + 2);
}
END_TEST

static Suite *
smtp_dkim_suite(void)
{
	Suite *s = suite_create("smtp_dkim");
	TCase *tc;

	tc = tcase_create("smtp_dkim");
	tcase_set_timeout(tc, 120);
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_cache_hit);
	tcase_add_test(tc, test_cache_new_selector_and_replaced_file);
	tcase_add_test(tc, test_cache_eviction);
	tcase_add_test(tc, test_cache_refuses);
	tcase_add_test(tc, test_sign_verify_rotate);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(smtp_dkim_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
