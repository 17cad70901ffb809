/*
 * check_smtpcmd.c - unit tests for lib/smtpcmd: commands, paths, replies.
 *
 * Verbs are matched without regard to case and split from their argument;
 * MAIL FROM/RCPT TO paths are checked against RFC 5321 (brackets, null
 * path, source routes, quoted local parts, the 64/63/255/256 limits,
 * address literals); ESMTP parameters are iterated; server reply codes and
 * enhanced status codes (RFC 3463) are extracted with their fallbacks.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "smtpcmd.h"
#include "vbuf.h"

static int	 path(const char *, const char *, int, char *, const char **);
static void	 path_ok(const char *, const char *, int, const char *,
		    const char *);
static void	 path_bad(const char *, const char *, int, const char *);
static char	*repeat(char *, int, size_t);
static Suite	*smtpcmd_suite(void);

static struct vbuf *why;

static int
path(const char *arg, const char *kw, int allow_null, char *addr,
    const char **params)
{
	if (why == NULL)
		why = vbuf_create(0);
	vbuf_reset(why);
	return smtpcmd_path(arg, kw, allow_null, addr, params, why);
}

/* arg must parse to want with params pointing at want_params. */
static void
path_ok(const char *arg, const char *kw, int allow_null, const char *want,
    const char *want_params)
{
	char addr[SMTP_PATH_MAX + 1];
	const char *params = NULL;

	memset(addr, 'Z', sizeof(addr));
	ck_assert_msg(path(arg, kw, allow_null, addr, &params) == 0,
	    "refused \"%s\": %s", arg, why->data);
	ck_assert_str_eq(addr, want);
	ck_assert_ptr_nonnull(params);
	ck_assert_str_eq(params, want_params);
	/* params points into arg. */
	ck_assert(params >= arg && params <= arg + strlen(arg));
}

/* arg must be refused with a reason starting with code. */
static void
path_bad(const char *arg, const char *kw, int allow_null, const char *code)
{
	char addr[SMTP_PATH_MAX + 1];
	const char *params = NULL;

	ck_assert_msg(path(arg, kw, allow_null, addr, &params) == -1,
	    "accepted \"%s\" as \"%s\"", arg, addr);
	ck_assert_msg(strncmp(why->data, code, strlen(code)) == 0,
	    "\"%s\": reason \"%s\", want %s", arg, why->data, code);
}

static char *
repeat(char *buf, int c, size_t n)
{
	memset(buf, c, n);
	buf[n] = '\0';
	return buf;
}

START_TEST(test_parse_verbs)
{
	static const struct {
		const char		*line;
		enum smtpcmd_verb	 verb;
		const char		*name;
		const char		*arg;
	} t[] = {
		{ "HELO x.example", SMTPCMD_HELO, "HELO", "x.example" },
		{ "ehlo x.example", SMTPCMD_EHLO, "EHLO", "x.example" },
		{ "MaIl FROM:<a@b.c>", SMTPCMD_MAIL, "MAIL", "FROM:<a@b.c>" },
		{ "rcpt TO:<a@b.c> X=1", SMTPCMD_RCPT, "RCPT",
		    "TO:<a@b.c> X=1" },
		{ "DATA", SMTPCMD_DATA, "DATA", "" },
		{ "rset", SMTPCMD_RSET, "RSET", "" },
		{ "NOOP hello", SMTPCMD_NOOP, "NOOP", "hello" },
		{ "quit", SMTPCMD_QUIT, "QUIT", "" },
		{ "VRFY u", SMTPCMD_VRFY, "VRFY", "u" },
		{ "help", SMTPCMD_HELP, "HELP", "" },
		{ "StartTLS", SMTPCMD_STARTTLS, "STARTTLS", "" },
		{ "AUTH PLAIN AGEAYg==", SMTPCMD_AUTH, "AUTH",
		    "PLAIN AGEAYg==" },
		{ "BDAT 100 LAST", SMTPCMD_BDAT, "BDAT", "100 LAST" },
		{ "expn list", SMTPCMD_EXPN, "EXPN", "list" },
		/* Only one space is eaten. */
		{ "MAIL  FROM:<>", SMTPCMD_MAIL, "MAIL", " FROM:<>" },
		{ "QUIT ", SMTPCMD_QUIT, "QUIT", "" },
		/* Unknown verbs and prefixes of known ones. */
		{ "FOO bar", SMTPCMD_UNKNOWN, "UNKNOWN", "bar" },
		{ "", SMTPCMD_UNKNOWN, "UNKNOWN", "" },
		{ "QUI", SMTPCMD_UNKNOWN, "UNKNOWN", "" },
		{ "QUITX", SMTPCMD_UNKNOWN, "UNKNOWN", "" },
		{ "STARTTLSX", SMTPCMD_UNKNOWN, "UNKNOWN", "" },
		{ "MAIL:FROM:<>", SMTPCMD_UNKNOWN, "UNKNOWN", "" },
		{ " QUIT", SMTPCMD_UNKNOWN, "UNKNOWN", "QUIT" },
		{ "QUIT\t", SMTPCMD_UNKNOWN, "UNKNOWN", "" },
	};
	struct smtpcmd cmd;
	size_t i;

	for (i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		memset(&cmd, 0, sizeof(cmd));
		smtpcmd_parse(t[i].line, &cmd);
		ck_assert_msg(cmd.verb == t[i].verb, "\"%s\": verb %d",
		    t[i].line, (int)cmd.verb);
		ck_assert_str_eq(cmd.name, t[i].name);
		ck_assert_str_eq(cmd.arg, t[i].arg);
	}
}
END_TEST

START_TEST(test_path_valid)
{
	char local[SMTP_LOCAL_MAX + 1], label[64], arg[600], want[300];

	path_ok("FROM:<a@b.c>", "FROM", 0, "a@b.c", "");
	path_ok("from:<a@b.c>", "FROM", 0, "a@b.c", "");
	path_ok("TO:<User.Name+tag@Example.COM>", "TO", 0,
	    "User.Name+tag@Example.COM", "");
	/* Spaces after the colon are tolerated. */
	path_ok("FROM: <a@b.c>", "FROM", 0, "a@b.c", "");
	path_ok("TO:   <a@b.c>", "TO", 0, "a@b.c", "");
	/* Parameters. */
	path_ok("FROM:<a@b.c> SIZE=100 BODY=8BITMIME", "FROM", 0, "a@b.c",
	    "SIZE=100 BODY=8BITMIME");
	path_ok("TO:<a@b.c> NOTIFY=NEVER", "TO", 0, "a@b.c", "NOTIFY=NEVER");
	/* The null path, where allowed. */
	path_ok("FROM:<>", "FROM", 1, "", "");
	path_ok("FROM:<> SIZE=5", "FROM", 1, "", "SIZE=5");
	/* A source route is dropped. */
	path_ok("TO:<@x.example,@y.example:a@b.c>", "TO", 0, "a@b.c", "");
	path_ok("TO:<@x.example:a@b.c>", "TO", 0, "a@b.c", "");
	/* Quoted local parts, with '@', '>' and escapes inside. */
	path_ok("TO:<\"a b\"@b.c>", "TO", 0, "\"a b\"@b.c", "");
	path_ok("TO:<\"\"@b.c>", "TO", 0, "\"\"@b.c", "");	/* RFC 5321 */
	path_ok("TO:<\"a@x\"@b.c>", "TO", 0, "\"a@x\"@b.c", "");
	path_ok("TO:<\"a>x\"@b.c> SIZE=1", "TO", 0, "\"a>x\"@b.c",
	    "SIZE=1");
	path_ok("TO:<\"a\\\"b\"@b.c>", "TO", 0, "\"a\\\"b\"@b.c", "");
	/* Address literals. */
	path_ok("TO:<a@[192.0.2.1]>", "TO", 0, "a@[192.0.2.1]", "");
	path_ok("TO:<a@[IPv6:2001:db8::1]>", "TO", 0,
	    "a@[IPv6:2001:db8::1]", "");
	/* UTF-8 (SMTPUTF8) local part and domain. */
	path_ok("TO:<j\xc3\xb6rg@b\xc3\xbc.example>", "TO", 0,
	    "j\xc3\xb6rg@b\xc3\xbc.example", "");

	/* Exactly at the limits: local part 64, label 63, path 256. */
	repeat(local, 'l', SMTP_LOCAL_MAX);
	snprintf(arg, sizeof(arg), "TO:<%s@b.c>", local);
	snprintf(want, sizeof(want), "%s@b.c", local);
	path_ok(arg, "TO", 0, want, "");
	repeat(label, 'd', 63);
	snprintf(arg, sizeof(arg), "TO:<a@%s.c>", label);
	snprintf(want, sizeof(want), "a@%s.c", label);
	path_ok(arg, "TO", 0, want, "");
	/* 1 + 1 + 63 * 3 + 3 + 62 = 256 bytes. */
	repeat(label, 'e', 62);
	snprintf(want, sizeof(want), "a@%s.%s.%s.%s", repeat(local, 'a', 63),
	    local, local, label);
	ck_assert_uint_eq(strlen(want), SMTP_PATH_MAX);
	snprintf(arg, sizeof(arg), "TO:<%s>", want);
	path_ok(arg, "TO", 0, want, "");
}
END_TEST

START_TEST(test_path_invalid)
{
	char local[SMTP_LOCAL_MAX + 2], label[65], arg[600], big[300];

	/* Keyword and brackets. */
	path_bad("TO:<a@b.c>", "FROM", 0, "5.5.4");
	path_bad("FROM <a@b.c>", "FROM", 0, "5.5.4");
	path_bad("FROM:a@b.c", "FROM", 0, "5.5.4");
	path_bad("FROM:", "FROM", 0, "5.5.4");
	path_bad("FROM:<a@b.c", "FROM", 0, "5.5.4");
	path_bad("FROM:<a@b.c>x", "FROM", 0, "5.5.4");
	path_bad("FROM:<a@b.c>>", "FROM", 0, "5.5.4");
	path_bad("FROM:<a@b.c><x@y.z>", "FROM", 0, "5.5.4");
	path_bad("TO:<\"a@b.c>", "TO", 0, "5.5.4");
	path_bad("", "TO", 0, "5.5.4");
	/* The null path only where allowed. */
	path_bad("FROM:<>", "FROM", 0, "5.1.3");
	path_bad("TO:<>", "TO", 0, "5.1.3");
	/* Local parts. */
	path_bad("TO:<b.c>", "TO", 0, "5.1.3");
	path_bad("TO:<a@>", "TO", 0, "5.1.3");
	path_bad("TO:<.a@b.c>", "TO", 0, "5.1.3");
	path_bad("TO:<a.@b.c>", "TO", 0, "5.1.3");
	path_bad("TO:<a..b@b.c>", "TO", 0, "5.1.3");
	path_bad("TO:<a b@b.c>", "TO", 0, "5.1.3");
	path_bad("TO:<a(b)@b.c>", "TO", 0, "5.1.3");
	path_bad("TO:<a\x01@b.c>", "TO", 0, "5.1.3");
	path_bad("TO:<\"a\x01\"@b.c>", "TO", 0, "5.1.3");
	path_bad("TO:<@b.c>", "TO", 0, "5.1.3");
	path_bad("TO:<@x.example,a@b.c>", "TO", 0, "5.1.3");
	repeat(local, 'l', SMTP_LOCAL_MAX + 1);
	snprintf(arg, sizeof(arg), "TO:<%s@b.c>", local);
	path_bad(arg, "TO", 0, "5.1.3");
	/* Domains. */
	path_bad("TO:<a@b..c>", "TO", 0, "5.1.2");
	path_bad("TO:<a@.b.c>", "TO", 0, "5.1.2");
	path_bad("TO:<a@b.c.>", "TO", 0, "5.1.2");
	path_bad("TO:<a@-b.c>", "TO", 0, "5.1.2");
	path_bad("TO:<a@b-.c>", "TO", 0, "5.1.2");
	path_bad("TO:<a@b_c!>", "TO", 0, "5.1.2");
	path_bad("TO:<a@[192.0.2.1>", "TO", 0, "5.1.2");
	path_bad("TO:<a@[]>", "TO", 0, "5.1.2");
	path_bad("TO:<a@[1 2]>", "TO", 0, "5.1.2");
	repeat(label, 'd', 64);
	snprintf(arg, sizeof(arg), "TO:<a@%s.c>", label);
	path_bad(arg, "TO", 0, "5.1.2");
	/* Whole path over 256 bytes. */
	memset(big, 'x', sizeof(big));
	snprintf(arg, sizeof(arg), "TO:<a@%.*s.%.*s.%.*s.%.*s>", 63, big,
	    63, big, 63, big, 63, big);
	ck_assert_uint_eq(strlen(arg) - 5, SMTP_PATH_MAX + 1);
	path_bad(arg, "TO", 0, "5.1.3");
	snprintf(arg, sizeof(arg), "TO:<@r.example:a@%.*s.%.*s.%.*s.%.*s>",
	    63, big, 63, big, 63, big, 63, big);
	path_bad(arg, "TO", 0, "5.1.3");
}
END_TEST

START_TEST(test_param_next)
{
	const char *p = "SIZE=100 BODY=8BITMIME";
	char key[33], value[257], big[400];

	ck_assert_int_eq(smtpcmd_param_next(&p, key, sizeof(key), value,
	    sizeof(value)), 1);
	ck_assert_str_eq(key, "SIZE");
	ck_assert_str_eq(value, "100");
	ck_assert_int_eq(smtpcmd_param_next(&p, key, sizeof(key), value,
	    sizeof(value)), 1);
	ck_assert_str_eq(key, "BODY");
	ck_assert_str_eq(value, "8BITMIME");
	ck_assert_int_eq(smtpcmd_param_next(&p, key, sizeof(key), value,
	    sizeof(value)), 0);
	ck_assert_int_eq(smtpcmd_param_next(&p, key, sizeof(key), value,
	    sizeof(value)), 0);

	/* Keys are upper-cased; a key alone has an empty value. */
	p = "  smtputf8   ret=HDRS  ";
	ck_assert_int_eq(smtpcmd_param_next(&p, key, sizeof(key), value,
	    sizeof(value)), 1);
	ck_assert_str_eq(key, "SMTPUTF8");
	ck_assert_str_eq(value, "");
	ck_assert_int_eq(smtpcmd_param_next(&p, key, sizeof(key), value,
	    sizeof(value)), 1);
	ck_assert_str_eq(key, "RET");
	ck_assert_str_eq(value, "HDRS");
	ck_assert_int_eq(smtpcmd_param_next(&p, key, sizeof(key), value,
	    sizeof(value)), 0);

	p = "";
	ck_assert_int_eq(smtpcmd_param_next(&p, key, sizeof(key), value,
	    sizeof(value)), 0);

	/* Malformed. */
	p = "=100";
	ck_assert_int_eq(smtpcmd_param_next(&p, key, sizeof(key), value,
	    sizeof(value)), -1);
	p = "SI_ZE=1";
	ck_assert_int_eq(smtpcmd_param_next(&p, key, sizeof(key), value,
	    sizeof(value)), -1);
	p = "SIZE=1\x01";
	ck_assert_int_eq(smtpcmd_param_next(&p, key, sizeof(key), value,
	    sizeof(value)), -1);
	p = "SIZE=\xc3\xa9";
	ck_assert_int_eq(smtpcmd_param_next(&p, key, sizeof(key), value,
	    sizeof(value)), -1);
	p = "SIZE=1\t2";
	ck_assert_int_eq(smtpcmd_param_next(&p, key, sizeof(key), value,
	    sizeof(value)), -1);
	/* Over-long key (32 fits) and value (256 fits). */
	memset(big, 'K', sizeof(big));
	big[32] = '\0';
	p = big;
	ck_assert_int_eq(smtpcmd_param_next(&p, key, sizeof(key), value,
	    sizeof(value)), 1);
	ck_assert_uint_eq(strlen(key), 32);
	big[32] = 'K';
	big[33] = '\0';
	p = big;
	ck_assert_int_eq(smtpcmd_param_next(&p, key, sizeof(key), value,
	    sizeof(value)), -1);
	memset(big, 'v', sizeof(big));
	memcpy(big, "X=", 2);
	big[2 + 256] = '\0';
	p = big;
	ck_assert_int_eq(smtpcmd_param_next(&p, key, sizeof(key), value,
	    sizeof(value)), 1);
	ck_assert_uint_eq(strlen(value), 256);
	big[2 + 256] = 'v';
	big[2 + 257] = '\0';
	p = big;
	ck_assert_int_eq(smtpcmd_param_next(&p, key, sizeof(key), value,
	    sizeof(value)), -1);
}
END_TEST

START_TEST(test_bdat)
{
	static const char *bad[] = { "", " 10", "10 ", "10 LASTX", "x",
	    "-1", "10  LAST", "10 LAST x", "12345678901234567890", "1e3",
	    "10\tLAST" };
	uint64_t size;
	int last;

	ck_assert_int_eq(smtpcmd_bdat("0 LAST", &size, &last), 0);
	ck_assert_uint_eq(size, 0);
	ck_assert_int_eq(last, 1);
	ck_assert_int_eq(smtpcmd_bdat("4096", &size, &last), 0);
	ck_assert_uint_eq(size, 4096);
	ck_assert_int_eq(last, 0);
	ck_assert_int_eq(smtpcmd_bdat("1234567890123456789 last", &size,
	    &last), 0);
	ck_assert_uint_eq(size, 1234567890123456789ULL);
	ck_assert_int_eq(last, 1);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		ck_assert_msg(smtpcmd_bdat(bad[i], &size, &last) == -1,
		    "accepted %s", bad[i]);
}
END_TEST

START_TEST(test_domain_ok)
{
	static const char *good[] = {
		"example.com", "b.c", "localhost", "a-b.example", "x1.y2",
		"EXAMPLE.COM", "_dmarc.example", "[192.0.2.1]",
		"[IPv6:2001:db8::1]", "xn--bcher-kva.example",
		"b\xc3\xbc.example",
	};
	static const char *bad[] = {
		"", ".", "a..b", ".a", "a.", "-a.b", "a-.b", "a.b-", "a b",
		"a/b", "a@b", "[192.0.2.1", "192.0.2.1]", "[]", "[a]b]",
		"[a\\b]", "[a b]", "a\r\nb",
	};
	char d[400];
	size_t i;

	for (i = 0; i < sizeof(good) / sizeof(good[0]); i++)
		ck_assert_msg(smtpcmd_domain_ok(good[i]), "refused %s",
		    good[i]);
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		ck_assert_msg(!smtpcmd_domain_ok(bad[i]), "accepted %s",
		    bad[i]);

	/* Labels up to 63 bytes, names up to 255. */
	repeat(d, 'a', 63);
	ck_assert(smtpcmd_domain_ok(d));
	repeat(d, 'a', 64);
	ck_assert(!smtpcmd_domain_ok(d));
	memset(d, 'a', sizeof(d));
	for (i = 60; i < sizeof(d); i += 61)
		d[i] = '.';
	d[255] = '\0';
	ck_assert(d[254] != '.');
	ck_assert(smtpcmd_domain_ok(d));
	d[255] = 'a';
	d[256] = '\0';
	ck_assert(!smtpcmd_domain_ok(d));
}
END_TEST

START_TEST(test_addr_domain)
{
	char out[64], small[5];

	smtpcmd_addr_domain("User@Example.COM", out, sizeof(out));
	ck_assert_str_eq(out, "example.com");
	smtpcmd_addr_domain("\"a@b\"@X.Y", out, sizeof(out));
	ck_assert_str_eq(out, "x.y");
	smtpcmd_addr_domain("a@[IPv6:2001:DB8::1]", out, sizeof(out));
	ck_assert_str_eq(out, "[ipv6:2001:db8::1]");
	memcpy(out, "junk", 5);
	smtpcmd_addr_domain("", out, sizeof(out));
	ck_assert_str_eq(out, "");
	smtpcmd_addr_domain("nodomain", out, sizeof(out));
	ck_assert_str_eq(out, "");
	/* Truncated to the buffer, still terminated. */
	memset(small, 'Z', sizeof(small));
	smtpcmd_addr_domain("a@ABCDEFGH", small, sizeof(small));
	ck_assert_str_eq(small, "abcd");
}
END_TEST

START_TEST(test_reply_code)
{
	int last = -1;

	ck_assert_int_eq(smtpcmd_reply_code("250 ok", &last), 250);
	ck_assert_int_eq(last, 1);
	ck_assert_int_eq(smtpcmd_reply_code("250-PIPELINING", &last), 250);
	ck_assert_int_eq(last, 0);
	ck_assert_int_eq(smtpcmd_reply_code("354", &last), 354);
	ck_assert_int_eq(last, 1);
	ck_assert_int_eq(smtpcmd_reply_code("599 x", &last), 599);
	ck_assert_int_eq(smtpcmd_reply_code("200 x", &last), 200);
	ck_assert_int_eq(smtpcmd_reply_code("421-a", &last), 421);
	ck_assert_int_eq(last, 0);

	ck_assert_int_eq(smtpcmd_reply_code("", &last), -1);
	ck_assert_int_eq(smtpcmd_reply_code("25", &last), -1);
	ck_assert_int_eq(smtpcmd_reply_code("2a0 x", &last), -1);
	ck_assert_int_eq(smtpcmd_reply_code("2500 x", &last), -1);
	ck_assert_int_eq(smtpcmd_reply_code("250x", &last), -1);
	ck_assert_int_eq(smtpcmd_reply_code("250\tx", &last), -1);
	ck_assert_int_eq(smtpcmd_reply_code("199 x", &last), -1);
	ck_assert_int_eq(smtpcmd_reply_code("600 x", &last), -1);
	ck_assert_int_eq(smtpcmd_reply_code("000 x", &last), -1);
	ck_assert_int_eq(smtpcmd_reply_code(" 250 x", &last), -1);
	ck_assert_int_eq(smtpcmd_reply_code("-250 x", &last), -1);
}
END_TEST

START_TEST(test_reply_dsn)
{
	char dsn[16];

	ck_assert_int_eq(smtpcmd_reply_dsn(550, "5.1.1 User unknown", dsn), 1);
	ck_assert_str_eq(dsn, "5.1.1");
	ck_assert_int_eq(smtpcmd_reply_dsn(250, "2.0.0 Ok", dsn), 1);
	ck_assert_str_eq(dsn, "2.0.0");
	ck_assert_int_eq(smtpcmd_reply_dsn(451, "4.7.650 later", dsn), 1);
	ck_assert_str_eq(dsn, "4.7.650");
	ck_assert_int_eq(smtpcmd_reply_dsn(552, "5.3.4", dsn), 1);
	ck_assert_str_eq(dsn, "5.3.4");
	ck_assert_int_eq(smtpcmd_reply_dsn(554, "5.123.456 x", dsn), 1);
	ck_assert_str_eq(dsn, "5.123.456");

	/* No code: the class from the reply. */
	ck_assert_int_eq(smtpcmd_reply_dsn(550, "User unknown", dsn), 0);
	ck_assert_str_eq(dsn, "5.0.0");
	ck_assert_int_eq(smtpcmd_reply_dsn(451, "try later", dsn), 0);
	ck_assert_str_eq(dsn, "4.0.0");
	ck_assert_int_eq(smtpcmd_reply_dsn(421, "", dsn), 0);
	ck_assert_str_eq(dsn, "4.0.0");
	ck_assert_int_eq(smtpcmd_reply_dsn(250, "ok", dsn), 0);
	ck_assert_str_eq(dsn, "2.0.0");
	/* Class mismatch ("550 4.1.1"): the reply code wins. */
	ck_assert_int_eq(smtpcmd_reply_dsn(550, "4.1.1 x", dsn), 0);
	ck_assert_str_eq(dsn, "5.0.0");
	ck_assert_int_eq(smtpcmd_reply_dsn(450, "5.1.1 x", dsn), 0);
	ck_assert_str_eq(dsn, "4.0.0");
	/* Malformed codes. */
	ck_assert_int_eq(smtpcmd_reply_dsn(550, "5.1 x", dsn), 0);
	ck_assert_str_eq(dsn, "5.0.0");
	ck_assert_int_eq(smtpcmd_reply_dsn(550, "5.1.1x", dsn), 0);
	ck_assert_str_eq(dsn, "5.0.0");
	ck_assert_int_eq(smtpcmd_reply_dsn(550, "5.1234.1 x", dsn), 0);
	ck_assert_str_eq(dsn, "5.0.0");
	ck_assert_int_eq(smtpcmd_reply_dsn(550, "5.1.1234 x", dsn), 0);
	ck_assert_str_eq(dsn, "5.0.0");
	ck_assert_int_eq(smtpcmd_reply_dsn(550, "5..1 x", dsn), 0);
	ck_assert_str_eq(dsn, "5.0.0");
	ck_assert_int_eq(smtpcmd_reply_dsn(550, "3.1.1 x", dsn), 0);
	ck_assert_str_eq(dsn, "5.0.0");
	ck_assert_int_eq(smtpcmd_reply_dsn(550, " 5.1.1 x", dsn), 0);
	ck_assert_str_eq(dsn, "5.0.0");
}
END_TEST

static Suite *
smtpcmd_suite(void)
{
	Suite *s = suite_create("smtpcmd");
	TCase *tc = tcase_create("smtpcmd");

	tcase_add_test(tc, test_parse_verbs);
	tcase_add_test(tc, test_path_valid);
	tcase_add_test(tc, test_path_invalid);
	tcase_add_test(tc, test_param_next);
	tcase_add_test(tc, test_domain_ok);
	tcase_add_test(tc, test_bdat);
	tcase_add_test(tc, test_addr_domain);
	tcase_add_test(tc, test_reply_code);
	tcase_add_test(tc, test_reply_dsn);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(smtpcmd_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	vbuf_free(why);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
