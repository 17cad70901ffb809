#!/usr/bin/env python3
"""diag.py - device diagnostic runs: Petrel plain relay with a /proc sampler (where each
daemon is: running, or blocked in which syscall and kernel function) and, when perf works,
a system-wide perf profile of one run. Uses run.py's run_one. Env as run.py, plus
DIAG_RUNS (a Python list literal of (c, knobs, label, perf?) tuples).
"""
import ast
import collections
import os
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import run  # noqa: E402

OUT = run.OUT
PERF = os.path.join(run.HERE, "perf", "perf")
PERF_ENV = dict(os.environ, LD_LIBRARY_PATH=os.path.join(run.HERE, "perf", "lib"))
COMMS = {"smtpd", "qmgr", "smtp", "master"}
SYSCALLS = {0: "read", 1: "write", 2: "open", 3: "close", 4: "stat", 5: "fstat", 7: "poll",
            8: "lseek", 9: "mmap", 11: "munmap", 16: "ioctl", 17: "pread64", 18: "pwrite64",
            19: "readv", 20: "writev", 26: "msync", 35: "nanosleep", 41: "socket", 42: "connect",
            43: "accept", 44: "sendto", 45: "recvfrom", 46: "sendmsg", 47: "recvmsg", 54: "setsockopt",
            72: "fcntl", 73: "flock", 74: "fsync", 75: "fdatasync", 76: "truncate", 77: "ftruncate",
            82: "rename", 87: "unlink", 202: "futex", 217: "getdents64", 232: "epoll_wait",
            257: "openat", 262: "newfstatat", 263: "unlinkat", 264: "renameat", 277: "sync_file_range",
            281: "epoll_pwait", 285: "fallocate", 288: "accept4", 295: "preadv", 296: "pwritev",
            316: "renameat2", 441: "epoll_pwait2", 61: "wait4", 14: "rt_sigprocmask", 15: "rt_sigreturn"}


class ProcSampler(threading.Thread):
    """Every ~1 ms: per daemon process, state, current syscall, wchan; the kernel stack
    (top frames) of those blocked outside epoll."""

    def __init__(self):
        super().__init__(daemon=True)
        self.stop = threading.Event()
        self.hist = collections.Counter()
        self.stacks = collections.Counter()
        self.samples = 0

    def pids(self):
        out = {}
        for d in os.listdir("/proc"):
            if d.isdigit():
                try:
                    c = open(f"/proc/{d}/comm").read().strip()
                except OSError:
                    continue
                if c in COMMS:
                    out[int(d)] = c
        return out

    def run(self):
        pids, refresh = {}, 0.0
        while not self.stop.is_set():
            now = time.monotonic()
            if now > refresh:
                pids, refresh = self.pids(), now + 0.5
            self.samples += 1
            for pid, comm in pids.items():
                try:
                    st = open(f"/proc/{pid}/stat").read()
                    state = st[st.rfind(")") + 2]
                    sc = open(f"/proc/{pid}/syscall").read().split()
                    wchan = open(f"/proc/{pid}/wchan").read().strip() or "-"
                except (OSError, IndexError):
                    continue
                if sc and sc[0].isdigit():
                    scn = SYSCALLS.get(int(sc[0]), sc[0])
                else:
                    scn = sc[0] if sc else "?"
                self.hist[(comm, state, scn, wchan)] += 1
                if state in "SD" and scn not in ("epoll_wait", "epoll_pwait", "epoll_pwait2", "wait4"):
                    try:
                        fr = [l.split()[1].split("+")[0] for l in open(f"/proc/{pid}/stack").read().splitlines()[:6]]
                        self.stacks[(comm, scn, " < ".join(fr))] += 1
                    except (OSError, IndexError):
                        pass
            time.sleep(0.001)

    def report(self, label):
        by_comm = collections.Counter()
        for (comm, *_), n in self.hist.items():
            by_comm[comm] += n
        lines = [f"## {label}: {self.samples} sampling rounds"]
        for comm in sorted(by_comm):
            lines.append(f"### {comm} ({by_comm[comm]} process-samples)")
            rows = [(n, k) for k, n in self.hist.items() if k[0] == comm]
            for n, k in sorted(rows, reverse=True)[:14]:
                lines.append(f"{100.0 * n / by_comm[comm]:6.2f}%  state={k[1]} syscall={k[2]} wchan={k[3]}")
            st = [(n, k) for k, n in self.stacks.items() if k[0] == comm]
            for n, k in sorted(st, reverse=True)[:8]:
                lines.append(f"    stack {100.0 * n / by_comm[comm]:6.2f}%  {k[1]}: {k[2]}")
        return "\n".join(lines) + "\n"


def perf_ok():
    try:
        r = subprocess.run([PERF, "record", "-a", "-o", "/tmp/perf-probe.data", "--", "sleep", "0.2"],
                           env=PERF_ENV, capture_output=True, timeout=20)
        ok = r.returncode == 0
        if not ok:
            open(os.path.join(OUT, "perf-probe.txt"), "w").write(r.stderr.decode(errors="replace")[-3000:])
        return ok
    except (OSError, subprocess.SubprocessError) as e:
        open(os.path.join(OUT, "perf-probe.txt"), "w").write(repr(e))
        return False


def perf_during(label, delay, secs):
    data = f"/tmp/perf-{label.replace('/', '_')}.data"

    def go():
        time.sleep(delay)
        subprocess.run([PERF, "record", "-a", "-g", "-F", "499", "-o", data, "--", "sleep", str(secs)],
                       env=PERF_ENV, capture_output=True, timeout=secs + 30)
    t = threading.Thread(target=go, daemon=True)
    t.start()
    return t, data


def perf_report(label, data):
    base = os.path.join(OUT, f"perf-{label.replace('/', '_')}")
    with open(base + "-flat.txt", "w") as f:
        subprocess.run([PERF, "report", "-i", data, "--stdio", "--no-children", "-g", "none",
                        "--sort", "comm,dso,sym", "--percent-limit", "0.3"],
                       env=PERF_ENV, stdout=f, stderr=subprocess.STDOUT, timeout=120)
    for comm in ("smtpd", "qmgr", "smtp"):
        for mode, extra in (("self", ["--no-children", "--sort", "dso,sym", "--percent-limit", "0.5"]),
                            ("incl", ["--children", "--sort", "sym", "--percent-limit", "3"])):
            with open(f"{base}-{comm}-{mode}.txt", "w") as f:
                subprocess.run([PERF, "report", "-i", data, "--stdio", "--comm", comm, "--percentage",
                                "relative", "-g", "none"] + extra,
                               env=PERF_ENV, stdout=f, stderr=subprocess.STDOUT, timeout=120)


def main():
    runs = ast.literal_eval(os.environ.get("DIAG_RUNS", "[]"))
    have_perf = perf_ok()
    run.log(f"perf usable: {have_perf}")
    for c, knobs, label, want_perf in runs:
        n = run.fit("petrel", run.N, 5000)
        if n == 0:
            run.log(f"skip {label}: no time")
            continue
        smp = ProcSampler()
        smp.start()
        pt = None
        if want_perf and have_perf:
            pt, data = perf_during(label, 3.0, 5)
        run.run_one("petrel", c, n, knobs, label)
        smp.stop.set()
        smp.join()
        with open(os.path.join(OUT, "diag.txt"), "a") as f:
            f.write(smp.report(label))
        if pt is not None:
            pt.join()
            if run.DEADLINE - time.monotonic() > 60:
                perf_report(label, data)
    run.summarize()


if __name__ == "__main__":
    main()
