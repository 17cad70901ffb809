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
 *
 * Each process keeps the keys it has parsed (SMTP_DKIM_KEYS_MAX of them, as
 * EVP_PKEYs): parsing a PEM key costs OpenSSL 3 about as much as an
 * RSA-2048 signature, and a fresh RSA key pays its blinding and Montgomery
 * set-up again on its first signature. The registry is read for every
 * message (the selector in force may change at any time) and the key file
 * is stat()ed: a new selector, or a file replaced under the same name, is
 * parsed again. libopendkim cannot sign with a key held by the caller (it
 * parses the key it is given in every dkim_eom), so it is used for what it
 * does best, canonicalisation and hashing, through its verifying side: we
 * write the DKIM-Signature tag list, libopendkim canonicalises the message
 * and that header as a verifier will and returns the body hash (a first
 * pass) and the header hash (a second pass, headers only, with the real
 * bh=), and the held key signs the header hash as libopendkim's own signer
 * would (RSASSA-PKCS1-v1_5 with SHA-256, or Ed25519 over the SHA-256 hash).
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

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/sha.h>
#include <opendkim/dkim.h>

#include "b64.h"
#include "dkimkey.h"
#include "log.h"
#include "metrics.h"
#include "smtp.h"
#include "smtpcmd.h"
#include "vbuf.h"
#include "xalloc.h"

#define DKIM_HDR_MAX		(1024 * 1024)	/* header block we sign */
#define DKIM_CHUNK		65536
#define DKIM_SIG_NAME		"DKIM-Signature"
#define DKIM_ADDR_MAX		1024
#define DKIM_RSA_MIN_BITS	1024	/* RFC 8301 section 3.2 */
#define DKIM_SIG_MAX		1024	/* signature bytes (RSA-8192) */
#define DKIM_FOLD		78	/* RFC 5322 2.1.1 line length */
/* Stand-ins while hashing: bh= is replaced, b= is left out of the hash. */
#define DKIM_BH_STANDIN	"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="
#define DKIM_B_STANDIN		"AAAA"

/* A parsed key and what it was parsed from. */
struct dkim_key {
	char			 domain[256];
	char			 selector[DKIMKEY_SELECTOR_MAX + 1];
	enum dkimkey_alg	 alg;
	struct dkimkey_key_id	 id;
	EVP_PKEY		*pkey;		/* NULL: free slot */
	uint64_t		 used;		/* for least recently used */
};

static ssize_t	read_chunk(int, char *, size_t, off_t, off_t, struct vbuf *);
static int	read_headers(struct smtp_req *, struct vbuf *, off_t *,
		    struct vbuf *);
static int	is_field(const char *, size_t, const char *);
static int	from_domain(const struct vbuf *, char *, size_t,
		    struct vbuf *);
static int	first_addr(const char *, size_t, char *, size_t);
static int	sign(struct smtp_req *, const struct vbuf *, off_t,
		    const struct dkimkey_signing *, EVP_PKEY *, struct vbuf *);
static void	sign_names(const struct vbuf *, struct vbuf *);
static size_t	sig_header(struct vbuf *, const struct dkimkey_signing *,
		    int64_t, const char *, const struct vbuf *);
static void	fold_add(struct vbuf *, size_t *, const char *, const char *,
		    size_t);
static int	hash_pass(struct smtp_req *, const struct vbuf *,
		    const struct vbuf *, off_t, int, unsigned char *,
		    struct vbuf *);
static int	sign_digest(EVP_PKEY *, enum dkimkey_alg,
		    const unsigned char *, size_t, unsigned char *, size_t *,
		    struct vbuf *);
static DKIM_CBSTAT no_key(DKIM *, DKIM_SIGINFO *, u_char *, size_t);
static int	no_pass(char *, int, int, void *);
static void	key_drop(struct dkim_key *);
static int	feed_headers(DKIM *, const struct vbuf *, struct vbuf *);
static int	feed_body(DKIM *, struct smtp_req *, off_t, struct vbuf *);
static void	set_unsigned(struct smtp_req *, const char *, ...)
		    __attribute__((format(printf, 2, 3)));

/* libopendkim's verifying side: canonicalisation and hashes only. */
static DKIM_LIB *dkim_lib;
/* The sending-domain registry, opened once (not per message). */
static struct dkimkey_db *dkim_domains;
static struct dkim_key dkim_keys[SMTP_DKIM_KEYS_MAX];
static uint64_t dkim_key_clock;
static unsigned long dkim_key_nloads;

/* RFC 6376 section 5.4.1: the header fields that should be signed. */
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
	/* We only hash: no key is ever looked up in DNS. */
	if ((st = dkim_set_key_lookup(dkim_lib, no_key)) != DKIM_STAT_OK) {
		log_warn("dkim_set_key_lookup: %s: messages go out unsigned",
		    dkim_getresultstr(st));
		dkim_close(dkim_lib);
		dkim_lib = NULL;
	}
}

/* The key of a hashing pass is never fetched (see hash_pass). */
static DKIM_CBSTAT
no_key(DKIM *dkim, DKIM_SIGINFO *sig, u_char *buf, size_t buflen)
{
	(void)dkim;
	(void)sig;
	(void)buf;
	(void)buflen;
	return DKIM_CBSTAT_NOTFOUND;
}

/* Key files have no passphrase: never prompt for one. */
static int
no_pass(char *buf, int size, int rwflag, void *u)
{
	(void)buf;
	(void)size;
	(void)rwflag;
	(void)u;
	return -1;
}

static void
key_drop(struct dkim_key *k)
{
	EVP_PKEY_free(k->pkey);
	memset(k, 0, sizeof(*k));
}

EVP_PKEY *
smtp_dkim_key(const struct cfg *cfg, const struct dkimkey_signing *sel,
    struct vbuf *why)
{
	struct dkimkey_key_id id;
	struct dkim_key *k, *slot = NULL;
	struct vbuf pem;
	EVP_PKEY *pkey;
	BIO *bio;
	size_t i;
	int want;

	if (dkimkey_key_stat(cfg, sel->domain, sel->selector, &id, why) == -1)
		return NULL;
	for (i = 0; i < SMTP_DKIM_KEYS_MAX; i++) {
		k = &dkim_keys[i];
		if (k->pkey != NULL && strcmp(k->domain, sel->domain) == 0 &&
		    strcmp(k->selector, sel->selector) == 0) {
			if (k->alg == sel->alg &&
			    dkimkey_key_id_eq(&k->id, &id)) {
				k->used = ++dkim_key_clock;
				return k->pkey;
			}
			/* The file was replaced: parse it again, here. */
			slot = k;
			break;
		}
		if (slot == NULL || (slot->pkey != NULL && (k->pkey == NULL ||
		    k->used < slot->used)))
			slot = k;
	}
	key_drop(slot);

	vbuf_init(&pem, 0);
	if (dkimkey_key_read(cfg, sel->domain, sel->selector, &pem,
	    why) == -1) {
		vbuf_release(&pem);
		return NULL;
	}
	if ((bio = BIO_new_mem_buf(pem.data, (int)pem.len)) == NULL)
		pkey = NULL;
	else
		pkey = PEM_read_bio_PrivateKey(bio, NULL, no_pass, NULL);
	BIO_free(bio);
	vbuf_wipe(&pem);
	vbuf_release(&pem);
	ERR_clear_error();
	if (pkey == NULL) {
		vbuf_setf(why, "key %s/%s: not a PEM private key",
		    sel->domain, sel->selector);
		return NULL;
	}
	want = sel->alg == DKIMKEY_ED25519_SHA256 ? EVP_PKEY_ED25519 :
	    EVP_PKEY_RSA;
	if (EVP_PKEY_get_base_id(pkey) != want ||
	    EVP_PKEY_get_size(pkey) > DKIM_SIG_MAX ||
	    (want == EVP_PKEY_RSA &&
	    EVP_PKEY_get_bits(pkey) < DKIM_RSA_MIN_BITS)) {
		vbuf_setf(why, "key %s/%s: not a usable %s key", sel->domain,
		    sel->selector, dkimkey_alg_name(sel->alg));
		EVP_PKEY_free(pkey);
		return NULL;
	}
	memcpy(slot->domain, sel->domain, sizeof(slot->domain));
	memcpy(slot->selector, sel->selector, sizeof(slot->selector));
	slot->alg = sel->alg;
	slot->id = id;
	slot->pkey = pkey;
	slot->used = ++dkim_key_clock;
	dkim_key_nloads++;
	return pkey;
}

unsigned long
smtp_dkim_key_loads(void)
{
	return dkim_key_nloads;
}

void
smtp_dkim_key_flush(void)
{
	size_t i;

	for (i = 0; i < SMTP_DKIM_KEYS_MAX; i++)
		key_drop(&dkim_keys[i]);
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
	EVP_PKEY *pkey;
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
		metrics_add(METRICS_DKIM_SIGN_ERROR, 1);
		goto out;
	}
	if (from_domain(&hdrs, domain, sizeof(domain), &why) == -1) {
		set_unsigned(req, "%s", why.data);
		metrics_add(METRICS_DKIM_SIGN_NOKEY, 1);
		goto out;
	}

	/* 2. The selector in force now for that domain or a parent. */
	rc = dkim_domains == NULL ? 0 : dkimkey_signing_select(dkim_domains,
	    domain, time(NULL), &key, &why);
	if (rc == 0) {
		set_unsigned(req, "no key for %s", domain);
		metrics_add(METRICS_DKIM_SIGN_NOKEY, 1);
		goto out;
	}
	if (rc == -1) {
		log_warn("%s: dkim key lookup for %s: %s", req->qid, domain,
		    log_safe(why.data));
		set_unsigned(req, "key lookup failed for %s", domain);
		metrics_add(METRICS_DKIM_SIGN_ERROR, 1);
		goto out;
	}
	if (dkim_lib == NULL) {
		set_unsigned(req, "libopendkim unavailable");
		metrics_add(METRICS_DKIM_SIGN_ERROR, 1);
		goto out;
	}
	/* 3. Its key, parsed once per process. */
	if ((pkey = smtp_dkim_key(cfg, &key, &why)) == NULL) {
		log_warn("%s: dkim key for d=%s s=%s: %s", req->qid,
		    key.domain, key.selector, log_safe(why.data));
		set_unsigned(req, "key unusable for %s", domain);
		metrics_add(METRICS_DKIM_SIGN_ERROR, 1);
		goto out;
	}

	/* 4. Sign; on any failure the message still goes, unsigned. */
	if (sign(req, &hdrs, body_off, &key, pkey, &why) == -1) {
		log_warn("%s: dkim signing as d=%s s=%s failed: %s", req->qid,
		    key.domain, key.selector, log_safe(why.data));
		set_unsigned(req, "signing failed for %s", domain);
		metrics_add(METRICS_DKIM_SIGN_ERROR, 1);
		goto out;
	}
	metrics_add(METRICS_DKIM_SIGN_OK, 1);
	(void)snprintf(req->dkim, sizeof(req->dkim), "d=%s s=%s", key.domain,
	    key.selector);
	log_info("%s: dkim=signed d=%s s=%s", req->qid, key.domain,
	    key.selector);
out:
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

/*
 * Signs the message whose header block is hdrs and whose body starts at
 * body_off with pkey, the parsed key of sel: req->dkim_sig gets the
 * DKIM-Signature field, CRLF-terminated. 0, or -1 with why.
 */
static int
sign(struct smtp_req *req, const struct vbuf *hdrs, off_t body_off,
    const struct dkimkey_signing *sel, EVP_PKEY *pkey, struct vbuf *why)
{
	unsigned char bh[EVP_MAX_MD_SIZE], hh[EVP_MAX_MD_SIZE];
	unsigned char sig[DKIM_SIG_MAX];
	struct vbuf names, field, bh64, b64;
	size_t siglen = sizeof(sig), col, n, off;
	int64_t now = (int64_t)time(NULL);
	int rc = -1;

	vbuf_init(&names, 0);
	vbuf_init(&field, 0);
	vbuf_init(&bh64, 0);
	vbuf_init(&b64, 0);
	sign_names(hdrs, &names);

	/* 1. The body hash, with a stand-in bh= in the field. */
	sig_header(&field, sel, now, DKIM_BH_STANDIN, &names);
	if (hash_pass(req, &field, hdrs, body_off, 0, bh, why) == -1)
		goto out;
	if (b64_encode(&bh64, bh, SHA256_DIGEST_LENGTH, 0) == -1) {
		vbuf_setf(why, "encoding the body hash");
		goto out;
	}

	/* 2. The header hash: the field as it will be sent, b= empty. */
	col = sig_header(&field, sel, now, bh64.data, &names);
	if (hash_pass(req, &field, hdrs, body_off, 1, hh, why) == -1)
		goto out;

	/* 3. The signature, then the field with it, folded after b=. */
	if (sign_digest(pkey, sel->alg, hh, SHA256_DIGEST_LENGTH, sig,
	    &siglen, why) == -1)
		goto out;
	if (b64_encode(&b64, sig, siglen, 0) == -1) {
		vbuf_setf(why, "encoding the signature");
		goto out;
	}
	for (off = 0; off < b64.len; off += n) {
		if (col >= DKIM_FOLD - 8) {
			(void)vbuf_adds(&field, "\r\n\t");
			col = 1;
		}
		n = DKIM_FOLD - col;
		if (n > b64.len - off)
			n = b64.len - off;
		(void)vbuf_add(&field, b64.data + off, n);
		col += n;
	}
	(void)vbuf_adds(&field, "\r\n");
	req->dkim_sig = xstrdup(field.data);
	req->dkim_sig_len = field.len;
	rc = 0;
out:
	vbuf_release(&names);
	vbuf_release(&field);
	vbuf_release(&bh64);
	vbuf_release(&b64);
	return rc;
}

/*
 * The h= list: the names of the fields of sign_hdrs present in hdrs, as
 * written and in order (a name twice for two fields), then oversign_hdrs.
 * Verifiers take same-named fields from the bottom up (RFC 6376 5.4.2).
 */
static void
sign_names(const struct vbuf *hdrs, struct vbuf *names)
{
	const char *p = hdrs->data, *end = hdrs->data + hdrs->len;
	const char *line, *nl, *colon;
	size_t i, len;

	vbuf_reset(names);
	while (p < end) {
		line = p;
		do {
			nl = memmem(p, (size_t)(end - p), "\r\n", 2);
			p = nl == NULL ? end : nl + 2;
		} while (p < end && (*p == ' ' || *p == '\t'));
		if ((colon = memchr(line, ':', (size_t)(p - line))) == NULL)
			continue;
		len = (size_t)(colon - line);
		while (len > 0 && (line[len - 1] == ' ' ||
		    line[len - 1] == '\t'))
			len--;
		for (i = 0; sign_hdrs[i] != NULL; i++)
			if (strlen(sign_hdrs[i]) == len &&
			    strncasecmp(line, sign_hdrs[i], len) == 0)
				break;
		if (sign_hdrs[i] == NULL)
			continue;
		if (names->len > 0)
			(void)vbuf_addc(names, ':');
		(void)vbuf_add(names, line, len);
	}
	for (i = 0; oversign_hdrs[i] != NULL; i++) {
		if (names->len > 0)
			(void)vbuf_addc(names, ':');
		(void)vbuf_adds(names, oversign_hdrs[i]);
	}
}

/*
 * Appends tok to a field being folded at DKIM_FOLD columns: after sep on
 * the same line, or on a continuation line (a fold is white space, which
 * relaxed canonicalisation and the tag-list syntax both allow there).
 */
static void
fold_add(struct vbuf *out, size_t *col, const char *sep, const char *tok,
    size_t len)
{
	if (*col + strlen(sep) + len > DKIM_FOLD && *col > 1) {
		(void)vbuf_adds(out, "\r\n\t");
		*col = 1;
	} else {
		(void)vbuf_adds(out, sep);
		*col += strlen(sep);
	}
	(void)vbuf_add(out, tok, len);
	*col += len;
}

/*
 * The DKIM-Signature field up to and including "b=", in libopendkim's
 * tag order (v a c d s t bh h b), without the final CRLF. The names are
 * the h= list of sign_names. Returns the column its last line ends at.
 */
static size_t
sig_header(struct vbuf *out, const struct dkimkey_signing *sel, int64_t t,
    const char *bh, const struct vbuf *names)
{
	char tok[512];
	const char *p, *end, *colon;
	size_t col;
	int n;

	vbuf_reset(out);
	(void)vbuf_adds(out, DKIM_SIG_NAME ":");
	col = sizeof(DKIM_SIG_NAME ":") - 1;
	fold_add(out, &col, " ", "v=1;", 4);
	n = snprintf(tok, sizeof(tok), "a=%s;", dkimkey_alg_name(sel->alg));
	fold_add(out, &col, " ", tok, (size_t)n);
	fold_add(out, &col, " ", "c=relaxed/relaxed;", 18);
	n = snprintf(tok, sizeof(tok), "d=%s;", sel->domain);
	fold_add(out, &col, " ", tok, (size_t)n);
	n = snprintf(tok, sizeof(tok), "s=%s;", sel->selector);
	fold_add(out, &col, " ", tok, (size_t)n);
	n = snprintf(tok, sizeof(tok), "t=%lld;", (long long)t);
	fold_add(out, &col, " ", tok, (size_t)n);
	n = snprintf(tok, sizeof(tok), "bh=%s;", bh);
	fold_add(out, &col, " ", tok, (size_t)n);
	/* h=, folded after a colon (RFC 6376 3.5 allows FWS there). */
	p = names->data;
	end = names->data + names->len;
	while (p < end) {
		colon = memchr(p, ':', (size_t)(end - p));
		if (colon == NULL)
			colon = end;
		n = snprintf(tok, sizeof(tok), "%s%.*s%c", p == names->data ?
		    "h=" : "", (int)(colon - p), p, colon == end ? ';' : ':');
		if (n > 0 && (size_t)n < sizeof(tok))
			fold_add(out, &col, p == names->data ? " " : "", tok,
			    (size_t)n);
		p = colon == end ? end : colon + 1;
	}
	fold_add(out, &col, " ", "b=", 2);
	return col;
}

/*
 * One hashing pass through libopendkim's verifier, which canonicalises as
 * every verifier will: field (a DKIM-Signature from sig_header) on top of
 * the message's own fields, then the body (which 0) or none (which 1).
 * The key lookup fails by design (no_key), after the hashes are final.
 * Copies the body hash (which 0) or the header hash (which 1), SHA-256,
 * to out. 0, or -1 with why.
 */
static int
hash_pass(struct smtp_req *req, const struct vbuf *field,
    const struct vbuf *hdrs, off_t body_off, int which, unsigned char *out,
    struct vbuf *why)
{
	DKIM *dkim;
	DKIM_SIGINFO **sigs;
	DKIM_STAT st;
	struct vbuf f;
	void *hh, *bh;
	size_t hhlen, bhlen;
	int nsigs, rc = -1;

	dkim = dkim_verify(dkim_lib, (const u_char *)req->qid, NULL, &st);
	if (dkim == NULL) {
		vbuf_setf(why, "dkim_verify: %s", dkim_getresultstr(st));
		return -1;
	}
	/* The stand-in b= is never hashed (RFC 6376 3.7). */
	vbuf_init(&f, 0);
	(void)vbuf_add(&f, field->data, field->len);
	(void)vbuf_adds(&f, DKIM_B_STANDIN);
	st = dkim_header(dkim, (u_char *)f.data, f.len);
	vbuf_release(&f);
	if (st != DKIM_STAT_OK) {
		vbuf_setf(why, "dkim_header: %s", dkim_getresultstr(st));
		goto out;
	}
	if (feed_headers(dkim, hdrs, why) == -1)
		goto out;
	if ((st = dkim_eoh(dkim)) != DKIM_STAT_OK) {
		vbuf_setf(why, "dkim_eoh: %s: %s", dkim_getresultstr(st),
		    dkim_geterror(dkim) != NULL ? dkim_geterror(dkim) : "");
		goto out;
	}
	if (which == 0 && feed_body(dkim, req, body_off, why) == -1)
		goto out;
	(void)dkim_eom(dkim, NULL);	/* no key: never a pass */
	if (dkim_getsiglist(dkim, &sigs, &nsigs) != DKIM_STAT_OK ||
	    nsigs < 1 || (st = dkim_sig_gethashes(sigs[0], &hh, &hhlen, &bh,
	    &bhlen)) != DKIM_STAT_OK) {
		vbuf_setf(why, "no hashes from libopendkim: %s",
		    dkim_geterror(dkim) != NULL ? dkim_geterror(dkim) : "");
		goto out;
	}
	if ((which == 0 ? bhlen : hhlen) != SHA256_DIGEST_LENGTH) {
		vbuf_setf(why, "unexpected hash length");
		goto out;
	}
	memcpy(out, which == 0 ? bh : hh, SHA256_DIGEST_LENGTH);
	rc = 0;
out:
	(void)dkim_free(dkim);
	return rc;
}

/*
 * Signs the header hash dg as libopendkim's signer does: RSASSA-PKCS1-v1_5
 * over a SHA-256 DigestInfo, or Ed25519 over the hash itself (RFC 8463
 * section 3). 0, or -1 with why.
 */
static int
sign_digest(EVP_PKEY *pkey, enum dkimkey_alg alg, const unsigned char *dg,
    size_t dglen, unsigned char *sig, size_t *siglen, struct vbuf *why)
{
	EVP_PKEY_CTX *pc = NULL;
	EVP_MD_CTX *mc = NULL;
	int ok;

	if (alg == DKIMKEY_ED25519_SHA256) {
		ok = (mc = EVP_MD_CTX_new()) != NULL &&
		    EVP_DigestSignInit(mc, NULL, NULL, NULL, pkey) == 1 &&
		    EVP_DigestSign(mc, sig, siglen, dg, dglen) == 1;
		EVP_MD_CTX_free(mc);
	} else {
		ok = (pc = EVP_PKEY_CTX_new(pkey, NULL)) != NULL &&
		    EVP_PKEY_sign_init(pc) == 1 &&
		    EVP_PKEY_CTX_set_rsa_padding(pc, RSA_PKCS1_PADDING) == 1 &&
		    EVP_PKEY_CTX_set_signature_md(pc, EVP_sha256()) == 1 &&
		    EVP_PKEY_sign(pc, sig, siglen, dg, dglen) == 1;
		EVP_PKEY_CTX_free(pc);
	}
	if (!ok) {
		vbuf_setf(why, "signing: %s",
		    ERR_reason_error_string(ERR_peek_last_error()) != NULL ?
		    ERR_reason_error_string(ERR_peek_last_error()) :
		    "OpenSSL error");
		ERR_clear_error();
		return -1;
	}
	return 0;
}

/*
 * Feeds each header field without its final CRLF; folded fields go as
 * they are (relaxed canonicalisation unfolds them). Existing
 * DKIM-Signature fields are left out.
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
		/*
		 * Signatures already there are not in h= and so not hashed;
		 * the verifier must not take them for the one we hash.
		 */
		if (is_field(line, len, DKIM_SIG_NAME))
			continue;
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
