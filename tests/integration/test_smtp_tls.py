"""test_smtp_tls.py - outbound TLS levels (smtp.tls) and the TLS fields of
smtp's delivery line.

may (the default) delivers in plaintext when STARTTLS is not offered and
logs the TLS version, cipher and verified=no/yes otherwise; encrypt
defers when the next hop does not offer STARTTLS; verify delivers only
when the chain verifies against smtp.tls_ca_file (here the harness's
self-signed certificate for "localhost", its own trust anchor) and the
certificate names the host, and defers otherwise.
"""

import os
import shutil
import subprocess
import tempfile

from harness import PetrelCase, certificate, make_message, unique

RCPT = "rcpt@example.org"


class TLSLevelCase(PetrelCase):

    def reconfigure(self, smtp, host="127.0.0.1"):
        """Restarts Petrel with smtp settings and the capture server as
        [host]:port (its port is only known once it runs)."""
        self.suite.stop()
        self.suite.config["smtp"].update(smtp)
        self.suite.config["transport"] = {
            "*": "[%s]:%d" % (host, self.capture.port)}
        self.suite.write_config()
        self.suite.start()

    def send_one(self, tag):
        tok = unique(tag)
        return tok, self.submit(make_message(tok), rcpts=[RCPT])

    def expect_deferred(self, qid, text):
        d = self.suite.wait_delivery(qid, RCPT, "deferred", timeout=20)[0]
        self.assertTrue(d["dsn"].startswith("4.7."), d["line"])
        self.assertIn(text, d["reply"], d["line"])
        self.assertEqual(self.capture.messages(), [])
        return d


class NoStartTLSTest(TLSLevelCase):

    capture_tls = False

    def test_may_delivers_in_plaintext(self):
        tok, qid = self.send_one("tls-may-plain")
        self.wait_arrival(tok)
        d = self.suite.wait_delivery(qid, RCPT, "sent")[0]
        self.assertIsNone(d["tls"], d["line"])

    def test_encrypt_defers_without_starttls(self):
        self.reconfigure({"tls": "encrypt"})
        tok, qid = self.send_one("tls-enc-plain")
        d = self.expect_deferred(qid, "TLS is required (smtp.tls encrypt), "
                                 "but was not offered by host")
        self.assertEqual(d["dsn"], "4.7.4", d["line"])
        # Never sent in plaintext: the capture saw no MAIL at all.
        self.assertEqual(self.capture.mail_log, [])


class StartTLSTest(TLSLevelCase):

    capture_tls = True

    def test_may_logs_version_cipher_unverified(self):
        tok, qid = self.send_one("tls-may")
        self.wait_arrival(tok)
        d = self.suite.wait_delivery(qid, RCPT, "sent")[0]
        self.assertIn(d["tls"], ("TLSv1.2", "TLSv1.3"), d["line"])
        self.assertTrue(d["cipher"], d["line"])
        # A self-signed certificate is not trusted by the system store.
        self.assertEqual(d["verified"], "no", d["line"])
        self.assertIn("Untrusted TLS connection established to",
                      self.suite.log())

    def test_encrypt_delivers_over_tls(self):
        self.reconfigure({"tls": "encrypt"})
        tok, qid = self.send_one("tls-enc")
        t = self.wait_arrival(tok)[0]
        self.assertTrue(t.tls, t)
        d = self.suite.wait_delivery(qid, RCPT, "sent")[0]
        self.assertEqual(d["verified"], "no", d["line"])

    def test_verify_with_the_ca_file(self):
        self.reconfigure({"tls": "verify", "tls_ca_file": certificate()[0]},
                         host="localhost")
        tok, qid = self.send_one("tls-verify")
        self.wait_arrival(tok)
        d = self.suite.wait_delivery(qid, RCPT, "sent")[0]
        self.assertEqual(d["verified"], "yes", d["line"])
        self.assertIn("Verified TLS connection established to",
                      self.suite.log())

    def test_verify_with_the_system_store_directory(self):
        # Without smtp.tls_ca_file, smtp trusts the system store as its
        # hashed directory ($SSL_CERT_DIR here, /etc/ssl/certs when
        # installed), read certificate by certificate as chains need them.
        d = tempfile.mkdtemp(prefix="petrel-certdir-")
        self.addCleanup(shutil.rmtree, d, True)
        os.chmod(d, 0o755)
        h = subprocess.run(["openssl", "x509", "-hash", "-noout", "-in",
                            certificate()[0]], check=True,
                           stdout=subprocess.PIPE, text=True).stdout.strip()
        shutil.copy(certificate()[0], os.path.join(d, h + ".0"))
        os.chmod(os.path.join(d, h + ".0"), 0o644)
        saved = os.environ.get("SSL_CERT_DIR")
        os.environ["SSL_CERT_DIR"] = d
        try:
            self.reconfigure({"tls": "verify"}, host="localhost")
        finally:
            if saved is None:
                del os.environ["SSL_CERT_DIR"]
            else:
                os.environ["SSL_CERT_DIR"] = saved
        tok, qid = self.send_one("tls-verify-dir")
        self.wait_arrival(tok)
        d = self.suite.wait_delivery(qid, RCPT, "sent")[0]
        self.assertEqual(d["verified"], "yes", d["line"])

    def test_verify_without_the_ca_defers(self):
        self.reconfigure({"tls": "verify"}, host="localhost")
        tok, qid = self.send_one("tls-verify-noca")
        self.expect_deferred(qid, "certificate verification failed")

    def test_verify_wrong_name_defers(self):
        # The chain is trusted, but the certificate names localhost.
        self.reconfigure({"tls": "verify", "tls_ca_file": certificate()[0]},
                         host="127.0.0.1")
        tok, qid = self.send_one("tls-verify-name")
        self.expect_deferred(qid, "certificate verification failed")
