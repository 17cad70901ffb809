/*
 * dsnparam.c - RFC 3461 parameters of MAIL FROM and RCPT TO: syntax
 * checks for smtpd, NOTIFY's format for smtp. See dsnparam.h.
 *
 * A malformed or repeated parameter gets the same reply-ready text as
 * Postfix gives ("5.5.4 Bad NOTIFY parameter syntax"), so that clients and
 * operators see what they already know.
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "dsnparam.h"
#include "xtext.h"

static int	dsnparam_printable(const char *);
static int	dsnparam_atext(int);
static int	dsnparam_notify(const char *, unsigned *);
static int	dsnparam_bad(const char *, struct vbuf *);

static const struct {
	const char	*name;
	unsigned	 bit;
} dsnparam_notify_words[] = {
	{ "NEVER", QSTORE_NOTIFY_NEVER },
	{ "SUCCESS", QSTORE_NOTIFY_SUCCESS },
	{ "FAILURE", QSTORE_NOTIFY_FAILURE },
	{ "DELAY", QSTORE_NOTIFY_DELAY },
};

static int
dsnparam_bad(const char *key, struct vbuf *why)
{
	if (why != NULL)
		vbuf_setf(why, "5.5.4 Bad %s parameter syntax", key);
	return -1;
}

/*
 * 1 if s is non-empty, well-formed xtext and decodes to printable US-ASCII
 * (RFC 3461 4.2 and 4.4: what a report will show must be printable; a
 * decoded CR or LF could otherwise end a report's header line).
 */
static int
dsnparam_printable(const char *s)
{
	char *d;
	size_t i;
	int ok;

	if (*s == '\0' || (d = xtext_decode(s)) == NULL)
		return 0;
	ok = 1;
	for (i = 0; d[i] != '\0'; i++)
		if ((unsigned char)d[i] < 0x20 || (unsigned char)d[i] > 0x7e)
			ok = 0;
	free(d);
	return ok;
}

/* RFC 5322 3.2.3 atext, the characters of an atom. */
static int
dsnparam_atext(int c)
{
	if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	    (c >= '0' && c <= '9'))
		return 1;
	return c != '\0' && strchr("!#$%&'*+-/=?^_`{|}~", c) != NULL;
}

/* NOTIFY's value into bits: 0, or -1 if malformed (RFC 3461 4.1). */
static int
dsnparam_notify(const char *v, unsigned *out)
{
	const char *end;
	unsigned bits = 0;
	size_t n, i;
	int found;

	for (;;) {
		end = strchr(v, ',');
		n = end == NULL ? strlen(v) : (size_t)(end - v);
		found = 0;
		for (i = 0; i < sizeof(dsnparam_notify_words) /
		    sizeof(dsnparam_notify_words[0]); i++) {
			if (strlen(dsnparam_notify_words[i].name) == n &&
			    strncasecmp(v, dsnparam_notify_words[i].name,
			    n) == 0) {
				bits |= dsnparam_notify_words[i].bit;
				found = 1;
			}
		}
		if (!found)
			return -1;	/* unknown or empty item */
		if (end == NULL)
			break;
		v = end + 1;
	}
	/* "NEVER" must appear alone. */
	if ((bits & QSTORE_NOTIFY_NEVER) && bits != QSTORE_NOTIFY_NEVER)
		return -1;
	*out = bits;
	return 0;
}

int
dsnparam_mail(struct dsnparam_mail *m, const char *key, const char *value,
    struct vbuf *why)
{
	if (strcmp(key, "RET") == 0) {
		if (m->have_ret)
			return dsnparam_bad(key, why);
		if (strcasecmp(value, "FULL") == 0)
			m->ret = QSTORE_RET_FULL;
		else if (strcasecmp(value, "HDRS") == 0)
			m->ret = QSTORE_RET_HDRS;
		else
			return dsnparam_bad(key, why);
		m->have_ret = 1;
		return 1;
	}
	if (strcmp(key, "ENVID") == 0) {
		if (m->envid[0] != '\0' ||
		    !xtext_valid(value, QSTORE_ENVID_MAX) ||
		    !dsnparam_printable(value))
			return dsnparam_bad(key, why);
		memcpy(m->envid, value, strlen(value) + 1);
		return 1;
	}
	return 0;
}

int
dsnparam_rcpt(struct dsnparam_rcpt *r, const char *key, const char *value,
    struct vbuf *why)
{
	const char *semi, *p;
	unsigned bits;

	if (strcmp(key, "NOTIFY") == 0) {
		if (r->notify != 0 || dsnparam_notify(value, &bits) == -1)
			return dsnparam_bad(key, why);
		r->notify = bits;
		return 1;
	}
	if (strcmp(key, "ORCPT") == 0) {
		if (r->orcpt[0] != '\0' || strlen(value) > QSTORE_ORCPT_MAX ||
		    (semi = strchr(value, ';')) == NULL || semi == value)
			return dsnparam_bad(key, why);
		for (p = value; p < semi; p++)
			if (!dsnparam_atext((unsigned char)*p))
				return dsnparam_bad(key, why);
		if (!xtext_valid(semi + 1, QSTORE_ORCPT_MAX) ||
		    !dsnparam_printable(semi + 1))
			return dsnparam_bad(key, why);
		memcpy(r->orcpt, value, strlen(value) + 1);
		return 1;
	}
	return 0;
}

void
dsnparam_notify_format(unsigned notify, struct vbuf *out)
{
	size_t i;
	int first = 1;

	/* NEVER stands alone, whatever else a damaged file says. */
	if (notify & QSTORE_NOTIFY_NEVER)
		notify = QSTORE_NOTIFY_NEVER;
	for (i = 0; i < sizeof(dsnparam_notify_words) /
	    sizeof(dsnparam_notify_words[0]); i++) {
		if ((notify & dsnparam_notify_words[i].bit) == 0)
			continue;
		if (!first)
			(void)vbuf_addc(out, ',');
		(void)vbuf_adds(out, dsnparam_notify_words[i].name);
		first = 0;
	}
}
