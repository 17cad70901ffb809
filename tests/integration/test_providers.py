"""test_providers.py - destinations rolled up into providers by their MX
hosts (shaping.yaml(5) providers, qmgr_provider.c).

Two customer domains, cust1.test and cust2.test, have their MX at a
simulated provider's hosts (mx1.prov.test and mx2.prov.test), served by a
real DNS server (dnsmasq) that smtp queries through dns.resolver; both MX
hosts are the capture server, which greets a third concurrent session with
421, as a provider limiting a sender's connections does. The shaping file
gives the provider 2 connections; each domain alone would be allowed the
default's 10. The transport only sets the port, so smtp looks up each
domain's MX and the next-hop keys stay the two domains'.
"""

import json
import time

import dns_server
from harness import (PetrelCase, connect, login_plain, make_message, send,
                     unique)


class ProviderCase(PetrelCase):

    overrides = {"smtp": {"processes": 8}}

    def setUp(self):
        super().setUp()
        self.dns = dns_server.DnsServer({
            "local": ["cust1.test", "cust2.test", "prov.test"],
            "mx": [("cust1.test", "mx1.prov.test", 10),
                   ("cust2.test", "mx2.prov.test", 10)],
            "a": [("mx1.prov.test", "127.0.0.1"),
                  ("mx2.prov.test", "127.0.0.1")]})
        try:
            self.dns.start()
        except RuntimeError as e:
            self.skipTest(str(e))
        self.addCleanup(self.dns.stop)
        # Slow replies keep sessions busy: unshaped, 8 smtp processes
        # would open more than two at once.
        self.capture.data_delay = 0.3
        self.capture.max_sessions = 2

    def shape(self, doc):
        self.suite.config["dns"] = {"resolver": "127.0.0.1:%d"
                                    % self.dns.port}
        self.suite.config["transport"] = {
            d: "%s:%d" % (d, self.capture.port)
            for d in ("cust1.test", "cust2.test")}
        self.restart_shaped(doc)

    def send_to(self, tag, rcpts):
        """One message per recipient, in one session; their tokens."""
        user, pw = self.ensure_user()
        toks = []
        c = connect(self.suite)
        try:
            login_plain(c, user, pw)
            for r in rcpts:
                t = unique(tag)
                send(c, "app@example.com", [r], make_message(t, to=r))
                toks.append(t)
        finally:
            c.quit()
        return toks

    def wait_all(self, toks, timeout):
        want = set(t.encode() for t in toks)
        got = self.capture.wait_for_messages(
            len(toks), timeout, match=lambda tr: any(t in tr.data
                                                     for t in want))
        if len(got) < len(toks):
            self.fail("%d of %d messages arrived within %ds\n%s"
                      % (len(got), len(toks), timeout,
                         self.suite.log_tail()))

    def burst(self):
        """A message to each domain (qmgr learns their MX hosts), then
        twelve to each, interleaved."""
        first = self.send_to("learn", ["a@cust1.test", "b@cust2.test"])
        self.wait_all(first, 30)
        rcpts = []
        for i in range(12):
            rcpts += ["u%d@cust1.test" % i, "u%d@cust2.test" % i]
        toks = self.send_to("burst", rcpts)
        return toks


class ProviderCapTest(ProviderCase):

    def test_provider_cap_holds_across_domains(self):
        self.shape({
            "default": {"max_connections": 10},
            "providers": {"prov": {"mx_suffixes": [".prov.test"],
                                   "provider_max_connections": 2}}})
        toks = self.burst()
        # While the backlog lasts: each domain is the provider's member.
        seen = {}
        deadline = time.time() + 10
        while time.time() < deadline and len(seen) < 2:
            out = self.suite.relayctl("-j", "shaping", "show",
                                      check=False).stdout.decode()
            for line in out.splitlines():
                d = json.loads(line)
                if d["provider"] is not None:
                    seen[d["destination"]] = d
            time.sleep(0.1)
        self.wait_all(toks, 90)
        self.assertLessEqual(self.capture.peak, 2)
        self.assertEqual(self.capture.refused, 0)
        self.assertEqual(self.suite.deliveries(status="deferred"), [],
                         "a refused session deferred mail")
        log = self.suite.log()
        for d in ("cust1.test", "cust2.test"):
            self.assertIn("%s:%d: provider prov (MX mx%s.prov.test)"
                          % (d, self.capture.port, d[4]), log)
        self.assertEqual(sorted(seen), ["cust1.test:%d" % self.capture.port,
                                        "cust2.test:%d" % self.capture.port],
                         "relayctl shaping show -j: %r" % seen)
        for d in seen.values():
            self.assertEqual(d["provider"], "prov")
            self.assertEqual(d["entry"], "prov")
            self.assertEqual(d["provider_max_connections"], 2)
            self.assertLessEqual(d["provider_connections"], 2)

    def test_without_the_provider_both_domains_add_up(self):
        """The same load with a provider whose suffix matches neither MX:
        each domain may open its own connections, and the server sees
        more than two at once (the test above can fail)."""
        self.capture.max_sessions = None
        self.shape({
            "default": {"max_connections": 10},
            "providers": {"other": {"mx_suffixes": [".other.test"],
                                    "provider_max_connections": 2}}})
        toks = self.burst()
        self.wait_all(toks, 90)
        self.assertGreater(self.capture.peak, 2)
        self.assertNotIn("provider other", self.suite.log())


class ProviderRateTest(ProviderCase):
    """provider_max_message_rate counts the messages to all the
    provider's domains together: with one an hour, one of two messages
    (one to each domain, each of which alone is unlimited) goes and the
    other waits, its destination pacing."""

    def test_rate_holds_across_domains(self):
        self.capture.data_delay = 0
        self.capture.max_sessions = None
        self.shape({
            "providers": {"prov": {"mx_suffixes": [".prov.test"],
                                   "provider_max_message_rate": "1/hour"}}})
        # qmgr learns that both domains are the provider's (until then
        # no provider counts them).
        self.wait_all(self.send_to("learn", ["a@cust1.test",
                                             "b@cust2.test"]), 30)
        toks = self.send_to("rate", ["c@cust1.test", "d@cust2.test"])
        self.capture.wait_for_messages(
            1, 30, match=lambda tr: any(t.encode() in tr.data
                                        for t in toks))
        # The other waits for the provider's next token, an hour away.
        deadline = time.time() + 3
        shown = []
        while time.time() < deadline:
            shown = [json.loads(l) for l in self.suite.relayctl(
                "-j", "shaping", "show").stdout.decode().splitlines()]
            time.sleep(0.3)
        arrived = [t for t in toks if any(t.encode() in m.data for m in
                                          self.capture.messages())]
        self.assertEqual(len(arrived), 1, self.suite.log_tail())
        waiting = [d for d in shown if d["pending"] > 0]
        self.assertEqual([(d["state"], d["provider"],
                           d["provider_max_message_rate"])
                          for d in waiting], [("pacing", "prov", "1/h")],
                         shown)
        self.assertEqual(self.suite.deliveries(status="deferred"), [])


SOURCES = ("127.0.0.3", "127.0.0.4")
BLOCKED = ("451 4.7.1 Service unavailable; Client host [%s] blocked "
           "using zen.spamhaus.org" % SOURCES[0])


class ProviderSetAsideTest(ProviderCase):
    """A source address refused for its reputation by one domain of a
    provider is set aside for the provider's other domains as well,
    in every smtp process: they never try it."""

    overrides = {"smtp": {"processes": 4,
                          "source_addresses": list(SOURCES)}}

    def test_set_aside_for_the_whole_provider(self):
        self.capture.data_delay = 0
        self.capture.max_sessions = None
        self.shape({
            "default": {"max_messages_per_connection": 1},
            "providers": {"prov": {"mx_suffixes": [".prov.test"]}}})
        # qmgr learns that both domains are the provider's.
        self.wait_all(self.send_to("learn", ["a@cust1.test",
                                             "b@cust2.test"]), 30)
        rule = self.capture.add_mail_rule(BLOCKED, peer=SOURCES[0])
        # cust1.test until it refuses the first address.
        deadline = time.time() + 30
        while rule.used == 0:
            if time.time() > deadline:
                self.fail("no session from %s\n%s"
                          % (SOURCES[0], self.suite.log_tail()))
            self.send_to("one", ["c@cust1.test"])
            time.sleep(0.3)
        toks = self.send_to("other", ["u%d@cust2.test" % i
                                      for i in range(6)])
        self.wait_all(toks, 30)
        for t in toks:
            got = [m for m in self.capture.messages()
                   if t.encode() in m.data]
            self.assertEqual(got[0].peer[0], SOURCES[1])
        # cust2.test never tried the address cust1.test refused.
        self.assertEqual(rule.used, 1, self.suite.log_tail())
        self.assertIn("source address %s set aside for prov"
                      % SOURCES[0], self.suite.log())
        # relayctl sources show names the provider as the scope.
        aside = [r for r in map(json.loads, self.suite.relayctl(
            "-j", "sources", "show").stdout.decode().splitlines())
            if r["scope"] is not None]
        self.assertEqual([(r["source"], r["scope"], r["set_aside_reason"])
                          for r in aside], [(SOURCES[0], "prov", BLOCKED)])
