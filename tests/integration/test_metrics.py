"""test_metrics.py - the Prometheus endpoint (metricsd(8), metrics.listen).

With metrics.listen set, master runs metricsd. The test sends messages
through the real daemons: some delivered, one bounced (550 at RCPT from
the capture server), one deferred (451), plus a failed AUTH, then scrapes
GET /metrics and checks each count against what it sent. The exposition
is parsed by the Prometheus Python client's parser (prom_parse.py, under
/usr/bin/python3), which also rejects duplicate series. Without
metrics.listen nothing listens and nothing is counted.

MetricsDkimWebhookTest adds a DKIM key for the sending domain and two
webhook endpoints, one answering and one refusing connections: DKIM
signatures, delivery attempts, webhook requests by outcome and the
webhook backlog are checked against what was sent and what the receiver
got. MetricsAuthBlockTest counts AUTH failures and the connections refused
once they blocked the client's address.

MetricsByCredentialTest sends from two credentials and counts each
recipient's outcome (delivered, deferred, bounced, suppressed) under the
credential that sent it, reports under "none", and a recipient failed
at start-up because its queue file is gone as bounced.
MetricsDestinationTest
queues recipients for 53 next hops that refuse connections (transport
entries) and checks the 50 largest by name and the rest as "other".
MetricsShapingTest holds a backlog at a rate-limited destination (a
shaping file, as test_shaping does) and reads qmgr's shaping state from
the scrape; with qmgr stopped the scrape still answers, without it.
"""

import glob
import json
import os
import re
import signal
import smtplib
import subprocess
import time
import unittest
import urllib.error
import urllib.request

from harness import (PetrelCase, certificate, connect, free_port,
                     held_ports, login_plain, make_message, send, unique)
from test_shaping import ShapingCase
from webhook_receiver import Receiver
from test_bruteforce import BF, greeting, quit_, timed_auth, tls_session

HERE = os.path.dirname(os.path.abspath(__file__))
PARSE = os.path.join(HERE, "prom_parse.py")
SYS_PYTHON = "/usr/bin/python3"


def parse(text, families=False):
    r = subprocess.run([SYS_PYTHON, PARSE], input=text.encode(),
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       timeout=30)
    if r.returncode != 0:
        raise AssertionError("exposition does not parse: %s\n%s"
                             % (r.stderr.decode(), text))
    out = json.loads(r.stdout.decode())
    return out if families else out["samples"]


def value(samples, name, **labels):
    """The sample's value, or None; labels must match exactly."""
    for n, lab, v in samples:
        if n == name and lab == labels:
            return v
    return None


def total(samples, name):
    return sum(v for n, _, v in samples if n == name)


class MetricsTest(PetrelCase):

    def setUp(self):
        self.port = free_port()
        self.overrides = {"metrics": {"listen": "127.0.0.1:%d" % self.port}}
        super().setUp()

    def url(self, path="/metrics"):
        return "http://127.0.0.1:%d%s" % (self.port, path)

    def scrape(self, timeout=20):
        deadline = time.time() + timeout
        while True:
            try:
                with urllib.request.urlopen(self.url(), timeout=5) as r:
                    self.assertEqual(r.status, 200)
                    self.assertTrue(r.headers["Content-Type"].startswith(
                        "text/plain; version=0.0.4"))
                    return r.read().decode()
            except (urllib.error.URLError, ConnectionError):
                if time.time() > deadline:
                    raise
                time.sleep(0.2)

    def failed_login(self):
        c = connect(self.suite)
        try:
            with self.assertRaises(smtplib.SMTPAuthenticationError):
                c.login(self.user, "wrong password")
        finally:
            try:
                c.quit()
            except (smtplib.SMTPException, OSError):
                pass

    def test_counts_match_what_was_sent(self):
        tok = unique("metrics")
        ok = ["ok%d-%s@example.org" % (i, tok) for i in range(3)]
        bad = "gone-%s@example.org" % tok
        later = "later-%s@example.org" % tok
        self.capture.add_rcpt_rule("550 5.1.1 No such user", address=bad)
        self.capture.add_rcpt_rule("451 4.3.0 Try again later",
                                   address=later)
        # Before anything: the endpoint answers, counts are zero.
        s0 = parse(self.scrape())
        self.assertEqual(total(s0, "petrel_recipients_delivered_total"), 0)
        self.assertEqual(value(s0, "petrel_queue_up"), 1)

        qids = []
        for i, rcpt in enumerate(ok):
            qids.append((self.submit(make_message("%s-%d" % (tok, i),
                                                  to=rcpt),
                                     rcpts=[rcpt]), rcpt, "sent"))
        qids.append((self.submit(make_message(tok + "-bad", to=bad),
                                 rcpts=[bad]), bad, "bounced"))
        qids.append((self.submit(make_message(tok + "-later", to=later),
                                 rcpts=[later]), later, "deferred"))
        self.failed_login()
        for qid, rcpt, status in qids:
            self.suite.wait_delivery(qid, rcpt, status, timeout=30)
        # The bounce report goes back to the sender: bounce(8) accepts it
        # (unauthenticated: credential "none") and it is delivered too.
        deadline = time.time() + 30
        while not self.suite.deliveries(rcpt="app@example.com",
                                        status="sent"):
            self.assertLess(time.time(), deadline, self.suite.log_tail())
            time.sleep(0.2)

        before = len(self.suite.deliveries(rcpt=later, status="deferred"))
        lines_before = len(self.suite.deliveries())
        s = parse(self.scrape())
        after = len(self.suite.deliveries(rcpt=later, status="deferred"))
        self.assertEqual(value(s, "petrel_messages_accepted_total",
                               credential=self.user), 5, s)
        self.assertEqual(value(s, "petrel_messages_accepted_total",
                               credential="none"), 1, s)
        self.assertEqual(value(s, "petrel_recipients_accepted_total"), 6)
        self.assertEqual(value(s, "petrel_recipients_delivered_total"), 4)
        self.assertEqual(total(s, "petrel_recipients_bounced_total"), 1)
        # Each attempt is a deferral, and the harness retries quickly:
        # as many as the log shows around the scrape.
        d = total(s, "petrel_recipients_deferred_total")
        self.assertTrue(1 <= before <= d <= after, (before, d, after))
        self.assertEqual(value(s, "petrel_delivery_latency_seconds_count"),
                         4)
        self.assertEqual(value(s, "petrel_delivery_latency_seconds_bucket",
                               le="+Inf"), 4)
        self.assertEqual(total(s, "petrel_delivered_dkim_total"), 4)
        # Five submissions and the failed login, each in its own session,
        # each over STARTTLS (the harness's connect).
        # (The harness's readiness probes came before the first scrape.)
        self.assertEqual(value(s, "petrel_smtpd_sessions_total") -
                         value(s0, "petrel_smtpd_sessions_total"), 6)
        self.assertEqual(total(s, "petrel_smtpd_tls_total") -
                         total(s0, "petrel_smtpd_tls_total"), 6)
        # Every attempt is one smtp transaction and one log line (one
        # recipient each here): at least the 3 + 1 + 1 (the report) + 1
        # deferral logged before the scrape, at most what is logged a
        # moment after it (smtp counts an attempt just before its log
        # line). The key is looked up first: at least as many no_key as
        # attempts, none signed (example.com has no key here).
        n = value(s, "petrel_delivery_attempt_seconds_count")
        time.sleep(1)
        logged = len(self.suite.deliveries())
        self.assertTrue(6 <= lines_before <= n <= logged,
                        (lines_before, n, logged))
        self.assertEqual(value(s, "petrel_delivery_attempt_seconds_bucket",
                               le="+Inf"), n)
        nokey = value(s, "petrel_dkim_signatures_total", result="no_key")
        self.assertTrue(n <= nokey <= logged + 4, (n, nokey, logged))
        self.assertEqual(value(s, "petrel_dkim_signatures_total",
                               result="signed"), 0)
        self.assertEqual(value(s, "petrel_dkim_signatures_total",
                               result="error"), 0)
        self.assertEqual(value(s, "petrel_smtpd_auth_failures_total"), 1)
        self.assertEqual(value(s, "petrel_smtpd_auth_blocked_total"), 0)
        # The deferred recipient waits in the queue.
        self.assertEqual(value(s, "petrel_queue_recipients",
                               state="deferred"), 1)
        self.assertEqual(value(s, "petrel_queue_up"), 1)
        used = value(s, "petrel_queue_map_used_ratio")
        # Whole percents (qstore_txn_used_pct): 0 for a nearly empty map.
        self.assertTrue(used is not None and 0 <= used <= 1, used)

    def test_other_paths_and_methods(self):
        self.scrape()
        with self.assertRaises(urllib.error.HTTPError) as e:
            urllib.request.urlopen(self.url("/"), timeout=5)
        self.assertEqual(e.exception.code, 404)
        req = urllib.request.Request(self.url(), data=b"x", method="POST")
        with self.assertRaises(urllib.error.HTTPError) as e:
            urllib.request.urlopen(req, timeout=5)
        self.assertEqual(e.exception.code, 405)


class MetricsDkimWebhookTest(PetrelCase):
    """DKIM signatures, attempt durations, webhook requests and backlog."""

    SECRET = b"metrics-webhook-secret"

    def setUp(self):
        self.port = free_port()
        self.dead_port = free_port()    # nothing listens: refused
        cert, key = certificate()
        self.recv = Receiver(cert, key, secret=self.SECRET).start()
        self.addCleanup(self.recv.stop)
        self.whdir = __import__("tempfile").mkdtemp(prefix="petrel-mwh-")
        self.addCleanup(__import__("shutil").rmtree, self.whdir, True)
        os.chmod(self.whdir, 0o755)
        secret = os.path.join(self.whdir, "secret")
        with open(secret, "wb") as f:
            f.write(self.SECRET + b"\n")
        os.chmod(secret, 0o644)
        self.dead_url = "https://127.0.0.1:%d/hook" % self.dead_port
        self.hooks = [
            {"url": self.recv.url, "secret_file": secret, "ca_file": cert,
             "events": "delivered"},
            {"url": self.dead_url, "secret_file": secret, "ca_file": cert,
             "events": "delivered"},
        ]
        super().setUp()

    @property
    def overrides(self):
        return {"metrics": {"listen": "127.0.0.1:%d" % self.port},
                "webhooks": self.hooks,
                "events": {"min_backoff": "1s", "max_backoff": "2s"},
                "dkim": {"key_directory": os.path.join(self.tmp, "dkim"),
                         "group": "petrel-dkim"}}

    scrape = MetricsTest.scrape
    url = MetricsTest.url

    def dead_tries(self):
        """webhookd's log lines for requests to the refusing endpoint."""
        return len(re.findall(r"event=\S+ to=%s status=deferred"
                              % re.escape(self.dead_url), self.suite.log()))

    def test_dkim_attempts_and_webhooks(self):
        self.suite.relayctl("domain", "add", "example.com")
        tok = unique("mwh")
        rcpts = ["w%d-%s@example.org" % (i, tok) for i in range(3)]
        qids = [self.submit(make_message("%s-%d" % (tok, i), to=r),
                            rcpts=[r]) for i, r in enumerate(rcpts)]
        for qid, r in zip(qids, rcpts):
            self.suite.wait_delivery(qid, r, "sent", timeout=30)
        got = self.recv.wait(lambda e: e.get("event") == "delivered",
                             timeout=30, n=3)
        self.assertEqual(len(got), 3, self.suite.log_tail())
        # The refusing endpoint's deliveries stay pending (the backlog)
        # once webhookd has taken every event from the outbox. Counters
        # are bumped beside their log lines and the receiver's record,
        # so the scrape is taken again until both sides agree.
        deadline = time.time() + 30
        while True:
            before = self.dead_tries()
            s = parse(self.scrape())
            after = self.dead_tries()
            failed = value(s, "petrel_webhook_deliveries_total",
                           result="failed")
            state = (value(s, "petrel_outbox_events"),
                     value(s, "petrel_webhook_pending"),
                     value(s, "petrel_webhook_deliveries_total",
                           result="sent"), len(self.recv.events()),
                     before, failed, after)
            if (state[0] == 0 and state[1] == 3 and state[2] == state[3] == 3
                    and 3 <= before <= failed <= after):
                break
            self.assertLess(time.time(), deadline,
                            "outbox, pending, sent, received, logged "
                            "failures before, counted, after: %r\n%s"
                            % (state, self.suite.log_tail()))
            time.sleep(0.3)
        # One signature per attempt, each attempt delivered at once.
        self.assertEqual(value(s, "petrel_dkim_signatures_total",
                               result="signed"), 3)
        self.assertEqual(value(s, "petrel_dkim_signatures_total",
                               result="no_key"), 0)
        self.assertEqual(value(s, "petrel_dkim_signatures_total",
                               result="error"), 0)
        self.assertEqual(value(s, "petrel_delivered_dkim_total",
                               dkim="signed"), 3)
        self.assertEqual(value(s, "petrel_delivery_attempt_seconds_count"),
                         3)
        self.assertEqual(value(s, "petrel_delivery_attempt_seconds_bucket",
                               le="+Inf"), 3)
        # A loopback transaction takes well under 5 minutes, and some
        # time: the sum is positive and every attempt is in a finite
        # bucket.
        self.assertGreater(value(s, "petrel_delivery_attempt_seconds_sum"),
                           0)
        self.assertEqual(value(s, "petrel_delivery_attempt_seconds_bucket",
                               le="300"), 3)
        self.assertEqual(value(s, "petrel_webhook_deliveries_total",
                               result="dead"), 0)
        self.assertEqual(value(s, "petrel_outbox_dropped_total"), 0)


class MetricsAuthBlockTest(PetrelCase):
    """AUTH failures and blocks, as test_bruteforce provokes them."""

    def setUp(self):
        self.port = free_port()
        self.overrides = dict(BF)
        self.overrides["metrics"] = {"listen": "127.0.0.1:%d" % self.port}
        super().setUp()

    scrape = MetricsTest.scrape
    url = MetricsTest.url

    def test_failures_and_blocks(self):
        user, _ = self.ensure_user()
        # Failures count in fixed windows of auth.failure_window (10m):
        # start well inside one (see test_bruteforce).
        left = 600 - time.time() % 600
        if left < 20:
            time.sleep(left + 1)
        # From 127.0.0.3, so that the harness's own address stays
        # unblocked: three wrong secrets block the address (and the
        # user name).
        c = tls_session(self.suite, source="127.0.0.3")
        try:
            for i in range(3):
                code, _, _ = timed_auth(c, user, "wrong-%d" % i)
                self.assertEqual(code, 535)
        finally:
            quit_(c)
        # Two new connections from it, each refused at the greeting.
        for _ in range(2):
            line, _ = greeting(self.suite.submission_port,
                               source="127.0.0.3")
            self.assertTrue(line.startswith("421"), line)
        s = parse(self.scrape())
        self.assertEqual(value(s, "petrel_smtpd_auth_failures_total"), 3)
        self.assertEqual(value(s, "petrel_smtpd_auth_blocked_total"), 2)


class MetricsByCredentialTest(PetrelCase):
    """Recipient outcomes by the credential that submitted the message."""

    def setUp(self):
        self.port = free_port()
        # Listed recipients are accepted, then failed by qmgr (suppressed).
        self.overrides = {"metrics": {"listen": "127.0.0.1:%d" % self.port},
                          "suppression": {"action": "accept"}}
        super().setUp()

    scrape = MetricsTest.scrape
    url = MetricsTest.url

    def send_as(self, user, pw, rcpt, tok):
        c = connect(self.suite)
        try:
            login_plain(c, user, pw)
            return send(c, "app@example.com", [rcpt],
                        make_message(tok, to=rcpt))
        finally:
            c.quit()

    def test_outcomes_by_credential(self):
        tok = unique("mcred")
        user1, pw1 = self.ensure_user()
        user2, pw2 = "app2", "another long secret for app2"
        self.suite.add_user(user2, pw2)
        ok = ["ok%d-%s@example.org" % (i, tok) for i in range(3)]
        bad = "gone-%s@example.org" % tok
        listed = "listed-%s@example.org" % tok
        later = "later-%s@example.org" % tok
        self.capture.add_rcpt_rule("550 5.1.1 No such user", address=bad)
        self.capture.add_rcpt_rule("451 4.3.0 Try again later",
                                   address=later)
        self.suite.relayctl("suppression", "add", listed)
        # app1: two delivered, one bounced, one suppressed.
        # app2: one delivered, one deferred (again and again).
        sent = [(self.send_as(user1, pw1, ok[0], tok + "-0"), ok[0], "sent"),
                (self.send_as(user1, pw1, ok[1], tok + "-1"), ok[1], "sent"),
                (self.send_as(user1, pw1, bad, tok + "-b"), bad, "bounced"),
                (self.send_as(user1, pw1, listed, tok + "-s"), listed,
                 "bounced"),
                (self.send_as(user2, pw2, ok[2], tok + "-2"), ok[2], "sent"),
                (self.send_as(user2, pw2, later, tok + "-l"), later,
                 "deferred")]
        for qid, rcpt, status in sent:
            self.suite.wait_delivery(qid, rcpt, status, timeout=30)
        # The two failures are reported to the sender, without a
        # credential ("none").
        deadline = time.time() + 30
        while len(self.suite.deliveries(rcpt="app@example.com",
                                        status="sent")) < 2:
            self.assertLess(time.time(), deadline, self.suite.log_tail())
            time.sleep(0.2)

        def by(cred, outcome):
            return value(s, "petrel_recipients_by_credential_total",
                         credential=cred, outcome=outcome)
        # smtp logs a result before qmgr records it (qmgr gathers results
        # for a moment, qmgr(8) RESULTS): scrape until the five
        # deliveries and a deferral are recorded.
        deadline = time.time() + 20
        while True:
            s = parse(self.scrape())
            after = len(self.suite.deliveries(rcpt=later, status="deferred"))
            if (value(s, "petrel_recipients_delivered_total") == 5 and
                    (by(user2, "deferred") or 0) >= 1):
                break
            self.assertLess(time.time(), deadline, s)
            time.sleep(0.2)
        want = {user1: {"delivered": 2, "bounced": 1, "suppressed": 1,
                        "deferred": 0, "expired": 0},
                user2: {"delivered": 1, "bounced": 0, "suppressed": 0,
                        "expired": 0},
                "none": {"delivered": 2, "bounced": 0, "suppressed": 0,
                         "deferred": 0, "expired": 0}}
        for cred, outcomes in want.items():
            for outcome, n in outcomes.items():
                self.assertEqual(by(cred, outcome), n,
                                 (cred, outcome, s))
        # Each attempt counts; none is counted before smtp logged it.
        d = by(user2, "deferred")
        self.assertTrue(1 <= d <= after, (d, after))
        creds = set(lab["credential"] for n, lab, _ in s
                    if n == "petrel_recipients_by_credential_total")
        self.assertEqual(creds, {user1, user2, "none"})
        self.assertEqual(sum(v for n, lab, v in s
                             if n == "petrel_recipients_by_credential_total"
                             and lab["outcome"] == "delivered"),
                         value(s, "petrel_recipients_delivered_total"))

    def test_lost_queue_file_counts_as_bounced(self):
        """qmgr's start-up fails the recipients of a message whose file
        is gone (qmgr(8), START-UP): bounced, under its credential."""
        tok = unique("mlost")
        later = "later-%s@example.org" % tok
        self.capture.add_rcpt_rule("451 4.3.0 Try again later",
                                   address=later)
        qid = self.submit(make_message(tok, to=later), rcpts=[later])
        self.suite.wait_delivery(qid, later, "deferred", timeout=30)
        self.suite.stop()
        files = glob.glob(os.path.join(self.suite.queue_dir, "msg", "*",
                                       qid))
        self.assertEqual(len(files), 1, files)
        os.unlink(files[0])
        self.suite.start()
        deadline = time.time() + 20
        while True:
            s = parse(self.scrape())
            n = value(s, "petrel_recipients_by_credential_total",
                      credential=self.user, outcome="bounced")
            if n == 1:
                break
            self.assertLess(time.time(), deadline, "%r\n%s"
                            % (n, self.suite.log_tail()))
            time.sleep(0.2)
        self.assertIn("%s: queue file missing; recipients failed" % qid,
                      self.suite.log())
        self.assertGreaterEqual(value(
            s, "petrel_recipients_by_credential_total",
            credential=self.user, outcome="deferred"), 1)


class MetricsDestinationTest(PetrelCase):
    """Queue depth by destination: the 50 largest, then "other"."""

    NDEST = 53

    def setUp(self):
        self.port = free_port()
        # Next hops where nothing listens: their recipients are deferred
        # and stay in the queue, each destination its own transport key.
        # Held for the whole test: a port merely picked could become one
        # of the daemons' listeners, and its mail be answered.
        self.hops, socks = held_ports(self.NDEST)
        for sock in socks:
            self.addCleanup(sock.close)
        self.domains = ["d%02d.example" % i for i in range(self.NDEST)]
        transport = {d: "[127.0.0.1]:%d" % p
                     for d, p in zip(self.domains, self.hops)}
        self.overrides = {"metrics": {"listen": "127.0.0.1:%d" % self.port},
                          "transport": transport}
        super().setUp()

    scrape = MetricsTest.scrape
    url = MetricsTest.url

    def test_top_destinations_and_other(self):
        tok = unique("mdest")
        # d00: 3 recipients; d01-d49: 2 each; d50-d52: 1 each.
        want = {d: 2 for d in self.domains[1:50]}
        want[self.domains[0]] = 3
        for d in self.domains[50:]:
            want[d] = 1
        rcpts = []
        for d, n in sorted(want.items()):
            rcpts += ["u%d-%s@%s" % (i, tok, d) for i in range(n)]
        self.assertEqual(len(rcpts), 104)
        for part in (rcpts[:52], rcpts[52:]):
            self.submit(make_message(tok), rcpts=part)
        s = parse(self.scrape())
        series = {lab["destination"]: v for n, lab, v in s
                  if n == "petrel_queue_destination_recipients"}
        expect = {"[127.0.0.1]:%d" % p: want[d]
                  for d, p in zip(self.domains, self.hops) if want[d] > 1}
        expect["other"] = 3
        self.assertEqual(series, expect)
        self.assertEqual(value(s, "petrel_queue_recipients",
                               state="pending") +
                         value(s, "petrel_queue_recipients",
                               state="deferred"), 104)


class MetricsShapingTest(ShapingCase):
    """qmgr's shaping state per destination, read at scrape time."""

    def setUp(self):
        self.port = free_port()
        super().setUp()

    @property
    def overrides(self):
        return {"smtp": {"processes": 8},
                "metrics": {"listen": "127.0.0.1:%d" % self.port}}

    scrape = MetricsTest.scrape
    url = MetricsTest.url

    def test_backlog_at_a_rate_limited_destination(self):
        key = self.key(self.capture)
        self.shape({key: {"max_message_rate": "1/s",
                          "max_connections": 2}})
        n = 10
        toks = self.send_batch("mshape", n)
        # One job per message (one recipient, one next hop). While the
        # backlog lasts: every job not yet handed to smtp is pending, so
        # pending <= n - arrived (before the scrape), and every job not
        # pending is at smtp or done, so pending >= n - arrived (after
        # the scrape) - connections. The first scrapes may come before
        # qmgr has made every message a job: scrape until it has.
        deadline = time.time() + 20
        while True:
            before = len(self.capture.messages())
            s = parse(self.scrape())
            after = len(self.capture.messages())
            pend = value(s, "petrel_shaping_pending", destination=key)
            conns = value(s, "petrel_shaping_connections", destination=key)
            state = (before, pend, conns, after)
            if (pend is not None and pend >= 3 and
                    n - after - conns <= pend <= n - before):
                break
            self.assertLess(time.time(), deadline, "arrived before, "
                            "pending, connections, arrived after: %r\n%s"
                            % (state, self.suite.log_tail()))
            time.sleep(0.2)
        self.assertEqual(value(s, "petrel_shaping_up"), 1)
        self.assertLessEqual(conns, 2)
        self.assertEqual(value(s, "petrel_shaping_state", destination=key,
                               state="pacing"), 1, s)
        self.assertEqual(value(s, "petrel_shaping_state", destination=key,
                               state="normal"), 0)
        self.assertEqual(value(s, "petrel_shaping_state", destination=key,
                               state="at-limit"), 0)
        self.assertEqual(value(s, "petrel_shaping_max_connections",
                               destination=key), 2)
        self.assertEqual(value(s, "petrel_shaping_message_rate_limit",
                               destination=key), 1)
        self.assertGreaterEqual(value(s, "petrel_shaping_destinations",
                                      state="pacing"), 1)
        self.assertEqual(value(s, "petrel_shaping_pending",
                               destination="other"), 0)
        # The same backlog from the queue's side, by destination: a
        # recipient stays in the queue until qmgr has applied its
        # result, a moment after it arrived, so at most n.
        q = value(s, "petrel_queue_destination_recipients", destination=key)
        self.assertTrue(pend <= q <= n, (pend, q, before))
        # metricsd(8) names every family and label this scrape shows
        # (every one there is, the shaping series included).
        with open(os.path.join(HERE, "..", "..", "man",
                               "metricsd.8")) as f:
            man = f.read()
        got = parse(self.scrape(), families=True)
        # (The client's parser names a counter's family without _total.)
        for fam in got["families"]:
            self.assertTrue(re.search(r"\.It Li %s(_total)?\b" % fam, man),
                            "%s is not in metricsd(8)" % fam)
        for lab in set(k for _, labs, _ in got["samples"] for k in labs):
            if lab != "le":             # histogram buckets
                self.assertTrue(re.search(r"Li %s\b" % lab, man),
                                "label %s is not in metricsd(8)" % lab)
        self.arrivals(self.capture, toks, 60)

    def test_scrape_answers_without_qmgr(self):
        s = parse(self.scrape())
        self.assertEqual(value(s, "petrel_shaping_up"), 1)
        pid = self.suite.pids_of("qmgr")[0]
        os.kill(pid, signal.SIGSTOP)
        try:
            t0 = time.time()
            s = parse(self.scrape())
            took = time.time() - t0
        finally:
            os.kill(pid, signal.SIGCONT)
        self.assertEqual(value(s, "petrel_shaping_up"), 0)
        self.assertFalse([n for n, _, _ in s if n.startswith(
            "petrel_shaping_") and n != "petrel_shaping_up"])
        self.assertEqual(value(s, "petrel_queue_up"), 1)
        self.assertLess(took, 5)


class MetricsOffTest(PetrelCase):
    """metrics.listen unset (the default): no metricsd, no counters."""

    def test_off_by_default(self):
        tok = unique("nometrics")
        qid = self.submit(make_message(tok))
        self.wait_arrival(tok)
        self.suite.wait_delivery(qid, "rcpt@example.org", "sent")
        self.assertEqual(self.suite.pids_of("metricsd"), [])
        self.assertFalse(os.path.exists(
            os.path.join(self.suite.queue_dir, "metrics")))


if __name__ == "__main__":
    unittest.main()
