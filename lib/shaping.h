/*
 * shaping.h - the delivery shaping file (shaping.file, etc/shaping.yaml)
 * and the token bucket that paces a destination's message rate.
 *
 * master loads the file to check it at start and on reload, qmgr to
 * apply it, relayctl to show it. See shaping.yaml(5).
 */
#ifndef PETREL_SHAPING_H
#define PETREL_SHAPING_H

#include <stddef.h>
#include <stdint.h>

#include "vbuf.h"

#define SHAPING_NAME_MAX	263	/* a next-hop key (NEXTHOP_KEY_MAX) */
#define SHAPING_ENTRIES_MAX	10000
#define SHAPING_CONN_MAX	1000	/* max_connections */
#define SHAPING_RATE_MAX	1000000	/* max_message_rate's count */

/*
 * The limits of one entry. In an entry, 0 connections means the
 * default's; in the default (and so in a lookup's result), no limit
 * but smtp.processes.
 */
struct shaping_limits {
	unsigned	 max_connections;
	unsigned	 rate_count;		/* messages ... */
	unsigned	 rate_interval;		/* ... per this many s; */
						/* 0: no rate limit */
};

struct shaping_entry {
	char			 name[SHAPING_NAME_MAX + 1];
	struct shaping_limits	 lim;
	int			 has_rate;	/* set here, not inherited */
};

struct shaping {
	struct shaping_limits	 def;		/* "default" */
	struct shaping_entry	*entries;
	size_t			 nentries;
};

/*
 * Loads path. Returns the shaping, or NULL with "FILE:LINE: KEY: reason"
 * in why. An empty path (or file) gives no limits at all: every
 * destination may use every smtp process, as without shaping.
 */
struct shaping *shaping_load(const char *path, struct vbuf *why);
void	shaping_free(struct shaping *);
/*
 * The limits for a next-hop key ("host:port", "[host]:port"): the entry
 * named as the key, else as its host, else as a parent domain of it,
 * over the default; *entry is the entry's name or "default".
 */
void	shaping_lookup(const struct shaping *, const char *key,
	    struct shaping_limits *, const char **entry);
/* Parses "N/s", "N/second", "N/min", "N/minute", "N/h", "N/hour". */
int	shaping_parse_rate(const char *, unsigned *count, unsigned *interval);

/*
 * A token bucket of capacity one: messages are spaced evenly,
 * interval/count apart, with no burst (a burst is what providers
 * count against a sender). Times in ms, any monotonic origin.
 */
struct shaping_bucket {
	double		 tokens;
	double		 per_ms;		/* 0: unlimited */
	int64_t		 last;
};
void	shaping_bucket_init(struct shaping_bucket *, unsigned count,
	    unsigned interval, int64_t now);
/* Takes a token if there is one: 1, else 0. */
int	shaping_bucket_take(struct shaping_bucket *, int64_t now);
/* Gives back a token taken but not used. */
void	shaping_bucket_refund(struct shaping_bucket *);
/* ms until a token is there (0: now). */
int64_t	shaping_bucket_wait(const struct shaping_bucket *, int64_t now);

#endif
