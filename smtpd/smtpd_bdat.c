/*
 * smtpd_bdat.c - CHUNKING (RFC 3030): the message in BDAT chunks.
 *
 * "BDAT size [LAST]" is followed by exactly size octets of message, with
 * no dot-stuffing and no end marker; the reply comes after the octets.
 * Mail servers that use Petrel as their smarthost send this when it is
 * offered. The octets go where DATA's go (smtpd_data_store, after the
 * same line-end treatment: a bare CR or LF is stored as CRLF, so the next
 * hop sees the lines we saw), under the same size limit, and the LAST
 * chunk commits the message as the end of DATA does.
 *
 * A chunk that cannot be taken (no MAIL or RCPT, the message would be too
 * big, the queue file could not be made) is still read to its end, so the
 * next command is found where the client put it, and then refused; a
 * message over the limit is abandoned (RFC 3030 2: the client sends no
 * more chunks of it). A BDAT whose size cannot be read leaves no way to
 * find the next command: the session ends.
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "dotstuff.h"
#include "log.h"
#include "smtpcmd.h"
#include "smtpd.h"

static void smtpd_bdat_done(struct smtpd_session *);

/* Forgets a BDAT message in progress (RSET, EHLO, MAIL's errors, ...). */
void
smtpd_bdat_reset(struct smtpd_session *s)
{
	if (s->bdat_open) {
		smtpd_data_abort(s);
		s->bdat_open = 0;
	}
}

void
smtpd_bdat_command(struct smtpd_session *s, const char *arg)
{
	uint64_t size;
	int last;

	if (smtpcmd_bdat(arg, &size, &last) == -1) {
		log_info("reject: BDAT from unknown[%s]: bad chunk size: %s",
		    s->addr, log_safe_n(arg, 64));
		smtpd_reply(s, SMTPD_R_BDAT_SYNTAX);
		smtpd_set_state(s, SMTPD_CLOSING);
		return;
	}
	s->bdat_size = s->bdat_left = size;
	s->bdat_last = last;
	s->bdat_discard = NULL;
	if (!s->mail_seen)
		s->bdat_discard = SMTPD_R_NEED_MAIL;
	else if (s->nrcpts == 0)
		s->bdat_discard = SMTPD_R_NEED_RCPT;
	else if (!s->bdat_open) {
		if (smtpd_data_begin(s) == -1)
			s->bdat_discard = "";	/* it replied */
		else
			s->bdat_open = 1;
	}
	if (s->bdat_discard == NULL &&
	    (size > s->size_limit || s->msg_size > s->size_limit - size)) {
		log_info("%s: reject: message from unknown[%s] exceeds %" PRIu64
		    " bytes", qstore_new_id(s->qn), s->addr, s->size_limit);
		smtpd_proto_reset(s);
		s->bdat_discard = SMTPD_R_TOO_BIG;
	}
	if (s->bdat_discard == NULL)
		vbuf_reset(s->chunk);
	smtpd_set_state(s, SMTPD_BDAT);
	if (size == 0)
		smtpd_bdat_done(s);
}

/* Takes what has arrived of the chunk; at its end, the reply. */
void
smtpd_bdat_input(struct smtpd_session *s)
{
	size_t n = s->in->len;

	if (n > s->bdat_left)
		n = (size_t)s->bdat_left;
	if (s->bdat_discard == NULL) {
		vbuf_reset(s->chunk);
		dotstuff_bdat_feed(&s->rx, s->in->data, n, s->chunk);
		if (s->chunk->len > 0)
			smtpd_data_store(s, s->chunk->data, s->chunk->len);
	}
	vbuf_consume(s->in, n);
	s->bdat_left -= n;
	if (s->bdat_left == 0)
		smtpd_bdat_done(s);
}

static void
smtpd_bdat_done(struct smtpd_session *s)
{
	if (s->bdat_discard != NULL) {
		smtpd_set_state(s, SMTPD_CMD);
		if (s->bdat_discard[0] != '\0')
			smtpd_reply(s, "%s", s->bdat_discard);
		return;
	}
	if (!s->bdat_last) {
		smtpd_set_state(s, SMTPD_CMD);
		smtpd_reply(s, SMTPD_R_BDAT_OK, s->bdat_size);
		return;
	}
	vbuf_reset(s->chunk);
	dotstuff_bdat_end(&s->rx, s->chunk);
	if (s->chunk->len > 0)
		smtpd_data_store(s, s->chunk->data, s->chunk->len);
	s->bdat_open = 0;
	smtpd_set_state(s, SMTPD_CMD);
	/* Commits, or refuses and resets, exactly as the end of DATA. */
	smtpd_data_finish(s);
}
