"""test_diskfull.py - the queue's file system fills (issue 14).

The queue directory is a small tmpfs (6 MB) mounted by the test, and the
next hop is down, so accepted mail stays queued. Messages of 256 KB are
submitted until the file system is full: smtpd then answers 452 4.3.1
(insufficient system storage) and nothing it acknowledged is lost: every
250 is in the queue. When space returns (the tmpfs is grown) smtpd takes
mail again by itself, and once the next hop is back every accepted
message is delivered. Needs root (mount); skipped otherwise.
"""

import os
import smtplib
import subprocess
import time
import unittest

from harness import PetrelCase, connect, login_plain, make_message, unique


def run(*argv):
    return subprocess.run(argv, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT)


@unittest.skipUnless(os.geteuid() == 0, "mounting a tmpfs needs root")
class DiskFullTest(PetrelCase):

    def setUp(self):
        super().setUp()
        self.suite.stop()
        qdir = self.suite.queue_dir
        os.makedirs(qdir, exist_ok=True)
        r = run("mount", "-t", "tmpfs", "-o", "size=6m,mode=0755",
                "tmpfs", qdir)
        if r.returncode != 0:
            self.skipTest("cannot mount a tmpfs: %s" % r.stdout.decode())
        self.addCleanup(run, "umount", "-l", qdir)
        # Cleanups run last-in first-out: the suite stops before umount.
        self.addCleanup(self.suite.stop)
        self.capture.stop()             # the next hop is down
        self.suite.start()

    def try_submit(self, c, tok):
        """(code, text) of one 256 KB message on session c."""
        body = (b"x" * 1000 + b"\r\n") * 256
        try:
            c.sendmail("app@example.com", ["rcpt@example.org"],
                       make_message(tok, body=body))
            return 250, ""
        except smtplib.SMTPResponseException as e:
            return e.smtp_code, e.smtp_error.decode("utf-8", "replace")
        except smtplib.SMTPRecipientsRefused as e:
            code, text = list(e.recipients.values())[0]
            return code, text.decode("utf-8", "replace")

    def session(self):
        user, pw = self.ensure_user()
        c = connect(self.suite)
        login_plain(c, user, pw)
        return c

    def test_full_then_space_returns(self):
        accepted, refusal = [], None
        c = self.session()
        for i in range(80):
            tok = unique("fill%d" % i)
            code, text = self.try_submit(c, tok)
            if code == 250:
                accepted.append(tok)
                continue
            refusal = (code, text)
            break
        c.quit()
        self.assertIsNotNone(refusal, "6 MB took 80 messages of 256 KB")
        self.assertEqual(refusal[0], 452, refusal)
        self.assertIn("4.3.1", refusal[1])
        self.assertGreater(len(accepted), 0)
        # Nothing acknowledged is lost: every 250 is queued.
        queued = self.suite.relayq_json()
        self.assertEqual(len(queued), len(accepted), queued)

        # Space returns: smtpd takes mail again by itself.
        r = run("mount", "-o", "remount,size=64m", self.suite.queue_dir)
        self.assertEqual(r.returncode, 0, r.stdout)
        c = self.session()
        tok = unique("after")
        code, text = self.try_submit(c, tok)
        c.quit()
        self.assertEqual(code, 250, text)
        accepted.append(tok)

        # The next hop comes back: everything accepted is delivered.
        self.capture.start()
        self.suite.relayq("-f")
        for tok in accepted:
            self.wait_arrival(tok, timeout=60)
        deadline = time.time() + 30
        while self.suite.relayq_json() and time.time() < deadline:
            time.sleep(0.2)
        self.assertEqual(self.suite.relayq_json(), [])
