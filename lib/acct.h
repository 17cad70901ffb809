/*
 * acct.h - the JSON accounting log: one object per event, one line each.
 *
 * Used by smtpd (accepted) and qmgr (delivered, deferred, bounced,
 * expired). Each line is the event struct that went into the outbox
 * (lib/outbox), rendered by outbox_json and written with one write(2) to a
 * file opened O_APPEND, so concurrent writers never interleave and the log
 * says what the outbox says. Fields are documented in smtpd(8) (accepted)
 * and qmgr(8) (the others).
 */
#ifndef PETREL_ACCT_H
#define PETREL_ACCT_H

#include <stdint.h>

#include "outbox.h"

/* Opens the log (path NULL: accounting off). Returns 0 or -1 (errno). */
int	acct_open(const char *path);
/*
 * Opens the path given to acct_open() again, for log rotation (SIGUSR2,
 * daemon.c): the new file takes the next event. If it cannot be opened the
 * old descriptor stays in use, so nothing is lost; returns -1 (errno) then.
 * A no-op returning 0 when accounting is off.
 */
int	acct_reopen(void);
int	acct_enabled(void);
/*
 * Appends the event as one line (or, while held, keeps it); logs a
 * warning on error. Call it only for an event whose transaction has
 * committed, or while held.
 */
void	acct_event(const struct outbox_event *);

/*
 * Holds events back until the transaction they describe has committed:
 * acct_release(1) writes them all in one write(2), acct_release(0) drops
 * them.
 */
void	acct_hold(void);
void	acct_release(int commit);

#endif
