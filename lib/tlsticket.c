/*
 * tlsticket.c - the shared TLS session-ticket keys (see tlsticket.h).
 *
 * One page-sized object: a sequence counter, the number of rotations and
 * two keys, [0] current and [1] previous. master is the only writer; it
 * makes the counter odd, writes, and makes it even again. A reader copies
 * while the counter is even and unchanged across the copy, and gives up
 * after TLSTICKET_TRIES tries rather than spin for ever on a writer that
 * died mid-write. The key bytes are copied through volatile pointers, so
 * the compiler neither tears nor caches them across the counter checks.
 */
#include <sys/mman.h>
#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/rand.h>

#include "tlsticket.h"
#include "xalloc.h"

#define TLSTICKET_MAGIC		0x50544b31u	/* "PTK1" */
#define TLSTICKET_TRIES		1000
#define TLSTICKET_SEALS		(F_SEAL_SHRINK | F_SEAL_GROW | \
				    F_SEAL_FUTURE_WRITE | F_SEAL_SEAL)

_Static_assert(ATOMIC_LLONG_LOCK_FREE == 2,
    "the sequence counter is shared between processes: it must be lock-free");

struct tlsticket_shm {
	uint32_t		 magic;
	uint32_t		 size;
	_Atomic uint64_t	 seq;		/* odd while master writes */
	uint64_t		 generation;
	uint64_t		 has_previous;
	struct tlsticket_key	 key[2];	/* current, previous */
};

struct tlsticket {
	int			 fd;
	struct tlsticket_shm	*shm;
	int			 writable;	/* master's mapping */
};

static void	tlsticket_put(volatile unsigned char *, const void *, size_t);
static void	tlsticket_get(void *, const volatile unsigned char *, size_t);
static int	tlsticket_new_key(struct tlsticket_key *, struct vbuf *);

static void
tlsticket_put(volatile unsigned char *dst, const void *src, size_t n)
{
	const unsigned char *s = src;

	for (size_t i = 0; i < n; i++)
		dst[i] = s[i];
}

static void
tlsticket_get(void *dst, const volatile unsigned char *src, size_t n)
{
	unsigned char *d = dst;

	for (size_t i = 0; i < n; i++)
		d[i] = src[i];
}

static int
tlsticket_new_key(struct tlsticket_key *k, struct vbuf *why)
{
	if (RAND_bytes(k->name, sizeof(k->name)) != 1 ||
	    RAND_bytes(k->aes, sizeof(k->aes)) != 1 ||
	    RAND_bytes(k->hmac, sizeof(k->hmac)) != 1) {
		OPENSSL_cleanse(k, sizeof(*k));
		vbuf_setf(why, "TLS ticket key: no random bytes");
		return -1;
	}
	return 0;
}

struct tlsticket *
tlsticket_create(struct vbuf *why)
{
	struct tlsticket *t;
	struct tlsticket_key k;
	void *p;
	int fd;

	fd = memfd_create("petrel-tlsticket", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	if (fd == -1) {
		vbuf_setf(why, "TLS ticket keys: memfd_create: %s",
		    strerror(errno));
		return NULL;
	}
	if (ftruncate(fd, sizeof(struct tlsticket_shm)) == -1 ||
	    (p = mmap(NULL, sizeof(struct tlsticket_shm), PROT_READ |
	    PROT_WRITE, MAP_SHARED, fd, 0)) == MAP_FAILED) {
		vbuf_setf(why, "TLS ticket keys: %s", strerror(errno));
		close(fd);
		return NULL;
	}
	/* Keys have no business in a core dump. */
	(void)madvise(p, sizeof(struct tlsticket_shm), MADV_DONTDUMP);
	t = xcalloc(1, sizeof(*t));
	t->fd = fd;
	t->shm = p;
	t->writable = 1;
	t->shm->magic = TLSTICKET_MAGIC;
	t->shm->size = sizeof(struct tlsticket_shm);
	if (tlsticket_new_key(&k, why) == -1) {
		tlsticket_free(t);
		return NULL;
	}
	tlsticket_put((volatile unsigned char *)&t->shm->key[0], &k,
	    sizeof(k));
	OPENSSL_cleanse(&k, sizeof(k));
	/*
	 * From here on no writable mapping and no write(2) can be made
	 * through the descriptor (ours was made before), and the seals
	 * cannot be removed: what smtpd inherits is read-only for good.
	 */
	if (fcntl(fd, F_ADD_SEALS, TLSTICKET_SEALS) == -1) {
		vbuf_setf(why, "TLS ticket keys: seal: %s", strerror(errno));
		tlsticket_free(t);
		return NULL;
	}
	return t;
}

int
tlsticket_fd(const struct tlsticket *t)
{
	return t->fd;
}

int
tlsticket_rotate(struct tlsticket *t, struct vbuf *why)
{
	struct tlsticket_shm *shm = t->shm;
	struct tlsticket_key k;
	uint64_t s;

	if (!t->writable) {
		vbuf_setf(why, "TLS ticket keys: read-only mapping");
		return -1;
	}
	if (tlsticket_new_key(&k, why) == -1)
		return -1;
	s = atomic_load_explicit(&shm->seq, memory_order_relaxed);
	atomic_store_explicit(&shm->seq, s + 1, memory_order_relaxed);
	atomic_thread_fence(memory_order_release);
	memmove((void *)&shm->key[1], (void *)&shm->key[0],
	    sizeof(shm->key[0]));
	tlsticket_put((volatile unsigned char *)&shm->key[0], &k, sizeof(k));
	shm->generation++;
	shm->has_previous = 1;
	atomic_store_explicit(&shm->seq, s + 2, memory_order_release);
	OPENSSL_cleanse(&k, sizeof(k));
	return 0;
}

struct tlsticket *
tlsticket_attach(int fd, struct vbuf *why)
{
	struct tlsticket *t;
	struct stat st;
	void *p;
	int seals;

	if (fstat(fd, &st) == -1) {
		vbuf_setf(why, "TLS ticket keys: descriptor %d: %s", fd,
		    strerror(errno));
		return NULL;
	}
	if (st.st_size != (off_t)sizeof(struct tlsticket_shm)) {
		vbuf_setf(why, "TLS ticket keys: descriptor %d: size %lld, "
		    "not %zu", fd, (long long)st.st_size,
		    sizeof(struct tlsticket_shm));
		return NULL;
	}
	/* Refuse an object this process could write: the keys are master's. */
	if ((seals = fcntl(fd, F_GET_SEALS)) == -1 ||
	    (seals & TLSTICKET_SEALS) != TLSTICKET_SEALS) {
		vbuf_setf(why, "TLS ticket keys: descriptor %d is not sealed "
		    "against writing", fd);
		return NULL;
	}
	p = mmap(NULL, sizeof(struct tlsticket_shm), PROT_READ, MAP_SHARED,
	    fd, 0);
	if (p == MAP_FAILED) {
		vbuf_setf(why, "TLS ticket keys: mmap: %s", strerror(errno));
		return NULL;
	}
	(void)madvise(p, sizeof(struct tlsticket_shm), MADV_DONTDUMP);
	t = xcalloc(1, sizeof(*t));
	t->fd = -1;
	t->shm = p;
	if (t->shm->magic != TLSTICKET_MAGIC ||
	    t->shm->size != sizeof(struct tlsticket_shm)) {
		vbuf_setf(why, "TLS ticket keys: descriptor %d: unknown "
		    "layout", fd);
		tlsticket_free(t);
		return NULL;
	}
	return t;
}

int
tlsticket_read(const struct tlsticket *t, struct tlsticket_keys *out)
{
	struct tlsticket_shm *shm = t->shm;
	uint64_t s1, s2;

	for (int tries = 0; tries < TLSTICKET_TRIES; tries++) {
		s1 = atomic_load_explicit(&shm->seq, memory_order_acquire);
		if (s1 & 1) {
			sched_yield();
			continue;
		}
		tlsticket_get(&out->current,
		    (const volatile unsigned char *)&shm->key[0],
		    sizeof(out->current));
		tlsticket_get(&out->previous,
		    (const volatile unsigned char *)&shm->key[1],
		    sizeof(out->previous));
		out->generation = *(const volatile uint64_t *)&shm->generation;
		out->has_previous =
		    *(const volatile uint64_t *)&shm->has_previous != 0;
		atomic_thread_fence(memory_order_acquire);
		s2 = atomic_load_explicit(&shm->seq, memory_order_relaxed);
		if (s1 == s2)
			return 0;
	}
	OPENSSL_cleanse(out, sizeof(*out));
	return -1;
}

void
tlsticket_free(struct tlsticket *t)
{
	if (t == NULL)
		return;
	if (t->shm != NULL) {
		if (t->writable)
			OPENSSL_cleanse(t->shm, sizeof(*t->shm));
		(void)munmap(t->shm, sizeof(*t->shm));
	}
	if (t->fd != -1)
		close(t->fd);
	free(t);
}
