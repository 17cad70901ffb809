/*
 * utf8.h - UTF-8 checks for internationalised mail (RFC 6531, RFC 6532):
 * whether text needs SMTPUTF8 to travel, and whether it is well-formed.
 */
#ifndef PETREL_UTF8_H
#define PETREL_UTF8_H

#include <stddef.h>

/* 1 if s holds a byte over 0x7f. */
int	utf8_has_8bit(const char *s);

/*
 * 1 if s[0..len) is well-formed UTF-8 (RFC 3629: no overlong forms, no
 * surrogates, nothing past U+10FFFF).
 */
int	utf8_valid(const char *s, size_t len);

#endif
