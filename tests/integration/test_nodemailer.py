"""test_nodemailer.py - Node's nodemailer as the client.

nodemailer (the version pinned in package.json) is installed from npm into
tests/integration/node_modules by the first test that needs it
(`npm install --no-audit --no-fund`). Without node or npm on the PATH the
tests are skipped (Debian: apt-get install nodejs npm); a failed install is
an error. nodemailer_send.js sends one message described by a JSON object
on its standard input and prints the outcome as one JSON line.
"""

import json
import os
import shutil
import subprocess
import threading
import unittest

from harness import HERE, PetrelCase, sanitizer_env, unique

SENDER = os.path.join(HERE, "nodemailer_send.js")
NODE_MODULES = os.path.join(HERE, "node_modules")

_install_lock = threading.Lock()


def pinned_version():
    with open(os.path.join(HERE, "package.json")) as f:
        return json.load(f)["dependencies"]["nodemailer"]


def installed_version():
    try:
        with open(os.path.join(NODE_MODULES, "nodemailer",
                               "package.json")) as f:
            return json.load(f).get("version")
    except (OSError, ValueError):
        return None


def ensure_nodemailer():
    """Skips without node/npm; installs the pinned nodemailer if needed."""
    missing = [p for p in ("node", "npm") if shutil.which(p) is None]
    if missing:
        raise unittest.SkipTest(
            "%s not on the PATH: these tests need Node.js and npm "
            "(Debian: apt-get install nodejs npm)" % " and ".join(missing))
    with _install_lock:
        want = pinned_version()
        if installed_version() == want:
            return
        try:
            r = subprocess.run(
                ["npm", "install", "--no-audit", "--no-fund",
                 "--no-update-notifier"], cwd=HERE,
                stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT, timeout=300)
        except subprocess.TimeoutExpired:
            raise AssertionError("npm install in %s timed out" % HERE)
        out = r.stdout.decode("utf-8", "replace")
        if r.returncode != 0 or installed_version() != want:
            raise AssertionError(
                "npm install of nodemailer %s in %s failed (exit %d, "
                "installed %r):\n%s" % (want, HERE, r.returncode,
                                        installed_version(), out[-3000:]))


class NodemailerTest(PetrelCase):

    @classmethod
    def setUpClass(cls):
        ensure_nodemailer()

    def nodemailer(self, port, secure, password=None, subject="x"):
        user, pw = self.ensure_user()
        req = {"host": "127.0.0.1", "port": port, "secure": secure,
               "requireTLS": True, "user": user,
               "pass": pw if password is None else password,
               "from": "App <app@example.com>", "to": ["rcpt@example.org"],
               "subject": subject,
               "text": "Sent by nodemailer.\n.\nA lone dot above.\n"}
        try:
            r = subprocess.run(
                ["node", SENDER], input=json.dumps(req).encode(),
                stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=60,
                cwd=HERE, env=sanitizer_env())
        except subprocess.TimeoutExpired:
            self.fail("nodemailer_send.js timed out\n%s"
                      % self.suite.log_tail(20))
        out = r.stdout.decode("utf-8", "replace").strip().splitlines()
        err = r.stderr.decode("utf-8", "replace")
        try:
            res = json.loads(out[-1])
        except (IndexError, ValueError):
            self.fail("nodemailer_send.js: exit %d, no JSON result\n"
                      "stdout: %r\nstderr: %s" % (r.returncode, out, err))
        self.assertEqual(r.returncode, 0 if res.get("ok") else 1,
                         "exit %d for %r; stderr: %s" % (r.returncode, res,
                                                         err))
        return res

    def check_arrival(self, res, tok):
        self.assertTrue(res["ok"], "nodemailer failed: %r\n%s"
                        % (res, self.suite.log_tail(20)))
        self.assertRegex(res["response"],
                         r"^250 2\.0\.0 Ok: queued as [0-9A-Za-z]+")
        self.assertEqual(res["accepted"], ["rcpt@example.org"])
        qid = res["response"].rsplit(" ", 1)[1]
        t = self.wait_arrival(tok)[0]
        self.assertEqual(t.mail_from, "app@example.com")
        self.assertEqual([r.lower() for r in t.rcpt_tos],
                         ["rcpt@example.org"])
        recv = t.header("Received")[0]
        self.assertIn("with ESMTPSA", recv, recv)
        self.assertIn("authenticated user %s" % self.user, recv)
        self.assertIn("nodemailer.test", recv)
        self.assertIn(b"\r\n.\r\nA lone dot above.", t.body)
        self.suite.wait_delivery(qid, "rcpt@example.org", "sent")

    def test_require_tls_starttls_listener(self):
        tok = unique("nodemailer587")
        res = self.nodemailer(self.suite.submission_port, False,
                              subject=tok)
        self.check_arrival(res, tok)

    def test_implicit_tls_listener(self):
        tok = unique("nodemailer465")
        res = self.nodemailer(self.suite.smtps_port, True, subject=tok)
        self.check_arrival(res, tok)

    def test_wrong_password_refused(self):
        tok = unique("nodemailerbad")
        res = self.nodemailer(self.suite.submission_port, False,
                              password="not the password", subject=tok)
        self.assertFalse(res["ok"], res)
        self.assertEqual(res.get("code"), "EAUTH", res)
        self.assertEqual(res.get("responseCode"), 535, res)
        self.assertEqual(self.capture.all_transactions(), [])


if __name__ == "__main__":
    unittest.main()
