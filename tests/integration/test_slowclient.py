"""test_slowclient.py - clients that trickle cannot hold sessions forever
(issue 8).

smtpd.timeout counts idle time between reads, so a client that sends a
byte now and then was never cut. With smtpd.min_data_rate a client in DATA
must keep up a minimum rate once its grace has run out, and with
smtpd.command_deadline a command line must be whole within a deadline of
its first byte; offenders get 421 4.4.2 and a log line, nothing is queued.
A slow but honest client (2 KB/s) still gets its message through.

A plain listener on 127.0.0.1 with 127.0.0.0/8 trusted (test_smuggling's
restart_with_listener) lets the test speak raw SMTP without TLS; the grace
and deadline are short so the test is.
"""

import socket
import time

from harness import PetrelCase, unique
from test_smuggling import restart_with_listener


class SlowClientTest(PetrelCase):
    overrides = {
        "smtpd": {"min_data_rate": 500, "min_data_rate_grace": "2s",
                  "command_deadline": "3s", "timeout": "5m"},
    }

    def setUp(self):
        super().setUp()
        self.port = restart_with_listener(self, "none", ["127.0.0.0/8"])

    def connect(self):
        s = socket.create_connection(("127.0.0.1", self.port), timeout=30)
        f = s.makefile("rb")
        self.assertTrue(f.readline().startswith(b"220"))
        return s, f

    def cmd(self, s, f, line, code):
        s.sendall(line + b"\r\n")
        reply = f.readline()
        while reply[3:4] == b"-":
            reply = f.readline()
        self.assertTrue(reply.startswith(code), "%r -> %r" % (line, reply))
        return reply

    def envelope(self, s, f):
        self.cmd(s, f, b"EHLO slow.test", b"250")
        self.cmd(s, f, b"MAIL FROM:<app@example.com>", b"250")
        self.cmd(s, f, b"RCPT TO:<rcpt@example.org>", b"250")
        self.cmd(s, f, b"DATA", b"354")

    def trickle_until_cut(self, s, data, pause, limit):
        """Sends data a byte every pause seconds, reading the socket
        itself (a makefile() dies at its first timeout); returns (reply,
        seconds) once the server answers or closes, or fails after limit
        seconds."""
        t0 = time.monotonic()
        got = b""
        s.settimeout(pause)
        for i in range(len(data)):
            try:
                s.sendall(data[i:i + 1])
                chunk = s.recv(4096)
            except socket.timeout:
                chunk = None
            except OSError:
                break
            if chunk is not None:
                got += chunk
                break
            if time.monotonic() - t0 > limit:
                self.fail("still connected after %.0f s of trickling"
                          % limit)
        s.settimeout(10)
        try:
            while b"\n" not in got:
                chunk = s.recv(4096)
                if not chunk:
                    break
                got += chunk
        except OSError:
            pass
        return got, time.monotonic() - t0

    def test_trickle_in_data_is_cut(self):
        tok = unique("trickle")
        s, f = self.connect()
        try:
            self.envelope(s, f)
            body = ("Subject: %s\r\n\r\n" % tok).encode() + b"x" * 10000
            reply, took = self.trickle_until_cut(s, body, 0.25, 30)
        finally:
            s.close()
        self.assertTrue(reply.startswith(b"421 4.4.2"), reply)
        # The grace (2 s) plus a little credit, and the sweep's second.
        self.assertLess(took, 10, "cut only after %.1f s" % took)
        self.assertIn("data rate below 500 bytes/s after DATA",
                      self.suite.log())
        time.sleep(1)
        self.assertEqual(self.suite.relayq_json(), [],
                         "a cut message was queued")
        self.assertFalse([t for t in self.capture.all_transactions()
                          if tok.encode() in t.data])

    def test_trickle_in_command_is_cut(self):
        s, f = self.connect()
        try:
            self.cmd(s, f, b"EHLO slow.test", b"250")
            line = b"MAIL FROM:<" + b"a" * 200 + b"@example.com>\r\n"
            reply, took = self.trickle_until_cut(s, line, 0.25, 30)
        finally:
            s.close()
        self.assertTrue(reply.startswith(b"421 4.4.2"), reply)
        self.assertLess(took, 10, "cut only after %.1f s" % took)
        self.assertIn("command line not complete after 3s",
                      self.suite.log())

    def test_slow_honest_client_gets_through(self):
        """2 KB/s for about 6 s, well past the grace: accepted."""
        tok = unique("honest")
        s, f = self.connect()
        try:
            self.envelope(s, f)
            body = ("Subject: %s\r\n\r\n" % tok).encode()
            body += (b"y" * 78 + b"\r\n") * 150
            for i in range(0, len(body), 200):
                s.sendall(body[i:i + 200])
                time.sleep(0.1)
            s.sendall(b"\r\n.\r\n")
            reply = f.readline()
            self.assertTrue(reply.startswith(b"250"), reply)
            self.cmd(s, f, b"QUIT", b"221")
        finally:
            s.close()
        self.wait_arrival(tok)
