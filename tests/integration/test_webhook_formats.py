"""test_webhook_formats.py - webhooks in the providers' formats, read by a
consumer no one here wrote (issue 10).

django-anymail's Mailgun, SendGrid and Postmark tracking webhook views run
under Django's server (anymail_receiver.py) with their checks on: Mailgun's
signing key, HTTP basic auth (the endpoint URLs carry user:pass@), and
SendGrid's ECDSA signature (checked with python3-cryptography, since
anymail 9.0 does not). The real daemons deliver, defer, bounce (550 5.1.1,
class bad-mailbox), fail a suppressed recipient and expire a message; each
outcome must reach anymail, in each format, as the right
AnymailTrackingEvent type, with the message's tags and metadata. Then two
credentials with their own endpoints (relayctl user set --webhook) each
receive their own application's events and no others.
"""

import json
import os
import shutil
import socket
import subprocess
import tempfile
import time
import unittest

from harness import (BUILD, PetrelCase, connect, login_plain, mail_owner,
                     make_message, register, send, unique)

HERE = os.path.dirname(os.path.abspath(__file__))
RECEIVER = os.path.join(HERE, "anymail_receiver.py")
# Debian's Django and anymail are built for the system interpreter.
PYTHON = "/usr/bin/python3"
MAILGUN_KEY = "key-petrel-anymail-test"
AUTH = "hook:pa55word"
SENDER = "app@example.com"
TAGS_HEADER = "X-Petrel-Tag: welcome, promo"
META_HEADER = "X-Petrel-Metadata-order: 42"


class Receiver:
    """anymail_receiver.py on a free port; its events from its file."""

    def __init__(self, tmp, sendgrid_public_key=""):
        self.out = os.path.join(tmp, "anymail-events.jsonl")
        self.log = open(os.path.join(tmp, "anymail.log"), "wb")
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        self.port = s.getsockname()[1]
        s.close()
        cmd = [PYTHON, RECEIVER, "--port", str(self.port), "--out",
               self.out, "--mailgun-key", MAILGUN_KEY, "--basic-auth", AUTH]
        if sendgrid_public_key:
            cmd += ["--sendgrid-public-key", sendgrid_public_key]
        self.proc = subprocess.Popen(cmd, stdout=self.log,
                                     stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL,
                                     start_new_session=True)
        register(self.proc)
        deadline = time.time() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.port), 1).close()
                break
            except OSError:
                if self.proc.poll() is not None or time.time() > deadline:
                    raise AssertionError("anymail receiver did not start:\n"
                                         + self.log_text())
                time.sleep(0.1)

    def url(self, esp):
        user, pw = AUTH.split(":")
        return "http://%s:%s@127.0.0.1:%d/anymail/%s/tracking/" % (
            user, pw, self.port, esp)

    def log_text(self):
        self.log.flush()
        with open(self.log.name, "rb") as f:
            return f.read().decode("utf-8", "replace")[-4000:]

    def events(self):
        try:
            with open(self.out) as f:
                return [json.loads(line) for line in f if line.strip()]
        except FileNotFoundError:
            return []

    def wait(self, pred, n=1, timeout=40, what="events"):
        deadline = time.time() + timeout
        while True:
            got = [e for e in self.events() if pred(e)]
            if len(got) >= n:
                return got
            if time.time() > deadline:
                raise AssertionError(
                    "%d of %d %s at anymail within %ds; it has %r\n"
                    "receiver log:\n%s" % (
                        len(got), n, what, timeout,
                        [(e["esp"], e["event_type"], e["recipient"])
                         for e in self.events()], self.log_text()))
            time.sleep(0.2)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()


@unittest.skipUnless(os.path.exists(os.path.join(BUILD, "webhookd")),
                     "build/webhookd not built: webhookd's core (issue 10) "
                     "is not in this tree yet")
class WebhookCase(PetrelCase):
    """A receiver and key files made before Petrel starts."""

    endpoints = ()          # formats with a petrel.yaml endpoint
    extra = None            # more config overrides

    def setUp(self):
        self.keys = tempfile.mkdtemp(prefix="petrel-wh-")
        os.chmod(self.keys, 0o755)
        self.addCleanup(shutil.rmtree, self.keys, True)
        self.mg_secret = os.path.join(self.keys, "mailgun.secret")
        with open(self.mg_secret, "w") as f:
            f.write(MAILGUN_KEY + "\n")
        self.sg_key = os.path.join(self.keys, "sendgrid.pem")
        r = subprocess.run([os.path.join(BUILD, "relayctl"), "webhook",
                            "keygen", self.sg_key], stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, timeout=20)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.sg_public = r.stdout.decode().strip()
        self.assertEqual(oct(os.stat(self.sg_key).st_mode & 0o777), "0o600")
        self.receiver = Receiver(self.keys, self.sg_public)
        self.addCleanup(self.receiver.stop)
        # webhookd runs as mail_owner: it must read the key files.
        if os.geteuid() == 0:
            _, uid, gid = mail_owner()
            for p in (self.mg_secret, self.sg_key):
                os.chown(p, uid, gid)
        hooks = []
        every = ["delivered", "deferred", "bounced", "expired", "suppressed"]
        for fmt in self.endpoints:
            ep = {"url": self.receiver.url(fmt), "format": fmt,
                  "events": ",".join(every)}
            if fmt == "mailgun":
                ep["secret_file"] = self.mg_secret
            if fmt == "sendgrid":
                ep["sendgrid_key_file"] = self.sg_key
            hooks.append(ep)
        # webhooks: [] still runs webhookd, for credentials' endpoints.
        over = {"suppression": {"action": "accept"}, "webhooks": hooks}
        if self.extra:
            over.update(self.extra)
        self.overrides = over
        super().setUp()

    def at(self, esp, rcpt, pred=lambda e: True, what=None):
        """anymail's events from esp for rcpt that satisfy pred."""
        return self.receiver.wait(
            lambda e: e["esp"] == esp and e["recipient"] == rcpt and pred(e),
            what=what or "%s events for %s" % (esp, rcpt))

    def assertAppData(self, e):
        """The message's tags and metadata, as each provider carries them."""
        if e["esp"] == "Postmark":
            self.assertEqual(e["tags"], ["welcome"], e)    # one Tag
        else:
            self.assertEqual(e["tags"], ["welcome", "promo"], e)
        self.assertEqual(e["metadata"].get("order"), "42", e)


class FormatsTest(WebhookCase):

    endpoints = ("mailgun", "sendgrid", "postmark")

    def test_outcomes_reach_anymail_in_each_format(self):
        tok = unique("fmt")
        ok = "ok-%s@example.org" % tok
        gone = "gone-%s@example.org" % tok
        busy = "busy-%s@example.org" % tok
        supp = "supp-%s@example.org" % tok
        self.capture.add_rcpt_rule("550 5.1.1 <%s>: Recipient address "
                                   "rejected: User unknown" % gone,
                                   address=gone)
        self.capture.add_rcpt_rule("452 4.2.2 Mailbox full, try later",
                                   address=busy, times=1)
        self.suite.relayctl("suppression", "add", supp, "--reason", "manual")
        msg = make_message(tok, to=ok, extra_headers=(TAGS_HEADER,
                                                      META_HEADER))
        qid = self.submit(msg, rcpts=[ok, gone, busy, supp])
        mid = "<%s@client.test>" % tok
        self.suite.wait_delivery(qid, busy, "sent", timeout=40)

        for esp in ("Mailgun", "SendGrid", "Postmark"):
            e = self.at(esp, ok, lambda e: e["event_type"] == "delivered")[0]
            self.assertAppData(e)
            self.assertEqual(e["message_id"], mid if esp != "Postmark"
                             else mid.strip("<>"), e)

            e = self.at(esp, gone, lambda e: e["event_type"] == "bounced")[0]
            self.assertAppData(e)
            self.assertIn("5.1.1", e["mta_response"] or "", e)
            self.assertEqual(e["reject_reason"], {"Mailgun": "bounced",
                                                  "SendGrid": None,
                                                  "Postmark": "bounced"}[esp])

            e = self.at(esp, busy, lambda e: e["event_type"] == "deferred")[0]
            self.assertIn("4.2.2", e["mta_response"] or "", e)
            self.assertAppData(e)
            self.at(esp, busy, lambda e: e["event_type"] == "delivered")

            want = "bounced" if esp == "Mailgun" else "rejected"
            e = self.at(esp, supp, lambda e: e["event_type"] == want)[0]
            self.assertAppData(e)

        # Each provider's own fields, as its handlers read them.
        mg = self.at("Mailgun", gone,
                     lambda e: e["event_type"] == "bounced")[0]["esp_event"]
        ed = mg["event-data"]
        self.assertEqual((ed["event"], ed["severity"], ed["reason"]),
                         ("failed", "permanent", "bounce"))
        self.assertEqual(ed["delivery-status"]["code"], 550)
        self.assertEqual(ed["delivery-status"]["enhanced-code"], "5.1.1")
        sg = self.at("SendGrid", gone,
                     lambda e: e["event_type"] == "bounced")[0]
        self.assertTrue(sg["signed"])
        self.assertEqual((sg["esp_event"]["status"], sg["esp_event"]["type"],
                          sg["esp_event"]["sg_message_id"]),
                         ("5.1.1", "bounce", qid))
        pm = self.at("Postmark", gone,
                     lambda e: e["event_type"] == "bounced")[0]["esp_event"]
        self.assertEqual((pm["Type"], pm["TypeCode"], pm["Inactive"]),
                         ("HardBounce", 1, True))
        pm = self.at("Postmark", supp,
                     lambda e: e["event_type"] == "rejected")[0]["esp_event"]
        self.assertEqual(pm["Type"], "ManuallyDeactivated")
        # The event id is stable: one id per event, never two events alike.
        ids = [e["event_id"] for e in self.receiver.events()
               if e["esp"] == "Mailgun"]
        self.assertEqual(len(ids), len(set(ids)), ids)


class ExpiryTest(WebhookCase):

    endpoints = ("mailgun", "sendgrid", "postmark")
    extra = {"queue": {"min_backoff": "1s", "max_backoff": "1s",
                       "max_lifetime": "4s"}}

    def test_expired_reaches_anymail_in_each_format(self):
        tok = unique("exp")
        rcpt = "slow-%s@example.org" % tok
        self.capture.add_rcpt_rule("451 4.4.1 Try again later",
                                   address=rcpt)
        msg = make_message(tok, to=rcpt, extra_headers=(TAGS_HEADER,
                                                        META_HEADER))
        self.submit(msg, rcpts=[rcpt])
        for esp in ("Mailgun", "SendGrid", "Postmark"):
            e = self.at(esp, rcpt, lambda e: e["event_type"] == "bounced",
                        what="%s expiry" % esp)[0]
            self.assertAppData(e)
            if esp == "Mailgun":
                self.assertEqual(e["esp_event"]["event-data"]["reason"],
                                 "old")
            elif esp == "SendGrid":
                self.assertEqual(e["esp_event"]["type"], "expired")
            else:
                self.assertEqual(e["esp_event"]["Type"], "SoftBounce")


class PerCredentialTest(WebhookCase):
    """No petrel.yaml endpoint: each application has its own."""

    endpoints = ()

    def test_each_application_gets_its_own_events_only(self):
        self.ensure_user()
        self.suite.add_user("app2", "second app's secret")
        # app1: Mailgun format, signed with the receiver's signing key.
        self.suite.relayctl("user", "set", "app1", "--webhook",
                            self.receiver.url("mailgun"), "--webhook-format",
                            "mailgun", "--webhook-secret-file",
                            self.mg_secret)
        # app2: Postmark format (basic auth in the URL, nothing to sign:
        # nothing printed), only bounces and deliveries.
        r = self.suite.relayctl("user", "set", "app2", "--webhook",
                                self.receiver.url("postmark"),
                                "--webhook-format", "postmark",
                                "--webhook-events", "delivered,bounced")
        self.assertEqual(r.stdout, b"")
        show = json.loads(self.suite.relayctl("-j", "user", "show",
                                              "app2").stdout)
        self.assertEqual(show["webhook"]["format"], "postmark")
        self.assertEqual(show["webhook"]["events"], ["delivered", "bounced"])
        self.assertNotIn("pa55word", json.dumps(show))

        tok = unique("cred")
        a = "a-%s@example.org" % tok
        b = "b-%s@example.org" % tok
        b_gone = "bgone-%s@example.org" % tok
        self.capture.add_rcpt_rule("550 5.1.1 no such user", address=b_gone)
        self.submit(make_message(tok + "-1", to=a), rcpts=[a])
        c = connect(self.suite)
        try:
            login_plain(c, "app2", "second app's secret")
            send(c, SENDER, [b, b_gone], make_message(tok + "-2", to=b))
        finally:
            c.quit()
        self.at("Mailgun", a, lambda e: e["event_type"] == "delivered")
        self.at("Postmark", b, lambda e: e["event_type"] == "delivered")
        self.at("Postmark", b_gone, lambda e: e["event_type"] == "bounced")
        # Give stragglers a moment, then: nobody got the other's events.
        time.sleep(2)
        got = self.receiver.events()
        self.assertEqual({e["recipient"] for e in got if e["esp"] ==
                          "Mailgun"}, {a}, got)
        self.assertEqual({e["recipient"] for e in got if e["esp"] ==
                          "Postmark"}, {b, b_gone}, got)

        # Removed: once webhookd's cache of it (5 s) is past, app1's next
        # message sends nothing.
        self.suite.relayctl("user", "set", "app1", "--webhook", "")
        time.sleep(6)
        a2 = "a2-%s@example.org" % tok
        qid = self.submit(make_message(tok + "-3", to=a2), rcpts=[a2])
        self.suite.wait_delivery(qid, a2, "sent", timeout=30)
        time.sleep(3)
        self.assertFalse([e for e in self.receiver.events()
                          if e["recipient"] == a2])
