"""test_smuggling.py - SMTP smuggling: only CRLF.CRLF ends DATA.

smtpd normalises a bare CR or a bare LF in DATA to CRLF before queueing,
and a "." line that does not follow a real CRLF, or is not ended by a real
CRLF, is message text, never the end of the data. Each variant below is
embedded in a body followed by what looks like a second SMTP transaction
and then the real CRLF.CRLF: exactly one message must be queued (one reply,
then QUIT's), delivered to the next hop with the smuggled text as body text
(normalised to CRLF), and nothing may ever be addressed to the victim.
Every variant is sent in one write and split across TCP segments, over a
trusted plaintext loopback listener and over STARTTLS + AUTH PLAIN.

RawClient and restart_with_listener() are also used by test_hardening.py.
"""

import re
import socket
import ssl
import time
import unittest

import harness
from harness import PetrelCase, auth_plain_arg, make_message, unique, \
    unverified_ctx

REPLY_RE = re.compile(rb"^(\d{3})([ -])(.*)$")

# name -> the bytes between "Line before" and the smuggled commands.
VARIANTS = [
    ("lf.lf", b"\n.\n"),
    ("crlf.lf", b"\r\n.\n"),
    ("lf.crlf", b"\n.\r\n"),
    ("cr.cr", b"\r.\r"),
    ("cr.crlf", b"\r.\r\n"),
    ("crlf.cr", b"\r\n.\r"),
    ("crlf.crcrlf", b"\r\n.\r\r\n"),
    ("lf.cr.lf", b"\n.\r\n\n"),
]

VICTIM = "victim@y.example"
EVIL = "evil@x.example"


def normalise(b):
    """Every bare CR and bare LF made a CRLF, as smtpd promises."""
    return re.sub(rb"\r\n|\r|\n", b"\r\n", b)


class RawClient:
    """A byte-level SMTP client: exact writes, strict reply reading."""

    def __init__(self, port, implicit=False, timeout=15):
        s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.raw = s
        self.s = unverified_ctx().wrap_socket(s) if implicit else s
        self.buf = b""
        self.tls = implicit
        self.greeting = self.reply()

    def _fill(self):
        data = self.s.recv(65536)
        if not data:
            raise EOFError("connection closed by smtpd")
        self.buf += data

    def readline(self):
        while b"\n" not in self.buf:
            self._fill()
        line, _, self.buf = self.buf.partition(b"\n")
        return line + b"\n"

    def reply(self):
        """One (possibly multi-line) reply -> (code, [text lines])."""
        texts = []
        while True:
            line = self.readline()
            if not line.endswith(b"\r\n"):
                raise AssertionError("reply line not ended by CRLF: %r"
                                     % line)
            m = REPLY_RE.match(line[:-2])
            if m is None:
                raise AssertionError("not an SMTP reply line: %r" % line)
            texts.append(m.group(3).decode("utf-8", "replace"))
            if m.group(2) == b" ":
                return int(m.group(1)), texts

    def replies(self, n):
        return [self.reply() for _ in range(n)]

    def send(self, data):
        if isinstance(data, str):
            data = data.encode()
        self.s.sendall(data)

    def send_parts(self, parts, pause=0.05):
        """Each part in its own write (own TCP segment / TLS record)."""
        for i, p in enumerate(parts):
            if i:
                time.sleep(pause)
            if p:
                self.s.sendall(p)

    def cmd(self, line):
        self.send(line.encode() + b"\r\n" if isinstance(line, str)
                  else line + b"\r\n")
        return self.reply()

    def pending(self, wait=0.3):
        """Bytes that arrive within wait seconds (b"" if none, None at
        EOF), beyond what was already read."""
        if self.buf:
            return self.buf
        self.s.settimeout(wait)
        try:
            data = self.s.recv(65536)
            return data if data else None
        except (socket.timeout, ssl.SSLWantReadError):
            return b""
        finally:
            self.s.settimeout(15)

    def expect_eof(self, wait=5):
        """True if smtpd closes the connection (no more bytes) in time."""
        if self.buf:
            return False
        self.s.settimeout(wait)
        try:
            while True:
                data = self.s.recv(65536)
                if not data:
                    return True
                self.buf += data
                return False
        except (ConnectionResetError, ssl.SSLError):
            return True
        except socket.timeout:
            return False
        finally:
            self.s.settimeout(15)

    def starttls(self):
        code, texts = self.cmd("STARTTLS")
        if code != 220:
            raise AssertionError("STARTTLS got %d %r" % (code, texts))
        if self.buf:
            raise AssertionError("plaintext after the 220 to STARTTLS: %r"
                                 % self.buf)
        self.s = unverified_ctx().wrap_socket(self.raw)
        self.tls = True
        return code, texts

    def close(self):
        for s in (self.s, self.raw):
            try:
                s.close()
            except OSError:
                pass


def restart_with_listener(case, tls="none", trusted=None):
    """Restarts case.suite with an extra 127.0.0.1 listener named "local"
    (tls mode tls); trusted, when given, replaces trusted_networks.
    Returns the new listener's port."""
    port = harness.free_port()
    suite = case.suite
    suite.stop()
    suite.config["listeners"] = [
        {"name": "submission", "address": "127.0.0.1:%d"
         % suite.submission_port, "tls": "starttls"},
        {"name": "smtps", "address": "127.0.0.1:%d" % suite.smtps_port,
         "tls": "implicit"},
        {"name": "local", "address": "127.0.0.1:%d" % port, "tls": tls},
    ]
    if trusted is not None:
        suite.config["trusted_networks"] = trusted
    suite.write_config()
    try:
        suite.start()
    except harness.SetupError as e:
        case.fail("restart: %s" % e)
    return port


class SmugglingMixin:
    """Builds the hostile messages, submits them, checks the outcome."""

    def hostile(self, variant):
        """(token, inner token, DATA bytes without the final CRLF.CRLF,
        expected captured body)."""
        tok = unique("smuggle")
        inner = unique("inner")
        smuggled = ("MAIL FROM:<%s>\r\nRCPT TO:<%s>\r\nDATA\r\n"
                    "From: <%s>\r\nTo: <%s>\r\nSubject: %s\r\n\r\n"
                    "Smuggled body." % (EVIL, VICTIM, EVIL, VICTIM,
                                        inner)).encode()
        head = make_message(tok, body=b"")
        body = b"Line before" + variant + smuggled
        return tok, inner, head + body, normalise(body) + b"\r\n"

    def open_session(self):
        """A session ready for MAIL (subclasses: plain or TLS + AUTH)."""
        raise NotImplementedError

    def submit_hostile(self, variant, split=None, what=""):
        """Sends one hostile message; split is None (one write) or a list
        of offsets into the variant where a new TCP segment starts.
        Returns (qid, token, inner token, expected body)."""
        tok, inner, data, expect = self.hostile(variant)
        c = self.open_session()
        try:
            for line, code in (("MAIL FROM:<app@example.com>", 250),
                               ("RCPT TO:<rcpt@example.org>", 250),
                               ("DATA", 354)):
                got = c.cmd(line)
                self.assertEqual(got[0], code, "%s: %s got %r"
                                 % (what, line, got))
            wire = data + b"\r\n.\r\n"
            if split is None:
                c.send(wire)
            else:
                at = data.index(variant)
                cuts = [0] + [at + k for k in split] + [len(wire)]
                c.send_parts([wire[a:b] for a, b in zip(cuts, cuts[1:])])
            code, texts = c.reply()
            self.assertEqual(code, 250, "%s: end of data got %d %r\n%s"
                             % (what, code, texts,
                                self.suite.log_tail(20)))
            m = harness.QID_RE.search(texts[-1])
            self.assertIsNotNone(m, "%s: no queue id in %r" % (what, texts))
            # Nothing else may come back: no reply to smuggled commands.
            extra = c.pending(0.1)
            self.assertEqual(extra, b"", "%s: smtpd sent more after the "
                             "one end-of-data reply: %r" % (what, extra))
            got = c.cmd("QUIT")
            self.assertEqual(got[0], 221, "%s: QUIT got %r (a reply to a "
                             "smuggled command?)" % (what, got))
            self.assertTrue(c.expect_eof(), "%s: no close after QUIT"
                            % what)
        finally:
            c.close()
        return m.group(1), tok, inner, expect

    def submit_all(self, cases):
        """cases: [(what, variant, split)]. Submits every case (each on
        its own connection), then fails once, naming every case that
        failed; returns [(what, qid, token, inner, expected body)]."""
        sent, failed = [], []
        for what, v, split in cases:
            try:
                qid, tok, inner, expect = self.submit_hostile(
                    v, split=split, what=what)
                sent.append((what, qid, tok, inner, expect))
            except (AssertionError, OSError, EOFError) as e:
                failed.append("%s: %s" % (what, str(e)[:600]))
        if failed:
            self.fail("%d of %d case(s) failed:\n%s\n%s" % (
                len(failed), len(cases), "\n".join(failed),
                self.suite.log_tail(20)))
        return sent

    def check_delivered(self, sent):
        """sent: [(what, qid, token, inner, expected body)]."""
        for what, qid, tok, inner, expect in sent:
            t = self.wait_arrival(tok)
            self.assertEqual(len(t), 1, "%s: %d copies" % (what, len(t)))
            t = t[0]
            self.assertEqual([r.lower() for r in t.rcpt_tos],
                             ["rcpt@example.org"], what)
            self.assertEqual(t.mail_from, "app@example.com", what)
            self.assertEqual(t.body, expect, "%s: the body as delivered "
                             "differs from the CRLF-normalised input"
                             % what)
            self.suite.wait_delivery(qid, "rcpt@example.org", "sent")
        time.sleep(1)           # let any stray message show up
        ts = self.capture.all_transactions()
        self.assertEqual(len(ts), len(sent), "the next hop saw %d "
                         "transactions for %d messages sent: %r"
                         % (len(ts), len(sent), ts))
        for t in ts:
            self.assertNotIn(VICTIM, [r.lower() for r in t.rcpt_tos])
            self.assertNotEqual(t.mail_from.lower(), EVIL)
        self.assertEqual(self.capture.rcpt_attempts(VICTIM), [])
        for what, qid, tok, inner, expect in sent:
            owners = [t for t in ts if inner.encode() in t.data]
            self.assertEqual(len(owners), 1, "%s: the smuggled message "
                             "text is in %d transactions" % (what,
                                                             len(owners)))
            self.assertIn(tok.encode(), owners[0].data)
        self.assertEqual(self.suite.deliveries(rcpt=VICTIM), [])
        self.assertNotIn(VICTIM, self.suite.log(),
                         "the victim address reached master's log")
        left = self.suite.relayq_json()
        self.assertEqual(left, [], "messages left in the queue: %r" % left)


class SmugglingPlainTest(SmugglingMixin, PetrelCase):
    """A tls: none loopback listener, 127.0.0.1 trusted (no AUTH)."""

    def setUp(self):
        super().setUp()
        self.port = restart_with_listener(self, "none", ["127.0.0.1/32"])

    def open_session(self):
        c = RawClient(self.port)
        self.assertEqual(c.greeting[0], 220)
        got = c.cmd("EHLO client.test")
        self.assertEqual(got[0], 250, got)
        return c

    def test_variants_in_one_write(self):
        self.check_delivered(self.submit_all(
            [(name, v, None) for name, v in VARIANTS]))

    def test_variants_split_across_segments(self):
        """A new TCP segment at every offset inside each variant, and
        one byte per segment."""
        cases = []
        for name, v in VARIANTS:
            splits = [[k] for k in range(len(v) + 1)]
            splits.append(list(range(len(v) + 1)))
            cases += [("%s split at %r" % (name, sp), v, sp)
                      for sp in splits]
        self.check_delivered(self.submit_all(cases))

    def test_real_terminator_split_everywhere(self):
        """The genuine CRLF.CRLF split byte by byte still ends DATA, once;
        the pipelined QUIT after it is answered."""
        tok = unique("realend")
        c = self.open_session()
        try:
            for line in ("MAIL FROM:<app@example.com>",
                         "RCPT TO:<rcpt@example.org>", "DATA"):
                c.cmd(line)
            c.send(make_message(tok, body=b"last line"))
            c.send_parts([b"\r", b"\n", b".", b"\r", b"\nQU", b"IT\r\n"])
            replies = c.replies(2)
            self.assertEqual(replies[0][0], 250, replies)
            self.assertEqual(replies[1][0], 221, replies)
            self.assertTrue(c.expect_eof())
        finally:
            c.close()
        t = self.wait_arrival(tok)[0]
        self.assertEqual(t.body, b"last line\r\n")


class SmugglingTlsAuthTest(SmugglingMixin, PetrelCase):
    """The 587-style listener: STARTTLS, AUTH PLAIN, raw bytes in TLS."""

    implicit = False

    def open_session(self):
        user, pw = self.ensure_user()
        if self.implicit:
            c = RawClient(self.suite.smtps_port, implicit=True)
        else:
            c = RawClient(self.suite.submission_port)
            self.assertEqual(c.cmd("EHLO client.test")[0], 250)
            c.starttls()
        got = c.cmd("EHLO client.test")
        self.assertEqual(got[0], 250, got)
        got = c.cmd("AUTH PLAIN " + auth_plain_arg(user, pw))
        self.assertEqual(got[0], 235, got)
        return c

    def test_variants_over_starttls_auth(self):
        cases = []
        for name, v in VARIANTS:
            cases += [("%s split at %r" % (name, sp), v, sp)
                      for sp in (None, [1], [len(v) - 1],
                                 list(range(len(v) + 1)))]
        self.check_delivered(self.submit_all(cases))

    def test_variants_over_implicit_tls(self):
        self.implicit = True
        self.check_delivered(self.submit_all(
            [("%s byte by byte" % name, v, list(range(len(v) + 1)))
             for name, v in VARIANTS]))


if __name__ == "__main__":
    unittest.main()
