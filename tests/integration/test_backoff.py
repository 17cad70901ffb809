"""test_backoff.py - adaptive backoff on reply patterns (shaping.yaml's
on_reply, qmgr_dest.c).

A capture server answers "421 4.7.28 ... unusual rate ..." to DATA, as
Gmail does to a sender it finds too fast. With a backoff rule Petrel
logs the backoff, `relayctl shaping show` shows the lowered limits, it
sends no faster than them (counted as messages let out in a window: a
slow daemon only lowers that count) and in the end delivers everything;
the control, whose rule does not match, goes on at full speed. A
suspend rule defers the destination's mail with "delivery temporarily
suspended" and delivers it once the suspension is over.
"""

import json
import re
import time

import test_webhookd as whd
from test_shaping import ShapingCase

GMAIL_421 = ("421 4.7.28 Our system has detected an unusual rate of "
             "unsolicited mail originating from your IP address")
PATTERN = r"4\.7\.28|unusual rate"
SUSPENDED = "delivery temporarily suspended: "


class BackoffCase(ShapingCase):

    def show(self):
        r = self.suite.relayctl("shaping", "show", "-j",
                                self.key(self.capture), check=False)
        rows = [json.loads(line) for line in r.stdout.decode().splitlines()]
        self.assertEqual(len(rows), 1, r.stdout)
        return rows[0]

    def wait_log(self, regex, timeout=30):
        deadline = time.time() + timeout
        while re.search(regex, self.suite.log()) is None:
            if time.time() > deadline:
                self.fail("no log line matching %r\n%s"
                          % (regex, self.suite.log_tail()))
            time.sleep(0.1)

    def trigger(self):
        """One message whose first DATA gets Gmail's 421."""
        self.capture.add_data_rule(GMAIL_421, times=1)
        return self.send_batch("trigger", 1)

    def count(self, toks):
        want = [t.encode() for t in toks]
        return sum(1 for tr in self.capture.messages()
                   if any(t in tr.data for t in want))

    def wait_sent(self, n, timeout=60):
        deadline = time.time() + timeout
        while len(self.suite.deliveries(status="sent")) < n:
            if time.time() > deadline:
                self.fail("fewer than %d sent\n%s"
                          % (n, self.suite.log_tail()))
            time.sleep(0.2)


class BackoffTest(BackoffCase):

    WINDOW = 4      # s
    BATCH = 12

    def burst(self):
        """BATCH messages; how many reached the server within WINDOW s
        of the first's submission, and their tokens."""
        t0 = time.time()
        toks = self.send_batch("burst", self.BATCH)
        time.sleep(max(0, t0 + self.WINDOW - time.time()))
        return self.count(toks), toks

    def test_backoff_lowers_the_rate(self):
        self.shape({self.key(self.capture): {"on_reply": [
            {"pattern": PATTERN, "action": "backoff", "for": "15s",
             "max_message_rate": "1/s", "max_connections": 1}]}})
        trig = self.trigger()
        self.wait_log(r"destination \[127\.0\.0\.1\]:%d: backoff \(421 "
                      r"4\.7\.28 Our system has detected an unusual "
                      r"rate.*\), rate 1/s, connections 1 for 15s"
                      % self.capture.port)
        row = self.show()
        self.assertEqual(row["state"], "backoff", row)
        self.assertEqual((row["max_connections"], row["rate_count"],
                          row["rate_interval"]), (1, 1, 1), row)
        n, toks = self.burst()
        # 1/s: the bucket's token and one a second (and a slack of one).
        self.assertLessEqual(n, self.WINDOW + 2,
                             "%d messages in %ds at 1/s" % (n, self.WINDOW))
        # Nothing lost: the deferred one and the backlog go out, the
        # backlog without new mail to wake it.
        self.arrivals(self.capture, trig + toks, 90)
        self.wait_sent(len(trig) + len(toks))
        self.wait_log(r"destination \[127\.0\.0\.1\]:%d: normal \(backoff "
                      r"ended\), rate unlimited, connections unlimited"
                      % self.capture.port, 40)
        self.assertEqual(len(re.findall(r": backoff \(", self.suite.log())),
                         1, "one line per change of state")

    def test_without_a_match_full_speed(self):
        """The control: a rule that does not match the 421 changes
        nothing; the same burst goes out faster than 1/s."""
        self.shape({self.key(self.capture): {"on_reply": [
            {"pattern": r"4\.7\.99", "action": "backoff", "for": "15s",
             "max_message_rate": "1/s", "max_connections": 1}]}})
        trig = self.trigger()
        self.suite.wait_delivery(None, "rcpt@example.org", "deferred")
        n, toks = self.burst()
        self.assertGreater(n, self.WINDOW + 2,
                           "only %d messages in %ds" % (n, self.WINDOW))
        self.arrivals(self.capture, trig + toks, 60)
        self.assertNotIn(": backoff", self.suite.log())

    def test_after_counts_matches(self):
        """after: 2: the first 421 is only counted, the second acts."""
        self.shape({self.key(self.capture): {"on_reply": [
            {"pattern": PATTERN, "action": "backoff", "for": "5s",
             "max_connections": 1, "after": 2}]}})
        first = self.trigger()
        self.suite.wait_delivery(None, "rcpt@example.org", "deferred")
        self.arrivals(self.capture, first, 30)
        self.assertNotIn(": backoff", self.suite.log())
        second = self.trigger()
        self.wait_log(r"destination \[127\.0\.0\.1\]:%d: backoff \(421 "
                      r"4\.7\.28 .*\), rate unlimited, connections 1 for 5s"
                      % self.capture.port)
        self.arrivals(self.capture, second, 30)


class SuspendTest(BackoffCase):

    def test_suspend_defers_then_delivers(self):
        self.shape({self.key(self.capture): {"on_reply": [
            {"pattern": PATTERN, "action": "suspend", "for": "8s"}]}})
        trig = self.trigger()
        self.wait_log(r"destination \[127\.0\.0\.1\]:%d: suspended \(421 "
                      r"4\.7\.28 .*unusual rate.*\), mail deferred for 8s"
                      % self.capture.port)
        toks = self.send_batch("held", 4)
        deadline = time.time() + 30
        while True:
            sus = [d for d in self.suite.deliveries(status="deferred")
                   if d["reply"].startswith(SUSPENDED)]
            if len(sus) >= len(toks):
                break
            if time.time() > deadline:
                self.fail("mail not deferred as suspended\n%s"
                          % self.suite.log_tail())
            time.sleep(0.1)
        self.assertTrue(all("421 4.7.28" in d["reply"] for d in sus), sus)
        self.assertEqual({d["dsn"] for d in sus}, {"4.4.1"})
        n = self.count(toks)
        row = self.show()
        # Still suspended (a slow run may be past it): nothing but the
        # trigger reached the server, and relayctl says so.
        if row["state"] == "suspended":
            self.assertTrue(0 < row["suspended_for"] <= 8, row)
            self.assertEqual(n, 0)
        self.wait_log(r"destination \[127\.0\.0\.1\]:%d: normal "
                      r"\(suspension ended\)" % self.capture.port, 40)
        self.arrivals(self.capture, trig + toks, 60)
        self.wait_sent(len(trig) + len(toks))

    def test_other_destination_not_suspended(self):
        """The control: the rule of another destination's entry does
        not apply; the 421 defers only its own message."""
        self.shape({"unrelated.example": {"on_reply": [
            {"pattern": PATTERN, "action": "suspend", "for": "8s"}]}})
        trig = self.trigger()
        self.suite.wait_delivery(None, "rcpt@example.org", "deferred")
        toks = self.send_batch("free", 3)
        self.arrivals(self.capture, trig + toks, 30)
        self.assertEqual(self.count(toks), len(toks))
        self.assertNotIn("delivery suspended", self.suite.log())
        self.assertNotIn(SUSPENDED, self.suite.log())


class DestinationEventTest(whd.WebhookCase, BackoffCase):
    """Each change of a destination's state is a `destination` event
    (qmgr_destev.c): Gmail's 421 4.7.28 puts the destination in backoff
    and a petrel endpoint whose events name `destination` gets it, then
    the return to normal when the backoff ends; an endpoint with the
    default events gets none, nor does a mailgun one that asks for them
    (Mailgun has no such event). relayctl events list, log search and
    the accounting log show them."""

    receivers = ({}, {}, {})
    endpoint_extra = ({"events": "delivered,destination"}, {},
                      {"format": "mailgun",
                       "events": "delivered,destination"})

    def dest_events(self, r, state=None):
        return r.wait(lambda e: e.get("event") == "destination" and
                      (state is None or e.get("state") == state),
                      timeout=0.1)

    def test_backoff_then_normal(self):
        self.shape({self.key(self.capture): {"on_reply": [
            {"pattern": PATTERN, "action": "backoff", "for": "3s",
             "max_message_rate": "1/s", "max_connections": 1}]}})
        want, plain, mailgun = self.recv
        t0 = time.time()
        trig = self.trigger()
        got = want.wait(lambda e: e.get("event") == "destination" and
                        e.get("state") == "backoff")
        self.assertTrue(got, self.suite.log_tail())
        self.assertTrue(got[0]["verified"], got[0])
        e = got[0]["json"]
        self.assertRegex(e["id"], r"^[0-9a-f]{32}$")
        self.assertEqual(got[0]["headers"].get("X-Petrel-Event-Id"),
                         e["id"])
        self.assertEqual(e["destination"], self.key(self.capture))
        self.assertEqual(e["entry"], self.key(self.capture))
        self.assertEqual(e["previous_state"], "normal")
        self.assertIn("421 4.7.28", e["reason"])
        self.assertEqual((e["max_connections"], e["rate_count"],
                          e["rate_interval"]), (1, 1, 1))
        self.assertRegex(e["until"], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d"
                         r"\.\d{3}Z$")
        for key in ("queue_id", "recipient", "sender", "metadata"):
            self.assertNotIn(key, e)
        # One log line for the change.
        self.wait_log(r"destination \[127\.0\.0\.1\]:%d: backoff \(.*\), "
                      r"rate 1/s, connections 1 for 3s" % self.capture.port)
        # The backoff ends by itself: normal again, one event.
        got = want.wait(lambda e: e.get("event") == "destination" and
                        e.get("state") == "normal", timeout=30)
        self.assertTrue(got, self.suite.log_tail())
        e = got[0]["json"]
        self.assertEqual(e["previous_state"], "backoff")
        self.assertEqual(e["reason"], "backoff ended")
        self.assertIsNone(e["until"])
        self.assertEqual(e["max_connections"], 0)
        self.assertGreaterEqual(got[0]["time"] - t0, 3)
        self.wait_log(r"destination \[127\.0\.0\.1\]:%d: normal \(backoff "
                      r"ended\)" % self.capture.port)
        # Mail goes on; the mailgun endpoint hears of its delivery.
        self.arrivals(self.capture, trig, 60)
        self.assertTrue(mailgun.wait(lambda e: "event-data" in e and
                                     e["event-data"]["event"] ==
                                     "delivered"), self.suite.log_tail())
        self.assertTrue(plain.wait(lambda e: e.get("event") ==
                                   "delivered"), self.suite.log_tail())
        # Two changes, two events; none for the others.
        self.assertEqual([r["json"]["state"] for r in
                          self.dest_events(want)], ["backoff", "normal"])
        self.assertEqual(self.dest_events(plain), [])
        self.assertEqual([r for r in mailgun.requests
                          if b"destination" in r["body"] or
                          self.key(self.capture).encode() in r["body"]],
                         [])
        self.assertEqual(len(re.findall(r": backoff \(",
                                        self.suite.log())), 1)
        # The accounting log says the same.
        acct = [o for o in self.suite.accounting()
                if o.get("event") == "destination"]
        self.assertEqual([(o["state"], o["previous_state"]) for o in acct],
                         [("backoff", "normal"), ("normal", "backoff")])
        self.assertNotIn("queue_id", acct[0])
        # relayctl events list and log search cope with them.
        lst = self.suite.relayctl("events", "list").stdout.decode()
        self.assertRegex(lst, r"(?m)^[0-9a-f]{32} destination +%s "
                         r"state=backoff " % re.escape(
                             self.key(self.capture)))
        js = [json.loads(line) for line in self.suite.relayctl(
            "-j", "events", "list").stdout.decode().splitlines()]
        dj = [o for o in js if o["event"] == "destination"]
        self.assertEqual(len(dj), 2, js)
        self.assertNotIn("queue_id", dj[0])
        self.assertEqual(dj[0]["destination"], self.key(self.capture))
        self.assertEqual([o["destination_state"] for o in dj],
                         ["backoff", "normal"])
        deadline = time.time() + 15
        while True:
            txt = self.suite.relayctl("log", "search").stdout.decode()
            if len(re.findall(r" destination ", txt)) >= 2 or \
                    time.time() > deadline:
                break
            time.sleep(0.3)
        self.assertRegex(txt, r"destination +%s state=normal "
                         r"previous=backoff" % re.escape(
                             self.key(self.capture)))
        sj = [json.loads(line) for line in self.suite.relayctl(
            "-j", "log", "search").stdout.decode().splitlines()]
        self.assertEqual(len([o for o in sj
                              if o["event"] == "destination"]), 2)
