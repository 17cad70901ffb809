#!/usr/bin/env python3
#
# bench.py - relay N messages from Postfix's smtp-source to smtp-sink on
# loopback through Petrel and through a private Postfix instance, in the
# same run, and print throughput, CPU per message and memory (PSS) of each,
# then Petrel's ratios to Postfix. See bench/README.md.
#
# --cases adds issue 12's cases: TLS submission (STARTTLS or implicit TLS,
# AUTH PLAIN, one or 100 messages per connection) driven by build/tlsload
# (bench/tlsload.c) against both MTAs and against tlsload's do-nothing
# sink, the TLS ceiling; and DKIM signing, Petrel against Postfix with the
# OpenDKIM milter. Those need Debian's sasl2-bin, libsasl2-modules and
# opendkim.
#
# --suppression N fills each Petrel's suppression list (issue 9) with N
# addresses first, to measure the RCPT lookup against a large list.
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


def wait_listen(port, timeout, alive=None):
    """Waits until 127.0.0.1:port accepts a TCP connection (an implicit
    TLS listener sends nothing first)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if alive is not None and not alive():
            return False
        try:
            with socket.create_connection(("127.0.0.1", port), 1):
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

def roots_sum(reading, root_pid, pgid, extra):
    """reading (suite_cpu_ticks or suite_pss_kib) of root_pid's suite plus
    that of each extra root's tree (OpenDKIM beside Postfix)."""
    total, n = reading(root_pid, pgid)
    for pid in extra:
        v, k = reading(pid)
        total, n = total + v, n + k
    return total, n


def measure(name, conc, args, tools, workdir, sink, relay_port, root_pid,
            pgid, queue_empty=None, log_counts=None, extra=()):
    res = {"system": name, "concurrency": conc, "n": args.n,
           "size": args.size, "error": None}
    cpu0, _ = roots_sum(suite_cpu_ticks, root_pid, pgid, extra)
    busy0 = machine_busy_ticks()
    t0, wall, rc, err = run_source(tools, relay_port, args, conc,
                                   args.timeout)
    res["accept_s"] = wall
    res["accepted_rate"] = args.n / wall if rc == 0 else None
    if rc != 0:
        res["error"] = "smtp-source exit %s: %s" % (rc, err)
    # Only wait for delivery of what smtp-source managed to hand over.
    elapsed, got, why = wait_delivered(sink, args.n, t0, args, queue_empty)
    cpu1, nproc = roots_sum(suite_cpu_ticks, root_pid, pgid, extra)
    busy1 = machine_busy_ticks()
    pss, npss = roots_sum(suite_pss_kib, root_pid, pgid, extra)
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
    """
    A private Postfix instance relaying to sink_port. With tls (a TlsSetup),
    it also has a 587-style submission listener (STARTTLS required, Cyrus
    SASL AUTH from a sasldb) on self.ports["starttls"] and a 465-style one
    (smtpd_tls_wrappermode) on self.ports["smtps"]. With milter
    ("inet:127.0.0.1:PORT"), every message goes through that milter
    (OpenDKIM signing).
    """

    def __init__(self, workdir, sink_port, tag, tls=None, milter=None):
        self.dir = os.path.join(workdir, "postfix-%s" % tag)
        self.tls = tls
        self.milter = milter
        self.ports = {}
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
        if self.tls is not None:
            # As Debian's master.cf suggests for submission and
            # submissions, with AUTH the only way to relay.
            only_auth = ("  -o smtpd_sasl_auth_enable=yes\n"
                         "  -o smtpd_relay_restrictions="
                         "permit_sasl_authenticated,reject\n"
                         "  -o smtpd_client_restrictions=\n")
            for case, opt in (("starttls", "smtpd_tls_security_level="
                               "encrypt"),
                              ("smtps", "smtpd_tls_wrappermode=yes")):
                self.ports[case] = free_port()
                out.append("127.0.0.1:%d  inet  n  -  n  -  -  smtpd\n"
                           "  -o syslog_name=postfix/%s\n  -o %s\n%s" %
                           (self.ports[case], case, opt, only_auth))
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
        if self.tls is not None:
            params.update(self.tls.postfix_params(self.conf))
        if self.milter is not None:
            params.update({"smtpd_milters": self.milter,
                           "non_smtpd_milters": self.milter,
                           "milter_default_action": "tempfail"})
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
               "petrel-rsa3072": "rsa3072", "petrel-ed25519": "ed25519"}


class Petrel:
    """
    A Petrel master with a temporary configuration relaying to sink_port:
    a plain listener on self.port and, with tls (a TlsSetup), a STARTTLS
    listener on self.ports["starttls"] and an implicit TLS one on
    self.ports["smtps"], with the bench credential added by relayctl.
    """

    def __init__(self, system, tag, args, workdir, sink_port, tls=None,
                 webhook_port=None):
        self.dkim = PETREL_DKIM[system]
        self.bindir = args.petrel_bindir
        self.master = os.path.join(self.bindir, "master")
        if not os.access(self.master, os.X_OK):
            raise BenchError("%s is missing (make did not build it)" %
                             self.master)
        self.top = top = os.path.join(workdir, "%s-%s" % (system, tag))
        os.makedirs(top)
        os.chmod(top, 0o755)
        owner = petrel_owner()
        self.pw = pw = pwd.getpwnam(owner)
        logdir = os.path.join(top, "log")
        os.makedirs(logdir)
        os.chown(logdir, pw.pw_uid, pw.pw_gid)
        self.acct = os.path.join(logdir, "acct.jsonl")
        self.port = free_port()
        self.ports = {}
        self.conf = conf = os.path.join(top, "petrel.yaml")
        self.proc = None
        self.errfh = None
        self.snap = None
        with open(conf, "w") as f:
            f.write("# bench/bench.py: temporary Petrel configuration\n"
                    "mail_owner: %s\n"
                    "queue_directory: %s\n"
                    "daemon_directory: %s\n"
                    "listeners:\n"
                    "  - { name: bench, address: \"127.0.0.1:%d\", "
                    "tls: none }\n" %
                    (yq(owner), yq(os.path.join(top, "queue")),
                     yq(self.bindir), self.port))
            if tls is not None:
                for case, mode in (("starttls", "starttls"),
                                   ("smtps", "implicit")):
                    self.ports[case] = free_port()
                    f.write("  - { name: %s, address: \"127.0.0.1:%d\", "
                            "tls: %s }\n" % (case, self.ports[case], mode))
                f.write("tls: { certificate: %s, private_key: %s }\n" %
                        (yq(tls.cert), yq(tls.key)))
            f.write("trusted_networks: [ \"127.0.0.0/8\" ]\n"
                    "transport: { \"*\": \"[127.0.0.1]:%d\" }\n"
                    "log: { destination: stderr, accounting: %s }\n" %
                    (sink_port, yq(self.acct)))
            # smtp-source's sender domain is not a registered sending domain
            # (relayctl domain add): the unsigned relay is measured. An
            # --petrel-yaml 'smtpd: {...}' line replaces this one.
            if self.dkim is None and not any(
                    e.lstrip().startswith("smtpd:")
                    for e in args.petrel_yaml):
                f.write("smtpd: { require_verified_domains: false }\n")
            if self.dkim is not None:
                f.write("dkim: { key_directory: %s }\n" %
                        yq(os.path.join(top, "dkim")))
            if webhook_port:
                # Issue 10: one endpoint that every event goes to.
                f.write("webhooks: [ { url: \"http://127.0.0.1:%d/hook\" "
                        "} ]\n" % webhook_port)
            for extra in args.petrel_yaml:
                f.write(extra + "\n")
        if self.dkim is not None or tls is not None or args.suppression:
            # The queue's top for relayctl; master creates the rest.
            qdir = os.path.join(top, "queue")
            os.makedirs(qdir)
            os.chown(qdir, pw.pw_uid, pw.pw_gid)
        if self.dkim is not None:
            self.relayctl(["domain", "add", SENDER.split("@")[1],
                           "--selector", "bench", "--key", self.dkim])
        if tls is not None:
            self.relayctl(["user", "add", BENCH_USER, "--password-stdin"],
                          BENCH_PASS + "\n")
        if args.suppression:
            # Issue 9: a list of N addresses that smtpd looks every RCPT
            # up in; smtp-source's and tlsload's recipient is not on it,
            # so every lookup descends the whole B-tree and misses.
            t0 = time.time()
            self.relayctl(["suppression", "import",
                           suppression_file(workdir, args.suppression)])
            log("suppression list: %d addresses imported in %.1f s" %
                (args.suppression, time.time() - t0))
        self.errpath = os.path.join(top, "master.stderr")

    def relayctl(self, argv, stdin=None):
        r = subprocess.run([os.path.join(self.bindir, "relayctl"), "-c",
                            self.conf] + argv,
                           input=stdin.encode() if stdin else None,
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        if r.returncode != 0:
            raise BenchError("relayctl %s: %s" % (
                " ".join(argv[:2]), r.stdout.decode(errors="replace")))

    def tail(self):
        try:
            with open(self.errpath, errors="replace") as f:
                return "".join(f.readlines()[-8:])
        except OSError:
            return ""

    def log_counts(self):
        out = {}
        try:
            with open(self.errpath, errors="replace") as f:
                out["log_sent"] = sum("status=sent" in l for l in f)
        except OSError:
            pass
        try:
            n = 0
            with open(self.acct, errors="replace") as f:
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

    def start(self, args):
        self.errfh = open(self.errpath, "wb")
        self.proc = proc = start([self.master, "-c", self.conf, "-f"],
                                 stdout=self.errfh, stderr=self.errfh,
                                 cwd=self.top)
        for port in [self.port] + list(self.ports.values()):
            if port in self.ports.values():
                ok = wait_listen(port, 20, lambda: proc.poll() is None)
            else:
                ok = wait_port(port, 20, lambda: proc.poll() is None)
            if not ok:
                raise BenchError("Petrel master not answering on port %d "
                                 "(exit %s):\n%s" % (port, proc.poll(),
                                                     self.tail()))
        time.sleep(args.settle)

    def stop(self):
        if self.proc is not None:
            snap = snapshot(self.proc.pid, self.proc.pid)
            stop_proc(self.proc, grace=10)
            kill_leftovers(snap)
            self.proc = None
        if self.errfh is not None:
            self.errfh.close()
            self.errfh = None


def suppression_file(workdir, n):
    """A file of n generated addresses for --suppression, made once."""
    path = os.path.join(workdir, "suppression-%d.txt" % n)
    if not os.path.exists(path):
        with open(path + ".tmp", "w") as f:
            for i in range(n):
                f.write("user%07d@d%d.suppressed.example\n" % (i, i % 997))
            # On disk now, so its write-back does not land in a run.
            f.flush()
            os.fsync(f.fileno())
        os.rename(path + ".tmp", path)
    return path


class HttpSink:
    """bench/httpsink: a webhook endpoint that answers 200 to every POST
    and counts them (issue 10, --webhook-sink)."""

    def __init__(self, args, workdir, tag):
        path = os.path.join(REPO, "build", "httpsink")
        if not os.access(path, os.X_OK):
            run_checked(["make", "-C", REPO, "bench-tools"],
                        "make bench-tools", timeout=300)
        self.port = free_port()
        self.countfile = os.path.join(workdir, "httpsink-%s.count" % tag)
        self.proc = start([path, str(self.port), self.countfile])
        # An HTTP server sends no greeting: wait for the listener only.
        deadline = time.monotonic() + 10
        while True:
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise BenchError("httpsink did not start")
            try:
                socket.create_connection(("127.0.0.1", self.port), 1).close()
                break
            except OSError:
                time.sleep(0.05)

    def count(self):
        try:
            with open(self.countfile) as f:
                return int(f.read().strip() or 0)
        except (OSError, ValueError):
            return 0

    def wait(self, n, stall):
        """Waits until n requests arrived or none for stall seconds;
        returns (count, seconds waited)."""
        t0 = t_last = time.monotonic()
        last = self.count()
        while last < n and time.monotonic() - t_last < stall:
            time.sleep(0.1)
            c = self.count()
            if c != last:
                last, t_last = c, time.monotonic()
        return last, time.monotonic() - t0

    def stop(self):
        stop_proc(self.proc)


def run_petrel(conc, args, tools, workdir, system="petrel"):
    sink = Sink(tools, workdir, "%s-%d" % (system, conc))
    pt = hs = None
    try:
        if args.webhook_sink:
            hs = HttpSink(args, workdir, "%s-%d" % (system, conc))
        pt = Petrel(system, str(conc), args, workdir, sink.port,
                    webhook_port=hs.port if hs else None)
        pt.start(args)
        res = measure(system, conc, args, tools, workdir, sink, pt.port,
                      pt.proc.pid, pt.proc.pid, None, pt.log_counts)
        if hs is not None:
            # Every message makes two events: accepted and delivered.
            got, waited = hs.wait(2 * res["delivered"], 15)
            res["webhook_events"] = got
            res["webhook_lag_s"] = waited
            log("%s c=%d: %d of %d webhook events received, the last "
                "%.1f s after the last delivery" %
                (system, conc, got, 2 * res["delivered"], waited))
        return res
    finally:
        if pt is not None:
            pt.stop()
        if hs is not None:
            hs.stop()
        sink.stop()


# ---------------------------------------------------------------------------
# TLS submission (issue 12): tlsload against Postfix, Petrel and its sink

# The credential both MTAs get; tlsload sends it with AUTH PLAIN.
BENCH_USER = "bench"
BENCH_PASS = "bench-Secret-4f1d9a27c0"
PF_HOSTNAME = "postfix-bench.example"

# case -> (tlsload -t mode, messages per connection)
TLS_CASES = {"starttls": ("starttls", 1), "smtps": ("smtps", 1),
             "starttls-k100": ("starttls", 100)}
ALL_CASES = ["plain"] + list(TLS_CASES) + ["dkim"]
# The "dkim" case: smtp-source through Postfix with OpenDKIM signing
# RSA-2048 and through Petrel signing with each key type.
DKIM_SYSTEMS = ["postfix-opendkim", "petrel-rsa2048", "petrel-rsa3072",
                "petrel-ed25519"]


class TlsSetup:
    """The certificate (RSA-2048 or ECDSA P-256) that Postfix, Petrel and
    the sink all serve, and Postfix's SASL configuration."""

    def __init__(self, workdir, cert_type):
        d = os.path.join(workdir, "tls-%s" % cert_type)
        os.makedirs(d)
        os.chmod(d, 0o755)
        self.cert_type = cert_type
        self.cert = os.path.join(d, "cert.pem")
        self.key = os.path.join(d, "key.pem")
        if cert_type == "rsa2048":
            newkey = ["-newkey", "rsa:2048"]
        else:
            newkey = ["-newkey", "ec", "-pkeyopt",
                      "ec_paramgen_curve:P-256"]
        run_checked(["openssl", "req", "-x509"] + newkey +
                    ["-nodes", "-days", "30", "-subj", "/CN=localhost",
                     "-keyout", self.key, "-out", self.cert], "openssl req")
        # Only root reads it: both masters open it before dropping
        # privileges, and tlsload's sink runs as root.
        os.chmod(self.key, 0o600)

    def postfix_params(self, conf):
        """Writes Cyrus SASL's smtpd.conf and a sasldb with the bench
        user into conf; returns the main.cf parameters for TLS and AUTH."""
        sasldb = os.path.join(conf, "sasldb2")
        tool = which("saslpasswd2")
        if tool is None:
            raise BenchError("saslpasswd2 is missing: apt-get install "
                             "sasl2-bin (see bench/README.md)")
        r = subprocess.run([tool, "-c", "-p", "-f", sasldb, "-u",
                            PF_HOSTNAME, BENCH_USER],
                           input=BENCH_PASS.encode(), stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, timeout=30)
        if r.returncode != 0:
            raise BenchError("saslpasswd2: %s" %
                             r.stdout.decode(errors="replace"))
        # Root's, readable by smtpd's group (postfix check wants root).
        os.chown(sasldb, 0, pwd.getpwnam("postfix").pw_gid)
        os.chmod(sasldb, 0o640)
        # Debian's Postfix looks for $cyrus_sasl_config_path/sasl/
        # $smtpd_sasl_path.conf (strace shows it).
        os.makedirs(os.path.join(conf, "sasl"))
        with open(os.path.join(conf, "sasl", "smtpd.conf"), "w") as f:
            f.write("pwcheck_method: auxprop\nauxprop_plugin: sasldb\n"
                    "mech_list: PLAIN LOGIN\nsasldb_path: %s\n" % sasldb)
        return {"smtpd_tls_cert_file": self.cert,
                "smtpd_tls_key_file": self.key,
                "smtpd_tls_loglevel": "0",
                "smtpd_sasl_type": "cyrus",
                "cyrus_sasl_config_path": conf,
                "smtpd_sasl_path": "smtpd",
                "smtpd_sasl_local_domain": PF_HOSTNAME}


def build_tlsload(args):
    path = os.path.join(REPO, "build", "tlsload")
    if not args.no_build or not os.access(path, os.X_OK):
        log("building tlsload (make bench-tools)")
        run_checked(["make", "-C", REPO, "bench-tools"], "make bench-tools",
                    timeout=300)
    return path


def tls_messages(case, conc, args):
    """Messages for one TLS run: --tls-n, and at least 100 per session
    with 100 per connection, so that every session sends its 100."""
    _, k = TLS_CASES[case]
    return max(args.tls_n, k * conc) if k > 1 else args.tls_n


def run_tlsload(args, port, case, conc, n):
    """Runs tlsload; returns (start, wall seconds, report or None, error)."""
    mode, k = TLS_CASES[case]
    argv = [args.tlsload, "-p", str(port), "-t", mode, "-n", str(n),
            "-c", str(conc), "-s", str(args.size), "-m", str(k),
            "-a", "%s:%s" % (BENCH_USER, BENCH_PASS),
            "-f", SENDER, "-r", "@" + RCPT.split("@")[1],
            "-X", str(args.timeout)]
    if args.resume:
        argv.append("-R")
    t0 = time.monotonic()
    p = start(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        out, err = p.communicate(timeout=args.timeout + 30)
    except subprocess.TimeoutExpired:
        stop_proc(p)
        out, err = p.communicate()
    wall = time.monotonic() - t0
    rep = None
    for line in out.decode(errors="replace").splitlines()[::-1]:
        try:
            rep = json.loads(line)
            break
        except ValueError:
            continue
    why = None
    if p.returncode != 0 or rep is None:
        why = "tlsload exit %s: %s %s" % (
            p.returncode, err.decode(errors="replace").strip()[-200:],
            json.dumps(rep.get("errors")) if rep else "")
    return t0, wall, rep, why


def tls_result(system, case, conc, n, args, rep):
    res = {"system": system, "case": case, "concurrency": conc, "n": n,
           "size": args.size, "error": None, "cert": args.cert,
           "resume": args.resume}
    if rep is not None:
        res["accepted_rate"] = rep.get("msgs_per_s")
        res["accepted"] = rep.get("accepted")
        res["latency_ms"] = rep.get("latency_ms")
        res["phases_ms"] = rep.get("phases_ms")
        res["tls_resumed"] = rep.get("tls_resumed")
        res["client_cpu_ms_per_msg"] = rep.get("cpu_ms_per_msg")
    return res


def measure_tls(system, case, conc, args, sink, port, root_pid, pgid,
                queue_empty=None, log_counts=None):
    """One tlsload run against an MTA: its accept rate, then waits for
    delivery to the sink; CPU of the MTA's tree over both."""
    n = tls_messages(case, conc, args)
    base = sink.count()
    logs0 = log_counts() if log_counts is not None else {}
    cpu0, _ = suite_cpu_ticks(root_pid, pgid)
    busy0 = machine_busy_ticks()
    t0, wall, rep, why = run_tlsload(args, port, case, conc, n)
    res = tls_result(system, case, conc, n, args, rep)
    res["error"] = why
    want = base + (rep.get("accepted", 0) if rep else 0)
    elapsed, got, why = wait_delivered(sink, want, t0, args, queue_empty)
    got -= base
    cpu1, _ = suite_cpu_ticks(root_pid, pgid)
    busy1 = machine_busy_ticks()
    res["delivered"] = got
    res["e2e_rate"] = got / elapsed if elapsed > 0 and got else None
    if why:
        res["error"] = (res["error"] + "; " if res["error"] else "") + why
    res["cpu_ms_per_msg"] = (cpu1 - cpu0) * 1000.0 / CLK_TCK / got \
        if got else None
    res["machine_cpu_ms_per_msg"] = (busy1 - busy0) * 1000.0 / CLK_TCK / \
        got if got else None
    res["machine_busy_pct"] = 100.0 * (busy1 - busy0) / CLK_TCK / \
        (time.monotonic() - t0)
    if log_counts is not None:
        # The instance serves every case: count this run's lines only.
        for k, v in log_counts().items():
            res[k] = v - logs0.get(k, 0)
    return res


def tls_ceiling(case, conc, args, tls, workdir):
    """The same client against tlsload's do-nothing sink (same
    certificate, two threads, no MTA): what this machine allows."""
    mode, _ = TLS_CASES[case]
    port = free_port()
    errpath = os.path.join(workdir, "tlssink-%s-%d.err" % (case, conc))
    outpath = os.path.join(workdir, "tlssink-%s-%d.json" % (case, conc))
    errfh, outfh = open(errpath, "wb"), open(outpath, "wb")
    sink = start([args.tlsload, "--sink", "-t", mode, "-p", str(port),
                  "-j", str(os.cpu_count() or 1), "--cert", tls.cert,
                  "--key", tls.key, "-X", str(args.timeout + 60)],
                 stdout=outfh, stderr=errfh)
    n = tls_messages(case, conc, args)
    try:
        if not wait_listen(port, 20, lambda: sink.poll() is None):
            raise BenchError("tlsload sink did not start")
        busy0 = machine_busy_ticks()
        t0, wall, rep, why = run_tlsload(args, port, case, conc, n)
        busy1 = machine_busy_ticks()
        res = tls_result("ceiling", case, conc, n, args, rep)
        res["error"] = why
        res["machine_busy_pct"] = 100.0 * (busy1 - busy0) / CLK_TCK / \
            (time.monotonic() - t0)
    finally:
        if sink.poll() is None:
            sink.send_signal(signal.SIGTERM)
        try:
            sink.wait(15)
        except subprocess.TimeoutExpired:
            stop_proc(sink)
        errfh.close()
        outfh.close()
    try:
        with open(outpath) as f:
            srep = json.loads(f.read().strip().splitlines()[-1])
        acc = res.get("accepted") or 0
        res["cpu_ms_per_msg"] = 1000.0 * srep["sink_cpu_s"] / acc \
            if acc else None
    except (OSError, ValueError, IndexError, KeyError):
        res["error"] = (res["error"] or "") + " no sink report"
    return res


def tls_warmup(name, conc, case, args, sink, mta, empty):
    """
    Sends --tls-warmup messages per session, unmeasured, before the first
    case: every server process has then done its first login (Petrel's
    first AUTH per process goes through the KDF, and a burst of C first
    logins queues behind it) and Postfix has forked its smtpd processes.
    Logs the AUTH phase of the warm-up.
    """
    n = args.tls_warmup * conc
    base = sink.count()
    log("%s warm-up: %d messages, %s c=%d" % (name, n, case, conc))
    t0, _, rep, why = run_tlsload(args, mta.ports[TLS_CASES[case][0]],
                                  case, conc, n)
    wait_delivered(sink, base + (rep or {}).get("accepted", 0), t0, args,
                   empty)
    auth = ((rep or {}).get("phases_ms") or {}).get("auth")
    if auth:
        log("%s warm-up: AUTH median %.1f ms, p99 %.1f ms, max %.1f ms" %
            (name, auth["p50"], auth["p99"], auth["max"]))
    if why:
        log("%s warm-up: %s" % (name, why))


def run_tls_mta(name, conc, cases, args, tools, workdir, tls):
    """Starts Postfix or Petrel (name) with its TLS listeners once and
    measures each TLS case against it."""
    sink = Sink(tools, workdir, "%s-tls-%d" % (name, conc))
    mta = None
    out = []
    try:
        if name == "postfix":
            mta = Postfix(workdir, sink.port, "tls-%d" % conc, tls=tls)
            mta.start()
            root, pgid, empty = mta.master_pid, None, mta.queue_empty
            time.sleep(args.settle)
        else:
            mta = Petrel("petrel", "tls-%d" % conc, args, workdir,
                         sink.port, tls=tls)
            mta.start(args)
            root, pgid, empty = mta.proc.pid, mta.proc.pid, None
        if args.tls_warmup:
            tls_warmup(name, conc, cases[0], args, sink, mta, empty)
        for case in cases:
            port = mta.ports[TLS_CASES[case][0]]
            if not wait_listen(port, 15):
                raise BenchError("%s %s listener not answering" %
                                 (name, case))
            wait_disk_idle(args.idle_wait, args.pause)
            log("%s %s c=%d" % (name, case, conc))
            out.append(measure_tls(name, case, conc, args, sink, port, root,
                                   pgid, empty, mta.log_counts))
        return out
    finally:
        if mta is not None:
            mta.stop()
        sink.stop()


class OpenDkim:
    """Debian's opendkim as a milter on a free port, signing every message
    from smtp-source's sender domain with a new RSA-2048 key."""

    def __init__(self, workdir, tag):
        prog = which("opendkim")
        if prog is None:
            raise BenchError("opendkim is missing: apt-get install opendkim "
                             "(see bench/README.md)")
        self.dir = d = os.path.join(workdir, "opendkim-%s" % tag)
        os.makedirs(d)
        key = os.path.join(d, "bench.private")
        run_checked(["openssl", "genrsa", "-out", key, "2048"],
                    "openssl genrsa")
        os.chmod(key, 0o600)
        self.port = free_port()
        conf = os.path.join(d, "opendkim.conf")
        with open(conf, "w") as f:
            # Mode s: sign only; relaxed/simple as Petrel signs; no DNS.
            # The key lives under /tmp, which OpenDKIM would call unsafe.
            f.write("Syslog no\nMode s\nDomain %s\nSelector bench\n"
                    "KeyFile %s\nCanonicalization relaxed/simple\n"
                    "Socket inet:%d@127.0.0.1\nInternalHosts 127.0.0.1\n"
                    "PidFile %s\nUMask 007\nRequireSafeKeys false\n" %
                    (SENDER.split("@")[1], key, self.port,
                     os.path.join(d, "opendkim.pid")))
        self.errfh = open(os.path.join(d, "opendkim.err"), "wb")
        self.proc = start([prog, "-f", "-x", conf], stdout=self.errfh,
                          stderr=self.errfh)
        if not wait_listen(self.port, 15, lambda: self.proc.poll() is None):
            raise BenchError("opendkim did not start: %s" % self.tail())
        self.milter = "inet:127.0.0.1:%d" % self.port

    def tail(self):
        try:
            with open(os.path.join(self.dir, "opendkim.err"),
                      errors="replace") as f:
                return f.read()[-300:]
        except OSError:
            return ""

    def stop(self):
        stop_proc(self.proc)
        self.errfh.close()


def run_postfix_opendkim(conc, args, tools, workdir):
    sink = Sink(tools, workdir, "postfix-opendkim-%d" % conc)
    pf = dk = None
    try:
        dk = OpenDkim(workdir, str(conc))
        pf = Postfix(workdir, sink.port, "opendkim-%d" % conc,
                     milter=dk.milter)
        pf.start()
        time.sleep(args.settle)
        res = measure("postfix-opendkim", conc, args, tools, workdir, sink,
                      pf.port, pf.master_pid, None, pf.queue_empty,
                      pf.log_counts, extra=(dk.proc.pid,))
        return res
    finally:
        if pf is not None:
            pf.stop()
        if dk is not None:
            dk.stop()
        sink.stop()


# ---------------------------------------------------------------------------
# report

def fmt(v, spec):
    return "-" if v is None else format(v, spec)


def print_report(results, args):
    plain = [r for r in results if "case" not in r]
    tls = [r for r in results if "case" in r]
    if plain:
        print_plain_report(plain, args)
    if tls:
        print_tls_report(tls, args)


def ratio(a, b):
    return a / b if a is not None and b else None


def print_tls_report(results, args):
    print()
    print("TLS submission: tlsload, AUTH PLAIN, %d-byte bodies, %s "
          "certificate, resumption %s; %s; %d CPUs" %
          (args.size, args.cert, "on" if args.resume else "off",
           time.strftime("%Y-%m-%d %H:%M"), os.cpu_count()))
    print()
    print("| system | case | conc | msgs/s | delivered | end-to-end "
          "msg/s | CPU ms/msg | machine busy % | latency p50/p99 ms | "
          "resumed |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in results:
        lat = r.get("latency_ms") or {}
        print("| %s | %s | %d | %s | %s | %s | %s | %s | %s/%s | %s |" % (
            r["system"], r["case"], r["concurrency"],
            fmt(r.get("accepted_rate"), ".0f"),
            "-" if r["system"] == "ceiling" else
            "%d/%d" % (r.get("delivered", 0), r["n"]),
            fmt(r.get("e2e_rate"), ".0f"),
            fmt(r.get("cpu_ms_per_msg"), ".2f"),
            fmt(r.get("machine_busy_pct"), ".0f"),
            fmt(lat.get("p50"), ".1f"), fmt(lat.get("p99"), ".1f"),
            fmt(r.get("tls_resumed"), "d")))
    by = {(r["system"], r["case"], r["concurrency"]): r for r in results}
    rows = []
    for r in results:
        if r["system"] != "petrel":
            continue
        key = (r["case"], r["concurrency"])
        q = by.get(("postfix",) + key, {})
        c = by.get(("ceiling",) + key, {})
        p_rate, q_rate = r.get("accepted_rate"), q.get("accepted_rate")
        c_rate = c.get("accepted_rate")
        rows.append((r["case"], r["concurrency"], q_rate, p_rate,
                     ratio(p_rate, q_rate), r.get("cpu_ms_per_msg"),
                     q.get("cpu_ms_per_msg"), c_rate,
                     c.get("cpu_ms_per_msg"), ratio(p_rate, c_rate),
                     ratio(q_rate, c_rate)))
    if rows:
        print()
        print("Petrel / Postfix, and each one's share of the TLS ceiling "
              "(the same client against tlsload --sink)")
        print()
        print("| case | conc | Postfix msgs/s | Petrel msgs/s | ratio | "
              "Petrel CPU ms/msg (Postfix) | ceiling msgs/s (sink CPU "
              "ms/msg) | Petrel share | Postfix share |")
        print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
        for (case, conc, q_rate, p_rate, rat, pc, qc, c_rate, cc, ps,
             qs) in rows:
            print("| %s | %d | %s | %s | %s | %s (%s) | %s (%s) | %s | "
                  "%s |" % (case, conc, fmt(q_rate, ".0f"),
                            fmt(p_rate, ".0f"), fmt(rat, ".2f"),
                            fmt(pc, ".2f"), fmt(qc, ".2f"),
                            fmt(c_rate, ".0f"), fmt(cc, ".2f"),
                            fmt(None if ps is None else 100 * ps, ".0f") +
                            ("%" if ps is not None else ""),
                            fmt(None if qs is None else 100 * qs, ".0f") +
                            ("%" if qs is not None else "")))
    phases = ("connect", "greeting", "ehlo", "starttls", "tls_handshake",
              "ehlo_after_tls", "auth", "mail_rcpt", "data", "quit")
    if any(r.get("phases_ms") for r in results):
        print()
        print("Where a session waits: median / p99 of each phase in ms "
              "(tlsload, from each command to its reply)")
        print()
        print("| system | case | conc | " + " | ".join(phases) + " |")
        print("|---|---|---:|" + "---:|" * len(phases))
        for r in results:
            ph = r.get("phases_ms") or {}
            cells = []
            for name in phases:
                v = ph.get(name)
                cells.append("-" if v is None else
                             "%.2f / %.2f" % (v["p50"], v["p99"]))
            print("| %s | %s | %d | %s |" % (r["system"], r["case"],
                                             r["concurrency"],
                                             " | ".join(cells)))
    notes = [r for r in results if r.get("error")]
    if notes:
        print()
        for r in notes:
            print("note: %s %s c=%d: %s" % (r["system"], r["case"],
                                            r["concurrency"], r["error"]))
    for r in results:
        extra = ["%s=%d" % (k, r[k]) for k in ("log_sent", "acct_delivered")
                 if k in r]
        if extra:
            print("check: %s %s c=%d: %s" % (r["system"], r["case"],
                                             r["concurrency"],
                                             ", ".join(extra)))


def print_plain_report(results, args):
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
    dkim = []
    for conc in args.concurrency:
        q = by.get(("postfix-opendkim", conc))
        for name in ("petrel-rsa2048", "petrel-rsa3072", "petrel-ed25519"):
            d = by.get((name, conc))
            if q and d:
                dkim.append((name, conc, d.get("e2e_rate"),
                             q.get("e2e_rate"),
                             ratio(d.get("e2e_rate"), q.get("e2e_rate")),
                             d.get("cpu_ms_per_msg"),
                             q.get("cpu_ms_per_msg")))
    if dkim:
        print()
        print("DKIM: Petrel against Postfix with OpenDKIM (RSA-2048), "
              "same run")
        print()
        print("| Petrel system | conc | Petrel e2e msg/s | Postfix+OpenDKIM "
              "e2e msg/s | ratio | CPU ms/msg Petrel (Postfix+OpenDKIM) |")
        print("|---|---:|---:|---:|---:|---:|")
        for name, conc, pe, qe, rat, pc, qc in dkim:
            print("| %s | %d | %s | %s | %s | %s (%s) |" % (
                name, conc, fmt(pe, ".0f"), fmt(qe, ".0f"),
                fmt(rat, ".2f"), fmt(pc, ".2f"), fmt(qc, ".2f")))
    signing = []
    for conc in args.concurrency:
        u = by.get(("petrel", conc))
        for name in ("petrel-rsa2048", "petrel-rsa3072", "petrel-ed25519"):
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


def run_tls_all(conc, cases, args, tools, workdir, tls, petrel_ok):
    """The TLS cases at one concurrency: the sink (ceiling), Postfix and
    Petrel, each MTA started once for all cases."""
    out = []
    for case in cases:
        if "ceiling" not in args.tls_systems:
            break
        wait_disk_idle(args.idle_wait, args.pause)
        log("tls ceiling %s c=%d" % (case, conc))
        try:
            out.append(tls_ceiling(case, conc, args, tls, workdir))
        except BenchError as e:
            out.append(failed("ceiling", conc, args, e, case))
    runs = ["petrel"] if petrel_ok and "petrel" in args.tls_systems else []
    if os.geteuid() == 0 and "postfix" in args.tls_systems:
        runs.insert(0, "postfix")
    for name in runs:
        try:
            out += run_tls_mta(name, conc, cases, args, tools, workdir, tls)
        except BenchError as e:
            log("%s TLS c=%d failed: %s" % (name, conc, e))
            out += [failed(name, conc, args, e, c) for c in cases]
    return out


def failed(system, conc, args, e, case=None):
    if case is not None:
        return {"system": system, "case": case, "concurrency": conc,
                "n": tls_messages(case, conc, args), "size": args.size,
                "delivered": 0, "error": "failed: %s" %
                str(e).splitlines()[0]}
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
    ap.add_argument("--cases", default="plain",
                    help="comma-separated, any of %s (default plain: "
                    "smtp-source through --systems). starttls, smtps and "
                    "starttls-k100 run tlsload with AUTH PLAIN against "
                    "Postfix, Petrel and tlsload's sink (the TLS "
                    "ceiling); dkim runs smtp-source through %s" %
                    (",".join(ALL_CASES), ",".join(DKIM_SYSTEMS)))
    ap.add_argument("--tls-n", type=int, default=4000,
                    help="messages per TLS run (default 4000; "
                    "starttls-k100 sends at least 100 per session)")
    ap.add_argument("--tls-warmup", type=int, default=2, metavar="K",
                    help="TLS cases: before measuring, send K unmeasured "
                    "messages per session to each freshly started MTA "
                    "(default 2; 0: none)")
    ap.add_argument("--resume", action="store_true",
                    help="TLS cases: tlsload resumes sessions (tickets); "
                    "default off, a full handshake per connection")
    ap.add_argument("--cert", choices=("rsa2048", "p256"),
                    default="rsa2048", help="TLS cases: the certificate "
                    "every server uses (default rsa2048)")
    ap.add_argument("--tls-systems", default="ceiling,postfix,petrel",
                    help="TLS cases: which of ceiling, postfix, petrel to "
                    "measure (default all three)")
    ap.add_argument("--suppression", type=int, default=0, metavar="N",
                    help="import N generated addresses into each Petrel's "
                    "suppression list before its runs, so that every RCPT "
                    "is looked up in a list that size (issue 9; default "
                    "0: no list)")
    ap.add_argument("--webhook-sink", action="store_true",
                    help="give each Petrel one webhook endpoint "
                    "(bench/httpsink, answers 200) that receives every "
                    "event, and report how many arrived (issue 10)")
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
        if s not in ("ceiling", "postfix", "postfix-opendkim") and \
                s not in PETREL_DKIM:
            ap.error("unknown system %r" % s)
    cases = [c.strip() for c in args.cases.split(",") if c.strip()]
    for c in cases:
        if c not in ALL_CASES:
            ap.error("unknown case %r" % c)
    if args.tls_n <= 0 or args.tls_warmup < 0:
        ap.error("bad --tls-n")
    args.tls_systems = [x.strip() for x in args.tls_systems.split(",")
                        if x.strip()]
    if any(x not in ("ceiling", "postfix", "petrel")
           for x in args.tls_systems):
        ap.error("bad --tls-systems")
    if args.suppression < 0:
        ap.error("bad --suppression")
    tls_cases = [c for c in ALL_CASES if c in TLS_CASES and c in cases]
    # smtp-source systems: --systems for plain, the DKIM set for dkim.
    if "plain" not in cases:
        systems = []
    if "dkim" in cases:
        systems += [s for s in DKIM_SYSTEMS if s not in systems]

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
        petrel_ok = any(s in PETREL_DKIM for s in systems) or tls_cases
        if petrel_ok:
            try:
                build_petrel(args)
            except BenchError as e:
                log("Petrel not measured: %s" % e)
                petrel_ok = False
        if os.geteuid() != 0:
            for s in ("postfix", "postfix-opendkim"):
                if s in systems:
                    log("%s not measured: its master needs root" % s)
                    systems.remove(s)
        tls = None
        if tls_cases:
            args.tlsload = build_tlsload(args)
            tls = TlsSetup(workdir, args.cert)
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
            if "postfix-opendkim" in systems:
                wait_disk_idle(args.idle_wait, args.pause)
                log("postfix-opendkim c=%d" % conc)
                try:
                    results.append(run_postfix_opendkim(conc, args, tools,
                                                        workdir))
                except BenchError as e:
                    log("postfix-opendkim c=%d failed: %s" % (conc, e))
                    results.append(failed("postfix-opendkim", conc, args,
                                          e))
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
            if tls_cases:
                results += run_tls_all(conc, tls_cases, args, tools,
                                       workdir, tls, petrel_ok)
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
