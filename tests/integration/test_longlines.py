"""test_longlines.py - no line over 998 octets leaves Petrel (issue 8).

Applications send lines longer than RFC 5322 2.1.1 allows (HTML without
wrapping, long plain text, long header fields). smtpd makes such a message
fit before it is queued (smtpd.long_lines: encode, the default): a long
HTML line in a multipart, a long line in a message without MIME, a long
header, and a long line in one part of a multipart with an attachment
each arrive at the next hop with every line within 998 octets, decode
(Python's email package) to the original text, and carry a DKIM
signature that dkimpy verifies. With smtpd.long_lines: refuse such a
message gets 550 5.6.0 and nothing is queued.
"""

import email
import email.policy
import re
import time
import unittest

from harness import PetrelCase, unique
from test_dkim import VERIFIER_MISSING, DkimHelpers

LIMIT = 998


def longest(data):
    return max(len(line) for line in data.split(b"\r\n"))


def text_of(part):
    """A part's decoded content, line ends made \\n, trailing ones gone."""
    return part.get_payload(decode=True).replace(b"\r\n", b"\n") \
        .rstrip(b"\n")


@unittest.skipIf(VERIFIER_MISSING, VERIFIER_MISSING or "")
class LongLinesTest(DkimHelpers, PetrelCase):

    @property
    def overrides(self):
        return self.dkim_overrides()

    def setUp(self):
        super().setUp()
        self.add_domain("example.com", "--selector", "ll")
        self.records = self.record_for("example.com", "ll")

    def deliver(self, msg):
        """Submits msg (bytes with a token in Subject); returns the
        message the next hop got, checked to fit and verified."""
        qid = self.submit(msg)
        tok = msg.split(b"Subject: ", 1)[1].split(b"\r\n", 1)[0]
        data = self.wait_arrival(tok)[0].data
        self.suite.wait_delivery(qid, "rcpt@example.org", "sent")
        self.assertLessEqual(longest(data), LIMIT, data[:3000])
        self.verify(data, self.records)
        self.assertIn("%s: lines longer than 998 octets: re-encoded" % qid,
                      self.suite.log())
        self.raw = data
        return email.message_from_bytes(data, policy=email.policy.default)

    def head(self, tok, extra=""):
        return ("From: <app@example.com>\r\nTo: <rcpt@example.org>\r\n"
                "Subject: %s\r\nDate: Sat, 05 Dec 2026 05:00:00 +0000\r\n"
                "Message-ID: <%s@example.com>\r\n%s" % (tok, tok, extra))

    def test_long_html_line_in_multipart(self):
        tok = unique("html")
        html = "<table>" + "<tr><td>caf\u00e9 cr\u00e8me</td></tr>" * 400 \
            + "</table>"
        msg = (self.head(tok, "MIME-Version: 1.0\r\nContent-Type: "
                         "multipart/alternative; boundary=\"=_b1\"\r\n") +
               "\r\n--=_b1\r\nContent-Type: text/plain; charset=utf-8\r\n"
               "\r\nShort text.\r\n--=_b1\r\nContent-Type: text/html; "
               "charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n"
               "%s\r\n--=_b1--\r\n" % html).encode()
        self.assertGreater(longest(msg), 5000)
        got = self.deliver(msg)
        parts = list(got.iter_parts())
        self.assertEqual(text_of(parts[0]), b"Short text.")
        self.assertEqual(parts[1]["Content-Transfer-Encoding"],
                         "quoted-printable")
        self.assertEqual(text_of(parts[1]), html.encode())

    def test_long_plain_line_without_mime(self):
        tok = unique("plain")
        text = " ".join("word%d" % i for i in range(1200))
        msg = (self.head(tok) + "\r\n" + text + "\r\nlast line\r\n") \
            .encode()
        got = self.deliver(msg)
        self.assertEqual(got.get_content_type(), "text/plain")
        self.assertEqual(got["Content-Transfer-Encoding"],
                         "quoted-printable")
        self.assertEqual(text_of(got), (text + "\nlast line").encode())

    def test_long_header(self):
        tok = unique("hdr")
        many = ", ".join("<person%d@example.org>" % i for i in range(150))
        msg = (self.head(tok, "Cc: %s\r\n" % many) + "\r\nBody.\r\n") \
            .encode()
        self.assertGreater(longest(msg), 3000)
        got = self.deliver(msg)
        # Unfolding (RFC 5322 2.2.3) gives the field back.
        raw_cc = [f for f in re.sub(rb"\r\n(?=[ \t])", b"",
                                    self.raw).split(b"\r\n")
                  if f.startswith(b"Cc: ")]
        self.assertEqual(raw_cc, [("Cc: " + many).encode()])
        self.assertIn(b"\r\n <person", self.raw.split(b"\r\n\r\n")[0],
                      "the field was folded")
        self.assertEqual(text_of(got), b"Body.")

    def test_long_line_in_one_part_with_attachment(self):
        tok = unique("mixed")
        csv = "\u00e9;".join("v%d" % i for i in range(900))
        msg = (self.head(tok, "MIME-Version: 1.0\r\nContent-Type: "
                         "multipart/mixed; boundary=outer\r\n") +
               "\r\nThis is a multi-part message.\r\n--outer\r\n"
               "Content-Type: text/plain; charset=utf-8\r\n\r\n"
               "See the attachment.\r\n--outer\r\nContent-Type: text/csv; "
               "charset=utf-8\r\nContent-Disposition: attachment; "
               "filename=data.csv\r\n\r\n%s\r\n--outer\r\nContent-Type: "
               "application/octet-stream\r\nContent-Transfer-Encoding: "
               "base64\r\n\r\nAAECAwQF\r\n--outer--\r\n" % csv).encode()
        got = self.deliver(msg)
        parts = list(got.iter_parts())
        self.assertEqual(text_of(parts[0]), b"See the attachment.")
        self.assertEqual(parts[1]["Content-Transfer-Encoding"],
                         "quoted-printable")
        self.assertEqual(text_of(parts[1]), csv.encode())
        self.assertEqual(parts[2].get_payload(decode=True),
                         bytes(range(6)))


class RefuseLongLinesTest(PetrelCase):
    overrides = {"smtpd": {"long_lines": "refuse"}}

    def test_refused_and_nothing_queued(self):
        tok = unique("refuse")
        msg = ("From: <app@example.com>\r\nTo: <rcpt@example.org>\r\n"
               "Subject: %s\r\n\r\n%s\r\n" % (tok, "x" * 2000)).encode()
        # The harness's send() turns a refused DATA into an assertion.
        with self.assertRaises(AssertionError) as cm:
            self.submit(msg)
        self.assertIn("DATA got 550 5.6.0", str(cm.exception))
        time.sleep(1)
        self.assertEqual(self.suite.relayq_json(), [])
        self.assertFalse([t for t in self.capture.all_transactions()
                          if tok.encode() in t.data])
