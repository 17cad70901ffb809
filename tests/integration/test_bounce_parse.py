"""test_bounce_parse.py - bounce(8)'s reports read by two MIME parsers.

The composer's unit suite (build/tests/check_bounce_dsn, built by `make
unit`) writes each report it composes into a directory when BOUNCE_DSN_OUT
names one: failed, delayed and relayed reports, several recipients, ENVID
and ORCPT, RET=FULL within and over bounce.size_limit, a missing original,
hostile reply text, 8-bit original headers. Each is parsed here with
Python's email package and with MIME-tools' MIME::Parser (dsn_check.py,
dsn_parse.pl); both must find the same structure and fields, Python's
parser no defects, and the fields must be the ones RFC 3464 asks for.
"""

import os
import shutil
import subprocess
import tempfile
import unittest

import dsn_check
from harness import BUILD

CHECK = os.path.join(BUILD, "tests", "check_bounce_dsn")


class BounceParse(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        if not os.access(CHECK, os.X_OK):
            raise AssertionError("%s not built (run `make unit`)" % CHECK)
        if not dsn_check.perl_available():
            raise AssertionError("perl's MIME::Parser is missing (Debian: "
                                 "libmime-tools-perl; `make deps`)")
        cls.dir = tempfile.mkdtemp(prefix="petrel-dsn-")
        env = dict(os.environ, BOUNCE_DSN_OUT=cls.dir, CK_FORK="yes")
        r = subprocess.run([CHECK], env=env, stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, timeout=120)
        if r.returncode != 0:
            shutil.rmtree(cls.dir, ignore_errors=True)
            raise AssertionError("check_bounce_dsn failed:\n%s"
                                 % r.stdout.decode(errors="replace"))

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.dir, ignore_errors=True)

    def report(self, name):
        with open(os.path.join(self.dir, name + ".eml"), "rb") as f:
            data = f.read()
        r = dsn_check.both(data)
        self.assertEqual(r["content_type"], "multipart/report")
        self.assertEqual(r["report_type"], "delivery-status")
        self.assertEqual(r["parts"][:2],
                         ["text/plain", "message/delivery-status"])
        self.assertEqual(r["per_message"]["reporting-mta"], "dns; relay.test")
        return r

    def test_failed_one(self):
        r = self.report("failed_one")
        self.assertEqual(r["parts"][2], "text/rfc822-headers")
        self.assertEqual(r["attached_subject"], "quarterly report")
        self.assertEqual(len(r["recipients"]), 1)
        rc = r["recipients"][0]
        self.assertEqual(rc["final-recipient"], "rfc822; bob@rcpt.example")
        self.assertEqual(rc["action"], "failed")
        self.assertEqual(rc["status"], "5.1.1")
        self.assertEqual(rc["remote-mta"], "dns; mx.rcpt.example")
        self.assertEqual(rc["diagnostic-code"],
                         "smtp; 550 5.1.1 <bob@rcpt.example>: Recipient "
                         "address rejected: User unknown in virtual "
                         "mailbox table")
        self.assertEqual(rc["x-petrel-bounce-class"], "bad-mailbox")
        self.assertIn("last-attempt-date", rc)
        self.assertNotIn("original-recipient", rc)
        self.assertIn("Arrival-Date".lower(), r["per_message"])
        self.assertIn("mailbox does not exist", r["text"])

    def test_several_envid_orcpt(self):
        r = self.report("failed_several")
        self.assertEqual(r["per_message"]["original-envelope-id"],
                         "QQ314159+x")
        self.assertEqual([x["final-recipient"] for x in r["recipients"]],
                         ["rfc822; bob@rcpt.example",
                          "rfc822; carol@rcpt.example",
                          "rfc822; dave@other.example"])
        self.assertEqual(r["recipients"][0]["original-recipient"],
                         "rfc822; Bob+Tag@rcpt.example")
        self.assertNotIn("original-recipient", r["recipients"][1])
        self.assertEqual([x["status"] for x in r["recipients"]],
                         ["5.1.1", "5.2.2", "5.4.1"])
        self.assertNotIn("remote-mta", r["recipients"][2])
        self.assertTrue(r["recipients"][2]["diagnostic-code"].startswith(
            "X-Petrel; connect to"))

    def test_delayed(self):
        r = self.report("delayed")
        rc = r["recipients"][0]
        self.assertEqual(rc["action"], "delayed")
        self.assertEqual(rc["status"], "4.2.2")
        self.assertTrue(rc["will-retry-until"].startswith(
            "Tue, 08 Dec 2026"))
        self.assertEqual(r["parts"][2], "text/rfc822-headers")

    def test_relayed(self):
        r = self.report("relayed")
        rc = r["recipients"][0]
        self.assertEqual(rc["action"], "relayed")
        self.assertEqual(rc["status"], "2.0.0")
        self.assertNotIn("will-retry-until", rc)

    def test_ret_full(self):
        r = self.report("ret_full")
        self.assertEqual(r["parts"][2], "message/rfc822")
        self.assertEqual(r["attached_full"], 1)
        self.assertEqual(r["attached_subject"], "quarterly report")
        r = self.report("ret_full_over")
        self.assertEqual(r["parts"][2], "text/rfc822-headers")
        self.assertIn("bounce.size_limit", r["text"])

    def test_missing_original(self):
        r = self.report("missing")
        self.assertEqual(len(r["parts"]), 2)
        self.assertIn("could not be read", r["text"])
        self.assertEqual(r["recipients"][0]["status"], "5.1.1")

    def test_hostile(self):
        for name in ("hostile", "hostile_nul"):
            r = self.report(name)
            self.assertEqual(len(r["recipients"]), 1)
            self.assertEqual(r["encodings"], ["7bit", "7bit", "8bit"])
            diag = r["recipients"][0]["diagnostic-code"]
            self.assertTrue(diag.startswith("smtp; 550 5.7.1"), diag)
            self.assertTrue(all(32 <= ord(c) < 127 for c in diag), diag)
            self.assertNotIn("x-injected", r["recipients"][0])
            self.assertEqual(r["attached_subject"],
                             "caf\u00e9 cr\u00e8me")

    def test_long_reply(self):
        r = self.report("long_reply")
        self.assertTrue(r["recipients"][0]["diagnostic-code"].endswith(
            "d2e1a72fcca58-123si456 - gsmtp"))


if __name__ == "__main__":
    unittest.main()
