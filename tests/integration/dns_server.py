"""dns_server.py - a real DNS server for the tests: dnsmasq on 127.0.0.1.

DnsServer(zone) serves a small test zone on a free port, authoritatively
for the given local domains (names not in the zone get NXDOMAIN, never a
forward: --no-resolv, no servers). zone is a dict:
    {"txt": [(name, text), ...], "mx": [(domain, host, pref), ...],
     "a": [(name, ip), ...], "ptr": [(ip4, name), ...],
     "local": ["example.test", ...]}
TXT texts longer than 255 bytes are split into several strings, as a zone
file would. start() waits until the server answers; stop() ends it by PID.
"""

import os
import shutil
import signal
import socket
import struct
import subprocess
import time

from harness import free_port, register

DNSMASQ = shutil.which("dnsmasq") or (
    "/usr/sbin/dnsmasq" if os.path.exists("/usr/sbin/dnsmasq") else None)


def available():
    """None if dnsmasq can be used, else the reason."""
    if DNSMASQ is None:
        return "dnsmasq not installed (Debian package dnsmasq-base)"
    return None


def _split(text):
    b = text.encode()
    parts = [b[i:i + 255].decode() for i in range(0, len(b), 255)]
    return parts or [""]


def query(port, name, qtype=16, timeout=2):
    """A minimal DNS query over UDP; returns the reply's rcode."""
    qid = os.getpid() & 0xffff
    q = struct.pack(">HHHHHH", qid, 0x0100, 1, 0, 0, 0)
    for label in name.rstrip(".").split("."):
        q += bytes([len(label)]) + label.encode()
    q += b"\0" + struct.pack(">HH", qtype, 1)
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        s.settimeout(timeout)
        s.sendto(q, ("127.0.0.1", port))
        data, _ = s.recvfrom(4096)
        return data[3] & 0x0f
    finally:
        s.close()


class DnsServer:

    def __init__(self, zone):
        self.zone = zone
        self.port = None
        self.proc = None

    def args(self):
        a = [DNSMASQ, "--no-daemon", "--port=%d" % self.port,
             "--listen-address=127.0.0.1", "--bind-interfaces",
             "--no-resolv", "--no-hosts", "--conf-file=/dev/null",
             "--pid-file=", "--no-negcache"]
        if os.geteuid() == 0:
            a.append("--user=nobody")
        for d in self.zone.get("local", []):
            a.append("--local=/%s/" % d)
        for name, text in self.zone.get("txt", []):
            # On the command line dnsmasq takes no quotes: a comma
            # separates the strings, so a text cannot contain one.
            if "," in text:
                raise ValueError("TXT text with a comma: %r" % text)
            a.append("--txt-record=%s,%s" % (name, ",".join(_split(text))))
        for dom, host, pref in self.zone.get("mx", []):
            a.append("--mx-host=%s,%s,%d" % (dom, host, pref))
        for name, ip in self.zone.get("a", []):
            a.append("--host-record=%s,%s" % (name, ip))
        for ip, name in self.zone.get("ptr", []):
            rev = ".".join(reversed(ip.split("."))) + ".in-addr.arpa"
            a.append("--ptr-record=%s,%s" % (rev, name))
        return a

    def start(self, timeout=10):
        last = None
        for _ in range(3):
            self.port = free_port()
            self.proc = subprocess.Popen(
                self.args(), stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                start_new_session=True)
            register(self.proc)
            deadline = time.time() + timeout
            while time.time() < deadline:
                if self.proc.poll() is not None:
                    break
                try:
                    query(self.port, "probe.invalid", timeout=0.5)
                    return self
                except OSError:
                    time.sleep(0.1)
            last = self.proc.stderr.read().decode(errors="replace") \
                if self.proc.poll() is not None else "no answer"
            self.stop()
        raise RuntimeError("dnsmasq did not start: %s" % last)

    def stop(self):
        p, self.proc = self.proc, None
        if p is None:
            return
        if p.poll() is None:
            try:
                os.kill(p.pid, signal.SIGTERM)
                p.wait(timeout=5)
            except (OSError, subprocess.TimeoutExpired):
                try:
                    os.kill(p.pid, signal.SIGKILL)
                except OSError:
                    pass
                p.wait()
        if p.stderr is not None:
            p.stderr.close()
