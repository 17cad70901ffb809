/*
 * check_bclass.c - unit tests for lib/bclass: bounce classification.
 *
 * Every rule of the shipped etc/bounce-classes.yaml is driven by a real
 * reply text from the table below (the providers' texts, with their sources
 * in the file's header), and every rule of the file must be hit by some
 * entry, so a new rule without a test fails here. Also: the code-only
 * fallbacks (RFC 3463, RFC 5321), hard and soft, first match wins across
 * two files, and the load errors with FILE:LINE. Run from the top of the
 * tree; temporary files live in a mkdtemp(3) directory.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bclass.h"
#include "cfg.h"
#include "vbuf.h"

#define SHIPPED		"etc/bounce-classes.yaml"

/* One real reply: the rule that must decide it and its class. */
struct bclass_case {
	const char	*rule;		/* rule name in SHIPPED */
	const char	*dsn;		/* as smtp passes it; "" none */
	const char	*reply;
	enum bclass	 cls;
	int		 hard;
};

static const struct bclass_case cases[] = {
	/* Gmail. */
	{ "gmail-unknown-user", "", "550 5.1.1 The email account that you "
	    "tried to reach does not exist. Please try double-checking the "
	    "recipient's email address for typos or unnecessary spaces. "
	    "Learn more at https://support.google.com/mail/?p=NoSuchUser "
	    "d9443c01a7336-1f6a3b1c2d3si12345 - gsmtp",
	    BCLASS_BAD_MAILBOX, 1 },
	{ "gmail-disabled-user", "", "550 5.2.1 The email account that you "
	    "tried to reach is disabled. Learn more at "
	    "https://support.google.com/mail/?p=DisabledUser "
	    "a1si1234567qkb.123 - gsmtp", BCLASS_INACTIVE_MAILBOX, 1 },
	{ "gmail-over-quota", "", "452 4.2.2 The email account that you "
	    "tried to reach is over quota. Please direct the recipient to "
	    "https://support.google.com/mail/?p=OverQuotaTemp "
	    "x12si3456789pfb.1 - gsmtp", BCLASS_QUOTA_ISSUES, 0 },
	{ "gmail-over-quota", "", "552 5.2.2 The recipient's inbox is out "
	    "of storage space. Please direct the recipient to "
	    "https://support.google.com/mail/?p=OverQuotaPerm "
	    "x12si3456789pfb.1 - gsmtp", BCLASS_QUOTA_ISSUES, 1 },
	{ "gmail-recipient-rate", "", "450 4.2.1 The user you are trying to "
	    "contact is receiving mail too quickly. Please resend your "
	    "message at a later time. If the user is able to receive mail at "
	    "that time, your message will be delivered. For more "
	    "information, go to https://support.google.com/mail/?p=ReceivingRate"
	    " - gsmtp", BCLASS_POLICY_RELATED, 0 },
	{ "gmail-rate-limit", "", "421 4.7.28 [203.0.113.5 15] Our system "
	    "has detected an unusual rate of unsolicited mail originating "
	    "from your IP address. To protect our users from spam, mail sent "
	    "from your IP address has been temporarily rate limited. Please "
	    "visit https://support.google.com/mail/?p=UnsolicitedRateLimitError"
	    " to review our Bulk Email Senders Guidelines. - gsmtp",
	    BCLASS_POLICY_RELATED, 0 },
	{ "gmail-rate-limit", "", "421 4.7.0 [216.194.173.80 15] Our system "
	    "has detected an unusual rate of unsolicited mail originating "
	    "from your IP address. To protect our users from spam, mail sent "
	    "from your IP address has been temporarily rate limited. Please "
	    "visit https://support.google.com/mail/?p=UnsolicitedRateLimitError"
	    " to review our Bulk Email Senders Guidelines. "
	    "p4si3522070uam.9 - gsmtp", BCLASS_POLICY_RELATED, 0 },
	{ "gmail-ip-reputation", "", "550 5.7.1 [31.14.138.158 1] Our system "
	    "has detected an unusual rate of unsolicited mail originating "
	    "from your IP address. To protect our users from spam, mail sent "
	    "from your IP address has been blocked. Please visit "
	    "https://support.google.com/mail/?p=UnsolicitedIPError to review "
	    "our Bulk Email Senders Guidelines. s25si6573124wmj.54 - gsmtp",
	    BCLASS_SPAM_RELATED, 1 },
	{ "gmail-low-reputation", "", "550 5.7.1 [82.192.84.102 12] Our "
	    "system has detected that this message is likely unsolicited "
	    "mail. To reduce the amount of spam sent to Gmail, this message "
	    "has been blocked. Please visit "
	    "https://support.google.com/mail/?p=UnsolicitedMessageError for "
	    "more information. h52si12217192ede.134 - gsmtp",
	    BCLASS_SPAM_RELATED, 1 },
	{ "gmail-low-reputation", "", "421 4.7.0 [203.0.113.5 15] Our system "
	    "has detected that this message is suspicious due to the very "
	    "low reputation of the sending domain. To best protect our users "
	    "from spam, the message has been blocked. Please visit "
	    "https://support.google.com/mail/answer/188131 for more "
	    "information. - gsmtp", BCLASS_SPAM_RELATED, 0 },
	{ "gmail-dmarc", "", "550 5.7.26 Unauthenticated email from "
	    "example.com is not accepted due to domain's DMARC policy. "
	    "Please contact the administrator of example.com domain if this "
	    "was a legitimate mail. To learn about the DMARC initiative, go "
	    "to https://support.google.com/mail/?p=DmarcRejection - gsmtp",
	    BCLASS_POLICY_RELATED, 1 },
	{ "gmail-dmarc", "", "550 5.7.26 This mail is unauthenticated, which "
	    "poses a security risk to the sender and Gmail users, and has "
	    "been blocked. The sender must authenticate with at least one of "
	    "SPF or DKIM. For this message, DKIM checks did not pass and SPF "
	    "check for [example.com] did not pass with ip: [203.0.113.5]. "
	    "- gsmtp", BCLASS_POLICY_RELATED, 1 },
	{ "gmail-spf", "", "550 5.7.27 Your email has been blocked because "
	    "the sender is unauthenticated. Gmail requires all senders to "
	    "authenticate with either SPF or DKIM. Authentication results: "
	    "SPF [example.com] with ip: [203.0.113.5] = did not pass - gsmtp",
	    BCLASS_POLICY_RELATED, 1 },
	{ "gmail-spf", "", "421 4.7.27 SPF authentication didn't pass. "
	    "In order to protect our users from spam, mail sent from your "
	    "IP address has been rate limited. - gsmtp",
	    BCLASS_POLICY_RELATED, 0 },
	{ "gmail-ptr", "", "421 4.7.23 The sending IP does not have a PTR "
	    "record. - gsmtp", BCLASS_BAD_CONFIGURATION, 0 },
	{ "gmail-ptr", "", "550 5.7.25 [203.0.113.5] The IP address sending "
	    "this message does not have a PTR record setup, or the "
	    "corresponding forward DNS entry does not point to the sending "
	    "IP. As a policy, Gmail does not accept messages from IPs with "
	    "missing PTR records. - gsmtp", BCLASS_BAD_CONFIGURATION, 1 },
	{ "gmail-ip-not-authorized", "", "550 5.7.1 [203.0.113.5] The IP "
	    "you're using to send mail is not authorized to send email "
	    "directly to our servers. Please use the SMTP relay at your "
	    "service provider instead. - gsmtp", BCLASS_SPAM_RELATED, 1 },
	{ "gmail-not-rfc5322", "", "550 5.7.1 [188.117.59.209 11] Our system "
	    "has detected that this message is not RFC 2822 compliant. To "
	    "reduce the amount of spam sent to Gmail, this message has been "
	    "blocked. Please review RFC 2822 specifications for more "
	    "information. nr8si8771738lab.216", BCLASS_CONTENT_RELATED, 1 },
	{ "gmail-message-size", "", "552 5.3.4 Your message exceeded "
	    "Google's message size limits. Please visit "
	    "https://support.google.com/mail/?p=MaxSizeError to view our "
	    "size guidelines. - gsmtp", BCLASS_CONTENT_RELATED, 1 },
	{ "gmail-security-issue", "", "552 5.7.0 This message was blocked "
	    "because its content presents a potential security issue. Please "
	    "visit https://support.google.com/mail/?p=BlockedMessage to "
	    "review our message content and attachment content guidelines. "
	    "- gsmtp", BCLASS_VIRUS_RELATED, 1 },

	/* Microsoft. */
	{ "microsoft-mailbox-unavailable", "", "550 5.5.0 Requested action "
	    "not taken: mailbox unavailable (S2017062302). "
	    "[HE1EUR01FT020.eop-EUR01.prod.protection.outlook.com "
	    "2023-09-19T15:05:34.324Z 08DBB71928CA8F8E]",
	    BCLASS_BAD_MAILBOX, 1 },
	{ "microsoft-access-denied", "", "550 5.4.1 Recipient address "
	    "rejected: Access denied. AS(201806281) "
	    "[BN1NAM02FT022.eop-nam02.prod.protection.outlook.com]",
	    BCLASS_BAD_MAILBOX, 1 },
	{ "microsoft-access-denied", "", "550 5.4.1 Recipient address "
	    "rejected: Access denied. [CY4PEPF0000EE3C.namprd03.prod."
	    "outlook.com 2023-09-18T12:48:32.808Z 08DBB45899852BA7]",
	    BCLASS_BAD_MAILBOX, 1 },
	{ "microsoft-recipient-not-found", "", "550 5.1.10 "
	    "RESOLVER.ADR.RecipientNotFound; Recipient "
	    "firstname.lastname@company.com not found by SMTP address lookup",
	    BCLASS_BAD_MAILBOX, 1 },
	{ "microsoft-recipient-not-found", "", "550 5.1.1 "
	    "RESOLVER.ADR.RecipNotFound; not found", BCLASS_BAD_MAILBOX, 1 },
	{ "microsoft-mailbox-full", "", "554 5.2.2 mailbox full; "
	    "STOREDRV.Deliver.Exception:QuotaExceededException."
	    "MapiExceptionShutoffQuotaExceeded", BCLASS_QUOTA_ISSUES, 1 },
	{ "microsoft-block-list", "", "550 5.7.1 Unfortunately, messages "
	    "from [11.22.33.44] weren't sent. Please contact your Internet "
	    "service provider since part of their network is on our block "
	    "list (S3140). You can also refer your provider to "
	    "http://mail.live.com/mail/troubleshooting.aspx#errors. "
	    "[DM6NAM12FT056.eop-nam12.prod.protection.outlook.com]",
	    BCLASS_SPAM_RELATED, 1 },
	{ "microsoft-banned-sender", "", "550 5.7.606 Access denied, banned "
	    "sending IP [203.0.113.5]. To request removal from this list "
	    "please visit https://sender.office.com/ and follow the "
	    "directions. For more information please go to "
	    "http://go.microsoft.com/fwlink/?LinkID=526655 AS(1430)",
	    BCLASS_SPAM_RELATED, 1 },
	{ "microsoft-banned-sender", "", "550 5.7.511 Access denied, banned "
	    "sender[203.0.113.5]. To request removal from this list please "
	    "forward this message to delist@microsoft.com. For more "
	    "information please go to "
	    "http://go.microsoft.com/fwlink/?LinkId=526653. AS(1410)",
	    BCLASS_SPAM_RELATED, 1 },
	{ "microsoft-banned-sender", "", "550 5.7.708 Service unavailable. "
	    "Access denied, traffic not accepted from this IP. For more "
	    "information please go to "
	    "http://go.microsoft.com/fwlink/?LinkId=526653 AS(7233)",
	    BCLASS_SPAM_RELATED, 1 },
	{ "microsoft-ip-reputation", "", "451 4.7.650 The mail server "
	    "[203.0.113.10] has been temporarily rate limited due to IP "
	    "reputation. For e-mail delivery information, see "
	    "https://aka.ms/postmaster (S775)", BCLASS_SPAM_RELATED, 0 },
	{ "microsoft-server-busy", "", "451 4.7.500 Server busy. Please try "
	    "again later from [203.0.113.5]. (S77714) "
	    "[DB5EUR03FT034.eop-EUR03.prod.protection.outlook.com]",
	    BCLASS_POLICY_RELATED, 0 },
	{ "microsoft-auth-level", "", "550 5.7.515 Access denied, sending "
	    "domain [example.com] does not meet the required authentication "
	    "level. The sender's domain in the 5322.From address doesn't "
	    "meet the authentication requirements defined for the sender.",
	    BCLASS_POLICY_RELATED, 1 },

	/* Yahoo / AOL. */
	{ "yahoo-unknown-user", "", "554 delivery error: dd This user "
	    "doesn't have a yahoo.com account (someone@yahoo.com) [0] - "
	    "mta1234.mail.ne1.yahoo.com", BCLASS_BAD_MAILBOX, 1 },
	{ "yahoo-mailbox-not-found", "", "552 1 Requested mail action "
	    "aborted, mailbox not found", BCLASS_BAD_MAILBOX, 1 },
	{ "yahoo-over-quota", "", "554 delivery error: dd Sorry, your "
	    "message to someone@yahoo.com cannot be delivered. This account "
	    "is over quota. [0] - mta1234.mail.ne1.yahoo.com",
	    BCLASS_QUOTA_ISSUES, 1 },
	{ "yahoo-permanently-deferred", "", "421 4.7.1 [TS03] All messages "
	    "from 203.0.113.5 will be permanently deferred; Retrying will "
	    "NOT succeed. See https://postmaster.yahooinc.com/error-codes",
	    BCLASS_SPAM_RELATED, 0 },
	{ "yahoo-deferred", "", "421 4.7.0 [TSS04] Messages from "
	    "203.0.113.5 temporarily deferred due to unexpected volume or "
	    "user complaints - 4.16.55.1; see "
	    "https://postmaster.yahooinc.com/error-codes",
	    BCLASS_POLICY_RELATED, 0 },
	{ "yahoo-policy", "", "554 5.7.9 Message not accepted for policy "
	    "reasons.  See https://postmaster.yahooinc.com/error-codes",
	    BCLASS_POLICY_RELATED, 1 },

	/* Apple. */
	{ "apple-inactive", "", "550 5.1.1 <someone@icloud.com>: inactive "
	    "email address", BCLASS_INACTIVE_MAILBOX, 1 },
	{ "apple-unknown-user", "", "550 5.1.1 <someone@icloud.com>: user "
	    "does not exist", BCLASS_BAD_MAILBOX, 1 },
	{ "apple-over-quota", "", "552 5.2.2 <someone@icloud.com>: user is "
	    "over quota", BCLASS_QUOTA_ISSUES, 1 },
	{ "apple-local-policy", "", "550 5.7.1 [CS01] Message rejected due "
	    "to local policy. Please visit "
	    "https://support.apple.com/en-us/HT204137", BCLASS_SPAM_RELATED,
	    1 },
	{ "apple-excessive-volume", "", "421 4.7.1 Messages to "
	    "someone@icloud.com deferred due to excessive volume. Try again "
	    "later - https://support.apple.com/en-us/HT204137",
	    BCLASS_POLICY_RELATED, 0 },

	/* Petrel's own reasons, with the codes smtp gives them. */
	{ "petrel-dns-temporary", "4.4.3", "Host or domain name not found. "
	    "Name service error for name=example.org type=MX: server "
	    "failure", BCLASS_ROUTING_ERRORS, 0 },
	{ "petrel-dns-not-found", "5.4.4", "Host or domain name not found. "
	    "Name service error for name=nowhere.invalid type=MX: no such "
	    "domain", BCLASS_BAD_DOMAIN, 1 },
	{ "petrel-null-mx", "5.1.10", "Domain example.org does not accept "
	    "mail (nullMX)", BCLASS_BAD_DOMAIN, 1 },
	{ "petrel-connect-no-answer", "4.4.1", "connect to "
	    "mx.example.org[192.0.2.1]:25: Connection refused",
	    BCLASS_NO_ANSWER_FROM_HOST, 0 },
	{ "petrel-connect-no-answer", "4.4.1", "connect to "
	    "mx.example.org[192.0.2.1]:25: Connection timed out",
	    BCLASS_NO_ANSWER_FROM_HOST, 0 },
	{ "petrel-connect-no-answer", "4.4.1", "no address to connect to",
	    BCLASS_NO_ANSWER_FROM_HOST, 0 },
	{ "petrel-connect-failed", "4.4.1", "connect to "
	    "mx.example.org[2001:db8::1]:25: Network is unreachable",
	    BCLASS_BAD_CONNECTION, 0 },
	{ "petrel-lost-connection", "4.4.2", "lost connection with "
	    "mx.example.org[192.0.2.1] while sending RCPT TO",
	    BCLASS_BAD_CONNECTION, 0 },
	{ "petrel-lost-connection", "4.4.2", "conversation with "
	    "mx.example.org[192.0.2.1] timed out while sending message body",
	    BCLASS_BAD_CONNECTION, 0 },
	{ "petrel-tls-failed", "4.7.5", "Cannot start TLS with "
	    "mx.example.org[192.0.2.1]: handshake: certificate verify "
	    "failed", BCLASS_BAD_CONNECTION, 0 },
	{ "petrel-bad-reply", "4.5.0", "malformed reply from "
	    "mx.example.org[192.0.2.1] while sending MAIL FROM: 2x0 ok",
	    BCLASS_PROTOCOL_ERRORS, 0 },

	/* Generic texts. */
	{ "virus", "", "554 5.7.1 Message rejected: virus found: "
	    "Eicar-Test-Signature", BCLASS_VIRUS_RELATED, 1 },
	{ "blocklist", "", "554 5.7.1 Service unavailable; Client host "
	    "[203.0.113.5] blocked using zen.spamhaus.org; "
	    "https://www.spamhaus.org/query/ip/203.0.113.5",
	    BCLASS_SPAM_RELATED, 1 },
	{ "blocklist", "", "553 5.7.1 [BL21] Connections will not be "
	    "accepted from 203.0.113.5, because the ip is in Spamhaus's "
	    "list; see http://postmaster.yahoo.com/550-bl23.html",
	    BCLASS_SPAM_RELATED, 1 },
	{ "blocklist", "", "550 5.7.1 Your email was rejected due to having "
	    "a domain present in the Spamhaus DBL -- see "
	    "https://www.spamhaus.org/dbl/", BCLASS_SPAM_RELATED, 1 },
	{ "sender-auth", "", "550 5.7.9 This mail has been blocked because "
	    "the sender is unauthenticated. Yahoo requires all senders to "
	    "authenticate with either SPF or DKIM.", BCLASS_POLICY_RELATED,
	    1 },
	{ "microsoft-auth-level", "", "550 5.7.509 Access denied, sending "
	    "domain [example.com] does not pass DMARC verification and has a "
	    "DMARC policy of reject.", BCLASS_POLICY_RELATED, 1 },
	{ "sender-auth", "", "550 5.7.1 Email rejected per DMARC policy for "
	    "example.com", BCLASS_POLICY_RELATED, 1 },
	{ "dmarc-policy", "", "550 Your message was rejected due to "
	    "example.com DMARC policy.", BCLASS_POLICY_RELATED, 1 },
	{ "spam-content", "", "550 5.7.350 Remote server returned message "
	    "detected as spam", BCLASS_SPAM_RELATED, 1 },
	{ "greylisting", "", "450 4.2.0 <someone@example.org>: Recipient "
	    "address rejected: Greylisted, see "
	    "http://postgrey.schweikert.ch/help/example.org.html",
	    BCLASS_POLICY_RELATED, 0 },
	{ "greylisting", "", "451 4.7.1 Greylisting in action, please come "
	    "back later", BCLASS_POLICY_RELATED, 0 },
	{ "greylisting", "", "450 4.7.1 <someone@example.org>: Recipient "
	    "address rejected: Greylisted for 300 seconds (anti-spam)",
	    BCLASS_POLICY_RELATED, 0 },
	{ "greylisting-mimecast", "", "451 Internal resource is temporarily "
	    "unavailable - https://community.mimecast.com/docs/DOC-1369#451 "
	    "[Aj3QXapeMpqZYaeFwWhjzw.us32]", BCLASS_POLICY_RELATED, 0 },
	{ "rate-limit", "", "421 Too many concurrent connections from this "
	    "client (G2)", BCLASS_POLICY_RELATED, 0 },
	{ "relay-denied", "", "554 5.7.1 <someone@example.org>: Relay "
	    "access denied", BCLASS_RELAYING_ISSUES, 1 },
	{ "invalid-sender", "", "553 5.1.8 <app@example.com>: Sender "
	    "address rejected: Domain not found", BCLASS_INVALID_SENDER, 1 },
	{ "message-too-big", "", "552 5.3.4 Message size exceeds fixed "
	    "maximum message size", BCLASS_CONTENT_RELATED, 1 },
	{ "unknown-user", "", "550 5.1.1 <nobody@example.org>: Recipient "
	    "address rejected: User unknown in virtual mailbox table",
	    BCLASS_BAD_MAILBOX, 1 },
	{ "unknown-user", "", "550 No such user here", BCLASS_BAD_MAILBOX,
	    1 },
	{ "mailbox-full", "", "452 4.2.2 <someone@example.org>: Mailbox "
	    "full", BCLASS_QUOTA_ISSUES, 0 },
	{ "mailbox-inactive", "", "550 5.2.1 <someone@example.org>: "
	    "Mailbox disabled, not accepting messages",
	    BCLASS_INACTIVE_MAILBOX, 1 },
	{ "bad-domain", "", "550 5.1.2 <someone@nowhere.example>: "
	    "Recipient address rejected: Domain not found",
	    BCLASS_BAD_DOMAIN, 1 },
	{ "message-expired", "", "554 5.4.7 Delivery expired (message too "
	    "old) 'timeout'", BCLASS_MESSAGE_EXPIRED, 1 },
};

static char tmpdir[64];

static void	setup(void);
static void	teardown(void);
static char	*write_rules(const char *, const char *);
static void	expect_load_error(const char *, const char *);
static Suite	*bclass_suite(void);

static void
setup(void)
{
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/check_bclass.XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(tmpdir));
}

static void
teardown(void)
{
	char cmd[128];

	/* Only files this suite wrote, in its own directory. */
	snprintf(cmd, sizeof(cmd), "%s/a.yaml", tmpdir);
	unlink(cmd);
	snprintf(cmd, sizeof(cmd), "%s/b.yaml", tmpdir);
	unlink(cmd);
	snprintf(cmd, sizeof(cmd), "%s/petrel.yaml", tmpdir);
	unlink(cmd);
	rmdir(tmpdir);
}

/* Writes tmpdir/name; returns its path (static, the last three). */
static char *
write_rules(const char *name, const char *text)
{
	static char path[3][128];
	static int which;
	FILE *fp;

	which = (which + 1) % 3;
	snprintf(path[which], sizeof(path[which]), "%s/%s", tmpdir, name);
	fp = fopen(path[which], "w");
	ck_assert_ptr_nonnull(fp);
	ck_assert_int_eq(fputs(text, fp) >= 0, 1);
	ck_assert_int_eq(fclose(fp), 0);
	return path[which];
}

static void
expect_load_error(const char *text, const char *want)
{
	struct vbuf why;
	char *path = write_rules("a.yaml", text);
	char full[256];

	vbuf_init(&why, 0);
	ck_assert_ptr_null(bclass_load_file(path, &why));
	snprintf(full, sizeof(full), "%s%s", path, want);
	ck_assert_msg(strncmp(why.data, full, strlen(full)) == 0,
	    "got \"%s\", want prefix \"%s\"", why.data, full);
	vbuf_release(&why);
}

/* Every shipped rule decides its real texts, and is hit at least once. */
START_TEST(test_shipped_rules)
{
	struct bclass_rules *rules;
	struct vbuf why;
	const char *rule, *desc;
	size_t i, j, n, len;
	int *hit;
	enum bclass c;

	vbuf_init(&why, 0);
	rules = bclass_load_file(SHIPPED, &why);
	ck_assert_msg(rules != NULL, "%s", why.data);
	n = bclass_count(rules);
	ck_assert_uint_gt(n, 40);
	hit = calloc(n, sizeof(*hit));
	ck_assert_ptr_nonnull(hit);
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		rule = NULL;
		c = bclass_classify(rules, cases[i].dsn, cases[i].reply,
		    &rule);
		ck_assert_ptr_nonnull(rule);
		len = strlen(cases[i].rule);
		ck_assert_msg(strncmp(rule, cases[i].rule, len) == 0 &&
		    strncmp(rule + len, " (", 2) == 0,
		    "case %zu: \"%s\" decided by %s, want %s", i,
		    cases[i].reply, rule, cases[i].rule);
		ck_assert_msg(c == cases[i].cls, "case %zu (%s): class %s, "
		    "want %s", i, cases[i].rule, bclass_name(c),
		    bclass_name(cases[i].cls));
		ck_assert_msg(bclass_hard(cases[i].dsn, cases[i].reply) ==
		    cases[i].hard, "case %zu (%s): hard/soft", i,
		    cases[i].rule);
		for (j = 0; j < n; j++)
			if (strcmp(bclass_rule_desc(rules, j), rule) == 0)
				hit[j] = 1;
	}
	for (j = 0; j < n; j++) {
		desc = bclass_rule_desc(rules, j);
		ck_assert_msg(hit[j], "shipped rule %s has no test case in "
		    "check_bclass.c", desc);
	}
	free(hit);
	bclass_free(rules);
	vbuf_release(&why);
}
END_TEST

/*
 * Reputation refusals (smtp(8) sets the source address aside): the
 * shipped blocklist and reputation rules, not other spam or policy
 * refusals, not greylisting, and nothing without rules.
 */
START_TEST(test_reputation)
{
	struct bclass_rules *rules;
	struct vbuf why;

	vbuf_init(&why, 0);
	rules = bclass_load_file(SHIPPED, &why);
	ck_assert_msg(rules != NULL, "%s", why.data);
	ck_assert_int_eq(bclass_reputation(rules, NULL, "554 5.7.1 Service "
	    "unavailable; Client host [192.0.2.1] blocked using "
	    "zen.spamhaus.org"), 1);
	ck_assert_int_eq(bclass_reputation(rules, NULL, "451 4.7.650 The "
	    "mail server [192.0.2.1] has been temporarily rate limited due "
	    "to IP reputation."), 1);
	ck_assert_int_eq(bclass_reputation(rules, NULL, "450 4.2.0 "
	    "<a@example.org>: Recipient address rejected: Greylisted"), 0);
	ck_assert_int_eq(bclass_reputation(rules, NULL, "550 5.1.1 "
	    "<a@example.org>: Recipient address rejected: User unknown"),
	    0);
	ck_assert_int_eq(bclass_reputation(rules, "5.7.1", "550 5.7.1 "
	    "Message rejected: DMARC policy"), 0);
	ck_assert_int_eq(bclass_reputation(NULL, NULL, "554 5.7.1 blocked "
	    "using zen.spamhaus.org"), 0);
	bclass_free(rules);
	vbuf_release(&why);
}
END_TEST

/* Without a rule, the enhanced code, then the reply code, decides. */
START_TEST(test_code_fallback)
{
	static const struct {
		const char	*dsn, *reply;
		enum bclass	 cls;
		const char	*rule;
	} t[] = {
		{ "5.1.1", "550 whatever", BCLASS_BAD_MAILBOX,
		    "RFC 3463 X.1.1" },
		{ "", "550 5.1.2 whatever", BCLASS_BAD_DOMAIN,
		    "RFC 3463 X.1.2" },
		{ "", "550 5.1.3 x", BCLASS_BAD_MAILBOX, "RFC 3463 X.1.3" },
		{ "", "553 5.1.7 x", BCLASS_INVALID_SENDER,
		    "RFC 3463 X.1.7" },
		{ "", "553 5.1.8 x", BCLASS_INVALID_SENDER,
		    "RFC 3463 X.1.8" },
		{ "5.1.10", "", BCLASS_BAD_DOMAIN, "RFC 3463 X.1.10" },
		{ "", "550 5.1.0 x", BCLASS_OTHER, "RFC 3463 X.1.0" },
		{ "", "550 5.2.1 x", BCLASS_INACTIVE_MAILBOX,
		    "RFC 3463 X.2.1" },
		{ "", "452 4.2.2 x", BCLASS_QUOTA_ISSUES, "RFC 3463 X.2.2" },
		{ "", "552 5.2.3 x", BCLASS_CONTENT_RELATED,
		    "RFC 3463 X.2.3" },
		{ "", "451 4.3.5 x", BCLASS_BAD_CONFIGURATION,
		    "RFC 3463 X.3.5" },
		{ "4.4.1", "x", BCLASS_NO_ANSWER_FROM_HOST,
		    "RFC 3463 X.4.1" },
		{ "4.4.2", "x", BCLASS_BAD_CONNECTION, "RFC 3463 X.4.2" },
		{ "4.4.3", "x", BCLASS_ROUTING_ERRORS, "RFC 3463 X.4.3" },
		{ "5.4.4", "x", BCLASS_BAD_DOMAIN, "RFC 3463 X.4.4" },
		{ "4.4.7", "x", BCLASS_MESSAGE_EXPIRED, "RFC 3463 X.4.7" },
		{ "4.4.9", "x", BCLASS_ROUTING_ERRORS, "RFC 3463 X.4.0" },
		{ "", "501 5.5.4 x", BCLASS_PROTOCOL_ERRORS,
		    "RFC 3463 X.5.0" },
		{ "", "554 5.6.0 x", BCLASS_CONTENT_RELATED,
		    "RFC 3463 X.6.0" },
		{ "", "554 5.7.1 x", BCLASS_POLICY_RELATED,
		    "RFC 3463 X.7.0" },
		{ "", "550 5.7.13 x", BCLASS_INACTIVE_MAILBOX,
		    "RFC 3463 X.7.13" },
		{ "", "550 5.7.27 x", BCLASS_INVALID_SENDER,
		    "RFC 3463 X.7.27" },
		{ "", "552 too big", BCLASS_QUOTA_ISSUES, "RFC 5321 552" },
		{ "", "553 no", BCLASS_BAD_MAILBOX, "RFC 5321 553" },
		{ "", "500 what", BCLASS_PROTOCOL_ERRORS, "RFC 5321 500" },
		{ "", "421 bye", BCLASS_NO_ANSWER_FROM_HOST,
		    "RFC 5321 421" },
		{ "", "554 no", BCLASS_OTHER, "default" },
		{ "", "", BCLASS_OTHER, "default" },
		{ NULL, NULL, BCLASS_OTHER, "default" },
		/* A 4xx code's text is not read as a 5.x.x. */
		{ "", "450 5.1.1 x", BCLASS_OTHER, "default" },
		/* Not enhanced codes. */
		{ "", "550 5.1 x", BCLASS_OTHER, "default" },
		{ "", "550 5.1.1000 x", BCLASS_OTHER, "default" },
	};
	const char *rule;
	size_t i;
	enum bclass c;

	for (i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		rule = NULL;
		c = bclass_classify(NULL, t[i].dsn, t[i].reply, &rule);
		ck_assert_msg(c == t[i].cls, "%zu: %s %s: %s, want %s", i,
		    t[i].dsn, t[i].reply, bclass_name(c),
		    bclass_name(t[i].cls));
		ck_assert_str_eq(rule, t[i].rule);
	}
	/* rule may be NULL. */
	ck_assert_int_eq(bclass_classify(NULL, "5.1.1", "", NULL),
	    BCLASS_BAD_MAILBOX);
	ck_assert_int_eq(bclass_hard("5.1.1", "450 x"), 1);
	ck_assert_int_eq(bclass_hard("", "550 x"), 1);
	ck_assert_int_eq(bclass_hard("", "451 4.3.0 x"), 0);
	ck_assert_int_eq(bclass_hard(NULL, NULL), 0);
}
END_TEST

/* Names, suppression and descriptions. */
START_TEST(test_names)
{
	static const char *const names[] = { "bad-mailbox", "bad-domain",
	    "inactive-mailbox", "quota-issues", "no-answer-from-host",
	    "routing-errors", "policy-related", "spam-related",
	    "virus-related", "content-related", "protocol-errors",
	    "invalid-sender", "relaying-issues", "bad-connection",
	    "bad-configuration", "message-expired", "other" };
	enum bclass c;
	size_t i;

	for (i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		ck_assert_str_eq(bclass_name((enum bclass)(i + 1)), names[i]);
		ck_assert_int_eq(bclass_from_name(names[i], &c), 0);
		ck_assert_int_eq(c, (enum bclass)(i + 1));
		ck_assert_uint_lt(strlen(names[i]), BCLASS_NAME_MAX);
		ck_assert_uint_gt(strlen(bclass_describe(c)), 10);
		ck_assert_int_eq(bclass_suppresses(c),
		    c == BCLASS_BAD_MAILBOX || c == BCLASS_BAD_DOMAIN ||
		    c == BCLASS_INACTIVE_MAILBOX);
	}
	ck_assert_int_eq(BCLASS_OTHER, 17);
	ck_assert_int_eq(bclass_from_name("spam", &c), -1);
	ck_assert_int_eq(bclass_from_name(NULL, &c), -1);
	ck_assert_str_eq(bclass_name((enum bclass)0), "other");
	ck_assert_str_eq(bclass_name((enum bclass)99), "other");
	ck_assert_int_eq(bclass_suppresses(BCLASS_POLICY_RELATED), 0);
	ck_assert_int_eq(bclass_suppresses(BCLASS_SPAM_RELATED), 0);
}
END_TEST

/*
 * Status prefixes, codes, all keys together; and the first match wins
 * across two files in the order of bounce.classes.
 */
START_TEST(test_first_match_two_files)
{
	struct vbuf why;
	struct cfg *cfg;
	struct bclass_rules *r;
	const char *a, *b, *rule;
	char text[512];

	a = write_rules("a.yaml",
	    "rules:\n"
	    "  - name: mine\n"
	    "    class: quota-issues\n"
	    "    status: '5.1'\n"
	    "    code: 550\n"
	    "    match: 'FULL(Y)?'\n"
	    "  - name: any-class\n"
	    "    class: relaying-issues\n"
	    "    status: x.7.26\n");
	b = write_rules("b.yaml",
	    "rules:\n"
	    "  - name: mine\n"
	    "    class: bad-mailbox\n"
	    "    match: full\n"
	    "  - name: theirs\n"
	    "    class: virus-related\n"
	    "    match: 'virus'\n");
	snprintf(text, sizeof(text), "bounce:\n  classes: [ %s, %s ]\n",
	    a, b);
	write_rules("petrel.yaml", text);
	snprintf(text, sizeof(text), "%s/petrel.yaml", tmpdir);
	vbuf_init(&why, 0);
	cfg = cfg_load(text, &why);
	ck_assert_msg(cfg != NULL, "%s", why.data);
	ck_assert_uint_eq(cfg->bounce_classes.n, 2);
	r = bclass_load(cfg, &why);
	ck_assert_msg(r != NULL, "%s", why.data);
	ck_assert_uint_eq(why.len, 0);
	ck_assert_uint_eq(bclass_count(r), 4);

	/* a.yaml's rule first: all of status, code and match. */
	ck_assert_int_eq(bclass_classify(r, "", "550 5.1.1 mailbox is full",
	    &rule), BCLASS_QUOTA_ISSUES);
	snprintf(text, sizeof(text), "mine (%s:2)", a);
	ck_assert_str_eq(rule, text);
	/* Another code: a.yaml's rule does not match, b.yaml's does. */
	ck_assert_int_eq(bclass_classify(r, "", "552 5.1.1 mailbox is full",
	    &rule), BCLASS_BAD_MAILBOX);
	snprintf(text, sizeof(text), "mine (%s:2)", b);
	ck_assert_str_eq(rule, text);
	/* "5.1" is a prefix by components: 5.10.1 is not 5.1.x. */
	ck_assert_int_eq(bclass_classify(r, "5.10.1", "550 5.10.1 full",
	    &rule), BCLASS_BAD_MAILBOX);
	/* x is 4 or 5; the dsn argument wins over the reply's code. */
	ck_assert_int_eq(bclass_classify(r, "4.7.26", "450 meh", &rule),
	    BCLASS_RELAYING_ISSUES);
	ck_assert_int_eq(bclass_classify(r, "5.7.26", "550 meh", &rule),
	    BCLASS_RELAYING_ISSUES);
	ck_assert_int_eq(bclass_classify(r, "5.7.261", "550 meh", &rule),
	    BCLASS_POLICY_RELATED);
	ck_assert_str_eq(rule, "RFC 3463 X.7.0");
	ck_assert_int_eq(bclass_classify(r, "", "554 5.7.1 VIRUS found",
	    &rule), BCLASS_VIRUS_RELATED);
	bclass_free(r);
	cfg_free(cfg);

	/* The other order: b.yaml's "mine" decides. */
	snprintf(text, sizeof(text), "bounce:\n  classes: [ %s, %s ]\n",
	    b, a);
	write_rules("petrel.yaml", text);
	snprintf(text, sizeof(text), "%s/petrel.yaml", tmpdir);
	cfg = cfg_load(text, &why);
	ck_assert_ptr_nonnull(cfg);
	r = bclass_load(cfg, &why);
	ck_assert_ptr_nonnull(r);
	ck_assert_int_eq(bclass_classify(r, "", "550 5.1.1 mailbox is full",
	    &rule), BCLASS_BAD_MAILBOX);
	bclass_free(r);
	cfg_free(cfg);
	vbuf_release(&why);
}
END_TEST

/*
 * The default file may be missing (a warning); a file the operator named
 * may not (an error naming petrel.yaml's line and key).
 */
START_TEST(test_missing_files)
{
	struct vbuf why;
	struct cfg *cfg;
	struct bclass_rules *r;
	char path[128], text[512], want[512];

	vbuf_init(&why, 0);
	/* The default (no bounce.classes): missing here, not an error. */
	snprintf(path, sizeof(path), "%s/petrel.yaml", tmpdir);
	write_rules("petrel.yaml", "mail_owner: petrel\n");
	cfg = cfg_load(path, &why);
	ck_assert_ptr_nonnull(cfg);
	ck_assert_uint_eq(cfg->bounce_classes.n, 1);
	ck_assert_str_eq(cfg->bounce_classes.path[0],
	    "/etc/petrel/bounce-classes.yaml");
	ck_assert_uint_eq(cfg->bounce_classes.line[0], 0);
	if (access(cfg->bounce_classes.path[0], F_OK) != 0) {
		r = bclass_load(cfg, &why);
		ck_assert_ptr_nonnull(r);
		ck_assert_uint_eq(bclass_count(r), 0);
		ck_assert_msg(strstr(why.data, "bounce-classes.yaml: cannot "
		    "open") != NULL && strstr(why.data, "status code only") !=
		    NULL, "%s", why.data);
		bclass_free(r);
	}
	cfg_free(cfg);

	/* Named by the operator: an error at its line and key. */
	write_rules("a.yaml", "rules: []\n");
	snprintf(text, sizeof(text), "mail_owner: petrel\nbounce:\n"
	    "  classes: [ %s/a.yaml, %s/nope.yaml ]\n", tmpdir, tmpdir);
	write_rules("petrel.yaml", text);
	cfg = cfg_load(path, &why);
	ck_assert_msg(cfg != NULL, "%s", why.data);
	ck_assert_ptr_null(bclass_load(cfg, &why));
	snprintf(want, sizeof(want), "%s:3: bounce.classes[1]: %s/nope.yaml: "
	    "cannot open: ", path, tmpdir);
	ck_assert_msg(strncmp(why.data, want, strlen(want)) == 0, "%s",
	    why.data);
	cfg_free(cfg);

	/* A single path, written as the default would be: still named. */
	snprintf(text, sizeof(text), "bounce:\n  classes: "
	    "/nonexistent/petrel/bounce-classes.yaml\n");
	write_rules("petrel.yaml", text);
	cfg = cfg_load(path, &why);
	ck_assert_ptr_nonnull(cfg);
	ck_assert_ptr_null(bclass_load(cfg, &why));
	snprintf(want, sizeof(want), "%s:2: bounce.classes: ", path);
	ck_assert_msg(strncmp(why.data, want, strlen(want)) == 0, "%s",
	    why.data);
	cfg_free(cfg);

	/* A broken file named by the operator: its own FILE:LINE. */
	snprintf(text, sizeof(text), "bounce:\n  classes: %s/a.yaml\n",
	    tmpdir);
	write_rules("petrel.yaml", text);
	write_rules("a.yaml", "rules:\n  - name: x\n    class: nope\n");
	cfg = cfg_load(path, &why);
	ck_assert_ptr_nonnull(cfg);
	ck_assert_ptr_null(bclass_load(cfg, &why));
	snprintf(want, sizeof(want), "%s/a.yaml:3: rules[0].class: unknown "
	    "class \"nope\" (%s:2: bounce.classes)", tmpdir, path);
	ck_assert_str_eq(why.data, want);
	cfg_free(cfg);

	/* Not an absolute path: cfg refuses it with its line. */
	write_rules("petrel.yaml", "bounce:\n  classes: [ rel.yaml ]\n");
	ck_assert_ptr_null(cfg_load(path, &why));
	ck_assert_ptr_nonnull(strstr(why.data, ":2: bounce.classes[0]: "));
	vbuf_release(&why);
}
END_TEST

/* Every kind of bad file: FILE:LINE: KEY: reason. */
START_TEST(test_load_errors)
{
	char big[BCLASS_MAX_REGEX + 64];
	struct vbuf why;
	struct bclass_rules *r;
	char *path;

	expect_load_error("rules:\n  - name: a\n    class: other\n"
	    "    match: 'a(b'\n", ":4: rules[0].match: bad regular "
	    "expression: ");
	expect_load_error("rules:\n  - name: a\n    class: other\n"
	    "    match: 'x'\n  - name: b\n    class: bogus\n"
	    "    match: y\n", ":6: rules[1].class: unknown class "
	    "\"bogus\"");
	expect_load_error("rules:\n  - name: a\n    class: other\n"
	    "    match: [x\n", ":5: syntax error: ");
	expect_load_error("rules:\n  - name: a\n   class: other\n",
	    ":3: syntax error: ");
	expect_load_error("rulez: []\n", ":1: rulez: unknown key");
	expect_load_error("rules: 3\n", ":1: rules: expected a list");
	expect_load_error("rules:\n  - name: a\n    class: other\n"
	    "    colour: red\n    match: x\n",
	    ":4: rules[0]: unknown key \"colour\"");
	expect_load_error("rules:\n  - name: a\n    match: x\n",
	    ":2: rules[0]: class is missing");
	expect_load_error("rules:\n  - class: other\n    match: x\n",
	    ":2: rules[0]: name is missing");
	expect_load_error("rules:\n  - name: a\n    class: other\n",
	    ":2: rules[0]: needs at least one of status, code, match");
	expect_load_error("rules:\n  - name: a b\n    class: other\n"
	    "    match: x\n", ":2: rules[0].name: \"a b\" is not a name");
	expect_load_error("rules:\n  - name: a\n    class: other\n"
	    "    status: '5.x'\n", ":4: rules[0].status: \"5.x\" is not");
	expect_load_error("rules:\n  - name: a\n    class: other\n"
	    "    status: '5.1.1.1'\n", ":4: rules[0].status: ");
	expect_load_error("rules:\n  - name: a\n    class: other\n"
	    "    code: 5500\n", ":4: rules[0].code: \"5500\" is not a "
	    "reply code");
	expect_load_error("rules:\n  - name: a\n    class: other\n"
	    "    match: x\n  - name: a\n    class: other\n    match: y\n",
	    ":5: rules[1]: duplicate rule name \"a\"");
	expect_load_error("rules:\n  - [a]\n", ":2: rules[0]: expected a "
	    "mapping");
	expect_load_error("rules: []\n---\nrules: []\n",
	    ":3: more than one YAML document");
	expect_load_error("rules: [[[[[[[[[[[[]]]]]]]]]]]]\n",
	    ":1: nested more than 8 levels deep");

	/* Bounded: a regular expression too long. */
	memset(big, 'a', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	{
		char text[sizeof(big) + 128];

		snprintf(text, sizeof(text), "rules:\n  - name: a\n"
		    "    class: other\n    match: %s\n", big);
		expect_load_error(text, ":4: rules[0].match: longer than");
	}

	/* Empty files and lists: no rules, not an error. */
	vbuf_init(&why, 0);
	path = write_rules("a.yaml", "# nothing\n");
	r = bclass_load_file(path, &why);
	ck_assert_ptr_nonnull(r);
	ck_assert_uint_eq(bclass_count(r), 0);
	ck_assert_ptr_null(bclass_rule_desc(r, 0));
	bclass_free(r);
	path = write_rules("a.yaml", "rules:\n");
	r = bclass_load_file(path, &why);
	ck_assert_ptr_nonnull(r);
	bclass_free(r);
	bclass_free(NULL);

	/* Not there at all. */
	ck_assert_ptr_null(bclass_load_file("/nonexistent/x.yaml", &why));
	ck_assert_str_eq(why.data, "/nonexistent/x.yaml: cannot open: "
	    "No such file or directory");
	vbuf_release(&why);
}
END_TEST

/* Too many rules over all files. */
START_TEST(test_rule_limit)
{
	struct vbuf text, why;
	char *path;
	size_t i;

	vbuf_init(&text, 0);
	vbuf_init(&why, 0);
	vbuf_adds(&text, "rules:\n");
	for (i = 0; i <= BCLASS_MAX_RULES; i++)
		vbuf_addf(&text, "  - { name: r%zu, class: other, match: x }\n",
		    i);
	path = write_rules("a.yaml", text.data);
	ck_assert_ptr_null(bclass_load_file(path, &why));
	ck_assert_ptr_nonnull(strstr(why.data, ":1002: rules[1000]: more "
	    "than 1000 rules"));
	vbuf_release(&text);
	vbuf_release(&why);
}
END_TEST

/* A long reply is looked at up to BCLASS_MAX_TEXT bytes, no further. */
START_TEST(test_long_reply)
{
	struct bclass_rules *r;
	struct vbuf why, text;
	char *path;
	size_t i;

	vbuf_init(&why, 0);
	vbuf_init(&text, 0);
	path = write_rules("a.yaml", "rules:\n  - name: tail\n"
	    "    class: spam-related\n    match: 'TAIL$'\n");
	r = bclass_load_file(path, &why);
	ck_assert_ptr_nonnull(r);
	vbuf_adds(&text, "550 ");
	for (i = 0; i < 100; i++)
		vbuf_adds(&text, "x");
	vbuf_adds(&text, "TAIL");
	ck_assert_int_eq(bclass_classify(r, "", text.data, NULL),
	    BCLASS_SPAM_RELATED);
	vbuf_reset(&text);
	vbuf_adds(&text, "550 ");
	for (i = 0; i < BCLASS_MAX_TEXT; i++)
		vbuf_adds(&text, "x");
	vbuf_adds(&text, "TAIL");
	ck_assert_int_eq(bclass_classify(r, "", text.data, NULL),
	    BCLASS_OTHER);
	bclass_free(r);
	vbuf_release(&why);
	vbuf_release(&text);
}
END_TEST

static Suite *
bclass_suite(void)
{
	Suite *s = suite_create("bclass");
	TCase *tc = tcase_create("bclass");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, test_shipped_rules);
	tcase_add_test(tc, test_code_fallback);
	tcase_add_test(tc, test_names);
	tcase_add_test(tc, test_first_match_two_files);
	tcase_add_test(tc, test_missing_files);
	tcase_add_test(tc, test_load_errors);
	tcase_add_test(tc, test_rule_limit);
	tcase_add_test(tc, test_long_reply);
	tcase_add_test(tc, test_reputation);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(bclass_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
