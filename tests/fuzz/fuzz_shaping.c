/*
 * fuzz_shaping.c - libFuzzer target for the shaping file loader
 * (lib/shaping.c on libyaml) and its lookup: an operator's typo must give
 * an error naming the file, never a crash.
 *
 * The input is a shaping.yaml, written to a scratch file and loaded.
 * Checked: a refusal gives a reason that names the file; a file that
 * loads has each limit within its documented bounds, in the default and
 * in every entry, and every entry is found again by its own name (the
 * lookup's exact match, as a host, and as a parent domain of a subdomain
 * for names that are domains), with only the keys it sets over the
 * default's. Broken invariants abort through ASSERT. Built and run by
 * `make fuzz`; see tests/fuzz/README.md.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cfg.h"
#include "log.h"
#include "shaping.h"
#include "vbuf.h"

int	LLVMFuzzerInitialize(int *, char ***);
int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);

static void	fuzz_cleanup(void);
static void	fuzz_check_limits(const struct shaping_limits *);
static void	fuzz_check_entry(const struct shaping *,
		    const struct shaping_entry *);
static void	fuzz_check_rules(const struct shaping_rule *, size_t);
static void	fuzz_check_provider(const struct shaping *,
		    const struct shaping_provider *);

static char fuzz_dir[PATH_MAX];
static char fuzz_path[PATH_MAX + 16];

static void
fuzz_cleanup(void)
{
	(void)unlink(fuzz_path);
	(void)rmdir(fuzz_dir);
}

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	const char *tmp = getenv("TMPDIR");

	(void)argc;
	(void)argv;
	(void)snprintf(fuzz_dir, sizeof(fuzz_dir),
	    "%s/petrel-fuzz-shaping.XXXXXX",
	    tmp != NULL && tmp[0] != '\0' ? tmp : "/tmp");
	if (mkdtemp(fuzz_dir) == NULL)
		log_fatal("fuzz_shaping: mkdtemp: %s", strerror(errno));
	(void)snprintf(fuzz_path, sizeof(fuzz_path), "%s/shaping.yaml",
	    fuzz_dir);
	(void)atexit(fuzz_cleanup);
	return 0;
}

/* Each field unset or within the bounds shaping.yaml(5) gives. */
static void
fuzz_check_limits(const struct shaping_limits *l)
{
	ASSERT(l->max_connections <= SHAPING_CONN_MAX);
	ASSERT(l->max_messages_per_connection <= SHAPING_MSGS_MAX);
	ASSERT(l->rate_count <= SHAPING_RATE_MAX);
	ASSERT((l->rate_count == 0) == (l->rate_interval == 0));
	ASSERT(l->conn_rate_count <= SHAPING_RATE_MAX);
	ASSERT((l->conn_rate_count == 0) == (l->conn_rate_interval == 0));
	ASSERT(l->rate_interval == 0 || l->rate_interval == 1 ||
	    l->rate_interval == 60 || l->rate_interval == 3600 ||
	    l->rate_interval == 86400);
	ASSERT(l->retry_interval >= 0 &&
	    l->retry_interval <= SHAPING_RETRY_MAX);
	ASSERT(l->tls == SHAPING_TLS_UNSET || l->tls == CFG_SMTP_TLS_MAY ||
	    l->tls == CFG_SMTP_TLS_ENCRYPT || l->tls == CFG_SMTP_TLS_VERIFY);
}

/* Each on_reply rule complete and in bounds, its regex usable. */
static void
fuzz_check_rules(const struct shaping_rule *r, size_t n)
{
	ASSERT(n <= SHAPING_RULES_MAX);
	for (size_t i = 0; i < n; i++) {
		ASSERT(r[i].pattern != NULL && r[i].pattern[0] != '\0' &&
		    strlen(r[i].pattern) <= SHAPING_PATTERN_MAX);
		ASSERT(r[i].action == SHAPING_BACKOFF ||
		    r[i].action == SHAPING_SUSPEND);
		ASSERT(r[i].duration >= 1 &&
		    r[i].duration <= SHAPING_RETRY_MAX);
		ASSERT(r[i].after >= 1 && r[i].after <= SHAPING_AFTER_MAX);
		ASSERT(r[i].max_connections <= SHAPING_CONN_MAX);
		ASSERT(r[i].action == SHAPING_BACKOFF ?
		    r[i].has_rate || r[i].max_connections != 0 :
		    !r[i].has_rate && r[i].max_connections == 0);
		(void)shaping_rule_match(&r[i], "421 4.7.28 unusual rate");
	}
}

static void
fuzz_check_entry(const struct shaping *sh, const struct shaping_entry *e)
{
	struct shaping_limits lim;
	const char *name;
	char key[SHAPING_NAME_MAX + 16];

	fuzz_check_limits(&e->lim);
	fuzz_check_rules(e->rules, e->nrules);
	ASSERT(shaping_find(sh, e->name) == e ||
	    strcmp(e->name, "default") == 0);
	ASSERT(strlen(e->name) > 0 && strlen(e->name) <= SHAPING_NAME_MAX);
	shaping_lookup(sh, e->name, &lim, &name);
	ASSERT(strcmp(name, e->name) == 0);
	ASSERT(lim.max_connections == (e->lim.max_connections != 0 ?
	    e->lim.max_connections : sh->def.max_connections));
	ASSERT(lim.max_messages_per_connection ==
	    (e->lim.max_messages_per_connection != 0 ?
	    e->lim.max_messages_per_connection :
	    sh->def.max_messages_per_connection));
	ASSERT(lim.rate_interval == (e->has_rate ? e->lim.rate_interval :
	    sh->def.rate_interval));
	ASSERT(lim.conn_rate_interval == (e->has_conn_rate ?
	    e->lim.conn_rate_interval : sh->def.conn_rate_interval));
	ASSERT(lim.retry_interval == (e->lim.retry_interval != 0 ?
	    e->lim.retry_interval : sh->def.retry_interval));
	ASSERT(lim.tls == (e->lim.tls != SHAPING_TLS_UNSET ? e->lim.tls :
	    sh->def.tls));
	/* A plain domain also covers a subdomain, unless a nearer entry
	 * does (its own subdomain "x.NAME" or the key "x.NAME:25"). */
	if (strpbrk(e->name, "[]:") == NULL &&
	    strspn(e->name, "0123456789.") != strlen(e->name)) {
		(void)snprintf(key, sizeof(key), "x.%s:25", e->name);
		shaping_lookup(sh, key, &lim, &name);
		if (strncmp(name, "x.", 2) != 0)
			ASSERT(strcmp(name, e->name) == 0 ||
			    strlen(key) > SHAPING_NAME_MAX);
	}
}

/*
 * A provider: a valid name, 1 to SHAPING_SUFFIXES_MAX suffixes of one
 * leading dot, lower case, no empty label; a host under each suffix
 * matches some provider; its limits come before the destination's.
 */
static void
fuzz_check_provider(const struct shaping *sh,
    const struct shaping_provider *pr)
{
	struct shaping_limits lim;
	const char *name, *host[1];
	char h[SHAPING_NAME_MAX + 300];
	size_t len = strlen(pr->e.name);

	fuzz_check_limits(&pr->e.lim);
	fuzz_check_rules(pr->e.rules, pr->e.nrules);
	ASSERT(len > 0 && len <= SHAPING_PROVIDER_NAME_MAX);
	ASSERT(strspn(pr->e.name, "abcdefghijklmnopqrstuvwxyz0123456789-_") ==
	    len);
	ASSERT(shaping_provider_find(sh, pr->e.name) == pr);
	ASSERT(pr->nsuffixes > 0 && pr->nsuffixes <= SHAPING_SUFFIXES_MAX);
	for (size_t i = 0; i < pr->nsuffixes; i++) {
		const char *suf = pr->suffixes[i];

		ASSERT(suf[0] == '.' && suf[1] != '\0' && suf[1] != '.');
		ASSERT(strstr(suf, "..") == NULL);
		ASSERT(suf[strlen(suf) - 1] != '.');
		for (const char *c = suf; *c != '\0'; c++)
			ASSERT(*c < 'A' || *c > 'Z');
		(void)snprintf(h, sizeof(h), "mx%s", suf);
		host[0] = h;
		ASSERT(shaping_provider_match(sh, host, 1) != NULL);
		/* The suffix without its dot is a host, not under it. */
		host[0] = suf + 1;
		if (shaping_provider_match(sh, host, 1) == pr)
			ASSERT(pr->nsuffixes > 1);
	}
	/* Unless a destination entry covers the key, the provider decides. */
	shaping_lookup(sh, "nowhere.invalid:25", &lim, &name);
	if (strcmp(name, "default") != 0)
		return;
	shaping_lookup_provider(sh, "nowhere.invalid:25", pr, &lim, &name);
	ASSERT(strcmp(name, pr->e.name) == 0);
	ASSERT(lim.max_connections == (pr->e.lim.max_connections != 0 ?
	    pr->e.lim.max_connections : sh->def.max_connections));
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t len)
{
	struct vbuf *why = vbuf_create(0);
	struct shaping *sh;
	struct shaping_limits lim;
	const char *name;
	int fd;

	fd = open(fuzz_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	if (fd == -1 || write(fd, data, len) != (ssize_t)len)
		log_fatal("fuzz_shaping: write %s", fuzz_path);
	(void)close(fd);
	if ((sh = shaping_load(fuzz_path, why)) == NULL) {
		ASSERT(why->len > 0);
		ASSERT(strstr(why->data, "shaping.yaml") != NULL);
	} else {
		fuzz_check_limits(&sh->def);
		fuzz_check_rules(sh->rules, sh->nrules);
		ASSERT(sh->nentries <= SHAPING_ENTRIES_MAX);
		for (size_t i = 0; i < sh->nentries; i++)
			fuzz_check_entry(sh, &sh->entries[i]);
		for (size_t i = 0; i < sh->nproviders; i++)
			fuzz_check_provider(sh, &sh->providers[i]);
		shaping_lookup(sh, "nowhere.invalid:25", &lim, &name);
		shaping_free(sh);
	}
	vbuf_free(why);
	return 0;
}
