/*
 * smtpd_longline.c - messages with lines over 998 octets (RFC 5322
 * 2.1.1, RFC 5321 4.5.3.1.6), which applications send every day and which
 * must not leave Petrel as they are: a receiver may refuse, truncate or
 * rewrap them, and a rewrap breaks the DKIM signature.
 *
 * While the data is stored, the length of each line is followed (one
 * memchr per line end, and nothing at all once a long line was seen). At
 * the end of the data, a message that had one is, by smtpd.long_lines,
 * made to fit (lib/mimefold: headers folded, MIME parts re-encoded as
 * quoted-printable; the file is rewritten before it is finished, so what
 * is queued, signed by smtp and reported by bounce already fits) or
 * refused with 550 5.6.0. Ordinary messages pay only the scan.
 */
#include <inttypes.h>
#include <string.h>

#include "log.h"
#include "mimefold.h"
#include "smtpd.h"

static void smtpd_longline_fold(const char *, size_t, struct vbuf *, void *);

/* Follows line lengths through stored bytes (CRLF line ends). */
void
smtpd_longline_scan(struct smtpd_session *s, const char *p, size_t len)
{
	const char *lf;

	while (len > 0) {
		if ((lf = memchr(p, '\n', len)) == NULL) {
			s->line_len += len;
			break;
		}
		/* The CR before the LF is not part of the line. */
		s->line_len += (uint64_t)(lf - p);
		if (s->line_len > MIMEFOLD_LINE_MAX + 1) {
			s->long_line = 1;
			return;
		}
		s->line_len = 0;
		len -= (size_t)(lf - p) + 1;
		p = lf + 1;
	}
	/* A line still open is long once past the limit with its CR. */
	if (s->line_len > MIMEFOLD_LINE_MAX + 1)
		s->long_line = 1;
}

static void
smtpd_longline_fold(const char *data, size_t len, struct vbuf *out,
    void *arg)
{
	mimefold(data, len, out, arg);
}

/*
 * At the end of data, for a message with a long line. Returns 0 to go on
 * to the commit, or -1 after refusing it (replied, transaction reset).
 */
int
smtpd_longline_finish(struct smtpd_session *s)
{
	const char *qid = qstore_new_id(s->qn);
	struct vbuf *why;
	uint64_t before = qstore_new_size(s->qn);
	unsigned forced = 0;

	if (smtpd_cfg->smtpd_long_lines == CFG_LONG_LINES_REFUSE) {
		log_info("%s: reject: message from unknown[%s] has lines longer "
		    "than %d octets", qid, s->addr, MIMEFOLD_LINE_MAX);
		smtpd_data_abort(s);
		smtpd_proto_reset(s);
		smtpd_reply(s, SMTPD_R_LONG_LINES);
		smtpd_set_state(s, SMTPD_CMD);
		return -1;
	}
	why = vbuf_create(0);
	if (qstore_new_rewrite(s->qn, smtpd_longline_fold, &forced,
	    why) == -1) {
		log_warn("%s: %s", qid, why->data);
		s->store_failed = qstore_errno();
	} else
		log_info("%s: lines longer than %d octets: re-encoded to fit, "
		    "size %" PRIu64 " -> %" PRIu64 "%s", qid, MIMEFOLD_LINE_MAX,
		    before, qstore_new_size(s->qn), forced > 0 ?
		    " (some lines split: their text changed)" : "");
	vbuf_free(why);
	return 0;
}
