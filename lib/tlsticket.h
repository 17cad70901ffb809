/*
 * tlsticket.h - TLS session-ticket keys shared by master and every smtpd.
 *
 * master creates one small shared memory object (memfd_create, mapped
 * MAP_SHARED) holding the current and the previous ticket key and rotates
 * them; each smtpd inherits its descriptor and maps it read-only, so a
 * ticket issued by one smtpd process resumes in any other (RFC 5077,
 * RFC 8446 section 4.6.1). The object is sealed before any smtpd exists
 * (F_SEAL_FUTURE_WRITE, no resizing, no unsealing): master's own mapping
 * stays writable, but no new writable mapping or write(2) can be made
 * through the descriptor, so smtpd can never change the keys.
 *
 * Readers take a consistent copy under a sequence lock (the writer makes
 * the counter odd while it writes); a copy is a secret and is wiped with
 * OPENSSL_cleanse() by whoever made it. See master(8) and smtpd(8).
 */
#ifndef PETREL_TLSTICKET_H
#define PETREL_TLSTICKET_H

#include <stdint.h>

#include "vbuf.h"

#define TLSTICKET_NAME_LEN	16	/* the key_name in each ticket */
#define TLSTICKET_AES_LEN	32	/* AES-256-CBC */
#define TLSTICKET_HMAC_LEN	32	/* HMAC-SHA256 */

struct tlsticket_key {
	unsigned char	 name[TLSTICKET_NAME_LEN];
	unsigned char	 aes[TLSTICKET_AES_LEN];
	unsigned char	 hmac[TLSTICKET_HMAC_LEN];
};

/* A reader's copy: wipe it with OPENSSL_cleanse() after use. */
struct tlsticket_keys {
	uint64_t		 generation;	/* rotations since creation */
	int			 has_previous;	/* 0 until the first rotation */
	struct tlsticket_key	 current;	/* encrypts new tickets */
	struct tlsticket_key	 previous;	/* still decrypts old ones */
};

struct tlsticket;

/*
 * master: a new sealed object with a first random key, mapped writable
 * in this process only. NULL with the reason in why.
 */
struct tlsticket	*tlsticket_create(struct vbuf *why);
/* The descriptor to hand to smtpd (close-on-exec; owned by the object). */
int			 tlsticket_fd(const struct tlsticket *);
/*
 * master: a new random current key; the current one becomes the previous
 * one and the previous one is forgotten. -1 (keys unchanged) when no
 * random bytes could be had, with the reason in why.
 */
int			 tlsticket_rotate(struct tlsticket *, struct vbuf *why);
/*
 * smtpd: maps the object behind fd read-only and checks its layout. The
 * caller may close fd afterwards. NULL with the reason in why.
 */
struct tlsticket	*tlsticket_attach(int fd, struct vbuf *why);
/*
 * A consistent copy of the keys in *out. -1 when no consistent copy could
 * be had within a bounded number of tries (the writer died mid-write):
 * the caller then issues and accepts no ticket.
 */
int			 tlsticket_read(const struct tlsticket *,
			    struct tlsticket_keys *out);
/* Unmaps, closes, and wipes what this process holds; NULL is a no-op. */
void			 tlsticket_free(struct tlsticket *);

#endif
