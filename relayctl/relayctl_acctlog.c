/*
 * relayctl_acctlog.c - reading the tail of the JSON accounting log, for
 * relayctl status when there is no delivery log (relayctl(8)).
 *
 * Its own file because it parses with jansson, whose names (json_null)
 * clash with lib/json's writer that the rest of relayctl uses.
 */
#include <sys/types.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "relayctl.h"

int
relayctl_acct_tail(const char *path, size_t tail, relayctl_acct_cb *cb,
    void *arg, int *partial)
{
	char *line = NULL;
	size_t cap = 0;
	ssize_t n;
	struct tm tm;
	FILE *f;
	off_t size;
	int skip = 0;

	if ((f = fopen(path, "re")) == NULL)
		return -1;
	if (fseeko(f, 0, SEEK_END) == 0 && (size = ftello(f)) != -1 &&
	    (uint64_t)size > tail) {
		(void)fseeko(f, size - (off_t)tail, SEEK_SET);
		*partial = 1;
		skip = 1;	/* the first line is a piece of one */
	} else
		(void)fseeko(f, 0, SEEK_SET);
	while ((n = getline(&line, &cap, f)) > 0) {
		json_t *o, *ev, *t, *rc;
		const char *ts;

		if (skip) {
			skip = 0;
			continue;
		}
		if (n > RELAYCTL_ACCT_LINE_MAX)
			continue;
		if ((o = json_loadb(line, (size_t)n, 0, NULL)) == NULL)
			continue;
		ev = json_object_get(o, "event");
		t = json_object_get(o, "time");
		rc = json_object_get(o, "recipient");
		memset(&tm, 0, sizeof(tm));
		/* "2026-12-05T14:02:00.123Z": UTC, milliseconds dropped. */
		if (json_is_string(ev) && json_is_string(t) &&
		    (ts = json_string_value(t)) != NULL &&
		    strptime(ts, "%Y-%m-%dT%H:%M:%S", &tm) != NULL)
			cb(json_string_value(ev), (int64_t)timegm(&tm),
			    json_is_string(rc) ? json_string_value(rc) : NULL,
			    arg);
		json_decref(o);
	}
	free(line);
	(void)fclose(f);
	return 0;
}
