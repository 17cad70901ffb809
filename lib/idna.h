/*
 * idna.h - internationalised domain names and addresses (RFC 5890, RFC
 * 6531), for comparing domains in one form.
 *
 * Credentials' sending domains, the registry of verified sending domains
 * and DKIM's d= all hold A-labels (xn--...); an address that arrives with
 * SMTPUTF8 may carry U-labels (bücher.example). Both are compared after
 * idna_domain_ascii, which leaves ASCII names as they are (lower-cased)
 * and converts the others with libidn2 (IDNA2008, NFC on input, UTS 46
 * non-transitional mapping, as browsers and mail providers do).
 */
#ifndef PETREL_IDNA_H
#define PETREL_IDNA_H

#include <stddef.h>

/*
 * Writes domain in its ASCII form (lower-case A-labels) into out (size
 * bytes). Returns 0, or -1 if domain is not a valid name or does not fit.
 */
int	idna_domain_ascii(const char *domain, char *out, size_t size);

#endif
