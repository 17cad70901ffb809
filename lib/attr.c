/*
 * attr.c - attribute stream encoding and decoding (see attr.h).
 */
#include <sys/socket.h>

#include <errno.h>
#include <limits.h>
#include <inttypes.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "attr.h"
#include "event.h"
#include "log.h"
#include "parse.h"
#include "xalloc.h"

void
attr_put_str(struct vbuf *out, const char *name, const char *value)
{
	(void)vbuf_add(out, name, strlen(name) + 1);
	(void)vbuf_add(out, value, strlen(value) + 1);
}

void
attr_put_num(struct vbuf *out, const char *name, uint64_t value)
{
	char num[32];

	snprintf(num, sizeof(num), "%" PRIu64, value);
	attr_put_str(out, name, num);
}

void
attr_put_int(struct vbuf *out, const char *name, int64_t value)
{
	char num[32];

	snprintf(num, sizeof(num), "%" PRId64, value);
	attr_put_str(out, name, num);
}

void
attr_end(struct vbuf *out)
{
	(void)vbuf_addc(out, '\0');
}

void
attr_list_init(struct attr_list *l)
{
	l->items = NULL;
	l->count = l->alloc = 0;
}

void
attr_list_release(struct attr_list *l)
{
	free(l->items);
	attr_list_init(l);
}

int
attr_decode(struct attr_list *l, const char *buf, size_t len, size_t *used,
    struct vbuf *why)
{
	size_t off = 0;

	l->count = 0;
	for (;;) {
		const char *name, *value, *nul;
		size_t nlen, vlen;

		if (off >= len)
			return 0;
		name = buf + off;
		nul = memchr(name, '\0', len - off);
		nlen = nul == NULL ? len - off : (size_t)(nul - name);
		if (nlen > ATTR_NAME_MAX) {
			if (why)
				vbuf_setf(why, "attribute name too long");
			return -1;
		}
		if (nul == NULL)
			return 0;
		off += nlen + 1;
		if (nlen == 0) {
			*used = off;
			return 1;
		}
		if (off >= len)
			return 0;
		value = buf + off;
		nul = memchr(value, '\0', len - off);
		vlen = nul == NULL ? len - off : (size_t)(nul - value);
		if (vlen > ATTR_VALUE_MAX) {
			if (why)
				vbuf_setf(why, "attribute %s: value too long",
				    name);
			return -1;
		}
		if (nul == NULL)
			return 0;
		off += vlen + 1;
		if (l->count == ATTR_COUNT_MAX) {
			if (why)
				vbuf_setf(why, "too many attributes");
			return -1;
		}
		if (l->count == l->alloc) {
			l->alloc = l->alloc ? l->alloc * 2 : 16;
			l->items = xreallocarray(l->items, l->alloc,
			    sizeof(*l->items));
		}
		l->items[l->count].name = name;
		l->items[l->count].value = value;
		l->items[l->count].value_len = vlen;
		l->count++;
	}
}

const char *
attr_get(const struct attr_list *l, const char *name)
{
	for (size_t i = 0; i < l->count; i++)
		if (strcmp(l->items[i].name, name) == 0)
			return l->items[i].value;
	return NULL;
}

const char *
attr_need(const struct attr_list *l, const char *name, struct vbuf *why)
{
	const char *v = attr_get(l, name);

	if (v == NULL && why)
		vbuf_setf(why, "missing attribute %s", name);
	return v;
}

int
attr_get_num(const struct attr_list *l, const char *name, uint64_t *out,
    struct vbuf *why)
{
	const char *v;

	if ((v = attr_need(l, name, why)) == NULL)
		return -1;
	if (parse_u64(v, 0, UINT64_MAX, out) == -1) {
		if (why)
			vbuf_setf(why, "attribute %s: bad number", name);
		return -1;
	}
	return 0;
}

int
attr_get_int(const struct attr_list *l, const char *name, int64_t *out,
    struct vbuf *why)
{
	const char *v;

	if ((v = attr_need(l, name, why)) == NULL)
		return -1;
	if (parse_i64(v, INT64_MIN, INT64_MAX, out) == -1) {
		if (why)
			vbuf_setf(why, "attribute %s: bad number", name);
		return -1;
	}
	return 0;
}

size_t
attr_count(const struct attr_list *l, const char *name)
{
	size_t i, n = 0;

	for (i = 0; i < l->count; i++)
		if (strcmp(l->items[i].name, name) == 0)
			n++;
	return n;
}

/* The entry of spec named name, or -1. */
static int
attr_spec_find(const struct attr_spec *spec, const char *name)
{
	int i;

	for (i = 0; spec[i].type != ATTR_T_END; i++)
		if (strcmp(spec[i].name, name) == 0)
			return i;
	return -1;
}

/* Stores one value into its destination, checking type and bounds. */
static int
attr_spec_store(const struct attr_spec *s, const struct attr *a,
    struct vbuf *why)
{
	uint64_t u;
	int64_t i;

	switch (s->type) {
	case ATTR_T_STR:
		if (a->value_len < (uint64_t)s->min ||
		    a->value_len > s->max) {
			vbuf_setf(why, "attribute %s: %s", s->name,
			    a->value_len < (uint64_t)s->min ? "too short" :
			    "too long");
			return -1;
		}
		if (s->dest != NULL)
			*(const char **)s->dest = a->value;
		return 0;
	case ATTR_T_INT:
		if (parse_i64(a->value, s->min, (int64_t)s->max, &i) == -1)
			break;
		if (s->dest != NULL)
			*(int64_t *)s->dest = i;
		return 0;
	case ATTR_T_UINT:
		if (parse_u64(a->value, (uint64_t)s->min, s->max, &u) == -1)
			break;
		if (s->dest != NULL)
			*(uint64_t *)s->dest = u;
		return 0;
	default:
		ASSERT(0);
	}
	vbuf_setf(why, "attribute %s: bad number", s->name);
	return -1;
}

/* Before a group's run: absent optional members read as NULL or 0. */
static void
attr_group_clear(const struct attr_spec *g)
{
	for (; g->type != ATTR_T_END; g++) {
		if (g->dest == NULL)
			continue;
		if (g->type == ATTR_T_STR)
			*(const char **)g->dest = NULL;
		else if (g->type == ATTR_T_INT)
			*(int64_t *)g->dest = 0;
		else if (g->type == ATTR_T_UINT)
			*(uint64_t *)g->dest = 0;
	}
}

/* Every required entry of spec was seen; else the reason in why. */
static int
attr_spec_complete(const struct attr_spec *spec, uint64_t seen,
    const char *in, struct vbuf *why)
{
	int i;

	for (i = 0; spec[i].type != ATTR_T_END; i++)
		if ((spec[i].flags & ATTR_F_REQUIRED) &&
		    !(seen & ((uint64_t)1 << i))) {
			if (in != NULL)
				vbuf_setf(why, "%s without %s", in,
				    spec[i].name);
			else
				vbuf_setf(why, "missing attribute %s",
				    spec[i].name);
			return -1;
		}
	return 0;
}

/* Ends the open run of group g: checks it and hands it to each(). */
static int
attr_group_end(const struct attr_spec *g, uint64_t seen, struct vbuf *why)
{
	if (attr_spec_complete(g->group, seen, g->name, why) == -1)
		return -1;
	return g->each != NULL ? g->each(g->arg, why) : 0;
}

int
attr_scan(const struct attr_list *l, const struct attr_spec *spec,
    struct vbuf *why)
{
	const struct attr_spec *g = NULL;	/* the open run's group */
	uint64_t seen = 0, gseen = 0, bit;
	size_t i;
	int k, j;

	for (i = 0; i < l->count; i++) {
		const struct attr *a = &l->items[i];

		/* A member of the open run (its start begins a new one). */
		if (g != NULL && (k = attr_spec_find(g->group, a->name)) > 0) {
			ASSERT(k < 64);
			bit = (uint64_t)1 << k;
			if (gseen & bit) {
				vbuf_setf(why, "duplicate attribute %s in "
				    "one %s", a->name, g->name);
				return -1;
			}
			if (attr_spec_store(&g->group[k], a, why) == -1)
				return -1;
			gseen |= bit;
			continue;
		}
		if ((k = attr_spec_find(spec, a->name)) == -1) {
			/* Unknown, unless it belongs to a group. */
			for (j = 0; spec[j].type != ATTR_T_END; j++) {
				if (spec[j].type != ATTR_T_GROUP ||
				    attr_spec_find(spec[j].group, a->name) <= 0)
					continue;
				vbuf_setf(why, "%s without %s", a->name,
				    spec[j].name);
				return -1;
			}
			continue;
		}
		ASSERT(k < 64);
		bit = (uint64_t)1 << k;
		if (spec[k].type == ATTR_T_GROUP) {
			if (g != NULL && attr_group_end(g, gseen, why) == -1)
				return -1;
			g = &spec[k];
			attr_group_clear(g->group);
			if (attr_spec_store(&g->group[0], a, why) == -1)
				return -1;
			gseen = 1;
			seen |= bit;
			continue;
		}
		if (seen & bit) {
			vbuf_setf(why, "duplicate attribute %s", a->name);
			return -1;
		}
		if (attr_spec_store(&spec[k], a, why) == -1)
			return -1;
		seen |= bit;
	}
	if (g != NULL && attr_group_end(g, gseen, why) == -1)
		return -1;
	return attr_spec_complete(spec, seen, NULL, why);
}

static int
attr_wait(int fd, short events, int64_t deadline, struct vbuf *why)
{
	struct pollfd pfd;
	int64_t left;
	int rc;

	for (;;) {
		left = deadline < 0 ? -1 : deadline - ev_now_ms();
		if (deadline >= 0 && left <= 0) {
			if (why)
				vbuf_setf(why, "timeout");
			return -1;
		}
		pfd.fd = fd;
		pfd.events = events;
		rc = poll(&pfd, 1, (int)left);
		if (rc > 0)
			return 0;
		if (rc == -1 && errno != EINTR) {
			if (why)
				vbuf_setf(why, "poll: %s", strerror(errno));
			return -1;
		}
	}
}

int
attr_write(int fd, const struct vbuf *buf, int timeout_ms, struct vbuf *why)
{
	int64_t deadline = timeout_ms < 0 ? -1 : ev_now_ms() + timeout_ms;
	size_t off = 0;
	ssize_t n;

	while (off < buf->len) {
		if (attr_wait(fd, POLLOUT, deadline, why) == -1)
			return -1;
		/* Never block past the deadline, never die of SIGPIPE. */
		n = send(fd, buf->data + off, buf->len - off,
		    MSG_DONTWAIT | MSG_NOSIGNAL);
		if (n == -1 && errno == ENOTSOCK)
			n = write(fd, buf->data + off, buf->len - off > PIPE_BUF ?
			    PIPE_BUF : buf->len - off);
		if (n == -1) {
			if (errno == EINTR || errno == EAGAIN)
				continue;
			if (why)
				vbuf_setf(why, "write: %s", strerror(errno));
			return -1;
		}
		off += (size_t)n;
	}
	return 0;
}

int
attr_read(int fd, struct vbuf *inbuf, struct attr_list *l, size_t *used,
    int timeout_ms, struct vbuf *why)
{
	int64_t deadline = timeout_ms < 0 ? -1 : ev_now_ms() + timeout_ms;
	size_t room;
	ssize_t n;
	int rc;

	for (;;) {
		rc = attr_decode(l, inbuf->data, inbuf->len, used, why);
		if (rc != 0)
			return rc == 1 ? 0 : -1;
		room = 4096;
		if (inbuf->cap != 0 && inbuf->cap - inbuf->len < room)
			room = inbuf->cap - inbuf->len;
		if (room == 0 || vbuf_reserve(inbuf, room) == -1) {
			if (why)
				vbuf_setf(why, "record too large");
			return -1;
		}
		room = inbuf->size - inbuf->len - 1;
		if (inbuf->cap != 0 && room > inbuf->cap - inbuf->len)
			room = inbuf->cap - inbuf->len;
		if (attr_wait(fd, POLLIN, deadline, why) == -1)
			return -1;
		n = read(fd, inbuf->data + inbuf->len, room);
		if (n == -1) {
			if (errno == EINTR || errno == EAGAIN)
				continue;
			if (why)
				vbuf_setf(why, "read: %s", strerror(errno));
			return -1;
		}
		if (n == 0) {
			if (why)
				vbuf_setf(why, "unexpected end of stream");
			return -1;
		}
		inbuf->len += (size_t)n;
		inbuf->data[inbuf->len] = '\0';
	}
}
