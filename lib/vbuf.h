/*
 * vbuf.h - growable, length-tracked, always NUL-terminated byte buffers.
 *
 * The one way to build text that grows (Postfix's VSTRING). A buffer may
 * carry a hard cap for untrusted input: growth past it fails instead of
 * allocating. Memory failure is fatal (xalloc).
 */
#ifndef PETREL_VBUF_H
#define PETREL_VBUF_H

#include <stdarg.h>
#include <stddef.h>

struct vbuf {
	char	*data;		/* always NUL-terminated */
	size_t	 len;		/* bytes used, not counting the NUL */
	size_t	 size;		/* bytes allocated */
	size_t	 cap;		/* max len; 0 = no cap */
};

/* Returns a new empty buffer; cap 0 means unbounded. Free with vbuf_free. */
struct vbuf	*vbuf_create(size_t cap);
void		 vbuf_free(struct vbuf *);
/* Initialises an embedded buffer; release with vbuf_release. */
void		 vbuf_init(struct vbuf *, size_t cap);
void		 vbuf_release(struct vbuf *);
void		 vbuf_reset(struct vbuf *);
/* Appends; returns 0, or -1 (buffer unchanged) when the cap would be passed. */
int		 vbuf_add(struct vbuf *, const void *, size_t);
int		 vbuf_adds(struct vbuf *, const char *);
int		 vbuf_addc(struct vbuf *, int);
int		 vbuf_addf(struct vbuf *, const char *, ...)
		    __attribute__((format(printf, 2, 3)));
int		 vbuf_vaddf(struct vbuf *, const char *, va_list)
		    __attribute__((format(printf, 2, 0)));
/* Replaces the contents with a formatted string. */
int		 vbuf_setf(struct vbuf *, const char *, ...)
		    __attribute__((format(printf, 2, 3)));
/* Removes the first n bytes. */
void		 vbuf_consume(struct vbuf *, size_t n);
/* Shortens to len bytes (no-op if already shorter). */
void		 vbuf_truncate(struct vbuf *, size_t len);
/* Makes room for n more bytes without changing len; -1 past the cap. */
int		 vbuf_reserve(struct vbuf *, size_t n);
/* Wipes the contents (OPENSSL_cleanse) before reset: for secrets. */
void		 vbuf_wipe(struct vbuf *);

#endif
