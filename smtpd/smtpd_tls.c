/*
 * smtpd_tls.c - smtpd's TLS server context (OpenSSL).
 *
 * The private keys arrive as descriptors opened by master (which may run
 * as root), so the unprivileged smtpd never needs to open a key file
 * itself. Each tls.certificate is loaded with the key in the same place
 * of tls.private_key, checked to match, one pair per key type (an ECDSA
 * and an RSA chain side by side, as Postfix's smtpd_tls_eccert_file):
 * OpenSSL picks per client from the signature algorithms it offers. TLS
 * 1.2 is the minimum; tls.min_version may raise it to 1.3.
 *
 * Session tickets (RFC 5077, RFC 8446 section 4.6.1) are sealed with the
 * keys master keeps in a shared object that this process maps read-only
 * (tlsticket.h): a ticket issued by any smtpd resumes in every other. One
 * sealed with the previous key is accepted and replaced by a new one. No
 * ticket object (tls.ticket_lifetime 0): no tickets at all, rather than
 * per-process keys that would resume only by chance. See smtpd(8).
 */
#include <sys/types.h>

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "log.h"
#include "smtpd.h"
#include "tlsticket.h"

#define SMTPD_TLS_WHERE	(PATH_MAX + 64)

static struct tlsticket *smtpd_tls_tickets;

static void smtpd_tls_pair(SSL_CTX *, const struct cfg *, size_t, int,
    int *, size_t *);
static void smtpd_tls_tickets_init(SSL_CTX *, const struct cfg *, int);
static int smtpd_tls_ticket_cb(SSL *, unsigned char *, unsigned char *,
    EVP_CIPHER_CTX *, EVP_MAC_CTX *, int);
static const char *smtpd_tls_error(void);
static const char *smtpd_tls_type(int);

/* The reason of OpenSSL's last error, for messages. */
static const char *
smtpd_tls_error(void)
{
	const char *r = ERR_reason_error_string(ERR_peek_last_error());

	return r != NULL ? r : "unknown error";
}

/* A key type as operators name it. */
static const char *
smtpd_tls_type(int type)
{
	switch (type) {
	case EVP_PKEY_RSA:
		return "RSA";
	case EVP_PKEY_RSA_PSS:
		return "RSA-PSS";
	case EVP_PKEY_EC:
		return "ECDSA";
	case EVP_PKEY_ED25519:
		return "Ed25519";
	case EVP_PKEY_ED448:
		return "Ed448";
	default:
		return OBJ_nid2sn(type);
	}
}

SSL_CTX *
smtpd_tls_init(const struct cfg *cfg)
{
	const int *key_fds;
	SSL_CTX *ctx;
	int types[DAEMON_MAX_KEYS];
	size_t nkeys, ntypes = 0, i;
	int ticket_fd = daemon_tls_ticket_fd();

	key_fds = daemon_tls_key_fds(&nkeys);
	if (cfg->tls_certificates.n == 0 || nkeys == 0) {
		ctx = NULL;
		goto done;
	}
	/* master opened them from the same file; a reload may race. */
	if (nkeys != cfg->tls_certificates.n)
		log_fatal("%zu TLS key descriptor(s) from master for %zu "
		    "tls.certificate entries", nkeys, cfg->tls_certificates.n);
	if ((ctx = SSL_CTX_new(TLS_server_method())) == NULL)
		log_fatal("SSL_CTX_new failed");
	if (SSL_CTX_set_min_proto_version(ctx, cfg->tls_min_version == 13 ?
	    TLS1_3_VERSION : TLS1_2_VERSION) != 1)
		log_fatal("cannot set the minimum TLS version");
	if (cfg->tls_ciphers != NULL &&
	    SSL_CTX_set_cipher_list(ctx, cfg->tls_ciphers) != 1)
		log_fatal("tls.ciphers: no usable cipher in \"%s\"",
		    cfg->tls_ciphers);
	SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION |
	    SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE);
	SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE |
	    SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER | SSL_MODE_RELEASE_BUFFERS);
	/* No server-side cache: resumption is by stateless tickets only. */
	SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
	for (i = 0; i < nkeys; i++)
		smtpd_tls_pair(ctx, cfg, i, key_fds[i], types, &ntypes);
	smtpd_tls_tickets_init(ctx, cfg, ticket_fd);
 done:
	for (i = 0; i < nkeys; i++)
		close(key_fds[i]);
	if (ticket_fd >= 0)
		close(ticket_fd);
	return ctx;
}

/*
 * Pair i: the chain of tls.certificate[i] and the key read from key_fd
 * (tls.private_key[i]). The key must match the chain's leaf, and no two
 * pairs may have the same key type: OpenSSL keeps one chain per type, and
 * a second would silently replace the first.
 */
static void
smtpd_tls_pair(SSL_CTX *ctx, const struct cfg *cfg, size_t i, int key_fd,
    int *types, size_t *ntypes)
{
	char cwhere[SMTPD_TLS_WHERE], kwhere[SMTPD_TLS_WHERE];
	const char *cert = cfg->tls_certificates.path[i];
	const char *keypath = cfg->tls_private_keys.path[i];
	X509 *leaf;
	EVP_PKEY *key;
	FILE *fp;
	int fd, type;

	cfg_paths_where(cfg, "tls.certificate", &cfg->tls_certificates, i,
	    cwhere, sizeof(cwhere));
	cfg_paths_where(cfg, "tls.private_key", &cfg->tls_private_keys, i,
	    kwhere, sizeof(kwhere));
	ERR_clear_error();

	/* 1. The leaf certificate, to check the key against. */
	if ((fp = fopen(cert, "r")) == NULL)
		log_fatal("%s: %s: %m", cwhere, cert);
	leaf = PEM_read_X509(fp, NULL, NULL, NULL);
	fclose(fp);
	if (leaf == NULL)
		log_fatal("%s: %s: no PEM certificate: %s", cwhere, cert,
		    smtpd_tls_error());

	/* 2. The key, from master's descriptor, from its start. */
	if ((fd = dup(key_fd)) == -1 || lseek(fd, 0, SEEK_SET) == -1 ||
	    (fp = fdopen(fd, "r")) == NULL)
		log_fatal("%s: descriptor %d: %m", kwhere, key_fd);
	key = PEM_read_PrivateKey(fp, NULL, NULL, NULL);
	fclose(fp);
	if (key == NULL)
		log_fatal("%s: %s: cannot read the key: %s", kwhere, keypath,
		    smtpd_tls_error());
	if (X509_check_private_key(leaf, key) != 1)
		log_fatal("%s: %s does not match the certificate %s", kwhere,
		    keypath, cert);
	type = EVP_PKEY_get_base_id(key);
	for (size_t j = 0; j < *ntypes; j++)
		if (types[j] == type)
			log_fatal("%s: %s: a second %s certificate; give one "
			    "per key type (RSA, ECDSA, ...)", cwhere, cert,
			    smtpd_tls_type(type));
	types[(*ntypes)++] = type;
	X509_free(leaf);

	/* 3. Into the context: the chain selects the slot of its type. */
	if (SSL_CTX_use_certificate_chain_file(ctx, cert) != 1)
		log_fatal("%s: %s: %s", cwhere, cert, smtpd_tls_error());
	if (SSL_CTX_use_PrivateKey(ctx, key) != 1 ||
	    SSL_CTX_check_private_key(ctx) != 1)
		log_fatal("%s: %s does not match the certificate %s: %s",
		    kwhere, keypath, cert, smtpd_tls_error());
	EVP_PKEY_free(key);
	log_debug("TLS: %s certificate %s", smtpd_tls_type(type), cert);
}

/*
 * Tickets under master's shared keys. A ticket lives one to two rotation
 * periods (see master(8)), and the keys are what should end it. The
 * session timeout says three: a TLS 1.2 ticket renewed under the current
 * key keeps its first session's time (OpenSSL), so a timeout of two
 * would refuse a renewed ticket its key still accepts; three also bounds
 * a chain of renewals from one full handshake. One ticket per handshake:
 * a client needs no more (they are reusable).
 */
static void
smtpd_tls_tickets_init(SSL_CTX *ctx, const struct cfg *cfg, int ticket_fd)
{
	struct vbuf *why;

	if (ticket_fd < 0 || cfg->tls_ticket_lifetime == 0) {
		SSL_CTX_set_options(ctx, SSL_OP_NO_TICKET);
		(void)SSL_CTX_set_num_tickets(ctx, 0);
		return;
	}
	why = vbuf_create(0);
	if ((smtpd_tls_tickets = tlsticket_attach(ticket_fd, why)) == NULL)
		log_fatal("%s", why->data);
	vbuf_free(why);
	if (SSL_CTX_set_tlsext_ticket_key_evp_cb(ctx,
	    smtpd_tls_ticket_cb) != 1)
		log_fatal("cannot set the TLS ticket key callback");
	(void)SSL_CTX_set_timeout(ctx, (long)(3 * cfg->tls_ticket_lifetime));
	(void)SSL_CTX_set_num_tickets(ctx, 1);
}

/*
 * OpenSSL's ticket key callback. enc: name a ticket with the current key
 * and set up its cipher and MAC (1), or issue none (0). Otherwise find
 * the ticket's key by name: 1 for the current key (TLS 1.2), 2 for the
 * previous one or for TLS 1.3 (accept, and issue a new ticket under the
 * current key), 0 for neither (a full handshake). -1 is an error. The
 * keys are copied from the shared object for this call only, and wiped.
 */
static int
smtpd_tls_ticket_cb(SSL *ssl, unsigned char *name, unsigned char *iv,
    EVP_CIPHER_CTX *cctx, EVP_MAC_CTX *hctx, int enc)
{
	static char digest[] = "SHA256";
	struct tlsticket_keys keys;
	const struct tlsticket_key *k;
	OSSL_PARAM params[3];
	const EVP_CIPHER *cipher = EVP_aes_256_cbc();
	int rc;

	if (tlsticket_read(smtpd_tls_tickets, &keys) == -1) {
		log_warn("TLS ticket keys: no consistent copy; no ticket");
		return 0;
	}
	if (enc) {
		k = &keys.current;
		rc = 1;
		if (RAND_bytes(iv, EVP_CIPHER_get_iv_length(cipher)) != 1) {
			rc = -1;
			goto out;
		}
		memcpy(name, k->name, TLSTICKET_NAME_LEN);
	} else if (memcmp(name, keys.current.name, TLSTICKET_NAME_LEN) ==
	    0) {
		/*
		 * A TLS 1.3 client uses a ticket once (RFC 8446 appendix
		 * C.4; OpenSSL's client forgets the session it resumed), so
		 * it needs a new one each time or its next connection is a
		 * full handshake: renew. TLS 1.2 tickets are reused as they
		 * are.
		 */
		k = &keys.current;
		rc = SSL_version(ssl) == TLS1_3_VERSION ? 2 : 1;
	} else if (keys.has_previous && memcmp(name, keys.previous.name,
	    TLSTICKET_NAME_LEN) == 0) {
		k = &keys.previous;
		rc = 2;
	} else {
		rc = 0;
		goto out;
	}
	params[0] = OSSL_PARAM_construct_octet_string(OSSL_MAC_PARAM_KEY,
	    (void *)k->hmac, sizeof(k->hmac));
	params[1] = OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST,
	    digest, 0);
	params[2] = OSSL_PARAM_construct_end();
	if (EVP_MAC_CTX_set_params(hctx, params) != 1)
		rc = -1;
	else if (enc && EVP_EncryptInit_ex(cctx, cipher, NULL, k->aes,
	    iv) != 1)
		rc = -1;
	else if (!enc && EVP_DecryptInit_ex(cctx, cipher, NULL, k->aes,
	    iv) != 1)
		rc = -1;
 out:
	OPENSSL_cleanse(&keys, sizeof(keys));
	return rc;
}
