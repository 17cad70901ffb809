"""test_crash.py - kill -9 everything after the 250; SIGTERM stops all."""

import os
import signal
import time
import unittest

from harness import PetrelCase, make_message, unique


class CrashTest(PetrelCase):
    # Long backoff, so that after the restart the flush is what matters.
    overrides = {"queue": {"min_backoff": "1m", "max_backoff": "2m"}}

    def test_sigkill_everything_after_250_then_flush(self):
        tok = unique("crash")
        self.capture.stop()             # next hop down
        names = set(self.suite.pids().values())
        for n in ("master", "smtpd", "qmgr", "smtp"):
            self.assertIn(n, names, "no %s process running: %r"
                          % (n, self.suite.pids()))
        qid = self.submit(make_message(tok), rcpts=["c1@example.org",
                                                    "c2@example.org"])
        # 250 received: SIGKILL master and every Petrel process at once.
        self.suite.kill9()
        left = self.suite.pids()
        self.assertEqual(left, {}, "processes survived SIGKILL: %r" % left)
        # Same configuration, same queue; the next hop comes back.
        self.suite.start()
        self.capture.start()
        self.suite.relayq("-f")
        got = self.wait_arrival(tok, timeout=30)
        rcpts = sorted(r for t in got for r in t.rcpt_tos)
        if rcpts != ["c1@example.org", "c2@example.org"]:
            # Possibly split across transactions: wait for the rest.
            deadline = time.time() + 15
            while time.time() < deadline:
                rcpts = sorted({r for t in self.capture.messages()
                                if tok.encode() in t.data
                                for r in t.rcpt_tos})
                if rcpts == ["c1@example.org", "c2@example.org"]:
                    break
                time.sleep(0.2)
        self.assertEqual(sorted(set(rcpts)),
                         ["c1@example.org", "c2@example.org"])
        self.assertIn(qid.encode(), got[0].data,
                      "the delivered copy does not carry queue id %s" % qid)
        for r in ("c1@example.org", "c2@example.org"):
            self.suite.wait_delivery(qid, r, "sent", timeout=15)

    def test_queue_of_an_older_layout_is_delivered(self):
        """A message file in the msg/ directory an older Petrel used (the
        id's last digit, then the seconds' digit alone) is found at
        start-up and delivered."""
        tok = unique("rehash")
        self.capture.stop()
        qid = self.submit(make_message(tok), rcpts=["h1@example.org"])
        self.suite.stop()
        msg = os.path.join(self.suite.queue_dir, "msg")
        # Today's: the seconds' last digit plus the process digit, mod 16.
        h = (int(qid[7], 16) + int(qid[13], 16)) % 16
        right = os.path.join(msg, "%X" % h, qid)
        old = qid[-1] if int(qid[-1], 16) != h else "%X" % ((h + 1) % 16)
        os.rename(right, os.path.join(msg, old, qid))
        self.suite.start()
        self.capture.start()
        self.suite.relayq("-f")
        self.wait_arrival(tok, timeout=30)
        self.suite.wait_delivery(qid, "h1@example.org", "sent", timeout=15)
        self.assertIn("moved 1 queue file(s) to their msg/ directory",
                      self.suite.log())

    def test_crashed_daemon_is_restarted(self):
        """SIGKILL smtpd alone: master restarts it, service resumes."""
        before = self.suite.pids_of("smtpd")
        self.assertTrue(before, "no smtpd: %r" % self.suite.pids())
        for pid in before:
            os.kill(pid, signal.SIGKILL)
        deadline = time.time() + 15
        while time.time() < deadline:
            now = self.suite.pids_of("smtpd")
            if now and not set(now) & set(before):
                break
            time.sleep(0.1)
        else:
            self.fail("smtpd not restarted: %r\n%s"
                      % (self.suite.pids(), self.suite.log_tail()))
        self.assertTrue(self.suite.alive(), "master died")
        tok = unique("restart")
        deadline = time.time() + 15
        while True:
            try:
                qid = self.submit(make_message(tok))
                break
            except (OSError, AssertionError):
                if time.time() > deadline:
                    raise
                time.sleep(0.5)
        self.wait_arrival(tok)
        self.suite.wait_delivery(qid, "rcpt@example.org", "sent")


class StopTest(PetrelCase):

    def test_sigterm_stops_every_process(self):
        pids = self.suite.pids()
        names = sorted(pids.values())
        for n in ("master", "smtpd", "qmgr", "smtp"):
            self.assertIn(n, names, "no %s process: %r" % (n, pids))
        self.assertEqual(names.count("smtp"), 2,
                         "smtp.processes is 2: %r" % pids)
        status = self.suite.terminate(timeout=10)
        self.assertIsNotNone(status, "master still running 10s after "
                             "SIGTERM\n%s" % self.suite.log_tail())
        deadline = time.time() + 5
        while time.time() < deadline:
            left = {p: n for p, n in self.suite.pids().items()
                    if p in pids}
            if not left:
                break
            time.sleep(0.1)
        self.assertEqual(left, {}, "left running after SIGTERM: %r" % left)
        self.assertEqual(status, 0, "master exit status after SIGTERM")
        # The listeners are closed too.
        import socket
        for port in (self.suite.submission_port, self.suite.smtps_port):
            s = socket.socket()
            s.settimeout(2)
            try:
                self.assertNotEqual(s.connect_ex(("127.0.0.1", port)), 0,
                                    "port %d still accepts" % port)
            finally:
                s.close()


if __name__ == "__main__":
    unittest.main()
