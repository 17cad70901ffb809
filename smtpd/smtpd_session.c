/*
 * smtpd_session.c - smtpd's sessions: accept, non-blocking I/O over plain
 * sockets or TLS, timeouts and the session state machine.
 *
 * Every state change goes through smtpd_set_state(). Input is read only in
 * states that consume it; while a message waits for its commit the session
 * reads nothing more, so pipelined commands after DATA wait their turn.
 */
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/types.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>

#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/err.h>

#include "event.h"
#include "log.h"
#include "metrics.h"
#include "smtpd.h"
#include "xalloc.h"

#define SMTPD_ACCEPT_BURST	32

static struct smtpd_session *smtpd_sessions;
static size_t smtpd_nsessions;
static size_t smtpd_session_cap;	/* max_sessions, or what fds allow */

static void smtpd_session_event(int, int, void *);
static void smtpd_session_update(struct smtpd_session *);
static int smtpd_session_flush(struct smtpd_session *);
static int smtpd_session_read(struct smtpd_session *);
static void smtpd_session_credit(struct smtpd_session *, size_t);
static void smtpd_accept_starved(const struct daemon_listener *);
static int smtpd_session_handshake(struct smtpd_session *);
static void smtpd_session_start_tls(struct smtpd_session *);
static const char *smtpd_state_name(enum smtpd_state);

size_t
smtpd_session_count(void)
{
	return smtpd_nsessions;
}

static const char *
smtpd_state_name(enum smtpd_state st)
{
	static const char *names[] = { "handshake", "cmd", "auth-wait",
	    "auth-delay", "auth-kdf", "data", "bdat", "commit-wait",
	    "starttls", "closing" };

	return names[st];
}

void
smtpd_set_state(struct smtpd_session *s, enum smtpd_state st)
{
	log_debug("%s: %s -> %s", s->addr, smtpd_state_name(s->state),
	    smtpd_state_name(st));
	/*
	 * DATA, or a BDAT message's first chunk, starts with
	 * smtpd.min_data_rate_grace in hand; reads add to it
	 * (smtpd_session_credit) and the sweep ends a client that runs out.
	 * Between BDAT chunks the clock runs on.
	 */
	if ((st == SMTPD_DATA || st == SMTPD_BDAT) && s->data_deadline == 0)
		s->data_deadline = smtpd_cfg->smtpd_min_data_rate == 0 ? 0 :
		    ev_now_ms() + smtpd_cfg->smtpd_min_data_rate_grace * 1000;
	else if (st != SMTPD_DATA && st != SMTPD_BDAT && !s->bdat_open)
		s->data_deadline = 0;
	s->state = st;
}

/*
 * A session holds up to two descriptors (its socket, and its queue file
 * while it takes a message). Under a small RLIMIT_NOFILE, smtpd takes no
 * more sessions than can each finish a message: more would leave the
 * ones open without a descriptor for their queue file (451 at DATA).
 */
void
smtpd_session_limits_init(const struct cfg *cfg)
{
	struct rlimit rl;
	struct dirent *de;
	size_t open_now = 0, avail;
	DIR *d;

	smtpd_session_cap = cfg->smtpd_max_sessions;
	if (getrlimit(RLIMIT_NOFILE, &rl) == -1 || rl.rlim_cur == RLIM_INFINITY)
		return;
	if ((d = opendir("/proc/self/fd")) == NULL)
		return;
	while ((de = readdir(d)) != NULL)
		if (de->d_name[0] != '.')
			open_now++;
	(void)closedir(d);
	open_now--;		/* the directory's own */
	avail = rl.rlim_cur > open_now + SMTPD_FD_RESERVE + 2 ?
	    (size_t)(rl.rlim_cur - open_now - SMTPD_FD_RESERVE) / 2 : 1;
	if (avail < smtpd_session_cap) {
		smtpd_session_cap = avail;
		log_warn("RLIMIT_NOFILE %llu leaves descriptors for %zu "
		    "sessions at once (smtpd.max_sessions %u)",
		    (unsigned long long)rl.rlim_cur, avail,
		    cfg->smtpd_max_sessions);
	}
}

/*
 * Out of descriptors (or memory): lib/daemon's daemon_accept_failed
 * leaves the listeners alone for DAEMON_STARVED_MS (a session that ends
 * and frees a descriptor resumes them sooner), sessions already open go
 * on, and the warning is logged once a minute.
 */
static void
smtpd_accept_starved(const struct daemon_listener *l)
{
	char detail[64];

	snprintf(detail, sizeof(detail), " (%zu sessions open)",
	    smtpd_nsessions);
	(void)daemon_accept_failed(l, detail);
}

void
smtpd_session_accept(const struct daemon_listener *l)
{
	const struct cfg *cfg = smtpd_cfg;
	struct smtpd_session *s;
	struct sockaddr_storage sa;
	socklen_t salen;
	size_t i;
	int fd, burst, one = 1;

	for (burst = 0; burst < SMTPD_ACCEPT_BURST; burst++) {
		if (smtpd_nsessions >= smtpd_session_cap) {
			if (smtpd_session_cap < cfg->smtpd_max_sessions) {
				errno = EMFILE;
				smtpd_accept_starved(l);
			} else
				daemon_listeners_pause(1);
			return;
		}
		salen = sizeof(sa);
		fd = accept4(l->fd, (struct sockaddr *)&sa, &salen,
		    SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd == -1) {
			smtpd_accept_starved(l);
			return;
		}
		/*
		 * Each reply is one write, and nothing is gained by letting
		 * the kernel hold it back: with Nagle's algorithm a reply that
		 * follows another unacknowledged segment (the TLS 1.3 session
		 * tickets after the handshake, then the reply to EHLO) waits
		 * for the client's delayed ACK, about 40 ms on Linux, and
		 * every TLS session paid that twice.
		 */
		if (sa.ss_family == AF_INET || sa.ss_family == AF_INET6)
			(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one,
			    sizeof(one));
		s = xcalloc(1, sizeof(*s));
		s->fd = fd;
		s->sa = sa;
		s->listener = l->name;
		s->tls_mode = CFG_TLS_STARTTLS;
		for (i = 0; i < cfg->nlisteners; i++)
			if (strcmp(cfg->listeners[i].name, l->name) == 0)
				s->tls_mode = cfg->listeners[i].tls;
		if (sa.ss_family == AF_INET)
			inet_ntop(AF_INET, &((struct sockaddr_in *)&sa)->sin_addr,
			    s->addr, sizeof(s->addr));
		else if (sa.ss_family == AF_INET6)
			inet_ntop(AF_INET6,
			    &((struct sockaddr_in6 *)&sa)->sin6_addr, s->addr,
			    sizeof(s->addr));
		else
			snprintf(s->addr, sizeof(s->addr), "local");
		s->trusted = cidr_match_list(cfg->trusted_networks,
		    cfg->ntrusted_networks, (struct sockaddr *)&sa);
		s->in = vbuf_create(0);
		s->out = vbuf_create(0);
		s->chunk = vbuf_create(0);
		s->hdr = vbuf_create(0);
		s->meta_json = vbuf_create(0);
		s->tags_json = vbuf_create(0);
		s->last_active = ev_now_ms();
		smtpd_policy_reset(s);
		s->next = smtpd_sessions;
		smtpd_sessions = s;
		smtpd_nsessions++;
		log_info("connect from unknown[%s] on %s", s->addr, l->name);
		metrics_add(METRICS_SESSIONS, 1);
		/* Refusals are sent in clear text, even on implicit TLS. */
		if (smtpd_limit_connect(s) == -1) {
			smtpd_reply(s, SMTPD_R_TOO_MANY_CONN,
			    cfg->myhostname);
			smtpd_set_state(s, SMTPD_CLOSING);
		} else if (sa.ss_family == AF_UNIX) {
			/* sendmail(1) on public/submit; never TLS. */
			if (smtpd_local_accept(s) == -1)
				smtpd_set_state(s, SMTPD_CLOSING);
			else {
				smtpd_set_state(s, SMTPD_CMD);
				smtpd_proto_greet(s);
			}
		} else if (smtpd_auth_blocked_addr(s)) {
			smtpd_reply(s, SMTPD_R_BLOCKED, cfg->myhostname);
			smtpd_set_state(s, SMTPD_CLOSING);
		} else if (s->tls_mode == CFG_TLS_IMPLICIT) {
			if (smtpd_ssl_ctx == NULL) {
				log_warn("%s: implicit TLS listener without a "
				    "TLS configuration", l->name);
				smtpd_session_close(s);
				continue;
			}
			smtpd_session_start_tls(s);
		} else {
			smtpd_set_state(s, SMTPD_CMD);
			smtpd_proto_greet(s);
		}
		smtpd_session_kick(s);
	}
}

void
smtpd_session_close(struct smtpd_session *s)
{
	struct smtpd_session **pp;

	/* Its message is being committed: closed once that is done. */
	if (s->state == SMTPD_COMMIT_WAIT && smtpd_commit_cancel(s) == -1) {
		ev_fd_del(s->fd);
		return;
	}
	for (pp = &smtpd_sessions; *pp != NULL; pp = &(*pp)->next) {
		if (*pp == s) {
			*pp = s->next;
			break;
		}
	}
	smtpd_nsessions--;
	log_info("disconnect from unknown[%s]", s->addr);
	smtpd_limit_disconnect(s);
	if (s->auth_timer != 0)
		ev_timer_del(s->auth_timer);
	smtpd_kdf_cancel(s);
	ev_fd_del(s->fd);
	if (s->ssl != NULL) {
		(void)SSL_shutdown(s->ssl);
		SSL_free(s->ssl);
	}
	close(s->fd);
	smtpd_data_abort(s);
	smtpd_proto_reset(s);
	vbuf_free(s->in);
	vbuf_free(s->out);
	vbuf_free(s->chunk);
	vbuf_free(s->hdr);
	vbuf_free(s->meta_json);
	vbuf_free(s->tags_json);
	free(s);
	if (!daemon_stopping())
		daemon_listeners_pause(0);
}

void
smtpd_reply(struct smtpd_session *s, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	(void)vbuf_vaddf(s->out, fmt, ap);
	va_end(ap);
	(void)vbuf_add(s->out, "\r\n", 2);
}

static void
smtpd_session_start_tls(struct smtpd_session *s)
{
	/* Bytes sent before the handshake are not trusted (CVE-2011-0411). */
	vbuf_reset(s->in);
	if ((s->ssl = SSL_new(smtpd_ssl_ctx)) == NULL ||
	    SSL_set_fd(s->ssl, s->fd) != 1) {
		log_warn("%s: SSL_new failed", s->addr);
		smtpd_set_state(s, SMTPD_CLOSING);
		return;
	}
	SSL_set_accept_state(s->ssl);
	smtpd_set_state(s, SMTPD_HANDSHAKE);
}

/* Returns 1 when done, 0 to wait for I/O, -1 on failure. */
static int
smtpd_session_handshake(struct smtpd_session *s)
{
	int rc, err;

	ERR_clear_error();
	rc = SSL_do_handshake(s->ssl);
	if (rc == 1) {
		s->tls_on = 1;
		s->ssl_want_write = 0;
		snprintf(s->tls_version, sizeof(s->tls_version), "%s",
		    SSL_get_version(s->ssl));
		metrics_add(strcmp(s->tls_version, "TLSv1.3") == 0 ?
		    METRICS_TLS_13 : strcmp(s->tls_version, "TLSv1.2") == 0 ?
		    METRICS_TLS_12 : METRICS_TLS_OTHER, 1);
		snprintf(s->tls_cipher, sizeof(s->tls_cipher), "%s",
		    SSL_get_cipher_name(s->ssl));
		log_info("TLS established from unknown[%s]: %s with cipher "
		    "%s%s", s->addr, s->tls_version, s->tls_cipher,
		    SSL_session_reused(s->ssl) ? " (session resumed)" : "");
		return 1;
	}
	err = SSL_get_error(s->ssl, rc);
	if (err == SSL_ERROR_WANT_READ) {
		s->ssl_want_write = 0;
		return 0;
	}
	if (err == SSL_ERROR_WANT_WRITE) {
		s->ssl_want_write = 1;
		return 0;
	}
	log_info("TLS handshake failed from unknown[%s]: %s", s->addr,
	    ERR_reason_error_string(ERR_peek_last_error()) ?
	    ERR_reason_error_string(ERR_peek_last_error()) : "eof");
	return -1;
}

/* Writes pending output; returns -1 if the connection is gone. */
static int
smtpd_session_flush(struct smtpd_session *s)
{
	ssize_t n;
	int rc;

	while (s->out->len > 0) {
		if (s->ssl != NULL && s->tls_on) {
			ERR_clear_error();
			rc = SSL_write(s->ssl, s->out->data, (int)(s->out->len >
			    INT32_MAX ? INT32_MAX : s->out->len));
			if (rc <= 0) {
				int err = SSL_get_error(s->ssl, rc);

				if (err == SSL_ERROR_WANT_WRITE ||
				    err == SSL_ERROR_WANT_READ) {
					s->ssl_want_write =
					    err == SSL_ERROR_WANT_WRITE;
					return 0;
				}
				return -1;
			}
			vbuf_consume(s->out, (size_t)rc);
			s->last_active = ev_now_ms();
			continue;
		}
		n = write(s->fd, s->out->data, s->out->len);
		if (n == -1) {
			if (errno == EAGAIN || errno == EINTR)
				return 0;
			return -1;
		}
		vbuf_consume(s->out, (size_t)n);
		s->last_active = ev_now_ms();
	}
	s->ssl_want_write = 0;
	return 0;
}

/* Reads what is available (bounded); returns -1 on EOF or error. */
static int
smtpd_session_read(struct smtpd_session *s)
{
	ssize_t n;
	int rc;

	while (s->in->len < SMTPD_IN_MAX) {
		if (vbuf_reserve(s->in, 16384) == -1)
			return -1;
		if (s->ssl != NULL && s->tls_on) {
			ERR_clear_error();
			rc = SSL_read(s->ssl, s->in->data + s->in->len, 16384);
			if (rc <= 0) {
				int err = SSL_get_error(s->ssl, rc);

				if (err == SSL_ERROR_WANT_READ)
					return 0;
				if (err == SSL_ERROR_WANT_WRITE) {
					s->ssl_want_write = 1;
					return 0;
				}
				if (err == SSL_ERROR_ZERO_RETURN) {
					s->eof = 1;
					return 0;
				}
				return -1;
			}
			n = rc;
		} else {
			n = read(s->fd, s->in->data + s->in->len, 16384);
			if (n == -1)
				return (errno == EAGAIN || errno == EINTR) ?
				    0 : -1;
			if (n == 0) {
				/* Commands already sent are still answered. */
				s->eof = 1;
				return 0;
			}
		}
		s->in->len += (size_t)n;
		s->in->data[s->in->len] = '\0';
		s->last_active = ev_now_ms();
		smtpd_session_credit(s, (size_t)n);
		/*
		 * A short read took all the socket had: poll(2) says when
		 * more comes, so no read that ends in EAGAIN (a system call
		 * costs a microsecond in a VM). Not for TLS, whose reads
		 * stop at each record.
		 */
		if ((s->ssl == NULL || !s->tls_on) && n < 16384)
			break;
	}
	return 0;
}

/*
 * Deadlines that steady trickling cannot put off, unlike the idle
 * timeout: in DATA each byte buys 1/smtpd.min_data_rate seconds, never
 * more than smtpd.timeout ahead (Postfix's smtpd_min_data_rate); in the
 * command phase a line must be whole within smtpd.command_deadline of its
 * first byte (line_start, cleared in smtpd_session_kick as lines are
 * used).
 */
static void
smtpd_session_credit(struct smtpd_session *s, size_t n)
{
	const struct cfg *cfg = smtpd_cfg;
	int64_t now = ev_now_ms(), cap;

	if (s->line_start == 0)
		s->line_start = now;
	if ((s->state != SMTPD_DATA && s->state != SMTPD_BDAT) ||
	    s->data_deadline == 0)
		return;
	s->data_deadline += (int64_t)(n * 1000 / cfg->smtpd_min_data_rate);
	cap = now + cfg->smtpd_timeout * 1000;
	if (s->data_deadline > cap)
		s->data_deadline = cap;
}

/* Runs the state machine as far as it can go without blocking. */
void
smtpd_session_kick(struct smtpd_session *s)
{
	size_t before;
	enum smtpd_state st;
	int rc;

	for (;;) {
		if (s->state == SMTPD_HANDSHAKE) {
			if ((rc = smtpd_session_handshake(s)) == -1) {
				smtpd_session_close(s);
				return;
			}
			if (rc == 0)
				break;
			smtpd_set_state(s, SMTPD_CMD);
			if (!s->greeted)
				smtpd_proto_greet(s);
		}
		if (smtpd_session_flush(s) == -1) {
			smtpd_session_close(s);
			return;
		}
		if (s->state == SMTPD_STARTTLS && s->out->len == 0) {
			smtpd_session_start_tls(s);
			continue;
		}
		if (s->state == SMTPD_CLOSING) {
			if (s->out->len == 0) {
				smtpd_session_close(s);
				return;
			}
			break;
		}
		if (s->state != SMTPD_CMD && s->state != SMTPD_AUTH_WAIT &&
		    s->state != SMTPD_DATA && s->state != SMTPD_BDAT)
			break;
		/* A client that does not read its replies is not read. */
		if (s->out->len >= SMTPD_OUT_MAX)
			break;
		if (!s->eof && smtpd_session_read(s) == -1) {
			if (s->state == SMTPD_DATA)
				log_info("lost connection after DATA from "
				    "unknown[%s]", s->addr);
			smtpd_session_close(s);
			return;
		}
		before = s->in->len;
		st = s->state;
		if (s->in->len > 0)
			smtpd_proto_input(s);
		/* What is left is the start of a line that has not ended. */
		if (s->in->len != before)
			s->line_start = s->in->len > 0 ? ev_now_ms() : 0;
		/* Nothing used: wait for more input, or end at EOF. */
		if (s->state == st && s->in->len == before) {
			if (s->out->len >= SMTPD_OUT_MAX || !s->eof)
				break;
			if (s->state == SMTPD_DATA)
				log_info("lost connection after DATA from "
				    "unknown[%s]", s->addr);
			smtpd_set_state(s, SMTPD_CLOSING);
		}
	}
	smtpd_session_update(s);
}

static void
smtpd_session_update(struct smtpd_session *s)
{
	int ev = 0;

	switch (s->state) {
	case SMTPD_HANDSHAKE:
		ev = s->ssl_want_write ? EV_WRITE : EV_READ;
		break;
	case SMTPD_CMD:
	case SMTPD_AUTH_WAIT:
	case SMTPD_DATA:
	case SMTPD_BDAT:
		if (!s->eof && s->out->len < SMTPD_OUT_MAX)
			ev = EV_READ;
		break;
	case SMTPD_AUTH_DELAY:
	case SMTPD_AUTH_KDF:
	case SMTPD_COMMIT_WAIT:
	case SMTPD_STARTTLS:
	case SMTPD_CLOSING:
		break;
	}
	if (s->out->len > 0 || s->ssl_want_write)
		ev |= EV_WRITE;
	if (ev == 0)
		ev_fd_del(s->fd);
	else
		ev_fd_set(s->fd, ev, smtpd_session_event, s);
}

static void
smtpd_session_event(int fd, int events, void *arg)
{
	(void)fd;
	(void)events;
	smtpd_session_kick(arg);
}

/*
 * Ends sessions idle past smtpd.timeout (RFC 5321 4.5.3.2), and those
 * that trickle past smtpd.min_data_rate or smtpd.command_deadline.
 */
void
smtpd_sessions_sweep(int64_t now)
{
	struct smtpd_session *s, *next;
	int64_t limit = smtpd_cfg->smtpd_timeout * 1000;

	for (s = smtpd_sessions; s != NULL; s = next) {
		next = s->next;
		/* These end by themselves, within seconds. */
		if (s->state == SMTPD_COMMIT_WAIT ||
		    s->state == SMTPD_AUTH_DELAY ||
		    s->state == SMTPD_AUTH_KDF)
			continue;
		if ((s->state == SMTPD_DATA || s->state == SMTPD_BDAT ||
		    s->state == SMTPD_CMD) && s->data_deadline != 0 &&
		    now > s->data_deadline)
			log_info("timeout: data rate below %u bytes/s after "
			    "DATA from unknown[%s]",
			    smtpd_cfg->smtpd_min_data_rate, s->addr);
		else if ((s->state == SMTPD_CMD ||
		    s->state == SMTPD_AUTH_WAIT) && s->in->len > 0 &&
		    s->line_start != 0 && now - s->line_start >
		    smtpd_cfg->smtpd_command_deadline * 1000)
			log_info("timeout: command line not complete after "
			    "%" PRId64 "s from unknown[%s]",
			    smtpd_cfg->smtpd_command_deadline, s->addr);
		else if (now - s->last_active < limit)
			continue;
		else
			log_info("timeout after %s from unknown[%s]",
			    smtpd_state_name(s->state), s->addr);
		/* Closing and still not flushed: the client does not read. */
		if (s->state == SMTPD_HANDSHAKE || s->state == SMTPD_CLOSING) {
			smtpd_session_close(s);
			continue;
		}
		smtpd_data_abort(s);
		vbuf_reset(s->out);
		smtpd_reply(s, SMTPD_R_TIMEOUT, smtpd_cfg->myhostname);
		smtpd_set_state(s, SMTPD_CLOSING);
		s->last_active = now;
		smtpd_session_kick(s);
	}
}

/* SIGTERM: sessions between transactions are told and closed. */
void
smtpd_sessions_shutdown(void)
{
	struct smtpd_session *s, *next;

	for (s = smtpd_sessions; s != NULL; s = next) {
		next = s->next;
		if (s->state != SMTPD_CMD || s->mail_seen)
			continue;
		smtpd_reply(s, SMTPD_R_SHUTDOWN, smtpd_cfg->myhostname);
		smtpd_set_state(s, SMTPD_CLOSING);
		smtpd_session_kick(s);
	}
}
