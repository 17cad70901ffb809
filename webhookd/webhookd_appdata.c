/*
 * webhookd_appdata.c - an event's metadata and tags read with jansson,
 * for the providers' shapes (webhookd_esp.c): SendGrid wants each
 * metadata member at the top level of its event, as a string, and
 * Postmark one Tag. smtpd checked both when it took them from the
 * message's headers; anything that still does not parse, or is not an
 * object (metadata) or an array (tags), is treated as absent, so a
 * payload is never sent half-written.
 */
#include <stdlib.h>
#include <string.h>

/*
 * jansson and lib/json (through webhookd.h) both declare a json_null;
 * jansson's is renamed here, and not used.
 */
#define json_null	jansson_json_null
#include <jansson.h>
#undef json_null

#include "webhookd.h"
#include "xalloc.h"

void
webhookd_appdata_parse(const struct outbox_event *ev, struct wh_appdata *ad)
{
	const char *key;
	json_t *root, *v;
	size_t i;
	char *text;

	memset(ad, 0, sizeof(*ad));
	if (ev->metadata != NULL &&
	    (root = json_loads(ev->metadata, 0, NULL)) != NULL) {
		if (json_is_object(root)) {
			ad->meta_ok = 1;
			ad->meta_key = xreallocarray(NULL,
			    json_object_size(root) + 1, sizeof(char *));
			ad->meta_str = xreallocarray(NULL,
			    json_object_size(root) + 1, sizeof(char *));
			json_object_foreach(root, key, v) {
				if (json_is_string(v))
					text = xstrdup(json_string_value(v));
				else if ((text = json_dumps(v, JSON_COMPACT |
				    JSON_ENCODE_ANY)) == NULL)
					continue;	/* out of memory */
				ad->meta_key[ad->nmeta] = xstrdup(key);
				ad->meta_str[ad->nmeta++] = text;
			}
		}
		json_decref(root);
	}
	if (ev->tags != NULL &&
	    (root = json_loads(ev->tags, 0, NULL)) != NULL) {
		if (json_is_array(root)) {
			ad->tags_ok = 1;
			ad->ntags = json_array_size(root);
			json_array_foreach(root, i, v)
				if (json_is_string(v)) {
					ad->first_tag =
					    xstrdup(json_string_value(v));
					break;
				}
		}
		json_decref(root);
	}
}

void
webhookd_appdata_release(struct wh_appdata *ad)
{
	size_t i;

	for (i = 0; i < ad->nmeta; i++) {
		free(ad->meta_key[i]);
		free(ad->meta_str[i]);
	}
	free(ad->meta_key);
	free(ad->meta_str);
	free(ad->first_tag);
	memset(ad, 0, sizeof(*ad));
}
