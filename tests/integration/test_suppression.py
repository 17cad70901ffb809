"""test_suppression.py - the suppression list: relayctl suppression and RCPT.

relayctl suppression round-trips a CSV of 100,000 addresses (import,
export, compare; the same through -j), add/show/del and a bad import line
that commits nothing. Against the real daemons: a suppressed address is
refused at RCPT with the exact 550 5.1.1 reply and a Postfix-style reject
line while another recipient of the same message is accepted and reaches
the capture server; a scoped entry applies to its sending domain only; del
lifts it; a list smtpd cannot read refuses nothing; suppression.action
accept does not refuse at RCPT.
"""

import csv
import io
import json
import os
import re
import smtplib
import time

from harness import (PetrelCase, connect, login_plain, make_message, unique)

CLI_SLOW = 300      # seconds for 100,000-line imports and exports

HEADER = ["address", "scope", "reason", "class", "since", "expires",
          "reply"]


def rows(n):
    """n CSV rows (header first) with every kind of field."""
    reasons = ["hard-bounce", "soft-bounces", "complaint", "unsubscribe",
               "manual"]
    out = [HEADER]
    for i in range(n):
        scope = "" if i % 10 else "shop%d.example" % (i % 7)
        reply = ""
        cls = ""
        if i % 3 == 0:
            cls = "bad-mailbox"
            reply = ('550 5.1.1 <u%d@x.example>: Recipient "unknown", '
                     'see https://x.example/?a=1,b=2' % i)
        expires = "" if i % 4 else "2099-01-0%dT00:00:00Z" % (1 + i % 9)
        out.append(["User%06d@Dom%d.Example" % (i, i % 50), scope,
                    reasons[i % 5], cls, "2026-0%d-15T12:00:00Z" % (1 + i % 9),
                    expires, reply])
    return out


def canon(r):
    """A row as export writes it: address and scope lower-cased."""
    r = list(r)
    r[0] = r[0].lower()
    r[1] = r[1].lower()
    return r


class SuppressionCLITest(PetrelCase):

    def cli(self, *args, input=None, ok=True):
        r = self.suite.run_cli("relayctl", *args, input=input,
                               timeout=CLI_SLOW)
        if ok and r.returncode != 0:
            self.fail("relayctl %s: exit %d: %s" % (
                " ".join(args), r.returncode,
                r.stderr.decode(errors="replace")))
        return r

    def test_csv_round_trip_100000(self):
        data = rows(100000)
        path = os.path.join(self.tmp, "in.csv")
        with open(path, "w", newline="") as f:
            csv.writer(f, lineterminator="\r\n").writerows(data)
        t0 = time.time()
        r = self.cli("suppression", "import", path)
        took = time.time() - t0
        self.assertIn(b"100000 addresses imported", r.stdout)
        r = self.cli("suppression", "export")
        got = list(csv.reader(io.StringIO(r.stdout.decode("utf-8"))))
        self.assertEqual(got[0], HEADER)
        want = sorted(canon(x) for x in data[1:])
        self.assertEqual(len(got) - 1, 100000)
        self.assertEqual(sorted(got[1:]), want,
                         "export differs from the import")
        # The export imports again as it is (into a second list) and
        # exports identically: a true round trip.
        again = os.path.join(self.tmp, "again.csv")
        with open(again, "wb") as f:
            f.write(r.stdout)
        self.cli("suppression", "del", "user000000@dom0.example")
        self.cli("suppression", "import", again)
        r2 = self.cli("suppression", "export")
        self.assertEqual(r2.stdout, r.stdout)
        # -j: one JSON object per entry, the same content.
        rj = self.cli("-j", "suppression", "export")
        objs = [json.loads(x) for x in rj.stdout.decode().splitlines()]
        self.assertEqual(len(objs), 100000)
        by = {(o["address"], o["scope"]): o for o in objs}
        o = by[("user000003@dom3.example", "")]
        self.assertEqual(o["reason"], "unsubscribe")
        self.assertEqual(o["class"], "bad-mailbox")
        self.assertIn('"unknown", see', o["reply"])
        self.assertIsNone(o["expires"])
        o = by[("user000000@dom0.example", "shop0.example")]
        self.assertEqual(o["expires"], 4070908800)     # 2099-01-01
        self.assertEqual(o["since"], 1768478400)       # 2026-01-15T12:00
        rl = self.cli("suppression", "list", "-j")
        self.assertEqual(len(rl.stdout.splitlines()), 100000)
        # One transaction: 100,000 lines in well under the CLI timeout.
        self.assertLess(took, CLI_SLOW / 2)

    def test_add_show_del_and_bad_import(self):
        r = self.cli("suppression", "show", "a@b.example", ok=False)
        self.assertEqual(r.returncode, 1)
        self.assertIn(b"not suppressed", r.stderr)
        self.cli("suppression", "add", "Bob@Example.ORG", "--reason",
                 "complaint", "--expires", "30d")
        self.cli("suppression", "add", "bob@example.org", "--domain",
                 "Shop.Example", "--expires", "2099-12-31")
        r = self.cli("suppression", "show", "BOB@example.org")
        text = r.stdout.decode()
        self.assertIn("address: bob@example.org", text)
        self.assertIn("scope: all sending domains", text)
        self.assertIn("reason: complaint", text)
        self.assertIn("scope: shop.example", text)
        self.assertIn("expires: 2099-12-31T00:00:00Z", text)
        r = self.cli("suppression", "show", "bob@example.org", "-j")
        objs = [json.loads(x) for x in r.stdout.decode().splitlines()]
        self.assertEqual([o["scope"] for o in objs], ["", "shop.example"])
        exp = objs[0]["expires"] - objs[0]["since"]
        self.assertTrue(30 * 86400 - 5 <= exp <= 30 * 86400 + 5, objs)
        # del with --domain removes that scope only; without, the rest.
        self.cli("suppression", "del", "bob@example.org", "--domain",
                 "shop.example")
        r = self.cli("suppression", "list")
        self.assertEqual(r.stdout.decode().count("bob@example.org"), 1)
        self.cli("suppression", "del", "BOB@example.org")
        r = self.cli("suppression", "del", "bob@example.org", ok=False)
        self.assertEqual(r.returncode, 1)
        # Bad arguments: exit 2 and usage.
        for args in (("add", "not-an-address"), ("add", "x@y.org",
                     "--reason", "bored"), ("add", "x@y.org", "--expires",
                     "soon"), ("frob",)):
            r = self.cli("suppression", *args, ok=False)
            self.assertEqual(r.returncode, 2, args)
            self.assertIn(b"usage:", r.stderr)
        r = self.cli("suppression", "import", "--help")
        self.assertIn(b"one transaction", r.stdout)
        # A bad line: FILE:LINE, nothing imported.
        bad = os.path.join(self.tmp, "bad.txt")
        with open(bad, "w") as f:
            f.write("# one address per line\nok1@x.example\n\n"
                    "ok2@x.example\nnot an address\n")
        r = self.cli("suppression", "import", bad, ok=False)
        self.assertEqual(r.returncode, 1)
        self.assertIn(("%s:5: " % bad).encode(), r.stderr)
        r = self.cli("suppression", "list")
        self.assertEqual(r.stdout, b"")
        # The bare file, fixed, with the options filling the columns.
        with open(bad, "w") as f:
            f.write("ok1@x.example\nOK2@x.example\n")
        self.cli("suppression", "import", bad, "--reason", "unsubscribe",
                 "--domain", "news.example")
        r = self.cli("suppression", "export")
        got = list(csv.reader(io.StringIO(r.stdout.decode())))
        self.assertEqual([g[:3] for g in got[1:]],
                         [["ok1@x.example", "news.example", "unsubscribe"],
                          ["ok2@x.example", "news.example", "unsubscribe"]])


class SuppressionRcptTest(PetrelCase):

    def rcpt_session(self, sender, rcpts, msg):
        """MAIL, every RCPT (replies kept), DATA if one was accepted."""
        user, pw = self.ensure_user()
        c = connect(self.suite)
        try:
            login_plain(c, user, pw)
            code, resp = c.mail(sender)
            self.assertEqual(code, 250, resp)
            replies = [c.rcpt(r) for r in rcpts]
            if any(code == 250 for code, _ in replies):
                code, resp = c.data(msg)
                self.assertEqual(code, 250, resp)
            return replies
        finally:
            try:
                c.quit()
            except (smtplib.SMTPException, OSError):
                pass

    def test_refused_at_rcpt_other_delivered_then_lifted(self):
        dead, live = "Dead@Example.NET", "live@example.net"
        self.suite.relayctl("suppression", "add", "dead@example.net",
                            "--reason", "hard-bounce")
        day = time.strftime("%Y-%m-%d", time.gmtime())
        tok = unique("supp")
        replies = self.rcpt_session("app@example.com", [dead, live],
                                    make_message(tok, to=live))
        code, text = replies[0]
        self.assertEqual(code, 550)
        self.assertEqual(text.decode(), "5.1.1 <%s>: Recipient address "
                         "suppressed (hard bounce, since %s)" % (dead, day))
        self.assertEqual(replies[1][0], 250)
        t = self.wait_arrival(tok)[0]
        self.assertEqual(t.rcpt_tos, [live])
        self.assertFalse(self.capture.rcpt_attempts(dead.lower()))
        self.assertFalse(self.capture.rcpt_attempts(dead))
        pat = re.compile(
            r"NOQUEUE: reject: RCPT from unknown\[127\.0\.0\.1\]: 550 5\.1\.1 "
            r"<Dead@Example\.NET>: Recipient address suppressed \(hard "
            r"bounce, since %s\); from=<app@example\.com> "
            r"to=<Dead@Example\.NET> proto=ESMTP helo=<[^>]*>" % day)
        self.assertRegex(self.suite.log(), pat)
        # del lifts it at once, in the same smtpd.
        self.suite.relayctl("suppression", "del", "dead@example.net")
        tok2 = unique("lifted")
        replies = self.rcpt_session("app@example.com", [dead],
                                    make_message(tok2, to=dead))
        self.assertEqual(replies[0][0], 250, replies)
        t = self.wait_arrival(tok2)[0]
        self.assertEqual(t.rcpt_tos, [dead])

    def test_scope_and_reasons(self):
        self.suite.relayctl("suppression", "add", "u@example.net",
                            "--domain", "example.com", "--reason",
                            "unsubscribe")
        self.suite.relayctl("suppression", "add", "m@example.net")
        replies = self.rcpt_session(
            "app@Example.COM", ["u@example.net", "m@example.net"],
            make_message(unique("s1")))
        self.assertEqual(replies[0][0], 550)
        self.assertIn(b"(unsubscribe, since ", replies[0][1])
        self.assertEqual(replies[1][0], 550)
        self.assertIn(b"(manual, since ", replies[1][1])
        # Another sending domain: only the all-domains entry applies.
        tok = unique("s2")
        replies = self.rcpt_session(
            "app@other.example", ["u@example.net", "m@example.net"],
            make_message(tok, sender="app@other.example",
                         to="u@example.net"))
        self.assertEqual(replies[0][0], 250)
        self.assertEqual(replies[1][0], 550)
        self.assertEqual(self.wait_arrival(tok)[0].rcpt_tos,
                         ["u@example.net"])


    def test_damaged_list_does_not_refuse_mail(self):
        # A list smtpd cannot read: the recipient is accepted (qmgr checks
        # again before delivery) and a warning says why. Damaged while
        # Petrel is stopped: qmgr creates the list at start, and a file
        # written over under a live mapping is not a damaged list but a
        # crash of whoever maps it, which LMDB cannot prevent.
        self.suite.stop()
        d = os.path.join(self.suite.queue_dir, "suppress")
        os.makedirs(d, mode=0o700, exist_ok=True)
        for name in ("data.mdb", "lock.mdb"):
            try:
                os.unlink(os.path.join(d, name))
            except FileNotFoundError:
                pass
        with open(os.path.join(d, "data.mdb"), "w") as f:
            f.write("not an LMDB file\n" * 64)
        for p in (d, os.path.join(d, "data.mdb")):
            os.chown(p, self.suite.owner_uid, self.suite.owner_gid)
        self.suite.start()
        tok = unique("damaged")
        replies = self.rcpt_session("app@example.com", ["x@example.net"],
                                    make_message(tok, to="x@example.net"))
        self.assertEqual(replies[0][0], 250, replies)
        self.wait_arrival(tok)
        self.assertIn("suppression list lookup, recipient accepted",
                      self.suite.log())


class SuppressionAcceptTest(PetrelCase):

    overrides = {"suppression": {"action": "accept"}}

    def test_accept_does_not_refuse_at_rcpt(self):
        self.suite.relayctl("suppression", "add", "dead@example.net")
        user, pw = self.ensure_user()
        c = connect(self.suite)
        try:
            login_plain(c, user, pw)
            self.assertEqual(c.mail("app@example.com")[0], 250)
            self.assertEqual(c.rcpt("dead@example.net")[0], 250)
        finally:
            c.quit()
        self.assertNotIn("Recipient address suppressed", self.suite.log())
