/*
 * bounce.c - delivery report daemon: makes the RFC 3464 reports qmgr asks
 * for.
 *
 * master runs one bounce process serving private/bounce. Each request
 * names one original message, one kind of report and its recipients; the
 * report is inserted into the queue before the reply. See bounce(8).
 */
#include <stddef.h>

#include "bounce.h"
#include "daemon.h"

int
main(int argc, char *argv[])
{
	static const struct daemon_spec spec = {
		.name = "bounce",
		.solitary = 0,
		.init = bounce_init,		/* open the queue */
		.service = bounce_service,	/* one qmgr connection */
		.loop = bounce_loop,
		.busy = bounce_busy,
	};

	daemon_main(argc, argv, &spec);
	/* NOTREACHED */
}
