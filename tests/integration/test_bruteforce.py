"""test_bruteforce.py - failed AUTH: growing delays, then a block.

With auth.max_failures 3: each failed AUTH from an address gets its 535
later than the one before; the third closes the session with 421 and
blocks the address (421 4.7.0 at the greeting of every new connection,
logged as "AUTH blocked"), also across a restart of every process. Failures
are also counted per user name, over several addresses. Below the threshold
a correct login still works.
"""

import smtplib
import socket
import time
import unittest

from harness import PetrelCase, auth_plain_arg, make_message, send, \
    unique, unverified_ctx

BF = {"auth": {"max_failures": 3, "failure_window": "10m",
               "block_time": "1h"}}


def greeting(port, source="127.0.0.1", timeout=10):
    """First line of the greeting (str), then whether the server closed
    the connection on its own (True) within 2 seconds."""
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout,
                                 source_address=(source, 0))
    try:
        f = s.makefile("rb")
        line = f.readline(4096).decode("latin-1").rstrip("\r\n")
        s.settimeout(2)
        closed = False
        if line.startswith("421"):
            try:
                closed = f.readline(4096) == b""
            except (socket.timeout, OSError):
                closed = False
        else:
            try:
                s.sendall(b"QUIT\r\n")
                f.readline(4096)
            except OSError:
                pass
        return line, closed
    finally:
        s.close()


def tls_session(suite, source="127.0.0.1"):
    c = smtplib.SMTP("127.0.0.1", suite.submission_port, timeout=30,
                     source_address=(source, 0))
    c.ehlo("client.test")
    c.starttls(context=unverified_ctx())
    c.ehlo("client.test")
    return c


def timed_auth(c, user, password):
    t = time.monotonic()
    code, text = c.docmd("AUTH", "PLAIN " + auth_plain_arg(user, password))
    return code, text.decode("utf-8", "replace"), time.monotonic() - t


def quit_(c):
    try:
        c.quit()
    except (smtplib.SMTPException, OSError):
        try:
            c.close()
        except OSError:
            pass


class BruteForceTest(PetrelCase):
    overrides = BF

    def three_failures(self):
        """Three wrong secrets in one session: [(code, text, seconds)],
        and what came after the third 535: (code, text, closed by the
        server), or None."""
        user, pw = self.ensure_user()
        # Failures are counted in fixed windows of auth.failure_window
        # (10m) that start on multiples of it: three failures that
        # straddle a boundary are counted 1, 2, then 1 again. Start well
        # inside a window.
        left = 600 - time.time() % 600
        if left < 20:
            time.sleep(left + 1)
        c = tls_session(self.suite)
        got = []
        after = None
        try:
            for i in range(3):
                got.append(timed_auth(c, user, "wrong-%d" % i))
            c.sock.settimeout(5)
            try:
                code, text = c.getreply()
                after = (code, text.decode("utf-8", "replace"))
                # ...and then the server closes the connection.
                try:
                    closed = c.sock.recv(1) == b""
                except OSError:
                    closed = False
                after += (closed,)
            except (smtplib.SMTPServerDisconnected, OSError):
                after = None
        finally:
            try:
                c.close()
            except OSError:
                pass
        for i, (code, text, _) in enumerate(got):
            self.assertEqual((code, text[:5]), (535, "5.7.8"),
                             "wrong secret %d: %d %s" % (i + 1, code, text))
        return got, after

    def test_growing_delays(self):
        got, _ = self.three_failures()
        t = [round(x[2], 2) for x in got]
        self.assertGreaterEqual(t[1], t[0] + 0.8,
                                "2nd 535 not delayed >= 1s more than the "
                                "1st: %r" % t)
        self.assertGreaterEqual(t[2], t[0] + 0.8,
                                "3rd 535 (the one that blocks) not delayed "
                                ">= 1s more than the 1st: %r" % t)

    def test_block_after_threshold_survives_restart(self):
        got, after = self.three_failures()
        self.assertIsNotNone(after, "no 421 after the 3rd failure (the "
                             "session was closed without one, or stayed "
                             "open)")
        self.assertEqual(after[0], 421, "after the 3rd failure: %r"
                         % (after,))
        self.assertTrue(after[2], "the session stayed open after the 421")
        # A new connection is refused at the greeting, and closed.
        line, closed = greeting(self.suite.submission_port)
        self.assertTrue(line.startswith("421 4.7.0"),
                        "greeting after the block: %r\n%s"
                        % (line, self.suite.log_tail(20)))
        self.assertTrue(closed, "the blocked connection was not closed")
        # Also on the implicit TLS port (the refusal is in clear text
        # there; any non-220 outcome is acceptable, a session is not).
        try:
            line2, _ = greeting(self.suite.smtps_port)
        except OSError:
            line2 = ""
        self.assertFalse(line2.startswith("220"), "smtps greeting after "
                         "the block: %r" % line2)
        # Another address is not blocked.
        line, _ = greeting(self.suite.submission_port, source="127.0.0.2")
        self.assertTrue(line.startswith("220"), "127.0.0.2 greeting: %r"
                        % line)
        log = [l for l in self.suite.log().splitlines()
               if "AUTH blocked" in l]
        self.assertTrue([l for l in log if "127.0.0.1" in l],
                        "no 'AUTH blocked' log line naming 127.0.0.1: %r\n%s"
                        % (log, self.suite.log_tail(20)))
        # Restart every process with the same configuration and queue.
        # (wait_ready expects a 220, which a blocked address cannot get.)
        self.suite.stop()
        self.suite.start(wait=False)
        deadline = time.time() + 20
        line = None
        while time.time() < deadline:
            if not self.suite.alive():
                self.fail("master exited on restart\n%s"
                          % self.suite.log_tail())
            try:
                line, _ = greeting(self.suite.submission_port)
                if line:
                    break
            except OSError:
                pass
            time.sleep(0.1)
        self.assertIsNotNone(line, "no greeting after the restart\n%s"
                             % self.suite.log_tail())
        self.assertTrue(line.startswith("421 4.7.0"),
                        "greeting after a restart: %r (the block was "
                        "lost)\n%s" % (line, self.suite.log_tail(20)))

    def test_success_below_threshold(self):
        user, pw = self.ensure_user()
        c = tls_session(self.suite)
        try:
            for i in range(2):
                code, text, _ = timed_auth(c, user, "wrong-%d" % i)
                self.assertEqual(code, 535, text)
            code, text, _ = timed_auth(c, user, pw)
            self.assertEqual(code, 235, "right secret after 2 failures: "
                             "%d %s" % (code, text))
            tok = unique("bf")
            send(c, "app@example.com", ["rcpt@example.org"],
                 make_message(tok))
        finally:
            quit_(c)
        self.wait_arrival(tok)
        line, _ = greeting(self.suite.submission_port)
        self.assertTrue(line.startswith("220"), "greeting: %r" % line)

    def test_per_user_block_over_several_addresses(self):
        """One failure each from three addresses blocks the user name."""
        user, pw = self.ensure_user()
        self.suite.add_user("other", "other-secret-123")
        for src in ("127.0.0.2", "127.0.0.3", "127.0.0.4"):
            c = tls_session(self.suite, source=src)
            try:
                code, text, _ = timed_auth(c, user, "wrong")
                self.assertEqual(code, 535, "%s: %d %s" % (src, code, text))
            finally:
                quit_(c)
        # From a fresh address the right secret no longer works...
        line, _ = greeting(self.suite.submission_port, source="127.0.0.5")
        self.assertTrue(line.startswith("220"), "127.0.0.5 is not "
                        "blocked: %r" % line)
        c = tls_session(self.suite, source="127.0.0.5")
        try:
            code, text, _ = timed_auth(c, user, pw)
            self.assertEqual(code, 535, "the blocked user logged in: %d %s"
                             % (code, text))
        finally:
            quit_(c)
        # ...while another user from there is unaffected.
        c = tls_session(self.suite, source="127.0.0.6")
        try:
            code, text, _ = timed_auth(c, "other", "other-secret-123")
            self.assertEqual(code, 235, "another user: %d %s"
                             % (code, text))
        finally:
            quit_(c)
        log = [l for l in self.suite.log().splitlines()
               if "AUTH blocked" in l and user in l]
        self.assertTrue(log, "no 'AUTH blocked' line naming user %s\n%s"
                        % (user, self.suite.log_tail(20)))


if __name__ == "__main__":
    unittest.main()
