/*
 * vbuf.c - growable byte buffers (see vbuf.h).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "log.h"
#include "vbuf.h"
#include "xalloc.h"

struct vbuf *
vbuf_create(size_t cap)
{
	struct vbuf *vb;

	vb = xmalloc(sizeof(*vb));
	vbuf_init(vb, cap);
	return vb;
}

void
vbuf_free(struct vbuf *vb)
{
	if (vb == NULL)
		return;
	vbuf_release(vb);
	free(vb);
}

void
vbuf_init(struct vbuf *vb, size_t cap)
{
	vb->size = 64;
	vb->data = xmalloc(vb->size);
	vb->data[0] = '\0';
	vb->len = 0;
	vb->cap = cap;
}

void
vbuf_release(struct vbuf *vb)
{
	free(vb->data);
	vb->data = NULL;
	vb->len = vb->size = 0;
}

void
vbuf_reset(struct vbuf *vb)
{
	vb->len = 0;
	vb->data[0] = '\0';
}

void
vbuf_wipe(struct vbuf *vb)
{
	OPENSSL_cleanse(vb->data, vb->size);
	vbuf_reset(vb);
}

int
vbuf_reserve(struct vbuf *vb, size_t n)
{
	size_t need, nsize;

	if (n > SIZE_MAX - vb->len - 1)
		return -1;
	need = vb->len + n + 1;
	if (vb->cap != 0 && vb->len + n > vb->cap)
		return -1;
	if (need <= vb->size)
		return 0;
	nsize = vb->size;
	while (nsize < need)
		nsize = nsize > SIZE_MAX / 2 ? need : nsize * 2;
	vb->data = xreallocarray(vb->data, nsize, 1);
	vb->size = nsize;
	return 0;
}

int
vbuf_add(struct vbuf *vb, const void *p, size_t n)
{
	if (vbuf_reserve(vb, n) == -1)
		return -1;
	if (n > 0)
		memcpy(vb->data + vb->len, p, n);
	vb->len += n;
	vb->data[vb->len] = '\0';
	return 0;
}

int
vbuf_adds(struct vbuf *vb, const char *s)
{
	return vbuf_add(vb, s, strlen(s));
}

int
vbuf_addc(struct vbuf *vb, int c)
{
	char ch = (char)c;

	return vbuf_add(vb, &ch, 1);
}

int
vbuf_vaddf(struct vbuf *vb, const char *fmt, va_list ap)
{
	va_list ap2;
	int n;

	va_copy(ap2, ap);
	n = vsnprintf(vb->data + vb->len, vb->size - vb->len, fmt, ap2);
	va_end(ap2);
	if (n < 0)
		return -1;
	if ((size_t)n >= vb->size - vb->len) {
		if (vbuf_reserve(vb, (size_t)n) == -1) {
			vb->data[vb->len] = '\0';
			return -1;
		}
		va_copy(ap2, ap);
		n = vsnprintf(vb->data + vb->len, vb->size - vb->len, fmt,
		    ap2);
		va_end(ap2);
		if (n < 0)
			return -1;
	} else if (vb->cap != 0 && vb->len + (size_t)n > vb->cap) {
		vb->data[vb->len] = '\0';
		return -1;
	}
	vb->len += (size_t)n;
	return 0;
}

int
vbuf_addf(struct vbuf *vb, const char *fmt, ...)
{
	va_list ap;
	int rc;

	va_start(ap, fmt);
	rc = vbuf_vaddf(vb, fmt, ap);
	va_end(ap);
	return rc;
}

int
vbuf_setf(struct vbuf *vb, const char *fmt, ...)
{
	va_list ap;
	int rc;

	vbuf_reset(vb);
	va_start(ap, fmt);
	rc = vbuf_vaddf(vb, fmt, ap);
	va_end(ap);
	return rc;
}

void
vbuf_consume(struct vbuf *vb, size_t n)
{
	if (n >= vb->len) {
		vbuf_reset(vb);
		return;
	}
	memmove(vb->data, vb->data + n, vb->len - n);
	vb->len -= n;
	vb->data[vb->len] = '\0';
}

void
vbuf_truncate(struct vbuf *vb, size_t len)
{
	if (len < vb->len) {
		vb->len = len;
		vb->data[len] = '\0';
	}
}
