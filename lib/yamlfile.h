/*
 * yamlfile.h - one YAML file read and loaded with libyaml, bounded.
 *
 * The one way Petrel reads a YAML file (petrel.yaml in lib/cfg, the bounce
 * classification rules in lib/bclass): a regular file of bounded size,
 * nesting refused beyond a depth before libyaml loads it, exactly one
 * document, and every error as "FILE:LINE: reason" (or "FILE: reason").
 * The callers walk the loaded document themselves.
 */
#ifndef PETREL_YAMLFILE_H
#define PETREL_YAMLFILE_H

#include <stdarg.h>
#include <stddef.h>

#include <yaml.h>

#include "vbuf.h"

#define YAMLFILE_MISSING	(-2)	/* yamlfile_load: no such file */

/*
 * Reads path (a regular file of at most max bytes) and loads its single
 * YAML document into doc, after refusing nesting deeper than max_depth
 * (libyaml's scanner is slow, quadratic, on deep flow nesting). Returns 1
 * with doc loaded (free it with yaml_document_delete); 0 for an empty
 * file, with nothing to free; -1 with "PATH:LINE: reason" or "PATH:
 * reason" in why (a syntax error, a second document, too large, not a
 * regular file, unreadable); or YAMLFILE_MISSING, with why, when path
 * does not exist. why may be NULL.
 */
int	yamlfile_load(const char *path, size_t max, int max_depth,
	    yaml_document_t *doc, struct vbuf *why);

/*
 * Replaces why's contents with "FILE:LINE: KEY: reason" (no LINE when 0,
 * no KEY when NULL; key is written as given): the one message shape of
 * every error about a YAML file. Does nothing when why is NULL.
 */
void	yamlfile_vwhy(struct vbuf *why, const char *file, unsigned long line,
	    const char *key, const char *fmt, va_list ap)
	    __attribute__((format(printf, 5, 0)));

/* The 1-based line where node starts, for messages. */
unsigned long yamlfile_line(const yaml_node_t *node);

#endif
