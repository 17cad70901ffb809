/*
 * fuzz_bounce_dsn.c - libFuzzer target for the delivery status
 * notification composer, bounce/bounce_dsn.c's bounce_dsn_compose(), fed
 * what peers control: the original message (whose header block an SMTP
 * client wrote), the remote reply, the relay, the class, the addresses and
 * the client's ORCPT and ENVID.
 *
 * The original is a real queue file: the envelope header lib/qfile.c
 * writes ("V=1\nT=...\nS=...\nR=...\n...\n\n") then the message bytes,
 * written directly to msg/<h>/<qid> in a temporary queue directory made
 * once, and opened with qstore_file_open() as bounce(8) does. The file
 * format is written here rather than through qstore_new_*() because that
 * path needs an LMDB environment and a commit per message, which would
 * make each run a thousand times slower without reaching more of the
 * composer; the envelope values are made single lines, as
 * qstore_new_begin() requires of them.
 *
 * Input layout: byte 0 holds flags (report kind, RET, a second recipient,
 * a small bounce.size_limit, ORCPT and ENVID present); then the fields
 * reply, dsn, class, relay, addr, sender, myhostname, orcpt, envid, each
 * ending at a 0x01 byte; what is left is the original message, any bytes.
 * Each input is composed with the queue file and again with qf == NULL.
 * Checked with ASSERT: every line ends in CRLF and is at most 998 octets
 * before it, with no bare CR or LF and no NUL; the top-level header has
 * From, To, Subject, Date, Message-ID, MIME-Version and a multipart/report
 * Content-Type; the boundary it names starts a line only as a delimiter
 * line, one per part and one closing line at the end; the original is
 * attached as message/rfc822 exactly when RET=FULL, the report is a
 * failure and it fits bounce.size_limit, else as text/rfc822-headers, and
 * not at all without a queue file. Built and run by `make fuzz`; see
 * tests/fuzz/README.md.
 */
#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bclass.h"
#include "bounce.h"
#include "log.h"
#include "qid.h"
#include "qstore.h"
#include "vbuf.h"
#include "xalloc.h"

#define FUZZ_SEP	0x01
#define FUZZ_NFIELDS	9

enum { F_REPLY, F_DSN, F_CLASS, F_RELAY, F_ADDR, F_SENDER, F_HOST, F_ORCPT,
	F_ENVID };

int	LLVMFuzzerInitialize(int *, char ***);
int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);

static char	fuzz_qdir[PATH_MAX];
static char	fuzz_path[PATH_MAX];
static char	fuzz_qid[QID_SIZE];

static void
fuzz_cleanup(void)
{
	char d[PATH_MAX + 8], *slash;

	(void)unlink(fuzz_path);
	(void)snprintf(d, sizeof(d), "%s", fuzz_path);
	if ((slash = strrchr(d, '/')) != NULL) {
		*slash = '\0';
		(void)rmdir(d);
	}
	(void)snprintf(d, sizeof(d), "%s/msg", fuzz_qdir);
	(void)rmdir(d);
	(void)rmdir(fuzz_qdir);
}

/* A queue directory with just the msg/<h>/ the one file goes in. */
int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	const char *tmp = getenv("TMPDIR");
	char d[PATH_MAX + 8], *slash;
	int64_t sec;
	int32_t usec;

	(void)argc;
	(void)argv;
	(void)snprintf(fuzz_qdir, sizeof(fuzz_qdir), "%s/petrel-fuzz-q.XXXXXX",
	    tmp != NULL && tmp[0] != '\0' ? tmp : "/tmp");
	if (mkdtemp(fuzz_qdir) == NULL)
		log_fatal("fuzz_bounce_dsn: mkdtemp: %s", strerror(errno));
	qid_new(fuzz_qid, &sec, &usec);
	if (qstore_file_path(fuzz_path, sizeof(fuzz_path), fuzz_qdir,
	    fuzz_qid) == -1)
		log_fatal("fuzz_bounce_dsn: queue file path");
	(void)snprintf(d, sizeof(d), "%s/msg", fuzz_qdir);
	if (mkdir(d, 0700) == -1)
		log_fatal("fuzz_bounce_dsn: mkdir %s: %s", d, strerror(errno));
	(void)snprintf(d, sizeof(d), "%s", fuzz_path);
	if ((slash = strrchr(d, '/')) != NULL)
		*slash = '\0';
	if (mkdir(d, 0700) == -1)
		log_fatal("fuzz_bounce_dsn: mkdir %s: %s", d, strerror(errno));
	(void)atexit(fuzz_cleanup);
	return 0;
}

/* An envelope value: one line, as qstore_new_begin() insists. */
static void
fuzz_env_value(struct vbuf *out, const char *s)
{
	for (; *s != '\0'; s++)
		vbuf_addc(out, *s == '\n' || *s == '\r' ? ' ' : *s);
}

/* Writes the queue file and opens it; NULL when qfile refuses it. */
static struct qstore_file *
fuzz_queue_file(char *const *f, int flags, int nrcpts, const uint8_t *msg,
    size_t msglen)
{
	struct qstore_file *qf;
	struct vbuf h, why;
	int fd, i;

	vbuf_init(&h, 0);
	vbuf_init(&why, 0);
	vbuf_adds(&h, "V=1\nT=1700000000.000001\nS=");
	fuzz_env_value(&h, f[F_SENDER]);
	for (i = 0; i < nrcpts; i++) {
		vbuf_adds(&h, "\nR=");
		fuzz_env_value(&h, f[F_ADDR]);
		vbuf_adds(&h, "\nN=3");
		if (flags & 0x20) {
			vbuf_adds(&h, "\nO=");
			fuzz_env_value(&h, f[F_ORCPT]);
		}
	}
	if (flags & 0x40) {
		vbuf_adds(&h, "\nE=");
		fuzz_env_value(&h, f[F_ENVID]);
	}
	if ((flags & 0x0c) != 0)
		vbuf_addf(&h, "\nF=%s", (flags & 0x0c) == 0x04 ? "hdrs" :
		    "full");
	vbuf_adds(&h, "\nC=192.0.2.1\nH=client.example\nA=\n\n");
	fd = open(fuzz_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	ASSERT(fd != -1);
	ASSERT(write(fd, h.data, h.len) == (ssize_t)h.len);
	ASSERT(msglen == 0 || write(fd, msg, msglen) == (ssize_t)msglen);
	ASSERT(close(fd) == 0);
	qf = qstore_file_open(fuzz_qdir, fuzz_qid, &why);
	vbuf_release(&h);
	vbuf_release(&why);
	return qf;
}

/* 1 when the header block (up to the first empty line) has "name:". */
static int
fuzz_has_field(const char *out, size_t hdrlen, const char *name)
{
	size_t n = strlen(name);
	const char *p = out, *end = out + hdrlen;

	while (p < end) {
		if (strncmp(p, name, n) == 0 && p[n] == ':')
			return 1;
		p = memchr(p, '\n', (size_t)(end - p));
		if (p == NULL)
			return 0;
		p++;
	}
	return 0;
}

/* 1 when the part's header block (at p) has "Content-Type: type". */
static int
fuzz_part_type(const char *p, const char *type)
{
	const char *end = strstr(p, "\r\n\r\n");
	char want[128];
	size_t n;

	if (end == NULL)
		return 0;
	n = (size_t)snprintf(want, sizeof(want), "Content-Type: %s\r\n",
	    type);
	for (; p < end; p = strstr(p, "\r\n") + 2)
		if (strncmp(p, want, n) == 0)
			return 1;
	return 0;
}

static void
fuzz_check(const struct vbuf *out, const struct bounce_report *r)
{
	const char *s = out->data, *p, *eol, *b, *be;
	size_t len = out->len, i, hdrlen, blen, delims = 0, closes = 0;
	size_t line;
	const char *ct, *part[3];
	char bnd[512];
	int full;

	/* Lines: CRLF only, at most BOUNCE_LINE_MAX octets, no NUL. */
	ASSERT(len >= 2 && s[len - 2] == '\r' && s[len - 1] == '\n');
	line = 0;
	for (i = 0; i < len; i++) {
		ASSERT(s[i] != '\0');
		if (s[i] == '\r') {
			ASSERT(i + 1 < len && s[i + 1] == '\n');
			ASSERT(line <= BOUNCE_LINE_MAX);
			line = 0;
			i++;
			continue;
		}
		ASSERT(s[i] != '\n');
		line++;
	}

	/* The top-level header block and its required fields. */
	p = strstr(s, "\r\n\r\n");
	ASSERT(p != NULL);
	hdrlen = (size_t)(p - s) + 2;
	ASSERT(fuzz_has_field(s, hdrlen, "From"));
	ASSERT(fuzz_has_field(s, hdrlen, "To"));
	ASSERT(fuzz_has_field(s, hdrlen, "Subject"));
	ASSERT(fuzz_has_field(s, hdrlen, "Date"));
	ASSERT(fuzz_has_field(s, hdrlen, "Message-ID"));
	ASSERT(fuzz_has_field(s, hdrlen, "MIME-Version"));
	ASSERT(fuzz_has_field(s, hdrlen, "Auto-Submitted"));
	ct = strstr(s, "\r\nContent-Type: multipart/report; "
	    "report-type=delivery-status;");
	ASSERT(ct != NULL && ct < p);

	/* The boundary it names: the caller's, or one made from it. */
	b = strstr(ct, "boundary=\"");
	ASSERT(b != NULL && b < p);
	b += strlen("boundary=\"");
	be = strchr(b, '"');
	ASSERT(be != NULL && be < p);
	blen = (size_t)(be - b);
	ASSERT(blen >= 1 && blen <= 70 + 256 && blen + 1 < sizeof(bnd));
	memcpy(bnd, b, blen);
	bnd[blen] = '\0';
	ASSERT(strncmp(bnd, r->boundary, strlen(r->boundary)) == 0);

	/* It starts a line only as a delimiter line. */
	for (p = s; p < s + len; p = eol + 2) {
		eol = strstr(p, "\r\n");
		if (p[0] == '-' && p[1] == '-' &&
		    strncmp(p + 2, bnd, blen) == 0) {
			if ((size_t)(eol - p) == blen + 2) {
				ASSERT(delims < 3);
				part[delims++] = eol + 2;
			} else {
				ASSERT((size_t)(eol - p) == blen + 4 &&
				    p[blen + 2] == '-' && p[blen + 3] == '-');
				/* The closing delimiter ends the report. */
				ASSERT(eol + 2 == s + len);
				closes++;
			}
		}
	}
	ASSERT(delims == (r->qf != NULL ? 3 : 2) && closes == 1);
	ASSERT(fuzz_part_type(part[0], "text/plain; charset=us-ascii"));
	ASSERT(fuzz_part_type(part[1], "message/delivery-status"));
	if (r->qf == NULL)
		return;

	/* What of the original is attached. */
	full = qstore_file_envelope(r->qf)->ret == QSTORE_RET_FULL &&
	    r->kind == QSTORE_REPORT_FAILED &&
	    (uint64_t)qstore_file_body_size(r->qf) <= r->size_limit;
	ASSERT(fuzz_part_type(part[2], full ? "message/rfc822" :
	    "text/rfc822-headers"));
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const enum qstore_report kinds[] = { QSTORE_REPORT_FAILED,
	    QSTORE_REPORT_DELAYED, QSTORE_REPORT_RELAYED,
	    QSTORE_REPORT_FAILED };
	struct bounce_rcpt rc[2];
	struct bounce_report r;
	struct qstore_file *qf;
	struct vbuf out, why;
	char *buf, *f[FUZZ_NFIELDS], *q, *end, host[300];
	const uint8_t *msg;
	size_t msglen;
	int flags, i, nrcpts;

	if (size < 1)
		return 0;
	flags = data[0];
	buf = xmalloc(size);
	memcpy(buf, data + 1, size - 1);
	q = buf;
	end = buf + size - 1;
	/* The fields; any missing are "". */
	for (i = 0; i < FUZZ_NFIELDS; i++) {
		char *sep = memchr(q, FUZZ_SEP, (size_t)(end - q));

		f[i] = q;
		if (sep == NULL) {
			*end = '\0';
			q = end;
			continue;
		}
		*sep = '\0';
		q = sep + 1;
	}
	msg = (const uint8_t *)data + 1 + (size_t)(q - buf);
	msglen = (size_t)(end - q);
	nrcpts = (flags & 0x10) ? 2 : 1;

	memset(rc, 0, sizeof(rc));
	for (i = 0; i < 2; i++) {
		rc[i].index = (uint32_t)i;
		rc[i].addr = f[F_ADDR];
		rc[i].dsn = f[F_DSN];
		rc[i].reply = i == 0 ? f[F_REPLY] : NULL;
		rc[i].class = f[F_CLASS];
		rc[i].relay = f[F_RELAY];
		rc[i].time = i == 0 ? 1700000100 : 0;
		rc[i].until = 1700400000;
	}
	/* bounce(8)'s boundary: "qid.now/myhostname". */
	(void)snprintf(host, sizeof(host), "%.255s", f[F_HOST]);
	memset(&r, 0, sizeof(r));
	r.kind = kinds[flags & 0x03];
	r.qid = fuzz_qid;
	r.sender = f[F_SENDER];
	r.arrival = 1700000000;
	r.rcpts = rc;
	r.nrcpts = (size_t)nrcpts;
	r.myhostname = host[0] != '\0' ? host : "mx.example.org";
	r.size_limit = (flags & 0x80) ? 64 : 1024 * 1024;
	r.now = 1700000200;
	r.msgid = "20231114221640.0000000000000001@mx.example.org";
	r.boundary = "0000000000000001.1700000200/mx.example.org";

	vbuf_init(&out, 0);
	vbuf_init(&why, 0);
	qf = fuzz_queue_file(f, flags, nrcpts, msg, msglen);
	/* qfile takes every envelope we write: one line per value. */
	ASSERT(qf != NULL);
	r.qf = qf;
	ASSERT(bounce_dsn_compose(&r, &out, &why) == 0);
	fuzz_check(&out, &r);
	qstore_file_close(qf);

	vbuf_reset(&out);
	r.qf = NULL;
	ASSERT(bounce_dsn_compose(&r, &out, &why) == 0);
	fuzz_check(&out, &r);

	vbuf_release(&out);
	vbuf_release(&why);
	free(buf);
	return 0;
}
