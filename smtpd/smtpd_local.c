/*
 * smtpd_local.c - local submission: sessions on <queue_directory>/
 * public/submit, the socket sendmail(1) hands mail to.
 *
 * Any local user can connect (the socket is mode 0666); who it is comes
 * from the kernel (SO_PEERCRED), never from what the client says. A user
 * named in local_submission.users gets a session that runs as if it had
 * authenticated as local_submission.credential: that credential's sender
 * domains, limits and rate counters, DKIM and events, exactly as for a
 * remote application. Anyone else is refused in the greeting (554 5.7.1).
 * TCP sessions never come here (smtpd_session_accept tests the family).
 */
#include <sys/socket.h>
#include <sys/types.h>

#include <pwd.h>
#include <stdio.h>
#include <string.h>

#include "cred.h"
#include "log.h"
#include "smtpd.h"

/* getpwuid_r's buffer: glibc's own _SC_GETPW_R_SIZE_MAX is 1024. */
#define SMTPD_PW_BUF	16384

static int smtpd_local_user_ok(const char *);

static int
smtpd_local_user_ok(const char *name)
{
	const struct cfg *cfg = smtpd_cfg;

	for (size_t i = 0; i < cfg->nlocal_submission_users; i++)
		if (strcmp(cfg->local_submission_users[i], name) == 0)
			return 1;
	return 0;
}

int
smtpd_local_accept(struct smtpd_session *s)
{
	const struct cfg *cfg = smtpd_cfg;
	const char *cred = cfg->local_submission_credential;
	char pwbuf[SMTPD_PW_BUF], name[64];
	struct passwd pw, *pwp = NULL;
	struct cred_policy pol;
	struct ucred uc;
	socklen_t len = sizeof(uc);
	struct vbuf *why;
	int found;

	/* Local: no TLS to offer, and AUTH is not needed. */
	s->tls_mode = CFG_TLS_NONE;
	if (getsockopt(s->fd, SOL_SOCKET, SO_PEERCRED, &uc, &len) == -1 ||
	    len != sizeof(uc)) {
		log_warn("%s: SO_PEERCRED: %m", MAIL_LISTENER_SUBMIT);
		smtpd_reply(s, SMTPD_R_LOCAL_TEMP, cfg->myhostname);
		return -1;
	}
	if (getpwuid_r(uc.uid, &pw, pwbuf, sizeof(pwbuf), &pwp) != 0 ||
	    pwp == NULL)
		snprintf(name, sizeof(name), "uid %u", (unsigned)uc.uid);
	else
		snprintf(name, sizeof(name), "%s", pw.pw_name);
	if (pwp == NULL || cred == NULL || !smtpd_local_user_ok(name)) {
		log_info("reject: local submission from uid=%u, user=%s, "
		    "pid=%d: not in local_submission.users", (unsigned)uc.uid,
		    log_safe(name), (int)uc.pid);
		smtpd_reply(s, SMTPD_R_LOCAL_DENIED, log_safe(name));
		return -1;
	}

	/*
	 * The credential must exist now; the policy itself is read afresh
	 * at each MAIL (smtpd_policy_mail), as for AUTH. Without this the
	 * first sign of a missing credential would be a 530 at MAIL, which
	 * tells a sendmail caller nothing.
	 */
	if (smtpd_auth_db() == NULL) {
		log_warn("local submission from user=%s: credentials "
		    "unavailable", name);
		smtpd_reply(s, SMTPD_R_LOCAL_TEMP, cfg->myhostname);
		return -1;
	}
	why = vbuf_create(0);
	found = cred_policy_get(smtpd_auth_db(), cred, &pol, why);
	if (found == -1)
		log_warn("local submission from user=%s: credential %s: %s",
		    name, log_safe(cred), why->data);
	vbuf_free(why);
	if (found == 1)
		cred_policy_release(&pol);
	if (found == -1) {
		smtpd_reply(s, SMTPD_R_LOCAL_TEMP, cfg->myhostname);
		return -1;
	}
	if (found == 0) {
		log_warn("local submission from user=%s: "
		    "local_submission.credential %s does not exist (relayctl "
		    "user add %s)", name, log_safe(cred), log_safe(cred));
		smtpd_reply(s, SMTPD_R_LOCAL_NOCRED, log_safe(cred));
		return -1;
	}
	snprintf(s->auth_user, sizeof(s->auth_user), "%s", cred);
	s->auth_mech = SMTPD_LOCAL_MECH;
	log_info("unknown[%s]: uid=%u, user=%s, pid=%d, sasl_username=%s",
	    s->addr, (unsigned)uc.uid, name, (int)uc.pid, s->auth_user);
	return 0;
}
