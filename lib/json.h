/*
 * json.h - a minimal JSON writer for single-line objects.
 *
 * Used for the accounting log and every CLI's -j output. Strings are
 * escaped per RFC 8259; bytes that are not valid UTF-8 are replaced with
 * U+FFFD so the output is always valid JSON.
 */
#ifndef PETREL_JSON_H
#define PETREL_JSON_H

#include <stdint.h>

#include "vbuf.h"

struct json {
	struct vbuf	*out;
	int		 depth;
	int		 need_comma[16];
};

/* Starts writing into out (appends; out should be uncapped). */
void	json_init(struct json *, struct vbuf *out);
void	json_object_begin(struct json *);	/* value position */
void	json_object_end(struct json *);
void	json_array_begin(struct json *);
void	json_array_end(struct json *);
/* Writes "key": and leaves the writer at a value position. */
void	json_key(struct json *, const char *key);
void	json_str(struct json *, const char *);
void	json_int(struct json *, int64_t);
void	json_uint(struct json *, uint64_t);
void	json_double(struct json *, double, int decimals);
void	json_bool(struct json *, int);
void	json_null(struct json *);
/*
 * Writes text as a value, unchanged: text must already be one valid JSON
 * value (metadata validated by jansson when it was accepted).
 */
void	json_raw(struct json *, const char *text);
/* Shorthands: key plus value. A NULL string writes null. */
void	json_kv_str(struct json *, const char *key, const char *);
void	json_kv_int(struct json *, const char *key, int64_t);

#endif
