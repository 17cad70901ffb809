/*
 * json.c - minimal JSON writer (see json.h).
 */
#include <inttypes.h>
#include <math.h>
#include <string.h>

#include "json.h"
#include "log.h"

void
json_init(struct json *j, struct vbuf *out)
{
	j->out = out;
	j->depth = 0;
	j->need_comma[0] = 0;
}

/* Emits the comma between values; after a key (state 2) none is due. */
static void
json_value_start(struct json *j)
{
	if (j->need_comma[j->depth] == 1)
		(void)vbuf_addc(j->out, ',');
	j->need_comma[j->depth] = 1;
}

static void
json_push(struct json *j, int c)
{
	json_value_start(j);
	(void)vbuf_addc(j->out, c);
	ASSERT(j->depth < 15);
	j->need_comma[++j->depth] = 0;
}

void
json_object_begin(struct json *j)
{
	json_push(j, '{');
}

void
json_object_end(struct json *j)
{
	ASSERT(j->depth > 0);
	j->depth--;
	(void)vbuf_addc(j->out, '}');
}

void
json_array_begin(struct json *j)
{
	json_push(j, '[');
}

void
json_array_end(struct json *j)
{
	ASSERT(j->depth > 0);
	j->depth--;
	(void)vbuf_addc(j->out, ']');
}

/* Length of a valid UTF-8 sequence at s (max n bytes), or 0. */
static size_t
json_utf8_len(const unsigned char *s, size_t n)
{
	size_t len, i;
	uint32_t cp;

	if (s[0] < 0x80)
		return 1;
	if ((s[0] & 0xe0) == 0xc0) {
		len = 2;
		cp = s[0] & 0x1f;
	} else if ((s[0] & 0xf0) == 0xe0) {
		len = 3;
		cp = s[0] & 0x0f;
	} else if ((s[0] & 0xf8) == 0xf0) {
		len = 4;
		cp = s[0] & 0x07;
	} else
		return 0;
	if (len > n)
		return 0;
	for (i = 1; i < len; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		cp = (cp << 6) | (s[i] & 0x3f);
	}
	if ((len == 2 && cp < 0x80) || (len == 3 && cp < 0x800) ||
	    (len == 4 && (cp < 0x10000 || cp > 0x10ffff)) ||
	    (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	return len;
}

static void
json_quote(struct vbuf *out, const char *str)
{
	const unsigned char *s = (const unsigned char *)str;
	size_t n = strlen(str), i = 0, l;

	(void)vbuf_addc(out, '"');
	while (i < n) {
		unsigned char c = s[i];

		if (c == '"' || c == '\\') {
			(void)vbuf_addc(out, '\\');
			(void)vbuf_addc(out, c);
			i++;
		} else if (c == '\n') {
			(void)vbuf_adds(out, "\\n");
			i++;
		} else if (c == '\r') {
			(void)vbuf_adds(out, "\\r");
			i++;
		} else if (c == '\t') {
			(void)vbuf_adds(out, "\\t");
			i++;
		} else if (c < 0x20 || c == 0x7f) {
			(void)vbuf_addf(out, "\\u%04x", c);
			i++;
		} else if ((l = json_utf8_len(s + i, n - i)) == 0) {
			(void)vbuf_adds(out, "\\ufffd");
			i++;
		} else {
			(void)vbuf_add(out, s + i, l);
			i += l;
		}
	}
	(void)vbuf_addc(out, '"');
}

void
json_key(struct json *j, const char *key)
{
	json_value_start(j);
	json_quote(j->out, key);
	(void)vbuf_addc(j->out, ':');
	j->need_comma[j->depth] = 2;
}


void
json_str(struct json *j, const char *s)
{
	json_value_start(j);
	if (s == NULL)
		(void)vbuf_adds(j->out, "null");
	else
		json_quote(j->out, s);
}

void
json_int(struct json *j, int64_t v)
{
	json_value_start(j);
	(void)vbuf_addf(j->out, "%" PRId64, v);
}

void
json_uint(struct json *j, uint64_t v)
{
	json_value_start(j);
	(void)vbuf_addf(j->out, "%" PRIu64, v);
}

void
json_double(struct json *j, double v, int decimals)
{
	json_value_start(j);
	if (!isfinite(v))
		(void)vbuf_adds(j->out, "null");
	else
		(void)vbuf_addf(j->out, "%.*f", decimals, v);
}

void
json_bool(struct json *j, int v)
{
	json_value_start(j);
	(void)vbuf_adds(j->out, v ? "true" : "false");
}

void
json_null(struct json *j)
{
	json_value_start(j);
	(void)vbuf_adds(j->out, "null");
}

void
json_kv_str(struct json *j, const char *key, const char *s)
{
	json_key(j, key);
	json_str(j, s);
}

void
json_raw(struct json *j, const char *text)
{
	json_value_start(j);
	(void)vbuf_add(j->out, text, strlen(text));
}

void
json_kv_int(struct json *j, const char *key, int64_t v)
{
	json_key(j, key);
	json_int(j, v);
}
