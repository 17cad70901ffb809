/*
 * acct.h - the JSON accounting log: one object per event, one line each.
 *
 * Used by smtpd (accepted) and qmgr (delivered, deferred, bounced). Each
 * line is built with lib/json and written with one write(2) to a file opened
 * O_APPEND, so concurrent writers never interleave. Fields are documented in
 * smtpd(8) (accepted) and qmgr(8) (delivered, deferred, bounced).
 */
#ifndef PETREL_ACCT_H
#define PETREL_ACCT_H

#include <stdint.h>

#include "json.h"

/* Opens the log (path NULL: accounting off). Returns 0 or -1 (errno). */
int	acct_open(const char *path);
int	acct_enabled(void);
/*
 * Starts an event object with "time" (RFC 3339 UTC with ms), "event" and
 * "queue_id"; the caller adds fields with json_kv_* and calls acct_emit.
 */
void	acct_begin(struct json *, const char *event, const char *qid);
/* Closes the object and appends it as one line; logs a warning on error. */
void	acct_emit(struct json *);

/*
 * Holds events back until the transaction they describe has committed:
 * acct_release(1) writes them all in one write(2), acct_release(0) drops
 * them.
 */
void	acct_hold(void);
void	acct_release(int commit);

#endif
