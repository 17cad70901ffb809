"""test_commit.py - smtpd's group commit runs beside its event loop.

A commit waits on the disk (each file and directory fsync'd, then LMDB's
transaction). It used to run in smtpd's event loop, so every other session
of the process waited with it; it now runs on smtpd's commit thread
(smtpd/smtpd_commit.c). Here each fsync(2) of smtpd is slowed to
FSYNC_DELAY seconds by strace's fault injection, through a wrapper in a
copy of the daemon directory, so one message's commit (its file, then its
directory) takes at least twice that. Another client connects and logs
in during it; with the commit in the loop, its greeting would only have
come once the commit was done.

Skipped without strace (or where it cannot trace, as in some containers).
"""

import os
import shutil
import socket
import tempfile
import time
import unittest

import harness
from harness import PetrelCase, connect, login_plain, make_message, unique

FSYNC_DELAY = 0.8               # seconds, each fsync of smtpd


def wrapped_daemon_dir():
    """A copy of the daemon directory whose smtpd runs under strace."""
    real = harness.daemon_dir()
    d = tempfile.mkdtemp(prefix="petrel-slowsync-")
    os.chmod(d, 0o755)
    for name in os.listdir(real):
        if name != "smtpd":
            os.symlink(os.path.join(real, name), os.path.join(d, name))
    with open(os.path.join(d, "smtpd"), "w") as f:
        f.write("#!/bin/sh\nexec %s -f -qq -o /dev/null -e trace=fsync "
                "-e inject=fsync:delay_enter=%d %s \"$@\"\n"
                % (shutil.which("strace"), int(FSYNC_DELAY * 1e6),
                   os.path.join(real, "smtpd")))
    os.chmod(os.path.join(d, "smtpd"), 0o755)
    return d


@unittest.skipUnless(shutil.which("strace"), "needs strace")
class CommitThreadTest(PetrelCase):

    def setUp(self):
        d = wrapped_daemon_dir()
        self.addCleanup(shutil.rmtree, d, True)
        self.overrides = {"daemon_directory": d}
        super().setUp()

    def test_other_sessions_served_during_a_commit(self):
        user, pw = self.ensure_user()
        tok = unique("slow")
        c1 = connect(self.suite)
        login_plain(c1, user, pw)
        code, _ = c1.mail("app@example.com")
        self.assertEqual(code, 250)
        code, _ = c1.rcpt("rcpt@example.org")
        self.assertEqual(code, 250)
        c1.putcmd("data")
        code, text = c1.getreply()
        self.assertEqual(code, 354, text)
        c1.send(make_message(tok) + b".\r\n")
        sent = time.monotonic()

        # While that message is being committed: a whole new session.
        time.sleep(FSYNC_DELAY / 4)
        c2 = connect(self.suite)
        login_plain(c2, user, pw)
        served = time.monotonic()

        code, text = c1.getreply()
        queued = time.monotonic()
        self.assertEqual(code, 250, text)
        if queued - sent < 1.5 * FSYNC_DELAY:
            self.skipTest("fsync was not slowed (%.2f s to the 250)"
                          % (queued - sent))
        # The commit took two delayed fsyncs; the login came within it.
        self.assertLess(served - sent, 1.5 * FSYNC_DELAY,
                        "the second session was logged in %.2f s after "
                        "the first one's data, its 250 %.2f s after: it "
                        "waited for the commit"
                        % (served - sent, queued - sent))

        # Both go on as usual.
        tok2 = unique("after")
        qid = harness.send(c2, "app@example.com", ["rcpt@example.org"],
                           make_message(tok2))
        self.assertTrue(qid)
        for c in (c1, c2):
            try:
                c.quit()
            except (OSError, socket.error):
                pass
        self.wait_arrival(tok)
        self.wait_arrival(tok2)


if __name__ == "__main__":
    unittest.main()
