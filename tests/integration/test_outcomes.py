"""test_outcomes.py - classes and the suppression list, end to end.

A dead mailbox bounced once is suppressed and refused at RCPT the next
time, never reaching the next hop; a refusal about the sender suppresses
nothing; soft bounces on several messages convert, and recipients already
queued are then failed without a connection; with suppression.action
accept, a suppressed recipient is accepted and fails with a "suppressed"
event; every class reaches the log line and the events.
"""

import json
import smtplib
import time
import unittest

from harness import PetrelCase, connect, login_plain, make_message, send, \
    unique

SENDER = "app@example.com"


class OutcomeCase(PetrelCase):

    def rcpt_reply(self, rcpt, sender=SENDER):
        """MAIL + RCPT only: the (code, text) the RCPT got."""
        user, pw = self.ensure_user()
        c = connect(self.suite)
        try:
            login_plain(c, user, pw)
            self.assertEqual(c.mail(sender)[0], 250)
            code, text = c.rcpt(rcpt)
            c.rset()
            return code, text.decode("utf-8", "replace")
        finally:
            try:
                c.quit()
            except (smtplib.SMTPException, OSError):
                pass

    def suppression(self, addr):
        r = self.suite.relayctl("suppression", "show", addr, "-j",
                                check=False)
        if r.returncode != 0:
            return None
        out = json.loads(r.stdout.decode())
        return out[0] if isinstance(out, list) else out

    def wait_suppressed(self, addr, timeout=20):
        deadline = time.time() + timeout
        while time.time() < deadline:
            e = self.suppression(addr)
            if e:
                return e
            time.sleep(0.2)
        self.fail("%s not suppressed within %ds\n%s"
                  % (addr, timeout, self.suite.log_tail()))


class HardBounceTest(OutcomeCase):

    def test_dead_mailbox_is_suppressed_and_refused_next_time(self):
        tok = unique("hard")
        bad = "gone-%s@example.org" % tok
        good = "here-%s@example.org" % tok
        self.capture.add_rcpt_rule(
            "550-5.1.1 The email account that you tried to reach does not "
            "exist. Please try\r\n550 5.1.1 double-checking the "
            "recipient's email address", address=bad)
        qid = self.submit(make_message(tok, to=bad), rcpts=[bad])
        d = self.suite.wait_delivery(qid, bad, "bounced", timeout=20)[0]
        self.assertIn("class=bad-mailbox, bounce=hard", d["line"])
        self.suite.wait_accounting(
            lambda o: o.get("event") == "bounced" and
            o.get("queue_id") == qid and o.get("class") == "bad-mailbox",
            what="bounced event with its class")
        e = self.wait_suppressed(bad)
        self.assertEqual(e.get("reason"), "hard-bounce", e)
        self.assertEqual(e.get("class"), "bad-mailbox", e)
        attempts = len(self.capture.rcpt_attempts(bad))
        # The next message: refused at RCPT, the other recipient goes on.
        code, text = self.rcpt_reply(bad)
        self.assertEqual(code, 550, text)
        self.assertRegex(text, r"^5\.1\.1 <%s>: Recipient address "
                         r"suppressed \(hard bounce, since "
                         r"\d{4}-\d\d-\d\d\)" % bad)
        user, pw = self.ensure_user()
        c = connect(self.suite)
        try:
            login_plain(c, user, pw)
            self.assertEqual(c.mail(SENDER)[0], 250)
            self.assertEqual(c.rcpt(bad)[0], 550)
            self.assertEqual(c.rcpt(good)[0], 250)
            self.assertEqual(c.data(make_message(tok + "b", to=good))[0],
                             250)
        finally:
            c.quit()
        self.wait_arrival(tok + "b")
        time.sleep(1)
        self.assertEqual(len(self.capture.rcpt_attempts(bad)), attempts)
        # Lifted, the address is mailed again.
        self.suite.relayctl("suppression", "del", bad)
        self.assertEqual(self.rcpt_reply(bad)[0], 250)

    def test_policy_refusal_does_not_suppress(self):
        tok = unique("policy")
        rcpt = "fine-%s@example.org" % tok
        self.capture.add_rcpt_rule(
            "550 5.7.1 [192.0.2.1] Our system has detected that this "
            "message is likely unsolicited mail.", address=rcpt, times=1)
        qid = self.submit(make_message(tok, to=rcpt), rcpts=[rcpt])
        d = self.suite.wait_delivery(qid, rcpt, "bounced", timeout=20)[0]
        self.assertRegex(d["line"], r"class=(spam|policy)-related, "
                         r"bounce=hard")
        time.sleep(1)
        self.assertIsNone(self.suppression(rcpt))
        self.assertEqual(self.rcpt_reply(rcpt)[0], 250)


class SoftBounceTest(OutcomeCase):
    overrides = {"suppression": {"soft_limit": 2, "soft_window": "1h"}}

    def test_soft_bounces_convert_and_queued_recipients_fail(self):
        tok = unique("soft")
        full = "full-%s@example.org" % tok
        self.capture.add_rcpt_rule("452 4.2.2 The email account that you "
                                   "tried to reach is over quota.",
                                   address=full)
        q1 = self.submit(make_message(tok + "-1", to=full), rcpts=[full])
        d = self.suite.wait_delivery(q1, full, "deferred", timeout=20)[0]
        self.assertIn("class=quota-issues, bounce=soft", d["line"])
        time.sleep(0.5)
        self.assertIsNone(self.suppression(full))
        q2 = self.submit(make_message(tok + "-2", to=full), rcpts=[full])
        e = self.wait_suppressed(full)
        self.assertEqual(e.get("reason"), "soft-bounces", e)
        attempts = len(self.capture.rcpt_attempts(full))
        # Both queued messages now fail at their next attempt, without a
        # connection, each with a "suppressed" event.
        for q in (q1, q2):
            self.suite.wait_accounting(
                lambda o, q=q: o.get("event") == "suppressed" and
                o.get("queue_id") == q, what="suppressed event for " + q,
                timeout=20)
        self.assertEqual(len(self.capture.rcpt_attempts(full)), attempts)
        code, text = self.rcpt_reply(full)
        self.assertEqual(code, 550, text)
        self.assertIn("suppressed (soft bounces, since", text)


class AcceptActionTest(OutcomeCase):
    overrides = {"suppression": {"action": "accept"}}

    def test_accepted_then_failed_without_attempt(self):
        tok = unique("accept")
        rcpt = "listed-%s@example.org" % tok
        self.suite.relayctl("suppression", "add", rcpt, "--reason",
                            "unsubscribe")
        qid = self.submit(make_message(tok, to=rcpt), rcpts=[rcpt])
        ev = self.suite.wait_accounting(
            lambda o: o.get("event") == "suppressed" and
            o.get("queue_id") == qid, what="suppressed event")
        self.assertEqual(self.capture.rcpt_attempts(rcpt), [])
        d = self.suite.wait_delivery(qid, rcpt, "bounced", timeout=10)[0]
        self.assertIn("Recipient address suppressed (unsubscribe", d["line"])
        self.assertIsNotNone(ev)


if __name__ == "__main__":
    unittest.main()
