/*
 * metrics_bench.c - times what qmgr's result handling pays per recipient
 * for the counters of metricsd(8), for bench/README.md (issue 13,
 * "Metrics by credential").
 *
 * metrics_bench DIR N: maps a counter file under the empty directory DIR
 * (as qmgr does with metrics.listen set), then applies N delivered
 * results in transactions of 64 (QMGR_TXN_UPDATES), held and released
 * as qmgr_results_commit does, three ways: the event alone (what every
 * result paid before), the event and its credential's outcome
 * (metrics_credential, what it pays now) with 50 credentials, and the
 * same with 200 credentials (past the 64 slots, so most go to "other"
 * after a full probe). Prints nanoseconds per recipient for each. A
 * benchmark tool, not part of Petrel: built by `make bench-tools` into
 * build/metrics_bench.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "metrics.h"
#include "outbox.h"
#include "parse.h"
#include "vbuf.h"

#define MB_TXN	64	/* QMGR_TXN_UPDATES */

static double	mb_now(void);
static double	mb_run(uint64_t, unsigned);

static double
mb_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* N delivered results; ncreds 0: no credential counting. ns each. */
static double
mb_run(uint64_t n, unsigned ncreds)
{
	struct outbox_event ev;
	char (*creds)[32] = NULL;
	double t0;
	uint64_t i;
	unsigned k;

	if (ncreds > 0) {
		creds = calloc(ncreds, sizeof(*creds));
		if (creds == NULL)
			return -1;
		for (k = 0; k < ncreds; k++)
			snprintf(creds[k], sizeof(creds[k]), "app-%u", k);
	}
	memset(&ev, 0, sizeof(ev));
	ev.kind = OUTBOX_DELIVERED;
	ev.delay = 3;
	ev.dkim = "unsigned";
	t0 = mb_now();
	for (i = 0; i < n; i++) {
		if (i % MB_TXN == 0)
			metrics_hold();
		metrics_event(&ev);
		if (ncreds > 0)
			metrics_credential(creds[i % ncreds],
			    METRICS_O_DELIVERED, 1);
		if (i % MB_TXN == MB_TXN - 1 || i == n - 1)
			metrics_release(1);
	}
	t0 = mb_now() - t0;
	free(creds);
	return t0 * 1e9 / (double)n;
}

int
main(int argc, char *argv[])
{
	struct vbuf *why = vbuf_create(0);
	uint64_t n;

	if (argc != 3 || parse_u64(argv[2], 1, UINT64_C(1) << 40, &n) == -1) {
		fprintf(stderr, "usage: metrics_bench DIR N\n");
		return 2;
	}
	if (metrics_open(argv[1], "qmgr", why) == -1) {
		fprintf(stderr, "metrics_bench: %s\n", why->data);
		return 1;
	}
	(void)mb_run(n / 10 + 1, 50);	/* warm: slots claimed, pages in */
	printf("event only:               %.1f ns/recipient\n", mb_run(n, 0));
	printf("event + credential (50):  %.1f ns/recipient\n", mb_run(n, 50));
	printf("event + credential (200): %.1f ns/recipient\n",
	    mb_run(n, 200));
	printf("event only, again:        %.1f ns/recipient\n", mb_run(n, 0));
	vbuf_free(why);
	return 0;
}
