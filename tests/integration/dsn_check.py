"""dsn_check.py - reads a delivery report with two independent parsers.

Used by test_bounce_parse.py and test_bounce_daemon.py. parse_python()
reads a report with Python's email package (policy.default); parse_perl()
with MIME-tools' MIME::Parser through dsn_parse.pl (Debian:
libmime-tools-perl). Both return the same shape: the top-level type and
report-type, each part's type and transfer encoding, the delivery-status
part's per-message fields and per-recipient blocks (names lower-cased,
values unfolded and white space collapsed), the attached original's
Subject and the first part's text. both() parses with each, checks that
they agree and returns the result. Python 3 standard library only, plus
perl.
"""

import email
import email.policy
import json
import os
import re
import shutil
import subprocess

HERE = os.path.dirname(os.path.abspath(__file__))
PERL_SCRIPT = os.path.join(HERE, "dsn_parse.pl")


def _ws(s):
    return re.sub(r"\s+", " ", str(s)).strip()


def _fields(msg):
    return {k.lower(): _ws(v) for k, v in msg.items()}


def parse_python(data):
    """The report's shape as Python's email package sees it."""
    m = email.message_from_bytes(data, policy=email.policy.default)
    out = {"content_type": m.get_content_type(),
           "report_type": m.get_param("report-type"),
           "parts": [], "encodings": [],
           "defects": [repr(d) for p in m.walk() for d in p.defects]}
    for part in m.iter_parts():
        ctype = part.get_content_type()
        out["parts"].append(ctype)
        out["encodings"].append(
            (part.get("Content-Transfer-Encoding") or "7bit").lower())
        if ctype == "text/plain" and "text" not in out:
            out["text"] = part.get_content()
        elif ctype == "message/delivery-status":
            blocks = part.get_payload()
            out["per_message"] = _fields(blocks[0])
            out["recipients"] = [_fields(b) for b in blocks[1:]]
        elif ctype == "text/rfc822-headers":
            raw = part.get_payload(decode=True)
            hdrs = email.message_from_bytes(raw,
                                            policy=email.policy.default)
            out["attached_subject"] = _ws(hdrs["Subject"])
            out["attached_full"] = 0
        elif ctype == "message/rfc822":
            inner = part.get_payload()[0]
            out["attached_subject"] = _ws(inner["Subject"])
            out["attached_full"] = 1
    return out


def perl_available():
    if shutil.which("perl") is None:
        return False
    return subprocess.run(["perl", "-MMIME::Parser", "-e", "1"],
                          stdout=subprocess.DEVNULL,
                          stderr=subprocess.DEVNULL).returncode == 0


def parse_perl(data):
    """The report's shape as MIME-tools sees it (dsn_parse.pl)."""
    r = subprocess.run(["perl", PERL_SCRIPT], input=data,
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       timeout=30)
    if r.returncode != 0:
        raise AssertionError("dsn_parse.pl failed (exit %d): %s" % (
            r.returncode, r.stderr.decode(errors="replace")))
    return json.loads(r.stdout)


def both(data):
    """Parses with both; raises AssertionError when they disagree."""
    a = parse_python(data)
    if a["defects"]:
        raise AssertionError("Python's email package found defects: %s"
                             % ", ".join(a["defects"]))
    b = parse_perl(data)
    for k in ("content_type", "report_type", "parts", "encodings",
              "per_message", "recipients", "attached_subject",
              "attached_full"):
        if a.get(k) != b.get(k):
            raise AssertionError("parsers disagree on %s:\n python: %r\n"
                                 " perl:   %r" % (k, a.get(k), b.get(k)))
    if _ws(a.get("text", "")) != _ws(b.get("text", "")):
        raise AssertionError("parsers disagree on the text part:\n%r\n%r"
                             % (a.get("text"), b.get("text")))
    return a
