"""test_hardening.py - the front door's protocol hardening.

PIPELINING (a whole transaction in one write, replies in order), STARTTLS
command injection (CVE-2011-0411: bytes sent before the handshake are
discarded, the session restarts from EHLO), limits.max_errors (421 4.7.0
and close), limits.line_length (500 5.5.2, the session goes on), and the
tls: none listener that never offers or accepts AUTH.
"""

import unittest

import harness
from harness import PetrelCase, auth_plain_arg, make_message, unique
from test_smuggling import RawClient, restart_with_listener

RCPTS = ["a@example.org", "b@example.org", "c@example.org"]


def tls_auth_session(case):
    """A RawClient on the submission port after STARTTLS, EHLO, AUTH."""
    user, pw = case.ensure_user()
    c = RawClient(case.suite.submission_port)
    case.assertEqual(c.cmd("EHLO client.test")[0], 250)
    c.starttls()
    case.assertEqual(c.cmd("EHLO client.test")[0], 250)
    got = c.cmd("AUTH PLAIN " + auth_plain_arg(user, pw))
    case.assertEqual(got[0], 235, got)
    return c


class PipeliningTest(PetrelCase):

    def assertCodes(self, replies, want, what):
        got = [(code, texts[-1][:5]) for code, texts in replies]
        self.assertEqual(got, want, "%s: replies %r" % (what, replies))

    def test_whole_transaction_in_one_write(self):
        tok = unique("pipe")
        c = tls_auth_session(self)
        try:
            ehlo = c.cmd("EHLO client.test")
            self.assertIn("PIPELINING", ehlo[1])
            c.send("MAIL FROM:<app@example.com>\r\n" +
                   "".join("RCPT TO:<%s>\r\n" % r for r in RCPTS) +
                   "DATA\r\n")
            self.assertCodes(c.replies(5), [(250, "2.1.0")] +
                             [(250, "2.1.5")] * 3 + [(354, "End d")],
                             "MAIL, RCPT x3, DATA")
            c.send(make_message(tok) + b".\r\nQUIT\r\n")
            replies = c.replies(2)
            self.assertCodes(replies, [(250, "2.0.0"), (221, "2.0.0")],
                             "message, QUIT")
            qid = harness.QID_RE.search(replies[0][1][-1]).group(1)
            self.assertTrue(c.expect_eof(), "no close after QUIT")
        finally:
            c.close()
        got = self.wait_arrival(tok)
        rcpts = sorted(r.lower() for t in got for r in t.rcpt_tos)
        self.assertEqual(rcpts, sorted(RCPTS), "each recipient once: %r"
                         % got)
        for r in RCPTS:
            self.suite.wait_delivery(qid, r, "sent")
        others = [d for d in self.suite.deliveries() if d["qid"] != qid]
        self.assertEqual(others, [], "more than one message queued")

    def test_errors_in_a_pipelined_group_answered_in_order(self):
        tok = unique("pipeerr")
        c = tls_auth_session(self)
        try:
            c.send("MAIL FROM:<app@example.com>\r\n"
                   "RCPT TO:<a@example.org>\r\n"
                   "RCPT TO:<broken\r\n"
                   "XYZZY\r\n"
                   "RCPT TO:<c@example.org>\r\n"
                   "DATA\r\n")
            replies = c.replies(6)
            self.assertEqual([code for code, _ in replies],
                             [250, 250, 501, 500, 250, 354], replies)
            c.send(make_message(tok) + b".\r\nNOOP\r\nQUIT\r\n")
            self.assertCodes(c.replies(3), [(250, "2.0.0"), (250, "2.0.0"),
                                            (221, "2.0.0")],
                             "message, NOOP, QUIT")
        finally:
            c.close()
        got = self.wait_arrival(tok)
        rcpts = sorted(r.lower() for t in got for r in t.rcpt_tos)
        self.assertEqual(rcpts, ["a@example.org", "c@example.org"])

    def test_two_transactions_and_quit_in_one_write(self):
        """Even the message text in the same write (not what RFC 2920 asks
        of a client, but a server must cope): two messages, in order."""
        tok1, tok2 = unique("blast1"), unique("blast2")
        c = tls_auth_session(self)
        try:
            c.send(b"RSET\r\nMAIL FROM:<app@example.com>\r\n"
                   b"RCPT TO:<a@example.org>\r\nDATA\r\n" +
                   make_message(tok1) + b".\r\n"
                   b"MAIL FROM:<app@example.com>\r\n"
                   b"RCPT TO:<b@example.org>\r\nDATA\r\n" +
                   make_message(tok2) + b".\r\nQUIT\r\n")
            replies = c.replies(9)
            self.assertCodes(replies, [
                (250, "2.0.0"), (250, "2.1.0"), (250, "2.1.5"),
                (354, "End d"), (250, "2.0.0"), (250, "2.1.0"),
                (250, "2.1.5"), (354, "End d"), (250, "2.0.0")],
                "two pipelined transactions")
            q1 = harness.QID_RE.search(replies[4][1][-1]).group(1)
            q2 = harness.QID_RE.search(replies[8][1][-1]).group(1)
            self.assertNotEqual(q1, q2)
            self.assertEqual(c.reply()[0], 221)
            self.assertTrue(c.expect_eof())
        finally:
            c.close()
        t1 = self.wait_arrival(tok1)
        t2 = self.wait_arrival(tok2)
        self.assertEqual(t1[0].rcpt_tos, ["a@example.org"])
        self.assertEqual(t2[0].rcpt_tos, ["b@example.org"])
        self.assertNotIn(tok2.encode(), t1[0].data)
        self.suite.wait_delivery(q1, "a@example.org", "sent")
        self.suite.wait_delivery(q2, "b@example.org", "sent")


class StartTlsInjectionTest(PetrelCase):
    """CVE-2011-0411: commands sent with STARTTLS, before the handshake,
    must never be executed."""

    def test_injected_rset_not_executed(self):
        c = RawClient(self.suite.submission_port)
        try:
            self.assertEqual(c.cmd("EHLO client.test")[0], 250)
            c.send(b"STARTTLS\r\nRSET\r\n")
            code, texts = c.reply()
            self.assertEqual(code, 220, texts)
            # No reply to RSET in plaintext either.
            self.assertEqual(c.pending(0.3), b"", "plaintext reply to the "
                             "injected RSET")
            c.s = harness.unverified_ctx().wrap_socket(c.raw)
            # The first reply inside TLS answers our first encrypted
            # command (EHLO: multi-line, our hostname), not the RSET.
            code, texts = c.cmd("EHLO client.test")
            self.assertEqual(code, 250, texts)
            self.assertGreater(len(texts), 1, "first reply in TLS is %r: "
                               "a reply to the injected RSET?" % texts)
            self.assertEqual(texts[0].split()[0], "petrel.test", texts)
            self.assertIn("AUTH PLAIN", texts)
            self.assertEqual(c.cmd("NOOP"), (250, ["2.0.0 Ok"]))
            self.assertEqual(c.pending(0.3), b"")
        finally:
            c.close()

    def test_injected_ehlo_auth_mail_not_executed(self):
        user, pw = self.ensure_user()
        c = RawClient(self.suite.submission_port)
        try:
            self.assertEqual(c.cmd("EHLO client.test")[0], 250)
            c.send(("STARTTLS\r\nEHLO evil.test\r\nAUTH PLAIN %s\r\n"
                    "MAIL FROM:<app@example.com>\r\n"
                    % auth_plain_arg(user, pw)).encode())
            self.assertEqual(c.reply()[0], 220)
            self.assertEqual(c.pending(0.3), b"")
            c.s = harness.unverified_ctx().wrap_socket(c.raw)
            # Had the injected EHLO, AUTH and MAIL run, this would be a
            # nested MAIL or a 250: the session must start from scratch.
            code, texts = c.cmd("MAIL FROM:<app@example.com>")
            self.assertEqual((code, texts[-1][:5]), (503, "5.5.1"),
                             "MAIL before EHLO inside TLS got %d %r"
                             % (code, texts))
            code, texts = c.cmd("EHLO client.test")
            self.assertEqual(code, 250)
            self.assertIn("AUTH PLAIN", texts, "AUTH not offered: the "
                          "injected AUTH logged the session in?")
            code, texts = c.cmd("MAIL FROM:<app@example.com>")
            self.assertEqual((code, texts[-1][:5]), (530, "5.7.0"),
                             "unauthenticated MAIL inside TLS: %d %r"
                             % (code, texts))
            got = c.cmd("AUTH PLAIN " + auth_plain_arg(user, pw))
            self.assertEqual(got[0], 235, got)
            self.assertEqual(c.cmd("MAIL FROM:<app@example.com>")[0], 250)
        finally:
            c.close()
        self.assertEqual(self.capture.all_transactions(), [])

    def test_session_restarts_after_starttls(self):
        user, pw = self.ensure_user()
        c = RawClient(self.suite.submission_port)
        try:
            self.assertEqual(c.cmd("EHLO client.test")[0], 250)
            c.starttls()
            for line in ("MAIL FROM:<app@example.com>",
                         "AUTH PLAIN " + auth_plain_arg(user, pw)):
                code, texts = c.cmd(line)
                self.assertEqual((code, texts[-1][:5]), (503, "5.5.1"),
                                 "%s before EHLO after STARTTLS: %d %r"
                                 % (line.split()[0], code, texts))
            code, texts = c.cmd("EHLO client.test")
            self.assertEqual(code, 250)
            self.assertNotIn("STARTTLS", texts)
            code, texts = c.cmd("STARTTLS")
            self.assertEqual(code // 100, 5, "STARTTLS twice: %r" % texts)
        finally:
            c.close()

    def test_700_byte_line_processed_with_default_limit(self):
        """The counterpart of LineLengthTest: 1000 bytes by default."""
        c = RawClient(self.suite.submission_port)
        try:
            c.cmd("EHLO client.test")
            line = "NOOP " + "x" * (700 - 7)
            self.assertEqual(len(line) + 2, 700)
            self.assertEqual(c.cmd(line), (250, ["2.0.0 Ok"]))
        finally:
            c.close()


class ErrorLimitTest(PetrelCase):
    overrides = {"limits": {"max_errors": 3}}

    def test_421_after_max_errors(self):
        c = RawClient(self.suite.submission_port)
        try:
            c.cmd("EHLO client.test")
            for i in range(2):
                code, texts = c.cmd("XYZZY%d" % i)
                self.assertEqual((code, texts[-1][:5]), (500, "5.5.2"))
            self.assertEqual(c.cmd("NOOP")[0], 250, "closed too early")
            code, texts = c.cmd("XYZZY2")
            self.assertEqual((code, texts[-1][:5]), (500, "5.5.2"))
            code, texts = c.reply()
            self.assertEqual((code, texts[-1][:5]), (421, "4.7.0"),
                             "no 421 after max_errors: %d %r"
                             % (code, texts))
            self.assertTrue(c.expect_eof(), "session not closed after 421")
        finally:
            c.close()
        # The count is per session: a new one is served.
        c = RawClient(self.suite.submission_port)
        try:
            self.assertEqual(c.greeting[0], 220)
            self.assertEqual(c.cmd("EHLO client.test")[0], 250)
            self.assertEqual(c.cmd("XYZZY")[0], 500)
            self.assertEqual(c.cmd("NOOP")[0], 250)
        finally:
            c.close()

    def test_pipelined_errors_stop_at_the_limit(self):
        """Commands after the one that hit the limit are not executed."""
        c = RawClient(self.suite.submission_port)
        try:
            c.cmd("EHLO client.test")
            c.send(b"BAD1\r\nBAD2\r\nBAD3\r\nNOOP\r\nBAD4\r\nNOOP\r\n")
            replies = c.replies(4)
            self.assertEqual([code for code, _ in replies],
                             [500, 500, 500, 421], replies)
            self.assertTrue(c.expect_eof(), "more after 421: %r" % c.buf)
        finally:
            c.close()

    def test_failed_auth_and_bad_commands_count_inside_tls(self):
        user, pw = self.ensure_user()
        c = RawClient(self.suite.submission_port)
        try:
            c.cmd("EHLO client.test")
            c.starttls()
            c.cmd("EHLO client.test")
            got = c.cmd("AUTH PLAIN " + auth_plain_arg(user, pw + "x"))
            self.assertEqual(got[0], 535, got)
            self.assertEqual(c.cmd("RCPT TO:<x@example.org>")[0], 503)
            got = c.cmd("XYZZY")
            self.assertEqual(got[0], 500)
            code, texts = c.reply()
            self.assertEqual((code, texts[-1][:5]), (421, "4.7.0"))
            self.assertTrue(c.expect_eof())
        finally:
            c.close()


class LineLengthTest(PetrelCase):
    overrides = {"limits": {"line_length": 600}}

    def test_long_line_refused_session_goes_on(self):
        c = RawClient(self.suite.submission_port)
        try:
            c.cmd("EHLO client.test")
            long_line = "NOOP " + "x" * (700 - 7)
            code, texts = c.cmd(long_line)
            self.assertEqual((code, texts[-1][:5]), (500, "5.5.2"),
                             "700-byte line: %d %r" % (code, texts))
            self.assertEqual(c.pending(0.3), b"", "more than one reply to "
                             "the long line")
            line = "NOOP " + "y" * (550 - 7)
            self.assertEqual(len(line) + 2, 550)
            self.assertEqual(c.cmd(line), (250, ["2.0.0 Ok"]),
                             "550-byte line not processed")
            # The limit counts the whole line with its CRLF.
            self.assertEqual(c.cmd("NOOP " + "z" * (600 - 7)),
                             (250, ["2.0.0 Ok"]), "600 bytes")
            self.assertEqual(c.cmd("NOOP " + "z" * (601 - 7))[0], 500,
                             "601 bytes")
            self.assertEqual(c.cmd("NOOP"), (250, ["2.0.0 Ok"]))
        finally:
            c.close()

    def test_long_line_in_pieces_resyncs_at_line_end(self):
        """The refused line's tail, arriving later, is not a command."""
        c = RawClient(self.suite.submission_port)
        try:
            c.cmd("EHLO client.test")
            c.send_parts([b"NOOP " + b"x" * 695, b"x" * 50 + b"RSET",
                          b"\r\nNOOP\r\n"], pause=0.2)
            replies = c.replies(2)
            self.assertEqual([(code, t[-1][:5]) for code, t in replies],
                             [(500, "5.5.2"), (250, "2.0.0")], replies)
            self.assertEqual(c.pending(0.3), b"", "a reply to the tail of "
                             "the long line")
        finally:
            c.close()

    def test_long_mail_command_inside_tls_not_executed(self):
        c = tls_auth_session(self)
        try:
            code, texts = c.cmd("MAIL FROM:<app@example.com> " +
                                "BODY=8BITMIME " * 50)
            self.assertEqual((code, texts[-1][:5]), (500, "5.5.2"))
            # Had MAIL run, this would be a nested MAIL.
            self.assertEqual(c.cmd("MAIL FROM:<app@example.com>")[0], 250)
        finally:
            c.close()


class PlainListenerAuthTest(PetrelCase):
    """tls: none never offers or accepts AUTH, trusted or not."""

    def check_no_auth(self, port):
        user, pw = self.ensure_user()
        c = RawClient(port)
        try:
            code, texts = c.cmd("EHLO client.test")
            self.assertEqual(code, 250)
            self.assertFalse([t for t in texts if t.upper().startswith(
                "AUTH")], "AUTH offered on tls: none: %r" % texts)
            self.assertNotIn("STARTTLS", texts)
            for line in ("AUTH PLAIN " + auth_plain_arg(user, pw),
                         "AUTH PLAIN", "AUTH LOGIN"):
                code, texts = c.cmd(line)
                self.assertEqual((code, texts[-1][:5]), (503, "5.5.1"),
                                 "%s on tls: none got %d %r"
                                 % (line[:10], code, texts))
            code, texts = c.cmd("STARTTLS")
            self.assertEqual(code // 100, 4, "STARTTLS on tls: none: %r"
                             % texts)
            return c
        except BaseException:
            c.close()
            raise

    def test_untrusted_plain_listener(self):
        port = restart_with_listener(self, "none")
        c = self.check_no_auth(port)
        try:
            code, texts = c.cmd("MAIL FROM:<app@example.com>")
            self.assertEqual((code, texts[-1][:5]), (530, "5.7.0"),
                             "unauthenticated MAIL: %d %r" % (code, texts))
        finally:
            c.close()

    def test_trusted_plain_listener(self):
        port = restart_with_listener(self, "none", ["127.0.0.1/32"])
        c = self.check_no_auth(port)
        tok = unique("plain")
        try:
            self.assertEqual(c.cmd("MAIL FROM:<app@example.com>")[0], 250)
            self.assertEqual(c.cmd("RCPT TO:<rcpt@example.org>")[0], 250)
            self.assertEqual(c.cmd("DATA")[0], 354)
            code, texts = c.cmd(make_message(tok) + b".")
            self.assertEqual(code, 250, texts)
        finally:
            c.close()
        t = self.wait_arrival(tok)[0]
        recv = t.header("Received")[0]
        self.assertIn("with ESMTP ", recv, "not plain ESMTP: %r" % recv)
        self.assertNotIn("authenticated", recv)


if __name__ == "__main__":
    unittest.main()
