"""test_logreopen.py - master's SIGUSR2 after the accounting log is renamed
(logrotate): every daemon opens the file again, so the next events go to a
new file at the configured path and none is lost; a daemon still starting
is not killed by the signal."""

import os
import signal
import time

from harness import PetrelCase, make_message, unique


class LogReopenTest(PetrelCase):

    def wait_log(self, text, timeout=20):
        deadline = time.time() + timeout
        while time.time() < deadline:
            if text in self.suite.log():
                return
            time.sleep(0.2)
        self.fail("%r not logged:\n%s" % (text, self.suite.log_tail()))

    def events(self, path):
        with open(path, "rb") as f:
            return f.read().decode("utf-8", "replace")

    def test_rotation_moves_next_events_to_new_file(self):
        acct = self.suite.accounting_path
        tok1 = unique("before")
        qid1 = self.submit(make_message(tok1))
        self.wait_arrival(tok1)
        self.suite.wait_accounting(
            lambda o: o.get("queue_id") == qid1 and
            o.get("event") == "delivered", what="first delivery")

        # logrotate: rename, then signal master.
        rotated = acct + ".1"
        os.rename(acct, rotated)
        os.kill(self.suite.proc.pid, signal.SIGUSR2)
        self.wait_log("reopening the accounting log")
        self.assertTrue(os.path.exists(acct),
                        "master did not create the new accounting log")

        tok2 = unique("after")
        qid2 = self.submit(make_message(tok2))
        self.wait_arrival(tok2)
        # smtpd's accepted and qmgr's delivered are both in the new file.
        self.suite.wait_accounting(
            lambda o: o.get("queue_id") == qid2 and
            o.get("event") == "delivered", what="delivered after rotation")
        self.suite.wait_accounting(
            lambda o: o.get("queue_id") == qid2 and
            o.get("event") == "accepted", what="accepted after rotation")
        new, old = self.events(acct), self.events(rotated)
        self.assertNotIn(qid1, new)
        self.assertIn(qid1, old)
        self.assertNotIn(qid2, old)

        # No daemon died of the signal: nothing restarted.
        self.assertNotIn("killed by signal", self.suite.log())
