"""test_dsn.py - delivery reports end to end: qmgr, bounce, the queue.

A recipient refused for good gets its sender one RFC 3464 report, made by
the real bounce daemon, queued like any message and delivered (here to the
capture server, the next hop of every domain), parsed by two parsers; the
null sender gets none; NOTIFY decides; a crash between the failure and
the report's commit loses no report.
"""

import email
import os
import signal
import time
import unittest

from harness import QID_RE, PetrelCase, connect, login_plain, \
    make_message, send, unique
import dsn_check

SENDER = "app@example.com"


def is_report(t):
    return t.mail_from == "" and SENDER in t.rcpt_tos


class ReportCase(PetrelCase):

    def reports(self, token=None):
        return [t for t in self.capture.all_transactions() if is_report(t)
                and (token is None or token.encode() in t.data)]

    def wait_report(self, token, timeout=30):
        got = self.capture.wait_for_messages(
            1, timeout, match=lambda t: is_report(t) and
            token.encode() in t.data)
        if not got:
            self.fail("no report mentioning %s reached the sender within "
                      "%ds\n%s" % (token, timeout, self.suite.log_tail()))
        return got[0]

    def wait_gone(self, qid, timeout=20):
        deadline = time.time() + timeout
        while time.time() < deadline:
            if not [m for m in self.suite.relayq_json()
                    if m.get("queue_id") == qid]:
                return
            time.sleep(0.2)
        self.fail("%s still queued\n%s" % (qid, self.suite.log_tail()))

    def check_report(self, t, action, rcpts):
        """Parses with both parsers (dsn_check: they must agree)."""
        got = dsn_check.both(t.data)
        self.assertEqual(got["content_type"], "multipart/report", got)
        self.assertEqual(got["report_type"], "delivery-status", got)
        self.assertEqual(got["per_message"]["reporting-mta"],
                         "dns; petrel.test", got)
        finals = [r["final-recipient"].split(";", 1)[1].strip().lower()
                  for r in got["recipients"]]
        self.assertEqual(sorted(finals), sorted(r.lower() for r in rcpts),
                         got)
        for r in got["recipients"]:
            self.assertEqual(r["action"], action, got)
        return got


class FailureReportTest(ReportCase):

    def test_550_at_rcpt_makes_one_report(self):
        tok = unique("dsn550")
        bad = "nobody-%s@example.org" % tok
        self.capture.add_rcpt_rule(
            "550 5.1.1 The email account that you tried to reach does "
            "not exist.", address=bad)
        qid = self.submit(make_message(tok, to=bad), rcpts=[bad])
        t = self.wait_report(tok)
        got = self.check_report(t, "failed", [bad])
        r = got["recipients"][0]
        self.assertEqual(r["status"], "5.1.1", got)
        self.assertTrue(r["diagnostic-code"].startswith("smtp;"), got)
        self.assertIn("550 5.1.1 The email account", r["diagnostic-code"])
        self.assertIn("127.0.0.1", r.get("remote-mta", ""), got)
        self.assertEqual(r.get("x-petrel-bounce-class"), "bad-mailbox", got)
        # The original's headers are returned (RET not given).
        self.assertEqual(got["attached_subject"], tok, got)
        self.assertEqual(got["attached_full"], 0, got)
        self.assertIn(bad, got["text"], got)
        # A boundary nobody can guess (random, not the host name), within
        # RFC 2046's 70 characters.
        m = email.message_from_bytes(t.data)
        b = m.get_boundary()
        self.assertLessEqual(len(b), 70, b)
        self.assertNotIn("petrel.test", b)
        self.assertRegex(b, r"\.[0-9a-f]{16}/")
        # One report only, and the original is gone once it is made.
        self.wait_gone(qid)
        time.sleep(1.5)
        self.assertEqual(len(self.reports(tok)), 1)
        self.assertRegex(self.suite.log(), r"%s: sender non-delivery "
                         r"notification: [0-9A-F]+" % qid)

    def test_554_after_data_makes_a_report(self):
        tok = unique("dsn554")
        rcpt = "content-%s@example.org" % tok
        self.capture.add_data_rule("554 5.6.0 Message content rejected",
                                   times=1)
        qid = self.submit(make_message(tok, to=rcpt), rcpts=[rcpt])
        t = self.wait_report(tok)
        got = self.check_report(t, "failed", [rcpt])
        self.assertEqual(got["recipients"][0]["status"], "5.6.0")
        self.assertIn("554 5.6.0", got["recipients"][0]["diagnostic-code"])
        self.wait_gone(qid)

    def test_null_sender_gets_no_report(self):
        tok = unique("dsnnull")
        bad = "nobody-%s@example.org" % tok
        self.capture.add_rcpt_rule("550 5.1.1 no such user", address=bad)
        user, pw = self.ensure_user()
        c = connect(self.suite)
        try:
            login_plain(c, user, pw)
            qid = send(c, "", [bad], make_message(tok, to=bad))
        finally:
            c.quit()
        self.suite.wait_delivery(qid, bad, "bounced", timeout=20)
        self.wait_gone(qid)
        time.sleep(1.5)
        self.assertEqual([t for t in self.capture.all_transactions()
                          if tok.encode() in t.data and t.mail_from == ""
                          and bad not in t.rcpt_tos], [])

    def test_notify_never_and_success(self):
        tok = unique("dsnnotify")
        never = "never-%s@example.org" % tok
        ok = "ok-%s@example.org" % tok
        self.capture.add_rcpt_rule("550 5.1.1 no such user", address=never)
        user, pw = self.ensure_user()
        c = connect(self.suite)
        try:
            login_plain(c, user, pw)
            code, _ = c.mail(SENDER, ["RET=HDRS", "ENVID=QQ314159"])
            self.assertEqual(code, 250)
            self.assertEqual(c.rcpt(never, ["NOTIFY=NEVER"])[0], 250)
            self.assertEqual(c.rcpt(ok, ["NOTIFY=SUCCESS,FAILURE",
                                         "ORCPT=rfc822;" + ok])[0], 250)
            code, _ = c.data(make_message(tok, to=ok))
            self.assertEqual(code, 250)
        finally:
            c.quit()
        # The capture server offers no DSN: we report the success.
        t = self.wait_report(tok)
        got = self.check_report(t, "relayed", [ok])
        self.assertEqual(got["per_message"]["original-envelope-id"],
                         "QQ314159", got)
        self.assertEqual(got["recipients"][0]["original-recipient"],
                         "rfc822; " + ok, got)
        # Nothing for the NOTIFY=NEVER recipient (check_report saw only
        # the other), and no second report.
        time.sleep(2)
        self.assertEqual(len(self.reports(tok)), 1)


class DsnNextHopTest(ReportCase):
    """A next hop that offers DSN owes NOTIFY=SUCCESS's report itself."""

    def setUp(self):
        super().setUp()
        self.capture.dsn = True

    def test_success_passed_on_not_reported(self):
        tok = unique("dsnpassed")
        ok = "ok-%s@example.org" % tok
        user, pw = self.ensure_user()
        c = connect(self.suite)
        try:
            login_plain(c, user, pw)
            self.assertEqual(c.mail(SENDER)[0], 250)
            self.assertEqual(c.rcpt(ok, ["NOTIFY=SUCCESS"])[0], 250)
            code, resp = c.data(make_message(tok, to=ok))
            self.assertEqual(code, 250)
        finally:
            c.quit()
        t = self.wait_arrival(tok)[0]
        self.assertIn("NOTIFY=SUCCESS", t.rcpt_params[0])
        qid = QID_RE.search(resp.decode()).group(1)
        self.wait_gone(qid)
        time.sleep(1.5)
        self.assertEqual(self.reports(tok), [])


class CrashReportTest(ReportCase):
    """A report owed when everything is killed is made after restart."""

    def test_kill9_between_failure_and_report(self):
        tok = unique("dsncrash")
        bad = "gone-%s@example.org" % tok
        self.capture.add_rcpt_rule("550 5.1.1 no such user", address=bad)
        # Hold bounce so the failure is recorded but no report is made.
        bounces = self.suite.pids_of("bounce")
        self.assertTrue(bounces, self.suite.pids())
        for pid in bounces:
            os.kill(pid, signal.SIGSTOP)
        try:
            qid = self.submit(make_message(tok, to=bad), rcpts=[bad])
            self.suite.wait_accounting(
                lambda o: o.get("event") == "bounced" and
                o.get("queue_id") == qid, what="bounced event")
            time.sleep(0.5)
            self.assertEqual(self.reports(tok), [])
        finally:
            self.suite.kill9()
        self.suite.start()
        t = self.wait_report(tok, timeout=40)
        self.check_report(t, "failed", [bad])
        self.wait_gone(qid)


class DsnOffTest(ReportCase):

    def test_credential_with_reports_off(self):
        tok = unique("dsnoff")
        bad = "nobody-%s@example.org" % tok
        self.capture.add_rcpt_rule("550 5.1.1 no such user", address=bad)
        self.ensure_user()
        self.suite.relayctl("user", "set", self.user, "--dsn", "off")
        qid = self.submit(make_message(tok, to=bad), rcpts=[bad])
        self.suite.wait_delivery(qid, bad, "bounced", timeout=20)
        self.wait_gone(qid)
        time.sleep(1.5)
        self.assertEqual(self.reports(tok), [])


class DelayWarningTest(ReportCase):
    overrides = {"bounce": {"delay_warning": "2s"}}

    def test_one_delay_report(self):
        tok = unique("dsndelay")
        slow = "slow-%s@example.org" % tok
        rule = self.capture.add_rcpt_rule("451 4.2.2 mailbox full, try "
                                          "later", address=slow)
        qid = self.submit(make_message(tok, to=slow), rcpts=[slow])
        t = self.wait_report(tok, timeout=40)
        got = self.check_report(t, "delayed", [slow])
        self.assertEqual(got["recipients"][0]["status"], "4.2.2")
        self.assertTrue(got["recipients"][0].get("will-retry-until"), got)
        time.sleep(4)
        self.assertEqual(len(self.reports(tok)), 1)
        # Still retried, and delivered once the next hop takes it.
        rule.times = 0
        got = self.capture.wait_for_messages(
            1, 20, match=lambda t: t.mail_from == SENDER and
            slow in t.rcpt_tos)
        self.assertEqual(len(got), 1, self.suite.log_tail())
        self.wait_gone(qid)


if __name__ == "__main__":
    unittest.main()
