"""test_bclass.py - bounce classification against the real daemons.

The capture server refuses a recipient with 550 5.1.1 (and defers one with
Yahoo's 421 [TSS04] text): smtp's log line carries "class=bad-mailbox,
bounce=hard" (and "class=policy-related, bounce=soft") after the reply, while a
sent line has neither. relayctl bounce classify gives the same answers from
the same rules, in text and JSON; and a broken rule file that the
configuration names stops master at start with its file and line, and
is refused on SIGHUP (the running configuration stays).
"""

import json
import os
import shutil
import signal
import tempfile
import time
import unittest

from harness import (PetrelCase, SetupError, Suite, bounce_classes,
                     make_message, unique)


class ClassifiedLogLineTest(PetrelCase):

    def test_550_511_is_bad_mailbox_hard(self):
        tok = unique("bclass")
        bad, good = "nosuch@example.org", "good@example.org"
        self.capture.add_rcpt_rule(
            "550 5.1.1 <nosuch@example.org>: Recipient address rejected: "
            "User unknown in virtual mailbox table", address=bad)
        qid = self.submit(make_message(tok, to=good), rcpts=[bad, good])
        b = self.suite.wait_delivery(qid, bad, "bounced")[0]
        self.assertEqual(b["dsn"], "5.1.1", b["line"])
        self.assertEqual(b["bclass"], "bad-mailbox", b["line"])
        self.assertEqual(b["bounce"], "hard", b["line"])
        self.assertIn("dsn=5.1.1, status=bounced (550 5.1.1 ", b["line"])
        self.assertTrue(b["line"].endswith(
            "), class=bad-mailbox, bounce=hard"), b["line"])
        s = self.suite.wait_delivery(qid, good, "sent")[0]
        self.assertIsNone(s["bclass"], s["line"])
        self.assertNotIn("class=", s["line"])
        self.assertNotIn("bounce=", s["line"])

    def test_421_tss04_is_policy_related_soft(self):
        tok = unique("bclass2")
        rcpt = "rcpt@example.org"
        self.capture.add_rcpt_rule(
            "421 4.7.0 [TSS04] Messages from 127.0.0.1 temporarily "
            "deferred due to unexpected volume or user complaints - "
            "4.16.55.1; see https://postmaster.yahooinc.com/error-codes",
            address=rcpt, times=1)
        qid = self.submit(make_message(tok, to=rcpt), rcpts=[rcpt])
        d = self.suite.wait_delivery(qid, rcpt, "deferred", timeout=20)[0]
        self.assertEqual(d["bclass"], "policy-related", d["line"])
        self.assertEqual(d["bounce"], "soft", d["line"])
        self.suite.wait_delivery(qid, rcpt, "sent", timeout=20)

    def test_unreachable_next_hop_is_no_answer_soft(self):
        rcpt = "rcpt@example.org"
        self.capture.stop()     # connections refused
        qid = self.submit(make_message(unique("bclass3"), to=rcpt),
                          rcpts=[rcpt])
        d = self.suite.wait_delivery(qid, rcpt, "deferred", timeout=20)[0]
        self.assertEqual(d["dsn"], "4.4.1", d["line"])
        self.assertEqual(d["bclass"], "no-answer-from-host", d["line"])
        self.assertEqual(d["bounce"], "soft", d["line"])


@unittest.skipIf(os.path.exists("/etc/petrel/bounce-classes.yaml"),
                 "the default rule file is installed here")
class MissingDefaultRulesTest(PetrelCase):
    """Without bounce.classes, the default file is missing here: smtp
    warns and classifies by the status code alone."""

    overrides = {"bounce": None}

    def test_missing_default_warns_and_codes_decide(self):
        tok = unique("bclass4")
        bad = "nosuch@example.org"
        self.capture.add_rcpt_rule("550 5.1.1 gone", address=bad)
        qid = self.submit(make_message(tok, to=bad), rcpts=[bad])
        b = self.suite.wait_delivery(qid, bad, "bounced")[0]
        self.assertEqual(b["bclass"], "bad-mailbox", b["line"])
        self.assertEqual(b["bounce"], "hard", b["line"])
        self.assertIn("bounce classification: "
                      "/etc/petrel/bounce-classes.yaml: cannot open: ",
                      self.suite.log())
        self.assertIn("classifying by status code only", self.suite.log())


class RelayctlClassifyTest(PetrelCase):

    def test_classify_text_and_json(self):
        r = self.suite.relayctl(
            "bounce", "classify", "550 5.1.1 The email account that you "
            "tried to reach does not exist. Please try double-checking the "
            "recipient's email address for typos or unnecessary spaces. "
            "- gsmtp")
        out = r.stdout.decode()
        self.assertIn("class: bad-mailbox\n", out)
        self.assertIn("bounce: hard\n", out)
        self.assertIn("rule: gmail-unknown-user (%s:" % bounce_classes(),
                      out)
        self.assertIn("suppresses: yes\n", out)

        r = self.suite.relayctl(
            "-j", "bounce", "classify", "421 4.7.28 [203.0.113.5 15] Our "
            "system has detected an unusual rate of unsolicited mail "
            "originating from your IP address.")
        o = json.loads(r.stdout.decode())
        self.assertEqual(o["class"], "policy-related", o)
        self.assertEqual(o["bounce"], "soft", o)
        self.assertEqual(o["dsn"], "4.7.28", o)
        self.assertEqual(o["code"], 421, o)
        self.assertFalse(o["suppresses"], o)
        self.assertTrue(o["rule"].startswith("gmail-rate-limit ("), o)

        # No rule: the code decides.
        r = self.suite.relayctl("bounce", "classify", "-j", "--dsn",
                                "5.2.2", "mailbox is dull")
        o = json.loads(r.stdout.decode())
        self.assertEqual(o["class"], "quota-issues", o)
        self.assertEqual(o["rule"], "RFC 3463 X.2.2", o)

    def test_classify_try_a_rule_file(self):
        path = os.path.join(self.tmp, "mine.yaml")
        with open(path, "w") as f:
            f.write("rules:\n  - name: acme-full\n    class: quota-issues\n"
                    "    match: 'ACME-FULL'\n")
        r = self.suite.relayctl("bounce", "classify", "--rules", path,
                                "550 5.1.1 acme-full")
        self.assertIn("rule: acme-full (%s:2)" % path, r.stdout.decode())
        with open(path, "w") as f:
            f.write("rules:\n  - name: x\n    class: other\n"
                    "    match: 'a(b'\n")
        r = self.suite.relayctl("bounce", "classify", "--rules", path,
                                "550 x", check=False)
        self.assertEqual(r.returncode, 1)
        self.assertIn("%s:4: rules[0].match: bad regular expression"
                      % path, r.stderr.decode())
        r = self.suite.relayctl("bounce", "classify", check=False)
        self.assertEqual(r.returncode, 2)
        r = self.suite.relayctl("bounce", "--help")
        self.assertIn("bounce classify", r.stdout.decode())


class BrokenRulesTest(PetrelCase):

    def test_broken_named_file_stops_master(self):
        tmp = tempfile.mkdtemp(prefix="petrel-it-")
        os.chmod(tmp, 0o755)
        self.addCleanup(shutil.rmtree, tmp, True)
        rules = os.path.join(tmp, "broken.yaml")
        with open(rules, "w") as f:
            f.write("rules:\n  - name: x\n    class: no-such-class\n"
                    "    match: x\n")
        os.chmod(rules, 0o644)
        other = Suite(tmp, self.capture.port,
                      {"bounce": {"classes": [rules, bounce_classes()]}})
        self.addCleanup(other.stop)
        with self.assertRaises(SetupError):
            other.start()
        deadline = time.time() + 10
        while other.alive() and time.time() < deadline:
            time.sleep(0.1)
        self.assertFalse(other.alive(), "master runs with a broken file")
        self.assertIn("%s:3: rules[0].class: unknown class "
                      "\"no-such-class\"" % rules, other.log())

    def test_broken_file_on_reload_keeps_running_configuration(self):
        self.ensure_user()
        pids = set(self.suite.pids())
        rules = os.path.join(self.tmp, "broken.yaml")
        with open(rules, "w") as f:
            f.write("rules:\n  - name: x\n    class: other\n"
                    "    match: 'a(b'\n")
        os.chmod(rules, 0o644)
        self.suite.config["bounce"] = {"classes": [rules]}
        self.suite.write_config()
        os.kill(self.suite.proc.pid, signal.SIGHUP)
        deadline = time.time() + 20
        while "keeping the running configuration" not in self.suite.log():
            if time.time() > deadline:
                self.fail("no refused reload:\n%s" % self.suite.log_tail())
            time.sleep(0.2)
        self.assertIn("%s:4: rules[0].match: bad regular expression"
                      % rules, self.suite.log())
        self.assertEqual(set(self.suite.pids()), pids,
                         "daemons were replaced after an invalid reload")
        tok = unique("kept")
        self.submit(make_message(tok))
        self.wait_arrival(tok)


if __name__ == "__main__":
    unittest.main()
