/*
 * qid.h - queue ids: unique, sortable by arrival, safe as file names.
 *
 * A queue id is 16 upper-case hex digits: 8 of the arrival second, 5 of the
 * microsecond, 1 that is the same for every id of one process (the low
 * bits of its pid), 2 random. qid_ok() is checked on every id received from a
 * peer before it becomes part of a path.
 */
#ifndef PETREL_QID_H
#define PETREL_QID_H

#include <stdint.h>

#define QID_LEN		16
#define QID_SIZE	(QID_LEN + 1)

/* Fills buf (QID_SIZE bytes) with a new id; returns arrival in *sec, *usec. */
void	qid_new(char buf[QID_SIZE], int64_t *sec, int32_t *usec);
/* The digit every id of this process has (an upper-case hex character). */
char	qid_proc_digit(void);
/* Returns 1 if s is a well-formed queue id. */
int	qid_ok(const char *s);

#endif
