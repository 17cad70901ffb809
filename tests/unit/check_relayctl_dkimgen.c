/*
 * check_relayctl_dkimgen.c - unit tests for relayctl_dkimgen.c, the DKIM
 * key tooling of "relayctl domain": key pairs and their PEM through
 * OpenSSL, the p= value, TXT record quoting, and key files written,
 * tested and removed in a mkdtemp() directory with the modes relayctl
 * gives them. Linked with build/librelayctl.a.
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

/* relayctl's private header, by path: tests build with -Ilib only. */
#include "relayctl.h"

static char tdir[64], qdir[96], kdir[96];
static struct cfg tcfg;

static void	setup(void);
static void	teardown(void);
static void	add_key(const char *, const char *, enum relayctl_dkim_type,
		    int64_t, int);
static void	check_txt(const char *, size_t);
static Suite	*relayctl_dkimgen_suite(void);

static void
setup(void)
{
	snprintf(tdir, sizeof(tdir), "/tmp/check_dkimgen.XXXXXX");
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
add_key(const char *domain, const char *sel, enum relayctl_dkim_type type,
    int64_t active_from, int must_be_new)
{
	struct dkimkey_selector s;
	struct dkimkey_db *db;
	struct vbuf pem, p, why;
	unsigned bits;

	vbuf_init(&pem, 0);
	vbuf_init(&p, 0);
	vbuf_init(&why, 0);
	ck_assert_int_eq(relayctl_dkim_generate(type, &pem, &why), 0);
	memset(&s, 0, sizeof(s));
	ck_assert_int_eq(relayctl_dkim_public(pem.data, pem.len, &p, &s.alg,
	    &bits, &why), 0);
	s.bits = s.alg == DKIMKEY_ED25519_SHA256 ? 0 : bits;
	snprintf(s.name, sizeof(s.name), "%s", sel);
	s.active_from = active_from;
	ck_assert_msg(relayctl_dkim_key_write(&tcfg, domain, sel, pem.data,
	    pem.len, &why) == 0, "%s", why.data);
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

START_TEST(test_key_files)
{
	char path[256];
	struct stat st;
	struct vbuf pem, why;
	int root = geteuid() == 0;

	vbuf_init(&pem, 0);
	vbuf_init(&why, 0);
	add_key("example.com", "s1", RELAYCTL_DKIM_RSA2048, 0, 1);
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
	ck_assert_int_eq(relayctl_dkim_key_write(&tcfg, "example.com", "s1",
	    "x", 1, &why), -1);
	ck_assert_int_eq(dkimkey_key_read(&tcfg, "example.com", "s1", &pem,
	    &why), 0);
	ck_assert_ptr_nonnull(strstr(pem.data, "BEGIN PRIVATE KEY"));
	/* Path components are validated. */
	ck_assert_int_eq(relayctl_dkim_key_write(&tcfg, "../x.com", "s1", "x",
	    1, &why), -1);
	ck_assert_int_eq(relayctl_dkim_key_write(&tcfg, "x.com", "../s", "x", 1,
	    &why), -1);
	ck_assert_int_eq(dkimkey_key_read(&tcfg, "example.com", "nokey", &pem,
	    &why), -1);
	if (root) {
		tcfg.dkim_group = (char *)"no-such-group-petrel";
		ck_assert_int_eq(relayctl_dkim_key_write(&tcfg, "example.com",
		    "s9", "x", 1, &why), -1);
		ck_assert_ptr_nonnull(strstr(why.data, "groupadd"));
	}
	vbuf_wipe(&pem);
	vbuf_release(&pem);
	vbuf_release(&why);
}
END_TEST

START_TEST(test_pem_roundtrip)
{
	static const enum relayctl_dkim_type types[] = {
		RELAYCTL_DKIM_RSA2048, RELAYCTL_DKIM_RSA3072,
		RELAYCTL_DKIM_ED25519,
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
		ck_assert_int_eq(relayctl_dkim_generate(types[i], &pem,
		    &why), 0);
		ck_assert_ptr_nonnull(strstr(pem.data,
		    "-----BEGIN PRIVATE KEY-----"));
		bio = BIO_new_mem_buf(pem.data, (int)pem.len);
		pkey = PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL);
		BIO_free(bio);
		ck_assert_ptr_nonnull(pkey);
		ck_assert_int_eq(relayctl_dkim_public(pem.data, pem.len, &p,
		    &alg, &bits, &why), 0);
		n = EVP_DecodeBlock(der, (const unsigned char *)p.data,
		    (int)p.len);
		ck_assert_int_gt(n, 0);
		if (types[i] == RELAYCTL_DKIM_ED25519) {
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
			    RELAYCTL_DKIM_RSA3072 ? 3072 : 2048);
			/* p= is a DER SubjectPublicKeyInfo of the key. */
			dp = der;
			pub = d2i_PUBKEY(NULL, &dp, n);
			ck_assert_ptr_nonnull(pub);
			ck_assert_int_eq(EVP_PKEY_eq(pub, pkey), 1);
			EVP_PKEY_free(pub);
		}
		EVP_PKEY_free(pkey);
	}
	ck_assert_int_eq(relayctl_dkim_public("junk", 4, &p, NULL, NULL,
	    &why), -1);
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
	relayctl_dkim_txt_quote(big, " ", &out);
	check_txt(out.data, 699);
	ck_assert_int_eq(strncmp(out.data + out.len - 1 - 189 - 3, "\" \"", 3),
	    0);
	vbuf_reset(&out);
	relayctl_dkim_txt_quote("short", " ", &out);
	ck_assert_str_eq(out.data, "\"short\"");

	ck_assert_int_eq(relayctl_dkim_generate(RELAYCTL_DKIM_RSA3072, &pem,
	    &why), 0);
	ck_assert_int_eq(relayctl_dkim_public(pem.data, pem.len, &p, NULL, NULL,
	    &why), 0);
	vbuf_reset(&out);
	relayctl_dkim_txt_record(DKIMKEY_RSA_SHA256, p.data, "\n\t", &out);
	ck_assert_int_eq(strncmp(out.data, "\"v=DKIM1; k=rsa; \"\n\t\"p=",
	    23), 0);
	vbuf_setf(&full, "v=DKIM1; k=rsa; p=%s", p.data);
	check_txt(out.data, full.len);
	ck_assert_uint_gt(full.len, 255);

	vbuf_reset(&out);
	relayctl_dkim_txt_record(DKIMKEY_ED25519_SHA256, "AAAA", " ", &out);
	ck_assert_str_eq(out.data, "\"v=DKIM1; k=ed25519; \" \"p=AAAA\"");
	vbuf_wipe(&pem);
	vbuf_release(&pem);
	vbuf_release(&out);
	vbuf_release(&p);
	vbuf_release(&why);
	vbuf_release(&full);
}
END_TEST

START_TEST(test_key_remove)
{
	struct vbuf why;

	vbuf_init(&why, 0);
	add_key("example.com", "old", RELAYCTL_DKIM_ED25519, 0, 1);
	add_key("example.com", "new", RELAYCTL_DKIM_ED25519, 0, 0);
	ck_assert_int_eq(relayctl_dkim_key_exists(&tcfg, "example.com", "old",
	    &why), 1);
	ck_assert_int_eq(relayctl_dkim_key_remove(&tcfg, "example.com", "old",
	    &why), 0);
	ck_assert_int_eq(relayctl_dkim_key_exists(&tcfg, "example.com", "old",
	    &why), 0);
	/* Removing a missing file is not an error. */
	ck_assert_int_eq(relayctl_dkim_key_remove(&tcfg, "example.com", "old",
	    &why), 0);
	ck_assert_int_eq(relayctl_dkim_key_exists(&tcfg, "example.com", "new",
	    &why), 1);
	ck_assert_int_eq(relayctl_dkim_key_exists(&tcfg, "../x.com", "new",
	    &why), -1);
	/* The whole domain: its files and directory. */
	ck_assert_int_eq(relayctl_dkim_key_remove(&tcfg, "example.com", NULL,
	    &why), 0);
	ck_assert_int_eq(relayctl_dkim_key_exists(&tcfg, "example.com", "new",
	    &why), 0);
	ck_assert_int_eq(relayctl_dkim_key_exists(&tcfg, "example.com", NULL,
	    &why), 0);
	ck_assert_int_eq(relayctl_dkim_key_remove(&tcfg, "example.com", NULL,
	    &why), 0);
	vbuf_release(&why);
}
END_TEST

static Suite *
relayctl_dkimgen_suite(void)
{
	Suite *s = suite_create("relayctl_dkimgen");
	TCase *tc;

	tc = tcase_create("dkimgen");
	tcase_set_timeout(tc, 120);
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_key_files);
	tcase_add_test(tc, test_pem_roundtrip);
	tcase_add_test(tc, test_txt);
	tcase_add_test(tc, test_key_remove);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(relayctl_dkimgen_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
