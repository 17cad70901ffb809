"""test_pools.py - source address pools (smtp.pools, relayctl --pool).

Loopback has every 127.0.0.0/8 address, so the pools are made of several
of them and the capture server records the address each session came
from: a credential's mail leaves from its pool's addresses, in turn
across a pool, and a credential bound to none from smtp.source_addresses
(the pool "default").
"""

import json
import os
import re
import time

from harness import (PetrelCase, connect, login_plain, make_message,
                     relayctl_without_config, send, unique)

DEFAULT = "127.0.0.5"
TRANSACTIONAL = "127.0.0.2"
BULK = ("127.0.0.3", "127.0.0.4")
POOLS = {"transactional": [TRANSACTIONAL], "bulk": list(BULK)}


class PoolCase(PetrelCase):
    overrides = {"smtp": {"source_addresses": [DEFAULT], "pools": POOLS}}
    password = "correct horse battery staple"

    def add_user(self, name, pool=None):
        args = ["user", "add", name, "--password-stdin"]
        if pool is not None:
            args += ["--pool", pool]
        return self.suite.relayctl(
            *args, input=(self.password + "\n").encode())

    def send_as(self, user, n=1, tag="pool"):
        """n messages in one session as user; their tokens."""
        toks = [unique(tag) for _ in range(n)]
        c = connect(self.suite)
        try:
            login_plain(c, user, self.password)
            for t in toks:
                send(c, "app@example.com", ["rcpt@example.org"],
                     make_message(t))
        finally:
            c.quit()
        return toks

    def shape(self, limits, smtp=None):
        """Restarts Petrel with a shaping file giving the capture server's
        next hop limits, and smtp settings (a dict) if given."""
        self.suite.config["smtp"].update(smtp or {})
        self.restart_shaped({"destinations": {
            "[127.0.0.1]:%d" % self.capture.port: limits}})

    def peers(self, toks):
        """The source address of each token's arrival."""
        out = []
        for t in toks:
            got = self.wait_arrival(t)
            out.append(got[0].peer[0])
        return out


class PoolDeliveryTest(PoolCase):
    """Each credential's mail arrives from its own pool's addresses."""

    def test_each_credential_from_its_pool(self):
        self.add_user("tx", "transactional")
        self.add_user("news", "bulk")
        self.add_user("plain")
        tx = self.send_as("tx", 2, "tx")
        news = self.send_as("news", 2, "news")
        plain = self.send_as("plain", 2, "plain")
        self.assertEqual(set(self.peers(tx)), {TRANSACTIONAL})
        self.assertLessEqual(set(self.peers(news)), set(BULK))
        self.assertEqual(set(self.peers(plain)), {DEFAULT})

    def test_set_moves_a_credential(self):
        self.add_user("mover", "transactional")
        self.assertEqual(self.peers(self.send_as("mover", 1, "before")),
                         [TRANSACTIONAL])
        self.suite.relayctl("user", "set", "mover", "--pool", "default")
        self.assertEqual(self.peers(self.send_as("mover", 1, "after")),
                         [DEFAULT])

    def test_unknown_pool_refused(self):
        r = self.suite.relayctl("user", "add", "lost", "--pool", "nosuch",
                                "--password-stdin", check=False,
                                input=(self.password + "\n").encode())
        self.assertEqual(r.returncode, 1, r)
        self.assertIn(b"no such pool", r.stderr)
        self.assertNotIn(b"lost", self.suite.relayctl("user", "list").stdout)
        self.add_user("known", "bulk")
        r = self.suite.relayctl("user", "set", "known", "--pool", "nosuch",
                                check=False)
        self.assertEqual(r.returncode, 1, r)
        self.assertIn(b"no such pool", r.stderr)
        r = self.suite.relayctl("user", "set", "known", "--pool", "Bad!",
                                check=False)
        self.assertEqual(r.returncode, 2, r)
        shown = json.loads(self.suite.relayctl("user", "show", "known",
                                               "-j").stdout)
        self.assertEqual(shown["pool"], "bulk")

    def test_user_list_shows_the_pool(self):
        self.add_user("a1", "bulk")
        self.add_user("a2")
        lines = self.suite.relayctl("user", "list").stdout.decode()
        cols = {l.split("\t")[0]: l.split("\t") for l in lines.splitlines()}
        self.assertEqual(cols["a1"][-1], "pool=bulk")
        self.assertEqual(cols["a2"][-1], "pool=default")
        objs = [json.loads(l) for l in self.suite.relayctl(
            "user", "list", "-j").stdout.decode().splitlines()]
        self.assertEqual({o["user"]: o["pool"] for o in objs},
                         {"a1": "bulk", "a2": "default"})

    def test_domain_add_spf_names_every_pool(self):
        self.suite.config["dkim"] = {
            "key_directory": os.path.join(self.tmp, "dkim")}
        self.suite.write_config()
        out = self.suite.relayctl("domain", "add", "pools.test",
                                  "--selector", "p1").stdout.decode()
        spf = [l for l in out.splitlines() if "v=spf1" in l]
        self.assertEqual(len(spf), 1, out)
        for a in (DEFAULT, TRANSACTIONAL) + BULK:
            self.assertIn("ip4:%s " % a, spf[0].replace('"', ' '), out)


class RoundRobinTest(PoolCase):
    """A pool's addresses take its connections in turn."""

    def test_round_robin(self):
        # One message per session, so that each is a new connection.
        self.shape({"max_messages_per_connection": 1})
        self.add_user("news", "bulk")
        peers = self.peers(self.send_as("news", 6, "rr"))
        self.assertEqual(set(peers), set(BULK), peers)
        # Each of the two smtp processes alternates: neither address
        # carries more than two thirds.
        for a in BULK:
            self.assertLessEqual(peers.count(a), 4, peers)


class LimitsPerSourceTest(PoolCase):
    """max_connections counts per source address: a pool of two has two
    connections to a destination limited to one, one from each address,
    never two from the same."""

    overrides = {"smtp": {"source_addresses": [DEFAULT], "pools": POOLS,
                          "processes": 8}}

    def test_one_connection_from_each_address(self):
        self.shape({"max_connections": 1, "max_messages_per_connection": 2})
        # Slow replies keep each session busy while the others queue:
        # with eight smtp processes and no limit, more would be open.
        self.capture.data_delay = 0.3
        self.add_user("news", "bulk")
        toks = self.send_as("news", 12, "persrc")
        # While they go: shaping show counts the pool's two addresses.
        key = "[127.0.0.1]:%d/bulk" % self.capture.port
        shown = [json.loads(l) for l in self.suite.relayctl(
            "shaping", "show", "-j").stdout.decode().splitlines() if l]
        self.assertEqual([r["source_addresses"] for r in shown
                          if r["destination"] == key], [2], shown)
        peers = self.peers(toks)
        self.assertEqual(set(peers), set(BULK), peers)
        self.assertEqual(set(self.capture.peak_by_peer), set(BULK))
        for a in BULK:
            self.assertEqual(self.capture.peak_by_peer[a], 1,
                             self.capture.peak_by_peer)
        # Both at once: the limit is not one for the pool.
        self.assertEqual(self.capture.peak, 2)
        self.assertEqual(self.suite.deliveries(status="deferred"), [])


TOO_FAST = ("421 4.7.28 Our system has detected an unusual rate of "
            "unsolicited mail originating from your IP address")


class OnReplyPerSourceTest(PoolCase):
    """A provider's "too fast" is about the address it came to: an
    on_reply rule suspends that address only, and the pool's other
    address carries the destination's mail meanwhile. One smtp process,
    one message per session, so that one reply is seen before the next
    job goes."""

    overrides = {"smtp": {"source_addresses": [DEFAULT], "pools": POOLS,
                          "processes": 1}}

    def test_other_address_goes_on(self):
        self.shape({"max_messages_per_connection": 1, "on_reply": [
            {"pattern": r"4\.7\.28", "action": "suspend", "for": "10m"}]})
        rule = self.capture.add_mail_rule(TOO_FAST, peer=BULK[0])
        self.add_user("news", "bulk")
        toks = []
        for i in range(3):
            toks += self.send_as("news", 2, "onreply%d" % i)
        # All of them, the one refused included (retried), came from the
        # other address; the refused address was tried once.
        peers = self.peers(toks)
        self.assertEqual(set(peers), {BULK[1]}, peers)
        self.assertEqual(rule.used, 1, self.suite.log_tail())
        key = "[127.0.0.1]:%d/bulk" % self.capture.port
        self.assertIn("destination %s from %s: suspended (%s), mail from "
                      "it held for 10m" % (key, BULK[0], TOO_FAST),
                      self.suite.log())
        shown = [json.loads(l) for l in self.suite.relayctl(
            "shaping", "show", "-j").stdout.decode().splitlines() if l]
        rec = [r for r in shown if r["destination"] == key]
        self.assertEqual([(r["state"], r["sources_suspended"],
                           r["sources_in_backoff"]) for r in rec],
                         [("backoff", 1, 0)], shown)
        # One event, naming the address.
        deadline = time.time() + 10
        while True:
            acct = [o for o in self.suite.accounting()
                    if o.get("event") == "destination"]
            if acct or time.time() > deadline:
                break
            time.sleep(0.2)
        self.assertEqual([(o["destination"], o.get("source"), o["state"],
                           o["previous_state"]) for o in acct],
                         [(key, BULK[0], "suspended", "normal")], acct)
        # relayq -o names the address on the destination's line.
        human = self.suite.relayq("-o").stdout.decode()
        self.assertRegex(human, r"(?m)^\d+ destination %s source=%s "
                         r"state=suspended \(" % (re.escape(key),
                                                   re.escape(BULK[0])))


BLOCKED = ("451 4.7.1 Service unavailable; Client host [%s] blocked "
           "using zen.spamhaus.org" % BULK[0])


class SetAsideCase(PoolCase):
    """One smtp process, one message per session."""

    overrides = {"smtp": {"source_addresses": [DEFAULT], "pools": POOLS,
                          "processes": 1}}
    set_aside = None            # smtp.reputation_set_aside, or default

    def one_message_per_session(self):
        self.shape({"max_messages_per_connection": 1, "max_connections": 1},
                   smtp=None if self.set_aside is None else
                   {"reputation_set_aside": self.set_aside})

    def run_batch(self):
        self.one_message_per_session()
        rule = self.capture.add_mail_rule(BLOCKED, peer=BULK[0])
        self.add_user("news", "bulk")
        toks = []
        for i in range(3):
            toks += self.send_as("news", 2, "aside%d" % i)
            time.sleep(0.5)
        return rule, self.peers(toks)


class SetAsideTest(SetAsideCase):
    """An address refused for its reputation rests; the pool goes on."""

    def test_refused_address_set_aside(self):
        rule, peers = self.run_batch()
        self.assertEqual(set(peers), {BULK[1]}, peers)
        # One refusal teaches the one smtp process.
        self.assertEqual(rule.used, 1, self.suite.log_tail())
        self.assertIn("source address %s set aside for [127.0.0.1]:%d"
                      % (BULK[0], self.capture.port), self.suite.log())

    def test_whole_pool_aside_waits(self):
        """A pool of one refused address: its mail waits, the others'
        goes."""
        self.one_message_per_session()
        rule = self.capture.add_mail_rule(BLOCKED.replace(
            BULK[0], TRANSACTIONAL), peer=TRANSACTIONAL)
        self.add_user("tx", "transactional")
        self.add_user("plain")
        tok = self.send_as("tx", 1, "waits")[0]
        want = "every address of source address pool transactional is " \
            "set aside for [127.0.0.1]:%d" % self.capture.port
        deadline = time.time() + 30
        while want not in self.suite.log():
            if time.time() > deadline:
                self.fail("no wait for the set-aside pool\n%s"
                          % self.suite.log_tail())
            time.sleep(0.2)
        self.assertEqual(rule.used, 1)
        self.assertEqual(self.peers(self.send_as("plain", 1, "goes")),
                         [DEFAULT])
        self.assertFalse([t for t in self.capture.messages()
                          if tok.encode() in t.data])


class SetAsideOffTest(SetAsideCase):
    """The control: with the set-aside off, the address is tried on."""

    set_aside = "0"

    def test_refused_address_set_aside(self):
        rule, peers = self.run_batch()
        self.assertEqual(set(peers), {BULK[1]}, peers)
        self.assertGreater(rule.used, 1, self.suite.log_tail())
        self.assertNotIn("set aside", self.suite.log())


class RemovedPoolTest(PoolCase):
    """A credential whose pool left the configuration waits, deferred."""

    def test_removed_pool_defers(self):
        self.add_user("orphan", "transactional")
        self.suite.stop()
        self.suite.config["smtp"]["pools"] = {"bulk": list(BULK)}
        self.suite.write_config()
        self.suite.start()
        qtok = self.send_as("orphan", 1, "orphan")[0]
        deadline = time.time() + 30
        while "source address pool transactional is not configured" \
                not in self.suite.log():
            if time.time() > deadline:
                self.fail("no deferral for the missing pool\n%s"
                          % self.suite.log_tail())
            time.sleep(0.2)
        self.assertFalse([t for t in self.capture.messages()
                          if qtok.encode() in t.data])


class DefaultPoolOnlyTest(PoolCase):
    """Without smtp.pools, source_addresses is the one pool, in turn."""

    overrides = {"smtp": {"source_addresses": list(BULK)}}

    def test_source_addresses_are_the_default_pool(self):
        self.add_user("plain")
        r = self.suite.relayctl("user", "add", "x", "--pool", "bulk",
                                "--password-stdin", check=False,
                                input=(self.password + "\n").encode())
        self.assertEqual(r.returncode, 1, r)
        peers = self.peers(self.send_as("plain", 2, "dflt"))
        self.assertLessEqual(set(peers), set(BULK), peers)


def warmup(schedule):
    """Overrides: one smtp process, 127.0.0.4 warming up from today with
    the given daily caps."""
    day = time.strftime("%Y-%m-%d", time.gmtime())
    return {"smtp": {"source_addresses": [DEFAULT], "pools": POOLS,
                     "processes": 1, "warmup": {BULK[1]: day},
                     "warmup_schedule": schedule}}


class WarmupTest(SetAsideCase):
    """A warmup address sends its day's cap to a next hop, then the
    others carry its share; the count outlives a restart (it is in the
    queue database, not only in qmgr's memory)."""

    overrides = warmup([2, 50])

    def test_cap_then_the_others(self):
        self.one_message_per_session()
        self.add_user("news", "bulk")
        peers = []
        for i in range(4):
            peers += self.peers(self.send_as("news", 2, "warm%d" % i))
        # In turn until the cap: 127.0.0.4 took two, 127.0.0.3 the rest.
        self.assertEqual(peers.count(BULK[1]), 2, peers)
        self.assertEqual(peers.count(BULK[0]), 6, peers)
        self.assertIn("source address %s reached its warmup cap for "
                      "[127.0.0.1]:%d: 2 of 2 message(s) today"
                      % (BULK[1], self.capture.port), self.suite.log())
        # A restarted qmgr reads today's count back.
        self.suite.stop()
        self.suite.start()
        peers = []
        for i in range(2):
            peers += self.peers(self.send_as("news", 2, "after%d" % i))
        self.assertEqual(set(peers), {BULK[0]}, peers)


class WarmupUnderCapTest(SetAsideCase):
    """The control for WarmupTest: under its cap a warmup address takes
    its turns like any other."""

    overrides = warmup([100])

    def test_turns_under_the_cap(self):
        self.one_message_per_session()
        self.add_user("news", "bulk")
        peers = []
        for i in range(4):
            peers += self.peers(self.send_as("news", 2, "under%d" % i))
        self.assertEqual(peers.count(BULK[1]), 4, peers)


class WarmupNoTakeoverTest(SetAsideCase):
    """When the pool's established address is set aside, its warmup
    address does not carry the mail in its place: the mail waits."""

    overrides = warmup([100])

    def test_warmup_does_not_stand_in(self):
        self.one_message_per_session()
        rule = self.capture.add_mail_rule(BLOCKED, peer=BULK[0])
        self.add_user("news", "bulk")
        toks = []
        # Until the established address is refused and set aside.
        deadline = time.time() + 30
        while rule.used == 0:
            if time.time() > deadline:
                self.fail("no session from %s\n%s"
                          % (BULK[0], self.suite.log_tail()))
            toks += self.send_as("news", 1, "first")
            time.sleep(0.5)
        waits = self.send_as("news", 2, "waits")
        want = "every address of source address pool bulk is set aside " \
            "for [127.0.0.1]:%d, at its warmup cap or suspended" \
            % self.capture.port
        deadline = time.time() + 30
        while self.suite.log().count(want) < 2:
            if time.time() > deadline:
                self.fail("the mail did not wait\n%s"
                          % self.suite.log_tail())
            time.sleep(0.2)
        arrived = b"".join(t.data for t in self.capture.messages())
        for t in waits:
            self.assertNotIn(t.encode(), arrived)
        self.assertEqual(rule.used, 1, self.suite.log_tail())


def address_rows(warm=None):
    """relayctl -j sources show's rows for POOLS and DEFAULT, in the
    configuration's order (smtp.source_addresses is the pool default,
    first); warm: (address, day, cap) of the one warming up."""
    out = []
    for pool, addrs in [("default", [DEFAULT])] + list(POOLS.items()):
        for a in addrs:
            row = {"source": a, "pool": pool, "scope": None,
                   "warmup_day": None, "warmup_cap": None,
                   "sent_today": None, "set_aside_until": None,
                   "set_aside_reason": None}
            if warm is not None and warm[0] == a:
                row["warmup_day"], row["warmup_cap"] = warm[1:]
            out.append(row)
    return out


class SourcesShowTest(SetAsideCase):
    """relayctl sources show: every pool address, then what qmgr holds
    for an address and a scope (here the capture server's next hop): the
    set-aside after a reputation refusal, with its end and the reply."""

    def sources(self, *args):
        r = self.suite.relayctl(*args)
        self.assertEqual(r.stderr, b"")
        return r.stdout.decode()

    def sources_json(self):
        return [json.loads(l) for l in self.sources(
            "-j", "sources", "show").splitlines()]

    def test_set_aside_shown(self):
        # Before any mail: the pools' addresses only.
        self.assertEqual(self.sources_json(), address_rows())
        before = int(time.time())
        self.run_batch()
        after = int(time.time())
        rows = self.sources_json()
        self.assertEqual(rows[:4], address_rows())
        self.assertEqual(len(rows), 5, rows)
        until = rows[4].pop("set_aside_until")
        # smtp.reputation_set_aside's default, 1h, from the refusal.
        self.assertGreaterEqual(until, before + 3600)
        self.assertLessEqual(until, after + 3601)
        self.assertEqual(rows[4], {
            "source": BULK[0], "pool": None,
            "scope": "[127.0.0.1]:%d" % self.capture.port,
            "warmup_day": None, "warmup_cap": None, "sent_today": None,
            "set_aside_reason": BLOCKED})
        # The table: a header, the same rows; the refusal last.
        lines = self.sources("sources", "show").splitlines()
        self.assertEqual(lines[0].split(), [
            "SOURCE", "POOL", "SCOPE", "WARMUP_DAY", "WARMUP_CAP",
            "SENT_TODAY", "SET_ASIDE_UNTIL", "REASON"])
        self.assertEqual(lines[1].split(),
                         [DEFAULT, "default", "-", "-", "-", "-", "-", "-"])
        self.assertEqual(len(lines), 6, lines)
        self.assertEqual(lines[5].split(None, 7), [
            BULK[0], "-", "[127.0.0.1]:%d" % self.capture.port, "-", "-",
            "-", time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(until)),
            BLOCKED])

    def test_usage(self):
        r = relayctl_without_config(["sources", "show", "--help"])
        self.assertEqual(r.returncode, 0, r)
        self.assertTrue(r.stdout.startswith(
            b"usage: relayctl [-c FILE] [-j] sources show"), r.stdout)
        for args in (["sources"], ["sources", "list"],
                     ["sources", "show", "x"]):
            r = relayctl_without_config(args)
            self.assertEqual(r.returncode, 2, (args, r))
            self.assertTrue(r.stderr.startswith(b"relayctl: sources"),
                            r.stderr)
            self.assertIn(b"usage: relayctl", r.stderr)


class SourcesShowWarmupTest(SetAsideCase):
    """relayctl sources show of a warmup address: its day and today's
    cap on its pool row, and, once it has reached the cap for the next
    hop, the count and the cap on its row for that scope."""

    overrides = warmup([2, 50])

    def test_warmup_count_shown(self):
        warm = (BULK[1], 1, 2)
        self.one_message_per_session()
        self.assertEqual([json.loads(l) for l in self.suite.relayctl(
            "-j", "sources", "show").stdout.decode().splitlines()],
            address_rows(warm))
        self.add_user("news", "bulk")
        peers = []
        for i in range(4):
            peers += self.peers(self.send_as("news", 2, "warm%d" % i))
        self.assertEqual(peers.count(BULK[1]), 2, peers)
        rows = [json.loads(l) for l in self.suite.relayctl(
            "sources", "show", "-j").stdout.decode().splitlines()]
        self.assertEqual(rows, address_rows(warm) + [{
            "source": BULK[1], "pool": None,
            "scope": "[127.0.0.1]:%d" % self.capture.port,
            "warmup_day": None, "warmup_cap": 2, "sent_today": 2,
            "set_aside_until": None, "set_aside_reason": None}])
        lines = self.suite.relayctl("sources", "show").stdout.decode() \
            .splitlines()
        self.assertEqual(lines[4].split(),
                         [BULK[1], "bulk", "-", "1", "2", "-", "-", "-"])
        self.assertEqual(lines[5].split(), [
            BULK[1], "-", "[127.0.0.1]:%d" % self.capture.port, "-", "2",
            "2", "-", "-"])


class GreetingSetAsideTest(SetAsideCase):
    """A refusal for reputation in the greeting sets the address aside
    as one at MAIL does: the pool's other address carries on."""

    def test_greeting_refusal_sets_aside(self):
        self.one_message_per_session()
        self.capture.greeting = BLOCKED.replace("451", "421", 1)
        self.capture.greeting_peer = BULK[0]
        self.add_user("news", "bulk")
        toks = []
        for i in range(3):
            toks += self.send_as("news", 2, "greet%d" % i)
            time.sleep(0.3)
        self.assertEqual(set(self.peers(toks)), {BULK[1]})
        log = self.suite.log()
        self.assertIn("source address %s set aside for [127.0.0.1]:%d"
                      % (BULK[0], self.capture.port), log)
        # One greeting refusal taught qmgr: no second session from it.
        self.assertEqual(log.count("Client host [%s] blocked" % BULK[0]),
                         2, self.suite.log_tail())
