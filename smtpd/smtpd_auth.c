/*
 * smtpd_auth.c - SMTP AUTH PLAIN (RFC 4954, RFC 4616) for smtpd.
 *
 * Offered and accepted only over TLS and never on a "tls: none" listener.
 * Credentials are checked by lib/cred against salted scrypt hashes, with a
 * fresh read of the credential database each time, so a deleted user cannot
 * start a new session.
 */
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "cred.h"
#include "log.h"
#include "sasl.h"
#include "smtpd.h"

static struct cred_db *smtpd_creds;

static void smtpd_auth_plain(struct smtpd_session *, const char *);
static void smtpd_auth_check(struct smtpd_session *, const char *,
    const char *, const char *, size_t);

void
smtpd_auth_init(const struct cfg *cfg)
{
	struct vbuf *why = vbuf_create(0);

	if ((smtpd_creds = cred_open(cfg, 0, why)) == NULL)
		log_warn("credentials unavailable, AUTH disabled: %s",
		    why->data);
	vbuf_free(why);
}

int
smtpd_auth_available(const struct smtpd_session *s)
{
	return smtpd_creds != NULL && s->tls_on &&
	    s->tls_mode != CFG_TLS_NONE && s->auth_user[0] == '\0';
}

void
smtpd_auth_command(struct smtpd_session *s, const char *arg)
{
	const char *sp;

	if (s->tls_mode == CFG_TLS_NONE || smtpd_creds == NULL) {
		smtpd_reply(s, SMTPD_R_AUTH_OFF);
		return;
	}
	if (!s->tls_on) {
		smtpd_reply(s, SMTPD_R_TLS_FIRST);
		return;
	}
	if (s->helo[0] == '\0') {
		smtpd_reply(s, SMTPD_R_NEED_HELO);
		return;
	}
	if (s->auth_user[0] != '\0') {
		smtpd_reply(s, SMTPD_R_AUTH_AGAIN);
		return;
	}
	if (s->mail_seen) {
		smtpd_reply(s, SMTPD_R_AUTH_TXN);
		return;
	}
	sp = strchr(arg, ' ');
	if ((sp == NULL ? strcasecmp(arg, "PLAIN") :
	    (sp - arg == 5 ? strncasecmp(arg, "PLAIN", 5) : 1)) != 0) {
		smtpd_reply(s, SMTPD_R_AUTH_MECH);
		return;
	}
	if (sp == NULL) {
		smtpd_reply(s, "334 ");
		smtpd_set_state(s, SMTPD_AUTH_WAIT);
		return;
	}
	smtpd_auth_plain(s, sp + 1);
}

void
smtpd_auth_response(struct smtpd_session *s, const char *line)
{
	smtpd_set_state(s, SMTPD_CMD);
	if (strcmp(line, "*") == 0) {
		smtpd_reply(s, SMTPD_R_AUTH_CANCEL);
		return;
	}
	smtpd_auth_plain(s, line);
}

/* "[authzid] NUL authcid NUL passwd", base64-encoded (RFC 4616). */
static void
smtpd_auth_plain(struct smtpd_session *s, const char *b64)
{
	unsigned char buf[SMTPD_AUTH_LINE_MAX];
	struct sasl_plain p;
	size_t len;

	if (strcmp(b64, "=") == 0)
		b64 = "";
	if (sasl_b64_decode(b64, buf, sizeof(buf), &len) == -1 ||
	    sasl_plain_parse(buf, len, &p) == -1) {
		smtpd_reply(s, SMTPD_R_AUTH_B64);
		goto done;
	}
	/* An authzid must be empty or the user itself: no proxy logins. */
	if (p.authzid[0] != '\0' && strcmp(p.authzid, p.authcid) != 0) {
		log_info("unknown[%s]: AUTH PLAIN authzid %s differs from "
		    "user", s->addr, log_safe(p.authzid));
		smtpd_reply(s, SMTPD_R_AUTH_BAD);
		goto done;
	}
	smtpd_auth_check(s, "PLAIN", p.authcid, p.passwd, p.passwd_len);
done:
	OPENSSL_cleanse(buf, sizeof(buf));
}

/* Verifies the secret and replies. */
static void
smtpd_auth_check(struct smtpd_session *s, const char *mech, const char *user,
    const char *pass, size_t passlen)
{
	int rc;

	rc = cred_verify(smtpd_creds, user, pass, passlen);
	if (rc == 1) {
		snprintf(s->auth_user, sizeof(s->auth_user), "%s", user);
		log_info("unknown[%s]: sasl_method=%s, sasl_username=%s",
		    s->addr, mech, log_safe(user));
		smtpd_reply(s, SMTPD_R_AUTH_OK);
	} else if (rc == 0) {
		log_warn("unknown[%s]: SASL %s authentication failed, "
		    "sasl_username=%s", s->addr, mech, log_safe(user));
		smtpd_reply(s, SMTPD_R_AUTH_BAD);
		if (++s->errors >= smtpd_cfg->limits_max_errors) {
			smtpd_reply(s, SMTPD_R_TOO_ERR, smtpd_cfg->myhostname);
			smtpd_set_state(s, SMTPD_CLOSING);
		}
	} else {
		log_warn("unknown[%s]: credential lookup failed", s->addr);
		smtpd_reply(s, SMTPD_R_AUTH_TEMP);
	}
}
