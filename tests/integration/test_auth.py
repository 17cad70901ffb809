"""test_auth.py - TLS before AUTH/MAIL, credentials, no open relay."""

import smtplib
import time
import unittest

from harness import PetrelCase, auth_plain_arg, connect, login_plain, \
    make_message, send, unique, unverified_ctx


class TlsRequiredTest(PetrelCase):

    def test_auth_before_starttls_refused(self):
        user, pw = self.ensure_user()
        c = connect(self.suite, starttls=False)
        try:
            self.assertNotIn("auth", c.esmtp_features,
                             "EHLO before TLS advertises AUTH")
            got = c.docmd("AUTH", "PLAIN " + auth_plain_arg(user, pw))
            self.assertReply(got, 530, "5.7.0", "AUTH PLAIN before STARTTLS")
            # The session goes on: STARTTLS, then AUTH works.
            code, _ = c.starttls(context=unverified_ctx())
            self.assertEqual(code, 220)
            c.ehlo("client.test")
            self.assertIn("auth", c.esmtp_features)
            code, _ = login_plain(c, user, pw)
            self.assertEqual(code, 235)
        finally:
            c.quit()

    def test_mail_before_starttls_refused(self):
        c = connect(self.suite, starttls=False)
        try:
            got = c.docmd("MAIL", "FROM:<app@example.com>")
            self.assertReply(got, 530, "5.7.0", "MAIL before STARTTLS")
            got = c.docmd("RCPT", "TO:<rcpt@example.org>")
            self.assertGreaterEqual(got[0], 500,
                                    "RCPT accepted without TLS: %r" % (got,))
        finally:
            c.quit()
        self.assertEqual(self.capture.all_transactions(), [])

    def test_auth_not_advertised_before_tls_even_after_helo(self):
        c = smtplib.SMTP("127.0.0.1", self.suite.submission_port,
                         timeout=30)
        try:
            code, _ = c.helo("client.test")
            self.assertEqual(code, 250)
            c.ehlo("client.test")
            self.assertNotIn("auth", c.esmtp_features)
            self.assertIn("starttls", c.esmtp_features)
        finally:
            c.quit()


class CredentialsTest(PetrelCase):

    def test_wrong_password_535(self):
        user, pw = self.ensure_user()
        c = connect(self.suite)
        try:
            got = c.docmd("AUTH", "PLAIN " + auth_plain_arg(user, pw + "x"))
            self.assertReply(got, 535, "5.7.8", "wrong password")
            got = c.docmd("AUTH", "PLAIN " + auth_plain_arg("nosuchuser",
                                                            pw))
            self.assertReply(got, 535, "5.7.8", "unknown user")
            # Not authenticated: MAIL must still be refused.
            got = c.docmd("MAIL", "FROM:<app@example.com>")
            self.assertGreaterEqual(got[0], 500, "MAIL accepted after a "
                                    "failed AUTH: %r" % (got,))
            # The right password still works in the same session.
            got = c.docmd("RSET")
            got = c.docmd("AUTH", "PLAIN " + auth_plain_arg(user, pw))
            self.assertReply(got, 235, "2.7.0", "right password")
        finally:
            c.quit()

    def test_generated_secret_and_deleted_user(self):
        r = self.suite.relayctl("user", "add", "gen1")
        out = r.stdout.decode("utf-8", "replace").split()
        self.assertTrue(out, "relayctl user add printed no secret")
        secret = out[-1]
        self.assertGreaterEqual(len(secret), 16, "generated secret %r is "
                                "short" % secret)
        listing = self.suite.relayctl("user", "list").stdout.decode()
        self.assertIn("gen1", listing.split(), "user list: %r" % listing)
        self.assertNotIn(secret, listing, "user list shows the secret")
        c = connect(self.suite)
        try:
            code, _ = login_plain(c, "gen1", secret)
            self.assertEqual(code, 235)
        finally:
            c.quit()
        self.suite.relayctl("user", "del", "gen1")
        listing = self.suite.relayctl("user", "list").stdout.decode()
        self.assertNotIn("gen1", listing.split(), "deleted user still "
                         "listed: %r" % listing)
        c = connect(self.suite)
        try:
            got = c.docmd("AUTH", "PLAIN " + auth_plain_arg("gen1", secret))
            self.assertReply(got, 535, "5.7.8", "deleted user")
        finally:
            c.quit()

    def test_password_stdin_and_duplicate(self):
        self.suite.add_user("stdin1", "s3cret-pass-word")
        r = self.suite.relayctl("user", "add", "stdin1", "--password-stdin",
                                input=b"other-password\n", check=False)
        self.assertNotEqual(r.returncode, 0, "adding an existing user "
                            "succeeded silently")
        c = connect(self.suite)
        try:
            code, _ = login_plain(c, "stdin1", "s3cret-pass-word")
            self.assertEqual(code, 235)
        finally:
            c.quit()


class NoOpenRelayTest(PetrelCase):

    def test_unauthenticated_client_cannot_send(self):
        tok = unique("openrelay")
        for implicit in (False, True):
            c = connect(self.suite, implicit=implicit)
            try:
                got = c.docmd("MAIL", "FROM:<spammer@example.net>")
                self.assertIn(got[0], (530, 554),
                              "unauthenticated MAIL from 127.0.0.1 (not in "
                              "trusted_networks) got %r" % (got,))
                got = c.docmd("RCPT", "TO:<victim@example.org>")
                self.assertGreaterEqual(got[0], 500,
                                        "RCPT accepted: %r" % (got,))
                got = c.docmd("DATA")
                self.assertGreaterEqual(got[0], 500,
                                        "DATA accepted: %r" % (got,))
                if got[0] == 354:
                    c.send(make_message(tok) + b".\r\n")
                    c.getreply()
            finally:
                c.quit()
        time.sleep(2)
        self.assertEqual([t for t in self.capture.all_transactions()
                          if tok.encode() in t.data], [])
        self.assertEqual(self.suite.relayq_json(), [],
                         "something was queued")

    def test_trusted_network_can_send_without_auth(self):
        """The counterpart: with 127.0.0.1 trusted, the same works."""
        self.suite.stop()
        self.suite.config["trusted_networks"] = ["127.0.0.1/32"]
        self.suite.write_config()
        self.suite.start()
        tok = unique("trusted")
        c = connect(self.suite)
        try:
            qid = send(c, "app@example.com", ["rcpt@example.org"],
                       make_message(tok))
        finally:
            c.quit()
        self.wait_arrival(tok)
        self.suite.wait_delivery(qid, "rcpt@example.org", "sent")


if __name__ == "__main__":
    unittest.main()
