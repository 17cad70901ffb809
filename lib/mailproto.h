/*
 * mailproto.h - wire names between Petrel processes, in one place.
 *
 * Socket names under <queue_directory>/private/, request names and
 * attribute names (Postfix's mail_proto.h). Each socket's protocol is
 * documented in the serving daemon's man page.
 */
#ifndef PETREL_MAILPROTO_H
#define PETREL_MAILPROTO_H

/* Sockets in <queue_directory>/private/. */
#define MAIL_DIR_PRIVATE	"private"
#define MAIL_SOCK_QMGR		"qmgr"
#define MAIL_SOCK_SMTP		"smtp"
#define MAIL_SOCK_BOUNCE	"bounce"

/*
 * Local submission (sendmail(1) -> smtpd, SMTP): a socket every local user
 * may connect to, in <queue_directory>/public/. smtpd's listener of that
 * name: it cannot be a listeners[] name, which has no '/'.
 */
#define MAIL_DIR_PUBLIC		"public"
#define MAIL_SOCK_SUBMIT	"submit"
#define MAIL_LISTENER_SUBMIT	"public/submit"

/* Requests. */
#define MAIL_REQ_DELIVER	"deliver"	/* qmgr -> smtp */
#define MAIL_REQ_FLUSH		"flush"		/* relayq -> qmgr */
#define MAIL_REQ_TRIGGER	"trigger"	/* smtpd -> qmgr, no reply */
#define MAIL_REQ_BOUNCE		"bounce"	/* qmgr -> bounce */
/* Queue administration (relayq -> qmgr); reply status, count, reason. */
#define MAIL_REQ_HOLD		"hold"		/* relayq -h */
#define MAIL_REQ_RELEASE	"release"	/* relayq -H */
#define MAIL_REQ_DELETE		"delete"	/* relayq -d */
#define MAIL_REQ_REQUEUE	"requeue"	/* relayq -r */
#define MAIL_REQ_SHAPING	"shaping"	/* relayctl shaping show */
#define MAIL_REQ_SOURCES	"sources"	/* relayctl sources show */

/* Common attributes. */
#define MAIL_ATTR_REQUEST	"request"
#define MAIL_ATTR_STATUS	"status"	/* MAIL_STAT_OK, else failure */
#define MAIL_ATTR_REASON	"reason"	/* text when status != 0 */

/* Values of status. */
#define MAIL_STAT_OK		0
#define MAIL_STAT_FAIL		1

/* Flush reply (qmgr -> relayq). */
#define MAIL_ATTR_COUNT		"count"		/* recipients made due; */
						/* administration: messages */

/*
 * Administration requests: queue_id (required: an id, or MAIL_QID_ALL),
 * domain and sender (optional, lib/qstore's qstore_select).
 */
#define MAIL_QID_ALL		"ALL"
#define MAIL_ATTR_DOMAIN	"domain"

/* Delivery request (qmgr -> smtp). */
#define MAIL_ATTR_QUEUE_ID	"queue_id"
#define MAIL_ATTR_NEXTHOP	"nexthop"	/* lib/nexthop's key */
#define MAIL_ATTR_SENDER	"sender"
#define MAIL_ATTR_ARRIVAL	"arrival"	/* epoch seconds, for delay= */
#define MAIL_ATTR_ARRIVAL_US	"arrival_us"	/* microseconds within it */
#define MAIL_ATTR_QMGR_TIME	"qmgr_time"	/* ms spent before and in qmgr */
/* Optional, from the destination's shaping entry (qmgr_dest.c): */
#define MAIL_ATTR_TLS_LEVEL	"tls_level"	/* enum cfg_smtp_tls; absent: */
						/* smtp.tls */
#define MAIL_ATTR_CONN_USES	"conn_uses"	/* transactions per session */
#define MAIL_ATTR_POOL		"pool"		/* source address pool */
#define MAIL_ATTR_AVOID		"avoid"		/* source addresses of the
						   pool not to use, space-
						   separated (set aside for
						   the next hop's provider,
						   or at their warmup cap;
						   qmgr_source.c) */
#define MAIL_AVOID_MAX		16384		/* its length, at most */
#define MAIL_ATTR_RCPT_INDEX	"rcpt_index"	/* repeated, paired with rcpt */
#define MAIL_ATTR_RCPT		"rcpt"

/* Delivery reply (smtp -> qmgr): one group per recipient, in order. */
#define MAIL_ATTR_RELAY		"relay"		/* host[ip]:port or "none" */
#define MAIL_ATTR_TLS		"tls"		/* TLS version, or absent */
#define MAIL_ATTR_DKIM		"dkim"		/* "d=D s=S" or "unsigned" */
#define MAIL_ATTR_MX		"mx"		/* the next hop's MX hosts,
						   space-separated, when
						   resolved (qmgr's provider
						   roll-up); else absent */
#define MAIL_MX_LIST_MAX	1024		/* its length, at most */
#define MAIL_ATTR_SOURCE	"source"	/* the source address the
						   session left from; absent
						   when the kernel chose */
#define MAIL_ATTR_SOURCE_REFUSED "source_refused" /* a source address the
						   next hop refused for its
						   reputation; else absent */
#define MAIL_ATTR_SOURCE_REFUSAL "source_refusal" /* that refusal's reply */
#define MAIL_ATTR_SITE_FAIL	"site_fail"	/* 1: no session could be set
						   up (next hop unresolved or
						   unreachable); else absent */
#define MAIL_ATTR_RCPT_STATUS	"rcpt_status"	/* sent|deferred|bounced */
#define MAIL_ATTR_RCPT_DSN	"rcpt_dsn"	/* X.Y.Z */
#define MAIL_ATTR_RCPT_REPLY	"rcpt_reply"	/* remote reply or reason */
#define MAIL_ATTR_RCPT_CLASS	"rcpt_class"	/* bounce class (lib/bclass) of
						   a deferral or failure */
#define MAIL_ATTR_RCPT_DSN_PASSED "rcpt_dsn_passed" /* 1: sent to a next hop
						   that offered DSN, which
						   now owes the reports
						   NOTIFY asked for (RFC
						   3461 6.2: no "relayed"
						   from us); else absent */

/*
 * Report request (qmgr -> bounce): queue_id, report (bounce reads the
 * sender from the file, or from the message record when the file is
 * lost), then per recipient
 * rcpt_index, rcpt, rcpt_dsn, rcpt_reply, rcpt_class (optional), relay
 * (optional, "none" when there was none), rcpt_time and, for delayed,
 * rcpt_until. At most MAIL_BOUNCE_RCPTS_MAX groups: with 8 attributes
 * each, a request stays within attr's ATTR_COUNT_MAX (1024) attributes.
 * Reply: status, and dsn_id when a report was committed. See bounce(8).
 */
#define MAIL_BOUNCE_RCPTS_MAX	100
#define MAIL_ATTR_REPORT	"report"	/* failed|delayed|relayed */
#define MAIL_ATTR_RCPT_TIME	"rcpt_time"	/* last attempt, epoch s */
#define MAIL_ATTR_RCPT_UNTIL	"rcpt_until"	/* retried until, epoch s */
#define MAIL_ATTR_DSN_ID	"dsn_id"	/* the report's queue id */

/* Values of report. */
#define MAIL_REPORT_FAILED	"failed"
#define MAIL_REPORT_DELAYED	"delayed"
#define MAIL_REPORT_RELAYED	"relayed"

/* Delivery status words, as in the log lines. */
#define MAIL_STATUS_SENT	"sent"
#define MAIL_STATUS_DEFERRED	"deferred"
#define MAIL_STATUS_BOUNCED	"bounced"

/*
 * A shaping reply: one record per destination, then the status record
 * (status=0, count=N).
 */
#define MAIL_ATTR_ENTRY		"entry"		/* the shaping entry applied */
#define MAIL_ATTR_MAX_CONN	"max_connections"	/* 0: no limit */
#define MAIL_ATTR_CONNS		"connections"	/* at smtp, or held idle */
#define MAIL_ATTR_RATE_COUNT	"rate_count"	/* messages per ... */
#define MAIL_ATTR_RATE_INTERVAL	"rate_interval"	/* ... s; 0: no limit */
#define MAIL_ATTR_PENDING	"pending"	/* jobs waiting */
#define MAIL_ATTR_SENT		"sent"		/* jobs handed to smtp */
#define MAIL_ATTR_STATE		"state"		/* qmgr_dest_state */
#define MAIL_ATTR_FAILURES	"failures"	/* site failures in a row */
#define MAIL_ATTR_SUSPENDED	"suspended_for"	/* s left dead; 0 not */
#define MAIL_ATTR_LAST_FAILURE	"last_failure"	/* while failures > 0 */
#define MAIL_ATTR_UNTIL		"until"		/* s left in a backoff or */
						/* suspension (on_reply); 0 */
#define MAIL_ATTR_PROVIDER	"provider"	/* its MX hosts' provider, */
						/* when known; else absent */
#define MAIL_ATTR_PROV_CONNS	"provider_connections" /* the provider's */
						/* jobs at smtp */
#define MAIL_ATTR_PROV_MAX	"provider_max_connections" /* 0: none */
/* provider_max_message_rate: count per interval s; 0: none. */
#define MAIL_ATTR_PROV_RATE_COUNT "provider_rate_count"
#define MAIL_ATTR_PROV_RATE_IVL	"provider_rate_interval"
/* The lanes (qmgr(8), Lanes): pending and at smtp, each lane apart. */
#define MAIL_ATTR_T_PENDING	"transactional_pending"
#define MAIL_ATTR_T_INFLIGHT	"transactional_in_flight"
#define MAIL_ATTR_B_PENDING	"bulk_pending"
#define MAIL_ATTR_B_INFLIGHT	"bulk_in_flight"
#define MAIL_ATTR_RESERVE	"transactional_reserve"	/* as configured: */
						/* "N" or "N%" */
#define MAIL_ATTR_RESERVED	"reserved_connections"	/* of it now: the */
						/* connections bulk may not take */
#define MAIL_ATTR_NSOURCES	"source_addresses"	/* how many the */
						/* limits apply to, each */
#define MAIL_ATTR_NBACKOFF	"sources_in_backoff"	/* of them, under */
#define MAIL_ATTR_NSUSPENDED	"sources_suspended"	/* on_reply rules */

/*
 * A sources reply (qmgr_source.c): one record per source address of each
 * pool (source, pool; warmup_day and warmup_cap while it warms up), then
 * one per source address and scope qmgr holds a set-aside in force or
 * today's warmup count for (source, scope; set_aside_until and
 * set_aside_reason, sent_today and warmup_cap), then the status record
 * (status=0, count=N).
 */
#define MAIL_ATTR_SCOPE		"scope"		/* provider name or next hop */
#define MAIL_ATTR_WARMUP_DAY	"warmup_day"	/* 1 on its first day */
#define MAIL_ATTR_WARMUP_CAP	"warmup_cap"	/* messages per scope today */
#define MAIL_ATTR_SENT_TODAY	"sent_today"	/* counted for the cap */
#define MAIL_ATTR_ASIDE_UNTIL	"set_aside_until" /* epoch s */
#define MAIL_ATTR_ASIDE_REASON	"set_aside_reason" /* the refusal */


#endif
