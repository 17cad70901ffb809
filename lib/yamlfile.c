/*
 * yamlfile.c - one YAML file read and loaded with libyaml, bounded.
 *
 * Used by lib/cfg (petrel.yaml) and lib/bclass (bounce classification
 * rules) in every program that loads them. The file is read whole (at
 * most max bytes), its nesting checked with the event parser, then loaded
 * as a document; a second document would be silently ignored by a walker,
 * so it is refused. Nothing here logs, exits or aborts because of what
 * the file says.
 */
#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <yaml.h>

#include "vbuf.h"
#include "xalloc.h"
#include "yamlfile.h"

static int	yf_err(struct vbuf *, const char *, unsigned long,
		    const char *, ...) __attribute__((format(printf, 4, 5)));
static int	yf_read(const char *, size_t, unsigned char **, size_t *,
		    struct vbuf *);
static int	yf_check_depth(const char *, const unsigned char *, size_t,
		    int, struct vbuf *);
static int	yf_syntax(const char *, yaml_parser_t *,
		    const unsigned char *, size_t, struct vbuf *);

void
yamlfile_vwhy(struct vbuf *why, const char *file, unsigned long line,
    const char *key, const char *fmt, va_list ap)
{
	if (why == NULL)
		return;
	vbuf_reset(why);
	(void)vbuf_adds(why, file);
	if (line != 0)
		(void)vbuf_addf(why, ":%lu", line);
	(void)vbuf_adds(why, ": ");
	if (key != NULL)
		(void)vbuf_addf(why, "%s: ", key);
	(void)vbuf_vaddf(why, fmt, ap);
}

/* "PATH:LINE: reason", no LINE when 0. Returns -1. */
static int
yf_err(struct vbuf *why, const char *path, unsigned long line,
    const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	yamlfile_vwhy(why, path, line, NULL, fmt, ap);
	va_end(ap);
	return -1;
}

unsigned long
yamlfile_line(const yaml_node_t *node)
{
	return (unsigned long)node->start_mark.line + 1;
}

/* Reads the whole file: a regular file of at most max bytes. */
static int
yf_read(const char *path, size_t max, unsigned char **textp, size_t *lenp,
    struct vbuf *why)
{
	struct stat st;
	unsigned char *text;
	size_t len = 0;
	ssize_t n = 0;
	int fd, err;

	if ((fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY)) == -1) {
		err = errno;
		(void)yf_err(why, path, 0, "cannot open: %s", strerror(err));
		return err == ENOENT ? YAMLFILE_MISSING : -1;
	}
	if (fstat(fd, &st) == -1) {
		(void)yf_err(why, path, 0, "cannot stat: %s",
		    strerror(errno));
		close(fd);
		return -1;
	}
	if (!S_ISREG(st.st_mode)) {
		close(fd);
		return yf_err(why, path, 0, "not a regular file");
	}
	text = xmalloc(max + 1);
	for (;;) {
		n = read(fd, text + len, max + 1 - len);
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1) {
			(void)yf_err(why, path, 0, "cannot read: %s",
			    strerror(errno));
			break;
		}
		if (n == 0)
			break;
		len += (size_t)n;
		if (len > max) {
			(void)yf_err(why, path, 0, "larger than %zu bytes",
			    max);
			n = -1;
			break;
		}
	}
	close(fd);
	if (n == -1) {
		free(text);
		return -1;
	}
	*textp = text;
	*lenp = len;
	return 0;
}

/*
 * Refuses nesting deeper than max_depth before the document is loaded.
 * Events are pulled lazily, so this stops at the first level too deep;
 * syntax errors are left to yamlfile_load, which reports them.
 */
static int
yf_check_depth(const char *path, const unsigned char *text, size_t len,
    int max_depth, struct vbuf *why)
{
	yaml_parser_t parser;
	yaml_event_t ev;
	int depth = 0, rc = 0, done = 0;

	if (yaml_parser_initialize(&parser) == 0)
		return yf_err(why, path, 0, "cannot initialise the parser");
	yaml_parser_set_input_string(&parser, text, len);
	while (!done) {
		if (yaml_parser_parse(&parser, &ev) == 0)
			break;
		if (ev.type == YAML_SEQUENCE_START_EVENT ||
		    ev.type == YAML_MAPPING_START_EVENT) {
			if (++depth > max_depth) {
				rc = yf_err(why, path, ev.start_mark.line + 1,
				    "nested more than %d levels deep",
				    max_depth);
				done = 1;
			}
		} else if (ev.type == YAML_SEQUENCE_END_EVENT ||
		    ev.type == YAML_MAPPING_END_EVENT)
			depth--;
		else if (ev.type == YAML_STREAM_END_EVENT)
			done = 1;
		yaml_event_delete(&ev);
	}
	yaml_parser_delete(&parser);
	return rc;
}

static int
yf_syntax(const char *path, yaml_parser_t *p, const unsigned char *text,
    size_t len, struct vbuf *why)
{
	unsigned long line = 1;
	size_t i;
	const char *problem = p->problem != NULL ? p->problem : "bad YAML";

	switch (p->error) {
	case YAML_MEMORY_ERROR:
		return yf_err(why, path, 0, "out of memory parsing YAML");
	case YAML_READER_ERROR:
		/* The reader reports a byte offset, not a mark. */
		for (i = 0; i < p->problem_offset && i < len; i++)
			if (text[i] == '\n')
				line++;
		return yf_err(why, path, line, "syntax error: %s", problem);
	default:
		line = p->problem_mark.line + 1;
		if (p->context != NULL)
			return yf_err(why, path, line,
			    "syntax error: %s %s (line %lu)", problem,
			    p->context,
			    (unsigned long)p->context_mark.line + 1);
		return yf_err(why, path, line, "syntax error: %s", problem);
	}
}

int
yamlfile_load(const char *path, size_t max, int max_depth,
    yaml_document_t *doc, struct vbuf *why)
{
	yaml_parser_t parser;
	yaml_document_t extra;
	yaml_node_t *more;
	unsigned char *text = NULL;
	size_t len = 0;
	int rc;

	if (why != NULL)
		vbuf_reset(why);
	if ((rc = yf_read(path, max, &text, &len, why)) != 0)
		return rc;
	rc = -1;
	if (yf_check_depth(path, text, len, max_depth, why) == -1)
		goto out;
	if (yaml_parser_initialize(&parser) == 0) {
		(void)yf_err(why, path, 0, "cannot initialise the parser");
		goto out;
	}
	yaml_parser_set_input_string(&parser, text, len);
	if (yaml_parser_load(&parser, doc) == 0) {
		(void)yf_syntax(path, &parser, text, len, why);
		yaml_parser_delete(&parser);
		goto out;
	}
	if (yaml_document_get_root_node(doc) == NULL) {
		/* An empty file. */
		yaml_document_delete(doc);
		rc = 0;
	} else if (yaml_parser_load(&parser, &extra) == 0) {
		(void)yf_syntax(path, &parser, text, len, why);
		yaml_document_delete(doc);
	} else {
		more = yaml_document_get_root_node(&extra);
		if (more != NULL) {
			(void)yf_err(why, path, yamlfile_line(more),
			    "more than one YAML document");
			yaml_document_delete(doc);
		} else
			rc = 1;
		yaml_document_delete(&extra);
	}
	yaml_parser_delete(&parser);
out:
	free(text);
	return rc;
}
