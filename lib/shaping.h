/*
 * shaping.h - the delivery shaping file (shaping.file, etc/shaping.yaml)
 * and the token bucket that paces a destination's messages and
 * connections.
 *
 * master loads the file to check it at start and on reload, qmgr to
 * apply it, relayctl to show it. See shaping.yaml(5).
 */
#ifndef PETREL_SHAPING_H
#define PETREL_SHAPING_H

#include <sys/types.h>

#include <regex.h>
#include <stddef.h>
#include <stdint.h>

#include "vbuf.h"

#define SHAPING_NAME_MAX	263	/* a next-hop key (NEXTHOP_KEY_MAX) */
#define SHAPING_ENTRIES_MAX	10000
#define SHAPING_CONN_MAX	1000	/* max_connections */
#define SHAPING_MSGS_MAX	100000	/* max_messages_per_connection */
#define SHAPING_RATE_MAX	1000000	/* a rate's count */
#define SHAPING_RETRY_MAX	(7 * 86400)	/* retry_interval, s */
#define SHAPING_TLS_UNSET	(-1)	/* tls: petrel.yaml's smtp.tls */
#define SHAPING_RULES_MAX	64	/* on_reply rules of one entry */
#define SHAPING_PATTERN_MAX	1024	/* an on_reply pattern, bytes */
#define SHAPING_AFTER_MAX	1000	/* on_reply after */
#define SHAPING_AFTER_WINDOW	3600	/* s in which after's matches count */
#define SHAPING_PROVIDERS_MAX	1000
#define SHAPING_SUFFIXES_MAX	32	/* mx_suffixes of one provider */
#define SHAPING_PROVIDER_NAME_MAX 63

/* An on_reply rule's action. */
enum shaping_action {
	SHAPING_BACKOFF = 1,	/* lower limits for a while */
	SHAPING_SUSPEND,	/* defer the destination's mail for a while */
};

/*
 * The limits of one entry, or of a destination after shaping_lookup().
 *
 * In an entry, a field that is not set (0; SHAPING_TLS_UNSET for tls;
 * has_rate/has_conn_rate 0 for the rates) takes the default entry's
 * value. In the default, and so in a lookup's result, an unset field
 * means no limit of that kind:
 *
 * max_connections		0: no limit but smtp.processes.
 * max_messages_per_connection	0: no limit (smtp's own session reuse).
 * rate_count/rate_interval	messages per rate_interval seconds;
 *				rate_interval 0: no message rate limit.
 * conn_rate_count/		new connections per conn_rate_interval
 *   conn_rate_interval		seconds; conn_rate_interval 0: no limit.
 * retry_interval		seconds: the first retry of a deferred
 *				recipient comes after this instead of
 *				queue.min_backoff (later ones double up to
 *				queue.max_backoff, or up to this if larger);
 *				0: queue.min_backoff.
 * tls				an enum cfg_smtp_tls (lib/cfg.h) value, or
 *				SHAPING_TLS_UNSET: petrel.yaml's smtp.tls.
 * transactional_reserve	the connections bulk may not take (qmgr's
 *				lanes): 0 unset, else SHAPING_RESERVE_SET
 *				with a count, or with SHAPING_RESERVE_PCT
 *				and a percentage of max_connections; read
 *				it with shaping_reserve().
 */
struct shaping_limits {
	unsigned	 max_connections;
	unsigned	 max_messages_per_connection;
	unsigned	 rate_count;
	unsigned	 rate_interval;
	unsigned	 conn_rate_count;
	unsigned	 conn_rate_interval;
	int64_t		 retry_interval;
	int		 tls;
	unsigned	 transactional_reserve;
};

#define SHAPING_RESERVE_SET	0x10000u	/* set (0: unset) */
#define SHAPING_RESERVE_PCT	0x20000u	/* the value is a percentage */
#define SHAPING_RESERVE_VALUE	0x0ffffu
#define SHAPING_RESERVE_DEFAULT	20	/* % of max_connections, unset */

/*
 * The connections of max (a destination's max_connections, or
 * smtp.processes for the default entry) that lim reserves for the
 * transactional lane: its transactional_reserve (a percentage rounded
 * up), or SHAPING_RESERVE_DEFAULT percent, at least 1, when unset; never
 * more than max - 1, so bulk always has a connection, and 0 when max is
 * 0 or 1.
 */
unsigned shaping_reserve(const struct shaping_limits *, unsigned max);
/*
 * lim's transactional_reserve as shaping.yaml(5) writes it, "N" or "N%"
 * ("20%", SHAPING_RESERVE_DEFAULT, when unset), into buf.
 */
void	shaping_reserve_text(const struct shaping_limits *, char *buf,
	    size_t size);

/*
 * One on_reply rule: a remote reply of a deferral that matches re, after
 * matches within SHAPING_AFTER_WINDOW, sets off action for duration s.
 * A backoff replaces the destination's max_connections (when not 0) and
 * its message rate (when has_rate) while it lasts.
 */
struct shaping_rule {
	char		*pattern;	/* as written, for messages */
	regex_t		 re;		/* REG_EXTENDED|REG_ICASE|REG_NOSUB */
	int		 action;	/* enum shaping_action */
	int64_t		 duration;	/* "for", s */
	unsigned	 after;		/* 1 to SHAPING_AFTER_MAX */
	unsigned	 max_connections;	/* 0: unchanged */
	unsigned	 rate_count;	/* with has_rate; 0: no limit */
	unsigned	 rate_interval;
	int		 has_rate;
};

struct shaping_entry {
	char			 name[SHAPING_NAME_MAX + 1];
	struct shaping_limits	 lim;
	int			 has_rate;	/* set here, not inherited */
	int			 has_conn_rate;	/* likewise */
	struct shaping_rule	*rules;		/* on_reply, in order */
	size_t			 nrules;
};

/*
 * A provider: the destinations whose MX hosts all end in its suffixes
 * (KumoMTA's MX roll-up). Its entry's limits apply to each of them as a
 * destination entry's would (under a destination entry of their own), and
 * max_connections caps the jobs at smtp of all of them together
 * (provider_max_connections; 0: no cap), as rate_count per rate_interval
 * s caps the messages to all of them together
 * (provider_max_message_rate; 0: no cap); both per source address.
 */
struct shaping_provider {
	struct shaping_entry	 e;		/* e.name: the provider's */
	char			**suffixes;	/* ".google.com", lower case */
	size_t			 nsuffixes;
	unsigned		 max_connections;
	unsigned		 rate_count;
	unsigned		 rate_interval;
};

struct shaping {
	struct shaping_limits	 def;		/* "default" */
	struct shaping_rule	*rules;		/* the default's on_reply */
	size_t			 nrules;
	struct shaping_entry	*entries;
	size_t			 nentries;
	struct shaping_provider	*providers;	/* in the file's order */
	size_t			 nproviders;
};

/*
 * Loads path. Returns the shaping (free it with shaping_free), or NULL
 * with "FILE:LINE: KEY: reason" in why (which may be NULL). An empty
 * path (or NULL, or an empty file) gives no limits at all: every
 * destination may use every smtp process, as without shaping. A missing
 * file is an error.
 */
struct shaping *shaping_load(const char *path, struct vbuf *why);
void	shaping_free(struct shaping *);
/*
 * The limits for a next-hop key ("host:port", "[host]:port", as
 * lib/nexthop writes them; case does not matter): the entry named as the
 * key, else as its host, else as a parent domain of the host (not for an
 * address literal), each field of the entry over the default's; *entry
 * is the entry's name or "default" (pointing into sh).
 */
void	shaping_lookup(const struct shaping *, const char *key,
	    struct shaping_limits *, const char **entry);
/*
 * As shaping_lookup, for a destination of provider p (NULL: none): the
 * provider's limits over the default's, and a destination entry's over
 * both. *entry is the destination entry's name, else the provider's, else
 * "default".
 */
void	shaping_lookup_provider(const struct shaping *, const char *key,
	    const struct shaping_provider *p, struct shaping_limits *,
	    const char **entry);
/*
 * The first provider (in the file's order) that every one of the n host
 * names ends in a suffix of, or NULL (also for n 0). Case and a final dot
 * do not matter; a suffix matches at a label boundary only.
 */
const struct shaping_provider *shaping_provider_match(
	    const struct shaping *, const char *const *hosts, size_t n);
/* The provider named name, or NULL. */
const struct shaping_provider *shaping_provider_find(
	    const struct shaping *, const char *name);
/*
 * The entry named name (as shaping_lookup's *entry gives it: a
 * destination's, else a provider's), or NULL for "default" and names not
 * in sh. Its on_reply rules are tried before the default's.
 */
const struct shaping_entry *shaping_find(const struct shaping *,
	    const char *name);
/* Whether reply matches the rule's pattern. */
int	shaping_rule_match(const struct shaping_rule *, const char *reply);
/* "backoff" or "suspend". */
const char *shaping_action_name(int);
/*
 * Parses "N/s", "N/sec", "N/second", "N/m", "N/min", "N/minute", "N/h",
 * "N/hour", "N/d", "N/day" (N from 1 to SHAPING_RATE_MAX) into count and
 * interval (seconds). Returns 0, or -1 leaving both alone.
 */
int	shaping_parse_rate(const char *, unsigned *count, unsigned *interval);
/*
 * A rate as shaping_parse_rate reads it back: "30/min", "4/s", "1000/h",
 * "5/d" ("N per Ss" for another interval), or "unlimited" when count or
 * interval is 0; into buf, truncated as snprintf.
 */
void	shaping_rate_text(unsigned count, unsigned interval, char *buf,
	    size_t size);
/* "may", "encrypt" or "verify" for a tls value; "unset" for the rest. */
const char *shaping_tls_name(int);

/*
 * A token bucket of capacity one: messages (or connections) are spaced
 * evenly, interval/count apart, with no burst (a burst is what providers
 * count against a sender). So at most one is taken per ms of the clock.
 * Its capacity is one token and SHAPING_BUCKET_SLACK_MS of filling (at
 * most one more token): a token taken up to that late still leaves the
 * rest for the next, so a loop that wakes late (a busy machine, a commit
 * before the dispatch) keeps the configured rate instead of losing its
 * lateness at every message (8% to 17% under 60/second in
 * bench/shaping_bench.py), and after an idle time the second message
 * comes at most that much early (at once above 20/second).
 * Times in ms, any monotonic origin; a time earlier than one seen before
 * counts as that one.
 */
#define SHAPING_BUCKET_SLACK_MS	50
struct shaping_bucket {
	double		 tokens;
	double		 per_ms;		/* 0: unlimited */
	double		 cap;			/* 1 and the slack */
	int64_t		 last;
};
/* count per interval s; either 0: unlimited. Starts with a token. */
void	shaping_bucket_init(struct shaping_bucket *, unsigned count,
	    unsigned interval, int64_t now);
/* Takes a token if there is one: 1, else 0. */
int	shaping_bucket_take(struct shaping_bucket *, int64_t now);
/* Gives back a token taken but not used. */
void	shaping_bucket_refund(struct shaping_bucket *);
/* ms until a token is there (0: now). */
int64_t	shaping_bucket_wait(const struct shaping_bucket *, int64_t now);

#endif
