"""test_smtputf8.py - internationalised mail (RFC 6531, issue 8).

smtpd advertises SMTPUTF8 and, when MAIL says SMTPUTF8, takes addresses
and header fields in UTF-8 (Python's smtplib with its SMTPUTF8 option);
without it, such an address gets 553 5.6.7 and such a header 554 5.6.7 at
the end of DATA. smtp passes SMTPUTF8 on to a next hop that offers it (the
capture server with and without the extension); a message that needs it
and meets a next hop that lacks it fails its recipient with 5.6.7 and is
never sent mangled. A credential's sending domains and the sender's
domain are compared as A-labels (IDNA), however each was written.
"""

import json
import smtplib
import time

from harness import PetrelCase, connect, login_plain, unique

IDN = "b\u00fccher.example"
IDN_ACE = "xn--bcher-kva.example"


def message(tok, sender, rcpt, subject_extra=""):
    return ("From: <%s>\r\nTo: <%s>\r\nSubject: %s%s\r\n"
            "Date: Sat, 05 Dec 2026 05:00:00 +0000\r\n\r\n"
            "Gr\u00fc\u00dfe.\r\n" % (sender, rcpt, tok, subject_extra)
            ).encode("utf-8")


class Smtputf8Test(PetrelCase):

    def session(self):
        user, pw = self.ensure_user()
        c = connect(self.suite)
        login_plain(c, user, pw)
        self.addCleanup(self.quit, c)
        return c

    @staticmethod
    def quit(c):
        try:
            c.quit()
        except (smtplib.SMTPException, OSError):
            pass

    def test_utf8_addresses_and_headers_to_smtputf8_hop(self):
        self.capture.smtputf8 = True
        tok = unique("utf8")
        rcpt = "jos\u00e9@%s" % IDN
        c = self.session()
        self.assertTrue(c.has_extn("smtputf8"))
        c.sendmail("app@example.com", [rcpt],
                   message(tok, "app@example.com", rcpt,
                           " \u00e7a marche"),
                   mail_options=["SMTPUTF8"])
        got = self.wait_arrival(tok)[0]
        self.assertIn("SMTPUTF8", got.mail_params.upper())
        self.assertEqual(got.rcpt_tos, [rcpt])
        self.assertIn(("Subject: %s \u00e7a marche" % tok).encode("utf-8"),
                      got.data)

    def test_refused_without_smtputf8(self):
        c = self.session()
        c.command_encoding = "utf-8"    # what smtplib sends, raw
        code, text = c.mail("jos\u00e9@%s" % IDN)
        self.assertEqual((code, text[:9]), (553, b"5.6.7 Non"), text)
        code, _ = c.mail("app@example.com")
        self.assertEqual(code, 250)
        code, text = c.rcpt("jos\u00e9@%s" % IDN)
        self.assertEqual((code, text[:5]), (553, b"5.6.7"), text)
        code, _ = c.rcpt("rcpt@example.org")
        self.assertEqual(code, 250)
        tok = unique("rawhdr")
        code, text = c.data(message(tok, "app@example.com",
                                    "rcpt@example.org", " na\u00efve"))
        self.assertEqual((code, text[:5]), (554, b"5.6.7"), text)
        time.sleep(1)
        self.assertEqual(self.suite.relayq_json(), [])

    def test_hop_without_smtputf8_fails_with_5_6_7(self):
        tok = unique("nohop")
        rcpt = "jos\u00e9@%s" % IDN
        c = self.session()
        c.sendmail("app@example.com", [rcpt],
                   message(tok, "app@example.com", rcpt),
                   mail_options=["SMTPUTF8"])
        deadline = time.time() + 30
        lines = []
        while time.time() < deadline:
            lines = [ln for ln in self.suite.log().splitlines()
                     if "status=bounced" in ln and "dsn=5.6.7" in ln]
            if lines:
                break
            time.sleep(0.2)
        self.assertTrue(lines, self.suite.log_tail(30))
        self.assertIn("SMTPUTF8 is required", lines[0])
        self.assertFalse([t for t in self.capture.all_transactions()
                          if rcpt in t.rcpt_tos],
                         "a message that needs SMTPUTF8 was sent to a "
                         "next hop without it")
        # The sender hears of it: a delivery report with the status.
        report = self.wait_arrival(tok)[0]
        self.assertEqual(report.mail_from, "")
        self.assertIn(b"Status: 5.6.7", report.data)

    def test_ascii_message_with_smtputf8_goes_to_any_hop(self):
        tok = unique("ascii")
        c = self.session()
        c.sendmail("app@example.com", ["rcpt@example.org"],
                   ("From: <app@example.com>\r\nTo: <rcpt@example.org>\r\n"
                    "Subject: %s\r\n\r\nplain\r\n" % tok).encode(),
                   mail_options=["SMTPUTF8"])
        got = self.wait_arrival(tok)[0]
        self.assertNotIn("SMTPUTF8", got.mail_params.upper())

    def test_idn_credential_domains_compare_as_a_labels(self):
        self.capture.smtputf8 = True
        self.suite.relayctl("user", "add", "idn", "--password-stdin",
                            "--domains", IDN, input=b"idn-secret-0123456\n")
        show = json.loads(self.suite.relayctl(
            "user", "show", "idn", "-j").stdout.decode())
        self.assertEqual(show.get("domains"), [IDN_ACE], show)
        c = connect(self.suite)
        self.addCleanup(self.quit, c)
        login_plain(c, "idn", "idn-secret-0123456")
        tok1, tok2 = unique("ulabel"), unique("alabel")
        # The envelope in U-labels, the header in A-labels, and the
        # other way round: both are the credential's domain.
        c.sendmail("info@%s" % IDN, ["rcpt@example.org"],
                   message(tok1, "info@%s" % IDN_ACE, "rcpt@example.org"),
                   mail_options=["SMTPUTF8"])
        c.sendmail("info@%s" % IDN_ACE, ["rcpt@example.org"],
                   message(tok2, "info@%s" % IDN, "rcpt@example.org"),
                   mail_options=["SMTPUTF8"])
        self.wait_arrival(tok1)
        self.wait_arrival(tok2)
        with self.assertRaises(smtplib.SMTPSenderRefused):
            c.sendmail("info@b\u00fccherei.example", ["rcpt@example.org"],
                       message(unique("other"), "info@example.com",
                               "rcpt@example.org"),
                       mail_options=["SMTPUTF8"])
