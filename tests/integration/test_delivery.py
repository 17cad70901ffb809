"""test_delivery.py - next hop replies: 4xx defers and retries, 5xx bounces."""

import time
import unittest

from harness import PetrelCase, make_message, unique


class DeferRetryTest(PetrelCase):

    def test_451_deferred_then_delivered_on_retry(self):
        tok = unique("defer")
        rcpt = "later@example.org"
        # The next hop says 451 until we lift it, so the deferred state
        # can be observed; then the retry (min_backoff 1s) delivers.
        rule = self.capture.add_rcpt_rule("451 4.3.0 try later",
                                          address=rcpt)
        qid = self.submit(make_message(tok, to=rcpt), rcpts=[rcpt])
        d = self.suite.wait_delivery(qid, rcpt, "deferred", timeout=20)[0]
        self.assertEqual(d["dsn"], "4.3.0", d["line"])
        self.assertIn("451", d["reply"], d["line"])
        self.assertIn(str(self.capture.port), d["relay"], d["line"])
        # relayq shows it, deferred, with the reason.
        q = [self.suite.wait_queued(qid, lambda m: any(
            r.get("address") == rcpt and r.get("state") == "deferred"
            for r in m["recipients"]))]
        rc = [r for r in q[0]["recipients"] if r.get("address") == rcpt]
        self.assertEqual(len(rc), 1, q[0])
        self.assertIn("451", rc[0].get("delay_reason", ""), q[0])
        text = self.suite.relayq().stdout.decode("utf-8", "replace")
        self.assertIn(qid, text, "relayq listing lacks %s:\n%s" % (qid, text))
        self.assertIn(rcpt, text)
        # Lift the 451: the scheduled retry delivers without a flush.
        rule.times = 0
        attempts_before = len(self.capture.rcpt_attempts(rcpt))
        t = self.wait_arrival(tok, timeout=20)[0]
        self.assertEqual(t.rcpt_tos, [rcpt])
        self.assertGreaterEqual(attempts_before, 1)
        self.suite.wait_delivery(qid, rcpt, "sent", timeout=10)
        self.suite.wait_accounting(
            lambda o: o.get("event") == "deferred" and
            o.get("queue_id") == qid, what="deferred event for %s" % qid)
        self.suite.wait_accounting(
            lambda o: o.get("event") == "delivered" and
            o.get("queue_id") == qid, what="delivered event for %s" % qid)
        # Delivered means gone from the queue.
        deadline = time.time() + 10
        while time.time() < deadline:
            if not [m for m in self.suite.relayq_json()
                    if m.get("queue_id") == qid]:
                break
            time.sleep(0.2)
        else:
            self.fail("%s still in the queue after delivery" % qid)

    def test_451_first_attempt_only(self):
        """A single 451 at end-of-data, then the automatic retry."""
        tok = unique("defer1")
        self.capture.add_data_rule("451 4.3.0 try later", times=1)
        t0 = time.time()
        qid = self.submit(make_message(tok))
        self.suite.wait_delivery(qid, "rcpt@example.org", "deferred",
                                 timeout=20)
        t = self.wait_arrival(tok, timeout=20)
        self.assertEqual(len([x for x in self.capture.all_transactions()
                              if tok.encode() in x.data]), 2,
                         "expected one refused and one accepted transfer")
        self.assertLess(time.time() - t0, 20)
        self.suite.wait_delivery(qid, "rcpt@example.org", "sent",
                                 timeout=10)
        self.assertEqual(len(t), 1)


class BounceTest(PetrelCase):

    def test_550_one_of_two_bounced_not_retried(self):
        tok = unique("bounce")
        bad, good = "nosuch@example.org", "good@example.org"
        self.capture.add_rcpt_rule("550 5.1.1 no such user", address=bad)
        qid = self.submit(make_message(tok, to=good), rcpts=[bad, good])
        t = self.wait_arrival(tok)[0]
        self.assertEqual(t.rcpt_tos, [good])
        b = self.suite.wait_delivery(qid, bad, "bounced")[0]
        self.assertEqual(b["dsn"], "5.1.1", b["line"])
        self.assertIn("550", b["reply"], b["line"])
        self.suite.wait_delivery(qid, good, "sent")
        # Several retry periods (backoff 1s..2s): the 550 is final.
        time.sleep(6)
        self.assertEqual(len(self.capture.rcpt_attempts(bad)), 1,
                         "the bounced recipient was tried again: %r"
                         % self.capture.rcpt_attempts(bad))
        self.assertEqual(len(self.capture.rcpt_attempts(good)), 1,
                         "the delivered recipient was sent again")
        self.assertEqual(len(self.suite.deliveries(qid, bad)), 1,
                         "more than one attempt logged for %s" % bad)
        self.assertEqual([m for m in self.suite.relayq_json()
                          if m.get("queue_id") == qid], [],
                         "the message is still queued")
        ev = self.suite.accounting()
        kinds = {(o.get("event"), o.get("recipient")) for o in ev
                 if o.get("queue_id") == qid}
        self.assertIn("accepted", {k for k, _ in kinds},
                      "no accepted event for %s: %r" % (qid, ev))
        self.assertIn(("bounced", bad), kinds, ev)
        self.assertIn(("delivered", good), kinds, ev)
        for o in ev:
            if o.get("queue_id") == qid and o.get("event") == "bounced":
                self.assertEqual(o.get("dsn"), "5.1.1", o)

    def test_550_at_end_of_data_bounces_all(self):
        tok = unique("bounce2")
        self.capture.add_data_rule("554 5.7.1 rejected by policy", times=1)
        qid = self.submit(make_message(tok))
        b = self.suite.wait_delivery(qid, "rcpt@example.org", "bounced")[0]
        self.assertEqual(b["dsn"], "5.7.1", b["line"])
        time.sleep(4)
        # The report to the sender (from <>) quotes the message's headers.
        self.assertEqual(len([x for x in self.capture.all_transactions()
                              if tok.encode() in x.data and
                              x.mail_from != ""]), 1,
                         "a rejected message was sent again")


class NextHopTlsTest(PetrelCase):
    capture_tls = True

    def test_outbound_starttls_used_when_offered(self):
        tok = unique("outtls")
        qid = self.submit(make_message(tok))
        t = self.wait_arrival(tok)[0]
        self.assertIsNotNone(t.tls, "smtp did not use STARTTLS although "
                             "the next hop offered it")
        self.assertIn(t.tls, ("TLSv1.2", "TLSv1.3"))
        self.suite.wait_delivery(qid, "rcpt@example.org", "sent")


class AccountingTest(PetrelCase):

    def test_accounting_events(self):
        tok = unique("acct")
        qid = self.submit(make_message(tok), rcpts=["r1@example.org",
                                                    "r2@example.org"])
        self.wait_arrival(tok)
        for r in ("r1@example.org", "r2@example.org"):
            d = self.suite.wait_delivery(qid, r, "sent")[0]
            self.assertRegex(d["dsn"], r"^2\.\d+\.\d+$")
            self.assertRegex(d["relay"], r"127\.0\.0\.1")
        self.suite.wait_accounting(
            lambda o: o.get("event") == "accepted" and
            o.get("queue_id") == qid, what="accepted event")
        for r in ("r1@example.org", "r2@example.org"):
            ev = self.suite.wait_accounting(
                lambda o, r=r: o.get("event") == "delivered" and
                o.get("queue_id") == qid and o.get("recipient") == r,
                what="delivered event for %s" % r)
            self.assertEqual(len(ev), 1, ev)
        kinds = {o.get("event") for o in self.suite.accounting()}
        self.assertLessEqual(kinds, {"accepted", "delivered", "deferred",
                                     "bounced"},
                             "unexpected event kinds %r" % kinds)


class BrokenNextHopTest(PetrelCase):
    overrides = {"smtp": {"command_timeout": "2s"}}

    def test_dropped_connection_at_end_of_data_defers(self):
        tok = unique("drop")
        self.capture.add_data_rule("DROP", times=1)
        qid = self.submit(make_message(tok))
        d = self.suite.wait_delivery(qid, "rcpt@example.org", "deferred",
                                     timeout=20)[0]
        self.assertTrue(d["dsn"].startswith("4."), d["line"])
        self.wait_arrival(tok, timeout=20)
        self.suite.wait_delivery(qid, "rcpt@example.org", "sent",
                                 timeout=10)

    def test_stalled_next_hop_defers(self):
        tok = unique("stall")
        self.capture.add_rcpt_rule("STALL", times=1)
        t0 = time.time()
        qid = self.submit(make_message(tok))
        d = self.suite.wait_delivery(qid, "rcpt@example.org", "deferred",
                                     timeout=20)[0]
        self.assertTrue(d["dsn"].startswith("4."), d["line"])
        self.assertLess(time.time() - t0, 15, "command_timeout 2s not "
                        "applied")
        self.wait_arrival(tok, timeout=20)
        self.suite.wait_delivery(qid, "rcpt@example.org", "sent",
                                 timeout=10)


if __name__ == "__main__":
    unittest.main()


class SourceAddressTest(PetrelCase):
    """smtp leaves from smtp.source_addresses (the address SPF names)."""

    overrides = {"smtp": {"source_addresses": ["127.0.0.2"]}}

    def test_connects_from_the_source_address(self):
        tok = unique("src")
        self.submit(make_message(tok))
        got = self.wait_arrival(tok)
        self.assertEqual(got[0].peer[0], "127.0.0.2", got[0].peer)
