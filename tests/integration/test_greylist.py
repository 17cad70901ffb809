"""test_greylist.py - greylisting is retried after the greylist window.

A next hop that greylists (Postgrey's reply to the first attempt, 250 to
the next) gets its retry after queue.greylist_retry, here 2 seconds, while
queue.min_backoff is an hour: the message arrives within seconds, on the
second attempt, and qmgr logs why the retry came so soon. A 451 that is
not greylisting waits out the hour under the same settings, and so does a
recipient greylisted a second time (the window has passed: from then on it
is an ordinary deferral). See qmgr(8), RESULTS.
"""

import re
import time
import unittest

from harness import PetrelCase, make_message, unique

RCPT = "rcpt@example.org"
POSTGREY = ("450 4.2.0 <rcpt@example.org>: Recipient address rejected: "
            "Greylisted, see http://postgrey.schweikert.ch/help/"
            "example.com.html")
NOT_GREY = "451 4.3.0 Temporary local problem, try again later"
WINDOW = 2          # queue.greylist_retry, seconds
QUIET = 6           # seconds in which nothing may be retried


class GreylistCase(PetrelCase):
    # Only the greylist window can bring a retry within the test's time.
    overrides = {"queue": {"min_backoff": "1h", "max_backoff": "2h",
                           "greylist_retry": "%ds" % WINDOW}}

    def greylisted_lines(self, qid):
        pat = re.compile(r"%s: to=<%s>, greylisted, next attempt in (\d+)s "
                         r"\(queue\.greylist_retry\)" % (qid, re.escape(RCPT)))
        return [int(m.group(1)) for m in pat.finditer(self.suite.log())]


class GreylistRetryTest(GreylistCase):

    def test_greylisted_first_attempt_retried_after_window(self):
        tok = unique("grey")
        self.capture.add_rcpt_rule(POSTGREY, times=1)
        qid = self.submit(make_message(tok))
        d = self.suite.wait_delivery(qid, RCPT, "deferred", timeout=20)[0]
        # smtp's line is the ordinary deferral, with the rule's class.
        self.assertEqual(d["dsn"], "4.2.0", d["line"])
        self.assertEqual(d["bclass"], "policy-related", d["line"])
        self.assertEqual(d["bounce"], "soft", d["line"])
        t_deferred = time.time()
        # Within seconds, not the hour of queue.min_backoff.
        self.wait_arrival(tok, timeout=WINDOW + 10)
        t_sent = time.time()
        self.suite.wait_delivery(qid, RCPT, "sent", timeout=10)
        self.assertEqual(len(self.capture.rcpt_attempts(RCPT)), 2,
                         self.capture.rcpt_log)
        # Not before the window either (one second of slack for the
        # whole-second clock the schedule keeps).
        self.assertGreaterEqual(t_sent - t_deferred, WINDOW - 1.5)
        self.assertEqual(self.greylisted_lines(qid), [WINDOW],
                         self.suite.log_tail())


class NotGreylistedTest(GreylistCase):

    def test_other_451_waits_for_backoff(self):
        tok = unique("nogrey")
        self.capture.add_rcpt_rule(NOT_GREY, times=1)
        qid = self.submit(make_message(tok))
        self.suite.wait_delivery(qid, RCPT, "deferred", timeout=20)
        time.sleep(QUIET)
        self.assertEqual(self.capture.messages(), [],
                         "a non-greylisting 451 was retried before "
                         "queue.min_backoff")
        self.assertEqual(len(self.capture.rcpt_attempts(RCPT)), 1,
                         self.capture.rcpt_log)
        self.assertEqual(self.greylisted_lines(qid), [])
        o = self.suite.wait_queued(
            qid, lambda m: m["recipients"][0].get("state") == "deferred")
        self.assertIn("451", o["recipients"][0].get("delay_reason", ""), o)

    def test_second_greylisting_takes_backoff(self):
        tok = unique("grey2")
        self.capture.add_rcpt_rule(POSTGREY, times=2)
        qid = self.submit(make_message(tok))
        # The first deferral: retried after the window ...
        self.capture.wait_until(
            lambda c: len(c.rcpt_attempts(RCPT)) >= 2, timeout=WINDOW + 10)
        self.assertEqual(len(self.capture.rcpt_attempts(RCPT)), 2,
                         "%r\n%s" % (self.capture.rcpt_log,
                                     self.suite.log_tail()))
        deadline = time.time() + 10
        while len(self.suite.deliveries(qid, RCPT, "deferred")) < 2:
            self.assertLess(time.time(), deadline, self.suite.log_tail())
            time.sleep(0.1)
        # ... the second is an ordinary deferral: an hour's backoff.
        time.sleep(QUIET)
        self.assertEqual(len(self.capture.rcpt_attempts(RCPT)), 2,
                         self.capture.rcpt_log)
        self.assertEqual(self.capture.messages(), [])
        self.assertEqual(self.greylisted_lines(qid), [WINDOW],
                         self.suite.log_tail())


class GreylistOffTest(PetrelCase):
    # queue.greylist_retry 0: greylisting is any deferral.
    overrides = {"queue": {"min_backoff": "1h", "max_backoff": "2h",
                           "greylist_retry": "0"}}

    def test_zero_turns_it_off(self):
        tok = unique("greyoff")
        self.capture.add_rcpt_rule(POSTGREY, times=1)
        qid = self.submit(make_message(tok))
        self.suite.wait_delivery(qid, RCPT, "deferred", timeout=20)
        time.sleep(QUIET)
        self.assertEqual(self.capture.messages(), [])
        self.assertNotIn("greylisted, next attempt", self.suite.log())


if __name__ == "__main__":
    unittest.main()
