/*
 * privsep.h - becoming mail_owner, for the command-line tools.
 *
 * relayctl and relayq, when run as root, switch to mail_owner before they
 * open the queue or credential databases, so every file stays owned by it
 * (STYLE.md: CLIs connect after switching to mail_owner).
 */
#ifndef PETREL_PRIVSEP_H
#define PETREL_PRIVSEP_H

#include "cfg.h"
#include "vbuf.h"

/*
 * As root: supplementary groups, gid, uid of cfg->mail_owner, then a check
 * that none of it can be undone. As another user: nothing. Returns 0, or
 * -1 with the reason in why.
 */
int	privsep_become_owner(const struct cfg *, struct vbuf *why);

#endif
