/*
 * privsep.h - becoming mail_owner, and the queue directory it owns, for
 * master and the command-line tools.
 *
 * relayctl and relayq, when run as root, switch to mail_owner before they
 * open the queue or credential databases, so every file stays owned by it
 * (STYLE.md: CLIs connect after switching to mail_owner). On a fresh
 * installation the queue directory does not exist until something makes
 * it: master at start, or the first CLI run, both through
 * privsep_queue_dirs() so the tree has one owner and one set of modes.
 */
#ifndef PETREL_PRIVSEP_H
#define PETREL_PRIVSEP_H

#include <sys/types.h>

#include "cfg.h"
#include "vbuf.h"

/*
 * Who owns the queue and runs the daemons: as root, cfg->mail_owner's uid
 * and primary gid (which must not be uid 0); otherwise the caller's
 * effective ids. Returns 0, or -1 with the reason in why.
 */
int	privsep_owner_ids(const struct cfg *, uid_t *, gid_t *,
	    struct vbuf *why);
/*
 * Creates the queue directory tree as master does (qstore_create_dirs:
 * the top 0755, every subdirectory 0700, all owned by the ids above).
 * As root it always runs (existing parts are fixed up, as at each master
 * start); as another user only when queue_directory does not exist yet,
 * so a user who may only read an existing queue gets the error of what
 * it tried, not a chown failure. Returns 0, or -1 with the reason in why.
 */
int	privsep_queue_dirs(const struct cfg *, struct vbuf *why);
/*
 * privsep_queue_dirs(), then as root: supplementary groups, gid, uid of
 * cfg->mail_owner, and a check that none of it can be undone. As another
 * user nothing more. Returns 0, or -1 with the reason in why.
 */
int	privsep_become_owner(const struct cfg *, struct vbuf *why);

#endif
