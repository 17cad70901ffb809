/*
 * cred_hash.h - the KDF string of a stored SMTP AUTH secret.
 *
 * lib/cred stores, and smtpd (through lib/cred) checks, secrets as
 * "$scrypt$ln=15,r=8,p=1$<salt>$<key>": salt and key in standard base64
 * without padding (lib/b64), the cost in the string, so it can be raised
 * later while old hashes keep working. Parsing refuses parameters out of
 * bounds, so a corrupt record cannot make a check allocate gigabytes or
 * spin for minutes. Comparison is constant-time; derived keys are wiped
 * with OPENSSL_cleanse() once used. Pure functions: no state, any thread.
 */
#ifndef PETREL_CRED_HASH_H
#define PETREL_CRED_HASH_H

#include <stddef.h>

#include "vbuf.h"

#define CRED_HASH_MAX		256	/* longest hash string accepted */

/* Parameters of new hashes: N = 2^15, r = 8, p = 1, 16-byte salt. */
#define CRED_HASH_SCRYPT_LN	15
#define CRED_HASH_SCRYPT_R	8
#define CRED_HASH_SCRYPT_P	1
#define CRED_HASH_SALT_LEN	16
#define CRED_HASH_KEY_LEN	32
/* The most memory a stored hash may ask scrypt for; more is corrupt. */
#define CRED_HASH_SCRYPT_MAXMEM	(128UL * 1024 * 1024)

/*
 * Hashes secret[0..len) with a fresh random salt and the current
 * parameters; replaces the contents of out with the hash string. Returns 0,
 * or -1 with the reason in why (out empty).
 */
int	cred_hash_new(const char *secret, size_t len, struct vbuf *out,
	    struct vbuf *why);
/*
 * Checks secret[0..len) against a stored hash string. Returns 1 on a
 * match, 0 on a mismatch, -1 if stored is malformed or asks for parameters
 * out of bounds (no KDF is run then) or the KDF fails.
 */
int	cred_hash_verify(const char *stored, const char *secret, size_t len);
/*
 * The work of cred_hash_verify against a hash of the current parameters
 * that no secret matches: what a check of an unknown user costs, so that
 * it takes as long as that of a known one.
 */
void	cred_hash_dummy(const char *secret, size_t len);

#endif
