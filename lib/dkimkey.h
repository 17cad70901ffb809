/*
 * dkimkey.h - sending domains and their DKIM keys.
 *
 * relayctl registers domains and generates keys; smtp looks up the key to
 * sign with; smtpd (later) checks that a sender domain is registered. The
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

#endif
