/*
 * relayctl_dkimgen.c - DKIM key tooling of "relayctl domain": key pairs,
 * the public key and TXT record to publish, and the key files.
 *
 * Only relayctl makes or removes keys, so this lives here and not in
 * lib/dkimkey, which keeps the registry and key reading that smtp needs.
 * Key files are written by relayctl as root through a temporary file,
 * fsync and rename, so smtp never reads half a key; as root they belong to
 * root and dkim.group (0640 in 0750 directories), otherwise to the caller
 * (0600 in 0700). Paths come from dkimkey_key_path, which checks the
 * domain and selector again before they become path components. See
 * relayctl(8).
 */
#include <sys/stat.h>
#include <sys/types.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/bio.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "b64.h"
#include "dkimkey.h"
#include "relayctl.h"
#include "vbuf.h"

#define RELAYCTL_DKIM_RAW_ED25519	32

static int	relayctl_dkim_b64(const unsigned char *, size_t,
		    struct vbuf *);
static int	relayctl_dkim_mkdir(const char *, int, gid_t, struct vbuf *);

/* Replaces the contents of out with the padded base64 of in[0..len). */
static int
relayctl_dkim_b64(const unsigned char *in, size_t len, struct vbuf *out)
{
	vbuf_reset(out);
	return b64_encode(out, in, len, 0);
}

int
relayctl_dkim_generate(enum relayctl_dkim_type type, struct vbuf *pem,
    struct vbuf *why)
{
	EVP_PKEY_CTX *ctx;
	EVP_PKEY *pkey = NULL;
	BIO *bio = NULL;
	char *data;
	long n;
	int ret = -1;

	ctx = EVP_PKEY_CTX_new_id(type == RELAYCTL_DKIM_ED25519 ?
	    EVP_PKEY_ED25519 : EVP_PKEY_RSA, NULL);
	if (ctx == NULL || EVP_PKEY_keygen_init(ctx) <= 0 ||
	    (type != RELAYCTL_DKIM_ED25519 &&
	    EVP_PKEY_CTX_set_rsa_keygen_bits(ctx,
	    type == RELAYCTL_DKIM_RSA3072 ? 3072 : 2048) <= 0) ||
	    EVP_PKEY_keygen(ctx, &pkey) <= 0) {
		if (why)
			vbuf_setf(why, "key generation failed");
		goto done;
	}
	/* PKCS#8, unencrypted: "BEGIN PRIVATE KEY". */
	if ((bio = BIO_new(BIO_s_mem())) == NULL ||
	    PEM_write_bio_PKCS8PrivateKey(bio, pkey, NULL, NULL, 0, NULL,
	    NULL) != 1 || (n = BIO_get_mem_data(bio, &data)) <= 0) {
		if (why)
			vbuf_setf(why, "cannot encode the key as PEM");
		goto done;
	}
	vbuf_wipe(pem);
	(void)vbuf_add(pem, data, (size_t)n);
	OPENSSL_cleanse(data, (size_t)n);
	ret = 0;
done:
	BIO_free(bio);
	EVP_PKEY_free(pkey);
	EVP_PKEY_CTX_free(ctx);
	return ret;
}

int
relayctl_dkim_public(const char *pem, size_t len, struct vbuf *p,
    enum dkimkey_alg *algp, unsigned *bitsp, struct vbuf *why)
{
	unsigned char raw[RELAYCTL_DKIM_RAW_ED25519], *der = NULL;
	EVP_PKEY *pkey = NULL;
	BIO *bio;
	size_t rawlen = sizeof(raw);
	int n, ret = -1, id;

	if (len > DKIMKEY_PEM_MAX ||
	    (bio = BIO_new_mem_buf(pem, (int)len)) == NULL) {
		if (why)
			vbuf_setf(why, "key too large");
		return -1;
	}
	pkey = PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL);
	BIO_free(bio);
	if (pkey == NULL) {
		if (why)
			vbuf_setf(why, "not a PEM private key");
		return -1;
	}
	id = EVP_PKEY_get_base_id(pkey);
	if (id == EVP_PKEY_ED25519) {
		if (EVP_PKEY_get_raw_public_key(pkey, raw, &rawlen) != 1 ||
		    rawlen != RELAYCTL_DKIM_RAW_ED25519 ||
		    relayctl_dkim_b64(raw, rawlen, p) == -1)
			goto bad;
		if (algp != NULL)
			*algp = DKIMKEY_ED25519_SHA256;
		if (bitsp != NULL)
			*bitsp = 0;
	} else if (id == EVP_PKEY_RSA) {
		if ((n = i2d_PUBKEY(pkey, &der)) <= 0 ||
		    relayctl_dkim_b64(der, (size_t)n, p) == -1)
			goto bad;
		if (algp != NULL)
			*algp = DKIMKEY_RSA_SHA256;
		if (bitsp != NULL)
			*bitsp = (unsigned)EVP_PKEY_get_bits(pkey);
	} else {
		if (why)
			vbuf_setf(why, "not an RSA or Ed25519 key");
		goto done;
	}
	ret = 0;
	goto done;
bad:
	if (why)
		vbuf_setf(why, "cannot encode the public key");
done:
	OPENSSL_free(der);
	EVP_PKEY_free(pkey);
	return ret;
}

void
relayctl_dkim_txt_quote(const char *s, const char *sep, struct vbuf *out)
{
	size_t len = strlen(s), n, off = 0;

	do {
		n = len - off;
		if (n > RELAYCTL_DKIM_TXT_STRING_MAX)
			n = RELAYCTL_DKIM_TXT_STRING_MAX;
		if (off > 0)
			(void)vbuf_adds(out, sep);
		(void)vbuf_addc(out, '"');
		(void)vbuf_add(out, s + off, n);
		(void)vbuf_addc(out, '"');
		off += n;
	} while (off < len);
}

void
relayctl_dkim_txt_record(enum dkimkey_alg alg, const char *p, const char *sep,
    struct vbuf *out)
{
	struct vbuf v;

	vbuf_init(&v, 0);
	(void)vbuf_addf(&v, "v=DKIM1; k=%s; ",
	    alg == DKIMKEY_ED25519_SHA256 ? "ed25519" : "rsa");
	relayctl_dkim_txt_quote(v.data, sep, out);
	(void)vbuf_adds(out, sep);
	vbuf_setf(&v, "p=%s", p);
	relayctl_dkim_txt_quote(v.data, sep, out);
	vbuf_release(&v);
}

/* Key files. */

/* Creates dir if missing and sets its owner and mode. 0 or -1 (why). */
static int
relayctl_dkim_mkdir(const char *dir, int root, gid_t gid, struct vbuf *why)
{
	mode_t mode = root ? 0750 : 0700;
	struct stat st;

	if (mkdir(dir, mode) == -1 && errno != EEXIST) {
		if (why)
			vbuf_setf(why, "mkdir %s: %s", dir, strerror(errno));
		return -1;
	}
	if (lstat(dir, &st) == -1 || !S_ISDIR(st.st_mode)) {
		if (why)
			vbuf_setf(why, "%s: not a directory", dir);
		return -1;
	}
	if ((root && chown(dir, 0, gid) == -1) || chmod(dir, mode) == -1) {
		if (why)
			vbuf_setf(why, "set owner and mode of %s: %s", dir,
			    strerror(errno));
		return -1;
	}
	return 0;
}

int
relayctl_dkim_key_write(const struct cfg *cfg, const char *domain,
    const char *selector, const char *pem, size_t len, struct vbuf *why)
{
	struct vbuf path, tmp;
	struct group *gr;
	struct stat st;
	gid_t gid = 0;
	size_t off;
	ssize_t n;
	int root = geteuid() == 0, fd = -1, ret = -1;

	vbuf_init(&path, 0);
	vbuf_init(&tmp, 0);
	if (root) {
		errno = 0;
		if (cfg->dkim_group == NULL ||
		    (gr = getgrnam(cfg->dkim_group)) == NULL) {
			if (why)
				vbuf_setf(why, "group %s does not exist: "
				    "create it (groupadd --system %s) so that "
				    "smtp can read the DKIM keys",
				    cfg->dkim_group ? cfg->dkim_group : "?",
				    cfg->dkim_group ? cfg->dkim_group :
				    "petrel-dkim");
			goto done;
		}
		gid = gr->gr_gid;
	}
	if (dkimkey_key_path(cfg, NULL, NULL, &path, why) == -1 ||
	    relayctl_dkim_mkdir(path.data, root, gid, why) == -1 ||
	    dkimkey_key_path(cfg, domain, NULL, &path, why) == -1 ||
	    relayctl_dkim_mkdir(path.data, root, gid, why) == -1 ||
	    dkimkey_key_path(cfg, domain, selector, &path, why) == -1)
		goto done;
	if (lstat(path.data, &st) == 0) {
		if (why)
			vbuf_setf(why, "%s exists", path.data);
		goto done;
	}
	(void)vbuf_addf(&tmp, "%s.tmp%ld", path.data, (long)getpid());
	(void)unlink(tmp.data);
	if ((fd = open(tmp.data, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW |
	    O_CLOEXEC, 0600)) == -1) {
		if (why)
			vbuf_setf(why, "create %s: %s", tmp.data,
			    strerror(errno));
		goto done;
	}
	if ((root && fchown(fd, 0, gid) == -1) ||
	    fchmod(fd, root ? 0640 : 0600) == -1) {
		if (why)
			vbuf_setf(why, "set owner and mode of %s: %s",
			    tmp.data, strerror(errno));
		goto fail;
	}
	for (off = 0; off < len; off += (size_t)n)
		if ((n = write(fd, pem + off, len - off)) <= 0) {
			if (n < 0 && errno == EINTR) {
				n = 0;
				continue;
			}
			if (why)
				vbuf_setf(why, "write %s: %s", tmp.data,
				    n < 0 ? strerror(errno) : "short write");
			goto fail;
		}
	/* The key must be on disk before the registry names it. */
	if (fsync(fd) == -1 || close(fd) == -1) {
		fd = -1;
		if (why)
			vbuf_setf(why, "write %s: %s", tmp.data,
			    strerror(errno));
		goto fail;
	}
	fd = -1;
	if (rename(tmp.data, path.data) == -1) {
		if (why)
			vbuf_setf(why, "rename %s to %s: %s", tmp.data,
			    path.data, strerror(errno));
		goto fail;
	}
	(void)dkimkey_key_path(cfg, domain, NULL, &tmp, NULL);
	if ((fd = open(tmp.data, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) != -1) {
		(void)fsync(fd);
		(void)close(fd);
	}
	fd = -1;
	ret = 0;
	goto done;
fail:
	if (fd != -1)
		(void)close(fd);
	(void)unlink(tmp.data);
done:
	vbuf_release(&path);
	vbuf_release(&tmp);
	return ret;
}

int
relayctl_dkim_key_exists(const struct cfg *cfg, const char *domain,
    const char *selector, struct vbuf *why)
{
	struct vbuf path;
	struct stat st;
	int ret;

	vbuf_init(&path, 0);
	if (dkimkey_key_path(cfg, domain, selector, &path, why) == -1)
		ret = -1;
	else if (lstat(path.data, &st) == 0)
		ret = 1;
	else if (errno == ENOENT)
		ret = 0;
	else {
		if (why)
			vbuf_setf(why, "%s: %s", path.data, strerror(errno));
		ret = -1;
	}
	vbuf_release(&path);
	return ret;
}

int
relayctl_dkim_key_remove(const struct cfg *cfg, const char *domain,
    const char *selector, struct vbuf *why)
{
	struct vbuf path, file;
	struct dirent *de;
	size_t n;
	DIR *dir;
	int ret = -1;

	vbuf_init(&path, 0);
	vbuf_init(&file, 0);
	if (dkimkey_key_path(cfg, domain, selector, &path, why) == -1)
		goto done;
	if (selector != NULL) {
		if (unlink(path.data) == -1 && errno != ENOENT) {
			if (why)
				vbuf_setf(why, "unlink %s: %s", path.data,
				    strerror(errno));
			goto done;
		}
		ret = 0;
		goto done;
	}
	if ((dir = opendir(path.data)) == NULL) {
		if (errno == ENOENT)
			ret = 0;
		else if (why)
			vbuf_setf(why, "opendir %s: %s", path.data,
			    strerror(errno));
		goto done;
	}
	ret = 0;
	while ((de = readdir(dir)) != NULL) {
		n = strlen(de->d_name);
		/* Ours only: keys and temporary files left by a crash. */
		if (de->d_name[0] == '.' || (!(n > 4 &&
		    strcmp(de->d_name + n - 4, ".pem") == 0) &&
		    strstr(de->d_name, ".pem.tmp") == NULL))
			continue;
		vbuf_setf(&file, "%s/%s", path.data, de->d_name);
		if (unlink(file.data) == -1 && errno != ENOENT) {
			if (why)
				vbuf_setf(why, "unlink %s: %s", file.data,
				    strerror(errno));
			ret = -1;
		}
	}
	(void)closedir(dir);
	if (ret == 0 && rmdir(path.data) == -1 && errno != ENOENT) {
		if (why)
			vbuf_setf(why, "rmdir %s: %s", path.data,
			    strerror(errno));
		ret = -1;
	}
done:
	vbuf_release(&path);
	vbuf_release(&file);
	return ret;
}
