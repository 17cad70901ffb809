#!/usr/bin/env python3
"""lanes_bench.py - priority lanes under a bulk backlog (issue 11).

The issue's target: with 50,000 bulk messages queued for one destination
limited to 5 connections, a transactional message to the same destination
is delivered within 2 seconds of being accepted.

Starts the real Petrel (build/, through tests/integration/harness.py) with
a capture server as the one destination, a shaping entry of
max_connections 5 for it (the default transactional_reserve keeps one),
and two credentials: one in the bulk lane, one transactional. It submits
N bulk messages over several authenticated sessions; the capture server
answers each DATA after --delay seconds, so the backlog stays queued. Then
it submits --probes transactional messages, one a second, and measures
for each the time from its 250 to its arrival at the capture server.
Prints the numbers (and JSON with --json); exits 1 if a probe missed
--target seconds. Runs as any user (as the integration tests do).

    python3 bench/lanes_bench.py              # N=50000
    python3 bench/lanes_bench.py -n 20000 --sessions 4
"""

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "tests",
                                "integration"))
from harness import (CaptureSMTPD, Suite, connect, login_plain,  # noqa: E402
                     make_message, send, to_yaml, unique)

BULK_USER, BULK_PW = "bulk1", "bulk bench password"
TX_USER, TX_PW = "tx1", "transactional bench password"


def inject(suite, user, pw, toks, errors, progress):
    """One session per thread, reconnecting every 1000 messages."""
    try:
        for i in range(0, len(toks), 1000):
            c = connect(suite, timeout=120)
            try:
                login_plain(c, user, pw)
                for t in toks[i:i + 1000]:
                    send(c, "app@example.com", ["rcpt@example.org"],
                         make_message(t))
                    progress[0] += 1
            finally:
                c.quit()
    except Exception as e:  # reported by main
        errors.append(repr(e))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[1])
    ap.add_argument("-n", type=int, default=50000, help="bulk messages")
    ap.add_argument("--connections", type=int, default=5)
    ap.add_argument("--sessions", type=int, default=8,
                    help="submission sessions for the bulk messages")
    ap.add_argument("--delay", type=float, default=0.2,
                    help="s the capture server takes for each DATA")
    ap.add_argument("--probes", type=int, default=5)
    ap.add_argument("--target", type=float, default=2.0)
    ap.add_argument("--json", help="write the results here")
    args = ap.parse_args()

    tmp = tempfile.mkdtemp(prefix="petrel-lanes-")
    os.chmod(tmp, 0o755)
    cap = CaptureSMTPD()
    cap.data_delay = args.delay
    cap.start()
    suite = Suite(tmp, cap.port)
    shaping = os.path.join(tmp, "shaping.yaml")
    with open(shaping, "w") as f:
        f.write(to_yaml({"destinations": {
            "[127.0.0.1]:%d" % cap.port: {
                "max_connections": args.connections}}}))
    os.chmod(shaping, 0o644)
    suite.config["shaping"] = {"file": shaping}
    suite.config["smtp"] = {"processes": 16}
    suite.write_config()
    res = {"bulk": args.n, "connections": args.connections,
           "delay_s": args.delay}
    try:
        suite.start()
        suite.wait_daemons_ready()
        suite.add_user(BULK_USER, BULK_PW)
        suite.relayctl("user", "set", BULK_USER, "--lane", "bulk")
        suite.add_user(TX_USER, TX_PW)

        tag = unique("bulk")
        toks = ["%s-%d" % (tag, i) for i in range(args.n)]
        per = (args.n + args.sessions - 1) // args.sessions
        errors, progress = [], [0]
        t0 = time.time()
        threads = [threading.Thread(target=inject, args=(
            suite, BULK_USER, BULK_PW, toks[i * per:(i + 1) * per], errors,
            progress)) for i in range(args.sessions)]
        for t in threads:
            t.start()
        while any(t.is_alive() for t in threads):
            time.sleep(5)
            print("  %d bulk accepted, %d delivered, %.0fs" % (
                progress[0], len(cap.messages()), time.time() - t0),
                flush=True)
        if errors:
            raise SystemExit("bulk submission failed: %s" % errors[:3])
        res["inject_s"] = round(time.time() - t0, 1)
        delivered = len(cap.messages())
        res["bulk_queued_at_probe"] = args.n - delivered
        print("%d bulk accepted in %.0fs; %d delivered, %d queued" % (
            args.n, res["inject_s"], delivered, args.n - delivered))

        delays = []
        for i in range(args.probes):
            tok = unique("tx%d" % i)
            c = connect(suite)
            try:
                login_plain(c, TX_USER, TX_PW)
                send(c, "app@example.com", ["rcpt@example.org"],
                     make_message(tok))
                accepted = time.time()
            finally:
                c.quit()
            got = cap.wait_for_messages(
                1, 60, match=lambda tr, t=tok.encode(): t in tr.data)
            if not got:
                delays.append(None)
                print("probe %d: not delivered within 60s" % i)
                continue
            d = got[0].time - accepted
            delays.append(round(d, 3))
            print("probe %d: delivered %.3fs after its 250 (%d bulk still "
                  "queued)" % (i, d, args.n - len(cap.messages())))
            time.sleep(1)
        ok = [d for d in delays if d is not None]
        res["probe_delays_s"] = delays
        res["max_s"] = max(ok) if ok else None
        res["median_s"] = statistics.median(ok) if ok else None
        res["target_met"] = len(ok) == len(delays) and \
            max(ok) <= args.target
        res["peak_connections"] = cap.peak
    finally:
        suite.stop()
        cap.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    print(json.dumps(res))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(res, f, indent=1)
    return 0 if res.get("target_met") else 1


if __name__ == "__main__":
    sys.exit(main())
