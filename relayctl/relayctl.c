/*
 * relayctl.c - Petrel's credential and domain manager: main and privilege
 * handling.
 *
 * relayctl [-c FILE] [-j] status [-j]
 * relayctl [-c FILE] [-j] user add|set|show|list|rotate|disable|enable|del ...
 * relayctl [-c FILE] [-j] domain add|list|show|del|rotate|check ...
 * relayctl [-c FILE] [-j] suppression list|show|add|del|import|export ...
 * relayctl [-c FILE] [-j] bounce classify 'REPLY TEXT'
 * relayctl [-c FILE] [-j] log search|show|export ...
 * relayctl [-c FILE] [-j] events list|show|replay ...
 * relayctl [-c FILE] [-j] shaping show [DEST]
 * relayctl [-c FILE] [-j] sources show
 * relayctl webhook keygen FILE
 *
 * Arguments are checked before anything else; then the configuration is
 * loaded and, when run as root, groups, gid and uid are switched to
 * mail_owner (each step checked) before LMDB is opened, so every file
 * under <queue_directory>/cred/ stays owned by mail_owner. A non-root user
 * runs as itself. "domain" commands keep root to write the DKIM key files
 * and do their registry steps as mail_owner in a child
 * (relayctl_domain.c); "domain check" (relayctl_check.c) reads the
 * registry the same way, then DNS. "suppression" commands
 * (relayctl_suppress.c) open an import file, then switch to mail_owner
 * themselves. "bounce classify" (relayctl_bounce.c) only reads the
 * configuration and rule files. "webhook keygen" (relayctl_webhook.c)
 * writes a key file as the caller. "status" (relayctl_status.c) reads
 * the certificates, becomes mail_owner and reads everything else. "log"
 * commands (relayctl_log.c) switch to mail_owner, then read the delivery
 * log; "events" commands (relayctl_events.c) the same with webhookd's
 * store. "shaping show" (relayctl_shaping.c) and "sources show"
 * (relayctl_sources.c) become mail_owner and ask qmgr on its private
 * socket (relayctl_qmgr.c). See relayctl(8).
 */
#include <sys/types.h>

#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cfg.h"
#include "log.h"
#include "privsep.h"
#include "relayctl.h"
#include "vbuf.h"

static void	relayctl_usage(FILE *, int) __attribute__((noreturn));
static int	relayctl_wants_help(int, char *[]);

/*
 * --help or -h among a subcommand's words: its usage on stdout, exit 0
 * (STYLE.md), whatever else the line holds.
 */
static int
relayctl_wants_help(int argc, char *argv[])
{
	for (int i = 0; i < argc; i++)
		if (strcmp(argv[i], "--help") == 0 ||
		    strcmp(argv[i], "-h") == 0)
			return 1;
	return 0;
}

static void
relayctl_usage(FILE *fp, int code)
{
	fprintf(fp,
	    "usage: relayctl [-c FILE] [-j] status [-j]\n"
	    "       relayctl [-c FILE] [-j] user add NAME [--password-stdin] "
	    "[POLICY]\n"
	    "       relayctl [-c FILE] user set NAME [POLICY] [WEBHOOK]\n"
	    "       relayctl [-c FILE] [-j] user show NAME [-j]\n"
	    "       relayctl [-c FILE] [-j] user list [-j]\n"
	    "       relayctl [-c FILE] user rotate NAME [--grace DURATION] "
	    "[--password-stdin]\n"
	    "       relayctl [-c FILE] user disable|enable|del NAME\n"
	    "POLICY: [--domains D1,D2,...] [--networks CIDR1,CIDR2,...]\n"
	    "        [--max-per-hour N] [--max-per-day N] "
	    "[--max-recipients N]\n"
	    "        [--max-size BYTES[k|m|g]]   (0 or '' removes a "
	    "restriction)\n"
	    "        [--dsn on|off]   (delivery reports; default on)\n"
	    "        [--lane transactional|bulk]   (default transactional)\n"
	    "WEBHOOK: --webhook URL|'' [--webhook-events E1,E2,...]\n"
	    "        [--webhook-format petrel|mailgun|sendgrid|postmark]\n"
	    "        [--webhook-secret-file FILE]\n"
	    "       relayctl [-c FILE] domain add DOMAIN [--selector S] "
	    "[--key rsa2048|rsa3072|ed25519]\n"
	    "       relayctl [-c FILE] [-j] domain list [-j]\n"
	    "       relayctl [-c FILE] [-j] domain show DOMAIN [-j]\n"
	    "       relayctl [-c FILE] [-j] domain check DOMAIN [-j]\n"
	    "       relayctl [-c FILE] domain del DOMAIN [--selector S]\n"
	    "       relayctl [-c FILE] domain rotate DOMAIN [--selector S] "
	    "[--key TYPE] [--at TIME]\n"
	    "TIME: epoch seconds or YYYY-MM-DDTHH:MM:SSZ\n"
	    "       relayctl [-c FILE] [-j] suppression list|export [-j]\n"
	    "       relayctl [-c FILE] [-j] suppression show ADDR [-j]\n"
	    "       relayctl [-c FILE] suppression add ADDR [--domain D] "
	    "[--reason R] [--expires T]\n"
	    "       relayctl [-c FILE] suppression del ADDR [--domain D]\n"
	    "       relayctl [-c FILE] suppression import FILE|- "
	    "[--domain D] [--reason R] [--expires T]\n"
	    "       relayctl suppression [SUBCOMMAND] --help\n"
	    "       relayctl [-c FILE] [-j] bounce classify [--dsn X.Y.Z] "
	    "[--rules FILE]... 'REPLY TEXT'\n"
	    "       relayctl [-c FILE] [-j] log search [--to ADDR] "
	    "[--from ADDR] [--message-id ID]\n"
	    "           [--queue-id ID] [--user NAME] [--since T] "
	    "[--until T] [--event E] [--limit N] [-j]\n"
	    "       relayctl [-c FILE] [-j] log show QUEUEID|MESSAGE-ID [-j]\n"
	    "       relayctl [-c FILE] log export --user NAME --since T "
	    "--until T [--format jsonl|csv]\n"
	    "       relayctl log --help\n"
	    "       relayctl [-c FILE] [-j] events list [--failed] "
	    "[--endpoint URL|user:NAME] [--limit N]\n"
	    "       relayctl [-c FILE] [-j] events show ID\n"
	    "       relayctl [-c FILE] [-j] events replay ID|--failed "
	    "[--endpoint URL|user:NAME]\n"
	    "       relayctl [-c FILE] [-j] shaping show [DEST] [-j]\n"
	    "       relayctl [-c FILE] [-j] sources show [-j]\n"
	    "       relayctl webhook keygen FILE\n"
	    "       relayctl --help | COMMAND [SUBCOMMAND] --help\n");
	exit(code);
}

int
main(int argc, char *argv[])
{
	struct relayctl_opts opts = { CFG_DEFAULT_PATH, 0 };
	struct relayctl_user_args ua;
	struct relayctl_domain_args da;
	struct vbuf why;
	struct cfg *cfg;
	int ch, ret;

	log_init("relayctl", LOG_DEST_STDERR);
	/* --help among the global options, which getopt cannot name. */
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--help") == 0 ||
		    strcmp(argv[i], "help") == 0)
			relayctl_usage(stdout, RELAYCTL_EXIT_OK);
		if (strcmp(argv[i], "-c") == 0)
			i++;
		else if (argv[i][0] != '-')
			break;
	}
	/* "+": stop at the subcommand, whose words are parsed below. */
	opterr = 0;
	while ((ch = getopt(argc, argv, "+:c:hj")) != -1) {
		switch (ch) {
		case 'h':
			relayctl_usage(stdout, RELAYCTL_EXIT_OK);
			/* NOTREACHED */
		case 'c':
			opts.config = optarg;
			break;
		case 'j':
			opts.json = 1;
			break;
		case ':':
			fprintf(stderr, "relayctl: option -%c needs an "
			    "argument\n", optopt);
			relayctl_usage(stderr, RELAYCTL_EXIT_USAGE);
			/* NOTREACHED */
		default:
			fprintf(stderr, "relayctl: unknown option -%c\n",
			    optopt);
			relayctl_usage(stderr, RELAYCTL_EXIT_USAGE);
		}
	}
	argc -= optind;
	argv += optind;

	if (argc >= 1 && strcmp(argv[0], "status") == 0)
		return relayctl_status_main(argc - 1, argv + 1, &opts);
	if (argc >= 1 && strcmp(argv[0], "suppression") == 0)
		return relayctl_suppress_main(argc - 1, argv + 1, &opts);
	if (argc >= 1 && strcmp(argv[0], "log") == 0)
		return relayctl_log_main(argc - 1, argv + 1, &opts);
	if (argc >= 1 && strcmp(argv[0], "events") == 0)
		return relayctl_events_main(argc - 1, argv + 1, &opts);
	if (argc >= 1 && strcmp(argv[0], "shaping") == 0)
		return relayctl_shaping_main(argc - 1, argv + 1, &opts);
	if (argc >= 1 && strcmp(argv[0], "sources") == 0)
		return relayctl_sources_main(argc - 1, argv + 1, &opts);
	/* Reads files only: no privileges to change, no LMDB. */
	if (argc >= 1 && strcmp(argv[0], "bounce") == 0)
		return relayctl_bounce(argc - 1, argv + 1, &opts);
	/* Writes one key file as the caller: no configuration, no LMDB. */
	if (argc >= 1 && strcmp(argv[0], "webhook") == 0)
		return relayctl_webhook_main(argc - 1, argv + 1, &opts);

	/* user and domain share this page. */
	if (argc >= 1 && (strcmp(argv[0], "user") == 0 ||
	    strcmp(argv[0], "domain") == 0) &&
	    relayctl_wants_help(argc - 1, argv + 1))
		relayctl_usage(stdout, RELAYCTL_EXIT_OK);

	/* 1. Check the whole command line before touching anything. */
	vbuf_init(&why, 0);
	if (argc >= 1 && strcmp(argv[0], "domain") == 0) {
		if (relayctl_domain_parse(argc - 1, argv + 1, &da,
		    &why) == -1) {
			fprintf(stderr, "relayctl: %s\n", why.data);
			vbuf_release(&why);
			relayctl_usage(stderr, RELAYCTL_EXIT_USAGE);
		}
		if ((cfg = cfg_load(opts.config, &why)) == NULL) {
			fprintf(stderr, "relayctl: %s\n", why.data);
			vbuf_release(&why);
			return RELAYCTL_EXIT_FAIL;
		}
		vbuf_release(&why);
		if (opts.json)
			da.json = 1;
		/* Privileges are handled per step there. */
		if (da.cmd == RELAYCTL_DOMAIN_CHECK)
			ret = relayctl_domain_check(cfg, &da);
		else
			ret = relayctl_domain_run(cfg, &da);
		relayctl_domain_args_release(&da);
		cfg_free(cfg);
		return ret;
	}
	if (argc < 1 || strcmp(argv[0], "user") != 0) {
		if (argc >= 1)
			fprintf(stderr, "relayctl: unknown command %s\n",
			    argv[0]);
		relayctl_usage(stderr, RELAYCTL_EXIT_USAGE);
	}
	if (relayctl_user_parse(argc - 1, argv + 1, &ua, &why) == -1) {
		fprintf(stderr, "relayctl: %s\n", why.data);
		relayctl_user_args_release(&ua);
		vbuf_release(&why);
		relayctl_usage(stderr, RELAYCTL_EXIT_USAGE);
	}

	/* 2. Configuration. */
	if ((cfg = cfg_load(opts.config, &why)) == NULL) {
		fprintf(stderr, "relayctl: %s\n", why.data);
		vbuf_release(&why);
		relayctl_user_args_release(&ua);
		return RELAYCTL_EXIT_FAIL;
	}

	/* 3. Become mail_owner before LMDB creates or opens any file. */
	if (privsep_become_owner(cfg, &why) == -1) {
		fprintf(stderr, "relayctl: %s\n", why.data);
		vbuf_release(&why);
		cfg_free(cfg);
		relayctl_user_args_release(&ua);
		return RELAYCTL_EXIT_FAIL;
	}
	vbuf_release(&why);

	/* 4. The work. */
	ret = relayctl_user_run(cfg, &opts, &ua);
	relayctl_user_args_release(&ua);
	cfg_free(cfg);
	return ret;
}
