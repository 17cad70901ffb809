/*
 * smtp_connect.c - outbound connections, TLS and raw I/O for smtp(8).
 *
 * Sockets are nonblocking; every read, write, connect and handshake waits
 * in poll(2) against a deadline, so a stalled server can never hold a
 * process longer than the configured timeouts. TLS is TLS 1.2 or newer;
 * the certificate is checked against the CA store (smtp.tls_ca_file, else
 * the system's) and the host name on every handshake, but only a delivery
 * at the verify level (smtp.tls) fails when it does not verify; the others
 * record the result for the log line, as Postfix's "Trusted"/"Verified".
 */
#include <sys/socket.h>
#include <sys/types.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "daemon.h"
#include "log.h"
#include "smtp.h"
#include "xalloc.h"

static int	sess_wait(int, short, int64_t);
static int	source_bind(int, const struct smtp_target *,
		    const struct cfg_pool *, const struct smtp_avoid *, char *,
		    size_t);
static int	system_ca_store(SSL_CTX *);
static void	tls_reason(struct vbuf *, const char *, int);

static SSL_CTX *tls_ctx;

int64_t
smtp_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t
smtp_now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/*
 * The system's CA store as its hashed directory (/etc/ssl/certs, or
 * $SSL_CERT_DIR), whose certificates OpenSSL reads one at a time when a
 * chain asks for them. SSL_CTX_set_default_verify_paths would also load
 * the bundle file (/etc/ssl/certs/ca-certificates.crt, or $SSL_CERT_FILE)
 * whole into every smtp process at start: about 860 KiB of heap each,
 * 13 MiB of the suite's 55 with 16 processes, for a store that only the
 * verify level and the log's verified= consult. A bundle file of one's
 * own is what smtp.tls_ca_file is for.
 */
static int
system_ca_store(SSL_CTX *ctx)
{
	const char *dir;

	if ((dir = getenv(X509_get_default_cert_dir_env())) == NULL)
		dir = X509_get_default_cert_dir();
	return SSL_CTX_load_verify_dir(ctx, dir);
}

void
smtp_tls_init(const struct cfg *cfg)
{
	if (tls_ctx != NULL)
		return;
	if ((tls_ctx = SSL_CTX_new(TLS_client_method())) == NULL)
		log_fatal("SSL_CTX_new failed");
	if (SSL_CTX_set_min_proto_version(tls_ctx, TLS1_2_VERSION) != 1)
		log_fatal("cannot set the minimum TLS version");
	/* Per session: SSL_VERIFY_PEER only at the verify level. */
	SSL_CTX_set_verify(tls_ctx, SSL_VERIFY_NONE, NULL);
	if (cfg->smtp_tls_ca_file != NULL) {
		if (SSL_CTX_load_verify_locations(tls_ctx,
		    cfg->smtp_tls_ca_file, NULL) != 1)
			log_fatal("smtp.tls_ca_file %s: cannot load the CA "
			    "certificates", cfg->smtp_tls_ca_file);
	} else if (system_ca_store(tls_ctx) != 1)
		log_warn("cannot load the system CA store: no certificate "
		    "will verify");
	SSL_CTX_set_options(tls_ctx, SSL_OP_NO_COMPRESSION |
	    SSL_OP_IGNORE_UNEXPECTED_EOF);
	SSL_CTX_set_mode(tls_ctx, SSL_MODE_ENABLE_PARTIAL_WRITE |
	    SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
}

/* Waits for events on fd until deadline: 0 ready, -2 timeout, -1 error. */
static int
sess_wait(int fd, short events, int64_t deadline)
{
	struct pollfd pfd;
	int64_t left;
	int rc;

	for (;;) {
		left = deadline - smtp_now_ms();
		if (left <= 0)
			return -2;
		pfd.fd = fd;
		pfd.events = events;
		pfd.revents = 0;
		rc = poll(&pfd, 1, left > 3600000 ? 3600000 : (int)left);
		if (rc > 0)
			return 0;
		if (rc == -1 && errno != EINTR)
			return -1;
	}
}

/*
 * Binds fd to the next address of pool usable for t and not avoided
 * (smtp_source.c); the address bound goes to src ("" when the kernel
 * picks).
 */
static int
source_bind(int fd, const struct smtp_target *t, const struct cfg_pool *pool,
    const struct smtp_avoid *avoid, char *src, size_t srcsize)
{
	struct sockaddr_storage ss;
	socklen_t len = 0;

	/* No configuration outside daemon_main (unit tests): none. */
	if (smtp_source_pick(daemon_cfg(), pool, t, avoid, &ss, &len, src,
	    srcsize) == 0)
		return 0;
	return bind(fd, (struct sockaddr *)&ss, len);
}

struct smtp_sess *
smtp_sess_connect(const struct smtp_target *t, const struct cfg_pool *pool,
    const struct smtp_avoid *avoid, int64_t timeout_ms,
    struct smtp_fail *fail)
{
	char src[64];
	struct smtp_sess *s;
	int fd, err = 0, one = 1, rc;
	socklen_t errlen = sizeof(err);
	int64_t deadline = smtp_now_ms() + timeout_ms;

	fd = socket(t->ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK |
	    SOCK_CLOEXEC, 0);
	if (fd == -1) {
		smtp_fail_set(fail, SMTP_RCPT_DEFERRED, "4.4.1", 1,
		    "connect to %s[%s]:%u: socket: %s", t->host, t->ip,
		    t->port, strerror(errno));
		return NULL;
	}
	/*
	 * Leave from an address of the message's pool (smtp.pools, the
	 * default pool smtp.source_addresses), which the domains' SPF
	 * records name. Loopback next hops are reached from loopback.
	 */
	if (source_bind(fd, t, pool, avoid, src, sizeof(src)) == -1) {
		err = errno;
		goto fail;
	}
	if (connect(fd, (const struct sockaddr *)&t->ss, t->sslen) == -1) {
		if (errno != EINPROGRESS && errno != EINTR) {
			err = errno;
			goto fail;
		}
		rc = sess_wait(fd, POLLOUT, deadline);
		if (rc == -2) {
			err = ETIMEDOUT;
			goto fail;
		}
		if (rc == -1 || getsockopt(fd, SOL_SOCKET, SO_ERROR, &err,
		    &errlen) == -1) {
			err = errno;
			goto fail;
		}
		if (err != 0)
			goto fail;
	}
	/* Commands are written whole; do not let Nagle delay them. */
	(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));

	s = xcalloc(1, sizeof(*s));
	s->fd = fd;
	(void)snprintf(s->host, sizeof(s->host), "%s", t->host);
	(void)snprintf(s->ip, sizeof(s->ip), "%s", t->ip);
	s->port = t->port;
	(void)snprintf(s->source, sizeof(s->source), "%s", src);
	(void)snprintf(s->relay, sizeof(s->relay), "%s[%s]:%u", t->host,
	    t->ip, t->port);
	vbuf_init(&s->lines, 0);
	s->idle_since = smtp_now_ms();
	return s;

fail:
	close(fd);
	smtp_fail_set(fail, SMTP_RCPT_DEFERRED, "4.4.1", 1,
	    "connect to %s[%s]:%u: %s", t->host, t->ip, t->port,
	    strerror(err));
	return NULL;
}

void
smtp_sess_free(struct smtp_sess *s)
{
	if (s == NULL)
		return;
	if (s->ssl != NULL) {
		/* One nonblocking close_notify; no waiting for the peer's. */
		if (!s->broken)
			(void)SSL_shutdown(s->ssl);
		SSL_free(s->ssl);
	}
	close(s->fd);
	vbuf_release(&s->lines);
	free(s);
}

/* Appends OpenSSL's reason for a failed call, if any, to why. */
static void
tls_reason(struct vbuf *why, const char *what, int sslerr)
{
	unsigned long e = ERR_get_error();
	char buf[256];

	if (e != 0) {
		ERR_error_string_n(e, buf, sizeof(buf));
		vbuf_setf(why, "%s: %s", what, buf);
	} else if (sslerr == SSL_ERROR_SYSCALL && errno != 0)
		vbuf_setf(why, "%s: %s", what, strerror(errno));
	else
		vbuf_setf(why, "%s: connection closed", what);
	ERR_clear_error();
}

int
smtp_sess_write(struct smtp_sess *s, const void *buf, size_t len,
    int64_t deadline, struct vbuf *why)
{
	const char *p = buf;
	ssize_t n;
	int rc, e;

	while (len > 0) {
		short ev = POLLOUT;

		if (s->ssl != NULL) {
			ERR_clear_error();
			errno = 0;
			rc = SSL_write(s->ssl, p, len > 0x40000000 ?
			    0x40000000 : (int)len);
			if (rc > 0) {
				p += rc;
				len -= (size_t)rc;
				continue;
			}
			e = SSL_get_error(s->ssl, rc);
			if (e == SSL_ERROR_WANT_READ)
				ev = POLLIN;
			else if (e != SSL_ERROR_WANT_WRITE) {
				tls_reason(why, "write", e);
				s->broken = 1;
				return -1;
			}
		} else {
			n = send(s->fd, p, len, MSG_NOSIGNAL);
			if (n > 0) {
				p += n;
				len -= (size_t)n;
				continue;
			}
			if (n == -1 && errno != EAGAIN && errno != EINTR) {
				vbuf_setf(why, "write: %s", strerror(errno));
				s->broken = 1;
				return -1;
			}
		}
		if ((rc = sess_wait(s->fd, ev, deadline)) != 0) {
			vbuf_setf(why, rc == -2 ? "timeout" : "poll: %s",
			    strerror(errno));
			s->broken = 1;
			return rc;
		}
	}
	return 0;
}

int
smtp_sess_fill(struct smtp_sess *s, int64_t deadline, struct vbuf *why)
{
	size_t room;
	ssize_t n;
	int rc, e;

	if (s->rpos > 0) {
		memmove(s->rbuf, s->rbuf + s->rpos, s->rlen - s->rpos);
		s->rlen -= s->rpos;
		s->rpos = 0;
	}
	room = sizeof(s->rbuf) - s->rlen;
	if (room == 0) {
		vbuf_setf(why, "read buffer full");
		s->broken = 1;
		return -1;
	}
	for (;;) {
		short ev = POLLIN;

		if (s->ssl != NULL) {
			ERR_clear_error();
			errno = 0;
			rc = SSL_read(s->ssl, s->rbuf + s->rlen, (int)room);
			if (rc > 0) {
				s->rlen += (size_t)rc;
				return 1;
			}
			e = SSL_get_error(s->ssl, rc);
			if (e == SSL_ERROR_ZERO_RETURN) {
				s->broken = 1;
				return 0;
			}
			if (e == SSL_ERROR_WANT_WRITE)
				ev = POLLOUT;
			else if (e != SSL_ERROR_WANT_READ) {
				tls_reason(why, "read", e);
				s->broken = 1;
				return e == SSL_ERROR_SYSCALL && errno == 0 ?
				    0 : -1;
			}
		} else {
			n = read(s->fd, s->rbuf + s->rlen, room);
			if (n > 0) {
				s->rlen += (size_t)n;
				return 1;
			}
			if (n == 0) {
				s->broken = 1;
				return 0;
			}
			if (errno != EAGAIN && errno != EINTR) {
				vbuf_setf(why, "read: %s", strerror(errno));
				s->broken = 1;
				return errno == ECONNRESET ? 0 : -1;
			}
		}
		if ((rc = sess_wait(s->fd, ev, deadline)) != 0) {
			vbuf_setf(why, rc == -2 ? "timeout" : "poll: %s",
			    strerror(errno));
			s->broken = 1;
			return rc;
		}
	}
}

int
smtp_sess_starttls(struct smtp_sess *s, int verify, int64_t deadline,
    struct vbuf *why)
{
	unsigned char probe[sizeof(struct in6_addr)];
	long vr;
	int rc, e, ok;

	/* Bytes after the 220 would be plaintext injection (CVE-2011-0411). */
	if (s->rpos != s->rlen) {
		vbuf_setf(why, "data after the STARTTLS reply");
		s->broken = 1;
		return -1;
	}
	if ((s->ssl = SSL_new(tls_ctx)) == NULL ||
	    SSL_set_fd(s->ssl, s->fd) != 1) {
		tls_reason(why, "SSL_new", 0);
		s->broken = 1;
		return -1;
	}
	/* SNI for names only, never for address literals (RFC 6066 3). */
	if (inet_pton(AF_INET, s->host, probe) != 1 &&
	    inet_pton(AF_INET6, s->host, probe) != 1) {
		(void)SSL_set_tlsext_host_name(s->ssl, s->host);
		ok = SSL_set1_host(s->ssl, s->host);
	} else
		ok = X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(s->ssl),
		    s->host);
	if (ok != 1) {
		tls_reason(why, "host name check", 0);
		s->broken = 1;
		return -1;
	}
	if (verify)
		SSL_set_verify(s->ssl, SSL_VERIFY_PEER, NULL);
	for (;;) {
		short ev;

		ERR_clear_error();
		errno = 0;
		rc = SSL_connect(s->ssl);
		if (rc == 1)
			break;
		e = SSL_get_error(s->ssl, rc);
		if (e == SSL_ERROR_WANT_READ)
			ev = POLLIN;
		else if (e == SSL_ERROR_WANT_WRITE)
			ev = POLLOUT;
		else {
			vr = SSL_get_verify_result(s->ssl);
			if (verify && vr != X509_V_OK)
				vbuf_setf(why, "certificate verification "
				    "failed: %s", X509_verify_cert_error_string(
				    vr));
			else
				tls_reason(why, "handshake", e);
			ERR_clear_error();
			s->broken = 1;
			return -1;
		}
		if ((rc = sess_wait(s->fd, ev, deadline)) != 0) {
			vbuf_setf(why, rc == -2 ? "handshake: timeout" :
			    "handshake: poll: %s", strerror(errno));
			s->broken = 1;
			return -1;
		}
	}
	(void)snprintf(s->tls, sizeof(s->tls), "%s", SSL_get_version(s->ssl));
	(void)snprintf(s->cipher, sizeof(s->cipher), "%s",
	    SSL_get_cipher_name(s->ssl));
	s->verified = SSL_get0_peer_certificate(s->ssl) != NULL &&
	    SSL_get_verify_result(s->ssl) == X509_V_OK;
	return 0;
}

int
smtp_sess_alive(struct smtp_sess *s)
{
	struct pollfd pfd;

	if (s->broken || s->rpos != s->rlen)
		return 0;
	if (s->ssl != NULL && SSL_pending(s->ssl) > 0)
		return 0;
	/* Readable while idle means EOF or an unsolicited 421: redial. */
	pfd.fd = s->fd;
	pfd.events = POLLIN;
	pfd.revents = 0;
	if (poll(&pfd, 1, 0) == 0)
		return 1;
	if (s->ssl != NULL) {
		char c;
		int rc;

		/* TLS 1.3 session tickets arrive unasked; they are not data. */
		ERR_clear_error();
		rc = SSL_peek(s->ssl, &c, 1);
		if (rc <= 0 && SSL_get_error(s->ssl, rc) == SSL_ERROR_WANT_READ)
			return 1;
		ERR_clear_error();
	}
	return 0;
}
