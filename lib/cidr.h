/*
 * cidr.h - IPv4/IPv6 network prefixes ("192.0.2.0/24", "::1/128").
 *
 * Used by the configuration (trusted_networks) and later by per-credential
 * network lists. A bare address means a host prefix.
 */
#ifndef PETREL_CIDR_H
#define PETREL_CIDR_H

#include <sys/socket.h>

#include <stddef.h>
#include <stdint.h>

struct cidr {
	int		family;		/* AF_INET or AF_INET6 */
	uint8_t		addr[16];	/* network byte order, masked */
	unsigned	prefix;		/* 0-32 or 0-128 */
};

/* Parses s; returns 0, or -1 if malformed or the prefix is out of range. */
int	cidr_parse(const char *s, struct cidr *out);
/* Returns 1 if sa (AF_INET or AF_INET6, v4-mapped handled) is inside. */
int	cidr_match(const struct cidr *, const struct sockaddr *sa);
int	cidr_match_list(const struct cidr *, size_t n, const struct sockaddr *);

#endif
