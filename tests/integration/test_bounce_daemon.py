"""test_bounce_daemon.py - the real bounce(8) daemon, driven like qmgr.

A message is submitted to Petrel whose next hop (the capture server)
answers its recipient with 451, so the message stays in the queue. The
test then connects to <queue_directory>/private/bounce itself (as qmgr
would; as root here) and speaks the attribute protocol documented in
bounce(8): request=bounce for that queue id. The reply must carry the
report's queue id, the log must say "QUEUEID: sender non-delivery
notification: DSNID", and the report must then be delivered like any
message, from <> to the original sender, and parse with both parsers
(dsn_check.py) with the fields the request gave. Also: a queue id
nothing is known of gets status=0 without dsn_id; a malformed request
gets status=1 and the daemon goes on serving.
"""

import os
import socket
import time

import dsn_check
from harness import PetrelCase, make_message, unique

SENDER = "app@example.com"
RCPT = "rcpt@example.org"


def attr_record(pairs):
    """One attribute record: NUL-terminated name and value, then a NUL."""
    out = b""
    for name, value in pairs:
        out += name.encode() + b"\0" + str(value).encode() + b"\0"
    return out + b"\0"


def attr_read(sock, timeout=30):
    """Reads one record; returns a list of (name, value) str pairs."""
    sock.settimeout(timeout)
    buf = b""
    while True:
        pairs, off = [], 0
        while True:
            nul = buf.find(b"\0", off)
            if nul < 0:
                break
            name = buf[off:nul]
            if name == b"":
                return [(n.decode(), v.decode()) for n, v in pairs]
            vnul = buf.find(b"\0", nul + 1)
            if vnul < 0:
                break
            pairs.append((name, buf[nul + 1:vnul]))
            off = vnul + 1
        chunk = sock.recv(65536)
        if not chunk:
            raise AssertionError("bounce closed the connection; got %r"
                                 % buf)
        buf += chunk


class BounceDaemon(PetrelCase):

    def setUp(self):
        if not dsn_check.perl_available():
            self.fail("perl's MIME::Parser is missing (Debian: "
                      "libmime-tools-perl; `make deps`)")
        super().setUp()

    def bounce_socket(self):
        path = os.path.join(self.suite.queue_dir, "private", "bounce")
        deadline = time.time() + 10
        while not os.path.exists(path) and time.time() < deadline:
            time.sleep(0.1)
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.connect(path)
        return s

    def request(self, s, qid, report, rcpts):
        pairs = [("request", "bounce"), ("queue_id", qid),
                 ("report", report)]
        for r in rcpts:
            pairs += [(k, v) for k, v in r]
        s.sendall(attr_record(pairs))
        return dict(attr_read(s))

    def deferred_message(self, token):
        self.capture.add_rcpt_rule("451 4.7.1 <%s>: try again later" % RCPT,
                                   address=RCPT)
        qid = self.submit(make_message(token, sender=SENDER, to=RCPT),
                          sender=SENDER, rcpts=(RCPT,))
        self.suite.wait_delivery(qid, RCPT, "deferred")
        return qid

    def test_failed_report_delivered(self):
        token = unique("bnc")
        qid = self.deferred_message(token)
        now = int(time.time())
        relay = "127.0.0.1[127.0.0.1]:%d" % self.capture.port
        s = self.bounce_socket()
        try:
            reply = self.request(s, qid, "failed", [[
                ("rcpt_index", 0), ("rcpt", RCPT), ("rcpt_dsn", "5.1.1"),
                ("rcpt_reply", "550 5.1.1 <%s>: Recipient address "
                 "rejected: User unknown\r\nX-Evil: 1" % RCPT),
                ("rcpt_class", "bad-mailbox"), ("relay", relay),
                ("rcpt_time", now)]])
        finally:
            s.close()
        self.assertEqual(reply.get("status"), "0", reply)
        dsn_id = reply.get("dsn_id")
        self.assertTrue(dsn_id, reply)
        self.assertNotEqual(dsn_id, qid)
        deadline = time.time() + 10
        want = "%s: sender non-delivery notification: %s" % (qid, dsn_id)
        while want not in self.suite.log() and time.time() < deadline:
            time.sleep(0.1)
        self.assertIn(want, self.suite.log())

        # Delivered like any message: from <> to the original sender.
        got = self.capture.wait_for_messages(
            1, 30, match=lambda t: token.encode() in t.data and
            b"multipart/report" in t.data)
        self.assertTrue(got, "the report never reached the next hop\n%s"
                        % self.suite.log_tail())
        t = got[0]
        self.assertEqual(t.mail_from, "")
        self.assertEqual([a.lower() for a in t.rcpt_tos], [SENDER])
        self.suite.wait_delivery(dsn_id, SENDER, "sent")
        r = dsn_check.both(t.data)
        self.assertEqual(r["content_type"], "multipart/report")
        self.assertEqual(r["report_type"], "delivery-status")
        self.assertEqual(r["parts"], ["text/plain", "message/delivery-status",
                                      "text/rfc822-headers"])
        self.assertEqual(r["per_message"]["reporting-mta"],
                         "dns; petrel.test")
        self.assertEqual(r["per_message"]["x-petrel-queue-id"], qid)
        self.assertIn("arrival-date", r["per_message"])
        self.assertEqual(len(r["recipients"]), 1)
        rc = r["recipients"][0]
        self.assertEqual(rc["final-recipient"], "rfc822; " + RCPT)
        self.assertEqual(rc["action"], "failed")
        self.assertEqual(rc["status"], "5.1.1")
        self.assertEqual(rc["remote-mta"], "dns; 127.0.0.1")
        self.assertEqual(rc["diagnostic-code"],
                         "smtp; 550 5.1.1 <%s>: Recipient address "
                         "rejected: User unknown X-Evil: 1" % RCPT)
        self.assertNotIn("x-evil", rc)
        self.assertEqual(rc["x-petrel-bounce-class"], "bad-mailbox")
        self.assertIn("last-attempt-date", rc)
        self.assertEqual(r["attached_subject"], token)
        self.assertIn("mailbox does not exist", r["text"])
        self.assertEqual(t.header("Auto-Submitted"), ["auto-replied"])
        self.assertEqual(t.header("Subject"),
                         ["Undelivered Mail Returned to Sender"])
        self.assertEqual(t.header("To"), ["<%s>" % SENDER])

    def test_nothing_due_and_bad_request(self):
        s = self.bounce_socket()
        try:
            # Nothing known of this (well-formed) id: no one to tell.
            reply = self.request(s, "6B1324A7230428EF", "delayed", [[
                ("rcpt_index", 0), ("rcpt", RCPT), ("rcpt_dsn", "4.4.1"),
                ("rcpt_reply", "timed out"), ("rcpt_until", 2000000000)]])
            self.assertEqual(reply.get("status"), "0", reply)
            self.assertNotIn("dsn_id", reply)
            # A queue id that is a path: refused, and the connection ends.
            reply = self.request(s, "../../etc/passwd", "failed", [[
                ("rcpt_index", 0), ("rcpt", RCPT), ("rcpt_dsn", "5.0.0"),
                ("rcpt_reply", "no")]])
            self.assertEqual(reply.get("status"), "1", reply)
            self.assertIn("queue id", reply.get("reason", ""))
        finally:
            s.close()
        # The daemon goes on serving.
        token = unique("bnc")
        qid = self.deferred_message(token)
        s = self.bounce_socket()
        try:
            reply = self.request(s, qid, "delayed", [[
                ("rcpt_index", 0), ("rcpt", RCPT), ("rcpt_dsn", "4.7.1"),
                ("rcpt_reply", "451 4.7.1 try again later"),
                ("relay", "none"), ("rcpt_time", int(time.time())),
                ("rcpt_until", int(time.time()) + 86400)]])
        finally:
            s.close()
        self.assertEqual(reply.get("status"), "0", reply)
        self.assertTrue(reply.get("dsn_id"), reply)
        got = self.capture.wait_for_messages(
            1, 30, match=lambda t: token.encode() in t.data and
            b"multipart/report" in t.data)
        self.assertTrue(got)
        r = dsn_check.both(got[0].data)
        self.assertEqual(r["recipients"][0]["action"], "delayed")
        self.assertEqual(r["recipients"][0]["status"], "4.7.1")
        self.assertIn("will-retry-until", r["recipients"][0])
        self.assertNotIn("remote-mta", r["recipients"][0])
        self.assertIn("%s: sender delay notification: %s"
                      % (qid, reply["dsn_id"]), self.suite.log())


if __name__ == "__main__":
    import unittest
    unittest.main()
