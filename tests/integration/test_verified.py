"""test_verified.py - smtpd accepts only registered sender domains
(smtpd.require_verified_domains, the default)."""

import os
import smtplib

from harness import PetrelCase, connect, login_plain, make_message, unique


class VerifiedDomainsTest(PetrelCase):

    def setUp(self):
        # Key directory inside the test's temporary tree; check on.
        self.overrides = {
            "smtpd": {"require_verified_domains": True},
        }
        super().setUp()
        self.suite.config["dkim"] = {
            "key_directory": os.path.join(self.tmp, "dkim")}
        self.suite.write_config()
        self.suite.stop()
        self.suite.start()
        self.suite.relayctl("domain", "add", "verified.test", "--selector",
                            "t1")

    def transaction(self, sender, header_from):
        user, pw = self.ensure_user()
        c = connect(self.suite)
        login_plain(c, user, pw)
        try:
            code, text = c.mail(sender)
            if code != 250:
                return "MAIL", code, text.decode()
            self.assertEqual(c.rcpt("r@example.org")[0], 250)
            tok = unique("ver")
            code, text = c.data(make_message(tok, sender=header_from))
            return "DATA", code, text.decode()
        finally:
            try:
                c.quit()
            except smtplib.SMTPException:
                pass

    def test_registered_domain_and_subdomain_accepted(self):
        for sender in ("app@verified.test", "app@mail.Verified.test"):
            step, code, text = self.transaction(sender, sender)
            self.assertEqual((step, code), ("DATA", 250), text)

    def test_unregistered_envelope_sender_refused(self):
        step, code, text = self.transaction("app@other.test",
                                            "app@verified.test")
        self.assertEqual((step, code), ("MAIL", 550), text)
        self.assertIn("5.7.1", text)
        self.assertIn("not verified", text)

    def test_unregistered_header_from_refused(self):
        step, code, text = self.transaction("app@verified.test",
                                            "app@other.test")
        self.assertEqual((step, code), ("DATA", 550), text)
        self.assertIn("5.7.1", text)
        self.assertEqual(self.suite.relayq_json(), [])

    def test_null_sender_not_checked(self):
        step, code, text = self.transaction("", "app@verified.test")
        self.assertEqual((step, code), ("DATA", 250), text)


if __name__ == "__main__":
    import unittest
    unittest.main()
