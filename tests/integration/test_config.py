"""test_config.py - privileges, configuration errors, listeners, limits.

Also master's start-up checks: a daemon_directory mail_owner cannot reach
stops master at start with a plain message; every daemon runs with
NoNewPrivs; a second qmgr on one queue waits for the lock of the first;
a webhook secret_file, sendgrid_key_file or ca_file that mail_owner
cannot open, or a secret_file that is empty or only white space, stops
master at start, naming file, line and key.
"""

import os
import select
import shutil
import signal
import smtplib
import subprocess
import tempfile
import time
import unittest

import harness
from harness import PetrelCase, Suite, connect, login_plain, make_message, \
    unique


def proc_uids(pid):
    """(real, effective, saved) uid and gid of pid, or None."""
    try:
        with open("/proc/%d/status" % pid) as f:
            st = f.read()
    except OSError:
        return None
    uid = gid = None
    for line in st.splitlines():
        if line.startswith("Uid:"):
            uid = [int(x) for x in line.split()[1:4]]
        elif line.startswith("Gid:"):
            gid = [int(x) for x in line.split()[1:4]]
    return uid, gid


class PrivilegeTest(PetrelCase):

    def test_daemons_run_as_mail_owner(self):
        pids = self.suite.pids()
        self.assertIn("master", pids.values())
        for pid, name in pids.items():
            ids = proc_uids(pid)
            if ids is None:
                continue
            uid, gid = ids
            if name == "master":
                self.assertEqual(uid[0], os.getuid(), "master's uid")
                continue
            self.assertEqual(uid, [self.suite.owner_uid] * 3,
                             "%s[%d] uids %r, want mail_owner %s"
                             % (name, pid, uid, self.suite.owner))
            self.assertEqual(gid, [self.suite.owner_gid] * 3,
                             "%s[%d] gids %r" % (name, pid, gid))
            if os.geteuid() == 0:
                with open("/proc/%d/status" % pid) as f:
                    groups = [l for l in f.read().splitlines()
                              if l.startswith("Groups:")]
                self.assertTrue(groups)
                self.assertNotIn(" 0", " " + groups[0].split(":", 1)[1],
                                 "%s keeps supplementary group 0" % name)


    def test_daemons_have_no_new_privs(self):
        """master sets PR_SET_NO_NEW_PRIVS in every child before exec."""
        seen = []
        for pid, name in self.suite.pids().items():
            if name == "master":
                continue
            try:
                with open("/proc/%d/status" % pid) as f:
                    st = f.read()
            except OSError:
                continue
            self.assertIn("NoNewPrivs:\t1", st,
                          "%s[%d] can gain privileges by exec" % (name, pid))
            seen.append(name)
        for name in ("smtpd", "qmgr", "smtp"):
            self.assertIn(name, seen)


class SolitaryTest(PetrelCase):
    """qmgr is solitary: a second one on the same queue waits for the
    first one's lock instead of scheduling the same recipients again."""

    def test_second_qmgr_waits_for_the_lock(self):
        self.assertEqual(len(self.suite.pids_of("qmgr")), 1)

        def drop():
            if os.geteuid() == 0:
                os.setgroups([])
                os.setgid(self.suite.owner_gid)
                os.setuid(self.suite.owner_uid)

        p = subprocess.Popen(
            [os.path.join(harness.daemon_dir(), "qmgr"), "-c",
             self.suite.conf_path], stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
            preexec_fn=drop, start_new_session=True)
        harness.register(p)

        def reap():
            if p.poll() is None:
                p.kill()
            p.wait()
            p.stderr.close()
        self.addCleanup(reap)
        out = b""
        deadline = time.time() + 10
        while b"waiting for the qmgr" not in out and time.time() < deadline:
            r, _, _ = select.select([p.stderr], [], [], 0.5)
            if r:
                chunk = os.read(p.stderr.fileno(), 4096)
                if not chunk:
                    break
                out += chunk
        self.assertIn(b"waiting for the qmgr", out, out)
        self.assertIn(b"private/qmgr.lock", out, out)
        self.assertIsNone(p.poll(), "second qmgr exited: %r" % out)
        # It stays stuck at the lock while the first one runs.
        time.sleep(1)
        self.assertIsNone(p.poll(), "second qmgr exited: %r" % out)
        p.send_signal(signal.SIGTERM)
        p.wait(timeout=10)


class ConfigErrorTest(unittest.TestCase):
    """A bad configuration stops master at start, naming file/line/key."""

    def setUp(self):
        if harness.missing_binaries():
            self.fail("not built: %s" % harness.missing_binaries())
        try:
            self.tmp = tempfile.mkdtemp(prefix="petrel-it-")
            os.chmod(self.tmp, 0o755)
            self.suite = Suite(self.tmp, harness.free_port())
        except harness.SetupError as e:
            self.fail("setup: %s" % e)
        self.addCleanup(shutil.rmtree, self.tmp, True)

    def _run_master(self, text):
        with open(self.suite.conf_path, "w") as f:
            f.write(text)
        p = subprocess.Popen(
            [os.path.join(harness.BUILD, "master"), "-c",
             self.suite.conf_path, "-f"], stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            start_new_session=True)
        harness.register(p)
        try:
            out, _ = p.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(p.pid, 9)
            p.wait()
            self.fail("master kept running with a bad configuration")
        return p.returncode, out.decode("utf-8", "replace")

    def test_unknown_key(self):
        good = harness.to_yaml(self.suite.config) + "\n"
        lines = good.splitlines()
        lines.insert(3, "no_such_key: 1")
        rc, out = self._run_master("\n".join(lines) + "\n")
        self.assertNotEqual(rc, 0, out)
        self.assertIn(self.suite.conf_path, out)
        self.assertIn(":4:", out, "line number not named: %r" % out)
        self.assertIn("no_such_key", out)

    def test_bad_duration(self):
        cfg = dict(self.suite.config)
        cfg["queue"] = {"min_backoff": "soon", "max_backoff": "2s"}
        rc, out = self._run_master(harness.to_yaml(cfg) + "\n")
        self.assertNotEqual(rc, 0, out)
        self.assertIn("min_backoff", out)
        self.assertIn(self.suite.conf_path, out)

    def _webhook_file_refused(self, key, path, reason):
        """master refuses a webhook whose key names path, at start,
        naming the file, the key's line, the key and reason."""
        cfg = dict(self.suite.config)
        cfg["webhooks"] = [{"url": "https://127.0.0.1:9/hooks", key: path}]
        text = harness.to_yaml(cfg) + "\n"
        line = [i + 1 for i, t in enumerate(text.splitlines())
                if key + ":" in t][0]
        rc, out = self._run_master(text)
        self.assertNotEqual(rc, 0, out)
        self.assertIn("%s:%d: webhooks[0].%s: %s: %s"
                      % (self.suite.conf_path, line, key, path, reason), out)

    def test_webhook_secret_file_missing(self):
        self._webhook_file_refused(
            "secret_file", os.path.join(self.tmp, "no-such-secret"),
            "No such file or directory")

    def test_webhook_key_and_ca_files_unreadable(self):
        # As root master checks as mail_owner: root's 0600 file is
        # unreadable to it, as it would be to webhookd.
        for key in ("sendgrid_key_file", "ca_file"):
            path = os.path.join(self.tmp, key)
            with open(path, "w") as f:
                f.write("x\n")
            os.chmod(path, 0o600 if os.geteuid() == 0 else 0)
            self._webhook_file_refused(key, path, "Permission denied")

    def test_webhook_secret_file_empty(self):
        # An empty secret would sign nothing: webhookd used to be the
        # first to notice, exiting at every restart.
        path = os.path.join(self.tmp, "empty-secret")
        for text in ("", " \n\t\r\n"):
            with open(path, "w") as f:
                f.write(text)
            os.chmod(path, 0o644)
            self._webhook_file_refused("secret_file", path,
                                       "empty (or only white space)")

    def test_webhook_file_is_a_directory(self):
        self._webhook_file_refused("ca_file", self.tmp,
                                   "not a regular file")

    def test_plaintext_listener_off_loopback_refused(self):
        cfg = dict(self.suite.config)
        cfg["listeners"] = [{"name": "plain", "address": "0.0.0.0:%d"
                             % harness.free_port(), "tls": "none"}]
        rc, out = self._run_master(harness.to_yaml(cfg) + "\n")
        self.assertNotEqual(rc, 0, out)
        self.assertIn("tls", out)


    def _staged_daemons(self, parent_mode, prog_mode=0o755):
        """Copies of the daemons in <tmp>/<parent>/bin: parent_mode on the
        parent directory, prog_mode on smtp. Returns the bin path."""
        parent = tempfile.mkdtemp(prefix="petrel-hidden-", dir=self.tmp)
        os.chmod(parent, parent_mode)
        bindir = os.path.join(parent, "bin")
        os.mkdir(bindir)
        os.chmod(bindir, 0o755)
        for p in ("smtpd", "qmgr", "smtp"):
            shutil.copy2(os.path.join(harness.BUILD, p), bindir)
        os.chmod(os.path.join(bindir, "smtp"), prog_mode)
        return bindir

    def test_daemon_directory_not_reachable(self):
        """A daemon_directory under a 0700 root directory: master says so
        at start and exits, instead of failing every exec."""
        if os.geteuid() != 0:
            self.skipTest("needs root (daemons run as mail_owner)")
        bindir = self._staged_daemons(0o700)
        cfg = dict(self.suite.config)
        cfg["daemon_directory"] = bindir
        rc, out = self._run_master(harness.to_yaml(cfg) + "\n")
        self.assertNotEqual(rc, 0, out)
        self.assertIn("daemon_directory %s: not executable by mail_owner %s"
                      % (bindir, self.suite.owner), out)
        self.assertIn("no search permission on %s"
                      % os.path.dirname(bindir), out)
        self.assertNotIn("Permission denied", out)

    def test_daemon_program_not_executable(self):
        """One program mail_owner may not execute is named."""
        if os.geteuid() != 0:
            self.skipTest("needs root (daemons run as mail_owner)")
        bindir = self._staged_daemons(0o755, prog_mode=0o700)
        cfg = dict(self.suite.config)
        cfg["daemon_directory"] = bindir
        rc, out = self._run_master(harness.to_yaml(cfg) + "\n")
        self.assertNotEqual(rc, 0, out)
        self.assertIn("daemon_directory %s: smtp not executable by "
                      "mail_owner %s" % (bindir, self.suite.owner), out)


class PlainListenerTest(PetrelCase):
    """tls: none on 127.0.0.1: allowed, never offers AUTH."""

    def setUp(self):
        self.plain_port = harness.free_port()
        super().setUp()
        self.suite.stop()
        self.suite.config["listeners"] = [
            {"name": "submission", "address": "127.0.0.1:%d"
             % self.suite.submission_port, "tls": "starttls"},
            {"name": "smtps", "address": "127.0.0.1:%d"
             % self.suite.smtps_port, "tls": "implicit"},
            {"name": "local", "address": "127.0.0.1:%d" % self.plain_port,
             "tls": "none"},
        ]
        self.suite.write_config()
        self.suite.start()

    def test_no_auth_on_plain_listener(self):
        user, pw = self.ensure_user()
        c = smtplib.SMTP("127.0.0.1", self.plain_port, timeout=30)
        try:
            c.ehlo("client.test")
            self.assertNotIn("auth", c.esmtp_features)
            code, _ = c.docmd("AUTH", "PLAIN " +
                              harness.auth_plain_arg(user, pw))
            self.assertGreaterEqual(code, 500, "AUTH accepted on a "
                                    "plaintext listener")
            code, _ = c.docmd("MAIL", "FROM:<app@example.com>")
            self.assertIn(code, (530, 554), "unauthenticated, untrusted "
                          "MAIL accepted on the plaintext listener")
        finally:
            c.quit()


class SizeLimitTest(PetrelCase):
    overrides = {"smtpd": {"processes": 1, "message_size_limit": "20k"}}

    def test_size_limit(self):
        c = connect(self.suite)
        try:
            self.assertIn("size", c.esmtp_features)
            self.assertEqual(c.esmtp_features["size"].strip(), "20480")
            login_plain(c, *self.ensure_user())
            code, text = c.docmd("MAIL", "FROM:<app@example.com> "
                                 "SIZE=1000000")
            self.assertEqual(code, 552, text)
            c.docmd("RSET")
            tok = unique("big")
            big = make_message(tok, body=(b"y" * 70 + b"\r\n") * 600)
            c.mail("app@example.com")
            c.rcpt("rcpt@example.org")
            code, text = c.data(big)
            self.assertEqual(code, 552, text)
            # The session goes on; a small message passes.
            tok2 = unique("small")
            qid = harness.send(c, "app@example.com", ["rcpt@example.org"],
                               make_message(tok2))
        finally:
            try:
                c.quit()
            except (smtplib.SMTPException, OSError):
                pass
        self.wait_arrival(tok2)
        self.suite.wait_delivery(qid, "rcpt@example.org", "sent")
        self.assertEqual([t for t in self.capture.all_transactions()
                          if tok.encode() in t.data], [])


if __name__ == "__main__":
    unittest.main()
