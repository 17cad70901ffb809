/*
 * relayctl_events.c - "relayctl events list|show|replay": the webhook
 * deliveries webhookd keeps in its store (lib/whstore, webhookd(8)).
 *
 * list and show only read. replay makes deliveries pending again, due
 * now, in one write transaction on the store webhookd shares: webhookd
 * looks over its pending deliveries several times a second and sends
 * them; a delivery in flight while it is replayed is simply recorded by
 * whichever outcome comes back. The words are checked first, then the
 * configuration is loaded and the process becomes mail_owner before the
 * store's LMDB environment (and its lock file) is opened.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "cfg.h"
#include "json.h"
#include "outbox.h"
#include "privsep.h"
#include "relayctl.h"
#include "vbuf.h"
#include "whstore.h"
#include "xalloc.h"

#define EV_LIMIT_MAX	10000000

enum ev_cmd { EV_LIST, EV_SHOW, EV_REPLAY };

struct ev_args {
	enum ev_cmd	 cmd;
	const char	*id;		/* show, replay ID */
	const char	*endpoint;	/* --endpoint URL|user:NAME */
	int		 failed;	/* --failed */
	int		 json;
	long		 limit;		/* list --limit; 0: all */
};

/* One delivery picked by a walk over the store. */
struct ev_pick {
	uint64_t		 seq;
	char			 key[WHSTORE_KEY_MAX + 1];
	struct whstore_dlv	 d;
};

struct ev_walk {
	const struct ev_args	*a;
	uint64_t		 only_seq;	/* 0: every event */
	struct ev_pick		*picks;
	size_t			 npicks, cap;
};

/* Prints the usage; on stdout and status 0 for --help. */
static void
ev_usage(int status)
{
	fprintf(status == 0 ? stdout : stderr,
	    "usage: relayctl [-c FILE] [-j] events list [--failed] "
	    "[--endpoint URL|user:NAME]\n"
	    "           [--limit N] [-j]\n"
	    "       relayctl [-c FILE] [-j] events show ID [-j]\n"
	    "       relayctl [-c FILE] [-j] events replay ID|--failed "
	    "[--endpoint URL|user:NAME] [-j]\n"
	    "ID: an event id (32 hex digits, as webhooks carry it)\n"
	    "--failed: dead letters, and pending deliveries that failed "
	    "at least once\n");
	exit(status);
}

static int
ev_is_id(const char *s)
{
	size_t i;

	for (i = 0; s[i] != '\0'; i++)
		if (strchr("0123456789abcdefABCDEF", s[i]) == NULL)
			return 0;
	return i == WHSTORE_ID_SIZE - 1;
}

static int
ev_parse(int argc, char *argv[], struct ev_args *a, struct vbuf *why)
{
	char *end;
	int i;

	memset(a, 0, sizeof(*a));
	if (argc < 1) {
		vbuf_setf(why, "events: a subcommand is needed");
		return -1;
	}
	if (strcmp(argv[0], "list") == 0)
		a->cmd = EV_LIST;
	else if (strcmp(argv[0], "show") == 0)
		a->cmd = EV_SHOW;
	else if (strcmp(argv[0], "replay") == 0)
		a->cmd = EV_REPLAY;
	else {
		vbuf_setf(why, "events: unknown subcommand %s", argv[0]);
		return -1;
	}
	for (i = 1; i < argc; i++) {
		const char *w = argv[i];

		if (strcmp(w, "-j") == 0)
			a->json = 1;
		else if (strcmp(w, "--failed") == 0 && a->cmd != EV_SHOW)
			a->failed = 1;
		else if (strcmp(w, "--endpoint") == 0 && a->cmd != EV_SHOW &&
		    i + 1 < argc)
			a->endpoint = argv[++i];
		else if (strcmp(w, "--limit") == 0 && a->cmd == EV_LIST &&
		    i + 1 < argc) {
			errno = 0;
			a->limit = strtol(argv[++i], &end, 10);
			if (errno != 0 || *end != '\0' || a->limit < 1 ||
			    a->limit > EV_LIMIT_MAX) {
				vbuf_setf(why, "--limit: not a number from 1 "
				    "to %d: %s", EV_LIMIT_MAX, argv[i]);
				return -1;
			}
		} else if (w[0] != '-' && a->id == NULL && a->cmd != EV_LIST)
			a->id = w;
		else {
			vbuf_setf(why, "events %s: unexpected %s", argv[0], w);
			return -1;
		}
	}
	if (a->id != NULL && !ev_is_id(a->id)) {
		vbuf_setf(why, "events %s: not an event id (32 hex "
		    "digits): %s", argv[0], a->id);
		return -1;
	}
	if (a->cmd == EV_SHOW && a->id == NULL) {
		vbuf_setf(why, "events show: an event id is needed");
		return -1;
	}
	if (a->cmd == EV_REPLAY && (a->id == NULL) == (a->failed == 0)) {
		vbuf_setf(why, "events replay: an event id or --failed "
		    "(one of them)");
		return -1;
	}
	return 0;
}

static const char *
ev_state_name(uint32_t state)
{
	switch (state) {
	case WHSTORE_PENDING:
		return "pending";
	case WHSTORE_SENT:
		return "sent";
	case WHSTORE_DEAD:
		return "dead";
	}
	return "unknown";
}

/* An endpoint key as shown: the URL without userinfo, or user:NAME. */
static void
ev_endpoint_name(const char *key, char *out, size_t n)
{
	if (strncmp(key, "cfg:", 4) == 0)
		whstore_safe_url(key + 4, out, n);
	else
		snprintf(out, n, "%s", key);
}

static int
ev_endpoint_matches(const char *want, const char *key)
{
	char shown[WHSTORE_KEY_MAX + 1];

	if (want == NULL || strcmp(want, key) == 0)
		return 1;
	if (strncmp(key, "cfg:", 4) != 0)
		return 0;
	if (strcmp(want, key + 4) == 0)
		return 1;
	ev_endpoint_name(key, shown, sizeof(shown));
	return strcmp(want, shown) == 0;
}

static int
ev_walk_cb(uint64_t seq, const char *key, const struct whstore_dlv *d,
    void *arg)
{
	struct ev_walk *w = arg;
	struct ev_pick *p;

	if (w->only_seq != 0 && seq != w->only_seq)
		return seq > w->only_seq;	/* past it: stop */
	if (!ev_endpoint_matches(w->a->endpoint, key))
		return 0;
	if (w->a->failed && d->state != WHSTORE_DEAD &&
	    !(d->state == WHSTORE_PENDING && d->tries > 0))
		return 0;
	if (w->npicks == w->cap) {
		w->cap = w->cap ? 2 * w->cap : 64;
		w->picks = xreallocarray(w->picks, w->cap, sizeof(*w->picks));
	}
	p = &w->picks[w->npicks++];
	p->seq = seq;
	snprintf(p->key, sizeof(p->key), "%s", key);
	p->d = *d;
	return w->a->limit != 0 && (long)w->npicks >= w->a->limit;
}

/* One delivery as a JSON object (list -j; the members of show's). */
static void
ev_dlv_json(struct json *j, const struct ev_pick *p)
{
	char ep[WHSTORE_KEY_MAX + 1], ts[64];

	ev_endpoint_name(p->key, ep, sizeof(ep));
	json_kv_str(j, "endpoint", ep);
	json_kv_str(j, "state", ev_state_name(p->d.state));
	json_kv_int(j, "tries", p->d.tries);
	json_kv_int(j, "http_status", p->d.http_status);
	if (p->d.tries > 0 || p->d.state != WHSTORE_PENDING) {
		relayctl_log_time(ts, sizeof(ts), p->d.last_ms);
		json_kv_str(j, "last_attempt", ts);
	}
	if (p->d.state == WHSTORE_PENDING) {
		relayctl_log_time(ts, sizeof(ts), p->d.due_ms);
		json_kv_str(j, "next_attempt", ts);
	}
}

static void
ev_dlv_text(struct vbuf *out, const struct ev_pick *p)
{
	char ep[WHSTORE_KEY_MAX + 1], ts[64];

	ev_endpoint_name(p->key, ep, sizeof(ep));
	(void)vbuf_addf(out, "%-7s %s tries=%" PRIu32,
	    ev_state_name(p->d.state), ep, p->d.tries);
	if (p->d.http_status != 0)
		(void)vbuf_addf(out, " http=%" PRId32, p->d.http_status);
	if (p->d.tries > 0 || p->d.state != WHSTORE_PENDING) {
		relayctl_log_time(ts, sizeof(ts), p->d.last_ms);
		(void)vbuf_addf(out, " last=%s", ts);
	}
	if (p->d.state == WHSTORE_PENDING) {
		relayctl_log_time(ts, sizeof(ts), p->d.due_ms);
		(void)vbuf_addf(out, " next=%s", ts);
	}
}

static int
ev_list(struct whstore *s, MDB_txn *txn, const struct ev_args *a,
    struct ev_walk *w)
{
	char id[WHSTORE_ID_SIZE], ts[64], qid[QID_SIZE + 1];
	struct outbox_scratch sc;
	struct outbox_event ev;
	struct vbuf out;
	struct json j;
	size_t i;

	(void)whstore_dlv_iter(s, txn, 0, 0, ev_walk_cb, w);
	outbox_scratch_init(&sc);
	vbuf_init(&out, 0);
	for (i = 0; i < w->npicks; i++) {
		const struct ev_pick *p = &w->picks[i];

		vbuf_truncate(&out, 0);
		if (whstore_get_event(s, txn, p->seq, &ev, &sc) == -1)
			continue;	/* pruned meanwhile */
		whstore_event_id(&ev, id);
		snprintf(qid, sizeof(qid), "%.*s", QID_SIZE, ev.qid);
		relayctl_log_time(ts, sizeof(ts), ev.time_ms);
		if (a->json) {
			json_init(&j, &out);
			json_object_begin(&j);
			json_kv_str(&j, "id", id);
			json_kv_str(&j, "event", outbox_kind_name(ev.kind));
			json_kv_str(&j, "time", ts);
			/* A destination's event is of no message. */
			if (ev.kind == OUTBOX_DESTINATION) {
				json_kv_str(&j, "destination",
				    ev.destination);
				if (ev.source != NULL)
					json_kv_str(&j, "source", ev.source);
				/* "state" is the delivery's. */
				json_kv_str(&j, "destination_state",
				    ev.state);
			} else
				json_kv_str(&j, "queue_id", qid);
			if (ev.recipient != NULL)
				json_kv_str(&j, "recipient", ev.recipient);
			ev_dlv_json(&j, p);
			json_object_end(&j);
		} else if (ev.kind == OUTBOX_DESTINATION) {
			(void)vbuf_addf(&out, "%s %-10s %s%s%s state=%s ", id,
			    outbox_kind_name(ev.kind), ev.destination,
			    ev.source != NULL ? " source=" : "",
			    ev.source != NULL ? ev.source : "", ev.state);
			ev_dlv_text(&out, p);
		} else {
			(void)vbuf_addf(&out, "%s %-10s %s to=%s ", id,
			    outbox_kind_name(ev.kind), qid,
			    ev.recipient != NULL ? ev.recipient : "-");
			ev_dlv_text(&out, p);
		}
		printf("%s\n", out.data);
	}
	vbuf_release(&out);
	outbox_scratch_release(&sc);
	return RELAYCTL_EXIT_OK;
}

static int
ev_show(struct whstore *s, MDB_txn *txn, const struct ev_args *a,
    struct ev_walk *w, uint64_t seq)
{
	char id[WHSTORE_ID_SIZE];
	struct outbox_scratch sc;
	struct outbox_event ev;
	struct vbuf out;
	struct json j;
	size_t i;

	w->only_seq = seq;
	(void)whstore_dlv_iter(s, txn, seq, 0, ev_walk_cb, w);
	outbox_scratch_init(&sc);
	if (whstore_get_event(s, txn, seq, &ev, &sc) == -1) {
		outbox_scratch_release(&sc);
		fprintf(stderr, "relayctl: %s: not in the webhook store\n",
		    a->id);
		return RELAYCTL_EXIT_FAIL;
	}
	whstore_event_id(&ev, id);
	vbuf_init(&out, 0);
	if (a->json) {
		/* The petrel payload's members, then the deliveries. */
		(void)vbuf_addf(&out, "{\"id\":\"%s\",\"event\":", id);
		json_init(&j, &out);
		outbox_json(&j, &ev);
		(void)vbuf_adds(&out, ",\"deliveries\":");
		json_init(&j, &out);
		json_array_begin(&j);
		for (i = 0; i < w->npicks; i++) {
			json_object_begin(&j);
			ev_dlv_json(&j, &w->picks[i]);
			json_object_end(&j);
		}
		json_array_end(&j);
		(void)vbuf_addc(&out, '}');
	} else {
		(void)vbuf_addf(&out, "Event %s\n", id);
		json_init(&j, &out);
		outbox_json(&j, &ev);
		(void)vbuf_adds(&out, "\nDeliveries:");
		for (i = 0; i < w->npicks; i++) {
			(void)vbuf_adds(&out, "\n  ");
			ev_dlv_text(&out, &w->picks[i]);
		}
		if (w->npicks == 0)
			(void)vbuf_adds(&out, " none (no endpoint wanted it)");
	}
	printf("%s\n", out.data);
	vbuf_release(&out);
	outbox_scratch_release(&sc);
	return RELAYCTL_EXIT_OK;
}

/*
 * Makes every picked delivery pending and due now, in one transaction
 * (txn: committed here, or aborted on failure).
 */
static int
ev_replay(struct whstore *s, MDB_txn *txn, const struct ev_args *a,
    struct ev_walk *w, uint64_t seq)
{
	int64_t now = outbox_now_ms();
	struct vbuf why;
	size_t i;
	int rc;

	w->only_seq = seq;
	(void)whstore_dlv_iter(s, txn, seq, 0, ev_walk_cb, w);
	vbuf_init(&why, 0);
	for (i = 0; i < w->npicks; i++) {
		struct whstore_dlv d = w->picks[i].d;

		/* Backoff starts over; max_age counts from now (whstore.h). */
		d.state = WHSTORE_PENDING;
		d.due_ms = now;
		d.tries = 0;
		d.replayed_s = (uint32_t)(now / 1000);
		if (whstore_dlv_put(s, txn, w->picks[i].seq, w->picks[i].key,
		    &d, &why) == -1) {
			mdb_txn_abort(txn);
			fprintf(stderr, "relayctl: %s\n", why.data);
			vbuf_release(&why);
			return RELAYCTL_EXIT_FAIL;
		}
	}
	if ((rc = mdb_txn_commit(txn)) != 0) {
		mdbdir_why(&why, &s->md, "commit", rc);
		fprintf(stderr, "relayctl: %s\n", why.data);
		vbuf_release(&why);
		return RELAYCTL_EXIT_FAIL;
	}
	vbuf_release(&why);
	if (a->json)
		printf("{\"replayed\":%zu}\n", w->npicks);
	else
		printf("%zu deliver%s replayed\n", w->npicks,
		    w->npicks == 1 ? "y" : "ies");
	if (w->npicks == 0 && a->id != NULL) {
		fprintf(stderr, "relayctl: %s: no delivery to replay%s\n",
		    a->id, a->endpoint != NULL ? " to that endpoint" : "");
		return RELAYCTL_EXIT_FAIL;
	}
	return RELAYCTL_EXIT_OK;
}

int
relayctl_events_main(int argc, char *argv[], const struct relayctl_opts *opts)
{
	struct ev_args a;
	struct ev_walk w;
	struct whstore s;
	struct vbuf why;
	struct cfg *cfg;
	MDB_txn *txn = NULL;
	uint64_t seq = 0;
	int ret;

	vbuf_init(&why, 0);
	if (argc >= 1 && (strcmp(argv[argc - 1], "--help") == 0 ||
	    strcmp(argv[argc - 1], "-h") == 0))
		ev_usage(RELAYCTL_EXIT_OK);
	if (ev_parse(argc, argv, &a, &why) == -1) {
		fprintf(stderr, "relayctl: %s\n", why.data);
		vbuf_release(&why);
		ev_usage(RELAYCTL_EXIT_USAGE);
	}
	if (opts->json)
		a.json = 1;
	if ((cfg = cfg_load(opts->config, &why)) == NULL) {
		fprintf(stderr, "relayctl: %s\n", why.data);
		vbuf_release(&why);
		return RELAYCTL_EXIT_FAIL;
	}
	/* Become mail_owner before LMDB opens (and its lock file). */
	if (privsep_become_owner(cfg, &why) == -1 ||
	    whstore_open(&s, cfg, a.cmd == EV_REPLAY, &why) == -1) {
		fprintf(stderr, "relayctl: %s\n", why.data);
		vbuf_release(&why);
		cfg_free(cfg);
		return RELAYCTL_EXIT_FAIL;
	}
	if (mdbdir_begin(&s.md, a.cmd == EV_REPLAY ? 0 : MDB_RDONLY, &txn,
	    &why) != 1) {
		fprintf(stderr, "relayctl: %s\n", why.data[0] != '\0' ?
		    why.data : "the webhook store is empty");
		whstore_close(&s);
		vbuf_release(&why);
		cfg_free(cfg);
		return RELAYCTL_EXIT_FAIL;
	}
	memset(&w, 0, sizeof(w));
	w.a = &a;
	if (a.id != NULL && whstore_find_id(&s, txn, a.id, &seq) == -1) {
		fprintf(stderr, "relayctl: %s: not in the webhook store\n",
		    a.id);
		ret = RELAYCTL_EXIT_FAIL;
	} else if (a.cmd == EV_LIST)
		ret = ev_list(&s, txn, &a, &w);
	else if (a.cmd == EV_SHOW)
		ret = ev_show(&s, txn, &a, &w, seq);
	else {
		ret = ev_replay(&s, txn, &a, &w, seq);
		txn = NULL;	/* committed, or aborted by the failure */
	}
	if (txn != NULL)
		mdb_txn_abort(txn);
	if (fflush(stdout) == EOF) {
		fprintf(stderr, "relayctl: stdout: %s\n", strerror(errno));
		ret = RELAYCTL_EXIT_FAIL;
	}
	free(w.picks);
	whstore_close(&s);
	vbuf_release(&why);
	cfg_free(cfg);
	return ret;
}
