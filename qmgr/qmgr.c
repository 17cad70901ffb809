/*
 * qmgr.c - the queue manager: schedules deliveries and owns every
 * recipient state change. main() only hands the daemon's spec to
 * daemon_main(); the callbacks live in qmgr_daemon.c. See qmgr(8).
 */
#include <stdlib.h>

#include "daemon.h"
#include "qmgr.h"

int
main(int argc, char *argv[])
{
	static const struct daemon_spec spec = {
		.name = "qmgr",
		.solitary = 1,			/* exactly one instance */
		.init = qmgr_init,		/* open LMDB, reconcile queue */
		.service = qmgr_service,	/* one request on private/qmgr */
		.loop = qmgr_loop,		/* returns ms to wait, -1 = idle */
		.busy = qmgr_busy,		/* deliveries in flight */
	};

	daemon_main(argc, argv, &spec);
	/* NOTREACHED */
}
