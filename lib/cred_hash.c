/*
 * cred_hash.c - scrypt hash strings of SMTP AUTH secrets (see cred_hash.h).
 *
 * The format is parsed field by field ("ln=", "r=", "p=", salt, key) and
 * every number and length is checked before EVP_PBE_scrypt() sees it: the
 * memory bound is computed the way OpenSSL allocates, so a record asking
 * for more is refused as corrupt instead of attempted.
 */
#include <stdint.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include "b64.h"
#include "cred_hash.h"
#include "parse.h"

#define CRED_HASH_LN_MIN	10
#define CRED_HASH_LN_MAX	20
#define CRED_HASH_R_MAX		32
#define CRED_HASH_P_MAX		16
#define CRED_HASH_SALT_MIN	8
#define CRED_HASH_SALT_MAX	64
#define CRED_HASH_KEY_MIN	16
#define CRED_HASH_KEY_MAX	64

struct cred_hash_params {
	unsigned	 ln, r, p;
	unsigned char	 salt[CRED_HASH_SALT_MAX];
	size_t		 salt_len;
	unsigned char	 key[CRED_HASH_KEY_MAX];
	size_t		 key_len;
};

/*
 * Checked by cred_hash_dummy when the user is unknown, so that the reply
 * takes as long as for a known user. Random salt and key: no secret
 * hashes to it.
 */
static const char cred_hash_dummy_str[] =
    "$scrypt$ln=15,r=8,p=1$5VoVoRqVLWq0Ujg3cvCqtA$"
    "0ayqcYuoqfeMfEbFpMs3w8LUXxAiB7B4nnDj1nQljkU";

static int	cred_hash_parse_num(const char **, const char *, int, uint64_t,
		    uint64_t, unsigned *);
static int	cred_hash_parse(const char *, struct cred_hash_params *);

/*
 * Parses "<key><digits><term>" at *sp into *out, within [min, max], and
 * advances *sp past term. Returns 0 or -1.
 */
static int
cred_hash_parse_num(const char **sp, const char *key, int term, uint64_t min,
    uint64_t max, unsigned *out)
{
	const char *s = *sp, *end;
	size_t klen = strlen(key);
	char num[8];
	uint64_t v;

	if (strncmp(s, key, klen) != 0)
		return -1;
	s += klen;
	if ((end = strchr(s, term)) == NULL || end == s ||
	    (size_t)(end - s) >= sizeof(num))
		return -1;
	memcpy(num, s, (size_t)(end - s));
	num[end - s] = '\0';
	if (num[0] < '0' || num[0] > '9' ||
	    parse_u64(num, min, max, &v) == -1)
		return -1;
	*out = (unsigned)v;
	*sp = end + 1;
	return 0;
}

/*
 * Parses "$scrypt$ln=L,r=R,p=P$<salt>$<key>" and checks the parameters
 * against the bounds, so a corrupt record cannot make us allocate
 * gigabytes or spin for minutes. Returns 0 or -1.
 */
static int
cred_hash_parse(const char *stored, struct cred_hash_params *cp)
{
	const char *s = stored, *dollar;
	uint64_t n, mem;

	if (strlen(stored) > CRED_HASH_MAX ||
	    strncmp(s, "$scrypt$", 8) != 0)
		return -1;
	s += 8;
	if (cred_hash_parse_num(&s, "ln=", ',', CRED_HASH_LN_MIN,
	    CRED_HASH_LN_MAX, &cp->ln) == -1 ||
	    cred_hash_parse_num(&s, "r=", ',', 1, CRED_HASH_R_MAX,
	    &cp->r) == -1 ||
	    cred_hash_parse_num(&s, "p=", '$', 1, CRED_HASH_P_MAX,
	    &cp->p) == -1)
		return -1;
	/* What EVP_PBE_scrypt() allocates: 128 r (N + 2) + 128 r p. */
	n = (uint64_t)1 << cp->ln;
	mem = 128 * (uint64_t)cp->r * (n + 2) + 128 * (uint64_t)cp->r * cp->p;
	if (mem > CRED_HASH_SCRYPT_MAXMEM)
		return -1;
	if ((dollar = strchr(s, '$')) == NULL ||
	    b64_decode(s, (size_t)(dollar - s), cp->salt,
	    sizeof(cp->salt), &cp->salt_len, B64_NOPAD) == -1 ||
	    cp->salt_len < CRED_HASH_SALT_MIN)
		return -1;
	s = dollar + 1;
	if (b64_decode(s, strlen(s), cp->key, sizeof(cp->key),
	    &cp->key_len, B64_NOPAD) == -1 || cp->key_len < CRED_HASH_KEY_MIN)
		return -1;
	return 0;
}

int
cred_hash_new(const char *secret, size_t len, struct vbuf *out,
    struct vbuf *why)
{
	unsigned char salt[CRED_HASH_SALT_LEN], key[CRED_HASH_KEY_LEN];
	int rc = -1;

	vbuf_reset(out);
	if (RAND_bytes(salt, sizeof(salt)) != 1) {
		if (why)
			vbuf_setf(why, "RAND_bytes failed");
		return -1;
	}
	if (EVP_PBE_scrypt(secret == NULL ? "" : secret, len, salt,
	    sizeof(salt), (uint64_t)1 << CRED_HASH_SCRYPT_LN,
	    CRED_HASH_SCRYPT_R, CRED_HASH_SCRYPT_P, CRED_HASH_SCRYPT_MAXMEM,
	    key, sizeof(key)) != 1) {
		if (why)
			vbuf_setf(why, "scrypt failed");
		goto done;
	}
	if (vbuf_addf(out, "$scrypt$ln=%d,r=%d,p=%d$",
	    CRED_HASH_SCRYPT_LN, CRED_HASH_SCRYPT_R,
	    CRED_HASH_SCRYPT_P) == -1 ||
	    b64_encode(out, salt, sizeof(salt), B64_NOPAD) == -1 ||
	    vbuf_addc(out, '$') == -1 ||
	    b64_encode(out, key, sizeof(key), B64_NOPAD) == -1) {
		if (why)
			vbuf_setf(why, "hash string too long for its buffer");
		vbuf_reset(out);
		goto done;
	}
	rc = 0;
done:
	OPENSSL_cleanse(key, sizeof(key));
	return rc;
}

int
cred_hash_verify(const char *stored, const char *secret, size_t len)
{
	struct cred_hash_params cp;
	unsigned char key[CRED_HASH_KEY_MAX];
	int rc = -1;

	if (cred_hash_parse(stored, &cp) == -1)
		return -1;
	if (EVP_PBE_scrypt(secret == NULL ? "" : secret, len, cp.salt,
	    cp.salt_len, (uint64_t)1 << cp.ln, cp.r, cp.p,
	    CRED_HASH_SCRYPT_MAXMEM, key, cp.key_len) == 1)
		rc = CRYPTO_memcmp(key, cp.key, cp.key_len) == 0;
	OPENSSL_cleanse(key, sizeof(key));
	OPENSSL_cleanse(&cp, sizeof(cp));
	return rc;
}

void
cred_hash_dummy(const char *secret, size_t len)
{
	(void)cred_hash_verify(cred_hash_dummy_str, secret, len);
}
