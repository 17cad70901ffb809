"""test_kdf.py - checking a secret does not stop smtpd's other sessions, and
one user's burst of first logins runs one KDF."""

import base64
import select
import time

from harness import PetrelCase, connect, unique


class KdfOffLoopTest(PetrelCase):
    # One smtpd process: every session shares its event loop.
    overrides = {"smtpd": {"processes": 1}}

    def test_noop_answered_while_secrets_are_checked(self):
        """Four first logins of four users (a scrypt run each, of a tenth
        of a second or more, which the verified-secret cache cannot
        answer) are sent, then NOOP on another session. NOOP's reply must
        come before the last 235; were the KDF run in the event loop, it
        would come after all of them."""
        users = []
        for i in range(4):
            name, pw = unique("kdf%d" % i), "secret-%d-xyz" % i
            self.suite.add_user(name, pw)
            users.append((name, pw))
        sessions = [connect(self.suite) for _ in users]
        other = connect(self.suite)
        for c, (name, pw) in zip(sessions, users):
            c.send("AUTH PLAIN %s\r\n" % base64.b64encode(
                ("\0%s\0%s" % (name, pw)).encode()).decode())
        other.send("NOOP\r\n")
        # Replies in the order they arrive, read by one thread.
        by_sock = {c.sock: c for c in sessions + [other]}
        order, codes = [], {}
        while len(order) < len(by_sock):
            ready, _, _ = select.select(
                [s for s in by_sock if by_sock[s] not in order], [], [], 60)
            self.assertTrue(ready, "no reply within 60 s")
            for s in ready:
                c = by_sock[s]
                codes[id(c)] = c.getreply()[0]
                order.append(c)
        self.assertEqual(codes[id(other)], 250)
        self.assertEqual([codes[id(c)] for c in sessions], [235] * 4)
        self.assertIsNot(order[-1], other,
                         "NOOP was answered only after every login: the "
                         "KDF ran in the event loop")
        self.assertLess(order.index(other), 3)
        for c in sessions + [other]:
            c.quit()

    def test_burst_of_one_users_first_logins_runs_one_kdf(self):
        """Eight sessions of one application log in at once, the first
        time in this process: one KDF answers them all. Compared with one
        first login of another user on the same machine, so the bound is
        a ratio, not a speed: eight KDFs in a row would take about eight
        times as long."""
        solo, solo_pw = unique("kdfsolo"), "solo-secret-1"
        app, app_pw = unique("kdfapp"), "app-secret-1"
        self.suite.add_user(solo, solo_pw)
        self.suite.add_user(app, app_pw)

        def logins(name, pw, n):
            sessions = [connect(self.suite) for _ in range(n)]
            t0 = time.monotonic()
            for c in sessions:
                c.send("AUTH PLAIN %s\r\n" % base64.b64encode(
                    ("\0%s\0%s" % (name, pw)).encode()).decode())
            codes = [c.getreply()[0] for c in sessions]
            elapsed = time.monotonic() - t0
            for c in sessions:
                c.quit()
            self.assertEqual(codes, [235] * n)
            return elapsed

        one = logins(solo, solo_pw, 1)
        eight = logins(app, app_pw, 8)
        self.assertLess(eight, 4 * one, "8 first logins took %.3f s, one "
                        "took %.3f s: each ran its own KDF" % (eight, one))


if __name__ == "__main__":
    import unittest
    unittest.main()
