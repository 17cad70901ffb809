"""test_deadsite.py - qmgr's dead-site detection (qmgr_dest.c).

A next hop whose every session is refused at the greeting (421, as a
provider shedding load answers) is suspended after three attempts in a
row that set up no session: the rest of its mail is deferred with
"delivery temporarily suspended" and the last failure, without a
session each, `relayctl shaping show` calls it dead, and another
destination's mail goes on. When the site answers again, the first
attempt after the suspension brings it back and everything is
delivered. Each change of state is one log line and one destination
event in the accounting log.
"""

import json
import re
import time

from harness import CaptureSMTPD
from test_shaping import ShapingCase

SUSPENDED = "delivery temporarily suspended: "


class DeadSiteTest(ShapingCase):

    overrides = {"smtp": {"processes": 2}}

    def setUp(self):
        super().setUp()
        self.down = self.capture
        self.down.greeting = "421 4.3.2 Service busy, try later"
        self.other = CaptureSMTPD()
        self.other.start()
        self.addCleanup(self.other.stop)
        self.transport = {"down.example": self.key(self.down),
                          "other.example": self.key(self.other),
                          "*": self.key(self.other)}

    def suspended(self):
        return [d for d in self.suite.deliveries(status="deferred")
                if d["reply"].startswith(SUSPENDED)]

    def wait_suspended(self, n, timeout=60):
        deadline = time.time() + timeout
        while len(self.suspended()) < n:
            if time.time() > deadline:
                self.fail("fewer than %d suspended deferrals\n%s"
                          % (n, self.suite.log_tail()))
            time.sleep(0.2)

    def test_suspended_after_three_failures(self):
        # Suspended for a minute: long enough to look at it.
        self.shape({self.key(self.down): {"retry_interval": "1m"}},
                   transport=self.transport)
        toks = self.send_batch("dead", 12, rcpt="u@down.example")
        self.wait_suspended(1)
        log = self.suite.log()
        self.assertRegex(log, r"destination \[127\.0\.0\.1\]:%d: dead "
                         r"\(.*421.*\), 3 attempts in a row set up no "
                         r"session, mail deferred for 1m" % self.down.port)
        # Every message had one attempt; those after the suspension
        # quote the failure without a session of their own.
        deadline = time.time() + 60
        while len(self.suite.deliveries(status="deferred")) < len(toks):
            if time.time() > deadline:
                self.fail("not every message was tried\n%s"
                          % self.suite.log_tail())
            time.sleep(0.2)
        sus = self.suspended()
        self.assertTrue(all("421" in d["reply"] for d in sus), sus)
        self.assertEqual({d["dsn"] for d in sus}, {"4.4.1"})
        self.assertLessEqual(len(self.down.session_times),
                             len(toks) - len(sus))
        self.assertLess(len(self.down.session_times), len(toks))
        # relayctl shows the destination dead.
        r = self.suite.relayctl("shaping", "show", "-j",
                                self.key(self.down), check=False)
        rows = [json.loads(line) for line in r.stdout.decode().splitlines()]
        self.assertEqual([row["state"] for row in rows], ["dead"],
                         r.stdout)
        self.assertGreaterEqual(rows[0]["failures"], 3)
        self.assertTrue(0 < rows[0]["suspended_for"] <= 60, rows)
        self.assertIn("421", rows[0]["last_failure"])
        # Another destination is not held back.
        fast = self.send_batch("alive", 3, rcpt="u@other.example")
        self.arrivals(self.other, fast, 30)

    def test_back_after_the_suspension(self):
        self.shape({self.key(self.down): {"retry_interval": "3s"}},
                   transport=self.transport)
        toks = self.send_batch("back", 8, rcpt="u@down.example")
        self.wait_suspended(1)
        # The site answers again: the next attempt after the 3 s
        # suspension reaches it, and the rest follows.
        self.down.greeting = None
        self.arrivals(self.down, toks, 90)
        deadline = time.time() + 20
        while len(self.suite.deliveries(status="sent")) < len(toks):
            if time.time() > deadline:
                self.fail("not logged as sent\n" + self.suite.log_tail())
            time.sleep(0.2)
        # Two changes of state, each one line and one destination event
        # (qmgr_destev.c): dead, then normal when a probe got a session.
        self.suite.wait_accounting(
            lambda o: o.get("event") == "destination" and
            o["state"] == "normal", what="destination normal")
        acct = [o for o in self.suite.accounting()
                if o.get("event") == "destination"]
        self.assertEqual([(o["state"], o["previous_state"]) for o in acct],
                         [("dead", "normal"), ("normal", "dead")])
        self.assertEqual(acct[0]["destination"], self.key(self.down))
        self.assertIn("421", acct[0]["reason"])
        self.assertGreater(acct[0]["until"], 0)
        self.assertEqual(acct[1]["reason"], "a session was set up")
        log = self.suite.log()
        self.assertEqual(len(re.findall(r": dead \(", log)), 1)
        self.assertEqual(len(re.findall(r": normal \(a session was set "
                                        r"up\), the site is up again",
                                        log)), 1)

    def test_one_failure_is_not_a_dead_site(self):
        """The control: failures not in a row (each followed by a
        session that works) never suspend the destination."""
        self.down.greeting = None
        self.shape({self.key(self.down): {"retry_interval": "2s"}},
                   transport=self.transport)
        for i in range(4):
            self.down.greeting = "421 4.3.2 busy"
            self.down.greeting_times = 1
            tok = self.send_batch("flaky%d" % i, 1, rcpt="u@down.example")
            self.arrivals(self.down, tok, 60)
        self.assertEqual(self.suspended(), [])
        self.assertNotIn("delivery temporarily suspended",
                         self.suite.log())
