/*
 * smtpd_data.c - smtpd's DATA phase: unstuff, add trace and missing
 * headers, write the queue file.
 *
 * The header block is held in memory until it ends so that Message-ID: and
 * Date: can be added when missing (RFC 6409 section 8); the body after it is
 * written as received. At its end the application's tag and metadata
 * headers are read for the accepted event and, unless kept, left out
 * (smtpd_data_metadata, lib/metahdr). The envelope carries the RFC 3461
 * parameters the client gave, for a credential with reports off,
 * dsn_off, and the lane: the credential's, or bulk when the message says
 * X-Petrel-Priority: bulk (a message may lower itself, never raise). The
 * message is committed by smtpd_commit.c together with the others that
 * finished while no commit was under way.
 */
#include <sys/time.h>

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/rand.h>

#include "log.h"
#include "metahdr.h"
#include "smtpd.h"
#include "xalloc.h"

static void smtpd_data_headers_end(struct smtpd_session *, size_t, int);
static void smtpd_data_scan_headers(struct smtpd_session *);
static void smtpd_rfc5322_date(char *, size_t, time_t);
static void smtpd_data_deliver_after(struct smtpd_session *,
		    const struct metahdr *);
static void smtpd_data_metadata(struct smtpd_session *, struct vbuf *,
	    size_t);

int
smtpd_data_begin(struct smtpd_session *s)
{
	struct qstore_envelope env;
	struct vbuf *why = vbuf_create(0);
	size_t i;

	memset(&env, 0, sizeof(env));
	env.sender = s->sender;
	env.rcpts = s->rcpts;
	env.nrcpts = s->nrcpts;
	env.client_addr = s->addr;
	env.client_name = s->helo;
	env.auth_user = s->auth_user;
	/* RFC 3461 parameters, as checked at MAIL and RCPT (lib/dsnparam). */
	for (i = 0; i < s->nrcpts; i++) {
		if (s->rcpt_notify[i] != 0)
			env.notify = s->rcpt_notify;
		if (s->rcpt_orcpt[i] != NULL)
			env.orcpts = s->rcpt_orcpt;
	}
	env.envid = s->dsn.envid;
	env.ret = s->dsn.ret;
	/* The credential turned delivery reports off (relayctl --dsn off). */
	env.dsn_off = s->have_pol && s->pol.dsn_off;
	/* The credential's lane (relayctl --lane); the header may lower it. */
	env.bulk = s->have_pol && s->pol.bulk;
	/* RFC 6531: passed on, and required of next hops that need it. */
	env.smtputf8 = s->smtputf8;
	/* The credential's source address pool (relayctl --pool). */
	env.pool = s->have_pol ? s->pol.pool : NULL;
	if ((s->qn = qstore_new_begin(smtpd_queue, &env, why)) == NULL) {
		log_warn("queue file create: %s", why->data);
		smtpd_reply(s, qstore_errno() == QSTORE_ERR_FULL ?
		    SMTPD_R_STORE_FULL : SMTPD_R_STORE_ERR);
		vbuf_free(why);
		return -1;
	}
	vbuf_free(why);
	if (smtpd_policy_charge(s, s->qn) == -1) {
		smtpd_data_abort(s);
		smtpd_reply(s, SMTPD_R_POLICY_TEMP);
		return -1;
	}
	dotstuff_rx_init(&s->rx);
	vbuf_reset(s->hdr);
	s->in_body = 0;
	s->msg_size = 0;
	s->too_big = 0;
	s->store_failed = QSTORE_ERR_OK;
	s->line_len = 0;
	s->long_line = 0;
	return 0;
}

void
smtpd_data_abort(struct smtpd_session *s)
{
	if (s->qn != NULL) {
		qstore_new_abort(s->qn);
		s->qn = NULL;
	}
}

/* Feeds buffered input to the unstuffer; ends the phase at CRLF.CRLF. */
void
smtpd_data_input(struct smtpd_session *s)
{
	size_t used;

	vbuf_reset(s->chunk);
	used = dotstuff_rx_feed(&s->rx, s->in->data, s->in->len, s->chunk);
	vbuf_consume(s->in, used);
	if (s->chunk->len > 0)
		smtpd_data_store(s, s->chunk->data, s->chunk->len);
	if (s->rx.done)
		smtpd_data_finish(s);
}

/* Appends message bytes: to the header block, then straight to the file. */
void
smtpd_data_store(struct smtpd_session *s, const char *p, size_t len)
{
	struct vbuf *why;

	s->msg_size += len;
	if (s->msg_size > s->size_limit)
		s->too_big = 1;
	if (s->too_big || s->store_failed != QSTORE_ERR_OK)
		return;		/* keep reading to the end, store nothing */
	if (!s->long_line)
		smtpd_longline_scan(s, p, len);
	if (!s->in_body) {
		(void)vbuf_add(s->hdr, p, len);
		smtpd_data_scan_headers(s);
		return;
	}
	why = vbuf_create(0);
	if (qstore_new_write(s->qn, p, len, why) == -1) {
		log_warn("%s: %s", qstore_new_id(s->qn), why->data);
		s->store_failed = qstore_errno();
	}
	vbuf_free(why);
}

/* Finds the end of the header block in s->hdr, if it has arrived. */
static void
smtpd_data_scan_headers(struct smtpd_session *s)
{
	size_t end;
	int blank;

	if (smtpd_hdr_block_end(s->hdr->data, s->hdr->len, &end, &blank))
		smtpd_data_headers_end(s, end, blank);
	else if (s->hdr->len > SMTPD_HDR_MAX)
		smtpd_data_headers_end(s, s->hdr->len, 0);
}

/*
 * X-Petrel-Deliver-After (or X-Mailgun-Deliver-By, mh->after_header): the
 * first attempt waits until that time, at most SMTPD_DELIVER_AFTER_MAX
 * ahead and a day short of the queue lifetime (half of it when that is
 * under two days), or the message would expire unsent. A date in the past
 * or one that does not parse means now, with a log line, as a missing
 * header would.
 */
static void
smtpd_data_deliver_after(struct smtpd_session *s, const struct metahdr *mh)
{
	char when[64];
	int64_t now = (int64_t)time(NULL), t = mh->after, max;

	/* A day of the lifetime is left for the attempts themselves. */
	max = smtpd_cfg->queue_max_lifetime > 2 * 86400 ?
	    smtpd_cfg->queue_max_lifetime - 86400 :
	    smtpd_cfg->queue_max_lifetime / 2;
	if (max > SMTPD_DELIVER_AFTER_MAX)
		max = SMTPD_DELIVER_AFTER_MAX;
	if (t == -1) {
		log_info("%s: %s: unparsable date \"%s\", delivering now",
		    qstore_new_id(s->qn), mh->after_header,
		    log_safe(mh->after_raw));
		return;
	}
	if (t <= now) {
		log_info("%s: %s: %s is past, delivering now",
		    qstore_new_id(s->qn), mh->after_header,
		    log_safe(mh->after_raw));
		return;
	}
	if (t - now > max) {
		log_info("%s: %s: %s is more than %" PRId64 "s ahead, held "
		    "for %" PRId64 "s", qstore_new_id(s->qn), mh->after_header,
		    log_safe(mh->after_raw), max, max);
		t = now + max;
	}
	smtpd_rfc5322_date(when, sizeof(when), (time_t)t);
	log_info("%s: held until %s (%s)", qstore_new_id(s->qn), when,
	    mh->after_header);
	qstore_new_first_attempt(s->qn, t);
}

/*
 * Reads the application's tags and metadata (lib/metahdr) from the client's
 * header block s->hdr[0..end) into s->meta_json and s->tags_json, and
 * appends that block to h: without those headers (they are instructions to
 * the relay) unless events.keep_metadata_headers. Only whole fields are
 * left out, so every other byte and line end is as received. A bad one
 * leaves s->meta_reply set for smtpd_data_finish to refuse the message.
 * The other checks still see the whole block: none looks at X- fields.
 */
static void
smtpd_data_metadata(struct smtpd_session *s, struct vbuf *h, size_t end)
{
	struct metahdr mh;
	struct vbuf *kept = NULL;
	size_t i;
	int n;

	s->meta_reply[0] = '\0';
	vbuf_reset(s->meta_json);
	vbuf_reset(s->tags_json);
	metahdr_init(&mh);
	if (!smtpd_cfg->events_keep_metadata_headers)
		kept = vbuf_create(0);
	n = metahdr_scan(&mh, s->hdr->data, end, kept);
	if (n > 0)
		n = metahdr_result(&mh, s->meta_json, s->tags_json);
	if (n == -1) {
		/* The reason may quote the client's bytes: printable only. */
		for (i = 0; mh.err[i] != '\0'; i++)
			if ((unsigned char)mh.err[i] < 0x20 ||
			    (unsigned char)mh.err[i] >= 0x7f)
				mh.err[i] = '?';
		snprintf(s->meta_reply, sizeof(s->meta_reply),
		    SMTPD_R_METADATA, mh.err);
		log_info("%s: reject: unknown[%s]: bad metadata header: %s",
		    qstore_new_id(s->qn), s->addr, mh.err);
		vbuf_reset(s->meta_json);
		vbuf_reset(s->tags_json);
	}
	if (n != -1 && mh.has_after)
		smtpd_data_deliver_after(s, &mh);
	/* Before any write: the envelope is still in qstore's buffer. */
	if (n != -1 && mh.bulk && !(s->have_pol && s->pol.bulk)) {
		if (qstore_new_bulk(s->qn) == -1)
			log_warn("%s: X-Petrel-Priority: bulk: envelope "
			    "already written", qstore_new_id(s->qn));
		else
			log_info("%s: lane=bulk (X-Petrel-Priority)",
			    qstore_new_id(s->qn));
	}
	if (kept != NULL && mh.nheaders > 0 && n != -1)
		vbuf_add(h, kept->data, kept->len);
	else
		vbuf_add(h, s->hdr->data, end);
	vbuf_free(kept);
	metahdr_free(&mh);
}

static void
smtpd_rfc5322_date(char *buf, size_t size, time_t t)
{
	struct tm tm;

	gmtime_r(&t, &tm);
	strftime(buf, size, "%a, %d %b %Y %H:%M:%S +0000", &tm);
}

/*
 * The header block is s->hdr[0..end); blank tells whether it ended with an
 * empty line. Writes our Received:, the client's headers, any added ones,
 * then whatever of the body has arrived.
 */
static void
smtpd_data_headers_end(struct smtpd_session *s, size_t end, int blank)
{
	const struct cfg *cfg = smtpd_cfg;
	struct vbuf *h = vbuf_create(0), *why = vbuf_create(0);
	const char *proto;
	unsigned char r[6];
	char date[64];
	time_t now = time(NULL);

	smtpd_rfc5322_date(date, sizeof(date), now);
	if (s->tls_on)
		proto = s->auth_user[0] != '\0' ? "ESMTPSA" : "ESMTPS";
	else if (s->esmtp)
		proto = s->auth_user[0] != '\0' ? "ESMTPA" : "ESMTP";
	else
		proto = "SMTP";
	/* RFC 5321 4.4 trace field; RFC 3848 protocol names. */
	vbuf_addf(h, "Received: from %s (unknown [%s])\r\n\tby %s (Petrel) "
	    "with %s id %s", s->helo, s->addr, cfg->myhostname, proto,
	    qstore_new_id(s->qn));
	if (s->tls_on)
		vbuf_addf(h, "\r\n\t(version=%s cipher=%s)", s->tls_version,
		    s->tls_cipher);
	if (s->auth_user[0] != '\0')
		vbuf_addf(h, "\r\n\t(authenticated user %s)", s->auth_user);
	vbuf_addf(h, ";\r\n\t%s\r\n", date);
	smtpd_data_metadata(s, h, end);
	smtpd_policy_headers(s, s->hdr->data, end);
	smtpd_policy_utf8_headers(s, s->hdr->data, end);
	if (s->policy_reject == NULL && s->meta_reply[0] != '\0')
		s->policy_reject = s->meta_reply;
	if (!smtpd_hdr_has(s->hdr->data, end, "Message-ID")) {
		if (RAND_bytes(r, sizeof(r)) != 1)
			log_fatal("RAND_bytes failed");
		snprintf(s->message_id, sizeof(s->message_id),
		    "<%s.%02x%02x%02x%02x%02x%02x@%s>", qstore_new_id(s->qn),
		    r[0], r[1], r[2], r[3], r[4], r[5], cfg->myhostname);
		vbuf_addf(h, "Message-ID: %s\r\n", s->message_id);
	} else
		smtpd_hdr_message_id(s->hdr->data, end, s->message_id);
	if (!smtpd_hdr_has(s->hdr->data, end, "Date"))
		vbuf_addf(h, "Date: %s\r\n", date);
	/* A body that started without its empty line gets one. */
	if (!blank && end < s->hdr->len)
		vbuf_add(h, "\r\n", 2);
	vbuf_add(h, s->hdr->data + end, s->hdr->len - end);
	s->in_body = 1;
	vbuf_reset(s->hdr);
	if (qstore_new_write(s->qn, h->data, h->len, why) == -1) {
		log_warn("%s: %s", qstore_new_id(s->qn), why->data);
		s->store_failed = qstore_errno();
	}
	vbuf_free(h);
	vbuf_free(why);
}

void
smtpd_data_finish(struct smtpd_session *s)
{
	struct vbuf *why;

	if (s->too_big) {
		log_info("%s: reject: message from unknown[%s] exceeds %" PRIu64
		    " bytes", qstore_new_id(s->qn), s->addr, s->size_limit);
		smtpd_data_abort(s);
		smtpd_proto_reset(s);
		smtpd_reply(s, SMTPD_R_TOO_BIG);
		smtpd_set_state(s, SMTPD_CMD);
		return;
	}
	if (!s->in_body && s->store_failed == QSTORE_ERR_OK)
		smtpd_data_headers_end(s, s->hdr->len, 0);
	if (s->policy_reject != NULL) {
		const char *reply = s->policy_reject;

		smtpd_data_abort(s);
		smtpd_proto_reset(s);
		smtpd_reply(s, "%s", reply);
		smtpd_set_state(s, SMTPD_CMD);
		return;
	}
	if (s->long_line && s->store_failed == QSTORE_ERR_OK &&
	    smtpd_longline_finish(s) == -1)
		return;		/* refused, and replied */
	why = vbuf_create(0);
	if (s->store_failed == QSTORE_ERR_OK &&
	    qstore_new_finish(s->qn, why) == -1) {
		log_warn("%s: %s", qstore_new_id(s->qn), why->data);
		s->store_failed = qstore_errno();
	}
	vbuf_free(why);
	if (s->store_failed != QSTORE_ERR_OK) {
		smtpd_data_abort(s);
		smtpd_proto_reset(s);
		smtpd_reply(s, s->store_failed == QSTORE_ERR_FULL ?
		    SMTPD_R_STORE_FULL : SMTPD_R_STORE_ERR);
		smtpd_set_state(s, SMTPD_CMD);
		return;
	}
	smtpd_set_state(s, SMTPD_COMMIT_WAIT);
	smtpd_commit_enqueue(s);
}
