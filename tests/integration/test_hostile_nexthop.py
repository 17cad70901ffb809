"""test_hostile_nexthop.py - next hops that stall or lie (issue 14).

smtp talks to servers anyone runs. Each of these takes the mail for its
own domain through the transport table: one that accepts the connection
and never says a word, one that answers a byte a second, one that sends a
1 MB reply line, and one that offers STARTTLS and breaks the handshake
halfway. Each recipient is deferred within smtp.command_timeout (2 s
here; a trickle does not reset it), with a reason in the log, and mail
for a good next hop sent meanwhile is delivered at once: a hostile server
holds one smtp process at most for the timeout, never the others.
"""

import socket
import threading
import time

from harness import PetrelCase, free_port, make_message, unique


class HostileServer:
    """One misbehaving SMTP server on 127.0.0.1, a thread per client."""

    def __init__(self, kind):
        self.kind = kind
        self.port = free_port()
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", self.port))
        self.sock.listen(16)
        self.stop = threading.Event()
        self.conns = []
        self.thread = threading.Thread(target=self.accept_loop, daemon=True)
        self.thread.start()

    def accept_loop(self):
        self.sock.settimeout(0.2)
        while not self.stop.is_set():
            try:
                c, _ = self.sock.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            self.conns.append(c)
            threading.Thread(target=self.serve, args=(c,),
                             daemon=True).start()

    def serve(self, c):
        try:
            if self.kind == "silent":
                self.stop.wait(60)
            elif self.kind == "trickle":
                for b in b"220 slow.example ESMTP\r\n" * 10:
                    if self.stop.wait(1.0):
                        return
                    c.sendall(bytes([b]))
            elif self.kind == "hugeline":
                c.sendall(b"220 " + b"x" * (1024 * 1024) + b"\r\n")
                self.stop.wait(60)
            elif self.kind == "badtls":
                f = c.makefile("rb")
                c.sendall(b"220 tls.example ESMTP\r\n")
                f.readline()
                c.sendall(b"250-tls.example\r\n250 STARTTLS\r\n")
                f.readline()
                c.sendall(b"220 2.0.0 go ahead\r\n")
                c.recv(4096)            # the ClientHello
                # Half a ServerHello, then nothing.
                c.sendall(b"\x16\x03\x03\x00\x50\x02\x00\x00\x4c\x03\x03")
                self.stop.wait(60)
        except OSError:
            pass
        finally:
            try:
                c.close()
            except OSError:
                pass

    def close(self):
        self.stop.set()
        try:
            self.sock.close()
        except OSError:
            pass
        for c in self.conns:
            try:
                c.close()
            except OSError:
                pass


KINDS = ("silent", "trickle", "hugeline", "badtls")


class HostileNexthopTest(PetrelCase):

    def setUp(self):
        self.servers = {k: HostileServer(k) for k in KINDS}
        for s in self.servers.values():
            self.addCleanup(s.close)
        transport = {"%s.example" % k: "[127.0.0.1]:%d" % s.port
                     for k, s in self.servers.items()}
        self.overrides = {
            "transport": transport,
            "smtp": {"processes": 4, "connect_timeout": "2s",
                     "command_timeout": "2s"},
            "queue": {"min_backoff": "1h", "max_backoff": "1h"},
        }
        super().setUp()
        # The harness's own "*" entry (the capture server) stays.
        self.suite.config["transport"]["*"] = \
            "[127.0.0.1]:%d" % self.capture.port
        self.suite.stop()
        self.suite.write_config()
        self.suite.start()

    def test_each_is_deferred_and_good_mail_goes_on(self):
        qids = {}
        t0 = time.time()
        for k in KINDS:
            qids[k] = self.submit(make_message(unique(k)),
                                  rcpts=("user@%s.example" % k,))
        tok = unique("good")
        good = self.submit(make_message(tok))
        self.wait_arrival(tok, timeout=10)
        self.suite.wait_delivery(good, "rcpt@example.org", "sent")
        # A good next hop is not held up behind the hostile ones.
        self.assertLess(time.time() - t0, 10)
        reasons = {}
        for k in KINDS:
            d = self.suite.wait_delivery(qids[k], "user@%s.example" % k,
                                         "deferred", timeout=30)
            reasons[k] = d[0]["line"]
        self.assertLess(time.time() - t0, 40,
                        "the hostile servers held smtp too long")
        want = {
            "silent": "timed out while receiving the initial server "
                      "greeting",
            # A byte a second does not reset the reply's deadline.
            "trickle": "timed out while receiving the initial server "
                       "greeting",
            "hugeline": "reply line too long",
            "badtls": "Cannot start TLS",
        }
        for k in KINDS:
            self.assertIn(want[k], reasons[k], reasons[k])
            self.assertIn("dsn=4.", reasons[k])
        # smtp is still there and serving.
        tok2 = unique("after")
        self.submit(make_message(tok2))
        self.wait_arrival(tok2, timeout=10)
