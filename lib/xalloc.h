/*
 * xalloc.h - allocation that never returns NULL.
 *
 * Used by every program: on failure these log fatal and exit, as Postfix's
 * mymalloc does. Size arithmetic is overflow-checked.
 */
#ifndef PETREL_XALLOC_H
#define PETREL_XALLOC_H

#include <stddef.h>

void	*xmalloc(size_t);
void	*xcalloc(size_t, size_t);
void	*xreallocarray(void *, size_t, size_t);
char	*xstrdup(const char *);
char	*xstrndup(const char *, size_t);
/* Wipes len bytes of p with OPENSSL_cleanse() and frees it; p may be NULL. */
void	 xfree_secret(void *p, size_t len);

#endif
