/*
 * fuzz_smtpcmd.c - libFuzzer target for the SMTP command, address, BDAT
 * argument and reply parsers in lib/smtpcmd.c, and the UTF-8 check
 * (lib/utf8.c) that SMTPUTF8 arguments meet.
 *
 * The input is one command line (without CRLF; it ends at the first NUL as
 * smtpd's lines do). Every parser runs on it and the invariants smtpd and
 * smtp rely on are checked with ASSERT, which aborts: a crash, a sanitizer
 * report or a broken invariant is a finding. Output buffers are allocated
 * at their exact documented size so that AddressSanitizer sees any write
 * past them. Built and run by `make fuzz`; see tests/fuzz/README.md.
 */
#include <ctype.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "log.h"
#include "smtpcmd.h"
#include "utf8.h"
#include "vbuf.h"
#include "xalloc.h"

#define FUZZ_KEYSIZE	33	/* smtpcmd.h: key <= 32 bytes */
#define FUZZ_VALUESIZE	257	/* smtpcmd.h: value <= 256 bytes */
#define FUZZ_DSNSIZE	16	/* smtpcmd.h: dsn is 16 bytes */

int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);

static void	fuzz_parse(const char *, size_t);
static void	fuzz_path(const char *, size_t, const char *, int);
static void	fuzz_params(const char *, size_t, size_t, size_t);
static void	fuzz_domain(const char *, size_t);
static void	fuzz_addr_domain(const char *, size_t);
static void	fuzz_reply(const char *, size_t);
static void	fuzz_dsn(int, const char *);
static int	fuzz_inside(const char *, const char *, size_t);
static void	fuzz_bdat(const char *);

/* BDAT's argument: a size within 19 digits, LAST only when said. */
static void
fuzz_bdat(const char *line)
{
	uint64_t size = 0;
	int last = -1;

	/* RFC 3629 well-formedness, which smtpd asks of SMTPUTF8 input. */
	(void)utf8_valid(line, strlen(line));
	if (smtpcmd_bdat(line, &size, &last) == 0) {
		ASSERT(last == 0 || last == 1);
		ASSERT(line[0] >= '0' && line[0] <= '9');
		ASSERT(last == (strchr(line, ' ') != NULL));
	}
}

/* 1 if p points into line[0..len], the terminating NUL included. */
static int
fuzz_inside(const char *p, const char *line, size_t len)
{
	return p >= line && p <= line + len;
}

static void
fuzz_parse(const char *line, size_t len)
{
	struct smtpcmd cmd;
	size_t n;

	smtpcmd_parse(line, &cmd);
	ASSERT(cmd.name != NULL && cmd.arg != NULL);
	n = strlen(cmd.name);
	if (cmd.verb == SMTPCMD_UNKNOWN)
		ASSERT(strcmp(cmd.name, "UNKNOWN") == 0);
	else {
		/* The verb is the whole first word, in any case. */
		ASSERT(n <= len && strncasecmp(line, cmd.name, n) == 0);
		ASSERT(line[n] == '\0' || line[n] == ' ');
	}
	if (*cmd.arg != '\0') {
		/* The argument follows the first space of the line. */
		ASSERT(fuzz_inside(cmd.arg, line, len));
		ASSERT(cmd.arg > line && cmd.arg[-1] == ' ');
		ASSERT(memchr(line, ' ', (size_t)(cmd.arg - line - 1)) ==
		    NULL);
	}
	/* smtpd passes the argument on to the path parser. */
	fuzz_path(cmd.arg, strlen(cmd.arg), "FROM", 1);
	fuzz_path(cmd.arg, strlen(cmd.arg), "TO", 0);
}

static void
fuzz_path(const char *arg, size_t len, const char *keyword, int allow_null)
{
	struct vbuf *why;
	char *addr, *again, *line2;
	const char *params, *params2, *at;
	size_t n, i;
	int rc, rc_other;

	why = vbuf_create(0);
	addr = xmalloc(SMTP_PATH_MAX + 1);
	params = NULL;
	rc = smtpcmd_path(arg, keyword, allow_null, addr, &params, why);
	if (rc == -1) {
		/* A reply-ready reason: "5.X.Y text". */
		ASSERT(why->len >= 6 && why->data[0] == '5' &&
		    why->data[1] == '.');
		ASSERT(strchr(why->data, '\r') == NULL &&
		    strchr(why->data, '\n') == NULL);
		goto out;
	}
	ASSERT(rc == 0);
	ASSERT(params != NULL && fuzz_inside(params, arg, len));
	n = strlen(addr);
	ASSERT(n <= SMTP_PATH_MAX);
	/* The mailbox is copied from inside the brackets. */
	ASSERT(n == 0 || memmem(arg, len, addr, n) != NULL);
	if (n == 0) {
		ASSERT(allow_null);
		goto check_params;
	}
	/* No control characters: the address goes into logs and files. */
	for (i = 0; i < n; i++)
		ASSERT((unsigned char)addr[i] >= 0x20 &&
		    (unsigned char)addr[i] != 0x7f);
	at = strrchr(addr, '@');
	ASSERT(at != NULL && at > addr && at[1] != '\0');
	ASSERT((size_t)(at - addr) <= SMTP_LOCAL_MAX);
	ASSERT(strlen(at + 1) <= SMTP_DOMAIN_MAX);
	ASSERT(smtpcmd_domain_ok(at + 1));
	/*
	 * Angle brackets, quotes and spaces only inside a quoted local
	 * part: elsewhere they would let the address end early or change
	 * meaning when it is written back as "<addr>" into logs or to the
	 * next hop.
	 */
	for (i = addr[0] == '"' ? (size_t)(at - addr) : 0; i < n; i++)
		ASSERT(strchr("<>\" \\", addr[i]) == NULL);
	/* Idempotent: "<addr>" parses back to the same mailbox. */
	line2 = xmalloc(strlen(keyword) + n + 4);
	(void)snprintf(line2, strlen(keyword) + n + 4, "%s:<%s>", keyword,
	    addr);
	again = xmalloc(SMTP_PATH_MAX + 1);
	params2 = NULL;
	ASSERT(smtpcmd_path(line2, keyword, 0, again, &params2, why) == 0);
	ASSERT(strcmp(addr, again) == 0 && *params2 == '\0');
	free(again);
	free(line2);

	/* A non-null path does not depend on allow_null. */
	again = xmalloc(SMTP_PATH_MAX + 1);
	rc_other = smtpcmd_path(arg, keyword, !allow_null, again, &params2,
	    why);
	ASSERT(rc_other == 0 && strcmp(addr, again) == 0 &&
	    params2 == params);
	free(again);

check_params:
	fuzz_params(params, strlen(params), FUZZ_KEYSIZE, FUZZ_VALUESIZE);
out:
	free(addr);
	vbuf_free(why);
}

static void
fuzz_params(const char *s, size_t len, size_t keysize, size_t valuesize)
{
	const char *p = s, *before;
	char *key, *value;
	size_t i, rounds;
	int rc;

	key = xmalloc(keysize);
	value = xmalloc(valuesize);
	/* Each parameter consumes at least one byte: bounded by len. */
	for (rounds = 0; rounds <= len + 1; rounds++) {
		before = p;
		rc = smtpcmd_param_next(&p, key, keysize, value, valuesize);
		if (rc == -1) {
			ASSERT(p == before);
			break;
		}
		ASSERT(fuzz_inside(p, s, len));
		if (rc == 0) {
			ASSERT(*p == '\0');
			break;
		}
		ASSERT(rc == 1 && p > before);
		ASSERT(*p == '\0' || *p == ' ');
		ASSERT(strlen(key) > 0 && strlen(key) < keysize);
		ASSERT(strlen(value) < valuesize);
		for (i = 0; key[i] != '\0'; i++)
			ASSERT(isupper((unsigned char)key[i]) ||
			    isdigit((unsigned char)key[i]) || key[i] == '-');
		for (i = 0; value[i] != '\0'; i++)
			ASSERT((unsigned char)value[i] >= 0x21 &&
			    (unsigned char)value[i] <= 0x7e);
	}
	ASSERT(rounds <= len + 1);
	free(value);
	free(key);
}

static void
fuzz_domain(const char *s, size_t len)
{
	size_t i;

	if (!smtpcmd_domain_ok(s))
		return;
	ASSERT(len > 0 && len <= SMTP_DOMAIN_MAX);
	for (i = 0; i < len; i++)
		ASSERT((unsigned char)s[i] > 0x20 &&
		    (unsigned char)s[i] != 0x7f);
	if (s[0] != '[')
		ASSERT(strchr(s, '@') == NULL && strchr(s, '>') == NULL);
}

static void
fuzz_addr_domain(const char *addr, size_t len)
{
	static const size_t sizes[] = { 0, 1, 2, 16, SMTP_DOMAIN_MAX + 1 };
	const char *at = strrchr(addr, '@');
	char *out;
	size_t i, k, want;

	(void)len;
	for (k = 0; k < sizeof(sizes) / sizeof(sizes[0]); k++) {
		/* size 0 must not touch out at all. */
		out = sizes[k] == 0 ? NULL : xmalloc(sizes[k]);
		smtpcmd_addr_domain(addr, out, sizes[k]);
		if (sizes[k] == 0)
			continue;
		want = at == NULL ? 0 : strlen(at + 1);
		if (want > sizes[k] - 1)
			want = sizes[k] - 1;
		ASSERT(strlen(out) == want);
		for (i = 0; i < want; i++)
			ASSERT(out[i] ==
			    (char)tolower((unsigned char)at[1 + i]));
		free(out);
	}
}

static void
fuzz_dsn(int code, const char *text)
{
	char *dsn, want[FUZZ_DSNSIZE];
	size_t n, i, dots;
	int rc;

	dsn = xmalloc(FUZZ_DSNSIZE);
	rc = smtpcmd_reply_dsn(code, text, dsn);
	n = strnlen(dsn, FUZZ_DSNSIZE);
	ASSERT(n < FUZZ_DSNSIZE);
	if (rc == 1) {
		/* X.Y.Z of the reply's class, copied from the text. */
		ASSERT(n >= 5 && n <= 9 && dsn[0] == '0' + code / 100);
		ASSERT(strncmp(text, dsn, n) == 0);
		ASSERT(text[n] == '\0' || text[n] == ' ');
		for (i = 0, dots = 0; i < n; i++) {
			if (dsn[i] == '.') {
				ASSERT(i > 0 && dsn[i - 1] != '.');
				dots++;
			} else
				ASSERT(isdigit((unsigned char)dsn[i]));
		}
		ASSERT(dots == 2 && dsn[n - 1] != '.');
	} else {
		ASSERT(rc == 0);
		(void)snprintf(want, sizeof(want), "%d.0.0", code / 100);
		ASSERT(strcmp(dsn, want) == 0);
	}
	free(dsn);
}

static void
fuzz_reply(const char *line, size_t len)
{
	int code, last;

	last = -1;
	code = smtpcmd_reply_code(line, &last);
	if (code != -1) {
		ASSERT(len >= 3 && code >= 200 && code <= 599);
		ASSERT(code == (line[0] - '0') * 100 + (line[1] - '0') * 10 +
		    (line[2] - '0'));
		ASSERT((last == 1 && (line[3] == ' ' || line[3] == '\0')) ||
		    (last == 0 && line[3] == '-'));
		/* smtp takes the DSN from the text after "DDD ". */
		fuzz_dsn(code, line[3] == '\0' ? line + 3 : line + 4);
	}
	/* The text itself, for each reply class. */
	fuzz_dsn(250, line);
	fuzz_dsn(451, line);
	fuzz_dsn(554, line);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *line;
	size_t len;

	/* A NUL-terminated copy of exactly the input's size. */
	line = xmalloc(size + 1);
	if (size > 0)
		memcpy(line, data, size);
	line[size] = '\0';
	len = strlen(line);

	fuzz_parse(line, len);
	fuzz_path(line, len, "FROM", 0);
	fuzz_path(line, len, "FROM", 1);
	fuzz_path(line, len, "TO", 0);
	fuzz_path(line, len, "TO", 1);
	fuzz_params(line, len, FUZZ_KEYSIZE, FUZZ_VALUESIZE);
	fuzz_params(line, len, 2, 2);	/* tiny buffers: room for 1 byte */
	fuzz_params(line, len, 1, 1);	/* room for the NUL only */
	fuzz_domain(line, len);
	fuzz_addr_domain(line, len);
	fuzz_bdat(line);
	fuzz_reply(line, len);

	free(line);
	return 0;
}
