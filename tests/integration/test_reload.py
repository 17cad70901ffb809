"""test_reload.py - SIGHUP: new certificate for new sessions, no session
in progress dropped, an invalid file keeps the running configuration."""

import os
import signal
import smtplib
import ssl
import subprocess
import tempfile
import time

import harness
from harness import PetrelCase, connect, login_plain, make_message, send, \
    unique


def new_certificate(cn):
    d = tempfile.mkdtemp(prefix="petrel-cert2-")
    os.chmod(d, 0o755)
    cert, key = os.path.join(d, "cert.pem"), os.path.join(d, "key.pem")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048",
                    "-nodes", "-subj", "/CN=%s" % cn, "-days", "2",
                    "-keyout", key, "-out", cert], check=True,
                   stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL, timeout=60)
    os.chmod(cert, 0o644)
    return cert, key


def peer_cn(port):
    """The CN of the certificate the implicit-TLS listener presents."""
    ctx = harness.unverified_ctx()
    with smtplib.SMTP_SSL("127.0.0.1", port, timeout=20, context=ctx) as c:
        der = c.sock.getpeercert(binary_form=True)
    pem = ssl.DER_cert_to_PEM_cert(der)
    out = subprocess.run(["openssl", "x509", "-noout", "-subject"],
                         input=pem.encode(), stdout=subprocess.PIPE,
                         check=True).stdout.decode()
    return out.strip()


class ReloadTest(PetrelCase):

    def wait_log(self, text, timeout=20):
        deadline = time.time() + timeout
        while time.time() < deadline:
            if text in self.suite.log():
                return
            time.sleep(0.2)
        self.fail("%r not logged:\n%s" % (text, self.suite.log_tail()))

    def test_new_certificate_and_open_session_survives(self):
        user, pw = self.ensure_user()
        self.assertIn("CN = localhost", peer_cn(self.suite.smtps_port))
        # A session in progress, authenticated, before the reload.
        old = connect(self.suite)
        login_plain(old, user, pw)
        tok1 = unique("before")
        send(old, "app@example.com", ["r1@example.org"], make_message(tok1))

        cert, key = new_certificate("renewed.test")
        self.suite.config["tls"] = {"certificate": cert, "private_key": key}
        self.suite.write_config()
        os.kill(self.suite.proc.pid, signal.SIGHUP)
        self.wait_log("reload: configuration")

        # New sessions get the new certificate ...
        deadline = time.time() + 20
        while time.time() < deadline:
            try:
                if "renewed.test" in peer_cn(self.suite.smtps_port):
                    break
            except (OSError, smtplib.SMTPException):
                pass
            time.sleep(0.3)
        else:
            self.fail("the new certificate is not served after SIGHUP")
        # ... while the old session goes on and can still send.
        tok2 = unique("after")
        send(old, "app@example.com", ["r2@example.org"], make_message(tok2))
        self.assertEqual(old.noop()[0], 250)
        old.quit()
        self.wait_arrival(tok1)
        self.wait_arrival(tok2)
        # And a new session delivers too.
        tok3 = unique("new")
        self.submit(make_message(tok3))
        self.wait_arrival(tok3)

    def test_invalid_file_keeps_running_configuration(self):
        self.ensure_user()      # relayctl reads the file too
        pids = set(self.suite.pids())
        with open(self.suite.conf_path, "a") as f:
            f.write("no_such_key: 1\n")
        os.kill(self.suite.proc.pid, signal.SIGHUP)
        self.wait_log("keeping the running configuration")
        self.assertIn("no_such_key", self.suite.log())
        self.assertEqual(set(self.suite.pids()), pids,
                         "daemons were replaced after an invalid reload")
        tok = unique("kept")
        self.submit(make_message(tok))
        self.wait_arrival(tok)


if __name__ == "__main__":
    import unittest
    unittest.main()
