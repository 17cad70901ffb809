/*
 * smtp.c - outbound delivery daemon: delivers what qmgr hands it.
 *
 * master runs smtp.processes copies, all serving the one socket
 * private/smtp. Each request is one message for one next hop; the reply
 * carries one result per recipient. See smtp(8).
 */
#include <stddef.h>

#include "daemon.h"
#include "smtp.h"

int
main(int argc, char *argv[])
{
	static const struct daemon_spec spec = {
		.name = "smtp",
		.solitary = 0,
		.init = smtp_init,		/* TLS client context */
		.service = smtp_service,	/* one qmgr connection */
		.loop = smtp_loop,		/* expire the cached session */
		.busy = smtp_busy,
	};

	daemon_main(argc, argv, &spec);
	/* NOTREACHED */
}
