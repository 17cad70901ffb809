"""test_outbox.py - events go into the outbox with the changes they report.

The outbox (lib/outbox, relayq -o) and the accounting log are written from
the same event: they must say the same thing. With nothing consuming the
outbox, its cap keeps it bounded, and mail is accepted throughout.
"""

import json
import re
import socket
import threading
import time

from harness import PetrelCase, free_port, make_message, unique


def events_json(suite):
    """relayq -o -j: the outbox, oldest first, as a list of objects."""
    r = suite.relayq("-o", "-j")
    return [json.loads(line) for line in
            r.stdout.decode("utf-8", "replace").splitlines() if line.strip()]


class OutboxTest(PetrelCase):

    def test_outbox_and_accounting_log_agree(self):
        token = unique("ob")
        qids = [self.submit(make_message("%s %d" % (token, i)),
                            rcpts=("a%d@example.org" % i,
                                   "b%d@example.org" % i))
                for i in range(3)]
        self.wait_arrival(token, 3)
        # 3 accepted and 6 delivered events; results are recorded a
        # moment after the capture saw the messages.
        deadline = time.time() + 15
        while len(self.suite.accounting()) < 9 and time.time() < deadline:
            time.sleep(0.1)
        log = self.suite.accounting()
        self.assertEqual(len(log), 9, log)
        outbox = events_json(self.suite)
        self.assertEqual([o["seq"] for o in outbox], list(range(1, 10)))
        for o in outbox:
            del o["seq"]
        # The same objects; the log is in commit order, as the outbox.
        self.assertEqual(outbox, log)
        self.assertEqual([o["queue_id"] for o in outbox
                          if o["event"] == "accepted"], qids)
        self.assertEqual(sorted(o["recipient"] for o in outbox
                                if o["event"] == "delivered"),
                         sorted(["a%d@example.org" % i for i in range(3)] +
                                ["b%d@example.org" % i for i in range(3)]))
        human = self.suite.relayq("-o").stdout.decode()
        self.assertIn("-- 9 events, 0 dropped over the cap, last sequence "
                      "number 9.", human)


class OutboxCapTest(PetrelCase):
    """10,000 messages relayed with nothing consuming the outbox.

    The clients use a plain listener on loopback from a trusted network,
    eight at a time, so the run takes seconds rather than the minutes of
    smtplib's TLS sessions.
    """

    CAP = 500
    MESSAGES = 10000
    CLIENTS = 8
    overrides = {"outbox": {"max_events": CAP},
                 "trusted_networks": ["127.0.0.1/32"],
                 "smtpd": {"processes": 2}}

    def setUp(self):
        self.plain_port = free_port()
        super().setUp()
        self.suite.stop()
        self.suite.config["listeners"].append(
            {"name": "local", "address": "127.0.0.1:%d" % self.plain_port,
             "tls": "none"})
        self.suite.write_config()
        self.suite.start()

    def sender(self, n, token, failures):
        try:
            s = socket.create_connection(("127.0.0.1", self.plain_port),
                                         timeout=120)
            f = s.makefile("rb")

            def reply():
                while True:
                    line = f.readline()
                    if not line:
                        raise AssertionError("connection closed")
                    if line[3:4] != b"-":
                        return line
            reply()
            s.sendall(b"EHLO client.test\r\n")
            reply()
            body = make_message(token, body=b"x\r\n").replace(
                b"\n.", b"\n..") + b".\r\n"
            for i in range(n):
                got = []
                for cmd in (b"MAIL FROM:<app@example.com>\r\n",
                            b"RCPT TO:<r@example.org>\r\n", b"DATA\r\n"):
                    s.sendall(cmd)
                    got.append(reply())
                if [g[:3] for g in got] != [b"250", b"250", b"354"]:
                    raise AssertionError("envelope %d: %r" % (i, got))
                s.sendall(body)
                got = reply()
                if got[:3] != b"250":
                    raise AssertionError("message %d: %r" % (i, got))
            s.sendall(b"QUIT\r\n")
            s.close()
        except Exception as e:          # noqa: BLE001 - reported below
            failures.append(repr(e))

    def test_outbox_stays_within_its_cap(self):
        token = unique("cap")
        failures = []
        threads = [threading.Thread(
            target=self.sender,
            args=(self.MESSAGES // self.CLIENTS, token, failures))
            for _ in range(self.CLIENTS)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(600)
        # Every DATA got 250: the outbox never refused mail.
        self.assertEqual(failures, [])
        deadline = time.time() + 300
        while self.suite.relayq_json():
            if time.time() > deadline:
                self.fail("queue not empty:\n%s" % self.suite.log_tail())
            time.sleep(1)
        tok = token.encode()
        self.assertEqual(sum(1 for t in self.capture.messages()
                             if tok in t.data), self.MESSAGES)
        outbox = events_json(self.suite)
        self.assertLessEqual(len(outbox), self.CAP)
        self.assertGreater(len(outbox), self.CAP // 2)
        seqs = [o["seq"] for o in outbox]
        self.assertEqual(seqs, sorted(seqs))
        human = self.suite.relayq("-o").stdout.decode()
        m = re.search(r"-- (\d+) events?, (\d+) dropped over the cap, last "
                      r"sequence number (\d+)\.", human)
        self.assertIsNotNone(m, human)
        held, dropped, last = map(int, m.groups())
        self.assertLessEqual(held, self.CAP)
        self.assertEqual(held + dropped, last)
        # An accepted and a delivered event per message.
        self.assertEqual(last, 2 * self.MESSAGES)
        # One warning per process that dropped events, not one per drop.
        warnings = [ln for ln in self.suite.log().splitlines()
                    if "outbox: dropped the" in ln]
        self.assertGreaterEqual(len(warnings), 1)
        self.assertLessEqual(len(warnings), 3, warnings)
