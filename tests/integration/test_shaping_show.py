"""test_shaping_show.py - relayctl shaping show [DEST] [-j] (relayctl(8),
SHAPING): what qmgr says of its destinations (request=shaping on
private/qmgr).

- A destination limited to 1 message a minute with a backlog: one message
  goes, the rest wait; it shows state "pacing", the pending count, its
  entry and its rate, in the table and in -j's JSON Lines.
- A destination limited to 1 connection, whose server is slow to answer
  DATA, shows "at-limit" with its one connection.
- A destination with both lanes busy (3 connections, the default 20%
  reserve: one; a server slow to answer DATA) shows each lane's jobs
  waiting and at smtp, and the reserve as configured and as it is now.
- DEST picks one destination, by next-hop key or by recipient domain
  (through the transport table); one qmgr does not have is said so, exit 1.
- qmgr not running: a clear error, exit 1. --help exits 0; a bad command
  line prints the usage on stderr and exits 2.
"""

import json
import time
import unittest

import harness
from harness import CaptureSMTPD, unique
from test_lanes import LanesCase
from test_shaping import ShapingCase


def rows(text):
    """The table: a list of column lists, the header first."""
    return [line.split() for line in text.splitlines() if line.strip()]


class ShowCase(ShapingCase):

    def show(self, *args, check=True):
        r = self.suite.relayctl("shaping", "show", *args, check=check)
        return r

    def show_json(self, *args):
        out = self.show(*(args + ("-j",))).stdout.decode()
        return [json.loads(line) for line in out.splitlines() if line]

    def wait_for(self, pred, what, timeout=30):
        """Polls shaping show -j until pred(records by key) holds."""
        deadline = time.time() + timeout
        while True:
            recs = {r["destination"]: r for r in self.show_json()}
            if pred(recs):
                return recs
            if time.time() > deadline:
                self.fail("shaping show: never %s: %r\n%s"
                          % (what, recs, self.suite.log_tail()))
            time.sleep(0.2)


class PacingTest(ShowCase):
    """Two rate-limited destinations, each with a backlog."""

    def setUp(self):
        super().setUp()
        self.other = CaptureSMTPD()
        self.other.start()
        self.addCleanup(self.other.stop)
        self.slow_key = self.key(self.capture)
        self.other_key = self.key(self.other)
        # One message a minute: the first goes at once, the rest wait
        # for the rate for the whole test.
        self.shape({self.slow_key: {"max_message_rate": "1/min"},
                    self.other_key: {"max_message_rate": "1/min",
                                     "max_connections": 4}},
                   transport={"slow.example": self.slow_key,
                              "other.example": self.other_key})
        self.send_batch("slow", 4, rcpt="u@slow.example")
        self.send_batch("other", 2, rcpt="u@other.example")
        self.wait_for(lambda r: r.get(self.slow_key, {}).get("pending") == 3
                      and r.get(self.other_key, {}).get("pending") == 1,
                      "a backlog of 3 and 1")

    def test_pacing_with_backlog(self):
        out = self.show().stdout.decode()
        table = rows(out)
        self.assertEqual(table[0], ["DESTINATION", "ENTRY", "STATE",
                                    "PENDING", "CONNECTIONS",
                                    "MAX_CONNECTIONS", "MAX_MESSAGE_RATE",
                                    "SENT", "TRANSACTIONAL", "BULK",
                                    "RESERVE"], out)
        by_key = {r[0]: r for r in table[1:]}
        self.assertEqual(set(by_key), {self.slow_key, self.other_key}, out)
        slow = by_key[self.slow_key]
        # The entry is the one the file names; no max_connections: "-".
        self.assertEqual(slow[1], self.slow_key)
        self.assertEqual(slow[2], "pacing", out)
        self.assertEqual(slow[3], "3", out)
        self.assertEqual(slow[5], "-", out)
        self.assertEqual(slow[6], "1/min", out)
        self.assertEqual(slow[7], "1", out)
        other = by_key[self.other_key]
        self.assertEqual((other[2], other[3], other[5], other[6]),
                         ("pacing", "1", "4", "1/min"), out)

        recs = {r["destination"]: r for r in self.show_json()}
        self.assertEqual(set(recs), {self.slow_key, self.other_key})
        j = recs[self.slow_key]
        for field in ("destination", "entry", "state", "pending",
                      "connections", "sent", "max_connections",
                      "max_message_rate", "rate_count", "rate_interval"):
            self.assertIn(field, j)
        self.assertEqual(j["entry"], self.slow_key)
        self.assertEqual(j["state"], "pacing")
        self.assertEqual(j["pending"], 3)
        self.assertEqual(j["sent"], 1)
        self.assertIsNone(j["max_connections"])
        self.assertEqual(j["max_message_rate"], "1/min")
        self.assertEqual((j["rate_count"], j["rate_interval"]), (1, 60))
        self.assertEqual(recs[self.other_key]["max_connections"], 4)
        # The global -j works as well as the subcommand's.
        r = self.suite.relayctl("-j", "shaping", "show")
        self.assertEqual(len(r.stdout.decode().splitlines()), 2)

    def test_dest_filter(self):
        # By next-hop key: only that one.
        table = rows(self.show(self.slow_key).stdout.decode())
        self.assertEqual([r[0] for r in table[1:]], [self.slow_key])
        # By recipient domain, through its transport entry (any case).
        table = rows(self.show("Other.Example").stdout.decode())
        self.assertEqual([r[0] for r in table[1:]], [self.other_key])
        recs = self.show_json("slow.example")
        self.assertEqual([r["destination"] for r in recs], [self.slow_key])
        # One qmgr does not have: nothing on stdout, said on stderr.
        for args in (("nowhere.example",), ("nowhere.example", "-j"),
                     ("[127.0.0.1]:1",)):
            with self.subTest(args=args):
                r = self.show(*args, check=False)
                self.assertEqual(r.returncode, 1, r.stderr)
                self.assertEqual(r.stdout, b"")
                self.assertIn(b"qmgr has no destination", r.stderr)
        r = self.show("nowhere.example", check=False)
        self.assertIn(b"nowhere.example:25", r.stderr)


class AtLimitTest(ShowCase):
    """max_connections 1 and a slow server: jobs wait for the connection."""

    def setUp(self):
        super().setUp()
        self.capture.data_delay = 3

    def test_at_limit(self):
        key = self.key(self.capture)
        self.shape({key: {"max_connections": 1}})
        self.send_batch("atlimit", 3)
        recs = self.wait_for(
            lambda r: r.get(key, {}).get("state") == "at-limit" and
            r[key]["pending"] >= 1, "at-limit with jobs pending")
        self.assertEqual(recs[key]["connections"], 1)
        self.assertEqual(recs[key]["max_connections"], 1)
        self.assertIsNone(recs[key]["max_message_rate"])
        table = rows(self.show(key).stdout.decode())
        self.assertEqual(table[1][0], key)
        self.assertIn(table[1][2], ("at-limit", "normal"))
        self.assertEqual(table[1][5], "1")
        self.assertEqual(table[1][6], "-")


class LanesShowTest(ShowCase):
    """Bulk and transactional mail at one destination of 3 connections."""

    bulk_user = LanesCase.bulk_user
    send_as = LanesCase.send_as

    def setUp(self):
        super().setUp()
        # Long enough for the first jobs to be at smtp while it is read.
        self.capture.data_delay = 6

    def test_lanes(self):
        key = self.key(self.capture)
        self.shape({key: {"max_connections": 3}})
        # Bulk first: two of its four go (the third connection is the
        # reserve's), then transactional mail takes that one.
        bulk = self.send_as(*self.bulk_user(), [unique("bulk")
                                                for _ in range(4)])
        self.assertEqual(len(bulk), 4)
        self.wait_for(lambda r: r.get(key, {}).get("bulk_in_flight") == 2,
                      "two bulk jobs at smtp")
        self.send_batch("trans", 2)
        want = {"transactional_pending": 1, "transactional_in_flight": 1,
                "bulk_pending": 2, "bulk_in_flight": 2,
                "transactional_reserve": "20%", "reserved_connections": 1,
                "source_addresses": 1}
        recs = self.wait_for(
            lambda r: all(r.get(key, {}).get(k) == v
                          for k, v in want.items()),
            "each lane's jobs waiting and at smtp")
        self.assertEqual(recs[key]["pending"], 3)
        self.assertEqual(recs[key]["connections"], 3)
        table = rows(self.show(key).stdout.decode())
        self.assertEqual(table[0][-3:], ["TRANSACTIONAL", "BULK", "RESERVE"])
        self.assertEqual(table[1][-3:], ["1/1", "2/2", "1(20%)"], table)
        self.assertLessEqual(self.capture.peak, 3)


class QmgrDownTest(ShowCase):

    def test_qmgr_not_running(self):
        self.suite.stop()
        for args in ((), ("-j",), ("example.org",)):
            with self.subTest(args=args):
                r = self.show(*args, check=False)
                self.assertEqual(r.returncode, 1, r.stderr)
                self.assertEqual(r.stdout, b"")
                err = r.stderr.decode()
                self.assertIn("cannot reach qmgr", err)
                self.assertIn("is Petrel running?", err)


class UsageTest(unittest.TestCase):
    """No configuration needed for --help or to reject a command line."""

    def run_relayctl(self, args):
        return harness.relayctl_without_config(args)

    def test_help(self):
        for args in (["shaping", "--help"], ["shaping", "-h"],
                     ["shaping", "show", "--help"],
                     ["shaping", "show", "gmail.com", "-h"]):
            with self.subTest(args=args):
                r = self.run_relayctl(args)
                self.assertEqual(r.returncode, 0, r.stderr)
                self.assertTrue(r.stdout.startswith(
                    b"usage: relayctl [-c FILE] [-j] shaping show"),
                    r.stdout)
        out = self.run_relayctl(["--help"]).stdout.decode()
        self.assertRegex(out, r"relayctl .*\bshaping show\b")

    def test_usage_errors(self):
        for args in (["shaping"], ["shaping", "list"],
                     ["shaping", "show", "a.example", "b.example"],
                     ["shaping", "show", "--bogus"],
                     ["shaping", "show", "a b"],
                     ["shaping", "show", "host:99999"],
                     ["shaping", "show", "2001:db8::1"]):
            with self.subTest(args=args):
                r = self.run_relayctl(args)
                self.assertEqual(r.returncode, 2, r.stderr)
                self.assertEqual(r.stdout, b"")
                self.assertIn(b"usage: relayctl", r.stderr)
                self.assertTrue(r.stderr.startswith(b"relayctl: shaping"),
                                r.stderr)


if __name__ == "__main__":
    unittest.main()
