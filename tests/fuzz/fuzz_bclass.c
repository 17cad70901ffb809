/*
 * fuzz_bclass.c - libFuzzer target for bounce classification in
 * lib/bclass.c, run on remote reply text (which a remote SMTP server
 * chooses) with the shipped rules, etc/bounce-classes.yaml.
 *
 * The rules are loaded once: from $PETREL_FUZZ_RULES (`make fuzz` sets it),
 * else from ../../etc/bounce-classes.yaml next to the binary
 * (build/fuzz/fuzz_bclass in the tree). Input layout: when it holds a
 * newline, what comes before the first one is the enhanced status code
 * given with the reply (dsn; a lone "-" means NULL) and the rest is the
 * reply; without one the whole input is the reply and dsn is "". Both end
 * at their first NUL, as C strings do. Checked with ASSERT: the class is a
 * valid one whose name maps back to it; the rule description is set;
 * bclass_hard agrees with the first digit of the code that classification
 * went by, or of the reply's 3-digit code when there is none; the same
 * input classifies the same way twice. Built and run by `make fuzz`; see
 * tests/fuzz/README.md.
 */
#include <limits.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bclass.h"
#include "log.h"
#include "vbuf.h"
#include "xalloc.h"

#define FUZZ_RULES_REL	"/../../etc/bounce-classes.yaml"

int	LLVMFuzzerInitialize(int *, char ***);
int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);

static struct bclass_rules *fuzz_rules;

/* The path of the shipped rules: the environment's, else the tree's. */
static void
fuzz_rules_path(char *buf, size_t size)
{
	const char *env = getenv("PETREL_FUZZ_RULES");
	char exe[PATH_MAX], *slash;
	ssize_t n;

	if (env != NULL && env[0] != '\0') {
		(void)snprintf(buf, size, "%s", env);
		return;
	}
	n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	if (n <= 0)
		log_fatal("fuzz_bclass: set PETREL_FUZZ_RULES");
	exe[n] = '\0';
	if ((slash = strrchr(exe, '/')) != NULL)
		*slash = '\0';
	(void)snprintf(buf, size, "%s%s", exe, FUZZ_RULES_REL);
}

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	char path[PATH_MAX];
	struct vbuf why;

	(void)argc;
	(void)argv;
	fuzz_rules_path(path, sizeof(path));
	vbuf_init(&why, 0);
	/* A broken shipped file fails the run: its rules are what we test. */
	if ((fuzz_rules = bclass_load_file(path, &why)) == NULL)
		log_fatal("fuzz_bclass: %s: %s", path,
		    why.len > 0 ? why.data : "");
	ASSERT(bclass_count(fuzz_rules) > 0);
	vbuf_release(&why);
	return 0;
}

/* 1 when s is exactly D.S.D (class 2, 4 or 5, 1-3 digits each). */
static int
fuzz_code_exact(const char *s)
{
	size_t k, d;

	if (s == NULL || (s[0] != '2' && s[0] != '4' && s[0] != '5'))
		return 0;
	s++;
	for (k = 0; k < 2; k++) {
		if (*s++ != '.')
			return 0;
		for (d = 0; s[d] >= '0' && s[d] <= '9'; d++)
			;
		if (d < 1 || d > 3)
			return 0;
		s += d;
	}
	return *s == '\0';
}

static void
fuzz_one(const char *dsn, const char *reply)
{
	const char *rule = NULL, *rule2 = NULL, *name;
	enum bclass cls, cls2, back;
	char status[16];
	int code, hard;
	size_t i, n;

	cls = bclass_classify(fuzz_rules, dsn, reply, &rule);
	ASSERT(cls >= BCLASS_BAD_MAILBOX && cls <= BCLASS_OTHER);
	ASSERT(rule != NULL && rule[0] != '\0');
	name = bclass_name(cls);
	ASSERT(name != NULL && strlen(name) < BCLASS_NAME_MAX);
	ASSERT(bclass_from_name(name, &back) == 0 && back == cls);
	ASSERT(bclass_describe(cls) != NULL);

	/* Deterministic: the same answer, and the same rule, again. */
	cls2 = bclass_classify(fuzz_rules, dsn, reply, &rule2);
	ASSERT(cls2 == cls && rule2 != NULL && strcmp(rule, rule2) == 0);
	ASSERT(bclass_classify(fuzz_rules, dsn, reply, NULL) == cls);

	/* A rule's description is one of the loaded rules'. */
	n = bclass_count(fuzz_rules);
	for (i = 0; i < n; i++)
		if (strcmp(bclass_rule_desc(fuzz_rules, i), rule) == 0)
			break;
	ASSERT(i < n || strncmp(rule, "RFC ", 4) == 0 ||
	    strcmp(rule, "default") == 0);

	/* Hard or soft goes by the first digit of the code used. */
	hard = bclass_hard(dsn, reply);
	ASSERT(hard == 0 || hard == 1);
	code = bclass_status(dsn, reply, status, sizeof(status));
	ASSERT(code == 0 || (code >= 200 && code <= 599));
	if (status[0] != '\0') {
		ASSERT(fuzz_code_exact(status));
		ASSERT(hard == (status[0] == '5'));
	} else
		ASSERT(hard == (code / 100 == 5));
	/* A well-formed dsn given is the code used ("5.6.02" is 5.6.2). */
	if (fuzz_code_exact(dsn))
		ASSERT(status[0] == dsn[0] && hard == (dsn[0] == '5'));
	/* Without codes, nothing is hard and no code rule applies. */
	if (status[0] == '\0' && code == 0) {
		ASSERT(!hard);
		ASSERT(strncmp(rule, "RFC ", 4) != 0);
	}

	/* Without rules: the code alone, and still a class. */
	cls2 = bclass_classify(NULL, dsn, reply, &rule2);
	ASSERT(cls2 >= BCLASS_BAD_MAILBOX && cls2 <= BCLASS_OTHER);
	ASSERT(rule2 != NULL);
	if (strncmp(rule, "RFC ", 4) == 0 || strcmp(rule, "default") == 0)
		ASSERT(cls2 == cls && strcmp(rule, rule2) == 0);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *buf, *nl, *dsn, *reply;

	buf = xmalloc(size + 1);
	memcpy(buf, data, size);
	buf[size] = '\0';
	if ((nl = memchr(buf, '\n', size)) != NULL) {
		*nl = '\0';
		dsn = strcmp(buf, "-") == 0 ? NULL : buf;
		reply = nl + 1;
	} else {
		dsn = "";
		reply = buf;
	}
	fuzz_one(dsn, reply);
	/* The reply alone, and NULL, are valid too. */
	fuzz_one(NULL, reply);
	fuzz_one(dsn, NULL);
	free(buf);
	return 0;
}
