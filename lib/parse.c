/*
 * parse.c - checked number, duration and size parsing, and durations
 * written back (see parse.h).
 */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

#include "parse.h"

int
parse_u64(const char *s, uint64_t min, uint64_t max, uint64_t *out)
{
	unsigned long long v;
	char *end;

	if (s == NULL || !isdigit((unsigned char)*s))
		return -1;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno != 0 || *end != '\0' || v < min || v > max)
		return -1;
	*out = v;
	return 0;
}

int
parse_i64(const char *s, int64_t min, int64_t max, int64_t *out)
{
	long long v;
	char *end;

	if (s == NULL || !(isdigit((unsigned char)*s) || (*s == '-' &&
	    isdigit((unsigned char)s[1]))))
		return -1;
	errno = 0;
	v = strtoll(s, &end, 10);
	if (errno != 0 || *end != '\0' || v < min || v > max)
		return -1;
	*out = v;
	return 0;
}

/* Parses digits then an optional one-letter unit from units/mults. */
static int
parse_scaled(const char *s, const char *units, const uint64_t *mults,
    uint64_t *out)
{
	unsigned long long v;
	char *end;
	uint64_t m = 1;

	if (s == NULL || !isdigit((unsigned char)*s))
		return -1;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno != 0)
		return -1;
	if (*end != '\0') {
		const char *u;

		for (u = units; *u != '\0'; u++)
			if (tolower((unsigned char)*end) == *u)
				break;
		if (*u == '\0' || end[1] != '\0')
			return -1;
		m = mults[u - units];
	}
	if (m != 0 && v > UINT64_MAX / m)
		return -1;
	*out = v * m;
	return 0;
}

int
parse_duration(const char *s, int64_t *seconds)
{
	static const uint64_t mults[] = { 1, 60, 3600, 86400, 604800 };
	uint64_t v;

	if (parse_scaled(s, "smhdw", mults, &v) == -1 ||
	    v > (uint64_t)INT64_MAX)
		return -1;
	*seconds = (int64_t)v;
	return 0;
}

void
parse_duration_format(int64_t seconds, char *buf, size_t size)
{
	static const struct { int64_t s; char unit; } units[] = {
		{ 86400, 'd' }, { 3600, 'h' }, { 60, 'm' },
	};
	char unit = 's';

	if (seconds < 0)
		seconds = 0;
	for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++)
		if (seconds > 0 && seconds % units[i].s == 0) {
			seconds /= units[i].s;
			unit = units[i].unit;
			break;
		}
	(void)snprintf(buf, size, "%lld%c", (long long)seconds, unit);
}

int
parse_size(const char *s, uint64_t *bytes)
{
	static const uint64_t mults[] = { 1024, 1024 * 1024,
	    1024ULL * 1024 * 1024 };

	return parse_scaled(s, "kmg", mults, bytes);
}
