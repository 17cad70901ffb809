"""test_queue.py - relayq: the listing, -j JSON, and -f flush."""

import time
import unittest

from harness import PetrelCase, make_message, unique


class RelayqJsonTest(PetrelCase):

    def test_relayq_json_deferred_message(self):
        tok = unique("qjson")
        rcpts = ["d1@example.org", "d2@example.org"]
        self.capture.add_rcpt_rule("451 4.7.1 greylisted, come back later")
        t0 = int(time.time())
        msg = make_message(tok)
        qid = self.submit(msg, sender="sender@example.com", rcpts=rcpts)
        for r in rcpts:
            self.suite.wait_delivery(qid, r, "deferred", timeout=20)
        self.suite.wait_queued(qid, lambda m: all(
            r.get("state") == "deferred" for r in m["recipients"]))
        objs = self.suite.relayq_json()
        mine = [o for o in objs if o.get("queue_id") == qid]
        self.assertEqual(len(mine), 1, "relayq -j: %r" % objs)
        o = mine[0]
        for k in ("queue_name", "queue_id", "arrival_time", "message_size",
                  "sender", "recipients"):
            self.assertIn(k, o, "member %r missing in %r" % (k, o))
        self.assertIsInstance(o["queue_name"], str)
        self.assertEqual(o["queue_name"], "deferred", o)
        self.assertEqual(o["sender"], "sender@example.com")
        self.assertIsInstance(o["arrival_time"], int)
        self.assertLessEqual(abs(o["arrival_time"] - t0), 5, o)
        self.assertIsInstance(o["message_size"], int)
        # At least what we sent (plus the Received: header).
        self.assertGreaterEqual(o["message_size"], len(msg), o)
        self.assertLess(o["message_size"], len(msg) + 4096, o)
        self.assertIsInstance(o["recipients"], list)
        got = sorted(r.get("address") for r in o["recipients"])
        self.assertEqual(got, rcpts, o)
        for r in o["recipients"]:
            self.assertIn("delay_reason", r, r)
            self.assertIn("451", r["delay_reason"], r)
            self.assertIn("greylisted", r["delay_reason"], r)

    def test_relayq_json_next_hop_down(self):
        tok = unique("qdown")
        self.capture.stop()
        qid = self.submit(make_message(tok))
        self.suite.wait_delivery(qid, "rcpt@example.org", "deferred",
                                 timeout=20)
        o = self.suite.wait_queued(
            qid, lambda m: m["recipients"][0].get("state") == "deferred")
        reason = o["recipients"][0].get("delay_reason", "")
        self.assertTrue(reason, "empty delay_reason: %r" % o)

    def test_relayq_empty_queue(self):
        self.assertEqual(self.suite.relayq_json(), [])
        r = self.suite.relayq()
        self.assertEqual(r.returncode, 0)


class FlushTest(PetrelCase):
    # A long backoff: only a flush brings the retry forward.
    overrides = {"queue": {"min_backoff": "1h", "max_backoff": "2h"}}

    def test_relayq_flush(self):
        tok = unique("flush")
        self.capture.stop()
        qid = self.submit(make_message(tok))
        self.suite.wait_delivery(qid, "rcpt@example.org", "deferred",
                                 timeout=20)
        self.capture.start()
        time.sleep(3)
        self.assertEqual(self.capture.messages(), [],
                         "retried before the backoff without a flush")
        self.suite.relayq("-f")
        self.wait_arrival(tok, timeout=20)
        self.suite.wait_delivery(qid, "rcpt@example.org", "sent")


if __name__ == "__main__":
    unittest.main()
