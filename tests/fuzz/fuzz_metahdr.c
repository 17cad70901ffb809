/*
 * fuzz_metahdr.c - libFuzzer target for lib/metahdr.c, which reads the tag
 * and metadata headers (X-Petrel-*, X-Mailgun-*, X-PM-*, X-SMTPAPI) of the
 * header blocks applications send (untrusted), JSON included.
 *
 * The input is a header block. Checked: an error comes with a reason and
 * nothing else with one; what is kept is no longer than the input and
 * holds no family header (a second scan finds none); the results parse
 * back (jansson) as an object of at most METAHDR_KEYS_MAX keys within
 * METAHDR_JSON_MAX bytes and an array of at most METAHDR_TAGS_MAX distinct
 * strings of at most METAHDR_TAG_LEN bytes; scanning without keeping gives
 * the same answer. Broken invariants abort through ASSERT. Built and run
 * by `make fuzz`; see tests/fuzz/README.md.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <jansson.h>

#include "log.h"
#include "metahdr.h"
#include "vbuf.h"

int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t len)
{
	struct vbuf *kept = vbuf_create(0), *meta = vbuf_create(0),
	    *tags = vbuf_create(0), *meta2 = vbuf_create(0),
	    *tags2 = vbuf_create(0);
	struct metahdr m, m2;
	json_t *j, *t, *u;
	size_t i, k;
	int n, n2;

	metahdr_init(&m);
	n = metahdr_scan(&m, (const char *)data, len, kept);
	if (n > 0 && metahdr_result(&m, meta, tags) == -1)
		n = -1;
	ASSERT((n == -1) == (m.err[0] != '\0'));
	ASSERT(kept->len <= len);
	if (n == 0)
		ASSERT(kept->len == 0);
	if (n > 0) {
		/* What is kept holds none of the families. */
		metahdr_init(&m2);
		ASSERT(metahdr_scan(&m2, kept->data, kept->len, NULL) == 0);
		metahdr_free(&m2);
		if (meta->len > 0) {
			ASSERT(meta->len <= METAHDR_JSON_MAX);
			j = json_loadb(meta->data, meta->len, 0, NULL);
			ASSERT(j != NULL && json_is_object(j));
			ASSERT(json_object_size(j) <= METAHDR_KEYS_MAX);
			json_decref(j);
		}
		if (tags->len > 0) {
			j = json_loadb(tags->data, tags->len, 0, NULL);
			ASSERT(j != NULL && json_is_array(j));
			ASSERT(json_array_size(j) <= METAHDR_TAGS_MAX);
			for (i = 0; i < json_array_size(j); i++) {
				t = json_array_get(j, i);
				ASSERT(json_is_string(t));
				ASSERT(json_string_length(t) > 0 &&
				    json_string_length(t) <= METAHDR_TAG_LEN);
				for (k = 0; k < i; k++) {
					u = json_array_get(j, k);
					ASSERT(!json_equal(t, u));
				}
			}
			json_decref(j);
		}
	}
	/* Keeping or not does not change the answer. */
	metahdr_init(&m2);
	n2 = metahdr_scan(&m2, (const char *)data, len, NULL);
	if (n2 > 0 && metahdr_result(&m2, meta2, tags2) == -1)
		n2 = -1;
	ASSERT(n2 == n);
	if (n > 0)
		ASSERT(meta2->len == meta->len && tags2->len == tags->len &&
		    memcmp(meta2->data, meta->data, meta->len) == 0 &&
		    memcmp(tags2->data, tags->data, tags->len) == 0);
	metahdr_free(&m2);
	metahdr_free(&m);
	vbuf_free(kept);
	vbuf_free(meta);
	vbuf_free(tags);
	vbuf_free(meta2);
	vbuf_free(tags2);
	return 0;
}
