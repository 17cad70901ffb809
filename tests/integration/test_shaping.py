"""test_shaping.py - per-destination shaping (shaping.file, qmgr_dest.c).

Capture servers stand in for providers: one that takes at most three
sessions at once and greets a fourth with 421, as providers limiting a
sender's connections do; two destinations of which one is rate-limited,
to show that its backlog holds only its own mail. Each next hop is a
transport entry ("[127.0.0.1]:PORT"), which is also the key its shaping
entry names.
"""

import time

from harness import (CaptureSMTPD, PetrelCase, connect, login_plain,
                     make_message, send, unique)


class ShapingCase(PetrelCase):
    """Writes a shaping file for the destinations a test names."""

    overrides = {"smtp": {"processes": 8}}

    def shape(self, destinations, default=None, transport=None):
        doc = {"destinations": destinations}
        if default is not None:
            doc["default"] = default
        if transport is not None:
            self.suite.config["transport"] = transport
        self.restart_shaped(doc)

    def key(self, server):
        return "[127.0.0.1]:%d" % server.port

    def send_batch(self, tag, n, rcpt="rcpt@example.org"):
        """n messages in one authenticated session; their tokens."""
        user, pw = self.ensure_user()
        toks = [unique(tag) for _ in range(n)]
        c = connect(self.suite)
        try:
            login_plain(c, user, pw)
            for t in toks:
                send(c, "app@example.com", [rcpt], make_message(t, to=rcpt))
        finally:
            c.quit()
        return toks

    def arrivals(self, server, toks, timeout):
        """Waits for every token at server; their arrival times, sorted."""
        want = set(t.encode() for t in toks)

        def mine(tr):
            return any(t in tr.data for t in want)
        got = server.wait_for_messages(len(toks), timeout, match=mine)
        if len(got) < len(toks):
            self.fail("%d of %d messages reached port %d within %ds\n%s"
                      % (len(got), len(toks), server.port, timeout,
                         self.suite.log_tail()))
        return sorted(tr.time for tr in got)


class ConnectionLimitTest(ShapingCase):
    """max_connections: never a fourth session to a server that takes 3."""

    def setUp(self):
        super().setUp()
        self.capture.max_sessions = 3
        # Slow replies keep every session busy: with 8 smtp processes and
        # no limit, more than three would be open at once.
        self.capture.data_delay = 0.3

    def test_never_more_than_configured(self):
        self.shape({self.key(self.capture): {"max_connections": 3}})
        toks = self.send_batch("conn", 24)
        self.arrivals(self.capture, toks, 60)
        self.assertLessEqual(self.capture.peak, 3)
        self.assertEqual(self.capture.refused, 0)
        self.assertEqual(self.suite.deliveries(status="deferred"), [],
                         "a refused session deferred mail")
        self.assertIn("shaping: %s: 1 destination entry"
                      % self.suite.config["shaping"]["file"],
                      self.suite.log())

    def test_without_a_limit_the_server_sees_more(self):
        """The same load without the entry: proves the test above can
        fail (the server is reached by more than three sessions)."""
        self.shape({"unrelated.example": {"max_connections": 3}})
        toks = self.send_batch("nolimit", 24)
        self.arrivals(self.capture, toks, 90)
        self.assertGreater(self.capture.peak, 3)

    def test_default_entry_applies(self):
        self.shape({}, default={"max_connections": 2})
        self.capture.max_sessions = 2
        toks = self.send_batch("dflt", 12)
        self.arrivals(self.capture, toks, 60)
        self.assertLessEqual(self.capture.peak, 2)
        self.assertEqual(self.capture.refused, 0)


class RateTest(ShapingCase):
    """max_message_rate paces one destination; another is not slowed."""

    def setUp(self):
        super().setUp()
        self.slow = self.capture
        self.fast = CaptureSMTPD()
        self.fast.start()
        self.addCleanup(self.fast.stop)
        self.transport = {"slow.example": self.key(self.slow),
                          "fast.example": self.key(self.fast),
                          "*": self.key(self.slow)}

    def test_messages_spaced_by_the_rate(self):
        self.shape({self.key(self.slow): {"max_message_rate": "4/s"}},
                   transport=self.transport)
        toks = self.send_batch("rate", 13, rcpt="u@slow.example")
        times = self.arrivals(self.slow, toks, 60)
        span = times[-1] - times[0]
        # 13 messages at 4/s: 12 gaps of 0.25 s, no burst.
        self.assertGreaterEqual(span, 12 * 0.25 * 0.9,
                                "13 messages in %.2fs at 4/s" % span)
        gaps = [b - a for a, b in zip(times, times[1:])]
        self.assertGreater(min(gaps), 0.15, "a burst: gaps %r" % gaps)

    def test_backlog_holds_only_its_destination(self):
        self.shape({self.key(self.slow): {"max_message_rate": "1/s"}},
                   transport=self.transport)
        slow = self.send_batch("backlog", 20, rcpt="u@slow.example")
        t0 = time.time()
        fast = self.send_batch("other", 10, rcpt="u@fast.example")
        times = self.arrivals(self.fast, fast, 30)
        self.assertLess(times[-1] - t0, 10,
                        "the other destination waited behind the backlog")
        # The rate-limited one is still at it: most of its mail is queued.
        self.assertLess(len(self.slow.messages()), 15)
        self.arrivals(self.slow, slow, 60)


class MessagesPerConnectionTest(ShapingCase):
    """max_messages_per_connection: a session carries at most that many."""

    def per_session(self):
        counts = {}
        for tr in self.capture.messages():
            counts[tr.session] = counts.get(tr.session, 0) + 1
        return counts

    def test_session_replaced_after_limit(self):
        # One connection at a time, so every message could ride on it.
        self.shape({self.key(self.capture): {
            "max_connections": 1, "max_messages_per_connection": 3}})
        toks = self.send_batch("uses", 9)
        self.arrivals(self.capture, toks, 60)
        counts = self.per_session()
        self.assertLessEqual(max(counts.values()), 3, counts)
        self.assertGreaterEqual(len(counts), 3, counts)
        self.assertEqual(self.capture.peak, 1)

    def test_without_the_key_one_session_carries_more(self):
        """The control: the same load reuses a session past three."""
        self.shape({self.key(self.capture): {"max_connections": 1}})
        toks = self.send_batch("reuse", 9)
        self.arrivals(self.capture, toks, 60)
        self.assertGreater(max(self.per_session().values()), 3,
                           self.per_session())


class ConnectionRateTest(ShapingCase):
    """max_connection_rate spaces new sessions to a destination."""

    def setUp(self):
        super().setUp()
        # Busy sessions: with 8 smtp processes and no rate, many open at
        # once.
        self.capture.data_delay = 0.5

    def test_new_sessions_spaced(self):
        self.shape({self.key(self.capture): {"max_connection_rate": "2/s"}})
        toks = self.send_batch("crate", 10)
        self.arrivals(self.capture, toks, 60)
        starts = self.capture.session_times
        self.assertGreaterEqual(len(starts), 2, starts)
        gaps = [b - a for a, b in zip(starts, starts[1:])]
        # 2/s: half a second apart (a little slack for the clocks).
        self.assertGreater(min(gaps), 0.4, "sessions at %r" % gaps)

    def test_without_a_rate_sessions_open_together(self):
        self.shape({"unrelated.example": {"max_connection_rate": "2/s"}})
        toks = self.send_batch("nocrate", 10)
        self.arrivals(self.capture, toks, 60)
        starts = self.capture.session_times
        gaps = [b - a for a, b in zip(starts, starts[1:])]
        self.assertTrue(gaps and min(gaps) < 0.2, "sessions at %r" % gaps)


class TlsLevelTest(ShapingCase):
    """tls: a destination's entry requires TLS where smtp.tls does not."""

    def test_encrypt_defers_when_not_offered(self):
        # The capture server offers no STARTTLS; smtp.tls is "may".
        self.shape({self.key(self.capture): {"tls": "encrypt"}})
        tok = unique("tlsreq")
        qid = self.submit(make_message(tok))
        d = self.suite.wait_delivery(qid, "rcpt@example.org", "deferred",
                                     timeout=20)[0]
        self.assertIn("TLS is required (shaping tls encrypt)", d["line"])
        self.assertEqual(self.capture.messages(), [])

    def test_other_destination_keeps_smtp_tls(self):
        self.shape({"unrelated.example": {"tls": "encrypt"}})
        tok = unique("tlsmay")
        self.submit(make_message(tok))
        self.wait_arrival(tok, timeout=20)


class RetryIntervalTest(ShapingCase):
    """retry_interval: the first retry of a deferral, per destination."""

    overrides = {"smtp": {"processes": 8},
                 "queue": {"min_backoff": "1h", "max_backoff": "2h"}}

    def test_first_retry_after_retry_interval(self):
        self.shape({self.key(self.capture): {"retry_interval": "2s"}})
        tok = unique("retryiv")
        self.capture.add_rcpt_rule("451 4.3.0 try again later", times=1)
        qid = self.submit(make_message(tok))
        self.suite.wait_delivery(qid, "rcpt@example.org", "deferred",
                                 timeout=20)
        # Within seconds, not queue.min_backoff's hour.
        self.wait_arrival(tok, timeout=15)
        self.suite.wait_delivery(qid, "rcpt@example.org", "sent",
                                 timeout=10)

    def test_without_it_min_backoff_holds(self):
        self.shape({"unrelated.example": {"retry_interval": "2s"}})
        tok = unique("retrynone")
        self.capture.add_rcpt_rule("451 4.3.0 try again later", times=1)
        qid = self.submit(make_message(tok))
        self.suite.wait_delivery(qid, "rcpt@example.org", "deferred",
                                 timeout=20)
        time.sleep(6)
        self.assertEqual(self.capture.messages(), [])
