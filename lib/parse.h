/*
 * parse.h - checked number, duration and size parsing (and durations
 * written back the way they are read).
 *
 * The replacement for atoi and friends: every parser checks range and
 * trailing characters and returns 0 or -1, never a silent default.
 */
#ifndef PETREL_PARSE_H
#define PETREL_PARSE_H

#include <stddef.h>
#include <stdint.h>

int	parse_u64(const char *, uint64_t min, uint64_t max, uint64_t *out);
int	parse_i64(const char *, int64_t min, int64_t max, int64_t *out);
/* "90", "90s", "5m", "1h", "5d" -> seconds; a bare number is seconds. */
int	parse_duration(const char *, int64_t *seconds);
/*
 * seconds as parse_duration reads it back, in the largest of d, h, m, s
 * that writes it exactly ("30m", "1h", "90s", "0s"; below 0, "0s"), for
 * log lines and listings. Truncated to size, as snprintf.
 */
void	parse_duration_format(int64_t seconds, char *buf, size_t size);
/* "10485760", "512k", "10m", "1g" (powers of 1024) -> bytes. */
int	parse_size(const char *, uint64_t *bytes);

#endif
