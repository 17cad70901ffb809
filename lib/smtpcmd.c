/*
 * smtpcmd.c - SMTP command, address and reply parsing (see smtpcmd.h).
 */
#include <arpa/inet.h>

#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "smtpcmd.h"

static const struct {
	const char		*name;
	enum smtpcmd_verb	 verb;
} smtpcmd_verbs[] = {
	{ "HELO", SMTPCMD_HELO },
	{ "EHLO", SMTPCMD_EHLO },
	{ "MAIL", SMTPCMD_MAIL },
	{ "RCPT", SMTPCMD_RCPT },
	{ "DATA", SMTPCMD_DATA },
	{ "RSET", SMTPCMD_RSET },
	{ "NOOP", SMTPCMD_NOOP },
	{ "QUIT", SMTPCMD_QUIT },
	{ "VRFY", SMTPCMD_VRFY },
	{ "HELP", SMTPCMD_HELP },
	{ "STARTTLS", SMTPCMD_STARTTLS },
	{ "AUTH", SMTPCMD_AUTH },
	{ "BDAT", SMTPCMD_BDAT },
	{ "EXPN", SMTPCMD_EXPN },
};

static int smtpcmd_atext(int);
static int smtpcmd_local_ok(const char *, size_t);

void
smtpcmd_parse(const char *line, struct smtpcmd *cmd)
{
	size_t n, i;

	cmd->verb = SMTPCMD_UNKNOWN;
	cmd->name = "UNKNOWN";
	cmd->arg = "";
	for (n = 0; line[n] != '\0' && line[n] != ' '; n++)
		;
	for (i = 0; i < sizeof(smtpcmd_verbs) / sizeof(smtpcmd_verbs[0]);
	    i++) {
		if (strlen(smtpcmd_verbs[i].name) == n &&
		    strncasecmp(line, smtpcmd_verbs[i].name, n) == 0) {
			cmd->verb = smtpcmd_verbs[i].verb;
			cmd->name = smtpcmd_verbs[i].name;
			break;
		}
	}
	if (line[n] == ' ')
		cmd->arg = line + n + 1;
}

/* RFC 5322 atext. */
static int
smtpcmd_atext(int c)
{
	return isalnum(c) || (c != '\0' && strchr("!#$%&'*+-/=?^_`{|}~", c)
	    != NULL) || c >= 0x80;
}

/* Dot-string or quoted-string (RFC 5321 4.1.2); UTF-8 allowed. */
static int
smtpcmd_local_ok(const char *s, size_t n)
{
	size_t i;

	if (n == 0 || n > SMTP_LOCAL_MAX)
		return 0;
	if (s[0] == '"') {
		if (n < 2 || s[n - 1] != '"')
			return 0;
		for (i = 1; i < n - 1; i++) {
			unsigned char c = (unsigned char)s[i];

			if (c == '\\') {
				if (++i >= n - 1 || s[i] < 0x20 || s[i] > 0x7e)
					return 0;
			} else if (c < 0x20 || c == 0x7f || c == '"')
				return 0;
		}
		return 1;
	}
	if (s[0] == '.' || s[n - 1] == '.')
		return 0;
	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c == '.') {
			if (s[i + 1] == '.')
				return 0;
		} else if (!smtpcmd_atext(c))
			return 0;
	}
	return 1;
}

int
smtpcmd_bdat(const char *arg, uint64_t *size, int *last)
{
	uint64_t n = 0;
	size_t digits = 0;

	while (*arg >= '0' && *arg <= '9') {
		if (++digits > 19)
			return -1;
		n = n * 10 + (uint64_t)(*arg++ - '0');
	}
	if (digits == 0)
		return -1;
	*size = n;
	*last = 0;
	if (*arg == '\0')
		return 0;
	if (*arg++ != ' ')
		return -1;
	if (strcasecmp(arg, "LAST") != 0)
		return -1;
	*last = 1;
	return 0;
}

int
smtpcmd_domain_ok(const char *s)
{
	size_t n = strlen(s), label = 0, i;

	if (n == 0 || n > SMTP_DOMAIN_MAX)
		return 0;
	if (s[0] == '[') {
		/* Address literal: [IPv4] or [IPv6:...] (RFC 5321 4.1.3). */
		char lit[SMTP_DOMAIN_MAX + 1];
		unsigned char a[16];

		if (n < 3 || s[n - 1] != ']')
			return 0;
		memcpy(lit, s + 1, n - 2);
		lit[n - 2] = '\0';
		if (strncasecmp(lit, "IPv6:", 5) == 0)
			return inet_pton(AF_INET6, lit + 5, a) == 1;
		return inet_pton(AF_INET, lit, a) == 1;
	}
	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c == '.') {
			if (label == 0 || s[i - 1] == '-')
				return 0;
			label = 0;
		} else if (isalnum(c) || c == '_' || c >= 0x80 ||
		    (c == '-' && label > 0)) {
			if (++label > 63)
				return 0;
		} else
			return 0;
	}
	return label > 0 && s[n - 1] != '-';
}

int
smtpcmd_path(const char *arg, const char *keyword, int allow_null,
    char *addr, const char **params, struct vbuf *why)
{
	size_t klen = strlen(keyword), n;
	const char *p = arg, *open, *close, *at, *mbox;
	int seen_at = 0;
	char domain[SMTP_DOMAIN_MAX + 1];

	if (strncasecmp(p, keyword, klen) != 0 || p[klen] != ':') {
		vbuf_setf(why, "5.5.4 Syntax: %s %s:<address>",
		    strcmp(keyword, "FROM") == 0 ? "MAIL" : "RCPT", keyword);
		return -1;
	}
	p += klen + 1;
	while (*p == ' ')	/* tolerated, as most servers do */
		p++;
	open = p;
	if (*open != '<') {
		vbuf_setf(why, "5.5.4 Syntax: address must be in <>");
		return -1;
	}
	/*
	 * Find the closing bracket outside a quoted string; quotes are only
	 * special in the local part, before the '@'.
	 */
	for (close = open + 1; *close != '\0' && *close != '>'; close++) {
		if (*close == '@')
			seen_at = 1;
		if (*close == '"' && !seen_at) {
			for (close++; *close != '\0' && *close != '"'; close++)
				if (*close == '\\' && close[1] != '\0')
					close++;
			if (*close == '\0')
				break;
		}
	}
	if (*close != '>') {
		vbuf_setf(why, "5.5.4 Syntax: missing >");
		return -1;
	}
	if (close[1] != '\0' && close[1] != ' ') {
		vbuf_setf(why, "5.5.4 Syntax: junk after address");
		return -1;
	}
	mbox = open + 1;
	/* Drop an RFC 5321 source route "@a,@b:". */
	if (*mbox == '@') {
		const char *colon = memchr(mbox, ':', (size_t)(close - mbox));

		if (colon == NULL) {
			vbuf_setf(why, "5.1.3 Bad address syntax");
			return -1;
		}
		mbox = colon + 1;
	}
	n = (size_t)(close - mbox);
	if (n > SMTP_PATH_MAX) {
		vbuf_setf(why, "5.1.3 Address too long");
		return -1;
	}
	*params = close[1] == ' ' ? close + 2 : close + 1;
	if (n == 0) {
		if (!allow_null) {
			vbuf_setf(why, "5.1.3 Null address not allowed here");
			return -1;
		}
		addr[0] = '\0';
		return 0;
	}
	at = NULL;
	for (const char *q = mbox + n; q > mbox; q--)
		if (q[-1] == '@') {
			at = q - 1;
			break;
		}
	if (at == NULL || (size_t)(at - mbox + 1) >= n) {
		vbuf_setf(why, "5.1.3 Address must have a domain");
		return -1;
	}
	if (!smtpcmd_local_ok(mbox, (size_t)(at - mbox))) {
		vbuf_setf(why, "5.1.3 Bad local part syntax");
		return -1;
	}
	memcpy(domain, at + 1, n - (size_t)(at - mbox) - 1);
	domain[n - (size_t)(at - mbox) - 1] = '\0';
	if (!smtpcmd_domain_ok(domain)) {
		vbuf_setf(why, "5.1.2 Bad domain syntax");
		return -1;
	}
	memcpy(addr, mbox, n);
	addr[n] = '\0';
	return 0;
}

int
smtpcmd_param_next(const char **pp, char *key, size_t keysize, char *value,
    size_t valuesize)
{
	const char *p = *pp;
	size_t k = 0, v = 0;

	while (*p == ' ')
		p++;
	if (*p == '\0') {
		*pp = p;
		return 0;
	}
	for (; *p != '\0' && *p != ' ' && *p != '='; p++) {
		if (k + 1 >= keysize || !(isalnum((unsigned char)*p) ||
		    *p == '-'))
			return -1;
		key[k++] = (char)toupper((unsigned char)*p);
	}
	key[k] = '\0';
	if (k == 0)
		return -1;
	if (*p == '=') {
		for (p++; *p != '\0' && *p != ' '; p++) {
			if (v + 1 >= valuesize || (unsigned char)*p < 0x21 ||
			    (unsigned char)*p > 0x7e)
				return -1;
			value[v++] = *p;
		}
	}
	value[v] = '\0';
	*pp = p;
	return 1;
}

void
smtpcmd_addr_domain(const char *addr, char *out, size_t size)
{
	const char *at = strrchr(addr, '@');
	size_t i;

	if (size == 0)
		return;
	if (at == NULL) {
		out[0] = '\0';
		return;
	}
	for (i = 0, at++; at[i] != '\0' && i + 1 < size; i++)
		out[i] = (char)tolower((unsigned char)at[i]);
	out[i] = '\0';
}

int
smtpcmd_reply_code(const char *line, int *last)
{
	int code;

	if (!isdigit((unsigned char)line[0]) ||
	    !isdigit((unsigned char)line[1]) ||
	    !isdigit((unsigned char)line[2]))
		return -1;
	code = (line[0] - '0') * 100 + (line[1] - '0') * 10 + (line[2] - '0');
	if (code < 200 || code > 599)
		return -1;
	if (line[3] == '-')
		*last = 0;
	else if (line[3] == ' ' || line[3] == '\0')
		*last = 1;
	else
		return -1;
	return code;
}

int
smtpcmd_reply_dsn(int code, const char *text, char *dsn)
{
	const char *p = text;
	int n1 = 0, n2 = 0, n3 = 0, used = 0;

	/* X.Y.Z: class digit, then 1-3 and 1-3 digits (RFC 3463). */
	if ((p[0] == '2' || p[0] == '4' || p[0] == '5') && p[0] - '0' ==
	    code / 100 && p[1] == '.') {
		const char *q = p + 2;

		while (isdigit((unsigned char)*q) && n2 < 4) {
			q++;
			n2++;
		}
		if (n2 >= 1 && n2 <= 3 && *q == '.') {
			q++;
			while (isdigit((unsigned char)*q) && n3 < 4) {
				q++;
				n3++;
			}
			if (n3 >= 1 && n3 <= 3 && (*q == ' ' || *q == '\0')) {
				n1 = (int)(q - p);
				used = 1;
			}
		}
	}
	if (used) {
		memcpy(dsn, p, (size_t)n1);
		dsn[n1] = '\0';
		return 1;
	}
	snprintf(dsn, 16, "%d.0.0", code / 100);
	return 0;
}
