#!/usr/bin/env python3
"""soak.py - runs Petrel for a long time under a steady mixed load and
records, every few seconds, each of its processes' resident memory, open
descriptors and LMDB reader slots (issue 14's soak).

    sudo python3 bench/soak.py --minutes 60 --rate 400 --no-build \\
        --petrel-bindir /tmp/soak-bin --out /tmp/soak

The load is smtp-source once a second at --rate messages a second, split
by recipient domain between three smtp-sink next hops: one that accepts
(most of the mail), one that defers every RCPT with 4xx (the recipients
are retried on a short schedule and then expire, which makes bounces) and
one that refuses every RCPT with 5xx (bounces at once). The queue thus
reaches a steady state of deliveries, deferrals, retries, expiries and
DSNs instead of only growing; a leak then shows as a slope.

Writes OUT/samples.csv (time, process, pid, rss_kib, fds, lmdb_readers),
OUT/load.csv (offered and accepted per second) and, when gnuplot is
installed, OUT/rss.svg. Prints a summary of the first and last sampled
minutes per process. Timing goals live here, not in the tests.
"""

import argparse
import csv
import os
import signal
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.dont_write_bytecode = True

import bench  # noqa: E402

# Share of the offered load that goes to each next hop.
MIX = (("ok.example", 0.90, []), ("defer.example", 0.06, ["-r", "RCPT"]),
       ("fail.example", 0.04, ["-f", "RCPT"]))


def start_sink(tools, workdir, tag, reject):
    """smtp-sink on a free port, rejecting as asked; (proc, port)."""
    port = bench.free_port()
    argv = [tools["smtp-sink"]]
    if os.geteuid() == 0:
        argv += ["-u", "postfix"]
    argv += reject + ["-m", "1000", "127.0.0.1:%d" % port, "1000"]
    out = open(os.path.join(workdir, "sink-%s.out" % tag), "wb")
    proc = bench.start(argv, stdout=out, stderr=subprocess.STDOUT)
    if not bench.wait_port(port, 10, lambda: proc.poll() is None):
        raise bench.BenchError("smtp-sink %s did not start" % tag)
    return proc, port


def lmdb_readers(queue):
    """{pid: reader slots held} over every LMDB environment in the queue."""
    held = {}
    for root, _, files in os.walk(queue):
        if "data.mdb" not in files:
            continue
        r = subprocess.run(["mdb_stat", "-r", root], stdout=subprocess.PIPE,
                           stderr=subprocess.DEVNULL)
        for line in r.stdout.decode("ascii", "replace").splitlines():
            f = line.split()
            # "    pid     thread     txnid" rows: a pid, hex thread, txnid.
            if len(f) == 3 and f[0].isdigit():
                held[int(f[0])] = held.get(int(f[0]), 0) + 1
    return held


def queue_files(queue):
    """Regular files in the queue other than LMDB's: about one a message."""
    n = 0
    for root, _, files in os.walk(queue):
        for name in files:
            if not name.endswith(".mdb") and os.path.isfile(
                    os.path.join(root, name)):
                n += 1
    return n


def proc_sample(pid):
    """(name, rss KiB, open descriptors), or None if it is gone."""
    try:
        with open("/proc/%d/status" % pid) as f:
            st = dict(line.split(":", 1) for line in f if ":" in line)
        fds = len(os.listdir("/proc/%d/fd" % pid))
    except (OSError, ValueError):
        return None
    rss = int(st.get("VmRSS", "0 kB").split()[0])
    return st["Name"].strip(), rss, fds


def load(tools, port, rate, stop, counts):
    """Offers rate messages a second until stop is set."""
    while not stop.is_set():
        t0 = time.monotonic()
        procs = []
        for domain, share, _ in MIX:
            n = max(1, int(round(rate * share)))
            # Sessions in proportion, so that commits group as in bench.py.
            sessions = max(1, int(round(20 * share)))
            argv = [tools["smtp-source"], "-s", str(sessions), "-m", str(n),
                    "-l",
                    "2048", "-f", bench.SENDER, "-t", "soak@" + domain,
                    "-M", "soak.example", "127.0.0.1:%d" % port]
            procs.append((n, bench.start(argv, stdout=subprocess.DEVNULL,
                                         stderr=subprocess.DEVNULL)))
        for n, p in procs:
            try:
                rc = p.wait(timeout=60)
            except subprocess.TimeoutExpired:
                bench.stop_proc(p)
                rc = -1
            counts["offered"] += n
            if rc == 0:
                counts["sent"] += n
        left = 1.0 - (time.monotonic() - t0)
        if left > 0:
            stop.wait(left)


def summarize(rows, minutes):
    """Per process name: mean of the first and of the last sampled minute
    (after a two-minute warm-up), as text lines."""
    by = {}
    for t, name, pid, rss, fds, rdr in rows:
        by.setdefault(name, []).append((t, rss, fds, rdr))
    out = []
    for name in sorted(by):
        pts = by[name]
        t_end = max(p[0] for p in pts)
        first = [p for p in pts if 120 <= p[0] < 180]
        last = [p for p in pts if p[0] >= t_end - 60]
        if not first or not last:
            continue

        def mean(ps, i):
            return sum(p[i] for p in ps) / len(ps)
        out.append("%-9s rss %7.0f -> %7.0f KiB   fds %5.1f -> %5.1f   "
                   "lmdb readers %4.1f -> %4.1f" %
                   (name, mean(first, 1), mean(last, 1), mean(first, 2),
                    mean(last, 2), mean(first, 3), mean(last, 3)))
    return out


def plot(outdir):
    """OUT/rss.svg from OUT/rss.dat with gnuplot, when it is installed."""
    if not bench.which("gnuplot"):
        return None
    svg = os.path.join(outdir, "rss.svg")
    script = (
        "set terminal svg size 900,420 dynamic; set output '%s';"
        "set xlabel 'minutes'; set ylabel 'RSS (MiB, summed per daemon)';"
        "set key outside right; set datafile separator ',';"
        "plot for [c=2:*] '%s' using ($1/60):c with lines "
        "title columnhead(c)" % (svg, os.path.join(outdir, "rss.dat")))
    subprocess.run(["gnuplot", "-e", script], check=False)
    return svg


def write_rss_dat(rows, outdir):
    """rss.dat: one column per daemon name, RSS summed over its pids."""
    names = sorted({r[1] for r in rows})
    table = {}
    for t, name, _, rss, _, _ in rows:
        table.setdefault(t, {}).setdefault(name, 0)
        table[t][name] += rss
    with open(os.path.join(outdir, "rss.dat"), "w") as f:
        f.write(",".join(["t"] + names) + "\n")
        for t in sorted(table):
            f.write(",".join(["%d" % t] + ["%.2f" % (table[t].get(n, 0) /
                                                     1024.0)
                                           for n in names]) + "\n")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--minutes", type=float, default=60)
    ap.add_argument("--rate", type=int, default=400,
                    help="messages offered per second (default 400)")
    ap.add_argument("--interval", type=float, default=10,
                    help="seconds between samples (default 10)")
    ap.add_argument("--out", default="/tmp/petrel-soak")
    ap.add_argument("--petrel-bindir", default=os.path.join(bench.REPO,
                                                            "build"))
    ap.add_argument("--no-build", action="store_true")
    args = ap.parse_args()
    # Stopped early (kill PID), it still stops Petrel and the sinks.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit("soak.py: stopped"))
    # What bench.Petrel reads from its own arguments.
    args.petrel_yaml = [
        "queue: { min_backoff: 30s, max_backoff: 2m, max_lifetime: 10m }"]
    args.suppression = 0
    args.settle = 1.0
    args.make = "make"
    if not args.no_build:
        bench.build_petrel(args)
    os.makedirs(args.out, exist_ok=True)
    tools = {t: bench.which(t) for t in ("smtp-source", "smtp-sink")}
    if not all(tools.values()):
        sys.exit("soak.py: smtp-source and smtp-sink (Debian's postfix) "
                 "are needed")
    workdir = bench.tempfile.mkdtemp(prefix="petrel-soak-")
    os.chmod(workdir, 0o755)
    sinks = {}
    pt = None
    stop = threading.Event()
    counts = {"offered": 0, "sent": 0}
    rows = []
    try:
        for domain, _, reject in MIX:
            sinks[domain] = start_sink(tools, workdir, domain, reject)
        pt = bench.Petrel("petrel", "soak", args, workdir,
                          sinks["ok.example"][1])
        # Each test domain to its own sink; the rest (the DSNs to the
        # sender) to the accepting one.
        with open(pt.conf) as f:
            conf = f.read()
        transport = "transport: { %s, \"*\": \"[127.0.0.1]:%d\" }\n" % (
            ", ".join("\"%s\": \"[127.0.0.1]:%d\"" % (d, sinks[d][1])
                      for d, _, _ in MIX), sinks["ok.example"][1])
        conf = "".join(transport if line.startswith("transport:") else line
                       for line in conf.splitlines(True))
        with open(pt.conf, "w") as f:
            f.write(conf)
        pt.start(args)
        queue = os.path.join(pt.top, "queue")
        loader = threading.Thread(target=load, args=(
            tools, pt.port, args.rate, stop, counts), daemon=True)
        t0 = time.monotonic()
        loader.start()
        samples = open(os.path.join(args.out, "samples.csv"), "w")
        loadlog = open(os.path.join(args.out, "load.csv"), "w")
        sw = csv.writer(samples)
        sw.writerow(["t", "process", "pid", "rss_kib", "fds",
                     "lmdb_readers"])
        lw = csv.writer(loadlog)
        lw.writerow(["t", "offered", "sent", "queue_files"])
        end = t0 + args.minutes * 60
        while time.monotonic() < end:
            if pt.proc.poll() is not None:
                raise bench.BenchError("master exited: %s" % pt.tail())
            t = int(time.monotonic() - t0)
            readers = lmdb_readers(queue)
            pids, _ = bench.suite_pids(pt.proc.pid, pt.proc.pid)
            for pid in sorted(pids):
                s = proc_sample(pid)
                if s is None:
                    continue
                row = (t, s[0], pid, s[1], s[2], readers.get(pid, 0))
                rows.append(row)
                sw.writerow(row)
            nfiles = queue_files(queue)
            lw.writerow([t, counts["offered"], counts["sent"], nfiles])
            samples.flush()
            loadlog.flush()
            time.sleep(args.interval)
        stop.set()
        loader.join(70)
        elapsed = time.monotonic() - t0
        print("soak: %.1f min, %d offered, %d accepted by smtp-source's "
              "count (%.0f/s)" % (elapsed / 60, counts["offered"],
                                  counts["sent"], counts["sent"] / elapsed))
        for line in summarize(rows, args.minutes):
            print(line)
        write_rss_dat(rows, args.out)
        svg = plot(args.out)
        if svg:
            print("soak: plot in %s" % svg)
    finally:
        stop.set()
        if pt is not None:
            pt.stop()
        for proc, _ in sinks.values():
            bench.stop_proc(proc)
        bench.shutil.rmtree(workdir, True)


if __name__ == "__main__":
    main()
