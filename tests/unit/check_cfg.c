/*
 * check_cfg.c - unit tests for lib/cfg: petrel.yaml parsing.
 *
 * Every default, a full file, each class of error with its
 * "FILE:LINE: KEY: reason" text, transport lookup order, the sample
 * etc/petrel.yaml, and the agreement of the schema with the keys that
 * man/petrel.yaml.5 documents (".TP" then ".B key"). Run from the top of
 * the tree; temporary files live in a mkdtemp(3) directory.
 */
#include <sys/socket.h>
#include <sys/stat.h>

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cfg.h"
#include "cidr.h"
#include "vbuf.h"

#define MAN_PAGE	"man/petrel.yaml.5"
#define SAMPLE		"etc/petrel.yaml"

/* The TLS keys that every file with a TLS listener needs. */
#define TLS_KEYS	"tls:\n  certificate: /c.pem\n  private_key: /k.pem\n"

static char tmpdir[64];
static char cfgpath[128];

static void	setup(void);
static void	teardown(void);
static void	write_file(const char *, const char *, size_t);
static struct cfg *load(const char *, struct vbuf *);
static void	expect_error(const char *, const char *, const char *);
static void	expect_where(const struct cfg *, const char *,
		    const struct cfg_paths *, size_t, const char *);
static Suite	*cfg_suite(void);

static void
setup(void)
{
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/check_cfg.XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(tmpdir));
	snprintf(cfgpath, sizeof(cfgpath), "%s/petrel.yaml", tmpdir);
}

static void
teardown(void)
{
	unlink(cfgpath);
	rmdir(tmpdir);
}

static void
write_file(const char *path, const char *text, size_t len)
{
	FILE *fp;

	fp = fopen(path, "w");
	ck_assert_ptr_nonnull(fp);
	ck_assert_uint_eq(fwrite(text, 1, len, fp), len);
	ck_assert_int_eq(fclose(fp), 0);
}

/* Writes text to the temporary petrel.yaml and loads it. */
static struct cfg *
load(const char *text, struct vbuf *why)
{
	write_file(cfgpath, text, strlen(text));
	return cfg_load(cfgpath, why);
}

/*
 * Loading text must fail, and why must contain "FILE:LINE: KEY: " built
 * from where (e.g. "3: queue.max_backoff", "" for no line) and then the
 * reason fragment.
 */
static void
expect_error(const char *text, const char *where, const char *reason)
{
	struct vbuf *why = vbuf_create(0);
	struct vbuf *want = vbuf_create(0);
	struct cfg *cfg;

	cfg = load(text, why);
	ck_assert_msg(cfg == NULL, "loaded: %s", text);
	if (where[0] == '\0')
		vbuf_setf(want, "%s: ", cfgpath);
	else
		vbuf_setf(want, "%s:%s: ", cfgpath, where);
	ck_assert_msg(strncmp(why->data, want->data, want->len) == 0,
	    "why \"%s\" does not start with \"%s\"", why->data, want->data);
	ck_assert_msg(strstr(why->data, reason) != NULL,
	    "why \"%s\" lacks \"%s\"", why->data, reason);
	vbuf_free(want);
	vbuf_free(why);
}

START_TEST(test_defaults)
{
	struct vbuf *why = vbuf_create(0);
	char host[256];
	struct cfg *cfg;

	cfg = load("", why);
	ck_assert_msg(cfg != NULL, "%s", why->data);
	ck_assert_str_eq(cfg->path, cfgpath);
	ck_assert_str_eq(cfg->mail_owner, "petrel");
	ck_assert_str_eq(cfg->queue_directory, "/var/spool/petrel");
	ck_assert_ptr_null(cfg->daemon_directory);
	ck_assert_int_eq(gethostname(host, sizeof(host)), 0);
	ck_assert_str_eq(cfg->myhostname, host);
	ck_assert_uint_eq(cfg->nlisteners, 0);
	ck_assert_ptr_null(cfg->tls_certificate);
	ck_assert_ptr_null(cfg->tls_private_key);
	ck_assert_int_eq(cfg->tls_min_version, 12);
	ck_assert_str_eq(cfg->tls_ciphers,
	    "ECDHE+AESGCM:ECDHE+CHACHA20:DHE+AESGCM:!aNULL:!MD5:!DSS");
	ck_assert_uint_eq(cfg->ntrusted_networks, 0);
	ck_assert_uint_eq(cfg->ntransports, 0);
	ck_assert_int_eq(cfg->queue_min_backoff, 300);
	ck_assert_int_eq(cfg->queue_max_backoff, 3600);
	ck_assert_int_eq(cfg->queue_max_lifetime, 5 * 86400);
	ck_assert_uint_eq(cfg->queue_map_size, 1024ULL * 1024 * 1024);
	ck_assert_int_eq(cfg->log_destination, CFG_LOG_SYSLOG);
	ck_assert_str_eq(cfg->log_syslog_name, "petrel");
	ck_assert_ptr_null(cfg->log_accounting);
	ck_assert_uint_eq(cfg->smtpd_processes, 2);
	ck_assert_uint_eq(cfg->smtpd_max_sessions, 500);
	ck_assert_uint_eq(cfg->smtpd_message_size_limit, 25 * 1024 * 1024);
	ck_assert_uint_eq(cfg->smtpd_max_recipients, 1000);
	ck_assert_int_eq(cfg->smtpd_timeout, 300);
	ck_assert_uint_eq(cfg->smtp_processes, 16);
	ck_assert_int_eq(cfg->smtp_connect_timeout, 30);
	ck_assert_int_eq(cfg->smtp_command_timeout, 300);
	ck_assert_ptr_null(cfg->smtp_helo_name);
	ck_assert_ptr_null(cfg_transport_lookup(cfg, "example.com"));
	cfg_free(cfg);

	/* A file with only comments, and an empty mapping, are the same. */
	cfg = load("# nothing\n", why);
	ck_assert_msg(cfg != NULL, "%s", why->data);
	cfg_free(cfg);
	cfg = load("{}\n", why);
	ck_assert_msg(cfg != NULL, "%s", why->data);
	cfg_free(cfg);
	vbuf_free(why);
}
END_TEST

static const char full[] =
    "mail_owner: mailer\n"
    "queue_directory: /srv/q\n"
    "daemon_directory: /usr/lib/petrel\n"
    "myhostname: relay.example.org\n"
    "listeners:\n"
    "  - { name: submission, address: \"0.0.0.0:587\", tls: starttls }\n"
    "  - name: smtps\n"
    "    address: \"[::]:465\"\n"
    "    tls: implicit\n"
    "  - { name: local, address: \"127.0.0.2:2525\", tls: none }\n"
    "  - { name: local6, address: \"[::1]:2526\", tls: none }\n"
    "  - { name: dflt, address: \"*:0025\" }\n"
    "tls:\n"
    "  certificate: /etc/petrel/tls/fullchain.pem\n"
    "  private_key: /etc/petrel/tls/privkey.pem\n"
    "  min_version: \"1.3\"\n"
    "  ciphers: ECDHE+AESGCM\n"
    "trusted_networks: [ 10.0.0.0/8, \"2001:db8::/32\", 192.0.2.7 ]\n"
    "transport:\n"
    "  Example.COM: \"[mx.example.com]:2525\"\n"
    "  \"*\": \"[127.0.0.1]\"\n"
    "  sub.example.net: relay.example.net:587\n"
    "  v6.example: \"[2001:db8::25]:26\"\n"
    "  plain.example: smarthost.example\n"
    "  list.example: [ \"[Relay-A.example]:587\", relay-b.example ]\n"
    "queue: { min_backoff: 90, max_backoff: 2h, max_lifetime: 1w,"
    " map_size: 10m }\n"
    "log:\n"
    "  destination: stderr\n"
    "  accounting: /var/log/petrel/accounting.jsonl\n"
    "smtpd:\n"
    "  processes: 64\n"
    "  max_sessions: 1\n"
    "  message_size_limit: 512k\n"
    "  max_recipients: 100000\n"
    "  timeout: 1h\n"
    "smtp:\n"
    "  processes: 1\n"
    "  connect_timeout: 10s\n"
    "  command_timeout: 2m\n"
    "  helo_name: out.example.org\n"
    "  tls: verify\n"
    "  tls_ca_file: /etc/petrel/ca.pem\n";

START_TEST(test_full)
{
	struct vbuf *why = vbuf_create(0);
	const struct cfg_transport *t;
	struct cfg *cfg;

	cfg = load(full, why);
	ck_assert_msg(cfg != NULL, "%s", why->data);
	ck_assert_str_eq(cfg->mail_owner, "mailer");
	ck_assert_str_eq(cfg->queue_directory, "/srv/q");
	ck_assert_str_eq(cfg->daemon_directory, "/usr/lib/petrel");
	ck_assert_str_eq(cfg->myhostname, "relay.example.org");

	ck_assert_uint_eq(cfg->nlisteners, 5);
	ck_assert_str_eq(cfg->listeners[0].name, "submission");
	ck_assert_str_eq(cfg->listeners[0].address, "0.0.0.0:587");
	ck_assert_str_eq(cfg->listeners[0].host, "0.0.0.0");
	ck_assert_str_eq(cfg->listeners[0].port, "587");
	ck_assert_int_eq(cfg->listeners[0].tls, CFG_TLS_STARTTLS);
	ck_assert_str_eq(cfg->listeners[1].name, "smtps");
	ck_assert_str_eq(cfg->listeners[1].host, "::");
	ck_assert_str_eq(cfg->listeners[1].port, "465");
	ck_assert_int_eq(cfg->listeners[1].tls, CFG_TLS_IMPLICIT);
	ck_assert_str_eq(cfg->listeners[2].host, "127.0.0.2");
	ck_assert_int_eq(cfg->listeners[2].tls, CFG_TLS_NONE);
	ck_assert_str_eq(cfg->listeners[3].host, "::1");
	ck_assert_int_eq(cfg->listeners[3].tls, CFG_TLS_NONE);
	ck_assert_str_eq(cfg->listeners[4].host, "*");
	ck_assert_str_eq(cfg->listeners[4].port, "25");
	ck_assert_int_eq(cfg->listeners[4].tls, CFG_TLS_STARTTLS);
	ck_assert_str_eq(cfg_tls_mode_name(cfg->listeners[1].tls),
	    "implicit");

	ck_assert_str_eq(cfg->tls_certificate,
	    "/etc/petrel/tls/fullchain.pem");
	ck_assert_str_eq(cfg->tls_private_key, "/etc/petrel/tls/privkey.pem");
	ck_assert_int_eq(cfg->tls_min_version, 13);
	ck_assert_str_eq(cfg->tls_ciphers, "ECDHE+AESGCM");

	ck_assert_uint_eq(cfg->ntrusted_networks, 3);
	ck_assert_int_eq(cfg->trusted_networks[0].family, AF_INET);
	ck_assert_uint_eq(cfg->trusted_networks[0].prefix, 8);
	ck_assert_int_eq(cfg->trusted_networks[1].family, AF_INET6);
	ck_assert_uint_eq(cfg->trusted_networks[1].prefix, 32);
	ck_assert_uint_eq(cfg->trusted_networks[2].prefix, 32);

	ck_assert_uint_eq(cfg->ntransports, 6);
	t = cfg_transport_lookup(cfg, "list.example");
	ck_assert_uint_eq(t->nhops, 2);
	ck_assert_str_eq(t->host, "relay-a.example");
	ck_assert_uint_eq(t->port, 587);
	ck_assert_int_eq(t->no_mx, 1);
	ck_assert_str_eq(t->hops[1].host, "relay-b.example");
	ck_assert_uint_eq(t->hops[1].port, 25);
	ck_assert_int_eq(t->hops[1].no_mx, 0);
	ck_assert_ptr_eq(cfg_transport_failover(cfg,
	    "[relay-a.example]:587"), t);
	ck_assert_ptr_null(cfg_transport_failover(cfg,
	    "[mx.example.com]:2525"));
	t = cfg_transport_lookup(cfg, "example.com");
	ck_assert_uint_eq(t->nhops, 1);
	ck_assert_ptr_nonnull(t);
	ck_assert_str_eq(t->domain, "example.com");
	ck_assert_str_eq(t->host, "mx.example.com");
	ck_assert_uint_eq(t->port, 2525);
	ck_assert_int_eq(t->no_mx, 1);
	t = cfg_transport_lookup(cfg, "sub.example.net");
	ck_assert_str_eq(t->host, "relay.example.net");
	ck_assert_uint_eq(t->port, 587);
	ck_assert_int_eq(t->no_mx, 0);
	t = cfg_transport_lookup(cfg, "v6.example");
	ck_assert_str_eq(t->host, "2001:db8::25");
	ck_assert_uint_eq(t->port, 26);
	ck_assert_int_eq(t->no_mx, 1);
	t = cfg_transport_lookup(cfg, "plain.example");
	ck_assert_str_eq(t->host, "smarthost.example");
	ck_assert_uint_eq(t->port, 25);
	ck_assert_int_eq(t->no_mx, 0);
	t = cfg_transport_lookup(cfg, "other.test");
	ck_assert_str_eq(t->domain, "*");
	ck_assert_str_eq(t->host, "127.0.0.1");
	ck_assert_uint_eq(t->port, 25);
	ck_assert_int_eq(t->no_mx, 1);

	ck_assert_int_eq(cfg->smtp_tls, CFG_SMTP_TLS_VERIFY);
	ck_assert_str_eq(cfg_smtp_tls_name(cfg->smtp_tls), "verify");
	ck_assert_str_eq(cfg->smtp_tls_ca_file, "/etc/petrel/ca.pem");
	ck_assert_int_eq(cfg->smtp_failover_retry, 60);

	ck_assert_int_eq(cfg->queue_min_backoff, 90);
	ck_assert_int_eq(cfg->queue_max_backoff, 7200);
	ck_assert_int_eq(cfg->queue_max_lifetime, 7 * 86400);
	ck_assert_uint_eq(cfg->queue_map_size, 10 * 1024 * 1024);
	ck_assert_int_eq(cfg->log_destination, CFG_LOG_STDERR);
	ck_assert_str_eq(cfg->log_accounting,
	    "/var/log/petrel/accounting.jsonl");
	ck_assert_uint_eq(cfg->smtpd_processes, 64);
	ck_assert_uint_eq(cfg->smtpd_max_sessions, 1);
	ck_assert_uint_eq(cfg->smtpd_message_size_limit, 512 * 1024);
	ck_assert_uint_eq(cfg->smtpd_max_recipients, 100000);
	ck_assert_int_eq(cfg->smtpd_timeout, 3600);
	ck_assert_uint_eq(cfg->smtp_processes, 1);
	ck_assert_int_eq(cfg->smtp_connect_timeout, 10);
	ck_assert_int_eq(cfg->smtp_command_timeout, 120);
	ck_assert_str_eq(cfg->smtp_helo_name, "out.example.org");
	cfg_free(cfg);
	vbuf_free(why);
}
END_TEST

START_TEST(test_sample)
{
	struct vbuf *why = vbuf_create(0);
	struct cfg *cfg;

	cfg = cfg_load(SAMPLE, why);
	ck_assert_msg(cfg != NULL, "%s", why->data);
	ck_assert_uint_eq(cfg->nlisteners, 3);
	ck_assert_str_eq(cfg->listeners[0].port, "587");
	ck_assert_int_eq(cfg->listeners[0].tls, CFG_TLS_STARTTLS);
	ck_assert_str_eq(cfg->listeners[1].port, "465");
	ck_assert_int_eq(cfg->listeners[1].tls, CFG_TLS_IMPLICIT);
	ck_assert_str_eq(cfg->listeners[2].port, "2525");
	ck_assert_int_eq(cfg->listeners[2].tls, CFG_TLS_STARTTLS);
	ck_assert_str_eq(cfg->tls_certificate,
	    "/etc/petrel/tls/fullchain.pem");
	ck_assert_str_eq(cfg->tls_private_key, "/etc/petrel/tls/privkey.pem");
	ck_assert_str_eq(cfg->log_accounting,
	    "/var/log/petrel/accounting.jsonl");
	ck_assert_uint_eq(cfg->ntransports, 0);
	/* The shipped shaping file, installed beside it. */
	ck_assert_str_eq(cfg->shaping_file, "/etc/petrel/shaping.yaml");
	cfg_free(cfg);
	vbuf_free(why);
}
END_TEST

START_TEST(test_missing_file)
{
	struct vbuf *why = vbuf_create(0);
	struct vbuf *want = vbuf_create(0);

	vbuf_setf(want, "%s/absent.yaml", tmpdir);
	ck_assert_ptr_null(cfg_load(want->data, why));
	vbuf_addf(want, ": cannot open: No such file or directory");
	ck_assert_str_eq(why->data, want->data);

	/* A directory is not a configuration file. */
	ck_assert_ptr_null(cfg_load(tmpdir, why));
	ck_assert_ptr_nonnull(strstr(why->data, "not a regular file"));
	/* A NULL why is allowed. */
	ck_assert_ptr_null(cfg_load(tmpdir, NULL));
	vbuf_free(want);
	vbuf_free(why);
}
END_TEST

START_TEST(test_unknown_key)
{
	expect_error("mail_owner: petrel\nbogus: 1\n", "2: bogus",
	    "unknown key");
	expect_error("queue:\n  min_backoff: 5m\n  colour: red\n",
	    "3: queue.colour", "unknown key");
	/* Dotted names are documentation, not file syntax. */
	expect_error("queue.min_backoff: 5m\n", "1: queue.min_backoff",
	    "unknown key");
	expect_error("listeners:\n  - name: a\n    address: \"127.0.0.1:25\"\n"
	    "    tls: none\n    port: 25\n", "5: listeners[0].port",
	    "unknown key");
}
END_TEST

START_TEST(test_wrong_type)
{
	expect_error("# comment\nmail_owner: [a, b]\n", "2: mail_owner",
	    "expected a single value, not a list");
	expect_error("queue:\n  min_backoff: { a: b }\n",
	    "2: queue.min_backoff", "expected a single value, not a mapping");
	expect_error("\n\nqueue: 5m\n", "3: queue", "expected a mapping");
	expect_error("listeners: { name: a }\n", "1: listeners",
	    "expected a list, not a mapping");
	expect_error("listeners:\n  - just-a-name\n", "2: listeners[0]",
	    "expected a mapping");
	expect_error("trusted_networks: 10.0.0.0/8\n", "1: trusted_networks",
	    "expected a list");
	expect_error("trusted_networks:\n  - 10.0.0.0/8\n  - [ 1.2.3.4 ]\n",
	    "3: trusted_networks[1]", "expected a single value");
	expect_error("transport: \"[a]:25\"\n", "1: transport",
	    "expected a mapping");
	expect_error("transport:\n  example.com: { a: b }\n",
	    "2: transport.example.com", "expected a single value");
	expect_error("mail_owner:\n", "1: mail_owner", "empty value");
	expect_error("mail_owner: \"a\\0b\"\n", "1: mail_owner", "NUL byte");
}
END_TEST

START_TEST(test_bad_value)
{
	expect_error("smtpd:\n  processes: 65\n", "2: smtpd.processes",
	    "65 is out of range (1 to 64)");
	expect_error("smtpd:\n  processes: 0\n", "2: smtpd.processes",
	    "out of range");
	expect_error("smtpd:\n  processes: -1\n", "2: smtpd.processes",
	    "not an unsigned integer");
	expect_error("smtpd: { max_recipients: 100001 }\n",
	    "1: smtpd.max_recipients", "out of range (1 to 100000)");
	expect_error("smtpd: { max_sessions: 99999999999999999999999 }\n",
	    "1: smtpd.max_sessions", "not an unsigned integer");
	expect_error("smtp: { processes: 257 }\n", "1: smtp.processes",
	    "out of range (1 to 256)");
	expect_error("queue:\n  max_lifetime: 5x\n", "2: queue.max_lifetime",
	    "\"5x\" is not a duration");
	expect_error("queue:\n  max_lifetime: 101d\n",
	    "2: queue.max_lifetime", "out of range (1s to 100d)");
	expect_error("queue: { min_backoff: 0 }\n", "1: queue.min_backoff",
	    "out of range");
	expect_error("queue: { map_size: 512k }\n", "1: queue.map_size",
	    "512k is out of range (1m to 1024g)");
	expect_error("queue: { map_size: 1q }\n", "1: queue.map_size",
	    "not a size");
	expect_error("queue: { map_size: 99999999999g }\n",
	    "1: queue.map_size", "not a size");
	expect_error("smtpd: { message_size_limit: 1023 }\n",
	    "1: smtpd.message_size_limit", "out of range (1k to 1g)");
	expect_error("smtpd: { timeout: 2h }\n", "1: smtpd.timeout",
	    "out of range (1s to 1h)");
	expect_error("log: { destination: file }\n", "1: log.destination",
	    "\"file\" is not one of: syslog, stderr");
	expect_error("log: { syslog_name: \"a b\" }\n", "1: log.syslog_name",
	    "\"a b\" is not a syslog name");
	expect_error("log: { syslog_name: /petrel }\n", "1: log.syslog_name",
	    "is not a syslog name");
	expect_error("log: { syslog_name: \"\" }\n", "1: log.syslog_name",
	    "empty value");
	expect_error("log: { syslog_name: petrel%s }\n", "1: log.syslog_name",
	    "is not a syslog name");
	expect_error("tls: { min_version: 1.1 }\n", "1: tls.min_version",
	    "not one of: 1.2, 1.3");
	expect_error("queue_directory: spool\n", "1: queue_directory",
	    "not an absolute path");
	expect_error("log: { accounting: \"/var/log/a\\nb\" }\n",
	    "1: log.accounting", "control character");
	expect_error("myhostname: foo_bar\n", "1: myhostname",
	    "\"foo_bar\" is not a host name");
	expect_error("myhostname: -foo.example\n", "1: myhostname",
	    "not a host name");
	expect_error("myhostname: foo..example\n", "1: myhostname",
	    "not a host name");
	expect_error("smtp: { helo_name: \"a b\" }\n", "1: smtp.helo_name",
	    "not a host name");
	expect_error("mail_owner: \"-root\"\n", "1: mail_owner",
	    "not a user name");
	expect_error("tls: { ciphers: \"ECDHE\\tx\" }\n", "1: tls.ciphers",
	    "cipher list");
	expect_error("trusted_networks: [ 10.0.0.0/8, 10.0.0.0/33 ]\n",
	    "1: trusted_networks[1]", "not an address or network");
	expect_error("log: { retention: 30m }\n", "1: log.retention",
	    "out of range (1h to 3650d)");
	expect_error("log: { map_size: 512k }\n", "1: log.map_size",
	    "out of range");
}

/* The delivery log's keys (lib/evlog): defaults and a full setting. */
START_TEST(test_log_keys)
{
	struct vbuf *why = vbuf_create(0);
	struct cfg *cfg;

	cfg = load("", why);
	ck_assert_msg(cfg != NULL, "%s", why->data);
	ck_assert_int_eq(cfg->log_retention, 30 * 86400);
	ck_assert_uint_eq(cfg->log_map_size, 16ULL << 30);
	cfg_free(cfg);
	cfg = load("log:\n  destination: stderr\n  retention: 7d\n"
	    "  map_size: 2g\n", why);
	ck_assert_msg(cfg != NULL, "%s", why->data);
	ck_assert_int_eq(cfg->log_retention, 7 * 86400);
	ck_assert_uint_eq(cfg->log_map_size, 2ULL << 30);
	cfg_free(cfg);
	vbuf_free(why);
}
END_TEST
END_TEST

/* metrics.listen: off by default; a numeric address with a port turns
 * metricsd on; anything else is refused. */
START_TEST(test_metrics_listen)
{
	struct vbuf *why = vbuf_create(0);
	struct cfg *cfg;

	cfg = load("", why);
	ck_assert_msg(cfg != NULL, "%s", why->data);
	ck_assert_ptr_null(cfg->metrics_listen);
	ck_assert_uint_eq(cfg->metricsd_processes, 0);
	cfg_free(cfg);
	cfg = load("metrics:\n  listen: 127.0.0.1:9464\n", why);
	ck_assert_msg(cfg != NULL, "%s", why->data);
	ck_assert_str_eq(cfg->metrics_listen, "127.0.0.1:9464");
	ck_assert_uint_eq(cfg->metricsd_processes, 1);
	cfg_free(cfg);
	cfg = load("metrics: { listen: \"[::1]:9464\" }\n", why);
	ck_assert_msg(cfg != NULL, "%s", why->data);
	cfg_free(cfg);
	expect_error("metrics: { listen: 127.0.0.1 }\n", "1: metrics.listen",
	    "is not a listen address");
	expect_error("metrics: { listen: \"localhost:9464\" }\n",
	    "1: metrics.listen", "is not a listen address");
	expect_error("metrics: { listen: \"127.0.0.1:70000\" }\n",
	    "1: metrics.listen", "is not a listen address");
	expect_error("metrics: { listen: \"::1:9464\" }\n",
	    "1: metrics.listen", "is not a listen address");
	vbuf_free(why);
}
END_TEST

/* webhooks: endpoints for webhookd, each checked; the list turns it on. */
START_TEST(test_webhooks)
{
	struct vbuf *why = vbuf_create(0);
	struct cfg *cfg;

	cfg = load("queue_directory: /q\n", why);
	ck_assert_ptr_nonnull(cfg);
	ck_assert_uint_eq(cfg->webhookd_processes, 0);
	ck_assert_int_eq(cfg->events_max_age, 86400);
	cfg_free(cfg);
	cfg = load("webhooks: []\n", why);
	ck_assert_msg(cfg != NULL, "%s", why->data);
	ck_assert_uint_eq(cfg->webhookd_processes, 1);
	ck_assert_uint_eq(cfg->nwebhooks, 0);
	cfg_free(cfg);
	cfg = load("webhooks:\n  - url: https://app.example/hooks\n"
	    "    events: [delivered, bounced]\n    format: mailgun\n"
	    "    secret_file: /etc/petrel/wh.secret\n"
	    "  - { url: \"http://u:p@127.0.0.1:8080/h\", timeout: 2s }\n"
	    "events: { max_age: 2h, min_backoff: 1s }\n", why);
	ck_assert_msg(cfg != NULL, "%s", why->data);
	ck_assert_uint_eq(cfg->nwebhooks, 2);
	ck_assert_str_eq(cfg->webhooks[0].url, "https://app.example/hooks");
	ck_assert_str_eq(cfg->webhooks[0].events, "delivered,bounced");
	ck_assert_str_eq(cfg->webhooks[0].format, "mailgun");
	ck_assert_str_eq(cfg->webhooks[0].secret_file,
	    "/etc/petrel/wh.secret");
	ck_assert_uint_eq(cfg->webhooks[0].max_concurrent, 4);
	ck_assert_str_eq(cfg->webhooks[1].events, CFG_WEBHOOK_EVENTS);
	/* destination may be listed; it is not in the default set. */
	ck_assert_ptr_null(strstr(CFG_WEBHOOK_EVENTS, "destination"));
	ck_assert_str_eq(cfg->webhooks[1].format, "petrel");
	ck_assert_int_eq(cfg->webhooks[1].timeout, 2);
	ck_assert_ptr_null(cfg->webhooks[1].secret_file);
	ck_assert_int_eq(cfg->events_max_age, 7200);
	ck_assert_int_eq(cfg->events_min_backoff, 1);
	cfg_free(cfg);
	vbuf_free(why);
	expect_error("webhooks:\n  - { events: delivered }\n",
	    "2: webhooks[0].url", "missing (required)");
	expect_error("webhooks:\n  - url: ftp://x/\n",
	    "2: webhooks[0].url", "not an http:// or https:// URL");
	expect_error("webhooks:\n  - url: https://x/\n    events: [sent]\n",
	    "3: webhooks[0].events", "unknown event \"sent\"");
	why = vbuf_create(0);
	cfg = load("webhooks:\n  - url: https://x/\n"
	    "    events: [delivered, destination]\n", why);
	ck_assert_msg(cfg != NULL, "%s", why->data);
	ck_assert_str_eq(cfg->webhooks[0].events, "delivered,destination");
	cfg_free(cfg);
	vbuf_free(why);
	expect_error("webhooks:\n  - url: https://x/\n    format: slack\n",
	    "3: webhooks[0].format", "unknown format \"slack\"");
	expect_error("webhooks:\n  - url: https://x/\n    colour: red\n",
	    "3: webhooks[0].colour", "unknown key");
}
END_TEST

/*
 * A webhook secret_file as master checks it and webhookd signs with it:
 * trailing white space is not part of it, and an empty or white-space-only
 * or over-long file is refused with the file, line and key.
 */
START_TEST(test_secret_file)
{
	struct vbuf *why = vbuf_create(0);
	char path[192], big[CFG_SECRET_MAX + 1], text[512], want[512];
	unsigned char *sec;
	struct cfg *cfg;
	size_t len;

	snprintf(path, sizeof(path), "%s/secret", tmpdir);
	write_file(path, "k3y \t\r\n\n", 8);
	sec = cfg_secret_read(path, &len, why);
	ck_assert_msg(sec != NULL, "%s", why->data);
	ck_assert_uint_eq(len, 3);
	ck_assert_int_eq(memcmp(sec, "k3y", 3), 0);
	free(sec);
	/* Inner white space is part of the secret. */
	write_file(path, " a b\n", 5);
	sec = cfg_secret_read(path, &len, why);
	ck_assert_ptr_nonnull(sec);
	ck_assert_uint_eq(len, 4);
	ck_assert_int_eq(memcmp(sec, " a b", 4), 0);
	free(sec);
	/* Exactly the limit is taken, one byte more is not. */
	memset(big, 'x', sizeof(big));
	write_file(path, big, CFG_SECRET_MAX);
	sec = cfg_secret_read(path, &len, why);
	ck_assert_ptr_nonnull(sec);
	ck_assert_uint_eq(len, CFG_SECRET_MAX);
	free(sec);
	write_file(path, big, CFG_SECRET_MAX + 1);
	ck_assert_ptr_null(cfg_secret_read(path, &len, why));
	ck_assert_msg(strstr(why->data, "longer than 4096 bytes") != NULL,
	    "%s", why->data);
	ck_assert_ptr_null(cfg_secret_read(tmpdir, &len, why));
	ck_assert_msg(strstr(why->data, "not a regular file") != NULL,
	    "%s", why->data);

	/* Empty, then only white space: refused by the check, with line. */
	snprintf(text, sizeof(text), "webhooks:\n  - url: https://x/\n"
	    "    secret_file: %s\n", path);
	cfg = load(text, why);
	ck_assert_msg(cfg != NULL, "%s", why->data);
	write_file(path, "", 0);
	ck_assert_int_eq(cfg_check_files(cfg, why), -1);
	snprintf(want, sizeof(want), "%s:3: webhooks[0].secret_file: %s: "
	    "empty (or only white space)", cfgpath, path);
	ck_assert_str_eq(why->data, want);
	write_file(path, " \r\n\t\n", 5);
	ck_assert_int_eq(cfg_check_files(cfg, why), -1);
	ck_assert_str_eq(why->data, want);
	write_file(path, "ok\n", 3);
	ck_assert_msg(cfg_check_files(cfg, why) == 0, "%s", why->data);
	cfg_free(cfg);
	unlink(path);
	vbuf_free(why);
}
END_TEST

START_TEST(test_listener_errors)
{
	expect_error("listeners:\n  - { name: a, address: \"0.0.0.0:25\","
	    " tls: none }\n", "2: listeners[0].tls",
	    "none is allowed only on a loopback address");
	expect_error("listeners:\n  - name: a\n    address: \"*:25\"\n"
	    "    tls: none\n", "4: listeners[0].tls", "not *:25");
	expect_error("listeners:\n  - name: a\n    address: \"[::]:25\"\n"
	    "    tls: none\n", "4: listeners[0].tls", "loopback");
	expect_error("listeners:\n  - { name: a, tls: none }\n",
	    "2: listeners[0].address", "missing (required)");
	expect_error("listeners:\n  - { address: \"127.0.0.1:25\" }\n",
	    "2: listeners[0].name", "missing (required)");
	expect_error(TLS_KEYS "listeners:\n"
	    "  - { name: a, address: \"127.0.0.1:25\" }\n"
	    "  - { name: a, address: \"127.0.0.1:26\" }\n",
	    "6: listeners[1].name", "duplicate listener name \"a\"");
	expect_error(TLS_KEYS "listeners:\n"
	    "  - { name: a, address: \"localhost:25\" }\n",
	    "5: listeners[0].address", "must be an IPv4 address or *");
	expect_error(TLS_KEYS "listeners:\n"
	    "  - { name: a, address: \"::1:25\" }\n",
	    "5: listeners[0].address", "needs brackets");
	expect_error(TLS_KEYS "listeners:\n"
	    "  - { name: a, address: \"[::1]25\" }\n",
	    "5: listeners[0].address", "is not [IPv6]:port");
	expect_error(TLS_KEYS "listeners:\n"
	    "  - { name: a, address: \"127.0.0.1:0\" }\n",
	    "5: listeners[0].address", "port must be 1 to 65535");
	expect_error(TLS_KEYS "listeners:\n"
	    "  - { name: a, address: \"127.0.0.1:65536\" }\n",
	    "5: listeners[0].address", "port must be 1 to 65535");
	expect_error(TLS_KEYS "listeners:\n"
	    "  - { name: a, address: \"127.0.0.1\" }\n",
	    "5: listeners[0].address", "not host:port");
	expect_error(TLS_KEYS "listeners:\n"
	    "  - { name: \"a b\", address: \"127.0.0.1:25\" }\n",
	    "5: listeners[0].name", "is not a name");
	expect_error(TLS_KEYS "listeners:\n"
	    "  - { name: a, address: \"127.0.0.1:25\", tls: yes }\n",
	    "5: listeners[0].tls", "not one of: none, starttls, implicit");
}
END_TEST

/* cfg_paths_where() of entry i must be the file name, then suffix. */
static void
expect_where(const struct cfg *cfg, const char *key,
    const struct cfg_paths *p, size_t i, const char *suffix)
{
	char where[512], want[512];

	cfg_paths_where(cfg, key, p, i, where, sizeof(where));
	snprintf(want, sizeof(want), "%s%s", cfgpath, suffix);
	ck_assert_str_eq(where, want);
}

/*
 * tls.certificate and tls.private_key: one path, or lists paired in
 * order, each entry with its own line for messages; the ticket lifetime.
 */
START_TEST(test_tls_lists)
{
	struct vbuf *why = vbuf_create(0);
	struct cfg *cfg;

	cfg = load("tls:\n  certificate:\n    - /ec.pem\n    - /rsa.pem\n"
	    "  private_key: [ /ec.key, /rsa.key ]\n"
	    "  ticket_lifetime: 2s\n", why);
	ck_assert_msg(cfg != NULL, "%s", why->data);
	ck_assert_uint_eq(cfg->tls_certificates.n, 2);
	ck_assert_uint_eq(cfg->tls_private_keys.n, 2);
	ck_assert_str_eq(cfg->tls_certificates.path[0], "/ec.pem");
	ck_assert_str_eq(cfg->tls_certificates.path[1], "/rsa.pem");
	ck_assert_str_eq(cfg->tls_private_keys.path[1], "/rsa.key");
	ck_assert_uint_eq(cfg->tls_certificates.line[0], 3);
	ck_assert_uint_eq(cfg->tls_certificates.line[1], 4);
	ck_assert_uint_eq(cfg->tls_private_keys.line[1], 5);
	/* The first pair is also the single-key view. */
	ck_assert_str_eq(cfg->tls_certificate, "/ec.pem");
	ck_assert_str_eq(cfg->tls_private_key, "/ec.key");
	ck_assert_int_eq(cfg->tls_ticket_lifetime, 2);
	expect_where(cfg, "tls.private_key", &cfg->tls_private_keys, 1,
	    ":5: tls.private_key[1]");
	cfg_free(cfg);

	/* A single path stays a single path, named without an index. */
	cfg = load(TLS_KEYS, why);
	ck_assert_msg(cfg != NULL, "%s", why->data);
	ck_assert_uint_eq(cfg->tls_certificates.n, 1);
	ck_assert_int_eq(cfg->tls_certificates.list, 0);
	ck_assert_int_eq(cfg->tls_ticket_lifetime, 3600);
	expect_where(cfg, "tls.certificate", &cfg->tls_certificates, 0,
	    ":2: tls.certificate");
	cfg_free(cfg);

	/* 0 turns tickets off. */
	cfg = load(TLS_KEYS "  ticket_lifetime: 0\n", why);
	ck_assert_msg(cfg != NULL, "%s", why->data);
	ck_assert_int_eq(cfg->tls_ticket_lifetime, 0);
	cfg_free(cfg);
	vbuf_free(why);

	expect_error("tls:\n  certificate: [ /ec.pem, /rsa.pem ]\n"
	    "  private_key: /k.pem\n", "3: tls.private_key",
	    "1 entry, but tls.certificate (line 2) has 2");
	expect_error("tls:\n  certificate: /c.pem\n"
	    "  private_key: [ /a.key, /b.key ]\n", "3: tls.private_key",
	    "2 entries, but tls.certificate (line 2) has 1");
	expect_error("tls:\n  certificate:\n    - /ec.pem\n    - rsa.pem\n"
	    "  private_key: [ /a, /b ]\n", "4: tls.certificate[1]",
	    "not an absolute path");
	expect_error("tls:\n  certificate: []\n  private_key: /k.pem\n",
	    "2: tls.certificate", "empty list");
	expect_error("tls:\n  certificate: [ /a, [ /b ] ]\n"
	    "  private_key: /k.pem\n", "2: tls.certificate[1]",
	    "not a list");
	expect_error("tls:\n  certificate: { a: /b }\n", "2: tls.certificate",
	    "not a mapping");
	expect_error("tls:\n  certificate: [ /1, /2, /3, /4, /5, /6, /7, "
	    "/8, /9 ]\n", "2: tls.certificate", "more than 8 entries");
	expect_error(TLS_KEYS "  ticket_lifetime: 4d\n",
	    "4: tls.ticket_lifetime", "out of range (0s to 84h)");
	expect_error(TLS_KEYS "  ticket_lifetime: soon\n",
	    "4: tls.ticket_lifetime", "not a duration");
}
END_TEST

START_TEST(test_cross_errors)
{
	expect_error("listeners:\n"
	    "  - { name: a, address: \"127.0.0.1:25\", tls: none }\n"
	    "  - { name: b, address: \"0.0.0.0:587\" }\n",
	    "3: tls.certificate", "required: listener \"b\" uses TLS");
	expect_error("tls: { certificate: /c.pem }\nlisteners:\n"
	    "  - { name: b, address: \"0.0.0.0:465\", tls: implicit }\n",
	    "3: tls.private_key", "required");
	expect_error("tls:\n  private_key: /k.pem\n", "2: tls.certificate",
	    "required with tls.private_key");
	expect_error("queue:\n  min_backoff: 10m\n  max_backoff: 5m\n",
	    "3: queue.max_backoff", "must not be less than queue.min_backoff");
	expect_error("queue:\n  min_backoff: 2h\n", "2: queue.min_backoff",
	    "must not be more than queue.max_backoff");
}
END_TEST

/* local_submission (sendmail(1)): the users and their credential. */
START_TEST(test_local_submission)
{
	struct vbuf *why = vbuf_create(0);
	struct cfg *cfg;

	cfg = load("mail_owner: nobody\n", why);
	ck_assert_msg(cfg != NULL, "%s", why->data);
	ck_assert_uint_eq(cfg->nlocal_submission_users, 0);
	ck_assert_ptr_null(cfg->local_submission_credential);
	cfg_free(cfg);

	cfg = load("local_submission:\n  users: [root, www-data]\n"
	    "  credential: local\n", why);
	ck_assert_msg(cfg != NULL, "%s", why->data);
	ck_assert_uint_eq(cfg->nlocal_submission_users, 2);
	ck_assert_str_eq(cfg->local_submission_users[0], "root");
	ck_assert_str_eq(cfg->local_submission_users[1], "www-data");
	ck_assert_str_eq(cfg->local_submission_credential, "local");
	cfg_free(cfg);
	vbuf_free(why);

	expect_error("local_submission:\n  users: [root]\n", "2: "
	    "local_submission.credential",
	    "required with local_submission.users");
	expect_error("local_submission:\n  users: [root, \"bad user\"]\n"
	    "  credential: local\n", "2: local_submission.users[1]",
	    "is not a user name");
	expect_error("local_submission:\n  users: root\n",
	    "2: local_submission.users", "expected a list");
	expect_error("local_submission:\n  users: [root]\n"
	    "  credential: \"a b\"\n", "3: local_submission.credential",
	    "is not a credential name");
}
END_TEST

START_TEST(test_duplicate_key)
{
	expect_error("mail_owner: a\nmail_owner: b\n", "2: mail_owner",
	    "duplicate key (first on line 1)");
	expect_error("queue: { min_backoff: 5m }\nlog: {}\n"
	    "queue: { max_backoff: 1h }\n", "3: queue",
	    "duplicate key (first on line 1)");
	expect_error("queue:\n  min_backoff: 5m\n  min_backoff: 6m\n",
	    "3: queue.min_backoff", "duplicate key (first on line 2)");
	expect_error("listeners:\n  - name: a\n    name: b\n",
	    "3: listeners[0].name", "duplicate key");
	expect_error("transport:\n  example.com: a.example\n"
	    "  EXAMPLE.com: b.example\n", "3: transport.EXAMPLE.com",
	    "duplicate domain");
	expect_error("transport:\n  \"*\": a.example\n  \"*\": b.example\n",
	    "3: transport.*", "duplicate key");
}
END_TEST

START_TEST(test_syntax_error)
{
	struct vbuf *why = vbuf_create(0);
	static const char bad_utf8[] = "mail_owner: a\nmyhostname: \xff\xfe\n";

	expect_error("mail_owner: petrel\nqueue: { min_backoff: 5m\n"
	    "log: x\n", "3", "syntax error: did not find expected ','");
	expect_error("a: b\n  c: d\n", "2", "syntax error");
	expect_error("mail_owner: \"petrel\n", "2", "syntax error");
	expect_error("mail_owner: petrel\n---\nmail_owner: x\n", "3",
	    "more than one YAML document");
	expect_error("- a\n- b\n", "1", "expected a mapping");
	expect_error("just text\n", "1", "expected a mapping");
	expect_error("? [a]\n: b\n", "1", "a key must be a plain name");
	expect_error("mail_owner: *nowhere\n", "1", "syntax error");

	write_file(cfgpath, bad_utf8, sizeof(bad_utf8) - 1);
	ck_assert_ptr_null(cfg_load(cfgpath, why));
	ck_assert_ptr_nonnull(strstr(why->data, ":2: syntax error"));
	vbuf_free(why);
}
END_TEST

START_TEST(test_limits)
{
	struct vbuf *yaml = vbuf_create(0);
	struct vbuf *why = vbuf_create(0);
	struct cfg *cfg;
	int i;

	/* 65 listeners: one too many. */
	vbuf_adds(yaml, TLS_KEYS "listeners:\n");
	for (i = 0; i < 65; i++)
		vbuf_addf(yaml, "  - { name: l%d, address: "
		    "\"127.0.0.1:%d\" }\n", i, 1000 + i);
	expect_error(yaml->data, "4: listeners", "more than 64 entries");

	/* 1024 transport entries load; 1025 do not. */
	vbuf_reset(yaml);
	vbuf_adds(yaml, "transport:\n");
	for (i = 0; i < 1024; i++)
		vbuf_addf(yaml, "  d%d.example: \"[10.0.0.1]:%d\"\n", i,
		    1 + i);
	cfg = load(yaml->data, why);
	ck_assert_msg(cfg != NULL, "%s", why->data);
	ck_assert_uint_eq(cfg->ntransports, 1024);
	ck_assert_uint_eq(cfg_transport_lookup(cfg, "x.d1023.example")->port,
	    1024);
	cfg_free(cfg);
	vbuf_adds(yaml, "  one-more.example: x.example\n");
	expect_error(yaml->data, "1: transport", "more than 1024 entries");

	/* An over-long value, a file over 1 MiB, deep nesting. */
	vbuf_reset(yaml);
	vbuf_adds(yaml, "mail_owner: ");
	for (i = 0; i < 5000; i++)
		vbuf_addc(yaml, 'a');
	vbuf_addc(yaml, '\n');
	expect_error(yaml->data, "1: mail_owner", "longer than 4096");
	vbuf_reset(yaml);
	for (i = 0; i < 80000; i++)
		vbuf_adds(yaml, "# padding line\n");
	expect_error(yaml->data, "", "larger than");
	vbuf_reset(yaml);
	vbuf_adds(yaml, "mail_owner: ");
	for (i = 0; i < 100000; i++)
		vbuf_addc(yaml, '[');
	cfg = load(yaml->data, why);
	ck_assert_ptr_null(cfg);
	vbuf_free(why);
	vbuf_free(yaml);
}
END_TEST

START_TEST(test_aliases)
{
	struct vbuf *why = vbuf_create(0);
	struct cfg *cfg;

	/* Aliases resolve to the node they name, and a cycle is harmless. */
	cfg = load("mail_owner: &u mailer\nsmtp: { helo_name: x.example }\n"
	    "myhostname: *u\n", why);
	ck_assert_msg(cfg != NULL, "%s", why->data);
	ck_assert_str_eq(cfg->myhostname, "mailer");
	cfg_free(cfg);
	expect_error("listeners: &l [ *l ]\n", "1: listeners[0]",
	    "expected a mapping");
	vbuf_free(why);
}
END_TEST

START_TEST(test_transport_lookup)
{
	struct vbuf *why = vbuf_create(0);
	const struct cfg_transport *t;
	struct cfg *cfg;

	cfg = load("transport:\n"
	    "  example.com: \"[parent]\"\n"
	    "  b.example.com: \"[middle]\"\n"
	    "  \"*\": \"[star]:2526\"\n"
	    "  exact.example.com: \"[exact]\"\n", why);
	ck_assert_msg(cfg != NULL, "%s", why->data);
	ck_assert_str_eq(cfg_transport_lookup(cfg, "exact.example.com")->host,
	    "exact");
	ck_assert_str_eq(cfg_transport_lookup(cfg, "EXACT.Example.COM")->host,
	    "exact");
	ck_assert_str_eq(cfg_transport_lookup(cfg, "a.b.example.com")->host,
	    "middle");
	ck_assert_str_eq(cfg_transport_lookup(cfg, "b.example.com")->host,
	    "middle");
	ck_assert_str_eq(cfg_transport_lookup(cfg, "c.example.com")->host,
	    "parent");
	ck_assert_str_eq(cfg_transport_lookup(cfg, "example.com")->host,
	    "parent");
	/* "com" is not a parent of anything configured: the wildcard. */
	t = cfg_transport_lookup(cfg, "example.org");
	ck_assert_str_eq(t->host, "star");
	ck_assert_uint_eq(t->port, 2526);
	ck_assert_str_eq(cfg_transport_lookup(cfg, "xexample.com")->host,
	    "star");
	ck_assert_str_eq(cfg_transport_lookup(cfg, "com")->host, "star");
	ck_assert_str_eq(cfg_transport_lookup(cfg, "")->host, "star");
	ck_assert_str_eq(cfg_transport_lookup(cfg, NULL)->host, "star");
	ck_assert_str_eq(cfg_transport_lookup(cfg, "[192.0.2.1]")->host,
	    "star");
	cfg_free(cfg);

	/* Without "*", an unmatched domain has no transport (MX lookup). */
	cfg = load("transport: { example.com: \"[h]\" }\n", why);
	ck_assert_msg(cfg != NULL, "%s", why->data);
	ck_assert_ptr_null(cfg_transport_lookup(cfg, "example.org"));
	ck_assert_ptr_nonnull(cfg_transport_lookup(cfg, "a.example.com"));
	ck_assert_ptr_null(cfg_transport_lookup(NULL, "a.example.com"));
	cfg_free(cfg);

	expect_error("transport: { \"bad domain\": x }\n",
	    "1: transport.bad domain", "not a domain name");
	expect_error("transport: { example.com: \"[x:25\" }\n",
	    "1: transport.example.com", "missing ]");
	expect_error("transport: { example.com: \"[x]:0\" }\n",
	    "1: transport.example.com", "port must be 1 to 65535");
	expect_error("transport: { example.com: \"[x]25\" }\n",
	    "1: transport.example.com", "expected [host]:port");
	expect_error("transport: { example.com: \"2001:db8::1\" }\n",
	    "1: transport.example.com", "needs brackets");
	expect_error("transport: { example.com: \"[]:25\" }\n",
	    "1: transport.example.com", "bad host");
	expect_error("transport: { example.com: \"h_x:25\" }\n",
	    "1: transport.example.com", "not a host name or address");
	/* Failover lists. */
	expect_error("transport: { example.com: [] }\n",
	    "1: transport.example.com", "an empty list");
	expect_error("transport: { example.com: [ a.example, \"h_x\" ] }\n",
	    "1: transport.example.com[]", "not a host name or address");
	expect_error("transport: { example.com: [ a.example, A.example:25 ] "
	    "}\n", "1: transport.example.com[]", "listed twice");
	expect_error("transport: { example.com: [ a, b, c, d, e, f, g, h, i "
	    "] }\n", "1: transport.example.com", "more than 8 entries");
	expect_error("transport: { example.com: [ [ a ] ] }\n",
	    "1: transport.example.com[]", "not a list");
	expect_error("transport:\n  example.com: [ a.example, b.example ]\n"
	    "  example.net: [ a.example, c.example ]\n",
	    "3: transport.example.net", "other next hops after it");
	expect_error("transport:\n  example.com: [ a.example, b.example ]\n"
	    "  example.net: a.example\n",
	    "3: transport.example.net", "other next hops after it");
	vbuf_free(why);
}
END_TEST

START_TEST(test_durations_sizes)
{
	static const struct {
		const char	*text;
		int64_t		 seconds;
	} durations[] = {
		{ "1", 1 }, { "90", 90 }, { "90s", 90 }, { "5m", 300 },
		{ "5M", 300 }, { "2h", 7200 }, { "1d", 86400 },
		{ "7d", 604800 }, { "1w", 604800 },
	};
	static const struct {
		const char	*text;
		uint64_t	 bytes;
	} sizes[] = {
		{ "1024", 1024 }, { "1k", 1024 }, { "512K", 524288 },
		{ "25m", 26214400 }, { "1g", 1073741824 },
	};
	struct vbuf *yaml = vbuf_create(0);
	struct vbuf *why = vbuf_create(0);
	struct cfg *cfg;
	size_t i;

	for (i = 0; i < sizeof(durations) / sizeof(durations[0]); i++) {
		vbuf_setf(yaml, "queue: { min_backoff: \"%s\","
		    " max_backoff: 7d }\n", durations[i].text);
		cfg = load(yaml->data, why);
		ck_assert_msg(cfg != NULL, "%s: %s", durations[i].text,
		    why->data);
		ck_assert_int_eq(cfg->queue_min_backoff, durations[i].seconds);
		cfg_free(cfg);
	}
	for (i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		vbuf_setf(yaml, "smtpd: { message_size_limit: %s }\n",
		    sizes[i].text);
		cfg = load(yaml->data, why);
		ck_assert_msg(cfg != NULL, "%s: %s", sizes[i].text, why->data);
		ck_assert_uint_eq(cfg->smtpd_message_size_limit,
		    sizes[i].bytes);
		cfg_free(cfg);
	}
	expect_error("queue: { min_backoff: 1.5h }\n", "1: queue.min_backoff",
	    "not a duration");
	expect_error("queue: { min_backoff: 5 m }\n", "1: queue.min_backoff",
	    "not a duration");
	expect_error("queue: { min_backoff: m }\n", "1: queue.min_backoff",
	    "not a duration");
	expect_error("queue: { min_backoff: 5ms }\n", "1: queue.min_backoff",
	    "not a duration");
	expect_error("smtpd: { message_size_limit: 10mb }\n",
	    "1: smtpd.message_size_limit", "not a size");
	expect_error("smtpd: { message_size_limit: -1 }\n",
	    "1: smtpd.message_size_limit", "not a size");
	vbuf_free(why);
	vbuf_free(yaml);
}
END_TEST

/*
 * Postfix's check-postconf-undocumented: every schema key is documented in
 * the man page as ".TP" then ".B key", and every key so marked is in the
 * schema.
 */
START_TEST(test_man_page)
{
	const char * const *names = cfg_key_names();
	char line[1024], marked[256][64];
	size_t nmarked = 0, nnames, i, j, len;
	int after_tp = 0, found;
	FILE *fp;

	fp = fopen(MAN_PAGE, "r");
	ck_assert_msg(fp != NULL, "%s: run from the top of the tree",
	    MAN_PAGE);
	while (fgets(line, sizeof(line), fp) != NULL) {
		len = strcspn(line, "\n");
		line[len] = '\0';
		if (after_tp && strncmp(line, ".B ", 3) == 0) {
			ck_assert_uint_lt(nmarked, 256);
			ck_assert_uint_lt(len - 3, sizeof(marked[0]));
			memcpy(marked[nmarked++], line + 3, len - 3 + 1);
		}
		after_tp = strcmp(line, ".TP") == 0;
	}
	fclose(fp);

	ck_assert_ptr_nonnull(names[0]);
	for (nnames = 0; names[nnames] != NULL; nnames++)
		;
	for (i = 0; names[i] != NULL; i++) {
		for (found = 0, j = 0; j < nmarked && !found; j++)
			found = strcmp(names[i], marked[j]) == 0;
		ck_assert_msg(found, "key %s is not documented in %s",
		    names[i], MAN_PAGE);
		for (j = 0; j < i; j++)
			ck_assert_str_ne(names[i], names[j]);
	}
	for (j = 0; j < nmarked; j++) {
		for (found = 0, i = 0; names[i] != NULL && !found; i++)
			found = strcmp(names[i], marked[j]) == 0;
		ck_assert_msg(found, "%s documents %s, which is not a key",
		    MAN_PAGE, marked[j]);
	}
	ck_assert_uint_eq(nmarked, nnames);
}
END_TEST

/* smtp.pools, and smtp.source_addresses as the pool "default". */
START_TEST(test_pools)
{
	struct vbuf *why = vbuf_create(0);
	char name[CFG_POOL_NAME_MAX + 2];
	const struct cfg_pool *p;
	struct cfg *cfg;

	cfg = load("smtp:\n  source_addresses: [192.0.2.1]\n"
	    "  pools:\n    transactional: [203.0.113.10]\n"
	    "    bulk: [203.0.113.20, \"2001:db8::21\"]\n", why);
	ck_assert_msg(cfg != NULL, "%s", why->data);
	ck_assert_uint_eq(cfg->nsmtp_pools, 3);
	p = cfg_pool_lookup(cfg, "bulk");
	ck_assert_ptr_nonnull(p);
	ck_assert_uint_eq(p->naddrs, 2);
	ck_assert_int_eq(p->addrs[1].family, AF_INET6);
	p = cfg_pool_lookup(cfg, "transactional");
	ck_assert_ptr_nonnull(p);
	ck_assert_uint_eq(p->naddrs, 1);
	/* "" and NULL are the default pool: smtp.source_addresses. */
	p = cfg_pool_lookup(cfg, "");
	ck_assert_ptr_nonnull(p);
	ck_assert_str_eq(p->name, "default");
	ck_assert_uint_eq(p->naddrs, 1);
	ck_assert_uint_eq(p->addrs[0].addr[0], 192);
	ck_assert_ptr_eq(cfg_pool_lookup(cfg, NULL), p);
	ck_assert_ptr_null(cfg_pool_lookup(cfg, "other"));
	/* Every address, the default pool's first (SPF's order). */
	ck_assert_uint_eq(cfg_source_address(cfg, 0)->addr[0], 192);
	ck_assert_uint_eq(cfg_source_address(cfg, 1)->addr[3], 10);
	ck_assert_uint_eq(cfg_source_address(cfg, 2)->addr[3], 20);
	ck_assert_int_eq(cfg_source_address(cfg, 3)->family, AF_INET6);
	ck_assert_ptr_null(cfg_source_address(cfg, 4));
	cfg_free(cfg);

	/* No source addresses: no pool at all, the kernel picks. */
	cfg = load("smtp:\n  processes: 2\n", why);
	ck_assert_ptr_nonnull(cfg);
	ck_assert_uint_eq(cfg->nsmtp_pools, 0);
	ck_assert_ptr_null(cfg_pool_lookup(cfg, "default"));
	cfg_free(cfg);

	/* The default pool given in smtp.pools instead. */
	cfg = load("smtp:\n  pools:\n    default: [192.0.2.7]\n", why);
	ck_assert_msg(cfg != NULL, "%s", why->data);
	p = cfg_pool_lookup(cfg, NULL);
	ck_assert_ptr_nonnull(p);
	ck_assert_uint_eq(p->addrs[0].addr[3], 7);
	cfg_free(cfg);

	ck_assert(cfg_pool_name_ok("bulk-2_a"));
	ck_assert(!cfg_pool_name_ok(""));
	ck_assert(!cfg_pool_name_ok("Bulk"));
	ck_assert(!cfg_pool_name_ok("a.b"));
	memset(name, 'a', CFG_POOL_NAME_MAX);
	name[CFG_POOL_NAME_MAX] = '\0';
	ck_assert(cfg_pool_name_ok(name));
	name[CFG_POOL_NAME_MAX] = 'a';
	name[CFG_POOL_NAME_MAX + 1] = '\0';
	ck_assert(!cfg_pool_name_ok(name));

	expect_error("smtp:\n  pools:\n    Bulk: [192.0.2.1]\n",
	    "3: smtp.pools.Bulk", "is not a pool name");
	expect_error("smtp:\n  pools:\n    bulk: []\n",
	    "3: smtp.pools.bulk", "at least one address");
	expect_error("smtp:\n  pools:\n    bulk: 192.0.2.1\n",
	    "3: smtp.pools.bulk", "expected a list");
	expect_error("smtp:\n  pools:\n    bulk:\n      - 192.0.2.1\n"
	    "      - 192.0.2.0/24\n", "5: smtp.pools.bulk[1]",
	    "is not one address");
	expect_error("smtp:\n  pools:\n    bulk: [nowhere]\n",
	    "3: smtp.pools.bulk[0]", "is not one address");
	expect_error("smtp:\n  pools:\n    a: [192.0.2.1]\n"
	    "    b: [192.0.2.2, 192.0.2.1]\n", "4: smtp.pools.b[1]",
	    "already in pool a");
	expect_error("smtp:\n  pools: [192.0.2.1]\n", "2: smtp.pools",
	    "expected a mapping");
	expect_error("smtp:\n  source_addresses: [192.0.2.1]\n"
	    "  pools:\n    default: [192.0.2.2]\n",
	    "2: smtp.source_addresses", "also in smtp.pools");
	expect_error("smtp:\n  source_addresses: [192.0.2.1]\n"
	    "  pools:\n    bulk: [192.0.2.1]\n",
	    "2: smtp.source_addresses", "also in pool bulk");
	vbuf_free(why);
}
END_TEST

/*
 * smtp.warmup and smtp.warmup_schedule: each address's day in its
 * schedule (a day before the first counts as the first; past the last,
 * no cap), the shipped schedule, and the errors.
 */
START_TEST(test_warmup)
{
	struct vbuf *why = vbuf_create(0);
	struct cidr warm, other;
	struct cfg *cfg;
	int64_t first;

	ck_assert_int_eq(cidr_parse("203.0.113.21", &warm), 0);
	ck_assert_int_eq(cidr_parse("203.0.113.20", &other), 0);
	cfg = load("smtp:\n  pools:\n    bulk: [203.0.113.20, 203.0.113.21]\n"
	    "  warmup:\n    203.0.113.21: 2026-12-01\n"
	    "  warmup_schedule: [10, 20, 40]\n", why);
	ck_assert_msg(cfg != NULL, "%s", why->data);
	first = 20788;		/* 2026-12-01 in days since 1970-01-01 */
	ck_assert_int_eq(cfg->smtp_warmup[0].start_day, first);
	ck_assert_int_eq(cfg_warmup_cap(cfg, &warm, first - 3), 10);
	ck_assert_int_eq(cfg_warmup_cap(cfg, &warm, first), 10);
	ck_assert_int_eq(cfg_warmup_cap(cfg, &warm, first + 1), 20);
	ck_assert_int_eq(cfg_warmup_cap(cfg, &warm, first + 2), 40);
	ck_assert_int_eq(cfg_warmup_cap(cfg, &warm, first + 3), -1);
	ck_assert_int_eq(cfg_warmup_cap(cfg, &other, first), -1);
	/* Its day in the warmup, as relayctl sources show prints it. */
	ck_assert_int_eq(cfg_warmup_day(cfg, &warm, first - 3), 1);
	ck_assert_int_eq(cfg_warmup_day(cfg, &warm, first), 1);
	ck_assert_int_eq(cfg_warmup_day(cfg, &warm, first + 2), 3);
	ck_assert_int_eq(cfg_warmup_day(cfg, &warm, first + 3), -1);
	ck_assert_int_eq(cfg_warmup_day(cfg, &other, first), -1);
	cfg_free(cfg);

	/* The shipped schedule: 50 doubled each day for 14 days. */
	cfg = load("smtp:\n  source_addresses: [203.0.113.21]\n"
	    "  warmup: { 203.0.113.21: \"2026-12-01\" }\n", why);
	ck_assert_msg(cfg != NULL, "%s", why->data);
	ck_assert_uint_eq(cfg->nsmtp_warmup_schedule, 14);
	ck_assert_int_eq(cfg_warmup_cap(cfg, &warm, first), 50);
	ck_assert_int_eq(cfg_warmup_cap(cfg, &warm, first + 13), 409600);
	ck_assert_int_eq(cfg_warmup_cap(cfg, &warm, first + 14), -1);
	cfg_free(cfg);

	expect_error("smtp:\n  pools:\n    bulk: [203.0.113.20]\n"
	    "  warmup:\n    203.0.113.21: 2026-12-01\n", "4: smtp.warmup",
	    "203.0.113.21 is in no pool");
	expect_error("smtp:\n  source_addresses: [203.0.113.21]\n"
	    "  warmup:\n    203.0.113.21: 1 December\n",
	    "4: smtp.warmup.203.0.113.21", "is not a day (YYYY-MM-DD)");
	expect_error("smtp:\n  source_addresses: [203.0.113.21]\n"
	    "  warmup:\n    203.0.113.21: 2026-02-30\n",
	    "4: smtp.warmup.203.0.113.21", "is not a day (YYYY-MM-DD)");
	expect_error("smtp:\n  source_addresses: [203.0.113.21]\n"
	    "  warmup:\n    203.0.113.0/24: 2026-12-01\n",
	    "4: smtp.warmup.203.0.113.0/24", "is not one address");
	expect_error("smtp:\n  warmup: [203.0.113.21]\n", "2: smtp.warmup",
	    "expected a mapping");
	expect_error("smtp:\n  warmup_schedule: [10, 0]\n",
	    "2: smtp.warmup_schedule[1]", "is not a number of messages");
	expect_error("smtp:\n  warmup_schedule: []\n",
	    "2: smtp.warmup_schedule", "at least one day's cap");
	vbuf_free(why);
}
END_TEST

static Suite *
cfg_suite(void)
{
	Suite *s = suite_create("cfg");
	TCase *tc = tcase_create("cfg");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, test_defaults);
	tcase_add_test(tc, test_full);
	tcase_add_test(tc, test_sample);
	tcase_add_test(tc, test_missing_file);
	tcase_add_test(tc, test_unknown_key);
	tcase_add_test(tc, test_wrong_type);
	tcase_add_test(tc, test_bad_value);
	tcase_add_test(tc, test_log_keys);
	tcase_add_test(tc, test_listener_errors);
	tcase_add_test(tc, test_cross_errors);
	tcase_add_test(tc, test_local_submission);
	tcase_add_test(tc, test_tls_lists);
	tcase_add_test(tc, test_duplicate_key);
	tcase_add_test(tc, test_syntax_error);
	tcase_add_test(tc, test_limits);
	tcase_add_test(tc, test_aliases);
	tcase_add_test(tc, test_transport_lookup);
	tcase_add_test(tc, test_durations_sizes);
	tcase_add_test(tc, test_man_page);
	tcase_add_test(tc, test_webhooks);
	tcase_add_test(tc, test_secret_file);
	tcase_add_test(tc, test_metrics_listen);
	tcase_add_test(tc, test_pools);
	tcase_add_test(tc, test_warmup);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(cfg_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
