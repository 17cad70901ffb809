/*
 * smtpd.h - private interfaces of smtpd, the submission server.
 *
 * smtpd is event-driven: one process serves many sessions, each an explicit
 * state machine. Messages that finish DATA while no commit runs are
 * committed together (qstore_commit, on smtpd_commit.c's thread) and only
 * then get their 250. See smtpd(8).
 */
#ifndef PETREL_SMTPD_H
#define PETREL_SMTPD_H

#include <sys/socket.h>
#include <sys/types.h>

#include <stdint.h>

#include <openssl/ssl.h>

#include "cfg.h"
#include "cred.h"
#include "daemon.h"
#include "dotstuff.h"
#include "dsnparam.h"
#include "event.h"
#include "mailproto.h"
#include "outbox.h"
#include "qstore.h"
#include "smtpcmd.h"
#include "vbuf.h"

/* Limits. */
#define SMTPD_IN_MAX		(64 * 1024)	/* buffered input per read */
#define SMTPD_OUT_MAX		(64 * 1024)	/* unsent replies; then stop reading */
#define SMTPD_HDR_MAX		(256 * 1024)	/* header block kept in memory */
/* Descriptors kept for LMDB environments opened later, logs, TLS. */
#define SMTPD_FD_RESERVE	16
/* A longer Message-ID is not recorded (events, log): no one's real id. */
#define SMTPD_MSGID_MAX		255
#define SMTPD_AUTH_LINE_MAX	12288		/* RFC 4954 section 4 */
#define SMTPD_PARAM_VALUE_MAX	1023		/* one ESMTP parameter's value */

/* Reply texts (one place, as Postfix's smtpd.c keeps them). */
#define SMTPD_R_GREETING	"220 %s ESMTP Petrel"
#define SMTPD_R_OK		"250 2.0.0 Ok"
#define SMTPD_R_MAIL_OK		"250 2.1.0 Ok"
#define SMTPD_R_RCPT_OK		"250 2.1.5 Ok"
#define SMTPD_R_QUEUED		"250 2.0.0 Ok: queued as %s"
#define SMTPD_R_DATA		"354 End data with <CR><LF>.<CR><LF>"
#define SMTPD_R_BDAT_OK		"250 2.0.0 %" PRIu64 " octets received"
#define SMTPD_R_BDAT_SYNTAX	"501 5.5.4 Syntax: BDAT chunk-size [LAST]"
#define SMTPD_R_DATA_AFTER_BDAT	"503 5.5.1 Error: DATA after BDAT"
#define SMTPD_R_UTF8_SENDER	"553 5.6.7 Non-ASCII sender address not permitted without SMTPUTF8"
#define SMTPD_R_UTF8_RCPT	"553 5.6.7 Non-ASCII recipient address not permitted without SMTPUTF8"
#define SMTPD_R_UTF8_BAD	"501 5.5.4 Address is not valid UTF-8"
#define SMTPD_R_UTF8_HEADER	"554 5.6.7 Non-ASCII message header not permitted without SMTPUTF8"
#define SMTPD_R_LONG_LINES	"550 5.6.0 Message has lines longer than 998 octets (RFC 5322 2.1.1)"
#define SMTPD_R_BYE		"221 2.0.0 Bye"
#define SMTPD_R_TLS_GO		"220 2.0.0 Ready to start TLS"
#define SMTPD_R_TLS_FIRST	"530 5.7.0 Must issue a STARTTLS command first"
#define SMTPD_R_AUTH_NEEDED	"530 5.7.0 Authentication required"
#define SMTPD_R_AUTH_OK		"235 2.7.0 Authentication successful"
#define SMTPD_R_AUTH_BAD	"535 5.7.8 Authentication credentials invalid"
#define SMTPD_R_AUTH_B64	"501 5.5.2 Cannot decode response"
#define SMTPD_R_AUTH_CANCEL	"501 5.0.0 Authentication cancelled"
#define SMTPD_R_AUTH_MECH	"504 5.5.4 Unrecognized authentication type"
#define SMTPD_R_AUTH_OFF	"503 5.5.1 Error: authentication not enabled"
#define SMTPD_R_AUTH_AGAIN	"503 5.5.1 Error: already authenticated"
#define SMTPD_R_AUTH_TXN	"503 5.5.1 Error: MAIL transaction in progress"
#define SMTPD_R_AUTH_TEMP	"454 4.7.0 Temporary authentication failure"
#define SMTPD_R_NEED_HELO	"503 5.5.1 Error: send HELO/EHLO first"
#define SMTPD_R_NESTED		"503 5.5.1 Error: nested MAIL command"
#define SMTPD_R_NEED_MAIL	"503 5.5.1 Error: need MAIL command"
#define SMTPD_R_NEED_RCPT	"503 5.5.1 Error: need RCPT command"
#define SMTPD_R_TOO_MANY	"452 4.5.3 Error: too many recipients"
#define SMTPD_R_TOO_BIG		"552 5.3.4 Message size exceeds fixed limit"
#define SMTPD_R_UNKNOWN		"500 5.5.2 Error: command not recognized"
#define SMTPD_R_LONG		"500 5.5.2 Error: line too long"
#define SMTPD_R_NOT_IMPL	"502 5.5.1 Error: command not implemented"
#define SMTPD_R_PARAM		"555 5.5.4 Unsupported option: %s"
#define SMTPD_R_SYNTAX		"501 %s"
#define SMTPD_R_VRFY		"252 2.0.0 Cannot VRFY user"
#define SMTPD_R_HELP		"214 2.0.0 See RFC 5321"
#define SMTPD_R_TOO_ERR		"421 4.7.0 %s Error: too many errors"
#define SMTPD_R_TIMEOUT		"421 4.4.2 %s Error: timeout exceeded"
#define SMTPD_R_SHUTDOWN	"421 4.3.2 %s Service shutting down"
#define SMTPD_R_TOO_MANY_CONN	"421 4.7.0 %s Error: too many connections"
#define SMTPD_R_BLOCKED		"421 4.7.0 %s Error: too many failed logins from your address; try later"
#define SMTPD_R_NO_TLS		"454 4.7.0 TLS not available"
#define SMTPD_R_TLS_AGAIN	"554 5.5.1 Error: TLS already active"
#define SMTPD_R_STORE_FULL	"452 4.3.1 Insufficient system storage"
#define SMTPD_R_STORE_ERR	"451 4.3.0 Error: queue file write error"
#define SMTPD_R_HELO_SYNTAX	"501 5.5.4 Syntax: HELO/EHLO hostname"
#define SMTPD_R_CRED_GONE	"530 5.7.0 Authentication credentials no longer valid"
#define SMTPD_R_SENDER_DENIED	"550 5.7.1 Sender address not allowed for this credential"
#define SMTPD_R_FROM_DENIED	"550 5.7.1 From: header address not allowed for this credential"
#define SMTPD_R_UNVERIFIED	"550 5.7.1 Sender domain not verified"
#define SMTPD_R_FROM_UNVERIFIED	"550 5.7.1 From: header domain not verified"
/* Bad X-Petrel-Tag, X-Mailgun-Variables, ... (lib/metahdr); %s: why. */
#define SMTPD_DELIVER_AFTER_MAX	(7 * 86400)	/* X-Petrel-Deliver-After */
#define SMTPD_R_METADATA	"550 5.6.0 Bad metadata header: %s"
#define SMTPD_R_FROM_MISSING	"550 5.7.1 Message has no usable From: header"
#define SMTPD_R_RATE_HOUR	"451 4.7.1 Message rate limit exceeded (%llu per hour); try again later"
#define SMTPD_R_RATE_DAY	"451 4.7.1 Message rate limit exceeded (%llu per day); try again later"
#define SMTPD_R_RATE		"451 4.7.1 Message rate limit exceeded; try again later"
#define SMTPD_R_POLICY_TEMP	"451 4.3.0 Temporary policy lookup failure"
/* Local submission (smtpd_local.c): %s the user, or the credential. */
#define SMTPD_R_LOCAL_DENIED	"554 5.7.1 Local user %s is not allowed to submit mail (local_submission.users)"
#define SMTPD_R_LOCAL_NOCRED	"554 5.3.5 Local submission credential %s does not exist"
#define SMTPD_R_LOCAL_TEMP	"421 4.3.0 %s Local submission temporarily unavailable"
/* sasl_method= in the log for a local session (no SASL exchange). */
#define SMTPD_LOCAL_MECH	"LOCAL"
/* After it, suppress_entry_reply's "<ADDR>: Recipient address suppressed". */
#define SMTPD_R_SUPPRESSED	"550 5.1.1 %s"

enum smtpd_auth_step {
	SMTPD_AUTH_STEP_PLAIN,
	SMTPD_AUTH_STEP_LOGIN_USER,
	SMTPD_AUTH_STEP_LOGIN_PASS,
};

enum smtpd_state {
	SMTPD_HANDSHAKE,	/* TLS handshake in progress */
	SMTPD_CMD,		/* reading commands */
	SMTPD_AUTH_WAIT,	/* waiting for an AUTH response line */
	SMTPD_AUTH_DELAY,	/* a failed AUTH: 535 after a delay */
	SMTPD_AUTH_KDF,		/* the secret is being checked (smtpd_kdf) */
	SMTPD_DATA,		/* reading message data */
	SMTPD_BDAT,		/* reading a BDAT chunk's octets */
	SMTPD_COMMIT_WAIT,	/* message written; waiting for the commit */
	SMTPD_STARTTLS,		/* 220 sent; handshake once it is flushed */
	SMTPD_CLOSING,		/* flush what is left, then close */
};

struct smtpd_session {
	struct smtpd_session	*next;		/* all sessions */
	struct smtpd_session	*commit_next;	/* batch waiting to commit */
	int			 commit_inflight; /* in the worker's batch */
	int			 commit_closed;	/* close when it is done */
	struct outbox_event	 accepted;	/* its event, until committed */
	char			 message_id[SMTPD_MSGID_MAX + 1]; /* "" none */
	int			 fd;
	SSL			*ssl;
	int			 ssl_want_write;
	enum smtpd_state	 state;
	enum cfg_tls_mode	 tls_mode;	/* of the listener */
	const char		*listener;
	struct sockaddr_storage	 sa;
	char			 addr[64];	/* printable client address */
	int			 trusted;	/* in trusted_networks */
	int64_t			 last_active;	/* ms, for the idle timeout */
	int64_t			 data_deadline;	/* ms; DATA: the rate check */
	int64_t			 line_start;	/* ms; a command line began */

	struct vbuf		*in;
	struct vbuf		*out;
	int			 skip_line;	/* discarding an over-long line */
	int			 eof;		/* client sent FIN; finish its input */
	unsigned		 errors;
	int			 greeted;
	int			 counted;	/* in the connection table */

	/* Session state. */
	char			 helo[SMTP_DOMAIN_MAX + 1];
	int			 esmtp;
	int			 tls_on;
	char			 tls_version[32];
	char			 tls_cipher[64];
	char			 auth_user[65];
	int			 auth_step;	/* SMTPD_AUTH_STEP_* */
	char			 auth_login_user[65];
	uint64_t		 auth_timer;	/* the delayed 535, or 0 */
	struct smtpd_kdf_req	*auth_kdf;	/* the check under way, or NULL */
	int			 auth_close;	/* end the session after it */
	const char		*auth_mech;	/* "PLAIN" or "LOGIN" */

	/* Transaction state. */
	int			 mail_seen;
	int			 smtputf8;	/* MAIL had SMTPUTF8 */
	struct cred_policy	 pol;		/* the user's, read at MAIL */
	int			 have_pol;
	uint64_t		 size_limit;	/* smtpd's or the user's */
	uint64_t		 rcpt_limit;
	const char		*policy_reject;	/* reply after DATA, or NULL */
	/* Tags and metadata (lib/metahdr) for the accepted event: compact
	 * JSON, "" none; they live until the commit, reset per transaction. */
	struct vbuf		*meta_json;
	struct vbuf		*tags_json;
	char			 meta_reply[256];	/* SMTPD_R_METADATA */
	char			 sender[SMTP_PATH_MAX + 1];
	char			 **rcpts;
	size_t			 nrcpts;
	/* RFC 3461: MAIL's RET and ENVID, each recipient's NOTIFY, ORCPT. */
	struct dsnparam_mail	 dsn;
	unsigned		*rcpt_notify;	/* per recipient, 0 none */
	char			**rcpt_orcpt;	/* per recipient, NULL none */

	/* DATA state. */
	struct qstore_new	*qn;
	struct dotstuff_rx	 rx;
	struct vbuf		*chunk;		/* unstuffed bytes of one read */
	struct vbuf		*hdr;		/* header block until it ends */
	int			 in_body;
	uint64_t		 msg_size;
	int			 too_big;
	int			 store_failed;	/* enum qstore_err */
	uint64_t		 line_len;	/* of the line being stored */
	int			 long_line;	/* one was over 998 octets */

	/* BDAT (RFC 3030): the chunk being read, and the message's. */
	int			 bdat_open;	/* a BDAT message is begun */
	uint64_t		 bdat_left;	/* octets of this chunk to come */
	uint64_t		 bdat_size;	/* this chunk's size */
	int			 bdat_last;	/* it is the LAST one */
	const char		*bdat_discard;	/* reply after dropping the */
						/* chunk; "" replied already */
};

/* smtpd.c */
extern const struct cfg	*smtpd_cfg;
extern struct qstore	*smtpd_queue;
extern SSL_CTX		*smtpd_ssl_ctx;

/* smtpd_commit.c */
void	smtpd_commit_init(void);
void	smtpd_commit_enqueue(struct smtpd_session *);
int	smtpd_commit_cancel(struct smtpd_session *);
void	smtpd_commit_start(void);

/* smtpd_session.c */
void	smtpd_session_limits_init(const struct cfg *);
void	smtpd_session_accept(const struct daemon_listener *);
void	smtpd_session_close(struct smtpd_session *);
void	smtpd_set_state(struct smtpd_session *, enum smtpd_state);
void	smtpd_reply(struct smtpd_session *, const char *, ...)
	    __attribute__((format(printf, 2, 3)));
void	smtpd_session_kick(struct smtpd_session *);
void	smtpd_sessions_sweep(int64_t now);
void	smtpd_sessions_shutdown(void);
size_t	smtpd_session_count(void);

/* smtpd_proto.c */
void	smtpd_proto_greet(struct smtpd_session *);
void	smtpd_proto_input(struct smtpd_session *);
void	smtpd_proto_reset(struct smtpd_session *);

/* smtpd_policy.c */
void	smtpd_policy_init(const struct cfg *);
int	smtpd_policy_mail(struct smtpd_session *, const char *sender);
void	smtpd_policy_reset(struct smtpd_session *);
int	smtpd_policy_charge(struct smtpd_session *, struct qstore_new *);
void	smtpd_policy_headers(struct smtpd_session *, const char *, size_t);
void	smtpd_policy_utf8_headers(struct smtpd_session *, const char *,
	    size_t);

/* smtpd_hdr.c: the header block, read (pure; fuzz_smtpd_hdr) */
int	smtpd_hdr_block_end(const char *, size_t, size_t *end, int *blank);
int	smtpd_hdr_has(const char *, size_t, const char *name);
void	smtpd_hdr_message_id(const char *, size_t, char *out);
ssize_t	smtpd_hdr_from_next(const char *, size_t, size_t *off, char *value,
	    size_t size);
int	smtpd_hdr_addrs(const char *, size_t,
	    int (*)(void *, const char *addr, const char *domain), void *);

/* smtpd_data.c */
int	smtpd_data_begin(struct smtpd_session *);
void	smtpd_data_input(struct smtpd_session *);
void	smtpd_data_abort(struct smtpd_session *);
/* Message bytes, line ends already CRLF; and the end of the message. */
void	smtpd_data_store(struct smtpd_session *, const char *, size_t);
void	smtpd_data_finish(struct smtpd_session *);

/* smtpd_longline.c */
void	smtpd_longline_scan(struct smtpd_session *, const char *, size_t);
int	smtpd_longline_finish(struct smtpd_session *);

/* smtpd_bdat.c */
void	smtpd_bdat_command(struct smtpd_session *, const char *arg);
void	smtpd_bdat_input(struct smtpd_session *);
void	smtpd_bdat_reset(struct smtpd_session *);

/* smtpd_auth.c */
void	smtpd_auth_init(const struct cfg *);
void	smtpd_auth_command(struct smtpd_session *, const char *arg);
void	smtpd_auth_response(struct smtpd_session *, const char *line);
int	smtpd_auth_available(const struct smtpd_session *);
int	smtpd_auth_blocked_addr(const struct smtpd_session *);
struct cred_db *smtpd_auth_db(void);
void	smtpd_auth_verified(struct smtpd_session *, const char *mech,
	    const char *user, int rc);

/* smtpd_kdf.c */
struct cred_verify_job;
void	smtpd_kdf_init(void);
void	smtpd_kdf_submit(struct smtpd_session *, struct cred_verify_job *,
	    const char *mech, const char *user);
void	smtpd_kdf_cancel(struct smtpd_session *);
/*
 * Starts one of smtpd's two worker threads (KDF, commit) with every
 * signal blocked: fds becomes a pipe whose read end, non-blocking, calls
 * done in the event loop; the thread writes to fds[1] when it has a
 * result. Exits (log_fatal) on failure.
 */
void	smtpd_worker_start(const char *what, int fds[2], void *(*run)(void *),
	    ev_fd_cb *done);

/* smtpd_limit.c */
void	smtpd_limit_init(const struct cfg *);
int	smtpd_limit_connect(struct smtpd_session *);
void	smtpd_limit_disconnect(struct smtpd_session *);

/* smtpd_local.c */
/*
 * A session on the local submission socket, before its greeting: who the
 * peer is (SO_PEERCRED), and if local_submission.users names it, the
 * session runs as local_submission.credential (0). Else -1 after the
 * refusal was replied; the caller closes the session.
 */
int	smtpd_local_accept(struct smtpd_session *);

/* smtpd_suppress.c */
/* Opens the suppression list read-only (suppression.action reject). */
void	smtpd_suppress_init(const struct cfg *);
/*
 * At RCPT: 0 go on, -1 the recipient is suppressed (replied 550, logged).
 * A lookup error is logged and the recipient accepted.
 */
int	smtpd_suppress_rcpt(struct smtpd_session *, const char *rcpt);

/* smtpd_tls.c */
/*
 * The server context, or NULL when no TLS is configured: every
 * certificate chain with its key from master's descriptors, and the
 * shared session-ticket keys. Adopts and closes the descriptors master
 * passed (daemon_tls_key_fds, daemon_tls_ticket_fd). Fatal on any error.
 */
SSL_CTX	*smtpd_tls_init(const struct cfg *);

#endif
