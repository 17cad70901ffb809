/*
 * check_shaping.c - unit tests for lib/shaping: the delivery shaping file.
 *
 * The parser (every key, inheritance of each from the default, and each
 * error with its "FILE:LINE: KEY: reason"), the rate syntax, the lookup
 * order (exact next-hop key, its host, parent domains, default), the
 * token bucket's spacing, on_reply rules (their keys, errors, order and
 * matching), the shipped etc/shaping.yaml, and the keys of
 * man/shaping.yaml.5 against the parser's. Run from the
 * top of the tree; temporary files live in a mkdtemp(3) directory.
 */
#include <check.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cfg.h"
#include "shaping.h"
#include "vbuf.h"

#define SHIPPED		"etc/shaping.yaml"
#define MANPAGE		"man/shaping.yaml.5"

/* Every key of an entry, with a good value: shaping.yaml(5) lists these. */
static const struct {
	const char	*key;
	const char	*value;
} keys[] = {
	{ "max_connections", "5" },
	{ "max_messages_per_connection", "50" },
	{ "max_message_rate", "10/s" },
	{ "max_connection_rate", "1/min" },
	{ "retry_interval", "10m" },
	{ "tls", "encrypt" },
	{ "on_reply", "[ { pattern: x, action: suspend, for: 1m } ]" },
	{ "transactional_reserve", "2" },
};

static char tmpdir[64];
static char path[128];

static void	setup(void);
static void	teardown(void);
static void	put(const char *);
static struct shaping *load_ok(const char *);
static void	load_bad(const char *, const char *);
static void	look(const struct shaping *, const char *, const char *,
		    struct shaping_limits *);
static Suite	*shaping_suite(void);

static void
setup(void)
{
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/check_shaping.XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(tmpdir));
	snprintf(path, sizeof(path), "%s/s.yaml", tmpdir);
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

static struct shaping *
load_ok(const char *text)
{
	struct vbuf *why = vbuf_create(0);
	struct shaping *sh;

	put(text);
	sh = shaping_load(path, why);
	ck_assert_msg(sh != NULL, "%s", why->data);
	vbuf_free(why);
	return sh;
}

/* The load fails with why exactly "PATH" followed by want. */
static void
load_bad(const char *text, const char *want)
{
	struct vbuf *why = vbuf_create(0);
	char full[512];

	put(text);
	ck_assert_ptr_null(shaping_load(path, why));
	snprintf(full, sizeof(full), "%s%s", path, want);
	ck_assert_msg(strcmp(why->data, full) == 0, "got \"%s\", want \"%s\"",
	    why->data, full);
	vbuf_free(why);
}

/* Looks key up, checking the entry that decides it. */
static void
look(const struct shaping *sh, const char *key, const char *entry,
    struct shaping_limits *lim)
{
	const char *got;

	shaping_lookup(sh, key, lim, &got);
	ck_assert_msg(strcmp(got, entry) == 0, "%s: entry %s, want %s", key,
	    got, entry);
}

START_TEST(test_parse_rate)
{
	static const struct {
		const char	*s;
		unsigned	 count, interval;
	} good[] = {
		{ "1/s", 1, 1 }, { "5/sec", 5, 1 }, { "10/second", 10, 1 },
		{ "600/m", 600, 60 }, { "60/min", 60, 60 },
		{ "7/minute", 7, 60 }, { "100/h", 100, 3600 },
		{ "2/hour", 2, 3600 }, { "1000/d", 1000, 86400 },
		{ "3/day", 3, 86400 }, { "1000000/s", 1000000, 1 },
	};
	static const char *const bad[] = {
		"", "/s", "0/s", "1000001/s", "-1/s", "+1/s", " 1/s", "1 /s",
		"1/ s", "1/s ", "1", "1/", "1/w", "1/Minute", "1/mins",
		"1.5/s", "x/s", "1/s/s", "99999999999999999999/s", "unlimited",
	};
	unsigned c, i;
	char text[32];

	for (size_t k = 0; k < sizeof(good) / sizeof(good[0]); k++) {
		ck_assert_msg(shaping_parse_rate(good[k].s, &c, &i) == 0,
		    "%s", good[k].s);
		ck_assert_uint_eq(c, good[k].count);
		ck_assert_uint_eq(i, good[k].interval);
		/* Written back in the short unit, and read the same. */
		shaping_rate_text(c, i, text, sizeof(text));
		ck_assert_msg(shaping_parse_rate(text, &c, &i) == 0, "%s", text);
		ck_assert_uint_eq(c, good[k].count);
		ck_assert_uint_eq(i, good[k].interval);
	}
	shaping_rate_text(7, 60, text, sizeof(text));
	ck_assert_str_eq(text, "7/min");
	shaping_rate_text(0, 0, text, sizeof(text));
	ck_assert_str_eq(text, "unlimited");
	shaping_rate_text(3, 90, text, sizeof(text));
	ck_assert_str_eq(text, "3 per 90s");
	for (size_t k = 0; k < sizeof(bad) / sizeof(bad[0]); k++) {
		c = i = 42;
		ck_assert_msg(shaping_parse_rate(bad[k], &c, &i) == -1, "%s",
		    bad[k]);
		ck_assert_uint_eq(c, 42);
		ck_assert_uint_eq(i, 42);
	}
}
END_TEST

START_TEST(test_load_all_keys)
{
	struct shaping *sh;
	const struct shaping_entry *e;

	sh = load_ok("default:\n"
	    "  max_connections: 10\n"
	    "  max_messages_per_connection: 100\n"
	    "  max_message_rate: 50/s\n"
	    "  max_connection_rate: 100/min\n"
	    "  retry_interval: 15m\n"
	    "  tls: may\n"
	    "destinations:\n"
	    "  Example.COM:\n"
	    "    max_connections: 1000\n"
	    "    max_messages_per_connection: 100000\n"
	    "    max_message_rate: 1/hour\n"
	    "    max_connection_rate: 3/day\n"
	    "    retry_interval: 7d\n"
	    "    tls: verify\n"
	    "  \"[10.0.0.1]:587\": { tls: encrypt }\n");
	ck_assert_uint_eq(sh->def.max_connections, 10);
	ck_assert_uint_eq(sh->def.max_messages_per_connection, 100);
	ck_assert_uint_eq(sh->def.rate_count, 50);
	ck_assert_uint_eq(sh->def.rate_interval, 1);
	ck_assert_uint_eq(sh->def.conn_rate_count, 100);
	ck_assert_uint_eq(sh->def.conn_rate_interval, 60);
	ck_assert_int_eq(sh->def.retry_interval, 900);
	ck_assert_int_eq(sh->def.tls, CFG_SMTP_TLS_MAY);
	ck_assert_uint_eq(sh->nentries, 2);
	e = &sh->entries[0];
	ck_assert_str_eq(e->name, "example.com");	/* lower case */
	ck_assert_uint_eq(e->lim.max_connections, 1000);
	ck_assert_uint_eq(e->lim.max_messages_per_connection, 100000);
	ck_assert_uint_eq(e->lim.rate_count, 1);
	ck_assert_uint_eq(e->lim.rate_interval, 3600);
	ck_assert_int_eq(e->has_rate, 1);
	ck_assert_uint_eq(e->lim.conn_rate_count, 3);
	ck_assert_uint_eq(e->lim.conn_rate_interval, 86400);
	ck_assert_int_eq(e->has_conn_rate, 1);
	ck_assert_int_eq(e->lim.retry_interval, 7 * 86400);
	ck_assert_int_eq(e->lim.tls, CFG_SMTP_TLS_VERIFY);
	e = &sh->entries[1];
	ck_assert_str_eq(e->name, "[10.0.0.1]:587");
	ck_assert_int_eq(e->lim.tls, CFG_SMTP_TLS_ENCRYPT);
	ck_assert_uint_eq(e->lim.max_connections, 0);
	ck_assert_int_eq(e->has_rate, 0);
	ck_assert_int_eq(e->has_conn_rate, 0);
	ck_assert_int_eq(e->lim.retry_interval, 0);
	shaping_free(sh);
}
END_TEST

/* No path, an empty path, an empty file, comments only: no limits. */
START_TEST(test_load_empty)
{
	static const char *const texts[] = { "", "# nothing\n",
	    "destinations:\n", "default: {}\ndestinations: {}\n" };
	struct shaping_limits lim;
	struct shaping *sh;
	struct vbuf *why = vbuf_create(0);

	for (int k = 0; k < 2; k++) {
		sh = shaping_load(k == 0 ? NULL : "", why);
		ck_assert_ptr_nonnull(sh);
		ck_assert_uint_eq(sh->nentries, 0);
		look(sh, "gmail.com:25", "default", &lim);
		ck_assert_uint_eq(lim.max_connections, 0);
		ck_assert_uint_eq(lim.max_messages_per_connection, 0);
		ck_assert_uint_eq(lim.rate_interval, 0);
		ck_assert_uint_eq(lim.conn_rate_interval, 0);
		ck_assert_int_eq(lim.retry_interval, 0);
		ck_assert_int_eq(lim.tls, SHAPING_TLS_UNSET);
		shaping_free(sh);
	}
	for (size_t k = 0; k < sizeof(texts) / sizeof(texts[0]); k++) {
		sh = load_ok(texts[k]);
		ck_assert_uint_eq(sh->nentries, 0);
		look(sh, "gmail.com:25", "default", &lim);
		ck_assert_uint_eq(lim.max_connections, 0);
		ck_assert_int_eq(lim.tls, SHAPING_TLS_UNSET);
		shaping_free(sh);
	}
	shaping_free(NULL);
	vbuf_free(why);
}
END_TEST

START_TEST(test_load_missing)
{
	struct vbuf *why = vbuf_create(0);

	ck_assert_ptr_null(shaping_load(path, why));	/* not created */
	ck_assert_msg(strncmp(why->data, path, strlen(path)) == 0, "%s",
	    why->data);
	vbuf_free(why);
}
END_TEST

START_TEST(test_load_errors)
{
	load_bad("- a\n", ":1: expected a mapping with default, "
	    "destinations and providers");
	load_bad("defaults:\n  max_connections: 1\n",
	    ":1: defaults: unknown key (expected default, "
	    "destinations or providers)");
	load_bad("default:\n  max_conections: 1\n",
	    ":2: default.max_conections: unknown key");
	load_bad("destinations:\n  a.example:\n    tls: may\n"
	    "    colour: blue\n", ":4: a.example.colour: unknown key");
	load_bad("default: 5\n", ":1: default: expected a mapping");
	load_bad("destinations: [ a ]\n",
	    ":1: destinations: expected a mapping of destinations");
	load_bad("destinations:\n  a.example: 5\n",
	    ":2: a.example: expected a mapping");
	load_bad("default:\n  max_connections:\n",
	    ":2: default.max_connections: expected a value");
	load_bad("default:\n  max_connections: [ 1 ]\n",
	    ":2: default.max_connections: expected a value");
	/* Limits out of range. */
	load_bad("default:\n  max_connections: 0\n",
	    ":2: default.max_connections: \"0\": expected a number from 1 "
	    "to 1000");
	load_bad("default:\n  max_connections: 1001\n",
	    ":2: default.max_connections: \"1001\": expected a number from 1 "
	    "to 1000");
	load_bad("default:\n  max_connections: -1\n",
	    ":2: default.max_connections: \"-1\": expected a number from 1 "
	    "to 1000");
	load_bad("default:\n  max_connections: 5x\n",
	    ":2: default.max_connections: \"5x\": expected a number from 1 "
	    "to 1000");
	load_bad("destinations:\n  b.example:\n"
	    "    max_messages_per_connection: 0\n",
	    ":3: b.example.max_messages_per_connection: \"0\": expected a "
	    "number from 1 to 100000");
	load_bad("destinations:\n  b.example:\n"
	    "    max_messages_per_connection: 100001\n",
	    ":3: b.example.max_messages_per_connection: \"100001\": expected "
	    "a number from 1 to 100000");
	/* Bad rates. */
	load_bad("default:\n  max_message_rate: 10/fortnight\n",
	    ":2: default.max_message_rate: \"10/fortnight\": expected "
	    "N/second, N/minute, N/hour, N/day or unlimited (N from 1 to "
	    "1000000)");
	load_bad("default:\n  max_message_rate: 0/s\n",
	    ":2: default.max_message_rate: \"0/s\": expected N/second, "
	    "N/minute, N/hour, N/day or unlimited (N from 1 to 1000000)");
	load_bad("default:\n  max_connection_rate: 10\n",
	    ":2: default.max_connection_rate: \"10\": expected N/second, "
	    "N/minute, N/hour, N/day or unlimited (N from 1 to 1000000)");
	/* Durations. */
	load_bad("default:\n  retry_interval: 0\n",
	    ":2: default.retry_interval: \"0\": expected a duration from 1s "
	    "to 7d (a number with s, m, h or d)");
	load_bad("default:\n  retry_interval: 8d\n",
	    ":2: default.retry_interval: \"8d\": expected a duration from 1s "
	    "to 7d (a number with s, m, h or d)");
	load_bad("default:\n  retry_interval: soon\n",
	    ":2: default.retry_interval: \"soon\": expected a duration from "
	    "1s to 7d (a number with s, m, h or d)");
	load_bad("default:\n  tls: required\n",
	    ":2: default.tls: \"required\": expected may, encrypt or verify");
	load_bad("default:\n  tls: none\n",
	    ":2: default.tls: \"none\": expected may, encrypt or verify");
	/* Names. */
	load_bad("destinations:\n  \"a b.example\": {}\n",
	    ":2: a b.example: not a domain, host or next-hop key");
	load_bad("destinations:\n  \"\": {}\n",
	    ":2: destinations: a destination name is 1 to 263 characters");
	load_bad("destinations:\n  [a]: {}\n",
	    ":2: destinations: a destination name is 1 to 263 characters");
	/* Twice. */
	load_bad("destinations:\n  a.example: {}\n  A.example: {}\n",
	    ":3: a.example: given twice");
	load_bad("default:\n  tls: may\n  tls: verify\n",
	    ":3: default.tls: given twice");
	load_bad("default: {}\ndefault: {}\n", ":2: default: given twice");
	load_bad("destinations: {}\ndestinations: {}\n",
	    ":2: destinations: given twice");
}
END_TEST

/*
 * on_reply: every key of a rule, the defaults, the order, an entry's
 * rules and the default's.
 */
START_TEST(test_on_reply)
{
	struct shaping *sh;
	const struct shaping_entry *e;
	const struct shaping_rule *r;
	struct shaping_limits lim;
	const char *name;

	sh = load_ok("default:\n"
	    "  on_reply:\n"
	    "    - { pattern: 'Server busy', action: backoff, for: 10m,\n"
	    "        max_connections: 2 }\n"
	    "destinations:\n"
	    "  gmail.com:\n"
	    "    max_connections: 5\n"
	    "    on_reply:\n"
	    "      - pattern: '4\\.7\\.28|unusual rate'\n"
	    "        action: backoff\n"
	    "        for: 30m\n"
	    "        max_message_rate: 10/minute\n"
	    "        max_connections: 1\n"
	    "        after: 3\n"
	    "      - pattern: '^421 .*go away'\n"
	    "        action: suspend\n"
	    "        for: 1h\n"
	    "  other.example: { max_connections: 3 }\n");
	ck_assert_uint_eq(sh->nrules, 1);
	r = &sh->rules[0];
	ck_assert_str_eq(r->pattern, "Server busy");
	ck_assert_int_eq(r->action, SHAPING_BACKOFF);
	ck_assert_int_eq(r->duration, 600);
	ck_assert_uint_eq(r->after, 1);			/* the default */
	ck_assert_uint_eq(r->max_connections, 2);
	ck_assert_int_eq(r->has_rate, 0);
	/* Case does not matter (REG_ICASE). */
	ck_assert_int_eq(shaping_rule_match(r, "451 4.7.500 SERVER BUSY."), 1);
	ck_assert_int_eq(shaping_rule_match(r, "451 4.7.500 busy"), 0);

	shaping_lookup(sh, "gmail.com:25", &lim, &name);
	e = shaping_find(sh, name);
	ck_assert_ptr_nonnull(e);
	ck_assert_str_eq(e->name, "gmail.com");
	ck_assert_uint_eq(e->nrules, 2);
	r = &e->rules[0];
	ck_assert_int_eq(r->action, SHAPING_BACKOFF);
	ck_assert_int_eq(r->duration, 1800);
	ck_assert_uint_eq(r->after, 3);
	ck_assert_uint_eq(r->max_connections, 1);
	ck_assert_int_eq(r->has_rate, 1);
	ck_assert_uint_eq(r->rate_count, 10);
	ck_assert_uint_eq(r->rate_interval, 60);
	ck_assert_int_eq(shaping_rule_match(r, "421 4.7.28 Our system has "
	    "detected an unusual rate of unsolicited mail"), 1);
	ck_assert_int_eq(shaping_rule_match(r, "421 4.7.0 Try again later"),
	    0);
	/* Extended syntax: "|" an alternative, a backslash before a dot. */
	ck_assert_int_eq(shaping_rule_match(r, "an UNUSUAL RATE"), 1);
	ck_assert_int_eq(shaping_rule_match(r, "421 4x7x28"), 0);
	r = &e->rules[1];
	ck_assert_int_eq(r->action, SHAPING_SUSPEND);
	ck_assert_int_eq(r->duration, 3600);
	ck_assert_int_eq(shaping_rule_match(r, "421 4.3.2 please GO AWAY"),
	    1);
	ck_assert_int_eq(shaping_rule_match(r, "450 go away"), 0);
	ck_assert_str_eq(shaping_action_name(SHAPING_SUSPEND), "suspend");
	ck_assert_str_eq(shaping_action_name(SHAPING_BACKOFF), "backoff");

	/* An entry without rules has only the default's. */
	shaping_lookup(sh, "other.example:25", &lim, &name);
	e = shaping_find(sh, name);
	ck_assert_ptr_nonnull(e);
	ck_assert_uint_eq(e->nrules, 0);
	shaping_lookup(sh, "nobody.example:25", &lim, &name);
	ck_assert_str_eq(name, "default");
	ck_assert_ptr_null(shaping_find(sh, name));
	shaping_free(sh);

	/* An empty list: no rules. */
	sh = load_ok("default:\n  on_reply: []\n");
	ck_assert_uint_eq(sh->nrules, 0);
	shaping_free(sh);
}
END_TEST

START_TEST(test_on_reply_errors)
{
	struct vbuf *text = vbuf_create(0);
	regex_t re;
	char ebuf[256], want[512];
	int rc;

	load_bad("default:\n  on_reply: x\n",
	    ":2: default.on_reply: expected a list of rules");
	load_bad("default:\n  on_reply: { pattern: x }\n",
	    ":2: default.on_reply: expected a list of rules");
	load_bad("default:\n  on_reply: [ x ]\n",
	    ":2: default.on_reply[1]: expected a mapping with pattern, "
	    "action and for");
	load_bad("default:\n  on_reply:\n"
	    "    - { pattern: x, action: suspend, for: 1m }\n"
	    "    - { pattern: x, action: suspend }\n",
	    ":4: default.on_reply[2]: for is missing");
	load_bad("destinations:\n  a.example:\n    on_reply:\n"
	    "      - { action: suspend, for: 1m }\n",
	    ":4: a.example.on_reply[1]: pattern is missing");
	load_bad("default:\n  on_reply:\n    - { pattern: x, for: 1m }\n",
	    ":3: default.on_reply[1]: action is missing");
	load_bad("default:\n  on_reply:\n"
	    "    - { pattern: x, action: pause, for: 1m }\n",
	    ":3: default.on_reply[1].action: \"pause\": expected backoff or "
	    "suspend");
	load_bad("default:\n  on_reply:\n"
	    "    - { pattern: x, action: backoff, for: 1m }\n",
	    ":3: default.on_reply[1]: a backoff needs max_message_rate or "
	    "max_connections");
	load_bad("default:\n  on_reply:\n"
	    "    - { pattern: x, action: suspend, for: 1m,\n"
	    "        max_connections: 1 }\n",
	    ":3: default.on_reply[1]: max_message_rate and max_connections "
	    "are for a backoff, not a suspend");
	load_bad("default:\n  on_reply:\n"
	    "    - { pattern: x, action: suspend, for: 8d }\n",
	    ":3: default.on_reply[1].for: \"8d\": expected a duration from 1s "
	    "to 7d (a number with s, m, h or d)");
	load_bad("default:\n  on_reply:\n"
	    "    - { pattern: x, action: suspend, for: 1m, after: 0 }\n",
	    ":3: default.on_reply[1].after: \"0\": expected a number from 1 "
	    "to 1000");
	load_bad("default:\n  on_reply:\n"
	    "    - { pattern: x, action: backoff, for: 1m,\n"
	    "        max_message_rate: fast }\n",
	    ":4: default.on_reply[1].max_message_rate: \"fast\": expected "
	    "N/second, N/minute, N/hour, N/day or unlimited (N from 1 to "
	    "1000000)");
	load_bad("default:\n  on_reply:\n"
	    "    - { pattern: x, action: suspend, for: 1m, colour: red }\n",
	    ":3: default.on_reply[1].colour: unknown key");
	load_bad("default:\n  on_reply:\n"
	    "    - { pattern: x, pattern: y, action: suspend, for: 1m }\n",
	    ":3: default.on_reply[1].pattern: given twice");
	load_bad("default:\n  on_reply:\n"
	    "    - { pattern: '', action: suspend, for: 1m }\n",
	    ":3: default.on_reply[1].pattern: expected a value");
	load_bad("default:\n  on_reply: []\n  on_reply: []\n",
	    ":3: default.on_reply: given twice");
	/* A bad regex: regerror's words. */
	load_bad("default:\n  on_reply:\n"
	    "    - { pattern: 'a(b', action: suspend, for: 1m }\n",
	    ":3: default.on_reply[1].pattern: \"a(b\": Unmatched ( or \\(");
	/* More than SHAPING_RULES_MAX. */
	vbuf_adds(text, "default:\n  on_reply:\n");
	for (int i = 0; i <= SHAPING_RULES_MAX; i++)
		vbuf_adds(text,
		    "    - { pattern: x, action: suspend, for: 1m }\n");
	load_bad(text->data, ":3: default.on_reply: more than 64 rules");
	vbuf_free(text);
	/* A bad rule after good ones frees them (ASan's leak check); the
	 * C library's words for the error. */
	ck_assert_int_ne(rc = regcomp(&re, "[", REG_EXTENDED | REG_ICASE |
	    REG_NOSUB), 0);
	(void)regerror(rc, &re, ebuf, sizeof(ebuf));
	snprintf(want, sizeof(want), ":5: a.example.on_reply[2].pattern: "
	    "\"[\": %s", ebuf);
	load_bad("destinations:\n  a.example:\n    on_reply:\n"
	    "      - { pattern: x, action: suspend, for: 1m }\n"
	    "      - { pattern: '[', action: suspend, for: 1m }\n", want);
}
END_TEST

/* A name over SHAPING_NAME_MAX. */
START_TEST(test_load_long_name)
{
	char text[600], name[300];

	memset(name, 'a', 264);
	name[264] = '\0';
	snprintf(text, sizeof(text), "destinations:\n  %s: {}\n", name);
	load_bad(text, ":2: destinations: a destination name is 1 to 263 "
	    "characters");
	name[263] = '\0';
	snprintf(text, sizeof(text), "destinations:\n  %s: {}\n", name);
	shaping_free(load_ok(text));
}
END_TEST

START_TEST(test_lookup_order)
{
	struct shaping *sh;
	struct shaping_limits lim;

	sh = load_ok("default:\n  max_connections: 10\n"
	    "destinations:\n"
	    "  example.com: { max_connections: 1 }\n"
	    "  mx.example.com: { max_connections: 2 }\n"
	    "  \"mx.example.com:2525\": { max_connections: 3 }\n"
	    "  \"[relay.example.net]:587\": { max_connections: 4 }\n"
	    "  \"192.0.2.1\": { max_connections: 5 }\n"
	    "  \"2001:db8::1\": { max_connections: 6 }\n"
	    "  \"2.1\": { max_connections: 7 }\n"
	    "  net: { max_connections: 8 }\n");
	/* Exact key first. */
	look(sh, "mx.example.com:2525", "mx.example.com:2525", &lim);
	ck_assert_uint_eq(lim.max_connections, 3);
	look(sh, "[relay.example.net]:587", "[relay.example.net]:587", &lim);
	ck_assert_uint_eq(lim.max_connections, 4);
	/* Then the host of "host:port" and "[host]:port". */
	look(sh, "mx.example.com:25", "mx.example.com", &lim);
	ck_assert_uint_eq(lim.max_connections, 2);
	look(sh, "[mx.example.com]:25", "mx.example.com", &lim);
	look(sh, "[192.0.2.1]:25", "192.0.2.1", &lim);
	ck_assert_uint_eq(lim.max_connections, 5);
	look(sh, "[2001:db8::1]:25", "2001:db8::1", &lim);
	ck_assert_uint_eq(lim.max_connections, 6);
	/* Then parent domains, nearest first. */
	look(sh, "example.com:25", "example.com", &lim);
	ck_assert_uint_eq(lim.max_connections, 1);
	look(sh, "a.b.example.com:25", "example.com", &lim);
	look(sh, "mail.mx.example.com:25", "mx.example.com", &lim);
	look(sh, "[relay.example.net]:25", "net", &lim);
	ck_assert_uint_eq(lim.max_connections, 8);
	/* Not a suffix that is not a whole label. */
	look(sh, "badexample.com:25", "default", &lim);
	ck_assert_uint_eq(lim.max_connections, 10);
	/* An address literal has no parent domains. */
	look(sh, "[10.192.2.1]:25", "default", &lim);
	look(sh, "[10.0.2.1]:25", "default", &lim);
	/* Case does not matter; a key without a port is its host. */
	look(sh, "MX.Example.COM:25", "mx.example.com", &lim);
	look(sh, "Sub.Example.Com", "example.com", &lim);
	/* Odd keys fall to the default. */
	look(sh, "", "default", &lim);
	look(sh, ":25", "default", &lim);
	look(sh, "[]:25", "default", &lim);
	look(sh, "[", "default", &lim);
	shaping_free(sh);
}
END_TEST

/* A key longer than any entry name falls to the default, unharmed. */
START_TEST(test_lookup_long_key)
{
	struct shaping *sh;
	struct shaping_limits lim;
	char key[1024];

	sh = load_ok("default:\n  max_connections: 10\n"
	    "destinations:\n  com: { max_connections: 1 }\n");
	memset(key, 'a', sizeof(key) - 8);
	memcpy(key + sizeof(key) - 8, ".com:25", 8);
	look(sh, key, "default", &lim);
	ck_assert_uint_eq(lim.max_connections, 10);
	shaping_free(sh);
}
END_TEST

/* Each key of an entry over the default's, and only the keys it sets. */
START_TEST(test_lookup_inherit)
{
	struct shaping *sh;
	struct shaping_limits lim;

	sh = load_ok("default:\n"
	    "  max_connections: 10\n"
	    "  max_messages_per_connection: 100\n"
	    "  max_message_rate: 50/s\n"
	    "  max_connection_rate: 100/min\n"
	    "  retry_interval: 15m\n"
	    "  tls: encrypt\n"
	    "destinations:\n"
	    "  all.example:\n"
	    "    max_connections: 2\n"
	    "    max_messages_per_connection: 20\n"
	    "    max_message_rate: 600/h\n"
	    "    max_connection_rate: 6/m\n"
	    "    retry_interval: 1h\n"
	    "    tls: verify\n"
	    "  none.example: {}\n"
	    "  unlimited.example:\n"
	    "    max_message_rate: unlimited\n"
	    "    max_connection_rate: unlimited\n"
	    "  tls.example: { tls: may }\n");
	look(sh, "all.example:25", "all.example", &lim);
	ck_assert_uint_eq(lim.max_connections, 2);
	ck_assert_uint_eq(lim.max_messages_per_connection, 20);
	ck_assert_uint_eq(lim.rate_count, 600);
	ck_assert_uint_eq(lim.rate_interval, 3600);
	ck_assert_uint_eq(lim.conn_rate_count, 6);
	ck_assert_uint_eq(lim.conn_rate_interval, 60);
	ck_assert_int_eq(lim.retry_interval, 3600);
	ck_assert_int_eq(lim.tls, CFG_SMTP_TLS_VERIFY);

	look(sh, "none.example:25", "none.example", &lim);
	ck_assert_uint_eq(lim.max_connections, 10);
	ck_assert_uint_eq(lim.max_messages_per_connection, 100);
	ck_assert_uint_eq(lim.rate_count, 50);
	ck_assert_uint_eq(lim.rate_interval, 1);
	ck_assert_uint_eq(lim.conn_rate_count, 100);
	ck_assert_uint_eq(lim.conn_rate_interval, 60);
	ck_assert_int_eq(lim.retry_interval, 900);
	ck_assert_int_eq(lim.tls, CFG_SMTP_TLS_ENCRYPT);

	/* "unlimited" in an entry lifts the default's rate. */
	look(sh, "unlimited.example:25", "unlimited.example", &lim);
	ck_assert_uint_eq(lim.rate_interval, 0);
	ck_assert_uint_eq(lim.conn_rate_interval, 0);
	ck_assert_uint_eq(lim.max_connections, 10);

	/* tls: may in an entry is set, not "unset". */
	look(sh, "tls.example:25", "tls.example", &lim);
	ck_assert_int_eq(lim.tls, CFG_SMTP_TLS_MAY);
	ck_assert_str_eq(shaping_tls_name(lim.tls), "may");
	ck_assert_str_eq(shaping_tls_name(CFG_SMTP_TLS_ENCRYPT), "encrypt");
	ck_assert_str_eq(shaping_tls_name(CFG_SMTP_TLS_VERIFY), "verify");
	ck_assert_str_eq(shaping_tls_name(SHAPING_TLS_UNSET), "unset");
	shaping_free(sh);
}
END_TEST

/* An entry's keys over a default that sets nothing: unset stays unset. */
START_TEST(test_lookup_no_default)
{
	struct shaping *sh;
	struct shaping_limits lim;

	sh = load_ok("destinations:\n  a.example: { max_connections: 3 }\n");
	look(sh, "a.example:25", "a.example", &lim);
	ck_assert_uint_eq(lim.max_connections, 3);
	ck_assert_uint_eq(lim.max_messages_per_connection, 0);
	ck_assert_uint_eq(lim.rate_interval, 0);
	ck_assert_uint_eq(lim.conn_rate_interval, 0);
	ck_assert_int_eq(lim.retry_interval, 0);
	ck_assert_int_eq(lim.tls, SHAPING_TLS_UNSET);
	shaping_free(sh);
}
END_TEST

/* 10 a second: one every 100 ms, no burst after a quiet spell. */
START_TEST(test_bucket_spacing)
{
	struct shaping_bucket b;
	int64_t t;

	shaping_bucket_init(&b, 10, 1, 1000);
	ck_assert_int_eq(shaping_bucket_wait(&b, 1000), 0);
	ck_assert_int_eq(shaping_bucket_take(&b, 1000), 1);
	ck_assert_int_eq(shaping_bucket_take(&b, 1000), 0);
	ck_assert_int_eq(shaping_bucket_wait(&b, 1000), 100);
	ck_assert_int_eq(shaping_bucket_wait(&b, 1050), 50);
	ck_assert_int_eq(shaping_bucket_take(&b, 1099), 0);
	ck_assert_int_eq(shaping_bucket_wait(&b, 1099), 1);
	ck_assert_int_eq(shaping_bucket_take(&b, 1100), 1);
	/* Taking exactly when wait says, 100 times: 100 in 10 s. */
	t = 1100;
	for (int i = 0; i < 100; i++) {
		int64_t w = shaping_bucket_wait(&b, t);

		ck_assert_int_eq(w, 100);
		t += w;
		ck_assert_int_eq(shaping_bucket_take(&b, t), 1);
	}
	ck_assert_int_eq(t, 11100);
	/*
	 * An hour idle still gives one token, not a burst: the next comes at
	 * most SHAPING_BUCKET_SLACK_MS early.
	 */
	t += 3600 * 1000;
	ck_assert_int_eq(shaping_bucket_take(&b, t), 1);
	ck_assert_int_eq(shaping_bucket_take(&b, t), 0);
	ck_assert_int_eq(shaping_bucket_take(&b, t + 49), 0);
	ck_assert_int_eq(shaping_bucket_take(&b, t + 50), 1);
	ck_assert_int_eq(shaping_bucket_take(&b, t + 51), 0);
}
END_TEST

/*
 * Taking each token 3 ms after it is due, as a loop that wakes late does,
 * keeps the rate: 100 at 60/s in 100/60 s (1.65 s after the first, not
 * 1.95), and 100 at 10/s in 9.9 s; and 12 ms late at 60/s, nearly a whole
 * interval, too.
 */
START_TEST(test_bucket_late_taker)
{
	static const struct { unsigned count; int64_t span; } rates[] = {
		{ 60, 1650 + 3 }, { 10, 9900 + 3 }, { 60, 1650 + 12 },
	};

	for (size_t k = 0; k < sizeof(rates) / sizeof(rates[0]); k++) {
		struct shaping_bucket b;
		int64_t t = 0;

		shaping_bucket_init(&b, rates[k].count, 1, 0);
		ck_assert_int_eq(shaping_bucket_take(&b, 0), 1);
		for (int i = 1; i < 100; i++) {
			t += shaping_bucket_wait(&b, t) + (k == 2 ? 12 : 3);
			ck_assert_int_eq(shaping_bucket_take(&b, t), 1);
		}
		ck_assert_msg(t >= rates[k].span - 20 &&
		    t <= rates[k].span + 20, "%u/s: 100 in %" PRId64 " ms",
		    rates[k].count, t);
	}
}
END_TEST

/* Rates that do not divide evenly into ms stay within their count. */
START_TEST(test_bucket_rates)
{
	static const struct { unsigned count, interval; } rates[] = {
		{ 3, 1 }, { 100, 1 }, { 600, 60 }, { 7, 60 }, { 1, 3600 },
		{ 1000, 86400 },
	};

	for (size_t k = 0; k < sizeof(rates) / sizeof(rates[0]); k++) {
		struct shaping_bucket b;
		int64_t t = 0, end = (int64_t)rates[k].interval * 1000 * 3;
		unsigned n = 0;

		shaping_bucket_init(&b, rates[k].count, rates[k].interval, 0);
		while (t < end) {
			if (shaping_bucket_take(&b, t)) {
				n++;
				continue;
			}
			ck_assert_int_gt(shaping_bucket_wait(&b, t), 0);
			t += shaping_bucket_wait(&b, t);
		}
		/* Three intervals: 3 * count, plus the first token. */
		ck_assert_msg(n >= 3 * rates[k].count &&
		    n <= 3 * rates[k].count + 1, "%u/%u s: %u in 3 intervals",
		    rates[k].count, rates[k].interval, n);
	}
}
END_TEST

START_TEST(test_bucket_unlimited)
{
	struct shaping_bucket b;

	shaping_bucket_init(&b, 0, 0, 0);
	for (int i = 0; i < 1000; i++)
		ck_assert_int_eq(shaping_bucket_take(&b, 0), 1);
	ck_assert_int_eq(shaping_bucket_wait(&b, 0), 0);
	shaping_bucket_refund(&b);
	ck_assert_int_eq(shaping_bucket_take(&b, 0), 1);
	shaping_bucket_init(&b, 5, 0, 0);
	ck_assert_int_eq(shaping_bucket_take(&b, 0), 1);
	ck_assert_int_eq(shaping_bucket_take(&b, 0), 1);
}
END_TEST

/* A token given back can be taken again at once, but no more than one. */
START_TEST(test_bucket_refund)
{
	struct shaping_bucket b;

	shaping_bucket_init(&b, 1, 60, 0);
	ck_assert_int_eq(shaping_bucket_take(&b, 0), 1);
	ck_assert_int_eq(shaping_bucket_take(&b, 10), 0);
	shaping_bucket_refund(&b);
	ck_assert_int_eq(shaping_bucket_wait(&b, 10), 0);
	ck_assert_int_eq(shaping_bucket_take(&b, 10), 1);
	ck_assert_int_eq(shaping_bucket_take(&b, 10), 0);
	/* Refunds over a full bucket do not make a burst. */
	shaping_bucket_refund(&b);
	shaping_bucket_refund(&b);
	shaping_bucket_refund(&b);
	ck_assert_int_eq(shaping_bucket_take(&b, 10), 1);
	ck_assert_int_eq(shaping_bucket_take(&b, 10), 0);
	ck_assert_int_eq(shaping_bucket_wait(&b, 10),
	    60000 - SHAPING_BUCKET_SLACK_MS);
}
END_TEST

/* A clock read earlier than the last adds nothing, and not twice later. */
START_TEST(test_bucket_clock_back)
{
	struct shaping_bucket b;

	shaping_bucket_init(&b, 1, 1, 5000);
	ck_assert_int_eq(shaping_bucket_take(&b, 5000), 1);
	ck_assert_int_eq(shaping_bucket_take(&b, 4000), 0);
	ck_assert_int_eq(shaping_bucket_take(&b, 5500), 0);
	ck_assert_int_eq(shaping_bucket_wait(&b, 5500), 500);
	ck_assert_int_eq(shaping_bucket_take(&b, 6000), 1);
}
END_TEST

/* The shipped file loads, and a few providers get their limits. */
START_TEST(test_shipped)
{
	static const char *const google[] = { "gmail.com", "googlemail.com" };
	static const char *const microsoft[] = { "outlook.com",
	    "hotmail.com", "live.com", "msn.com" };
	static const char *const yahoo[] = { "yahoo.com", "ymail.com",
	    "aol.com" };
	static const char *const apple[] = { "icloud.com", "me.com",
	    "mac.com" };
	/* One reply for each shipped on_reply rule, in its order. */
	static const char *const replies[] = {
		"421-4.7.28 Our system has detected an unusual rate of "
		    "unsolicited mail originating from your IP address.",
		"451 4.7.650 The mail server [192.0.2.1] has been temporarily "
		    "rate limited due to IP reputation. (S775)",
		"451 4.7.500 Server busy. Please try again later from "
		    "[192.0.2.1]. (S77714)",
		"421 4.7.0 [TSS04] Messages from 192.0.2.1 temporarily "
		    "deferred due to unexpected volume or user complaints",
	};
	struct vbuf *why = vbuf_create(0);
	struct shaping *sh;
	struct shaping_limits lim;
	char key[64];

	sh = shaping_load(SHIPPED, why);
	ck_assert_msg(sh != NULL, "%s", why->data);
	ck_assert_uint_eq(sh->def.max_connections, 10);
	ck_assert_uint_eq(sh->def.max_messages_per_connection, 100);
	ck_assert_int_eq(sh->def.tls, SHAPING_TLS_UNSET);

	for (size_t i = 0; i < 2; i++) {
		snprintf(key, sizeof(key), "%s:25", google[i]);
		look(sh, key, google[i], &lim);
		ck_assert_uint_eq(lim.max_connections, 5);
		ck_assert_uint_eq(lim.max_messages_per_connection, 50);
		ck_assert_int_eq(lim.tls, CFG_SMTP_TLS_ENCRYPT);
	}
	for (size_t i = 0; i < 4; i++) {
		snprintf(key, sizeof(key), "%s:25", microsoft[i]);
		look(sh, key, microsoft[i], &lim);
		ck_assert_uint_eq(lim.max_connections, 5);
		ck_assert_uint_eq(lim.max_messages_per_connection, 50);
		ck_assert_int_eq(lim.tls, CFG_SMTP_TLS_ENCRYPT);
	}
	for (size_t i = 0; i < 3; i++) {
		snprintf(key, sizeof(key), "%s:25", yahoo[i]);
		look(sh, key, yahoo[i], &lim);
		ck_assert_uint_eq(lim.max_connections, 10);	/* default */
		ck_assert_uint_eq(lim.max_messages_per_connection, 20);
		ck_assert_int_eq(lim.tls, CFG_SMTP_TLS_ENCRYPT);
	}
	for (size_t i = 0; i < 3; i++) {
		snprintf(key, sizeof(key), "%s:25", apple[i]);
		look(sh, key, apple[i], &lim);
		ck_assert_uint_eq(lim.max_connections, 10);
		ck_assert_uint_eq(lim.max_messages_per_connection, 5);
		ck_assert_int_eq(lim.tls, CFG_SMTP_TLS_ENCRYPT);
	}
	look(sh, "comcast.net:25", "comcast.net", &lim);
	ck_assert_uint_eq(lim.max_connections, 25);
	ck_assert_uint_eq(lim.max_messages_per_connection, 1000);
	ck_assert_int_eq(lim.tls, CFG_SMTP_TLS_ENCRYPT);

	/* Providers, by the MX hosts the providers publish. */
	{
		static const struct {
			const char *mx, *provider;
			unsigned cap, per_conn;
		} mxs[] = {
			{ "aspmx.l.google.com", "google", 5, 50 },
			{ "gmail-smtp-in.l.google.com", "google", 5, 50 },
			{ "alt1.aspmx.l.googlemail.com", "google", 5, 50 },
			{ "hotmail-com.olc.protection.outlook.com", "outlook",
			    5, 50 },
			{ "example-com.mail.protection.outlook.com",
			    "office365", 5, 50 },
			{ "example-com.l-v1.mx.microsoft", "office365-dane", 5,
			    50 },
			{ "mta5.am0.yahoodns.net", "yahoo", 0, 20 },
			{ "mx01.mail.icloud.com", "apple", 10, 5 },
			{ "eu-smtp-inbound-1.mimecast.com", "mimecast", 10,
			    100 },
		};
		const struct shaping_provider *pr;
		const char *entry, *h[1];

		for (size_t i = 0; i < sizeof(mxs) / sizeof(mxs[0]); i++) {
			h[0] = mxs[i].mx;
			pr = shaping_provider_match(sh, h, 1);
			ck_assert_msg(pr != NULL, "%s", mxs[i].mx);
			ck_assert_str_eq(pr->e.name, mxs[i].provider);
			ck_assert_uint_eq(pr->max_connections, mxs[i].cap);
			shaping_lookup_provider(sh, "customer.example:25", pr,
			    &lim, &entry);
			ck_assert_str_eq(entry, mxs[i].provider);
			ck_assert_uint_eq(lim.max_messages_per_connection,
			    mxs[i].per_conn);
		}
		h[0] = "mx.example.org";
		ck_assert_ptr_null(shaping_provider_match(sh, h, 1));
	}

	/* Anyone else: the default, TLS as smtp.tls says. */
	look(sh, "example.org:25", "default", &lim);
	ck_assert_uint_eq(lim.max_connections, 10);
	ck_assert_uint_eq(lim.max_messages_per_connection, 100);
	ck_assert_uint_eq(lim.rate_interval, 0);
	ck_assert_int_eq(lim.tls, SHAPING_TLS_UNSET);

	/*
	 * on_reply: in the providers, so that one acts on all of a
	 * provider's domains; each provider's reply is taken by its own
	 * rule, in its order, and by no other provider's.
	 */
	ck_assert_uint_eq(sh->nrules, 0);
	{
		static const struct {
			const char *provider;
			size_t first, n;	/* of replies[] */
		} owners[] = {
			{ "google", 0, 1 }, { "outlook", 1, 2 },
			{ "office365", 1, 2 }, { "office365-dane", 1, 2 },
			{ "yahoo", 3, 1 }, { "apple", 0, 0 },
			{ "mimecast", 0, 0 },
		};
		const struct shaping_entry *e;

		ck_assert_uint_eq(sh->nproviders, 7);
		for (size_t o = 0; o < sizeof(owners) / sizeof(owners[0]);
		    o++) {
			e = &sh->providers[o].e;
			ck_assert_str_eq(e->name, owners[o].provider);
			ck_assert_uint_eq(e->nrules, owners[o].n);
			for (size_t i = 0; i < 4; i++) {
				size_t k;

				for (k = 0; k < e->nrules; k++)
					if (shaping_rule_match(&e->rules[k],
					    replies[i]))
						break;
				if (i >= owners[o].first &&
				    i < owners[o].first + owners[o].n) {
					ck_assert_msg(k == i - owners[o].first,
					    "%s: %s: rule %zu", e->name,
					    replies[i], k);
					ck_assert_int_eq(e->rules[k].action,
					    SHAPING_BACKOFF);
				} else
					ck_assert_msg(k == e->nrules, "%s: %s",
					    e->name, replies[i]);
			}
			/* Ordinary deferrals set nothing off. */
			for (size_t k = 0; k < e->nrules; k++) {
				ck_assert_int_eq(shaping_rule_match(
				    &e->rules[k], "451 4.3.0 Server busy, "
				    "try again later"), 0);
				ck_assert_int_eq(shaping_rule_match(
				    &e->rules[k], "450 4.2.1 The user you are "
				    "trying to contact is receiving mail too "
				    "quickly"), 0);
			}
		}
		e = &sh->providers[4].e;
		ck_assert_int_eq(shaping_rule_match(&e->rules[0], "421 4.7.0 "
		    "[TS01] Messages from 192.0.2.1 temporarily deferred"), 1);
	}
	shaping_free(sh);
	vbuf_free(why);
}
END_TEST

/*
 * Providers: parsed with their suffixes (leading dot added, lower case,
 * final dot dropped), matched only when every MX host ends in one of them
 * at a label boundary, first provider in the file's order; their limits
 * lie between the default's and a destination entry's.
 */
START_TEST(test_providers)
{
	struct shaping *sh;
	const struct shaping_provider *g, *m;
	struct shaping_limits lim;
	const char *entry;
	const char *two[] = { "alt1.ASPMX.l.google.com.", "aspmx.l.google.com" };
	const char *mixed[] = { "aspmx.l.google.com", "mx.example.net" };
	const char *fake[] = { "mx.notgoogle.com" };
	const char *bare[] = { "google.com" };
	const char *ms[] = { "x-com.mail.protection.outlook.com" };

	sh = load_ok("default:\n"
	    "  max_connections: 10\n"
	    "  max_messages_per_connection: 100\n"
	    "providers:\n"
	    "  google:\n"
	    "    mx_suffixes: [.google.com, GoogleMail.com.]\n"
	    "    provider_max_connections: 5\n"
	    "    provider_max_message_rate: 100/s\n"
	    "    max_messages_per_connection: 50\n"
	    "    tls: encrypt\n"
	    "  ms365:\n"
	    "    mx_suffixes: .protection.outlook.com\n"
	    "  ms365-mail:\n"
	    "    mx_suffixes: .mail.protection.outlook.com\n"
	    "destinations:\n"
	    "  gmail.com:\n"
	    "    max_connections: 3\n");
	ck_assert_uint_eq(sh->nproviders, 3);
	ck_assert_ptr_nonnull(g = shaping_provider_find(sh, "google"));
	ck_assert_uint_eq(g->nsuffixes, 2);
	ck_assert_str_eq(g->suffixes[0], ".google.com");
	ck_assert_str_eq(g->suffixes[1], ".googlemail.com");
	ck_assert_uint_eq(g->max_connections, 5);
	ck_assert_uint_eq(g->rate_count, 100);
	ck_assert_uint_eq(g->rate_interval, 1);
	ck_assert_uint_eq(shaping_provider_find(sh, "ms365")->rate_count, 0);
	ck_assert_ptr_null(shaping_provider_find(sh, "yahoo"));

	ck_assert_ptr_eq(shaping_provider_match(sh, two, 2), g);
	ck_assert_ptr_null(shaping_provider_match(sh, mixed, 2));
	ck_assert_ptr_null(shaping_provider_match(sh, fake, 1));
	ck_assert_ptr_null(shaping_provider_match(sh, bare, 1));
	ck_assert_ptr_null(shaping_provider_match(sh, two, 0));
	/* The first in the file's order that matches. */
	ck_assert_ptr_nonnull(m = shaping_provider_match(sh, ms, 1));
	ck_assert_str_eq(m->e.name, "ms365");

	/* A Workspace domain: the provider's over the default's. */
	shaping_lookup_provider(sh, "customer.example:25", g, &lim, &entry);
	ck_assert_str_eq(entry, "google");
	ck_assert_uint_eq(lim.max_connections, 10);
	ck_assert_uint_eq(lim.max_messages_per_connection, 50);
	ck_assert_int_eq(lim.tls, CFG_SMTP_TLS_ENCRYPT);
	ck_assert_ptr_eq(shaping_find(sh, entry), &g->e);
	/* A destination entry over both. */
	shaping_lookup_provider(sh, "gmail.com:25", g, &lim, &entry);
	ck_assert_str_eq(entry, "gmail.com");
	ck_assert_uint_eq(lim.max_connections, 3);
	ck_assert_uint_eq(lim.max_messages_per_connection, 50);
	ck_assert_int_eq(lim.tls, CFG_SMTP_TLS_ENCRYPT);
	/* No provider: as before. */
	shaping_lookup(sh, "customer.example:25", &lim, &entry);
	ck_assert_str_eq(entry, "default");
	ck_assert_uint_eq(lim.max_messages_per_connection, 100);
	shaping_free(sh);
}
END_TEST

START_TEST(test_provider_errors)
{
	load_bad("providers:\n  g:\n    max_connections: 1\n",
	    ":3: g: mx_suffixes is missing");
	load_bad("providers:\n  Google:\n    mx_suffixes: .google.com\n",
	    ":2: Google: a provider's name is 1 to 63 of a-z, 0-9, - and _");
	load_bad("providers:\n  g.com:\n    mx_suffixes: .google.com\n",
	    ":2: g.com: a provider's name is 1 to 63 of a-z, 0-9, - and _");
	load_bad("providers:\n  g:\n    mx_suffixes: .x\n"
	    "  g:\n    mx_suffixes: .y\n", ":4: g: given twice");
	load_bad("providers:\n  g:\n    mx_suffixes: 'a b'\n",
	    ":3: g.mx_suffixes: \"a b\": not a host name suffix (such as "
	    ".google.com)");
	load_bad("providers:\n  g:\n    mx_suffixes: '..x'\n",
	    ":3: g.mx_suffixes: \"..x\": not a host name suffix (such as "
	    ".google.com)");
	load_bad("providers:\n  g:\n    mx_suffixes: []\n",
	    ":3: g.mx_suffixes: 1 to 32 suffixes");
	load_bad("providers:\n  g:\n    mx_suffixes: { a: b }\n",
	    ":3: g.mx_suffixes: expected a list of host name suffixes");
	load_bad("providers:\n  g:\n    mx_suffixes: .x\n"
	    "    provider_max_connections: lots\n",
	    ":4: g.provider_max_connections: \"lots\": expected a number "
	    "from 1 to 1000");
	load_bad("default:\n  mx_suffixes: .x\n",
	    ":2: default.mx_suffixes: only a provider (under providers) has "
	    "this key");
	load_bad("destinations:\n  a.example:\n"
	    "    provider_max_connections: 2\n",
	    ":3: a.example.provider_max_connections: only a provider (under "
	    "providers) has this key");
	load_bad("default:\n  provider_max_message_rate: 10/s\n",
	    ":2: default.provider_max_message_rate: only a provider (under "
	    "providers) has this key");
	load_bad("providers:\n  g:\n    mx_suffixes: .x\n"
	    "    provider_max_message_rate: fast\n",
	    ":4: g.provider_max_message_rate: \"fast\": expected N/second, "
	    "N/minute, N/hour, N/day or unlimited (N from 1 to 1000000)");
	load_bad("providers: [a]\n", ":1: providers: expected a mapping of "
	    "providers");
}
END_TEST

/*
 * The man page's KEYS section documents exactly the keys above, and the
 * parser takes each of them in an entry and in the default.
 */
START_TEST(test_man_keys)
{
	FILE *fp = fopen(MANPAGE, "r");
	char line[256], prev[256] = "", text[256];
	size_t nman = 0, nkeys = sizeof(keys) / sizeof(keys[0]);
	int in_keys = 0;

	ck_assert_ptr_nonnull(fp);
	while (fgets(line, sizeof(line), fp) != NULL) {
		line[strcspn(line, "\n")] = '\0';
		if (strncmp(line, ".SH ", 4) == 0)
			in_keys = strcmp(line, ".SH KEYS") == 0;
		else if (in_keys && strcmp(prev, ".TP") == 0 &&
		    strncmp(line, ".B ", 3) == 0) {
			size_t i;

			for (i = 0; i < nkeys; i++)
				if (strcmp(line + 3, keys[i].key) == 0)
					break;
			ck_assert_msg(i < nkeys, "%s: %s is not a key", MANPAGE,
			    line + 3);
			nman++;
		}
		snprintf(prev, sizeof(prev), "%s", line);
	}
	fclose(fp);
	ck_assert_uint_eq(nman, nkeys);
	for (size_t i = 0; i < nkeys; i++) {
		snprintf(text, sizeof(text), "default:\n  %s: %s\n"
		    "destinations:\n  a.example:\n    %s: %s\n", keys[i].key,
		    keys[i].value, keys[i].key, keys[i].value);
		shaping_free(load_ok(text));
	}
}
END_TEST

/*
 * transactional_reserve: a count or a percentage, inherited like the
 * other keys; 20% (at least 1) when unset; never all of max_connections;
 * written back as the file writes it (shaping_reserve_text).
 */
START_TEST(test_reserve)
{
	struct shaping *sh;
	struct shaping_limits lim;
	char text[16];

	sh = load_ok("default:\n"
	    "  max_connections: 10\n"
	    "destinations:\n"
	    "  count.example: { transactional_reserve: 3 }\n"
	    "  pct.example: { transactional_reserve: 25% }\n"
	    "  none.example: { transactional_reserve: 0 }\n"
	    "  all.example: { transactional_reserve: 100% }\n"
	    "  plain.example: { max_connections: 5 }\n");
	look(sh, "plain.example:25", "plain.example", &lim);
	shaping_reserve_text(&lim, text, sizeof(text));
	ck_assert_str_eq(text, "20%");
	ck_assert_uint_eq(shaping_reserve(&lim, 5), 1);
	ck_assert_uint_eq(shaping_reserve(&lim, 10), 2);
	ck_assert_uint_eq(shaping_reserve(&lim, 11), 3);
	ck_assert_uint_eq(shaping_reserve(&lim, 2), 1);
	ck_assert_uint_eq(shaping_reserve(&lim, 1), 0);
	ck_assert_uint_eq(shaping_reserve(&lim, 0), 0);
	look(sh, "count.example:25", "count.example", &lim);
	shaping_reserve_text(&lim, text, sizeof(text));
	ck_assert_str_eq(text, "3");
	ck_assert_uint_eq(shaping_reserve(&lim, 10), 3);
	ck_assert_uint_eq(shaping_reserve(&lim, 3), 2);
	look(sh, "pct.example:25", "pct.example", &lim);
	shaping_reserve_text(&lim, text, sizeof(text));
	ck_assert_str_eq(text, "25%");
	ck_assert_uint_eq(shaping_reserve(&lim, 10), 3);
	ck_assert_uint_eq(shaping_reserve(&lim, 4), 1);
	look(sh, "none.example:25", "none.example", &lim);
	shaping_reserve_text(&lim, text, sizeof(text));
	ck_assert_str_eq(text, "0");
	ck_assert_uint_eq(shaping_reserve(&lim, 10), 0);
	look(sh, "all.example:25", "all.example", &lim);
	ck_assert_uint_eq(shaping_reserve(&lim, 10), 9);
	ck_assert_uint_eq(shaping_reserve(&sh->def, 20), 4);
	shaping_free(sh);

	/* The default's own reserve is inherited. */
	sh = load_ok("default:\n"
	    "  transactional_reserve: 50%\n"
	    "destinations:\n"
	    "  a.example: { max_connections: 4 }\n");
	look(sh, "a.example:25", "a.example", &lim);
	ck_assert_uint_eq(shaping_reserve(&lim, 4), 2);
	ck_assert_uint_eq(shaping_reserve(&sh->def, 10), 5);
	shaping_free(sh);

	load_bad("default:\n  transactional_reserve: 101%\n",
	    ":2: default.transactional_reserve: \"101%\": expected "
	    "connections (0 to 1000) or a percentage (0% to 100%)");
	load_bad("default:\n  transactional_reserve: lots\n",
	    ":2: default.transactional_reserve: \"lots\": expected "
	    "connections (0 to 1000) or a percentage (0% to 100%)");
	load_bad("default:\n  transactional_reserve: \"%\"\n",
	    ":2: default.transactional_reserve: \"%\": expected "
	    "connections (0 to 1000) or a percentage (0% to 100%)");
}
END_TEST

static Suite *
shaping_suite(void)
{
	Suite *s = suite_create("shaping");
	TCase *tc = tcase_create("core");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_parse_rate);
	tcase_add_test(tc, test_load_all_keys);
	tcase_add_test(tc, test_load_empty);
	tcase_add_test(tc, test_load_missing);
	tcase_add_test(tc, test_load_errors);
	tcase_add_test(tc, test_load_long_name);
	tcase_add_test(tc, test_on_reply);
	tcase_add_test(tc, test_on_reply_errors);
	tcase_add_test(tc, test_lookup_order);
	tcase_add_test(tc, test_lookup_long_key);
	tcase_add_test(tc, test_lookup_inherit);
	tcase_add_test(tc, test_lookup_no_default);
	tcase_add_test(tc, test_bucket_spacing);
	tcase_add_test(tc, test_bucket_rates);
	tcase_add_test(tc, test_bucket_late_taker);
	tcase_add_test(tc, test_bucket_unlimited);
	tcase_add_test(tc, test_bucket_refund);
	tcase_add_test(tc, test_bucket_clock_back);
	tcase_add_test(tc, test_shipped);
	tcase_add_test(tc, test_providers);
	tcase_add_test(tc, test_provider_errors);
	tcase_add_test(tc, test_man_keys);
	tcase_add_test(tc, test_reserve);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(shaping_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
