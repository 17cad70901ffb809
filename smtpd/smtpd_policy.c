/*
 * smtpd_policy.c - per-credential policy in smtpd: the user's record is
 * read afresh at each MAIL, so a disabled or deleted credential starts no
 * new transaction and a changed policy applies at once, also in sessions
 * that are already open.
 *
 * Sender domains: both MAIL FROM and the header From: must be in the
 * user's domains (550 5.7.1); MAIL FROM:<> is allowed, its From: is not
 * exempt. Limits: recipients per message (452 4.5.3),
 * message size (552 5.3.4), messages per hour and per day (451 4.7.1). The
 * rate counters live in the queue's LMDB and are charged in the same
 * transaction that accepts the message, so every smtpd process shares
 * them and they survive restarts.
 *
 * Verified senders (smtpd.require_verified_domains): for every client,
 * MAIL FROM and the header From: must be in a domain registered with
 * relayctl domain add (lib/dkimkey's registry), read afresh each time.
 */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "dkimkey.h"
#include "idna.h"
#include "log.h"
#include "smtpd.h"

#define POLICY_KEY_MAX	(QSTORE_COUNTER_KEY_MAX + 1)

static void smtpd_policy_keys(const struct smtpd_session *, char *, char *,
    int64_t *, int64_t *);
static int smtpd_from_check(struct smtpd_session *, const char *, size_t,
    int (*)(struct smtpd_session *, const char *), const char *);
static int smtpd_from_allowed(struct smtpd_session *, const char *);
static int smtpd_domain_verified(struct smtpd_session *, const char *);

static struct dkimkey_db *smtpd_domains;

void
smtpd_policy_init(const struct cfg *cfg)
{
	struct vbuf *why = vbuf_create(0);

	if (cfg->smtpd_require_verified_domains &&
	    (smtpd_domains = dkimkey_open(cfg, 0, why)) == NULL)
		log_warn("sending domains unavailable, every sender will be "
		    "refused: %s", why->data);
	vbuf_free(why);
}

/* 1 if domain is registered (or a subdomain of one); 0 also on error. */
static int
smtpd_domain_verified(struct smtpd_session *s, const char *domain)
{
	struct vbuf *why;
	int rc;

	if (smtpd_domains == NULL || domain[0] == '\0')
		return 0;
	why = vbuf_create(0);
	if ((rc = dkimkey_domain_covered(smtpd_domains, domain, NULL, 0,
	    why)) == -1)
		log_warn("unknown[%s]: sending domain lookup: %s", s->addr,
		    why->data);
	vbuf_free(why);
	return rc == 1;
}

static int
smtpd_from_allowed(struct smtpd_session *s, const char *domain)
{
	char ascii[SMTP_DOMAIN_MAX + 1];

	/* Credentials hold A-labels; an SMTPUTF8 address may not. */
	if (idna_domain_ascii(domain, ascii, sizeof(ascii)) == -1)
		return 0;
	return cred_policy_domain_ok(&s->pol, ascii);
}

void
smtpd_policy_reset(struct smtpd_session *s)
{
	if (s->have_pol)
		cred_policy_release(&s->pol);
	s->have_pol = 0;
	s->policy_reject = NULL;
	s->size_limit = smtpd_cfg->smtpd_message_size_limit;
	s->rcpt_limit = smtpd_cfg->smtpd_max_recipients;
}

static void
smtpd_policy_keys(const struct smtpd_session *s, char *hkey, char *dkey,
    int64_t *hwin, int64_t *dwin)
{
	int64_t now = time(NULL);

	snprintf(hkey, POLICY_KEY_MAX, "rate:h:%s", s->auth_user);
	snprintf(dkey, POLICY_KEY_MAX, "rate:d:%s", s->auth_user);
	*hwin = now - now % 3600;
	*dwin = now - now % 86400;
}

/*
 * At MAIL: loads the user's policy and checks it against the sender and
 * the rate counters. Returns 0, or -1 after replying.
 */
int
smtpd_policy_mail(struct smtpd_session *s, const char *sender)
{
	char dom[SMTP_DOMAIN_MAX + 1], hkey[POLICY_KEY_MAX],
	    dkey[POLICY_KEY_MAX];
	struct qstore_txn *txn;
	struct vbuf *why;
	int64_t hwin, dwin;
	uint64_t n;
	int found;

	smtpd_policy_reset(s);
	smtpcmd_addr_domain(sender, dom, sizeof(dom));
	if (smtpd_cfg->smtpd_require_verified_domains && sender[0] != '\0' &&
	    !smtpd_domain_verified(s, dom)) {
		log_info("reject: MAIL from unknown[%s]: sender <%s>: domain "
		    "not verified", s->addr, log_safe(sender));
		smtpd_reply(s, SMTPD_R_UNVERIFIED);
		return -1;
	}
	if (s->auth_user[0] == '\0' || smtpd_auth_db() == NULL)
		return 0;	/* trusted network: smtpd's limits only */
	why = vbuf_create(0);
	found = cred_policy_get(smtpd_auth_db(), s->auth_user, &s->pol, why);
	if (found == -1) {
		log_warn("unknown[%s]: policy of %s: %s", s->addr,
		    s->auth_user, why->data);
		vbuf_free(why);
		smtpd_reply(s, SMTPD_R_POLICY_TEMP);
		return -1;
	}
	vbuf_free(why);
	if (found == 0 || s->pol.disabled) {
		log_info("reject: MAIL from unknown[%s]: credential %s %s",
		    s->addr, s->auth_user, found == 0 ? "deleted" :
		    "disabled");
		if (found == 1)
			cred_policy_release(&s->pol);
		s->auth_user[0] = '\0';		/* log in again */
		smtpd_reply(s, SMTPD_R_CRED_GONE);
		return -1;
	}
	s->have_pol = 1;
	if (s->pol.max_size != 0 && s->pol.max_size < s->size_limit)
		s->size_limit = s->pol.max_size;
	if (s->pol.max_recipients != 0 && s->pol.max_recipients <
	    s->rcpt_limit)
		s->rcpt_limit = s->pol.max_recipients;

	/*
	 * The null sender is legitimate for submission (auto-replies and
	 * notifications that must not bounce, RFC 3834): it has no domain
	 * to check, and the header From: is still checked at the end of
	 * DATA (smtpd_policy_headers), as Postfix's sender login maps leave
	 * <> to the header checks.
	 */
	if (s->pol.ndomains > 0 && sender[0] != '\0' && (dom[0] == '\0' ||
	    !smtpd_from_allowed(s, dom))) {
		log_info("reject: MAIL from unknown[%s]: sender <%s> not "
		    "allowed for sasl_username=%s", s->addr, log_safe(sender),
		    s->auth_user);
		smtpd_reply(s, SMTPD_R_SENDER_DENIED);
		return -1;
	}

	/* Early refusal; the commit checks again, exactly. */
	if (s->pol.max_per_hour == 0 && s->pol.max_per_day == 0)
		return 0;
	smtpd_policy_keys(s, hkey, dkey, &hwin, &dwin);
	if ((txn = qstore_txn_begin(smtpd_queue, 0, NULL)) == NULL)
		return 0;
	if (s->pol.max_per_hour != 0 && qstore_counter_get(txn, hkey, hwin,
	    &n) == 0 && n >= s->pol.max_per_hour) {
		qstore_txn_abort(txn);
		log_info("reject: MAIL from unknown[%s]: sasl_username=%s "
		    "over %llu messages per hour", s->addr, s->auth_user,
		    (unsigned long long)s->pol.max_per_hour);
		smtpd_reply(s, SMTPD_R_RATE_HOUR,
		    (unsigned long long)s->pol.max_per_hour);
		return -1;
	}
	if (s->pol.max_per_day != 0 && qstore_counter_get(txn, dkey, dwin,
	    &n) == 0 && n >= s->pol.max_per_day) {
		qstore_txn_abort(txn);
		log_info("reject: MAIL from unknown[%s]: sasl_username=%s "
		    "over %llu messages per day", s->addr, s->auth_user,
		    (unsigned long long)s->pol.max_per_day);
		smtpd_reply(s, SMTPD_R_RATE_DAY,
		    (unsigned long long)s->pol.max_per_day);
		return -1;
	}
	qstore_txn_abort(txn);
	return 0;
}

/* At DATA: the message counts against the user's rates when committed. */
int
smtpd_policy_charge(struct smtpd_session *s, struct qstore_new *qn)
{
	char hkey[POLICY_KEY_MAX], dkey[POLICY_KEY_MAX];
	int64_t hwin, dwin;

	if (!s->have_pol)
		return 0;
	smtpd_policy_keys(s, hkey, dkey, &hwin, &dwin);
	if (s->pol.max_per_hour != 0 &&
	    qstore_new_charge(qn, hkey, hwin, s->pol.max_per_hour) == -1)
		return -1;
	if (s->pol.max_per_day != 0 &&
	    qstore_new_charge(qn, dkey, dwin, s->pol.max_per_day) == -1)
		return -1;
	return 0;
}

/*
 * The header block has ended: checks every address of the From: field
 * against the user's domains (RFC 5322 3.6.2; folded lines unfolded;
 * smtpd_hdr.c reads the fields and walks the addresses).
 */
void
smtpd_policy_headers(struct smtpd_session *s, const char *hdr, size_t len)
{
	size_t off = 0;
	char value[4096];
	ssize_t vlen;
	int seen = 0;

	int domains = s->have_pol && s->pol.ndomains > 0;
	int verify = smtpd_cfg->smtpd_require_verified_domains;

	if (!domains && !verify)
		return;
	while ((vlen = smtpd_hdr_from_next(hdr, len, &off, value,
	    sizeof(value))) != -1) {
		seen++;
		if (verify && smtpd_from_check(s, value, (size_t)vlen,
		    smtpd_domain_verified, SMTPD_R_FROM_UNVERIFIED) == -1)
			return;
		if (domains && smtpd_from_check(s, value, (size_t)vlen,
		    smtpd_from_allowed, SMTPD_R_FROM_DENIED) == -1)
			return;
	}
	if (seen == 0) {
		log_info("reject: unknown[%s]: no From: header%s%s", s->addr,
		    s->auth_user[0] != '\0' ? ", sasl_username=" : "",
		    s->auth_user);
		s->policy_reject = SMTPD_R_FROM_MISSING;
	}
}

/*
 * RFC 6531 3.5: without SMTPUTF8 the header block must be ASCII (RFC
 * 2047 encoded words carry other text). A message whose headers hold raw
 * 8-bit bytes is refused at the end of its data; one sent with SMTPUTF8
 * travels as it is, to next hops that offer SMTPUTF8 (smtp(8)).
 */
void
smtpd_policy_utf8_headers(struct smtpd_session *s, const char *hdr,
    size_t len)
{
	if (s->smtputf8 || s->policy_reject != NULL)
		return;
	for (size_t i = 0; i < len; i++)
		if ((unsigned char)hdr[i] >= 0x80) {
			log_info("reject: unknown[%s]: non-ASCII header "
			    "without SMTPUTF8%s%s", s->addr,
			    s->auth_user[0] != '\0' ? ", sasl_username=" : "",
			    s->auth_user);
			s->policy_reject = SMTPD_R_UTF8_HEADER;
			return;
		}
}

struct smtpd_from_walk {
	struct smtpd_session	*s;
	int			(*allowed)(struct smtpd_session *,
				    const char *);
	const char		*reply;
};

/* One address of the From: value: refused unless its domain is allowed. */
static int
smtpd_from_one(void *arg, const char *addr, const char *dom)
{
	struct smtpd_from_walk *w = arg;

	if (dom[0] != '\0' && w->allowed(w->s, dom))
		return 0;
	log_info("reject: unknown[%s]: From: <%s>: %s", w->s->addr,
	    log_safe(addr), w->reply + 10);
	w->s->policy_reject = w->reply;
	return -1;
}

/*
 * Every address of a From: value must pass allowed; one that does not,
 * or a value with no address, sets policy_reject and returns -1.
 */
static int
smtpd_from_check(struct smtpd_session *s, const char *v, size_t n,
    int (*allowed)(struct smtpd_session *, const char *), const char *reply)
{
	struct smtpd_from_walk w = { s, allowed, reply };
	int naddr;

	if ((naddr = smtpd_hdr_addrs(v, n, smtpd_from_one, &w)) == -1)
		return -1;
	if (naddr == 0) {
		s->policy_reject = SMTPD_R_FROM_MISSING;
		return -1;
	}
	return 0;
}
