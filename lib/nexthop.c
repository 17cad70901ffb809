/*
 * nexthop.c - next hops: from a recipient domain and the transport table
 * to a canonical key, and back (see nexthop.h).
 */
#include <sys/socket.h>

#include <arpa/inet.h>
#include <netinet/in.h>

#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "log.h"
#include "nexthop.h"
#include "parse.h"

static int	nexthop_is_ip(const char *);
static int	nexthop_host_chars_ok(const char *);

static int
nexthop_is_ip(const char *s)
{
	unsigned char buf[sizeof(struct in6_addr)];

	return inet_pton(AF_INET, s, buf) == 1 ||
	    inet_pton(AF_INET6, s, buf) == 1;
}

/* No controls, spaces or delimiters that would make the key ambiguous. */
static int
nexthop_host_chars_ok(const char *s)
{
	for (; *s != '\0'; s++)
		if ((unsigned char)*s <= ' ' || *s == 0x7f || *s == '[' ||
		    *s == ']' || *s == '/' || *s == '\\')
			return 0;
	return 1;
}

int
nexthop_format(const struct nexthop *nh, char *key, size_t size)
{
	int n;

	if (nh->no_mx)
		n = snprintf(key, size, "[%s]:%u", nh->host,
		    (unsigned)nh->port);
	else
		n = snprintf(key, size, "%s:%u", nh->host, (unsigned)nh->port);
	return n < 0 || (size_t)n >= size ? -1 : 0;
}

int
nexthop_key(const char *domain, const struct nexthop *via, char *key,
    size_t size)
{
	struct nexthop nh;
	size_t len = strlen(domain), i, skip;

	if (size > 0)
		key[0] = '\0';
	if (len == 0 || len > NEXTHOP_HOST_MAX)
		return -1;
	memset(&nh, 0, sizeof(nh));
	nh.port = NEXTHOP_PORT_DEFAULT;
	if (via != NULL) {
		nh = *via;
		if (nh.port == 0)
			nh.port = NEXTHOP_PORT_DEFAULT;
	} else if (domain[0] == '[' && len >= 2 && domain[len - 1] == ']') {
		/* An address literal (RFC 5321 4.1.3) is not looked up. */
		skip = strncasecmp(domain + 1, "IPv6:", 5) == 0 ? 6 : 1;
		if (len < skip + 1)
			return -1;
		memcpy(nh.host, domain + skip, len - skip - 1);
		nh.host[len - skip - 1] = '\0';
		nh.no_mx = 1;
	} else
		memcpy(nh.host, domain, len + 1);
	for (i = 0; nh.host[i] != '\0'; i++)
		nh.host[i] = (char)tolower((unsigned char)nh.host[i]);
	if (nexthop_is_ip(nh.host))
		nh.no_mx = 1;
	return nexthop_format(&nh, key, size);
}

int
nexthop_parse(const char *s, struct nexthop *nh, struct vbuf *why)
{
	const char *end, *rest;
	uint64_t n = NEXTHOP_PORT_DEFAULT;
	size_t len;

	memset(nh, 0, sizeof(*nh));
	if (s[0] == '[') {
		if ((end = strchr(s, ']')) == NULL) {
			vbuf_setf(why, "\"%s\": missing ]", log_safe(s));
			return -1;
		}
		s++;
		len = (size_t)(end - s);
		rest = end + 1;
		nh->no_mx = 1;
	} else {
		end = strchr(s, ':');
		len = end == NULL ? strlen(s) : (size_t)(end - s);
		rest = s + len;
		if (end != NULL && strchr(end + 1, ':') != NULL) {
			vbuf_setf(why, "\"%s\": an IPv6 address needs "
			    "brackets, [IPv6]:port", log_safe(s));
			return -1;
		}
	}
	if (len == 0 || len >= sizeof(nh->host)) {
		vbuf_setf(why, "\"%s\": bad host", log_safe(s));
		return -1;
	}
	memcpy(nh->host, s, len);
	nh->host[len] = '\0';
	if (!nexthop_host_chars_ok(nh->host)) {
		vbuf_setf(why, "\"%s\" is not a host name or address",
		    log_safe(nh->host));
		return -1;
	}
	if (*rest == ':') {
		if (strlen(rest + 1) > 5 ||
		    parse_u64(rest + 1, 1, 65535, &n) == -1) {
			vbuf_setf(why, "\"%s\": the port must be 1 to "
			    "65535", log_safe(rest + 1));
			return -1;
		}
	} else if (*rest != '\0') {
		vbuf_setf(why, "\"%s\": expected [host]:port or host:port",
		    log_safe(rest));
		return -1;
	}
	nh->port = (uint16_t)n;
	return 0;
}
