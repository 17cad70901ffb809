/*
 * fuzz_txt_answer.c - libFuzzer target for relayctl/relayctl_txt.c, the
 * TXT answers "relayctl domain check" reads (DKIM keys, DMARC records,
 * SPF through libspf2): whatever a domain's owner, or a resolver on the
 * path, sends.
 *
 * The input is a DNS message. Checked: malformed answers and those
 * without TXT records come back with no record; there are at most
 * RELAYCTL_TXT_MAX records of at most RELAYCTL_TXT_LEN printable bytes;
 * the raw join of each TXT rdata fits in rdlen + 1 bytes and is no longer
 * than the rdata; a tag's value is within its record and has no white
 * space at either end; the DMARC choice is one of the records, counted.
 * Broken invariants abort through ASSERT. Built and run by `make fuzz`;
 * see tests/fuzz/README.md.
 */
#include <sys/types.h>

#include <arpa/nameser.h>
#include <netinet/in.h>
#include <resolv.h>

#include <ctype.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "relayctl.h"
#include "vbuf.h"

int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);

static void	fuzz_join(const uint8_t *, size_t);

/* Every TXT rdata joined raw, as the SPF layer does, into exact room. */
static void
fuzz_join(const uint8_t *data, size_t len)
{
	ns_msg msg;
	ns_rr rr;
	char *out;
	int i, count;

	if (len > 65535 || ns_initparse(data, (int)len, &msg) == -1)
		return;
	count = ns_msg_count(msg, ns_s_an);
	for (i = 0; i < count; i++) {
		size_t l, n;

		if (ns_parserr(&msg, ns_s_an, i, &rr) == -1)
			break;
		if (ns_rr_type(rr) != ns_t_txt)
			continue;
		l = ns_rr_rdlen(rr);
		out = malloc(l + 1);
		ASSERT(out != NULL);
		n = relayctl_txt_join(ns_rr_rdata(rr), l, out);
		ASSERT(n <= l && (n == 0 || n < l));
		free(out);
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t len)
{
	struct relayctl_txt t;
	struct vbuf val, ns;
	const char *dm;
	size_t i, nrec, vl;
	int rc;

	memset(&t, 0, sizeof(t));
	vbuf_init(&val, 0);
	vbuf_init(&ns, 0);
	rc = relayctl_txt_parse(data, len, &t);
	ASSERT(rc >= -1 && rc <= 1);
	ASSERT(t.n <= RELAYCTL_TXT_MAX);
	ASSERT((rc == 1) == (t.n > 0));
	for (i = 0; i < t.n; i++) {
		const char *r = t.rec[i].data;

		ASSERT(t.rec[i].len <= RELAYCTL_TXT_LEN);
		ASSERT(strlen(r) == t.rec[i].len);
		for (size_t k = 0; k < t.rec[i].len; k++)
			ASSERT(isprint((unsigned char)r[k]));
		if (relayctl_txt_tag(r, "p", &val)) {
			vl = val.len;
			ASSERT(vl <= t.rec[i].len);
			ASSERT(vl == 0 || (!isspace((unsigned char)
			    val.data[0]) && !isspace((unsigned char)
			    val.data[vl - 1])));
			relayctl_txt_nospace(val.data, &ns);
			ASSERT(ns.len <= vl);
		}
	}
	dm = relayctl_txt_dmarc(&t, &nrec);
	ASSERT(nrec <= t.n);
	ASSERT((dm == NULL) == (nrec == 0));
	if (dm != NULL)
		ASSERT(strncasecmp(dm, "v=DMARC1", 8) == 0);
	relayctl_txt_free(&t);
	fuzz_join(data, len);
	vbuf_release(&val);
	vbuf_release(&ns);
	return 0;
}
