"""test_dkim.py - DKIM signing in smtp, checked by an independent verifier.

Domains and keys are made with `relayctl domain add|rotate`; the public
key records come from `relayctl domain show DOMAIN -j`. The messages the
capture server receives are verified by dkimpy (Debian's python3-dkim,
run under /usr/bin/python3 by dkim_verify.py) against those records,
served to it in place of DNS. DkimOneProcessTest runs a single smtp
process, which keeps the keys it has parsed, and checks that a rotation
and a key file replaced under the same selector reach its next message.
"""

import json
import os
import re
import subprocess
import tempfile
import unittest

from harness import PetrelCase, make_message, unique

HERE = os.path.dirname(os.path.abspath(__file__))
VERIFY = os.path.join(HERE, "dkim_verify.py")
SYS_PYTHON = "/usr/bin/python3"


def _verifier_missing():
    """Why dkimpy cannot be used, or None."""
    if not os.access(SYS_PYTHON, os.X_OK):
        return "%s not found (dkimpy needs Debian's python3)" % SYS_PYTHON
    r = subprocess.run([SYS_PYTHON, VERIFY, "--check"],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    if r.returncode != 0:
        return ("%s cannot import dkim: install python3-dkim (make deps): %s"
                % (SYS_PYTHON, r.stderr.decode(errors="replace").strip()))
    return None


VERIFIER_MISSING = _verifier_missing()


def sig_headers(data):
    """The DKIM-Signature headers of a message, unfolded, top first."""
    i = data.find(b"\r\n\r\n")
    head = (data if i < 0 else data[:i + 2]).decode("utf-8", "replace")
    head = re.sub(r"\r\n[ \t]", " ", head)
    return [line.split(":", 1)[1].strip() for line in head.split("\r\n")
            if line.lower().startswith("dkim-signature:")]


def tags(sig):
    out = {}
    for part in sig.split(";"):
        k, sep, v = part.partition("=")
        if sep:
            out[k.strip()] = re.sub(r"\s+", "", v)
    return out


def _txt_values(obj, selector):
    """Key record values for selector anywhere in relayctl's JSON."""
    found = []
    if isinstance(obj, dict):
        named = (obj.get("selector") == selector or
                 obj.get("name") == selector or
                 str(obj.get("dns_name", obj.get("record", ""))).startswith(
                     selector + "._domainkey"))
        for k, v in obj.items():
            if isinstance(v, str) and v.startswith("v=DKIM1") and named:
                found.append(v)
            elif isinstance(v, list) and named and v and all(
                    isinstance(x, str) for x in v) and \
                    "".join(v).startswith("v=DKIM1"):
                found.append("".join(v))   # split into 255-byte strings
            else:
                found.extend(_txt_values(v, selector))
    elif isinstance(obj, list):
        for v in obj:
            found.extend(_txt_values(v, selector))
    return found


class DkimHelpers:
    """Domains, keys, sending and verifying, for the classes below."""

    def dkim_overrides(self):
        # Per test: relayctl creates the key directory (as root).
        return {"dkim": {"key_directory": os.path.join(self.tmp, "dkim"),
                         "group": "petrel-dkim"}}

    def add_domain(self, domain, *args):
        return self.suite.relayctl("domain", "add", domain, *args)

    def txt_record(self, domain, selector):
        r = self.suite.relayctl("domain", "show", domain, "-j")
        out = r.stdout.decode("utf-8", "replace")
        vals = []
        for line in out.splitlines() or [out]:
            line = line.strip()
            if line:
                try:
                    vals.extend(_txt_values(json.loads(line), selector))
                except ValueError:
                    pass
        if not vals:
            try:
                vals = _txt_values(json.loads(out), selector)
            except ValueError:
                pass
        self.assertTrue(vals, "no v=DKIM1 record for selector %s in "
                        "`relayctl domain show %s -j`:\n%s"
                        % (selector, domain, out))
        return vals[0]

    def verify(self, data, records):
        """Runs dkimpy; returns its per-signature lines."""
        with tempfile.NamedTemporaryFile(dir=self.tmp, suffix=".eml",
                                         delete=False) as f:
            f.write(data)
        args = [SYS_PYTHON, VERIFY, f.name]
        args += ["%s=%s" % (n, t) for n, t in records.items()]
        r = subprocess.run(args, stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, timeout=30)
        text = r.stdout.decode(errors="replace")
        self.assertEqual(r.returncode, 0,
                         "dkimpy does not verify our signature:\n%s%s\n"
                         "message:\n%s" % (text,
                                           r.stderr.decode(errors="replace"),
                                           data[:3000].decode(
                                               errors="replace")))
        return text.splitlines()

    def record_for(self, domain, selector):
        return {"%s._domainkey.%s" % (selector, domain):
                self.txt_record(domain, selector)}

    def send_one(self, tok, sender="app@example.com", **kw):
        qid = self.submit(make_message(tok, sender=sender, **kw),
                          sender=sender)
        t = self.wait_arrival(tok)[0]
        self.suite.wait_delivery(qid, "rcpt@example.org", "sent")
        return qid, t.data

    def check_sig(self, sig, domain, selector, alg):
        t = tags(sig)
        self.assertEqual(t.get("d"), domain, sig)
        self.assertEqual(t.get("s"), selector, sig)
        self.assertEqual(t.get("a"), alg, sig)
        self.assertEqual(t.get("c"), "relaxed/relaxed", sig)
        h = [x.lower() for x in t.get("h", "").split(":")]
        self.assertGreaterEqual(h.count("from"), 2,
                                "From is not over-signed: %s" % sig)
        for name in ("subject", "date", "to", "message-id"):
            self.assertIn(name, h, sig)
        return t

    def dkim_log(self, qid):
        return [ln for ln in self.suite.log().splitlines()
                if "%s: dkim=" % qid in ln]

    def signed_by(self, qid):
        """The pids of the smtp processes that signed qid, in order."""
        pat = re.compile(r"smtp\[(\d+)\]: %s: dkim=signed" % re.escape(qid))
        return [m.group(1) for m in pat.finditer(self.suite.log())]


@unittest.skipIf(VERIFIER_MISSING, VERIFIER_MISSING or "")
class DkimTest(DkimHelpers, PetrelCase):

    @property
    def overrides(self):
        return self.dkim_overrides()

    # -- tests --

    def test_rsa_signed_and_verifies(self):
        self.add_domain("example.com", "--selector", "t1")
        tok = unique("dkimrsa")
        qid, data = self.send_one(tok)
        sigs = sig_headers(data)
        self.assertEqual(len(sigs), 1, data[:2000])
        self.check_sig(sigs[0], "example.com", "t1", "rsa-sha256")
        self.assertTrue(data.lower().startswith(b"dkim-signature:"),
                        "our signature is not on top")
        self.verify(data, self.record_for("example.com", "t1"))
        log = self.dkim_log(qid)
        self.assertTrue(any("dkim=signed d=example.com s=t1" in ln
                            for ln in log), log)

    def test_ed25519_signed_and_verifies(self):
        self.add_domain("example.com", "--selector", "e1", "--key",
                        "ed25519")
        tok = unique("dkimed")
        _, data = self.send_one(tok)
        sigs = sig_headers(data)
        self.assertEqual(len(sigs), 1, data[:2000])
        self.check_sig(sigs[0], "example.com", "e1", "ed25519-sha256")
        self.verify(data, self.record_for("example.com", "e1"))

    def test_subdomain_signed_with_parent(self):
        self.add_domain("example.com", "--selector", "t1")
        tok = unique("dkimsub")
        _, data = self.send_one(tok, sender="news@mail.example.com")
        sigs = sig_headers(data)
        self.assertEqual(len(sigs), 1, data[:2000])
        self.check_sig(sigs[0], "example.com", "t1", "rsa-sha256")
        self.verify(data, self.record_for("example.com", "t1"))

    def test_application_signature_kept(self):
        self.add_domain("example.com", "--selector", "t1")
        app_sig = ("DKIM-Signature: v=1; a=rsa-sha256; c=relaxed/relaxed; "
                   "d=app.example; s=app;\r\n\th=from:subject; bh=AAAA; "
                   "b=BBBB")
        tok = unique("dkimapp")
        _, data = self.send_one(tok, extra_headers=(app_sig,))
        sigs = sig_headers(data)
        self.assertEqual(len(sigs), 2, data[:2000])
        self.assertEqual(tags(sigs[0]).get("d"), "example.com", sigs[0])
        self.assertEqual(tags(sigs[1]).get("d"), "app.example", sigs[1])
        self.assertIn(app_sig.encode(), data, "the application's "
                      "signature was changed")
        lines = self.verify(data, self.record_for("example.com", "t1"))
        self.assertTrue(lines[0].startswith("0 pass d=example.com"), lines)

    def test_no_key_unsigned(self):
        self.add_domain("example.com", "--selector", "t1")
        tok = unique("dkimnone")
        qid, data = self.send_one(tok, sender="app@nokey.test")
        self.assertEqual(sig_headers(data), [], data[:2000])
        log = self.dkim_log(qid)
        self.assertTrue(any("dkim=none (no key for nokey.test)" in ln
                            for ln in log), log)

    def test_retry_still_verifies(self):
        self.add_domain("example.com", "--selector", "t1")
        self.capture.add_data_rule("451 4.3.0 try later", times=1)
        tok = unique("dkimretry")
        qid = self.submit(make_message(tok))
        self.suite.wait_delivery(qid, "rcpt@example.org", "deferred",
                                 timeout=20)
        t = self.wait_arrival(tok, timeout=20)[0]
        self.suite.wait_delivery(qid, "rcpt@example.org", "sent")
        sigs = sig_headers(t.data)
        self.assertEqual(len(sigs), 1, t.data[:2000])
        self.check_sig(sigs[0], "example.com", "t1", "rsa-sha256")
        self.verify(t.data, self.record_for("example.com", "t1"))
        # Signed afresh on each attempt.
        signed = [ln for ln in self.dkim_log(qid) if "dkim=signed" in ln]
        self.assertEqual(len(signed), 2, self.dkim_log(qid))

    def test_rotation(self):
        self.add_domain("example.com", "--selector", "t1")
        tok = unique("dkimrot1")
        _, data = self.send_one(tok)
        self.assertEqual(tags(sig_headers(data)[0]).get("s"), "t1")
        self.suite.relayctl("domain", "rotate", "example.com",
                            "--selector", "t2")
        tok = unique("dkimrot2")
        _, data = self.send_one(tok)
        sigs = sig_headers(data)
        self.assertEqual(len(sigs), 1, data[:2000])
        self.check_sig(sigs[0], "example.com", "t2", "rsa-sha256")
        self.verify(data, self.record_for("example.com", "t2"))
        # The old selector stays published for signatures in flight.
        self.txt_record("example.com", "t1")


@unittest.skipIf(VERIFIER_MISSING, VERIFIER_MISSING or "")
class DkimOneProcessTest(DkimHelpers, PetrelCase):
    """One smtp process, which keeps the keys it has parsed: a rotation
    or a replaced key file must reach its next message all the same."""

    @property
    def overrides(self):
        o = self.dkim_overrides()
        o["smtp"] = {"processes": 1}
        return o

    def assert_one_signer(self, *qids):
        pids = [p for q in qids for p in self.signed_by(q)]
        self.assertEqual(len(pids), len(qids), pids)
        self.assertEqual(len(set(pids)), 1, "not one smtp process: %s"
                         % pids)

    def test_rotation_same_process(self):
        self.add_domain("example.com", "--selector", "t1")
        qid1, data = self.send_one(unique("dkimsp1"))
        self.check_sig(sig_headers(data)[0], "example.com", "t1",
                       "rsa-sha256")
        self.suite.relayctl("domain", "rotate", "example.com",
                            "--selector", "t2", "--key", "ed25519")
        qid2, data = self.send_one(unique("dkimsp2"))
        sigs = sig_headers(data)
        self.assertEqual(len(sigs), 1, data[:2000])
        self.check_sig(sigs[0], "example.com", "t2", "ed25519-sha256")
        self.verify(data, self.record_for("example.com", "t2"))
        self.assert_one_signer(qid1, qid2)

    def test_key_file_replaced_same_selector(self):
        self.add_domain("example.com", "--selector", "t1")
        qid1, data = self.send_one(unique("dkimrep1"))
        self.verify(data, self.record_for("example.com", "t1"))
        # t1 again, with a new key: same name, another file.
        self.suite.relayctl("domain", "rotate", "example.com",
                            "--selector", "t2")
        self.suite.relayctl("domain", "del", "example.com",
                            "--selector", "t1")
        self.suite.relayctl("domain", "rotate", "example.com",
                            "--selector", "t1")
        qid2, data = self.send_one(unique("dkimrep2"))
        sigs = sig_headers(data)
        self.assertEqual(len(sigs), 1, data[:2000])
        self.check_sig(sigs[0], "example.com", "t1", "rsa-sha256")
        self.verify(data, self.record_for("example.com", "t1"))
        self.assert_one_signer(qid1, qid2)


if __name__ == "__main__":
    unittest.main()
