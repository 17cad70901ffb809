"""test_metrics.py - the Prometheus endpoint (metricsd(8), metrics.listen).

With metrics.listen set, master runs metricsd. The test sends messages
through the real daemons: some delivered, one bounced (550 at RCPT from
the capture server), one deferred (451), plus a failed AUTH, then scrapes
GET /metrics and checks each count against what it sent. The exposition
is parsed by the Prometheus Python client's parser (prom_parse.py, under
/usr/bin/python3), which also rejects duplicate series. Without
metrics.listen nothing listens and nothing is counted.
"""

import json
import os
import smtplib
import subprocess
import time
import unittest
import urllib.error
import urllib.request

from harness import PetrelCase, connect, free_port, make_message, unique

HERE = os.path.dirname(os.path.abspath(__file__))
PARSE = os.path.join(HERE, "prom_parse.py")
SYS_PYTHON = "/usr/bin/python3"


def parse(text):
    r = subprocess.run([SYS_PYTHON, PARSE], input=text.encode(),
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       timeout=30)
    if r.returncode != 0:
        raise AssertionError("exposition does not parse: %s\n%s"
                             % (r.stderr.decode(), text))
    return json.loads(r.stdout.decode())["samples"]


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
