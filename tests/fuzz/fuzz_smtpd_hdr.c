/*
 * fuzz_smtpd_hdr.c - libFuzzer target for smtpd's reading of the header
 * block a client sends at DATA (smtpd/smtpd_hdr.c): where the block ends,
 * whether Message-ID: and Date: are there, the Message-ID: value, each
 * From: field unfolded and the RFC 5322 address walk over it; and, on the
 * same block, the metadata headers (lib/metahdr.c) as smtpd reads them.
 *
 * The input is what a client sends after DATA. Checked: the block end is
 * inside the input, at a line start, and on an empty line when blank says
 * so; the Message-ID value is printable, bounded, trimmed, and present
 * only when the field is; From: values are bounded, hold no line end and
 * are as long as said, and the walk stops at the first field that is
 * refused and gives each address within SMTP_PATH_MAX with its domain
 * (which is the part after its last '@', or "" ). Broken invariants abort
 * through ASSERT. Built and run by `make fuzz`; see tests/fuzz/README.md.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "metahdr.h"
#include "smtpd.h"
#include "vbuf.h"

int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);

static int	fuzz_addr(void *, const char *, const char *);

struct fuzz_walk {
	int	n;
	int	stop;		/* refuse the address numbered stop */
};

static int
fuzz_addr(void *arg, const char *addr, const char *dom)
{
	struct fuzz_walk *w = arg;
	size_t al = strlen(addr), dl = strlen(dom);

	ASSERT(al <= SMTP_PATH_MAX);
	ASSERT(dl <= SMTP_DOMAIN_MAX);
	ASSERT(dl <= al);
	if (dl > 0)
		ASSERT(memchr(addr, '@', al) != NULL);
	return w->n++ == w->stop ? -1 : 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t len)
{
	const char *d;
	char *copy, value[512], id[SMTPD_MSGID_MAX + 1];
	size_t end = (size_t)-1, off = 0, prev, idl;
	ssize_t vl;
	struct fuzz_walk w;
	struct metahdr mh;
	int blank = -1, n;

	/* An exact-size heap copy: ASan sees any read past the end. */
	if ((copy = malloc(len == 0 ? 1 : len)) == NULL)
		return 0;
	memcpy(copy, data, len);
	d = copy;

	if (smtpd_hdr_block_end(d, len, &end, &blank)) {
		ASSERT(end < len);
		ASSERT(end == 0 || d[end - 1] == '\n');
		if (blank)
			ASSERT(end + 1 < len && d[end] == '\r' &&
			    d[end + 1] == '\n');
		else
			ASSERT(blank == 0);
	} else
		end = len;

	smtpd_hdr_message_id(d, end, id);
	idl = strlen(id);
	ASSERT(idl <= SMTPD_MSGID_MAX);
	if (idl > 0) {
		ASSERT(smtpd_hdr_has(d, end, "Message-ID"));
		ASSERT(id[0] != ' ' && id[idl - 1] != ' ');
		for (size_t i = 0; i < idl; i++)
			ASSERT((unsigned char)id[i] >= 0x20 &&
			    (unsigned char)id[i] != 0x7f);
	}
	(void)smtpd_hdr_has(d, end, "Date");

	while ((prev = off, vl = smtpd_hdr_from_next(d, end, &off, value,
	    sizeof(value))) != -1) {
		ASSERT(off > prev && off <= end);
		ASSERT((size_t)vl < sizeof(value) && strlen(value) <=
		    (size_t)vl);
		ASSERT(memchr(value, '\r', (size_t)vl) == NULL &&
		    memchr(value, '\n', (size_t)vl) == NULL);
		w.n = 0;
		w.stop = -1;
		n = smtpd_hdr_addrs(value, (size_t)vl, fuzz_addr, &w);
		ASSERT(n == w.n);
		if (n > 0) {
			w.n = 0;
			w.stop = n - 1;
			ASSERT(smtpd_hdr_addrs(value, (size_t)vl, fuzz_addr,
			    &w) == -1 && w.n == n);
		}
	}
	ASSERT(off <= end);

	/* The address walk on the raw input too: any bytes. */
	w.n = 0;
	w.stop = -1;
	ASSERT(smtpd_hdr_addrs(d, len, fuzz_addr, &w) == w.n);

	metahdr_init(&mh);
	if (metahdr_scan(&mh, d, end, NULL) > 0) {
		struct vbuf *meta = vbuf_create(0), *tags = vbuf_create(0);

		(void)metahdr_result(&mh, meta, tags);
		vbuf_free(meta);
		vbuf_free(tags);
	}
	metahdr_free(&mh);
	free(copy);
	return 0;
}
