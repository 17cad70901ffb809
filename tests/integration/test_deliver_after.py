"""test_deliver_after.py - X-Petrel-Deliver-After (or Mailgun's
X-Mailgun-Deliver-By) holds a message until a
time: not delivered before it, delivered after it, the header removed; a
past or unparsable date means now, with a log line.
"""

import email.utils
import time

from harness import PetrelCase, make_message, unique


def with_header(msg, name, value):
    return ("%s: %s\r\n" % (name, value)).encode() + msg


class DeliverAfterTest(PetrelCase):

    def test_held_until_the_date(self):
        tok = unique("after")
        when = int(time.time()) + 4
        date = email.utils.formatdate(when, usegmt=False)
        qid = self.submit(with_header(make_message(tok),
                                      "X-Petrel-Deliver-After", date))
        # qmgr scans every second: a message not held would be there by
        # now (test_basic delivers well within this).
        time.sleep(2)
        self.assertEqual(self.capture.messages(), [],
                         "delivered before its Deliver-After time")
        self.assertIn("%s: held until" % qid, self.suite.log())
        t = self.wait_arrival(tok, timeout=20)[0]
        self.assertGreaterEqual(time.time(), when)
        self.assertEqual(t.header("X-Petrel-Deliver-After"), [])
        self.assertNotIn(b"X-Petrel-Deliver-After", t.data)
        self.suite.wait_delivery(qid, "rcpt@example.org", "sent")

    def test_past_date_means_now(self):
        tok = unique("after-past")
        qid = self.submit(with_header(make_message(tok),
                                      "X-Petrel-Deliver-After",
                                      "Mon, 1 Jan 2001 00:00:00 +0000"))
        t = self.wait_arrival(tok, timeout=10)[0]
        self.assertEqual(t.header("X-Petrel-Deliver-After"), [])
        self.assertIn("%s: X-Petrel-Deliver-After: Mon, 1 Jan 2001 "
                      "00:00:00 +0000 is past, delivering now" % qid,
                      self.suite.log())

    def test_unparsable_date_means_now(self):
        tok = unique("after-bad")
        qid = self.submit(with_header(make_message(tok),
                                      "X-Petrel-Deliver-After",
                                      "tomorrow at noon"))
        t = self.wait_arrival(tok, timeout=10)[0]
        self.assertEqual(t.header("X-Petrel-Deliver-After"), [])
        self.assertIn("%s: X-Petrel-Deliver-After: unparsable date "
                      "\"tomorrow at noon\", delivering now" % qid,
                      self.suite.log())

    def test_mailgun_deliver_by(self):
        # Mailgun's SMTP header for scheduled delivery (its documentation,
        # "Schedule delivery": X-Mailgun-Deliver-By) means the same.
        tok = unique("deliver-by")
        when = int(time.time()) + 4
        date = email.utils.formatdate(when, usegmt=False)
        qid = self.submit(with_header(make_message(tok),
                                      "X-Mailgun-Deliver-By", date))
        time.sleep(2)
        self.assertEqual(self.capture.messages(), [],
                         "delivered before its Deliver-By time")
        self.assertIn("%s: held until" % qid, self.suite.log())
        self.assertIn("(X-Mailgun-Deliver-By)", self.suite.log())
        t = self.wait_arrival(tok, timeout=20)[0]
        self.assertGreaterEqual(time.time(), when)
        self.assertEqual(t.header("X-Mailgun-Deliver-By"), [])
        self.assertNotIn(b"X-Mailgun-Deliver-By", t.data)
