/*
 * smtpcmd.h - SMTP command and address parsing (RFC 5321), shared by smtpd
 * (commands from clients) and smtp (reply codes from servers).
 *
 * Parsers work on one line without its CRLF and never trust the input: all
 * lengths are bounded by the RFC limits named here.
 */
#ifndef PETREL_SMTPCMD_H
#define PETREL_SMTPCMD_H

#include <stddef.h>
#include <stdint.h>

#include "vbuf.h"

#define SMTP_LOCAL_MAX		64	/* RFC 5321 4.5.3.1.1 */
#define SMTP_DOMAIN_MAX		255	/* RFC 5321 4.5.3.1.2 */
#define SMTP_PATH_MAX		256	/* RFC 5321 4.5.3.1.3 */
#define SMTP_CMDLINE_MAX	1000	/* text line incl. CRLF, 4.5.3.1.6 */

enum smtpcmd_verb {
	SMTPCMD_UNKNOWN = 0,
	SMTPCMD_HELO,
	SMTPCMD_EHLO,
	SMTPCMD_MAIL,
	SMTPCMD_RCPT,
	SMTPCMD_DATA,
	SMTPCMD_RSET,
	SMTPCMD_NOOP,
	SMTPCMD_QUIT,
	SMTPCMD_VRFY,
	SMTPCMD_HELP,
	SMTPCMD_STARTTLS,
	SMTPCMD_AUTH,
	SMTPCMD_BDAT,
	SMTPCMD_EXPN,
};

struct smtpcmd {
	enum smtpcmd_verb	 verb;
	const char		*name;	/* canonical upper-case verb */
	const char		*arg;	/* after the verb and one space; "" */
};

/* Splits line into verb and argument; arg points into line. */
void	smtpcmd_parse(const char *line, struct smtpcmd *);

/*
 * Parses a MAIL FROM:/RCPT TO: argument: keyword ("FROM" or "TO"), then
 * ":<path>" and optional ESMTP parameters. The mailbox (without brackets
 * and source route) goes to addr (SMTP_PATH_MAX + 1 bytes); *params points
 * at the parameters in arg. The null path "<>" is allowed only when
 * allow_null. Returns 0, or -1 with a reply-ready reason in why.
 */
int	smtpcmd_path(const char *arg, const char *keyword, int allow_null,
	    char *addr, const char **params, struct vbuf *why);

/*
 * Iterates ESMTP parameters "KEY[=VALUE] ...": copies the next key (upper
 * case, <=32 bytes) and value (<=256 bytes) and advances *p. Returns 1 for
 * a parameter, 0 at the end, -1 if malformed.
 */
int	smtpcmd_param_next(const char **p, char *key, size_t keysize,
	    char *value, size_t valuesize);

/*
 * Parses a BDAT argument (RFC 3030): "chunk-size [LAST]", the size a
 * decimal of at most 19 digits. Returns 0, or -1 if malformed (the
 * caller cannot then know where the chunk ends).
 */
int	smtpcmd_bdat(const char *arg, uint64_t *size, int *last);

/* 1 if s is a syntactically valid domain or address literal. */
int	smtpcmd_domain_ok(const char *s);
/* The domain part of an address ("" for the null path), lower-cased. */
void	smtpcmd_addr_domain(const char *addr, char *out, size_t size);

/*
 * Server replies: parses "DDD[- ]text". Returns the code (200-599) and sets
 * *last (0 for a "DDD-" continuation), or -1 if malformed.
 */
int	smtpcmd_reply_code(const char *line, int *last);
/*
 * Copies the enhanced status code (RFC 3463 "X.Y.Z") at the start of text
 * into dsn (16 bytes) if present and consistent with code's class; else
 * writes "X.0.0" from the code. Returns 1 if the reply had one.
 */
int	smtpcmd_reply_dsn(int code, const char *text, char *dsn);

#endif
