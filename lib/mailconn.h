/*
 * mailconn.h - the one way to connect to a Petrel service socket.
 *
 * Every service that is not a network listener serves a UNIX stream
 * socket <queue_directory>/private/<name> (qmgr, smtp; names in
 * mailproto.h), created by master(8) with mode 0600 for mail_owner.
 * Clients (smtpd's trigger, qmgr's delivery connections, relayq -f) all
 * come through here, as Postfix's mail_connect() does. The function keeps
 * Postfix's name, mail_connect, rather than the module prefix: it is the
 * one call in the module and the name readers of Postfix know.
 */
#ifndef PETREL_MAILCONN_H
#define PETREL_MAILCONN_H

#include "vbuf.h"

/*
 * Connects to <queue_dir>/private/<name>. Returns a connected stream
 * socket, non-blocking and close-on-exec, owned by the caller; or -1 with
 * "connect to PATH: reason" in why (a path too long for a socket, no
 * server listening, or a full listen backlog: a local connect never
 * waits).
 */
int	mail_connect(const char *queue_dir, const char *name,
	    struct vbuf *why);

#endif
