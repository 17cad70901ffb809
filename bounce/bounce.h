/*
 * bounce.h - private interfaces of the delivery report daemon bounce(8).
 *
 * bounce serves report requests from qmgr on private/bounce, one
 * connection at a time and synchronously: for one original message and
 * one kind of report (failed, delayed, relayed) it reads the original's
 * queue file, composes an RFC 3464 delivery status notification and
 * inserts it into the queue as a new message from the null sender to the
 * original sender; it replies only after that commit. It never changes
 * the original's records (qmgr does). Declarations are grouped by the file
 * that implements them; the protocol and the report's shape are
 * documented in bounce(8).
 */
#ifndef PETREL_BOUNCE_H
#define PETREL_BOUNCE_H

#include <stddef.h>
#include <stdint.h>

#include "cfg.h"
#include "daemon.h"
#include "qid.h"
#include "qstore.h"
#include "vbuf.h"

#define BOUNCE_REQ_CAP		(4 * 1024 * 1024)	/* request bytes */
#define BOUNCE_REQ_IDLE_MS	60000	/* idle qmgr connection is closed */
#define BOUNCE_IO_TIMEOUT_MS	60000	/* one request or reply */
#define BOUNCE_REPLY_MAX	2000	/* reply text kept per recipient */
#define BOUNCE_HDRS_MAX		(256 * 1024)	/* original headers copied */
#define BOUNCE_LINE_MAX		998	/* RFC 5322 2.1.1, without CRLF */
#define BOUNCE_HOST_MAX		255	/* RFC 1035 name length */
#define BOUNCE_FOLD_AT		78	/* RFC 5322 2.1.1's SHOULD */

/* One recipient of a report, as qmgr listed it (strings borrowed). */
struct bounce_rcpt {
	uint32_t	 index;		/* in the original's envelope */
	const char	*addr;
	const char	*dsn;		/* X.Y.Z */
	const char	*reply;		/* remote reply or local reason */
	const char	*class;		/* bounce class, NULL or "" none */
	const char	*relay;		/* host[addr]:port, NULL/"none" */
	int64_t		 time;		/* last attempt, epoch s; 0 unknown */
	int64_t		 until;		/* delayed: Will-Retry-Until, or 0 */
};

/*
 * What a report is made of. qf is the original's open queue file, or NULL
 * when it is missing or unreadable: the report is then made from what qmgr
 * and the index said, without the original (and says so).
 */
struct bounce_report {
	enum qstore_report		 kind;
	const char			*qid;	/* the original's */
	const char			*sender; /* the report's recipient */
	int64_t				 arrival; /* epoch s; 0 unknown */
	struct qstore_file		*qf;	/* or NULL */
	const struct bounce_rcpt	*rcpts;
	size_t				 nrcpts;
	const char			*myhostname;
	uint64_t			 size_limit; /* bounce.size_limit */
	int64_t				 now;	/* epoch s: Date */
	const char			*msgid;	/* Message-ID, no <> */
	const char			*boundary;
};

/* bounce_dsn.c */
/*
 * Appends the whole report (header and MIME body, CRLF line ends, every
 * line at most BOUNCE_LINE_MAX octets) to out. Returns 0, or -1 with a
 * reason in why when the original could not be read (out then holds
 * nothing usable; the caller retries without qf).
 */
int		 bounce_dsn_compose(const struct bounce_report *,
		    struct vbuf *out, struct vbuf *why);
/* The Subject, and the log line's words, of a kind of report. */
const char	*bounce_dsn_subject(enum qstore_report);
const char	*bounce_dsn_logname(enum qstore_report);
/* The report kind a request names ("failed", ...); QSTORE_REPORT_NONE. */
enum qstore_report bounce_dsn_kind(const char *);
/* An RFC 5322 date-time for t (UTC), into buf; returns buf. */
const char	*bounce_dsn_date(char *buf, size_t size, int64_t t);

/* bounce_service.c */
void		 bounce_init(const struct cfg *);
void		 bounce_service(const struct daemon_listener *);
int64_t		 bounce_loop(void);
int		 bounce_busy(void);

/* One parsed request (strings point into the decoded record). */
struct bounce_req {
	char			 qid[QID_SIZE];
	enum qstore_report	 kind;
	struct bounce_rcpt	*rcpts;
	size_t			 nrcpts;
};

/*
 * Makes the report a request asks for and commits it to the queue.
 * Returns 1 with the report's queue id in dsn_id; 0 when no report is due
 * (the reason in why: null sender, NOTIFY, reports turned off); -1 when
 * it could not be committed (reason in why; qmgr asks again later).
 */
int		 bounce_make(struct qstore *, const struct cfg *,
		    const struct bounce_req *, char dsn_id[QID_SIZE],
		    struct vbuf *why);
/*
 * Parses and validates one request record (attr_scan); 0, or -1 with a
 * reason. req->rcpts is allocated; the caller frees it.
 */
struct attr_list;
int		 bounce_parse(const struct attr_list *, struct bounce_req *,
		    struct vbuf *why);

#endif
