"""test_chunking.py - CHUNKING (RFC 3030): BDAT through the real daemons
(issue 8).

smtpd advertises CHUNKING and takes a message in BDAT chunks: several
chunks pipelined in one write, each answered after its octets; a
zero-length LAST chunk; octets that look like DATA's end marker are only
text; a bare LF is stored as CRLF as in DATA; a chunk over the size limit
is read to its end and refused with 552, nothing queued, the session goes
on; DATA after BDAT is refused; BDAT without MAIL is refused after its
octets, and the next command is still found where the client put it.

The client speaks raw SMTP on a plain listener with 127.0.0.0/8 trusted
(test_smuggling's restart_with_listener), as a smarthost client would.
"""

import socket
import time

from harness import PetrelCase, unique
from test_smuggling import restart_with_listener


class Raw:
    """A raw SMTP client that reads whole replies."""

    def __init__(self, port):
        self.s = socket.create_connection(("127.0.0.1", port), timeout=20)
        self.buf = b""
        assert self.reply().startswith(b"220")

    def send(self, data):
        self.s.sendall(data)

    def reply(self):
        """One reply, all its lines; b"" at EOF."""
        lines = []
        while True:
            while b"\r\n" not in self.buf:
                chunk = self.s.recv(65536)
                if not chunk:
                    return b"".join(lines)
                self.buf += chunk
            line, self.buf = self.buf.split(b"\r\n", 1)
            lines.append(line + b"\r\n")
            if line[3:4] != b"-":
                return b"".join(lines)

    def cmd(self, line):
        self.send(line + b"\r\n")
        return self.reply()

    def close(self):
        try:
            self.s.close()
        except OSError:
            pass


class ChunkingTest(PetrelCase):
    overrides = {"smtpd": {"message_size_limit": "64k"}}

    def setUp(self):
        super().setUp()
        self.port = restart_with_listener(self, "none", ["127.0.0.0/8"])

    def session(self):
        c = Raw(self.port)
        self.addCleanup(c.close)
        ehlo = c.cmd(b"EHLO smarthost.test")
        self.assertIn(b"250-CHUNKING\r\n", ehlo)
        return c

    def envelope(self, c):
        self.assertTrue(c.cmd(b"MAIL FROM:<app@example.com>")
                        .startswith(b"250"))
        self.assertTrue(c.cmd(b"RCPT TO:<rcpt@example.org>")
                        .startswith(b"250"))

    def test_pipelined_chunks_and_empty_last(self):
        tok = unique("bdat")
        c = self.session()
        parts = [("From: <app@example.com>\r\nSubject: %s\r\n\r\n" % tok)
                 .encode(),
                 b"line one\r\n.\r\nnot the end\r\n",
                 b"bare\nLF\r\n"]
        # MAIL, RCPT and every chunk in one write, as PIPELINING allows.
        wire = b"MAIL FROM:<app@example.com>\r\nRCPT TO:<rcpt@example.org>\r\n"
        for p in parts:
            wire += b"BDAT %d\r\n" % len(p) + p
        wire += b"BDAT 0 LAST\r\n"
        c.send(wire)
        self.assertTrue(c.reply().startswith(b"250 2.1.0"))
        self.assertTrue(c.reply().startswith(b"250 2.1.5"))
        for p in parts:
            self.assertEqual(c.reply(), b"250 2.0.0 %d octets received\r\n"
                             % len(p))
        last = c.reply()
        self.assertTrue(last.startswith(b"250 2.0.0 Ok: queued as"), last)
        self.assertTrue(c.cmd(b"QUIT").startswith(b"221"))
        got = self.wait_arrival(tok)[0]
        body = got.data.split(b"\r\n\r\n", 1)[1]
        # The dot line is text (the next hop gets it stuffed and reads it
        # back); the bare LF arrived as a line end.
        self.assertEqual(body, b"line one\r\n.\r\nnot the end\r\n"
                         b"bare\r\nLF\r\n")

    def test_last_chunk_carries_data(self):
        tok = unique("bdat1")
        c = self.session()
        self.envelope(c)
        msg = ("From: <app@example.com>\r\nSubject: %s\r\n\r\nHi.\r\n"
               % tok).encode()
        c.send(b"BDAT %d LAST\r\n" % len(msg) + msg)
        self.assertTrue(c.reply().startswith(b"250 2.0.0 Ok: queued as"))
        self.wait_arrival(tok)

    def test_oversize_chunk_is_refused_and_read_past(self):
        tok = unique("big")
        c = self.session()
        self.envelope(c)
        head = ("From: <app@example.com>\r\nSubject: %s\r\n\r\n" % tok)
        first = head.encode() + b"x" * 1000 + b"\r\n"
        c.send(b"BDAT %d\r\n" % len(first) + first)
        self.assertTrue(c.reply().startswith(b"250 2.0.0"))
        big = b"y" * (70 * 1024)
        # The refused chunk's octets are skipped: the NOOP after them is
        # read as the next command.
        c.send(b"BDAT %d LAST\r\n" % len(big) + big + b"NOOP\r\n")
        r = c.reply()
        self.assertTrue(r.startswith(b"552 5.3.4"), r)
        self.assertTrue(c.reply().startswith(b"250 2.0.0 Ok"))
        # The message is abandoned: more BDAT needs a new MAIL.
        c.send(b"BDAT 3 LAST\r\nabc")
        self.assertTrue(c.reply().startswith(b"503 5.5.1"))
        time.sleep(1)
        self.assertEqual(self.suite.relayq_json(), [])
        self.assertFalse([t for t in self.capture.all_transactions()
                          if tok.encode() in t.data])
        # The session goes on: a new message in one chunk.
        tok2 = unique("after")
        self.envelope(c)
        msg = ("From: <app@example.com>\r\nSubject: %s\r\n\r\nok\r\n"
               % tok2).encode()
        c.send(b"BDAT %d LAST\r\n" % len(msg) + msg)
        self.assertTrue(c.reply().startswith(b"250 2.0.0 Ok: queued as"))
        self.wait_arrival(tok2)

    def test_data_after_bdat_is_refused(self):
        tok = unique("mixed")
        c = self.session()
        self.envelope(c)
        part = ("From: <app@example.com>\r\nSubject: %s\r\n\r\n" % tok) \
            .encode()
        c.send(b"BDAT %d\r\n" % len(part) + part)
        self.assertTrue(c.reply().startswith(b"250 2.0.0"))
        self.assertTrue(c.cmd(b"DATA").startswith(b"503 5.5.1"))
        # The BDAT message is still open and can be finished.
        c.send(b"BDAT 4 LAST\r\nend\n")
        self.assertTrue(c.reply().startswith(b"250 2.0.0 Ok: queued as"))
        got = self.wait_arrival(tok)[0]
        self.assertTrue(got.data.endswith(b"\r\n\r\nend\r\n"), got.data)

    def test_bdat_without_mail_and_bad_size(self):
        c = self.session()
        c.send(b"BDAT 5\r\nNOOP\rNOOP\r\n")
        # The five octets "NOOP\r" are the chunk, refused after them;
        # "NOOP\r\n" after them is the next command.
        self.assertTrue(c.reply().startswith(b"503 5.5.1"))
        self.assertTrue(c.reply().startswith(b"250 2.0.0 Ok"))
        # A size that cannot be read leaves no next command: the end.
        r = c.cmd(b"BDAT lots")
        self.assertTrue(r.startswith(b"501 5.5.4"), r)
        self.assertEqual(c.reply(), b"")
