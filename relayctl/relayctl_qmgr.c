/*
 * relayctl_qmgr.c - the listings relayctl asks qmgr for: "shaping show"
 * (relayctl_shaping.c) and "sources show" (relayctl_sources.c).
 *
 * What they show lives only in qmgr's memory, so the one source is a
 * request on private/qmgr, answered by a record per row and then a status
 * record with the count (lib/mailproto.h; qmgr(8), THE QMGR SOCKET). The
 * socket is mail_owner's (0600): the caller has become mail_owner.
 */
#include <inttypes.h>
#include <stdio.h>
#include <unistd.h>

#include "attr.h"
#include "mailconn.h"
#include "mailproto.h"
#include "relayctl.h"
#include "vbuf.h"

/* The whole exchange with qmgr, which answers from memory at once. */
#define RQ_TIMEOUT_MS		10000
/* One record is small; a status record may carry a reason. */
#define RQ_IN_MAX		(2 * ATTR_VALUE_MAX)

int
relayctl_qmgr_list(const struct cfg *cfg, const char *what,
    const struct vbuf *req, relayctl_qmgr_record_fn *record, void *arg)
{
	struct vbuf *in, *why;
	struct attr_list l;
	const char *reason = "no reason given";
	uint64_t status = MAIL_STAT_FAIL, count = 0, n = 0;
	size_t used;
	int fd, rc = RELAYCTL_EXIT_FAIL;
	const struct attr_spec spec[] = {
		ATTR_UINT(MAIL_ATTR_STATUS, ATTR_F_REQUIRED, 0, UINT32_MAX,
		    &status),
		ATTR_STR(MAIL_ATTR_REASON, 0, 0, ATTR_VALUE_MAX, &reason),
		ATTR_UINT(MAIL_ATTR_COUNT, 0, 0, UINT64_MAX, &count),
		ATTR_TABLE_END
	};

	why = vbuf_create(0);
	if ((fd = mail_connect(cfg->queue_directory, MAIL_SOCK_QMGR,
	    why)) == -1) {
		fprintf(stderr, "relayctl: cannot reach qmgr: %s (is Petrel "
		    "running?)\n", why->data);
		vbuf_free(why);
		return RELAYCTL_EXIT_FAIL;
	}
	in = vbuf_create(RQ_IN_MAX);
	attr_list_init(&l);
	if (attr_write(fd, req, RQ_TIMEOUT_MS, why) == -1) {
		fprintf(stderr, "relayctl: %s request to qmgr: %s\n", what,
		    why->data);
		goto out;
	}
	/* Row records until the status record. */
	for (;;) {
		if (attr_read(fd, in, &l, &used, RQ_TIMEOUT_MS, why) == -1) {
			fprintf(stderr, "relayctl: %s reply from qmgr: %s\n",
			    what, why->data);
			goto out;
		}
		if (attr_get(&l, MAIL_ATTR_STATUS) != NULL)
			break;
		if (record(&l, arg, why) == -1) {
			fprintf(stderr, "relayctl: %s reply from qmgr: %s\n",
			    what, why->data);
			goto out;
		}
		n++;
		vbuf_consume(in, used);
	}
	if (attr_scan(&l, spec, why) == -1)
		fprintf(stderr, "relayctl: %s reply from qmgr: %s\n", what,
		    why->data);
	else if (status != MAIL_STAT_OK)
		fprintf(stderr, "relayctl: %s show failed: %s\n", what,
		    reason);
	else if (count != n)
		fprintf(stderr, "relayctl: %s reply from qmgr: %" PRIu64
		    " record(s) for a count of %" PRIu64 "\n", what, n, count);
	else
		rc = RELAYCTL_EXIT_OK;
out:
	attr_list_release(&l);
	vbuf_free(in);
	vbuf_free(why);
	close(fd);
	return rc;
}
