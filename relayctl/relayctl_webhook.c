/*
 * relayctl_webhook.c - "relayctl webhook keygen FILE": the ECDSA P-256 key
 * pair of SendGrid-style signed webhooks (issue 10, webhookd(8) FORMATS).
 *
 * webhookd signs a sendgrid-format endpoint's requests as SendGrid's
 * signed event webhook does, with the private key named by the
 * endpoint's sendgrid_key_file (petrel.yaml) or stored in a credential
 * (relayctl user set --webhook-format sendgrid). The application checks
 * them with the public key in the form SendGrid shows it: base64 of the
 * DER SubjectPublicKeyInfo, printed here on stdout, alone on its line.
 * The key file is written 0600 by the caller, never over an existing file;
 * webhookd runs as mail_owner, which must be able to read it.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <openssl/bio.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "b64.h"
#include "relayctl.h"
#include "vbuf.h"

#define RELAYCTL_WH_CURVE	"P-256"

static int	relayctl_webhook_pub_of(EVP_PKEY *, struct vbuf *,
		    struct vbuf *);
static int	relayctl_webhook_write(const char *, const struct vbuf *,
		    struct vbuf *);

/* The verification key of pkey (must be EC on P-256) into pub. */
static int
relayctl_webhook_pub_of(EVP_PKEY *pkey, struct vbuf *pub, struct vbuf *why)
{
	unsigned char *der = NULL;
	char group[32];
	size_t glen = 0;
	int n;

	if (EVP_PKEY_get_base_id(pkey) != EVP_PKEY_EC ||
	    EVP_PKEY_get_utf8_string_param(pkey, OSSL_PKEY_PARAM_GROUP_NAME,
	    group, sizeof(group), &glen) != 1 ||
	    (strcmp(group, "prime256v1") != 0 &&
	    strcmp(group, RELAYCTL_WH_CURVE) != 0)) {
		vbuf_setf(why, "not an ECDSA P-256 key (make one with "
		    "relayctl webhook keygen FILE)");
		return -1;
	}
	if ((n = i2d_PUBKEY(pkey, &der)) <= 0) {
		vbuf_setf(why, "cannot encode the public key");
		return -1;
	}
	vbuf_reset(pub);
	n = b64_encode(pub, der, (size_t)n, 0);
	OPENSSL_free(der);
	return n;
}

int
relayctl_webhook_keygen(struct vbuf *pem, struct vbuf *pub, struct vbuf *why)
{
	EVP_PKEY_CTX *ctx;
	EVP_PKEY *pkey = NULL;
	BIO *bio = NULL;
	char *data;
	long n;
	int ret = -1;

	if ((ctx = EVP_PKEY_CTX_new_from_name(NULL, "EC", NULL)) == NULL ||
	    EVP_PKEY_keygen_init(ctx) <= 0 ||
	    EVP_PKEY_CTX_set_group_name(ctx, RELAYCTL_WH_CURVE) <= 0 ||
	    EVP_PKEY_keygen(ctx, &pkey) <= 0) {
		vbuf_setf(why, "key generation failed");
		goto done;
	}
	/* PKCS#8, unencrypted: "BEGIN PRIVATE KEY". */
	if ((bio = BIO_new(BIO_s_mem())) == NULL ||
	    PEM_write_bio_PKCS8PrivateKey(bio, pkey, NULL, NULL, 0, NULL,
	    NULL) != 1 || (n = BIO_get_mem_data(bio, &data)) <= 0) {
		vbuf_setf(why, "cannot encode the key as PEM");
		goto done;
	}
	vbuf_wipe(pem);
	(void)vbuf_add(pem, data, (size_t)n);
	OPENSSL_cleanse(data, (size_t)n);
	ret = relayctl_webhook_pub_of(pkey, pub, why);
done:
	BIO_free(bio);
	EVP_PKEY_free(pkey);
	EVP_PKEY_CTX_free(ctx);
	return ret;
}

int
relayctl_webhook_public(const char *pem, size_t len, struct vbuf *pub,
    struct vbuf *why)
{
	EVP_PKEY *pkey;
	BIO *bio;
	int ret;

	if (len > INT_MAX || (bio = BIO_new_mem_buf(pem, (int)len)) == NULL) {
		vbuf_setf(why, "cannot read the key");
		return -1;
	}
	pkey = PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL);
	BIO_free(bio);
	if (pkey == NULL) {
		vbuf_setf(why, "not a PEM private key (make one with relayctl "
		    "webhook keygen FILE)");
		return -1;
	}
	ret = relayctl_webhook_pub_of(pkey, pub, why);
	EVP_PKEY_free(pkey);
	return ret;
}

/* Writes pem to a new file path, 0600, and fsyncs it. 0 or -1 (why). */
static int
relayctl_webhook_write(const char *path, const struct vbuf *pem,
    struct vbuf *why)
{
	ssize_t n;
	size_t off = 0;
	int fd;

	if ((fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC,
	    0600)) == -1) {
		vbuf_setf(why, "create %s: %s", path, strerror(errno));
		return -1;
	}
	while (off < pem->len) {
		if ((n = write(fd, pem->data + off, pem->len - off)) == -1) {
			if (errno == EINTR)
				continue;
			break;
		}
		off += (size_t)n;
	}
	/* The key exists nowhere else: it must be on disk before we say so. */
	if (off < pem->len || fsync(fd) == -1 || close(fd) == -1) {
		vbuf_setf(why, "write %s: %s", path, strerror(errno));
		(void)unlink(path);
		return -1;
	}
	return 0;
}

int
relayctl_webhook_main(int argc, char *argv[], const struct relayctl_opts *opts)
{
	struct vbuf pem, pub, why;
	int ret = RELAYCTL_EXIT_FAIL;

	(void)opts;
	for (int i = 0; i < argc; i++)
		if (strcmp(argv[i], "--help") == 0 ||
		    strcmp(argv[i], "-h") == 0) {
			printf("usage: relayctl webhook keygen FILE\n"
			    "Writes a new ECDSA P-256 key to FILE (0600) and "
			    "prints its verification key.\n");
			return RELAYCTL_EXIT_OK;
		}
	if (argc != 2 || strcmp(argv[0], "keygen") != 0 || argv[1][0] == '-') {
		fprintf(stderr, "usage: relayctl webhook keygen FILE\n");
		return RELAYCTL_EXIT_USAGE;
	}
	vbuf_init(&pem, 0);
	vbuf_init(&pub, 0);
	vbuf_init(&why, 0);
	if (relayctl_webhook_keygen(&pem, &pub, &why) == -1 ||
	    relayctl_webhook_write(argv[1], &pem, &why) == -1)
		fprintf(stderr, "relayctl: webhook keygen: %s\n", why.data);
	else if (printf("%s\n", pub.data) < 0 || fflush(stdout) == EOF)
		fprintf(stderr, "relayctl: webhook keygen: the key is in %s "
		    "but its public key was not shown: %s\n", argv[1],
		    strerror(errno));
	else
		ret = RELAYCTL_EXIT_OK;
	vbuf_wipe(&pem);
	vbuf_release(&pem);
	vbuf_release(&pub);
	vbuf_release(&why);
	return ret;
}
