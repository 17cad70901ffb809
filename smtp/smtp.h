/*
 * smtp.h - private interfaces of the outbound delivery daemon smtp(8).
 *
 * smtp serves delivery requests from qmgr on private/smtp, one connection
 * at a time and synchronously (concurrency comes from running several smtp
 * processes): it resolves the next hop, speaks SMTP to it (STARTTLS when
 * offered), and replies with one result per recipient. It never writes the
 * queue. Declarations are grouped by the file that implements them; the
 * request/reply protocol and the policies are documented in smtp(8).
 */
#ifndef PETREL_SMTP_H
#define PETREL_SMTP_H

#include <sys/socket.h>
#include <sys/types.h>

#include <netinet/in.h>

#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>
#include <openssl/ssl.h>

#include "bclass.h"
#include "cfg.h"
#include "daemon.h"
#include "dkimkey.h"
#include "mailproto.h"
#include "nexthop.h"
#include "qid.h"
#include "qstore.h"
#include "vbuf.h"

#define SMTP_LINE_MAX		2048	/* one reply line, bytes */
#define SMTP_REPLY_LINES_MAX	100	/* lines in one multi-line reply */
#define SMTP_TEXT_MAX		500	/* reply text kept for log and qmgr */
#define SMTP_DSN_SIZE		16	/* "X.YYY.ZZZ" and its NUL */
#define SMTP_HOST_MAX		255	/* RFC 1035 name length */
#define SMTP_RELAY_SIZE		(SMTP_HOST_MAX + 96)
#define SMTP_MX_MAX		10	/* MX hosts considered */
#define SMTP_TARGET_MAX		10	/* addresses tried per delivery */
#define SMTP_ADDR_PER_HOST	4	/* addresses tried per host */
#define SMTP_CACHE_IDLE_MS	2000	/* cached session lifetime when idle */
#define SMTP_DKIM_KEYS_MAX	16	/* parsed DKIM keys kept per process */
#define SMTP_CACHE_USES_MAX	1000	/* transactions per cached session */
#define SMTP_REQ_IDLE_MS	60000	/* idle qmgr connection is closed */
#define SMTP_REQ_CAP		(1024 * 1024)	/* request bytes */
#define SMTP_PORT_DEFAULT	25

enum smtp_rcpt_status {
	SMTP_RCPT_PENDING = 0,
	SMTP_RCPT_SENT,
	SMTP_RCPT_DEFERRED,
	SMTP_RCPT_BOUNCED,
};

struct smtp_rcpt {
	uint64_t		 index;
	const char		*addr;		/* points into the request */
	int			 accepted;	/* 2xx to RCPT, undecided */
	int			 dsn_passed;	/* sent to a next hop that */
						/* offered DSN (RFC 3461) */
	enum smtp_rcpt_status	 status;
	char			 dsn[SMTP_DSN_SIZE];
	char			 reply[SMTP_TEXT_MAX + 1];
	enum bclass		 cls;		/* deferred, bounced: why */
};

/*
 * What qmgr says of a request's source address: the one to leave from
 * (MAIL_ATTR_SOURCE: its shaping limits count the connection there),
 * and those not to leave from (MAIL_ATTR_AVOID: set aside for the next
 * hop's provider, or at their warmup cap; qmgr_source.c), as text.
 */
struct smtp_avoid {
	const char		*want;		/* or NULL: in turn */
	char			*buf;		/* the attribute, split */
	const char		*addr[CFG_POOL_ADDRS_MAX];
	size_t			 n;
};

/* One delivery request, as received from qmgr (strings point into it). */
struct smtp_req {
	char			 qid[QID_SIZE];
	const char		*nexthop;	/* lib/nexthop's key */
	const char		*sender;
	int64_t			 arrival_us;	/* epoch microseconds */
	int64_t			 qmgr_ms;
	struct smtp_rcpt	*rcpts;
	size_t			 nrcpts;
	/*
	 * From the destination's shaping entry: its TLS level (-1: smtp.tls)
	 * and how many transactions a session to it may carry (0: no limit
	 * but SMTP_CACHE_USES_MAX).
	 */
	int			 dest_tls_level;
	unsigned		 conn_uses;
	/*
	 * The message's source address pool ("" for "default") and its
	 * addresses in the configuration (NULL: none, the kernel picks).
	 */
	const char		*pool;
	const struct cfg_pool	*src;
	struct smtp_avoid	 avoid;

	/* Filled in while delivering. */
	int64_t			 t_start;	/* epoch us: request received */
	int64_t			 t_setup;	/* epoch us: session ready */
	char			 relay[SMTP_RELAY_SIZE];	/* or "none" */
	char			 tls[32];	/* version, or "" */
	char			 cipher[64];	/* TLS cipher, or "" */
	int			 verified;	/* peer chain and name verified */
	enum cfg_smtp_tls	 tls_level;	/* of this delivery */
	struct qstore_file	*qf;
	char			*dkim_sig;	/* "DKIM-Signature: ...\r\n" */
	size_t			 dkim_sig_len;	/* 0: send unsigned */
	char			 dkim[SMTP_HOST_MAX + 80];	/* reply attr */
	char			 mx[MAIL_MX_LIST_MAX + 1]; /* reply attr, or "" */
	char			 source[64];	/* reply attr: address left */
						/* from, or "" */
	char			 refused[64];	/* reply attr: an address */
						/* refused for its */
						/* reputation, or "" */
	char			 refusal[SMTP_TEXT_MAX + 1];	/* its reply */
	int			 site_fail;	/* no session could be set up */
};

/* A session-level failure that decides every undecided recipient. */
struct smtp_fail {
	enum smtp_rcpt_status	 status;	/* DEFERRED or BOUNCED */
	char			 dsn[SMTP_DSN_SIZE];
	char			 text[SMTP_TEXT_MAX + 1];
	int			 next_host;	/* another host may do better */
};

/* One address to try: the host name it came from, address and port. */
struct smtp_target {
	char			 host[SMTP_HOST_MAX + 1];
	char			 ip[64];
	struct sockaddr_storage	 ss;
	socklen_t		 sslen;
	uint16_t		 port;
	char			 hop[NEXTHOP_KEY_MAX + 1]; /* failover hop, or "" */
};

/* A reply; text is "CODE text..." with the lines joined by spaces. */
struct smtp_reply {
	int			 code;		/* 200..599 */
	char			 dsn[SMTP_DSN_SIZE];	/* "" when none */
	char			 text[SMTP_TEXT_MAX + 1];
};

#define SMTP_FEAT_ESMTP		0x01
#define SMTP_FEAT_PIPELINING	0x02
#define SMTP_FEAT_SIZE		0x04
#define SMTP_FEAT_8BITMIME	0x08
#define SMTP_FEAT_STARTTLS	0x10
#define SMTP_FEAT_DSN		0x20
#define SMTP_FEAT_SMTPUTF8	0x40

/* An SMTP client session (blocking I/O with deadlines on a nonblocking fd). */
struct smtp_sess {
	int			 fd;
	SSL			*ssl;
	char			 host[SMTP_HOST_MAX + 1];
	char			 ip[64];
	uint16_t		 port;
	char			 relay[SMTP_RELAY_SIZE]; /* host[ip]:port */
	char			 key[NEXTHOP_KEY_MAX + 1];	/* next hop */
	char			 hop[NEXTHOP_KEY_MAX + 1];	/* failover hop */
	char			 pool[CFG_POOL_NAME_MAX + 1];	/* "": default */
	char			 source[64];	/* address bound, or "" */
	char			 tls[32];	/* TLS version, or "" */
	char			 cipher[64];	/* TLS cipher, or "" */
	int			 verified;	/* chain and host name verified */
	enum cfg_smtp_tls	 tls_level;	/* the session was set up for */
	unsigned		 features;
	uint64_t		 size_limit;	/* SIZE n; 0 = none given */
	int			 broken;	/* no further commands */
	int			 uses;		/* transactions done */
	int64_t			 idle_since;	/* monotonic ms */
	char			 rbuf[4096];
	size_t			 rpos, rlen;
	char			 line[SMTP_LINE_MAX + 1];
	struct vbuf		 lines;		/* last reply's texts, '\n' */
};

/* smtp_dns.c: next-hop resolution behind a replaceable resolver. */
enum smtp_dns_status {
	SMTP_DNS_OK = 0,
	SMTP_DNS_NOTFOUND,	/* NXDOMAIN */
	SMTP_DNS_NODATA,	/* the name exists, no records of that type */
	SMTP_DNS_TEMPFAIL,	/* try again later */
};

struct smtp_mx {
	char		 host[SMTP_HOST_MAX + 1];	/* "" for null MX */
	unsigned	 pref;
};

/*
 * The resolver: mx() fills up to max records (unsorted) and *n; addr()
 * resolves a host name to up to max addresses for port. Both return an
 * smtp_dns_status and, unless OK, a reason in why. Tests replace them with
 * smtp_dns_set_ops(); NULL restores the system resolver (libresolv and
 * getaddrinfo).
 */
struct smtp_dns_ops {
	int	(*mx)(const char *domain, struct smtp_mx *, size_t max,
		    size_t *n, struct vbuf *why);
	int	(*addr)(const char *host, uint16_t port, struct smtp_target *,
		    size_t max, size_t *n, struct vbuf *why);
};

void	smtp_dns_set_ops(const struct smtp_dns_ops *);
/* smtp_dnsanswer.c: answers, parsed (pure, for fuzz_dns_answer). */
#define SMTP_DNS_ANSWER_MAX	65536	/* largest answer read */
/*
 * The MX records of one
 * (an smtp_dns_status, why set unless OK), and the A or AAAA records
 * appended to t as targets (0, or -1 if malformed).
 */
int	smtp_dns_parse_mx(const unsigned char *ans, size_t len,
	    struct smtp_mx *, size_t max, size_t *n, struct vbuf *why);
int	smtp_dns_parse_addrs(const unsigned char *ans, size_t len, int type,
	    const char *host, uint16_t port, struct smtp_target *t,
	    size_t max, size_t *n);
/*
 * Resolves next hop nh (MX unless nh->no_mx, else the address records,
 * RFC 5321 5.1) into targets in the order to try them. Returns 0 with
 * *n > 0, or -1 with fail filled in (4.4.3 temporary, 5.4.4 no such
 * domain, 5.1.10 null MX).
 */
int	smtp_dns_nexthop(const struct cfg *, const struct nexthop *nh,
	    struct smtp_target *, size_t max, size_t *n, struct smtp_fail *);

/* smtp_connect.c: connections, TLS and raw I/O with deadlines. */
/* The client context: TLS 1.2 or newer, the CA store for verify. */
void		 smtp_tls_init(const struct cfg *);
/*
 * Connects within timeout_ms from the next address of pool not in avoid
 * (in turn, of the target's family; a loopback target only from a
 * loopback address; NULL or none of the family: the kernel picks). NULL
 * with fail filled in (4.4.1).
 */
struct smtp_sess *smtp_sess_connect(const struct smtp_target *,
		    const struct cfg_pool *pool, const struct smtp_avoid *avoid,
		    int64_t timeout_ms, struct smtp_fail *);
void		 smtp_sess_free(struct smtp_sess *);
/* Writes all of buf before the deadline (monotonic ms); 0 or -1, why. */
int		 smtp_sess_write(struct smtp_sess *, const void *, size_t,
		    int64_t deadline, struct vbuf *why);
/*
 * Reads some bytes into the session's read buffer; returns 1 on data,
 * 0 on EOF, -1 on error or timeout (why: "timeout" marks a timeout).
 */
int		 smtp_sess_fill(struct smtp_sess *, int64_t deadline,
		    struct vbuf *why);
/*
 * TLS client handshake; 0 or -1 with a reason. With verify, the chain
 * must verify against the CA store and the certificate must name the
 * session's host; otherwise the result is only recorded (s->verified).
 */
int		 smtp_sess_starttls(struct smtp_sess *, int verify,
		    int64_t deadline, struct vbuf *why);
/* Nonzero when a cached session still looks usable (no EOF, no data). */
int		 smtp_sess_alive(struct smtp_sess *);
int64_t		 smtp_now_ms(void);	/* monotonic */
int64_t		 smtp_now_us(void);	/* epoch microseconds */

/* smtp_source.c: source addresses, as qmgr chose, less those it avoids. */
/*
 * The address of pool (of cfg) that avoid->want names when it is usable
 * for t (its family, a loopback source for a loopback target) and not in
 * avoid (refused earlier in this request); else the next usable one in
 * turn, not in avoid unless every usable one is.
 * Returns 1 with the address in ss, len and (text) src; 0 when there is
 * none (no pool, none usable: the kernel picks), src "".
 */
int	smtp_source_pick(const struct cfg *, const struct cfg_pool *pool,
	    const struct smtp_target *t, const struct smtp_avoid *avoid,
	    struct sockaddr_storage *ss, socklen_t *len, char *src,
	    size_t srcsize);
/* 1 when addr (text) is in avoid. */
int	smtp_source_avoided(const struct smtp_avoid *avoid, const char *addr);
/* 1 when every address of pool is in avoid (0 for no pool). */
int	smtp_source_pool_avoided(const struct cfg_pool *pool,
	    const struct smtp_avoid *avoid);

/* smtp_proto.c: the SMTP dialogue. */
/*
 * Greeting, EHLO (HELO on 5xx), STARTTLS when offered (required from
 * encrypt up: level is the delivery's TLS security level), EHLO again.
 * Returns 0 when ready for MAIL, else -1 with fail filled in.
 */
int	smtp_proto_setup(struct smtp_sess *, const struct cfg *,
	    enum cfg_smtp_tls level, struct smtp_fail *);
/*
 * One mail transaction for req on a ready session: decides every
 * recipient of req. Returns 0 when the session may be reused, 1 when it
 * must be closed, and -2 when it was a reused session that turned out
 * dead before anything was decided (redial and try again).
 */
int	smtp_proto_deliver(struct smtp_sess *, const struct cfg *,
	    struct smtp_req *, int reused);
/* Sends QUIT (briefly waiting for the reply) and frees the session. */
void	smtp_proto_quit(struct smtp_sess *);
/* Applies a reply or a failure to every undecided recipient. */
void	smtp_rcpt_decide(struct smtp_rcpt *, enum smtp_rcpt_status,
	    const char *dsn, const char *text);
void	smtp_fail_set(struct smtp_fail *, enum smtp_rcpt_status,
	    const char *dsn, int next_host, const char *fmt, ...)
	    __attribute__((format(printf, 5, 6)));
/* Reads one reply (bounded); 0, or -1 with fail filled in for phase. */
int	smtp_reply_read(struct smtp_sess *, struct smtp_reply *,
	    int64_t timeout_ms, const char *phase, struct smtp_fail *);

/* smtp_reply.c: replies and EHLO keywords, parsed (fuzz_smtp_reply). */
/* Parses "X.Y.Z" at the start of text; returns its length or 0. */
size_t	smtp_dsn_parse(const char *text, char *dsn, size_t dsnsize);
/*
 * Adds reply line number nlines (0 first; CR LF removed) to r, and its
 * text to lines. Returns 1 when more lines follow ("DDD-"), 0 when the
 * reply is whole, -1 when the line is not a reply line (or changes the
 * code).
 */
int	smtp_reply_line(struct smtp_reply *, struct vbuf *lines,
	    const char *line, int nlines);
/* EHLO's keywords (lines as smtp_reply_line collected them). */
void	smtp_features_parse(const char *lines, unsigned *features,
	    uint64_t *size_limit);

/*
 * smtp_dkim.c: DKIM signing per transaction (libopendkim hashes, a key
 * parsed once per process signs).
 */
/* Once per process; on failure messages go out unsigned (logged). */
void	smtp_dkim_init(const struct cfg *);
/*
 * Signs req's open queue file with the key active now for its From:
 * domain: sets req->dkim_sig (the header to send before the message;
 * NULL when unsigned) and req->dkim ("d=DOMAIN s=SELECTOR" or
 * "unsigned"), and logs "QUEUEID: dkim=...". Never fails the delivery.
 */
void	smtp_dkim_sign(const struct cfg *, struct smtp_req *);
/* Frees req->dkim_sig. */
void	smtp_dkim_free(struct smtp_req *);
/*
 * The parsed private key of sel (domain, selector and alg from
 * dkimkey_signing_select; pem unused), from this process's cache, or read
 * and parsed now if the cache has none or the key file has changed since
 * (dkimkey_key_stat). Borrowed: valid until the next call. NULL with why
 * if the file cannot be read or does not hold a key of sel->alg.
 */
EVP_PKEY *smtp_dkim_key(const struct cfg *, const struct dkimkey_signing *sel,
	    struct vbuf *why);
/* How many keys this process has parsed (tests). */
unsigned long smtp_dkim_key_loads(void);
/* Forgets every parsed key (tests). */
void	smtp_dkim_key_flush(void);

/* smtp_deliver.c: requests from qmgr. */
/*
 * Loads the bounce classification rules (bounce.classes) once: fatal when
 * a file the operator named is missing or broken; a missing default file
 * is logged once and leaves classification to the status codes.
 */
void	smtp_init(const struct cfg *);
void	smtp_service(const struct daemon_listener *);
int64_t	smtp_loop(void);
int	smtp_busy(void);

#endif
