#!/usr/bin/env python3
"""final.py - the session's one measured device run: Postfix and Petrel (the session's
start, its end, and variants) side by side, plain relay of 4 KiB messages with fsync
durability, through run.py's run_one; a /proc sampler and, where perf works, a profile of
one run. Env as run.py. Writes OUT/results.jsonl, OUT/final.md, OUT/diag.txt, perf files.
"""
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import run   # noqa: E402
import diag  # noqa: E402

OUT = run.OUT
N = run.N
# (mta, C, knobs, label, messages, sample+perf)
PLAN = [
    ("ceiling", 100, {}, "ceiling", N, False),
    ("postfix", 100, {}, "postfix", N, False),
    ("petrel", 100, {"PETREL_VARIANT": "base"}, "petrel-start", N, False),
    ("petrel", 100, {}, "petrel-end", N, False),
    ("postfix", 400, {}, "postfix", N * 2 // 3, False),
    ("petrel", 400, {"PETREL_VARIANT": "base"}, "petrel-start", N, False),
    ("petrel", 400, {}, "petrel-end", N, True),
    ("petrel", 400, {"PETREL_SMTPD_PROCESSES": "8"}, "petrel-end/smtpd8", N, True),
    ("petrel", 400, {"PETREL_SMTPD_PROCESSES": "8", "PETREL_VARIANT": "nospread"},
     "petrel-nospread/smtpd8", N, False),
    ("petrel", 100, {"PETREL_SMTPD_PROCESSES": "4"}, "petrel-end/smtpd4", N, False),
    # second round, for medians, while time lasts
    ("postfix", 100, {}, "postfix", N, False),
    ("petrel", 100, {}, "petrel-end", N, False),
    ("petrel", 400, {}, "petrel-end", N, False),
    ("petrel", 400, {"PETREL_SMTPD_PROCESSES": "8"}, "petrel-end/smtpd8", N, False),
    ("petrel", 100, {"PETREL_VARIANT": "base"}, "petrel-start", N, False),
    ("petrel", 400, {"PETREL_VARIANT": "base"}, "petrel-start", N, False),
]


def main():
    have_perf = diag.perf_ok()
    run.log(f"perf usable: {have_perf}")
    done_perf = 0
    for mta, c, knobs, label, n, sample in PLAN:
        n = run.fit(mta, n, n // 2)
        if n == 0:
            run.log(f"skip {label} C={c}: no time")
            continue
        smp = None
        pt = None
        if sample:
            smp = diag.ProcSampler()
            smp.start()
            if have_perf and done_perf < 2:
                pt, data = diag.perf_during(f"{label}-c{c}", 3.0, 4)
        run.run_one(mta, c, n, knobs, label)
        if smp is not None:
            smp.stop.set()
            smp.join()
            with open(os.path.join(OUT, "diag.txt"), "a") as f:
                f.write(smp.report(f"{label} C={c}"))
        if pt is not None:
            pt.join()
            done_perf += 1
            if run.DEADLINE - time.monotonic() > 90:
                diag.perf_report(f"{label}-c{c}", data)
    summarize()


def med(xs):
    xs = sorted(x for x in xs if x is not None)
    if not xs:
        return None
    k = len(xs) // 2
    return xs[k] if len(xs) % 2 else (xs[k - 1] + xs[k]) / 2


def summarize():
    rows = [json.loads(x) for x in open(run.RES) if x.strip()] if os.path.exists(run.RES) else []
    out = ["| label | C | N | e2e msgs/s | accepted msgs/s | MTA CPU ms/msg | MTA cores | PSS MB | procs |",
           "|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        cores = f"{r['mta_cpu_pct'] / 100:.2f}" if r.get("mta_cpu_pct") is not None else "-"
        out.append(f"| {r['label']} | {r['c']} | {r['n']} | {r.get('e2e_mps')} | {r.get('inject_mps')} | "
                   f"{r.get('mta_cpu_ms_per_msg')} | {cores} | {r.get('peak_pss_mb')} | {r.get('peak_nproc')} |")
    out += ["", "Medians, and ratios to Postfix in this run:", "",
            "| label | C | runs | e2e msgs/s | x Postfix | CPU ms/msg | x Postfix |", "|---|---|---|---|---|---|---|"]
    for c in sorted({r["c"] for r in rows}):
        pf = [r for r in rows if r["c"] == c and r["label"] == "postfix"]
        pe, pc = med([r.get("e2e_mps") for r in pf]), med([r.get("mta_cpu_ms_per_msg") for r in pf])
        for label in sorted({r["label"] for r in rows if r["c"] == c}):
            g = [r for r in rows if r["c"] == c and r["label"] == label]
            e, cpu = med([r.get("e2e_mps") for r in g]), med([r.get("mta_cpu_ms_per_msg") for r in g])
            re = f"{e / pe:.2f}" if e and pe else "-"
            rc = f"{cpu / pc:.2f}" if cpu and pc else "-"
            out.append(f"| {label} | {c} | {len(g)} | {e} | {re} | {cpu} | {rc} |")
    txt = "\n".join(out) + "\n"
    open(os.path.join(OUT, "final.md"), "w").write(txt)
    print(txt, flush=True)


if __name__ == "__main__":
    main()
