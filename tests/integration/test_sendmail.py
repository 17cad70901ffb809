"""test_sendmail.py - sendmail(1): local programs hand mail to Petrel.

Real clients on the relay host talk to the real daemons through
<queue_directory>/public/submit: a cron-style `sendmail -t -i` pipe, PHP's
mail() (Debian's php-cli, sendmail_path pointing at build/sendmail),
mailx (Debian's s-nail, its `mta` variable pointing at ours) and
`sendmail -bs`. smtpd names the caller by its peer credentials and runs
the session as local_submission.credential: the messages reach the
capture server DKIM-signed, with the accepted event naming the credential,
and the credential's domain list applies. A local user not in
local_submission.users is refused with EX_NOPERM (77). mailq, newaliases
and -q are names and options of the same binary.
"""

import os
import pwd
import shutil
import signal
import subprocess
import time
import unittest

import harness
from harness import BUILD, PetrelCase, sanitizer_env, unique
from test_dkim import VERIFIER_MISSING, DkimHelpers, sig_headers, tags

SENDMAIL = os.path.join(BUILD, "sendmail")
CRED = "local"
EX_USAGE, EX_NOPERM = 64, 77


def me():
    return pwd.getpwuid(os.getuid()).pw_name


def other_user():
    """A local user other than the caller, to run sendmail as (root
    only), or None."""
    if os.geteuid() != 0:
        return None
    for name in ("nobody", "daemon"):
        try:
            return pwd.getpwnam(name)
        except KeyError:
            pass
    return None


class SendmailCase(DkimHelpers, PetrelCase):
    users = None        # local_submission.users; None: the caller

    @property
    def overrides(self):
        o = self.dkim_overrides()
        o["local_submission"] = {"users": self.users or [me()],
                                 "credential": CRED}
        return o

    def setUp(self):
        super().setUp()
        self.suite.relayctl("user", "add", CRED, "--password-stdin",
                            "--domains", "example.com",
                            input=b"local secret never used\n")
        self.add_domain("example.com", "--selector", "s1")
        self.env = dict(sanitizer_env(), PETREL_CONFIG=self.suite.conf_path)

    def sendmail(self, *args, input=b"", user=None, argv0=None, env=None):
        """Runs build/sendmail (or a link named argv0 to it)."""
        prog = SENDMAIL
        if user is not None:
            # A copy the user can reach when the tree is not (a clone
            # under /root, as in CI).
            prog = os.path.join(harness.daemon_dir(), "sendmail")
        if argv0 is not None:
            prog = os.path.join(self.tmp, argv0)
            if not os.path.exists(prog):
                os.symlink(SENDMAIL, prog)
        pre = None
        if user is not None:
            def pre():
                os.setgroups([])
                os.setgid(user.pw_gid)
                os.setuid(user.pw_uid)
        return subprocess.run([prog] + list(args), input=input,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              env=env or self.env, timeout=60,
                              preexec_fn=pre, cwd="/")

    def accepted(self, qid=None):
        return self.suite.wait_accounting(
            lambda e: e.get("event") == "accepted" and
            (qid is None or e.get("queue_id") == qid),
            what="accepted event")[-1]

    def check_signed(self, data):
        sigs = sig_headers(data)
        self.assertEqual(len(sigs), 1, data[:2000])
        t = tags(sigs[0])
        self.assertEqual((t.get("d"), t.get("s"), t.get("a")),
                         ("example.com", "s1", "rsa-sha256"), sigs[0])
        if not VERIFIER_MISSING:
            self.verify(data, self.record_for("example.com", "s1"))


class SendmailTest(SendmailCase):

    def test_cron_pipe_t_i(self):
        """cron's way: `sendmail -t -i`, recipients in the headers."""
        tok = unique("cron")
        msg = ("To: Ops <ops@example.org>, dev@example.org\n"
               "Cc: cc@example.org\n"
               "Bcc: hidden@example.org\n"
               "From: cron@example.com\n"
               "Subject: %s\n"
               "\n"
               "Output of a job.\n"
               ".\n"
               "..a line starting with dots\n" % tok).encode()
        r = self.sendmail("-t", "-i", input=msg)
        self.assertEqual(r.returncode, 0, r.stderr)
        t = self.wait_arrival(tok)[0]
        self.assertEqual(t.mail_from, "cron@example.com")
        self.assertEqual(sorted(x.lower() for x in t.rcpt_tos),
                         ["cc@example.org", "dev@example.org",
                          "hidden@example.org", "ops@example.org"])
        self.assertNotIn(b"hidden@example.org", t.data, "Bcc: was kept")
        # -i: the lone dot is text; dots survive the SMTP round trip.
        self.assertIn(b"\r\n.\r\n..a line starting with dots\r\n", t.body)
        self.assertTrue(t.header("Date"), "no Date: added")
        self.check_signed(t.data)
        ev = self.accepted()
        self.assertEqual(ev.get("sasl_username"), CRED, ev)
        self.assertEqual(ev.get("listener"), "public/submit", ev)
        self.assertIn("uid=%d, user=%s" % (os.getuid(), me()),
                      self.suite.log())

    def test_arguments_f_F_and_dot_ends_without_i(self):
        """Recipients as arguments, -f and -F; without -i a lone "."
        ends the message (sendmail's old rule)."""
        tok = unique("args")
        msg = ("Subject: %s\n\nfirst\n.\nnot sent\n" % tok).encode()
        r = self.sendmail("-f", "robot@example.com", "-F", "Job Robot",
                          "a@example.org, b@example.org", "root",
                          input=msg)
        self.assertEqual(r.returncode, 0, r.stderr)
        t = self.wait_arrival(tok)[0]
        self.assertEqual(t.mail_from, "robot@example.com")
        # cron's "root": unqualified, it gets @myhostname.
        self.assertEqual(sorted(t.rcpt_tos),
                         ["a@example.org", "b@example.org",
                          "root@petrel.test"])
        self.assertIn(t.header("From")[0],
                      ('Job Robot <robot@example.com>',
                       '"Job Robot" <robot@example.com>'))
        self.assertNotIn(b"not sent", t.data)
        self.check_signed(t.data)

    def test_credential_policy_applies(self):
        """The credential's sender domains: another domain is refused,
        EX_NOPERM, and nothing is queued."""
        r = self.sendmail("-f", "x@elsewhere.test", "rcpt@example.org",
                          input=b"Subject: no\n\nno\n")
        self.assertEqual(r.returncode, EX_NOPERM, r.stderr)
        self.assertIn(b"not allowed", r.stderr)
        self.assertEqual(self.suite.relayq_json(), [])

    def test_no_recipients_is_usage_error(self):
        r = self.sendmail(input=b"Subject: x\n\nbody\n")
        self.assertEqual(r.returncode, EX_USAGE, r.stderr)
        self.assertIn(b"no recipients", r.stderr)

    @unittest.skipUnless(shutil.which("php"), "php-cli not installed")
    def test_php_mail(self):
        tok = unique("php")
        code = ('$ok = mail("rcpt@example.org", "%s", "Hello from PHP.", '
                '"From: Web App <web@example.com>"); exit($ok ? 0 : 3);'
                % tok)
        r = subprocess.run(
            ["php", "-n", "-d", "sendmail_path=%s -t -i" % SENDMAIL,
             "-r", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            env=self.env, timeout=60)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        t = self.wait_arrival(tok)[0]
        # No -f from PHP: the envelope sender is From:'s address.
        self.assertEqual(t.mail_from, "web@example.com")
        self.assertEqual(t.rcpt_tos, ["rcpt@example.org"])
        self.check_signed(t.data)
        self.assertEqual(self.accepted().get("sasl_username"), CRED)

    @unittest.skipUnless(shutil.which("s-nail"), "s-nail not installed")
    def test_mailx(self):
        """Debian's s-nail (mailx), its mta variable pointing at ours."""
        tok = unique("mailx")
        r = subprocess.run(
            ["s-nail", "-:/", "-S", "mta=%s" % SENDMAIL, "-s", tok,
             "-r", "mailx@example.com", "rcpt@example.org"],
            input=b"Hello from mailx.\n", stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, env=self.env, timeout=60)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        t = self.wait_arrival(tok)[0]
        self.assertEqual(t.mail_from, "mailx@example.com")
        self.assertEqual(t.rcpt_tos, ["rcpt@example.org"])
        self.assertIn(b"Hello from mailx.", t.body)
        self.check_signed(t.data)

    def test_bs_smtp_on_stdio(self):
        tok = unique("bs")
        dialogue = ("EHLO client.test\r\n"
                    "MAIL FROM:<bs@example.com>\r\n"
                    "RCPT TO:<rcpt@example.org>\r\n"
                    "DATA\r\n"
                    "From: bs@example.com\r\nTo: rcpt@example.org\r\n"
                    "Subject: %s\r\n\r\nbody\r\n"
                    ".\r\n"
                    "QUIT\r\n" % tok).encode()
        r = self.sendmail("-bs", input=dialogue)
        self.assertEqual(r.returncode, 0, r.stderr)
        out = r.stdout.decode()
        self.assertTrue(out.startswith("220 "), out)
        self.assertIn("250 2.0.0 Ok: queued as", out)
        self.assertIn("221 ", out)
        t = self.wait_arrival(tok)[0]
        self.assertEqual(t.mail_from, "bs@example.com")
        self.check_signed(t.data)

    def test_mailq_q_newaliases(self):
        r = self.sendmail(argv0="newaliases")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn(b"no aliases", r.stdout)
        # mailq and -bp are relayq's listing; -q its flush.
        for args, name in (((), "mailq"), (("-bp",), None)):
            r = self.sendmail(*args, argv0=name)
            self.assertEqual(r.returncode, 0, r.stderr)
            want = self.suite.relayq().stdout
            self.assertEqual(r.stdout, want)
        r = self.sendmail("-q")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stdout, self.suite.relayq("-f").stdout)

    def test_help(self):
        r = self.sendmail("--help")
        self.assertEqual(r.returncode, 0)
        self.assertIn(b"usage: sendmail", r.stdout)

    @unittest.skipUnless(other_user(), "needs root to run as another user")
    def test_other_user_refused(self):
        """A user not in local_submission.users: 554 5.7.1 in the
        greeting, EX_NOPERM, a clear message, nothing queued."""
        r = self.sendmail("rcpt@example.org", input=b"Subject: x\n\nx\n",
                          user=other_user())
        self.assertEqual(r.returncode, EX_NOPERM, r.stderr)
        self.assertIn(b"is not allowed to submit mail", r.stderr)
        self.assertIn(other_user().pw_name.encode(), r.stderr)
        self.assertEqual(self.suite.relayq_json(), [])


class SendmailRefusedTest(SendmailCase):
    """The caller is not in the list: refused, whoever runs the tests."""
    users = ["petrel-not-a-user"]

    def test_refused(self):
        r = self.sendmail("rcpt@example.org", input=b"Subject: x\n\nx\n")
        self.assertEqual(r.returncode, EX_NOPERM, r.stderr)
        self.assertIn(b"Local user %s is not allowed to submit mail"
                      % me().encode(), r.stderr)
        r = self.sendmail("-bs", input=b"QUIT\r\n")
        self.assertEqual(r.returncode, EX_NOPERM, r.stderr)
        self.assertTrue(r.stdout.startswith(b"554 5.7.1"), r.stdout)
        self.assertIn("not in local_submission.users", self.suite.log())
        self.assertEqual(self.suite.relayq_json(), [])


def _www_data():
    try:
        return pwd.getpwnam("www-data")
    except KeyError:
        return None


@unittest.skipUnless(os.geteuid() == 0 and _www_data() and
                     shutil.which("php"),
                     "needs root, the www-data user and php-cli")
class SendmailWwwDataTest(SendmailCase):
    """PHP's mail() as www-data, as under Apache or PHP-FPM, and as the
    Debian package's local_submission (users: [root, www-data]) maps it
    (README "Installing the Debian package"): run with the user's own
    uid, not root's, it gets the credential's policy and signature."""
    users = ["root", "www-data"]

    def test_php_mail_as_www_data(self):
        tok = unique("wwwdata")
        prog = os.path.join(harness.daemon_dir(), "sendmail")
        code = ('$ok = mail("rcpt@example.org", "%s", "Hello from PHP.", '
                '"From: Web App <app@example.com>"); exit($ok ? 0 : 3);'
                % tok)
        r = subprocess.run(
            ["setpriv", "--reuid=www-data", "--regid=www-data",
             "--clear-groups", "php", "-n", "-d",
             "sendmail_path=%s -t -i" % prog, "-r", code],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=self.env,
            timeout=60, cwd="/")
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        t = self.wait_arrival(tok)[0]
        self.assertEqual(t.mail_from, "app@example.com")
        self.check_signed(t.data)
        self.assertEqual(self.accepted().get("sasl_username"), CRED)
        # smtpd named the caller by its uid: www-data, not root.
        self.assertRegex(self.suite.log(), r"uid=%d, user=www-data, pid=\d+, "
                         r"sasl_username=%s" % (_www_data().pw_uid, CRED))


class SendmailOffTest(PetrelCase):
    """Without local_submission: no socket, and sendmail says why; a
    reload that sets it opens the socket (master's reload path)."""

    def test_no_socket(self):
        self.assertFalse(os.path.exists(os.path.join(
            self.suite.queue_dir, "public", "submit")))
        r = subprocess.run([SENDMAIL, "-C", self.suite.conf_path,
                            "rcpt@example.org"], input=b"x\n",
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           env=sanitizer_env(), timeout=30)
        self.assertEqual(r.returncode, 69, r.stderr)   # EX_UNAVAILABLE
        self.assertIn(b"local_submission.users", r.stderr)

    def test_enabled_by_reload(self):
        self.suite.relayctl("user", "add", CRED, "--password-stdin",
                            input=b"local secret never used\n")
        self.suite.config["local_submission"] = {"users": [me()],
                                                 "credential": CRED}
        self.suite.write_config()
        os.kill(self.suite.proc.pid, signal.SIGHUP)
        sock = os.path.join(self.suite.queue_dir, "public", "submit")
        deadline = time.time() + 20
        tok = unique("reload")
        while True:
            r = subprocess.run([SENDMAIL, "-C", self.suite.conf_path, "-i",
                                "rcpt@example.org"],
                               input=("Subject: %s\n\nx\n" % tok).encode(),
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               env=sanitizer_env(), timeout=30)
            if r.returncode == 0 or time.time() > deadline:
                break
            time.sleep(0.2)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(os.stat(sock).st_mode & 0o777, 0o666)
        self.assertEqual(os.stat(os.path.dirname(sock)).st_mode & 0o777,
                         0o755)
        self.wait_arrival(tok)


if __name__ == "__main__":
    unittest.main()
