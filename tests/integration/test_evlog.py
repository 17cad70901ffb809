"""test_evlog.py - relayctl log search|show|export on the delivery log.

The log is filled through lib/evlog itself by build/evlog_bench sample
(made here if missing), running as mail_owner as webhookd does, beside a
running Petrel: message 00000000000000A1 (user app1, TLS) to bob (451
then delivered) and carol (550 5.1.1, class bad-mailbox, webhook failed
500 then sent 200), message 00000000000000B2 (user app2, null sender) to
bob. Then: search --to finds bob's whole history newest first, in any
case; the other filters (--from, --message-id, --queue-id, --user,
--event, --since/--until, --limit) and -j JSON Lines with webhooks; show
by queue id and by Message-ID tells the story oldest first; export gives
one user's CSV (RFC 4180 quoting) and JSONL; bad words exit 2; a queue
without a log says so.

EvlogEndToEndTest does it through the real daemons: a message submitted
and delivered, webhookd indexing what smtpd and qmgr wrote; search --to
finds its events and show begins with the accepted line and has the
delivered one with the relay.
"""

import csv
import io
import json
import os
import shutil
import re
import subprocess
import time

from harness import BUILD, REPO, PetrelCase, make_message, unique

TOOL = os.path.join(BUILD, "evlog_bench")


def build_tool():
    if not os.access(TOOL, os.X_OK):
        subprocess.run(["make", "-C", REPO, "-s",
                        os.path.relpath(TOOL, REPO)], check=True,
                       stdout=subprocess.DEVNULL)


class EvlogCLITest(PetrelCase):

    def fill(self):
        build_tool()
        kw = {}
        tool = TOOL
        if os.geteuid() == 0:
            kw = {"user": self.suite.owner_uid,
                  "group": self.suite.owner_gid}
            # A copy mail_owner can reach: the tree may be under /root.
            tool = os.path.join(self.suite.tmp, "evlog_bench")
            shutil.copy2(TOOL, tool)
            os.chmod(tool, 0o755)
        r = subprocess.run([tool, "sample", self.suite.queue_dir],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           **kw)
        self.assertEqual(r.returncode, 0, r.stderr)

    def log(self, *args, ok=True):
        r = self.suite.run_cli("relayctl", "log", *args)
        if ok:
            self.assertEqual(r.returncode, 0, "relayctl log %s: %s" % (
                " ".join(args), r.stderr.decode(errors="replace")))
        return r

    def lines(self, *args):
        return self.log(*args).stdout.decode().splitlines()

    def jl(self, *args):
        return [json.loads(x) for x in self.lines(*args, "-j")]

    def test_no_log_yet(self):
        r = self.log("search", "--to", "a@b", ok=False)
        self.assertEqual(r.returncode, 1)
        self.assertIn(b"no delivery log", r.stderr)

    def test_search(self):
        self.fill()
        # Bob's whole history, newest first, whatever the case.
        ev = self.jl("search", "--to", "BOB@example.ORG")
        self.assertEqual([(e["event"], e["queue_id"]) for e in ev], [
            ("delivered", "00000000000000B2"),
            ("accepted", "00000000000000B2"),
            ("delivered", "00000000000000A1"),
            ("deferred", "00000000000000A1"),
            ("accepted", "00000000000000A1")])
        self.assertEqual(ev[3]["reply"], "451 4.7.1 Greylisted")
        txt = self.lines("search", "--to", "bob@example.org")
        self.assertEqual(len(txt), 5)
        self.assertRegex(txt[0], r"^\d{4}-\d\d-\d\dT\S+Z delivered +"
                         r"00000000000000B2 from=<> to=bob@example.org "
                         r"user=app2 ")
        self.assertIn('reply="451 4.7.1 Greylisted"', txt[3])
        self.assertIn("tls=TLSv1.3", txt[4])

        # Carol's bounce, with its webhooks.
        ev = self.jl("search", "--to", "carol@example.net",
                     "--event", "bounced")
        self.assertEqual(len(ev), 1)
        self.assertEqual(ev[0]["status"] if "status" in ev[0]
                         else ev[0].get("dsn"), "5.1.1")
        self.assertEqual(ev[0]["class"], "bad-mailbox")
        self.assertEqual([(w["outcome"], w["http_status"])
                          for w in ev[0]["webhooks"]],
                         [("failed", 500), ("sent", 200)])
        self.assertIn("webhook=failed/500 webhook=sent/200",
                      self.lines("search", "--to", "carol@example.net",
                                 "--event", "bounced")[0])

        self.assertEqual(len(self.jl("search", "--from", "<>")), 2)
        self.assertEqual(len(self.jl("search", "--from",
                                     "Alice@Sender.example")), 4)
        self.assertEqual(len(self.jl("search", "--message-id",
                                     "<M1@sender.example>")), 4)
        self.assertEqual(len(self.jl("search", "--message-id",
                                     "m2@sender.example")), 2)
        self.assertEqual(len(self.jl("search", "--queue-id",
                                     "00000000000000b2")), 2)
        self.assertEqual(len(self.jl("search", "--user", "app1")), 4)
        self.assertEqual(len(self.jl("search", "--to", "bob@example.org",
                                     "--user", "app1")), 3)
        self.assertEqual(len(self.jl("search", "--limit", "2")), 2)
        self.assertEqual(len(self.jl("search")), 6)
        # The sample's events are 60, 50, ... 10 minutes old.
        self.assertEqual(len(self.jl("search", "--since", "35m")), 3)
        self.assertEqual(len(self.jl("search", "--until", "35m")), 3)
        self.assertEqual(len(self.jl("search", "--since", "2000-01-01",
                                     "--until", "2099-01-01T00:00:00Z")),
                         6)
        self.assertEqual(self.jl("search", "--to", "nobody@example.org"),
                         [])

    def test_show(self):
        self.fill()
        out = self.log("show", "00000000000000A1").stdout.decode()
        lines = out.splitlines()
        self.assertEqual(lines[0], "Queue ID 00000000000000A1, "
                         "Message-ID <m1@sender.example>")
        self.assertRegex(lines[1], r"accepted from <alice@sender.example> "
                         r"\(user app1\) client app.example\[127.0.0.1\], "
                         r"TLSv1.3, 1234 bytes, for Bob@Example.org "
                         r"carol@example.net")
        kinds = [l.split()[1] for l in lines[1:] if not l.startswith(" ")]
        self.assertEqual(kinds, ["accepted", "deferred", "bounced",
                                 "delivered"])
        self.assertIn("deferred bob@example.org, attempt 1", out)
        self.assertIn("reply: 550 5.1.1 <carol@example.net>: User unknown",
                      out)
        self.assertIn("status 5.1.1 (class bad-mailbox)", out)
        self.assertIn("webhook failed (HTTP 500) https://app.example/hooks",
                      out)
        self.assertIn("webhook sent (HTTP 200) https://app.example/hooks",
                      out)
        # By Message-ID, and as JSON Lines.
        ev = self.jl("show", "<m1@sender.example>")
        self.assertEqual([e["event"] for e in ev], kinds)
        self.assertEqual(len(ev[2]["webhooks"]), 2)
        r = self.log("show", "<nothing@here>", ok=False)
        self.assertEqual(r.returncode, 1)
        self.assertIn(b"not in the delivery log", r.stderr)

    def test_export(self):
        self.fill()
        r = self.log("export", "--user", "app1", "--since", "1d",
                     "--until", "0s", "--format", "csv")
        rows = list(csv.reader(io.StringIO(r.stdout.decode())))
        self.assertEqual(rows[0][:6], ["time", "event", "queue_id",
                                       "message_id", "sender", "recipient"])
        body = rows[1:]
        # Oldest first, app1's four events only.
        self.assertEqual([x[1] for x in body], ["accepted", "deferred",
                                                "bounced", "delivered"])
        self.assertEqual({x[6] for x in body}, {"app1"})
        hdr = rows[0]
        self.assertEqual(body[2][hdr.index("status")], "5.1.1")
        self.assertEqual(body[0][hdr.index("recipient")],
                         "Bob@Example.org carol@example.net")
        # A field with a comma and quotes survives RFC 4180 quoting.
        self.assertEqual(json.loads(body[0][hdr.index("metadata")]),
                         {"order": '17, "big"'})
        ev = [json.loads(x) for x in self.log(
            "export", "--user", "app2", "--since", "1d", "--until",
            "0s").stdout.decode().splitlines()]
        self.assertEqual([e["event"] for e in ev], ["accepted",
                                                    "delivered"])
        self.assertEqual(ev[0]["metadata"], {"order": '17, "big"'})
        # A period before the events holds none.
        r = self.log("export", "--user", "app1", "--since", "2000-01-01",
                     "--until", "2000-01-02", "--format", "csv")
        self.assertEqual(len(r.stdout.decode().splitlines()), 1)

    def test_usage(self):
        for args in (["export", "--user", "app1"],
                     ["search", "--since", "yesterday"],
                     ["search", "--event", "opened"],
                     ["search", "--limit", "0"],
                     ["show"],
                     ["frobnicate"]):
            r = self.log(*args, ok=False)
            self.assertEqual(r.returncode, 2, args)
            self.assertIn(b"usage:", r.stderr)


class EvlogEndToEndTest(PetrelCase):
    """A message through smtpd, qmgr and smtp; webhookd (running for
    webhooks: [], which has no endpoint) indexes its events."""

    overrides = {"webhooks": []}

    def search(self, rcpt):
        r = self.suite.run_cli("relayctl", "log", "search", "--to", rcpt,
                               "-j")
        if r.returncode != 0:
            return []
        return [json.loads(x) for x in r.stdout.decode().splitlines()]

    def test_search_and_show_after_delivery(self):
        tok = unique("evl")
        rcpt = "story-%s@example.org" % tok
        qid = self.submit(make_message(tok, to=rcpt), rcpts=[rcpt])
        d = self.suite.wait_delivery(qid, rcpt, "sent")[0]
        self.wait_arrival(tok)
        deadline = time.time() + 15
        evs = []
        while time.time() < deadline:
            evs = self.search(rcpt)
            if [e["event"] for e in evs] == ["delivered", "accepted"]:
                break
            time.sleep(0.2)
        self.assertEqual([e["event"] for e in evs],
                         ["delivered", "accepted"], self.suite.log_tail())
        self.assertTrue(all(e["queue_id"] == qid for e in evs), evs)
        self.assertEqual(evs[0]["recipient"], rcpt)
        self.assertEqual(evs[0]["relay"], d["relay"])
        self.assertEqual(evs[1]["sasl_username"], self.user)
        # Text lines too, newest first.
        txt = self.suite.relayctl("log", "search", "--to",
                                  rcpt).stdout.decode().splitlines()
        self.assertEqual([l.split()[1] for l in txt],
                         ["delivered", "accepted"])

        show = self.suite.relayctl("log", "show",
                                   qid).stdout.decode().splitlines()
        self.assertRegex(show[0], r"^Queue ID %s, Message-ID <" % qid)
        self.assertRegex(show[1], r"^\S+  accepted from <app@example\.com> "
                         r"\(user %s\) client \S*127\.0\.0\.1\S*, TLSv1\.[23],"
                         r" \d+ bytes, for %s$" % (self.user, re.escape(rcpt)))
        delivered = [l for l in show if re.match(r"^\S+  delivered ", l)]
        self.assertEqual(len(delivered), 1, show)
        self.assertRegex(delivered[0], r"delivered %s, attempt 1 via %s "
                         r"status 2\.\d\.\d$"
                         % (re.escape(rcpt), re.escape(d["relay"])))
        self.assertIn("[127.0.0.1]:%d" % self.capture.port, d["relay"])
