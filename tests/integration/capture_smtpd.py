#!/usr/bin/env python3
"""capture_smtpd.py - a capturing ESMTP server for Petrel's integration tests.

Used as the next hop of the relay under test. It listens on 127.0.0.1 (an
ephemeral port by default), speaks enough ESMTP for a relay client (EHLO with
PIPELINING, 8BITMIME, SIZE, ENHANCEDSTATUSCODES, DSN when dsn=True,
SMTPUTF8 when smtputf8=True and,
when given a certificate, STARTTLS), and records every transaction: envelope
sender and its MAIL parameters, recipients and their RCPT parameters, and the
raw DATA bytes, dot-unstuffed, exactly as the client sent them.

Replies can be scripted per MAIL, per RCPT and per end-of-data; besides an
SMTP reply, a rule may say "DROP" (hang up without replying) or "STALL"
(never reply):

    cap = CaptureSMTPD()
    cap.start()
    cap.add_rcpt_rule("550 5.1.1 no such user", address="bad@example.org")
    cap.add_data_rule("451 4.3.0 try later", times=1)   # first DATA only
    ...
    cap.wait_for_messages(1, timeout=20)
    cap.stop()      # the next hop is "down" (connections refused)
    cap.start()     # the same port again (SO_REUSEADDR)

Standalone: python3 capture_smtpd.py --port 2526 [--tls-cert C --tls-key K]
    [--rcpt-reply ADDR=REPLY] [--data-reply REPLY[xN]] [--outdir DIR]
prints one line per transaction and, with --outdir, writes each message to a
file there. Python 3 standard library only.
"""

import argparse
import os
import re
import socket
import ssl
import sys
import threading
import time

MAX_LINE = 65536
DEFAULT_SIZE = 52428800


class Rule:
    """A scripted reply: applies while times is None or > 0."""

    def __init__(self, reply, address=None, times=None, peer=None):
        if reply not in ("DROP", "STALL") and \
                not re.match(r"^[2345]\d\d[ -]", reply + " "):
            raise ValueError("reply must start with a 3-digit code: %r"
                             % reply)
        self.reply = reply
        self.address = address.lower() if address else None
        self.times = times
        self.peer = peer            # the client's address, or any
        self.used = 0

    def take(self, address=None, peer=None):
        if self.times is not None and self.times <= 0:
            return None
        if self.peer is not None and peer != self.peer:
            return None
        if self.address is not None and (address or "").lower() != \
                self.address:
            return None
        if self.times is not None:
            self.times -= 1
        self.used += 1
        return self.reply


class Transaction:
    """One completed envelope + DATA, whatever the end-of-data reply was."""

    def __init__(self, session, mail_from, mail_params, rcpt_tos, data,
                 reply, tls, helo, peer, rcpt_params=()):
        self.session = session
        self.mail_from = mail_from
        self.mail_params = mail_params
        self.rcpt_tos = list(rcpt_tos)
        # The parameters after each RCPT TO:<...>, as sent ("" if none).
        self.rcpt_params = list(rcpt_params)
        self.data = data
        self.reply = reply
        self.accepted = reply.startswith("2")
        self.tls = tls
        self.helo = helo
        self.peer = peer
        self.time = time.time()

    @property
    def headers(self):
        """Raw header block (bytes, without the blank line)."""
        i = self.data.find(b"\r\n\r\n")
        return self.data if i < 0 else self.data[:i + 2]

    @property
    def body(self):
        """Raw body bytes after the first empty line."""
        i = self.data.find(b"\r\n\r\n")
        return b"" if i < 0 else self.data[i + 4:]

    def header_lines(self):
        """Unfolded header lines as str (latin-1), in order."""
        out = []
        for line in self.headers.decode("latin-1").split("\r\n"):
            if not line:
                continue
            if line[0] in " \t" and out:
                out[-1] += "\r\n" + line
            else:
                out.append(line)
        return out

    def header(self, name):
        """Values of every header called name (case-insensitive)."""
        name = name.lower()
        vals = []
        for h in self.header_lines():
            k, _, v = h.partition(":")
            if k.strip().lower() == name:
                vals.append(v.strip())
        return vals

    def __repr__(self):
        return "<Transaction from=%r to=%r %d bytes reply=%r tls=%r>" % (
            self.mail_from, self.rcpt_tos, len(self.data), self.reply,
            self.tls)


class CaptureSMTPD:
    """Threaded capturing SMTP server; see the module docstring."""

    def __init__(self, host="127.0.0.1", port=0, tls_cert=None,
                 tls_key=None, hostname="capture.test",
                 size_limit=DEFAULT_SIZE, timeout=60, dsn=False,
                 smtputf8=False):
        self.host = host
        self.dsn = dsn              # offer DSN (RFC 3461) in EHLO
        self.smtputf8 = smtputf8    # offer SMTPUTF8 (RFC 6531) in EHLO
        self.port = port
        self.hostname = hostname
        self.size_limit = size_limit
        self.timeout = timeout
        self.tls_ctx = None
        if tls_cert:
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.load_cert_chain(tls_cert, tls_key)
            self.tls_ctx = ctx
        self._lock = threading.Lock()
        self._cond = threading.Condition(self._lock)
        self._listener = None
        self._thread = None
        self._conns = set()
        self._conn_threads = []
        self._running = False
        self._rcpt_rules = []
        self._data_rules = []
        # Seconds to hold the reply to the end of DATA: a slow next hop,
        # so that a delivery is under way when a test needs one to be.
        self.data_delay = 0
        self._mail_rules = []
        self._session_seq = 0
        # Records (guarded by _lock).
        self.transactions = []      # every DATA that completed
        self.rcpt_log = []          # (address, reply) per RCPT command
        self.mail_log = []          # (address, reply) per MAIL command
        self.sessions = 0           # connections accepted
        self.commands = []          # (session, command line) for debugging
        self.errors = []            # exceptions in session threads
        # A greeting other than 220 (e.g. "421 4.3.2 busy") is sent and
        # the connection closed, as a server refusing sessions does;
        # greeting_times, when set, limits it to the next N sessions.
        self.greeting = None
        self.greeting_times = None
        self.greeting_peer = None   # only for sessions from this address
        # At most this many sessions at once (None: any number); a
        # session beyond them is greeted with 421 and closed, as a
        # provider limiting a sender's connections does. peak is the most
        # sessions seen at once, refused the number turned away.
        self.max_sessions = None
        self.peak = 0
        # The most sessions at once from each client address (a relay's
        # source address), as a provider counting per sending IP sees.
        self.peak_by_peer = {}
        self._conn_peer = {}
        # When each session was accepted (time.time()), in order.
        self.session_times = []
        self.refused = 0

    # ---- configuration -------------------------------------------------

    def add_rcpt_rule(self, reply, address=None, times=None):
        """RCPT for address (any when None) gets reply, times (or always)."""
        with self._lock:
            r = Rule(reply, address, times)
            self._rcpt_rules.append(r)
            return r

    def add_data_rule(self, reply, times=None):
        """The next times end-of-data replies are reply (None: always)."""
        with self._lock:
            r = Rule(reply, None, times)
            self._data_rules.append(r)
            return r

    def add_mail_rule(self, reply, times=None, peer=None):
        """MAIL gets reply, times (or always); only in sessions from
        address peer when it is given."""
        with self._lock:
            r = Rule(reply, None, times, peer)
            self._mail_rules.append(r)
            return r

    def clear_rules(self):
        with self._lock:
            self._rcpt_rules = []
            self._data_rules = []
            self._mail_rules = []

    @staticmethod
    def _apply(rules, address=None, peer=None):
        for r in rules:
            reply = r.take(address, peer)
            if reply is not None:
                return reply
        return None

    # ---- lifecycle -----------------------------------------------------

    def start(self):
        """Listens (again) on self.port (0 picks a free one)."""
        if self._running:
            return self
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        deadline = time.time() + 10
        while True:
            try:
                s.bind((self.host, self.port))
                break
            except OSError:
                if self.port == 0 or time.time() > deadline:
                    s.close()
                    raise
                time.sleep(0.1)
        s.listen(64)
        s.settimeout(0.2)
        self.port = s.getsockname()[1]
        self._listener = s
        self._running = True
        self._thread = threading.Thread(target=self._accept_loop,
                                        name="capture-accept", daemon=True)
        self._thread.start()
        return self

    def stop(self):
        """Closes the listener and every open session (next hop down)."""
        if not self._running:
            return
        self._running = False
        if self._thread is not None:
            self._thread.join(5)
        try:
            self._listener.close()
        except OSError:
            pass
        self._listener = None
        with self._lock:
            conns = list(self._conns)
        for c in conns:
            try:
                c.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            try:
                c.close()
            except OSError:
                pass
        for t in self._conn_threads:
            t.join(5)
        self._conn_threads = []

    restart = start

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    @property
    def running(self):
        return self._running

    # ---- queries -------------------------------------------------------

    def messages(self):
        """Accepted transactions (end-of-data got 2xx), a copy."""
        with self._lock:
            return [t for t in self.transactions if t.accepted]

    def all_transactions(self):
        with self._lock:
            return list(self.transactions)

    def rcpt_attempts(self, address):
        with self._lock:
            return [r for a, r in self.rcpt_log
                    if a.lower() == address.lower()]

    def wait_until(self, pred, timeout=20.0):
        """Waits until pred(self) is true (called under no lock)."""
        deadline = time.time() + timeout
        while True:
            v = pred(self)
            if v:
                return v
            left = deadline - time.time()
            if left <= 0:
                return v
            with self._cond:
                self._cond.wait(min(left, 0.2))

    def wait_for_messages(self, n=1, timeout=20.0, match=None):
        """Waits for n accepted messages (matching match(t) if given)."""
        def pred(_):
            m = [t for t in self.messages() if match is None or match(t)]
            return m if len(m) >= n else None
        return self.wait_until(pred, timeout) or \
            [t for t in self.messages() if match is None or match(t)]

    # ---- server --------------------------------------------------------

    def _accept_loop(self):
        while self._running:
            try:
                conn, peer = self._listener.accept()
            except socket.timeout:
                continue
            except OSError:
                break
            if not self._running:
                conn.close()
                break
            conn.settimeout(self.timeout)
            # Each reply is its own send: without this, Nagle holds a
            # reply to a pipelined command until the client's delayed ACK
            # (40 ms on loopback), a stall no real MTA has.
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            with self._lock:
                self._conns.add(conn)
                self._conn_peer[conn] = peer[0]
                self._session_seq += 1
                self.sessions += 1
                self.session_times.append(time.time())
                seq = self._session_seq
                self.peak = max(self.peak, len(self._conns))
                mine = sum(1 for c in self._conns
                           if self._conn_peer.get(c) == peer[0])
                self.peak_by_peer[peer[0]] = max(
                    self.peak_by_peer.get(peer[0], 0), mine)
                over = self.max_sessions is not None and \
                    len(self._conns) > self.max_sessions
                if over:
                    self.refused += 1
            if over:
                try:
                    conn.sendall(b"421 4.7.0 too many connections from "
                                 b"your address\r\n")
                except OSError:
                    pass
                with self._lock:
                    self._conns.discard(conn)
                    self._conn_peer.pop(conn, None)
                conn.close()
                continue
            t = threading.Thread(target=self._session, args=(conn, peer, seq),
                                 name="capture-%d" % seq, daemon=True)
            self._conn_threads = [x for x in self._conn_threads
                                  if x.is_alive()]
            self._conn_threads.append(t)
            t.start()

    def _session(self, conn, peer, seq):
        sess = Session(self, conn, peer, seq)
        try:
            sess.run()
        except (OSError, ssl.SSLError, ConnectionError):
            pass
        except Exception as e:     # recorded for the tests to see
            with self._lock:
                self.errors.append(repr(e))
        finally:
            with self._lock:
                self._conns.discard(conn)
                self._conns.discard(sess.conn)
                self._conn_peer.pop(conn, None)
                self._conn_peer.pop(sess.conn, None)
                self._cond.notify_all()
            for c in (sess.conn, conn):
                try:
                    c.close()
                except OSError:
                    pass

    def _record(self, kind, item):
        with self._cond:
            getattr(self, kind).append(item)
            self._cond.notify_all()


ADDR_RE = re.compile(r"^\s*<([^<>]*)>\s*(.*)$")


class Session:
    def __init__(self, server, conn, peer, seq):
        self.srv = server
        self.conn = conn
        self.raw_conn = conn        # conn may become its TLS wrapper
        self.peer = peer
        self.seq = seq
        self.rfile = conn.makefile("rb")
        self.tls = None
        self.helo = None
        self.reset()

    def reset(self):
        self.mail_from = None
        self.mail_params = ""
        self.rcpts = []
        self.rcpt_params = []

    def reply(self, text):
        if text == "DROP":          # hang up without a reply
            raise ConnectionError("scripted drop")
        if text == "STALL":         # never answer (until stopped or EOF)
            while self.srv.running:
                try:
                    self.conn.settimeout(0.2)
                    if not self.conn.recv(4096):
                        break
                except socket.timeout:
                    continue
            raise ConnectionError("scripted stall")
        self.conn.sendall(text.encode("utf-8") + b"\r\n")

    def readline(self):
        line = self.rfile.readline(MAX_LINE)
        if not line:
            raise ConnectionError("eof")
        return line

    def run(self):
        with self.srv._lock:
            greeting = self.srv.greeting
            if self.srv.greeting_peer is not None and (
                    not self.peer or self.peer[0] != self.srv.greeting_peer):
                greeting = None
            if greeting is not None and self.srv.greeting_times is not None:
                self.srv.greeting_times -= 1
                if self.srv.greeting_times <= 0:
                    self.srv.greeting = self.srv.greeting_times = None
        if greeting is not None and not greeting.startswith("2"):
            self.reply(greeting)
            return
        self.reply("220 %s ESMTP capture" % self.srv.hostname)
        while True:
            raw = self.readline()
            if not raw.endswith(b"\n"):
                # Over-long: drain to end of line, complain.
                while not raw.endswith(b"\n"):
                    raw = self.readline()
                self.reply("500 5.5.2 line too long")
                continue
            line = raw.rstrip(b"\r\n").decode("utf-8", "replace")
            self.srv._record("commands", (self.seq, line))
            verb, _, arg = line.partition(" ")
            verb = verb.upper()
            h = getattr(self, "cmd_" + verb, None)
            if h is None:
                self.reply("500 5.5.1 command unrecognized")
                continue
            if h(arg) is False:
                return

    def cmd_EHLO(self, arg):
        self.helo = arg
        self.reset()
        ext = ["PIPELINING", "SIZE %d" % self.srv.size_limit, "8BITMIME",
               "ENHANCEDSTATUSCODES"]
        if self.srv.dsn:
            ext.append("DSN")
        if self.srv.smtputf8:
            ext.append("SMTPUTF8")
        if self.srv.tls_ctx is not None and self.tls is None:
            ext.append("STARTTLS")
        lines = [self.srv.hostname] + ext
        for i, l in enumerate(lines):
            sep = " " if i == len(lines) - 1 else "-"
            self.reply("250" + sep + l)

    def cmd_HELO(self, arg):
        self.helo = arg
        self.reset()
        self.reply("250 %s" % self.srv.hostname)

    def cmd_STARTTLS(self, arg):
        if self.srv.tls_ctx is None or self.tls is not None:
            self.reply("502 5.5.1 not available")
            return
        self.reply("220 2.0.0 ready to start TLS")
        self.conn = self.srv.tls_ctx.wrap_socket(self.conn, server_side=True)
        with self.srv._lock:
            self.srv._conns.add(self.conn)
            if self.peer:
                self.srv._conn_peer[self.conn] = self.peer[0]
        self.rfile = self.conn.makefile("rb")
        self.tls = self.conn.version()
        self.helo = None
        self.reset()

    def cmd_NOOP(self, arg):
        self.reply("250 2.0.0 ok")

    def cmd_RSET(self, arg):
        self.reset()
        self.reply("250 2.0.0 ok")

    def cmd_QUIT(self, arg):
        # No longer counted as open (peak, max_sessions) once QUIT is
        # taken: the client waits for the reply before it connects again,
        # and the new session must not find this one still counted while
        # this thread has yet to end.
        with self.srv._lock:
            self.srv._conns.discard(self.raw_conn)
        self.reply("221 2.0.0 bye")
        return False

    def cmd_MAIL(self, arg):
        if self.mail_from is not None:
            self.reply("503 5.5.1 nested MAIL")
            return
        if not arg.upper().startswith("FROM:"):
            self.reply("501 5.5.4 syntax: MAIL FROM:<address>")
            return
        m = ADDR_RE.match(arg[5:])
        if m is None:
            self.reply("501 5.1.7 bad sender address syntax")
            return
        addr, params = m.group(1), m.group(2)
        with self.srv._lock:
            r = self.srv._apply(self.srv._mail_rules,
                                peer=self.peer[0] if self.peer else None)
        self.srv._record("mail_log", (addr, r or "250"))
        if r is not None:
            self.reply(r)
            return
        self.mail_from = addr
        self.mail_params = params
        self.reply("250 2.1.0 ok")

    def cmd_RCPT(self, arg):
        if self.mail_from is None:
            self.reply("503 5.5.1 need MAIL first")
            return
        if not arg.upper().startswith("TO:"):
            self.reply("501 5.5.4 syntax: RCPT TO:<address>")
            return
        m = ADDR_RE.match(arg[3:])
        if m is None or not m.group(1):
            self.reply("501 5.1.3 bad recipient address syntax")
            return
        addr = m.group(1)
        with self.srv._lock:
            r = self.srv._apply(self.srv._rcpt_rules, addr)
        self.srv._record("rcpt_log", (addr, r or "250 2.1.5 ok"))
        if r is not None:
            self.reply(r)
            return
        self.rcpts.append(addr)
        self.rcpt_params.append(m.group(2))
        self.reply("250 2.1.5 ok")

    def cmd_DATA(self, arg):
        if self.mail_from is None or not self.rcpts:
            self.reply("503 5.5.1 need RCPT first")
            return
        self.reply("354 end data with <CR><LF>.<CR><LF>")
        chunks = []
        size = 0
        while True:
            line = self.rfile.readline(MAX_LINE)
            if not line:
                raise ConnectionError("eof in DATA")
            if line in (b".\r\n", b".\n"):
                break
            if line.startswith(b"."):
                line = line[1:]
            size += len(line)
            if size <= self.srv.size_limit:
                chunks.append(line)
        data = b"".join(chunks)
        if size > self.srv.size_limit:
            r = "552 5.3.4 message too big"
        else:
            with self.srv._lock:
                r = self.srv._apply(self.srv._data_rules)
            if r is None:
                r = "250 2.0.0 Ok: captured %d bytes" % len(data)
        if self.srv.data_delay:
            time.sleep(self.srv.data_delay)
        t = Transaction(self.seq, self.mail_from, self.mail_params,
                        self.rcpts, data, r, self.tls, self.helo, self.peer,
                        self.rcpt_params)
        self.srv._record("transactions", t)
        self.reset()
        self.reply(r)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--tls-cert")
    p.add_argument("--tls-key")
    p.add_argument("--rcpt-reply", action="append", default=[],
                   metavar="ADDR=REPLY",
                   help="RCPT for ADDR gets REPLY (ADDR * = any)")
    p.add_argument("--data-reply", action="append", default=[],
                   metavar="REPLY[xN]",
                   help="end-of-data reply, N times (default always)")
    p.add_argument("--outdir", help="write each accepted message here")
    a = p.parse_args(argv)
    cap = CaptureSMTPD(a.host, a.port, a.tls_cert, a.tls_key)
    for spec in a.rcpt_reply:
        addr, _, reply = spec.partition("=")
        cap.add_rcpt_rule(reply, None if addr == "*" else addr)
    for spec in a.data_reply:
        m = re.match(r"^(.*?)(?:x(\d+))?$", spec)
        cap.add_data_rule(m.group(1),
                          int(m.group(2)) if m.group(2) else None)
    cap.start()
    print("listening on %s:%d" % (a.host, cap.port), flush=True)
    seen = 0
    try:
        while True:
            ts = cap.all_transactions()
            for t in ts[seen:]:
                print("%s from=<%s> to=%s size=%d tls=%s reply=%r" % (
                    time.strftime("%H:%M:%S"), t.mail_from,
                    ",".join("<%s>" % r for r in t.rcpt_tos), len(t.data),
                    t.tls, t.reply), flush=True)
                if a.outdir and t.accepted:
                    os.makedirs(a.outdir, exist_ok=True)
                    fn = os.path.join(a.outdir, "%06d.eml" % seen)
                    with open(fn, "wb") as f:
                        f.write(t.data)
                seen += 1
            time.sleep(0.2)
    except KeyboardInterrupt:
        pass
    finally:
        cap.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
