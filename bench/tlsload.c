/*
 * tlsload.c - SMTP and TLS load generator, and a do-nothing TLS sink, for
 * bench/bench.py (issue 12: TLS submission as applications send it).
 *
 * Client (default): C concurrent sessions against HOST:PORT in one
 * non-blocking epoll loop per thread (-j); plain SMTP, STARTTLS (EHLO,
 * STARTTLS, EHLO) or implicit TLS; optional AUTH PLAIN, PIPELINING of
 * RSET/MAIL/RCPT/DATA, TLS session resumption; N messages of SIZE body
 * bytes, K per connection (RSET between them). Prints one JSON line:
 * counts, errors by reply code, msgs/s, accept latency, the median and p99
 * of each phase of a session (connect, greeting, EHLO, STARTTLS, handshake,
 * first EHLO after TLS, AUTH, MAIL+RCPT, DATA to 250, QUIT), own CPU.
 *
 * Sink (--sink): a discarding SMTP server (plain, STARTTLS or implicit
 * TLS; accepts any AUTH; advertises PIPELINING; TCP_NODELAY unless
 * --nagle) that gives the machine's ceiling without an MTA. Runs until
 * SIGTERM/SIGINT or the run timeout, then prints one JSON line.
 *
 * A benchmark tool, not part of Petrel: it does not use lib/ and may use
 * threads. Built by `make bench-tools` into build/tlsload; `tlsload -h`
 * and bench/README.md describe it. No certificate verification (the
 * certificates are self-signed), IPv4 only.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#define INBUF 4096 /* per-connection input buffer */
#define MAX_LINE 2048 /* longest reply / command line accepted */
#define MAX_REPLY_LINES 100 /* longest multi-line reply accepted */
#define MAX_THREADS 64
#define MAX_CONC 50000
#define MAX_N 50000000L
#define MAX_SIZE (64L << 20)
#define MAX_ADDR 256
#define NEXP 8
#define SCAN_S 0.02 /* timeout / back-off scan interval */
#define BACKOFF_S 0.05 /* pause before reconnecting after a failed session */

enum { M_NONE, M_STARTTLS, M_SMTPS };
static const char *mode_name[] = { "none", "starttls", "smtps" };

/*
 * Phases of a session, timed for the per-phase report: from the command
 * (or the event) that starts one to the reply that ends it. Where a new TLS
 * session waits shows up here (issue 12: Nagle meeting delayed ACK).
 */
enum {
	PH_CONNECT,	/* connect() to connected */
	PH_GREETING,	/* connected (smtps: TLS up) to the 220 */
	PH_EHLO,	/* EHLO to 250, in plaintext */
	PH_STARTTLS,	/* STARTTLS to 220 */
	PH_TLS,		/* the TLS handshake */
	PH_EHLO_TLS,	/* the first EHLO after TLS to its 250 */
	PH_AUTH,	/* AUTH PLAIN to 235 */
	PH_MAIL_RCPT,	/* MAIL FROM to the reply to RCPT TO */
	PH_DATA,	/* DATA to the 250 after the dot */
	PH_QUIT,	/* QUIT to 221 */
	NPHASE
};
static const char *phase_name[] = { "connect", "greeting", "ehlo",
	"starttls", "tls_handshake", "ehlo_after_tls", "auth", "mail_rcpt",
	"data", "quit" };
#define PHASE_MAX 1000000	/* samples kept per phase and thread */

/* failures that have no reply code */
enum { K_CONNECT, K_TLS, K_TIMEOUT, K_EOF, K_PROTO, K_IO, NKIND };
static const char *kind_name[] = { "connect", "tls", "timeout", "eof",
	"protocol", "io" };

static struct {
	struct in_addr host;
	const char *host_s;
	int port, mode, c, threads, pipelining, resume, no_rset, sink, phases;
	int nagle;
	long n, size, per_conn, max_errors, max_conns;
	const char *auth, *from, *rcpt, *cert, *key, *key_type;
	double step_to, run_to;
} O = {
	.host_s = "127.0.0.1",
	.mode = M_NONE,
	.c = 10,
	.threads = 1,
	.n = 1000,
	.size = 4096,
	.per_conn = 1,
	.max_errors = 1000,
	.max_conns = 10000,
	.from = "sender@example.com",
	.rcpt = "rcpt@example.net",
	.key_type = "rsa2048",
	.step_to = 30,
	.run_to = 600,
};

static atomic_long g_next, g_finished, g_accepted, g_errors;
static atomic_int
    g_abort; /* 0 running, 1 run timeout, 2 too many errors, 3 signal */
static volatile sig_atomic_t g_sig;
static uint32_t
    *g_lat; /* accept latency per message in us; UINT32_MAX = none */
static double g_t0, g_end_by;
static SSL_CTX *g_ctx;
static char *g_body; /* body + ".\r\n" */
static size_t g_body_len;
static char g_auth_cmd[1024];
static size_t g_auth_len;
static char g_date[64];
static long g_tag; /* pid, for unique Message-IDs */

struct thr {
	int id, epfd, active, nslots;
	void *slots;
	long *retry;
	int nretry, retry_cap;
	SSL_SESSION *sess;
	long errc[1000], errk[NKIND];
	long conns, handshakes, resumed, msgs, refused;
	long long bytes;
	int listen_fd, *free_idx, nfree;
	uint32_t *ph[NPHASE];	/* phase durations in us */
	long ph_n[NPHASE], ph_cap[NPHASE];
	pthread_t tid;
};
static struct thr g_thr[MAX_THREADS];

static double
now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static void die(int, const char *, ...)
    __attribute__((format(printf, 2, 3), noreturn));

static void
die(int rc, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fputs("tlsload: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
	exit(rc);
}

static void
set_abort(int why)
{
	int z = 0;
	atomic_compare_exchange_strong(&g_abort, &z, why);
}

static void *
xrealloc(void *p, size_t n)
{
	p = realloc(p, n);
	if (p == NULL)
		die(3, "out of memory");
	return p;
}

/* ================================================================ client */

enum { S_SLEEP, S_CONNECT, S_HS, S_SMTP, S_DONE };
enum {
	X_GREET,
	X_EHLO1,
	X_STARTTLS,
	X_EHLO2,
	X_AUTH,
	X_RSET,
	X_MAIL,
	X_RCPT,
	X_DATA,
	X_DOT,
	X_QUIT,
	NX
};

struct conn {
	struct thr *t;
	uint32_t idx, gen, ev;
	int fd, state, reg, nexp, nlines, code1, ext_pipe, txn_failed, pipe_now,
	    want_write;
	int exp[NEXP];
	SSL *ssl;
	long msg, on_conn;
	double t_mail, deadline, wake;
	double t_conn, t_tls;	/* connect() and TLS start, for the phases */
	double t_exp[NX];	/* when each expected reply's command left */
	char *out;
	size_t cap, off, len;
	int inlen;
	char in[INBUF];
};

/* Records one duration of phase ph, from since to now. */
static void
phase_add(struct thr *t, int ph, double since)
{
	double us;

	us = (now() - since) * 1e6;
	if (t->ph_n[ph] == t->ph_cap[ph]) {
		if (t->ph_cap[ph] >= PHASE_MAX)
			return;
		t->ph_cap[ph] = t->ph_cap[ph] ? 2 * t->ph_cap[ph] : 1024;
		t->ph[ph] = xrealloc(t->ph[ph],
		    t->ph_cap[ph] * sizeof(t->ph[ph][0]));
	}
	t->ph[ph][t->ph_n[ph]++] = us < 4e9 ? (uint32_t)us : UINT32_MAX - 1;
}

/* The phase that the reply expected as x ends, or -1 for none. */
static int
reply_phase(const struct conn *c, int x, double *since)
{
	*since = c->t_exp[x];
	switch (x) {
	case X_GREET:
		return PH_GREETING;
	case X_EHLO1:
		/* With implicit TLS the first EHLO is already inside TLS. */
		return c->ssl != NULL ? PH_EHLO_TLS : PH_EHLO;
	case X_EHLO2:
		return PH_EHLO_TLS;
	case X_STARTTLS:
		return PH_STARTTLS;
	case X_AUTH:
		return PH_AUTH;
	case X_RCPT:
		*since = c->t_exp[X_MAIL];
		return PH_MAIL_RCPT;
	case X_DOT:
		*since = c->t_exp[X_DATA];
		return PH_DATA;
	case X_QUIT:
		return PH_QUIT;
	}
	return -1;
}

static void
count_err(struct thr *t, int code, int kind)
{
	if (code >= 0 && code < 1000)
		t->errc[code]++;
	else
		t->errk[kind]++;
	if (atomic_fetch_add(&g_errors, 1) + 1 > O.max_errors)
		set_abort(2);
}

static long
claim(struct thr *t)
{
	long i;

	if (atomic_load(&g_abort))
		return -1;
	if (t->nretry)
		return t->retry[--t->nretry];
	i = atomic_fetch_add(&g_next, 1);
	return i < O.n ? i : -1;
}

static void
unclaim(struct thr *t, long m)
{
	if (t->nretry == t->retry_cap) {
		t->retry_cap = t->retry_cap ? 2 * t->retry_cap : 64;
		t->retry = xrealloc(t->retry, t->retry_cap * sizeof(long));
	}
	t->retry[t->nretry++] = m;
}

/*
 * Makes epfd watch fd for ev, the event tagged with gen (which changes
 * when the slot is reused, so stale events are ignored) and idx; *reg and
 * *cur say what is registered, to skip a call that would change nothing.
 */
static void
epoll_want(int epfd, int fd, uint32_t gen, uint32_t idx, int *reg,
    uint32_t *cur, uint32_t ev)
{
	struct epoll_event e;

	if (*reg && *cur == ev)
		return;
	memset(&e, 0, sizeof(e));
	e.events = ev;
	e.data.u64 = ((uint64_t)gen << 32) | idx;
	if (epoll_ctl(epfd, *reg ? EPOLL_CTL_MOD : EPOLL_CTL_ADD, fd, &e) < 0)
		die(3, "epoll_ctl: %s", strerror(errno));
	*reg = 1;
	*cur = ev;
}

static void
ep_set(struct conn *c, uint32_t ev)
{
	epoll_want(c->t->epfd, c->fd, c->gen, c->idx, &c->reg, &c->ev, ev);
}

static void
conn_close(struct conn *c)
{
	if (c->ssl) {
		SSL_free(c->ssl);
		c->ssl = NULL;
	}
	if (c->fd >= 0) {
		close(c->fd);
		c->fd = -1;
	}
	c->gen++;
	c->reg = 0;
	c->ev = 0;
	c->nexp = c->nlines = c->inlen = c->want_write = 0;
	c->off = c->len = 0;
	ERR_clear_error();
}

static void slot_start(struct conn *c);

/* session failed (code >= 0: an unexpected reply, else a failure kind): count
 * it, put the unfinished message back, reconnect after a short pause */
static int
conn_fail(struct conn *c, int code, int kind)
{
	count_err(c->t, code, kind);
	if (c->msg >= 0) {
		unclaim(c->t, c->msg);
		c->msg = -1;
	}
	conn_close(c);
	c->state = S_SLEEP;
	c->wake = now() + BACKOFF_S;
	return -1;
}

static char *
out_reserve(struct conn *c, size_t n)
{
	if (c->len + n > c->cap) {
		c->cap = c->len + n + 256;
		c->out = xrealloc(c->out, c->cap);
	}
	return c->out + c->len;
}

static void
out_put(struct conn *c, const char *s, size_t n)
{
	memcpy(out_reserve(c, n), s, n);
	c->len += n;
}

static void out_fmt(struct conn *, const char *, ...)
    __attribute__((format(printf, 2, 3)));

static void
out_fmt(struct conn *c, const char *fmt, ...)
{
	va_list ap;
	char *p;
	int k;

	p = out_reserve(c, 1024);
	va_start(ap, fmt);
	k = vsnprintf(p, 1024, fmt, ap);
	va_end(ap);
	if (k > 0)
		c->len += k < 1024 ? (size_t)k : 1023;
}

static void
expect(struct conn *c, int x)
{
	if (c->nexp >= NEXP)
		die(3, "internal: reply queue overflow");
	c->exp[c->nexp++] = x;
	c->t_exp[x] = now();
	c->deadline = c->t_exp[x] + O.step_to;
}

/* 0 ok (maybe still pending), -1 connection failed and was reset */
static int
flush_out(struct conn *c)
{
	while (c->off < c->len) {
		ssize_t n;
		if (c->ssl) {
			int r = SSL_write(
			    c->ssl, c->out + c->off, (int)(c->len - c->off));
			if (r <= 0) {
				int e = SSL_get_error(c->ssl, r);
				if (e == SSL_ERROR_WANT_WRITE ||
				    e == SSL_ERROR_WANT_READ)
					break;
				return conn_fail(c, -1,
				    e == SSL_ERROR_SYSCALL ? K_IO : K_TLS);
			}
			n = r;
		} else {
			n = send(c->fd, c->out + c->off, c->len - c->off,
			    MSG_NOSIGNAL);
			if (n < 0) {
				if (errno == EAGAIN || errno == EINTR)
					break;
				return conn_fail(c, -1, K_IO);
			}
		}
		c->off += n;
	}
	if (c->off == c->len)
		c->off = c->len = 0;
	ep_set(c, EPOLLIN | (c->len || c->want_write ? EPOLLOUT : 0));
	return 0;
}

static void
send_ehlo(struct conn *c, int x)
{
	c->ext_pipe = 0;
	out_put(c, "EHLO tlsload.example.com\r\n", 26);
	expect(c, x);
}

static void
start_txn(struct conn *c, int rset)
{
	c->txn_failed = 0;
	c->pipe_now = O.pipelining && c->ext_pipe;
	if (rset) {
		out_put(c, "RSET\r\n", 6);
		expect(c, X_RSET);
		if (!c->pipe_now)
			return;
	}
	c->t_mail = now();
	out_fmt(c, "MAIL FROM:<%s>\r\n", O.from);
	expect(c, X_MAIL);
	if (c->pipe_now) {
		out_fmt(c, "RCPT TO:<%ld%s>\r\nDATA\r\n", c->msg + 1, O.rcpt);
		expect(c, X_RCPT);
		expect(c, X_DATA);
	}
}

static void
send_msg(struct conn *c)
{
	char *p = out_reserve(c, 1024 + g_body_len);
	int h = snprintf(p, 1024,
	    "From: <%s>\r\nTo: <%ld%s>\r\nSubject: tlsload %ld\r\n"
	    "Message-ID: <%ld.%ld@tlsload.example.com>\r\nDate: %s\r\n"
	    "MIME-Version: 1.0\r\nContent-Type: text/plain\r\n\r\n",
	    O.from, c->msg + 1, O.rcpt, c->msg + 1, c->msg + 1, g_tag, g_date);
	memcpy(p + h, g_body, g_body_len);
	c->len += h + g_body_len;
}

/* the transaction got a final negative reply: it counts as sent, not accepted
 */
static void
txn_fail(struct conn *c, int code)
{
	if (c->txn_failed)
		return;
	c->txn_failed = 1;
	count_err(c->t, code, K_PROTO);
	atomic_fetch_add(&g_finished, 1);
	c->msg = -1;
}

/* close without counting (server said 421, or after QUIT) and reconnect */
static int
conn_drop(struct conn *c, double pause)
{
	conn_close(c);
	if (pause > 0) {
		c->state = S_SLEEP;
		c->wake = now() + pause;
	} else {
		slot_start(c);
	}
	return -1;
}

static int
txn_end(struct conn *c)
{
	long m;
	c->on_conn++;
	if ((O.per_conn == 0 || c->on_conn < O.per_conn) &&
	    (m = claim(c->t)) >= 0) {
		c->msg = m;
		start_txn(c, !O.no_rset);
	} else {
		out_put(c, "QUIT\r\n", 6);
		expect(c, X_QUIT);
	}
	return 0;
}

static void tls_start(struct conn *c);

/* one complete reply; <0: stop processing this connection's input (state
 * changed) */
static int
on_reply(struct conn *c, int code)
{
	double since;
	int x, ph;

	x = c->exp[0];
	c->nexp--;
	memmove(c->exp, c->exp + 1, c->nexp * sizeof(int));
	if ((ph = reply_phase(c, x, &since)) >= 0)
		phase_add(c->t, ph, since);
	switch (x) {
	case X_GREET:
		if (code != 220)
			return conn_fail(c, code, 0);
		send_ehlo(c, X_EHLO1);
		break;
	case X_EHLO1:
	case X_EHLO2:
		if (code != 250)
			return conn_fail(c, code, 0);
		if (x == X_EHLO1 && O.mode == M_STARTTLS) {
			out_put(c, "STARTTLS\r\n", 10);
			expect(c, X_STARTTLS);
		} else if (O.auth) {
			out_put(c, g_auth_cmd, g_auth_len);
			expect(c, X_AUTH);
		} else {
			start_txn(c, 0);
		}
		break;
	case X_STARTTLS:
		if (code != 220)
			return conn_fail(c, code, 0);
		if (c->inlen) /* plaintext after the 220: refuse (STARTTLS
				 injection) */
			return conn_fail(c, -1, K_PROTO);
		tls_start(c);
		return -1;
	case X_AUTH:
		if (code != 235)
			return conn_fail(c, code, 0);
		start_txn(c, 0);
		break;
	case X_RSET:
		if (code != 250)
			return conn_fail(c, code, 0);
		if (!c->pipe_now) {
			c->t_mail = now();
			out_fmt(c, "MAIL FROM:<%s>\r\n", O.from);
			expect(c, X_MAIL);
		}
		break;
	case X_MAIL:
	case X_RCPT:
		if (code != 250 && !(x == X_RCPT && code == 251)) {
			txn_fail(c, code);
			if (code == 421)
				return conn_drop(c, BACKOFF_S);
			if (c->nexp == 0)
				txn_end(c);
			break;
		}
		if (!c->pipe_now) {
			if (x == X_MAIL)
				out_fmt(c, "RCPT TO:<%ld%s>\r\n", c->msg + 1,
				    O.rcpt);
			else
				out_put(c, "DATA\r\n", 6);
			expect(c, x == X_MAIL ? X_RCPT : X_DATA);
		}
		break;
	case X_DATA:
		if (code == 354) {
			if (c->txn_failed) /* 354 after a failed MAIL/RCPT: give
					      up on this session */
				return conn_fail(c, -1, K_PROTO);
			send_msg(c);
			expect(c, X_DOT);
			break;
		}
		txn_fail(c, code);
		if (code == 421)
			return conn_drop(c, BACKOFF_S);
		txn_end(c);
		break;
	case X_DOT:
		if (code == 250) {
			double d = (now() - c->t_mail) * 1e6;
			g_lat[c->msg] = d < 4e9 ? (uint32_t)d : UINT32_MAX - 1;
			atomic_fetch_add(&g_accepted, 1);
			atomic_fetch_add(&g_finished, 1);
			c->msg = -1;
		} else {
			txn_fail(c, code);
			if (code == 421)
				return conn_drop(c, BACKOFF_S);
		}
		txn_end(c);
		break;
	case X_QUIT:
		if (c->ssl)
			SSL_shutdown(c->ssl); /* send close_notify; do not wait
						 for the peer's */
		return conn_drop(c, 0);
	}
	return c->len ? flush_out(c) : 0;
}

static int
process_lines(struct conn *c)
{
	char *ln, *nl;
	int start = 0, len, code;

	for (;;) {
		ln = c->in + start;
		nl = memchr(ln, '\n', c->inlen - start);
		if (nl == NULL)
			break;
		len = nl - ln + 1;
		start += len;
		if (len > MAX_LINE || len < 4 || ln[0] < '0' || ln[0] > '9' ||
		    ln[1] < '0' || ln[1] > '9' || ln[2] < '0' || ln[2] > '9' ||
		    c->nexp == 0 || ++c->nlines > MAX_REPLY_LINES)
			return conn_fail(c, -1, K_PROTO);
		code = (ln[0] - '0') * 100 + (ln[1] - '0') * 10 + (ln[2] - '0');
		if (c->nlines == 1)
			c->code1 = code;
		else if (code != c->code1)
			return conn_fail(c, -1, K_PROTO);
		if ((c->exp[0] == X_EHLO1 || c->exp[0] == X_EHLO2) &&
		    len >= 14 && strncasecmp(ln + 4, "PIPELINING", 10) == 0)
			c->ext_pipe = 1;
		if (ln[3] == '-')
			continue;
		c->nlines = 0;
		c->inlen -= start;
		memmove(c->in, c->in + start, c->inlen);
		start = 0;
		if (on_reply(c, code) < 0)
			return -1;
	}
	if (start) {
		c->inlen -= start;
		memmove(c->in, c->in + start, c->inlen);
	}
	if (c->inlen >= MAX_LINE)
		return conn_fail(c, -1, K_PROTO);
	return 0;
}

static void
do_read(struct conn *c)
{
	uint32_t gen = c->gen;
	for (;;) {
		int n, room = INBUF - c->inlen;
		if (c->ssl) {
			n = SSL_read(c->ssl, c->in + c->inlen, room);
			if (n <= 0) {
				int e = SSL_get_error(c->ssl, n);
				if (e == SSL_ERROR_WANT_READ)
					return;
				if (e == SSL_ERROR_WANT_WRITE) {
					c->want_write = 1;
					ep_set(c, EPOLLIN | EPOLLOUT);
					return;
				}
				conn_fail(c, -1,
				    e == SSL_ERROR_ZERO_RETURN	 ? K_EOF
					: e == SSL_ERROR_SYSCALL ? K_IO
								 : K_TLS);
				return;
			}
		} else {
			n = recv(c->fd, c->in + c->inlen, room, 0);
			if (n < 0) {
				if (errno != EAGAIN && errno != EINTR)
					conn_fail(c, -1, K_IO);
				return;
			}
			if (n == 0) {
				conn_fail(c, -1, K_EOF);
				return;
			}
		}
		c->inlen += n;
		if (process_lines(c) < 0 || c->gen != gen)
			return;
		/* socket drained (plain), or OpenSSL (read-ahead) holds nothing
		 * more: level-triggered epoll reports anything still in the
		 * socket, so skip the read that would say EAGAIN */
		if (n < room && (c->ssl == NULL || !SSL_has_pending(c->ssl)))
			return;
	}
}

static void
hs_step(struct conn *c)
{
	int r, e;

	r = SSL_do_handshake(c->ssl);
	if (r != 1) {
		e = SSL_get_error(c->ssl, r);
		if (e == SSL_ERROR_WANT_READ)
			ep_set(c, EPOLLIN);
		else if (e == SSL_ERROR_WANT_WRITE)
			ep_set(c, EPOLLOUT);
		else
			conn_fail(c, -1, K_TLS);
		return;
	}
	phase_add(c->t, PH_TLS, c->t_tls);
	c->t->handshakes++;
	if (SSL_session_reused(c->ssl))
		c->t->resumed++;
	c->state = S_SMTP;
	if (O.mode == M_SMTPS)
		expect(c, X_GREET);
	else
		send_ehlo(c, X_EHLO2);
	if (flush_out(c) == 0)
		do_read(c); /* anything OpenSSL already holds */
}

static void
tls_start(struct conn *c)
{
	c->ssl = SSL_new(g_ctx);
	if (c->ssl == NULL) {
		conn_fail(c, -1, K_TLS);
		return;
	}
	SSL_set_fd(c->ssl, c->fd);
	SSL_set_connect_state(c->ssl);
	SSL_set_app_data(c->ssl, c);
	if (O.resume && c->t->sess)
		SSL_set_session(c->ssl, c->t->sess);
	c->state = S_HS;
	c->t_tls = now();
	c->deadline = c->t_tls + O.step_to;
	hs_step(c);
}

static int
new_session_cb(SSL *ssl, SSL_SESSION *sess)
{
	struct conn *c = SSL_get_app_data(ssl);
	if (c == NULL)
		return 0;
	if (c->t->sess)
		SSL_SESSION_free(c->t->sess);
	c->t->sess = sess; /* keep the newest ticket; we own the reference */
	return 1;
}

static void
connected(struct conn *c)
{
	phase_add(c->t, PH_CONNECT, c->t_conn);
	c->t->conns++;
	c->deadline = now() + O.step_to;
	if (O.mode == M_SMTPS) {
		tls_start(c);
		return;
	}
	c->state = S_SMTP;
	expect(c, X_GREET);
	ep_set(c, EPOLLIN);
}

static void
slot_start(struct conn *c)
{
	struct sockaddr_in sa;
	long m;
	int fd, one = 1;

	m = claim(c->t);
	if (m < 0) {
		c->state = S_DONE;
		c->t->active--;
		return;
	}
	c->msg = m;
	c->on_conn = 0;
	fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		conn_fail(c, -1, K_IO);
		return;
	}
	/* The client sends each command at once: its own Nagle must not
	 * hide the server's. */
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	c->fd = fd;
	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_port = htons(O.port);
	sa.sin_addr = O.host;
	c->t_conn = now();
	c->deadline = c->t_conn + O.step_to;
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0) {
		connected(c);
		return;
	}
	if (errno != EINPROGRESS) {
		conn_fail(c, -1, K_CONNECT);
		return;
	}
	c->state = S_CONNECT;
	ep_set(c, EPOLLOUT);
}

static void
on_event(struct conn *c, uint32_t ev)
{
	uint32_t gen = c->gen;
	switch (c->state) {
	case S_CONNECT: {
		int err = 0;
		socklen_t l = sizeof(err);
		if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &l) < 0 ||
		    err)
			conn_fail(c, -1, K_CONNECT);
		else if (ev & (EPOLLOUT | EPOLLERR | EPOLLHUP))
			connected(c);
		return;
	}
	case S_HS:
		hs_step(c);
		return;
	case S_SMTP:
		if ((ev & EPOLLOUT) && c->want_write) {
			c->want_write = 0;
			do_read(c);
			if (c->gen != gen)
				return;
			if (!c->want_write)
				ep_set(c, EPOLLIN | (c->len ? EPOLLOUT : 0));
		}
		if (c->len && flush_out(c) < 0)
			return;
		if (ev & (EPOLLIN | EPOLLERR | EPOLLHUP))
			do_read(c);
		return;
	}
}

static void *
client_thread(void *arg)
{
	struct thr *t = arg;
	struct conn *cs = t->slots, *c;
	struct epoll_event evs[256];
	double next_scan, tn;
	uint64_t d;
	int i, k, tmo;

	for (i = 0; i < t->nslots; i++)
		slot_start(&cs[i]);
	next_scan = now() + SCAN_S;
	while (t->active > 0) {
		tmo = (int)((next_scan - now()) * 1000) + 1;
		k = epoll_wait(t->epfd, evs, 256, tmo < 0 ? 0 : tmo);
		for (i = 0; i < k; i++) {
			d = evs[i].data.u64;
			c = &cs[(uint32_t)d];
			if ((uint32_t)(d >> 32) == c->gen && c->fd >= 0)
				on_event(c, evs[i].events);
		}
		tn = now();
		if (g_sig)
			set_abort(3);
		if (tn >= g_end_by)
			set_abort(1);
		if (atomic_load(&g_abort)) {
			for (i = 0; i < t->nslots; i++)
				if (cs[i].state != S_DONE) {
					conn_close(&cs[i]);
					cs[i].state = S_DONE;
				}
			t->active = 0;
			break;
		}
		if (tn >= next_scan) {
			next_scan = tn + SCAN_S;
			for (i = 0; i < t->nslots; i++) {
				c = &cs[i];
				if (c->state == S_SLEEP && tn >= c->wake)
					slot_start(c);
				else if ((c->state == S_CONNECT ||
					     c->state == S_HS ||
					     c->state == S_SMTP) &&
				    tn > c->deadline)
					conn_fail(c, -1, K_TIMEOUT);
			}
		}
	}
	return NULL;
}

static int
cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
	return x < y ? -1 : x > y;
}

static double
pctl(const uint32_t *v, long n, double q)
{
	double k;
	long lo, hi;

	if (n == 0)
		return -1;
	k = (n - 1) * q;
	lo = (long)k;
	hi = lo + 1 < n ? lo + 1 : lo;
	return (v[lo] + (v[hi] - (double)v[lo]) * (k - lo)) / 1000.0;
}

static void
jstr(const char *s) /* JSON string (our inputs are short, printable) */
{
	putchar('"');
	for (; *s; s++) {
		if (*s == '"' || *s == '\\')
			printf("\\%c", *s);
		else if ((unsigned char)*s < 0x20)
			printf("\\u%04x", *s);
		else
			putchar(*s);
	}
	putchar('"');
}

static void
print_errors(long *errc, long *errk)
{
	int i, first = 1;

	printf("\"errors\":{");
	for (i = 0; i < 1000; i++)
		if (errc[i]) {
			printf("%s\"%03d\":%ld", first ? "" : ",", i, errc[i]);
			first = 0;
		}
	for (i = 0; i < NKIND; i++)
		if (errk[i]) {
			printf("%s\"%s\":%ld", first ? "" : ",", kind_name[i],
			    errk[i]);
			first = 0;
		}
	printf("}");
}

/*
 * Prints "phases_ms":{NAME:{"n":N,"p50":MS,"p99":MS,"max":MS},...}, for
 * every phase that happened, from all threads' samples; with --phases, also
 * a table on stderr.
 */
static void
print_phases(void)
{
	uint32_t *v;
	long n, i;
	int ph, first = 1;

	printf("\"phases_ms\":{");
	if (O.phases)
		fprintf(stderr, "%-15s %8s %9s %9s %9s\n", "phase", "n",
		    "p50 ms", "p99 ms", "max ms");
	for (ph = 0; ph < NPHASE; ph++) {
		n = 0;
		for (i = 0; i < O.threads; i++)
			n += g_thr[i].ph_n[ph];
		if (n == 0)
			continue;
		v = xrealloc(NULL, n * sizeof(*v));
		n = 0;
		for (i = 0; i < O.threads; i++) {
			if (g_thr[i].ph_n[ph] == 0)
				continue;
			memcpy(v + n, g_thr[i].ph[ph],
			    g_thr[i].ph_n[ph] * sizeof(*v));
			n += g_thr[i].ph_n[ph];
		}
		qsort(v, n, sizeof(*v), cmp_u32);
		printf("%s\"%s\":{\"n\":%ld,\"p50\":%.3f,\"p99\":%.3f,"
		    "\"max\":%.3f}", first ? "" : ",", phase_name[ph], n,
		    pctl(v, n, .5), pctl(v, n, .99), v[n - 1] / 1000.0);
		if (O.phases)
			fprintf(stderr, "%-15s %8ld %9.3f %9.3f %9.3f\n",
			    phase_name[ph], n, pctl(v, n, .5), pctl(v, n, .99),
			    v[n - 1] / 1000.0);
		first = 0;
		free(v);
	}
	printf("},");
}

static double
cpu_secs(void)
{
	struct rusage ru;
	getrusage(RUSAGE_SELF, &ru);
	return ru.ru_utime.tv_sec + ru.ru_stime.tv_sec +
	    (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

static const char *
abort_name(int a)
{
	static const char *n[] = { NULL, "run-timeout", "max-errors",
		"signal" };
	return a >= 0 && a <= 3 ? n[a] : "?";
}

/* The body: SIZE bytes of 76-byte lines (none starts with '.'), then the
 * end-of-data dot. */
static void
client_body(void)
{
	static const char pat[] = "0123456789abcdefghijklmnopqrstuvwxyz"
				  "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789ab\r\n";
	struct tm tm;
	time_t tt;
	long i;

	g_body = xrealloc(NULL, O.size + 8);
	for (i = 0; i < O.size; i++)
		g_body[i] = pat[i % (sizeof(pat) - 1)];
	if (O.size >= 2) {
		g_body[O.size - 2] = '\r';
		g_body[O.size - 1] = '\n';
	}
	g_body_len = O.size >= 2 ? O.size : 0;
	memcpy(g_body + g_body_len, ".\r\n", 3);
	g_body_len += 3;
	tt = time(NULL);
	gmtime_r(&tt, &tm);
	strftime(g_date, sizeof(g_date), "%a, %d %b %Y %H:%M:%S +0000", &tm);
	g_tag = getpid();
}

/* AUTH PLAIN's initial response (RFC 4616): NUL user NUL password. */
static void
client_auth(void)
{
	unsigned char raw[600], b64[820];
	const char *colon;
	size_t ul, pl;
	int bl;

	if ((colon = strchr(O.auth, ':')) == NULL)
		die(2, "--auth wants USER:PASS");
	ul = colon - O.auth;
	pl = strlen(colon + 1);
	if (ul + pl + 2 > sizeof(raw))
		die(2, "--auth too long");
	raw[0] = 0;
	memcpy(raw + 1, O.auth, ul);
	raw[1 + ul] = 0;
	memcpy(raw + 2 + ul, colon + 1, pl);
	bl = EVP_EncodeBlock(b64, raw, (int)(ul + pl + 2));
	g_auth_len = snprintf(g_auth_cmd, sizeof(g_auth_cmd),
	    "AUTH PLAIN %.*s\r\n", bl, b64);
	OPENSSL_cleanse(raw, sizeof(raw));
}

static void
client_tls_ctx(void)
{
	if ((g_ctx = SSL_CTX_new(TLS_client_method())) == NULL)
		die(3, "SSL_CTX_new failed");
	SSL_CTX_set_verify(g_ctx, SSL_VERIFY_NONE, NULL);
	/* One read() per burst instead of two per record. */
	SSL_CTX_set_read_ahead(g_ctx, 1);
	SSL_CTX_set_min_proto_version(g_ctx, TLS1_2_VERSION);
	SSL_CTX_set_options(g_ctx, SSL_OP_IGNORE_UNEXPECTED_EOF);
	SSL_CTX_set_mode(g_ctx, SSL_MODE_ENABLE_PARTIAL_WRITE |
	    SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
	if (O.resume) {
		SSL_CTX_set_session_cache_mode(g_ctx, SSL_SESS_CACHE_CLIENT |
		    SSL_SESS_CACHE_NO_INTERNAL_STORE);
		SSL_CTX_sess_set_new_cb(g_ctx, new_session_cb);
	} else {
		SSL_CTX_set_session_cache_mode(g_ctx, SSL_SESS_CACHE_OFF);
		SSL_CTX_set_options(g_ctx, SSL_OP_NO_TICKET);
	}
}

static int
run_client(void)
{
	struct thr *t;
	struct conn *cs;
	long errc[1000] = { 0 }, errk[NKIND] = { 0 };
	long conns = 0, hs = 0, res = 0, nl = 0, acc, fin, j;
	double secs, cpu;
	int i, per, extra, ab;

	client_body();
	if (O.auth != NULL)
		client_auth();
	if (O.mode != M_NONE)
		client_tls_ctx();
	g_lat = xrealloc(NULL, O.n * sizeof(uint32_t));
	memset(g_lat, 0xff, O.n * sizeof(uint32_t));

	g_t0 = now();
	g_end_by = g_t0 + O.run_to;
	per = O.c / O.threads;
	extra = O.c % O.threads;
	for (i = 0; i < O.threads; i++) {
		t = &g_thr[i];
		t->id = i;
		t->nslots = t->active = per + (i < extra);
		t->epfd = epoll_create1(EPOLL_CLOEXEC);
		if (t->epfd < 0)
			die(3, "epoll_create1: %s", strerror(errno));
		cs = calloc(t->nslots ? t->nslots : 1, sizeof(*cs));
		if (cs == NULL)
			die(3, "out of memory");
		for (j = 0; j < t->nslots; j++) {
			cs[j].t = t;
			cs[j].idx = j;
			cs[j].fd = -1;
			cs[j].msg = -1;
		}
		t->slots = cs;
	}
	for (i = 1; i < O.threads; i++)
		if (pthread_create(&g_thr[i].tid, NULL, client_thread,
		    &g_thr[i]) != 0)
			die(3, "pthread_create failed");
	client_thread(&g_thr[0]);
	for (i = 1; i < O.threads; i++)
		pthread_join(g_thr[i].tid, NULL);
	secs = now() - g_t0;
	cpu = cpu_secs();

	for (i = 0; i < O.threads; i++) {
		for (j = 0; j < 1000; j++)
			errc[j] += g_thr[i].errc[j];
		for (j = 0; j < NKIND; j++)
			errk[j] += g_thr[i].errk[j];
		conns += g_thr[i].conns;
		hs += g_thr[i].handshakes;
		res += g_thr[i].resumed;
	}
	for (j = 0; j < O.n; j++)
		if (g_lat[j] != UINT32_MAX)
			g_lat[nl++] = g_lat[j];
	qsort(g_lat, nl, sizeof(uint32_t), cmp_u32);
	acc = atomic_load(&g_accepted);
	fin = atomic_load(&g_finished);
	ab = atomic_load(&g_abort);

	printf("{\"tool\":\"tlsload\",\"mode\":\"%s\",\"host\":",
	    mode_name[O.mode]);
	jstr(O.host_s);
	printf(",\"port\":%d,\"n\":%ld,\"c\":%d,\"threads\":%d,\"size\":%ld,"
	       "\"msgs_per_conn\":%ld,"
	       "\"auth\":%s,\"pipelining\":%s,\"rset\":%s,\"resume\":%s,",
	    O.port, O.n, O.c, O.threads, O.size, O.per_conn,
	    O.auth ? "true" : "false", O.pipelining ? "true" : "false",
	    O.no_rset ? "false" : "true", O.resume ? "true" : "false");
	printf("\"sent\":%ld,\"accepted\":%ld,\"rejected\":%ld,", fin, acc,
	    fin - acc);
	print_errors(errc, errk);
	printf(
	    ",\"connections\":%ld,\"tls_handshakes\":%ld,\"tls_resumed\":%ld,",
	    conns, hs, res);
	printf("\"secs\":%.3f,\"msgs_per_s\":%.1f,", secs,
	    secs > 0 ? acc / secs : 0.0);
	if (nl)
		printf("\"latency_ms\":{\"p50\":%.3f,\"p90\":%.3f,\"p99\":%.3f,"
		       "\"max\":%.3f},",
		    pctl(g_lat, nl, .5), pctl(g_lat, nl, .9),
		    pctl(g_lat, nl, .99), g_lat[nl - 1] / 1000.0);
	else
		printf("\"latency_ms\":null,");
	print_phases();
	printf("\"client_cpu_s\":%.3f,\"cpu_ms_per_msg\":%.4f,\"aborted\":",
	    cpu, acc ? 1000.0 * cpu / acc : 0.0);
	if (ab)
		jstr(abort_name(ab));
	else
		printf("null");
	printf("}\n");
	fflush(stdout);
	return (acc == O.n && !ab) ? 0 : 1;
}

/* ================================================================ sink */

enum { SS_FREE, SS_HS, SS_CMD, SS_DATA };

struct sconn {
	struct thr *t;
	uint32_t idx, gen, ev;
	int fd, state, reg, tls, dstate, auth_wait, stls, closing;
	SSL *ssl;
	double deadline;
	char *out;
	size_t cap, off, len;
	int inlen;
	char in[INBUF];
};

static atomic_long s_msgs, s_conns, s_hs, s_res, s_refused, s_tls_err;
static atomic_llong s_bytes;

static void
s_ep_set(struct sconn *c, uint32_t ev)
{
	epoll_want(c->t->epfd, c->fd, c->gen, c->idx, &c->reg, &c->ev, ev);
}

static void
s_close(struct sconn *c)
{
	if (c->ssl) {
		SSL_free(c->ssl);
		c->ssl = NULL;
	}
	close(c->fd);
	c->fd = -1;
	c->gen++;
	c->reg = c->ev = 0;
	c->state = SS_FREE;
	c->inlen = c->tls = c->stls = c->closing = c->auth_wait = 0;
	c->off = c->len = 0;
	c->t->free_idx[c->t->nfree++] = c->idx;
	ERR_clear_error();
}

static void
s_put(struct sconn *c, const char *s)
{
	size_t n = strlen(s);
	if (c->len + n > c->cap) {
		c->cap = c->len + n + 512;
		c->out = xrealloc(c->out, c->cap);
	}
	memcpy(c->out + c->len, s, n);
	c->len += n;
}

static void s_hs_step(struct sconn *c);

/* 0 ok, -1 closed */
static int
s_flush(struct sconn *c)
{
	while (c->off < c->len) {
		ssize_t n;
		if (c->ssl && c->tls) {
			int r = SSL_write(
			    c->ssl, c->out + c->off, (int)(c->len - c->off));
			if (r <= 0) {
				int e = SSL_get_error(c->ssl, r);
				if (e == SSL_ERROR_WANT_WRITE ||
				    e == SSL_ERROR_WANT_READ)
					break;
				s_close(c);
				return -1;
			}
			n = r;
		} else {
			n = send(c->fd, c->out + c->off, c->len - c->off,
			    MSG_NOSIGNAL);
			if (n < 0) {
				if (errno == EAGAIN || errno == EINTR)
					break;
				s_close(c);
				return -1;
			}
		}
		c->off += n;
	}
	if (c->off < c->len) {
		s_ep_set(c, EPOLLIN | EPOLLOUT);
		return 0;
	}
	c->off = c->len = 0;
	if (c->closing) {
		if (c->ssl && c->tls)
			SSL_shutdown(c->ssl);
		s_close(c);
		return -1;
	}
	if (c->stls) { /* 220 for STARTTLS is out: switch to TLS */
		c->stls = 0;
		c->ssl = SSL_new(g_ctx);
		if (c->ssl == NULL) {
			s_close(c);
			return -1;
		}
		SSL_set_fd(c->ssl, c->fd);
		SSL_set_accept_state(c->ssl);
		c->state = SS_HS;
		c->deadline = now() + O.step_to;
		s_hs_step(c);
		return -1;
	}
	s_ep_set(c, EPOLLIN);
	return 0;
}

static const char *
s_ehlo(struct sconn *c)
{
	if (O.mode == M_STARTTLS && !c->tls)
		return "250-tlsload-sink\r\n250-PIPELINING\r\n250-SIZE "
		       "104857600\r\n250-8BITMIME\r\n250-STARTTLS\r\n"
		       "250 ENHANCEDSTATUSCODES\r\n";
	return "250-tlsload-sink\r\n250-PIPELINING\r\n250-SIZE "
	       "104857600\r\n250-8BITMIME\r\n250-AUTH PLAIN LOGIN\r\n"
	       "250 ENHANCEDSTATUSCODES\r\n";
}

static void
s_cmd(struct sconn *c, const char *ln, int len)
{
	if (c->auth_wait) {
		c->auth_wait = 0;
		s_put(c,
		    ln[0] == '*' ? "501 5.7.0 Authentication aborted\r\n"
				 : "235 2.7.0 Authentication successful\r\n");
		return;
	}
	if (len < 6) { /* 4 letters + CRLF at least (bare LF tolerated) */
		s_put(c, "500 5.5.2 Error: bad syntax\r\n");
		return;
	}
	if (strncasecmp(ln, "MAIL", 4) == 0)
		s_put(c, "250 2.1.0 Ok\r\n");
	else if (strncasecmp(ln, "RCPT", 4) == 0)
		s_put(c, "250 2.1.5 Ok\r\n");
	else if (strncasecmp(ln, "DATA", 4) == 0) {
		s_put(c, "354 End data with <CR><LF>.<CR><LF>\r\n");
		c->state = SS_DATA;
		c->dstate = 2;
	} else if (strncasecmp(ln, "RSET", 4) == 0 ||
	    strncasecmp(ln, "NOOP", 4) == 0)
		s_put(c, "250 2.0.0 Ok\r\n");
	else if (strncasecmp(ln, "EHLO", 4) == 0)
		s_put(c, s_ehlo(c));
	else if (strncasecmp(ln, "HELO", 4) == 0)
		s_put(c, "250 tlsload-sink\r\n");
	else if (strncasecmp(ln, "AUTH", 4) == 0) {
		const char *sp = memchr(
		    ln + 5, ' ', len - 5); /* AUTH PLAIN <initial-response> */
		if (sp && sp[1] != '\r' && sp[1] != '\n')
			s_put(c, "235 2.7.0 Authentication successful\r\n");
		else {
			s_put(c, "334 \r\n");
			c->auth_wait = 1;
		}
	} else if (strncasecmp(ln, "STARTTLS", 8) == 0) {
		if (O.mode == M_STARTTLS && !c->tls) {
			s_put(c, "220 2.0.0 Ready to start TLS\r\n");
			c->stls = 1;
		} else
			s_put(c, "503 5.5.1 Error: TLS not available\r\n");
	} else if (strncasecmp(ln, "QUIT", 4) == 0) {
		s_put(c, "221 2.0.0 Bye\r\n");
		c->closing = 1;
	} else
		s_put(c, "502 5.5.2 Error: command not recognized\r\n");
}

/* consume message data from in[pos..]; returns new pos */
static int
s_data(struct sconn *c, int pos)
{
	const char *p = c->in + pos, *e = c->in + c->inlen, *cr;
	int d = c->dstate;
	char ch;

	/* d: 0 in a line, 1 saw CR, 2 at a line start, 3 ".", 4 ".CR" */
	while (p < e) {
		if (d == 0) {
			if ((cr = memchr(p, '\r', e - p)) == NULL) {
				p = e;
				break;
			}
			p = cr;
		}
		ch = *p++;
		switch (d) {
		case 0:
			d = 1;
			break;
		case 1:
			d = ch == '\n' ? 2 : ch == '\r' ? 1 : 0;
			break;
		case 2:
			d = ch == '.' ? 3 : ch == '\r' ? 1 : 0;
			break;
		case 3:
			d = ch == '\r' ? 4 : 0;
			break;
		case 4:
			if (ch == '\n') {
				c->state = SS_CMD;
				c->dstate = 0;
				atomic_fetch_add(&s_msgs, 1);
				s_put(c, "250 2.0.0 Ok: queued\r\n");
				atomic_fetch_add(&s_bytes, p - (c->in + pos));
				return p - c->in;
			}
			d = ch == '\r' ? 1 : 0;
			break;
		}
	}
	c->dstate = d;
	atomic_fetch_add(&s_bytes, p - (c->in + pos));
	return p - c->in;
}

/* returns -1 if the connection is gone or switched to TLS */
static int
s_process(struct sconn *c)
{
	char *ln, *nl;
	int pos = 0, len;

	while (pos < c->inlen) {
		if (c->state == SS_DATA) {
			pos = s_data(c, pos);
			continue;
		}
		ln = c->in + pos;
		nl = memchr(ln, '\n', c->inlen - pos);
		if (nl == NULL)
			break;
		len = nl - ln + 1;
		pos += len;
		if (len > MAX_LINE) {
			s_put(c, "500 5.5.0 Error: line too long\r\n");
			c->closing = 1;
		} else
			s_cmd(c, ln, len);
		/* Anything pipelined after STARTTLS or QUIT is dropped. */
		if (c->stls || c->closing) {
			pos = c->inlen;
			break;
		}
	}
	c->inlen -= pos;
	memmove(c->in, c->in + pos, c->inlen);
	if (c->inlen >= MAX_LINE) {
		s_put(c, "500 5.5.0 Error: line too long\r\n");
		c->closing = 1;
		c->inlen = 0;
	}
	if (c->len)
		return s_flush(c);
	return 0;
}

static void
s_read(struct sconn *c)
{
	uint32_t gen = c->gen;
	if (c->stls) /* 220 to STARTTLS not yet out: read nothing more in
			plaintext */
		return;
	for (;;) {
		int n, room = INBUF - c->inlen;
		if (c->tls) {
			n = SSL_read(c->ssl, c->in + c->inlen, room);
			if (n <= 0) {
				int e = SSL_get_error(c->ssl, n);
				if (e == SSL_ERROR_WANT_READ)
					return;
				if (e == SSL_ERROR_WANT_WRITE) {
					s_ep_set(c, EPOLLIN | EPOLLOUT);
					return;
				}
				s_close(c);
				return;
			}
		} else {
			n = recv(c->fd, c->in + c->inlen, room, 0);
			if (n < 0) {
				if (errno != EAGAIN && errno != EINTR)
					s_close(c);
				return;
			}
			if (n == 0) {
				s_close(c);
				return;
			}
		}
		c->inlen += n;
		c->deadline = now() + O.step_to;
		if (s_process(c) < 0 || c->gen != gen)
			return;
		if (n < room && (!c->tls || !SSL_has_pending(c->ssl)))
			return;
	}
}

static void
s_hs_step(struct sconn *c)
{
	int r = SSL_do_handshake(c->ssl);
	if (r != 1) {
		int e = SSL_get_error(c->ssl, r);
		if (e == SSL_ERROR_WANT_READ)
			s_ep_set(c, EPOLLIN);
		else if (e == SSL_ERROR_WANT_WRITE)
			s_ep_set(c, EPOLLOUT);
		else {
			atomic_fetch_add(&s_tls_err, 1);
			s_close(c);
		}
		return;
	}
	atomic_fetch_add(&s_hs, 1);
	if (SSL_session_reused(c->ssl))
		atomic_fetch_add(&s_res, 1);
	c->tls = 1;
	c->state = SS_CMD;
	c->deadline = now() + O.step_to;
	if (O.mode == M_SMTPS)
		s_put(c, "220 tlsload-sink ESMTP\r\n");
	if (c->len && s_flush(c) < 0)
		return;
	s_read(c);
}

static void
s_accept(struct thr *t)
{
	struct sconn *cs = t->slots, *c;
	int fd, one = 1;

	for (;;) {
		fd = accept4(t->listen_fd, NULL, NULL,
		    SOCK_NONBLOCK | SOCK_CLOEXEC);
		/* EAGAIN, or a transient error (EMFILE): the next event. */
		if (fd < 0)
			return;
		if (t->nfree == 0) {
			atomic_fetch_add(&s_refused, 1);
			close(fd);
			continue;
		}
		/* A sink that waits for nobody: no Nagle on its replies,
		 * unless --nagle asks to see what Nagle costs. */
		if (!O.nagle)
			setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one,
			    sizeof(one));
		atomic_fetch_add(&s_conns, 1);
		c = &cs[t->free_idx[--t->nfree]];
		c->fd = fd;
		c->deadline = now() + O.step_to;
		if (O.mode == M_SMTPS) {
			c->ssl = SSL_new(g_ctx);
			if (c->ssl == NULL) {
				s_close(c);
				continue;
			}
			SSL_set_fd(c->ssl, fd);
			SSL_set_accept_state(c->ssl);
			c->state = SS_HS;
			s_hs_step(c);
		} else {
			c->state = SS_CMD;
			s_put(c, "220 tlsload-sink ESMTP\r\n");
			s_flush(c);
		}
	}
}

static void *
sink_thread(void *arg)
{
	struct thr *t = arg;
	struct sconn *cs = t->slots, *c;
	struct epoll_event evs[256];
	double next_scan, tn;
	uint64_t d;
	int i, k;

	next_scan = now() + 1;
	while (!g_sig && now() < g_end_by) {
		k = epoll_wait(t->epfd, evs, 256, 100);
		for (i = 0; i < k; i++) {
			d = evs[i].data.u64;
			if (d == UINT64_MAX) {
				s_accept(t);
				continue;
			}
			c = &cs[(uint32_t)d];
			if ((uint32_t)(d >> 32) != c->gen ||
			    c->state == SS_FREE)
				continue;
			if (c->state == SS_HS) {
				s_hs_step(c);
				continue;
			}
			if ((evs[i].events & EPOLLOUT) && c->len &&
			    s_flush(c) < 0)
				continue;
			if (evs[i].events &
			    (EPOLLIN | EPOLLERR | EPOLLHUP | EPOLLOUT))
				s_read(c);
			/* Nothing left to write: stop polling for it. */
			if ((uint32_t)(d >> 32) == c->gen &&
			    c->state != SS_FREE && c->state != SS_HS &&
			    !c->len && (c->ev & EPOLLOUT) &&
			    !(c->ssl && SSL_want_write(c->ssl)))
				s_ep_set(c, EPOLLIN);
		}
		tn = now();
		if (tn >= next_scan) {
			next_scan = tn + 1;
			for (i = 0; i < t->nslots; i++)
				if (cs[i].state != SS_FREE &&
				    tn > cs[i].deadline)
					s_close(&cs[i]);
		}
	}
	for (i = 0; i < t->nslots; i++)
		if (cs[i].state != SS_FREE)
			s_close(&cs[i]);
	return NULL;
}

static void
sink_tls_ctx(void)
{
	EVP_PKEY *pk = NULL;
	X509_NAME *nm;
	X509 *x;

	g_ctx = SSL_CTX_new(TLS_server_method());
	if (g_ctx == NULL)
		die(3, "SSL_CTX_new failed");
	SSL_CTX_set_read_ahead(g_ctx, 1);
	SSL_CTX_set_min_proto_version(g_ctx, TLS1_2_VERSION);
	SSL_CTX_set_options(g_ctx, SSL_OP_IGNORE_UNEXPECTED_EOF);
	SSL_CTX_set_mode(g_ctx,
	    SSL_MODE_ENABLE_PARTIAL_WRITE |
		SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
	if (O.cert != NULL || O.key != NULL) {
		if (O.cert == NULL || O.key == NULL)
			die(2, "--cert and --key go together");
		if (SSL_CTX_use_certificate_chain_file(g_ctx, O.cert) != 1 ||
		    SSL_CTX_use_PrivateKey_file(
			g_ctx, O.key, SSL_FILETYPE_PEM) != 1 ||
		    SSL_CTX_check_private_key(g_ctx) != 1)
			die(3, "cannot load --cert/--key");
		return;
	}
	if (strcmp(O.key_type, "rsa2048") == 0)
		pk = EVP_RSA_gen(2048);
	else if (strcmp(O.key_type, "p256") == 0)
		pk = EVP_EC_gen("P-256");
	else
		die(2, "--key-type: rsa2048 or p256");
	x = X509_new();
	if (pk == NULL || x == NULL)
		die(3, "key generation failed");
	X509_set_version(x, 2);
	ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
	X509_gmtime_adj(X509_getm_notBefore(x), -3600);
	X509_gmtime_adj(X509_getm_notAfter(x), 30L * 86400);
	X509_set_pubkey(x, pk);
	nm = X509_get_subject_name(x);
	X509_NAME_add_entry_by_txt(nm, "CN", MBSTRING_ASC,
	    (const unsigned char *)"tlsload-sink.localdomain", -1, -1, 0);
	X509_set_issuer_name(x, nm);
	if (!X509_sign(x, pk, EVP_sha256()) ||
	    SSL_CTX_use_certificate(g_ctx, x) != 1 ||
	    SSL_CTX_use_PrivateKey(g_ctx, pk) != 1)
		die(3, "self-signed certificate failed");
	X509_free(x);
	EVP_PKEY_free(pk);
}

static int
run_sink(void)
{
	struct sockaddr_in sa;
	struct epoll_event e;
	struct sconn *cs;
	struct thr *t;
	double cpu0, secs, cpu;
	long m;
	int i, j, per, fd, one = 1;

	if (O.mode != M_NONE)
		sink_tls_ctx();
	per = (int)(O.max_conns / O.threads) + 1;
	for (i = 0; i < O.threads; i++) {
		t = &g_thr[i];
		t->id = i;
		t->nslots = per;
		t->epfd = epoll_create1(EPOLL_CLOEXEC);
		cs = calloc(per, sizeof(*cs));
		t->free_idx = calloc(per, sizeof(int));
		if (t->epfd < 0 || cs == NULL || t->free_idx == NULL)
			die(3, "setup failed");
		for (j = 0; j < per; j++) {
			cs[j].t = t;
			cs[j].idx = j;
			cs[j].fd = -1;
			t->free_idx[t->nfree++] = per - 1 - j;
		}
		t->slots = cs;
		fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC,
		    0);
		if (fd < 0)
			die(3, "socket: %s", strerror(errno));
		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
		/* One listener per thread; the kernel spreads connections. */
		if (O.threads > 1)
			setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one,
			    sizeof(one));
		memset(&sa, 0, sizeof(sa));
		sa.sin_family = AF_INET;
		sa.sin_port = htons(O.port);
		sa.sin_addr = O.host;
		if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
		    listen(fd, 4096) < 0)
			die(3, "cannot listen on %s:%d: %s", O.host_s, O.port,
			    strerror(errno));
		t->listen_fd = fd;
		memset(&e, 0, sizeof(e));
		e.events = EPOLLIN;
		e.data.u64 = UINT64_MAX;
		if (epoll_ctl(t->epfd, EPOLL_CTL_ADD, fd, &e) < 0)
			die(3, "epoll_ctl: %s", strerror(errno));
	}
	fprintf(stderr, "tlsload sink: listening on %s:%d (%s, %d thread%s)\n",
	    O.host_s, O.port, mode_name[O.mode], O.threads,
	    O.threads > 1 ? "s" : "");
	g_t0 = now();
	g_end_by = g_t0 + O.run_to;
	/* Key generation is not the sink's serving cost. */
	cpu0 = cpu_secs();
	for (i = 1; i < O.threads; i++)
		if (pthread_create(&g_thr[i].tid, NULL, sink_thread,
		    &g_thr[i]) != 0)
			die(3, "pthread_create failed");
	sink_thread(&g_thr[0]);
	for (i = 1; i < O.threads; i++)
		pthread_join(g_thr[i].tid, NULL);
	secs = now() - g_t0;
	cpu = cpu_secs() - cpu0;
	m = atomic_load(&s_msgs);
	printf("{\"tool\":\"tlsload-sink\",\"mode\":\"%s\",\"port\":%d,"
	       "\"threads\":%d,\"key\":",
	    mode_name[O.mode], O.port, O.threads);
	jstr(O.cert ? "file" : O.key_type);
	printf(",\"connections\":%ld,\"refused\":%ld,\"tls_handshakes\":%ld,"
	       "\"tls_resumed\":%ld,\"tls_failed\":%ld,"
	       "\"messages\":%ld,\"bytes\":%lld,\"secs\":%.3f,\"sink_cpu_s\":%."
	       "3f,\"cpu_ms_per_msg\":%.4f}\n",
	    atomic_load(&s_conns), atomic_load(&s_refused), atomic_load(&s_hs),
	    atomic_load(&s_res), atomic_load(&s_tls_err), m,
	    (long long)atomic_load(&s_bytes), secs, cpu,
	    m ? 1000.0 * cpu / m : 0.0);
	fflush(stdout);
	return 0;
}

/* ================================================================ main */

static void
usage(FILE *f)
{
	fputs(
	    "usage: tlsload -p PORT [options]         load generator\n"
	    "       tlsload --sink -p PORT [options]  discarding SMTP sink\n"
	    "  -p, --port PORT       server port (required)\n"
	    "  -H, --host ADDR       IPv4 address (default 127.0.0.1)\n"
	    "  -t, --tls MODE        none | starttls (EHLO, STARTTLS, EHLO)\n"
	    "                        | smtps (implicit TLS); default none\n"
	    "  -n, --messages N      messages in total (default 1000)\n"
	    "  -c, --concurrency C   concurrent sessions (default 10)\n"
	    "  -s, --size BYTES      body bytes per message, plus about 250\n"
	    "                        bytes of headers (default 4096)\n"
	    "  -m, --per-conn K      messages per connection, RSET between\n"
	    "                        them; 0 = unlimited (default 1)\n"
	    "      --no-rset         no RSET between messages\n"
	    "  -a, --auth USER:PASS  AUTH PLAIN after (STARTTLS and) EHLO\n"
	    "  -P, --pipelining      pipeline [RSET] MAIL RCPT DATA when the\n"
	    "                        server advertises PIPELINING\n"
	    "  -R, --resume          TLS session resumption (tickets, one\n"
	    "                        session kept per thread); without it,\n"
	    "                        the client asks for no tickets\n"
	    "  -f, --from ADDR       envelope sender (sender@example.com)\n"
	    "  -r, --rcpt ADDR       recipient suffix: message i goes to\n"
	    "                        <i>ADDR (default rcpt@example.net)\n"
	    "  -j, --threads T       event-loop threads, at most one per CPU\n"
	    "                        (default 1)\n"
	    "  -T, --step-timeout S  each step's timeout: connect, handshake,\n"
	    "                        each reply (default 30)\n"
	    "  -X, --run-timeout S   whole run (default 600); also the sink's\n"
	    "  -e, --max-errors E    stop after E errors (default 1000)\n"
	    "      --phases          also print the phase table on stderr\n"
	    "  -S, --sink            be the sink: plain, starttls or smtps as\n"
	    "                        -t says, any AUTH accepted; runs until\n"
	    "                        SIGTERM, SIGINT or the run timeout, then\n"
	    "                        prints one JSON line\n"
	    "      --cert F --key F  sink certificate and key (PEM); default:\n"
	    "                        a self-signed one generated at start\n"
	    "      --key-type TYPE   generated key: rsa2048 (default) | p256\n"
	    "      --nagle           sink: leave Nagle on (no TCP_NODELAY),\n"
	    "                        as a server that does not set it\n"
	    "      --max-conns M     sink connection limit (default 10000)\n"
	    "  -h, --help            this text\n"
	    "\n"
	    "The client prints one JSON line: sent (messages with a final\n"
	    "reply), accepted (250 after the data), rejected, errors {reply\n"
	    "code or connect|tls|timeout|eof|protocol|io: count},\n"
	    "connections, tls_handshakes, tls_resumed, secs, msgs_per_s\n"
	    "(accepted/secs), latency_ms p50/p90/p99/max (MAIL FROM to the\n"
	    "250 after the data, accepted messages), phases_ms {phase: n,\n"
	    "p50, p99, max}, client_cpu_s, cpu_ms_per_msg, aborted.\n"
	    "Phases, each from its command (or event) to its reply:\n"
	    "connect, greeting (connected, or TLS up with smtps, to the\n"
	    "220), ehlo (in plaintext), starttls, tls_handshake,\n"
	    "ehlo_after_tls (the first EHLO inside TLS), auth, mail_rcpt\n"
	    "(MAIL FROM to the reply to RCPT TO), data (DATA to the 250\n"
	    "after the dot), quit (QUIT to 221). A session that fails\n"
	    "before its message got a final reply puts the message back;\n"
	    "it is retried on a new connection.\n"
	    "Exit: 0 all N accepted, 1 otherwise (rejections, errors,\n"
	    "timeout, signal), 2 usage, 3 setup error.\n",
	    f);
}

static long
num(const char *s, const char *what, long lo, long hi)
{
	char *e;
	long v;

	errno = 0;
	v = strtol(s, &e, 10);
	if (errno || *e || e == s || v < lo || v > hi)
		die(2, "%s: want an integer in %ld..%ld, got '%s'", what, lo,
		    hi, s);
	return v;
}

static double
fnum(const char *s, const char *what)
{
	char *e;
	double v;

	v = strtod(s, &e);
	if (*e || e == s || !(v > 0) || v > 86400 * 7)
		die(2, "%s: want seconds > 0, got '%s'", what, s);
	return v;
}

static void
on_signal(int sig)
{
	(void)sig;
	g_sig = 1;
}

int
main(int argc, char **argv)
{
	enum {
		OPT_CERT = 1000,
		OPT_KEY,
		OPT_KEYTYPE,
		OPT_NORSET,
		OPT_MAXCONNS,
		OPT_PHASES,
		OPT_NAGLE
	};
	static const struct option lo[] = {
		{ "port", 1, 0, 'p' }, { "host", 1, 0, 'H' },
		{ "tls", 1, 0, 't' }, { "messages", 1, 0, 'n' },
		{ "concurrency", 1, 0, 'c' }, { "size", 1, 0, 's' },
		{ "per-conn", 1, 0, 'm' }, { "auth", 1, 0, 'a' },
		{ "pipelining", 0, 0, 'P' }, { "resume", 0, 0, 'R' },
		{ "from", 1, 0, 'f' }, { "rcpt", 1, 0, 'r' },
		{ "threads", 1, 0, 'j' }, { "step-timeout", 1, 0, 'T' },
		{ "run-timeout", 1, 0, 'X' }, { "max-errors", 1, 0, 'e' },
		{ "sink", 0, 0, 'S' }, { "help", 0, 0, 'h' },
		{ "cert", 1, 0, OPT_CERT }, { "key", 1, 0, OPT_KEY },
		{ "key-type", 1, 0, OPT_KEYTYPE },
		{ "no-rset", 0, 0, OPT_NORSET },
		{ "max-conns", 1, 0, OPT_MAXCONNS },
		{ "phases", 0, 0, OPT_PHASES }, { "nagle", 0, 0, OPT_NAGLE },
		{ 0, 0, 0, 0 }
	};
	struct sigaction sa;
	struct rlimit rl;
	long ncpu, need;
	int ch;

	ncpu = sysconf(_SC_NPROCESSORS_ONLN);
	if (ncpu < 1)
		ncpu = 1;
	if (ncpu > MAX_THREADS)
		ncpu = MAX_THREADS;
	while ((ch = getopt_long(argc, argv, "p:H:t:n:c:s:m:a:PRf:r:j:T:X:e:Sh",
		    lo, NULL)) != -1) {
		switch (ch) {
		case 'p':
			O.port = (int)num(optarg, "--port", 1, 65535);
			break;
		case 'H':
			O.host_s = optarg;
			break;
		case 't':
			if (strcmp(optarg, "none") == 0)
				O.mode = M_NONE;
			else if (strcmp(optarg, "starttls") == 0)
				O.mode = M_STARTTLS;
			else if (strcmp(optarg, "smtps") == 0)
				O.mode = M_SMTPS;
			else
				die(2, "--tls: none, starttls or smtps");
			break;
		case 'n':
			O.n = num(optarg, "--messages", 1, MAX_N);
			break;
		case 'c':
			O.c = (int)num(optarg, "--concurrency", 1, MAX_CONC);
			break;
		case 's':
			O.size = num(optarg, "--size", 0, MAX_SIZE);
			break;
		case 'm':
			O.per_conn = num(optarg, "--per-conn", 0, MAX_N);
			break;
		case 'a':
			O.auth = optarg;
			break;
		case 'P':
			O.pipelining = 1;
			break;
		case 'R':
			O.resume = 1;
			break;
		case 'f':
			O.from = optarg;
			break;
		case 'r':
			O.rcpt = optarg;
			break;
		case 'j':
			O.threads = (int)num(optarg, "--threads", 1, ncpu);
			break;
		case 'T':
			O.step_to = fnum(optarg, "--step-timeout");
			break;
		case 'X':
			O.run_to = fnum(optarg, "--run-timeout");
			break;
		case 'e':
			O.max_errors = num(optarg, "--max-errors", 0, 1L << 40);
			break;
		case 'S':
			O.sink = 1;
			break;
		case OPT_CERT:
			O.cert = optarg;
			break;
		case OPT_KEY:
			O.key = optarg;
			break;
		case OPT_KEYTYPE:
			O.key_type = optarg;
			break;
		case OPT_NORSET:
			O.no_rset = 1;
			break;
		case OPT_NAGLE:
			O.nagle = 1;
			break;
		case OPT_PHASES:
			O.phases = 1;
			break;
		case OPT_MAXCONNS:
			O.max_conns = num(optarg, "--max-conns", 1, 1000000);
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind < argc)
		die(2, "unexpected argument '%s' (see -h)", argv[optind]);
	if (!O.port)
		die(2, "--port is required (see -h)");
	if (inet_pton(AF_INET, O.host_s, &O.host) != 1)
		die(2, "--host: an IPv4 address, got '%s'", O.host_s);
	if (strlen(O.from) > MAX_ADDR || strlen(O.rcpt) > MAX_ADDR ||
	    strpbrk(O.from, "\r\n<>") || strpbrk(O.rcpt, "\r\n<>"))
		die(2,
		    "--from/--rcpt: at most %d characters, no CR, LF, < or >",
		    MAX_ADDR);
	if (O.threads > O.c && !O.sink)
		O.threads = O.c;

	/* Descriptors: one per session (client) or up to --max-conns
	 * (sink), plus slack. */
	need = (O.sink ? O.max_conns : O.c) + 64;
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < (rlim_t)need) {
		rl.rlim_cur =
		    rl.rlim_max < (rlim_t)need ? rl.rlim_max : (rlim_t)need;
		setrlimit(RLIMIT_NOFILE, &rl);
		if (rl.rlim_cur < (rlim_t)need)
			die(2, "need %ld file descriptors, limit is %ld", need,
			    (long)rl.rlim_cur);
	}
	signal(SIGPIPE, SIG_IGN);
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	return O.sink ? run_sink() : run_client();
}
