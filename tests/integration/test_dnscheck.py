"""test_dnscheck.py - `relayctl domain check` against a real DNS server.

dnsmasq (dns_server.py) serves a test zone on loopback; dns.resolver points
relayctl at it. Each test publishes a variant of the zone and checks the
PASS/WARN/FAIL lines, the JSON form and the exit status.
"""

import json
import os
import unittest

import dns_server
from harness import PetrelCase

DOMAIN = "example.test"
SOURCE = "192.0.2.10"
SPF_OK = "v=spf1 ip4:%s -all" % SOURCE
DMARC_OK = "v=DMARC1; p=none; rua=mailto:dmarc@%s" % DOMAIN

SKIP = dns_server.available()


@unittest.skipIf(SKIP is not None, SKIP or "")
class DnsCheckTest(PetrelCase):

    def setUp(self):
        super().setUp()
        self.suite.config["dkim"] = {
            "key_directory": os.path.join(self.tmp, "dkim")}
        self.suite.config["smtp"]["source_addresses"] = [SOURCE]
        self.suite.write_config()
        self.suite.relayctl("domain", "add", DOMAIN, "--selector", "t1")
        show = json.loads(self.suite.relayctl(
            "domain", "show", DOMAIN, "-j").stdout)
        sel = [s for s in show["selectors"] if s["state"] == "active"][0]
        self.dkim_name, self.dkim_txt = sel["dns_name"], sel["txt"]
        self.dns = None
        self.addCleanup(self.stop_dns)

    def stop_dns(self):
        if self.dns is not None:
            self.dns.stop()
            self.dns = None

    def zone(self, dkim=None, spf=SPF_OK, dmarc=DMARC_OK, mx=True,
             extra_txt=()):
        txt = [(self.dkim_name, dkim or self.dkim_txt)]
        if spf is not None:
            txt.append((DOMAIN, spf))
        if dmarc is not None:
            txt.append(("_dmarc." + DOMAIN, dmarc))
        txt.extend(extra_txt)
        z = {"local": [DOMAIN, "2.0.192.in-addr.arpa"], "txt": txt,
             "a": [("mail." + DOMAIN, SOURCE)],
             "ptr": [(SOURCE, "mail." + DOMAIN)]}
        if mx:
            z["mx"] = [(DOMAIN, "mx." + DOMAIN, 10)]
            z["a"].append(("mx." + DOMAIN, "192.0.2.25"))
        return z

    def check(self, zone, *extra):
        self.stop_dns()
        try:
            self.dns = dns_server.DnsServer(zone).start()
        except RuntimeError as e:
            self.skipTest(str(e))
        self.suite.config["dns"] = {"resolver": "127.0.0.1:%d"
                                    % self.dns.port}
        self.suite.write_config()
        r = self.suite.relayctl("domain", "check", DOMAIN, *extra,
                                check=False)
        out = r.stdout.decode()
        lines = {}
        for line in ([] if "-j" in extra else out.splitlines()):
            res, rest = line.split("  ", 1)
            name = rest.split(":", 1)[0]
            lines.setdefault(name, []).append((res, line))
        return r.returncode, out, lines

    def assertResult(self, lines, name, res, out, contains=None):
        self.assertIn(name, lines, out)
        got = [x for x in lines[name] if x[0] == res]
        self.assertTrue(got, "%s is not %s:\n%s" % (name, res, out))
        if contains is not None:
            self.assertTrue(any(contains in x[1] for x in got),
                            "%r not in %s line:\n%s" % (contains, name, out))

    def test_all_good(self):
        rc, out, lines = self.check(self.zone())
        self.assertEqual(rc, 0, out)
        for name in ("dkim", "spf", "dmarc", "mx", "ptr"):
            self.assertResult(lines, name, "PASS", out)
        # p=none passes with the advice to tighten it.
        self.assertIn("quarantine", out)

    def test_wrong_dkim_key(self):
        other = self.dkim_txt.split("p=")[0] + "p=" + \
            "MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEA" + "x" * 300
        rc, out, lines = self.check(self.zone(dkim=other))
        self.assertEqual(rc, 1, out)
        self.assertResult(lines, "dkim", "FAIL", out, "does not match")
        self.assertResult(lines, "spf", "PASS", out)

    def test_dkim_missing(self):
        z = self.zone()
        z["txt"] = z["txt"][1:]
        rc, out, lines = self.check(z)
        self.assertEqual(rc, 1, out)
        self.assertResult(lines, "dkim", "FAIL", out, "no TXT record")

    def test_spf_without_address(self):
        rc, out, lines = self.check(self.zone(spf="v=spf1 ip4:198.51.100.1 "
                                              "-all"))
        self.assertEqual(rc, 1, out)
        self.assertResult(lines, "spf", "FAIL", out, "ip4:" + SOURCE)
        self.assertResult(lines, "dkim", "PASS", out)

    def test_spf_softfail(self):
        rc, out, lines = self.check(self.zone(spf="v=spf1 ~all"))
        self.assertEqual(rc, 1, out)
        self.assertResult(lines, "spf", "FAIL", out, "softfail")

    def test_spf_too_many_lookups(self):
        incs = ["i%d.%s" % (i, DOMAIN) for i in range(12)]
        spf = "v=spf1 " + " ".join("include:" + i for i in incs) + \
            " ip4:%s -all" % SOURCE
        extra = [(i, "v=spf1 ip4:198.51.100.%d -all" % n)
                 for n, i in enumerate(incs)]
        rc, out, lines = self.check(self.zone(spf=spf, extra_txt=extra))
        self.assertEqual(rc, 1, out)
        self.assertResult(lines, "spf", "FAIL", out, "permerror")
        self.assertIn("too many DNS lookups", out)

    def test_no_dmarc(self):
        rc, out, lines = self.check(self.zone(dmarc=None))
        self.assertEqual(rc, 1, out)
        self.assertResult(lines, "dmarc", "FAIL", out, "no DMARC record")

    def test_dmarc_reject_strict(self):
        rc, out, lines = self.check(self.zone(
            dmarc="v=DMARC1; p=reject; adkim=s; aspf=s"))
        self.assertEqual(rc, 0, out)
        self.assertResult(lines, "dmarc", "PASS", out, "p=reject")
        self.assertIn("aspf=s", out)

    def test_no_mx_is_only_a_warning(self):
        rc, out, lines = self.check(self.zone(mx=False))
        self.assertEqual(rc, 0, out)
        self.assertResult(lines, "mx", "WARN", out)
        for name in ("dkim", "spf", "dmarc"):
            self.assertResult(lines, name, "PASS", out)

    def test_ptr_not_confirmed(self):
        z = self.zone()
        z["a"] = [x for x in z["a"] if x[0] != "mail." + DOMAIN]
        rc, out, lines = self.check(z)
        self.assertEqual(rc, 0, out)
        self.assertResult(lines, "ptr", "WARN", out)

    def test_json(self):
        rc, out, _ = self.check(self.zone(dmarc=None), "-j")
        self.assertEqual(rc, 1, out)
        doc = json.loads(out)
        self.assertEqual(doc["domain"], DOMAIN)
        self.assertIs(doc["ok"], False)
        res = {c["name"]: c["result"] for c in doc["checks"]}
        self.assertEqual(res["dkim"], "PASS")
        self.assertEqual(res["dmarc"], "FAIL")
        for c in doc["checks"]:
            self.assertIn(c["result"], ("PASS", "WARN", "FAIL"))
            self.assertIn("detail", c)
            self.assertIn("fix", c)

    def test_resolver_down(self):
        # Nothing listens there: every lookup fails, nothing crashes.
        self.suite.config["dns"] = {"resolver": "127.0.0.1:9"}
        self.suite.write_config()
        r = self.suite.relayctl("domain", "check", DOMAIN, check=False)
        out = r.stdout.decode()
        self.assertEqual(r.returncode, 1, out)
        self.assertIn("FAIL  dkim:", out)


@unittest.skipIf(SKIP is not None, SKIP or "")
class SmtpResolverTest(PetrelCase):
    """smtp resolves the next hop through dns.resolver: the transport names
    relay.test without brackets, so smtp looks up its MX (served only by
    dnsmasq) and the MX host's address, then connects on the transport's
    port, where the capture server listens."""

    def setUp(self):
        super().setUp()
        self.dns = dns_server.DnsServer({
            "local": ["relay.test"],
            "mx": [("relay.test", "mx1.relay.test", 10)],
            "a": [("mx1.relay.test", "127.0.0.1")]})
        try:
            self.dns.start()
        except RuntimeError as e:
            self.skipTest(str(e))
        self.addCleanup(self.dns.stop)
        self.suite.config["dns"] = {"resolver": "127.0.0.1:%d"
                                    % self.dns.port}
        self.suite.config["transport"] = {
            "*": "relay.test:%d" % self.capture.port}
        self.suite.write_config()
        self.suite.stop()
        self.suite.start()

    def test_mx_through_configured_resolver(self):
        from harness import make_message, unique
        tok = unique("dnsmx")
        self.submit(make_message(tok))
        got = self.wait_arrival(tok)
        self.assertEqual(len(got), 1)


if __name__ == "__main__":
    unittest.main()
