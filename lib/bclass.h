/*
 * bclass.h - bounce classification: why a delivery was deferred or failed.
 *
 * Every deferral and failure gets one class (the vocabulary PowerMTA and
 * KumoMTA users know) from its enhanced status code and reply text: an
 * ordered list of rules read from the YAML files named by bounce.classes
 * (etc/bounce-classes.yaml is shipped; first match wins across the files
 * in order), then the RFC 3463 code itself, then "other". smtp(8) logs the
 * class and reports it to qmgr; relayctl bounce classify shows it. The
 * rule format is described in bclass.c and petrel.yaml(5).
 */
#ifndef PETREL_BCLASS_H
#define PETREL_BCLASS_H

#include <stddef.h>

#include "cfg.h"
#include "vbuf.h"

/* The classes, in this order; 0 is never a class. */
enum bclass {
	BCLASS_BAD_MAILBOX = 1,
	BCLASS_BAD_DOMAIN,
	BCLASS_INACTIVE_MAILBOX,
	BCLASS_QUOTA_ISSUES,
	BCLASS_NO_ANSWER_FROM_HOST,
	BCLASS_ROUTING_ERRORS,
	BCLASS_POLICY_RELATED,
	BCLASS_SPAM_RELATED,
	BCLASS_VIRUS_RELATED,
	BCLASS_CONTENT_RELATED,
	BCLASS_PROTOCOL_ERRORS,
	BCLASS_INVALID_SENDER,
	BCLASS_RELAYING_ISSUES,
	BCLASS_BAD_CONNECTION,
	BCLASS_BAD_CONFIGURATION,
	BCLASS_MESSAGE_EXPIRED,
	BCLASS_OTHER,
};

#define BCLASS_NAME_MAX		24	/* longest name + NUL, with room */
#define BCLASS_MAX_RULES	1000	/* over all files */
#define BCLASS_MAX_FILES	16	/* entries of bounce.classes */
#define BCLASS_MAX_REGEX	512	/* bytes of one match regex */
#define BCLASS_MAX_RULE_NAME	64	/* bytes of one rule name */
#define BCLASS_MAX_TEXT		4096	/* reply bytes looked at */

/* The hard/soft words of the log line and of relayctl. */
#define BCLASS_HARD		"hard"
#define BCLASS_SOFT		"soft"

struct bclass_rules;

/*
 * Loads the rule files of cfg->bounce_classes, in order. Returns the rules
 * (free with bclass_free), or NULL with "FILE:LINE: KEY: reason" in why: a
 * file that is not valid YAML, a rule with an unknown key or class, a bad
 * regular expression, too many rules; or a file the operator named in
 * bounce.classes that cannot be read (then FILE:LINE is the place in
 * petrel.yaml). A missing file that the operator did not name (the
 * schema's default, the shipped file) is skipped: the result is then
 * non-NULL and why holds a warning for the caller to log (classification
 * goes by code only); otherwise why is empty. why may be NULL.
 */
struct bclass_rules *bclass_load(const struct cfg *, struct vbuf *why);
/* Loads one file (tests); the same errors, and it must exist. */
struct bclass_rules *bclass_load_file(const char *path, struct vbuf *why);
/* Loads n files in order (relayctl --rules); every one must exist. */
struct bclass_rules *bclass_load_files(char *const *paths, size_t n,
	    struct vbuf *why);
void	bclass_free(struct bclass_rules *);
/* How many rules were loaded (0 for NULL). */
size_t	bclass_count(const struct bclass_rules *);
/*
 * Rule i (0 <= i < bclass_count) as "NAME (FILE:LINE)", the same string
 * bclass_classify gives in *rule; owned by rules. NULL when out of range.
 */
const char *bclass_rule_desc(const struct bclass_rules *, size_t i);

/*
 * Classifies a deferral or failure. dsn: "5.1.1", or "" or NULL when none
 * is known (then an enhanced code just after the reply's 3-digit code is
 * used). reply: the remote reply text or local reason; it may start with
 * the 3-digit code ("550 5.1.1 ..."); NULL is "". The first rule that
 * matches decides; else the enhanced code (RFC 3463 and its successors);
 * else the 3-digit code (RFC 5321); else BCLASS_OTHER. rules may be NULL:
 * code only. *rule (when rule is not NULL) gets what decided: "NAME
 * (FILE:LINE)" for a rule (owned by rules), "RFC 3463 X.Y.Z" or "RFC 5321
 * NNN" for a code, or "default"; static otherwise.
 */
enum bclass bclass_classify(const struct bclass_rules *, const char *dsn,
	    const char *reply, const char **rule);
/*
 * 1 when the failure is permanent (hard): the enhanced code's class is 5,
 * else (no enhanced code) the reply's code starts with 5; 0 (soft)
 * otherwise. Same arguments as bclass_classify.
 */
int	bclass_hard(const char *dsn, const char *reply);

/*
 * The enhanced code classification goes by ("5.1.1", or "" when none; the
 * same rule as bclass_classify) into buf. Returns the reply's 3-digit
 * code, or 0 when the reply does not start with one.
 */
int	bclass_status(const char *dsn, const char *reply, char *buf,
	    size_t size);

/*
 * The name of the rules that mark greylisting: "greylisting", or it and a
 * hyphen and more ("greylisting-mimecast").
 */
#define BCLASS_GREYLIST_RULE	"greylisting"

/*
 * 1 when the rule that decides the class of this reply (bclass_classify,
 * same arguments) is a greylisting rule, BCLASS_GREYLIST_RULE; 0 when it
 * is another rule or no rule matches (rules NULL: always 0).
 */
int	bclass_greylisting(const struct bclass_rules *, const char *dsn,
	    const char *reply);

/*
 * 1 when the reply is a refusal of the sending address's reputation:
 * the rule that decides it (bclass_classify, same arguments) has the
 * class spam-related or policy-related and a name that contains
 * "blocklist", "block-list" or "reputation" (the shipped rules
 * "blocklist", "microsoft-block-list", "gmail-ip-reputation", ...).
 * smtp(8) sets the source address aside for that next hop. 0 otherwise
 * (rules NULL: always 0).
 */
int	bclass_reputation(const struct bclass_rules *, const char *dsn,
	    const char *reply);

/* "bad-mailbox", ...; "other" for a value out of range. */
const char *bclass_name(enum bclass);
/* The class of a name; 0, or -1 for an unknown name. */
int	bclass_from_name(const char *, enum bclass *);
/*
 * 1 when a hard failure of this class means the mailbox is dead and the
 * address should be suppressed: bad-mailbox, bad-domain, inactive-mailbox.
 * Policy, spam and reputation refusals are about the sender: never.
 */
int	bclass_suppresses(enum bclass);
/* One short sentence for a human ("The recipient's mailbox is full."). */
const char *bclass_describe(enum bclass);

#endif
