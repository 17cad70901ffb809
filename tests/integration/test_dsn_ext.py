"""test_dsn_ext.py - the ESMTP DSN extension (RFC 3461) end to end.

smtpd advertises DSN and checks RET, ENVID, NOTIFY and ORCPT (a malformed
one gets 501 5.5.4 and the transaction goes on as before it); the queue
file's envelope holds them exactly as received; smtp passes them on to a
next hop that offers DSN (and an ORCPT made from the address where the
client gave none, as Postfix does) and sends none of them to one that does
not; relayctl user --dsn off marks the credential's messages Q=1.
"""

import json
import smtplib
import unittest

from harness import (PetrelCase, connect, login_plain, make_message,
                     queue_file, unique)


class DsnCase(PetrelCase):
    """Helpers: an authenticated session, a transaction with parameters."""

    def session(self):
        user, pw = self.ensure_user()
        c = connect(self.suite)
        login_plain(c, user, pw)
        self.addCleanup(self._quit, c)
        return c

    @staticmethod
    def _quit(c):
        try:
            c.quit()
        except (smtplib.SMTPException, OSError):
            pass

    def transaction(self, tok, mail_params, rcpts):
        """MAIL with mail_params, RCPT for each (address, params), DATA
        with a message carrying tok; returns the queue id."""
        c = self.session()
        self.assertReply(c.docmd("MAIL", "FROM:<app@example.com> "
                                 + mail_params), 250, "2.1.0")
        for addr, params in rcpts:
            self.assertReply(c.docmd("RCPT", ("TO:<%s> %s"
                                              % (addr, params)).rstrip()),
                             250, "2.1.5")
        code, resp = c.data(make_message(tok))
        self.assertEqual(code, 250, resp)
        return resp.decode().rsplit(" ", 1)[-1]


class DsnSmtpdTest(DsnCase):
    # Many refusals in one session: each counts as a client error.
    overrides = {"limits": {"max_errors": 50}}

    def test_ehlo_advertises_dsn(self):
        c = connect(self.suite)
        self.addCleanup(self._quit, c)
        self.assertTrue(c.has_extn("dsn"), c.ehlo_resp)
        # Also before STARTTLS.
        c2 = connect(self.suite, starttls=False)
        self.addCleanup(self._quit, c2)
        self.assertTrue(c2.has_extn("dsn"), c2.ehlo_resp)

    def test_bad_parameters_refused_transaction_goes_on(self):
        tok = unique("dsnbad")
        c = self.session()
        bad_mail = [
            ("RET=BOTH", "RET"),
            ("RET=FULL RET=HDRS", "RET"),
            ("ENVID=", "ENVID"),
            ("ENVID=a+2bc", "ENVID"),        # lower-case hex
            ("ENVID=a=b", "ENVID"),
            ("ENVID=a+0D+0Ab", "ENVID"),     # decodes to CR LF
            ("ENVID=" + "x" * 101, "ENVID"),
            ("ENVID=a ENVID=b", "ENVID"),
        ]
        for params, name in bad_mail:
            self.assertReply(c.docmd("MAIL", "FROM:<app@example.com> "
                                     + params), 501,
                             "5.5.4 Bad %s parameter syntax" % name,
                             "MAIL ... " + params)
        # Nothing was started: RCPT still needs MAIL.
        self.assertReply(c.docmd("RCPT", "TO:<a@example.org>"), 503)
        self.assertReply(c.docmd("MAIL", "FROM:<app@example.com> RET=HDRS "
                                 "ENVID=env+2B1"), 250, "2.1.0")
        bad_rcpt = [
            ("NOTIFY=NEVER,SUCCESS", "NOTIFY"),
            ("NOTIFY=", "NOTIFY"),
            ("NOTIFY=SUCCESS,", "NOTIFY"),
            ("NOTIFY=ALWAYS", "NOTIFY"),
            ("NOTIFY=SUCCESS NOTIFY=FAILURE", "NOTIFY"),
            ("ORCPT=bob@example.org", "ORCPT"),
            ("ORCPT=;bob@example.org", "ORCPT"),
            ("ORCPT=rfc822;", "ORCPT"),
            ("ORCPT=rfc(822);bob@example.org", "ORCPT"),
            ("ORCPT=rfc822;bob+2b@example.org", "ORCPT"),
            ("ORCPT=rfc822;b=ob@example.org", "ORCPT"),
            ("ORCPT=rfc822;" + "b" * 494, "ORCPT"),   # 501 bytes
            ("ORCPT=rfc822;a@b.c ORCPT=rfc822;a@b.c", "ORCPT"),
            # A good one does not save a bad one in the same command.
            ("NOTIFY=SUCCESS ORCPT=rfc822;a+2", "ORCPT"),
        ]
        for params, name in bad_rcpt:
            self.assertReply(c.docmd("RCPT", "TO:<bad-%s@example.org> %s"
                                     % (name.lower(), params)), 501,
                             "5.5.4 Bad %s parameter syntax" % name,
                             "RCPT ... " + params)
        # Unknown parameters keep their reply.
        self.assertReply(c.docmd("RCPT", "TO:<x@example.org> FOO=1"), 555)
        self.assertReply(c.docmd("RCPT", "TO:<good@example.org> "
                                 "NOTIFY=failure,delay ORCPT=rfc822;"
                                 + "g" * 493), 250, "2.1.5")
        code, resp = c.data(make_message(tok))
        self.assertEqual(code, 250, resp)
        got = self.wait_arrival(tok)
        self.assertEqual(got[0].rcpt_tos, ["good@example.org"])

    def test_queue_file_holds_parameters(self):
        tok = unique("dsnq")
        self.capture.add_rcpt_rule("451 4.3.0 not now")
        qid = self.transaction(tok, "RET=FULL ENVID=QQ314159+2Bx", [
            ("r1@example.org", "NOTIFY=SUCCESS,FAILURE "
             "ORCPT=rfc822;Bob+2B1@Example.org"),
            ("r2@example.org", ""),
            ("r3@example.org", "NOTIFY=never")])
        lines = queue_file(self.suite, qid)
        i = lines.index("R=r1@example.org")
        self.assertEqual(lines[i:i + 4], [
            "R=r1@example.org", "N=6", "O=rfc822;Bob+2B1@Example.org",
            "R=r2@example.org"], lines)
        i = lines.index("R=r3@example.org")
        self.assertEqual(lines[i + 1], "N=1", lines)
        self.assertIn("E=QQ314159+2Bx", lines)
        self.assertIn("F=full", lines)
        self.assertNotIn("Q=1", lines)

    def test_queue_file_without_parameters(self):
        tok = unique("dsnnone")
        self.capture.add_rcpt_rule("451 4.3.0 not now")
        qid = self.submit(make_message(tok))
        lines = queue_file(self.suite, qid)
        for p in ("N=", "O=", "E=", "F=", "Q="):
            self.assertEqual([x for x in lines if x.startswith(p)], [],
                             lines)


class DsnNextHopTest(DsnCase):
    """The next hop offers DSN: the parameters go along."""

    def setUp(self):
        super().setUp()
        self.capture.dsn = True

    def test_parameters_passed_on(self):
        tok = unique("dsnpass")
        qid = self.transaction(tok, "RET=HDRS ENVID=id+2B42", [
            ("r1@example.org", "NOTIFY=DELAY,SUCCESS "
             "ORCPT=rfc822;orig+2Bx@example.net"),
            ("r+2=x@example.org", "NOTIFY=NEVER"),
            ("r3@example.org", "ORCPT=x-local;abc"),
            ("r4@example.org", "")])
        t = self.wait_arrival(tok)[0]
        self.assertEqual(t.mail_params.split(),
                         ["SIZE=%d" % len(t.data), "BODY=8BITMIME",
                          "RET=HDRS", "ENVID=id+2B42"], t.mail_params)
        params = dict(zip(t.rcpt_tos, t.rcpt_params))
        self.assertEqual(params, {
            "r1@example.org":
                "NOTIFY=SUCCESS,DELAY ORCPT=rfc822;orig+2Bx@example.net",
            # No ORCPT given: one made from the address, in xtext.
            "r+2=x@example.org":
                "NOTIFY=NEVER ORCPT=rfc822;r+2B2+3Dx@example.org",
            "r3@example.org": "ORCPT=x-local;abc",
            "r4@example.org": "ORCPT=rfc822;r4@example.org",
        }, t)
        for r in t.rcpt_tos:
            self.suite.wait_delivery(qid, r, "sent")

    def test_plain_message_gets_orcpt_only(self):
        tok = unique("dsnplain")
        qid = self.submit(make_message(tok))
        t = self.wait_arrival(tok)[0]
        self.assertNotIn("RET=", t.mail_params)
        self.assertNotIn("ENVID=", t.mail_params)
        self.assertEqual(t.rcpt_params, ["ORCPT=rfc822;rcpt@example.org"])
        self.suite.wait_delivery(qid, "rcpt@example.org", "sent")


class DsnNotOfferedTest(DsnCase):
    """The next hop does not offer DSN: none of the parameters go."""

    def test_nothing_sent(self):
        tok = unique("dsnnot")
        qid = self.transaction(tok, "RET=FULL ENVID=abc", [
            ("r1@example.org", "NOTIFY=SUCCESS ORCPT=rfc822;r1@example.org")])
        t = self.wait_arrival(tok)[0]
        for p in ("RET=", "ENVID=", "NOTIFY=", "ORCPT="):
            self.assertNotIn(p, t.mail_params)
        self.assertEqual(t.rcpt_params, [""])
        self.suite.wait_delivery(qid, "r1@example.org", "sent")


class DsnCredentialTest(PetrelCase):
    """relayctl user --dsn on|off, and Q=1 on the credential's messages."""

    def test_user_dsn_roundtrip(self):
        self.ensure_user()
        show = json.loads(self.suite.relayctl("user", "show", self.user,
                                              "-j").stdout)
        self.assertIs(show["dsn"], True, show)
        self.suite.relayctl("user", "set", self.user, "--dsn", "off")
        show = json.loads(self.suite.relayctl("user", "show", self.user,
                                              "-j").stdout)
        self.assertIs(show["dsn"], False, show)
        text = self.suite.relayctl("user", "show", self.user).stdout.decode()
        self.assertIn("\ndsn: off\n", text)
        listing = [json.loads(x) for x in self.suite.relayctl(
            "user", "list", "-j").stdout.decode().splitlines()]
        self.assertEqual([(u["user"], u["dsn"]) for u in listing],
                         [(self.user, False)])
        line = self.suite.relayctl("user", "list").stdout.decode()
        # The fourth column (later ones, such as pool=, follow it).
        self.assertEqual(line.rstrip("\n").split("\t")[3], "dsn=off", line)
        self.suite.relayctl("user", "set", self.user, "--dsn=on")
        show = json.loads(self.suite.relayctl("user", "show", self.user,
                                              "-j").stdout)
        self.assertIs(show["dsn"], True, show)
        r = self.suite.relayctl("user", "set", self.user, "--dsn", "maybe",
                                check=False)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn(b"--dsn", r.stderr)
        self.suite.relayctl("user", "add", "quiet", "--dsn", "off",
                            "--password-stdin", input=b"pw\n")
        show = json.loads(self.suite.relayctl("user", "show", "quiet",
                                              "-j").stdout)
        self.assertIs(show["dsn"], False, show)

    def test_reports_off_marks_messages(self):
        self.capture.add_rcpt_rule("451 4.3.0 not now")
        self.ensure_user()
        qid_on = self.submit(make_message(unique("dsnon")))
        self.assertNotIn("Q=1", queue_file(self.suite, qid_on))
        self.suite.relayctl("user", "set", self.user, "--dsn", "off")
        qid_off = self.submit(make_message(unique("dsnoff")))
        self.assertIn("Q=1", queue_file(self.suite, qid_off))
        # Read afresh at each MAIL: on again applies to the next message.
        self.suite.relayctl("user", "set", self.user, "--dsn", "on")
        qid_again = self.submit(make_message(unique("dsnagain")))
        self.assertNotIn("Q=1", queue_file(self.suite, qid_again))


if __name__ == "__main__":
    unittest.main()
