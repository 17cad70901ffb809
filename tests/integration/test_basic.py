"""test_basic.py - submission end to end: STARTTLS, implicit TLS, curl."""

import os
import shutil
import subprocess
import unittest

from harness import PetrelCase, connect, login_plain, make_message, send, \
    unique, unverified_ctx


def tricky_body():
    """Dots at line starts, a lone dot, long lines, 8-bit UTF-8, CRLF."""
    long_line = ("0123456789abcdef" * 62)[:990]
    lines = [
        "First line.",
        ".",
        ". a line that starts with a dot and a space",
        "..two dots",
        "...three dots",
        ".",
        "",
        long_line,
        "x" * 998,
        "Grüße aus Köln — ünïcødé ✓ 日本語 😀",
        "\tleading tab and trailing spaces   ",
        "",
        "",
        "end.",
    ]
    return ("\r\n".join(lines) + "\r\n").encode("utf-8")


class SubmissionTest(PetrelCase):

    def test_starttls_auth_plain_body_byte_exact(self):
        tok = unique("exact")
        body = tricky_body()
        orig_headers = [
            "From: <app@example.com>",
            "To: <rcpt@example.org>",
            "Subject: %s" % tok,
            "Date: Mon, 1 Jan 2024 00:00:00 +0000",
            "Message-ID: <%s@client.test>" % tok,
            "X-Custom: folded header",
            "\tcontinued on a second line",
            "MIME-Version: 1.0",
            "Content-Type: text/plain; charset=utf-8",
            "Content-Transfer-Encoding: 8bit",
        ]
        msg = ("\r\n".join(orig_headers) + "\r\n\r\n").encode() + body
        qid = self.submit(msg, sender="app@example.com",
                          rcpts=["rcpt@example.org"],
                          mail_options=["BODY=8BITMIME"])
        t = self.wait_arrival(tok)[0]
        self.assertEqual(t.mail_from, "app@example.com")
        self.assertEqual([r.lower() for r in t.rcpt_tos],
                         ["rcpt@example.org"])
        # Body byte-exact (dots, long lines, 8-bit, trailing empty lines).
        if t.body != body:
            import difflib
            diff = "\n".join(difflib.unified_diff(
                body.decode("utf-8", "replace").split("\r\n"),
                t.body.decode("utf-8", "replace").split("\r\n"),
                "sent", "received", lineterm=""))
            self.fail("body differs at the next hop:\n%s" % diff[:4000])
        # Received: prepended, the original header block kept in order.
        hdr = t.headers.decode("utf-8", "replace")
        self.assertTrue(hdr.lower().startswith("received:"),
                        "first header is not Received:\n%s" % hdr[:600])
        orig_block = "\r\n".join(orig_headers) + "\r\n"
        lines = hdr.split("\r\n")
        i = 1
        while i < len(lines) and lines[i][:1] in (" ", "\t"):
            i += 1
        self.assertEqual("\r\n".join(lines[i:]), orig_block,
                         "the header block is not Received: + the original "
                         "headers verbatim:\n%s" % hdr)
        rec = t.header("Received")[0]
        self.assertIn(qid, rec, "Received: does not name the queue id %s"
                      % qid)
        # One Message-ID and one Date: the client's were kept, none added.
        self.assertEqual(t.header("Message-ID"), ["<%s@client.test>" % tok])
        self.assertEqual(len(t.header("Date")), 1)
        self.suite.wait_delivery(qid, "rcpt@example.org", "sent")

    def test_message_id_and_date_added_when_missing(self):
        tok = unique("noid")
        msg = make_message(tok, message_id=False, date=False)
        qid = self.submit(msg)
        t = self.wait_arrival(tok)[0]
        mid = t.header("Message-ID")
        self.assertEqual(len(mid), 1, "Message-ID not added exactly once: "
                         "%r" % t.header_lines())
        self.assertRegex(mid[0], r"^<[^<>@\s]+@[^<>@\s]+>$")
        self.assertEqual(len(t.header("Date")), 1, "Date not added: %r"
                         % t.header_lines())
        self.assertRegex(t.header("Date")[0],
                         r"\d{1,2} [A-Z][a-z]{2} \d{4} \d\d:\d\d:\d\d "
                         r"[+-]\d{4}")
        self.assertTrue(t.header_lines()[0].lower().startswith("received:"))
        self.suite.wait_delivery(qid, "rcpt@example.org", "sent")

    def test_ehlo_extensions(self):
        c = connect(self.suite, starttls=False)
        try:
            for ext in ("pipelining", "size", "8bitmime",
                        "enhancedstatuscodes", "starttls"):
                self.assertIn(ext, c.esmtp_features,
                              "EHLO before TLS lacks %s: %r"
                              % (ext.upper(), c.esmtp_features))
            self.assertNotIn("auth", c.esmtp_features,
                             "AUTH offered before TLS")
            c.starttls(context=unverified_ctx())
            c.ehlo("client.test")
            self.assertIn("auth", c.esmtp_features,
                          "AUTH not offered after STARTTLS")
            self.assertIn("PLAIN", c.esmtp_features["auth"].upper().split())
            self.assertNotIn("starttls", c.esmtp_features,
                             "STARTTLS offered again inside TLS")
        finally:
            c.quit()

    def test_implicit_tls_smtps(self):
        tok = unique("smtps")
        c = connect(self.suite, implicit=True)
        try:
            self.assertIsNotNone(c.sock.version(), "no TLS on the smtps "
                                 "listener")
            self.assertIn("auth", c.esmtp_features,
                          "AUTH not offered on the implicit TLS listener")
            self.assertNotIn("starttls", c.esmtp_features)
            login_plain(c, *self.ensure_user())
            qid = send(c, "app@example.com", ["rcpt@example.org"],
                       make_message(tok))
        finally:
            c.quit()
        t = self.wait_arrival(tok)[0]
        self.assertEqual(t.rcpt_tos, ["rcpt@example.org"])
        self.suite.wait_delivery(qid, "rcpt@example.org", "sent")

    def test_pipelined_envelope(self):
        """The client sends MAIL, RCPT, RCPT, DATA in one write."""
        import harness
        tok = unique("pipe")
        user, pw = self.ensure_user()
        c = connect(self.suite)
        try:
            login_plain(c, user, pw)
            c.send(("MAIL FROM:<app@example.com>\r\n"
                    "RCPT TO:<a@example.org>\r\n"
                    "RCPT TO:<b@example.org>\r\n"
                    "DATA\r\n").encode())
            replies = [c.getreply() for _ in range(4)]
            self.assertEqual([r[0] for r in replies], [250, 250, 250, 354],
                             "pipelined replies: %r" % replies)
            c.send(make_message(tok) + b".\r\n")
            code, resp = c.getreply()
            self.assertEqual(code, 250, resp)
            self.assertRegex(resp.decode(), harness.QID_RE.pattern)
        finally:
            c.quit()
        t = self.wait_arrival(tok)[0]
        self.assertEqual(sorted(t.rcpt_tos), ["a@example.org",
                                              "b@example.org"])


@unittest.skipIf(shutil.which("curl") is None, "curl is not installed")
class CurlTest(PetrelCase):

    def _curl(self, url, tok):
        user, pw = self.ensure_user()
        body = tricky_body()
        msg = make_message(tok, body=body)
        path = os.path.join(self.tmp, "curl-msg.eml")
        with open(path, "wb") as f:
            f.write(msg)
        r = subprocess.run(
            ["curl", "-sS", "--ssl-reqd", url, "--mail-from",
             "app@example.com", "--mail-rcpt", "rcpt@example.org",
             "--user", "%s:%s" % (user, pw), "-k", "--upload-file", path,
             "--max-time", "30"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=60)
        self.assertEqual(r.returncode, 0, "curl failed: %s%s\n%s" % (
            r.stdout.decode(errors="replace"),
            r.stderr.decode(errors="replace"), self.suite.log_tail(20)))
        t = self.wait_arrival(tok)[0]
        self.assertEqual(t.body, body, "body changed on the way")
        self.assertTrue(t.header_lines()[0].lower().startswith("received:"))

    def test_curl_starttls(self):
        self._curl("smtp://127.0.0.1:%d" % self.suite.submission_port,
                   unique("curl"))

    def test_curl_implicit_tls(self):
        self._curl("smtps://127.0.0.1:%d" % self.suite.smtps_port,
                   unique("curls"))


if __name__ == "__main__":
    unittest.main()
