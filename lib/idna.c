/*
 * idna.c - internationalised domain names and addresses (see idna.h).
 */
#include <stdlib.h>
#include <string.h>

#include <idn2.h>

#include "idna.h"
#include "utf8.h"

int
idna_domain_ascii(const char *domain, char *out, size_t size)
{
	char *ascii = NULL;
	size_t n;
	int rc;

	if (!utf8_has_8bit(domain)) {
		n = strlen(domain);
		if (n >= size)
			return -1;
		for (size_t i = 0; i <= n; i++)
			out[i] = (char)(domain[i] >= 'A' && domain[i] <= 'Z' ?
			    domain[i] - 'A' + 'a' : domain[i]);
		return 0;
	}
	if (!utf8_valid(domain, strlen(domain)))
		return -1;
	rc = idn2_to_ascii_8z(domain, &ascii, IDN2_NFC_INPUT |
	    IDN2_NONTRANSITIONAL);
	if (rc != IDN2_OK || ascii == NULL) {
		free(ascii);
		return -1;
	}
	n = strlen(ascii);
	if (n >= size) {
		free(ascii);
		return -1;
	}
	for (size_t i = 0; i <= n; i++)
		out[i] = (char)(ascii[i] >= 'A' && ascii[i] <= 'Z' ?
		    ascii[i] - 'A' + 'a' : ascii[i]);
	/* libidn2 allocates with malloc; idn2_free where it differs. */
	idn2_free(ascii);
	return 0;
}
