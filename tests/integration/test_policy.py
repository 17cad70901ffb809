"""test_policy.py - per-application credential policy (relayctl user ...).

Sender domains (MAIL FROM and the header From:, 550 5.7.1), client
networks (a login from elsewhere fails like a wrong secret), recipients per
message (452 4.5.3), message size (EHLO SIZE, 552 5.3.4), messages per hour
and per day (451 4.7.1, shared by every smtpd process, kept across
restarts), changes, disable, enable and delete applied to sessions already
open, rotation without downtime, and AUTH LOGIN (off by default).
"""

import base64
import json
import re
import smtplib
import time
import unittest

from harness import PetrelCase, auth_plain_arg, connect, login_plain, \
    make_message, unique, unverified_ctx

SECRET = "app-secret-0123456789"
RCPT = "rcpt@example.org"


def try_send(c, sender, rcpts, msg, mail_options=()):
    """MAIL, RCPT..., DATA; returns (stage, code, text) where stage is the
    step that was refused ("mail", "rcpt", "data", "end") or "ok"."""
    code, text = c.mail(sender, list(mail_options))
    if code != 250:
        c.rset()
        return "mail", code, text.decode("utf-8", "replace")
    for r in rcpts:
        code, text = c.rcpt(r)
        if code not in (250, 251):
            c.rset()
            return "rcpt", code, text.decode("utf-8", "replace")
    try:
        code, text = c.data(msg)
    except smtplib.SMTPDataError as e:
        c.rset()
        return "data", e.smtp_code, e.smtp_error.decode("utf-8", "replace")
    text = text.decode("utf-8", "replace")
    return ("ok" if code == 250 else "end"), code, text


def wait_window_margin(period, margin=60):
    """Rate windows are aligned to the clock (now - now % period): a test
    that counts within one window waits if the window ends too soon."""
    left = period - int(time.time()) % period
    if left < margin:
        time.sleep(left + 1)


class PolicyCase(PetrelCase):
    """Helpers for credentials made with relayctl options."""

    def add(self, name, *opts, secret=SECRET):
        self.suite.relayctl("user", "add", name, "--password-stdin", *opts,
                            input=(secret + "\n").encode())
        return secret

    def session(self, user="app", secret=SECRET, source=None):
        """STARTTLS, EHLO, AUTH PLAIN (235 asserted)."""
        if source is None:
            c = connect(self.suite)
        else:
            c = smtplib.SMTP("127.0.0.1", self.suite.submission_port,
                             timeout=30, source_address=(source, 0))
            c.ehlo("client.test")
            c.starttls(context=unverified_ctx())
            c.ehlo("client.test")
        try:
            code, text = login_plain(c, user, secret)
        except smtplib.SMTPAuthenticationError as e:
            c.close()
            self.fail("AUTH %s with its secret: %d %s\n%s" % (
                user, e.smtp_code, e.smtp_error, self.suite.log_tail(20)))
        self.assertEqual(code, 235)
        return c

    def auth_reply(self, user, secret, source=None):
        """(code, text) of AUTH PLAIN in a new TLS session."""
        if source is None:
            c = connect(self.suite)
        else:
            c = smtplib.SMTP("127.0.0.1", self.suite.submission_port,
                             timeout=30, source_address=(source, 0))
            c.ehlo("client.test")
            c.starttls(context=unverified_ctx())
            c.ehlo("client.test")
        try:
            code, text = c.docmd("AUTH", "PLAIN " +
                                 auth_plain_arg(user, secret))
            return code, text.decode("utf-8", "replace")
        finally:
            quit_(c)

    def expect(self, got, stage, code, enhanced, what):
        st, c, text = got
        if st != stage or c != code or not text.startswith(enhanced):
            self.fail("%s: expected %d %s at %s, got %d %s at %s\n%s" % (
                what, code, enhanced, stage, c, text, st,
                self.suite.log_tail(20)))

    def expect_ok(self, got, what):
        st, c, text = got
        if st != "ok":
            self.fail("%s: refused at %s with %d %s\n%s" % (
                what, st, c, text, self.suite.log_tail(20)))
        m = re.search(r"queued as ([0-9A-Za-z]+)", text)
        self.assertIsNotNone(m, "%s: 250 without a queue id: %r"
                             % (what, text))
        return m.group(1)

    def assertNothingDelivered(self, tok, wait=2.0):
        time.sleep(wait)
        got = [t for t in self.capture.all_transactions()
               if tok.encode() in t.data]
        self.assertEqual(got, [], "a refused message reached the next "
                         "hop: %r" % got)
        queued = self.suite.relayq_json()
        self.assertEqual(queued, [], "something is in the queue: %r"
                         % queued)

    def count_arrivals(self, tok):
        return len([t for t in self.capture.messages()
                    if tok.encode() in t.data])


def quit_(c):
    try:
        c.quit()
    except (smtplib.SMTPException, OSError):
        try:
            c.close()
        except OSError:
            pass


class DomainsTest(PolicyCase):

    def test_envelope_and_header_sender_domains(self):
        self.add("app", "--domains", "a.example")
        show = json.loads(self.suite.relayctl(
            "user", "show", "app", "-j").stdout.decode())
        self.assertEqual(show.get("domains"), ["a.example"], show)
        tok = unique("dom")
        c = self.session()
        try:
            # Envelope sender in the domain, and in a subdomain.
            qid1 = self.expect_ok(try_send(
                c, "x@a.example", [RCPT],
                make_message(tok + " env1", sender="x@a.example")),
                "MAIL FROM:<x@a.example>")
            qid2 = self.expect_ok(try_send(
                c, "x@mail.a.example", [RCPT],
                make_message(tok + " env2", sender="x@mail.a.example")),
                "MAIL FROM:<x@mail.a.example> (a subdomain)")
            # Another domain, and one that only ends like it.
            self.expect(try_send(c, "x@b.example", [RCPT],
                                 make_message(tok + " bad1",
                                              sender="x@b.example")),
                        "mail", 550, "5.7.1", "MAIL FROM:<x@b.example>")
            self.expect(try_send(c, "x@evila.example", [RCPT],
                                 make_message(tok + " bad2",
                                              sender="x@evila.example")),
                        "mail", 550, "5.7.1", "MAIL FROM:<x@evila.example>")
            # Envelope allowed, header From: not: refused after DATA.
            self.expect(try_send(c, "x@a.example", [RCPT],
                                 make_message(tok + " bad3",
                                              sender="y@b.example")),
                        "end", 550, "5.7.1", "header From: <y@b.example>")
            # Two addresses in From:, the second not allowed.
            msg = ("From: <y@a.example>, <z@b.example>\r\nTo: <%s>\r\n"
                   "Subject: %s bad4\r\n\r\nHello.\r\n" % (RCPT, tok))
            self.expect(try_send(c, "x@a.example", [RCPT], msg.encode()),
                        "end", 550, "5.7.1", "From: with a b.example "
                        "address second")
            # No From: at all.
            msg = ("To: <%s>\r\nSubject: %s bad5\r\nDate: Mon, 1 Jan 2024 "
                   "00:00:00 +0000\r\n\r\nHello.\r\n" % (RCPT, tok))
            self.expect(try_send(c, "x@a.example", [RCPT], msg.encode()),
                        "end", 550, "5.7.1", "message without From:")
            # A display name with a comma in quotes is one address.
            msg = ('From: "Name, with comma" <y@a.example>\r\nTo: <%s>\r\n'
                   'Subject: %s ok3\r\n\r\nHello.\r\n' % (RCPT, tok))
            qid3 = self.expect_ok(try_send(c, "x@a.example", [RCPT],
                                           msg.encode()),
                                  'From: "Name, with comma" <y@a.example>')
            # A folded From: whose address is on the continuation line.
            msg = ('From: Some Body\r\n <y@B.example>\r\nTo: <%s>\r\n'
                   'Subject: %s bad6\r\n\r\nHello.\r\n' % (RCPT, tok))
            self.expect(try_send(c, "x@a.example", [RCPT], msg.encode()),
                        "end", 550, "5.7.1", "folded From: <y@B.example>")
        finally:
            quit_(c)
        self.wait_arrival(tok, n=3)
        time.sleep(1.5)
        got = [t for t in self.capture.messages() if tok.encode() in t.data]
        subjects = sorted(t.header("Subject")[0].split()[-1] for t in got)
        self.assertEqual(subjects, ["env1", "env2", "ok3"],
                         "exactly the three accepted messages are "
                         "delivered")
        for q in (qid1, qid2, qid3):
            self.suite.wait_delivery(q, RCPT, "sent")
        self.assertEqual(self.suite.relayq_json(), [],
                         "a refused message is in the queue")


    def test_null_sender_checks_header_from(self):
        """MAIL FROM:<> from a credential restricted to a domain is
        accepted (auto-replies, RFC 3834); its header From: is still
        checked: an allowed one is delivered with the null envelope
        sender, a foreign one refused at the end of DATA."""
        self.add("app", "--domains", "a.example")
        tok = unique("null")
        c = self.session()
        try:
            qid = self.expect_ok(try_send(
                c, "", [RCPT],
                make_message(tok + " ok", sender="auto@a.example")),
                "MAIL FROM:<> with From: <auto@a.example>")
            self.expect(try_send(c, "", [RCPT],
                                 make_message(tok + " bad",
                                              sender="auto@b.example")),
                        "end", 550, "5.7.1",
                        "MAIL FROM:<> with From: <auto@b.example>")
        finally:
            quit_(c)
        self.wait_arrival(tok, n=1)
        self.suite.wait_delivery(qid, RCPT, "sent")
        time.sleep(1.0)
        got = [t for t in self.capture.messages() if tok.encode() in t.data]
        self.assertEqual(len(got), 1, "only the allowed From: is delivered")
        self.assertEqual(got[0].mail_from, "",
                         "delivered with the null envelope sender")
        self.assertIn(b"ok", got[0].header("Subject")[0].encode())


class NetworksTest(PolicyCase):

    def test_login_from_outside_networks_fails_like_wrong_secret(self):
        self.add("app", "--networks", "10.0.0.0/8")
        wrong = self.auth_reply("app", SECRET + "x")
        self.assertEqual(wrong[0], 535, wrong)
        self.assertTrue(wrong[1].startswith("5.7.8"), wrong)
        outside = self.auth_reply("app", SECRET)
        self.assertEqual(outside, wrong, "a login from outside the "
                         "user's networks must look exactly like a wrong "
                         "secret\n%s" % self.suite.log_tail(20))
        log = [l for l in self.suite.log().splitlines()
               if "app" in l and re.search(r"network", l, re.I)]
        self.assertTrue(log, "no log line names the network refusal\n%s"
                        % self.suite.log_tail(20))

    def test_login_from_inside_networks_works(self):
        self.add("app", "--networks", "127.0.0.2/32")
        c = self.session(source="127.0.0.2")
        try:
            tok = unique("net")
            self.expect_ok(try_send(c, "app@example.com", [RCPT],
                                    make_message(tok)), "from 127.0.0.2")
        finally:
            quit_(c)
        got = self.auth_reply("app", SECRET, source="127.0.0.1")
        self.assertEqual(got[0], 535, "login from 127.0.0.1 outside "
                         "127.0.0.2/32: %r" % (got,))
        self.wait_arrival(tok)


class LimitsTest(PolicyCase):

    def test_max_recipients(self):
        self.add("app", "--max-recipients", "2")
        tok = unique("rcpts")
        c = self.session()
        try:
            code, _ = c.mail("app@example.com")
            self.assertEqual(code, 250)
            self.assertEqual(c.rcpt("r1@example.org")[0], 250)
            self.assertEqual(c.rcpt("r2@example.org")[0], 250)
            got = c.rcpt("r3@example.org")
            self.assertReply(got, 452, "4.5.3", "third RCPT")
            code, text = c.data(make_message(tok))
            self.assertEqual(code, 250, text)
        finally:
            quit_(c)
        got = self.wait_arrival(tok)
        rcpts = sorted(r for t in got for r in t.rcpt_tos)
        self.assertEqual(rcpts, ["r1@example.org", "r2@example.org"])

    def test_max_size(self):
        self.add("app", "--max-size", "2k")
        tok = unique("size")
        c = connect(self.suite)
        try:
            before = c.esmtp_features.get("size")
            self.assertNotEqual(before, "2048", "SIZE before AUTH is the "
                                "user's limit")
            code, _ = login_plain(c, "app", SECRET)
            self.assertEqual(code, 235)
            c.ehlo("client.test")
            self.assertEqual(c.esmtp_features.get("size"), "2048",
                             "EHLO after AUTH: SIZE %r"
                             % c.esmtp_features.get("size"))
            self.expect(try_send(c, "app@example.com", [RCPT],
                                 make_message(tok + " declared"),
                                 ["SIZE=5000"]),
                        "mail", 552, "5.3.4", "MAIL with SIZE=5000")
            big = make_message(tok + " big",
                               body=(b"y" * 98 + b"\r\n") * 50)
            self.assertGreater(len(big), 5000)
            self.expect(try_send(c, "app@example.com", [RCPT], big),
                        "end", 552, "5.3.4", "5 KB message without SIZE=")
            small = make_message(tok + " small")
            self.expect_ok(try_send(c, "app@example.com", [RCPT], small,
                                    ["SIZE=%d" % len(small)]),
                           "a small message")
        finally:
            quit_(c)
        got = self.wait_arrival(tok)
        time.sleep(1)
        got = [t for t in self.capture.messages() if tok.encode() in t.data]
        self.assertEqual(len(got), 1, "only the small message: %r" % got)
        self.assertIn(b"small", got[0].data)
        self.assertEqual(self.suite.relayq_json(), [])


class RateTest(PolicyCase):
    # Two smtpd processes: the counters must be shared between them.
    overrides = {"smtpd": {"processes": 2}}

    def test_max_per_hour_shared_and_kept_across_restart(self):
        wait_window_margin(3600)
        self.add("app", "--max-per-hour", "3")
        tok = unique("hour")
        results = []
        c1 = self.session()
        c2 = self.session()
        try:
            for i, c in enumerate((c1, c2, c1, c2)):
                results.append(try_send(c, "app@example.com", [RCPT],
                                        make_message("%s m%d" % (tok, i))))
        finally:
            quit_(c1)
            quit_(c2)
        for i in range(3):
            self.expect_ok(results[i], "message %d of 3 per hour" % (i + 1))
        st, code, text = results[3]
        if code != 451 or not text.startswith("4.7.1") or \
                st not in ("mail", "end"):
            self.fail("4th message in the hour: expected 451 4.7.1 at MAIL "
                      "or after DATA, got %d %s at %s\n%s"
                      % (code, text, st, self.suite.log_tail(20)))
        self.wait_arrival(tok, n=3)
        # Restart every process; the count is kept.
        self.suite.stop()
        self.suite.start()
        c = self.session()
        try:
            st, code, text = try_send(c, "app@example.com", [RCPT],
                                      make_message("%s m4" % tok))
        finally:
            quit_(c)
        if code != 451 or not text.startswith("4.7.1"):
            self.fail("after a restart the 4th message in the hour got "
                      "%d %s at %s (the counter was lost)\n%s"
                      % (code, text, st, self.suite.log_tail(20)))
        time.sleep(1.5)
        self.assertEqual(self.count_arrivals(tok), 3,
                         "exactly 3 messages delivered")
        self.assertEqual(self.suite.relayq_json(), [])
        # Another credential has its own count.
        self.add("other", "--max-per-hour", "3")
        c = self.session("other")
        try:
            self.expect_ok(try_send(c, "app@example.com", [RCPT],
                                    make_message(tok + " other")),
                           "another user's first message")
        finally:
            quit_(c)

    def test_max_per_day(self):
        wait_window_margin(86400)
        self.add("app", "--max-per-day", "2")
        tok = unique("day")
        c = self.session()
        try:
            r = [try_send(c, "app@example.com", [RCPT],
                          make_message("%s d%d" % (tok, i)))
                 for i in range(3)]
        finally:
            quit_(c)
        self.expect_ok(r[0], "1st of 2 per day")
        self.expect_ok(r[1], "2nd of 2 per day")
        st, code, text = r[2]
        self.assertTrue(code == 451 and text.startswith("4.7.1"),
                        "3rd message of the day got %d %s at %s"
                        % (code, text, st))
        self.wait_arrival(tok, n=2)
        time.sleep(1)
        self.assertEqual(self.count_arrivals(tok), 2)


class LiveChangesTest(PolicyCase):

    def test_user_set_applies_to_open_session(self):
        self.add("app", "--domains", "a.example")
        tok = unique("set")
        c = self.session()
        try:
            self.expect_ok(try_send(c, "x@a.example", [RCPT],
                                    make_message(tok + " s1",
                                                 sender="x@a.example")),
                           "before user set")
            self.suite.relayctl("user", "set", "app", "--domains",
                                "c.example")
            self.expect(try_send(c, "x@a.example", [RCPT],
                                 make_message(tok + " s2",
                                              sender="x@a.example")),
                        "mail", 550, "5.7.1", "MAIL after user set "
                        "--domains c.example")
            self.expect_ok(try_send(c, "x@c.example", [RCPT],
                                    make_message(tok + " s3",
                                                 sender="x@c.example")),
                           "MAIL FROM:<x@c.example> after user set")
            self.suite.relayctl("user", "set", "app", "--max-recipients",
                                "1")
            code, _ = c.mail("x@c.example")
            self.assertEqual(code, 250)
            self.assertEqual(c.rcpt("r1@example.org")[0], 250)
            self.assertReply(c.rcpt("r2@example.org"), 452, "4.5.3",
                             "second RCPT after user set --max-recipients 1")
            c.rset()
        finally:
            quit_(c)
        self.wait_arrival(tok, n=2)

    def test_disable_enable_delete_in_open_session(self):
        self.add("app")
        tok = unique("dis")
        c = self.session()
        try:
            self.expect_ok(try_send(c, "app@example.com", [RCPT],
                                    make_message(tok + " d1")),
                           "before disable")
            self.suite.relayctl("user", "disable", "app")
            time.sleep(1.0)
            self.expect(try_send(c, "app@example.com", [RCPT],
                                 make_message(tok + " d2")),
                        "mail", 530, "5.7.0", "MAIL in an open session "
                        "after user disable")
            got = self.auth_reply("app", SECRET)
            self.assertEqual(got[0], 535, "AUTH of a disabled user: %r"
                             % (got,))
            self.suite.relayctl("user", "enable", "app")
            # The open session logs in again; a new one works too.
            code, text = c.docmd("AUTH", "PLAIN " +
                                 auth_plain_arg("app", SECRET))
            self.assertEqual(code, 235, "AUTH after user enable: %d %s"
                             % (code, text))
            self.expect_ok(try_send(c, "app@example.com", [RCPT],
                                    make_message(tok + " d3")),
                           "after user enable")
            c2 = self.session()
            quit_(c2)
            self.suite.relayctl("user", "del", "app")
            time.sleep(1.0)
            st, code, text = try_send(c, "app@example.com", [RCPT],
                                      make_message(tok + " d4"))
            self.assertEqual((st, code), ("mail", 530),
                             "MAIL in an open session after user del: %d "
                             "%s at %s" % (code, text, st))
        finally:
            quit_(c)
        self.wait_arrival(tok, n=2)
        time.sleep(1)
        subjects = sorted(t.header("Subject")[0].split()[-1]
                          for t in self.capture.messages()
                          if tok.encode() in t.data)
        self.assertEqual(subjects, ["d1", "d3"])


class RotateTest(PolicyCase):

    def rotate(self, *args):
        r = self.suite.relayctl("user", "rotate", "app", *args)
        out = r.stdout.decode("utf-8", "replace").splitlines()
        self.assertEqual(len(out), 1, "rotate must print the new secret "
                         "alone on one line: %r" % out)
        secret = out[0].strip()
        self.assertGreaterEqual(len(secret), 16, secret)
        return secret

    def test_rotate_grace_then_end(self):
        s0 = self.add("app")
        s1 = self.rotate("--grace", "1h")
        self.assertNotEqual(s1, s0)
        show = json.loads(self.suite.relayctl(
            "user", "show", "app", "-j").stdout.decode())
        self.assertIsInstance(show.get("rotation"), dict, show)
        for s, what in ((s0, "old secret in the grace period"),
                        (s1, "new secret")):
            got = self.auth_reply("app", s)
            self.assertEqual(got[0], 235, "%s: %r" % (what, got))
        s2 = self.rotate("--grace", "0")
        got = self.auth_reply("app", s0)
        self.assertEqual(got[0], 535, "previous-but-one secret after a "
                         "second rotation: %r" % (got,))
        got = self.auth_reply("app", s1)
        self.assertEqual(got[0], 535, "secret ended by --grace 0: %r"
                         % (got,))
        got = self.auth_reply("app", s2)
        self.assertEqual(got[0], 235, "newest secret: %r" % (got,))

    def test_application_keeps_sending_across_rotation(self):
        old = self.add("app")
        tok = unique("rot")
        secret = old
        new = None
        # A long-running session authenticated with the old secret.
        long_c = self.session(secret=old)
        results = []
        try:
            for i in range(8):
                if i == 3:
                    new = self.rotate("--grace", "1h")
                if i == 5:
                    secret = new        # the application is redeployed
                c = self.session(secret=secret)
                try:
                    results.append(try_send(c, "app@example.com", [RCPT],
                                            make_message("%s n%d"
                                                         % (tok, i))))
                finally:
                    quit_(c)
                results.append(try_send(long_c, "app@example.com", [RCPT],
                                        make_message("%s l%d" % (tok, i))))
        finally:
            quit_(long_c)
        for i, r in enumerate(results):
            self.expect_ok(r, "send %d across the rotation" % i)
        self.wait_arrival(tok, n=len(results))


class AuthLoginOnTest(PolicyCase):
    overrides = {"auth": {"login": True}}

    def test_login_advertised_and_works(self):
        self.add("app")
        c = connect(self.suite, starttls=False)
        try:
            self.assertNotIn("auth", c.esmtp_features,
                             "AUTH advertised before TLS")
            c.starttls(context=unverified_ctx())
            c.ehlo("client.test")
            self.assertEqual(c.esmtp_features.get("auth", "").split(),
                             ["PLAIN", "LOGIN"],
                             "EHLO: AUTH %r" % c.esmtp_features.get("auth"))
            c.user, c.password = "app", SECRET
            # The challenge form: AUTH LOGIN, 334 Username:, 334 Password:
            code, _ = c.auth("LOGIN", c.auth_login, initial_response_ok=False)
            self.assertEqual(code, 235)
            tok = unique("login")
            self.expect_ok(try_send(c, "app@example.com", [RCPT],
                                    make_message(tok)), "after AUTH LOGIN")
        finally:
            quit_(c)
        # smtplib's login() restricted to LOGIN, with an initial response.
        c = connect(self.suite)
        try:
            c.esmtp_features["auth"] = "LOGIN"
            code, _ = c.login("app", SECRET)
            self.assertEqual(code, 235)
        finally:
            quit_(c)
        # A wrong secret over LOGIN is a 535 like PLAIN's.
        c = connect(self.suite)
        try:
            code, text = c.docmd("AUTH", "LOGIN " + base64.b64encode(
                b"app").decode())
            self.assertEqual(code, 334, text)
            code, text = c.docmd(base64.b64encode(b"wrong").decode())
            self.assertReply((code, text), 535, "5.7.8", "AUTH LOGIN with a "
                             "wrong secret")
        finally:
            quit_(c)
        self.wait_arrival(tok)


class AuthLoginOffTest(PolicyCase):

    def test_login_not_offered_by_default(self):
        self.add("app")
        c = connect(self.suite)
        try:
            self.assertEqual(c.esmtp_features.get("auth", "").split(),
                             ["PLAIN"], "EHLO: AUTH %r"
                             % c.esmtp_features.get("auth"))
            got = c.docmd("AUTH", "LOGIN")
            self.assertReply(got, 504, "5.5.4", "AUTH LOGIN when disabled")
            got = c.docmd("AUTH", "LOGIN " + base64.b64encode(
                b"app").decode())
            self.assertReply(got, 504, "5.5.4", "AUTH LOGIN with an initial "
                             "response when disabled")
            code, _ = login_plain(c, "app", SECRET)
            self.assertEqual(code, 235)
        finally:
            quit_(c)


if __name__ == "__main__":
    unittest.main()
