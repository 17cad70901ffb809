/*
 * check_yamlfile.c - unit tests for lib/yamlfile: one bounded YAML file.
 *
 * A document, an empty file, a missing file, a directory, a file over the
 * size limit, nesting over the depth limit, a syntax error and a second
 * document, each with its "FILE[:LINE]: reason". Temporary files live in
 * a mkdtemp(3) directory.
 */
#include <sys/stat.h>

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "vbuf.h"
#include "yamlfile.h"

static char tmpdir[64];
static char path[128];

static void	setup(void);
static void	teardown(void);
static void	put(const char *);
static void	expect(const char *, int, const char *);
static Suite	*yamlfile_suite(void);

static void
setup(void)
{
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/check_yamlfile.XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(tmpdir));
	snprintf(path, sizeof(path), "%s/f.yaml", tmpdir);
}

static void
teardown(void)
{
	unlink(path);
	rmdir(tmpdir);
}

static void
put(const char *text)
{
	FILE *fp = fopen(path, "w");

	ck_assert_ptr_nonnull(fp);
	ck_assert_int_ge(fputs(text, fp), 0);
	ck_assert_int_eq(fclose(fp), 0);
}

/* Loads path: rc, and why starting with path then want ("" for none). */
static void
expect(const char *text, int rc, const char *want)
{
	yaml_document_t doc;
	struct vbuf why;
	char full[256];

	if (text != NULL)
		put(text);
	vbuf_init(&why, 0);
	ck_assert_int_eq(yamlfile_load(path, 64, 3, &doc, &why), rc);
	if (rc == 1)
		yaml_document_delete(&doc);
	snprintf(full, sizeof(full), "%s%s", rc >= 0 ? "" : path, want);
	ck_assert_msg(strncmp(why.data, full, strlen(full)) == 0,
	    "got \"%s\", want \"%s\"", why.data, full);
	vbuf_release(&why);
}

START_TEST(test_load)
{
	yaml_document_t doc;
	yaml_node_t *root;
	struct vbuf why;

	put("a: 1\nb:\n  - x\n");
	vbuf_init(&why, 0);
	ck_assert_int_eq(yamlfile_load(path, 64, 3, &doc, &why), 1);
	root = yaml_document_get_root_node(&doc);
	ck_assert_ptr_nonnull(root);
	ck_assert_int_eq(root->type, YAML_MAPPING_NODE);
	ck_assert_uint_eq(yamlfile_line(root), 1);
	ck_assert_uint_eq(why.len, 0);
	yaml_document_delete(&doc);
	vbuf_release(&why);

	expect("", 0, "");
	expect("# only a comment\n", 0, "");
	expect("a: [b\n", -1, ":2: syntax error: ");
	expect("a: 1\n---\nb: 2\n", -1, ":3: more than one YAML document");
	expect("a: [[[1]]]\n", -1, ":1: nested more than 3 levels deep");
	expect("a: [[1]]\n", 1, "");
	expect("a: 0123456789012345678901234567890123456789"
	    "0123456789012345678901234567890123456789\n", -1,
	    ": larger than 64 bytes");
	unlink(path);
	expect(NULL, YAMLFILE_MISSING, ": cannot open: No such file");
	ck_assert_int_eq(mkdir(path, 0700), 0);
	expect(NULL, -1, ": not a regular file");
	ck_assert_int_eq(rmdir(path), 0);
	/* why may be NULL. */
	put("a: [b\n");
	ck_assert_int_eq(yamlfile_load(path, 64, 3, &doc, NULL), -1);
}
END_TEST

static Suite *
yamlfile_suite(void)
{
	Suite *s = suite_create("yamlfile");
	TCase *tc = tcase_create("yamlfile");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_load);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(yamlfile_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
