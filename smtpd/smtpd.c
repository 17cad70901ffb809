/*
 * smtpd.c - the submission server: ESMTP with STARTTLS and AUTH, writes
 * accepted messages into the queue and tells qmgr. See smtpd(8).
 *
 * Group commit: messages whose DATA ended while no commit was under way
 * are made durable together (one directory fsync per hash directory, one
 * LMDB transaction) on a thread of their own (smtpd_commit.c) before any
 * of them gets its 250.
 */
#include <stdlib.h>

#include "acct.h"
#include "event.h"
#include "log.h"
#include "smtpd.h"

const struct cfg *smtpd_cfg;
struct qstore *smtpd_queue;
SSL_CTX *smtpd_ssl_ctx;

static int64_t smtpd_last_sweep;
static int smtpd_shutdown_done;

static void smtpd_init(const struct cfg *);
static void smtpd_service(const struct daemon_listener *);
static int64_t smtpd_loop(void);
static int smtpd_busy(void);

int
main(int argc, char *argv[])
{
	static const struct daemon_spec spec = {
		.name = "smtpd",
		.init = smtpd_init,		/* queue, TLS, credentials */
		.service = smtpd_service,	/* accept client sessions */
		.loop = smtpd_loop,		/* group commit, timeouts */
		.busy = smtpd_busy,		/* sessions still open */
	};

	daemon_main(argc, argv, &spec);
	/* NOTREACHED */
}

static void
smtpd_init(const struct cfg *cfg)
{
	struct vbuf *why = vbuf_create(0);

	smtpd_cfg = cfg;
	if ((smtpd_queue = qstore_open(cfg, why)) == NULL)
		log_fatal("queue %s: %s", cfg->queue_directory, why->data);
	vbuf_free(why);
	smtpd_ssl_ctx = smtpd_tls_init(cfg);
	smtpd_auth_init(cfg);
	smtpd_kdf_init();
	smtpd_limit_init(cfg);
	smtpd_policy_init(cfg);
	smtpd_suppress_init(cfg);
	smtpd_commit_init();
	if (acct_open(cfg->log_accounting) == -1)
		log_warn("accounting log %s: %m", cfg->log_accounting);
	/* Last: what is open now is what every session shares. */
	smtpd_session_limits_init(cfg);
}

static void
smtpd_service(const struct daemon_listener *l)
{
	smtpd_session_accept(l);
}

static int64_t
smtpd_loop(void)
{
	int64_t now;

	smtpd_commit_start();
	now = ev_now_ms();
	if (now - smtpd_last_sweep >= 1000) {
		smtpd_sessions_sweep(now);
		smtpd_last_sweep = now;
	}
	if (daemon_stopping() && !smtpd_shutdown_done) {
		smtpd_sessions_shutdown();
		smtpd_shutdown_done = 1;
	}
	return smtpd_session_count() > 0 ? 1000 : -1;
}

static int
smtpd_busy(void)
{
	return smtpd_session_count() > 0;
}
