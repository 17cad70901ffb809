/*
 * check_dkimkey.c - unit tests for lib/dkimkey: the domain registry in a
 * mkdtemp() queue directory, key files and their modes, signing lookup
 * (parents, rotation at a future time, deletion), PEM round trips through
 * OpenSSL, and the DNS TXT record format.
 */
#include <sys/stat.h>
#include <sys/wait.h>

#include <check.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include "cfg.h"
#include "dkimkey.h"
#include "vbuf.h"

static char tdir[64], qdir[96], kdir[96];
static struct cfg tcfg;

static void	setup(void);
static void	teardown(void);
static void	add_key(const char *, const char *, enum dkimkey_type,
		    int64_t, int);
static int	count_cb(const struct dkimkey_domain *, void *);
static void	check_txt(const char *, size_t);
static Suite	*dkimkey_suite(void);

static void
setup(void)
{
	snprintf(tdir, sizeof(tdir), "/tmp/check_dkimkey.XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(tdir));
	snprintf(qdir, sizeof(qdir), "%s/queue", tdir);
	snprintf(kdir, sizeof(kdir), "%s/dkim", tdir);
	ck_assert_int_eq(mkdir(qdir, 0700), 0);
	memset(&tcfg, 0, sizeof(tcfg));
	tcfg.queue_directory = qdir;
	tcfg.dkim_key_directory = kdir;
	/* As root the key files get this group; root always exists. */
	tcfg.dkim_group = (char *)"root";
}

static void
teardown(void)
{
	char cmd[160];
	pid_t pid;

	/* No system(3): a child runs rm. */
	snprintf(cmd, sizeof(cmd), "%s", tdir);
	if ((pid = fork()) == 0) {
		execlp("rm", "rm", "-rf", cmd, (char *)NULL);
		_exit(127);
	}
	if (pid > 0)
		(void)waitpid(pid, NULL, 0);
}

/* Generates a key, writes its file, registers it. */
static void
add_key(const char *domain, const char *sel, enum dkimkey_type type,
    int64_t active_from, int must_be_new)
{
	struct dkimkey_selector s;
	struct dkimkey_db *db;
	struct vbuf pem, p, why;
	unsigned bits;

	vbuf_init(&pem, 0);
	vbuf_init(&p, 0);
	vbuf_init(&why, 0);
	ck_assert_int_eq(dkimkey_generate(type, &pem, &why), 0);
	memset(&s, 0, sizeof(s));
	ck_assert_int_eq(dkimkey_public(pem.data, pem.len, &p, &s.alg, &bits,
	    &why), 0);
	s.bits = s.alg == DKIMKEY_ED25519_SHA256 ? 0 : bits;
	snprintf(s.name, sizeof(s.name), "%s", sel);
	s.active_from = active_from;
	ck_assert_msg(dkimkey_key_write(&tcfg, domain, sel, pem.data, pem.len,
	    &why) == 0, "%s", why.data);
	db = dkimkey_open(&tcfg, 1, &why);
	ck_assert_msg(db != NULL, "%s", why.data);
	ck_assert_msg(dkimkey_selector_add(db, domain, &s, must_be_new,
	    &why) == 0, "%s", why.data);
	dkimkey_close(db);
	vbuf_wipe(&pem);
	vbuf_release(&pem);
	vbuf_release(&p);
	vbuf_release(&why);
}

static int
count_cb(const struct dkimkey_domain *d, void *arg)
{
	(void)d;
	(*(int *)arg)++;
	return 0;
}

START_TEST(test_names)
{
	char out[256];

	ck_assert_int_eq(dkimkey_domain_norm("Mail.Example.COM", out,
	    sizeof(out)), 0);
	ck_assert_str_eq(out, "mail.example.com");
	ck_assert_int_eq(dkimkey_domain_norm("[192.0.2.1]", out,
	    sizeof(out)), -1);
	ck_assert_int_eq(dkimkey_domain_norm("com", out, sizeof(out)), -1);
	ck_assert_int_eq(dkimkey_domain_norm("a..b", out, sizeof(out)), -1);
	ck_assert_int_eq(dkimkey_domain_norm("../etc", out, sizeof(out)), -1);
	ck_assert_int_eq(dkimkey_domain_norm("a/b.com", out, sizeof(out)),
	    -1);
	ck_assert_int_eq(dkimkey_domain_norm("", out, sizeof(out)), -1);
	ck_assert_int_eq(dkimkey_selector_ok("s2026q4"), 1);
	ck_assert_int_eq(dkimkey_selector_ok("a.b-c"), 1);
	ck_assert_int_eq(dkimkey_selector_ok(".."), 0);
	ck_assert_int_eq(dkimkey_selector_ok("a/b"), 0);
	ck_assert_int_eq(dkimkey_selector_ok("S1"), 0);
	ck_assert_int_eq(dkimkey_selector_ok(""), 0);
	ck_assert_int_eq(dkimkey_selector_ok("-a"), 0);
}
END_TEST

START_TEST(test_add_lookup_parent)
{
	struct dkimkey_signing ks;
	struct dkimkey_db *db;
	struct vbuf why;
	char found[256];
	int n = 0;

	vbuf_init(&why, 0);
	/* Nothing registered yet: the environment does not exist. */
	ck_assert_int_eq(dkimkey_signing_lookup(&tcfg, "example.com", 1000,
	    &ks, &why), 0);
	add_key("example.com", "s1", DKIMKEY_TYPE_RSA2048, 100, 1);
	add_key("sub.example.com", "e1", DKIMKEY_TYPE_ED25519, 100, 1);

	ck_assert_int_eq(dkimkey_signing_lookup(&tcfg, "EXAMPLE.com", 1000,
	    &ks, &why), 1);
	ck_assert_str_eq(ks.domain, "example.com");
	ck_assert_str_eq(ks.selector, "s1");
	ck_assert_int_eq(ks.alg, DKIMKEY_RSA_SHA256);
	ck_assert_ptr_nonnull(strstr(ks.pem, "BEGIN PRIVATE KEY"));
	ck_assert_uint_eq(strlen(ks.pem), ks.pem_len);
	dkimkey_signing_free(&ks);
	ck_assert_ptr_null(ks.pem);

	/* Parents: a.b.example.com -> b.example.com -> example.com. */
	ck_assert_int_eq(dkimkey_signing_lookup(&tcfg, "a.b.example.com",
	    1000, &ks, &why), 1);
	ck_assert_str_eq(ks.domain, "example.com");
	dkimkey_signing_free(&ks);
	/* The closest registered domain wins. */
	ck_assert_int_eq(dkimkey_signing_lookup(&tcfg, "x.sub.example.com",
	    1000, &ks, &why), 1);
	ck_assert_str_eq(ks.domain, "sub.example.com");
	ck_assert_str_eq(ks.selector, "e1");
	ck_assert_int_eq(ks.alg, DKIMKEY_ED25519_SHA256);
	dkimkey_signing_free(&ks);

	ck_assert_int_eq(dkimkey_signing_lookup(&tcfg, "example.org", 1000,
	    &ks, &why), 0);
	ck_assert_int_eq(dkimkey_signing_lookup(&tcfg, "notexample.com", 1000,
	    &ks, &why), 0);
	ck_assert_int_eq(dkimkey_signing_lookup(&tcfg, "[192.0.2.1]", 1000,
	    &ks, &why), 0);
	/* Before the key's activation time nothing signs. */
	ck_assert_int_eq(dkimkey_signing_lookup(&tcfg, "example.com", 50,
	    &ks, &why), 0);

	db = dkimkey_open(&tcfg, 0, &why);
	ck_assert_ptr_nonnull(db);
	ck_assert_int_eq(dkimkey_domain_covered(db, "A.Example.Com", found,
	    sizeof(found), &why), 1);
	ck_assert_str_eq(found, "example.com");
	ck_assert_int_eq(dkimkey_domain_covered(db, "example.net", NULL, 0,
	    &why), 0);
	ck_assert_int_eq(dkimkey_domain_walk(db, count_cb, &n, &why), 0);
	ck_assert_int_eq(n, 2);
	dkimkey_close(db);

	/* A second add of the domain is refused; a selector twice too. */
	db = dkimkey_open(&tcfg, 1, &why);
	ck_assert_ptr_nonnull(db);
	{
		struct dkimkey_selector s;

		memset(&s, 0, sizeof(s));
		snprintf(s.name, sizeof(s.name), "s2");
		s.alg = DKIMKEY_RSA_SHA256;
		s.bits = 2048;
		ck_assert_int_eq(dkimkey_selector_add(db, "example.com", &s, 1,
		    &why), -1);
		ck_assert_ptr_nonnull(strstr(why.data, "already"));
		snprintf(s.name, sizeof(s.name), "s1");
		ck_assert_int_eq(dkimkey_selector_add(db, "example.com", &s, 0,
		    &why), -1);
	}
	dkimkey_close(db);
	vbuf_release(&why);
}
END_TEST

START_TEST(test_rotation_at)
{
	struct dkimkey_signing ks;
	struct dkimkey_domain d;
	struct dkimkey_db *db;
	struct vbuf why;

	vbuf_init(&why, 0);
	add_key("example.com", "old", DKIMKEY_TYPE_RSA2048, 100, 1);
	/* rotate --at 5000: the old key signs until then. */
	add_key("example.com", "new", DKIMKEY_TYPE_ED25519, 5000, 0);
	ck_assert_int_eq(dkimkey_signing_lookup(&tcfg, "example.com", 4999,
	    &ks, &why), 1);
	ck_assert_str_eq(ks.selector, "old");
	ck_assert_int_eq(ks.alg, DKIMKEY_RSA_SHA256);
	dkimkey_signing_free(&ks);
	ck_assert_int_eq(dkimkey_signing_lookup(&tcfg, "example.com", 5000,
	    &ks, &why), 1);
	ck_assert_str_eq(ks.selector, "new");
	ck_assert_int_eq(ks.alg, DKIMKEY_ED25519_SHA256);
	dkimkey_signing_free(&ks);

	db = dkimkey_open(&tcfg, 1, &why);
	ck_assert_ptr_nonnull(db);
	ck_assert_int_eq(dkimkey_domain_get(db, "example.com", &d, &why), 1);
	ck_assert_uint_eq(d.nsels, 2);
	ck_assert_str_eq(d.sels[0].name, "old");
	ck_assert_uint_eq(d.sels[0].bits, 2048);
	ck_assert_int_eq(d.sels[1].active_from, 5000);
	ck_assert_int_eq(dkimkey_active(&d, 4999), 0);
	ck_assert_int_eq(dkimkey_active(&d, 6000), 1);
	dkimkey_domain_release(&d);

	/* Delete the old selector, then the domain. */
	ck_assert_int_eq(dkimkey_selector_del(db, "example.com", "old", &why),
	    1);
	ck_assert_int_eq(dkimkey_key_remove(&tcfg, "example.com", "old", &why),
	    0);
	ck_assert_int_eq(dkimkey_key_exists(&tcfg, "example.com", "old", &why),
	    0);
	ck_assert_int_eq(dkimkey_selector_del(db, "example.com", "old", &why),
	    0);
	dkimkey_close(db);
	ck_assert_int_eq(dkimkey_signing_lookup(&tcfg, "example.com", 4999,
	    &ks, &why), 0);
	ck_assert_int_eq(dkimkey_signing_lookup(&tcfg, "example.com", 6000,
	    &ks, &why), 1);
	dkimkey_signing_free(&ks);

	db = dkimkey_open(&tcfg, 1, &why);
	ck_assert_ptr_nonnull(db);
	ck_assert_int_eq(dkimkey_selector_del(db, "example.com", NULL, &why),
	    1);
	ck_assert_int_eq(dkimkey_selector_del(db, "example.com", NULL, &why),
	    0);
	ck_assert_str_eq(why.data, "no such domain example.com");
	dkimkey_close(db);
	ck_assert_int_eq(dkimkey_key_remove(&tcfg, "example.com", NULL, &why),
	    0);
	ck_assert_int_eq(dkimkey_key_exists(&tcfg, "example.com", "new", &why),
	    0);
	ck_assert_int_eq(dkimkey_signing_lookup(&tcfg, "example.com", 6000,
	    &ks, &why), 0);
	vbuf_release(&why);
}
END_TEST

START_TEST(test_key_files)
{
	char path[256];
	struct stat st;
	struct vbuf pem, why;
	int root = geteuid() == 0;

	vbuf_init(&pem, 0);
	vbuf_init(&why, 0);
	add_key("example.com", "s1", DKIMKEY_TYPE_RSA2048, 0, 1);
	snprintf(path, sizeof(path), "%s/example.com/s1.pem", kdir);
	ck_assert_int_eq(stat(path, &st), 0);
	ck_assert_int_eq(st.st_mode & 07777, root ? 0640 : 0600);
	ck_assert_int_eq(st.st_uid, geteuid());
	snprintf(path, sizeof(path), "%s/example.com", kdir);
	ck_assert_int_eq(stat(path, &st), 0);
	ck_assert_int_eq(st.st_mode & 07777, root ? 0750 : 0700);
	ck_assert_int_eq(stat(kdir, &st), 0);
	ck_assert_int_eq(st.st_mode & 07777, root ? 0750 : 0700);
	/* No temporary file is left behind; an existing key is kept. */
	snprintf(path, sizeof(path), "%s/example.com/s1.pem.tmp%ld", kdir,
	    (long)getpid());
	ck_assert_int_eq(access(path, F_OK), -1);
	ck_assert_int_eq(dkimkey_key_write(&tcfg, "example.com", "s1", "x", 1,
	    &why), -1);
	ck_assert_int_eq(dkimkey_key_read(&tcfg, "example.com", "s1", &pem,
	    &why), 0);
	ck_assert_ptr_nonnull(strstr(pem.data, "BEGIN PRIVATE KEY"));
	/* Path components are validated. */
	ck_assert_int_eq(dkimkey_key_write(&tcfg, "../x.com", "s1", "x", 1,
	    &why), -1);
	ck_assert_int_eq(dkimkey_key_write(&tcfg, "x.com", "../s", "x", 1,
	    &why), -1);
	ck_assert_int_eq(dkimkey_key_read(&tcfg, "example.com", "nokey", &pem,
	    &why), -1);
	if (root) {
		tcfg.dkim_group = (char *)"no-such-group-petrel";
		ck_assert_int_eq(dkimkey_key_write(&tcfg, "example.com", "s9",
		    "x", 1, &why), -1);
		ck_assert_ptr_nonnull(strstr(why.data, "groupadd"));
	}
	vbuf_wipe(&pem);
	vbuf_release(&pem);
	vbuf_release(&why);
}
END_TEST

START_TEST(test_pem_roundtrip)
{
	static const enum dkimkey_type types[] = {
		DKIMKEY_TYPE_RSA2048, DKIMKEY_TYPE_RSA3072,
		DKIMKEY_TYPE_ED25519,
	};
	unsigned char raw[64], der[1024];
	const unsigned char *dp;
	struct vbuf pem, p, why;
	enum dkimkey_alg alg;
	EVP_PKEY *pkey, *pub;
	unsigned bits;
	size_t rawlen;
	BIO *bio;
	int n, i;

	vbuf_init(&pem, 0);
	vbuf_init(&p, 0);
	vbuf_init(&why, 0);
	for (i = 0; i < 3; i++) {
		ck_assert_int_eq(dkimkey_generate(types[i], &pem, &why), 0);
		ck_assert_ptr_nonnull(strstr(pem.data,
		    "-----BEGIN PRIVATE KEY-----"));
		bio = BIO_new_mem_buf(pem.data, (int)pem.len);
		pkey = PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL);
		BIO_free(bio);
		ck_assert_ptr_nonnull(pkey);
		ck_assert_int_eq(dkimkey_public(pem.data, pem.len, &p, &alg,
		    &bits, &why), 0);
		n = EVP_DecodeBlock(der, (const unsigned char *)p.data,
		    (int)p.len);
		ck_assert_int_gt(n, 0);
		if (types[i] == DKIMKEY_TYPE_ED25519) {
			ck_assert_int_eq(EVP_PKEY_get_base_id(pkey),
			    EVP_PKEY_ED25519);
			ck_assert_int_eq(alg, DKIMKEY_ED25519_SHA256);
			/* RFC 8463: p= is the raw 32-byte key, not SPKI. */
			ck_assert_uint_eq(p.len, 44);
			ck_assert_int_eq(n, 33);	/* 32 + padding byte */
			rawlen = sizeof(raw);
			ck_assert_int_eq(EVP_PKEY_get_raw_public_key(pkey, raw,
			    &rawlen), 1);
			ck_assert_uint_eq(rawlen, 32);
			ck_assert_int_eq(memcmp(raw, der, 32), 0);
		} else {
			ck_assert_int_eq(alg, DKIMKEY_RSA_SHA256);
			ck_assert_uint_eq(bits, types[i] ==
			    DKIMKEY_TYPE_RSA3072 ? 3072 : 2048);
			/* p= is a DER SubjectPublicKeyInfo of the key. */
			dp = der;
			pub = d2i_PUBKEY(NULL, &dp, n);
			ck_assert_ptr_nonnull(pub);
			ck_assert_int_eq(EVP_PKEY_eq(pub, pkey), 1);
			EVP_PKEY_free(pub);
		}
		EVP_PKEY_free(pkey);
	}
	ck_assert_int_eq(dkimkey_public("junk", 4, &p, NULL, NULL, &why), -1);
	vbuf_wipe(&pem);
	vbuf_release(&pem);
	vbuf_release(&p);
	vbuf_release(&why);
}
END_TEST

/* Checks that out holds quoted strings of <= 255 bytes joining to want. */
static void
check_txt(const char *out, size_t want_len)
{
	const char *s = out, *q;
	size_t total = 0, n;

	while ((s = strchr(s, '"')) != NULL) {
		q = strchr(s + 1, '"');
		ck_assert_ptr_nonnull(q);
		n = (size_t)(q - s - 1);
		ck_assert_uint_le(n, 255);
		ck_assert_uint_gt(n, 0);
		total += n;
		s = q + 1;
	}
	ck_assert_uint_eq(total, want_len);
}

START_TEST(test_txt)
{
	char big[700];
	struct vbuf out, pem, p, why, full;

	vbuf_init(&out, 0);
	vbuf_init(&pem, 0);
	vbuf_init(&p, 0);
	vbuf_init(&why, 0);
	vbuf_init(&full, 0);
	memset(big, 'A', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	dkimkey_txt_quote(big, " ", &out);
	check_txt(out.data, 699);
	ck_assert_int_eq(strncmp(out.data + out.len - 1 - 189 - 3, "\" \"", 3),
	    0);
	vbuf_reset(&out);
	dkimkey_txt_quote("short", " ", &out);
	ck_assert_str_eq(out.data, "\"short\"");

	ck_assert_int_eq(dkimkey_generate(DKIMKEY_TYPE_RSA3072, &pem, &why),
	    0);
	ck_assert_int_eq(dkimkey_public(pem.data, pem.len, &p, NULL, NULL,
	    &why), 0);
	vbuf_reset(&out);
	dkimkey_txt_record(DKIMKEY_RSA_SHA256, p.data, "\n\t", &out);
	ck_assert_int_eq(strncmp(out.data, "\"v=DKIM1; k=rsa; \"\n\t\"p=",
	    23), 0);
	vbuf_setf(&full, "v=DKIM1; k=rsa; p=%s", p.data);
	check_txt(out.data, full.len);
	ck_assert_uint_gt(full.len, 255);

	vbuf_reset(&out);
	dkimkey_txt_record(DKIMKEY_ED25519_SHA256, "AAAA", " ", &out);
	ck_assert_str_eq(out.data, "\"v=DKIM1; k=ed25519; \" \"p=AAAA\"");
	vbuf_wipe(&pem);
	vbuf_release(&pem);
	vbuf_release(&out);
	vbuf_release(&p);
	vbuf_release(&why);
	vbuf_release(&full);
}
END_TEST

START_TEST(test_readonly_missing)
{
	struct dkimkey_domain d;
	struct dkimkey_db *db;
	struct vbuf why;
	int n = 0;

	vbuf_init(&why, 0);
	db = dkimkey_open(&tcfg, 0, &why);
	ck_assert_ptr_nonnull(db);
	ck_assert_int_eq(dkimkey_domain_get(db, "example.com", &d, &why), 0);
	ck_assert_int_eq(dkimkey_domain_walk(db, count_cb, &n, &why), 0);
	ck_assert_int_eq(n, 0);
	/* Added later through another handle: seen by the same handle. */
	add_key("example.com", "s1", DKIMKEY_TYPE_ED25519, 0, 1);
	ck_assert_int_eq(dkimkey_domain_get(db, "example.com", &d, &why), 1);
	dkimkey_domain_release(&d);
	dkimkey_close(db);
	vbuf_release(&why);
}
END_TEST

static Suite *
dkimkey_suite(void)
{
	Suite *s = suite_create("dkimkey");
	TCase *tc;

	tc = tcase_create("dkimkey");
	tcase_set_timeout(tc, 120);
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_names);
	tcase_add_test(tc, test_add_lookup_parent);
	tcase_add_test(tc, test_rotation_at);
	tcase_add_test(tc, test_key_files);
	tcase_add_test(tc, test_pem_roundtrip);
	tcase_add_test(tc, test_txt);
	tcase_add_test(tc, test_readonly_missing);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(dkimkey_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
