/*
 * dsnparam.h - the ESMTP DSN parameters of RFC 3461: RET and ENVID on MAIL
 * FROM (section 4.3, 4.4), NOTIFY and ORCPT on RCPT TO (4.1, 4.2).
 *
 * smtpd hands each parameter smtpcmd_param_next found to dsnparam_mail or
 * dsnparam_rcpt, which check it against the RFC's syntax and keep it;
 * ENVID and ORCPT are kept exactly as received (still xtext, lib/xtext),
 * for the queue file's envelope (lib/qstore). smtp formats NOTIFY for the
 * next hop with dsnparam_notify_format. Nothing here trusts its input:
 * every value is bounded and checked before it is kept.
 */
#ifndef PETREL_DSNPARAM_H
#define PETREL_DSNPARAM_H

#include "qstore.h"
#include "vbuf.h"

/* RFC 3461 4.3 and 4.4, on MAIL FROM. */
struct dsnparam_mail {
	int		 have_ret;
	enum qstore_ret	 ret;
	char		 envid[QSTORE_ENVID_MAX + 1];	/* "" not given */
};

/* RFC 3461 4.1 and 4.2, on RCPT TO. */
struct dsnparam_rcpt {
	unsigned	 notify;	/* QSTORE_NOTIFY_* bits; 0 not given */
	char		 orcpt[QSTORE_ORCPT_MAX + 1];	/* "" not given */
};

/*
 * Offers one MAIL FROM parameter (key upper case, as smtpcmd_param_next
 * gives it; value as received) to m, which the caller zeroes first.
 * Returns 1 if it was RET or ENVID and is kept in m; 0 if it is not a DSN
 * parameter (m unchanged); -1 if it is one but malformed or given twice,
 * with a reply-ready text in why ("5.5.4 Bad RET parameter syntax").
 * RET is FULL or HDRS (any case); ENVID is 1 to QSTORE_ENVID_MAX bytes of
 * xtext that decodes to printable US-ASCII.
 */
int	dsnparam_mail(struct dsnparam_mail *m, const char *key,
	    const char *value, struct vbuf *why);
/*
 * The same for one RCPT TO parameter. NOTIFY is NEVER alone, or a comma
 * list of SUCCESS, FAILURE and DELAY (any case, no empty item); ORCPT is
 * addr-type ";" xtext, at most QSTORE_ORCPT_MAX bytes in all, addr-type
 * an atom (RFC 5322 atext; "rfc822" or any other, kept as given) and the
 * xtext non-empty, decoding to printable US-ASCII.
 */
int	dsnparam_rcpt(struct dsnparam_rcpt *r, const char *key,
	    const char *value, struct vbuf *why);
/*
 * Appends NOTIFY's value for the bits to out: "NEVER" when that bit is set
 * (alone, whatever else is), else those of "SUCCESS,FAILURE,DELAY" that
 * are set, in that order. Nothing for 0.
 */
void	dsnparam_notify_format(unsigned notify, struct vbuf *out);

#endif
