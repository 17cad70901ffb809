"""dkim_verify.py - verifies a message's DKIM signatures with dkimpy.

An independent verifier for tests/integration/test_dkim.py: Debian's
python3-dkim (dkimpy), importable only by /usr/bin/python3, so the test
runs this file with that interpreter whatever python3 runs the suite.

Usage: /usr/bin/python3 dkim_verify.py MESSAGE_FILE NAME=TXT [NAME=TXT...]
       /usr/bin/python3 dkim_verify.py --check

NAME is the DNS name of the key record (SELECTOR._domainkey.DOMAIN) and
TXT its value ("v=DKIM1; k=rsa; p=..."), served to dkimpy instead of DNS
(the tests use no network). Every DKIM-Signature header of the message is
verified; one line per signature is printed, "INDEX pass|fail d=D s=S",
and the exit status is 0 when the topmost signature (the relay's) passes,
1 when it fails, 2 on a usage error or when dkimpy is missing (--check
exits 0 when it can be imported).
"""

import sys

try:
    import dkim
except ImportError as e:
    sys.stderr.write("dkim_verify: cannot import dkim (python3-dkim): %s\n"
                     % e)
    sys.exit(2)


def main(argv):
    if len(argv) == 2 and argv[1] == "--check":
        return 0
    if len(argv) < 3:
        sys.stderr.write(__doc__)
        return 2
    with open(argv[1], "rb") as f:
        msg = f.read()
    records = {}
    for arg in argv[2:]:
        name, sep, txt = arg.partition("=")
        if not sep:
            sys.stderr.write("dkim_verify: expected NAME=TXT: %r\n" % arg)
            return 2
        records[name.lower().rstrip(".")] = txt.encode()

    def dnsfunc(name, timeout=5):
        if isinstance(name, bytes):
            name = name.decode()
        return records.get(name.lower().rstrip("."))

    d = dkim.DKIM(msg)
    sigs = [v for (k, v) in d.headers if k.lower() == b"dkim-signature"]
    if not sigs:
        print("no DKIM-Signature header")
        return 1
    results = []
    for i in range(len(sigs)):
        try:
            ok = d.verify(idx=i, dnsfunc=dnsfunc)
        except dkim.DKIMException as e:
            sys.stderr.write("signature %d: %s\n" % (i, e))
            ok = False
        tags = dkim.util.parse_tag_value(sigs[i])
        print("%d %s d=%s s=%s" % (i, "pass" if ok else "fail",
                                   tags.get(b"d", b"").decode(),
                                   tags.get(b"s", b"").decode()))
        results.append(ok)
    return 0 if results[0] else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
