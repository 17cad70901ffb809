"""test_daemon_restart.py - qmgr and smtp killed and restarted while smtpd
keeps accepting (issue 14).

A client submits a steady stream of messages. In the middle of it, qmgr
and every smtp process are killed with SIGKILL, then the smtp processes
alone, last (qmgr sees its delivery requests lost, and must send them
again rather than defer them: no restart of qmgr rescans them); master
restarts them (with its backoff); the next hop is slow, so deliveries
are under way when smtp dies. smtpd answers 250 to every message throughout, every
accepted message reaches the next hop, and none waits for a retry after
the daemons are back: all have arrived within a few of qmgr's one-second
scans of their return (asserted generously, 15 seconds; a message left
deferred would wait queue.min_backoff, 5 minutes).
"""

import os
import signal
import threading
import time

from harness import PetrelCase, make_message, unique

MESSAGES = 30
BACK_BOUND = 15         # seconds after qmgr and smtp are back


class DaemonRestartTest(PetrelCase):
    # The production backoff, not the harness's 1 s: a message left
    # deferred when smtp died would wait it out and fail the test.
    overrides = {"queue": {"min_backoff": "5m", "max_backoff": "1h",
                           "max_lifetime": "5d"}}

    def kill_workers(self, names):
        old = set()
        for name in names:
            self.assertTrue(self.suite.pids_of(name), "no %s to kill" % name)
            old.update(self.suite.pids_of(name))
        for pid in old:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        return old

    def wait_back(self, old, timeout=30):
        """Until a new qmgr and a new smtp run; returns when."""
        deadline = time.time() + timeout
        while True:
            q = [p for p in self.suite.pids_of("qmgr") if p not in old]
            s = [p for p in self.suite.pids_of("smtp") if p not in old]
            if q and s:
                return time.time()
            self.assertLess(time.time(), deadline, "qmgr and smtp were "
                            "not restarted:\n%s" % self.suite.log_tail())
            time.sleep(0.05)

    def test_kill_qmgr_and_smtp_while_accepting(self):
        self.ensure_user()
        # A slow next hop: deliveries are under way when smtp is killed.
        self.capture.data_delay = 0.3
        run = unique("rst")
        toks = ["%s-%03d" % (run, i) for i in range(MESSAGES)]
        accepted, errors = [], []
        sent = threading.Semaphore(0)

        def client():
            for tok in toks:
                try:
                    self.submit(make_message(tok))
                    accepted.append(tok)
                except Exception as e:      # reported below
                    errors.append("%s: %r" % (tok, e))
                sent.release()
                time.sleep(0.05)

        t = threading.Thread(target=client)
        t.start()
        back = []
        try:
            for at, names in ((8, ("qmgr", "smtp")), (20, ("smtp",))):
                while len(accepted) + len(errors) < at:
                    self.assertTrue(sent.acquire(timeout=30),
                                    "the client stalled")
                if names == ("smtp",):
                    # The next hop holds its reply to DATA: smtp dies
                    # waiting for it, with the job at the next hop.
                    self.capture.data_delay = 2.0
                    time.sleep(1.0)
                old = self.kill_workers(names)
                self.capture.data_delay = 0.3
                back.append(self.wait_back(old))
        finally:
            t.join(120)
        self.assertEqual(errors, [], "smtpd refused while qmgr and smtp "
                         "were down")
        self.assertEqual(len(accepted), MESSAGES)

        # Every accepted message arrives, soon after the daemons are back.
        deadline = max(back[-1], time.time()) + BACK_BOUND

        def missing():
            got = b"".join(t.data for t in self.capture.all_transactions())
            return [tok for tok in toks if tok.encode() not in got]
        while missing() and time.time() < deadline:
            time.sleep(0.2)
        left = missing()
        self.assertEqual(left, [], "%d accepted message(s) not delivered "
                         "within %ds of qmgr and smtp being back: %s\n%s"
                         % (len(left), BACK_BOUND, left[:5],
                            self.suite.log_tail(40)))
        # And nothing is left deferred in the queue: the next hop may have
        # recorded a message whose reply smtp died before reading, which
        # qmgr must send again, not leave waiting out its backoff.
        while self.suite.relayq_json() and time.time() < deadline:
            time.sleep(0.2)
        self.assertEqual(self.suite.relayq_json(), [],
                         "messages still queued %ds after qmgr and smtp "
                         "were back\n%s" % (BACK_BOUND,
                                             self.suite.log_tail(40)))
