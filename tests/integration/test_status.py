"""test_status.py - relayctl status, relayctl on a fresh installation, and
every relayctl --help (relayctl(8)).

- relayctl user add / domain add against a queue_directory that does not
  exist yet (before master ever ran) create the queue tree owned by
  mail_owner; master then starts on it and the credential submits.
- relayctl status with the real daemons: each daemon with its pid, the
  certificate's expiry, queue depth and deferrals after the next hop went
  away, -j as JSON with the documented members, exit 0 when all is fine;
  master stopped (or killed) says so and exits 3; a certificate expiring
  within 14 days and a daemon restarting in a loop are attention lines
  (exit 1).
- relayctl --help and each subcommand's --help print usage, exit 0.
"""

import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
import unittest

import harness
from test_webhookd import WebhookCase
from harness import (CaptureSMTPD, PetrelCase, SetupError, Suite,
                     make_message, unique)

STATUS_DOWN = 3
STATUS_ATTENTION = 1

_long_cert = None


def long_certificate():
    """(cert, key) valid for 60 days: no expiry warning."""
    global _long_cert
    if _long_cert is not None:
        return _long_cert
    d = tempfile.mkdtemp(prefix="petrel-cert60-")
    os.chmod(d, 0o755)
    cert, key = os.path.join(d, "cert.pem"), os.path.join(d, "key.pem")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048",
                    "-nodes", "-subj", "/CN=localhost", "-days", "60",
                    "-keyout", key, "-out", cert],
                   stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL, check=True, timeout=60)
    os.chmod(cert, 0o644)
    os.chmod(key, 0o600)
    import atexit
    atexit.register(shutil.rmtree, d, True)
    _long_cert = (cert, key)
    return _long_cert


def not_after(cert):
    """The certificate's notAfter as openssl prints it, in epoch s."""
    out = subprocess.run(["openssl", "x509", "-noout", "-enddate", "-in",
                          cert], stdout=subprocess.PIPE, check=True,
                         timeout=30).stdout.decode()
    stamp = out.strip().split("=", 1)[1]
    return int(time.mktime(time.strptime(stamp, "%b %d %H:%M:%S %Y GMT"))
               - time.timezone)


class FreshInstallTest(PetrelCase):
    """relayctl before master has ever run on the queue directory."""

    def setUp(self):
        # PetrelCase's set-up, less starting master.
        try:
            self.tmp = tempfile.mkdtemp(prefix="petrel-it-")
            os.chmod(self.tmp, 0o755)
            self.addCleanup(self._rm_tmp)
            self.capture = CaptureSMTPD()
            self.capture.start()
            self.addCleanup(self.capture.stop)
            self.suite = Suite(self.tmp, self.capture.port, {
                "dkim": {"key_directory": os.path.join(self.tmp, "dkim"),
                         "group": "petrel-dkim"}})
            self.addCleanup(self.suite.stop)
        except SetupError as e:
            self.fail("setup: %s" % e)
        self._user_added = False

    def test_user_and_domain_before_master(self):
        q = self.suite.queue_dir
        self.assertFalse(os.path.exists(q))
        self.ensure_user()      # relayctl user add ... --password-stdin
        st = os.stat(q)
        self.assertEqual((st.st_uid, st.st_gid),
                         (self.suite.owner_uid, self.suite.owner_gid))
        self.assertEqual(st.st_mode & 0o7777, 0o755)
        for sub in ("cred", "db", "msg", "private", "tmp"):
            st = os.stat(os.path.join(q, sub))
            self.assertEqual(st.st_uid, self.suite.owner_uid, sub)
            self.assertEqual(st.st_mode & 0o7777, 0o700, sub)
        if os.geteuid() != 0 or _group_exists("petrel-dkim"):
            self.suite.relayctl("domain", "add", "example.com")
            r = self.suite.relayctl("domain", "list", "-j")
            self.assertIn("example.com", r.stdout.decode())
        # master starts on the tree relayctl made; the credential works.
        self.suite.start()
        tok = unique("fresh")
        qid = self.submit(make_message(tok))
        self.wait_arrival(tok)
        self.suite.wait_delivery(qid, "rcpt@example.org", "sent")


def _group_exists(name):
    import grp
    try:
        grp.getgrnam(name)
        return True
    except KeyError:
        return False


class StatusTest(PetrelCase):
    """A certificate good for 60 days: nothing needs attention."""

    def setUp(self):
        cert, key = long_certificate()
        self.overrides = {"tls": {"certificate": cert, "private_key": key}}
        super().setUp()

    def status(self, *args):
        return self.suite.relayctl("status", *args, check=False)

    def status_json(self):
        r = self.status("-j")
        try:
            return r.returncode, json.loads(r.stdout.decode())
        except ValueError as e:
            self.fail("status -j is not JSON (%s): %r" % (e, r.stdout))

    def wait_daemons(self):
        """Until master's status file lists every daemon with a pid."""
        deadline = time.time() + 15
        while True:
            rc, o = self.status_json()
            names = {d["name"] for d in o["daemons"] if d["pid"] > 0}
            if {"smtpd", "qmgr", "smtp", "bounce"} <= names:
                return rc, o
            if time.time() > deadline:
                self.fail("status -j: daemons %r" % o["daemons"])
            time.sleep(0.2)

    def test_running_all_fine(self):
        rc, o = self.wait_daemons()
        self.assertEqual(o["attention"], [], o)
        self.assertEqual(rc, 0, o)
        self.assertIs(o["ok"], True)
        for k in ("ok", "master", "daemons", "listeners", "certificates",
                  "queue", "activity", "suppressed", "webhooks", "disk",
                  "attention"):
            self.assertIn(k, o)
        self.assertTrue(o["master"]["running"])
        self.assertEqual(o["master"]["state"], "running")
        self.assertEqual(o["master"]["pid"], self.suite.proc.pid)
        self.assertGreaterEqual(o["master"]["uptime"], 0)
        # Every daemon finishes its start-up and master publishes it.
        self.suite.wait_daemons_ready(timeout=60)
        rc, o = self.status_json()
        self.assertTrue(all(d["ready"] is True for d in o["daemons"]), o)
        self.assertNotIn("starting", self.status().stdout.decode())
        for d in o["daemons"]:
            for k in ("name", "pid", "restarts", "fails", "ready"):
                self.assertIn(k, d)
            self.assertIn(d["pid"], self.suite.pids_of(d["name"]), d)
            self.assertEqual(d["restarts"], 0, d)
        smtp = [d for d in o["daemons"] if d["name"] == "smtp"]
        self.assertEqual(len(smtp), 2)          # smtp.processes: 2
        names = {l["name"]: l for l in o["listeners"]}
        self.assertEqual(names["submission"]["address"],
                         "127.0.0.1:%d" % self.suite.submission_port)
        self.assertEqual(names["smtps"]["tls"], "implicit")
        cert = self.suite.config["tls"]["certificate"]
        self.assertEqual(o["certificates"][0]["path"], cert)
        self.assertEqual(o["certificates"][0]["not_after"], not_after(cert))
        self.assertGreaterEqual(o["certificates"][0]["days_left"], 58)
        self.assertEqual(o["queue"]["messages"], 0)
        self.assertEqual(o["suppressed"], 0)
        self.assertGreater(o["disk"]["size"], 0)
        self.assertEqual(o["activity"]["source"], "accounting")
        # The screen: each daemon with its pid, the expiry date.
        r = self.status()
        self.assertEqual(r.returncode, 0)
        out = r.stdout.decode()
        self.assertIn("master: running, pid %d" % self.suite.proc.pid, out)
        for name in ("smtpd", "qmgr", "smtp", "bounce"):
            for pid in self.suite.pids_of(name):
                self.assertRegex(out, r"\n  %s +pid %d " % (name, pid))
        self.assertIn("expires %s" % time.strftime(
            "%Y-%m-%d", time.gmtime(not_after(cert))), out)
        self.assertIn("status: all is fine", out)

    def test_queue_depth_next_hop_down(self):
        self.wait_daemons()
        self.capture.stop()
        tok = unique("stdown")
        qid = self.submit(make_message(tok), rcpts=("a@example.org",
                                                    "b@example.org"))
        for r in ("a@example.org", "b@example.org"):
            self.suite.wait_delivery(qid, r, "deferred", timeout=20)
        self.suite.wait_accounting(
            lambda e: e.get("event") == "deferred", what="deferred")
        deadline = time.time() + 10
        while True:
            rc, o = self.status_json()
            if o["queue"]["deferred"] == 2 or time.time() > deadline:
                break
            time.sleep(0.2)
        self.assertEqual(o["queue"]["messages"], 1, o)
        self.assertEqual(o["queue"]["deferred"], 2, o)
        act = o["activity"]
        self.assertGreaterEqual(act["last_5m"]["deferred"], 2, act)
        self.assertGreaterEqual(act["last_1h"]["deferred"], 2, act)
        self.assertEqual(act["last_5m"]["delivered"], 0, act)
        self.assertEqual(act["top_deferred"][0]["destination"],
                         "example.org", act)
        # Deferrals are news, not trouble.
        self.assertEqual(rc, 0, o)
        out = self.status().stdout.decode()
        self.assertIn("queue: 1 message(s); recipients: 0 active, "
                      "2 deferred", out)
        self.assertIn("example.org (", out)

    def test_master_stopped(self):
        self.wait_daemons()
        self.suite.stop()
        r = self.status()
        self.assertEqual(r.returncode, STATUS_DOWN, r.stdout)
        self.assertIn("master: not running", r.stdout.decode())
        rc, o = self.status_json()
        self.assertEqual(rc, STATUS_DOWN)
        self.assertFalse(o["master"]["running"])
        self.assertEqual(o["master"]["state"], "stopped")
        self.assertEqual(o["daemons"], [])
        self.assertIn("master is not running", o["attention"])

    def test_master_killed(self):
        """SIGKILL leaves the status file; its pid is no master."""
        self.wait_daemons()
        self.suite.kill9()
        path = os.path.join(self.suite.queue_dir, "master.status")
        self.assertTrue(os.path.exists(path))
        rc, o = self.status_json()
        self.assertEqual(rc, STATUS_DOWN, o)
        self.assertFalse(o["master"]["running"])
        self.assertTrue(any("master is not running" in a
                            for a in o["attention"]), o)

    @unittest.skipUnless(os.geteuid() == 0, "needs root to be someone else")
    def test_other_user_cannot_tell(self):
        """A user who cannot read master's status file is not told that
        master is down: the state is unknown, and the reason is given."""
        self.wait_daemons()
        # From the staged copy: nobody may not reach the tree (CI's clone
        # is under /root).
        r = subprocess.run([os.path.join(harness.daemon_dir(), "relayctl"),
                            "-c", self.suite.conf_path, "status", "-j"],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           timeout=20, user=65534, group=65534,
                           extra_groups=[], cwd="/",
                           env=harness.sanitizer_env())
        o = json.loads(r.stdout.decode())
        self.assertEqual(r.returncode, STATUS_ATTENTION, o)
        self.assertEqual(o["master"]["state"], "unknown", o)
        self.assertTrue(any(a.startswith("cannot read master's status "
                                         "file") for a in o["attention"]),
                        o)
        self.assertNotIn("master is not running", o["attention"])

    def test_restart_loop(self):
        self.wait_daemons()
        last = None
        for _ in range(3):
            deadline = time.time() + 15
            while True:
                pids = self.suite.pids_of("qmgr")
                if pids and pids[0] != last:
                    break
                if time.time() > deadline:
                    self.fail("qmgr not restarted\n" +
                              self.suite.log_tail())
                time.sleep(0.1)
            last = pids[0]
            os.kill(last, signal.SIGKILL)
        deadline = time.time() + 10
        while True:
            rc, o = self.status_json()
            loop = [a for a in o["attention"]
                    if a.startswith("qmgr is restarting in a loop")]
            if loop or time.time() > deadline:
                break
            time.sleep(0.2)
        self.assertTrue(loop, o)
        self.assertEqual(rc, STATUS_ATTENTION, o)
        q = [d for d in o["daemons"] if d["name"] == "qmgr"][0]
        self.assertGreaterEqual(q["restarts"], 3, q)
        self.assertGreaterEqual(q["fails"], 3, q)
        self.assertIn("qmgr is restarting in a loop",
                      self.status().stdout.decode())


class StatusCertTest(PetrelCase):
    """The harness's certificate is good for 2 days: an attention line."""

    def test_certificate_expiring(self):
        r = self.suite.relayctl("status", "-j", check=False)
        o = json.loads(r.stdout.decode())
        cert = self.suite.config["tls"]["certificate"]
        lines = [a for a in o["attention"]
                 if a.startswith("certificate %s expires in" % cert)]
        self.assertEqual(len(lines), 1, o)
        self.assertLessEqual(o["certificates"][0]["days_left"], 2)
        self.assertEqual(r.returncode, STATUS_ATTENTION, o)
        self.assertIs(o["ok"], False)
        out = self.suite.relayctl("status", check=False).stdout.decode()
        self.assertIn("attention:\n  - certificate %s expires in" % cert,
                      out)


class StatusWebhookTest(WebhookCase):
    """With webhooks: webhookd is listed, the counts come from its delivery
    log, and an endpoint that keeps failing shows as a backlog."""

    receivers = ({"fail_first": 100000},)

    def test_evlog_and_backlog(self):
        self.capture.add_rcpt_rule("451 4.7.1 try later")
        tok = unique("stwh")
        qid = self.submit(make_message(tok))
        self.suite.wait_delivery(qid, "rcpt@example.org", "deferred",
                                 timeout=20)
        deadline = time.time() + 20
        while True:
            r = self.suite.relayctl("status", "-j", check=False)
            o = json.loads(r.stdout.decode())
            act = o["activity"]
            if (act["source"] == "evlog" and
                    act["last_5m"]["deferred"] >= 1 and
                    (o["webhooks"] or {}).get("pending", 0) >= 1):
                break
            if time.time() > deadline:
                self.fail("status -j: %r\n%s" % (o, self.suite.log_tail()))
            time.sleep(0.3)
        self.assertIn("webhookd", [d["name"] for d in o["daemons"]
                                   if d["pid"] > 0])
        self.assertEqual(act["top_deferred"][0]["destination"],
                         "example.org")
        out = self.suite.relayctl("status", check=False).stdout.decode()
        self.assertIn("activity (from evlog", out)
        self.assertRegex(out, r"webhooks: [1-9]\d* pending, 0 dead")


# Every subcommand (and sub-subcommand) relayctl has: each --help prints
# usage on stdout and exits 0, without a configuration.
HELP_LINES = [
    [], ["status"], ["user"], ["domain"], ["suppression"], ["bounce"],
    ["log"], ["webhook"], ["events"], ["shaping"],
    ["user", "add"], ["user", "set"], ["user", "show"], ["user", "list"],
    ["user", "rotate"], ["user", "disable"], ["user", "enable"],
    ["user", "del"],
    ["domain", "add"], ["domain", "list"], ["domain", "show"],
    ["domain", "del"], ["domain", "rotate"], ["domain", "check"],
    ["suppression", "list"], ["suppression", "show"],
    ["suppression", "add"], ["suppression", "del"],
    ["suppression", "import"], ["suppression", "export"],
    ["bounce", "classify"],
    ["log", "search"], ["log", "show"], ["log", "export"],
    ["events", "list"], ["events", "show"], ["events", "replay"],
    ["shaping", "show"],
    ["webhook", "keygen"],
]


class HelpTest(unittest.TestCase):

    def run_relayctl(self, args):
        return harness.relayctl_without_config(args)

    def test_every_help(self):
        for words in HELP_LINES:
            for flag in ("--help", "-h"):
                with self.subTest(words=words, flag=flag):
                    r = self.run_relayctl(words + [flag])
                    self.assertEqual(r.returncode, 0,
                                     "relayctl %s %s: %r" % (
                                         " ".join(words), flag, r.stderr))
                    self.assertTrue(r.stdout.startswith(b"usage: relayctl"),
                                    r.stdout)

    def test_global_help_lists_every_command(self):
        out = self.run_relayctl(["--help"]).stdout.decode()
        for cmd in ("status", "user", "domain", "suppression", "bounce",
                    "log", "webhook", "events", "shaping"):
            self.assertRegex(out, r"relayctl .*\b%s\b" % cmd)

    def test_no_command_is_usage_error(self):
        r = self.run_relayctl([])
        self.assertEqual(r.returncode, 2)
        self.assertEqual(r.stdout, b"")


if __name__ == "__main__":
    unittest.main()
