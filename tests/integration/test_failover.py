"""test_failover.py - smarthost failover: a transport entry with a list.

The transport entry "*" lists two capture servers, the harness's own
(self.capture, the first hop) and a second one. When the first refuses
connections, answers 421 or never greets, everything goes through the
second at once, the first is logged as down, and after
smtp.failover_retry mail goes through the first again.
"""

import time

from harness import CaptureSMTPD, PetrelCase, make_message, unique

RETRY = 2       # smtp.failover_retry, seconds


class FailoverTest(PetrelCase):

    overrides = {"smtp": {"failover_retry": "%ds" % RETRY,
                          "command_timeout": "3s"}}

    def setUp(self):
        super().setUp()
        self.backup = CaptureSMTPD()
        self.backup.start()
        self.addCleanup(self.backup.stop)
        # The list needs both ports: rewrite the transport and restart.
        self.suite.stop()
        self.suite.config["transport"] = {"*": [
            "[127.0.0.1]:%d" % self.capture.port,
            "[127.0.0.1]:%d" % self.backup.port]}
        self.suite.write_config()
        self.suite.start()
        self.first = "[127.0.0.1]:%d" % self.capture.port

    def send_some(self, tag, n):
        toks = [unique(tag) for _ in range(n)]
        qids = [self.submit(make_message(t)) for t in toks]
        return toks, qids

    def wait_log(self, text, timeout=20):
        deadline = time.time() + timeout
        while text not in self.suite.log():
            if time.time() > deadline:
                self.fail("no %r in the log\n%s" % (text,
                                                    self.suite.log_tail()))
            time.sleep(0.1)

    def check_through(self, server, toks, qids):
        for t in toks:
            got = server.wait_for_messages(
                1, 20, match=lambda tr, t=t: t.encode() in tr.data)
            self.assertTrue(got, "%s did not arrive on port %d\n%s"
                            % (t, server.port, self.suite.log_tail()))
        for q in qids:
            d = self.suite.wait_delivery(q, "rcpt@example.org", "sent",
                                         timeout=20)[0]
            self.assertIn(":%d" % server.port, d["relay"], d["line"])

    def no_deferrals(self, qids):
        for q in qids:
            self.assertEqual(self.suite.deliveries(q, status="deferred"), [],
                             "a failover hop must not defer")

    def test_first_refuses_then_returns(self):
        self.capture.stop()
        toks, qids = self.send_some("fo-down", 4)
        self.check_through(self.backup, toks, qids)
        self.no_deferrals(qids)
        self.wait_log("next hop %s is down for %ds" % (self.first, RETRY))
        self.assertEqual(self.capture.messages(), [])

        # Back: after the retry interval the first hop carries the mail.
        self.capture.restart()
        time.sleep(RETRY + 0.5)
        before = len(self.backup.messages())
        toks, qids = self.send_some("fo-back", 3)
        self.check_through(self.capture, toks, qids)
        self.assertEqual(len(self.backup.messages()), before)

    def test_first_goes_down_mid_run(self):
        toks, qids = self.send_some("fo-up", 2)
        self.check_through(self.capture, toks, qids)
        self.capture.stop()
        toks, qids = self.send_some("fo-mid", 3)
        self.check_through(self.backup, toks, qids)

    def test_421_greeting_moves_on(self):
        self.capture.greeting = "421 4.3.2 capture.test busy"
        toks, qids = self.send_some("fo-421", 3)
        self.check_through(self.backup, toks, qids)
        self.no_deferrals(qids)
        self.wait_log("next hop %s is down" % self.first)
        self.assertEqual(self.capture.messages(), [])
        # Answering again: used again after the interval.
        self.capture.greeting = None
        time.sleep(RETRY + 0.5)
        toks, qids = self.send_some("fo-421b", 2)
        self.check_through(self.capture, toks, qids)
        self.wait_log("next hop %s is up again" % self.first)

    def test_silent_first_hop_times_out_to_the_second(self):
        # Accepts but never greets: the greeting wait times out
        # (smtp.command_timeout) and the second hop takes the mail.
        self.capture.greeting = "STALL"
        toks, qids = self.send_some("fo-stall", 2)
        self.check_through(self.backup, toks, qids)
        self.no_deferrals(qids)
        self.assertEqual(self.capture.messages(), [])
