/*
 * relayctl_user.c - "relayctl user ...": SMTP AUTH credentials and the
 * policy each one carries (sender domains, client networks, limits,
 * whether its messages get delivery reports, and its own webhook endpoint
 * with the key that signs it).
 *
 * Runs as mail_owner (relayctl.c dropped root before calling here), so the
 * credential LMDB under <queue_directory>/cred/ stays owned by it. A
 * generated secret is printed once, on stdout, alone on its line; only its
 * scrypt hash is stored (lib/cred), and nothing here ever prints a hash.
 * Every option is checked before the database is opened. A webhook's
 * generated signing secret (or, for the sendgrid format, the public half
 * of a generated ECDSA key) is printed the same way, once; stored secrets
 * and keys are never printed, nor the password of a URL's user:pass@.
 * See relayctl(8).
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "cred.h"
#include "json.h"
#include "parse.h"
#include "relayctl.h"
#include "vbuf.h"

/* What a subcommand accepts. */
#define RELAYCTL_F_NAME		0x01	/* one NAME */
#define RELAYCTL_F_POLICY	0x02	/* --domains ... --max-size */
#define RELAYCTL_F_STDIN	0x04	/* --password-stdin */
#define RELAYCTL_F_GRACE	0x08	/* --grace */
#define RELAYCTL_F_JSON		0x10	/* -j */

static const struct relayctl_sub {
	const char		*name;
	enum relayctl_user_cmd	 cmd;
	unsigned		 flags;
} relayctl_subs[] = {
	{ "add", RELAYCTL_USER_ADD,
	    RELAYCTL_F_NAME | RELAYCTL_F_POLICY | RELAYCTL_F_STDIN },
	{ "set", RELAYCTL_USER_SET, RELAYCTL_F_NAME | RELAYCTL_F_POLICY },
	{ "show", RELAYCTL_USER_SHOW, RELAYCTL_F_NAME | RELAYCTL_F_JSON },
	{ "list", RELAYCTL_USER_LIST, RELAYCTL_F_JSON },
	{ "rotate", RELAYCTL_USER_ROTATE,
	    RELAYCTL_F_NAME | RELAYCTL_F_GRACE | RELAYCTL_F_STDIN },
	{ "disable", RELAYCTL_USER_DISABLE, RELAYCTL_F_NAME },
	{ "enable", RELAYCTL_USER_ENABLE, RELAYCTL_F_NAME },
	{ "del", RELAYCTL_USER_DEL, RELAYCTL_F_NAME },
};

/* The webhook options of set. */
static const struct relayctl_whopt {
	const char	*name;
	unsigned	 bit;
} relayctl_whopts[] = {
	{ "--webhook", RELAYCTL_WH_URL },
	{ "--webhook-events", RELAYCTL_WH_EVENTS },
	{ "--webhook-format", RELAYCTL_WH_FORMAT },
	{ "--webhook-secret-file", RELAYCTL_WH_SECRET },
};

/* The policy options of add and set. */
static const struct relayctl_popt {
	const char	*name;
	unsigned	 field;
} relayctl_popts[] = {
	{ "--domains", CRED_POLICY_DOMAINS },
	{ "--networks", CRED_POLICY_NETWORKS },
	{ "--max-per-hour", CRED_POLICY_MAX_PER_HOUR },
	{ "--max-per-day", CRED_POLICY_MAX_PER_DAY },
	{ "--max-recipients", CRED_POLICY_MAX_RCPT },
	{ "--max-size", CRED_POLICY_MAX_SIZE },
	{ "--dsn", CRED_POLICY_DSN_OFF },
	{ "--pool", CRED_POLICY_POOL },
	{ "--lane", CRED_POLICY_LANE },
};

struct relayctl_list_ctx {
	int		 json;
	struct vbuf	 line;
};

static int	relayctl_option(struct relayctl_user_args *,
		    const struct relayctl_sub *, const char *, const char *,
		    struct vbuf *);
static int	relayctl_read_secret(struct vbuf *);
static int	relayctl_flush_stdout(void);
static int	relayctl_get_secret(const struct relayctl_user_args *,
		    struct vbuf *);
static int	relayctl_result(int, const char *, const char *,
		    const struct vbuf *);
static int	relayctl_user_add(struct cred_db *,
		    const struct relayctl_user_args *);
static int	relayctl_user_rotate(struct cred_db *,
		    const struct relayctl_user_args *);
static int	relayctl_user_show(struct cred_db *, const char *, int);
static void	relayctl_time(int64_t, char *, size_t);
static void	relayctl_limit(struct vbuf *, const char *, uint64_t,
		    const char *);
static int	relayctl_list_one(const char *, const struct cred_policy *,
		    void *);
static int	relayctl_wh_option(struct relayctl_user_args *, unsigned,
		    const char *, struct vbuf *);
static int	relayctl_wh_read_file(const char *, struct vbuf *,
		    struct vbuf *);
static int	relayctl_wh_check(struct relayctl_user_args *, struct vbuf *);
static int	relayctl_user_webhook(struct cred_db *,
		    const struct relayctl_user_args *);
static void	relayctl_wh_url_masked(const char *, struct vbuf *);
static void	relayctl_wh_show(const struct cred_webhook *, int,
		    struct json *, struct vbuf *);

/*
 * Applies one "--name value" option of subcommand sub. Returns 0, or -1
 * with a reason naming the option in why.
 */
static int
relayctl_option(struct relayctl_user_args *ua, const struct relayctl_sub *sub,
    const char *opt, const char *val, struct vbuf *why)
{
	const struct relayctl_popt *po = NULL;
	struct vbuf sub_why;
	uint64_t n;
	size_t i;
	int rc = 0;

	if ((sub->flags & RELAYCTL_F_GRACE) && strcmp(opt, "--grace") == 0) {
		if (parse_duration(val, &ua->grace) == -1 ||
		    ua->grace > CRED_GRACE_MAX) {
			vbuf_setf(why, "--grace: invalid duration \"%s\" "
			    "(like 90s, 30m, 24h or 7d; 0 for none; at most "
			    "%dd)", val, CRED_GRACE_MAX / 86400);
			return -1;
		}
		return 0;
	}
	if (sub->cmd == RELAYCTL_USER_SET)
		for (i = 0; i < sizeof(relayctl_whopts) /
		    sizeof(relayctl_whopts[0]); i++)
			if (strcmp(opt, relayctl_whopts[i].name) == 0)
				return relayctl_wh_option(ua,
				    relayctl_whopts[i].bit, val, why);
	if (sub->flags & RELAYCTL_F_POLICY)
		for (i = 0; i < sizeof(relayctl_popts) /
		    sizeof(relayctl_popts[0]); i++)
			if (strcmp(opt, relayctl_popts[i].name) == 0)
				po = &relayctl_popts[i];
	if (po == NULL) {
		vbuf_setf(why, "user %s: unknown option %s", sub->name, opt);
		return -1;
	}
	if (ua->fields & po->field) {
		vbuf_setf(why, "user %s: option %s given twice", sub->name,
		    opt);
		return -1;
	}
	ua->fields |= po->field;
	vbuf_init(&sub_why, 0);
	switch (po->field) {
	case CRED_POLICY_DOMAINS:
		if (cred_policy_parse_domains(&ua->policy, val,
		    &sub_why) == -1)
			rc = -1;
		break;
	case CRED_POLICY_NETWORKS:
		if (cred_policy_parse_networks(&ua->policy, val,
		    &sub_why) == -1)
			rc = -1;
		break;
	case CRED_POLICY_DSN_OFF:
		if (strcmp(val, "on") == 0)
			ua->policy.dsn_off = 0;
		else if (strcmp(val, "off") == 0)
			ua->policy.dsn_off = 1;
		else {
			vbuf_setf(&sub_why, "invalid value \"%s\" (on or "
			    "off)", val);
			rc = -1;
		}
		break;
	case CRED_POLICY_POOL:
		if (cred_policy_parse_pool(&ua->policy, val, &sub_why) == -1)
			rc = -1;
		break;
	case CRED_POLICY_LANE:
		if (strcmp(val, "transactional") == 0)
			ua->policy.bulk = 0;
		else if (strcmp(val, "bulk") == 0)
			ua->policy.bulk = 1;
		else {
			vbuf_setf(&sub_why, "invalid value \"%s\" "
			    "(transactional or bulk)", val);
			rc = -1;
		}
		break;
	case CRED_POLICY_MAX_SIZE:
		if (parse_size(val, &ua->policy.max_size) == -1) {
			vbuf_setf(&sub_why, "invalid size \"%s\" (bytes, or "
			    "a number with k, m or g)", val);
			rc = -1;
		}
		break;
	default:
		if (parse_u64(val, 0, UINT64_MAX, &n) == -1) {
			vbuf_setf(&sub_why, "invalid number \"%s\" (0 for "
			    "no limit)", val);
			rc = -1;
		} else if (po->field == CRED_POLICY_MAX_PER_HOUR)
			ua->policy.max_per_hour = n;
		else if (po->field == CRED_POLICY_MAX_PER_DAY)
			ua->policy.max_per_day = n;
		else
			ua->policy.max_recipients = n;
		break;
	}
	if (rc == -1)
		vbuf_setf(why, "%s: %s", opt, sub_why.data);
	vbuf_release(&sub_why);
	return rc;
}

int
relayctl_user_parse(int argc, char *argv[], struct relayctl_user_args *ua,
    struct vbuf *why)
{
	const struct relayctl_sub *sub = NULL;
	const char *arg, *val, *eq;
	char opt[32];
	size_t i, n;
	int a;

	memset(ua, 0, sizeof(*ua));
	vbuf_init(&ua->wh_secret, 0);
	ua->grace = RELAYCTL_GRACE_DEFAULT;
	if (argc < 1) {
		vbuf_setf(why, "user: missing subcommand");
		return -1;
	}
	for (i = 0; i < sizeof(relayctl_subs) / sizeof(relayctl_subs[0]); i++)
		if (strcmp(argv[0], relayctl_subs[i].name) == 0)
			sub = &relayctl_subs[i];
	if (sub == NULL) {
		vbuf_setf(why, "user: unknown subcommand %s", argv[0]);
		return -1;
	}
	ua->cmd = sub->cmd;
	for (a = 1; a < argc; a++) {
		arg = argv[a];
		if (strcmp(arg, "-j") == 0 && (sub->flags & RELAYCTL_F_JSON)) {
			ua->json = 1;
			continue;
		}
		if (strcmp(arg, "--password-stdin") == 0 &&
		    (sub->flags & RELAYCTL_F_STDIN)) {
			ua->password_stdin = 1;
			continue;
		}
		if (strncmp(arg, "--", 2) == 0 && arg[2] != '\0' &&
		    (sub->flags & (RELAYCTL_F_POLICY | RELAYCTL_F_GRACE))) {
			/* "--opt value" or "--opt=value" */
			eq = strchr(arg, '=');
			n = eq == NULL ? strlen(arg) : (size_t)(eq - arg);
			if (n >= sizeof(opt)) {
				vbuf_setf(why, "user %s: unknown option %s",
				    sub->name, arg);
				return -1;
			}
			memcpy(opt, arg, n);
			opt[n] = '\0';
			if (eq != NULL)
				val = eq + 1;
			else if (a + 1 < argc)
				val = argv[++a];
			else {
				vbuf_setf(why, "user %s: option %s needs a "
				    "value", sub->name, opt);
				return -1;
			}
			if (relayctl_option(ua, sub, opt, val, why) == -1)
				return -1;
			continue;
		}
		if (arg[0] == '-') {
			vbuf_setf(why, "user %s: unknown option %s", sub->name,
			    arg);
			return -1;
		}
		if (!(sub->flags & RELAYCTL_F_NAME) || ua->name != NULL) {
			vbuf_setf(why, "user %s: too many arguments",
			    sub->name);
			return -1;
		}
		ua->name = arg;
	}
	if ((sub->flags & RELAYCTL_F_NAME) && ua->name == NULL) {
		vbuf_setf(why, "user %s: missing NAME", sub->name);
		return -1;
	}
	if (ua->cmd == RELAYCTL_USER_SET && ua->fields == 0 &&
	    ua->wh_given == 0) {
		vbuf_setf(why, "user set: nothing to change (give at least "
		    "one option)");
		return -1;
	}
	if (ua->name != NULL && !cred_name_ok(ua->name)) {
		vbuf_setf(why, "invalid user name (1-%d characters of "
		    "A-Z a-z 0-9 . _ @ + -)", CRED_NAME_MAX);
		return -1;
	}
	if (ua->wh_given != 0 && relayctl_wh_check(ua, why) == -1)
		return -1;
	return 0;
}

void
relayctl_user_args_release(struct relayctl_user_args *ua)
{
	cred_policy_release(&ua->policy);
	vbuf_wipe(&ua->wh_secret);
	vbuf_release(&ua->wh_secret);
}

/*
 * One --webhook* option of set. The secret file is read now, before
 * relayctl becomes mail_owner: like an import file, it may be readable
 * by root only. Returns 0, or -1 (why).
 */
static int
relayctl_wh_option(struct relayctl_user_args *ua, unsigned bit,
    const char *val, struct vbuf *why)
{
	struct vbuf sub;

	if (ua->wh_given & bit) {
		vbuf_setf(why, "user set: a --webhook option given twice");
		return -1;
	}
	ua->wh_given |= bit;
	switch (bit) {
	case RELAYCTL_WH_URL:
		ua->wh_url = val;
		break;
	case RELAYCTL_WH_EVENTS:
		ua->wh_events = val;
		break;
	case RELAYCTL_WH_FORMAT:
		ua->wh_format = val;
		break;
	case RELAYCTL_WH_SECRET:
		vbuf_init(&sub, 0);
		if (relayctl_wh_read_file(val, &ua->wh_secret, &sub) == -1) {
			vbuf_setf(why, "--webhook-secret-file: %s", sub.data);
			vbuf_release(&sub);
			return -1;
		}
		vbuf_release(&sub);
		break;
	}
	return 0;
}

/*
 * Reads a secret or key file (at most CRED_WEBHOOK_KEY_MAX bytes, no NUL)
 * into out, without trailing white space. Returns 0, or -1 (why).
 */
static int
relayctl_wh_read_file(const char *path, struct vbuf *out, struct vbuf *why)
{
	char buf[512];
	ssize_t n;
	int fd;

	vbuf_wipe(out);
	(void)vbuf_reserve(out, CRED_WEBHOOK_KEY_MAX + sizeof(buf) + 1);
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) == -1) {
		vbuf_setf(why, "open %s: %s", path, strerror(errno));
		return -1;
	}
	while ((n = read(fd, buf, sizeof(buf))) != 0) {
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1) {
			vbuf_setf(why, "read %s: %s", path, strerror(errno));
			break;
		}
		(void)vbuf_add(out, buf, (size_t)n);
		if (out->len > CRED_WEBHOOK_KEY_MAX) {
			vbuf_setf(why, "%s is longer than %d bytes", path,
			    CRED_WEBHOOK_KEY_MAX);
			n = -1;
			break;
		}
	}
	OPENSSL_cleanse(buf, sizeof(buf));
	(void)close(fd);
	if (n == -1)
		return -1;
	/* As petrel.yaml's secret_file: trailing white space is not part. */
	while (out->len > 0 && strchr(" \t\r\n",
	    out->data[out->len - 1]) != NULL)
		vbuf_truncate(out, out->len - 1);
	if (out->len == 0 || memchr(out->data, '\0', out->len) != NULL) {
		vbuf_setf(why, "%s is empty or holds a NUL byte", path);
		return -1;
	}
	return 0;
}

/*
 * Checks the --webhook options together, before anything is opened:
 * removal excludes the others; the values pass lib/cred's check; a
 * sendgrid key file holds an ECDSA P-256 private key. 0 or -1 (why).
 */
static int
relayctl_wh_check(struct relayctl_user_args *ua, struct vbuf *why)
{
	struct cred_webhook wh;
	struct vbuf sub, pub;
	int rc = 0;

	if ((ua->wh_given & RELAYCTL_WH_URL) && ua->wh_url[0] == '\0') {
		if (ua->wh_given != RELAYCTL_WH_URL) {
			vbuf_setf(why, "user set: --webhook '' removes the "
			    "webhook; give no other --webhook option with it");
			return -1;
		}
		return 0;
	}
	memset(&wh, 0, sizeof(wh));
	/* A stand-in URL: the stored one is kept when none is given. */
	wh.url = (ua->wh_given & RELAYCTL_WH_URL) ? (char *)ua->wh_url :
	    "https://stored.invalid/";
	if (ua->wh_events != NULL && ua->wh_events[0] != '\0')
		wh.events = (char *)ua->wh_events;
	wh.format = (char *)ua->wh_format;
	vbuf_init(&sub, 0);
	if (cred_webhook_check(&wh, &sub) == -1) {
		vbuf_setf(why, "user set: %s", sub.data);
		rc = -1;
	} else if ((ua->wh_given & RELAYCTL_WH_SECRET) &&
	    ua->wh_format != NULL && strcmp(ua->wh_format, "sendgrid") == 0) {
		vbuf_init(&pub, 0);
		if (relayctl_webhook_public(ua->wh_secret.data,
		    ua->wh_secret.len, &pub, &sub) == -1) {
			vbuf_setf(why, "--webhook-secret-file: %s", sub.data);
			rc = -1;
		}
		vbuf_release(&pub);
	} else if ((ua->wh_given & RELAYCTL_WH_SECRET) &&
	    ua->wh_secret.len > CRED_WEBHOOK_SECRET_MAX) {
		vbuf_setf(why, "--webhook-secret-file: a secret is at most %d "
		    "bytes", CRED_WEBHOOK_SECRET_MAX);
		rc = -1;
	}
	vbuf_release(&sub);
	return rc;
}

/*
 * "user set NAME --webhook...": the stored webhook with the given options
 * applied. Without --webhook-secret-file a webhook keeps the secret (or,
 * sendgrid, the key) it has; one that has none gets a new one, printed
 * once after it is stored (postmark: none). Returns an exit status.
 */
static int
relayctl_user_webhook(struct cred_db *db, const struct relayctl_user_args *ua)
{
	struct cred_webhook cur, nw;
	struct vbuf why, made, pub;
	const char *fmt;
	int rc, sendgrid, ret = RELAYCTL_EXIT_FAIL, shown = 0;

	vbuf_init(&why, 0);
	vbuf_init(&made, 0);
	vbuf_init(&pub, 0);
	if ((ua->wh_given & RELAYCTL_WH_URL) && ua->wh_url[0] == '\0') {
		rc = cred_webhook_set(db, ua->name, NULL, &why);
		ret = relayctl_result(rc, "set", ua->name, &why);
		goto out;
	}
	rc = cred_webhook_get(db, ua->name, &cur, &why);
	if ((ret = relayctl_result(rc, "set", ua->name, &why)) !=
	    RELAYCTL_EXIT_OK)
		goto out;
	ret = RELAYCTL_EXIT_FAIL;
	nw = cur;
	if (ua->wh_given & RELAYCTL_WH_URL)
		nw.url = (char *)ua->wh_url;
	if (nw.url == NULL) {
		fprintf(stderr, "relayctl: user set %s: it has no webhook; "
		    "give --webhook URL\n", ua->name);
		goto done;
	}
	if (ua->wh_given & RELAYCTL_WH_EVENTS)
		nw.events = ua->wh_events[0] == '\0' ? NULL :
		    (char *)ua->wh_events;
	if (ua->wh_given & RELAYCTL_WH_FORMAT)
		nw.format = (char *)ua->wh_format;
	fmt = nw.format != NULL ? nw.format : "petrel";
	sendgrid = strcmp(fmt, "sendgrid") == 0;
	if (ua->wh_given & RELAYCTL_WH_SECRET) {
		/* The format decides what the file holds (checked at parse
		 * when --webhook-format came with it). */
		if (sendgrid && relayctl_webhook_public(ua->wh_secret.data,
		    ua->wh_secret.len, &pub, &why) == -1) {
			fprintf(stderr, "relayctl: user set %s: "
			    "--webhook-secret-file: %s\n", ua->name, why.data);
			goto done;
		}
		if (sendgrid)
			nw.key_pem = ua->wh_secret.data;
		else
			nw.secret = ua->wh_secret.data;
	} else if (sendgrid && nw.key_pem == NULL) {
		if (relayctl_webhook_keygen(&made, &pub, &why) == -1) {
			fprintf(stderr, "relayctl: user set %s: %s\n",
			    ua->name, why.data);
			goto done;
		}
		nw.key_pem = made.data;
		shown = 1;
	} else if (!sendgrid && strcmp(fmt, "postmark") != 0 &&
	    nw.secret == NULL) {
		/* (Postmark signs nothing: a postmark webhook needs none.) */
		if (cred_generate_secret(&made) == -1) {
			fprintf(stderr, "relayctl: user set %s: cannot "
			    "generate a secret: random generator failed\n",
			    ua->name);
			goto done;
		}
		nw.secret = made.data;
		shown = 1;
	}
	rc = cred_webhook_set(db, ua->name, &nw, &why);
	if ((ret = relayctl_result(rc, "set", ua->name, &why)) !=
	    RELAYCTL_EXIT_OK)
		goto done;
	if (shown) {
		/* The signing secret (sendgrid: the verification key). */
		printf("%s\n", sendgrid ? pub.data : made.data);
		if (relayctl_flush_stdout() == -1) {
			fprintf(stderr, "relayctl: user %s: the webhook's new "
			    "%s is stored but was not shown; remove the webhook "
			    "(--webhook '') and set it again\n", ua->name,
			    sendgrid ? "key" : "secret");
			ret = RELAYCTL_EXIT_FAIL;
		}
	}
done:
	cred_webhook_release(&cur);
out:
	vbuf_wipe(&made);
	vbuf_release(&made);
	vbuf_release(&pub);
	vbuf_release(&why);
	return ret;
}

/* url with the password of a user:pass@ part replaced by "***". */
static void
relayctl_wh_url_masked(const char *url, struct vbuf *out)
{
	const char *host, *at, *colon;
	size_t end;

	vbuf_reset(out);
	if ((host = strstr(url, "://")) == NULL) {
		(void)vbuf_adds(out, url);
		return;
	}
	host += 3;
	end = strcspn(host, "/?#");
	at = memrchr(host, '@', end);
	colon = at == NULL ? NULL : memchr(host, ':', (size_t)(at - host));
	if (colon == NULL) {
		(void)vbuf_adds(out, url);
		return;
	}
	(void)vbuf_add(out, url, (size_t)(colon + 1 - url));
	(void)vbuf_adds(out, "***");
	(void)vbuf_adds(out, at);
}

/*
 * Appends a credential's webhook to user show: as members of the object
 * j is writing, or as lines of out. Never the secret nor the key.
 */
static void
relayctl_wh_show(const struct cred_webhook *wh, int json, struct json *j,
    struct vbuf *out)
{
	const char *fmt, *ev;
	struct vbuf url;
	size_t n;

	if (wh->url == NULL) {
		if (json) {
			json_key(j, "webhook");
			json_null(j);
		} else
			(void)vbuf_adds(out, "webhook: none\n");
		return;
	}
	vbuf_init(&url, 0);
	relayctl_wh_url_masked(wh->url, &url);
	fmt = wh->format != NULL ? wh->format : "petrel";
	ev = wh->events != NULL ? wh->events : CRED_WEBHOOK_EVENTS_DEFAULT;
	if (json) {
		json_key(j, "webhook");
		json_object_begin(j);
		json_kv_str(j, "url", url.data);
		json_kv_str(j, "format", fmt);
		json_key(j, "events");
		json_array_begin(j);
		while (*ev != '\0') {
			ev += strspn(ev, ", ");
			n = strcspn(ev, ", ");
			if (n > 0) {
				vbuf_reset(&url);
				(void)vbuf_add(&url, ev, n);
				json_str(j, url.data);
			}
			ev += n;
		}
		json_array_end(j);
		json_key(j, "signed");
		json_bool(j, strcmp(fmt, "sendgrid") == 0 ?
		    wh->key_pem != NULL : strcmp(fmt, "postmark") == 0 ? 0 :
		    wh->secret != NULL);
		json_object_end(j);
	} else {
		(void)vbuf_addf(out, "webhook: %s\nwebhook_format: %s\n"
		    "webhook_events: %s%s\nwebhook_signed: %s\n", url.data,
		    fmt, ev, wh->events == NULL ? " (default)" : "",
		    strcmp(fmt, "sendgrid") == 0 ? (wh->key_pem != NULL ?
		    "yes (ECDSA key)" : "no") : strcmp(fmt, "postmark") == 0 ?
		    "no (Postmark signs nothing; use user:pass@ in the URL)" :
		    wh->secret != NULL ? "yes (secret)" : "no");
	}
	vbuf_release(&url);
}

/*
 * Reads one line from stdin into out: the trailing LF or CRLF is
 * stripped; empty, over-long and NUL-bearing lines are refused. The buffer
 * is reserved up front so that growth never leaves copies of the secret
 * behind in freed memory. Returns 0, or -1 after printing why.
 */
static int
relayctl_read_secret(struct vbuf *out)
{
	int c;

	vbuf_reset(out);
	(void)vbuf_reserve(out, CRED_SECRET_MAX + 2);
	while ((c = getchar()) != EOF && c != '\n') {
		if (c == '\0') {
			fprintf(stderr, "relayctl: password on stdin contains "
			    "a NUL byte\n");
			return -1;
		}
		if (out->len > CRED_SECRET_MAX) {
			fprintf(stderr, "relayctl: password on stdin is longer "
			    "than %d bytes\n", CRED_SECRET_MAX);
			return -1;
		}
		(void)vbuf_addc(out, c);
	}
	if (ferror(stdin)) {
		fprintf(stderr, "relayctl: read password from stdin: %s\n",
		    strerror(errno));
		return -1;
	}
	if (out->len > 0 && out->data[out->len - 1] == '\r')
		vbuf_truncate(out, out->len - 1);
	if (out->len == 0) {
		fprintf(stderr, "relayctl: empty password on stdin\n");
		return -1;
	}
	if (out->len > CRED_SECRET_MAX) {
		fprintf(stderr, "relayctl: password on stdin is longer than "
		    "%d bytes\n", CRED_SECRET_MAX);
		return -1;
	}
	return 0;
}

static int
relayctl_flush_stdout(void)
{
	if (fflush(stdout) == EOF || ferror(stdout)) {
		fprintf(stderr, "relayctl: write to stdout: %s\n",
		    strerror(errno));
		return -1;
	}
	return 0;
}

/* Reads the secret from stdin, or makes one. Returns 0, or -1 (printed). */
static int
relayctl_get_secret(const struct relayctl_user_args *ua, struct vbuf *secret)
{
	if (ua->password_stdin)
		return relayctl_read_secret(secret);
	if (cred_generate_secret(secret) == -1) {
		fprintf(stderr, "relayctl: user %s: cannot generate a secret: "
		    "random generator failed\n", ua->name);
		return -1;
	}
	return 0;
}

/* Turns a 1/0/-1 result of lib/cred into a message and an exit status. */
static int
relayctl_result(int rc, const char *cmd, const char *name,
    const struct vbuf *why)
{
	if (rc == 1)
		return RELAYCTL_EXIT_OK;
	if (rc == 0)
		fprintf(stderr, "relayctl: no such user %s\n", name);
	else
		fprintf(stderr, "relayctl: user %s %s: %s\n", cmd, name,
		    why->data);
	return RELAYCTL_EXIT_FAIL;
}

static int
relayctl_user_add(struct cred_db *db, const struct relayctl_user_args *ua)
{
	struct vbuf secret, why;
	int ret = RELAYCTL_EXIT_FAIL;

	vbuf_init(&secret, 0);
	vbuf_init(&why, 0);
	if (relayctl_get_secret(ua, &secret) == -1)
		goto done;
	if (cred_user_add_policy(db, ua->name, secret.data, secret.len,
	    &ua->policy, ua->fields, &why) == -1) {
		fprintf(stderr, "relayctl: user add %s: %s\n", ua->name,
		    why.data);
		goto done;
	}
	if (!ua->password_stdin) {
		/*
		 * The secret exists nowhere else: if it cannot be shown,
		 * take the user back out rather than leave it unusable.
		 */
		printf("%s\n", secret.data);
		if (relayctl_flush_stdout() == -1) {
			if (cred_user_del(db, ua->name, &why) == -1)
				fprintf(stderr, "relayctl: user %s was added "
				    "but its secret was not shown; remove it: "
				    "%s\n", ua->name, why.data);
			else
				fprintf(stderr, "relayctl: user %s not added\n",
				    ua->name);
			goto done;
		}
	}
	ret = RELAYCTL_EXIT_OK;
done:
	vbuf_wipe(&secret);
	vbuf_release(&secret);
	vbuf_release(&why);
	return ret;
}

static int
relayctl_user_rotate(struct cred_db *db, const struct relayctl_user_args *ua)
{
	struct vbuf secret, why;
	int rc, ret = RELAYCTL_EXIT_FAIL;

	vbuf_init(&secret, 0);
	vbuf_init(&why, 0);
	if (relayctl_get_secret(ua, &secret) == -1)
		goto done;
	rc = cred_user_rotate(db, ua->name, secret.data, secret.len,
	    ua->grace, &why);
	if ((ret = relayctl_result(rc, "rotate", ua->name, &why)) !=
	    RELAYCTL_EXIT_OK)
		goto done;
	if (!ua->password_stdin) {
		printf("%s\n", secret.data);
		if (relayctl_flush_stdout() == -1) {
			fprintf(stderr, "relayctl: user %s: the new secret is "
			    "in force but was not shown; rotate again%s\n",
			    ua->name, ua->grace > 0 ? " (the previous secret "
			    "works during the grace period)" : "");
			ret = RELAYCTL_EXIT_FAIL;
		}
	}
done:
	vbuf_wipe(&secret);
	vbuf_release(&secret);
	vbuf_release(&why);
	return ret;
}

/* Formats an epoch time as UTC ISO 8601, or "-" if unknown. */
static void
relayctl_time(int64_t when, char *buf, size_t size)
{
	time_t t = (time_t)when;
	struct tm tm;

	if (when <= 0 || gmtime_r(&t, &tm) == NULL ||
	    strftime(buf, size, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
		snprintf(buf, size, "-");
}

/* Appends "key: N" or "key: none_text" and a newline. */
static void
relayctl_limit(struct vbuf *out, const char *key, uint64_t v,
    const char *none_text)
{
	if (v == 0)
		(void)vbuf_addf(out, "%s: %s\n", key, none_text);
	else
		(void)vbuf_addf(out, "%s: %" PRIu64 "\n", key, v);
}

static int
relayctl_user_show(struct cred_db *db, const char *name, int json)
{
	struct cred_webhook wh;
	struct cred_policy pol;
	struct vbuf out, why;
	struct json j;
	char when[32];
	size_t i;
	int rc, ret;

	vbuf_init(&out, 0);
	vbuf_init(&why, 0);
	memset(&wh, 0, sizeof(wh));
	rc = cred_policy_get(db, name, &pol, &why);
	if ((ret = relayctl_result(rc, "show", name, &why)) !=
	    RELAYCTL_EXIT_OK)
		goto done;
	rc = cred_webhook_get(db, name, &wh, &why);
	if ((ret = relayctl_result(rc, "show", name, &why)) !=
	    RELAYCTL_EXIT_OK) {
		cred_policy_release(&pol);
		goto done;
	}
	if (json) {
		json_init(&j, &out);
		json_object_begin(&j);
		json_kv_str(&j, "user", name);
		json_kv_int(&j, "created", pol.created);
		json_key(&j, "disabled");
		json_bool(&j, pol.disabled);
		json_key(&j, "dsn");
		json_bool(&j, !pol.dsn_off);
		json_kv_str(&j, "pool", pol.pool[0] != '\0' ? pol.pool :
		    CFG_POOL_DEFAULT);
		json_kv_str(&j, "lane", pol.bulk ? "bulk" : "transactional");
		json_key(&j, "domains");
		json_array_begin(&j);
		for (i = 0; i < pol.ndomains; i++)
			json_str(&j, pol.domains[i]);
		json_array_end(&j);
		json_key(&j, "networks");
		json_array_begin(&j);
		for (i = 0; i < pol.nnetworks; i++) {
			vbuf_reset(&why);
			cred_policy_format_cidr(&pol.networks[i], &why);
			json_str(&j, why.data);
		}
		json_array_end(&j);
		json_key(&j, "max_per_hour");
		json_uint(&j, pol.max_per_hour);
		json_key(&j, "max_per_day");
		json_uint(&j, pol.max_per_day);
		json_key(&j, "max_recipients");
		json_uint(&j, pol.max_recipients);
		json_key(&j, "max_size");
		json_uint(&j, pol.max_size);
		json_key(&j, "rotation");
		if (pol.old_valid_until == 0)
			json_null(&j);
		else {
			json_object_begin(&j);
			json_kv_int(&j, "old_valid_until",
			    pol.old_valid_until);
			json_object_end(&j);
		}
		relayctl_wh_show(&wh, 1, &j, &out);
		json_object_end(&j);
		(void)vbuf_addc(&out, '\n');
	} else {
		relayctl_time(pol.created, when, sizeof(when));
		(void)vbuf_addf(&out, "user: %s\ncreated: %s\ndisabled: %s\n"
		    "dsn: %s\nlane: %s\npool: %s\n", name, when,
		    pol.disabled ? "yes" : "no", pol.dsn_off ? "off" : "on",
		    pol.bulk ? "bulk" : "transactional", pol.pool[0] != '\0' ?
		    pol.pool : CFG_POOL_DEFAULT);
		(void)vbuf_adds(&out, "domains: ");
		if (pol.ndomains == 0)
			(void)vbuf_adds(&out, "any");
		cred_policy_format_domains(&pol, &out);
		(void)vbuf_adds(&out, "\nnetworks: ");
		if (pol.nnetworks == 0)
			(void)vbuf_adds(&out, "any");
		cred_policy_format_networks(&pol, &out);
		(void)vbuf_addc(&out, '\n');
		relayctl_limit(&out, "max_per_hour", pol.max_per_hour,
		    "unlimited");
		relayctl_limit(&out, "max_per_day", pol.max_per_day,
		    "unlimited");
		relayctl_limit(&out, "max_recipients", pol.max_recipients,
		    "default");
		relayctl_limit(&out, "max_size", pol.max_size, "default");
		if (pol.old_valid_until == 0)
			(void)vbuf_adds(&out, "rotation: none\n");
		else {
			relayctl_time(pol.old_valid_until, when, sizeof(when));
			(void)vbuf_addf(&out, "rotation: previous secret valid "
			    "until %s\n", when);
		}
		relayctl_wh_show(&wh, 0, NULL, &out);
	}
	if (fwrite(out.data, 1, out.len, stdout) != out.len ||
	    relayctl_flush_stdout() == -1)
		ret = RELAYCTL_EXIT_FAIL;
	cred_policy_release(&pol);
	cred_webhook_release(&wh);
done:
	vbuf_release(&out);
	vbuf_release(&why);
	return ret;
}

/* One line of "user list"; pol is NULL for a corrupt record. */
static int
relayctl_list_one(const char *user, const struct cred_policy *pol, void *arg)
{
	struct relayctl_list_ctx *ctx = arg;
	struct json j;
	char when[32];

	vbuf_reset(&ctx->line);
	if (ctx->json) {
		json_init(&j, &ctx->line);
		json_object_begin(&j);
		json_kv_str(&j, "user", user);
		json_kv_int(&j, "created", pol == NULL ? 0 : pol->created);
		/* A corrupt record cannot log in: it counts as disabled. */
		json_key(&j, "disabled");
		json_bool(&j, pol == NULL || pol->disabled);
		json_key(&j, "dsn");
		json_bool(&j, pol == NULL || !pol->dsn_off);
		json_kv_str(&j, "pool", pol == NULL || pol->pool[0] == '\0' ?
		    CFG_POOL_DEFAULT : pol->pool);
		json_kv_str(&j, "lane", pol != NULL && pol->bulk ? "bulk" :
		    "transactional");
		if (pol == NULL) {
			json_key(&j, "corrupt");
			json_bool(&j, 1);
		}
		json_object_end(&j);
	} else {
		relayctl_time(pol == NULL ? 0 : pol->created, when,
		    sizeof(when));
		(void)vbuf_addf(&ctx->line, "%s\t%s\t%s\tdsn=%s\tlane=%s",
		    user, when, pol == NULL ? "corrupt" : pol->disabled ?
		    "disabled" : "enabled", pol == NULL || !pol->dsn_off ?
		    "on" : "off", pol != NULL && pol->bulk ? "bulk" :
		    "transactional");
		/* The last column: later ones go before it. */
		(void)vbuf_addf(&ctx->line, "\tpool=%s", pol == NULL ||
		    pol->pool[0] == '\0' ? CFG_POOL_DEFAULT : pol->pool);
	}
	(void)vbuf_addc(&ctx->line, '\n');
	if (fwrite(ctx->line.data, 1, ctx->line.len, stdout) !=
	    ctx->line.len)
		return -1;
	return 0;
}

int
relayctl_user_run(const struct cfg *cfg, const struct relayctl_opts *opts,
    const struct relayctl_user_args *ua)
{
	struct relayctl_list_ctx ctx;
	struct cred_policy pol;
	struct cred_db *db;
	struct vbuf why;
	int rc, ret = RELAYCTL_EXIT_FAIL;

	vbuf_init(&why, 0);
	/*
	 * A pool the configuration lacks would leave the credential's mail
	 * from the kernel's choice of address: refused before anything
	 * changes. ("default" always exists, possibly empty.)
	 */
	if ((ua->fields & CRED_POLICY_POOL) && ua->policy.pool[0] != '\0' &&
	    cfg_pool_lookup(cfg, ua->policy.pool) == NULL) {
		fprintf(stderr, "relayctl: user %s %s: --pool %s: no such "
		    "pool in smtp.pools of %s\n", ua->cmd == RELAYCTL_USER_ADD ?
		    "add" : "set", ua->name, ua->policy.pool, cfg->path);
		vbuf_release(&why);
		return RELAYCTL_EXIT_FAIL;
	}
	/* list and show only read: they never create the environment. */
	if ((db = cred_open(cfg, ua->cmd != RELAYCTL_USER_LIST &&
	    ua->cmd != RELAYCTL_USER_SHOW, &why)) == NULL) {
		fprintf(stderr, "relayctl: credential database: %s\n",
		    why.data);
		vbuf_release(&why);
		return RELAYCTL_EXIT_FAIL;
	}
	switch (ua->cmd) {
	case RELAYCTL_USER_ADD:
		ret = relayctl_user_add(db, ua);
		break;
	case RELAYCTL_USER_LIST:
		ctx.json = opts->json || ua->json;
		vbuf_init(&ctx.line, 0);
		if (cred_user_walk(db, relayctl_list_one, &ctx, &why) == -1)
			fprintf(stderr, "relayctl: user list: %s\n", why.data);
		else if (relayctl_flush_stdout() == 0)
			ret = RELAYCTL_EXIT_OK;
		vbuf_release(&ctx.line);
		break;
	case RELAYCTL_USER_DEL:
		/* cred_user_del says exactly "no such user NAME" then. */
		if (cred_user_del(db, ua->name, &why) == -1) {
			if (strncmp(why.data, "no such user ", 13) == 0)
				fprintf(stderr, "relayctl: %s\n", why.data);
			else
				fprintf(stderr, "relayctl: user del %s: %s\n",
				    ua->name, why.data);
		}
		else
			ret = RELAYCTL_EXIT_OK;
		break;
	case RELAYCTL_USER_SET:
		ret = RELAYCTL_EXIT_OK;
		if (ua->fields != 0) {
			rc = cred_user_set(db, ua->name, &ua->policy,
			    ua->fields, &why);
			ret = relayctl_result(rc, "set", ua->name, &why);
		}
		if (ret == RELAYCTL_EXIT_OK && ua->wh_given != 0)
			ret = relayctl_user_webhook(db, ua);
		break;
	case RELAYCTL_USER_SHOW:
		ret = relayctl_user_show(db, ua->name,
		    opts->json || ua->json);
		break;
	case RELAYCTL_USER_ROTATE:
		ret = relayctl_user_rotate(db, ua);
		break;
	case RELAYCTL_USER_DISABLE:
	case RELAYCTL_USER_ENABLE:
		memset(&pol, 0, sizeof(pol));
		pol.disabled = ua->cmd == RELAYCTL_USER_DISABLE;
		rc = cred_user_set(db, ua->name, &pol, CRED_POLICY_DISABLED,
		    &why);
		ret = relayctl_result(rc, pol.disabled ? "disable" : "enable",
		    ua->name, &why);
		break;
	}
	cred_close(db);
	vbuf_release(&why);
	return ret;
}
