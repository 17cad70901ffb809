/*
 * check_dkimkey.c - unit tests for lib/dkimkey: the domain registry in a
 * mkdtemp() queue directory and its record codec, key paths and reading,
 * signing lookup (parents, rotation at a future time, deletion), the
 * selector choice without the key and key files' identity. Key
 * generation, the DNS TXT record and key-file writing are relayctl's,
 * tested in check_relayctl_dkimgen.c.
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

#include "attr.h"
#include "cfg.h"
#include "dkimkey.h"
#include "vbuf.h"

static char tdir[64], qdir[96], kdir[96];
static struct cfg tcfg;

static void	setup(void);
static void	teardown(void);
static void	write_key(const char *, const char *, enum dkimkey_alg);
static void	add_key(const char *, const char *, enum dkimkey_alg,
		    int64_t, int);
static int	key_file_exists(const char *, const char *);
static int	count_cb(const struct dkimkey_domain *, void *);
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

/*
 * Writes a fresh key file for domain and sel, as relayctl would (the
 * tooling itself is relayctl's and tested in check_relayctl_dkimgen.c).
 */
static void
write_key(const char *domain, const char *sel, enum dkimkey_alg alg)
{
	struct vbuf path;
	EVP_PKEY *pkey;
	FILE *fp;

	vbuf_init(&path, 0);
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
	ck_assert_ptr_nonnull(fp = fopen(path.data, "wx"));
	ck_assert_int_eq(PEM_write_PKCS8PrivateKey(fp, pkey, NULL, NULL, 0,
	    NULL, NULL), 1);
	ck_assert_int_eq(fclose(fp), 0);
	EVP_PKEY_free(pkey);
	vbuf_release(&path);
}

/* Writes a key file and registers its selector. */
static void
add_key(const char *domain, const char *sel, enum dkimkey_alg alg,
    int64_t active_from, int must_be_new)
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
	s.active_from = active_from;
	db = dkimkey_open(&tcfg, 1, &why);
	ck_assert_msg(db != NULL, "%s", why.data);
	ck_assert_msg(dkimkey_selector_add(db, domain, &s, must_be_new,
	    &why) == 0, "%s", why.data);
	dkimkey_close(db);
	vbuf_release(&why);
}

/* 1 if the key file of domain and sel exists. */
static int
key_file_exists(const char *domain, const char *sel)
{
	struct vbuf path;
	int rc;

	vbuf_init(&path, 0);
	ck_assert_int_eq(dkimkey_key_path(&tcfg, domain, sel, &path, NULL), 0);
	rc = access(path.data, F_OK) == 0;
	vbuf_release(&path);
	return rc;
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
	add_key("example.com", "s1", DKIMKEY_RSA_SHA256, 100, 1);
	add_key("sub.example.com", "e1", DKIMKEY_ED25519_SHA256, 100, 1);

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
	add_key("example.com", "old", DKIMKEY_RSA_SHA256, 100, 1);
	/* rotate --at 5000: the old key signs until then. */
	add_key("example.com", "new", DKIMKEY_ED25519_SHA256, 5000, 0);
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
	ck_assert_int_eq(key_file_exists("example.com", "old"), 1);
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
	/* Key files are relayctl's to remove; the registry is gone. */
	ck_assert_int_eq(key_file_exists("example.com", "new"), 1);
	ck_assert_int_eq(dkimkey_signing_lookup(&tcfg, "example.com", 6000,
	    &ks, &why), 0);
	vbuf_release(&why);
}
END_TEST

START_TEST(test_key_paths)
{
	struct vbuf path, pem, why;

	vbuf_init(&path, 0);
	vbuf_init(&pem, 0);
	vbuf_init(&why, 0);
	ck_assert_int_eq(dkimkey_key_path(&tcfg, NULL, NULL, &path, &why), 0);
	ck_assert_str_eq(path.data, kdir);
	ck_assert_int_eq(dkimkey_key_path(&tcfg, "example.com", "s1", &path,
	    &why), 0);
	ck_assert_ptr_nonnull(strstr(path.data, "/dkim/example.com/s1.pem"));
	/* Path components are validated: normalised domain, selector. */
	ck_assert_int_eq(dkimkey_key_path(&tcfg, "../x.com", "s1", &path,
	    &why), -1);
	ck_assert_int_eq(dkimkey_key_path(&tcfg, "Example.com", "s1", &path,
	    &why), -1);
	ck_assert_int_eq(dkimkey_key_path(&tcfg, "x.com", "../s", &path,
	    &why), -1);
	ck_assert_str_eq(why.data, "invalid domain or selector");

	write_key("example.com", "s1", DKIMKEY_ED25519_SHA256);
	ck_assert_int_eq(dkimkey_key_read(&tcfg, "example.com", "s1", &pem,
	    &why), 0);
	ck_assert_ptr_nonnull(strstr(pem.data, "BEGIN PRIVATE KEY"));
	ck_assert_int_eq(dkimkey_key_read(&tcfg, "example.com", "nokey", &pem,
	    &why), -1);
	ck_assert_int_eq(dkimkey_key_read(&tcfg, "../x.com", "s1", &pem,
	    &why), -1);
	tcfg.dkim_key_directory = NULL;
	ck_assert_int_eq(dkimkey_key_path(&tcfg, NULL, NULL, &path, &why), -1);
	ck_assert_str_eq(why.data, "dkim.key_directory is not set");
	vbuf_wipe(&pem);
	vbuf_release(&pem);
	vbuf_release(&path);
	vbuf_release(&why);
}
END_TEST

/* The record codec that the registry and relayctl's owner pipe share. */
START_TEST(test_domain_codec)
{
	struct dkimkey_selector sels[2];
	struct dkimkey_domain d, out;
	struct vbuf rec, why;

	vbuf_init(&rec, 0);
	vbuf_init(&why, 0);
	memset(&d, 0, sizeof(d));
	memset(sels, 0, sizeof(sels));
	snprintf(d.name, sizeof(d.name), "example.com");
	d.created = 1700000000;
	snprintf(sels[0].name, sizeof(sels[0].name), "s1");
	sels[0].alg = DKIMKEY_RSA_SHA256;
	sels[0].bits = 3072;
	sels[0].active_from = 1700000000;
	snprintf(sels[1].name, sizeof(sels[1].name), "e.2");
	sels[1].alg = DKIMKEY_ED25519_SHA256;
	sels[1].active_from = 1800000000;
	d.sels = sels;
	d.nsels = 2;
	dkimkey_domain_encode(&d, &rec);
	ck_assert_int_eq(dkimkey_domain_decode("example.com", rec.data,
	    rec.len, &out, &why), 0);
	ck_assert_str_eq(out.name, "example.com");
	ck_assert_int_eq(out.created, 1700000000);
	ck_assert_uint_eq(out.nsels, 2);
	ck_assert_str_eq(out.sels[0].name, "s1");
	ck_assert_int_eq(out.sels[0].alg, DKIMKEY_RSA_SHA256);
	ck_assert_uint_eq(out.sels[0].bits, 3072);
	ck_assert_int_eq(out.sels[0].active_from, 1700000000);
	ck_assert_str_eq(out.sels[1].name, "e.2");
	ck_assert_int_eq(out.sels[1].alg, DKIMKEY_ED25519_SHA256);
	ck_assert_uint_eq(out.sels[1].bits, 0);
	ck_assert_int_eq(out.sels[1].active_from, 1800000000);
	dkimkey_domain_release(&out);

	/* Cut short, or with a trailing byte: corrupt, out released. */
	ck_assert_int_eq(dkimkey_domain_decode("example.com", rec.data,
	    rec.len - 1, &out, &why), -1);
	ck_assert_ptr_null(out.sels);
	ck_assert_ptr_nonnull(strstr(why.data, "corrupt record"));
	(void)vbuf_addc(&rec, 'x');
	ck_assert_int_eq(dkimkey_domain_decode("example.com", rec.data,
	    rec.len, &out, &why), -1);
	/* A selector group without its algorithm. */
	vbuf_reset(&rec);
	attr_put_int(&rec, DKIMKEY_ATTR_CREATED, 1);
	attr_put_str(&rec, DKIMKEY_ATTR_SELECTOR, "s1");
	attr_put_int(&rec, DKIMKEY_ATTR_ACTIVE, 1);
	attr_end(&rec);
	ck_assert_int_eq(dkimkey_domain_decode("example.com", rec.data,
	    rec.len, &out, &why), -1);
	ck_assert_ptr_nonnull(strstr(why.data, "selector group"));
	/* No selectors at all: a registered domain without keys. */
	vbuf_reset(&rec);
	attr_put_int(&rec, DKIMKEY_ATTR_CREATED, 5);
	attr_end(&rec);
	ck_assert_int_eq(dkimkey_domain_decode("example.com", rec.data,
	    rec.len, &out, &why), 0);
	ck_assert_uint_eq(out.nsels, 0);
	ck_assert_int_eq(out.created, 5);
	dkimkey_domain_release(&out);
	vbuf_release(&rec);
	vbuf_release(&why);
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
	add_key("example.com", "s1", DKIMKEY_ED25519_SHA256, 0, 1);
	ck_assert_int_eq(dkimkey_domain_get(db, "example.com", &d, &why), 1);
	dkimkey_domain_release(&d);
	dkimkey_close(db);
	vbuf_release(&why);
}
END_TEST

START_TEST(test_select_and_stat)
{
	struct dkimkey_signing ks;
	struct dkimkey_key_id id1, id2, id3;
	struct dkimkey_db *db;
	struct vbuf why, path;

	vbuf_init(&why, 0);
	vbuf_init(&path, 0);
	add_key("example.com", "s1", DKIMKEY_RSA_SHA256, 100, 1);
	add_key("example.com", "e2", DKIMKEY_ED25519_SHA256, 500, 0);
	db = dkimkey_open(&tcfg, 0, &why);
	ck_assert_ptr_nonnull(db);
	/* The same choice as dkimkey_signing_find, without the key. */
	ck_assert_int_eq(dkimkey_signing_select(db, "Mail.Example.com", 200,
	    &ks, &why), 1);
	ck_assert_str_eq(ks.domain, "example.com");
	ck_assert_str_eq(ks.selector, "s1");
	ck_assert_int_eq(ks.alg, DKIMKEY_RSA_SHA256);
	ck_assert_ptr_null(ks.pem);
	ck_assert_int_eq(dkimkey_signing_select(db, "example.com", 600, &ks,
	    &why), 1);
	ck_assert_str_eq(ks.selector, "e2");
	ck_assert_int_eq(ks.alg, DKIMKEY_ED25519_SHA256);
	ck_assert_int_eq(dkimkey_signing_select(db, "example.com", 50, &ks,
	    &why), 0);
	ck_assert_int_eq(dkimkey_signing_select(db, "example.org", 600, &ks,
	    &why), 0);
	dkimkey_close(db);

	/* A file's identity: stable, and changed by a rewrite. */
	ck_assert_int_eq(dkimkey_key_stat(&tcfg, "example.com", "s1", &id1,
	    &why), 0);
	ck_assert_int_eq(dkimkey_key_stat(&tcfg, "example.com", "s1", &id2,
	    &why), 0);
	ck_assert_int_eq(dkimkey_key_id_eq(&id1, &id2), 1);
	ck_assert_int_eq(dkimkey_key_path(&tcfg, "example.com", "s1", &path,
	    NULL), 0);
	ck_assert_int_eq(unlink(path.data), 0);
	write_key("example.com", "s1", DKIMKEY_RSA_SHA256);
	ck_assert_int_eq(dkimkey_key_stat(&tcfg, "example.com", "s1", &id3,
	    &why), 0);
	ck_assert_int_eq(dkimkey_key_id_eq(&id1, &id3), 0);
	ck_assert_int_eq(dkimkey_key_stat(&tcfg, "example.com", "none", &id3,
	    &why), -1);
	ck_assert_ptr_nonnull(strstr(why.data, "none.pem"));
	ck_assert_int_eq(dkimkey_key_stat(&tcfg, "../x.com", "s1", &id3,
	    &why), -1);
	/* A link is refused, as dkimkey_key_read refuses it. */
	ck_assert_int_eq(unlink(path.data), 0);
	ck_assert_int_eq(symlink("/etc/passwd", path.data), 0);
	ck_assert_int_eq(dkimkey_key_stat(&tcfg, "example.com", "s1", &id3,
	    &why), -1);
	vbuf_release(&path);
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
	tcase_add_test(tc, test_key_paths);
	tcase_add_test(tc, test_domain_codec);
	tcase_add_test(tc, test_readonly_missing);
	tcase_add_test(tc, test_select_and_stat);
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
