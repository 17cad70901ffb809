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
