"""test_storage.py - a full queue refuses new mail and loses nothing."""

import smtplib
import time

from harness import PetrelCase, connect, login_plain, make_message, unique

# A long domain makes each recipient record large, so a 1 MiB queue map
# fills after a few messages of 1000 recipients.
LONG_DOMAIN = ".".join(["d%02d%s" % (i, "x" * 55) for i in range(3)]) + \
    ".example"


class FullQueueTest(PetrelCase):
    overrides = {"queue": {"map_size": "1m", "min_backoff": "1h",
                           "max_backoff": "1h"},
                 "smtpd": {"max_recipients": 1000}}

    def fill_queue(self, token):
        """Submits messages of 1000 recipients until smtpd answers 452;
        returns the queue ids of those it accepted."""
        user, pw = self.ensure_user()
        accepted, refused = [], None
        c = connect(self.suite)
        login_plain(c, user, pw)
        for i in range(12):
            rcpts = ["r%04d@%s" % (k, LONG_DOMAIN) for k in range(1000)]
            code, _ = c.mail("app@example.com")
            self.assertEqual(code, 250)
            for r in rcpts:
                code, resp = c.rcpt(r)
                self.assertEqual(code, 250, resp)
            code, resp = c.data(make_message("%s %d" % (token, i)))
            resp = resp.decode()
            if code == 250:
                accepted.append(resp.split()[-1])
                continue
            refused = (code, resp)
            break
        self.assertIsNotNone(refused, "queue never filled up")
        self.assertEqual(refused[0], 452, refused)
        self.assertIn("4.3.1", refused[1])
        self.assertTrue(accepted, "nothing was accepted before the map "
                        "filled")
        # The session goes on after the refusal.
        self.assertEqual(c.noop()[0], 250)
        c.quit()
        return accepted

    def flush_until_empty(self):
        """relayq -f, then waits until delivery has emptied the queue."""
        self.suite.relayq("-f")
        deadline = time.time() + 180
        while self.suite.relayq_json():
            if time.time() > deadline:
                self.fail("queue not empty after the next hop came back:"
                          "\n%s" % self.suite.log_tail())
            time.sleep(0.5)

    def test_full_map_gets_452_and_accepted_mail_is_delivered(self):
        port = self.capture.port
        self.capture.stop()                 # keep everything queued
        token = unique("full")
        accepted = self.fill_queue(token)

        # Exactly the acknowledged messages are queued.
        queued = {m["queue_id"] for m in self.suite.relayq_json()}
        self.assertEqual(queued, set(accepted))

        # With the next hop back, all of them are delivered.
        self.capture.port = port
        self.capture.start()
        self.flush_until_empty()
        per_msg = {}
        for t in self.capture.all_transactions():
            for i in range(len(accepted) + 1):
                if ("%s %d\r\n" % (token, i)).encode() in t.data:
                    per_msg.setdefault(i, set()).update(t.rcpt_tos)
        for i in range(len(accepted)):
            self.assertEqual(len(per_msg.get(i, ())), 1000,
                             "message %d: distinct recipients delivered"
                             % i)
        self.assertNotIn(len(accepted), per_msg,
                         "the refused message was delivered")

    def test_results_that_outgrow_a_full_map_are_recorded(self):
        """Deferral replies make each recipient record three times larger
        than smtpd saw it: qmgr runs out of map, records what fits without
        the reply, delivers nothing twice and empties the queue."""
        self.capture.add_rcpt_rule("451 4.3.0 " + "later " * 80)
        token = unique("grow")
        accepted = self.fill_queue(token)
        total = 1000 * len(accepted)

        # Every deferral is recorded (attempts >= 1), even those that no
        # longer fit with their reply.
        deadline = time.time() + 120
        while True:
            queued = self.suite.relayq_json()
            tried = sum(1 for m in queued for r in m["recipients"]
                        if r["attempts"] >= 1)
            if tried == total:
                break
            if time.time() > deadline:
                self.fail("%d of %d deferrals recorded:\n%s"
                          % (tried, total, self.suite.log_tail()))
            time.sleep(0.5)
        self.assertIn("without the remote reply",
                      self.suite.log(),
                      "the map never filled: the test proves nothing")
        attempts = len(self.capture.all_transactions())

        self.capture.clear_rules()
        self.flush_until_empty()
        delivered = {}
        for t in self.capture.all_transactions()[attempts:]:
            for i in range(len(accepted)):
                if ("%s %d\r\n" % (token, i)).encode() in t.data:
                    for r in t.rcpt_tos:
                        delivered[(i, r)] = delivered.get((i, r), 0) + 1
        self.assertEqual(len(delivered), total)
        twice = [k for k, n in delivered.items() if n > 1]
        self.assertEqual(twice, [], "delivered more than once")


if __name__ == "__main__":
    import unittest
    unittest.main()
