"""test_webhook_payloads.py - every kind of event in every provider format,
read by django-anymail (issue 10).

build/wh_render renders an event exactly as webhookd does
(webhookd_render_esp); this test posts each request to django-anymail's
Mailgun, SendGrid and Postmark tracking views (anymail_receiver.py, with
Mailgun's signing key, HTTP basic auth and SendGrid's ECDSA signature
checked) and checks the AnymailTrackingEvent each becomes: its type, reject
reason, recipient, Message-ID, tags and metadata. Requests with a wrong
Mailgun key, a changed SendGrid body or no basic auth are refused. No
Petrel daemon runs here; test_webhook_formats.py does the same through the
real daemons.
"""

import base64
import os
import shutil
import subprocess
import tempfile
import unittest
import urllib.error
import urllib.request

from harness import BUILD
from test_webhook_formats import AUTH, MAILGUN_KEY, Receiver

RENDER = os.path.join(BUILD, "wh_render")
MID = "<order-42.welcome@shop.example>"

# (format, kind) -> (anymail event_type, reject_reason); None: not sent.
EXPECT = {
    ("mailgun", "accepted"): ("queued", None),
    ("mailgun", "delivered"): ("delivered", None),
    ("mailgun", "deferred"): ("deferred", "other"),
    ("mailgun", "bounced"): ("bounced", "bounced"),
    ("mailgun", "expired"): ("bounced", "other"),
    ("mailgun", "suppressed"): ("bounced", "bounced"),
    ("sendgrid", "accepted"): ("queued", None),
    ("sendgrid", "delivered"): ("delivered", None),
    ("sendgrid", "deferred"): ("deferred", None),
    ("sendgrid", "bounced"): ("bounced", None),
    ("sendgrid", "expired"): ("bounced", None),
    ("sendgrid", "suppressed"): ("rejected", "other"),
    ("postmark", "accepted"): None,
    ("postmark", "delivered"): ("delivered", None),
    ("postmark", "deferred"): ("deferred", None),
    ("postmark", "bounced"): ("bounced", "bounced"),
    ("postmark", "expired"): ("bounced", "bounced"),
    ("postmark", "suppressed"): ("rejected", "blocked"),
    # An administrator's delete (relayq -d) has no shape in any of them:
    # webhookd does not send it to an ESP-format endpoint.
    ("mailgun", "deleted"): None,
    ("sendgrid", "deleted"): None,
    ("postmark", "deleted"): None,
}
ESP = {"mailgun": "Mailgun", "sendgrid": "SendGrid", "postmark": "Postmark"}


class PayloadTest(unittest.TestCase):

    def setUp(self):
        if not os.access(RENDER, os.X_OK):
            self.fail("%s not built (run `make all`)" % RENDER)
        self.tmp = tempfile.mkdtemp(prefix="petrel-whp-")
        self.addCleanup(shutil.rmtree, self.tmp, True)
        self.sg_key = os.path.join(self.tmp, "sendgrid.pem")
        r = subprocess.run([os.path.join(BUILD, "relayctl"), "webhook",
                            "keygen", self.sg_key], stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, timeout=20)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.receiver = Receiver(self.tmp, r.stdout.decode().strip())
        self.addCleanup(self.receiver.stop)

    def render(self, fmt, kind, *args):
        """(headers dict, body bytes), or None when there is no shape."""
        cmd = [RENDER, fmt, kind]
        if fmt == "mailgun":
            cmd += ["--secret", MAILGUN_KEY]
        if fmt == "sendgrid":
            cmd += ["--sendgrid-key", self.sg_key]
        r = subprocess.run(cmd + list(args), stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, timeout=20)
        if r.returncode == 3:
            return None
        self.assertEqual(r.returncode, 0, r.stderr)
        head, _, body = r.stdout.partition(b"\n\n")
        headers = dict(line.split(": ", 1)
                       for line in head.decode().splitlines())
        return headers, body

    def post(self, fmt, headers, body, auth=AUTH):
        url = "http://127.0.0.1:%d/anymail/%s/tracking/" % (
            self.receiver.port, fmt)
        req = urllib.request.Request(url, data=body, headers=headers,
                                     method="POST")
        if auth:
            req.add_header("Authorization", "Basic " + base64.b64encode(
                auth.encode()).decode())
        try:
            with urllib.request.urlopen(req, timeout=20) as resp:
                return resp.status
        except urllib.error.HTTPError as e:
            return e.code

    def test_every_kind_in_every_format(self):
        for (fmt, kind), want in sorted(EXPECT.items()):
            with self.subTest(format=fmt, kind=kind):
                rcpt = "%s-%s@example.org" % (fmt, kind)
                got = self.render(fmt, kind, "--rcpt", rcpt)
                if want is None:
                    self.assertIsNone(got, "%s has no %s shape" % (fmt,
                                                                   kind))
                    continue
                self.assertEqual(self.post(fmt, *got), 200,
                                 self.receiver.log_text())
                e = self.receiver.wait(
                    lambda e: e["recipient"] == rcpt,
                    what="%s %s" % (fmt, kind))[0]
                self.assertEqual(e["esp"], ESP[fmt])
                self.assertEqual((e["event_type"], e["reject_reason"]),
                                 want, e)
                self.assertEqual(e["metadata"], {"order": "42"}, e)
                self.assertEqual(e["tags"], ["welcome"] if fmt == "postmark"
                                 else ["welcome", "promo"], e)
                self.assertEqual(e["message_id"], MID.strip("<>")
                                 if fmt == "postmark" else MID, e)
                if kind in ("bounced", "deferred") and fmt != "mailgun":
                    self.assertIn(" 4.2.2 " if kind == "deferred"
                                  else " 5.1.1 ", e["mta_response"], e)
                if fmt == "sendgrid":
                    self.assertTrue(e["signed"])

    def test_forgeries_are_refused(self):
        # Mailgun: signed with another key.
        headers, body = self.render("mailgun", "delivered")
        bad = self.render("mailgun", "delivered", "--now", "1")[1]
        self.assertEqual(self.post("mailgun", headers, body), 200)
        forged = body.replace(b'"signature":"', b'"signature":"00', 1)
        self.assertEqual(self.post("mailgun", headers, forged), 400)
        # A valid signature of another timestamp does not fit this one.
        self.assertEqual(self.post("mailgun", headers, bad.replace(
            b'"timestamp":"1"', b'"timestamp":"2"', 1)), 400)
        # SendGrid: one byte of the body changed after signing.
        headers, body = self.render("sendgrid", "bounced")
        self.assertEqual(self.post("sendgrid", headers, body), 200)
        self.assertEqual(self.post("sendgrid", headers,
                                   body.replace(b"bounce", b"bouncf", 1)),
                         400)
        del headers["X-Twilio-Email-Event-Webhook-Signature"]
        self.assertEqual(self.post("sendgrid", headers, body), 400)
        # Postmark: no basic auth, or the wrong password.
        headers, body = self.render("postmark", "delivered")
        self.assertEqual(self.post("postmark", headers, body, auth=None),
                         400)
        self.assertEqual(self.post("postmark", headers, body,
                                   auth="hook:wrong"), 400)
        self.assertEqual(self.post("postmark", headers, body), 200)


if __name__ == "__main__":
    unittest.main()
