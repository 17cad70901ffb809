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
 * Declarative reading (Postfix's attr_scan): a table names each attribute
 * the reader wants, its type, its bounds, whether it is required and where
 * its value goes, and ends with ATTR_T_END. attr_scan walks the record
 * once against it:
 * - attributes the table does not name are skipped, so protocols can grow;
 * - a required attribute that is missing, a duplicate, a number that does
 *   not parse or is out of [min, max], a string shorter than min or longer
 *   than max bytes, is an error with the reason in why;
 * - optional attributes that are absent leave their destination as it was
 *   (the caller sets the default first).
 * Strings point into the decoded record (see attr_decode).
 *
 * A group (ATTR_T_GROUP) is a repeated run of attributes, such as one
 * recipient of a delivery request: it starts at each occurrence of its
 * name, which is also the name of the first entry of its own table, and
 * holds the attributes of that table that follow, up to the next start.
 * Each run is scanned against the group's table (optional members that
 * are absent read as NULL or 0) and then handed to each(arg, why), which
 * returns 0 or -1 with a reason to fail the scan. A member of a group
 * seen outside a run is an error; a required group must occur at least
 * once. Groups do not nest; tables have at most 64 entries.
 */
enum attr_type {
	ATTR_T_END = 0,		/* ends a table */
	ATTR_T_STR,		/* const char **: length in [min, max] */
	ATTR_T_INT,		/* int64_t *, in [min, max] */
	ATTR_T_UINT,		/* uint64_t *, in [min, max] */
	ATTR_T_GROUP,		/* a repeated run, see above */
};

#define ATTR_F_REQUIRED	0x1

struct attr_spec {
	const char		*name;
	enum attr_type		 type;
	int			 flags;		/* ATTR_F_* */
	int64_t			 min;
	uint64_t		 max;
	void			*dest;
	/* ATTR_T_GROUP only. */
	const struct attr_spec	*group;
	int			(*each)(void *arg, struct vbuf *why);
	void			*arg;
};

/* Table entries; "flags" is 0 or ATTR_F_REQUIRED. */
/*
 * The scan writes through dest as the type says: a destination of another
 * type (a uint32_t for an ATTR_UINT) is a compile error, not an 8-byte
 * write into 4 bytes.
 */
#define ATTR_DEST(d, type)	(1 ? (d) : (type)0)
#define ATTR_STR(n, fl, lo, hi, d) \
	{ .name = (n), .type = ATTR_T_STR, .flags = (fl), .min = (lo), \
	    .max = (hi), .dest = ATTR_DEST(d, const char **) }
#define ATTR_INT(n, fl, lo, hi, d) \
	{ .name = (n), .type = ATTR_T_INT, .flags = (fl), .min = (lo), \
	    .max = (uint64_t)(hi), .dest = ATTR_DEST(d, int64_t *) }
#define ATTR_UINT(n, fl, lo, hi, d) \
	{ .name = (n), .type = ATTR_T_UINT, .flags = (fl), .min = (lo), \
	    .max = (hi), .dest = ATTR_DEST(d, uint64_t *) }
#define ATTR_GROUP(n, fl, tab, fn, a) \
	{ .name = (n), .type = ATTR_T_GROUP, .flags = (fl), .group = (tab), \
	    .each = (fn), .arg = (a) }
#define ATTR_TABLE_END	{ .name = NULL, .type = ATTR_T_END }

/*
 * Scans l against spec (see above). Returns 0, or -1 with a reason in why
 * (which must not be NULL).
 */
int	attr_scan(const struct attr_list *, const struct attr_spec *spec,
	    struct vbuf *why);
/* How many times name occurs in l (to size what a group fills). */
size_t	attr_count(const struct attr_list *, const char *name);

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
