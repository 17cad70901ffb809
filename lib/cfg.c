/*
 * cfg.c - petrel.yaml parsed with libyaml into one read-only struct cfg.
 *
 * Every program loads it at start, master again on SIGHUP. The schema is
 * the two tables below (top-level keys, and the keys of one listener):
 * name, type, default, bounds and an optional check. They are the only
 * place a default appears; a default is written as it would be in the file
 * and goes through the same setter as a value from the file. The keys are
 * documented in petrel.yaml(5) and check_cfg.c tests that both agree.
 *
 * Everything from the file is bounded (file size, scalar length, entries
 * per list or mapping) and every error, including a YAML syntax error, ends
 * the load with "FILE:LINE: KEY: reason" in why. lib/yamlfile reads and
 * loads the file (size, nesting, one document); this walks it. Nothing here logs, exits
 * or aborts because of what the file says.
 */
#include <sys/socket.h>
#include <sys/stat.h>
#include <netinet/in.h>
#include <arpa/inet.h>

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <yaml.h>

#include "cfg.h"
#include "cidr.h"
#include "log.h"
#include "nexthop.h"
#include "parse.h"
#include "vbuf.h"
#include "xalloc.h"
#include "yamlfile.h"

#define nitems(a)		(sizeof(a) / sizeof((a)[0]))

#define CFG_MAX_FILE		(1024 * 1024)	/* bytes of YAML */
#define CFG_MAX_ENTRIES		1024	/* items in one list or mapping */
#define CFG_MAX_VALUE		4096	/* bytes in one scalar */
#define CFG_MAX_LISTENERS	64
#define CFG_MAX_KEY		128	/* a dotted key name, for messages */
#define CFG_MAX_HOSTNAME	253	/* RFC 1035 section 2.3.4 */
#define CFG_MAX_LABEL		63
#define CFG_MAX_USER		32
#define CFG_MAX_LOCAL_USERS	256	/* local_submission.users */
#define CFG_MAX_CREDENTIAL	64	/* as smtpd's AUTH user name */
#define CFG_MAX_SYSLOG_NAME	64
#define CFG_MAX_LISTENER_NAME	32
#define CFG_MAX_CIPHERS		1024
/* Certificate and key pairs: one per key type OpenSSL can serve. */
#define CFG_MAX_TLS_PAIRS	8
#define CFG_MAX_DEPTH		32	/* nested lists and mappings */
#define CFG_DEFAULT_PORT	25

#define MINUTE			60ULL
#define HOUR			(60 * MINUTE)
#define DAY			(24 * HOUR)
#define KIB			1024ULL
#define MIB			(1024 * KIB)
#define GIB			(1024 * MIB)

enum cfg_type {
	CFG_T_STRING,		/* free text, validated by check */
	CFG_T_PATH,		/* absolute path name */
	CFG_T_BOOL,		/* true|false|yes|no|on|off */
	CFG_T_UINT,		/* decimal, min..max, stored as unsigned */
	CFG_T_DURATION,		/* parse_duration, min..max s, int64_t */
	CFG_T_SIZE,		/* parse_size, min..max bytes, uint64_t */
	CFG_T_ENUM,		/* one of enums, stored as int */
	CFG_T_CIDRS,		/* list of network prefixes */
	CFG_T_LISTENERS,	/* list of listener mappings */
	CFG_T_TRANSPORT,	/* mapping domain -> next hop */
	CFG_T_PATHS,		/* a path or a list of them, cfg_paths */
	CFG_T_WEBHOOKS,		/* list of webhook endpoint mappings */
	CFG_T_USERS,		/* list of user names, char ** + count */
	CFG_T_POOLS,		/* mapping pool name -> list of addresses */
	CFG_T_WARMUP,		/* mapping address -> first day */
	CFG_T_SCHEDULE,		/* list of daily caps */
};

struct cfg_enum {
	const char	*name;
	int		 value;
};

struct cfg_key {
	const char		*name;		/* dotted, as documented */
	enum cfg_type		 type;
	const char		*def;		/* NULL: unset or empty */
	char			*(*defn)(struct vbuf *); /* computed default */
	uint64_t		 min, max;	/* bounds */
	size_t			 off;		/* field in the base struct */
	size_t			 off_n;		/* CFG_T_CIDRS: its count */
	const struct cfg_enum	*enums;		/* CFG_T_ENUM, NULL-ended */
	int			(*check)(const char *, struct vbuf *);
	int			 required;	/* no default: must be given */
};

/* The scalar setters store enums through an int. */
_Static_assert(sizeof(enum cfg_tls_mode) == sizeof(int), "enum size");
_Static_assert(sizeof(enum cfg_smtp_tls) == sizeof(int), "enum size");
_Static_assert(sizeof(enum cfg_log_dest) == sizeof(int), "enum size");
_Static_assert(sizeof(enum cfg_suppression_action) == sizeof(int),
    "enum size");

struct cfg_ctx;

static int	 check_user(const char *, struct vbuf *);
static int	 check_credential(const char *, struct vbuf *);
static int	 check_resolver(const char *, struct vbuf *);
static int	 check_metrics_listen(const char *, struct vbuf *);
static int	 check_syslog_name(const char *, struct vbuf *);
static int	 check_hostname(const char *, struct vbuf *);
static int	 check_ciphers(const char *, struct vbuf *);
static int	 check_listener_name(const char *, struct vbuf *);
static int	 hostname_ok(const char *);
static char	*default_hostname(struct vbuf *);
static int	 cfg_err(struct cfg_ctx *, unsigned long, const char *,
		    const char *, ...) __attribute__((format(printf, 4, 5)));
static yaml_node_t *cfg_node(struct cfg_ctx *, int);
static unsigned long node_line(const yaml_node_t *);
static int	 get_scalar(struct cfg_ctx *, yaml_node_t *, unsigned long,
		    const char *, const char **);
static int	 check_map(struct cfg_ctx *, yaml_node_t *, unsigned long,
		    const char *);
static int	 check_seq(struct cfg_ctx *, yaml_node_t *, unsigned long,
		    const char *, size_t);
static const struct cfg_key *find_key(const struct cfg_key *, size_t,
		    const char *, int);
static int	 is_section(const char *);
static int	 walk_top(struct cfg_ctx *, yaml_node_t *);
static int	 walk_section(struct cfg_ctx *, const char *, yaml_node_t *,
		    unsigned long);
static int	 set_key(struct cfg_ctx *, const struct cfg_key *,
		    yaml_node_t *, unsigned long);
static int	 set_scalar(const struct cfg_key *, void *, const char *,
		    struct vbuf *);
static int	 set_cidrs(struct cfg_ctx *, const struct cfg_key *,
		    yaml_node_t *, unsigned long);
static int	 set_listeners(struct cfg_ctx *, const char *, yaml_node_t *,
		    unsigned long);
static int	 set_listener(struct cfg_ctx *, struct cfg_listener *,
		    yaml_node_t *, size_t);
static int	 set_transport(struct cfg_ctx *, const char *, yaml_node_t *,
		    unsigned long);
static int	 set_paths(struct cfg_ctx *, const struct cfg_key *,
		    yaml_node_t *, unsigned long);
static int	 set_webhooks(struct cfg_ctx *, const char *, yaml_node_t *,
		    unsigned long);
static int	 set_users(struct cfg_ctx *, const struct cfg_key *,
		    yaml_node_t *, unsigned long);
static void	 free_strs(char **, size_t);
static int	 set_pools(struct cfg_ctx *, const char *, yaml_node_t *,
		    unsigned long);
static int	 set_addrs(struct cfg_ctx *, const char *, yaml_node_t *,
		    unsigned long, size_t, struct cidr **, size_t *);
static void	 free_pools(struct cfg *);
static int	 set_warmup(struct cfg_ctx *, const char *, yaml_node_t *,
		    unsigned long);
static int	 set_warmup_schedule(struct cfg_ctx *, const char *,
		    yaml_node_t *, unsigned long);
static int	 check_warmup(struct cfg_ctx *);
static int	 cidr_same(const struct cidr *, const struct cidr *);
static int	 one_address(const char *, struct cidr *);
static int	 default_pool(struct cfg_ctx *);
static int	 set_webhook(struct cfg_ctx *, struct cfg_webhook *,
		    yaml_node_t *, size_t);
static int	 check_webhook_events(const char *, struct vbuf *);
static int	 check_webhook_format(const char *, struct vbuf *);
static int	 check_webhook_url(const char *, struct vbuf *);
static int	 check_path(const char *, struct vbuf *);
static void	 free_paths(struct cfg_paths *);
static void	 set_default_paths(struct cfg_ctx *, const struct cfg_key *);
static int	 parse_listen_address(struct cfg_listener *, struct vbuf *);
static int	 nexthop_same(const struct nexthop *, const struct nexthop *);
static int	 transport_same_hops(const struct cfg_transport *,
		    const struct cfg_transport *);
static int	 parse_nexthop(const char *, struct nexthop *,
		    struct vbuf *);
static int	 host_is_loopback(const char *);
static int	 apply_defaults(struct cfg_ctx *);
static int	 cross_check(struct cfg_ctx *);
static void	 fmt_bound(char *, size_t, enum cfg_type, uint64_t);
static void	 free_listener(struct cfg_listener *);

static const struct cfg_enum tls_modes[] = {
	{ "none", CFG_TLS_NONE },
	{ "starttls", CFG_TLS_STARTTLS },
	{ "implicit", CFG_TLS_IMPLICIT },
	{ NULL, 0 },
};

static const struct cfg_enum smtp_tls_levels[] = {
	{ "may", CFG_SMTP_TLS_MAY },
	{ "encrypt", CFG_SMTP_TLS_ENCRYPT },
	{ "verify", CFG_SMTP_TLS_VERIFY },
	{ NULL, 0 },
};

static const struct cfg_enum tls_versions[] = {
	{ "1.2", 12 },
	{ "1.3", 13 },
	{ NULL, 0 },
};

static const struct cfg_enum log_dests[] = {
	{ "syslog", CFG_LOG_SYSLOG },
	{ "stderr", CFG_LOG_STDERR },
	{ NULL, 0 },
};

static const struct cfg_enum long_lines_actions[] = {
	{ "encode", CFG_LONG_LINES_ENCODE },
	{ "refuse", CFG_LONG_LINES_REFUSE },
	{ NULL, 0 },
};

static const struct cfg_enum suppression_actions[] = {
	{ "reject", CFG_SUPPRESSION_REJECT },
	{ "accept", CFG_SUPPRESSION_ACCEPT },
	{ NULL, 0 },
};

#define F(field)	offsetof(struct cfg, field)
#define L(field)	offsetof(struct cfg_listener, field)

/* The schema: every top-level key, in the order of petrel.yaml(5). */
static const struct cfg_key cfg_keys[] = {
	{ .name = "mail_owner", .type = CFG_T_STRING, .def = "petrel",
	    .off = F(mail_owner), .check = check_user },
	{ .name = "queue_directory", .type = CFG_T_PATH,
	    .def = "/var/spool/petrel", .off = F(queue_directory) },
	{ .name = "daemon_directory", .type = CFG_T_PATH,
	    .off = F(daemon_directory) },
	{ .name = "myhostname", .type = CFG_T_STRING,
	    .defn = default_hostname, .off = F(myhostname),
	    .check = check_hostname },
	{ .name = "listeners", .type = CFG_T_LISTENERS },
	{ .name = "tls.certificate", .type = CFG_T_PATHS,
	    .max = CFG_MAX_TLS_PAIRS, .off = F(tls_certificates) },
	{ .name = "tls.private_key", .type = CFG_T_PATHS,
	    .max = CFG_MAX_TLS_PAIRS, .off = F(tls_private_keys) },
	{ .name = "tls.min_version", .type = CFG_T_ENUM, .def = "1.2",
	    .off = F(tls_min_version), .enums = tls_versions },
	{ .name = "tls.ciphers", .type = CFG_T_STRING,
	    .def = "ECDHE+AESGCM:ECDHE+CHACHA20:DHE+AESGCM:!aNULL:!MD5:!DSS",
	    .off = F(tls_ciphers), .check = check_ciphers },
	/*
	 * Postfix's smtpd_tls_session_cache_timeout. Under a minute only
	 * makes sense in tests (rotation is checked once a second); at most
	 * 3.5 days, since a ticket lives two periods and RFC 8446 section
	 * 4.6.1 caps a ticket's lifetime at 7 days.
	 */
	{ .name = "tls.ticket_lifetime", .type = CFG_T_DURATION, .def = "1h",
	    .min = 0, .max = 3 * DAY + 12 * HOUR,
	    .off = F(tls_ticket_lifetime) },
	{ .name = "trusted_networks", .type = CFG_T_CIDRS,
	    .off = F(trusted_networks), .off_n = F(ntrusted_networks) },
	/*
	 * sendmail(1): who may submit over the local socket, and as whom.
	 * Peer credentials (SO_PEERCRED) name the user; smtpd checks.
	 */
	{ .name = "local_submission.users", .type = CFG_T_USERS,
	    .max = CFG_MAX_LOCAL_USERS, .off = F(local_submission_users),
	    .off_n = F(nlocal_submission_users) },
	{ .name = "local_submission.credential", .type = CFG_T_STRING,
	    .off = F(local_submission_credential),
	    .check = check_credential },
	{ .name = "transport", .type = CFG_T_TRANSPORT },
	{ .name = "queue.min_backoff", .type = CFG_T_DURATION, .def = "5m",
	    .min = 1, .max = 7 * DAY, .off = F(queue_min_backoff) },
	{ .name = "queue.max_backoff", .type = CFG_T_DURATION, .def = "1h",
	    .min = 1, .max = 7 * DAY, .off = F(queue_max_backoff) },
	{ .name = "queue.greylist_retry", .type = CFG_T_DURATION, .def = "5m",
	    .min = 0, .max = DAY, .off = F(queue_greylist_retry) },
	{ .name = "queue.max_lifetime", .type = CFG_T_DURATION, .def = "5d",
	    .min = 1, .max = 100 * DAY, .off = F(queue_max_lifetime) },
	{ .name = "queue.map_size", .type = CFG_T_SIZE, .def = "1g",
	    .min = MIB, .max = 1024 * GIB, .off = F(queue_map_size) },
	{ .name = "log.destination", .type = CFG_T_ENUM, .def = "syslog",
	    .off = F(log_destination), .enums = log_dests },
	{ .name = "log.syslog_name", .type = CFG_T_STRING, .def = "petrel",
	    .off = F(log_syslog_name), .check = check_syslog_name },
	{ .name = "log.accounting", .type = CFG_T_PATH,
	    .off = F(log_accounting) },
	{ .name = "outbox.max_events", .type = CFG_T_UINT, .def = "100000",
	    .min = 1, .max = 100000000, .off = F(outbox_max_events) },
	{ .name = "outbox.max_age", .type = CFG_T_DURATION, .def = "7d",
	    .min = 1, .max = 365 * DAY, .off = F(outbox_max_age) },
	{ .name = "outbox.max_share", .type = CFG_T_UINT, .def = "10",
	    .min = 1, .max = 40, .off = F(outbox_max_share) },
	{ .name = "smtpd.processes", .type = CFG_T_UINT, .def = "2",
	    .min = 1, .max = 64, .off = F(smtpd_processes) },
	{ .name = "smtpd.max_sessions", .type = CFG_T_UINT, .def = "500",
	    .min = 1, .max = 10000, .off = F(smtpd_max_sessions) },
	{ .name = "smtpd.message_size_limit", .type = CFG_T_SIZE,
	    .def = "25m", .min = KIB, .max = GIB,
	    .off = F(smtpd_message_size_limit) },
	{ .name = "smtpd.max_recipients", .type = CFG_T_UINT, .def = "1000",
	    .min = 1, .max = 100000, .off = F(smtpd_max_recipients) },
	{ .name = "smtpd.timeout", .type = CFG_T_DURATION, .def = "5m",
	    .min = 1, .max = HOUR, .off = F(smtpd_timeout) },
	{ .name = "smtpd.min_data_rate", .type = CFG_T_UINT, .def = "500",
	    .min = 0, .max = 1000000000, .off = F(smtpd_min_data_rate) },
	{ .name = "smtpd.min_data_rate_grace", .type = CFG_T_DURATION,
	    .def = "30s", .min = 1, .max = HOUR,
	    .off = F(smtpd_min_data_rate_grace) },
	{ .name = "smtpd.command_deadline", .type = CFG_T_DURATION,
	    .def = "1m", .min = 1, .max = HOUR, .off = F(smtpd_command_deadline) },
	{ .name = "smtpd.long_lines", .type = CFG_T_ENUM, .def = "encode",
	    .off = F(smtpd_long_lines), .enums = long_lines_actions },
	{ .name = "smtpd.require_verified_domains", .type = CFG_T_BOOL,
	    .def = "true", .off = F(smtpd_require_verified_domains) },
	{ .name = "auth.login", .type = CFG_T_BOOL, .def = "false",
	    .off = F(auth_login) },
	{ .name = "auth.max_failures", .type = CFG_T_UINT, .def = "5",
	    .min = 1, .max = 1000, .off = F(auth_max_failures) },
	{ .name = "auth.failure_window", .type = CFG_T_DURATION, .def = "10m",
	    .min = 1, .max = DAY, .off = F(auth_failure_window) },
	{ .name = "auth.block_time", .type = CFG_T_DURATION, .def = "15m",
	    .min = 1, .max = 7 * DAY, .off = F(auth_block_time) },
	{ .name = "limits.connections", .type = CFG_T_UINT, .def = "1000",
	    .min = 1, .max = 100000, .off = F(limits_connections) },
	{ .name = "limits.connections_per_client", .type = CFG_T_UINT,
	    .def = "50", .min = 1, .max = 100000,
	    .off = F(limits_connections_per_client) },
	{ .name = "limits.max_errors", .type = CFG_T_UINT, .def = "20",
	    .min = 1, .max = 1000, .off = F(limits_max_errors) },
	{ .name = "limits.line_length", .type = CFG_T_UINT, .def = "1000",
	    .min = 512, .max = 65536, .off = F(limits_line_length) },
	{ .name = "smtp.processes", .type = CFG_T_UINT, .def = "16",
	    .min = 1, .max = 256, .off = F(smtp_processes) },
	{ .name = "smtp.connect_timeout", .type = CFG_T_DURATION, .def = "30s",
	    .min = 1, .max = HOUR, .off = F(smtp_connect_timeout) },
	{ .name = "smtp.failover_retry", .type = CFG_T_DURATION, .def = "1m",
	    .min = 1, .max = HOUR, .off = F(smtp_failover_retry) },
	{ .name = "smtp.command_timeout", .type = CFG_T_DURATION, .def = "5m",
	    .min = 1, .max = HOUR, .off = F(smtp_command_timeout) },
	{ .name = "smtp.source_addresses", .type = CFG_T_CIDRS, .min = 1,
	    .off = F(smtp_source_addresses),
	    .off_n = F(nsmtp_source_addresses) },
	/* Named source address pools; source_addresses is "default". */
	{ .name = "smtp.pools", .type = CFG_T_POOLS },
	/* A source address refused for its reputation rests (smtp(8)). */
	{ .name = "smtp.reputation_set_aside", .type = CFG_T_DURATION,
	    .def = "1h", .min = 0, .max = 7 * DAY,
	    .off = F(smtp_reputation_set_aside) },
	/* New addresses and their daily caps per provider (qmgr(8)). */
	{ .name = "smtp.warmup", .type = CFG_T_WARMUP },
	{ .name = "smtp.warmup_schedule", .type = CFG_T_SCHEDULE },
	{ .name = "dns.resolver", .type = CFG_T_STRING,
	    .off = F(dns_resolver), .check = check_resolver },
	{ .name = "shaping.file", .type = CFG_T_PATH,
	    .off = F(shaping_file) },
	{ .name = "dkim.key_directory", .type = CFG_T_PATH,
	    .def = "/etc/petrel/dkim", .off = F(dkim_key_directory) },
	{ .name = "dkim.group", .type = CFG_T_STRING, .def = "petrel-dkim",
	    .off = F(dkim_group), .check = check_user },
	{ .name = "dkim.dmarc_rua", .type = CFG_T_STRING,
	    .off = F(dkim_dmarc_rua) },
	{ .name = "smtp.helo_name", .type = CFG_T_STRING,
	    .off = F(smtp_helo_name), .check = check_hostname },
	{ .name = "smtp.tls", .type = CFG_T_ENUM, .def = "may",
	    .off = F(smtp_tls), .enums = smtp_tls_levels },
	{ .name = "smtp.tls_ca_file", .type = CFG_T_PATH,
	    .off = F(smtp_tls_ca_file) },
	/* At most BCLASS_MAX_FILES (lib/bclass.h) files. */
	{ .name = "bounce.classes", .type = CFG_T_PATHS,
	    .def = "/etc/petrel/bounce-classes.yaml", .max = 16,
	    .off = F(bounce_classes) },
	{ .name = "bounce.delay_warning", .type = CFG_T_DURATION, .def = "0",
	    .min = 0, .max = 100 * DAY, .off = F(bounce_delay_warning) },
	/* Postfix's bounce_size_limit: RET=FULL returns at most this. */
	{ .name = "bounce.size_limit", .type = CFG_T_SIZE, .def = "50000",
	    .min = 0, .max = GIB, .off = F(bounce_size_limit) },
	{ .name = "suppression.action", .type = CFG_T_ENUM, .def = "reject",
	    .off = F(suppression_action), .enums = suppression_actions },
	{ .name = "suppression.bounce_ttl", .type = CFG_T_DURATION,
	    .def = "30d", .min = 0, .max = 3650 * DAY,
	    .off = F(suppression_bounce_ttl) },
	{ .name = "suppression.soft_limit", .type = CFG_T_UINT, .def = "3",
	    .min = 1, .max = 1000, .off = F(suppression_soft_limit) },
	{ .name = "suppression.soft_window", .type = CFG_T_DURATION,
	    .def = "7d", .min = 1, .max = 365 * DAY,
	    .off = F(suppression_soft_window) },
	/* Its own map: a large list never takes the queue's room. */
	{ .name = "suppression.map_size", .type = CFG_T_SIZE, .def = "1g",
	    .min = MIB, .max = 1024 * GIB, .off = F(suppression_map_size) },
	/* webhookd(8): the endpoints, and how long their events are tried. */
	{ .name = "webhooks", .type = CFG_T_WEBHOOKS },
	{ .name = "events.max_age", .type = CFG_T_DURATION, .def = "24h",
	    .min = 1, .max = 30 * DAY, .off = F(events_max_age) },
	{ .name = "events.dead_letter_age", .type = CFG_T_DURATION,
	    .def = "7d", .min = 60, .max = 365 * DAY,
	    .off = F(events_dead_age) },
	{ .name = "events.min_backoff", .type = CFG_T_DURATION, .def = "30s",
	    .min = 1, .max = DAY, .off = F(events_min_backoff) },
	{ .name = "events.max_backoff", .type = CFG_T_DURATION, .def = "1h",
	    .min = 1, .max = DAY, .off = F(events_max_backoff) },
	/* Credentials' endpoints (relayctl user set --webhook): no row. */
	{ .name = "events.credential_max_concurrent", .type = CFG_T_UINT,
	    .def = "4", .min = 1, .max = 256,
	    .off = F(events_credential_max_concurrent) },
	{ .name = "events.credential_timeout", .type = CFG_T_DURATION,
	    .def = "10s", .min = 1, .max = 600,
	    .off = F(events_credential_timeout) },
	/* The delivery log (lib/evlog): its own map, virtual until used. */
	{ .name = "log.retention", .type = CFG_T_DURATION, .def = "30d",
	    .min = 3600, .max = 3650 * DAY, .off = F(log_retention) },
	{ .name = "log.map_size", .type = CFG_T_SIZE, .def = "16g",
	    .min = MIB, .max = 4096 * GIB, .off = F(log_map_size) },
	/* smtpd(8): tag headers are the relay's, removed unless kept. */
	{ .name = "events.keep_metadata_headers", .type = CFG_T_BOOL,
	    .def = "false", .off = F(events_keep_metadata_headers) },
	/* metricsd(8): the Prometheus endpoint; unset, it does not run. */
	{ .name = "metrics.listen", .type = CFG_T_STRING,
	    .off = F(metrics_listen), .check = check_metrics_listen },
};

#define W(field)	offsetof(struct cfg_webhook, field)

/* The keys of one webhooks[] entry; the YAML key follows "webhooks[].". */
static const struct cfg_key webhook_keys[] = {
	{ .name = "webhooks[].url", .type = CFG_T_STRING, .required = 1,
	    .off = W(url), .check = check_webhook_url },
	{ .name = "webhooks[].events", .type = CFG_T_STRING,
	    .def = CFG_WEBHOOK_EVENTS, .off = W(events),
	    .check = check_webhook_events },
	{ .name = "webhooks[].format", .type = CFG_T_STRING, .def = "petrel",
	    .off = W(format), .check = check_webhook_format },
	{ .name = "webhooks[].secret_file", .type = CFG_T_PATH,
	    .off = W(secret_file) },
	{ .name = "webhooks[].sendgrid_key_file", .type = CFG_T_PATH,
	    .off = W(sendgrid_key_file) },
	{ .name = "webhooks[].ca_file", .type = CFG_T_PATH, .off = W(ca_file) },
	{ .name = "webhooks[].max_concurrent", .type = CFG_T_UINT, .def = "4",
	    .min = 1, .max = 256, .off = W(max_concurrent) },
	{ .name = "webhooks[].timeout", .type = CFG_T_DURATION, .def = "10s",
	    .min = 1, .max = 600, .off = W(timeout) },
};

#define WEBHOOK_PREFIX		"webhooks[]."


/* The keys of one listeners[] entry; the YAML key follows "listeners[].". */
static const struct cfg_key listener_keys[] = {
	{ .name = "listeners[].name", .type = CFG_T_STRING, .required = 1,
	    .off = L(name), .check = check_listener_name },
	{ .name = "listeners[].address", .type = CFG_T_STRING, .required = 1,
	    .off = L(address) },
	{ .name = "listeners[].tls", .type = CFG_T_ENUM, .def = "starttls",
	    .off = L(tls), .enums = tls_modes },
};

#define LISTENER_PREFIX		"listeners[]."

struct cfg_ctx {
	const char		*file;
	struct vbuf		*why;
	yaml_document_t		*doc;
	struct cfg		*cfg;
	unsigned long		 line[nitems(cfg_keys)]; /* 0: not given */
	unsigned long		 tls_line;	/* first listener using TLS */
	const char		*tls_listener;
};

struct cfg *
cfg_load(const char *path, struct vbuf *why)
{
	struct cfg_ctx ctx;
	yaml_document_t doc;
	int rc;

	memset(&ctx, 0, sizeof(ctx));
	ctx.file = path == NULL ? CFG_DEFAULT_PATH : path;
	ctx.why = why;
	/* Size, nesting, syntax, one document: lib/yamlfile. */
	rc = yamlfile_load(ctx.file, CFG_MAX_FILE, CFG_MAX_DEPTH, &doc, why);
	if (rc < 0)
		return NULL;

	ctx.cfg = xcalloc(1, sizeof(*ctx.cfg));
	ctx.cfg->path = xstrdup(ctx.file);
	if (rc == 1) {
		ctx.doc = &doc;
		rc = walk_top(&ctx, yaml_document_get_root_node(&doc));
		ctx.doc = NULL;
		yaml_document_delete(&doc);
	}			/* else an empty file: every default */
	if (rc == 0)
		rc = apply_defaults(&ctx);
	if (rc == 0)
		rc = cross_check(&ctx);
	if (rc == -1) {
		cfg_free(ctx.cfg);
		return NULL;
	}
	return ctx.cfg;
}

void
cfg_free(struct cfg *cfg)
{
	size_t i;

	if (cfg == NULL)
		return;
	free(cfg->path);
	free(cfg->mail_owner);
	free(cfg->queue_directory);
	free(cfg->metrics_listen);
	free(cfg->daemon_directory);
	free(cfg->myhostname);
	for (i = 0; i < cfg->nlisteners; i++)
		free_listener(&cfg->listeners[i]);
	free(cfg->listeners);
	free_paths(&cfg->tls_certificates);
	free_paths(&cfg->tls_private_keys);
	free(cfg->tls_ciphers);
	free(cfg->trusted_networks);
	free_strs(cfg->local_submission_users, cfg->nlocal_submission_users);
	free(cfg->local_submission_credential);
	free(cfg->smtp_source_addresses);
	free_pools(cfg);
	free(cfg->smtp_warmup);
	free(cfg->smtp_warmup_schedule);
	free(cfg->smtp_tls_ca_file);
	free(cfg->dns_resolver);
	free(cfg->dkim_key_directory);
	free(cfg->dkim_group);
	free(cfg->dkim_dmarc_rua);
	for (i = 0; i < cfg->ntransports; i++) {
		free(cfg->transports[i].domain);
		free(cfg->transports[i].host);
		free(cfg->transports[i].hops);
	}
	free(cfg->transports);
	for (i = 0; i < cfg->nwebhooks; i++) {
		free(cfg->webhooks[i].url);
		free(cfg->webhooks[i].events);
		free(cfg->webhooks[i].format);
		free(cfg->webhooks[i].secret_file);
		free(cfg->webhooks[i].sendgrid_key_file);
		free(cfg->webhooks[i].ca_file);
	}
	free(cfg->webhooks);
	free(cfg->log_accounting);
	free(cfg->shaping_file);
	free(cfg->log_syslog_name);
	free(cfg->smtp_helo_name);
	free_paths(&cfg->bounce_classes);
	free(cfg);
}

/*
 * The default of a path list key: its one path, with line 0 so that a
 * reader can tell it from a path the operator wrote (bounce.classes).
 */
static void
set_default_paths(struct cfg_ctx *ctx, const struct cfg_key *k)
{
	struct cfg_paths *p = (struct cfg_paths *)(void *)((char *)ctx->cfg +
	    k->off);

	free_paths(p);
	p->path = xcalloc(1, sizeof(*p->path));
	p->line = xcalloc(1, sizeof(*p->line));
	p->path[0] = xstrdup(k->def);
	p->line[0] = 0;
	p->n = 1;
}

static void
free_paths(struct cfg_paths *p)
{
	for (size_t i = 0; i < p->n; i++)
		free(p->path[i]);
	free(p->path);
	free(p->line);
	memset(p, 0, sizeof(*p));
}

/* One file key's check for cfg_check_files. */
static int
check_file(const struct cfg *cfg, size_t i, const char *key,
    const char *path, unsigned long line, struct vbuf *why)
{
	struct stat st;
	int fd, err;

	if (path == NULL)
		return 0;
	if ((fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK)) == -1) {
		err = errno;
		vbuf_setf(why, "%s:%lu: webhooks[%zu].%s: %s: %s", cfg->path,
		    line, i, key, path, strerror(err));
		return -1;
	}
	if (fstat(fd, &st) == -1 || !S_ISREG(st.st_mode)) {
		(void)close(fd);
		vbuf_setf(why, "%s:%lu: webhooks[%zu].%s: %s: not a regular "
		    "file", cfg->path, line, i, key, path);
		return -1;
	}
	(void)close(fd);
	return 0;
}

unsigned char *
cfg_secret_read(const char *path, size_t *len, struct vbuf *why)
{
	unsigned char *buf;
	struct stat st;
	ssize_t n;
	size_t got = 0;
	int fd, err;

	/* Non-blocking: a FIFO named by mistake must not hang master. */
	if ((fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK)) == -1) {
		err = errno;
		vbuf_setf(why, "%s: %s", path, strerror(err));
		return NULL;
	}
	if (fstat(fd, &st) == -1 || !S_ISREG(st.st_mode)) {
		(void)close(fd);
		vbuf_setf(why, "%s: not a regular file", path);
		return NULL;
	}
	/* One byte over the limit tells "too long" from "exactly full". */
	buf = xmalloc(CFG_SECRET_MAX + 1);
	while (got < CFG_SECRET_MAX + 1) {
		n = read(fd, buf + got, CFG_SECRET_MAX + 1 - got);
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1) {
			err = errno;
			vbuf_setf(why, "%s: %s", path, strerror(err));
			got = 0;
			goto fail;
		}
		if (n == 0)
			break;
		got += (size_t)n;
	}
	(void)close(fd);
	fd = -1;
	if (got > CFG_SECRET_MAX) {
		vbuf_setf(why, "%s: longer than %d bytes", path,
		    CFG_SECRET_MAX);
		goto fail;
	}
	while (got > 0 && strchr(" \t\r\n", buf[got - 1]) != NULL &&
	    buf[got - 1] != '\0')
		got--;
	if (got == 0) {
		/* An empty key would sign with nothing: refuse, never skip. */
		vbuf_setf(why, "%s: empty (or only white space)", path);
		goto fail;
	}
	*len = got;
	return buf;
fail:
	if (fd != -1)
		(void)close(fd);
	OPENSSL_cleanse(buf, CFG_SECRET_MAX + 1);
	free(buf);
	return NULL;
}

int
cfg_check_files(const struct cfg *cfg, struct vbuf *why)
{
	const struct cfg_webhook *w;
	struct vbuf sub;
	unsigned char *secret;
	size_t i, len;

	for (i = 0; i < cfg->nwebhooks; i++) {
		w = &cfg->webhooks[i];
		/* The secret as webhookd will read it: also not empty. */
		if (w->secret_file != NULL) {
			vbuf_init(&sub, 0);
			if ((secret = cfg_secret_read(w->secret_file, &len,
			    &sub)) == NULL) {
				vbuf_setf(why, "%s:%lu: webhooks[%zu]."
				    "secret_file: %s", cfg->path,
				    w->secret_file_line, i, sub.data);
				vbuf_release(&sub);
				return -1;
			}
			vbuf_release(&sub);
			OPENSSL_cleanse(secret, len);
			free(secret);
		}
		if (check_file(cfg, i, "sendgrid_key_file",
		    w->sendgrid_key_file, w->sendgrid_key_file_line,
		    why) == -1 ||
		    check_file(cfg, i, "ca_file", w->ca_file, w->ca_file_line,
		    why) == -1)
			return -1;
	}
	return 0;
}

void
cfg_paths_where(const struct cfg *cfg, const char *key,
    const struct cfg_paths *p, size_t i, char *buf, size_t size)
{
	unsigned long line = i < p->n ? p->line[i] : 0;

	if (line != 0)
		(void)snprintf(buf, size, p->list ? "%s:%lu: %s[%zu]" :
		    "%s:%lu: %s", cfg->path, line, key, i);
	else
		(void)snprintf(buf, size, p->list ? "%s: %s[%zu]" : "%s: %s",
		    cfg->path, key, i);
}

static void
free_listener(struct cfg_listener *l)
{
	free(l->name);
	free(l->address);
	free(l->host);
	free(l->port);
}

const struct cfg_transport *
cfg_transport_lookup(const struct cfg *cfg, const char *domain)
{
	const char *d;
	size_t i;

	if (cfg == NULL)
		return NULL;
	/* Exact domain, then each parent domain ("a.b.c" -> "b.c" -> "c"). */
	for (d = domain; d != NULL && *d != '\0' && *d != '[';) {
		for (i = 0; i < cfg->ntransports; i++)
			if (strcasecmp(cfg->transports[i].domain, d) == 0)
				return &cfg->transports[i];
		d = strchr(d, '.');
		if (d != NULL)
			d++;
	}
	for (i = 0; i < cfg->ntransports; i++)
		if (strcmp(cfg->transports[i].domain, "*") == 0)
			return &cfg->transports[i];
	return NULL;
}

int
cfg_nexthop_key(const struct cfg *cfg, const char *domain, char *key,
    size_t size)
{
	const struct cfg_transport *t = cfg_transport_lookup(cfg, domain);
	struct nexthop via;

	if (t == NULL)
		return nexthop_key(domain, NULL, key, size);
	memset(&via, 0, sizeof(via));
	(void)snprintf(via.host, sizeof(via.host), "%s", t->host);
	via.port = t->port;
	via.no_mx = t->no_mx;
	return nexthop_key(domain, &via, key, size);
}

const struct cfg_transport *
cfg_transport_failover(const struct cfg *cfg, const char *key)
{
	char k[NEXTHOP_KEY_MAX + 1];
	size_t i;

	if (cfg == NULL)
		return NULL;
	for (i = 0; i < cfg->ntransports; i++)
		if (cfg->transports[i].nhops > 1 &&
		    nexthop_format(&cfg->transports[i].hops[0], k,
		    sizeof(k)) == 0 && strcmp(k, key) == 0)
			return &cfg->transports[i];
	return NULL;
}

const char *
cfg_smtp_tls_name(enum cfg_smtp_tls level)
{
	const struct cfg_enum *e;

	for (e = smtp_tls_levels; e->name != NULL; e++)
		if ((int)e->value == (int)level)
			return e->name;
	return "?";
}

const char *
cfg_tls_mode_name(enum cfg_tls_mode mode)
{
	const struct cfg_enum *e;

	for (e = tls_modes; e->name != NULL; e++)
		if (e->value == (int)mode)
			return e->name;
	return "unknown";
}

const char * const *
cfg_key_names(void)
{
	static const char *names[nitems(cfg_keys) + nitems(listener_keys) +
	    nitems(webhook_keys) + 1];
	size_t i, j, n = 0;

	if (names[0] != NULL)
		return names;
	for (i = 0; i < nitems(cfg_keys); i++) {
		names[n++] = cfg_keys[i].name;
		if (cfg_keys[i].type == CFG_T_LISTENERS)
			for (j = 0; j < nitems(listener_keys); j++)
				names[n++] = listener_keys[j].name;
		if (cfg_keys[i].type == CFG_T_WEBHOOKS)
			for (j = 0; j < nitems(webhook_keys); j++)
				names[n++] = webhook_keys[j].name;
	}
	names[n] = NULL;
	return names;
}

/*
 * Formats "FILE:LINE: KEY: reason" (no LINE when 0, no KEY when NULL) into
 * ctx->why. Returns -1 for the caller to pass up.
 */
static int
cfg_err(struct cfg_ctx *ctx, unsigned long line, const char *key,
    const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	yamlfile_vwhy(ctx->why, ctx->file, line, key == NULL ? NULL :
	    log_safe(key), fmt, ap);
	va_end(ap);
	return -1;
}

static yaml_node_t *
cfg_node(struct cfg_ctx *ctx, int index)
{
	return yaml_document_get_node(ctx->doc, index);
}

static unsigned long
node_line(const yaml_node_t *node)
{
	return (unsigned long)node->start_mark.line + 1;
}

/* Gets the text of a scalar node: non-empty, no NUL, bounded. */
static int
get_scalar(struct cfg_ctx *ctx, yaml_node_t *node, unsigned long line,
    const char *key, const char **out)
{
	const char *s = NULL;
	size_t len;

	if (node == NULL)
		return cfg_err(ctx, line, key, "missing value");
	switch (node->type) {
	case YAML_SCALAR_NODE:
		break;
	case YAML_MAPPING_NODE:
		return cfg_err(ctx, line, key,
		    "expected a single value, not a mapping");
	case YAML_SEQUENCE_NODE:
		return cfg_err(ctx, line, key,
		    "expected a single value, not a list");
	default:
		return cfg_err(ctx, line, key, "expected a single value");
	}
	s = (const char *)node->data.scalar.value;
	len = node->data.scalar.length;
	if (len == 0)
		return cfg_err(ctx, line, key, "empty value");
	if (len > CFG_MAX_VALUE)
		return cfg_err(ctx, line, key, "value longer than %d bytes",
		    CFG_MAX_VALUE);
	if (strlen(s) != len)
		return cfg_err(ctx, line, key, "value contains a NUL byte");
	*out = s;
	return 0;
}

/*
 * Checks that node is a mapping of at most CFG_MAX_ENTRIES pairs whose keys
 * are distinct, non-empty scalars without NUL bytes.
 */
static int
check_map(struct cfg_ctx *ctx, yaml_node_t *node, unsigned long line,
    const char *key)
{
	char full[CFG_MAX_KEY];
	yaml_node_pair_t *p, *q;
	yaml_node_t *k, *k2;
	const char *s = NULL;

	if (node == NULL || node->type != YAML_MAPPING_NODE)
		return cfg_err(ctx, line, key, "expected a mapping%s",
		    node != NULL && node->type == YAML_SEQUENCE_NODE ?
		    ", not a list" : "");
	if (node->data.mapping.pairs.top - node->data.mapping.pairs.start >
	    CFG_MAX_ENTRIES)
		return cfg_err(ctx, line, key, "more than %d entries",
		    CFG_MAX_ENTRIES);
	for (p = node->data.mapping.pairs.start;
	    p < node->data.mapping.pairs.top; p++) {
		k = cfg_node(ctx, p->key);
		if (k == NULL || k->type != YAML_SCALAR_NODE)
			return cfg_err(ctx, k == NULL ? line : node_line(k),
			    key, "a key must be a plain name");
		s = (const char *)k->data.scalar.value;
		if (k->data.scalar.length == 0 ||
		    strlen(s) != k->data.scalar.length ||
		    k->data.scalar.length > CFG_MAX_VALUE)
			return cfg_err(ctx, node_line(k), key,
			    "empty or malformed key");
		for (q = node->data.mapping.pairs.start; q < p; q++) {
			k2 = cfg_node(ctx, q->key);
			if (k2->data.scalar.length == k->data.scalar.length &&
			    memcmp(k2->data.scalar.value, k->data.scalar.value,
			    k->data.scalar.length) == 0) {
				if (key == NULL)
					snprintf(full, sizeof(full), "%s", s);
				else
					snprintf(full, sizeof(full), "%s.%s",
					    key, s);
				return cfg_err(ctx, node_line(k), full,
				    "duplicate key (first on line %lu)",
				    node_line(k2));
			}
		}
	}
	return 0;
}

/* Checks that node is a list of at most max items. */
static int
check_seq(struct cfg_ctx *ctx, yaml_node_t *node, unsigned long line,
    const char *key, size_t max)
{
	if (node == NULL || node->type != YAML_SEQUENCE_NODE)
		return cfg_err(ctx, line, key, "expected a list%s",
		    node != NULL && node->type == YAML_MAPPING_NODE ?
		    ", not a mapping" : "");
	if ((size_t)(node->data.sequence.items.top -
	    node->data.sequence.items.start) > max)
		return cfg_err(ctx, line, key, "more than %zu entries", max);
	return 0;
}

/*
 * Finds name in tab. With after_bracket, compares name with what follows
 * the "[]." of each entry (the listener keys).
 */
static const struct cfg_key *
find_key(const struct cfg_key *tab, size_t n, const char *name,
    int after_bracket)
{
	const char *kn;
	size_t i;

	for (i = 0; i < n; i++) {
		kn = tab[i].name;
		if (after_bracket)
			kn += sizeof(LISTENER_PREFIX) - 1;
		if (strcmp(kn, name) == 0)
			return &tab[i];
	}
	return NULL;
}

/* Returns 1 if some key is "name.something" (tls, queue, log, ...). */
static int
is_section(const char *name)
{
	size_t i, len = strlen(name);

	for (i = 0; i < nitems(cfg_keys); i++)
		if (strncmp(cfg_keys[i].name, name, len) == 0 &&
		    cfg_keys[i].name[len] == '.')
			return 1;
	return 0;
}

static int
walk_top(struct cfg_ctx *ctx, yaml_node_t *root)
{
	yaml_node_pair_t *p;
	yaml_node_t *k, *v;
	const struct cfg_key *key;
	const char *name;

	if (check_map(ctx, root, node_line(root), NULL) == -1)
		return -1;
	for (p = root->data.mapping.pairs.start;
	    p < root->data.mapping.pairs.top; p++) {
		k = cfg_node(ctx, p->key);
		v = cfg_node(ctx, p->value);
		name = (const char *)k->data.scalar.value;
		if (strchr(name, '.') != NULL)
			key = NULL;
		else
			key = find_key(cfg_keys, nitems(cfg_keys), name, 0);
		if (key != NULL) {
			if (set_key(ctx, key, v, node_line(k)) == -1)
				return -1;
		} else if (strchr(name, '.') == NULL && is_section(name)) {
			if (walk_section(ctx, name, v, node_line(k)) == -1)
				return -1;
		} else
			return cfg_err(ctx, node_line(k), name, "unknown key");
	}
	return 0;
}

/* A mapping such as "queue: { min_backoff: 5m }": keys "queue.*". */
static int
walk_section(struct cfg_ctx *ctx, const char *section, yaml_node_t *node,
    unsigned long line)
{
	char full[CFG_MAX_KEY];
	yaml_node_pair_t *p;
	yaml_node_t *k;
	const struct cfg_key *key;
	const char *name;
	int n;

	if (check_map(ctx, node, line, section) == -1)
		return -1;
	for (p = node->data.mapping.pairs.start;
	    p < node->data.mapping.pairs.top; p++) {
		k = cfg_node(ctx, p->key);
		name = (const char *)k->data.scalar.value;
		n = snprintf(full, sizeof(full), "%s.%s", section, name);
		key = NULL;
		if (n > 0 && (size_t)n < sizeof(full) &&
		    strchr(name, '.') == NULL)
			key = find_key(cfg_keys, nitems(cfg_keys), full, 0);
		if (key == NULL)
			return cfg_err(ctx, node_line(k), full,
			    "unknown key");
		if (set_key(ctx, key, cfg_node(ctx, p->value),
		    node_line(k)) == -1)
			return -1;
	}
	return 0;
}

/* Sets a top-level key from its value node; line is the key's line. */
static int
set_key(struct cfg_ctx *ctx, const struct cfg_key *key, yaml_node_t *v,
    unsigned long line)
{
	struct vbuf reason;
	const char *s = NULL;
	int rc;

	ctx->line[key - cfg_keys] = line;
	switch (key->type) {
	case CFG_T_CIDRS:
		return set_cidrs(ctx, key, v, line);
	case CFG_T_LISTENERS:
		return set_listeners(ctx, key->name, v, line);
	case CFG_T_TRANSPORT:
		return set_transport(ctx, key->name, v, line);
	case CFG_T_PATHS:
		return set_paths(ctx, key, v, line);
	case CFG_T_WEBHOOKS:
		return set_webhooks(ctx, key->name, v, line);
	case CFG_T_USERS:
		return set_users(ctx, key, v, line);
	case CFG_T_POOLS:
		return set_pools(ctx, key->name, v, line);
	case CFG_T_WARMUP:
		return set_warmup(ctx, key->name, v, line);
	case CFG_T_SCHEDULE:
		return set_warmup_schedule(ctx, key->name, v, line);
	default:
		break;
	}
	if (get_scalar(ctx, v, line, key->name, &s) == -1)
		return -1;
	vbuf_init(&reason, 0);
	rc = set_scalar(key, ctx->cfg, s, &reason);
	if (rc == -1)
		cfg_err(ctx, line, key->name, "%s", reason.data);
	vbuf_release(&reason);
	return rc;
}

/*
 * The scalar setter: parses s as key's type, checks its bounds and stores
 * it in base (a struct cfg or cfg_listener). Returns -1 with a reason.
 */
static int
set_scalar(const struct cfg_key *key, void *base, const char *s,
    struct vbuf *reason)
{
	char lo[32], hi[32];
	void *field = (char *)base + key->off;
	const struct cfg_enum *e;
	uint64_t u;
	int64_t d;

	switch (key->type) {
	case CFG_T_PATH:
		if (check_path(s, reason) == -1)
			return -1;
		/* FALLTHROUGH */
	case CFG_T_STRING:
		if (key->check != NULL && key->check(s, reason) == -1)
			return -1;
		free(*(char **)field);
		*(char **)field = xstrdup(s);
		return 0;
	case CFG_T_BOOL:
		if (strcasecmp(s, "true") == 0 || strcasecmp(s, "yes") == 0 ||
		    strcasecmp(s, "on") == 0)
			*(int *)field = 1;
		else if (strcasecmp(s, "false") == 0 ||
		    strcasecmp(s, "no") == 0 || strcasecmp(s, "off") == 0)
			*(int *)field = 0;
		else {
			vbuf_setf(reason, "\"%s\" is not true or false",
			    log_safe(s));
			return -1;
		}
		return 0;
	case CFG_T_UINT:
		if (parse_u64(s, 0, UINT64_MAX, &u) == -1) {
			vbuf_setf(reason, "\"%s\" is not an unsigned integer",
			    log_safe(s));
			return -1;
		}
		break;
	case CFG_T_DURATION:
		if (parse_duration(s, &d) == -1) {
			vbuf_setf(reason, "\"%s\" is not a duration "
			    "(a number with s, m, h or d)", log_safe(s));
			return -1;
		}
		u = (uint64_t)d;
		break;
	case CFG_T_SIZE:
		if (parse_size(s, &u) == -1) {
			vbuf_setf(reason, "\"%s\" is not a size "
			    "(a number with k, m or g)", log_safe(s));
			return -1;
		}
		break;
	case CFG_T_ENUM:
		for (e = key->enums; e->name != NULL; e++)
			if (strcmp(e->name, s) == 0) {
				*(int *)field = e->value;
				return 0;
			}
		vbuf_setf(reason, "\"%s\" is not one of:", log_safe(s));
		for (e = key->enums; e->name != NULL; e++)
			vbuf_addf(reason, "%s %s", e == key->enums ? "" : ",",
			    e->name);
		return -1;
	default:
		log_panic("cfg: %s: no scalar setter", key->name);
	}

	/* The numeric types: bounds, then store. */
	if (u < key->min || u > key->max) {
		fmt_bound(lo, sizeof(lo), key->type, key->min);
		fmt_bound(hi, sizeof(hi), key->type, key->max);
		vbuf_setf(reason, "%s is out of range (%s to %s)",
		    log_safe(s), lo, hi);
		return -1;
	}
	switch (key->type) {
	case CFG_T_UINT:
		*(unsigned *)field = (unsigned)u;
		break;
	case CFG_T_DURATION:
		*(int64_t *)field = (int64_t)u;
		break;
	default:
		*(uint64_t *)field = u;
		break;
	}
	return 0;
}

/* An absolute path name of at most PATH_MAX - 1 bytes, no controls. */
static int
check_path(const char *s, struct vbuf *reason)
{
	size_t i;

	if (s[0] != '/') {
		vbuf_setf(reason, "\"%s\" is not an absolute path",
		    log_safe(s));
		return -1;
	}
	if (strlen(s) >= PATH_MAX) {
		vbuf_setf(reason, "path longer than %d bytes", PATH_MAX - 1);
		return -1;
	}
	for (i = 0; s[i] != '\0'; i++)
		if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f) {
			vbuf_setf(reason, "control character in path");
			return -1;
		}
	return 0;
}

/*
 * A path, or a list of 1 to key->max paths, into the struct cfg_paths at
 * key->off, each with its line.
 */
static int
set_paths(struct cfg_ctx *ctx, const struct cfg_key *k, yaml_node_t *node,
    unsigned long line)
{
	char key[CFG_MAX_KEY];
	struct cfg_paths *p = (struct cfg_paths *)(void *)((char *)ctx->cfg +
	    k->off);
	struct vbuf reason;
	yaml_node_item_t *it;
	yaml_node_t *item;
	const char *s = NULL;
	size_t n, i;
	int rc = -1;

	free_paths(p);
	if (node != NULL && node->type == YAML_SEQUENCE_NODE) {
		if (check_seq(ctx, node, line, k->name, k->max) == -1)
			return -1;
		n = (size_t)(node->data.sequence.items.top -
		    node->data.sequence.items.start);
		if (n == 0)
			return cfg_err(ctx, line, k->name, "empty list");
		it = node->data.sequence.items.start;
		p->list = 1;
	} else {
		n = 1;
		it = NULL;
	}
	p->path = xcalloc(n, sizeof(*p->path));
	p->line = xcalloc(n, sizeof(*p->line));
	vbuf_init(&reason, 0);
	for (i = 0; i < n; i++) {
		item = it != NULL ? cfg_node(ctx, it[i]) : node;
		if (p->list)
			snprintf(key, sizeof(key), "%s[%zu]", k->name, i);
		else
			snprintf(key, sizeof(key), "%s", k->name);
		if (p->list && item != NULL)
			line = node_line(item);
		if (get_scalar(ctx, item, line, key, &s) == -1)
			goto out;
		if (check_path(s, &reason) == -1) {
			cfg_err(ctx, line, key, "%s", reason.data);
			goto out;
		}
		p->path[i] = xstrdup(s);
		p->line[i] = line;
		p->n = i + 1;
	}
	rc = 0;
 out:
	vbuf_release(&reason);
	return rc;
}

/* Formats a bound the way it would be written: "1s", "7d", "1m", "64". */
static void
fmt_bound(char *buf, size_t size, enum cfg_type type, uint64_t v)
{
	static const struct {
		char		 unit;
		uint64_t	 mult;
	} durations[] = {
		{ 'd', DAY }, { 'h', HOUR }, { 'm', MINUTE },
	}, sizes[] = {
		{ 'g', GIB }, { 'm', MIB }, { 'k', KIB },
	};
	size_t i;

	for (i = 0; v != 0 && i < nitems(durations); i++) {
		if (type == CFG_T_DURATION && v % durations[i].mult == 0) {
			snprintf(buf, size, "%llu%c", (unsigned long long)
			    (v / durations[i].mult), durations[i].unit);
			return;
		}
		if (type == CFG_T_SIZE && v % sizes[i].mult == 0) {
			snprintf(buf, size, "%llu%c", (unsigned long long)
			    (v / sizes[i].mult), sizes[i].unit);
			return;
		}
	}
	snprintf(buf, size, "%llu%s", (unsigned long long)v,
	    type == CFG_T_DURATION ? "s" : "");
}

/* A list of prefixes; with min set, of single addresses only. */
static int
set_cidrs(struct cfg_ctx *ctx, const struct cfg_key *k, yaml_node_t *node,
    unsigned long line)
{
	char key[CFG_MAX_KEY];
	const char *name = k->name;
	struct cidr **list = (struct cidr **)(void *)((char *)ctx->cfg +
	    k->off);
	size_t *count = (size_t *)(void *)((char *)ctx->cfg + k->off_n);
	yaml_node_item_t *it;
	yaml_node_t *item;
	const char *s = NULL;
	size_t n, i;

	if (check_seq(ctx, node, line, name, CFG_MAX_ENTRIES) == -1)
		return -1;
	n = (size_t)(node->data.sequence.items.top -
	    node->data.sequence.items.start);
	free(*list);
	*count = 0;
	*list = xcalloc(n == 0 ? 1 : n, sizeof(struct cidr));
	for (i = 0, it = node->data.sequence.items.start; i < n; i++, it++) {
		item = cfg_node(ctx, *it);
		snprintf(key, sizeof(key), "%s[%zu]", name, i);
		if (item != NULL)
			line = node_line(item);
		if (get_scalar(ctx, item, line, key, &s) == -1)
			return -1;
		if (cidr_parse(s, &(*list)[i]) == -1)
			return cfg_err(ctx, line, key,
			    "\"%s\" is not an address or network "
			    "(a.b.c.d/n or IPv6/n)", log_safe(s));
		if (k->min != 0 && (*list)[i].prefix !=
		    ((*list)[i].family == AF_INET ? 32u : 128u))
			return cfg_err(ctx, line, key,
			    "\"%s\" is a network, not one address",
			    log_safe(s));
		*count = i + 1;
	}
	return 0;
}

/*
 * A list of user names (local_submission.users). Whether each exists is
 * not checked here: users come and go (a package's user may be created
 * after the file is written); smtpd compares names at connect.
 */
static int
set_users(struct cfg_ctx *ctx, const struct cfg_key *k, yaml_node_t *node,
    unsigned long line)
{
	char key[CFG_MAX_KEY];
	char ***list = (char ***)(void *)((char *)ctx->cfg + k->off);
	size_t *count = (size_t *)(void *)((char *)ctx->cfg + k->off_n);
	struct vbuf reason;
	yaml_node_item_t *it;
	yaml_node_t *item;
	const char *s = NULL;
	size_t n, i;

	if (check_seq(ctx, node, line, k->name, k->max) == -1)
		return -1;
	n = (size_t)(node->data.sequence.items.top -
	    node->data.sequence.items.start);
	free_strs(*list, *count);
	*count = 0;
	*list = xcalloc(n == 0 ? 1 : n, sizeof(char *));
	for (i = 0, it = node->data.sequence.items.start; i < n; i++, it++) {
		item = cfg_node(ctx, *it);
		snprintf(key, sizeof(key), "%s[%zu]", k->name, i);
		if (item != NULL)
			line = node_line(item);
		if (get_scalar(ctx, item, line, key, &s) == -1)
			return -1;
		vbuf_init(&reason, 0);
		if (check_user(s, &reason) == -1) {
			cfg_err(ctx, line, key, "%s", reason.data);
			vbuf_release(&reason);
			return -1;
		}
		vbuf_release(&reason);
		(*list)[i] = xstrdup(s);
		*count = i + 1;
	}
	return 0;
}

/*
 * smtp.pools: a mapping of pool name to a non-empty list of single
 * addresses, each address in at most one pool (an address's reputation
 * is its own: it cannot be shared by two pools' mail).
 */
static int
set_pools(struct cfg_ctx *ctx, const char *name, yaml_node_t *node,
    unsigned long line)
{
	char key[CFG_MAX_KEY];
	struct cfg *cfg = ctx->cfg;
	struct cfg_pool *p;
	yaml_node_pair_t *pr;
	yaml_node_t *k;
	const char *pname;
	size_t n, i;

	if (check_map(ctx, node, line, name) == -1)
		return -1;
	n = (size_t)(node->data.mapping.pairs.top -
	    node->data.mapping.pairs.start);
	if (n > CFG_POOLS_MAX)
		return cfg_err(ctx, line, name, "more than %d pools",
		    CFG_POOLS_MAX);
	free_pools(cfg);
	/* One more: the default pool from smtp.source_addresses. */
	cfg->smtp_pools = xcalloc(n + 1, sizeof(*cfg->smtp_pools));
	for (i = 0, pr = node->data.mapping.pairs.start; i < n; i++, pr++) {
		k = cfg_node(ctx, pr->key);
		pname = (const char *)k->data.scalar.value;
		snprintf(key, sizeof(key), "%s.%s", name, pname);
		if (!cfg_pool_name_ok(pname))
			return cfg_err(ctx, node_line(k), key, "\"%s\" is not "
			    "a pool name (1 to %d of a-z 0-9 _ -)",
			    log_safe(pname), CFG_POOL_NAME_MAX);
		p = &cfg->smtp_pools[cfg->nsmtp_pools++];
		p->name = xstrdup(pname);
		if (set_addrs(ctx, key, cfg_node(ctx, pr->value),
		    node_line(k), CFG_POOL_ADDRS_MAX, &p->addrs,
		    &p->naddrs) == -1)
			return -1;
		if (p->naddrs == 0)
			return cfg_err(ctx, node_line(k), key,
			    "a pool needs at least one address");
	}
	return 0;
}

/*
 * A list of at most max single addresses into *list and *count, each
 * also not in a pool before it (cfg->smtp_pools so far).
 */
static int
set_addrs(struct cfg_ctx *ctx, const char *name, yaml_node_t *node,
    unsigned long line, size_t max, struct cidr **list, size_t *count)
{
	char key[CFG_MAX_KEY];
	const struct cfg_pool *q;
	struct cidr *c;
	yaml_node_item_t *it;
	yaml_node_t *item;
	const char *s = NULL;
	size_t n, i, j;

	if (check_seq(ctx, node, line, name, max) == -1)
		return -1;
	n = (size_t)(node->data.sequence.items.top -
	    node->data.sequence.items.start);
	*list = xcalloc(n == 0 ? 1 : n, sizeof(struct cidr));
	for (i = 0, it = node->data.sequence.items.start; i < n; i++, it++) {
		item = cfg_node(ctx, *it);
		snprintf(key, sizeof(key), "%.100s[%zu]", name, i);
		if (item != NULL)
			line = node_line(item);
		if (get_scalar(ctx, item, line, key, &s) == -1)
			return -1;
		c = &(*list)[i];
		if (one_address(s, c) == -1)
			return cfg_err(ctx, line, key, "\"%s\" is not one "
			    "address (a.b.c.d or IPv6)", log_safe(s));
		for (q = ctx->cfg->smtp_pools; q != NULL &&
		    q < ctx->cfg->smtp_pools + ctx->cfg->nsmtp_pools; q++)
			for (j = 0; j < (q->addrs == *list ? i : q->naddrs);
			    j++)
				if (cidr_same(&q->addrs[j], c))
					return cfg_err(ctx, line, key,
					    "\"%s\" is already in pool %s",
					    log_safe(s), q->name);
		*count = i + 1;
	}
	return 0;
}

static void
free_pools(struct cfg *cfg)
{
	for (size_t i = 0; i < cfg->nsmtp_pools; i++) {
		free(cfg->smtp_pools[i].name);
		free(cfg->smtp_pools[i].addrs);
	}
	free(cfg->smtp_pools);
	cfg->smtp_pools = NULL;
	cfg->nsmtp_pools = 0;
}

/*
 * smtp.source_addresses is the pool "default": added to the pools, an
 * error when smtp.pools names a default pool as well (which addresses
 * would SPF name, which would mail leave from?).
 */
static int
default_pool(struct cfg_ctx *ctx)
{
	const struct cfg_key *ksrc;
	struct cfg *cfg = ctx->cfg;
	struct cfg_pool *p;
	size_t i, j, k;

	ksrc = find_key(cfg_keys, nitems(cfg_keys), "smtp.source_addresses",
	    0);
	ASSERT(ksrc != NULL);
	if (cfg_pool_lookup(cfg, CFG_POOL_DEFAULT) != NULL) {
		if (ctx->line[ksrc - cfg_keys] != 0)
			return cfg_err(ctx, ctx->line[ksrc - cfg_keys],
			    ksrc->name, "the pool \"default\" is also in "
			    "smtp.pools: give its addresses in one place");
		return 0;
	}
	if (cfg->nsmtp_source_addresses == 0)
		return 0;
	for (i = 0; i < cfg->nsmtp_pools; i++)
		for (j = 0; j < cfg->smtp_pools[i].naddrs; j++)
			for (k = 0; k < cfg->nsmtp_source_addresses; k++)
				if (cidr_same(&cfg->smtp_pools[i].addrs[j],
				    &cfg->smtp_source_addresses[k]))
					return cfg_err(ctx,
					    ctx->line[ksrc - cfg_keys],
					    ksrc->name, "an address of "
					    "the default pool is also in "
					    "pool %s", cfg->smtp_pools[i].name);
	if (cfg->smtp_pools == NULL)
		cfg->smtp_pools = xcalloc(1, sizeof(*cfg->smtp_pools));
	/* First (set_pools left room for it): SPF names it first. */
	memmove(cfg->smtp_pools + 1, cfg->smtp_pools, cfg->nsmtp_pools *
	    sizeof(*cfg->smtp_pools));
	cfg->nsmtp_pools++;
	p = &cfg->smtp_pools[0];
	p->name = xstrdup(CFG_POOL_DEFAULT);
	p->addrs = xcalloc(cfg->nsmtp_source_addresses, sizeof(*p->addrs));
	memcpy(p->addrs, cfg->smtp_source_addresses,
	    cfg->nsmtp_source_addresses * sizeof(*p->addrs));
	p->naddrs = cfg->nsmtp_source_addresses;
	return 0;
}

/*
 * smtp.warmup: a mapping of source address to the first day of its warmup
 * (YYYY-MM-DD, UTC). Each address must be in a pool (check_warmup, once
 * every pool is known).
 */
static int
set_warmup(struct cfg_ctx *ctx, const char *name, yaml_node_t *node,
    unsigned long line)
{
	char key[CFG_MAX_KEY];
	struct cfg *cfg = ctx->cfg;
	struct cfg_warmup *w;
	yaml_node_pair_t *pr;
	yaml_node_t *k;
	const char *a, *s = NULL;
	struct tm tm;
	time_t t;
	char *end;
	size_t n, i, j;
	int mday;

	if (check_map(ctx, node, line, name) == -1)
		return -1;
	n = (size_t)(node->data.mapping.pairs.top -
	    node->data.mapping.pairs.start);
	if (n > CFG_WARMUP_MAX)
		return cfg_err(ctx, line, name, "more than %d addresses",
		    CFG_WARMUP_MAX);
	free(cfg->smtp_warmup);
	cfg->smtp_warmup = xcalloc(n == 0 ? 1 : n, sizeof(*cfg->smtp_warmup));
	cfg->nsmtp_warmup = 0;
	for (i = 0, pr = node->data.mapping.pairs.start; i < n; i++, pr++) {
		k = cfg_node(ctx, pr->key);
		a = (const char *)k->data.scalar.value;
		snprintf(key, sizeof(key), "%s.%s", name, a);
		w = &cfg->smtp_warmup[i];
		if (one_address(a, &w->addr) == -1)
			return cfg_err(ctx, node_line(k), key, "\"%s\" is not "
			    "one address (a.b.c.d or IPv6)", log_safe(a));
		for (j = 0; j < i; j++)
			if (cidr_same(&cfg->smtp_warmup[j].addr, &w->addr))
				return cfg_err(ctx, node_line(k), key,
				    "given twice");
		if (get_scalar(ctx, cfg_node(ctx, pr->value), node_line(k),
		    key, &s) == -1)
			return -1;
		memset(&tm, 0, sizeof(tm));
		end = strptime(s, "%Y-%m-%d", &tm);
		mday = tm.tm_mday;
		/* timegm makes 2026-02-30 March 2nd: a day it kept. */
		if (end == NULL || *end != '\0' || strlen(s) != 10 ||
		    (t = timegm(&tm)) == (time_t)-1 || tm.tm_mday != mday)
			return cfg_err(ctx, node_line(k), key, "\"%s\" is not a "
			    "day (YYYY-MM-DD)", log_safe(s));
		w->start_day = (int64_t)t / DAY;
		cfg->nsmtp_warmup = i + 1;
	}
	return 0;
}

/* smtp.warmup_schedule: the daily caps, day 1 first, each 1 or more. */
static int
set_warmup_schedule(struct cfg_ctx *ctx, const char *name,
    yaml_node_t *node, unsigned long line)
{
	char key[CFG_MAX_KEY];
	struct cfg *cfg = ctx->cfg;
	yaml_node_item_t *it;
	yaml_node_t *item;
	const char *s = NULL;
	uint64_t v;
	size_t n, i;

	if (check_seq(ctx, node, line, name, CFG_WARMUP_DAYS_MAX) == -1)
		return -1;
	n = (size_t)(node->data.sequence.items.top -
	    node->data.sequence.items.start);
	if (n == 0)
		return cfg_err(ctx, line, name, "at least one day's cap");
	free(cfg->smtp_warmup_schedule);
	cfg->smtp_warmup_schedule = xcalloc(n, sizeof(uint32_t));
	cfg->nsmtp_warmup_schedule = 0;
	for (i = 0, it = node->data.sequence.items.start; i < n; i++, it++) {
		item = cfg_node(ctx, *it);
		snprintf(key, sizeof(key), "%s[%zu]", name, i);
		if (item != NULL)
			line = node_line(item);
		if (get_scalar(ctx, item, line, key, &s) == -1)
			return -1;
		if (parse_u64(s, 1, CFG_WARMUP_CAP_MAX, &v) == -1)
			return cfg_err(ctx, line, key, "\"%s\" is not a number "
			    "of messages from 1 to %d", log_safe(s),
			    CFG_WARMUP_CAP_MAX);
		cfg->smtp_warmup_schedule[i] = (uint32_t)v;
		cfg->nsmtp_warmup_schedule = i + 1;
	}
	return 0;
}

/*
 * Every warmup address is one of a pool's (a cap on an address no mail
 * leaves from is a mistake), and a schedule without smtp.warmup_schedule
 * is the shipped one: 50 messages a day per provider on the first day,
 * doubled each day for 14 days (409,600 on the 14th), then no cap.
 */
static int
check_warmup(struct cfg_ctx *ctx)
{
	struct cfg *cfg = ctx->cfg;
	const struct cfg_key *kw;
	const struct cidr *c;
	char a[64];
	size_t i, j;

	if (cfg->smtp_warmup_schedule == NULL) {
		cfg->nsmtp_warmup_schedule = CFG_WARMUP_DEFAULT_DAYS;
		cfg->smtp_warmup_schedule = xcalloc(CFG_WARMUP_DEFAULT_DAYS,
		    sizeof(uint32_t));
		for (i = 0; i < CFG_WARMUP_DEFAULT_DAYS; i++)
			cfg->smtp_warmup_schedule[i] = 50u << i;
	}
	kw = find_key(cfg_keys, nitems(cfg_keys), "smtp.warmup", 0);
	ASSERT(kw != NULL);
	for (i = 0; i < cfg->nsmtp_warmup; i++) {
		for (j = 0; (c = cfg_source_address(cfg, j)) != NULL; j++)
			if (cidr_same(c, &cfg->smtp_warmup[i].addr))
				break;
		if (c == NULL) {
			(void)inet_ntop(cfg->smtp_warmup[i].addr.family,
			    cfg->smtp_warmup[i].addr.addr, a, sizeof(a));
			return cfg_err(ctx, ctx->line[kw - cfg_keys], kw->name,
			    "%s is in no pool (smtp.source_addresses, "
			    "smtp.pools)", a);
		}
	}
	return 0;
}

int64_t
cfg_warmup_day(const struct cfg *cfg, const struct cidr *a, int64_t day)
{
	int64_t n;

	for (size_t i = 0; cfg != NULL && i < cfg->nsmtp_warmup; i++) {
		if (!cidr_same(&cfg->smtp_warmup[i].addr, a))
			continue;
		n = day - cfg->smtp_warmup[i].start_day;
		if (n < 0)
			n = 0;
		return (uint64_t)n < cfg->nsmtp_warmup_schedule ? n + 1 : -1;
	}
	return -1;
}

int64_t
cfg_warmup_cap(const struct cfg *cfg, const struct cidr *a, int64_t day)
{
	int64_t n = cfg_warmup_day(cfg, a, day);

	return n > 0 ? (int64_t)cfg->smtp_warmup_schedule[n - 1] : -1;
}

/* A single address (not a network) into c: 0, or -1. */
static int
one_address(const char *s, struct cidr *c)
{
	if (cidr_parse(s, c) == -1 ||
	    c->prefix != (c->family == AF_INET ? 32u : 128u))
		return -1;
	return 0;
}

/* The same single address. */
static int
cidr_same(const struct cidr *a, const struct cidr *b)
{
	return a->family == b->family && a->prefix == b->prefix &&
	    memcmp(a->addr, b->addr, a->family == AF_INET ? 4 : 16) == 0;
}

const struct cidr *
cfg_source_address(const struct cfg *cfg, size_t n)
{
	for (size_t i = 0; cfg != NULL && i < cfg->nsmtp_pools; i++) {
		if (n < cfg->smtp_pools[i].naddrs)
			return &cfg->smtp_pools[i].addrs[n];
		n -= cfg->smtp_pools[i].naddrs;
	}
	return NULL;
}

int
cfg_pool_name_ok(const char *name)
{
	size_t i;

	for (i = 0; name[i] != '\0'; i++)
		if (!((name[i] >= 'a' && name[i] <= 'z') ||
		    (name[i] >= '0' && name[i] <= '9') || name[i] == '_' ||
		    name[i] == '-'))
			return 0;
	return i > 0 && i <= CFG_POOL_NAME_MAX;
}

const struct cfg_pool *
cfg_pool_lookup(const struct cfg *cfg, const char *name)
{
	if (cfg == NULL)
		return NULL;
	if (name == NULL || name[0] == '\0')
		name = CFG_POOL_DEFAULT;
	for (size_t i = 0; i < cfg->nsmtp_pools; i++)
		if (strcmp(cfg->smtp_pools[i].name, name) == 0)
			return &cfg->smtp_pools[i];
	return NULL;
}

static void
free_strs(char **v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(v[i]);
	free(v);
}

/*
 * webhooks: a list of endpoint mappings (webhookd(8)). Its presence, even
 * empty, is what makes master run webhookd: without it the outbox stays
 * as relayq -o shows it and nothing consumes it.
 */
static int
set_webhooks(struct cfg_ctx *ctx, const char *name, yaml_node_t *node,
    unsigned long line)
{
	char key[CFG_MAX_KEY];
	struct cfg *cfg = ctx->cfg;
	yaml_node_item_t *it;
	yaml_node_t *item;
	size_t n, i;

	if (check_seq(ctx, node, line, name, CFG_MAX_WEBHOOKS) == -1)
		return -1;
	n = (size_t)(node->data.sequence.items.top -
	    node->data.sequence.items.start);
	cfg->webhooks = xcalloc(n == 0 ? 1 : n, sizeof(*cfg->webhooks));
	cfg->webhookd_processes = 1;
	for (i = 0, it = node->data.sequence.items.start; i < n; i++, it++) {
		item = cfg_node(ctx, *it);
		snprintf(key, sizeof(key), "%s[%zu]", name, i);
		cfg->nwebhooks = i + 1;
		if (item != NULL)
			line = node_line(item);
		if (check_map(ctx, item, line, key) == -1)
			return -1;
		if (set_webhook(ctx, &cfg->webhooks[i], item, i) == -1)
			return -1;
	}
	return 0;
}

/* One webhooks[] entry: node is a checked mapping. */
static int
set_webhook(struct cfg_ctx *ctx, struct cfg_webhook *w, yaml_node_t *node,
    size_t index)
{
	char key[CFG_MAX_KEY];
	unsigned long seen[nitems(webhook_keys)], line = node_line(node);
	struct vbuf reason, joined;
	yaml_node_pair_t *p;
	yaml_node_item_t *it;
	yaml_node_t *k, *v;
	const struct cfg_key *wk;
	const char *name, *s = NULL;
	size_t i;
	int rc = -1;

	memset(seen, 0, sizeof(seen));
	vbuf_init(&reason, 0);
	vbuf_init(&joined, 0);
	for (p = node->data.mapping.pairs.start;
	    p < node->data.mapping.pairs.top; p++) {
		k = cfg_node(ctx, p->key);
		name = (const char *)k->data.scalar.value;
		snprintf(key, sizeof(key), "webhooks[%zu].%s", index, name);
		for (wk = NULL, i = 0; i < nitems(webhook_keys); i++)
			if (strcmp(webhook_keys[i].name +
			    sizeof(WEBHOOK_PREFIX) - 1, name) == 0)
				wk = &webhook_keys[i];
		if (wk == NULL) {
			cfg_err(ctx, node_line(k), key, "unknown key");
			goto out;
		}
		seen[wk - webhook_keys] = node_line(k);
		v = cfg_node(ctx, p->value);
		if (v != NULL && v->type == YAML_SEQUENCE_NODE &&
		    strcmp(name, "events") == 0) {
			/* events: [delivered, bounced] as well as a string. */
			vbuf_reset(&joined);
			for (it = v->data.sequence.items.start;
			    it < v->data.sequence.items.top; it++) {
				if (get_scalar(ctx, cfg_node(ctx, *it),
				    node_line(k), key, &s) == -1)
					goto out;
				vbuf_addf(&joined, "%s%s", joined.len > 0 ?
				    "," : "", s);
			}
			s = joined.len > 0 ? joined.data : "";
		} else if (get_scalar(ctx, v, node_line(k), key, &s) == -1)
			goto out;
		if (set_scalar(wk, w, s, &reason) == -1) {
			cfg_err(ctx, node_line(k), key, "%s", reason.data);
			goto out;
		}
		if (strcmp(name, "secret_file") == 0)
			w->secret_file_line = node_line(k);
		else if (strcmp(name, "sendgrid_key_file") == 0)
			w->sendgrid_key_file_line = node_line(k);
		else if (strcmp(name, "ca_file") == 0)
			w->ca_file_line = node_line(k);
	}
	for (i = 0; i < nitems(webhook_keys); i++) {
		if (seen[i] != 0)
			continue;
		wk = &webhook_keys[i];
		snprintf(key, sizeof(key), "webhooks[%zu].%s", index,
		    wk->name + sizeof(WEBHOOK_PREFIX) - 1);
		if (wk->required) {
			cfg_err(ctx, line, key, "missing (required)");
			goto out;
		}
		if (wk->def != NULL && set_scalar(wk, w, wk->def,
		    &reason) == -1) {
			cfg_err(ctx, line, key, "bad default: %s",
			    reason.data);
			goto out;
		}
	}
	rc = 0;
 out:
	vbuf_release(&reason);
	vbuf_release(&joined);
	return rc;
}

static int
check_webhook_url(const char *s, struct vbuf *why)
{
	const char *host;

	if (strncmp(s, "https://", 8) == 0)
		host = s + 8;
	else if (strncmp(s, "http://", 7) == 0)
		host = s + 7;
	else {
		vbuf_setf(why, "\"%s\" is not an http:// or https:// URL",
		    log_safe(s));
		return -1;
	}
	if (*host == '\0' || *host == '/' || strlen(s) > 2048) {
		vbuf_setf(why, "\"%s\" has no host", log_safe(s));
		return -1;
	}
	for (; *s != '\0'; s++)
		if ((unsigned char)*s <= 0x20 || (unsigned char)*s >= 0x7f) {
			vbuf_setf(why, "a URL has no spaces or control "
			    "characters");
			return -1;
		}
	return 0;
}

/* A comma- or space-separated list of event names, each known. */
static int
check_webhook_events(const char *s, struct vbuf *why)
{
	static const char known[] = "," CFG_WEBHOOK_EVENTS_KNOWN ",";
	char name[40];
	size_t n;

	for (;;) {
		while (*s == ',' || *s == ' ')
			s++;
		if (*s == '\0')
			return 0;
		for (n = 0; s[n] != '\0' && s[n] != ',' && s[n] != ' '; n++)
			;
		if (n <= 32)
			(void)snprintf(name, sizeof(name), ",%.*s,", (int)n, s);
		if (n > 32 || strstr(known, name) == NULL) {
			vbuf_setf(why, "unknown event \"%.*s\" (known: %s)",
			    (int)(n > 32 ? 32 : n), s,
			    CFG_WEBHOOK_EVENTS_KNOWN);
			return -1;
		}
		s += n;
	}
}

static int
check_webhook_format(const char *s, struct vbuf *why)
{
	static const char *const formats[] = { "petrel", "mailgun",
	    "sendgrid", "postmark" };

	for (size_t i = 0; i < nitems(formats); i++)
		if (strcmp(s, formats[i]) == 0)
			return 0;
	vbuf_setf(why, "unknown format \"%s\" (known: petrel, mailgun, "
	    "sendgrid, postmark)", log_safe(s));
	return -1;
}

static int
set_listeners(struct cfg_ctx *ctx, const char *name, yaml_node_t *node,
    unsigned long line)
{
	char key[CFG_MAX_KEY];
	struct cfg *cfg = ctx->cfg;
	yaml_node_item_t *it;
	yaml_node_t *item;
	size_t n, i, j;

	if (check_seq(ctx, node, line, name, CFG_MAX_LISTENERS) == -1)
		return -1;
	n = (size_t)(node->data.sequence.items.top -
	    node->data.sequence.items.start);
	cfg->listeners = xcalloc(n == 0 ? 1 : n, sizeof(*cfg->listeners));
	for (i = 0, it = node->data.sequence.items.start; i < n; i++, it++) {
		item = cfg_node(ctx, *it);
		snprintf(key, sizeof(key), "%s[%zu]", name, i);
		cfg->nlisteners = i + 1;
		if (item != NULL)
			line = node_line(item);
		if (check_map(ctx, item, line, key) == -1)
			return -1;
		if (set_listener(ctx, &cfg->listeners[i], item, i) == -1)
			return -1;
		for (j = 0; j < i; j++)
			if (strcmp(cfg->listeners[j].name,
			    cfg->listeners[i].name) == 0) {
				snprintf(key, sizeof(key), "%s[%zu].name",
				    name, i);
				return cfg_err(ctx, line, key,
				    "duplicate listener name \"%s\"",
				    cfg->listeners[i].name);
			}
		if (cfg->listeners[i].tls != CFG_TLS_NONE &&
		    ctx->tls_line == 0) {
			ctx->tls_line = line;
			ctx->tls_listener = cfg->listeners[i].name;
		}
	}
	return 0;
}

/* One listeners[] entry: node is a checked mapping. */
static int
set_listener(struct cfg_ctx *ctx, struct cfg_listener *l, yaml_node_t *node,
    size_t index)
{
	char key[CFG_MAX_KEY];
	unsigned long seen[nitems(listener_keys)];
	unsigned long line = node_line(node), addr_line, tls_line;
	struct vbuf reason;
	yaml_node_pair_t *p;
	yaml_node_t *k;
	const struct cfg_key *lk;
	const char *name, *s = NULL;
	size_t i;
	int rc = -1;

	memset(seen, 0, sizeof(seen));
	vbuf_init(&reason, 0);
	for (p = node->data.mapping.pairs.start;
	    p < node->data.mapping.pairs.top; p++) {
		k = cfg_node(ctx, p->key);
		name = (const char *)k->data.scalar.value;
		snprintf(key, sizeof(key), "listeners[%zu].%s", index, name);
		lk = find_key(listener_keys, nitems(listener_keys), name, 1);
		if (lk == NULL) {
			cfg_err(ctx, node_line(k), key, "unknown key");
			goto out;
		}
		seen[lk - listener_keys] = node_line(k);
		if (get_scalar(ctx, cfg_node(ctx, p->value), node_line(k), key,
		    &s) == -1)
			goto out;
		if (set_scalar(lk, l, s, &reason) == -1) {
			cfg_err(ctx, node_line(k), key, "%s", reason.data);
			goto out;
		}
	}
	for (i = 0; i < nitems(listener_keys); i++) {
		if (seen[i] != 0)
			continue;
		lk = &listener_keys[i];
		snprintf(key, sizeof(key), "listeners[%zu].%s", index,
		    lk->name + sizeof(LISTENER_PREFIX) - 1);
		if (lk->required) {
			cfg_err(ctx, line, key, "missing (required)");
			goto out;
		}
		if (lk->def != NULL && set_scalar(lk, l, lk->def,
		    &reason) == -1) {
			cfg_err(ctx, line, key, "bad default: %s",
			    reason.data);
			goto out;
		}
	}

	lk = find_key(listener_keys, nitems(listener_keys), "address", 1);
	ASSERT(lk != NULL);
	addr_line = seen[lk - listener_keys];
	lk = find_key(listener_keys, nitems(listener_keys), "tls", 1);
	ASSERT(lk != NULL);
	tls_line = seen[lk - listener_keys] != 0 ?
	    seen[lk - listener_keys] : line;
	snprintf(key, sizeof(key), "listeners[%zu].address", index);
	if (parse_listen_address(l, &reason) == -1) {
		cfg_err(ctx, addr_line, key, "%s", reason.data);
		goto out;
	}
	snprintf(key, sizeof(key), "listeners[%zu].tls", index);
	if (l->tls == CFG_TLS_NONE && !host_is_loopback(l->host)) {
		cfg_err(ctx, tls_line, key, "none is allowed only on a "
		    "loopback address (127.0.0.0/8 or [::1]), not %s",
		    log_safe(l->address));
		goto out;
	}
	rc = 0;
 out:
	vbuf_release(&reason);
	return rc;
}

/*
 * Splits l->address: "a.b.c.d:port", "[IPv6]:port" or "*:port" into
 * l->host (without brackets) and l->port (canonical decimal).
 */
static int
parse_listen_address(struct cfg_listener *l, struct vbuf *reason)
{
	char host[INET6_ADDRSTRLEN + 1], port[8];
	unsigned char bin[16];
	const char *s = l->address, *end, *p;
	uint64_t n;
	size_t len;
	int af;

	if (s[0] == '[') {
		if ((end = strchr(s, ']')) == NULL || end[1] != ':') {
			vbuf_setf(reason, "\"%s\" is not [IPv6]:port",
			    log_safe(s));
			return -1;
		}
		s++;
		len = (size_t)(end - s);
		p = end + 2;
		af = AF_INET6;
	} else {
		if ((end = strrchr(s, ':')) == NULL) {
			vbuf_setf(reason, "\"%s\" is not host:port",
			    log_safe(s));
			return -1;
		}
		len = (size_t)(end - s);
		p = end + 1;
		af = AF_INET;
		if (memchr(s, ':', len) != NULL) {
			vbuf_setf(reason, "\"%s\": an IPv6 address needs "
			    "brackets, [IPv6]:port", log_safe(l->address));
			return -1;
		}
	}
	if (len == 0 || len >= sizeof(host)) {
		vbuf_setf(reason, "\"%s\": bad host", log_safe(l->address));
		return -1;
	}
	memcpy(host, s, len);
	host[len] = '\0';
	if (!(af == AF_INET && strcmp(host, "*") == 0) &&
	    inet_pton(af, host, bin) != 1) {
		vbuf_setf(reason, "\"%s\": the host must be an %s address%s",
		    log_safe(l->address), af == AF_INET ? "IPv4" : "IPv6",
		    af == AF_INET ? " or *" : "");
		return -1;
	}
	if (strlen(p) > 5 || parse_u64(p, 1, 65535, &n) == -1) {
		vbuf_setf(reason, "\"%s\": the port must be 1 to 65535",
		    log_safe(l->address));
		return -1;
	}
	snprintf(port, sizeof(port), "%u", (unsigned)n);
	free(l->host);
	free(l->port);
	l->host = xstrdup(host);
	l->port = xstrdup(port);
	return 0;
}

static int
host_is_loopback(const char *host)
{
	struct in_addr a4;
	struct in6_addr a6;

	if (inet_pton(AF_INET, host, &a4) == 1)
		return (ntohl(a4.s_addr) >> 24) == 127;
	if (inet_pton(AF_INET6, host, &a6) == 1)
		return IN6_IS_ADDR_LOOPBACK(&a6) ||
		    (IN6_IS_ADDR_V4MAPPED(&a6) && a6.s6_addr[12] == 127);
	return 0;
}

static int
set_transport(struct cfg_ctx *ctx, const char *name, yaml_node_t *node,
    unsigned long line)
{
	char key[CFG_MAX_KEY], ikey[CFG_MAX_KEY + 2];
	struct cfg *cfg = ctx->cfg;
	struct cfg_transport *t;
	struct vbuf reason;
	yaml_node_pair_t *p;
	yaml_node_t *k, *v;
	const char *dom, *s = NULL;
	size_t n, i, j, h, nh;
	int rc = -1, list;

	if (check_map(ctx, node, line, name) == -1)
		return -1;
	n = (size_t)(node->data.mapping.pairs.top -
	    node->data.mapping.pairs.start);
	cfg->transports = xcalloc(n == 0 ? 1 : n, sizeof(*cfg->transports));
	vbuf_init(&reason, 0);
	for (i = 0, p = node->data.mapping.pairs.start; i < n; i++, p++) {
		k = cfg_node(ctx, p->key);
		dom = (const char *)k->data.scalar.value;
		line = node_line(k);
		snprintf(key, sizeof(key), "%s.%s", name, log_safe(dom));
		if (strcmp(dom, "*") != 0 && !hostname_ok(dom)) {
			cfg_err(ctx, line, key, "not a domain name or \"*\"");
			goto out;
		}
		t = &cfg->transports[i];
		cfg->ntransports = i + 1;
		t->domain = xstrdup(dom);
		for (j = 0; t->domain[j] != '\0'; j++)
			t->domain[j] = (char)tolower(
			    (unsigned char)t->domain[j]);
		for (j = 0; j < i; j++)
			if (strcmp(cfg->transports[j].domain,
			    t->domain) == 0) {
				cfg_err(ctx, line, key, "duplicate domain");
				goto out;
			}
		/* One next hop, or a list tried in order (failover). */
		v = cfg_node(ctx, p->value);
		list = v != NULL && v->type == YAML_SEQUENCE_NODE;
		if (list) {
			if (check_seq(ctx, v, line, key,
			    CFG_TRANSPORT_HOPS_MAX) == -1)
				goto out;
			nh = (size_t)(v->data.sequence.items.top -
			    v->data.sequence.items.start);
			if (nh == 0) {
				cfg_err(ctx, line, key, "an empty list");
				goto out;
			}
		} else
			nh = 1;
		t->hops = xcalloc(nh, sizeof(*t->hops));
		for (h = 0; h < nh; h++) {
			snprintf(ikey, sizeof(ikey), "%s%s", key,
			    list ? "[]" : "");
			if (get_scalar(ctx, list ? cfg_node(ctx,
			    v->data.sequence.items.start[h]) : v, line, ikey,
			    &s) == -1)
				goto out;
			if (parse_nexthop(s, &t->hops[h], &reason) == -1) {
				cfg_err(ctx, line, ikey, "%s", reason.data);
				goto out;
			}
			for (j = 0; j < h; j++)
				if (nexthop_same(&t->hops[j], &t->hops[h])) {
					cfg_err(ctx, line, ikey,
					    "\"%s\" listed twice", s);
					goto out;
				}
			t->nhops = h + 1;
		}
		t->host = xstrdup(t->hops[0].host);
		t->port = t->hops[0].port;
		t->no_mx = t->hops[0].no_mx;
		/* smtp finds the list by its first hop (qmgr's key). */
		for (j = 0; j < i; j++)
			if (nexthop_same(&cfg->transports[j].hops[0],
			    &t->hops[0]) && !transport_same_hops(
			    &cfg->transports[j], t)) {
				cfg_err(ctx, line, key, "the same first next "
				    "hop as \"%s\" with other next hops after it",
				    cfg->transports[j].domain);
				goto out;
			}
	}
	rc = 0;
 out:
	vbuf_release(&reason);
	return rc;
}

static int
nexthop_same(const struct nexthop *a, const struct nexthop *b)
{
	return strcasecmp(a->host, b->host) == 0 && a->port == b->port &&
	    a->no_mx == b->no_mx;
}

static int
transport_same_hops(const struct cfg_transport *a,
    const struct cfg_transport *b)
{
	size_t i;

	if (a->nhops != b->nhops)
		return 0;
	for (i = 0; i < a->nhops; i++)
		if (!nexthop_same(&a->hops[i], &b->hops[i]))
			return 0;
	return 1;
}

/*
 * "[host]:port", "host:port", "[host]", "host"; brackets skip MX. The
 * notation is nexthop_parse's; the host must also be a host name, or an
 * IPv6 address in brackets. The host is stored in lower case, as
 * nexthop_key writes it.
 */
static int
parse_nexthop(const char *s, struct nexthop *nh, struct vbuf *reason)
{
	unsigned char bin[16];
	size_t i;

	if (nexthop_parse(s, nh, reason) == -1)
		return -1;
	if (!hostname_ok(nh->host) && !(nh->no_mx &&
	    inet_pton(AF_INET6, nh->host, bin) == 1)) {
		vbuf_setf(reason, "\"%s\" is not a host name or address",
		    log_safe(nh->host));
		return -1;
	}
	for (i = 0; nh->host[i] != '\0'; i++)
		nh->host[i] = (char)tolower((unsigned char)nh->host[i]);
	if (inet_pton(AF_INET, nh->host, bin) == 1 ||
	    inet_pton(AF_INET6, nh->host, bin) == 1)
		nh->no_mx = 1;	/* as nexthop_key: an address is not an MX */
	return 0;
}

/* Gives every key not in the file its default from the schema. */
static int
apply_defaults(struct cfg_ctx *ctx)
{
	struct vbuf reason;
	const struct cfg_key *key;
	char *dyn;
	size_t i;
	int rc = 0;

	vbuf_init(&reason, 0);
	for (i = 0; i < nitems(cfg_keys) && rc == 0; i++) {
		key = &cfg_keys[i];
		if (ctx->line[i] != 0)
			continue;
		if (key->type == CFG_T_PATHS) {
			if (key->def != NULL)
				set_default_paths(ctx, key);
			continue;
		}
		if (key->def != NULL) {
			if (set_scalar(key, ctx->cfg, key->def, &reason) == -1)
				rc = cfg_err(ctx, 0, key->name,
				    "bad default: %s", reason.data);
		} else if (key->defn != NULL) {
			if ((dyn = key->defn(&reason)) == NULL)
				rc = cfg_err(ctx, 0, key->name, "%s",
				    reason.data);
			else {
				if (set_scalar(key, ctx->cfg, dyn,
				    &reason) == -1)
					rc = cfg_err(ctx, 0, key->name,
					    "default \"%s\": %s; set it",
					    log_safe(dyn), reason.data);
				free(dyn);
			}
		}
	}
	vbuf_release(&reason);
	return rc;
}

/* The rules between keys, once every key has its value. */
static int
cross_check(struct cfg_ctx *ctx)
{
	const struct cfg_key *kmin, *kmax, *kcert, *kkey, *kusers;
	struct cfg *cfg = ctx->cfg;
	unsigned long lmin, lmax, lcert, lkey;

	kmin = find_key(cfg_keys, nitems(cfg_keys), "queue.min_backoff", 0);
	kmax = find_key(cfg_keys, nitems(cfg_keys), "queue.max_backoff", 0);
	kcert = find_key(cfg_keys, nitems(cfg_keys), "tls.certificate", 0);
	kkey = find_key(cfg_keys, nitems(cfg_keys), "tls.private_key", 0);
	ASSERT(kmin != NULL && kmax != NULL && kcert != NULL && kkey != NULL);
	lmin = ctx->line[kmin - cfg_keys];
	lmax = ctx->line[kmax - cfg_keys];
	lcert = ctx->line[kcert - cfg_keys];
	lkey = ctx->line[kkey - cfg_keys];

	/* The first pair is also tls.certificate/tls.private_key alone. */
	if (cfg->tls_certificates.n > 0)
		cfg->tls_certificate = cfg->tls_certificates.path[0];
	if (cfg->tls_private_keys.n > 0)
		cfg->tls_private_key = cfg->tls_private_keys.path[0];
	if (cfg->queue_max_backoff < cfg->queue_min_backoff) {
		if (lmax != 0)
			return cfg_err(ctx, lmax, kmax->name,
			    "must not be less than queue.min_backoff");
		return cfg_err(ctx, lmin, kmin->name,
		    "must not be more than queue.max_backoff");
	}
	if (ctx->tls_line != 0 && cfg->tls_certificate == NULL)
		return cfg_err(ctx, ctx->tls_line, kcert->name,
		    "required: listener \"%s\" uses TLS", ctx->tls_listener);
	if (ctx->tls_line != 0 && cfg->tls_private_key == NULL)
		return cfg_err(ctx, ctx->tls_line, kkey->name,
		    "required: listener \"%s\" uses TLS", ctx->tls_listener);
	if (cfg->tls_certificate != NULL && cfg->tls_private_key == NULL)
		return cfg_err(ctx, lcert, kkey->name,
		    "required with tls.certificate");
	if (cfg->tls_private_key != NULL && cfg->tls_certificate == NULL)
		return cfg_err(ctx, lkey, kcert->name,
		    "required with tls.private_key");
	cfg->metricsd_processes = cfg->metrics_listen != NULL;
	if (default_pool(ctx) == -1 || check_warmup(ctx) == -1)
		return -1;
	/* Local submission names the credential its sessions run under. */
	kusers = find_key(cfg_keys, nitems(cfg_keys),
	    "local_submission.users", 0);
	ASSERT(kusers != NULL);
	if (cfg->nlocal_submission_users > 0 &&
	    cfg->local_submission_credential == NULL)
		return cfg_err(ctx, ctx->line[kusers - cfg_keys],
		    "local_submission.credential",
		    "required with local_submission.users");
	/* Each chain has its key, in the same place of the other list. */
	if (cfg->tls_private_keys.n != cfg->tls_certificates.n)
		return cfg_err(ctx, lkey, kkey->name, "%zu %s, but "
		    "tls.certificate (line %lu) has %zu: each certificate "
		    "needs its key, in the same order",
		    cfg->tls_private_keys.n, cfg->tls_private_keys.n == 1 ?
		    "entry" : "entries", lcert, cfg->tls_certificates.n);
	return 0;
}

/* A user name as useradd(8) takes it: [A-Za-z0-9._-], no leading '-'. */
static int
check_user(const char *s, struct vbuf *reason)
{
	size_t i;

	for (i = 0; s[i] != '\0'; i++)
		if (!(isalnum((unsigned char)s[i]) || s[i] == '_' ||
		    s[i] == '.' || (s[i] == '-' && i > 0)))
			break;
	if (s[i] != '\0' || i > CFG_MAX_USER) {
		vbuf_setf(reason, "\"%s\" is not a user name", log_safe(s));
		return -1;
	}
	return 0;
}

/*
 * A credential name as smtpd keeps an AUTH user name (at most 64 bytes):
 * printable ASCII without spaces, so it logs and compares as AUTH's do.
 */
static int
check_credential(const char *s, struct vbuf *reason)
{
	size_t i;

	for (i = 0; s[i] != '\0'; i++)
		if (s[i] <= ' ' || s[i] >= 0x7f)
			break;
	if (s[i] != '\0' || i > CFG_MAX_CREDENTIAL) {
		vbuf_setf(reason, "\"%s\" is not a credential name",
		    log_safe(s));
		return -1;
	}
	return 0;
}

/*
 * Postfix's syslog_name: the tools match "NAME/program[pid]:", so the
 * name is kept to the characters a syslog tag and their patterns take
 * without quoting (a '/' allows "petrel/out" as Postfix allows
 * "postfix/out").
 */
static int
check_syslog_name(const char *s, struct vbuf *reason)
{
	size_t i;

	for (i = 0; s[i] != '\0'; i++)
		if (!(isalnum((unsigned char)s[i]) || s[i] == '_' ||
		    ((s[i] == '.' || s[i] == '-' || s[i] == '/') && i > 0)))
			break;
	if (i == 0 || s[i] != '\0' || i > CFG_MAX_SYSLOG_NAME) {
		vbuf_setf(reason, "\"%s\" is not a syslog name (letters, "
		    "digits, '_', '.', '-', '/', at most %d)", log_safe(s),
		    CFG_MAX_SYSLOG_NAME);
		return -1;
	}
	return 0;
}

/* "IPv4", "IPv4:port", "IPv6" or "[IPv6]:port". */
static int
check_resolver(const char *s, struct vbuf *reason)
{
	char host[64];
	unsigned char a[16];
	const char *port = NULL, *end;
	uint64_t p;
	size_t n;

	if (s[0] == '[') {
		if ((end = strchr(s, ']')) == NULL)
			goto bad;
		n = (size_t)(end - s - 1);
		if (end[1] == ':')
			port = end + 2;
		else if (end[1] != '\0')
			goto bad;
		s++;
	} else if (strchr(s, ':') != NULL && strchr(s, ':') ==
	    strrchr(s, ':')) {
		n = (size_t)(strchr(s, ':') - s);
		port = strchr(s, ':') + 1;
	} else
		n = strlen(s);
	if (n == 0 || n >= sizeof(host))
		goto bad;
	memcpy(host, s, n);
	host[n] = '\0';
	if (inet_pton(AF_INET, host, a) != 1 &&
	    inet_pton(AF_INET6, host, a) != 1)
		goto bad;
	if (port != NULL && parse_u64(port, 1, 65535, &p) == -1)
		goto bad;
	return 0;
bad:
	vbuf_setf(reason, "\"%s\" is not a resolver address (IP, IP:port or "
	    "[IPv6]:port)", log_safe(s));
	return -1;
}

/*
 * "IPv4:port" or "[IPv6]:port": a numeric address, since metricsd binds it
 * itself, unprivileged (so a port above 1023), and no name lookup should
 * decide where an unauthenticated endpoint listens.
 */
static int
check_metrics_listen(const char *s, struct vbuf *reason)
{
	const char *colon = strrchr(s, ':');

	if (colon == NULL || colon == s || (strchr(s, ':') != colon &&
	    (s[0] != '[' || colon[-1] != ']')) ||
	    check_resolver(s, reason) == -1) {
		vbuf_setf(reason, "\"%s\" is not a listen address (IPv4:port "
		    "or [IPv6]:port)", log_safe(s));
		return -1;
	}
	return 0;
}

/* LDH labels of 1-63 characters, at most 253 in all (RFC 1123 2.1). */
static int
hostname_ok(const char *s)
{
	size_t i, label = 0;

	if (s[0] == '\0' || strlen(s) > CFG_MAX_HOSTNAME)
		return 0;
	for (i = 0; s[i] != '\0'; i++) {
		if (s[i] == '.') {
			if (label == 0 || s[i - 1] == '-')
				return 0;
			label = 0;
			continue;
		}
		if (!isalnum((unsigned char)s[i]) && s[i] != '-')
			return 0;
		if (s[i] == '-' && label == 0)
			return 0;
		if (++label > CFG_MAX_LABEL)
			return 0;
	}
	return label != 0 && s[i - 1] != '-';
}

static int
check_hostname(const char *s, struct vbuf *reason)
{
	if (!hostname_ok(s)) {
		vbuf_setf(reason, "\"%s\" is not a host name", log_safe(s));
		return -1;
	}
	return 0;
}

static int
check_ciphers(const char *s, struct vbuf *reason)
{
	size_t i;

	for (i = 0; s[i] != '\0'; i++)
		if ((unsigned char)s[i] < 0x20 || (unsigned char)s[i] > 0x7e)
			break;
	if (s[i] != '\0' || i > CFG_MAX_CIPHERS) {
		vbuf_setf(reason, "not a printable OpenSSL cipher list of "
		    "at most %d bytes", CFG_MAX_CIPHERS);
		return -1;
	}
	return 0;
}

static int
check_listener_name(const char *s, struct vbuf *reason)
{
	size_t i;

	for (i = 0; s[i] != '\0'; i++)
		if (!isalnum((unsigned char)s[i]) && s[i] != '_' &&
		    s[i] != '-')
			break;
	if (s[i] != '\0' || i > CFG_MAX_LISTENER_NAME) {
		vbuf_setf(reason, "\"%s\" is not a name of 1 to %d letters, "
		    "digits, _ or -", log_safe(s), CFG_MAX_LISTENER_NAME);
		return -1;
	}
	return 0;
}

/* The default of myhostname: gethostname(2). */
static char *
default_hostname(struct vbuf *reason)
{
	char buf[CFG_MAX_HOSTNAME + 2];

	if (gethostname(buf, sizeof(buf)) == -1) {
		vbuf_setf(reason, "gethostname: %s; set it", strerror(errno));
		return NULL;
	}
	buf[sizeof(buf) - 1] = '\0';
	return xstrdup(buf);
}
