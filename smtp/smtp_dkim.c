/*
 * smtp_dkim.c - DKIM signing of outbound messages (RFC 6376, RFC 8463).
 *
 * smtp signs each message once per delivery attempt, just before the
 * transaction, so every retry and every key rotation carries a signature
 * made with the key active now. The d= domain is the header From: domain
 * (or its closest registered parent, lib/dkimkey), so DMARC aligns. The
 * keys are readable only through the dkim group that master gives to smtp
 * alone. Signing never costs a message: with no key, or on any error, the
 * message goes out unsigned and the log says why. Signatures use
 * c=relaxed/relaxed, the header set of RFC 6376 5.4.1 with From
 * over-signed; ours is put on top of any the application added. See
 * smtp(8), section DKIM.
 */
#include <sys/types.h>

#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include <opendkim/dkim.h>

#include "dkimkey.h"
#include "log.h"
#include "smtp.h"
#include "smtpcmd.h"
#include "vbuf.h"
#include "xalloc.h"

#define DKIM_HDR_MAX		(1024 * 1024)	/* header block we sign */
#define DKIM_CHUNK		65536
#define DKIM_SIG_NAME		"DKIM-Signature"
#define DKIM_ADDR_MAX		1024

static ssize_t	read_chunk(int, char *, size_t, off_t, off_t, struct vbuf *);
static int	read_headers(struct smtp_req *, struct vbuf *, off_t *,
		    struct vbuf *);
static int	is_field(const char *, size_t, const char *);
static int	from_domain(const struct vbuf *, char *, size_t,
		    struct vbuf *);
static int	first_addr(const char *, size_t, char *, size_t);
static int	sign(struct smtp_req *, const struct vbuf *, off_t,
		    const struct dkimkey_signing *, struct vbuf *);
static int	feed_headers(DKIM *, const struct vbuf *, struct vbuf *);
static int	feed_body(DKIM *, struct smtp_req *, off_t, struct vbuf *);
static void	set_unsigned(struct smtp_req *, const char *, ...)
		    __attribute__((format(printf, 2, 3)));

static DKIM_LIB *dkim_lib;
/* The sending-domain registry, opened once (not per message). */
static struct dkimkey_db *dkim_domains;

/*
 * RFC 6376 section 5.4.1: the header fields that should be signed. The
 * library takes the array's address (its length argument is the size of
 * a pointer) and copies the names.
 */
static const char *sign_hdrs[] = {
	"from", "reply-to", "subject", "date", "to", "cc",
	"resent-date", "resent-from", "resent-sender", "resent-to",
	"resent-cc", "in-reply-to", "references", "list-id", "list-help",
	"list-unsubscribe", "list-subscribe", "list-post", "list-owner",
	"list-archive", "message-id", "mime-version", "content-type",
	"content-transfer-encoding", NULL
};
/* Signed once more than present, so a second From: breaks the signature. */
static const char *oversign_hdrs[] = { "from", NULL };

void
smtp_dkim_init(const struct cfg *cfg)
{
	struct vbuf why;
	DKIM_STAT st;

	vbuf_init(&why, 0);
	if ((dkim_domains = dkimkey_open(cfg, 0, &why)) == NULL)
		log_warn("sending domains: %s: messages go out unsigned",
		    why.data);
	vbuf_release(&why);

	if ((dkim_lib = dkim_init(NULL, NULL)) == NULL) {
		log_warn("dkim_init failed: messages go out unsigned");
		return;
	}
	if ((st = dkim_options(dkim_lib, DKIM_OP_SETOPT, DKIM_OPTS_SIGNHDRS,
	    sign_hdrs, sizeof(char **))) != DKIM_STAT_OK ||
	    (st = dkim_options(dkim_lib, DKIM_OP_SETOPT,
	    DKIM_OPTS_OVERSIGNHDRS, oversign_hdrs,
	    sizeof(char **))) != DKIM_STAT_OK) {
		log_warn("dkim_options: %s: messages go out unsigned",
		    dkim_getresultstr(st));
		dkim_close(dkim_lib);
		dkim_lib = NULL;
	}
}

void
smtp_dkim_free(struct smtp_req *req)
{
	free(req->dkim_sig);
	req->dkim_sig = NULL;
	req->dkim_sig_len = 0;
}

static void
set_unsigned(struct smtp_req *req, const char *fmt, ...)
{
	char why[SMTP_TEXT_MAX];
	va_list ap;

	va_start(ap, fmt);
	(void)vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	smtp_dkim_free(req);
	(void)snprintf(req->dkim, sizeof(req->dkim), "unsigned");
	log_info("%s: dkim=none (%s)", req->qid, why);
}

void
smtp_dkim_sign(const struct cfg *cfg, struct smtp_req *req)
{
	struct dkimkey_signing key;
	struct vbuf hdrs, why;
	char domain[SMTP_HOST_MAX + 1];
	off_t body_off;
	int rc = 0;

	smtp_dkim_free(req);
	req->dkim[0] = '\0';
	vbuf_init(&hdrs, DKIM_HDR_MAX);
	vbuf_init(&why, 256);
	memset(&key, 0, sizeof(key));

	/* 1. The header block, once; the From: address domain. */
	if (read_headers(req, &hdrs, &body_off, &why) == -1) {
		log_warn("%s: dkim: %s", req->qid, why.data);
		set_unsigned(req, "%s", why.data);
		goto out;
	}
	if (from_domain(&hdrs, domain, sizeof(domain), &why) == -1) {
		set_unsigned(req, "%s", why.data);
		goto out;
	}

	/* 2. The key active now for that domain or a parent. */
	rc = dkim_domains == NULL ? 0 : dkimkey_signing_find(dkim_domains,
	    cfg, domain, time(NULL), &key, &why);
	if (rc == 0) {
		set_unsigned(req, "no key for %s", domain);
		goto out;
	}
	if (rc == -1) {
		log_warn("%s: dkim key lookup for %s: %s", req->qid, domain,
		    log_safe(why.data));
		set_unsigned(req, "key lookup failed for %s", domain);
		goto out;
	}
	if (dkim_lib == NULL) {
		set_unsigned(req, "libopendkim unavailable");
		goto out;
	}

	/* 3. Sign; on any failure the message still goes, unsigned. */
	if (sign(req, &hdrs, body_off, &key, &why) == -1) {
		log_warn("%s: dkim signing as d=%s s=%s failed: %s", req->qid,
		    key.domain, key.selector, log_safe(why.data));
		set_unsigned(req, "signing failed for %s", domain);
		goto out;
	}
	(void)snprintf(req->dkim, sizeof(req->dkim), "d=%s s=%s", key.domain,
	    key.selector);
	log_info("%s: dkim=signed d=%s s=%s", req->qid, key.domain,
	    key.selector);
out:
	if (rc == 1)
		dkimkey_signing_free(&key);
	vbuf_release(&hdrs);
	vbuf_release(&why);
}

/*
 * Reads the next piece of [off, end) of the queue file into buf: the
 * bytes read (> 0), or -1 with why set (a short file is an error).
 */
static ssize_t
read_chunk(int fd, char *buf, size_t size, off_t off, off_t end,
    struct vbuf *why)
{
	ssize_t n;

	do
		n = pread(fd, buf, end - off < (off_t)size ?
		    (size_t)(end - off) : size, off);
	while (n == -1 && errno == EINTR);
	if (n <= 0) {
		vbuf_setf(why, "reading queue file: %s", n == 0 ?
		    "unexpected end of file" : strerror(errno));
		return -1;
	}
	return n;
}

/*
 * Reads the header block: from the start of the message to the empty line
 * (or the end of a message without a body), at most DKIM_HDR_MAX bytes.
 * *body_off receives the file offset of the body after the empty line.
 */
static int
read_headers(struct smtp_req *req, struct vbuf *hdrs, off_t *body_off,
    struct vbuf *why)
{
	static char in[DKIM_CHUNK];
	int fd = qstore_file_fd(req->qf);
	off_t start = qstore_file_body_offset(req->qf);
	off_t end = start + qstore_file_body_size(req->qf);
	off_t off = start;
	size_t scan = 0;
	ssize_t n;
	char *p;

	if (end - start >= 2) {
		n = pread(fd, in, 2, start);
		if (n == 2 && in[0] == '\r' && in[1] == '\n') {
			/* No header fields at all. */
			*body_off = start + 2;
			return 0;
		}
	}
	while (off < end) {
		if ((n = read_chunk(fd, in, sizeof(in), off, end, why)) == -1)
			return -1;
		if (vbuf_add(hdrs, in, (size_t)n) == -1) {
			vbuf_setf(why, "header block over %d bytes",
			    DKIM_HDR_MAX);
			return -1;
		}
		off += n;
		/* Resume three bytes back: the CRLFCRLF may span reads. */
		if ((p = memmem(hdrs->data + scan, hdrs->len - scan,
		    "\r\n\r\n", 4)) != NULL) {
			vbuf_truncate(hdrs, (size_t)(p - hdrs->data) + 2);
			*body_off = start + (off_t)hdrs->len + 2;
			return 0;
		}
		scan = hdrs->len > 3 ? hdrs->len - 3 : 0;
	}
	/* A message without a body: every byte is header. */
	*body_off = end;
	return 0;
}

/* Nonzero when the field starting at f is named name. */
static int
is_field(const char *f, size_t len, const char *name)
{
	size_t n = strlen(name);

	if (len <= n || strncasecmp(f, name, n) != 0)
		return 0;
	f += n;
	len -= n;
	while (len > 0 && (*f == ' ' || *f == '\t')) {
		f++;
		len--;
	}
	return len > 0 && *f == ':';
}

/*
 * The domain of the first address of the one From: field (RFC 5322
 * 3.6.2), lower-cased. -1 with a reason when there is no From:, more than
 * one (a second From: is how a signature is abused), or no usable address.
 */
static int
from_domain(const struct vbuf *hdrs, char *domain, size_t size,
    struct vbuf *why)
{
	char addr[DKIM_ADDR_MAX];
	const char *p = hdrs->data, *end = hdrs->data + hdrs->len;
	const char *line, *nl, *colon, *from = NULL;
	size_t from_len = 0;
	int nfrom = 0;

	while (p < end) {
		/* One field: its first line and any continuation lines. */
		line = p;
		do {
			nl = memmem(p, (size_t)(end - p), "\r\n", 2);
			p = nl == NULL ? end : nl + 2;
		} while (p < end && (*p == ' ' || *p == '\t'));
		if (is_field(line, (size_t)(p - line), "from")) {
			nfrom++;
			from = line;
			from_len = (size_t)(p - line);
		}
	}
	if (nfrom == 0) {
		vbuf_setf(why, "no From: header");
		return -1;
	}
	if (nfrom > 1) {
		vbuf_setf(why, "%d From: headers", nfrom);
		return -1;
	}
	colon = memchr(from, ':', from_len);
	from_len -= (size_t)(colon + 1 - from);
	from = colon + 1;
	if (first_addr(from, from_len, addr, sizeof(addr)) == -1 ||
	    strchr(addr, '@') == NULL) {
		vbuf_setf(why, "no address in From: header");
		return -1;
	}
	smtpcmd_addr_domain(addr, domain, size);
	if (domain[0] == '\0' || !smtpcmd_domain_ok(domain) ||
	    domain[0] == '[') {
		vbuf_setf(why, "bad From: domain \"%s\"", log_safe(domain));
		return -1;
	}
	return 0;
}

/*
 * Copies the addr-spec of the first mailbox of an address list (RFC 5322
 * 3.4): the part in angle brackets, else the bare address; comments,
 * folding white space and a group's display name are skipped. Quoted
 * local parts keep their quotes. 0, or -1 when nothing fits in size.
 */
static int
first_addr(const char *s, size_t len, char *out, size_t size)
{
	size_t i, n = 0;
	int depth = 0, quoted = 0, angle = 0, esc = 0;
	char c;

	for (i = 0; i < len; i++) {
		c = s[i];
		if (esc) {
			esc = 0;
			if (depth > 0)
				continue;
		} else if (c == '\\' && (quoted || depth > 0)) {
			esc = 1;
			if (depth > 0)
				continue;
		} else if (depth > 0) {
			if (c == '(')
				depth++;
			else if (c == ')')
				depth--;
			continue;
		} else if (c == '"')
			quoted = !quoted;
		else if (!quoted) {
			if (c == '(') {
				depth = 1;
				continue;
			}
			if (c == '<') {
				/* Angle address: what came before was a name. */
				n = 0;
				angle = 1;
				continue;
			}
			if (c == '>' && angle)
				break;
			if (c == ':' && !angle) {
				n = 0;	/* a group's display name */
				continue;
			}
			if ((c == ',' || c == ';') && !angle) {
				if (n > 0)
					break;
				continue;	/* empty group or list element */
			}
			if (c == ' ' || c == '\t' || c == '\r' || c == '\n')
				continue;
		}
		if (n + 1 >= size)
			return -1;
		out[n++] = c;
	}
	out[n] = '\0';
	return n > 0 ? 0 : -1;
}

static int
sign(struct smtp_req *req, const struct vbuf *hdrs, off_t body_off,
    const struct dkimkey_signing *key, struct vbuf *why)
{
	DKIM *dkim;
	DKIM_STAT st;
	u_char *sig;
	size_t siglen, i;
	struct vbuf out;
	int rc = -1;

	dkim = dkim_sign(dkim_lib, (const u_char *)req->qid, NULL,
	    (dkim_sigkey_t)key->pem, (const u_char *)key->selector,
	    (const u_char *)key->domain, DKIM_CANON_RELAXED,
	    DKIM_CANON_RELAXED, key->alg == DKIMKEY_ED25519_SHA256 ?
	    DKIM_SIGN_ED25519SHA256 : DKIM_SIGN_RSASHA256, -1, &st);
	if (dkim == NULL) {
		vbuf_setf(why, "dkim_sign: %s", dkim_getresultstr(st));
		return -1;
	}
	vbuf_init(&out, 0);
	if (feed_headers(dkim, hdrs, why) == -1)
		goto out;
	if ((st = dkim_eoh(dkim)) != DKIM_STAT_OK) {
		vbuf_setf(why, "dkim_eoh: %s", dkim_getresultstr(st));
		goto out;
	}
	if (feed_body(dkim, req, body_off, why) == -1)
		goto out;
	if ((st = dkim_eom(dkim, NULL)) != DKIM_STAT_OK) {
		vbuf_setf(why, "dkim_eom: %s", dkim_getresultstr(st));
		goto out;
	}
	if ((st = dkim_getsighdr_d(dkim, sizeof(DKIM_SIG_NAME ": ") - 1,
	    &sig, &siglen)) != DKIM_STAT_OK) {
		vbuf_setf(why, "dkim_getsighdr_d: %s", dkim_getresultstr(st));
		goto out;
	}
	/* libopendkim folds with bare LF; the wire wants CRLF. */
	(void)vbuf_adds(&out, DKIM_SIG_NAME ": ");
	for (i = 0; i < siglen && sig[i] != '\0'; i++) {
		if (sig[i] == '\r')
			continue;
		if (sig[i] == '\n')
			(void)vbuf_addc(&out, '\r');
		(void)vbuf_addc(&out, sig[i]);
	}
	(void)vbuf_adds(&out, "\r\n");
	req->dkim_sig = xstrdup(out.data);
	req->dkim_sig_len = out.len;
	rc = 0;
out:
	vbuf_release(&out);
	(void)dkim_free(dkim);
	return rc;
}

/*
 * Feeds each header field without its final CRLF; folded fields go as
 * they are (relaxed canonicalisation unfolds them).
 */
static int
feed_headers(DKIM *dkim, const struct vbuf *hdrs, struct vbuf *why)
{
	const char *p = hdrs->data, *end = hdrs->data + hdrs->len;
	const char *line, *nl;
	size_t len;
	DKIM_STAT st;

	while (p < end) {
		line = p;
		do {
			nl = memmem(p, (size_t)(end - p), "\r\n", 2);
			p = nl == NULL ? end : nl + 2;
		} while (p < end && (*p == ' ' || *p == '\t'));
		len = (size_t)(p - line);
		if (len >= 2 && line[len - 2] == '\r' && line[len - 1] == '\n')
			len -= 2;
		if ((st = dkim_header(dkim, (u_char *)(uintptr_t)line, len)) !=
		    DKIM_STAT_OK) {
			vbuf_setf(why, "dkim_header: %s",
			    dkim_getresultstr(st));
			return -1;
		}
	}
	return 0;
}

/*
 * Feeds the body as send_body() will send it: the file's bytes, plus the
 * CRLF that sending adds when the message does not end with one.
 */
static int
feed_body(DKIM *dkim, struct smtp_req *req, off_t off, struct vbuf *why)
{
	static char in[DKIM_CHUNK];
	int fd = qstore_file_fd(req->qf);
	off_t end = qstore_file_body_offset(req->qf) +
	    qstore_file_body_size(req->qf);
	char last = '\n';
	ssize_t n;
	DKIM_STAT st;

	while (off < end) {
		if ((n = read_chunk(fd, in, sizeof(in), off, end, why)) == -1)
			return -1;
		off += n;
		last = in[n - 1];
		if ((st = dkim_body(dkim, (u_char *)in, (size_t)n)) !=
		    DKIM_STAT_OK) {
			vbuf_setf(why, "dkim_body: %s", dkim_getresultstr(st));
			return -1;
		}
	}
	if (last != '\n' && (st = dkim_body(dkim, (u_char *)"\r\n", 2)) !=
	    DKIM_STAT_OK) {
		vbuf_setf(why, "dkim_body: %s", dkim_getresultstr(st));
		return -1;
	}
	return 0;
}
