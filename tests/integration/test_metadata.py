"""test_metadata.py - tags and metadata from an application's headers.

smtpd reads X-Petrel-Tag, X-Petrel-Metadata-*, X-Mailgun-Tag,
X-Mailgun-Variables, X-PM-Tag, X-PM-Metadata-* and X-SMTPAPI at the end of
the header block (lib/metahdr), puts their tags and metadata into the
accepted event (read here with relayq -o -j) and removes them from the
message, which reaches the next hop (capture_smtpd) without them, unless
events.keep_metadata_headers. Malformed JSON and a bound exceeded are
refused after the data with 550 5.6.0, and nothing is queued.
"""

import json

from harness import (PetrelCase, connect, login_plain, make_message,
                     unique)

FAMILY = [
    "X-Petrel-Tag: welcome, signup",
    "X-Petrel-Metadata-user_id: 42",
    "X-Mailgun-Tag: newsletter",
    'X-Mailgun-Variables: {"order": 7,\r\n  "plan": "pro"}',
    "X-PM-Tag: receipts",
    "X-PM-Metadata-Customer: acme",
    'X-SMTPAPI: {"category": ["cat1", "cat2"],'
    ' "unique_args": {"campaign": "c9"}}',
]
NAMES = [b"x-petrel-tag", b"x-petrel-metadata-user_id", b"x-mailgun-tag",
         b"x-mailgun-variables", b"x-pm-tag", b"x-pm-metadata-customer",
         b"x-smtpapi"]
TAGS = ["welcome", "signup", "newsletter", "receipts", "cat1", "cat2"]
META = {"user_id": "42", "order": 7, "plan": "pro", "Customer": "acme",
        "campaign": "c9"}


def events_json(suite):
    r = suite.relayq("-o", "-j")
    return [json.loads(line) for line in
            r.stdout.decode("utf-8", "replace").splitlines() if line.strip()]


def header_names(data):
    head = data.split(b"\r\n\r\n", 1)[0]
    return [line.split(b":", 1)[0].strip().lower()
            for line in head.split(b"\r\n")
            if line and line[:1] not in (b" ", b"\t")]


class MetadataTest(PetrelCase):

    def accepted(self, qid):
        evs = [e for e in events_json(self.suite)
               if e["event"] == "accepted" and e["queue_id"] == qid]
        self.assertEqual(len(evs), 1, events_json(self.suite))
        return evs[0]

    def refused(self, msg):
        """DATA's reply for msg, with the session's own envelope."""
        user, pw = self.ensure_user()
        c = connect(self.suite)
        try:
            login_plain(c, user, pw)
            self.assertEqual(c.mail("app@example.com")[0], 250)
            self.assertEqual(c.rcpt("rcpt@example.org")[0], 250)
            got = c.data(msg)
            # The session goes on: a good message after it is taken.
            self.assertEqual(c.mail("app@example.com")[0], 250)
            c.rset()
            return got
        finally:
            c.quit()

    def test_families_read_and_removed(self):
        token = unique("meta")
        msg = make_message(token, extra_headers=FAMILY + ["X-Mailer: m"])
        qid = self.submit(msg)
        got = self.wait_arrival(token)[0].data
        names = header_names(got)
        for n in NAMES:
            self.assertNotIn(n, names, got)
        # Everything else arrives as sent.
        self.assertIn(b"x-mailer", names)
        self.assertIn(b"Subject: %s\r\nDate: " % token.encode(), got)
        self.assertIn(b"\r\n\r\nHello.\r\n", got)
        ev = self.accepted(qid)
        self.assertEqual(ev["tags"], TAGS)
        self.assertEqual(ev["metadata"], META)
        self.assertEqual(list(ev["metadata"]), list(META))  # order kept
        self.assertEqual(ev["message_id"], "<%s@client.test>" % token)

    def test_plain_message_has_none(self):
        token = unique("plain")
        msg = make_message(token)
        qid = self.submit(msg)
        got = self.wait_arrival(token)[0].data
        self.assertTrue(got.endswith(msg.split(b"Subject:", 1)[1]), got)
        ev = self.accepted(qid)
        self.assertNotIn("tags", ev)
        self.assertNotIn("metadata", ev)

    def test_malformed_json_refused(self):
        token = unique("bad")
        msg = make_message(token, extra_headers=[
            "X-Petrel-Tag: a", 'X-Mailgun-Variables: {"a": 1,'])
        code, text = self.refused(msg)
        self.assertReply((code, text), 550, "5.6.0")
        self.assertIn(b"X-Mailgun-Variables: malformed JSON", text)
        self.assertEqual(self.suite.relayq_json(), [])
        self.assertEqual([e for e in events_json(self.suite)
                          if e["event"] == "accepted"], [])
        self.assertIn("bad metadata header", self.suite.log())

    def test_over_bound_refused(self):
        token = unique("many")
        tags = ", ".join("t%d" % i for i in range(11))
        code, text = self.refused(make_message(
            token, extra_headers=["X-Petrel-Tag: " + tags]))
        self.assertReply((code, text), 550, "5.6.0")
        self.assertIn(b"more than 10 tags", text)
        code, text = self.refused(make_message(token, extra_headers=[
            "X-PM-Metadata-k%d: v" % i for i in range(21)]))
        self.assertReply((code, text), 550, "5.6.0")
        self.assertIn(b"more than 20 metadata keys", text)
        self.assertEqual(self.suite.relayq_json(), [])
        # Ten tags are within the bound.
        qid = self.submit(make_message(token, extra_headers=[
            "X-Petrel-Tag: " + ", ".join("t%d" % i for i in range(10))]))
        self.assertEqual(len(self.accepted(qid)["tags"]), 10)


class KeepMetadataHeadersTest(PetrelCase):
    overrides = {"events": {"keep_metadata_headers": True}}

    def test_kept(self):
        token = unique("keep")
        msg = make_message(token, extra_headers=FAMILY)
        qid = self.submit(msg)
        got = self.wait_arrival(token)[0].data
        names = header_names(got)
        for n in NAMES:
            self.assertIn(n, names, got)
        # Byte for byte, folding included.
        self.assertIn(b'X-Mailgun-Variables: {"order": 7,\r\n  "plan"', got)
        evs = [e for e in events_json(self.suite)
               if e["event"] == "accepted" and e["queue_id"] == qid]
        self.assertEqual(evs[0]["tags"], TAGS)
        self.assertEqual(evs[0]["metadata"], META)
