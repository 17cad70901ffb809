/*
 * privsep.c - becoming mail_owner, and the queue tree it owns (see
 * privsep.h).
 */
#include <sys/types.h>
#include <sys/stat.h>

#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <string.h>
#include <unistd.h>

#include "privsep.h"
#include "qstore.h"

int
privsep_owner_ids(const struct cfg *cfg, uid_t *uid, gid_t *gid,
    struct vbuf *why)
{
	struct passwd *pw;

	if (geteuid() != 0) {
		*uid = geteuid();
		*gid = getegid();
		return 0;
	}
	errno = 0;
	if ((pw = getpwnam(cfg->mail_owner)) == NULL) {
		vbuf_setf(why, "mail_owner %s: %s", cfg->mail_owner,
		    errno != 0 ? strerror(errno) : "no such user");
		return -1;
	}
	if (pw->pw_uid == 0) {
		vbuf_setf(why, "mail_owner %s: must not be root",
		    cfg->mail_owner);
		return -1;
	}
	*uid = pw->pw_uid;
	*gid = pw->pw_gid;
	return 0;
}

int
privsep_queue_dirs(const struct cfg *cfg, struct vbuf *why)
{
	struct stat st;
	uid_t uid;
	gid_t gid;

	if (geteuid() != 0 && stat(cfg->queue_directory, &st) == 0)
		return 0;
	if (privsep_owner_ids(cfg, &uid, &gid, why) == -1)
		return -1;
	return qstore_create_dirs(cfg->queue_directory, uid, gid, why);
}

int
privsep_become_owner(const struct cfg *cfg, struct vbuf *why)
{
	uid_t uid;
	gid_t gid;

	/* 1. The queue tree, which a fresh installation does not have. */
	if (privsep_queue_dirs(cfg, why) == -1)
		return -1;
	if (geteuid() != 0)
		return 0;
	/* 2. mail_owner, for good. */
	if (privsep_owner_ids(cfg, &uid, &gid, why) == -1)
		return -1;
	if (initgroups(cfg->mail_owner, gid) == -1 ||
	    setresgid(gid, gid, gid) == -1 ||
	    setresuid(uid, uid, uid) == -1) {
		vbuf_setf(why, "switch to mail_owner %s: %s", cfg->mail_owner,
		    strerror(errno));
		return -1;
	}
	if (setuid(0) != -1 || geteuid() != uid || getegid() != gid) {
		vbuf_setf(why, "switch to mail_owner %s: privileges still "
		    "held", cfg->mail_owner);
		return -1;
	}
	return 0;
}
