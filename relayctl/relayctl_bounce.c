/*
 * relayctl_bounce.c - "relayctl bounce classify": how Petrel classifies a
 * reply text.
 *
 * relayctl [-c FILE] [-j] bounce classify [-j] [--dsn X.Y.Z]
 *     [--rules FILE]... 'REPLY TEXT'
 *
 * Loads the rules of bounce.classes from the configuration (or only the
 * --rules files, to try a file before listing it there) with lib/bclass,
 * exactly as smtp(8) does, and prints the class, hard or soft, and the
 * rule (or code) that decided. The text may start with the reply code and
 * enhanced status ("550 5.1.1 ..."), as smtp logs it. Reads files only:
 * no privileges are needed or changed. See relayctl(8).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bclass.h"
#include "cfg.h"
#include "json.h"
#include "log.h"
#include "relayctl.h"
#include "vbuf.h"

static void	bounce_usage(FILE *);
static int	bounce_classify(int, char *[], const struct relayctl_opts *);
static struct bclass_rules *bounce_rules(const struct relayctl_opts *,
		    char *const *, size_t);

static void
bounce_usage(FILE *fp)
{
	fprintf(fp,
	    "usage: relayctl [-c FILE] [-j] bounce classify [-j] "
	    "[--dsn X.Y.Z] [--rules FILE]... 'REPLY TEXT'\n"
	    "Prints the class of a deferral or failure (bad-mailbox, "
	    "quota-issues, ...),\n"
	    "hard or soft, and the rule or code that decided, using "
	    "bounce.classes of the\n"
	    "configuration (or only the --rules files). The text may start "
	    "with the reply\n"
	    "code and enhanced status: '550 5.1.1 user unknown'.\n");
}

int
relayctl_bounce(int argc, char *argv[], const struct relayctl_opts *opts)
{
	if (argc >= 1 && (strcmp(argv[0], "--help") == 0 ||
	    strcmp(argv[0], "-h") == 0)) {
		bounce_usage(stdout);
		return RELAYCTL_EXIT_OK;
	}
	if (argc >= 1 && strcmp(argv[0], "classify") == 0)
		return bounce_classify(argc - 1, argv + 1, opts);
	if (argc >= 1)
		fprintf(stderr, "relayctl: unknown bounce command %s\n",
		    argv[0]);
	bounce_usage(stderr);
	return RELAYCTL_EXIT_USAGE;
}

/* The rules: the --rules files in order, else bounce.classes. */
static struct bclass_rules *
bounce_rules(const struct relayctl_opts *opts, char *const *files,
    size_t nfiles)
{
	struct bclass_rules *rules = NULL;
	struct vbuf why;
	struct cfg *loaded;

	vbuf_init(&why, 0);
	if (nfiles > 0)
		rules = bclass_load_files(files, nfiles, &why);
	else if ((loaded = cfg_load(opts->config, &why)) != NULL) {
		rules = bclass_load(loaded, &why);
		cfg_free(loaded);
	}
	if (rules == NULL)
		fprintf(stderr, "relayctl: %s\n", why.data);
	else if (why.len > 0)
		fprintf(stderr, "relayctl: warning: %s\n", why.data);
	vbuf_release(&why);
	return rules;
}

static int
bounce_classify(int argc, char *argv[], const struct relayctl_opts *opts)
{
	char status[16], code[8];
	char *files[BCLASS_MAX_FILES];
	const char *dsn = "", *rule = NULL;
	struct bclass_rules *rules;
	struct vbuf text, out;
	struct json j;
	size_t nfiles = 0;
	int json = opts->json, i, c, hard;
	enum bclass cls;

	vbuf_init(&text, BCLASS_MAX_TEXT);
	for (i = 0; i < argc; i++) {
		if (strcmp(argv[i], "--help") == 0 ||
		    strcmp(argv[i], "-h") == 0) {
			bounce_usage(stdout);
			vbuf_release(&text);
			return RELAYCTL_EXIT_OK;
		} else if (strcmp(argv[i], "-j") == 0)
			json = 1;
		else if (strcmp(argv[i], "--dsn") == 0 && i + 1 < argc) {
			dsn = argv[++i];
			if (bclass_status(dsn, "", status, sizeof(status)) !=
			    0 || status[0] == '\0') {
				fprintf(stderr, "relayctl: --dsn %s: not an "
				    "enhanced status code (X.Y.Z)\n",
				    log_safe(dsn));
				goto usage;
			}
		} else if (strcmp(argv[i], "--rules") == 0 && i + 1 < argc) {
			if (nfiles == BCLASS_MAX_FILES) {
				fprintf(stderr, "relayctl: more than %d "
				    "--rules files\n", BCLASS_MAX_FILES);
				goto usage;
			}
			files[nfiles++] = argv[++i];
		} else if (strcmp(argv[i], "--") == 0) {
			i++;
			break;
		} else if (argv[i][0] == '-' && argv[i][1] != '\0') {
			fprintf(stderr, "relayctl: bounce classify: unknown "
			    "option %s\n", log_safe(argv[i]));
			goto usage;
		} else
			break;
	}
	/* The words left are the text (quoted or not). */
	for (; i < argc; i++) {
		if (text.len > 0 && vbuf_addc(&text, ' ') == -1)
			break;
		if (vbuf_adds(&text, argv[i]) == -1)
			break;
	}
	if (i < argc) {
		fprintf(stderr, "relayctl: the text is longer than %d bytes\n",
		    BCLASS_MAX_TEXT);
		goto usage;
	}
	if (text.len == 0) {
		fprintf(stderr, "relayctl: bounce classify: no text\n");
		goto usage;
	}
	if ((rules = bounce_rules(opts, files, nfiles)) == NULL) {
		vbuf_release(&text);
		return RELAYCTL_EXIT_FAIL;
	}

	cls = bclass_classify(rules, dsn, text.data, &rule);
	hard = bclass_hard(dsn, text.data);
	c = bclass_status(dsn, text.data, status, sizeof(status));
	(void)snprintf(code, sizeof(code), "%d", c);
	vbuf_init(&out, 0);
	if (json) {
		json_init(&j, &out);
		json_object_begin(&j);
		json_kv_str(&j, "class", bclass_name(cls));
		json_kv_str(&j, "bounce", hard ? BCLASS_HARD : BCLASS_SOFT);
		json_kv_str(&j, "rule", rule);
		json_kv_str(&j, "dsn", status[0] != '\0' ? status : NULL);
		json_key(&j, "code");
		if (c != 0)
			json_int(&j, c);
		else
			json_null(&j);
		json_key(&j, "suppresses");
		json_bool(&j, hard && bclass_suppresses(cls));
		json_kv_str(&j, "description", bclass_describe(cls));
		json_object_end(&j);
		(void)vbuf_addc(&out, '\n');
	} else
		(void)vbuf_addf(&out, "class: %s\nbounce: %s\nrule: %s\n"
		    "dsn: %s\ncode: %s\nsuppresses: %s\ndescription: %s\n",
		    bclass_name(cls), hard ? BCLASS_HARD : BCLASS_SOFT,
		    rule, status[0] != '\0' ? status : "none",
		    c != 0 ? code : "none",
		    hard && bclass_suppresses(cls) ? "yes" : "no",
		    bclass_describe(cls));
	fputs(out.data, stdout);
	vbuf_release(&out);
	vbuf_release(&text);
	bclass_free(rules);
	return fflush(stdout) == 0 ? RELAYCTL_EXIT_OK : RELAYCTL_EXIT_FAIL;
usage:
	vbuf_release(&text);
	bounce_usage(stderr);
	return RELAYCTL_EXIT_USAGE;
}
