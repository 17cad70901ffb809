"""test_lanes.py - priority lanes (qmgr(8) Lanes, relayctl --lane).

A credential's lane (relayctl user set NAME --lane bulk) or a message's
X-Petrel-Priority: bulk puts its jobs in the bulk lane: qmgr sends a
destination's transactional mail first and keeps bulk mail off the
connections shaping.yaml's transactional_reserve keeps for it. The capture
server is the destination, limited by a shaping entry for its next-hop key
as in test_shaping.py; its replies are slowed so that a bulk backlog stays
queued while a transactional message is sent.
"""

import threading
import time

from harness import (PetrelCase, connect, login_plain, make_message,
                     queue_file, relayctl_without_config, send,
                     unique)

BULK_USER = "news1"
BULK_PASSWORD = "bulk horse battery staple"


class LanesCase(PetrelCase):
    """A shaping entry for the capture server, and a bulk credential."""

    overrides = {"smtp": {"processes": 8}}

    def shape(self, entry):
        self.restart_shaped({"destinations": {
            "[127.0.0.1]:%d" % self.capture.port: entry}})

    def bulk_user(self):
        self.suite.add_user(BULK_USER, BULK_PASSWORD)
        self.suite.relayctl("user", "set", BULK_USER, "--lane", "bulk")
        return BULK_USER, BULK_PASSWORD

    def send_as(self, user, pw, toks, extra_headers=()):
        """One session, one message per token; their queue ids."""
        qids = []
        c = connect(self.suite)
        try:
            login_plain(c, user, pw)
            for t in toks:
                qids.append(send(c, "app@example.com", ["rcpt@example.org"],
                                 make_message(t,
                                              extra_headers=extra_headers)))
        finally:
            c.quit()
        return qids


class OvertakeTest(LanesCase):
    """The issue's test: a transactional message overtakes 5,000 bulk."""

    BULK = 5000
    SESSIONS = 4

    def setUp(self):
        super().setUp()
        # Two connections: the bulk lane gets one (the default reserve
        # keeps the other), slowed so that the backlog outlasts the test.
        self.capture.data_delay = 0.05

    def test_transactional_overtakes_5000_bulk(self):
        self.shape({"max_connections": 2})
        user, pw = self.bulk_user()
        tag = unique("bulk")
        per = self.BULK // self.SESSIONS
        errors = []

        def inject(i):
            try:
                self.send_as(user, pw, ["%s-%d-%d" % (tag, i, k)
                                        for k in range(per)])
            except Exception as e:  # reported below
                errors.append(e)
        threads = [threading.Thread(target=inject, args=(i,))
                   for i in range(self.SESSIONS)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        self.assertEqual(errors, [])
        bulk_before = len(self.capture.messages())
        self.assertLess(bulk_before, self.BULK // 2,
                        "the bulk backlog drained while it was queued")
        self.ensure_user()
        tok = unique("urgent")
        t0 = time.time()
        self.submit(make_message(tok))
        got = self.wait_arrival(tok, timeout=30)
        delay = got[0].time - t0
        bulk_then = len([m for m in self.capture.messages()
                         if tag.encode() in m.data])
        self.assertLess(delay, 5.0, "the transactional message took %.2fs"
                        % delay)
        self.assertLess(bulk_then, self.BULK - 1000,
                        "the bulk backlog was sent first")
        # The bulk lane never took the reserved connection.
        self.assertLessEqual(self.capture.peak, 2)


class ReserveTest(LanesCase):
    """transactional_reserve keeps bulk mail off the last connection."""

    def setUp(self):
        super().setUp()
        # Busy sessions: with 8 smtp processes and no reserve, all three
        # connections would be open at once.
        self.capture.data_delay = 0.3

    def test_bulk_leaves_the_reserve_free(self):
        self.shape({"max_connections": 3})
        user, pw = self.bulk_user()
        toks = [unique("res") for _ in range(18)]
        self.send_as(user, pw, toks)
        for t in toks:
            self.wait_arrival(t, timeout=60)
        self.assertLessEqual(self.capture.peak, 2)
        self.assertEqual(self.capture.refused, 0)

    def test_transactional_uses_every_connection(self):
        """The control: the same load from a transactional credential
        opens the third connection (so the test above can fail)."""
        self.shape({"max_connections": 3})
        user, pw = self.ensure_user()
        toks = [unique("all") for _ in range(18)]
        self.send_as(user, pw, toks)
        for t in toks:
            self.wait_arrival(t, timeout=60)
        self.assertEqual(self.capture.peak, 3)

    def test_reserve_zero(self):
        self.shape({"max_connections": 3, "transactional_reserve": 0})
        user, pw = self.bulk_user()
        toks = [unique("zero") for _ in range(18)]
        self.send_as(user, pw, toks)
        for t in toks:
            self.wait_arrival(t, timeout=60)
        self.assertEqual(self.capture.peak, 3)


class PriorityHeaderTest(LanesCase):
    """X-Petrel-Priority: bulk lowers a message; nothing raises one."""

    def setUp(self):
        super().setUp()
        # Deferred: the messages stay queued, their files readable.
        self.capture.add_rcpt_rule("451 4.3.0 not now")

    def test_header_lowers_a_transactional_message(self):
        user, pw = self.ensure_user()
        plain = self.send_as(user, pw, [unique("t")])[0]
        lowered2 = self.send_as(user, pw, [unique("b2")], extra_headers=(
            "X-Petrel-Priority: BULK",))[0]
        lowered = self.send_as(user, pw, [unique("b")], extra_headers=(
            "X-Petrel-Priority: bulk",))[0]
        self.assertNotIn("L=bulk", queue_file(self.suite, plain))
        self.assertIn("L=bulk", queue_file(self.suite, lowered))
        self.assertIn("L=bulk", queue_file(self.suite, lowered2))
        self.assertIn("%s: lane=bulk (X-Petrel-Priority)" % lowered,
                      self.suite.log())
        # relayq says each message's lane (and its pool).
        lanes = {o["queue_id"]: (o["lane"], o["pool"])
                 for o in self.suite.relayq_json()}
        self.assertEqual(lanes.get(plain), ("transactional", "default"))
        self.assertEqual(lanes.get(lowered), ("bulk", "default"))
        out = self.suite.relayq("-e", lowered).stdout.decode()
        self.assertIn("lane: bulk\npool: default\n", out)

    def test_bulk_credential_cannot_raise(self):
        user, pw = self.bulk_user()
        qids = self.send_as(user, pw, [unique("r")], extra_headers=(
            "X-Petrel-Priority: transactional",))
        qids += self.send_as(user, pw, [unique("n")])
        for q in qids:
            self.assertIn("L=bulk", queue_file(self.suite, q))

    def test_header_removed_before_delivery(self):
        self.capture.clear_rules()
        tok = unique("strip")
        self.submit(make_message(tok, extra_headers=(
            "X-Petrel-Priority: bulk",)))
        got = self.wait_arrival(tok)
        self.assertEqual(got[0].header("X-Petrel-Priority"), [])
        self.assertEqual(got[0].header("Subject"), [tok])


class LaneOptionTest(LanesCase):
    """relayctl user add/set --lane, shown by user show and user list."""

    def test_set_show_list(self):
        self.suite.relayctl("user", "add", "n2", "--lane", "bulk",
                            "--password-stdin", input=b"pw\n")
        self.ensure_user()
        text = self.suite.relayctl("user", "show", "n2").stdout.decode()
        self.assertIn("\nlane: bulk\n", text)
        lines = self.suite.relayctl("user", "list").stdout.decode()
        self.assertIn("\tlane=transactional\t", lines)
        self.assertIn("\tlane=bulk\t", lines)
        self.suite.relayctl("user", "set", "n2", "--lane=transactional")
        self.assertIn('"lane":"transactional"', self.suite.relayctl(
            "user", "show", "n2", "-j").stdout.decode())

    def test_bad_lane_is_a_usage_error(self):
        self.ensure_user()
        r = self.suite.relayctl("user", "set", self.user, "--lane",
                                "urgent", check=False)
        self.assertEqual(r.returncode, 2)
        self.assertIn(b"--lane: invalid value", r.stderr)
        self.assertIn(b"usage:", r.stderr)
        r = relayctl_without_config(["user", "set", "x", "--lane"])
        self.assertEqual(r.returncode, 2)
