/*
 * smtpd_tls.c - smtpd's TLS server context (OpenSSL).
 *
 * The private key arrives as a descriptor opened by master (which may run
 * as root), so the unprivileged smtpd never needs to open the key file
 * itself. TLS 1.2 is the minimum; tls.min_version may raise it to 1.3.
 */
#include <errno.h>
#include <stdio.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>

#include "log.h"
#include "smtpd.h"

SSL_CTX *
smtpd_tls_init(const struct cfg *cfg, int key_fd)
{
	SSL_CTX *ctx;
	EVP_PKEY *key;
	FILE *fp;
	int fd;

	if (cfg->tls_certificate == NULL || key_fd < 0)
		return NULL;
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
	SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
	if (SSL_CTX_use_certificate_chain_file(ctx, cfg->tls_certificate) != 1)
		log_fatal("tls.certificate %s: %s", cfg->tls_certificate,
		    ERR_reason_error_string(ERR_get_error()));
	/* Read the key from master's descriptor, from its start. */
	if ((fd = dup(key_fd)) == -1 || lseek(fd, 0, SEEK_SET) == -1 ||
	    (fp = fdopen(fd, "r")) == NULL)
		log_fatal("tls.private_key: descriptor %d: %m", key_fd);
	key = PEM_read_PrivateKey(fp, NULL, NULL, NULL);
	fclose(fp);
	if (key == NULL)
		log_fatal("tls.private_key %s: cannot read the key: %s",
		    cfg->tls_private_key, ERR_reason_error_string(
		    ERR_get_error()));
	if (SSL_CTX_use_PrivateKey(ctx, key) != 1 ||
	    SSL_CTX_check_private_key(ctx) != 1)
		log_fatal("tls.private_key %s does not match the certificate",
		    cfg->tls_private_key);
	EVP_PKEY_free(key);
	return ctx;
}
