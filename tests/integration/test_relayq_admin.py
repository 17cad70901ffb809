"""test_relayq_admin.py - relayq's queue administration against the real
daemons: hold (-h) and release (-H), delete (-d) with its outbox event,
requeue (-r), the qshape-like summary (-s), one message (-e), selection by
--domain and --sender, -j, --help and bad arguments. See relayq(1)."""

import glob
import json
import os
import time
import unittest

from harness import PetrelCase, make_message, unique
from test_webhookd import WebhookCase


def jlines(r):
    out = []
    for line in r.stdout.decode("utf-8", "replace").splitlines():
        if line.strip():
            out.append(json.loads(line))
    return out


class AdminCase(PetrelCase):
    # A long backoff: a deferred message is retried only when asked.
    overrides = {"queue": {"min_backoff": "1h", "max_backoff": "2h"}}

    def deferred(self, tok, rcpts=("rcpt@example.org",),
                 sender="app@example.com"):
        """A message deferred once (next hop down); its queue id."""
        qid = self.submit(make_message(tok), sender=sender, rcpts=rcpts)
        for r in rcpts:
            self.suite.wait_delivery(qid, r, "deferred", timeout=20)
        self.suite.wait_queued(qid, lambda m: all(
            r.get("state") == "deferred" for r in m["recipients"]))
        return qid

    def queued(self, qid):
        for m in self.suite.relayq_json():
            if m["queue_id"] == qid:
                return m
        return None

    def attempts(self, qid):
        return len(self.suite.deliveries(qid=qid))


class HoldTest(AdminCase):

    def test_hold_survives_kill9_and_release_delivers(self):
        tok = unique("hold")
        self.capture.stop()
        qid = self.deferred(tok)
        r = self.suite.relayq("-h", qid)
        self.assertIn("hold: 1 message", r.stderr.decode())
        m = self.suite.wait_queued(qid, lambda m: m["queue_name"] == "hold")
        self.assertIn("held_since", m)
        # The next hop accepts now; neither a flush, a requeue nor a
        # restart after kill -9 may deliver a held message.
        self.capture.start()
        self.suite.relayq("-f")
        self.suite.relayq("-r", "ALL")
        time.sleep(3)
        self.assertEqual(self.capture.messages(), [],
                         "a held message was delivered")
        self.suite.kill9()
        self.suite.start()
        time.sleep(3)
        self.assertEqual(self.capture.messages(), [],
                         "delivered after a restart while held")
        self.assertEqual(self.queued(qid)["queue_name"], "hold")
        # The text listing marks it with "!", as mailq does.
        text = self.suite.relayq().stdout.decode()
        self.assertIn(qid + "!", text)
        self.assertEqual(self.attempts(qid), 1)
        r = self.suite.relayq("-j", "-H", qid)
        self.assertEqual(jlines(r), [{"action": "release", "messages": 1,
                                      "status": "ok"}])
        self.wait_arrival(tok, timeout=20)
        self.suite.wait_delivery(qid, "rcpt@example.org", "sent")

    def test_hold_by_domain_and_sender(self):
        self.capture.stop()
        a = self.deferred(unique("da"), rcpts=("x@one.example",))
        b = self.deferred(unique("db"), rcpts=("y@two.example",),
                          sender="other@example.com")
        self.suite.relayq("-h", "ALL", "--domain", "ONE.example")
        self.assertEqual(self.queued(a)["queue_name"], "hold")
        self.assertEqual(self.queued(b)["queue_name"], "deferred")
        self.suite.relayq("-h", "ALL", "--sender", "other@example.com")
        self.assertEqual(self.queued(b)["queue_name"], "hold")
        # Listing with a selection shows only what it names.
        r = self.suite.relayq("-j", "--sender", "other@example.com")
        self.assertEqual([m["queue_id"] for m in jlines(r)], [b])
        r = self.suite.relayq("-j", "-H", "ALL", "--domain", "two.example")
        self.assertEqual(jlines(r)[0]["messages"], 1)
        self.assertEqual(self.queued(a)["queue_name"], "hold")
        self.assertEqual(self.queued(b)["queue_name"], "deferred")


class InFlightHoldTest(AdminCase):
    # The harness's short backoff (1s): a deferral alone would retry soon.
    overrides = None

    def test_hold_during_attempt_holds_its_deferral(self):
        tok = unique("hfly")
        self.capture.add_mail_rule("STALL", times=1)
        qid = self.submit(make_message(tok))
        self.capture.wait_until(lambda c: len(c.mail_log) > 0, timeout=20)
        # The attempt is at smtp, stalled: the hold reaches its result.
        self.suite.relayq("-h", qid)
        self.suite.wait_delivery(qid, "rcpt@example.org", "deferred",
                                 timeout=30)
        time.sleep(4)
        self.assertEqual(self.capture.messages(), [],
                         "retried while held")
        self.assertEqual(self.queued(qid)["queue_name"], "hold")
        self.suite.relayq("-H", qid)
        self.wait_arrival(tok, timeout=20)


class HoldExpiryTest(AdminCase):
    # Retried every second, expired after 6: only the hold keeps it.
    overrides = {"queue": {"min_backoff": "1s", "max_backoff": "1s",
                           "max_lifetime": "6s"}}

    def test_held_message_does_not_expire(self):
        tok = unique("hexp")
        self.capture.stop()
        qid = self.deferred(tok)
        self.suite.relayq("-h", qid)
        n = self.attempts(qid)
        time.sleep(9)
        self.assertEqual(self.attempts(qid), n, "attempted while held")
        self.assertEqual(self.suite.deliveries(qid=qid, status="expired"),
                         [])
        self.assertEqual(self.queued(qid)["queue_name"], "hold")
        # Released past its lifetime, it gets an attempt, and the next hop
        # takes it.
        self.capture.start()
        self.suite.relayq("-H", qid)
        self.wait_arrival(tok, timeout=20)
        self.suite.wait_delivery(qid, "rcpt@example.org", "sent")


class DeleteRequeueTest(AdminCase):

    def test_delete_removes_and_reports(self):
        tok = unique("del")
        self.capture.stop()
        qid = self.deferred(tok, rcpts=("a@example.org", "b@example.org"))
        path = glob.glob(os.path.join(self.suite.queue_dir, "msg", "*",
                                      qid))
        self.assertEqual(len(path), 1)
        r = self.suite.relayq("-d", qid)
        self.assertIn("delete: 1 message", r.stderr.decode())
        self.assertIsNone(self.queued(qid))
        self.assertFalse(os.path.exists(path[0]), "queue file left")
        ev = self.suite.wait_accounting(
            lambda o: o.get("event") == "deleted" and
            o.get("queue_id") == qid and o.get("recipient") ==
            "b@example.org", what="deleted event")[0]
        self.assertEqual(ev["sender"], "app@example.com")
        self.assertEqual(ev["relay"], "none")
        self.assertEqual(ev["attempts"], 1)
        # The outbox has them too, for webhookd (relayq -o, once -e).
        evs = [o for o in jlines(self.suite.relayq("-o", "-j"))
               if o.get("event") == "deleted" and o["queue_id"] == qid]
        self.assertEqual(sorted(o["recipient"] for o in evs),
                         ["a@example.org", "b@example.org"])
        # Gone: a second delete changes nothing, and -e says so.
        r = self.suite.relayq("-d", qid)
        self.assertIn("delete: 0 message", r.stderr.decode())
        r = self.suite.relayq("-e", qid, check=False)
        self.assertEqual(r.returncode, 1)
        self.capture.start()
        self.suite.relayq("-f")
        time.sleep(2)
        self.assertEqual(self.capture.messages(), [])

    def test_requeue_delivers_at_once(self):
        tok = unique("rq")
        self.capture.stop()
        qid = self.deferred(tok)
        other = self.deferred(unique("rqo"), rcpts=("z@other.example",))
        self.capture.start()
        time.sleep(2)
        self.assertEqual(self.capture.messages(), [])
        self.suite.relayq("-r", qid)
        self.wait_arrival(tok, timeout=20)
        self.suite.wait_delivery(qid, "rcpt@example.org", "sent")
        # Only the message named was requeued.
        self.assertEqual(self.queued(other)["queue_name"], "deferred")
        self.assertEqual(len(self.capture.messages()), 1)


class ViewTest(AdminCase):

    def test_summary_by_domain_and_age(self):
        self.capture.stop()
        self.deferred(unique("s1"), rcpts=("a@one.example", "b@one.example",
                                           "c@two.example"))
        self.deferred(unique("s2"), rcpts=("d@one.example",))
        rows = jlines(self.suite.relayq("-s", "-j"))
        by = {r["domain"]: r for r in rows}
        self.assertEqual(set(by), {"one.example", "two.example"}, rows)
        self.assertEqual(by["one.example"]["T"], 3)
        self.assertEqual(by["one.example"]["5"], 3)
        self.assertEqual(by["two.example"]["T"], 1)
        for col in ("10", "20", "40", "80", "160", "320", "640", "1280",
                    "1280+"):
            self.assertEqual(by["one.example"][col], 0)
        self.assertEqual(rows[0]["domain"], "one.example")  # largest first
        text = self.suite.relayq("-s").stdout.decode().splitlines()
        self.assertEqual(text[0].split(), ["T", "5", "10", "20", "40", "80",
                                           "160", "320", "640", "1280",
                                           "1280+"])
        self.assertEqual(text[1].split()[:3], ["TOTAL", "4", "4"])
        rows = jlines(self.suite.relayq("-s", "-j", "--domain",
                                        "two.example"))
        self.assertEqual([(r["domain"], r["T"]) for r in rows],
                         [("two.example", 1)])

    def test_show_one_message(self):
        self.capture.add_rcpt_rule("452 4.2.2 mailbox full", "full@example.org")
        qid = self.submit(make_message(unique("show")),
                          rcpts=("ok@example.org", "full@example.org"))
        self.suite.wait_delivery(qid, "full@example.org", "deferred")
        self.suite.wait_queued(qid, lambda m: m["recipients"][0].get(
            "state") == "deferred")
        o = jlines(self.suite.relayq("-e", qid, "-j"))
        self.assertEqual(len(o), 1)
        o = o[0]
        self.assertEqual(o["queue_id"], qid)
        self.assertEqual(o["queue_name"], "deferred")
        self.assertEqual(o["sender"], "app@example.com")
        self.assertEqual(o["sasl_username"], self.user)
        r = {x["address"]: x for x in o["recipients"]}
        # A delivered recipient's record is gone: only the deferred one.
        self.assertEqual(list(r), ["full@example.org"])
        full = r["full@example.org"]
        self.assertEqual(full["state"], "deferred")
        self.assertEqual(full["attempts"], 1)
        self.assertEqual(full["dsn"], "4.2.2")
        self.assertIn("mailbox full", full["delay_reason"])
        self.assertIn("class", full)
        self.assertIn("next_attempt", full)
        text = self.suite.relayq("-e", qid).stdout.decode()
        self.assertIn("queue_id: %s" % qid, text)
        self.assertIn("recipient: full@example.org", text)
        self.assertIn("state: deferred, attempts: 1", text)
        self.assertIn("reply: 452 4.2.2 mailbox full", text)


class DeletedWebhookTest(WebhookCase):
    """webhookd reports a delete to a petrel-format endpoint."""
    overrides = {"queue": {"min_backoff": "1h", "max_backoff": "2h"}}

    def test_deleted_reaches_endpoint(self):
        tok = unique("whdel")
        self.capture.stop()
        qid = self.submit(make_message(tok))
        self.suite.wait_delivery(qid, "rcpt@example.org", "deferred",
                                 timeout=20)
        self.suite.relayq("-d", qid)
        got = self.recv[0].wait(lambda e: e.get("queue_id") == qid and
                                e["event"] == "deleted")
        self.assertTrue(got, "%r\n%s" % ([r["json"] for r in
                                          self.recv[0].events(lambda e: 1)],
                                         self.suite.log_tail()))
        e = self.check_event(got[0], "deleted", qid, "rcpt@example.org")
        self.assertEqual(e["reply"], "deleted by the administrator")
        self.assertNotIn("severity", e)


class ArgsTest(unittest.TestCase):
    """Usage errors need no running Petrel: they come before the queue."""

    def run_relayq(self, *args):
        import subprocess
        from harness import BUILD
        return subprocess.run([os.path.join(BUILD, "relayq")] + list(args),
                              stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, timeout=20)

    def test_help(self):
        r = self.run_relayq("--help")
        self.assertEqual(r.returncode, 0)
        self.assertIn(b"usage: relayq", r.stdout)
        self.assertEqual(r.stderr, b"")

    def test_bad_arguments(self):
        for args in (["-x"], ["-h", "nothex"], ["-h", "all"],
                     ["-e", "123"], ["-h", "ALL", "-d", "ALL"],
                     ["-s", "-f"], ["-f", "-j"], ["-e"],
                     ["-o", "--domain", "x.example"], ["extra"],
                     ["--domain", ""]):
            with self.subTest(args=args):
                r = self.run_relayq(*args)
                self.assertEqual(r.returncode, 2, r.stderr)
                self.assertIn(b"usage: relayq", r.stderr)


if __name__ == "__main__":
    unittest.main()
