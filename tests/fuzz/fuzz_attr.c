/*
 * fuzz_attr.c - libFuzzer target for the attribute-stream decoder
 * (lib/attr.c), which every daemon runs on what its peers send over
 * private/ sockets: a compromised peer process is untrusted too.
 *
 * The input is a stream of records. Checked: a record decoded used no
 * more than it was given, and at least one byte; it has at most
 * ATTR_COUNT_MAX attributes whose names and values lie inside the input;
 * encoding the decoded record again and decoding that gives the same
 * names and values (a record survives a relay through Petrel's encoder).
 * Broken invariants abort through ASSERT. Built and run by `make fuzz`;
 * see tests/fuzz/README.md.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "attr.h"
#include "log.h"
#include "vbuf.h"

int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);

static void	fuzz_round_trip(const struct attr_list *);

static void
fuzz_round_trip(const struct attr_list *l)
{
	struct attr_list again;
	struct vbuf *out = vbuf_create(0);
	size_t used;

	for (size_t i = 0; i < l->count; i++)
		attr_put_str(out, l->items[i].name, l->items[i].value);
	attr_end(out);
	attr_list_init(&again);
	ASSERT(attr_decode(&again, out->data, out->len, &used, NULL) == 1);
	ASSERT(used == out->len);
	ASSERT(again.count == l->count);
	for (size_t i = 0; i < l->count; i++) {
		ASSERT(strcmp(again.items[i].name, l->items[i].name) == 0);
		ASSERT(strcmp(again.items[i].value, l->items[i].value) == 0);
	}
	attr_list_release(&again);
	vbuf_free(out);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t len)
{
	const char *buf = (const char *)data;
	struct attr_list l;
	size_t off = 0, used;
	int rc;

	attr_list_init(&l);
	while (off < len) {
		rc = attr_decode(&l, buf + off, len - off, &used, NULL);
		if (rc != 1)
			break;
		ASSERT(used > 0 && used <= len - off);
		ASSERT(l.count <= ATTR_COUNT_MAX);
		for (size_t i = 0; i < l.count; i++) {
			ASSERT(l.items[i].name >= buf + off &&
			    l.items[i].name < buf + off + used);
			ASSERT(l.items[i].value >= buf + off &&
			    l.items[i].value <= buf + off + used);
			ASSERT(strlen(l.items[i].value) ==
			    l.items[i].value_len);
		}
		fuzz_round_trip(&l);
		off += used;
	}
	attr_list_release(&l);
	return 0;
}
