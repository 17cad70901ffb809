/*
 * attr.h - attribute streams: the wire format between Petrel processes.
 *
 * A record is a list of (name, value) pairs, each sent as two NUL-terminated
 * strings, ended by an empty name (Postfix's attribute streams). Requests
 * start with request=<name>, replies with status=<code>. Readers look up
 * what they need and skip the rest. Limits: names 64 bytes, values 64 KiB,
 * 1024 attributes; passing one is a protocol error. The same encoding is
 * used for LMDB record values.
 */
#ifndef PETREL_ATTR_H
#define PETREL_ATTR_H

#include <stddef.h>
#include <stdint.h>

#include "vbuf.h"

#define ATTR_NAME_MAX	64
#define ATTR_VALUE_MAX	65536
#define ATTR_COUNT_MAX	1024

struct attr {
	const char	*name;
	const char	*value;
	size_t		 value_len;
};

/* A decoded record; names and values point into the decoded buffer. */
struct attr_list {
	struct attr	*items;
	size_t		 count;
	size_t		 alloc;
};

/* Encoders append to out (which must be uncapped). */
void	attr_put_str(struct vbuf *out, const char *name, const char *value);
void	attr_put_num(struct vbuf *out, const char *name, uint64_t value);
void	attr_put_int(struct vbuf *out, const char *name, int64_t value);
void	attr_end(struct vbuf *out);

void	attr_list_init(struct attr_list *);
void	attr_list_release(struct attr_list *);

/*
 * Decodes one record from buf[0..len). Returns 1 and sets *used when a whole
 * record was decoded, 0 when more bytes are needed, -1 on a protocol error
 * (reason in why). The list points into buf, which must stay unchanged.
 */
int	attr_decode(struct attr_list *, const char *buf, size_t len,
	    size_t *used, struct vbuf *why);

/* Returns the first value of name, or NULL. */
const char *attr_get(const struct attr_list *, const char *name);
/* Parses a decimal value; -1 if missing or malformed (reason in why). */
int	attr_get_num(const struct attr_list *, const char *name,
	    uint64_t *out, struct vbuf *why);
int	attr_get_int(const struct attr_list *, const char *name,
	    int64_t *out, struct vbuf *why);
/* Like attr_get, but missing is an error with a reason. */
const char *attr_need(const struct attr_list *, const char *name,
	    struct vbuf *why);

/*
 * Blocking helpers for a descriptor with a deadline (ms from now; -1 none):
 * attr_write sends all of buf; attr_read reads into inbuf until one record
 * is decoded into list. Both return 0, or -1 with a reason (timeout, EOF,
 * protocol error). After attr_read, call vbuf_consume(inbuf, *used) once
 * the list is no longer needed.
 */
int	attr_write(int fd, const struct vbuf *buf, int timeout_ms,
	    struct vbuf *why);
int	attr_read(int fd, struct vbuf *inbuf, struct attr_list *,
	    size_t *used, int timeout_ms, struct vbuf *why);

#endif
