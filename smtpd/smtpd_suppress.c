/*
 * smtpd_suppress.c - the suppression list at RCPT TO (lib/suppress).
 *
 * smtpd opens the list read-only at start (a missing list is an empty
 * one, looked for again later). With suppression.action reject, a RCPT TO
 * an address suppressed for every sending domain, or for the MAIL FROM's
 * domain, is answered 550 5.1.1 and logged like Postfix's reject lines;
 * the transaction's other recipients go on. With accept nothing is looked
 * up here: qmgr fails those recipients without a delivery attempt. See
 * smtpd(8), "Suppression list".
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "log.h"
#include "smtpd.h"
#include "suppress.h"

/* At most one warning a minute about an unreadable list. */
#define SMTPD_SUPPRESS_WARN_EVERY	60

static struct suppress	*smtpd_suppress;
static int64_t		 smtpd_suppress_warned;

void
smtpd_suppress_init(const struct cfg *cfg)
{
	struct vbuf *why;

	if (cfg->suppression_action != CFG_SUPPRESSION_REJECT)
		return;
	why = vbuf_create(0);
	if ((smtpd_suppress = suppress_open(cfg, 0, why)) == NULL)
		log_warn("suppression list unavailable, recipients will not "
		    "be checked: %s", why->data);
	vbuf_free(why);
}

int
smtpd_suppress_rcpt(struct smtpd_session *s, const char *rcpt)
{
	struct suppress_entry e;
	struct vbuf *why, *reply;
	const char *at, *safe_rcpt;
	char text[QSTORE_ADDR_MAX + QSTORE_REPLY_MAX];
	int64_t now;
	int rc;

	if (smtpd_suppress == NULL)
		return 0;
	now = (int64_t)time(NULL);
	at = strrchr(s->sender, '@');
	why = vbuf_create(0);
	rc = suppress_check(smtpd_suppress, rcpt, at == NULL ? "" : at + 1,
	    now, &e, why);
	if (rc == -1) {
		/*
		 * The list is a courtesy to the sender's reputation; the
		 * queue is what must not fail. A broken or full list must
		 * not refuse mail: accept, and qmgr checks again before
		 * delivery.
		 */
		if (now - smtpd_suppress_warned >= SMTPD_SUPPRESS_WARN_EVERY) {
			log_warn("suppression list lookup, recipient "
			    "accepted: %s", why->data);
			smtpd_suppress_warned = now;
		}
		vbuf_free(why);
		return 0;
	}
	vbuf_free(why);
	if (rc == 0)
		return 0;
	/* The client's address as it wrote it, as Postfix echoes it. */
	suppress_entry_reply(&e, rcpt, text, sizeof(text));
	smtpd_reply(s, SMTPD_R_SUPPRESSED, text);
	/* The same reply in the log line; each untrusted part made safe. */
	safe_rcpt = log_safe(rcpt);
	suppress_entry_reply(&e, safe_rcpt, text, sizeof(text));
	reply = vbuf_create(0);
	(void)vbuf_addf(reply, SMTPD_R_SUPPRESSED, text);
	log_info("NOQUEUE: reject: RCPT from unknown[%s]: %s; from=<%s> "
	    "to=<%s> proto=%s helo=<%s>", s->addr, reply->data,
	    log_safe(s->sender), safe_rcpt, s->esmtp ? "ESMTP" : "SMTP",
	    log_safe(s->helo));
	vbuf_free(reply);
	return -1;
}
