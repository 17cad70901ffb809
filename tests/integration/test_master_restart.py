"""test_master_restart.py - a killed master can be restarted at once
(issue 14).

When master dies, its daemons get SIGTERM (PR_SET_PDEATHSIG) and finish
what they hold. They let go of the listening sockets at once, so a new
master started right away binds them and greets clients (before, the
orphans kept the ports for their 30-second grace and every new master
exited with "Address already in use"), while a client in the middle of a
transaction with an orphaned smtpd still gets its 250, and that message is
delivered by the new master's daemons: nothing accepted is lost.
"""

import os
import signal
import time

from harness import PetrelCase, SetupError, connect, login_plain, \
    make_message, read_greeting, unique


class MasterRestartTest(PetrelCase):

    def test_kill_master_mid_transaction_and_restart(self):
        user, pw = self.ensure_user()
        tok_old, tok_new = unique("orphan"), unique("fresh")
        c = connect(self.suite)
        login_plain(c, user, pw)
        self.assertEqual(c.mail("app@example.com")[0], 250)
        self.assertEqual(c.rcpt("rcpt@example.org")[0], 250)
        self.assertEqual(c.docmd("DATA")[0], 354)
        msg = make_message(tok_old)
        c.send(msg[:40])        # the transaction is under way

        old = self.suite.proc
        os.kill(old.pid, signal.SIGKILL)
        old.wait(10)
        t0 = time.time()
        try:
            self.suite.start()      # waits for a 220 on each listener
        except SetupError as e:
            self.fail("a new master could not start after the old one "
                      "was killed: %s" % e)
        took = time.time() - t0
        greet = read_greeting(self.suite.submission_port)
        self.assertTrue(greet.startswith("220"), greet)

        # The orphaned smtpd finishes the transaction it holds.
        c.send(msg[40:] + b"\r\n.\r\n")
        code, text = c.getreply()
        self.assertEqual(code, 250, text)
        try:
            c.quit()
        except Exception:
            pass
        # The new master's daemons deliver it, and new mail too.
        self.wait_arrival(tok_old)
        self.submit(make_message(tok_new))
        self.wait_arrival(tok_new)
        self.assertNotIn("Address already in use", self.suite.log())
        # Far below the 30 s the orphans used to keep the ports.
        self.assertLess(took, 15, "the new master greeted only after "
                        "%.1f s" % took)
