/*
 * smtpd_proto.c - smtpd's ESMTP command handling (RFC 5321, 3207, 4954,
 * 3461; BDAT, RFC 3030, in smtpd_bdat.c).
 *
 * Commands are taken from the session's input one line at a time, so a
 * pipelined transaction sent in one write is answered in order. Policy:
 * STARTTLS before AUTH and MAIL on starttls listeners; MAIL only after AUTH
 * or from trusted_networks; no open relay. The DSN parameters (RET, ENVID,
 * NOTIFY, ORCPT) are checked by lib/dsnparam and kept for the envelope.
 */
#include <ctype.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "parse.h"
#include "smtpd.h"
#include "utf8.h"
#include "xalloc.h"

static void smtpd_cmd(struct smtpd_session *, const char *);
static void smtpd_cmd_helo(struct smtpd_session *, const char *, int);
static void smtpd_cmd_mail(struct smtpd_session *, const char *);
static void smtpd_cmd_rcpt(struct smtpd_session *, const char *);
static int smtpd_params(struct smtpd_session *, const char *,
    struct dsnparam_mail *, struct dsnparam_rcpt *, int *);
static int smtpd_addr_utf8(struct smtpd_session *, const char *, int,
    const char *);
static void smtpd_cmd_data(struct smtpd_session *);
static void smtpd_cmd_starttls(struct smtpd_session *);
static void smtpd_error(struct smtpd_session *);
static int smtpd_tls_required(const struct smtpd_session *);
static uint64_t smtpd_ehlo_size(struct smtpd_session *);

void
smtpd_proto_greet(struct smtpd_session *s)
{
	s->greeted = 1;
	smtpd_reply(s, SMTPD_R_GREETING, smtpd_cfg->myhostname);
}

void
smtpd_proto_reset(struct smtpd_session *s)
{
	smtpd_bdat_reset(s);
	smtpd_policy_reset(s);
	for (size_t i = 0; i < s->nrcpts; i++) {
		free(s->rcpts[i]);
		free(s->rcpt_orcpt[i]);
	}
	free(s->rcpts);
	free(s->rcpt_notify);
	free(s->rcpt_orcpt);
	s->rcpts = NULL;
	s->rcpt_notify = NULL;
	s->rcpt_orcpt = NULL;
	s->nrcpts = 0;
	memset(&s->dsn, 0, sizeof(s->dsn));
	s->mail_seen = 0;
	s->smtputf8 = 0;
	s->sender[0] = '\0';
	s->message_id[0] = '\0';
	vbuf_reset(s->meta_json);
	vbuf_reset(s->tags_json);
}

/* Counts a client error; past the limit the session ends. */
static void
smtpd_error(struct smtpd_session *s)
{
	if (++s->errors < smtpd_cfg->limits_max_errors)
		return;
	log_info("too many errors from unknown[%s]", s->addr);
	smtpd_reply(s, SMTPD_R_TOO_ERR, smtpd_cfg->myhostname);
	smtpd_set_state(s, SMTPD_CLOSING);
}

static int
smtpd_tls_required(const struct smtpd_session *s)
{
	return s->tls_mode == CFG_TLS_STARTTLS && !s->tls_on;
}

void
smtpd_proto_input(struct smtpd_session *s)
{
	/* One line at most; limits.line_length is at most 65536. */
	static char line[65536 + SMTPD_AUTH_LINE_MAX + 1];
	char *lf;
	size_t len, limit;

	while (s->in->len > 0 && s->out->len < SMTPD_OUT_MAX) {
		if (s->state == SMTPD_DATA) {
			smtpd_data_input(s);
			continue;
		}
		if (s->state == SMTPD_BDAT) {
			smtpd_bdat_input(s);
			continue;
		}
		if (s->state != SMTPD_CMD && s->state != SMTPD_AUTH_WAIT)
			return;
		limit = s->state == SMTPD_AUTH_WAIT ? SMTPD_AUTH_LINE_MAX :
		    smtpd_cfg->limits_line_length;
		lf = memchr(s->in->data, '\n', s->in->len);
		if (lf == NULL) {
			if (s->in->len <= limit)
				return;		/* wait for the rest */
			/* RFC 5321 4.5.3.1.4: refuse, then resync at LF. */
			if (!s->skip_line) {
				smtpd_reply(s, SMTPD_R_LONG);
				smtpd_error(s);
			}
			s->skip_line = 1;
			vbuf_reset(s->in);
			return;
		}
		len = (size_t)(lf - s->in->data);
		if (s->skip_line) {
			s->skip_line = 0;
			vbuf_consume(s->in, len + 1);
			continue;
		}
		if (len + 1 > limit) {
			vbuf_consume(s->in, len + 1);
			smtpd_reply(s, SMTPD_R_LONG);
			smtpd_error(s);
			continue;
		}
		memcpy(line, s->in->data, len);
		vbuf_consume(s->in, len + 1);
		if (len > 0 && line[len - 1] == '\r')
			len--;
		line[len] = '\0';
		if (memchr(line, '\0', len) != NULL) {
			/* An embedded NUL: not a command we can read. */
			smtpd_reply(s, SMTPD_R_UNKNOWN);
			smtpd_error(s);
			continue;
		}
		if (s->state == SMTPD_AUTH_WAIT)
			smtpd_auth_response(s, line);
		else
			smtpd_cmd(s, line);
		if (s->state == SMTPD_STARTTLS || s->state == SMTPD_CLOSING)
			return;
	}
}

static void
smtpd_cmd(struct smtpd_session *s, const char *line)
{
	struct smtpcmd cmd;

	smtpcmd_parse(line, &cmd);
	switch (cmd.verb) {
	case SMTPCMD_HELO:
		smtpd_cmd_helo(s, cmd.arg, 0);
		break;
	case SMTPCMD_EHLO:
		smtpd_cmd_helo(s, cmd.arg, 1);
		break;
	case SMTPCMD_STARTTLS:
		smtpd_cmd_starttls(s);
		break;
	case SMTPCMD_AUTH:
		smtpd_auth_command(s, cmd.arg);
		break;
	case SMTPCMD_MAIL:
		smtpd_cmd_mail(s, cmd.arg);
		break;
	case SMTPCMD_RCPT:
		smtpd_cmd_rcpt(s, cmd.arg);
		break;
	case SMTPCMD_DATA:
		smtpd_cmd_data(s);
		break;
	case SMTPCMD_RSET:
		smtpd_proto_reset(s);
		smtpd_reply(s, SMTPD_R_OK);
		break;
	case SMTPCMD_NOOP:
		smtpd_reply(s, SMTPD_R_OK);
		break;
	case SMTPCMD_QUIT:
		smtpd_reply(s, SMTPD_R_BYE);
		smtpd_set_state(s, SMTPD_CLOSING);
		break;
	case SMTPCMD_VRFY:
		smtpd_reply(s, SMTPD_R_VRFY);
		break;
	case SMTPCMD_HELP:
		smtpd_reply(s, SMTPD_R_HELP);
		break;
	case SMTPCMD_BDAT:
		smtpd_bdat_command(s, cmd.arg);
		break;
	case SMTPCMD_EXPN:
		smtpd_reply(s, SMTPD_R_NOT_IMPL);
		smtpd_error(s);
		break;
	case SMTPCMD_UNKNOWN:
		log_info("unknown command from unknown[%s]: %s", s->addr,
		    log_safe_n(line, 64));
		smtpd_reply(s, SMTPD_R_UNKNOWN);
		smtpd_error(s);
		break;
	}
}

static void
smtpd_cmd_helo(struct smtpd_session *s, const char *arg, int esmtp)
{
	const struct cfg *cfg = smtpd_cfg;
	size_t n = strlen(arg);

	while (n > 0 && arg[n - 1] == ' ')
		n--;
	if (n == 0 || n > SMTP_DOMAIN_MAX || memchr(arg, ' ', n) != NULL) {
		smtpd_reply(s, SMTPD_R_HELO_SYNTAX);
		smtpd_error(s);
		return;
	}
	for (size_t i = 0; i < n; i++) {
		if ((unsigned char)arg[i] <= 0x20 || arg[i] == 0x7f) {
			smtpd_reply(s, SMTPD_R_HELO_SYNTAX);
			smtpd_error(s);
			return;
		}
	}
	memcpy(s->helo, arg, n);
	s->helo[n] = '\0';
	s->esmtp = esmtp;
	smtpd_proto_reset(s);
	if (!esmtp) {
		smtpd_reply(s, "250 %s", cfg->myhostname);
		return;
	}
	smtpd_reply(s, "250-%s", cfg->myhostname);
	smtpd_reply(s, "250-PIPELINING");
	smtpd_reply(s, "250-SIZE %" PRIu64, smtpd_ehlo_size(s));
	if (s->tls_mode == CFG_TLS_STARTTLS && !s->tls_on &&
	    smtpd_ssl_ctx != NULL)
		smtpd_reply(s, "250-STARTTLS");
	if (smtpd_auth_available(s))
		smtpd_reply(s, "250-AUTH PLAIN%s", cfg->auth_login ?
		    " LOGIN" : "");
	smtpd_reply(s, "250-ENHANCEDSTATUSCODES");
	smtpd_reply(s, "250-8BITMIME");
	smtpd_reply(s, "250-CHUNKING");
	smtpd_reply(s, "250-SMTPUTF8");
	smtpd_reply(s, "250 DSN");
}

/* The SIZE to advertise: smtpd's limit, or a logged-in user's if lower. */
static uint64_t
smtpd_ehlo_size(struct smtpd_session *s)
{
	uint64_t limit = smtpd_cfg->smtpd_message_size_limit;
	struct cred_policy pol;

	if (s->auth_user[0] == '\0' || smtpd_auth_db() == NULL)
		return limit;
	if (cred_policy_get(smtpd_auth_db(), s->auth_user, &pol, NULL) == 1) {
		if (pol.max_size != 0 && pol.max_size < limit)
			limit = pol.max_size;
		cred_policy_release(&pol);
	}
	return limit;
}

static void
smtpd_cmd_starttls(struct smtpd_session *s)
{
	if (s->tls_on) {
		smtpd_reply(s, SMTPD_R_TLS_AGAIN);
		smtpd_error(s);
		return;
	}
	if (s->tls_mode != CFG_TLS_STARTTLS || smtpd_ssl_ctx == NULL) {
		smtpd_reply(s, SMTPD_R_NO_TLS);
		return;
	}
	if (s->helo[0] == '\0') {
		smtpd_reply(s, SMTPD_R_NEED_HELO);
		smtpd_error(s);
		return;
	}
	smtpd_reply(s, SMTPD_R_TLS_GO);
	/* RFC 3207 4.2: forget everything learnt from the client. */
	smtpd_proto_reset(s);
	s->helo[0] = '\0';
	s->esmtp = 0;
	smtpd_set_state(s, SMTPD_STARTTLS);
}

/*
 * Checks the ESMTP parameters of MAIL (m set: RET and ENVID go there,
 * SMTPUTF8 to *smtputf8; SIZE, BODY and AUTH are known too) or RCPT (r
 * set: NOTIFY and ORCPT go there), all before anything is kept, so that a
 * refused command changes nothing. Returns 0, or -1 after replying.
 */
static int
smtpd_params(struct smtpd_session *s, const char *params,
    struct dsnparam_mail *m, struct dsnparam_rcpt *r, int *smtputf8)
{
	char key[33], value[SMTPD_PARAM_VALUE_MAX + 1];
	struct vbuf *why = vbuf_create(0);
	uint64_t size;
	int rc, ret = -1;

	while ((rc = smtpcmd_param_next(&params, key, sizeof(key), value,
	    sizeof(value))) == 1) {
		rc = m != NULL ? dsnparam_mail(m, key, value, why) :
		    dsnparam_rcpt(r, key, value, why);
		if (rc == 1)
			continue;
		if (rc == -1) {
			smtpd_reply(s, SMTPD_R_SYNTAX, why->data);
			goto error;
		}
		if (m != NULL && strcmp(key, "SIZE") == 0) {
			if (parse_u64(value, 0, UINT64_MAX, &size) == -1) {
				smtpd_reply(s, "501 5.5.4 Bad SIZE value");
				goto error;
			}
			if (size > s->size_limit) {
				smtpd_reply(s, SMTPD_R_TOO_BIG);
				smtpd_policy_reset(s);
				goto done;
			}
		} else if (m != NULL && strcmp(key, "BODY") == 0) {
			if (strcasecmp(value, "7BIT") != 0 &&
			    strcasecmp(value, "8BITMIME") != 0) {
				smtpd_reply(s, "501 5.5.4 Bad BODY value");
				goto error;
			}
		} else if (m != NULL && strcmp(key, "SMTPUTF8") == 0) {
			/* RFC 6531 3.4: a keyword without a value. */
			if (value[0] != '\0') {
				smtpd_reply(s, "501 5.5.4 SMTPUTF8 takes no "
				    "value");
				goto error;
			}
			*smtputf8 = 1;
		} else if (m == NULL || strcmp(key, "AUTH") != 0) {
			smtpd_reply(s, SMTPD_R_PARAM, key);
			goto error;
		}
	}
	if (rc == -1) {
		smtpd_reply(s, "501 5.5.4 Bad parameter syntax");
		goto error;
	}
	ret = 0;
	goto done;
error:
	smtpd_error(s);
done:
	vbuf_free(why);
	return ret;
}

/*
 * An address with bytes over 0x7f (RFC 6531 internationalised) needs
 * MAIL's SMTPUTF8 and must be well-formed UTF-8. Returns 0, or -1 after
 * replying (refused).
 */
static int
smtpd_addr_utf8(struct smtpd_session *s, const char *addr, int smtputf8,
    const char *refusal)
{
	if (!utf8_has_8bit(addr))
		return 0;
	if (!smtputf8) {
		log_info("reject: unknown[%s]: <%s>: non-ASCII address without "
		    "SMTPUTF8", s->addr, log_safe(addr));
		smtpd_reply(s, "%s", refusal);
		smtpd_error(s);
		return -1;
	}
	if (!utf8_valid(addr, strlen(addr))) {
		smtpd_reply(s, SMTPD_R_UTF8_BAD);
		smtpd_error(s);
		return -1;
	}
	return 0;
}

static void
smtpd_cmd_mail(struct smtpd_session *s, const char *arg)
{
	char addr[SMTP_PATH_MAX + 1];
	struct dsnparam_mail dsn;
	const char *params;
	struct vbuf *why;
	int utf8 = 0;

	if (s->helo[0] == '\0') {
		smtpd_reply(s, SMTPD_R_NEED_HELO);
		smtpd_error(s);
		return;
	}
	if (smtpd_tls_required(s)) {
		smtpd_reply(s, SMTPD_R_TLS_FIRST);
		smtpd_error(s);
		return;
	}
	if (s->auth_user[0] == '\0' && !s->trusted) {
		log_info("reject: MAIL from unknown[%s]: not authenticated",
		    s->addr);
		smtpd_reply(s, SMTPD_R_AUTH_NEEDED);
		smtpd_error(s);
		return;
	}
	if (s->mail_seen) {
		smtpd_reply(s, SMTPD_R_NESTED);
		smtpd_error(s);
		return;
	}
	why = vbuf_create(0);
	if (smtpcmd_path(arg, "FROM", 1, addr, &params, why) == -1) {
		smtpd_reply(s, SMTPD_R_SYNTAX, why->data);
		smtpd_error(s);
		vbuf_free(why);
		return;
	}
	vbuf_free(why);
	if (smtpd_policy_mail(s, addr) == -1) {
		smtpd_error(s);
		return;
	}
	memset(&dsn, 0, sizeof(dsn));
	if (smtpd_params(s, params, &dsn, NULL, &utf8) == -1)
		return;
	if (smtpd_addr_utf8(s, addr, utf8, SMTPD_R_UTF8_SENDER) == -1) {
		smtpd_policy_reset(s);
		return;
	}
	snprintf(s->sender, sizeof(s->sender), "%s", addr);
	s->smtputf8 = utf8;
	s->dsn = dsn;
	s->mail_seen = 1;
	smtpd_reply(s, SMTPD_R_MAIL_OK);
}

static void
smtpd_cmd_rcpt(struct smtpd_session *s, const char *arg)
{
	char addr[SMTP_PATH_MAX + 1];
	struct dsnparam_rcpt dsn;
	const char *params;
	struct vbuf *why;

	if (!s->mail_seen) {
		smtpd_reply(s, SMTPD_R_NEED_MAIL);
		smtpd_error(s);
		return;
	}
	if (s->nrcpts >= s->rcpt_limit) {
		smtpd_reply(s, SMTPD_R_TOO_MANY);
		return;
	}
	why = vbuf_create(0);
	if (smtpcmd_path(arg, "TO", 0, addr, &params, why) == -1) {
		smtpd_reply(s, SMTPD_R_SYNTAX, why->data);
		smtpd_error(s);
		vbuf_free(why);
		return;
	}
	vbuf_free(why);
	memset(&dsn, 0, sizeof(dsn));
	if (smtpd_params(s, params, NULL, &dsn, NULL) == -1)
		return;
	if (smtpd_addr_utf8(s, addr, s->smtputf8, SMTPD_R_UTF8_RCPT) == -1)
		return;
	if (smtpd_suppress_rcpt(s, addr) == -1)
		return;		/* replied 550; other recipients go on */
	s->rcpts = xreallocarray(s->rcpts, s->nrcpts + 1, sizeof(char *));
	s->rcpt_notify = xreallocarray(s->rcpt_notify, s->nrcpts + 1,
	    sizeof(unsigned));
	s->rcpt_orcpt = xreallocarray(s->rcpt_orcpt, s->nrcpts + 1,
	    sizeof(char *));
	s->rcpt_notify[s->nrcpts] = dsn.notify;
	s->rcpt_orcpt[s->nrcpts] = dsn.orcpt[0] != '\0' ?
	    xstrdup(dsn.orcpt) : NULL;
	s->rcpts[s->nrcpts++] = xstrdup(addr);
	smtpd_reply(s, SMTPD_R_RCPT_OK);
}

static void
smtpd_cmd_data(struct smtpd_session *s)
{
	/* RFC 3030 2: a message begun with BDAT goes on with BDAT. */
	if (s->bdat_open) {
		smtpd_reply(s, SMTPD_R_DATA_AFTER_BDAT);
		smtpd_error(s);
		return;
	}
	if (!s->mail_seen) {
		smtpd_reply(s, SMTPD_R_NEED_MAIL);
		smtpd_error(s);
		return;
	}
	if (s->nrcpts == 0) {
		smtpd_reply(s, SMTPD_R_NEED_RCPT);
		smtpd_error(s);
		return;
	}
	if (smtpd_data_begin(s) == -1)
		return;		/* replied */
	smtpd_reply(s, SMTPD_R_DATA);
	smtpd_set_state(s, SMTPD_DATA);
}
