/*
 * metahdr.h - an application's tags and metadata, read from message headers
 * (X-Petrel-Tag, X-Petrel-Metadata-*, and the Mailgun, Postmark and
 * SendGrid headers of the same meaning), for the events of its message,
 * X-Petrel-Deliver-After (or Mailgun's X-Mailgun-Deliver-By), the time its
 * first delivery is held until, and
 * X-Petrel-Priority: bulk, which puts it in the bulk lane (issue 11).
 *
 * The input is a client's header block, untrusted: every count and size is
 * bounded here, and JSON is parsed by jansson.
 */
#ifndef PETREL_METAHDR_H
#define PETREL_METAHDR_H

#include <stddef.h>

#include "vbuf.h"

#define METAHDR_TAGS_MAX	10	/* distinct tags per message */
#define METAHDR_TAG_LEN		128	/* bytes per tag */
#define METAHDR_KEYS_MAX	20	/* metadata keys per message */
#define METAHDR_KEY_LEN		64	/* bytes per metadata key */
#define METAHDR_JSON_MAX	4096	/* bytes of the metadata object's JSON */
#define METAHDR_ERR_MAX		160
#define METAHDR_DATE_MAX	100	/* bytes of a Deliver-After date */

struct metahdr {
	void		*meta;		/* json_t object, or NULL */
	void		*tags;		/* json_t array, or NULL */
	unsigned	 nheaders;	/* family headers seen */
	int		 has_after;	/* either Deliver header seen */
	const char	*after_header;	/* its name, or Mailgun's */
	int64_t		 after;		/* its time (epoch s), -1 unparsable */
	char		 after_raw[METAHDR_DATE_MAX + 1];	/* for logs */
	int		 bulk;		/* X-Petrel-Priority: bulk seen */
	char		 err[METAHDR_ERR_MAX];	/* "" none */
};

void	 metahdr_init(struct metahdr *);
void	 metahdr_free(struct metahdr *);
int	 metahdr_is_family(const char *, size_t);
int	 metahdr_add(struct metahdr *, const char *, size_t, const char *,
	    size_t);
int	 metahdr_scan(struct metahdr *, const char *, size_t, struct vbuf *);
int	 metahdr_result(struct metahdr *, struct vbuf *, struct vbuf *);
/*
 * An RFC 5322 date-time ("Sat, 5 Dec 2026 15:00:00 +0000", the day name
 * and seconds optional, a numeric zone or GMT/UT/UTC/Z, a trailing
 * comment ignored) as epoch seconds: 0, or -1 when it is not one.
 */
int	 metahdr_date(const char *, size_t, int64_t *);

#endif
