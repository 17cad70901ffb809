/*
 * supplookup.c - times lib/suppress's RCPT check against a large list,
 * for bench/README.md (issue 9, "Suppression list lookup").
 *
 * supplookup DIR N K: fills a suppression list under the empty directory
 * DIR with N generated addresses in one batch (as relayctl suppression
 * import does), then times K suppress_check calls that miss (an address
 * not on the list, the common case at RCPT) and K that hit, the way smtpd
 * calls it, and prints the mean nanoseconds per call. A benchmark tool,
 * not part of Petrel: built by `make bench-tools` into build/supplookup.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cfg.h"
#include "parse.h"
#include "suppress.h"
#include "vbuf.h"

static double	supplookup_now(void);
static void	supplookup_addr(char *, size_t, uint64_t);

static double
supplookup_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void
supplookup_addr(char *buf, size_t size, uint64_t i)
{
	snprintf(buf, size, "user%07llu@d%llu.suppressed.example",
	    (unsigned long long)i, (unsigned long long)(i % 997));
}

int
main(int argc, char *argv[])
{
	struct suppress_entry e;
	struct suppress *s, *ro;
	struct vbuf why;
	struct cfg cfg;
	uint64_t n, k, i, found = 0;
	char addr[128];
	double t0, miss, hit;
	int64_t now = (int64_t)time(NULL);

	if (argc != 4 || parse_u64(argv[2], 1, 100000000, &n) == -1 ||
	    parse_u64(argv[3], 1, 100000000, &k) == -1) {
		fprintf(stderr, "usage: supplookup DIR N K\n");
		return 2;
	}
	memset(&cfg, 0, sizeof(cfg));
	cfg.queue_directory = argv[1];
	cfg.suppression_map_size = 1024ULL * 1024 * 1024;
	vbuf_init(&why, 0);
	if ((s = suppress_open(&cfg, 1, &why)) == NULL ||
	    suppress_batch_begin(s, &why) == -1)
		goto fail;
	t0 = supplookup_now();
	for (i = 0; i < n; i++) {
		memset(&e, 0, sizeof(e));
		supplookup_addr(e.address, sizeof(e.address), i);
		e.reason = SUPPRESS_HARD_BOUNCE;
		if (suppress_batch_add(s, &e, &why) == -1)
			goto fail;
	}
	if (suppress_batch_commit(s, &why) == -1)
		goto fail;
	printf("added %llu in %.2f s\n", (unsigned long long)n,
	    supplookup_now() - t0);
	suppress_close(s);
	/* Read-only, as smtpd opens it. */
	if ((ro = suppress_open(&cfg, 0, &why)) == NULL)
		goto fail;
	t0 = supplookup_now();
	for (i = 0; i < k; i++) {
		/* Same shape, not on the list: the walk goes all the way. */
		snprintf(addr, sizeof(addr), "rcpt%07llu@example.com",
		    (unsigned long long)(i % 1000000));
		found += suppress_check(ro, addr, "example.com", now, NULL,
		    &why) == 1;
	}
	miss = (supplookup_now() - t0) / k * 1e9;
	t0 = supplookup_now();
	for (i = 0; i < k; i++) {
		supplookup_addr(addr, sizeof(addr), (i * 7919) % n);
		found += suppress_check(ro, addr, "example.com", now, &e,
		    &why) == 1;
	}
	hit = (supplookup_now() - t0) / k * 1e9;
	suppress_close(ro);
	printf("list %llu: miss %.0f ns/check, hit %.0f ns/check (%llu "
	    "found of %llu hits)\n", (unsigned long long)n, miss, hit,
	    (unsigned long long)found, (unsigned long long)k);
	vbuf_release(&why);
	return found == k ? 0 : 1;
fail:
	fprintf(stderr, "supplookup: %s\n", why.data);
	return 1;
}
