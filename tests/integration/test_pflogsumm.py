"""test_pflogsumm.py - Postfix's log tools read Petrel's log (issue 15).

The real daemons run a mix of mail: messages with several recipients
delivered, a recipient deferred by the next hop and then delivered, one
refused by the next hop with 550 5.1.1 (bounced, and its delivery report
delivered to the sender), one refused at RCPT by policy (the suppression
list). The daemons log to stderr (log.destination: stderr, captured by the
harness to master.log); a syslog daemon would put "Mon DD HH:MM:SS host "
in front of each line, so the test does that, and runs Debian's pflogsumm
with --syslog-name on the result. Its grand totals must be what the test
did: received, delivered, deferred, bounced, rejected, bytes received,
senders, recipients.

A second case sets log.syslog_name: other and checks that every daemon's
lines carry "other/<program>[pid]:" and none "petrel/", and that pflogsumm
needs --syslog-name=other to see them.
"""

import os
import re
import shutil
import signal
import smtplib
import subprocess
import time
import unittest

from harness import PetrelCase, connect, login_plain, make_message, send, \
    unique

PFLOGSUMM = shutil.which("pflogsumm") or "/usr/sbin/pflogsumm"
# A line a daemon wrote: "NAME/program[pid]: text".
DAEMON_LINE_RE = re.compile(r"^(?P<ident>[\w.\-/]+)\[\d+\]: ")
TOTAL_RE = re.compile(r"^\s*(\d+)([km]?)\s+(received|delivered|deferred|"
                      r"bounced|rejected|bytes received|senders|recipients)"
                      r"\b(.*)$")


def syslog_wrap(log_text, host="petrel.test"):
    """master.log's daemon lines as a syslog daemon writes them."""
    stamp = time.strftime("%b %e %H:%M:%S", time.localtime())
    out = []
    for line in log_text.splitlines():
        if DAEMON_LINE_RE.match(line):
            out.append("%s %s %s" % (stamp, host, line))
    return "\n".join(out) + "\n"


def pflogsumm_totals(text, syslog_name):
    """pflogsumm's grand totals: {name: int}, plus 'deferrals'."""
    r = subprocess.run([PFLOGSUMM, "--syslog-name=%s" % syslog_name],
                       input=text.encode(), stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, timeout=60)
    out = r.stdout.decode("utf-8", "replace")
    if r.returncode != 0:
        raise AssertionError("pflogsumm: exit %d\n%s\n%s" % (
            r.returncode, out, r.stderr.decode("utf-8", "replace")))
    totals = {}
    section = out.split("Grand Totals", 1)[-1].split("Per-", 1)[0]
    for line in section.splitlines():
        m = TOTAL_RE.match(line)
        if m is None or m.group(3) in totals:
            continue
        n = int(m.group(1)) * {"": 1, "k": 1024,
                               "m": 1024 * 1024}[m.group(2)]
        totals[m.group(3)] = n
        if m.group(3) == "deferred":
            d = re.search(r"\((\d+)\s+deferrals?\)", m.group(4))
            totals["deferrals"] = int(d.group(1)) if d else None
    return totals, out


class PflogsummCase(PetrelCase):

    def wait_sent_to(self, rcpt, timeout=30):
        deadline = time.time() + timeout
        while time.time() < deadline:
            d = self.suite.deliveries(rcpt=rcpt, status="sent")
            if d:
                return d
            time.sleep(0.2)
        self.fail("no status=sent line for <%s>\n%s"
                  % (rcpt, self.suite.log_tail()))

    def wait_removed(self, qids, timeout=30):
        deadline = time.time() + timeout
        while time.time() < deadline:
            log = self.suite.log()
            if all(("%s: removed" % q) in log for q in qids):
                return
            time.sleep(0.2)
        self.fail("not all of %s removed\n%s" % (qids, self.suite.log_tail()))


@unittest.skipIf(shutil.which("pflogsumm") is None and
                 not os.path.exists(PFLOGSUMM),
                 "pflogsumm not installed (tests/deps.sh installs it)")
class PflogsummTest(PflogsummCase):

    def test_grand_totals_match_what_was_done(self):
        tok = unique("pfl")
        s1, s2 = "app-%s@example.com" % tok, "news-%s@example.com" % tok
        a = ["a%d-%s@example.org" % (i, tok) for i in range(3)]
        b = ["b%d-%s@example.org" % (i, tok) for i in range(2)]
        c = ["c%d-%s@example.org" % (i, tok) for i in range(2)]
        d_ok = "d0-%s@example.org" % tok
        dead = "dead-%s@example.net" % tok
        # b[0] deferred once, then delivered; c[0] refused for good.
        self.capture.add_rcpt_rule("450 4.2.1 mailbox busy, try later",
                                   address=b[0], times=1)
        self.capture.add_rcpt_rule("550 5.1.1 <%s>: no such user" % c[0],
                                   address=c[0])
        self.suite.relayctl("suppression", "add", dead)

        qa = self.submit(make_message(tok + " a", sender=s1, to=a[0]),
                         sender=s1, rcpts=a)
        qb = self.submit(make_message(tok + " b", sender=s1, to=b[0]),
                         sender=s1, rcpts=b)
        qc = self.submit(make_message(tok + " c", sender=s2, to=c[0]),
                         sender=s2, rcpts=c)
        # D: one recipient refused at RCPT by policy, the other taken.
        user, pw = self.ensure_user()
        conn = connect(self.suite)
        try:
            login_plain(conn, user, pw)
            self.assertEqual(conn.mail(s2)[0], 250)
            code, text = conn.rcpt(dead)
            self.assertEqual(code, 550, text)
            conn.rset()
            qd = send(conn, s2, [d_ok], make_message(tok + " d", sender=s2,
                                                     to=d_ok))
        finally:
            try:
                conn.quit()
            except (smtplib.SMTPException, OSError):
                pass

        for r in a + b + [c[1], d_ok]:
            self.wait_sent_to(r)
        self.suite.wait_delivery(qc, c[0], "bounced")
        self.assertTrue(self.suite.deliveries(qb, b[0], "deferred"))
        # The non-delivery report for C goes to its sender, s2.
        self.wait_sent_to(s2)
        self.wait_removed([qa, qb, qc, qd])

        log = self.suite.log()
        # qmgr, not smtpd, logs from=/size=/nrcpt=, once per message.
        for q, n in ((qa, 3), (qb, 2), (qc, 2), (qd, 1)):
            lines = [ln for ln in log.splitlines()
                     if "%s: from=<" % q in ln]
            self.assertEqual(len(lines), 1, lines)
            self.assertRegex(lines[0], r"^petrel/qmgr\[\d+\]: %s: from=<"
                             r"[^>]+>, size=\d+, nrcpt=%d \(queue active\)$"
                             % (q, n))
            self.assertRegex(log, r"petrel/smtpd\[\d+\]: %s: client=" % q)
            self.assertRegex(log, r"petrel/smtpd\[\d+\]: %s: message-id="
                             r"<[^>]+@client\.test>" % q)
            self.assertRegex(log, r"petrel/qmgr\[\d+\]: %s: removed" % q)
        # The report's own line, in Postfix's bounce shape.
        self.assertRegex(log, r"petrel/bounce\[\d+\]: %s: sender "
                         r"non-delivery notification: [0-9A-Za-z]+" % qc)
        self.assertRegex(log, r"petrel/smtpd\[\d+\]: NOQUEUE: reject: RCPT "
                         r"from unknown\[127\.0\.0\.1\]: 550 5\.\d\.\d .*; "
                         r"from=<%s> to=<%s> proto=ESMTP helo=<[^>]*>"
                         % (re.escape(s2), re.escape(dead)))
        # Every daemon line carries the syslog name.
        idents = {DAEMON_LINE_RE.match(ln).group("ident")
                  for ln in log.splitlines() if DAEMON_LINE_RE.match(ln)}
        for i in idents:
            self.assertTrue(i.startswith("petrel/"), idents)
        for prog in ("master", "smtpd", "qmgr", "smtp", "bounce"):
            self.assertIn("petrel/" + prog, idents)

        # What the test did, as bytes: the accepted events' sizes.
        sizes = {o["queue_id"]: o["size"] for o in self.suite.accounting()
                 if o.get("event") == "accepted"}
        for q in (qa, qb, qc, qd):
            self.assertIn(q, sizes)
        want_bytes = sum(sizes[q] for q in (qa, qb, qc, qd))

        totals, out = pflogsumm_totals(syslog_wrap(log), "petrel")
        want = {
            "received": 4,              # A, B, C, D (not the report)
            # 3 + 2 + 1 + 1 recipients, and the report to s2
            "delivered": 8,
            "deferred": 1,              # B, once
            "deferrals": 1,
            "bounced": 1,               # c[0]
            "rejected": 1,              # dead, at RCPT
            "bytes received": want_bytes,
            "senders": 2,               # s1, s2
            # a*, b*, c[1], d_ok and s2 (the report's recipient)
            "recipients": 8,
        }
        got = {k: totals.get(k) for k in want}
        self.assertEqual(got, want, out)
        # Without the name, pflogsumm sees none of it.
        totals, out = pflogsumm_totals(syslog_wrap(log), "postfix")
        self.assertEqual(totals.get("received"), 0, out)


class QmgrRestartTest(PflogsummCase):
    """The from= line is qmgr's memory, not LMDB's: a new qmgr logs it
    again for a message it takes again (as Postfix does after a restart),
    once more only, and pflogsumm still counts the message once."""

    # Long enough for the deferred message to wait while qmgr restarts.
    overrides = {"queue": {"min_backoff": "3s", "max_backoff": "3s"}}

    def test_from_line_again_after_qmgr_restart(self):
        tok = unique("rst")
        rcpt = "r-%s@example.org" % tok
        self.capture.add_rcpt_rule("450 4.2.1 later", address=rcpt, times=1)
        qid = self.submit(make_message(tok, to=rcpt), rcpts=[rcpt])
        self.suite.wait_delivery(qid, rcpt, "deferred")
        old = self.suite.pids_of("qmgr")
        self.assertEqual(len(old), 1)
        os.kill(old[0], signal.SIGKILL)
        self.suite.wait_delivery(qid, rcpt, "sent", timeout=60)
        self.wait_removed([qid])
        log = self.suite.log()
        pids = re.findall(r"petrel/qmgr\[(\d+)\]: %s: from=<app@example"
                          r"\.com>, size=\d+, nrcpt=1 \(queue active\)"
                          % qid, log)
        self.assertEqual(len(pids), 2, log)
        self.assertEqual(pids[0], str(old[0]))
        self.assertNotEqual(pids[0], pids[1])
        totals, out = pflogsumm_totals(syslog_wrap(log), "petrel")
        self.assertEqual(totals.get("received"), 1, out)
        self.assertEqual(totals.get("delivered"), 1, out)
        self.assertEqual(totals.get("senders"), 1, out)


class SyslogNameTest(PflogsummCase):

    overrides = {"log": {"syslog_name": "other"}}

    def test_syslog_name_changes_every_prefix(self):
        tok = unique("name")
        rcpt = "n-%s@example.org" % tok
        qid = self.submit(make_message(tok, to=rcpt), rcpts=[rcpt])
        self.suite.wait_delivery(qid, rcpt, "sent")
        self.wait_removed([qid])
        log = self.suite.log()
        idents = {DAEMON_LINE_RE.match(ln).group("ident")
                  for ln in log.splitlines() if DAEMON_LINE_RE.match(ln)}
        for prog in ("master", "smtpd", "qmgr", "smtp"):
            self.assertIn("other/" + prog, idents)
        self.assertFalse([i for i in idents if i.startswith("petrel")],
                         idents)
        self.assertRegex(log, r"other/qmgr\[\d+\]: %s: from=<app@example"
                         r"\.com>, size=\d+, nrcpt=1 \(queue active\)" % qid)
        if shutil.which("pflogsumm") or os.path.exists(PFLOGSUMM):
            totals, out = pflogsumm_totals(syslog_wrap(log), "other")
            self.assertEqual(totals.get("received"), 1, out)
            self.assertEqual(totals.get("delivered"), 1, out)
            totals, out = pflogsumm_totals(syslog_wrap(log), "petrel")
            self.assertEqual(totals.get("received"), 0, out)


if __name__ == "__main__":
    unittest.main()
