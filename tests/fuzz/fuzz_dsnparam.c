/*
 * fuzz_dsnparam.c - libFuzzer target for the RFC 3461 parameter parser
 * (lib/dsnparam.c) and the xtext codec under it (lib/xtext.c).
 *
 * The input is the parameter part of a MAIL FROM or RCPT TO line (it ends
 * at the first NUL). It is split with smtpcmd_param_next into a value
 * buffer of smtpd's size, and each parameter is offered to dsnparam_mail
 * and dsnparam_rcpt as smtpd does. What they keep must be what smtpd may
 * write into a queue file and smtp may send: the value exactly as given,
 * well-formed xtext within its limit, decoding to printable ASCII, NEVER
 * only alone, and NOTIFY's format parsing back to the same bits. The
 * input is also xtext-encoded and decoded back. Built and run by `make
 * fuzz`; see tests/fuzz/README.md.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "dsnparam.h"
#include "log.h"
#include "smtpcmd.h"
#include "vbuf.h"
#include "xalloc.h"
#include "xtext.h"

#define FUZZ_KEYSIZE	33	/* as smtpd's key[] */
#define FUZZ_VALUESIZE	1024	/* as smtpd's value[], SMTPD_PARAM_VALUE_MAX */

int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);

static void	fuzz_printable_xtext(const char *, size_t);
static void	fuzz_params(const char *);
static void	fuzz_codec(const char *);

/* s is what dsnparam keeps: non-empty xtext, printable when decoded. */
static void
fuzz_printable_xtext(const char *s, size_t max)
{
	char *d;
	size_t i;

	ASSERT(*s != '\0' && strlen(s) <= max && xtext_valid(s, max));
	d = xtext_decode(s);
	ASSERT(d != NULL);
	for (i = 0; d[i] != '\0'; i++)
		ASSERT((unsigned char)d[i] >= 0x20 &&
		    (unsigned char)d[i] <= 0x7e);
	free(d);
}

static void
fuzz_params(const char *line)
{
	struct dsnparam_mail m;
	struct dsnparam_rcpt r, again;
	struct vbuf *why, *fmt;
	const char *p = line, *semi;
	char *key, *value;
	int rc, mrc, rrc;

	key = xmalloc(FUZZ_KEYSIZE);
	value = xmalloc(FUZZ_VALUESIZE);
	why = vbuf_create(0);
	fmt = vbuf_create(0);
	memset(&m, 0, sizeof(m));
	memset(&r, 0, sizeof(r));
	while ((rc = smtpcmd_param_next(&p, key, FUZZ_KEYSIZE, value,
	    FUZZ_VALUESIZE)) == 1) {
		vbuf_reset(why);
		mrc = dsnparam_mail(&m, key, value, why);
		if (mrc == -1)
			ASSERT(strncmp(why->data, "5.5.4 Bad ", 10) == 0 &&
			    strchr(why->data, '\r') == NULL &&
			    strchr(why->data, '\n') == NULL);
		if (mrc == 1 && strcmp(key, "ENVID") == 0) {
			ASSERT(strcmp(m.envid, value) == 0);
			fuzz_printable_xtext(m.envid, QSTORE_ENVID_MAX);
		}
		if (mrc == 1 && strcmp(key, "RET") == 0)
			ASSERT(m.have_ret && (m.ret == QSTORE_RET_FULL ||
			    m.ret == QSTORE_RET_HDRS));
		if (mrc != 0)
			ASSERT(strcmp(key, "RET") == 0 ||
			    strcmp(key, "ENVID") == 0);

		vbuf_reset(why);
		rrc = dsnparam_rcpt(&r, key, value, why);
		if (rrc != 0)
			ASSERT(strcmp(key, "NOTIFY") == 0 ||
			    strcmp(key, "ORCPT") == 0);
		if (rrc == 1 && strcmp(key, "ORCPT") == 0) {
			ASSERT(strcmp(r.orcpt, value) == 0);
			ASSERT(strlen(r.orcpt) <= QSTORE_ORCPT_MAX);
			semi = strchr(r.orcpt, ';');
			ASSERT(semi != NULL && semi > r.orcpt);
			fuzz_printable_xtext(semi + 1, QSTORE_ORCPT_MAX);
		}
		if (rrc == 1 && strcmp(key, "NOTIFY") == 0) {
			ASSERT(r.notify != 0 && (r.notify & ~0x0fu) == 0);
			ASSERT(!(r.notify & QSTORE_NOTIFY_NEVER) ||
			    r.notify == QSTORE_NOTIFY_NEVER);
			/* What smtp sends parses back to the same bits. */
			vbuf_reset(fmt);
			dsnparam_notify_format(r.notify, fmt);
			memset(&again, 0, sizeof(again));
			ASSERT(dsnparam_rcpt(&again, "NOTIFY", fmt->data,
			    NULL) == 1 && again.notify == r.notify);
		}
	}
	ASSERT(rc == 0 || rc == -1);
	vbuf_free(fmt);
	vbuf_free(why);
	free(value);
	free(key);
}

/* Any string encodes to valid xtext that decodes back to it. */
static void
fuzz_codec(const char *line)
{
	struct vbuf *v = vbuf_create(0);
	char *d;
	int valid;

	xtext_encode(v, line);
	ASSERT(xtext_valid(v->data, v->len));
	ASSERT(v->len == 0 || !xtext_valid(v->data, v->len - 1));
	d = xtext_decode(v->data);
	ASSERT(d != NULL && strcmp(d, line) == 0);
	free(d);
	/* Decoding the input itself: NULL exactly when it is not valid. */
	valid = xtext_valid(line, strlen(line));
	d = xtext_decode(line);
	if (!valid)
		ASSERT(d == NULL);
	else if (d != NULL)
		ASSERT(strlen(d) <= strlen(line));
	else
		ASSERT(strstr(line, "+00") != NULL);
	free(d);
	vbuf_free(v);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *line;

	line = xmalloc(size + 1);
	if (size > 0)
		memcpy(line, data, size);
	line[size] = '\0';
	fuzz_params(line);
	fuzz_codec(line);
	free(line);
	return 0;
}
