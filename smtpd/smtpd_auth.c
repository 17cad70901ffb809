/*
 * smtpd_auth.c - SMTP AUTH (RFC 4954) for smtpd: PLAIN (RFC 4616) and,
 * when auth.login is set, LOGIN; brute-force protection.
 *
 * Offered and accepted only over TLS and never on a "tls: none" listener.
 * Secrets are checked by lib/cred against salted scrypt hashes with a
 * fresh read of the credential database each time, so a deleted or
 * disabled credential cannot start a new session. Failed attempts are
 * counted per client address and per user name in the queue's LMDB
 * counters (shared by every smtpd, kept across restarts): each failure
 * delays the 535 a little more, and at auth.max_failures the address or
 * name is blocked for auth.block_time.
 */
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <openssl/crypto.h>

#include "cred.h"
#include "event.h"
#include "log.h"
#include "metrics.h"
#include "sasl.h"
#include "smtpd.h"

#define AUTH_DELAY_MAX		10	/* seconds before a 535, at most */
#define AUTH_KEY_MAX		(QSTORE_COUNTER_KEY_MAX + 1)
#define AUTH_PROMPT_USER	"334 VXNlcm5hbWU6"	/* "Username:" */
#define AUTH_PROMPT_PASS	"334 UGFzc3dvcmQ6"	/* "Password:" */

static struct cred_db *smtpd_creds;

static void smtpd_auth_plain(struct smtpd_session *, const char *);
static void smtpd_auth_check(struct smtpd_session *, const char *,
    const char *, const char *, size_t);
static void smtpd_auth_failed(struct smtpd_session *, const char *,
    const char *);
static int smtpd_auth_is_blocked(const char *);
static void smtpd_auth_delay_done(void *);

void
smtpd_auth_init(const struct cfg *cfg)
{
	struct vbuf *why = vbuf_create(0);

	if ((smtpd_creds = cred_open(cfg, 0, why)) == NULL)
		log_warn("credentials unavailable, AUTH disabled: %s",
		    why->data);
	vbuf_free(why);
}

struct cred_db *
smtpd_auth_db(void)
{
	return smtpd_creds;
}

int
smtpd_auth_available(const struct smtpd_session *s)
{
	return smtpd_creds != NULL && s->tls_on &&
	    s->tls_mode != CFG_TLS_NONE && s->auth_user[0] == '\0';
}

/* 1 if a block record for key is still running. */
static int
smtpd_auth_is_blocked(const char *key)
{
	struct qstore_txn *txn;
	int64_t until;
	uint64_t n;
	int blocked = 0;

	if ((txn = qstore_txn_begin(smtpd_queue, 0, NULL)) == NULL)
		return 0;
	if (qstore_counter_read(txn, key, &until, &n) == 0 && n > 0 &&
	    until > (int64_t)time(NULL))
		blocked = 1;
	qstore_txn_abort(txn);
	return blocked;
}

int
smtpd_auth_blocked_addr(const struct smtpd_session *s)
{
	char key[AUTH_KEY_MAX];

	snprintf(key, sizeof(key), "authblock:ip:%s", s->addr);
	if (!smtpd_auth_is_blocked(key))
		return 0;
	log_info("reject: connect from unknown[%s]: blocked after failed "
	    "logins", s->addr);
	metrics_add(METRICS_AUTH_BLOCKED, 1);
	return 1;
}

void
smtpd_auth_command(struct smtpd_session *s, const char *arg)
{
	const char *sp = strchr(arg, ' ');
	size_t mlen = sp == NULL ? strlen(arg) : (size_t)(sp - arg);

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
	if (mlen == 5 && strncasecmp(arg, "PLAIN", 5) == 0) {
		if (sp == NULL) {
			s->auth_step = SMTPD_AUTH_STEP_PLAIN;
			smtpd_reply(s, "334 ");
			smtpd_set_state(s, SMTPD_AUTH_WAIT);
		} else
			smtpd_auth_plain(s, sp + 1);
		return;
	}
	if (mlen == 5 && strncasecmp(arg, "LOGIN", 5) == 0 &&
	    smtpd_cfg->auth_login) {
		if (sp == NULL) {
			s->auth_step = SMTPD_AUTH_STEP_LOGIN_USER;
			smtpd_reply(s, AUTH_PROMPT_USER);
		} else {
			/* RFC 4954: an initial response is the user name. */
			s->auth_step = SMTPD_AUTH_STEP_LOGIN_USER;
			smtpd_set_state(s, SMTPD_AUTH_WAIT);
			smtpd_auth_response(s, sp + 1);
			return;
		}
		smtpd_set_state(s, SMTPD_AUTH_WAIT);
		return;
	}
	smtpd_reply(s, SMTPD_R_AUTH_MECH);
}

void
smtpd_auth_response(struct smtpd_session *s, const char *line)
{
	unsigned char buf[SMTPD_AUTH_LINE_MAX];
	size_t len;

	if (strcmp(line, "*") == 0) {
		OPENSSL_cleanse(s->auth_login_user,
		    sizeof(s->auth_login_user));
		smtpd_set_state(s, SMTPD_CMD);
		smtpd_reply(s, SMTPD_R_AUTH_CANCEL);
		return;
	}
	switch (s->auth_step) {
	case SMTPD_AUTH_STEP_PLAIN:
		smtpd_set_state(s, SMTPD_CMD);
		smtpd_auth_plain(s, line);
		return;
	case SMTPD_AUTH_STEP_LOGIN_USER:
		if (sasl_b64_decode(line, buf, sizeof(buf), &len) == -1 ||
		    len == 0 || len >= sizeof(s->auth_login_user) ||
		    memchr(buf, '\0', len) != NULL) {
			smtpd_set_state(s, SMTPD_CMD);
			smtpd_reply(s, SMTPD_R_AUTH_B64);
			return;
		}
		memcpy(s->auth_login_user, buf, len + 1);
		s->auth_step = SMTPD_AUTH_STEP_LOGIN_PASS;
		smtpd_reply(s, AUTH_PROMPT_PASS);
		return;
	case SMTPD_AUTH_STEP_LOGIN_PASS:
		smtpd_set_state(s, SMTPD_CMD);
		if (sasl_b64_decode(line, buf, sizeof(buf), &len) == -1 ||
		    memchr(buf, '\0', len) != NULL) {
			smtpd_reply(s, SMTPD_R_AUTH_B64);
		} else
			smtpd_auth_check(s, "LOGIN", s->auth_login_user,
			    (const char *)buf, len);
		OPENSSL_cleanse(buf, sizeof(buf));
		OPENSSL_cleanse(s->auth_login_user,
		    sizeof(s->auth_login_user));
		return;
	}
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
		smtpd_auth_failed(s, "PLAIN", p.authcid);
		goto done;
	}
	smtpd_auth_check(s, "PLAIN", p.authcid, p.passwd, p.passwd_len);
done:
	OPENSSL_cleanse(buf, sizeof(buf));
}

/*
 * Starts checking the secret: at once when the verified-secret cache
 * decides, else on smtpd_kdf's thread, with smtpd_auth_verified called
 * back either way.
 */
static void
smtpd_auth_check(struct smtpd_session *s, const char *mech, const char *user,
    const char *pass, size_t passlen)
{
	struct cred_verify_job *job;
	char key[AUTH_KEY_MAX];
	int rc;

	snprintf(key, sizeof(key), "authblock:user:%s", user);
	if (smtpd_auth_is_blocked(key)) {
		log_warn("unknown[%s]: SASL %s authentication refused, "
		    "sasl_username=%s: user blocked after failed logins",
		    s->addr, mech, log_safe(user));
		metrics_add(METRICS_AUTH_BLOCKED, 1);
		smtpd_auth_failed(s, mech, NULL);
		return;
	}
	rc = cred_verify_start(smtpd_creds, user, pass, passlen, &job);
	if (rc == 2)
		smtpd_kdf_submit(s, job, mech, user);
	else
		smtpd_auth_verified(s, mech, user, rc);
}

/* The secret's verdict: the user's networks and blocks, and the reply. */
void
smtpd_auth_verified(struct smtpd_session *s, const char *mech,
    const char *user, int rc)
{
	struct cred_policy pol;
	struct vbuf *why;
	int found;

	if (rc == -1) {
		log_warn("unknown[%s]: credential lookup failed", s->addr);
		smtpd_reply(s, SMTPD_R_AUTH_TEMP);
		return;
	}
	if (rc == 1) {
		/* A login from outside the user's networks is a failure. */
		why = vbuf_create(0);
		found = cred_policy_get(smtpd_creds, user, &pol, why);
		if (found == 1 && !cred_policy_network_ok(&pol,
		    (const struct sockaddr *)&s->sa)) {
			log_warn("unknown[%s]: SASL %s login refused, "
			    "sasl_username=%s: client not in the user's "
			    "networks", s->addr, mech, log_safe(user));
			rc = 0;
		} else if (found != 1)
			rc = 0;		/* deleted meanwhile */
		if (found == 1)
			cred_policy_release(&pol);
		vbuf_free(why);
	}
	if (rc == 1) {
		snprintf(s->auth_user, sizeof(s->auth_user), "%s", user);
		s->auth_mech = mech;
		log_info("unknown[%s]: sasl_method=%s, sasl_username=%s",
		    s->addr, mech, log_safe(user));
		smtpd_reply(s, SMTPD_R_AUTH_OK);
		return;
	}
	log_warn("unknown[%s]: SASL %s authentication failed, "
	    "sasl_username=%s", s->addr, mech, log_safe(user));
	smtpd_auth_failed(s, mech, user);
}

/*
 * Counts a failure for the address and the user name (NULL: already
 * blocked), blocks either at auth.max_failures, and sends the 535 after a
 * delay that grows with the address's failures.
 */
static void
smtpd_auth_failed(struct smtpd_session *s, const char *mech,
    const char *user)
{
	const struct cfg *cfg = smtpd_cfg;
	struct qstore_txn *txn;
	char key[AUTH_KEY_MAX];
	int64_t now = time(NULL), window;
	uint64_t n_ip = 0, n_user = 0;
	int64_t delay;

	(void)mech;
	metrics_add(METRICS_AUTH_FAILURES, 1);
	window = now - now % cfg->auth_failure_window;
	if ((txn = qstore_txn_begin(smtpd_queue, 1, NULL)) != NULL) {
		snprintf(key, sizeof(key), "authfail:ip:%s", s->addr);
		(void)qstore_counter_add(txn, key, window, 1, &n_ip);
		if (n_ip >= cfg->auth_max_failures) {
			snprintf(key, sizeof(key), "authblock:ip:%s", s->addr);
			(void)qstore_counter_add(txn, key, now +
			    cfg->auth_block_time, 1, NULL);
		}
		if (user != NULL && strlen(user) <= 128) {
			snprintf(key, sizeof(key), "authfail:user:%s", user);
			(void)qstore_counter_add(txn, key, window, 1, &n_user);
			if (n_user >= cfg->auth_max_failures) {
				snprintf(key, sizeof(key),
				    "authblock:user:%s", user);
				(void)qstore_counter_add(txn, key, now +
				    cfg->auth_block_time, 1, NULL);
			}
		}
		if (qstore_txn_commit(txn, NULL) == -1)
			log_warn("unknown[%s]: cannot record a failed login",
			    s->addr);
	}
	/* The same words each time, so an operator can alert on them. */
	if (n_ip == cfg->auth_max_failures)
		log_warn("AUTH blocked: client unknown[%s] after %llu failed "
		    "logins within %llds; blocked for %llds", s->addr,
		    (unsigned long long)n_ip,
		    (long long)cfg->auth_failure_window,
		    (long long)cfg->auth_block_time);
	if (user != NULL && n_user == cfg->auth_max_failures)
		log_warn("AUTH blocked: sasl_username=%s after %llu failed "
		    "logins within %llds; blocked for %llds", log_safe(user),
		    (unsigned long long)n_user,
		    (long long)cfg->auth_failure_window,
		    (long long)cfg->auth_block_time);
	/* The failure that reaches a limit also ends the session. */
	s->auth_close = ++s->errors >= cfg->limits_max_errors ||
	    n_ip >= cfg->auth_max_failures;
	/* Growing delays: n seconds after the n-th failure. */
	delay = n_ip > AUTH_DELAY_MAX ? AUTH_DELAY_MAX : (int64_t)n_ip;
	if (delay == 0)
		delay = 1;
	smtpd_set_state(s, SMTPD_AUTH_DELAY);
	s->auth_timer = ev_timer_add(delay * 1000, smtpd_auth_delay_done, s);
}

static void
smtpd_auth_delay_done(void *arg)
{
	struct smtpd_session *s = arg;

	s->auth_timer = 0;
	smtpd_reply(s, SMTPD_R_AUTH_BAD);
	if (s->auth_close) {
		smtpd_reply(s, SMTPD_R_TOO_ERR, smtpd_cfg->myhostname);
		smtpd_set_state(s, SMTPD_CLOSING);
	} else
		smtpd_set_state(s, SMTPD_CMD);
	smtpd_session_kick(s);
}
