/*
 * sendmail.c - Petrel's sendmail(1), also mailq and newaliases by name:
 * what cron, PHP's mail(), mailx and scripts call to send mail on the
 * relay host. See sendmail(1).
 *
 * The options are Postfix's sendmail's, those scripts use; the others
 * Postfix accepts are accepted and ignored. The message goes to smtpd
 * over the local submission socket, which decides by the caller's uid
 * (local_submission in petrel.yaml(5)); sendmail itself runs with the
 * caller's privileges only. -bp and -q run relayq(1); exit codes are
 * sysexits.h's.
 */
#include <sys/stat.h>

#include <errno.h>
#include <libgen.h>
#include <limits.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>
#include <unistd.h>

#include <gmime/gmime.h>

#include "cfg.h"
#include "sendmail.h"
#include "xalloc.h"

#define SENDMAIL_OPTS	"+B:C:F:GIL:N:O:R:UV:X:b:ce:f:h:imno:p:q::r:tvx"
#define SENDMAIL_ENV	"PETREL_CONFIG"	/* the file, as -C */

enum sendmail_mode {
	SENDMAIL_SEND,		/* -bm, the default */
	SENDMAIL_SMTP,		/* -bs */
	SENDMAIL_LIST,		/* -bp, mailq */
	SENDMAIL_FLUSH,		/* -q */
	SENDMAIL_ALIASES,	/* -bi, -I, newaliases */
};

static const char *sendmail_prog = "sendmail";

static void sendmail_usage(FILE *, int) __attribute__((noreturn));
static void sendmail_die(int, const char *, ...)
    __attribute__((noreturn, format(printf, 2, 3)));
static const char *sendmail_cfg_path(const char *);
static void sendmail_relayq(const char *, int) __attribute__((noreturn));
static void sendmail_qualify(const struct cfg *, const char *, char *,
    size_t);
static int sendmail_args(const struct cfg *, struct sendmail_rcpts *,
    int, char **, struct vbuf *);

static void
sendmail_usage(FILE *f, int ex)
{
	fprintf(f,
	    "usage: sendmail [-t] [-i | -oi] [-f SENDER] [-F NAME] [-C FILE] "
	    "[-v] [RECIPIENT ...]\n"
	    "       sendmail -bs [-C FILE]\n"
	    "       sendmail -bp [-C FILE]     (also: mailq)\n"
	    "       sendmail -q [-C FILE]\n"
	    "       newaliases\n"
	    "The message is read from standard input. The configuration is "
	    "-C FILE,\nelse $%s, else %s. See sendmail(1).\n",
	    SENDMAIL_ENV, CFG_DEFAULT_PATH);
	exit(ex);
}

static void
sendmail_die(int ex, const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "%s: ", sendmail_prog);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(ex);
}

/* -C FILE (or a directory holding petrel.yaml, as Postfix's -C takes). */
static const char *
sendmail_cfg_path(const char *opt)
{
	static char path[PATH_MAX];
	const char *p = opt;
	struct stat st;

	if (p == NULL && (p = getenv(SENDMAIL_ENV)) != NULL && p[0] == '\0')
		p = NULL;
	if (p == NULL)
		return CFG_DEFAULT_PATH;
	if (stat(p, &st) == 0 && S_ISDIR(st.st_mode)) {
		if (snprintf(path, sizeof(path), "%s/petrel.yaml", p) >=
		    (int)sizeof(path))
			sendmail_die(EX_USAGE, "-C %s: path too long", p);
		return path;
	}
	return p;
}

/* -bp and -q are relayq(1)'s, the program next to this one. */
static void
sendmail_relayq(const char *cfg_path, int flush)
{
	char self[PATH_MAX], prog[PATH_MAX + 16];
	char *argv[5];
	ssize_t n;
	int i = 0;

	if ((n = readlink("/proc/self/exe", self, sizeof(self) - 1)) == -1)
		sendmail_die(EX_OSERR, "readlink /proc/self/exe: %s",
		    strerror(errno));
	self[n] = '\0';
	snprintf(prog, sizeof(prog), "%s/relayq", dirname(self));
	argv[i++] = (char *)"relayq";
	argv[i++] = (char *)"-c";
	argv[i++] = (char *)cfg_path;
	if (flush)
		argv[i++] = (char *)"-f";
	argv[i] = NULL;
	execv(prog, argv);
	sendmail_die(EX_UNAVAILABLE, "cannot run %s: %s", prog,
	    strerror(errno));
}

/* An address without a domain gets @myhostname (Postfix's myorigin). */
static void
sendmail_qualify(const struct cfg *cfg, const char *addr, char *out,
    size_t size)
{
	if (addr[0] == '\0' || strchr(addr, '@') != NULL)
		snprintf(out, size, "%s", addr);
	else
		snprintf(out, size, "%s@%s", addr, cfg->myhostname);
}

/*
 * The recipients on the command line: each argument an address list, as
 * in a To: header ("a@example.com, B <b@example.com>").
 */
static int
sendmail_args(const struct cfg *cfg, struct sendmail_rcpts *r, int argc,
    char **argv, struct vbuf *why)
{
	struct sendmail_rcpts raw = { NULL, 0 };
	struct sendmail_msg m;
	char addr[SENDMAIL_ADDR_MAX];
	struct vbuf *hdr;
	size_t i;
	int rc = 0;

	/* Parsed as a To: header, by the same code as -t's. */
	hdr = vbuf_create(0);
	for (int a = 0; a < argc; a++)
		(void)vbuf_addf(hdr, "To: %s\r\n", argv[a]);
	memset(&m, 0, sizeof(m));
	m.extract = 1;
	m.data = hdr;
	if (argc > 0 && sendmail_msg_headers(&m, &raw, "nobody",
	    why) == -1)
		rc = -1;
	vbuf_free(m.data);
	for (i = 0; i < raw.n && rc == 0; i++) {
		sendmail_qualify(cfg, raw.v[i], addr, sizeof(addr));
		rc = sendmail_rcpt_add(r, addr, why);
	}
	sendmail_rcpts_free(&raw);
	return rc;
}

int
main(int argc, char *argv[])
{
	enum sendmail_mode mode = SENDMAIL_SEND;
	struct sendmail_rcpts rcpts = { NULL, 0 }, hdr_rcpts = { NULL, 0 };
	struct sendmail_msg m;
	const char *opt_cfg = NULL, *opt_from = NULL, *path;
	char login[SENDMAIL_ADDR_MAX], sender[SENDMAIL_ADDR_MAX],
	    addr[SENDMAIL_ADDR_MAX], gecos[256], *comma;
	struct passwd *pw;
	struct vbuf *why;
	struct cfg *cfg;
	int ch, verbose = 0, too_big, fd, ex, i;
	size_t n;

	if (argc > 0 && argv[0] != NULL) {
		const char *b = strrchr(argv[0], '/');

		sendmail_prog = b != NULL ? b + 1 : argv[0];
	}
	if (strcmp(sendmail_prog, "mailq") == 0)
		mode = SENDMAIL_LIST;
	else if (strcmp(sendmail_prog, "newaliases") == 0)
		mode = SENDMAIL_ALIASES;
	for (i = 1; i < argc; i++)
		if (strcmp(argv[i], "--help") == 0)
			sendmail_usage(stdout, EX_OK);
		else if (strcmp(argv[i], "--") == 0)
			break;

	memset(&m, 0, sizeof(m));
	while ((ch = getopt(argc, argv, SENDMAIL_OPTS)) != -1) {
		switch (ch) {
		case 'b':
			if (strcmp(optarg, "s") == 0)
				mode = SENDMAIL_SMTP;
			else if (strcmp(optarg, "p") == 0)
				mode = SENDMAIL_LIST;
			else if (strcmp(optarg, "i") == 0)
				mode = SENDMAIL_ALIASES;
			else if (strcmp(optarg, "m") == 0)
				mode = SENDMAIL_SEND;
			else
				sendmail_die(EX_USAGE, "-b%s is not supported "
				    "(-bm, -bs, -bp, -bi are)", optarg);
			break;
		case 'C':
			opt_cfg = optarg;
			break;
		case 'F':
			m.fullname = optarg;
			break;
		case 'I':
			mode = SENDMAIL_ALIASES;
			break;
		case 'f':
		case 'r':
			opt_from = optarg;
			break;
		case 'i':
			m.ignore_dots = 1;
			break;
		case 'o':
			/* -oi; -oem, -odb, ... as Postfix: ignored. */
			if (strcmp(optarg, "i") == 0)
				m.ignore_dots = 1;
			break;
		case 'q':
			/* -q, -qINTERVAL, -qRsite: flush the queue now. */
			mode = SENDMAIL_FLUSH;
			break;
		case 't':
			m.extract = 1;
			break;
		case 'v':
			verbose = 1;
			break;
		case '?':
			sendmail_usage(stderr, EX_USAGE);
			/* NOTREACHED */
		default:
			break;	/* accepted for compatibility, ignored */
		}
	}
	argc -= optind;
	argv += optind;

	if (mode == SENDMAIL_ALIASES) {
		printf("%s: Petrel has no aliases database; nothing to do\n",
		    sendmail_prog);
		return EX_OK;
	}
	path = sendmail_cfg_path(opt_cfg);
	if (mode == SENDMAIL_LIST || mode == SENDMAIL_FLUSH)
		sendmail_relayq(path, mode == SENDMAIL_FLUSH);

	why = vbuf_create(0);
	if ((cfg = cfg_load(path, why)) == NULL)
		sendmail_die(EX_CONFIG, "%s", why->data);

	if (mode == SENDMAIL_SMTP) {
		if ((fd = sendmail_connect(cfg, &ex, why)) == -1)
			sendmail_die(ex, "%s", why->data);
		ex = sendmail_relay(fd, cfg, why);
		close(fd);
		if (ex != EX_OK)
			sendmail_die(ex, "%s", why->data);
		vbuf_free(why);
		cfg_free(cfg);
		return EX_OK;
	}

	/* 1. Who is sending: the caller, as the login name. */
	if ((pw = getpwuid(getuid())) == NULL)
		sendmail_die(EX_NOUSER, "uid %u has no user name",
		    (unsigned)getuid());
	sendmail_qualify(cfg, pw->pw_name, login, sizeof(login));
	if (m.fullname == NULL && pw->pw_gecos != NULL &&
	    pw->pw_gecos[0] != '\0') {
		snprintf(gecos, sizeof(gecos), "%s", pw->pw_gecos);
		if ((comma = strchr(gecos, ',')) != NULL)
			*comma = '\0';
		if (gecos[0] != '\0')
			m.fullname = gecos;
	}
	sender[0] = '\0';
	if (opt_from != NULL) {
		/* -f '<>' or -f '' is the null sender; -f <a@b> is a@b. */
		n = strlen(opt_from);
		if (n >= 2 && opt_from[0] == '<' && opt_from[n - 1] == '>')
			snprintf(addr, sizeof(addr), "%.*s", (int)(n - 2),
			    opt_from + 1);
		else
			snprintf(addr, sizeof(addr), "%s", opt_from);
		if (strpbrk(addr, "<> \t\r\n") != NULL)
			sendmail_die(EX_USAGE, "-f %s: not an address",
			    opt_from);
		sendmail_qualify(cfg, addr, sender, sizeof(sender));
	}

	/* 2. Recipients on the command line, the message, -t's. */
	if (sendmail_args(cfg, &rcpts, argc, argv, why) == -1)
		sendmail_die(EX_USAGE, "%s", why->data);
	if (sendmail_msg_read(&m, STDIN_FILENO, cfg->smtpd_message_size_limit,
	    &too_big, why) == -1)
		sendmail_die(too_big ? EX_DATAERR : EX_IOERR, "%s", why->data);
	if (sendmail_msg_headers(&m, &hdr_rcpts, sender[0] != '\0' ? sender :
	    login, why) == -1)
		sendmail_die(EX_DATAERR, "%s", why->data);
	for (n = 0; n < hdr_rcpts.n; n++) {
		sendmail_qualify(cfg, hdr_rcpts.v[n], addr, sizeof(addr));
		if (sendmail_rcpt_add(&rcpts, addr, why) == -1)
			sendmail_die(EX_DATAERR, "%s", why->data);
	}
	sendmail_rcpts_free(&hdr_rcpts);
	if (rcpts.n == 0)
		sendmail_die(EX_USAGE, "no recipients: name them as arguments, "
		    "or use -t with To:, Cc: or Bcc: in the message");
	/*
	 * Without -f, the envelope sender is the From: header's address,
	 * so that the credential's domain checks see the domain the
	 * message claims (PHP's mail() sets only From:); else the caller.
	 */
	if (opt_from == NULL)
		sendmail_qualify(cfg, m.from_hdr[0] != '\0' ? m.from_hdr :
		    login, sender, sizeof(sender));

	/* 3. Hand it to smtpd. */
	if ((fd = sendmail_connect(cfg, &ex, why)) == -1)
		sendmail_die(ex, "%s; message not sent", why->data);
	ex = sendmail_send(fd, cfg, sender, &rcpts, &m, why);
	close(fd);
	if (ex != EX_OK)
		sendmail_die(ex, "%s; message not sent", why->data);
	if (verbose)
		fprintf(stderr, "%s: %s\n", sendmail_prog, why->data);
	sendmail_rcpts_free(&rcpts);
	vbuf_free(m.data);
	vbuf_free(why);
	cfg_free(cfg);
	return EX_OK;
}
