/*
 * relayctl_domain.c - "relayctl domain ...": sending domains, their DKIM
 * keys, and the DNS records to publish.
 *
 * Two owners are involved: key files belong to root and dkim.group, the
 * registry LMDB to mail_owner. Run as root, every registry step runs in a
 * child that has switched to mail_owner (lib/privsep) while the parent,
 * still root, writes or removes the key files, in the order that keeps
 * smtp working: a key file is on disk before the registry names it, and
 * the registry forgets a selector before its file goes. Run as another
 * user, both happen in-process with that user's permissions. See
 * relayctl(8).
 */
#include <sys/types.h>
#include <sys/wait.h>

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>

#include "attr.h"
#include "dkimkey.h"
#include "json.h"
#include "parse.h"
#include "privsep.h"
#include "relayctl.h"
#include "smtpcmd.h"
#include "vbuf.h"

#define RELAYCTL_RESULT_MAX	(256 * 1024)	/* child -> parent bytes */

/* What a registry step in the mail_owner child needs and returns. */
struct relayctl_step {
	const struct relayctl_domain_args *da;
	struct dkimkey_selector		 sel;	/* add, rotate: to commit */
	time_t				 now;
};

typedef int relayctl_step_fn(const struct cfg *, struct relayctl_step *,
    struct vbuf *);

static int	relayctl_as_owner(const struct cfg *, relayctl_step_fn *,
		    struct relayctl_step *, struct vbuf *);
static int	relayctl_step_pick(const struct cfg *, struct relayctl_step *,
		    struct vbuf *);
static int	relayctl_step_commit(const struct cfg *,
		    struct relayctl_step *, struct vbuf *);
static int	relayctl_step_del(const struct cfg *, struct relayctl_step *,
		    struct vbuf *);
static int	relayctl_step_get(const struct cfg *, struct relayctl_step *,
		    struct vbuf *);
static int	relayctl_step_list(const struct cfg *, struct relayctl_step *,
		    struct vbuf *);
static int	relayctl_list_one(const struct dkimkey_domain *, void *);
static int	relayctl_domain_add(const struct cfg *,
		    const struct relayctl_domain_args *);
static int	relayctl_domain_del(const struct cfg *,
		    const struct relayctl_domain_args *);
static int	relayctl_domain_show(const struct cfg *,
		    const struct relayctl_domain_args *);
static void	relayctl_dkim_rr(const char *, const char *, enum dkimkey_alg,
		    const char *, struct vbuf *);
static void	relayctl_default_selector(time_t, char *, size_t);
static void	relayctl_utc(int64_t, char *, size_t);
static int	relayctl_parse_time(const char *, int64_t *);

void
relayctl_domain_args_release(struct relayctl_domain_args *da)
{
	memset(da, 0, sizeof(*da));
}

/* Epoch seconds, or "YYYY-MM-DDTHH:MM:SSZ". 0 or -1. */
static int
relayctl_parse_time(const char *s, int64_t *out)
{
	struct tm tm;
	const char *end;
	time_t t;

	if (parse_i64(s, 0, INT64_C(253402300799), out) == 0)
		return 0;
	memset(&tm, 0, sizeof(tm));
	if ((end = strptime(s, "%Y-%m-%dT%H:%M:%SZ", &tm)) == NULL ||
	    *end != '\0' || (t = timegm(&tm)) == (time_t)-1)
		return -1;
	*out = (int64_t)t;
	return 0;
}

static void
relayctl_utc(int64_t when, char *buf, size_t size)
{
	struct tm tm;
	time_t t = (time_t)when;

	if (gmtime_r(&t, &tm) == NULL ||
	    strftime(buf, size, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
		(void)snprintf(buf, size, "%" PRId64, when);
}

/* "s" YEAR "q" QUARTER of now, in UTC: s2026q4. */
static void
relayctl_default_selector(time_t now, char *buf, size_t size)
{
	struct tm tm;

	if (gmtime_r(&now, &tm) == NULL)
		memset(&tm, 0, sizeof(tm));
	(void)snprintf(buf, size, "s%dq%d", tm.tm_year + 1900,
	    tm.tm_mon / 3 + 1);
}

int
relayctl_domain_parse(int argc, char *argv[],
    struct relayctl_domain_args *da, struct vbuf *why)
{
	static const struct {
		const char			*name;
		enum relayctl_domain_cmd	 cmd;
	} subs[] = {
		{ "add", RELAYCTL_DOMAIN_ADD },
		{ "list", RELAYCTL_DOMAIN_LIST },
		{ "show", RELAYCTL_DOMAIN_SHOW },
		{ "del", RELAYCTL_DOMAIN_DEL },
		{ "rotate", RELAYCTL_DOMAIN_ROTATE },
		{ "check", RELAYCTL_DOMAIN_CHECK },
	};
	const char *arg, *val;
	size_t i;
	int a, found = 0, have_domain = 0;

	memset(da, 0, sizeof(*da));
	da->type = RELAYCTL_DKIM_RSA2048;
	if (argc < 1) {
		vbuf_setf(why, "domain: missing subcommand");
		return -1;
	}
	for (i = 0; i < sizeof(subs) / sizeof(subs[0]); i++)
		if (strcmp(argv[0], subs[i].name) == 0) {
			da->cmd = subs[i].cmd;
			found = 1;
		}
	if (!found) {
		vbuf_setf(why, "domain: unknown subcommand %s", argv[0]);
		return -1;
	}
	for (a = 1; a < argc; a++) {
		arg = argv[a];
		if (strcmp(arg, "-j") == 0 &&
		    (da->cmd == RELAYCTL_DOMAIN_LIST ||
		    da->cmd == RELAYCTL_DOMAIN_SHOW ||
		    da->cmd == RELAYCTL_DOMAIN_CHECK)) {
			da->json = 1;
			continue;
		}
		if (strcmp(arg, "--selector") == 0 ||
		    strcmp(arg, "--key") == 0 || strcmp(arg, "--at") == 0) {
			if (a + 1 >= argc) {
				vbuf_setf(why, "%s needs a value", arg);
				return -1;
			}
			val = argv[++a];
			if (strcmp(arg, "--selector") == 0 &&
			    da->cmd != RELAYCTL_DOMAIN_LIST &&
			    da->cmd != RELAYCTL_DOMAIN_SHOW) {
				if (!dkimkey_selector_ok(val)) {
					vbuf_setf(why, "--selector: invalid "
					    "selector \"%.64s\" (lower-case "
					    "letters, digits, '-', '.'; at "
					    "most %d)", val,
					    DKIMKEY_SELECTOR_MAX);
					return -1;
				}
				memcpy(da->selector, val, strlen(val) + 1);
				continue;
			}
			if (strcmp(arg, "--key") == 0 &&
			    (da->cmd == RELAYCTL_DOMAIN_ADD ||
			    da->cmd == RELAYCTL_DOMAIN_ROTATE)) {
				if (strcmp(val, "rsa2048") == 0)
					da->type = RELAYCTL_DKIM_RSA2048;
				else if (strcmp(val, "rsa3072") == 0)
					da->type = RELAYCTL_DKIM_RSA3072;
				else if (strcmp(val, "ed25519") == 0)
					da->type = RELAYCTL_DKIM_ED25519;
				else {
					vbuf_setf(why, "--key: must be "
					    "rsa2048, rsa3072 or ed25519");
					return -1;
				}
				continue;
			}
			if (strcmp(arg, "--at") == 0 &&
			    da->cmd == RELAYCTL_DOMAIN_ROTATE) {
				if (relayctl_parse_time(val, &da->at) == -1) {
					vbuf_setf(why, "--at: invalid time "
					    "\"%.64s\" (epoch seconds or "
					    "YYYY-MM-DDTHH:MM:SSZ)", val);
					return -1;
				}
				da->have_at = 1;
				continue;
			}
			vbuf_setf(why, "domain %s: option %s not allowed",
			    argv[0], arg);
			return -1;
		}
		if (arg[0] == '-' || have_domain ||
		    da->cmd == RELAYCTL_DOMAIN_LIST) {
			vbuf_setf(why, "domain %s: unexpected argument %.64s",
			    argv[0], arg);
			return -1;
		}
		if (dkimkey_domain_norm(arg, da->domain,
		    sizeof(da->domain)) == -1) {
			vbuf_setf(why, "invalid domain \"%.64s\" (a name such "
			    "as example.com; no address literal)", arg);
			return -1;
		}
		have_domain = 1;
	}
	if (!have_domain && da->cmd != RELAYCTL_DOMAIN_LIST) {
		vbuf_setf(why, "domain %s: missing DOMAIN", argv[0]);
		return -1;
	}
	return 0;
}

/*
 * Runs fn as mail_owner: in a child when root (its result, an attribute
 * record, comes back through a pipe into res), in-process otherwise; res
 * is emptied first. Returns fn's exit status.
 */
static int
relayctl_as_owner(const struct cfg *cfg, relayctl_step_fn *fn,
    struct relayctl_step *st, struct vbuf *res)
{
	struct vbuf why;
	char buf[4096];
	ssize_t n;
	pid_t pid;
	int fds[2], status, rc;

	vbuf_reset(res);
	if (geteuid() != 0)
		return fn(cfg, st, res);
	if (pipe(fds) == -1) {
		fprintf(stderr, "relayctl: pipe: %s\n", strerror(errno));
		return RELAYCTL_EXIT_FAIL;
	}
	(void)fflush(stdout);
	if ((pid = fork()) == -1) {
		fprintf(stderr, "relayctl: fork: %s\n", strerror(errno));
		(void)close(fds[0]);
		(void)close(fds[1]);
		return RELAYCTL_EXIT_FAIL;
	}
	if (pid == 0) {
		(void)close(fds[0]);
		vbuf_init(&why, 0);
		if (privsep_become_owner(cfg, &why) == -1) {
			fprintf(stderr, "relayctl: %s\n", why.data);
			_exit(RELAYCTL_EXIT_FAIL);
		}
		rc = fn(cfg, st, res);
		if (attr_write(fds[1], res, -1, &why) == -1) {
			fprintf(stderr, "relayctl: registry result: %s\n",
			    why.data);
			rc = RELAYCTL_EXIT_FAIL;
		}
		if (fflush(stdout) == EOF)
			rc = RELAYCTL_EXIT_FAIL;
		_exit(rc);
	}
	(void)close(fds[1]);
	for (;;) {
		if ((n = read(fds[0], buf, sizeof(buf))) == -1 &&
		    errno == EINTR)
			continue;
		if (n <= 0)
			break;
		if (res->len + (size_t)n <= RELAYCTL_RESULT_MAX)
			(void)vbuf_add(res, buf, (size_t)n);
	}
	(void)close(fds[0]);
	while (waitpid(pid, &status, 0) == -1)
		if (errno != EINTR) {
			fprintf(stderr, "relayctl: waitpid: %s\n",
			    strerror(errno));
			return RELAYCTL_EXIT_FAIL;
		}
	if (!WIFEXITED(status)) {
		fprintf(stderr, "relayctl: registry process died\n");
		return RELAYCTL_EXIT_FAIL;
	}
	return WEXITSTATUS(status);
}

/*
 * Registry step of add and rotate: checks the domain's state and picks the
 * selector (given, or the default one with a letter added until free);
 * res gets its name, as the record "selector=NAME".
 */
static int
relayctl_step_pick(const struct cfg *cfg, struct relayctl_step *st,
    struct vbuf *res)
{
	const struct relayctl_domain_args *da = st->da;
	char cand[DKIMKEY_SELECTOR_MAX + 1], base[DKIMKEY_SELECTOR_MAX + 1];
	struct dkimkey_domain d;
	struct dkimkey_db *db;
	struct vbuf why;
	size_t i;
	int rc, letter, taken;

	vbuf_init(&why, 0);
	if ((db = dkimkey_open(cfg, 0, &why)) == NULL ||
	    (rc = dkimkey_domain_get(db, da->domain, &d, &why)) == -1) {
		fprintf(stderr, "relayctl: %s\n", why.data);
		dkimkey_close(db);
		vbuf_release(&why);
		return RELAYCTL_EXIT_FAIL;
	}
	dkimkey_close(db);
	vbuf_release(&why);
	if (rc == 1 && da->cmd == RELAYCTL_DOMAIN_ADD) {
		fprintf(stderr, "relayctl: domain %s is already registered "
		    "(relayctl domain rotate adds a key)\n", da->domain);
		dkimkey_domain_release(&d);
		return RELAYCTL_EXIT_FAIL;
	}
	if (rc == 0 && da->cmd == RELAYCTL_DOMAIN_ROTATE) {
		fprintf(stderr, "relayctl: no such domain %s\n", da->domain);
		return RELAYCTL_EXIT_FAIL;
	}
	if (da->selector[0] != '\0')
		memcpy(base, da->selector, sizeof(base));
	else
		relayctl_default_selector(st->now, base, sizeof(base));
	memcpy(cand, base, sizeof(cand));
	for (letter = 'b';; letter++) {
		taken = 0;
		for (i = 0; i < d.nsels; i++)
			if (strcmp(d.sels[i].name, cand) == 0)
				taken = 1;
		if (!taken)
			break;
		if (da->selector[0] != '\0' || letter > 'z' ||
		    strlen(base) >= DKIMKEY_SELECTOR_MAX) {
			fprintf(stderr, "relayctl: domain %s already has "
			    "selector %s\n", da->domain, cand);
			dkimkey_domain_release(&d);
			return RELAYCTL_EXIT_FAIL;
		}
		/* The default selector is short: room for the letter. */
		memcpy(cand, base, strlen(base));
		cand[strlen(base)] = (char)letter;
		cand[strlen(base) + 1] = '\0';
	}
	dkimkey_domain_release(&d);
	vbuf_reset(res);
	attr_put_str(res, DKIMKEY_ATTR_SELECTOR, cand);
	attr_end(res);
	return RELAYCTL_EXIT_OK;
}

/* Registry step of add and rotate: records st->sel. */
static int
relayctl_step_commit(const struct cfg *cfg, struct relayctl_step *st,
    struct vbuf *res)
{
	struct dkimkey_db *db;
	struct vbuf why;
	int rc = RELAYCTL_EXIT_OK;

	(void)res;
	vbuf_init(&why, 0);
	if ((db = dkimkey_open(cfg, 1, &why)) == NULL ||
	    dkimkey_selector_add(db, st->da->domain, &st->sel,
	    st->da->cmd == RELAYCTL_DOMAIN_ADD, &why) == -1) {
		fprintf(stderr, "relayctl: %s\n", why.data);
		rc = RELAYCTL_EXIT_FAIL;
	}
	dkimkey_close(db);
	vbuf_release(&why);
	return rc;
}

/*
 * Registry step of del: removes the domain or one selector that is not
 * the active one.
 */
static int
relayctl_step_del(const struct cfg *cfg, struct relayctl_step *st,
    struct vbuf *res)
{
	const struct relayctl_domain_args *da = st->da;
	struct dkimkey_domain d;
	struct dkimkey_db *db;
	struct vbuf why;
	int rc = RELAYCTL_EXIT_FAIL, idx;

	(void)res;
	memset(&d, 0, sizeof(d));
	vbuf_init(&why, 0);
	if ((db = dkimkey_open(cfg, 1, &why)) == NULL) {
		fprintf(stderr, "relayctl: %s\n", why.data);
		goto done;
	}
	if (da->selector[0] != '\0') {
		if ((rc = dkimkey_domain_get(db, da->domain, &d,
		    &why)) <= 0) {
			if (rc == 0)
				vbuf_setf(&why, "no such domain %s",
				    da->domain);
			fprintf(stderr, "relayctl: %s\n", why.data);
			rc = RELAYCTL_EXIT_FAIL;
			goto done;
		}
		rc = RELAYCTL_EXIT_FAIL;
		idx = dkimkey_active(&d, st->now);
		if (idx != -1 && strcmp(d.sels[idx].name, da->selector) == 0) {
			fprintf(stderr, "relayctl: selector %s is the one "
			    "%s is signed with: rotate first, or delete the "
			    "domain\n", da->selector, da->domain);
			goto done;
		}
	}
	if (dkimkey_selector_del(db, da->domain,
	    da->selector[0] != '\0' ? da->selector : NULL, &why) != 1) {
		fprintf(stderr, "relayctl: %s\n", why.data);
		goto done;
	}
	rc = RELAYCTL_EXIT_OK;
done:
	dkimkey_domain_release(&d);
	dkimkey_close(db);
	vbuf_release(&why);
	return rc;
}

/*
 * Registry step of show and check: res gets the domain's registry record
 * (dkimkey_domain_encode).
 */
static int
relayctl_step_get(const struct cfg *cfg, struct relayctl_step *st,
    struct vbuf *res)
{
	struct dkimkey_domain d;
	struct dkimkey_db *db;
	struct vbuf why;
	int rc;

	vbuf_init(&why, 0);
	if ((db = dkimkey_open(cfg, 0, &why)) == NULL ||
	    (rc = dkimkey_domain_get(db, st->da->domain, &d, &why)) == -1) {
		fprintf(stderr, "relayctl: %s\n", why.data);
		dkimkey_close(db);
		vbuf_release(&why);
		return RELAYCTL_EXIT_FAIL;
	}
	dkimkey_close(db);
	vbuf_release(&why);
	if (rc == 0) {
		fprintf(stderr, "relayctl: no such domain %s\n",
		    st->da->domain);
		return RELAYCTL_EXIT_FAIL;
	}
	vbuf_reset(res);
	dkimkey_domain_encode(&d, res);
	dkimkey_domain_release(&d);
	return RELAYCTL_EXIT_OK;
}

static int
relayctl_list_one(const struct dkimkey_domain *d, void *arg)
{
	const struct relayctl_step *st = arg;
	struct vbuf line;
	struct json j;
	int idx;

	idx = dkimkey_active(d, st->now);
	vbuf_init(&line, 0);
	if (st->da->json) {
		json_init(&j, &line);
		json_object_begin(&j);
		json_kv_str(&j, "domain", d->name);
		json_key(&j, "selector");
		if (idx == -1)
			json_null(&j);
		else
			json_str(&j, d->sels[idx].name);
		json_key(&j, "algorithm");
		if (idx == -1)
			json_null(&j);
		else
			json_str(&j, dkimkey_alg_name(d->sels[idx].alg));
		json_kv_int(&j, "created", d->created);
		json_kv_int(&j, "selectors", (int64_t)d->nsels);
		json_object_end(&j);
	} else
		(void)vbuf_addf(&line, "%s\t%s\t%s", d->name,
		    idx == -1 ? "-" : d->sels[idx].name,
		    idx == -1 ? "-" : dkimkey_alg_name(d->sels[idx].alg));
	printf("%s\n", line.data);
	vbuf_release(&line);
	return 0;
}

/* Registry step of list: prints directly. */
static int
relayctl_step_list(const struct cfg *cfg, struct relayctl_step *st,
    struct vbuf *res)
{
	struct dkimkey_db *db;
	struct vbuf why;
	int rc = RELAYCTL_EXIT_OK;

	(void)res;
	vbuf_init(&why, 0);
	if ((db = dkimkey_open(cfg, 0, &why)) == NULL ||
	    dkimkey_domain_walk(db, relayctl_list_one, st, &why) == -1) {
		fprintf(stderr, "relayctl: %s\n", why.data);
		rc = RELAYCTL_EXIT_FAIL;
	}
	dkimkey_close(db);
	vbuf_release(&why);
	return rc;
}

/* Appends the zone-file DKIM record of one selector. */
static void
relayctl_dkim_rr(const char *domain, const char *selector,
    enum dkimkey_alg alg, const char *p, struct vbuf *out)
{
	(void)vbuf_addf(out, "%s._domainkey.%s. IN TXT ( ", selector, domain);
	relayctl_dkim_txt_record(alg, p, "\n\t", out);
	(void)vbuf_adds(out, " )");
}

static int
relayctl_domain_add(const struct cfg *cfg,
    const struct relayctl_domain_args *da)
{
	char addr[INET6_ADDRSTRLEN], when[32];
	struct relayctl_step st;
	struct vbuf res, pem, p, why, out, spf;
	struct attr_list al;
	const struct cidr *c;
	const char *selector;
	unsigned bits = 0;
	size_t i, used;
	int rc, ex;

	memset(&st, 0, sizeof(st));
	attr_list_init(&al);
	st.da = da;
	st.now = time(NULL);
	vbuf_init(&res, 0);
	vbuf_init(&pem, 0);
	vbuf_init(&p, 0);
	vbuf_init(&why, 0);
	vbuf_init(&out, 0);
	vbuf_init(&spf, 0);

	/* 1. Pick the selector (registry, as mail_owner). */
	if ((rc = relayctl_as_owner(cfg, relayctl_step_pick, &st,
	    &res)) != RELAYCTL_EXIT_OK)
		goto done;
	rc = RELAYCTL_EXIT_FAIL;
	if (attr_decode(&al, res.data, res.len, &used, NULL) != 1 ||
	    used != res.len ||
	    (selector = attr_get(&al, DKIMKEY_ATTR_SELECTOR)) == NULL ||
	    !dkimkey_selector_ok(selector)) {
		fprintf(stderr, "relayctl: no selector from the registry "
		    "step\n");
		goto done;
	}
	if ((ex = relayctl_dkim_key_exists(cfg, da->domain, selector,
	    &why)) != 0) {
		if (ex == 1)
			fprintf(stderr, "relayctl: a key file for %s selector "
			    "%s exists but is not registered: remove it, or "
			    "choose another --selector\n", da->domain,
			    selector);
		else
			fprintf(stderr, "relayctl: %s\n", why.data);
		goto done;
	}

	/* 2. The key, on disk before the registry names it. */
	if (relayctl_dkim_generate(da->type, &pem, &why) == -1 ||
	    relayctl_dkim_public(pem.data, pem.len, &p, &st.sel.alg, &bits,
	    &why) == -1 ||
	    relayctl_dkim_key_write(cfg, da->domain, selector, pem.data,
	    pem.len, &why) == -1) {
		fprintf(stderr, "relayctl: %s%s\n", why.data,
		    geteuid() != 0 ? " (key files are normally written by "
		    "root: run relayctl as root)" : "");
		goto done;
	}
	memcpy(st.sel.name, selector, strlen(selector) + 1);
	/* selector points into res, which the commit step reuses. */
	selector = NULL;
	st.sel.bits = st.sel.alg == DKIMKEY_ED25519_SHA256 ? 0 : bits;
	st.sel.active_from = da->have_at ? da->at : (int64_t)st.now;

	/* 3. Register it; on failure the key file goes again. */
	if ((rc = relayctl_as_owner(cfg, relayctl_step_commit, &st,
	    &res)) != RELAYCTL_EXIT_OK) {
		if (relayctl_dkim_key_remove(cfg, da->domain, st.sel.name,
		    &why) == -1)
			fprintf(stderr, "relayctl: %s\n", why.data);
		goto done;
	}

	/* 4. The records to publish. */
	relayctl_utc(st.sel.active_from, when, sizeof(when));
	(void)vbuf_addf(&out, "; DKIM: %s selector %s, %s", da->domain,
	    st.sel.name, dkimkey_alg_name(st.sel.alg));
	if (st.sel.bits != 0)
		(void)vbuf_addf(&out, " %u bits", st.sel.bits);
	(void)vbuf_addf(&out, ", signing from %s\n", when);
	relayctl_dkim_rr(da->domain, st.sel.name, st.sel.alg, p.data, &out);
	(void)vbuf_addc(&out, '\n');
	if (da->cmd == RELAYCTL_DOMAIN_ROTATE) {
		(void)vbuf_adds(&out, "; Publish this record before the key "
		    "is used; keep the old selector's record until mail\n"
		    "; signed with it has been delivered, then remove it "
		    "with relayctl domain del --selector.\n");
		goto print;
	}
	(void)vbuf_adds(&spf, "v=spf1");
	/* Every address of every pool (smtp.pools): each may send. */
	for (i = 0; (c = cfg_source_address(cfg, i)) != NULL; i++) {
		if (inet_ntop(c->family, c->addr, addr, sizeof(addr)) == NULL)
			continue;
		(void)vbuf_addf(&spf, " %s:%s", c->family == AF_INET ?
		    "ip4" : "ip6", addr);
		if (c->prefix != (c->family == AF_INET ? 32u : 128u))
			(void)vbuf_addf(&spf, "/%u", c->prefix);
	}
	if (i == 0) {
		(void)vbuf_adds(&out, "; SPF: smtp.source_addresses is not "
		    "set, so the sending addresses are unknown; list them "
		    "there,\n; or replace \"mx\" below with the relay's "
		    "ip4:/ip6: addresses.\n");
		(void)vbuf_adds(&spf, " mx");
	} else
		(void)vbuf_adds(&out, "; SPF: the addresses smtp sends from "
		    "(smtp.source_addresses, smtp.pools)\n");
	(void)vbuf_adds(&spf, " -all");
	(void)vbuf_addf(&out, "%s. IN TXT ", da->domain);
	relayctl_dkim_txt_quote(spf.data, " ", &out);
	(void)vbuf_adds(&out, "\n; DMARC, monitoring mode\n");
	vbuf_reset(&spf);
	if (cfg->dkim_dmarc_rua != NULL && cfg->dkim_dmarc_rua[0] != '\0')
		(void)vbuf_addf(&spf, "v=DMARC1; p=none; rua=mailto:%s",
		    cfg->dkim_dmarc_rua);
	else
		(void)vbuf_addf(&spf, "v=DMARC1; p=none; "
		    "rua=mailto:postmaster@%s", da->domain);
	(void)vbuf_addf(&out, "_dmarc.%s. IN TXT ", da->domain);
	relayctl_dkim_txt_quote(spf.data, " ", &out);
	(void)vbuf_adds(&out, "\n; When 30 to 90 days of aggregate reports "
	    "show all your mail passing, set p=quarantine, then p=reject.\n");
print:
	if (fputs(out.data, stdout) == EOF || fflush(stdout) == EOF) {
		fprintf(stderr, "relayctl: write to stdout: %s\n",
		    strerror(errno));
		goto done;
	}
	rc = RELAYCTL_EXIT_OK;
done:
	attr_list_release(&al);
	vbuf_wipe(&pem);
	vbuf_release(&pem);
	vbuf_release(&res);
	vbuf_release(&p);
	vbuf_release(&why);
	vbuf_release(&out);
	vbuf_release(&spf);
	return rc;
}

static int
relayctl_domain_del(const struct cfg *cfg,
    const struct relayctl_domain_args *da)
{
	struct relayctl_step st;
	struct vbuf res, why;
	int rc;

	memset(&st, 0, sizeof(st));
	st.da = da;
	st.now = time(NULL);
	vbuf_init(&res, 0);
	vbuf_init(&why, 0);
	/* The registry forgets the key before its file goes. */
	if ((rc = relayctl_as_owner(cfg, relayctl_step_del, &st,
	    &res)) == RELAYCTL_EXIT_OK &&
	    relayctl_dkim_key_remove(cfg, da->domain,
	    da->selector[0] != '\0' ? da->selector : NULL, &why) == -1) {
		fprintf(stderr, "relayctl: %s\n", why.data);
		rc = RELAYCTL_EXIT_FAIL;
	}
	vbuf_release(&res);
	vbuf_release(&why);
	return rc;
}

static int
relayctl_domain_show(const struct cfg *cfg,
    const struct relayctl_domain_args *da)
{
	char when[32];
	struct dkimkey_domain d;
	struct vbuf out, pem, p, why, rr, txt;
	struct json j;
	time_t now = time(NULL);
	size_t i;
	int rc, idx, ok;

	vbuf_init(&out, 0);
	vbuf_init(&pem, 0);
	vbuf_init(&p, 0);
	vbuf_init(&why, 0);
	vbuf_init(&rr, 0);
	vbuf_init(&txt, 0);
	if ((rc = relayctl_domain_fetch(cfg, da, &d)) != RELAYCTL_EXIT_OK)
		goto done;
	rc = RELAYCTL_EXIT_FAIL;
	idx = dkimkey_active(&d, now);
	if (da->json) {
		json_init(&j, &out);
		json_object_begin(&j);
		json_kv_str(&j, "domain", d.name);
		json_kv_int(&j, "created", d.created);
		json_key(&j, "active_selector");
		if (idx == -1)
			json_null(&j);
		else
			json_str(&j, d.sels[idx].name);
		json_key(&j, "selectors");
		json_array_begin(&j);
	} else {
		relayctl_utc(d.created, when, sizeof(when));
		(void)vbuf_addf(&out, "domain: %s\ncreated: %s\nactive: %s\n",
		    d.name, when, idx == -1 ? "none" : d.sels[idx].name);
	}
	for (i = 0; i < d.nsels; i++) {
		/* The public key comes from the private key file. */
		vbuf_reset(&why);
		ok = dkimkey_key_read(cfg, d.name, d.sels[i].name, &pem,
		    &why) == 0 && relayctl_dkim_public(pem.data, pem.len, &p,
		    NULL, NULL, &why) == 0;
		vbuf_wipe(&pem);
		vbuf_reset(&rr);
		vbuf_reset(&txt);
		if (ok) {
			relayctl_dkim_rr(d.name, d.sels[i].name,
			    d.sels[i].alg, p.data, &rr);
			(void)vbuf_addf(&txt, "v=DKIM1; k=%s; p=%s",
			    d.sels[i].alg == DKIMKEY_ED25519_SHA256 ?
			    "ed25519" : "rsa", p.data);
		}
		relayctl_utc(d.sels[i].active_from, when, sizeof(when));
		if (da->json) {
			json_object_begin(&j);
			json_kv_str(&j, "selector", d.sels[i].name);
			json_kv_str(&j, "algorithm",
			    dkimkey_alg_name(d.sels[i].alg));
			json_kv_int(&j, "bits", d.sels[i].bits);
			json_kv_int(&j, "active_from", d.sels[i].active_from);
			json_kv_str(&j, "state", (int)i == idx ? "active" :
			    d.sels[i].active_from > (int64_t)now ?
			    "pending" : "retired");
			json_key(&j, "dns_name");
			vbuf_reset(&rr);
			(void)vbuf_addf(&rr, "%s._domainkey.%s",
			    d.sels[i].name, d.name);
			json_str(&j, rr.data);
			json_key(&j, "txt");
			if (ok)
				json_str(&j, txt.data);
			else
				json_null(&j);
			if (!ok)
				json_kv_str(&j, "error", why.data);
			json_object_end(&j);
			continue;
		}
		(void)vbuf_addf(&out, "selector: %s\n  algorithm: %s\n",
		    d.sels[i].name, dkimkey_alg_name(d.sels[i].alg));
		if (d.sels[i].bits != 0)
			(void)vbuf_addf(&out, "  bits: %u\n", d.sels[i].bits);
		(void)vbuf_addf(&out, "  active_from: %s\n  state: %s\n", when,
		    (int)i == idx ? "active" : d.sels[i].active_from >
		    (int64_t)now ? "pending" : "retired");
		if (ok)
			(void)vbuf_addf(&out, "%s\n", rr.data);
		else
			(void)vbuf_addf(&out, "  record: unavailable: %s\n",
			    why.data);
	}
	if (da->json) {
		json_array_end(&j);
		json_object_end(&j);
		(void)vbuf_addc(&out, '\n');
	}
	if (fputs(out.data, stdout) == EOF || fflush(stdout) == EOF) {
		fprintf(stderr, "relayctl: write to stdout: %s\n",
		    strerror(errno));
		goto done;
	}
	rc = RELAYCTL_EXIT_OK;
done:
	dkimkey_domain_release(&d);
	vbuf_wipe(&pem);
	vbuf_release(&pem);
	vbuf_release(&out);
	vbuf_release(&p);
	vbuf_release(&why);
	vbuf_release(&rr);
	vbuf_release(&txt);
	return rc;
}

int
relayctl_domain_fetch(const struct cfg *cfg,
    const struct relayctl_domain_args *da, struct dkimkey_domain *out)
{
	struct relayctl_step st;
	struct vbuf res, why;
	int rc;

	memset(out, 0, sizeof(*out));
	memset(&st, 0, sizeof(st));
	st.da = da;
	st.now = time(NULL);
	vbuf_init(&res, 0);
	vbuf_init(&why, 0);
	if ((rc = relayctl_as_owner(cfg, relayctl_step_get, &st,
	    &res)) == RELAYCTL_EXIT_OK &&
	    dkimkey_domain_decode(da->domain, res.data, res.len, out,
	    &why) == -1) {
		fprintf(stderr, "relayctl: from the registry step: %s\n",
		    why.data);
		rc = RELAYCTL_EXIT_FAIL;
	}
	vbuf_release(&res);
	vbuf_release(&why);
	return rc;
}

int
relayctl_domain_run(const struct cfg *cfg,
    const struct relayctl_domain_args *da)
{
	struct relayctl_step st;
	struct vbuf res;
	int rc;

	switch (da->cmd) {
	case RELAYCTL_DOMAIN_ADD:
	case RELAYCTL_DOMAIN_ROTATE:
		return relayctl_domain_add(cfg, da);
	case RELAYCTL_DOMAIN_DEL:
		return relayctl_domain_del(cfg, da);
	case RELAYCTL_DOMAIN_SHOW:
		return relayctl_domain_show(cfg, da);
	case RELAYCTL_DOMAIN_LIST:
		memset(&st, 0, sizeof(st));
		st.da = da;
		st.now = time(NULL);
		vbuf_init(&res, 0);
		rc = relayctl_as_owner(cfg, relayctl_step_list, &st, &res);
		vbuf_release(&res);
		return rc;
	case RELAYCTL_DOMAIN_CHECK:
		/* relayctl.c runs relayctl_domain_check itself. */
		break;
	}
	return RELAYCTL_EXIT_FAIL;
}
