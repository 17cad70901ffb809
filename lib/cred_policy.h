/*
 * cred_policy.h - the policy of one SMTP AUTH credential: allowed sender
 * domains and client networks, and per-credential limits.
 *
 * smtpd enforces a policy it reads with cred_policy_get (lib/cred, which
 * stores it as attributes of the user's record); relayctl builds one from
 * its command line with the parse helpers below and prints one with the
 * format helpers. The lists are parsed, matched and formatted here, in
 * memory only. See relayctl(8).
 */
#ifndef PETREL_CRED_POLICY_H
#define PETREL_CRED_POLICY_H

#include <sys/socket.h>

#include <stddef.h>
#include <stdint.h>

#include "cidr.h"
#include "vbuf.h"

/* Bounds on a policy; the lists must fit one attribute value (64 KiB). */
#define CRED_POLICY_DOMAINS_MAX		128
#define CRED_POLICY_NETWORKS_MAX	128
#define CRED_POLICY_POOL_MAX		63	/* as CFG_POOL_NAME_MAX */

/*
 * A credential's policy, as smtpd enforces it. Filled by cred_policy_get
 * (release with cred_policy_release); relayctl fills one with the
 * cred_policy_parse_* helpers to add or change a user.
 */
struct cred_policy {
	char		**domains;	/* allowed sender domains, lower */
					/* case; 0 = any */
	size_t		 ndomains;
	struct cidr	*networks;	/* allowed client networks; 0 = any */
	size_t		 nnetworks;
	uint64_t	 max_per_hour;	/* messages; 0 = no limit */
	uint64_t	 max_per_day;
	uint64_t	 max_recipients; /* per message; 0 = global */
					/* smtpd limit */
	uint64_t	 max_size;	/* bytes; 0 = global smtpd limit */
	int		 disabled;
	int64_t		 created;
	/* The previous secret is accepted until then (epoch); 0 = no */
	/* rotation grace period running. */
	int64_t		 old_valid_until;
	/*
	 * No delivery reports (DSNs) for this credential's messages: the
	 * application takes events instead (issue 9). 0, the default, is on.
	 */
	int		 dsn_off;
	/*
	 * The source address pool its mail leaves from (smtp.pools,
	 * smtp(8)); "" is the pool "default".
	 */
	char		 pool[CRED_POLICY_POOL_MAX + 1];
	/*
	 * The credential's messages go in the bulk lane (issue 11, qmgr(8)):
	 * behind transactional ones and off the connections a destination
	 * reserves for them. 0, the default, is the transactional lane.
	 */
	int		 bulk;
};

/* Field selectors for cred_user_set and cred_user_add_policy. */
#define CRED_POLICY_DOMAINS	0x01
#define CRED_POLICY_NETWORKS	0x02
#define CRED_POLICY_MAX_PER_HOUR 0x04
#define CRED_POLICY_MAX_PER_DAY	0x08
#define CRED_POLICY_MAX_RCPT	0x10
#define CRED_POLICY_MAX_SIZE	0x20
#define CRED_POLICY_DISABLED	0x40
#define CRED_POLICY_DSN_OFF	0x80
#define CRED_POLICY_LANE	0x100
#define CRED_POLICY_POOL	0x200
#define CRED_POLICY_ALL		0x3ff

/* Frees the lists and zeroes the policy; safe on a zeroed policy. */
void	cred_policy_release(struct cred_policy *);
/*
 * 1 if domain (case-insensitive) equals an allowed domain or is a
 * subdomain of one; 1 when the list is empty.
 */
int	cred_policy_domain_ok(const struct cred_policy *, const char *domain);
/* 1 if sa is inside an allowed network; 1 when the list is empty. */
int	cred_policy_network_ok(const struct cred_policy *,
	    const struct sockaddr *sa);
/*
 * Replace the domain (network) list of pol with the comma-separated list
 * in s; "" means none (any). Domains are checked with smtpcmd_domain_ok
 * and lower-cased; networks are CIDR prefixes (a bare address is a host),
 * stored masked. At most CRED_POLICY_DOMAINS_MAX (_NETWORKS_MAX) entries.
 * Returns 0, or -1 with the reason in why (pol unchanged).
 */
int	cred_policy_parse_domains(struct cred_policy *, const char *s,
	    struct vbuf *why);
int	cred_policy_parse_networks(struct cred_policy *, const char *s,
	    struct vbuf *why);
/*
 * Sets pol's pool from s: a pool name (1 to CRED_POLICY_POOL_MAX of
 * a-z 0-9 _ -); "default" is stored as "". Returns 0, or -1 with the
 * reason in why (pol unchanged). Whether the configuration has the pool
 * is for the caller to check.
 */
int	cred_policy_parse_pool(struct cred_policy *, const char *s,
	    struct vbuf *why);
/* Appends the domain (network) list to out, comma-separated ("" if none). */
void	cred_policy_format_domains(const struct cred_policy *,
	    struct vbuf *out);
void	cred_policy_format_networks(const struct cred_policy *,
	    struct vbuf *out);
/* Appends one prefix as "address/prefix" to out. */
void	cred_policy_format_cidr(const struct cidr *, struct vbuf *out);

#endif
