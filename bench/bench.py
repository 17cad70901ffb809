#!/usr/bin/env python3
#
# bench.py - relay N messages from Postfix's smtp-source to smtp-sink on
# loopback through Petrel and through a private Postfix instance, in the
# same run, and print throughput, CPU per message and memory (PSS) of each,
# then Petrel's ratios to Postfix. See bench/README.md.
#
# Python 3 standard library only. Run as root (the private Postfix instance
# needs it; Petrel then runs its daemons as mail_owner "petrel"). Every
# server listens on 127.0.0.1 on a free port, every file lives in a
# temporary directory, every wait has a time limit, and every process the
# script starts is stopped by PID or process group at the end, even on error.

import argparse
import getpass
import json
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CLK_TCK = os.sysconf("SC_CLK_TCK")
SENDER = "sender@example.com"
RCPT = "rcpt@example.com"

# Processes and directories to clean up whatever happens.
CLEANUP = []


class BenchError(Exception):
    pass


def log(msg):
    print("bench: " + msg, file=sys.stderr, flush=True)


def which(prog, extra=("/usr/sbin", "/usr/lib/postfix/sbin")):
    p = shutil.which(prog)
    if p:
        return p
    for d in extra:
        c = os.path.join(d, prog)
        if os.access(c, os.X_OK):
            return c
    return None


def free_port():
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
    finally:
        s.close()


def wait_port(port, timeout, alive=None):
    """Waits until 127.0.0.1:port accepts a connection and sends a 220."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if alive is not None and not alive():
            return False
        try:
            with socket.create_connection(("127.0.0.1", port), 1) as s:
                s.settimeout(2)
                if s.recv(512).startswith(b"220"):
                    try:
                        s.sendall(b"QUIT\r\n")
                    except OSError:
                        pass
                    return True
        except OSError:
            pass
        time.sleep(0.1)
    return False


# ---------------------------------------------------------------------------
# /proc accounting

def proc_stat(pid):
    """(ppid, pgid, utime+stime, cutime+cstime) in ticks, or None."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            data = f.read()
    except OSError:
        return None
    # comm may contain spaces and parentheses: split after the last ')'.
    rest = data[data.rindex(")") + 2:].split()
    # rest[0] is field 3 (state); ppid=4 pgrp=5 utime=14 stime=15
    # cutime=16 cstime=17, so field k is rest[k - 3].
    return (int(rest[1]), int(rest[2]),
            int(rest[11]) + int(rest[12]), int(rest[13]) + int(rest[14]))


def disk_activity():
    """Writes, discards and I/Os in flight of every block device, from
    /proc/diskstats: unchanged over a while means the disks are idle."""
    state = []
    try:
        with open("/proc/diskstats") as f:
            for line in f:
                v = line.split()
                if len(v) >= 14:
                    # writes completed, I/Os in flight, discards completed
                    state.append((v[2], v[7], v[11],
                                  v[14] if len(v) > 14 else "0"))
    except OSError:
        pass
    return state


def wait_disk_idle(limit, pause=0.0, quiet=2.0):
    """sync(), then waits until no block device has written, discarded or
    had an I/O in flight for `quiet` seconds (at most `limit` seconds), so
    that a run does not pay for the writeback and discards of the run
    before it (each system deletes 20000 queue files)."""
    if pause > 0:
        time.sleep(pause)
    if limit <= 0:
        return
    t0 = time.time()
    os.sync()
    last, since = disk_activity(), time.time()
    while time.time() - t0 < limit:
        time.sleep(0.25)
        cur = disk_activity()
        if cur != last:
            last, since = cur, time.time()
        elif time.time() - since >= quiet:
            return
    log("disks still busy after %.0f s; measuring anyway" % limit)


def all_stats():
    out = {}
    for name in os.listdir("/proc"):
        if name.isdigit():
            st = proc_stat(int(name))
            if st is not None:
                out[int(name)] = st
    return out


def suite_pids(root, pgid=None):
    """root, its descendants, and (if pgid) every member of that group."""
    stats = all_stats()
    children = {}
    for pid, st in stats.items():
        children.setdefault(st[0], []).append(pid)
    seen = set()
    todo = [root] if root in stats else []
    while todo:
        p = todo.pop()
        if p in seen:
            continue
        seen.add(p)
        todo.extend(children.get(p, ()))
    if pgid is not None:
        seen.update(p for p, st in stats.items() if st[1] == pgid)
    return seen, stats


def suite_cpu_ticks(root, pgid=None):
    """
    CPU ticks used so far by the suite: every live process's own
    utime+stime plus its cutime+cstime (children it reaped, which is how
    daemons that exited are still counted through master). The difference
    of two readings is the CPU the suite spent in between.
    """
    pids, stats = suite_pids(root, pgid)
    return sum(stats[p][2] + stats[p][3] for p in pids if p in stats), \
        len(pids)


def machine_busy_ticks():
    """Busy CPU ticks of the whole machine (all but idle and iowait)."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    return sum(v) - v[3] - v[4]


def suite_pss_kib(root, pgid=None):
    pids, _ = suite_pids(root, pgid)
    total = 0
    for p in pids:
        try:
            with open("/proc/%d/smaps_rollup" % p) as f:
                for line in f:
                    if line.startswith("Pss:"):
                        total += int(line.split()[1])
                        break
        except OSError:
            pass
    return total, len(pids)


# ---------------------------------------------------------------------------
# processes

def start(argv, stdout=None, stderr=None, new_session=True, cwd=None):
    p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=stdout,
                         stderr=stderr, start_new_session=new_session,
                         cwd=cwd)
    CLEANUP.append(("proc", p))
    return p


def stop_proc(p, grace=5.0):
    """SIGTERM then SIGKILL p's process group (it leads its own session)."""
    if p.poll() is None:
        try:
            os.killpg(p.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        try:
            p.wait(grace)
        except subprocess.TimeoutExpired:
            pass
    # Kill what is left of the group (daemons that outlived their parent).
    try:
        os.killpg(p.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    try:
        p.wait(grace)
    except subprocess.TimeoutExpired:
        log("pid %d did not exit" % p.pid)


def kill_tree(root, grace=5.0):
    """SIGTERM, then SIGKILL, root and all its descendants, by PID."""
    pids, _ = suite_pids(root)
    for sig in (signal.SIGTERM, signal.SIGKILL):
        for p in pids:
            try:
                os.kill(p, sig)
            except (ProcessLookupError, PermissionError):
                pass
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline:
            if not any(os.path.exists("/proc/%d" % p) and
                       proc_state(p) != "Z" for p in pids):
                return
            time.sleep(0.1)


def proc_starttime(pid):
    try:
        with open("/proc/%d/stat" % pid) as f:
            data = f.read()
        return int(data[data.rindex(")") + 2:].split()[19])
    except (OSError, ValueError, IndexError):
        return None


def snapshot(root, pgid=None):
    """The suite's processes as (pid, start time), to kill leftovers."""
    pids, _ = suite_pids(root, pgid)
    return [(p, proc_starttime(p)) for p in pids]


def kill_leftovers(snap, grace=5.0):
    """
    Gives the processes of snap grace seconds to exit, then SIGKILLs every
    one that is still the same process.
    """
    deadline = time.monotonic() + grace
    while True:
        left = [p for p, st in snap if st is not None and
                proc_starttime(p) == st and pid_alive(p)]
        if not left or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    for p in left:
        log("killing leftover pid %d" % p)
        try:
            os.kill(p, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass


def proc_state(pid):
    try:
        with open("/proc/%d/stat" % pid) as f:
            data = f.read()
        return data[data.rindex(")") + 2]
    except (OSError, ValueError, IndexError):
        return None


def pid_alive(pid):
    st = proc_state(pid)
    return st is not None and st != "Z"


def cleanup_all():
    while CLEANUP:
        kind, obj = CLEANUP.pop()
        try:
            if kind == "proc":
                stop_proc(obj)
            elif kind == "func":
                obj()
            elif kind == "dir":
                shutil.rmtree(obj, ignore_errors=True)
        except Exception as e:      # keep cleaning up
            log("cleanup: %s" % e)


def on_signal(signum, frame):
    raise KeyboardInterrupt("signal %d" % signum)


# ---------------------------------------------------------------------------
# smtp-sink and smtp-source

class Sink:
    """smtp-sink on a free port; -c writes counters, one record per \\r."""

    def __init__(self, tools, workdir, tag):
        self.port = free_port()
        self.out = os.path.join(workdir, "sink-%s.out" % tag)
        argv = [tools["smtp-sink"], "-c"]
        if os.geteuid() == 0:
            argv += ["-u", "postfix"]
        argv += ["-m", "1000", "127.0.0.1:%d" % self.port, "1000"]
        self.fh = open(self.out, "wb")
        self.proc = start(argv, stdout=self.fh, stderr=subprocess.STDOUT)
        if not wait_port(self.port, 10, lambda: self.proc.poll() is None):
            raise BenchError("smtp-sink did not start: %s" % self.tail())

    def count(self):
        """Messages received so far (the "mesg=" counter)."""
        try:
            with open(self.out, "rb") as f:
                f.seek(0, os.SEEK_END)
                size = f.tell()
                f.seek(max(0, size - 512))
                data = f.read().decode("ascii", "replace")
        except OSError:
            return 0
        n = 0
        for rec in reversed(data.replace("\n", "\r").split("\r")):
            for field in rec.split():
                if field.startswith("mesg="):
                    try:
                        return int(field[5:])
                    except ValueError:
                        pass
        return n

    def tail(self):
        try:
            with open(self.out, "rb") as f:
                return f.read()[-300:].decode("ascii", "replace")
        except OSError:
            return ""

    def stop(self):
        stop_proc(self.proc)
        self.fh.close()


def run_source(tools, port, args, conc, timeout):
    """Runs smtp-source; returns (wall seconds, exit status, stderr tail)."""
    argv = [tools["smtp-source"], "-s", str(conc), "-m", str(args.n),
            "-l", str(args.size), "-f", SENDER, "-t", RCPT,
            "-M", "bench.example"]
    if args.reuse:
        argv.append("-d")
    argv.append("127.0.0.1:%d" % port)
    t0 = time.monotonic()
    p = start(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        _, err = p.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        stop_proc(p)
        _, err = p.communicate()
        return t0, time.monotonic() - t0, None, \
            "timed out after %ds" % timeout
    return t0, time.monotonic() - t0, p.returncode, \
        err.decode("utf-8", "replace").strip()[-300:]


def wait_delivered(sink, n, t0, args, relay_empty=None):
    """
    Waits until the sink has received n messages. Gives up when nothing
    arrives for args.stall seconds, when relay_empty() says the relay has
    nothing left to deliver, or when args.timeout has passed since t0.
    Returns (seconds from t0 to the last arrival, count, reason or None).
    """
    last = sink.count()
    t_last = t_asked = time.monotonic()
    deadline = t0 + args.timeout
    while True:
        c = sink.count()
        now = time.monotonic()
        if c != last:
            last, t_last = c, now
        if c >= n:
            return now - t0, c, None
        if now - t_last > args.stall:
            return t_last - t0, c, "no delivery for %ds" % args.stall
        if now > deadline:
            return t_last - t0, c, "timeout (%ds)" % args.timeout
        # Ask the relay (postqueue -j runs Postfix's showq, whose CPU would
        # count) only once deliveries have paused for a few seconds.
        if relay_empty is not None and now - t_last > 3 and \
                now - t_asked > 3:
            t_asked = now
            if relay_empty():
                time.sleep(0.5)
                c = sink.count()
                if c >= n:
                    return time.monotonic() - t0, c, None
                return t_last - t0, c, "relay queue empty with %d of " \
                    "%d delivered" % (c, n)
        time.sleep(0.02)


# ---------------------------------------------------------------------------
# one measured run (shared by both systems)

def measure(name, conc, args, tools, workdir, sink, relay_port, root_pid,
            pgid, queue_empty=None, log_counts=None):
    res = {"system": name, "concurrency": conc, "n": args.n,
           "size": args.size, "error": None}
    cpu0, _ = suite_cpu_ticks(root_pid, pgid)
    busy0 = machine_busy_ticks()
    t0, wall, rc, err = run_source(tools, relay_port, args, conc,
                                   args.timeout)
    res["accept_s"] = wall
    res["accepted_rate"] = args.n / wall if rc == 0 else None
    if rc != 0:
        res["error"] = "smtp-source exit %s: %s" % (rc, err)
    # Only wait for delivery of what smtp-source managed to hand over.
    elapsed, got, why = wait_delivered(sink, args.n, t0, args, queue_empty)
    cpu1, nproc = suite_cpu_ticks(root_pid, pgid)
    busy1 = machine_busy_ticks()
    pss, npss = suite_pss_kib(root_pid, pgid)
    res["delivered"] = got
    res["e2e_s"] = elapsed
    res["e2e_rate"] = got / elapsed if elapsed > 0 and got else None
    if why:
        res["error"] = (res["error"] + "; " if res["error"] else "") + why
        res["partial"] = True
    res["cpu_ms_total"] = (cpu1 - cpu0) * 1000.0 / CLK_TCK
    res["cpu_ms_per_msg"] = res["cpu_ms_total"] / got if got else None
    # Cross-check: the whole machine's busy CPU over the same window
    # (includes smtp-source, smtp-sink and the kernel's loopback work).
    res["machine_cpu_ms_per_msg"] = (busy1 - busy0) * 1000.0 / CLK_TCK / \
        got if got else None
    res["pss_kib"] = pss
    res["processes"] = npss
    if log_counts is not None:
        res.update(log_counts())
    return res


def ceiling(conc, args, tools, workdir):
    sink = Sink(tools, workdir, "ceiling-%d" % conc)
    try:
        t0, wall, rc, err = run_source(tools, sink.port, args, conc,
                                       args.timeout)
        elapsed, got, why = wait_delivered(sink, args.n, t0, args)
        res = {"system": "ceiling", "concurrency": conc, "n": args.n,
               "size": args.size, "accept_s": wall,
               "accepted_rate": args.n / wall if rc == 0 else None,
               "delivered": got, "e2e_s": elapsed,
               "e2e_rate": got / elapsed if got else None,
               "error": None if rc == 0 and not why else
               "smtp-source exit %s: %s %s" % (rc, err, why or "")}
        return res
    finally:
        sink.stop()


# ---------------------------------------------------------------------------
# Postfix

def ensure_postfix():
    if which("postfix") and which("smtp-source") and which("smtp-sink"):
        return
    if os.geteuid() != 0:
        raise BenchError("postfix is not installed; as root this script "
                         "installs it (apt-get install postfix)")
    log("installing Debian's postfix package (\"No configuration\")")
    sel = subprocess.run(["debconf-set-selections"], input=b"postfix "
                         b"postfix/main_mailer_type select No configuration\n")
    if sel.returncode != 0:
        raise BenchError("debconf-set-selections failed")
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    r = subprocess.run(["apt-get", "install", "-y", "postfix"], env=env,
                       stdout=subprocess.DEVNULL, timeout=900)
    if r.returncode != 0:
        r = subprocess.run(["apt-get", "update"], env=env,
                           stdout=subprocess.DEVNULL, timeout=900)
        r = subprocess.run(["apt-get", "install", "-y", "postfix"], env=env,
                           stdout=subprocess.DEVNULL, timeout=900)
    if r.returncode != 0 or not which("smtp-source"):
        raise BenchError("apt-get install postfix failed")


class Postfix:
    def __init__(self, workdir, sink_port, tag):
        self.dir = os.path.join(workdir, "postfix-%s" % tag)
        self.conf = os.path.join(self.dir, "conf")
        self.queue = os.path.join(self.dir, "queue")
        self.data = os.path.join(self.dir, "data")
        self.port = free_port()
        os.makedirs(self.conf)
        os.chmod(self.dir, 0o755)
        os.makedirs(self.queue, 0o755)
        os.makedirs(self.data, 0o700)
        pw = pwd.getpwnam("postfix")
        os.chown(self.data, pw.pw_uid, pw.pw_gid)
        self.maillog = os.path.join(self.dir, "maillog")
        self.postfix = which("postfix")
        self.postconf = which("postconf")
        self.master_pid = None
        self._write_config(sink_port)

    def _write_config(self, sink_port):
        with open(os.path.join(self.conf, "main.cf"), "w") as f:
            f.write("# private Postfix instance for bench/bench.py\n")
        src = "/etc/postfix/master.cf"
        if not os.path.exists(src):
            src = "/usr/share/postfix/master.cf.dist"
        out = []
        with open(src) as f:
            for line in f:
                fields = line.split()
                if not line[0:1].isspace() and not line.startswith("#") \
                        and len(fields) >= 8:
                    # No chroot: the temporary queue has no /etc copy.
                    fields[4] = "n"
                    if fields[0] == "smtp" and fields[1] == "inet":
                        fields[0] = "127.0.0.1:%d" % self.port
                    line = "  ".join(fields) + "\n"
                out.append(line)
        with open(os.path.join(self.conf, "master.cf"), "w") as f:
            f.writelines(out)
        params = {
            "compatibility_level": "3.6",
            "queue_directory": self.queue,
            "data_directory": self.data,
            "mail_owner": "postfix",
            "setgid_group": "postdrop",
            "myhostname": "postfix-bench.example",
            "mydestination": "",
            "local_recipient_maps": "",
            "local_transport": "error:no local delivery",
            "inet_interfaces": "127.0.0.1",
            "inet_protocols": "ipv4",
            "mynetworks": "127.0.0.0/8",
            "relayhost": "[127.0.0.1]:%d" % sink_port,
            "default_process_limit": "200",
            "maillog_file": self.maillog,
            "maillog_file_prefixes": self.dir,
            "smtputf8_enable": "no",
            "biff": "no",
            "alias_maps": "",
            "alias_database": "",
        }
        argv = [self.postconf, "-c", self.conf, "-e"]
        argv += ["%s=%s" % kv for kv in params.items()]
        run_checked(argv, "postconf")

    def start(self):
        run_checked([self.postfix, "-c", self.conf, "check"], "postfix check")
        CLEANUP.append(("func", self.stop))
        run_checked([self.postfix, "-c", self.conf, "start"], "postfix start")
        pidfile = os.path.join(self.queue, "pid", "master.pid")
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and self.master_pid is None:
            try:
                with open(pidfile) as f:
                    self.master_pid = int(f.read().split()[0])
            except (OSError, ValueError, IndexError):
                time.sleep(0.1)
        if self.master_pid is None:
            raise BenchError("postfix master did not write %s: %s" %
                             (pidfile, self.log_tail()))
        if not wait_port(self.port, 15, lambda: pid_alive(self.master_pid)):
            raise BenchError("postfix smtpd not answering on port %d: %s" %
                             (self.port, self.log_tail()))

    def queue_empty(self):
        """True when no message is left in the queue (postqueue -j)."""
        try:
            r = subprocess.run([which("postqueue"), "-c", self.conf, "-j"],
                               stdout=subprocess.PIPE,
                               stderr=subprocess.DEVNULL, timeout=10)
        except subprocess.TimeoutExpired:
            return False
        return r.returncode == 0 and not r.stdout.strip()

    def log_counts(self):
        n = 0
        try:
            with open(self.maillog, errors="replace") as f:
                for line in f:
                    if "status=sent" in line:
                        n += 1
        except OSError:
            return {}
        return {"log_sent": n}

    def log_tail(self):
        try:
            with open(self.maillog, errors="replace") as f:
                return "".join(f.readlines()[-5:])
        except OSError:
            return "(no maillog)"

    def stop(self):
        if self.master_pid is None or not pid_alive(self.master_pid):
            return
        snap = snapshot(self.master_pid)
        subprocess.run([self.postfix, "-c", self.conf, "stop"],
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                       timeout=30)
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and pid_alive(self.master_pid):
            time.sleep(0.1)
        if pid_alive(self.master_pid):
            kill_tree(self.master_pid)
        kill_leftovers(snap)
        self.master_pid = None


def run_checked(argv, what, timeout=60):
    r = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       timeout=timeout)
    if r.returncode != 0:
        raise BenchError("%s failed: %s" %
                         (what, r.stdout.decode("utf-8", "replace")[-600:]))
    return r


def run_postfix(conc, args, tools, workdir):
    sink = Sink(tools, workdir, "postfix-%d" % conc)
    pf = None
    try:
        pf = Postfix(workdir, sink.port, str(conc))
        pf.start()
        time.sleep(args.settle)
        return measure("postfix", conc, args, tools, workdir, sink, pf.port,
                       pf.master_pid, None, pf.queue_empty, pf.log_counts)
    finally:
        if pf is not None:
            pf.stop()
        sink.stop()


# ---------------------------------------------------------------------------
# Petrel

def build_petrel(args):
    if args.no_build:
        return
    log("building Petrel (make)")
    r = subprocess.run(["make", "-C", REPO, "-j2"], stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, timeout=900)
    if r.returncode != 0:
        raise BenchError("make failed:\n%s" %
                         r.stdout.decode("utf-8", "replace")[-1500:])


def petrel_owner():
    if os.geteuid() != 0:
        return getpass.getuser()
    try:
        pwd.getpwnam("petrel")
    except KeyError:
        log("creating system user petrel")
        run_checked(["useradd", "--system", "--no-create-home",
                     "--home-dir", "/nonexistent",
                     "--shell", "/usr/sbin/nologin", "petrel"], "useradd")
    return "petrel"


def yq(s):
    return json.dumps(s)    # a JSON string is a valid YAML scalar


# Petrel systems: "petrel" relays unsigned; the others sign every message
# with a DKIM key of that type for smtp-source's sender domain, which is
# then a registered (verified) sending domain.
PETREL_DKIM = {"petrel": None, "petrel-rsa2048": "rsa2048",
               "petrel-ed25519": "ed25519"}


def run_petrel(conc, args, tools, workdir, system="petrel"):
    dkim = PETREL_DKIM[system]
    bindir = args.petrel_bindir
    master = os.path.join(bindir, "master")
    if not os.access(master, os.X_OK):
        raise BenchError("%s is missing (make did not build it)" % master)
    sink = Sink(tools, workdir, "%s-%d" % (system, conc))
    top = os.path.join(workdir, "%s-%d" % (system, conc))
    os.makedirs(top)
    os.chmod(top, 0o755)
    owner = petrel_owner()
    pw = pwd.getpwnam(owner)
    logdir = os.path.join(top, "log")
    os.makedirs(logdir)
    os.chown(logdir, pw.pw_uid, pw.pw_gid)
    acct = os.path.join(logdir, "acct.jsonl")
    port = free_port()
    conf = os.path.join(top, "petrel.yaml")
    with open(conf, "w") as f:
        f.write("# bench/bench.py: temporary Petrel configuration\n"
                "mail_owner: %s\n"
                "queue_directory: %s\n"
                "daemon_directory: %s\n"
                "listeners:\n"
                "  - { name: bench, address: \"127.0.0.1:%d\", tls: none }\n"
                "trusted_networks: [ \"127.0.0.0/8\" ]\n"
                "transport: { \"*\": \"[127.0.0.1]:%d\" }\n"
                "log: { destination: stderr, accounting: %s }\n" %
                (yq(owner), yq(os.path.join(top, "queue")), yq(bindir),
                 port, sink.port, yq(acct)))
        # smtp-source's sender domain is not a registered sending domain
        # (relayctl domain add): the unsigned relay is measured. An
        # --petrel-yaml 'smtpd: {...}' line replaces this one.
        if dkim is None and not any(e.lstrip().startswith("smtpd:")
                                    for e in args.petrel_yaml):
            f.write("smtpd: { require_verified_domains: false }\n")
        if dkim is not None:
            f.write("dkim: { key_directory: %s }\n" %
                    yq(os.path.join(top, "dkim")))
        for extra in args.petrel_yaml:
            f.write(extra + "\n")
    if dkim is not None:
        # The queue's top for relayctl; master creates the rest.
        qdir = os.path.join(top, "queue")
        os.makedirs(qdir)
        os.chown(qdir, pw.pw_uid, pw.pw_gid)
        r = subprocess.run([os.path.join(bindir, "relayctl"), "-c", conf,
                            "domain", "add", SENDER.split("@")[1],
                            "--selector", "bench", "--key", dkim],
                           stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT)
        if r.returncode != 0:
            raise BenchError("relayctl domain add: %s" %
                             r.stdout.decode(errors="replace"))
    errpath = os.path.join(top, "master.stderr")
    errfh = open(errpath, "wb")
    proc = None

    def tail():
        try:
            with open(errpath, errors="replace") as f:
                return "".join(f.readlines()[-8:])
        except OSError:
            return ""

    def log_counts():
        out = {}
        try:
            with open(errpath, errors="replace") as f:
                out["log_sent"] = sum("status=sent" in l for l in f)
        except OSError:
            pass
        try:
            n = 0
            with open(acct, errors="replace") as f:
                for line in f:
                    try:
                        ev = json.loads(line)
                    except ValueError:
                        continue
                    if isinstance(ev, dict) and "delivered" in \
                            (ev.get("event"), ev.get("type")):
                        n += 1
            out["acct_delivered"] = n
        except OSError:
            pass
        return out

    try:
        proc = start([master, "-c", conf, "-f"], stdout=errfh, stderr=errfh,
                     cwd=top)
        if not wait_port(port, 20, lambda: proc.poll() is None):
            raise BenchError("Petrel master not answering on port %d "
                             "(exit %s):\n%s" % (port, proc.poll(), tail()))
        time.sleep(args.settle)
        return measure(system, conc, args, tools, workdir, sink, port,
                       proc.pid, proc.pid, None, log_counts)
    finally:
        if proc is not None:
            snap = snapshot(proc.pid, proc.pid)
            stop_proc(proc, grace=10)
            kill_leftovers(snap)
        errfh.close()
        sink.stop()


# ---------------------------------------------------------------------------
# report

def fmt(v, spec):
    return "-" if v is None else format(v, spec)


def print_report(results, args):
    print()
    print("N=%d messages of %d bytes, smtp-source %s; %s; %d CPUs" %
          (args.n, args.size, "-d (one connection per session)" if args.reuse
           else "(one connection per message)",
           time.strftime("%Y-%m-%d %H:%M"), os.cpu_count()))
    print()
    hdr = ("| system | conc | accepted msg/s | end-to-end msg/s | "
           "delivered | CPU ms/msg | PSS MiB (procs) |")
    print(hdr)
    print("|---|---:|---:|---:|---:|---:|---:|")
    for r in results:
        pss = "-" if r.get("pss_kib") is None else "%.1f (%d)" % (
            r["pss_kib"] / 1024.0, r["processes"])
        print("| %s | %d | %s | %s | %s | %s | %s |" % (
            r["system"], r["concurrency"], fmt(r.get("accepted_rate"), ".0f"),
            fmt(r.get("e2e_rate"), ".0f"),
            "%d/%d" % (r.get("delivered", 0), r["n"]),
            fmt(r.get("cpu_ms_per_msg"), ".2f"), pss))
    by = {(r["system"], r["concurrency"]): r for r in results}
    ratios = []
    for conc in args.concurrency:
        p, q = by.get(("petrel", conc)), by.get(("postfix", conc))
        if not p or not q:
            continue

        def ratio(a, b):
            return a / b if a is not None and b else None
        ratios.append((conc, ratio(p.get("e2e_rate"), q.get("e2e_rate")),
                       ratio(p.get("accepted_rate"),
                             q.get("accepted_rate")),
                       ratio(p.get("cpu_ms_per_msg"),
                             q.get("cpu_ms_per_msg")),
                       ratio(p.get("pss_kib"), q.get("pss_kib"))))
    if ratios:
        print()
        print("Petrel / Postfix (targets: end-to-end >= 2.0, CPU <= 0.5, "
              "PSS <= 0.5)")
        print()
        print("| conc | end-to-end | accepted | CPU/msg | PSS |")
        print("|---:|---:|---:|---:|---:|")
        for conc, e, a, c, m in ratios:
            print("| %d | %s | %s | %s | %s |" % (
                conc, fmt(e, ".2f"), fmt(a, ".2f"), fmt(c, ".2f"),
                fmt(m, ".2f")))
    signing = []
    for conc in args.concurrency:
        u = by.get(("petrel", conc))
        for name in ("petrel-rsa2048", "petrel-ed25519"):
            d = by.get((name, conc))
            if u and d and u.get("e2e_rate") and d.get("e2e_rate"):
                signing.append((name, conc, d["e2e_rate"] / u["e2e_rate"],
                                d.get("cpu_ms_per_msg"),
                                u.get("cpu_ms_per_msg")))
    if signing:
        print()
        print("DKIM signing against unsigned Petrel, same run")
        print()
        print("| system | conc | end-to-end ratio | CPU ms/msg (unsigned) |")
        print("|---|---:|---:|---:|")
        for name, conc, ratio_e, c, cu in signing:
            print("| %s | %d | %.2f | %s (%s) |" % (
                name, conc, ratio_e, fmt(c, ".2f"), fmt(cu, ".2f")))
    notes = [r for r in results if r.get("error")]
    if notes:
        print()
        for r in notes:
            print("note: %s c=%d: %s" % (r["system"], r["concurrency"],
                                         r["error"]))
    for r in results:
        extra = ["%s=%d" % (k, r[k]) for k in ("log_sent", "acct_delivered")
                 if k in r]
        if r.get("machine_cpu_ms_per_msg") is not None:
            extra.append("whole machine %.2f CPU ms/msg" %
                         r["machine_cpu_ms_per_msg"])
        if extra:
            print("check: %s c=%d: %s" % (r["system"], r["concurrency"],
                                          ", ".join(extra)))


def failed(system, conc, args, e):
    return {"system": system, "concurrency": conc, "n": args.n,
            "size": args.size, "delivered": 0,
            "error": "failed: %s" % str(e).splitlines()[0]}


def main():
    ap = argparse.ArgumentParser(
        description="Relay N messages smtp-source -> relay -> smtp-sink "
        "through Petrel and a private Postfix; see bench/README.md.")
    ap.add_argument("-n", type=int, default=20000, help="messages per run "
                    "(default 20000)")
    ap.add_argument("-s", "--size", type=int, default=4096,
                    help="payload bytes per message (default 4096)")
    ap.add_argument("-c", "--concurrency", default="20 100",
                    help="smtp-source sessions, a list (default \"20 100\")")
    ap.add_argument("--systems",
                    default="ceiling,postfix,petrel,petrel-rsa2048,"
                    "petrel-ed25519",
                    help="what to measure (default ceiling,postfix,petrel,"
                    "petrel-rsa2048,petrel-ed25519: the last two sign with "
                    "DKIM)")
    ap.add_argument("-d", "--reuse", action="store_true",
                    help="smtp-source -d: many messages per connection")
    ap.add_argument("--timeout", type=int, default=None,
                    help="seconds per run (default 120 + N/40)")
    ap.add_argument("--stall", type=int, default=60,
                    help="give up when nothing is delivered for this long")
    ap.add_argument("--settle", type=float, default=1.0,
                    help="seconds to let a started relay settle")
    ap.add_argument("--idle-wait", type=float, default=60.0,
                    help="before each run, sync and wait up to this many "
                    "seconds for the disks to go idle (0: do not wait)")
    ap.add_argument("--pause", type=float, default=0.0,
                    help="seconds to sleep before each run, e.g. 65 to let "
                    "ext4 without a journal forget the previous run's "
                    "deleted inodes (see bench/README.md)")
    ap.add_argument("--petrel-yaml", metavar="LINE", action="append",
                    default=[], help="append LINE to Petrel's temporary "
                    "petrel.yaml, e.g. 'smtpd: { processes: 4 }' "
                    "(repeatable; the default run sets nothing)")
    ap.add_argument("--no-build", action="store_true",
                    help="do not run make before the Petrel runs")
    ap.add_argument("--petrel-bindir", metavar="DIR",
                    help="use master and daemons from DIR instead of "
                    "building the tree's build/ (implies --no-build)")
    ap.add_argument("--json", metavar="FILE",
                    help="also write the results as JSON to FILE")
    ap.add_argument("--keep", action="store_true",
                    help="keep the temporary directory (logs, queues)")
    ap.add_argument("--tmpdir", default=None,
                    help="where to make the temporary directory (needs a "
                    "real local filesystem for fsync to mean anything)")
    args = ap.parse_args()
    try:
        args.concurrency = [int(x) for x in
                            args.concurrency.replace(",", " ").split()]
    except ValueError:
        ap.error("bad concurrency list")
    if args.n <= 0 or args.size < 0 or not args.concurrency or \
            min(args.concurrency) <= 0:
        ap.error("bad -n, -s or -c")
    if args.petrel_bindir:
        args.petrel_bindir = os.path.abspath(args.petrel_bindir)
        args.no_build = True
    else:
        args.petrel_bindir = os.path.join(REPO, "build")
    if args.timeout is None:
        args.timeout = 120 + args.n // 40
    systems = [s.strip() for s in args.systems.split(",") if s.strip()]
    for s in systems:
        if s not in ("ceiling", "postfix") and s not in PETREL_DKIM:
            ap.error("unknown system %r" % s)

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGHUP, on_signal)
    results = []
    workdir = None
    try:
        ensure_postfix()    # smtp-source and smtp-sink come with it
        tools = {"smtp-source": which("smtp-source"),
                 "smtp-sink": which("smtp-sink")}
        workdir = tempfile.mkdtemp(prefix="petrel-bench-", dir=args.tmpdir)
        os.chmod(workdir, 0o755)
        if not args.keep:
            CLEANUP.insert(0, ("dir", workdir))
        petrel_ok = any(s in PETREL_DKIM for s in systems)
        if petrel_ok:
            try:
                build_petrel(args)
            except BenchError as e:
                log("Petrel not measured: %s" % e)
                petrel_ok = False
        if "postfix" in systems and os.geteuid() != 0:
            log("Postfix not measured: its master needs root")
            systems.remove("postfix")
        for conc in args.concurrency:
            if "ceiling" in systems:
                wait_disk_idle(args.idle_wait, args.pause)
                log("ceiling c=%d" % conc)
                results.append(ceiling(conc, args, tools, workdir))
            if "postfix" in systems:
                wait_disk_idle(args.idle_wait, args.pause)
                log("postfix c=%d" % conc)
                try:
                    results.append(run_postfix(conc, args, tools, workdir))
                except BenchError as e:
                    log("postfix c=%d failed: %s" % (conc, e))
                    results.append(failed("postfix", conc, args, e))
            for name in PETREL_DKIM:
                if not petrel_ok or name not in systems:
                    continue
                wait_disk_idle(args.idle_wait, args.pause)
                log("%s c=%d" % (name, conc))
                try:
                    results.append(run_petrel(conc, args, tools, workdir,
                                              name))
                except BenchError as e:
                    log("%s c=%d failed: %s" % (name, conc, e))
                    results.append(failed(name, conc, args, e))
    except BenchError as e:
        log(str(e))
        return 1
    except KeyboardInterrupt as e:
        log("interrupted (%s)" % e)
        results.append(None)
    finally:
        cleanup_all()
        if args.keep and workdir:
            log("kept %s" % workdir)
    if results and results[-1] is None:
        print_report(results[:-1], args)
        return 130
    print_report(results, args)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=1)
    return 0 if results and not any(r.get("error") for r in results) else 2


if __name__ == "__main__":
    sys.exit(main())
