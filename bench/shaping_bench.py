#!/usr/bin/env python3
#
# shaping_bench.py - issue 11's pacing benchmark: a burst of 20,000
# messages across three simulated providers with different limits, and
# the rate each provider's server received them at, against its
# configured max_message_rate (the target: within 10%).
#
# Each provider is a capture server (tests/integration/capture_smtpd.py)
# standing for the provider's MX hosts, and one customer domain whose MX
# (served by dnsmasq, tests/integration/dns_server.py) is under the
# provider's suffix, so qmgr rolls it up into the provider's entry of the
# shaping file: its rate, its provider_max_connections. The messages are
# submitted over STARTTLS with AUTH PLAIN from several threads, in the
# providers' shares, faster than they may be delivered, so the queue holds
# a backlog for each provider and pacing alone decides the arrival rate.
#
# Run as root from the repository (the harness runs the daemons as the
# mail_owner "petrel"), after `make`:  python3 bench/shaping_bench.py
# Options: -n TOTAL (default 20000), --threads K (4). It prints one line
# per provider and exits 1 if a provider's rate is off by more than 10%.
# Everything listens on 127.0.0.1 and every process is stopped at the end.

import argparse
import collections
import json
import os
import shutil
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "tests", "integration"))

import dns_server  # noqa: E402
from harness import (CaptureSMTPD, Suite, connect, login_plain,  # noqa: E402
                     make_message, send, to_yaml)

# name, share of the messages, max_message_rate (per second),
# provider_max_connections.
PROVIDERS = [("pa", 0.60, 60, 4), ("pb", 0.25, 25, 2), ("pc", 0.15, 15, 2)]
USER, PASSWORD = "bench", "bench password 1234"
# Arrivals before this share of a provider's messages are left out of its
# rate: the first jobs go out before qmgr has learned the domain's MX.
WARMUP = 0.05


def submit(suite, rcpts, errors):
    try:
        c = connect(suite)
        login_plain(c, USER, PASSWORD)
        for i, r in enumerate(rcpts):
            send(c, "app@example.com", [r],
                 make_message("shaping-bench-%d" % i, to=r))
        c.quit()
    except Exception as e:  # reported by the main thread
        errors.append(repr(e))


def sample_states(suite, states, stop):
    """relayctl shaping show -j twice a second: how often each provider's
    destination was at its connection limit, waiting for its rate, or
    neither, while the backlog lasted."""
    while not stop.is_set():
        r = suite.relayctl("-j", "shaping", "show", check=False)
        for line in r.stdout.decode().splitlines():
            d = json.loads(line)
            if d["pending"] > 0 and d["provider"] is not None:
                states[d["provider"]][d["state"]] += 1
        stop.wait(0.5)


def max_in_window(times, width=1.0):
    best, j = 0, 0
    for i, t in enumerate(times):
        while times[j] < t - width:
            j += 1
        best = max(best, i - j + 1)
    return best


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("-n", type=int, default=20000)
    ap.add_argument("--threads", type=int, default=4)
    args = ap.parse_args()

    tmp = tempfile.mkdtemp(prefix="petrel-shaping-bench-")
    os.chmod(tmp, 0o755)
    servers, dns, suite = {}, None, None
    try:
        zone = {"local": [], "mx": [], "a": []}
        for name, _, _, _ in PROVIDERS:
            cust = "cust-%s.test" % name
            zone["local"] += [cust, "%s.test" % name]
            zone["mx"].append((cust, "mx1.%s.test" % name, 10))
            zone["a"].append(("mx1.%s.test" % name, "127.0.0.1"))
            servers[name] = CaptureSMTPD()
            servers[name].start()
        dns = dns_server.DnsServer(zone)
        dns.start()
        shaping = {"default": {"max_connections": 10},
                   "providers": {
                       name: {"mx_suffixes": [".%s.test" % name],
                              "max_message_rate": "%d/s" % rate,
                              "provider_max_connections": conns}
                       for name, _, rate, conns in PROVIDERS}}
        path = os.path.join(tmp, "shaping.yaml")
        with open(path, "w") as f:
            f.write(to_yaml(shaping))
        os.chmod(path, 0o644)
        suite = Suite(tmp, servers["pa"].port, {
            "smtpd": {"processes": 2},
            "smtp": {"processes": 12},
            "dns": {"resolver": "127.0.0.1:%d" % dns.port},
            "shaping": {"file": path},
            "transport": {"cust-%s.test" % name: "cust-%s.test:%d"
                          % (name, servers[name].port)
                          for name, _, _, _ in PROVIDERS}})
        suite.start()
        suite.wait_daemons_ready()
        suite.add_user(USER, PASSWORD)

        want = {}
        rcpts = []
        for name, share, _, _ in PROVIDERS:
            want[name] = int(args.n * share)
            rcpts += ["u%d@cust-%s.test" % (i, name)
                      for i in range(want[name])]
        # Interleaved, so every provider has a backlog from the start.
        rcpts.sort(key=lambda r: int(r.split("@")[0][1:]))
        errors, threads = [], []
        states = collections.defaultdict(collections.Counter)
        stop = threading.Event()
        sampler = threading.Thread(target=sample_states,
                                   args=(suite, states, stop))
        sampler.start()
        t0 = time.time()
        for k in range(args.threads):
            th = threading.Thread(target=submit, args=(
                suite, rcpts[k::args.threads], errors))
            th.start()
            threads.append(th)
        for th in threads:
            th.join()
        accepted = time.time() - t0
        if errors:
            raise SystemExit("submission failed: %s" % errors[:3])
        print("submitted %d messages in %.1f s (%.0f/s)"
              % (len(rcpts), accepted, len(rcpts) / accepted))

        worst = 0.0
        for name, _, rate, conns in PROVIDERS:
            srv = servers[name]
            deadline = time.time() + want[name] / rate * 2 + 120
            while (len(srv.transactions) < want[name] and
                   time.time() < deadline):
                time.sleep(0.5)
            times = sorted(tr.time for tr in srv.transactions)
            if len(times) < want[name]:
                raise SystemExit("%s: %d of %d messages arrived"
                                 % (name, len(times), want[name]))
            skip = int(len(times) * WARMUP)
            steady = times[skip:]
            got = (len(steady) - 1) / (steady[-1] - steady[0])
            off = (got - rate) / rate
            worst = max(worst, abs(off))
            print("%s: %5d messages in %6.1f s; steady rate %6.1f/s "
                  "(configured %d/s, %+.1f%%); most in any second %d "
                  "(%d in the warm-up's); peak connections %d (cap %d)"
                  % (name, len(times), times[-1] - times[0], got, rate,
                     off * 100, max_in_window(steady),
                     max_in_window(times[:skip + 1]), srv.peak, conns))
        stop.set()
        sampler.join()
        for name, _, _, _ in PROVIDERS:
            print("%s: states sampled with a backlog: %s" % (name, ", ".join(
                "%s %d" % kv for kv in sorted(states[name].items()))))
        deferred = suite.deliveries(status="deferred")
        print("deferred attempts: %d" % len(deferred))
        return 0 if worst <= 0.10 and not deferred else 1
    finally:
        if suite is not None:
            suite.stop()
        if dns is not None:
            dns.stop()
        for srv in servers.values():
            srv.stop()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
