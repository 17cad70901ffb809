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
#include "vbuf.h"

#define CFG_DEFAULT_PATH	"/etc/petrel/petrel.yaml"

enum cfg_tls_mode {
	CFG_TLS_NONE,		/* plaintext; loopback addresses only */
	CFG_TLS_STARTTLS,	/* 587/2525 style: STARTTLS before AUTH, MAIL */
	CFG_TLS_IMPLICIT,	/* 465 style: TLS before the greeting */
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

/* One transport entry: recipient domain (or "*") -> next hop. */
struct cfg_transport {
	char		*domain;	/* lower case, or "*" */
	char		*host;		/* host name or IP literal */
	uint16_t	 port;		/* default 25 */
	int		 no_mx;		/* [host]: use the address, skip MX */
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
	int64_t			 queue_max_lifetime;	/* seconds, 5d */
	uint64_t		 queue_map_size;	/* LMDB map, 1g */

	enum cfg_log_dest	 log_destination;	/* syslog */
	char			*log_syslog_name;	/* petrel */
	char			*log_accounting;	/* NULL: none */

	struct cfg_webhook	*webhooks;		/* webhookd(8) */
	size_t			 nwebhooks;
	unsigned		 webhookd_processes;	/* 1 with webhooks: */
	char			*metrics_listen;	/* NULL: no metricsd */
	unsigned		 metricsd_processes;	/* 1 with it */
	int64_t			 events_max_age;	/* s, 24h: then dead */
	int64_t			 events_dead_age;	/* s, 7d: dead kept */
	int64_t			 events_min_backoff;	/* s, 30s */
	int64_t			 events_max_backoff;	/* s, 1h */
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
	int64_t			 smtp_command_timeout;	/* seconds, 300 */
	char			*smtp_helo_name;	/* NULL: myhostname */
	struct cidr		*smtp_source_addresses;	/* single addresses */
	size_t			 nsmtp_source_addresses;

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

/* The event names an endpoint may list, and the default set. */
#define CFG_WEBHOOK_EVENTS	"accepted,delivered,deferred,bounced," \
				"expired,suppressed,deleted"
#define CFG_MAX_WEBHOOKS	64

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
 * Where entry i of a path list key (e.g. "tls.private_key") was written,
 * for messages: "FILE:LINE: KEY" for a single value, "FILE:LINE: KEY[i]"
 * for a list. Truncated to size.
 */
void		 cfg_paths_where(const struct cfg *, const char *key,
		    const struct cfg_paths *, size_t i, char *buf, size_t size);

/* "none", "starttls" or "implicit", for logging. */
const char	*cfg_tls_mode_name(enum cfg_tls_mode);

/*
 * The documented keys, in dotted form ("queue.min_backoff", "listeners[].tls",
 * "transport.*"), NULL-terminated: for the man page consistency test.
 */
const char * const *cfg_key_names(void);

#endif
