"""test_badinput.py - malformed commands, over-long lines, binary garbage."""

import random
import re
import socket
import ssl
import threading
import time
import unittest

from harness import PetrelCase, connect, login_plain, make_message, send, \
    unique, unverified_ctx

REPLY_RE = re.compile(rb"^(\d{3})([ -])(.*)$")


def read_reply(f):
    """One (possibly multi-line) reply -> (code, [texts])."""
    texts = []
    while True:
        line = f.readline(8192)
        if not line:
            raise ConnectionError("connection closed")
        m = REPLY_RE.match(line.rstrip(b"\r\n"))
        if m is None:
            raise AssertionError("not an SMTP reply: %r" % line)
        texts.append(m.group(3).decode("utf-8", "replace"))
        if m.group(2) == b" ":
            return int(m.group(1)), texts


class RawSession:
    def __init__(self, port, implicit=False):
        s = socket.create_connection(("127.0.0.1", port), timeout=15)
        if implicit:
            s = unverified_ctx().wrap_socket(s)
        self.s = s
        self.f = s.makefile("rb")
        self.greeting = read_reply(self.f)

    def cmd(self, line):
        if isinstance(line, str):
            line = line.encode()
        self.s.sendall(line + b"\r\n")
        return read_reply(self.f)

    def close(self):
        try:
            self.s.close()
        except OSError:
            pass


class BadInputTest(PetrelCase):

    def test_malformed_commands_get_5xx_and_session_goes_on(self):
        tok = unique("malformed")
        user, pw = self.ensure_user()
        c = connect(self.suite)
        try:
            login_plain(c, user, pw)
            for cmd, args in (("MAIL", "FROM:<bad"), ("MAIL", "FROM bad"),
                              ("MAIL", "FROM:<a@b> NOSUCHPARAM=1"),
                              ("RCPT", "TO:<x@example.org>"),
                              ("DATA", ""), ("XYZZY", "plugh"),
                              ("MAIL", "FROM:<a@b> SIZE=notanumber")):
                code, text = c.docmd(cmd, args)
                self.assertTrue(500 <= code < 600,
                                "%s %s got %d %r" % (cmd, args, code, text))
                self.assertRegex(text.decode("utf-8", "replace"),
                                 r"^5\.\d{1,3}\.\d{1,3}\b",
                                 "no enhanced status code in the reply to "
                                 "%s %s" % (cmd, args))
                c.docmd("RSET")
            qid = send(c, "app@example.com", ["rcpt@example.org"],
                       make_message(tok))
        finally:
            c.quit()
        self.wait_arrival(tok)
        self.suite.wait_delivery(qid, "rcpt@example.org", "sent")

    def test_overlong_command_line_500_5_5_2(self):
        r = RawSession(self.suite.submission_port)
        try:
            r.cmd("EHLO client.test")
            code, texts = r.cmd("NOOP " + "x" * 2000)
            self.assertEqual(code, 500, texts)
            self.assertTrue(texts[-1].startswith("5.5.2"), texts)
            # Still usable (or the server closed, which RFC 5321 allows).
            try:
                code, texts = r.cmd("NOOP")
                self.assertEqual(code, 250, texts)
            except (ConnectionError, OSError):
                pass
        finally:
            r.close()
        # Inside TLS, after AUTH, with a MAIL command too.
        user, pw = self.ensure_user()
        c = connect(self.suite)
        try:
            login_plain(c, user, pw)
            code, text = c.docmd("MAIL", "FROM:<" + "a" * 2000 +
                                 "@example.com>")
            self.assertEqual(code, 500, text)
            self.assertTrue(text.startswith(b"5.5.2"), text)
        finally:
            try:
                c.quit()
            except Exception:
                pass

    def _garbage(self, port, implicit, seed):
        rnd = random.Random(seed)
        blob = rnd.randbytes(100 * 1024)
        s = socket.create_connection(("127.0.0.1", port), timeout=10)
        try:
            # Drain whatever comes back while we write.
            def drain():
                try:
                    while s.recv(65536):
                        pass
                except OSError:
                    pass
            t = threading.Thread(target=drain, daemon=True)
            t.start()
            try:
                for i in range(0, len(blob), 4096):
                    s.sendall(blob[i:i + 4096])
            except OSError:
                pass            # the server may hang up: fine
            try:
                s.shutdown(socket.SHUT_WR)
            except OSError:
                pass
            t.join(15)
        finally:
            s.close()

    def test_binary_garbage_does_not_crash_smtpd(self):
        before = self.suite.pids_of("smtpd")
        self.assertTrue(before, "no smtpd running: %r" % self.suite.pids())
        self._garbage(self.suite.submission_port, False, 1)
        self._garbage(self.suite.smtps_port, True, 2)
        # Garbage inside a TLS session too.
        c = connect(self.suite)
        try:
            c.sock.settimeout(5)
            c.sock.sendall(random.Random(3).randbytes(100 * 1024))
        except (OSError, ssl.SSLError):
            pass
        finally:
            c.close()
        time.sleep(1)
        after = self.suite.pids_of("smtpd")
        self.assertEqual(before, after, "smtpd was replaced (crashed?)\n%s"
                         % self.suite.log_tail())
        self.assertTrue(self.suite.alive())
        tok = unique("aftergarbage")
        qid = self.submit(make_message(tok))
        self.wait_arrival(tok)
        self.suite.wait_delivery(qid, "rcpt@example.org", "sent")
        bad = self.suite.bad_log_lines()
        self.assertEqual(bad, [], "bad log lines after garbage")

    def test_many_commands_pipelined_garbage_lines(self):
        """Lines of junk (no NUL) in one write: a reply to each."""
        r = RawSession(self.suite.submission_port)
        try:
            junk = [b"\x01\x02\x7f\xff" * 10, b"MAIL", b"RCPT TO:",
                    b"EHLO", b":::", b"\xc3\x28 invalid utf8", b"HELO"]
            r.s.sendall(b"".join(j + b"\r\n" for j in junk))
            codes = [read_reply(r.f)[0] for _ in junk]
            for j, code in zip(junk, codes):
                self.assertTrue(400 <= code < 600,
                                "%r got %d" % (j, code))
            code, _ = r.cmd("NOOP")
            self.assertEqual(code, 250)
        finally:
            r.close()


if __name__ == "__main__":
    unittest.main()
