/*
 * fuzz_dns_answer.c - libFuzzer target for smtp's DNS answer parsers
 * (smtp/smtp_dns.c): MX records and A/AAAA records, as a resolver relays
 * whatever anyone publishes.
 *
 * The input is a DNS message. Checked: at most the room given is used;
 * each MX host is a bounded string without a trailing dot, and OK comes
 * with at least one record, anything else with none and a reason; each
 * address target holds the family its record type says, an address that
 * inet_pton reads back the same, the host and port asked for. Broken
 * invariants abort through ASSERT. Built and run by `make fuzz`; see
 * tests/fuzz/README.md.
 */
#include <sys/socket.h>

#include <arpa/inet.h>
#include <arpa/nameser.h>
#include <netinet/in.h>

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "log.h"
#include "smtp.h"
#include "vbuf.h"

#define FUZZ_MAX	8

int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);

static void	fuzz_addrs(const uint8_t *, size_t, int);

static void
fuzz_addrs(const uint8_t *data, size_t len, int type)
{
	struct smtp_target t[FUZZ_MAX];
	unsigned char bin[16];
	size_t n = 0;

	if (smtp_dns_parse_addrs(data, len, type, "mx.example", 25, t,
	    FUZZ_MAX, &n) == -1) {
		ASSERT(n == 0);
		return;
	}
	ASSERT(n <= FUZZ_MAX);
	for (size_t i = 0; i < n; i++) {
		int af = type == ns_t_a ? AF_INET : AF_INET6;

		ASSERT(t[i].ss.ss_family == af);
		ASSERT(t[i].port == 25);
		ASSERT(strcmp(t[i].host, "mx.example") == 0);
		ASSERT(inet_pton(af, t[i].ip, bin) == 1);
		if (af == AF_INET)
			ASSERT(memcmp(bin, &((struct sockaddr_in *)
			    &t[i].ss)->sin_addr, 4) == 0);
		else
			ASSERT(memcmp(bin, &((struct sockaddr_in6 *)
			    &t[i].ss)->sin6_addr, 16) == 0);
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t len)
{
	struct smtp_mx mx[FUZZ_MAX];
	struct vbuf *why = vbuf_create(0);
	size_t n = 99;
	int st;

	st = smtp_dns_parse_mx(data, len, mx, FUZZ_MAX, &n, why);
	ASSERT(n <= FUZZ_MAX);
	if (st == SMTP_DNS_OK)
		ASSERT(n > 0);
	else
		ASSERT(n == 0 && why->len > 0);
	for (size_t i = 0; i < n; i++) {
		size_t hl = strnlen(mx[i].host, sizeof(mx[i].host));

		ASSERT(hl < sizeof(mx[i].host) && hl <= SMTP_HOST_MAX);
		ASSERT(hl == 0 || mx[i].host[hl - 1] != '.');
	}
	fuzz_addrs(data, len, ns_t_a);
	fuzz_addrs(data, len, ns_t_aaaa);
	vbuf_free(why);
	return 0;
}
