/*
 * relayctl_user.c - "relayctl user add|list|del": SMTP AUTH credentials.
 *
 * Runs as mail_owner (relayctl.c dropped root before calling here), so the
 * credential LMDB under <queue_directory>/cred/ stays owned by it. A
 * generated secret is printed once, on stdout, alone on its line; only its
 * scrypt hash is stored (lib/cred). See relayctl(8).
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "cred.h"
#include "json.h"
#include "relayctl.h"
#include "vbuf.h"

struct relayctl_list_ctx {
	int		 json;
	struct vbuf	 line;
};

static int	relayctl_read_secret(struct vbuf *);
static int	relayctl_user_add(struct cred_db *,
		    const struct relayctl_user_args *);
static int	relayctl_list_one(const char *, int64_t, void *);
static int	relayctl_flush_stdout(void);

int
relayctl_user_parse(int argc, char *argv[], struct relayctl_user_args *ua,
    struct vbuf *why)
{
	int i;

	memset(ua, 0, sizeof(*ua));
	if (argc < 1) {
		vbuf_setf(why, "user: missing subcommand");
		return -1;
	}
	if (strcmp(argv[0], "add") == 0) {
		ua->cmd = RELAYCTL_USER_ADD;
		for (i = 1; i < argc; i++) {
			if (strcmp(argv[i], "--password-stdin") == 0) {
				ua->password_stdin = 1;
			} else if (argv[i][0] == '-') {
				vbuf_setf(why, "user add: unknown option %s",
				    argv[i]);
				return -1;
			} else if (ua->name == NULL) {
				ua->name = argv[i];
			} else {
				vbuf_setf(why, "user add: too many arguments");
				return -1;
			}
		}
		if (ua->name == NULL) {
			vbuf_setf(why, "user add: missing NAME");
			return -1;
		}
	} else if (strcmp(argv[0], "list") == 0) {
		ua->cmd = RELAYCTL_USER_LIST;
		if (argc != 1) {
			vbuf_setf(why, "user list: too many arguments");
			return -1;
		}
	} else if (strcmp(argv[0], "del") == 0) {
		ua->cmd = RELAYCTL_USER_DEL;
		if (argc != 2) {
			vbuf_setf(why, "user del: expected exactly one NAME");
			return -1;
		}
		ua->name = argv[1];
	} else {
		vbuf_setf(why, "user: unknown subcommand %s", argv[0]);
		return -1;
	}
	if (ua->name != NULL && !cred_name_ok(ua->name)) {
		vbuf_setf(why, "invalid user name (1-%d characters of "
		    "A-Z a-z 0-9 . _ @ + -)", CRED_NAME_MAX);
		return -1;
	}
	return 0;
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

static int
relayctl_user_add(struct cred_db *db, const struct relayctl_user_args *ua)
{
	struct vbuf secret, why;
	int ret = RELAYCTL_EXIT_FAIL;

	vbuf_init(&secret, 0);
	vbuf_init(&why, 0);
	if (ua->password_stdin) {
		if (relayctl_read_secret(&secret) == -1)
			goto done;
	} else if (cred_generate_secret(&secret) == -1) {
		fprintf(stderr, "relayctl: user %s: cannot generate a secret: "
		    "random generator failed\n", ua->name);
		goto done;
	}
	if (cred_user_add(db, ua->name, secret.data, secret.len,
	    &why) == -1) {
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
relayctl_list_one(const char *user, int64_t created, void *arg)
{
	struct relayctl_list_ctx *ctx = arg;
	struct json j;
	struct tm tm;
	time_t t = (time_t)created;
	char when[32];

	vbuf_reset(&ctx->line);
	if (ctx->json) {
		json_init(&j, &ctx->line);
		json_object_begin(&j);
		json_kv_str(&j, "user", user);
		json_kv_int(&j, "created", created);
		json_object_end(&j);
	} else {
		if (created <= 0 || gmtime_r(&t, &tm) == NULL ||
		    strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ",
		    &tm) == 0)
			snprintf(when, sizeof(when), "-");
		(void)vbuf_addf(&ctx->line, "%s\t%s", user, when);
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
	struct cred_db *db;
	struct vbuf why;
	int ret = RELAYCTL_EXIT_FAIL;

	vbuf_init(&why, 0);
	/* list only reads: it never creates the environment. */
	if ((db = cred_open(cfg, ua->cmd != RELAYCTL_USER_LIST,
	    &why)) == NULL) {
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
		ctx.json = opts->json;
		vbuf_init(&ctx.line, 0);
		if (cred_user_list(db, relayctl_list_one, &ctx, &why) == -1)
			fprintf(stderr, "relayctl: user list: %s\n", why.data);
		else if (relayctl_flush_stdout() == 0)
			ret = RELAYCTL_EXIT_OK;
		vbuf_release(&ctx.line);
		break;
	case RELAYCTL_USER_DEL:
		if (cred_user_del(db, ua->name, &why) == -1)
			fprintf(stderr, "relayctl: user del %s: %s\n",
			    ua->name, why.data);
		else
			ret = RELAYCTL_EXIT_OK;
		break;
	}
	cred_close(db);
	vbuf_release(&why);
	return ret;
}
