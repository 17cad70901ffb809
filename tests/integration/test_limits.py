"""test_limits.py - limits.connections and limits.connections_per_client.

Beyond either limit a new connection gets 421 4.7.0 and is closed; the
counts go down when sessions end, whatever way they end, so they never
leak. trusted_networks is emptied: trusted clients are exempt from the
per-client limit.
"""

import socket
import ssl
import time
import unittest

from harness import PetrelCase, unverified_ctx


class Conn:
    """A raw client connection that has read its greeting line."""

    def __init__(self, port, source="127.0.0.1"):
        s = socket.create_connection(("127.0.0.1", port), timeout=10,
                                     source_address=(source, 0))
        self.raw = s
        self.sock = s
        self.f = s.makefile("rb")
        self.greeting = self.f.readline(4096).decode("latin-1").rstrip()

    def closed_by_server(self, timeout=3):
        """True if the server closes the connection (EOF) in time."""
        self.sock.settimeout(timeout)
        try:
            while True:
                line = self.f.readline(4096)
                if not line:
                    return True
        except (socket.timeout, OSError):
            return False

    def quit(self):
        try:
            self.sock.sendall(b"QUIT\r\n")
            self.f.readline(4096)
        except OSError:
            pass
        self.close()

    def close(self):
        try:
            self.f.close()
            self.sock.close()
        except OSError:
            pass


def tls_conn(port, source="127.0.0.1"):
    """An implicit-TLS connection: (ssl socket, greeting) or raises."""
    s = socket.create_connection(("127.0.0.1", port), timeout=10,
                                 source_address=(source, 0))
    t = unverified_ctx().wrap_socket(s)
    f = t.makefile("rb")
    return t, f.readline(4096).decode("latin-1").rstrip()


class LimitCase(PetrelCase):

    def setUp(self):
        super().setUp()
        self.open = []
        self.addCleanup(self.close_all)
        # The harness's readiness probes must be gone from the table.
        for c in self.wait_admits(1):
            c.quit()
            self.open.remove(c)

    def close_all(self):
        for c in self.open:
            c.close()
        self.open = []

    def conn(self, source="127.0.0.1"):
        c = Conn(self.suite.submission_port, source)
        self.open.append(c)
        return c

    def wait_admits(self, n, source="127.0.0.1", timeout=5):
        """Polls until n simultaneous connections are admitted (the server
        may take a moment to count a closed session out); returns them."""
        deadline = time.time() + timeout
        while True:
            got = []
            ok = True
            for _ in range(n):
                c = Conn(self.suite.submission_port, source)
                got.append(c)
                if not c.greeting.startswith("220"):
                    ok = False
                    break
            if ok:
                self.open.extend(got)
                return got
            for c in got:
                c.close()
            if time.time() > deadline:
                self.fail("%d connection(s) from %s not admitted within %ds "
                          "(last greeting %r)\n%s" % (
                              n, source, timeout, got[-1].greeting,
                              self.suite.log_tail(20)))
            time.sleep(0.1)

    def assertRefused(self, c, what):
        self.assertTrue(c.greeting.startswith("421 4.7.0"),
                        "%s: greeting %r\n%s" % (what, c.greeting,
                                                 self.suite.log_tail(20)))
        self.assertTrue(c.closed_by_server(), "%s: not closed after the "
                        "421" % what)


class PerClientTest(LimitCase):
    overrides = {"limits": {"connections_per_client": 2},
                 "trusted_networks": []}

    def test_third_connection_from_one_address_refused(self):
        a, b = self.wait_admits(2)
        self.assertTrue(a.greeting.startswith("220"), a.greeting)
        self.assertTrue(b.greeting.startswith("220"), b.greeting)
        c = self.conn()
        self.assertRefused(c, "3rd connection from 127.0.0.1")
        # Another address has its own count.
        d = self.conn(source="127.0.0.2")
        self.assertTrue(d.greeting.startswith("220"),
                        "127.0.0.2 while 127.0.0.1 has 2: %r" % d.greeting)
        # The implicit TLS listener counts too (the 421 is in clear).
        s = socket.create_connection(("127.0.0.1", self.suite.smtps_port),
                                     timeout=10)
        try:
            s.settimeout(5)
            first = s.recv(4096)
        finally:
            s.close()
        self.assertTrue(first.startswith(b"421 4.7.0"),
                        "3rd connection on the smtps port: %r" % first)
        # Closing one makes room again.
        a.quit()
        self.wait_admits(1)
        e = self.conn()
        self.assertRefused(e, "3rd connection after one was replaced")

    def test_counts_do_not_leak(self):
        port = self.suite.submission_port
        for i in range(50):
            kind = i % 5
            if kind == 0:               # polite QUIT
                c = Conn(port)
                self.assertTrue(c.greeting.startswith("220"),
                                "cycle %d: %r" % (i, c.greeting))
                c.quit()
            elif kind == 1:             # hang up without QUIT
                c = Conn(port)
                c.close()
            elif kind == 2:             # reset (RST) mid-session
                c = Conn(port)
                c.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                  b"\x01\x00\x00\x00\x00\x00\x00\x00")
                c.sock.sendall(b"EHLO client.test\r\n")
                c.close()
            elif kind == 3:             # a TLS session on the smtps port
                try:
                    t, g = tls_conn(self.suite.smtps_port)
                    t.sendall(b"QUIT\r\n")
                    t.close()
                except (OSError, ssl.SSLError):
                    pass
            else:                       # 2 held, a 3rd refused
                held = self.wait_admits(2)
                c = Conn(port)
                self.assertTrue(c.greeting.startswith("421"),
                                "cycle %d, 3rd: %r" % (i, c.greeting))
                c.close()
                for h in held:
                    h.quit()
                    self.open.remove(h)
        # After all that, exactly 2 are admitted again.
        self.wait_admits(2)
        c = self.conn()
        self.assertRefused(c, "3rd connection after 50 cycles")


class GlobalTest(LimitCase):
    overrides = {"limits": {"connections": 3}, "trusted_networks": []}

    def test_fourth_connection_refused(self):
        # From four different addresses: the limit is global.
        got = []
        deadline = time.time() + 5
        for src in ("127.0.0.1", "127.0.0.2", "127.0.0.3"):
            while True:
                c = self.conn(source=src)
                if c.greeting.startswith("220") or time.time() > deadline:
                    break
                c.close()
                time.sleep(0.1)
            self.assertTrue(c.greeting.startswith("220"),
                            "%s: %r" % (src, c.greeting))
            got.append(c)
        d = self.conn(source="127.0.0.4")
        self.assertRefused(d, "4th connection (global limit 3)")
        got[0].quit()
        self.wait_admits(1, source="127.0.0.4")
        e = self.conn(source="127.0.0.5")
        self.assertRefused(e, "4th connection after one was replaced")


if __name__ == "__main__":
    unittest.main()
