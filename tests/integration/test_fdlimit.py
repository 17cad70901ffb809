"""test_fdlimit.py - file descriptors run out (issue 14).

master, and so every daemon, runs with RLIMIT_NOFILE 48. Many clients
connect and stay: once smtpd has no descriptor left for another
connection, new ones wait in the kernel's queue, smtpd says so in its log
(once, not once per try), does not spin on the listener, and the sessions
already open go on and deliver. When clients leave, waiting ones are
greeted.

The same holds for the daemons that accept on private/ sockets (qmgr here,
smtp and bounce through the same lib/daemon code): many clients on
private/qmgr make qmgr run out, it logs once that new connections wait,
does not spin on its listener, and once they leave it serves again (a
message goes through, which needs qmgr's triggers).
"""

import os
import socket
import time

from harness import PetrelCase, connect, login_plain, make_message, \
    read_greeting, unique

NOFILE = 48
CLIENTS = 80


def cpu_ticks(pid):
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])     # utime + stime


class FdLimitTest(PetrelCase):
    overrides = {"limits": {"connections": 1000,
                            "connections_per_client": 1000}}

    def setUp(self):
        super().setUp()
        self.suite.stop()
        self.suite.start(nofile=NOFILE)

    def test_out_of_descriptors(self):
        user, pw = self.ensure_user()
        # An open session, logged in before the descriptors run out.
        early = connect(self.suite)
        login_plain(early, user, pw)
        idle = []
        self.addCleanup(lambda: [s.close() for s in idle])
        for _ in range(CLIENTS):
            s = socket.create_connection(
                ("127.0.0.1", self.suite.submission_port), timeout=5)
            idle.append(s)
        deadline = time.time() + 15
        while "new connections wait" not in self.suite.log():
            self.assertLess(time.time(), deadline, "smtpd never ran out "
                            "of descriptors:\n%s" % self.suite.log_tail())
            time.sleep(0.1)
        # Not spinning: smtpd's CPU over two seconds at the limit.
        (pid,) = self.suite.pids_of("smtpd")
        before = cpu_ticks(pid)
        time.sleep(2)
        used = (cpu_ticks(pid) - before) / os.sysconf("SC_CLK_TCK")
        self.assertLess(used, 0.5, "smtpd used %.2f s of CPU in 2 s "
                        "while out of descriptors" % used)
        self.assertEqual(self.suite.log().count("new connections wait"), 1)
        # The session opened before goes on and delivers.
        tok = unique("fd")
        early.sendmail("app@example.com", ["rcpt@example.org"],
                       make_message(tok))
        early.quit()
        self.wait_arrival(tok)
        # Clients leave; one that connects now is greeted.
        for s in idle:
            s.close()
        idle.clear()
        deadline = time.time() + 15
        while True:
            try:
                if read_greeting(self.suite.submission_port,
                                 timeout=3).startswith("220"):
                    break
            except OSError:
                pass
            self.assertLess(time.time(), deadline, "no greeting after "
                            "the clients left")
            time.sleep(0.2)
        self.assertEqual(len(self.suite.pids_of("smtpd")), 1,
                         "smtpd crashed or was restarted")
        self.assertEqual(self.suite.pids_of("smtpd"), [pid])


def qmgr_waits(log):
    return [ln for ln in log.splitlines()
            if "qmgr" in ln and "new connections wait" in ln]


class QmgrFdLimitTest(PetrelCase):
    def setUp(self):
        super().setUp()
        self.suite.stop()
        self.suite.start(nofile=NOFILE)

    def test_qmgr_out_of_descriptors(self):
        path = os.path.join(self.suite.queue_dir, "private", "qmgr")
        clients = []
        self.addCleanup(lambda: [s.close() for s in clients])
        for _ in range(CLIENTS):
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            s.settimeout(0.5)
            try:
                s.connect(path)
            except OSError:
                s.close()
                continue
            clients.append(s)
        deadline = time.time() + 15
        while not qmgr_waits(self.suite.log()):
            self.assertLess(time.time(), deadline, "qmgr never ran out "
                            "of descriptors:\n%s" % self.suite.log_tail())
            time.sleep(0.1)
        # Not spinning on its readable listener.
        (pid,) = self.suite.pids_of("qmgr")
        before = cpu_ticks(pid)
        time.sleep(2)
        used = (cpu_ticks(pid) - before) / os.sysconf("SC_CLK_TCK")
        self.assertLess(used, 0.5, "qmgr used %.2f s of CPU in 2 s "
                        "while out of descriptors" % used)
        self.assertEqual(len(qmgr_waits(self.suite.log())), 1)
        # The clients leave: qmgr serves again, the same process.
        for s in clients:
            s.close()
        clients.clear()
        user, pw = self.ensure_user()
        c = connect(self.suite)
        login_plain(c, user, pw)
        tok = unique("fdq")
        c.sendmail("app@example.com", ["rcpt@example.org"],
                   make_message(tok))
        c.quit()
        self.wait_arrival(tok)
        self.assertEqual(self.suite.pids_of("qmgr"), [pid],
                         "qmgr crashed or was restarted")
