/*
 * cidr.c - IPv4/IPv6 network prefixes (see cidr.h).
 *
 * Used by smtpd through the configuration (trusted_networks). Addresses are
 * parsed with inet_pton only, so "10.1", octal or hex forms are rejected;
 * the stored address is masked to its prefix. A client that reaches an
 * IPv6 socket from IPv4 shows up as ::ffff:a.b.c.d and is compared with
 * IPv4 prefixes as the IPv4 address it is.
 */
#include <sys/socket.h>
#include <netinet/in.h>
#include <arpa/inet.h>

#include <string.h>

#include "cidr.h"
#include "parse.h"

static void	cidr_mask(uint8_t *, size_t, unsigned);
static int	cidr_prefix_eq(const uint8_t *, const uint8_t *, unsigned);
static int	cidr_client(const struct sockaddr *, int *, uint8_t *);

static const uint8_t v4mapped[12] = {
	0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff
};

/* Clears every bit after the first prefix bits of addr (len bytes). */
static void
cidr_mask(uint8_t *addr, size_t len, unsigned prefix)
{
	size_t i;

	for (i = 0; i < len; i++) {
		if (prefix >= 8)
			prefix -= 8;
		else {
			addr[i] &= (uint8_t)(0xff << (8 - prefix));
			prefix = 0;
		}
	}
}

/* Returns 1 if the first prefix bits of a and b are equal. */
static int
cidr_prefix_eq(const uint8_t *a, const uint8_t *b, unsigned prefix)
{
	unsigned whole = prefix / 8, rest = prefix % 8;
	uint8_t m;

	if (memcmp(a, b, whole) != 0)
		return 0;
	if (rest == 0)
		return 1;
	m = (uint8_t)(0xff << (8 - rest));
	return (a[whole] & m) == (b[whole] & m);
}

int
cidr_parse(const char *s, struct cidr *out)
{
	char addr[INET6_ADDRSTRLEN + 1];
	const char *slash;
	struct cidr c;
	uint64_t prefix;
	size_t len, maxbits;

	if (s == NULL || out == NULL)
		return -1;
	slash = strchr(s, '/');
	len = slash == NULL ? strlen(s) : (size_t)(slash - s);
	if (len == 0 || len >= sizeof(addr))
		return -1;
	memcpy(addr, s, len);
	addr[len] = '\0';

	memset(&c, 0, sizeof(c));
	if (strchr(addr, ':') != NULL) {
		c.family = AF_INET6;
		maxbits = 128;
	} else {
		c.family = AF_INET;
		maxbits = 32;
	}
	if (inet_pton(c.family, addr, c.addr) != 1)
		return -1;
	if (slash == NULL)
		prefix = maxbits;
	else if (parse_u64(slash + 1, 0, maxbits, &prefix) == -1 ||
	    strlen(slash + 1) > 3)
		return -1;
	c.prefix = (unsigned)prefix;
	cidr_mask(c.addr, maxbits / 8, c.prefix);
	*out = c;
	return 0;
}

/*
 * Extracts the client's family and address bytes from sa, turning an
 * IPv4-mapped IPv6 address into the IPv4 address it carries.
 */
static int
cidr_client(const struct sockaddr *sa, int *family, uint8_t *addr)
{
	const struct sockaddr_in *sin;
	const struct sockaddr_in6 *sin6;

	if (sa == NULL)
		return -1;
	switch (sa->sa_family) {
	case AF_INET:
		sin = (const struct sockaddr_in *)(const void *)sa;
		*family = AF_INET;
		memcpy(addr, &sin->sin_addr, 4);
		return 0;
	case AF_INET6:
		sin6 = (const struct sockaddr_in6 *)(const void *)sa;
		if (memcmp(sin6->sin6_addr.s6_addr, v4mapped,
		    sizeof(v4mapped)) == 0) {
			*family = AF_INET;
			memcpy(addr, sin6->sin6_addr.s6_addr + 12, 4);
		} else {
			*family = AF_INET6;
			memcpy(addr, sin6->sin6_addr.s6_addr, 16);
		}
		return 0;
	default:
		return -1;
	}
}

int
cidr_match(const struct cidr *c, const struct sockaddr *sa)
{
	uint8_t addr[16], mapped[16];
	int family;

	if (c == NULL || cidr_client(sa, &family, addr) == -1)
		return 0;
	if (family == c->family)
		return cidr_prefix_eq(addr, c->addr, c->prefix);
	/*
	 * An IPv4 client against a prefix inside ::ffff:0:0/96, such as
	 * ::ffff:10.0.0.0/104; a wider one (::/0) means IPv6 clients only.
	 */
	if (family == AF_INET && c->family == AF_INET6 && c->prefix >= 96 &&
	    memcmp(c->addr, v4mapped, sizeof(v4mapped)) == 0) {
		memcpy(mapped, v4mapped, sizeof(v4mapped));
		memcpy(mapped + 12, addr, 4);
		return cidr_prefix_eq(mapped, c->addr, c->prefix);
	}
	return 0;
}

int
cidr_match_list(const struct cidr *list, size_t n, const struct sockaddr *sa)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (cidr_match(&list[i], sa))
			return 1;
	return 0;
}
