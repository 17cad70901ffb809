/*
 * cfg.h - the configuration: one YAML file parsed into one read-only struct.
 *
 * Every program calls cfg_load() at start. The schema (key, type, default,
 * bounds) is a table in cfg.c, the only place a default appears; every key
 * is documented in petrel.yaml(5), and a unit test checks the two agree.
 * An unknown key, a wrong type or an out-of-range value fails the load with
 * "FILE:LINE: KEY: reason".
 */
#ifndef PETREL_CFG_H
#define PETREL_CFG_H

#include <stddef.h>
#include <stdint.h>

#include "cidr.h"
#include "nexthop.h"
#include "vbuf.h"

#define CFG_DEFAULT_PATH	"/etc/petrel/petrel.yaml"

enum cfg_tls_mode {
	CFG_TLS_NONE,		/* plaintext; loopback addresses only */
	CFG_TLS_STARTTLS,	/* 587/2525 style: STARTTLS before AUTH, MAIL */
	CFG_TLS_IMPLICIT,	/* 465 style: TLS before the greeting */
};

/*
 * Outbound TLS security level of a delivery (Postfix's
 * smtp_tls_security_level): smtp.tls globally; the level is a parameter
 * of each delivery so that per-destination settings can override it.
 */
enum cfg_smtp_tls {
	CFG_SMTP_TLS_MAY,	/* STARTTLS when offered, else plaintext */
	CFG_SMTP_TLS_ENCRYPT,	/* STARTTLS or no delivery (defer) */
	CFG_SMTP_TLS_VERIFY,	/* encrypt, chain and host name verified */
};

enum cfg_log_dest {
	CFG_LOG_SYSLOG,
	CFG_LOG_STDERR,
};

/* What smtpd does with a RCPT TO a suppressed address (lib/suppress). */
/* smtpd.long_lines: what a message with a line over 998 octets gets. */
enum cfg_long_lines {
	CFG_LONG_LINES_ENCODE,		/* re-encoded to fit (lib/mimefold) */
	CFG_LONG_LINES_REFUSE,		/* 550 5.6.0 at the end of data */
};

enum cfg_suppression_action {
	CFG_SUPPRESSION_REJECT,	/* 550 5.1.1 at RCPT */
	CFG_SUPPRESSION_ACCEPT,	/* accepted; qmgr fails it, no attempt */
};

struct cfg_listener {
	char			*name;		/* [A-Za-z0-9_-]{1,32} */
	char			*address;	/* as written, "host:port" */
	char			*host;		/* IPv4/IPv6 literal, or "*" */
	char			*port;		/* decimal 1-65535 */
	enum cfg_tls_mode	 tls;
};

/* One webhook endpoint (webhooks: in petrel.yaml; webhookd(8)). */
struct cfg_webhook {
	char			*url;		/* http:// or https:// */
	char			*events;	/* "delivered,bounced,..." */
	char			*format;	/* petrel|mailgun|sendgrid|... */
	char			*secret_file;	/* NULL: unsigned */
	char			*sendgrid_key_file; /* NULL: none */
	char			*ca_file;	/* NULL: the system's */
	unsigned		 max_concurrent;
	int64_t			 timeout;	/* seconds */
	/* Where the file keys are, for cfg_check_files' messages. */
	unsigned long		 secret_file_line;
	unsigned long		 sendgrid_key_file_line;
	unsigned long		 ca_file_line;
};

/*
 * A key that takes one path or a list of them (tls.certificate,
 * tls.private_key), with the line of each entry for messages.
 */
struct cfg_paths {
	char		**path;
	unsigned long	 *line;		/* of each entry in the file */
	size_t		  n;
	int		  list;		/* written as a list */
};

#define CFG_TRANSPORT_HOPS_MAX	8	/* next hops of one transport entry */

/*
 * One transport entry: recipient domain (or "*") -> next hop, or a list
 * of next hops tried in order (smarthost failover). host, port and no_mx
 * are the first hop, the one qmgr groups by; hops holds them all.
 */
struct cfg_transport {
	char		*domain;	/* lower case, or "*" */
	char		*host;		/* host name or IP literal */
	uint16_t	 port;		/* default 25 */
	int		 no_mx;		/* [host]: use the address, skip MX */
	struct nexthop	*hops;		/* hops[0] is host, port, no_mx */
	size_t		 nhops;		/* 1..CFG_TRANSPORT_HOPS_MAX */
};

/*
 * smtp.pools: a named set of source addresses (smtp(8)). A credential is
 * bound to one (relayctl user set --pool); smtp leaves from its addresses
 * in turn. smtp.source_addresses is the pool "default".
 */
#define CFG_POOL_NAME_MAX	63	/* [a-z0-9_-] */
#define CFG_POOL_DEFAULT	"default"
#define CFG_POOLS_MAX		64
#define CFG_POOL_ADDRS_MAX	256

struct cfg_pool {
	char		*name;
	struct cidr	*addrs;		/* single addresses, at least one */
	size_t		 naddrs;
};

/*
 * smtp.warmup: a source address being warmed up, from its first day. Its
 * daily cap per provider is smtp.warmup_schedule's entry for the day
 * (qmgr(8), WARMUP); past the schedule it is warm.
 */
#define CFG_WARMUP_MAX		256	/* addresses in smtp.warmup */
#define CFG_WARMUP_DAYS_MAX	100	/* entries of smtp.warmup_schedule */
#define CFG_WARMUP_CAP_MAX	1000000000
#define CFG_WARMUP_DEFAULT_DAYS	14	/* 50 a day, doubled each day */

struct cfg_warmup {
	struct cidr	 addr;
	int64_t		 start_day;	/* days since 1970-01-01, UTC */
};

struct cfg {
	char			*path;
	char			*mail_owner;		/* default "petrel" */
	char			*queue_directory;	/* /var/spool/petrel */
	char			*daemon_directory;	/* NULL: next to master */
	char			*myhostname;		/* default gethostname() */

	struct cfg_listener	*listeners;
	size_t			 nlisteners;

	/*
	 * Certificate chains and their private keys, paired in order (one
	 * pair per key type: RSA, ECDSA, ...). tls_certificate and
	 * tls_private_key are the first pair, NULL if not set; they point
	 * into the lists and are not separately owned.
	 */
	struct cfg_paths	 tls_certificates;
	struct cfg_paths	 tls_private_keys;
	char			*tls_certificate;
	char			*tls_private_key;
	int64_t			 tls_ticket_lifetime;	/* seconds, 0: off */
	int			 tls_min_version;	/* 12 or 13 */
	char			*tls_ciphers;		/* OpenSSL list, <=1.2 */

	struct cidr		*trusted_networks;
	size_t			 ntrusted_networks;

	/*
	 * Local submission (sendmail(1)): the local users who may hand mail
	 * to smtpd over <queue_directory>/public/submit, and the credential
	 * whose policy and limits their sessions get. No users: no socket.
	 */
	char			**local_submission_users;
	size_t			 nlocal_submission_users;
	char			*local_submission_credential;

	struct cfg_transport	*transports;
	size_t			 ntransports;

	int64_t			 queue_min_backoff;	/* seconds, 5m */
	int64_t			 queue_max_backoff;	/* seconds, 1h */
	int64_t			 queue_greylist_retry;	/* s, 5m; 0: off */
	int64_t			 queue_max_lifetime;	/* seconds, 5d */
	uint64_t		 queue_map_size;	/* LMDB map, 1g */

	enum cfg_log_dest	 log_destination;	/* syslog */
	char			*log_syslog_name;	/* petrel */
	char			*log_accounting;	/* NULL: none */
	char			*shaping_file;		/* NULL: no limits */

	struct cfg_webhook	*webhooks;		/* webhookd(8) */
	size_t			 nwebhooks;
	unsigned		 webhookd_processes;	/* 1 with webhooks: */
	char			*metrics_listen;	/* NULL: no metricsd */
	unsigned		 metricsd_processes;	/* 1 with it */
	int64_t			 events_max_age;	/* s, 24h: then dead */
	int64_t			 events_dead_age;	/* s, 7d: dead kept */
	int64_t			 events_min_backoff;	/* s, 30s */
	int64_t			 events_max_backoff;	/* s, 1h */
	unsigned		 events_credential_max_concurrent; /* 4 */
	int64_t			 events_credential_timeout; /* s, 10s */
	int			 events_keep_metadata_headers; /* 0 */
	unsigned		 outbox_max_events;	/* 100000 */
	int64_t			 outbox_max_age;	/* seconds, 7d */
	unsigned		 outbox_max_share;	/* % of map, 10 */

	unsigned		 smtpd_processes;	/* 2 */
	unsigned		 smtpd_max_sessions;	/* per process, 500 */
	uint64_t		 smtpd_message_size_limit; /* 25m bytes */
	unsigned		 smtpd_max_recipients;	/* 1000 */
	int64_t			 smtpd_timeout;		/* seconds, 300 */
	unsigned		 smtpd_min_data_rate;	/* bytes/s in DATA */
	int64_t			 smtpd_min_data_rate_grace; /* seconds */
	int64_t			 smtpd_command_deadline; /* s per command line */
	enum cfg_long_lines	 smtpd_long_lines;	/* encode */
	int			 smtpd_require_verified_domains; /* 1 */

	int			 auth_login;		/* AUTH LOGIN too, 0 */
	unsigned		 auth_max_failures;	/* 5 */
	int64_t			 auth_failure_window;	/* seconds, 10m */
	int64_t			 auth_block_time;	/* seconds, 15m */

	unsigned		 limits_connections;	/* all smtpd, 1000 */
	unsigned		 limits_connections_per_client; /* 50 */
	unsigned		 limits_max_errors;	/* per session, 20 */
	unsigned		 limits_line_length;	/* command line, 1000 */

	unsigned		 smtp_processes;	/* 16 */
	int64_t			 smtp_connect_timeout;	/* seconds, 30 */
	int64_t			 smtp_failover_retry;	/* seconds, 1m */
	int64_t			 smtp_command_timeout;	/* seconds, 300 */
	char			*smtp_helo_name;	/* NULL: myhostname */
	enum cfg_smtp_tls	 smtp_tls;		/* may */
	char			*smtp_tls_ca_file;	/* NULL: system store */
	struct cidr		*smtp_source_addresses;	/* single addresses */
	size_t			 nsmtp_source_addresses;
	/* smtp.pools, and "default" from smtp.source_addresses if given. */
	struct cfg_pool		*smtp_pools;
	size_t			 nsmtp_pools;
	int64_t			 smtp_reputation_set_aside; /* s, 1h; 0 off */
	struct cfg_warmup	*smtp_warmup;		/* smtp.warmup */
	size_t			 nsmtp_warmup;
	uint32_t		*smtp_warmup_schedule;	/* daily caps, day 1 first */
	size_t			 nsmtp_warmup_schedule;

	char			*dns_resolver;		/* "IP[:port]"; NULL: system */

	char			*dkim_key_directory;	/* /etc/petrel/dkim */
	char			*dkim_group;		/* petrel-dkim */
	char			*dkim_dmarc_rua;	/* NULL: postmaster@ */

	/*
	 * Bounce classification rule files (lib/bclass), in order. The
	 * default, the shipped file, has line 0: bclass_load skips it when
	 * missing, but not a file the operator named.
	 */
	struct cfg_paths	 bounce_classes;
	int64_t			 bounce_delay_warning;	/* seconds, 0: off */
	uint64_t		 bounce_size_limit;	/* RET=FULL, 50000 */
	enum cfg_suppression_action suppression_action;	/* reject */
	int64_t			 suppression_bounce_ttl; /* seconds, 30d; 0 never */
	unsigned		 suppression_soft_limit;	/* 3 */
	int64_t			 suppression_soft_window; /* seconds, 7d */
	uint64_t		 suppression_map_size;	/* LMDB map, 1g */
	int64_t			 log_retention;	/* seconds, 30d (lib/evlog) */
	uint64_t		 log_map_size;	/* LMDB map, 16g */
};

/*
 * Loads and validates path. Returns a new struct (free with cfg_free), or
 * NULL with "FILE:LINE: KEY: reason" in why.
 */
struct cfg	*cfg_load(const char *path, struct vbuf *why);
void		 cfg_free(struct cfg *);

/*
 * The default set of events of an endpoint, and the names it may list:
 * those and "destination" (a destination's state, qmgr(8)), sent only
 * where listed.
 */
#define CFG_WEBHOOK_EVENTS	"accepted,delivered,deferred,bounced," \
				"expired,suppressed,deleted"
#define CFG_WEBHOOK_EVENTS_KNOWN CFG_WEBHOOK_EVENTS ",destination"
#define CFG_MAX_WEBHOOKS	64
#define CFG_SECRET_MAX		4096	/* bytes of a webhook secret_file */

/*
 * The pool named name ("" or NULL: "default"), or NULL when the
 * configuration has none of that name (for "default": no source
 * addresses, the kernel picks).
 */
const struct cfg_pool *cfg_pool_lookup(const struct cfg *, const char *name);
/*
 * The n-th address of all the pools together (the default pool's
 * first, then smtp.pools in order), or NULL past the last: the
 * addresses SPF must name.
 */
const struct cidr *cfg_source_address(const struct cfg *, size_t n);
/* 1 if name is a pool name: 1 to CFG_POOL_NAME_MAX of [a-z0-9_-]. */
int		 cfg_pool_name_ok(const char *name);
/*
 * The daily cap per provider of source address a on day (days since
 * 1970-01-01, UTC) from smtp.warmup and smtp.warmup_schedule, or -1 when
 * a is not warming up that day (not in smtp.warmup, or past its
 * schedule). A day before the address's first counts as its first.
 */
int64_t		 cfg_warmup_cap(const struct cfg *, const struct cidr *a,
		    int64_t day);
/*
 * The day of a's warmup on day, 1 on its first (and before it), or -1
 * when a is not warming up that day, as for cfg_warmup_cap.
 */
int64_t		 cfg_warmup_day(const struct cfg *, const struct cidr *a,
		    int64_t day);

/* The transport for a recipient domain (exact, then parents, then "*"). */
const struct cfg_transport *cfg_transport_lookup(const struct cfg *,
		    const char *domain);

/*
 * The next-hop key of a recipient domain (nexthop.h): its transport
 * entry, else the domain itself. 0, or -1 for an empty or too long domain.
 */
int		 cfg_nexthop_key(const struct cfg *, const char *domain,
		    char *key, size_t size);

/*
 * The transport entry with several next hops whose first hop has the
 * canonical key key (what qmgr sends smtp), or NULL: smtp's failover
 * list. Entries that share a first hop list the same hops (cfg_load
 * checks it), so the first match is the answer.
 */
const struct cfg_transport *cfg_transport_failover(const struct cfg *,
		    const char *key);

/*
 * Opens each file a webhooks[] entry names (secret_file,
 * sendgrid_key_file, ca_file) for reading, as the caller: webhookd reads
 * them only when it starts, so master checks them (as mail_owner) at its
 * start and reload to report a missing or unreadable one, or a
 * secret_file that cfg_secret_read refuses (empty, only white space, too
 * long), with the configuration's file, line and key. Returns 0, or -1
 * with why.
 */
int		 cfg_check_files(const struct cfg *, struct vbuf *why);
/*
 * Reads a webhooks[].secret_file as webhookd signs with it: the whole
 * file, at most CFG_SECRET_MAX bytes, without trailing white space
 * (space, tab, CR, LF). Returns the secret (not NUL-terminated; the
 * caller wipes it with OPENSSL_cleanse and frees it) and its length in
 * *len, or NULL with why ("PATH: reason") when the file cannot be opened
 * or read, is not a regular file, is longer than the limit, or is empty
 * once its trailing white space is gone.
 */
unsigned char	*cfg_secret_read(const char *path, size_t *len,
		    struct vbuf *why);
/*
 * Where entry i of a path list key (e.g. "tls.private_key") was written,
 * for messages: "FILE:LINE: KEY" for a single value, "FILE:LINE: KEY[i]"
 * for a list. Truncated to size.
 */
void		 cfg_paths_where(const struct cfg *, const char *key,
		    const struct cfg_paths *, size_t i, char *buf, size_t size);

/* "may", "encrypt" or "verify", for logging. */
const char	*cfg_smtp_tls_name(enum cfg_smtp_tls);

/* "none", "starttls" or "implicit", for logging. */
const char	*cfg_tls_mode_name(enum cfg_tls_mode);

/*
 * The documented keys, in dotted form ("queue.min_backoff", "listeners[].tls",
 * "transport.*"), NULL-terminated: for the man page consistency test.
 */
const char * const *cfg_key_names(void);

#endif
