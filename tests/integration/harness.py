"""harness.py - shared fixtures for Petrel's integration tests.

A PetrelCase test starts, for each test method, a fresh temporary directory,
a capture SMTP server (capture_smtpd.CaptureSMTPD) as the transport next hop,
and the real build/master in the foreground on free 127.0.0.1 ports, with
every daemon's log on master's stderr (captured to a file). After every test
that log is scanned for "panic", "fatal", "AddressSanitizer" and "runtime
error"; every process started is stopped by pid, then by process group.

Environment: PETREL_KEEP=1 keeps the temporary directories; PETREL_MAIL_OWNER
overrides the mail_owner used when running as root (default "petrel", created
by tests/deps.sh); PETREL_BUILD points at another build directory.
Python 3 standard library only.
"""

import atexit
import base64
import json
import os
import pwd
import re
import resource
import shutil
import signal
import smtplib
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
BUILD = os.path.abspath(os.environ.get("PETREL_BUILD",
                                       os.path.join(REPO, "build")))
PROGRAMS = ("master", "smtpd", "qmgr", "smtp", "relayctl", "relayq",
            "bounce", "webhookd", "metricsd")
KEEP = os.environ.get("PETREL_KEEP", "") not in ("", "0")

sys.path.insert(0, HERE)
from capture_smtpd import CaptureSMTPD  # noqa: E402

BAD_LOG_RE = re.compile(r"\bpanic\b|\bfatal\b|AddressSanitizer|"
                        r"runtime error|LeakSanitizer")
# A CLI may legitimately say "fatal: no such user"; crashes it may not.
CLI_BAD_RE = re.compile(r"\bpanic\b|AddressSanitizer|runtime error")
QID_RE = re.compile(r"queued as ([0-9A-Za-z]+)")
# "QUEUEID: to=<rcpt>, relay=..., delay=..., delays=..., dsn=X.Y.Z,
#  status=sent|deferred|bounced (...)[, tls=V, cipher=C, verified=yes|no]
#  [, class=CLASS,
#  bounce=hard|soft]" (Postfix's fields side by side, ours after them)
DELIVERY_RE = re.compile(
    r"(?P<qid>[0-9A-Za-z]+): to=<(?P<rcpt>[^>]*)>, (?:orig_to=<[^>]*>, )?"
    r"relay=(?P<relay>[^,]*), delay=(?P<delay>[0-9.]+), "
    r"(?:delays=(?P<delays>[0-9./]+), )?"
    r"dsn=(?P<dsn>\d\.\d{1,3}\.\d{1,3}), "
    r"status=(?P<status>sent|deferred|bounced|expired) \((?P<reply>.*)\)"
    r"(?:, tls=(?P<tls>[^,\s]+), cipher=(?P<cipher>[^,\s]+), "
    r"verified=(?P<verified>yes|no))?"
    r"(?:, class=(?P<bclass>[a-z-]+), bounce=(?P<bounce>hard|soft))?\s*$")

CMD_TIMEOUT = 20
SMTP_TIMEOUT = 30


class SetupError(Exception):
    pass


# ---- global registry: every process started, for last-resort cleanup ----

_registry_lock = threading.Lock()
_registry = []          # Popen objects started with start_new_session


def register(proc):
    with _registry_lock:
        _registry.append(proc)


def kill_everything():
    """Last resort (run.py's watchdog): SIGKILL every group we started."""
    with _registry_lock:
        procs = list(_registry)
    for p in procs:
        if p.poll() is None:
            try:
                os.killpg(p.pid, signal.SIGKILL)
            except OSError:
                pass


# ---- small helpers ------------------------------------------------------

def free_port():
    """A free TCP port on 127.0.0.1 (bind port 0, read it, close)."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
    finally:
        s.close()


def free_ports(n):
    """n distinct free ports, held together while picked."""
    socks = []
    try:
        for _ in range(n):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind(("127.0.0.1", 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def held_ports(n):
    """n distinct ports on 127.0.0.1 where nothing listens, bound (not
    listening) until the sockets returned are closed: a connection to one
    is refused, and no server of the test nor a client's source port can
    take it meanwhile, as one could take a port free_ports released."""
    socks = []
    for _ in range(n):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.bind(("127.0.0.1", 0))
        socks.append(s)
    return [s.getsockname()[1] for s in socks], socks


def unverified_ctx():
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


def missing_binaries():
    return [p for p in PROGRAMS
            if not (os.path.isfile(os.path.join(BUILD, p)) and
                    os.access(os.path.join(BUILD, p), os.X_OK))]


_DAEMON_DIR = None


def daemon_dir():
    """Where the daemons run from: build/, or a copy the owner can reach.

    As root the daemons run as mail_owner, which cannot exec them from a
    tree it cannot traverse (a clone under /root, say); then they are
    copied once per run into a world-readable temporary directory.
    """
    global _DAEMON_DIR
    if _DAEMON_DIR is not None:
        return _DAEMON_DIR
    _DAEMON_DIR = BUILD
    if os.geteuid() == 0:
        name = mail_owner()[0]
        probe = subprocess.run(
            ["su", "-s", "/bin/sh", name, "-c",
             "test -x '%s'" % os.path.join(BUILD, "smtpd")],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        if probe.returncode != 0:
            staged = tempfile.mkdtemp(prefix="petrel-bin-")
            os.chmod(staged, 0o755)
            # sendmail and relayctl too: tests run them as other users.
            for p in ("master", "smtpd", "qmgr", "smtp", "bounce",
                      "webhookd", "metricsd", "sendmail", "relayctl"):
                shutil.copy2(os.path.join(BUILD, p), staged)
            shutil.copy2(os.path.join(REPO, "etc", "bounce-classes.yaml"),
                         staged)
            _DAEMON_DIR = staged
            if not KEEP:
                atexit.register(shutil.rmtree, staged, True)
    return _DAEMON_DIR


def bounce_classes():
    """The shipped bounce classification rules, where the daemons can
    read them: the tree's etc/bounce-classes.yaml, or its staged copy."""
    d = daemon_dir()
    if d != BUILD:
        return os.path.join(d, "bounce-classes.yaml")
    return os.path.join(REPO, "etc", "bounce-classes.yaml")


def mail_owner():
    """(name, uid, gid) of the user the daemons run as."""
    if os.geteuid() == 0:
        name = os.environ.get("PETREL_MAIL_OWNER") or "petrel"
        try:
            pw = pwd.getpwnam(name)
        except KeyError:
            raise SetupError(
                "running as root but the mail_owner system user %r does not "
                "exist: run `make deps` as root (tests/deps.sh creates it), "
                "or set PETREL_MAIL_OWNER to an existing unprivileged user"
                % name)
        if pw.pw_uid == 0:
            raise SetupError("mail_owner %r has uid 0" % name)
        return name, pw.pw_uid, pw.pw_gid
    pw = pwd.getpwuid(os.getuid())
    return pw.pw_name, pw.pw_uid, pw.pw_gid


_cert_lock = threading.Lock()
_cert = None


def certificate():
    """(cert, key) paths: one self-signed pair per run of the suite."""
    global _cert
    with _cert_lock:
        if _cert is not None:
            return _cert
        if shutil.which("openssl") is None:
            raise SetupError("the openssl command is needed to make a "
                             "test certificate")
        d = tempfile.mkdtemp(prefix="petrel-cert-")
        os.chmod(d, 0o755)
        cert = os.path.join(d, "cert.pem")
        key = os.path.join(d, "key.pem")
        r = subprocess.run(
            ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes",
             "-subj", "/CN=localhost", "-days", "2", "-keyout", key,
             "-out", cert], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT, timeout=60)
        if r.returncode != 0:
            raise SetupError("openssl req failed: %s"
                             % r.stdout.decode(errors="replace"))
        os.chmod(cert, 0o644)
        os.chmod(key, 0o600)
        if not KEEP:
            import atexit
            atexit.register(shutil.rmtree, d, True)
        _cert = (cert, key)
        return _cert


def _yaml_scalar(v):
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    v = str(v)
    if re.fullmatch(r"[A-Za-z0-9_./-]+", v) and v.lower() not in (
            "true", "false", "yes", "no", "on", "off", "null", "y", "n"):
        return v
    return json.dumps(v)


def to_yaml(d, indent=0):
    """A small YAML emitter for the config: block mappings, flow items."""
    pad = " " * indent
    out = []
    for k, v in d.items():
        k = _yaml_scalar(k)
        if isinstance(v, dict):
            if all(not isinstance(x, (dict, list)) for x in v.values()):
                out.append("%s%s: { %s }" % (pad, k, ", ".join(
                    "%s: %s" % (_yaml_scalar(a), _yaml_scalar(b))
                    for a, b in v.items())))
            else:
                out.append("%s%s:" % (pad, k))
                out.append(to_yaml(v, indent + 2))
        elif isinstance(v, list):
            if not v:
                out.append("%s%s: []" % (pad, k))
                continue
            out.append("%s%s:" % (pad, k))
            for item in v:
                if isinstance(item, dict):
                    out.append("%s  - { %s }" % (pad, ", ".join(
                        "%s: %s" % (_yaml_scalar(a), _yaml_scalar(b))
                        for a, b in item.items())))
                else:
                    out.append("%s  - %s" % (pad, _yaml_scalar(item)))
        else:
            out.append("%s%s: %s" % (pad, k, _yaml_scalar(v)))
    return "\n".join(out)


def merge(base, over):
    for k, v in over.items():
        if v is None:
            base.pop(k, None)
        elif isinstance(v, dict) and isinstance(base.get(k), dict):
            merge(base[k], v)
        else:
            base[k] = v
    return base


def _proc_info(pid):
    """(state, pgid, cmdline list) of a pid, or None."""
    try:
        with open("/proc/%d/stat" % pid, "rb") as f:
            stat = f.read().decode("latin-1")
        with open("/proc/%d/cmdline" % pid, "rb") as f:
            cmd = f.read().split(b"\0")
    except OSError:
        return None
    rest = stat[stat.rfind(")") + 2:].split()
    state, pgid = rest[0], int(rest[2])
    return state, pgid, [c.decode("latin-1") for c in cmd if c]


def sanitizer_env():
    """For SANITIZE=1 builds: memory errors are reported (and fail the
    test through the log scan); leaks at exit are not, unless the caller
    set ASAN_OPTIONS itself."""
    env = dict(os.environ)
    env.setdefault("ASAN_OPTIONS", "detect_leaks=0")
    env.setdefault("UBSAN_OPTIONS", "print_stacktrace=1")
    return env


def relayctl_without_config(args):
    """relayctl with a configuration file that does not exist: what
    --help and command-line errors must do without one."""
    return subprocess.run([os.path.join(BUILD, "relayctl"), "-c",
                           "/nonexistent/petrel.yaml"] + list(args),
                          stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, timeout=20,
                          env=sanitizer_env())


def _proc_name(pid, cmd):
    """The program name: the build/ executable it runs, else argv[0]."""
    try:
        exe = os.readlink("/proc/%d/exe" % pid)
        if os.path.dirname(exe) in (BUILD, daemon_dir()):
            return os.path.basename(exe)
    except OSError:
        pass
    for a in cmd[:2]:
        if os.path.dirname(a) in (BUILD, daemon_dir()):
            return os.path.basename(a)
    return os.path.basename(cmd[0]) if cmd else "?"


# ---- the suite under test ------------------------------------------------

class Suite:
    """One Petrel instance: config, master process, log, CLIs."""

    def __init__(self, tmp, next_hop_port, overrides=None):
        self.tmp = tmp
        self.owner, self.owner_uid, self.owner_gid = mail_owner()
        self.cert, self.key = certificate()
        self.submission_port, self.smtps_port = free_ports(2)
        self.next_hop_port = next_hop_port
        self.conf_path = os.path.join(tmp, "petrel.yaml")
        self.queue_dir = os.path.join(tmp, "queue")
        self.log_dir = os.path.join(tmp, "log")
        self.accounting_path = os.path.join(self.log_dir, "accounting.jsonl")
        self.log_path = os.path.join(tmp, "master.log")
        self.proc = None
        self.pgid = None
        self.starts = 0
        self._logf = None
        os.makedirs(self.log_dir, exist_ok=True)
        os.chmod(self.log_dir, 0o755)
        if os.geteuid() == 0:
            os.chown(self.log_dir, self.owner_uid, self.owner_gid)
        self.config = {
            "mail_owner": self.owner,
            "queue_directory": self.queue_dir,
            "daemon_directory": daemon_dir(),
            "myhostname": "petrel.test",
            "listeners": [
                {"name": "submission",
                 "address": "127.0.0.1:%d" % self.submission_port,
                 "tls": "starttls"},
                {"name": "smtps",
                 "address": "127.0.0.1:%d" % self.smtps_port,
                 "tls": "implicit"},
            ],
            "tls": {"certificate": self.cert, "private_key": self.key},
            # 127.0.0.1 is deliberately NOT trusted: no open relay.
            "trusted_networks": ["192.0.2.0/24"],
            "transport": {"*": "[127.0.0.1]:%d" % next_hop_port},
            "queue": {"min_backoff": "1s", "max_backoff": "2s",
                      "max_lifetime": "5d"},
            "log": {"destination": "stderr",
                    "accounting": self.accounting_path},
            # Most tests send from example.com without registering it;
            # test_verified.py turns the check on.
            "smtpd": {"processes": 1, "require_verified_domains": False},
            "smtp": {"processes": 2, "connect_timeout": "5s",
                     "command_timeout": "10s"},
            "bounce": {"classes": bounce_classes()},
        }
        if overrides:
            merge(self.config, overrides)
        self.write_config()

    def write_config(self):
        with open(self.conf_path, "w") as f:
            f.write("# generated by tests/integration/harness.py\n")
            f.write(to_yaml(self.config) + "\n")
        os.chmod(self.conf_path, 0o644)

    # -- process control --

    def start(self, wait=True, nofile=None):
        """Starts master (-f); nofile, when given, is the RLIMIT_NOFILE
        master and so every daemon runs with."""
        missing = missing_binaries()
        if missing:
            raise SetupError("not built: %s (run `make all`)"
                             % ", ".join("build/" + m for m in missing))
        self._logf = open(self.log_path, "ab")
        self._logf.write(("--- harness: starting master (start %d) ---\n"
                          % (self.starts + 1)).encode())
        self._logf.flush()
        self.proc = subprocess.Popen(
            [os.path.join(daemon_dir(), "master"), "-c", self.conf_path,
             "-f"],
            stdin=subprocess.DEVNULL, stdout=self._logf, stderr=self._logf,
            cwd=self.tmp, start_new_session=True, env=sanitizer_env(),
            preexec_fn=None if nofile is None else
            (lambda: resource.setrlimit(resource.RLIMIT_NOFILE,
                                        (nofile, nofile))))
        register(self.proc)
        self.pgid = self.proc.pid
        self.starts += 1
        if wait:
            self.wait_ready()
        return self

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def wait_ready(self, timeout=20):
        """Until the greeting comes on each listener and qmgr's socket is
        there (master binds, smtpd answers)."""
        deadline = time.time() + timeout
        last = None
        for port, implicit in ((self.submission_port, False),
                               (self.smtps_port, True)):
            while True:
                if not self.alive():
                    raise SetupError(
                        "master exited with status %s during start-up\n%s"
                        % (self.proc.returncode, self.log_tail()))
                try:
                    greet = read_greeting(port, implicit, timeout=5)
                    if greet.startswith("220"):
                        break
                    last = "greeting %r" % greet
                except (OSError, ssl.SSLError) as e:
                    last = repr(e)
                if time.time() > deadline:
                    raise SetupError(
                        "no 220 greeting on 127.0.0.1:%d within %ds (%s)\n%s"
                        % (port, timeout, last, self.log_tail()))
                time.sleep(0.1)
        # qmgr's socket; only waited for, a different layout is not an error.
        sock = os.path.join(self.queue_dir, "private", "qmgr")
        deadline = min(deadline, time.time() + 5)
        while not os.path.exists(sock) and time.time() < deadline:
            time.sleep(0.1)

    def wait_daemons_ready(self, timeout=90):
        """Until every daemon master runs has finished its start-up
        (relayctl status -j: each is "ready"). For tests that time what
        the daemons do from the first message on: under the sanitizers a
        daemon's start-up takes seconds, and mail handed to an smtp still
        starting waits, then goes out in a burst."""
        deadline = time.time() + timeout
        last = None
        while True:
            r = self.relayctl("status", "-j", check=False)
            try:
                daemons = json.loads(r.stdout.decode())["daemons"]
                last = [(d["name"], d["pid"], d["ready"]) for d in daemons]
                if daemons and all(d["pid"] != 0 and d["ready"]
                                   for d in daemons):
                    return
            except (ValueError, KeyError, TypeError) as e:
                last = "relayctl status -j: %r: %s" % (e, r.stdout[:200])
            if time.time() > deadline:
                raise SetupError("daemons not ready within %ds: %s\n%s"
                                 % (timeout, last, self.log_tail()))
            time.sleep(0.2)

    def pids(self):
        """Live (non-zombie) Petrel processes of this instance: master's
        process group, plus anything naming our config on its command
        line (in case a daemon left the group)."""
        out = {}
        me = os.getpid()
        for d in os.listdir("/proc"):
            if not d.isdigit():
                continue
            pid = int(d)
            if pid == me:
                continue
            info = _proc_info(pid)
            if info is None:
                continue
            state, pgid, cmd = info
            if state in ("Z", "X"):
                continue
            if (self.pgid is not None and pgid == self.pgid) or \
                    self.conf_path in cmd:
                out[pid] = _proc_name(pid, cmd)
        return out

    def pids_of(self, name):
        return sorted(p for p, n in self.pids().items() if n == name)

    def kill9(self):
        """SIGKILL master's process group and every stray by pid."""
        if self.pgid is not None:
            try:
                os.killpg(self.pgid, signal.SIGKILL)
            except OSError:
                pass
        for pid in self.pids():
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
        if self.proc is not None:
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                pass
        deadline = time.time() + 10
        while self.pids() and time.time() < deadline:
            time.sleep(0.05)
        self._close_log()

    def terminate(self, timeout=15):
        """SIGTERM to master; returns its exit status (None if it hung)."""
        if not self.alive():
            return self.proc.returncode if self.proc else None
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            return None

    def stop(self):
        """SIGTERM, then SIGKILL whatever is left (group and strays)."""
        if self.proc is None:
            return
        self.terminate()
        deadline = time.time() + 5
        while self.pids() and time.time() < deadline:
            time.sleep(0.05)
        if self.pids() or self.alive():
            self.kill9()
        self._close_log()

    def _close_log(self):
        if self._logf is not None:
            self._logf.close()
            self._logf = None

    # -- the log --

    def log(self):
        try:
            with open(self.log_path, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except OSError:
            return ""

    def log_tail(self, n=60):
        lines = self.log().splitlines()
        return "---- master log (last %d of %d lines) ----\n%s\n----" % (
            min(n, len(lines)), len(lines), "\n".join(lines[-n:]))

    def bad_log_lines(self):
        return [l for l in self.log().splitlines() if BAD_LOG_RE.search(l)]

    def deliveries(self, qid=None, rcpt=None, status=None):
        """Parsed delivery log lines (dicts), optionally filtered."""
        out = []
        for line in self.log().splitlines():
            m = DELIVERY_RE.search(line)
            if m is None:
                continue
            d = m.groupdict()
            d["line"] = line
            if qid is not None and d["qid"] != qid:
                continue
            if rcpt is not None and d["rcpt"].lower() != rcpt.lower():
                continue
            if status is not None and d["status"] != status:
                continue
            out.append(d)
        return out

    def wait_delivery(self, qid, rcpt, status, timeout=30):
        deadline = time.time() + timeout
        while True:
            d = self.deliveries(qid, rcpt, status)
            if d:
                return d
            if time.time() > deadline:
                raise AssertionError(
                    "no log line '%s: to=<%s>, ... status=%s' within %ds\n%s"
                    % (qid, rcpt, status, timeout, self.log_tail()))
            time.sleep(0.1)

    def accounting(self):
        """Accounting log objects (lenient: bad lines are skipped)."""
        out = []
        try:
            with open(self.accounting_path, "rb") as f:
                data = f.read().decode("utf-8", "replace")
        except OSError:
            return out
        for line in data.splitlines():
            line = line.strip()
            if not line:
                continue
            try:
                o = json.loads(line)
            except ValueError:
                continue
            if isinstance(o, dict):
                out.append(o)
        return out

    def wait_accounting(self, pred, timeout=15, what="event"):
        deadline = time.time() + timeout
        while True:
            ev = [o for o in self.accounting() if pred(o)]
            if ev:
                return ev
            if time.time() > deadline:
                try:
                    with open(self.accounting_path, "rb") as f:
                        content = f.read()[-3000:].decode("utf-8", "replace")
                except OSError as e:
                    content = "(unreadable: %s)" % e
                raise AssertionError(
                    "no accounting %s within %ds; %s holds:\n%s\n%s"
                    % (what, timeout, self.accounting_path, content,
                       self.log_tail(30)))
            time.sleep(0.1)

    # -- the CLIs --

    def run_cli(self, prog, *args, input=None, timeout=CMD_TIMEOUT):
        cmd = [os.path.join(BUILD, prog), "-c", self.conf_path] + list(args)
        try:
            r = subprocess.run(
                cmd, input=input, stdout=subprocess.PIPE,
                stderr=subprocess.PIPE, timeout=timeout, cwd=self.tmp,
                env=sanitizer_env())
        except subprocess.TimeoutExpired:
            raise AssertionError("%s timed out after %ds"
                                 % (" ".join(cmd), timeout))
        except OSError as e:
            raise AssertionError("cannot run %s: %s" % (cmd[0], e))
        err = r.stderr.decode("utf-8", "replace")
        if CLI_BAD_RE.search(err) or r.returncode < 0:
            raise AssertionError("%s: exit %d, stderr:\n%s"
                                 % (" ".join(cmd), r.returncode, err))
        return r

    def relayctl(self, *args, input=None, check=True):
        r = self.run_cli("relayctl", *args, input=input)
        if check and r.returncode != 0:
            raise AssertionError(
                "relayctl %s: exit %d\nstdout: %s\nstderr: %s"
                % (" ".join(args), r.returncode,
                   r.stdout.decode(errors="replace"),
                   r.stderr.decode(errors="replace")))
        return r

    def relayq(self, *args, check=True):
        r = self.run_cli("relayq", *args)
        if check and r.returncode != 0:
            raise AssertionError(
                "relayq %s: exit %d\nstdout: %s\nstderr: %s"
                % (" ".join(args), r.returncode,
                   r.stdout.decode(errors="replace"),
                   r.stderr.decode(errors="replace")))
        return r

    def relayq_json(self):
        """relayq -j: one JSON object per line -> list."""
        r = self.relayq("-j")
        out = []
        for line in r.stdout.decode("utf-8", "replace").splitlines():
            if line.strip():
                try:
                    out.append(json.loads(line))
                except ValueError as e:
                    raise AssertionError("relayq -j printed a line that is "
                                         "not JSON (%s): %r" % (e, line))
        return out

    def wait_queued(self, qid, pred=lambda m: True, timeout=10):
        """relayq -j's object for qid once pred holds for it, polling.

        smtp logs a result before qmgr records it (qmgr gathers results
        for a few milliseconds), so the queue view can lag the log.
        """
        deadline = time.time() + timeout
        last = None
        while True:
            for m in self.relayq_json():
                if m.get("queue_id") == qid:
                    last = m
                    if pred(m):
                        return m
            if time.time() > deadline:
                raise AssertionError("relayq -j: %s not as expected within "
                                     "%ds; last seen %r" % (qid, timeout,
                                                            last))
            time.sleep(0.1)

    def add_user(self, name, password):
        self.relayctl("user", "add", name, "--password-stdin",
                      input=(password + "\n").encode())


def read_greeting(port, implicit=False, timeout=5):
    """Connects, reads the (first line of the) greeting, QUITs."""
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    try:
        if implicit:
            s = unverified_ctx().wrap_socket(s)
        f = s.makefile("rb")
        line = f.readline(4096).decode("latin-1")
        try:
            s.sendall(b"QUIT\r\n")
            f.readline(4096)
        except OSError:
            pass
        return line
    finally:
        s.close()


# ---- SMTP client helpers --------------------------------------------------

def auth_plain_arg(user, password):
    return base64.b64encode(("\0%s\0%s" % (user, password)).encode()).decode()


def connect(suite, implicit=False, starttls=True, timeout=SMTP_TIMEOUT):
    """An smtplib session on the submission (STARTTLS) or smtps port."""
    if implicit:
        c = smtplib.SMTP_SSL("127.0.0.1", suite.smtps_port, timeout=timeout,
                             context=unverified_ctx())
        c.ehlo("client.test")
        return c
    c = smtplib.SMTP("127.0.0.1", suite.submission_port, timeout=timeout)
    c.ehlo("client.test")
    if starttls:
        code, resp = c.starttls(context=unverified_ctx())
        c.ehlo("client.test")
    return c


def login_plain(c, user, password):
    """AUTH PLAIN explicitly; raises smtplib.SMTPAuthenticationError."""
    c.user, c.password = user, password
    return c.auth("PLAIN", c.auth_plain, initial_response_ok=True)


def send(c, sender, rcpts, msg, mail_options=()):
    """MAIL, RCPT..., DATA; returns the queue id from the 250 reply."""
    code, resp = c.mail(sender, list(mail_options))
    if code != 250:
        raise AssertionError("MAIL FROM:<%s> got %d %s" % (sender, code,
                                                           resp))
    for r in rcpts:
        code, resp = c.rcpt(r)
        if code not in (250, 251):
            raise AssertionError("RCPT TO:<%s> got %d %s" % (r, code, resp))
    code, resp = c.data(msg)
    resp = resp.decode("utf-8", "replace")
    if code != 250:
        raise AssertionError("DATA got %d %s" % (code, resp))
    m = QID_RE.search(resp)
    if m is None:
        raise AssertionError("DATA reply has no 'queued as QUEUEID': %d %s"
                             % (code, resp))
    return m.group(1)


def make_message(subject, body=b"Hello.\r\n", sender="app@example.com",
                 to="rcpt@example.org", extra_headers=(), message_id=True,
                 date=True):
    h = ["From: <%s>" % sender, "To: <%s>" % to, "Subject: %s" % subject]
    if date:
        h.append("Date: Mon, 1 Jan 2024 00:00:00 +0000")
    if message_id:
        h.append("Message-ID: <%s@client.test>" % subject.replace(" ", "."))
    h.extend(extra_headers)
    return ("\r\n".join(h) + "\r\n\r\n").encode() + body


def unique(tag="t"):
    return "%s-%d-%s" % (tag, os.getpid(), base64.b32encode(
        os.urandom(5)).decode().lower())


def queue_file(suite, qid, timeout=10):
    """The envelope lines of qid's queue file (msg/<h>/<qid>)."""
    top = os.path.join(suite.queue_dir, "msg")
    deadline = time.time() + timeout
    while True:
        for d, _, files in os.walk(top):
            if qid in files:
                with open(os.path.join(d, qid), "rb") as f:
                    head = f.read().split(b"\n\n", 1)[0]
                return head.decode("latin-1").split("\n")
        if time.time() > deadline:
            raise AssertionError("no queue file for %s under %s"
                                 % (qid, top))
        time.sleep(0.1)


# ---- the test case base -----------------------------------------------------

class PetrelCase(unittest.TestCase):
    """Each test gets a fresh Petrel and capture server; see module doc."""

    overrides = None            # config overrides for the class
    capture_tls = False         # next hop offers STARTTLS
    user = "app1"
    password = "correct horse battery staple"

    def setUp(self):
        try:
            self.tmp = tempfile.mkdtemp(prefix="petrel-it-")
            os.chmod(self.tmp, 0o755)
            self.addCleanup(self._rm_tmp)
            cert = certificate() if self.capture_tls else (None, None)
            self.capture = CaptureSMTPD(tls_cert=cert[0], tls_key=cert[1])
            self.capture.start()
            self.addCleanup(self.capture.stop)
            self.suite = Suite(self.tmp, self.capture.port, self.overrides)
            self.addCleanup(self.suite.stop)
            self.suite.start()
        except SetupError as e:
            self.fail("setup: %s" % e)
        self._user_added = False

    def tearDown(self):
        self.suite.stop()
        bad = self.suite.bad_log_lines()
        if bad:
            self.fail("master's log has %d bad line(s):\n%s\n%s"
                      % (len(bad), "\n".join(bad[:20]),
                         self.suite.log_tail(40)))

    def _rm_tmp(self):
        if KEEP:
            sys.stderr.write("\n[kept %s] " % self.tmp)
            return
        shutil.rmtree(self.tmp, ignore_errors=True)

    # -- helpers for tests --

    def restart_shaped(self, doc):
        """Restarts Petrel with doc (a dict) as its shaping file, and with
        whatever else the test changed in self.suite.config; returns once
        its daemons are ready (timing starts with no smtp still
        starting)."""
        path = os.path.join(self.tmp, "shaping.yaml")
        with open(path, "w") as f:
            f.write(to_yaml(doc))
        os.chmod(path, 0o644)
        self.suite.stop()
        self.suite.config.setdefault("shaping", {})["file"] = path
        self.suite.write_config()
        self.suite.start()
        self.suite.wait_daemons_ready()
        return path

    def ensure_user(self):
        if not self._user_added:
            self.suite.add_user(self.user, self.password)
            self._user_added = True
        return self.user, self.password

    def submit(self, msg, sender="app@example.com",
               rcpts=("rcpt@example.org",), implicit=False,
               mail_options=()):
        """Authenticated submission over TLS; returns the queue id."""
        user, pw = self.ensure_user()
        c = connect(self.suite, implicit=implicit)
        try:
            login_plain(c, user, pw)
            return send(c, sender, rcpts, msg, mail_options)
        finally:
            try:
                c.quit()
            except (smtplib.SMTPException, OSError):
                pass

    def wait_arrival(self, token, n=1, timeout=30):
        """Waits for n captured messages whose data contains token."""
        tok = token.encode() if isinstance(token, str) else token
        got = self.capture.wait_for_messages(
            n, timeout, match=lambda t: tok in t.data)
        if len(got) < n:
            self.fail("%d of %d message(s) with %r reached the next hop "
                      "within %ds (capture saw %d transaction(s), rcpt log "
                      "%r)\n%s" % (len(got), n, token, timeout,
                                   len(self.capture.all_transactions()),
                                   self.capture.rcpt_log[-10:],
                                   self.suite.log_tail()))
        return got

    def assertReply(self, got, code, enhanced=None, what=""):
        """got is (code, text-bytes-or-str) as smtplib returns."""
        c, text = got
        if isinstance(text, bytes):
            text = text.decode("utf-8", "replace")
        ok = (c == code if isinstance(code, int) else c in code)
        if ok and enhanced is not None:
            ok = text.startswith(enhanced)
        if not ok:
            self.fail("%s: expected %s%s, got %d %s\n%s" % (
                what or "reply", code,
                " " + enhanced if enhanced else "", c, text,
                self.suite.log_tail(20)))
