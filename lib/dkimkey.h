/*
 * dkimkey.h - sending domains and their DKIM keys.
 *
 * relayctl registers domains (and generates keys, in
 * relayctl/relayctl_dkimgen.c); smtp looks up the key to sign with; smtpd
 * checks that a sender domain is registered. The
 * registry is an LMDB environment at <queue_directory>/domains/ (database
 * "domains": domain -> attribute record with its selectors), readable by
 * every daemon. Private keys are PEM files under dkim.key_directory,
 * <dir>/<domain>/<selector>.pem, readable only by root and the dkim.group
 * group, which master gives to smtp alone: the client-facing smtpd cannot
 * read them. See relayctl(8).
 */
#ifndef PETREL_DKIMKEY_H
#define PETREL_DKIMKEY_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "cfg.h"
#include "vbuf.h"

#define DKIMKEY_SELECTOR_MAX	63

enum dkimkey_alg {
	DKIMKEY_RSA_SHA256,		/* rsa2048 or rsa3072 keys */
	DKIMKEY_ED25519_SHA256,		/* RFC 8463 */
};

/* The key smtp signs with. */
struct dkimkey_signing {
	char		 domain[256];	/* d=, lower case */
	char		 selector[DKIMKEY_SELECTOR_MAX + 1];	/* s= */
	enum dkimkey_alg alg;
	char		*pem;		/* private key, PEM, NUL-terminated */
	size_t		 pem_len;
};

/*
 * The active key for from_domain or, failing that, its closest parent
 * domain that has one: among the domain's selectors whose activation time
 * is at or before now, the one activated last. Returns 1 (out filled;
 * release with dkimkey_signing_free, which wipes the key), 0 when no
 * registered domain covers from_domain, -1 on error (reason in why; e.g.
 * the key file is unreadable).
 */
int	dkimkey_signing_lookup(const struct cfg *, const char *from_domain,
	    time_t now, struct dkimkey_signing *out, struct vbuf *why);
void	dkimkey_signing_free(struct dkimkey_signing *);

struct dkimkey_db;
/*
 * The same lookup through a registry handle the caller keeps open (smtp
 * opens one at start-up instead of an LMDB environment per message).
 * Each call is its own read transaction, so domains added later are seen.
 */
int	dkimkey_signing_find(struct dkimkey_db *, const struct cfg *,
	    const char *from_domain, time_t now, struct dkimkey_signing *out,
	    struct vbuf *why);
/*
 * The same choice of domain and selector, without reading the key: out's
 * pem is NULL (nothing to free). For smtp, which keeps parsed keys and
 * reads a key file only when it has not parsed it yet (dkimkey_key_stat).
 */
int	dkimkey_signing_select(struct dkimkey_db *, const char *from_domain,
	    time_t now, struct dkimkey_signing *out, struct vbuf *why);

/*
 * The registry (relayctl writes it; smtp, smtpd read it). A record is the
 * attribute list "created", then one group per selector: "selector",
 * "alg" (DKIMKEY_ALG_RSA or DKIMKEY_ALG_ED25519), "bits" (2048, 3072, or 0
 * for ed25519), "active_from" (epoch seconds). Unknown attributes are
 * ignored.
 */
#define DKIMKEY_DIR		"domains"	/* under queue_directory */
#define DKIMKEY_DB_DOMAINS	"domains"
#define DKIMKEY_MAP_SIZE	(16UL * 1024 * 1024)
#define DKIMKEY_SELECTORS_MAX	64	/* per domain */
#define DKIMKEY_PEM_MAX		16384	/* largest key file read */

#define DKIMKEY_ATTR_CREATED	"created"
#define DKIMKEY_ATTR_SELECTOR	"selector"
#define DKIMKEY_ATTR_ALG	"alg"
#define DKIMKEY_ATTR_BITS	"bits"
#define DKIMKEY_ATTR_ACTIVE	"active_from"

#define DKIMKEY_ALG_RSA		"rsa-sha256"
#define DKIMKEY_ALG_ED25519	"ed25519-sha256"

struct dkimkey_selector {
	char		 name[DKIMKEY_SELECTOR_MAX + 1];
	enum dkimkey_alg alg;
	unsigned	 bits;		/* 2048, 3072; 0 for ed25519 */
	int64_t		 active_from;	/* epoch seconds */
};

/* A registered domain, as stored. Release with dkimkey_domain_release. */
struct dkimkey_domain {
	char			 name[256];	/* lower case */
	int64_t			 created;
	struct dkimkey_selector	*sels;		/* in the stored order */
	size_t			 nsels;
};

struct dkimkey_db;

/*
 * Opens the registry of cfg->queue_directory, after fork, in the process
 * that uses it. writable: create domains/ (0700) and the database if
 * missing (relayctl, as mail_owner). Read-only: a missing environment is
 * "no domains" and is looked for again at each call. Returns a handle
 * (dkimkey_close), or NULL with the reason in why.
 */
struct dkimkey_db *dkimkey_open(const struct cfg *, int writable,
		    struct vbuf *why);
void		 dkimkey_close(struct dkimkey_db *);

/*
 * 1 found (out filled; dkimkey_domain_release), 0 not registered, -1 error
 * or corrupt record (why). domain must be normalised (dkimkey_domain_norm).
 */
int	dkimkey_domain_get(struct dkimkey_db *, const char *domain,
	    struct dkimkey_domain *out, struct vbuf *why);
void	dkimkey_domain_release(struct dkimkey_domain *);
/*
 * A registry record (the attribute list above) of domain, to and from
 * bytes: what the registry stores, and what relayctl's mail_owner child
 * sends its root parent. Decoding replaces out (release with
 * dkimkey_domain_release); it returns 0, or -1 if the record is corrupt
 * (why; out released). Encoding appends the record, attr_end included.
 */
int	dkimkey_domain_decode(const char *domain, const void *buf, size_t len,
	    struct dkimkey_domain *out, struct vbuf *why);
void	dkimkey_domain_encode(const struct dkimkey_domain *, struct vbuf *rec);
/*
 * Whether domain (any case) or one of its parents is registered: 1 (the
 * registered name copied to found[0..size) if found != NULL), 0 no, -1
 * error (why). For smtpd's verified-sender check.
 */
int	dkimkey_domain_covered(struct dkimkey_db *, const char *domain,
	    char *found, size_t size, struct vbuf *why);
/*
 * Adds selector sel to domain, registering the domain (created = now) if
 * it is not. Fails (-1, why) if the selector exists, or if must_be_new and
 * the domain exists. Returns 0.
 */
int	dkimkey_selector_add(struct dkimkey_db *, const char *domain,
	    const struct dkimkey_selector *sel, int must_be_new,
	    struct vbuf *why);
/*
 * Removes one selector (the domain stays, even with no selector left), or
 * with selector NULL the whole domain. 1 done, 0 no such domain or
 * selector, -1 error (why).
 */
int	dkimkey_selector_del(struct dkimkey_db *, const char *domain,
	    const char *selector, struct vbuf *why);
/*
 * Calls cb for every registered domain in byte order (d valid during the
 * call only; cb must not use this handle). cb returns nonzero to stop.
 * Returns 0, or -1 (why).
 */
int	dkimkey_domain_walk(struct dkimkey_db *,
	    int (*cb)(const struct dkimkey_domain *d, void *arg), void *arg,
	    struct vbuf *why);
/*
 * Index of the selector in force at now (active_from <= now, the latest;
 * the later in the list on a tie), or -1 if none is active yet.
 */
int	dkimkey_active(const struct dkimkey_domain *, time_t now);

/*
 * Lower-cases in into out[0..size) and checks it is a domain name (no
 * address literal, at least two labels). Returns 0, or -1.
 */
int	dkimkey_domain_norm(const char *in, char *out, size_t size);
/* 1 if s is a selector: dot-separated labels of [a-z0-9-], <= 63 bytes. */
int	dkimkey_selector_ok(const char *s);
/* "rsa-sha256"/"ed25519-sha256" <-> enum; -1 if unknown. */
const char *dkimkey_alg_name(enum dkimkey_alg);
int	dkimkey_alg_parse(const char *, enum dkimkey_alg *);

/*
 * Key files: <cfg->dkim_key_directory>/<domain>/<selector>.pem, written
 * by relayctl (relayctl_dkimgen.c). Sets path to the key directory
 * (domain and selector NULL), the domain's directory (selector NULL) or
 * the key file, after checking that domain is normalised and selector
 * valid, since they become path components. 0 or -1 (why).
 */
int	dkimkey_key_path(const struct cfg *, const char *domain,
	    const char *selector, struct vbuf *path, struct vbuf *why);
/* Reads a key file (at most DKIMKEY_PEM_MAX bytes) into pem. 0 or -1. */
int	dkimkey_key_read(const struct cfg *, const char *domain,
	    const char *selector, struct vbuf *pem, struct vbuf *why);

/*
 * What identifies the contents of a key file without reading it: a
 * replaced file (relayctl writes a new one and renames it into place)
 * differs in inode or times. dkimkey_key_stat fills id for the file of
 * domain and selector: 0, or -1 (why) if it is missing or not a regular
 * file. dkimkey_key_id_eq: 1 if both name the same contents.
 */
struct dkimkey_key_id {
	uint64_t	 dev;
	uint64_t	 ino;
	int64_t		 size;
	int64_t		 mtime_ns;
	int64_t		 ctime_ns;
};

int	dkimkey_key_stat(const struct cfg *, const char *domain,
	    const char *selector, struct dkimkey_key_id *id, struct vbuf *why);
int	dkimkey_key_id_eq(const struct dkimkey_key_id *,
	    const struct dkimkey_key_id *);

/* Test hook: the clock of the registry (created); NULL: time(NULL). */
void	dkimkey_set_clock(time_t (*now)(void));

#endif
