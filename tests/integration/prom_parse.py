"""prom_parse.py - parses a Prometheus text exposition with the official
Python client's parser, for tests/integration/test_metrics.py.

Debian's python3-prometheus-client is importable only by /usr/bin/python3,
so the test runs this file with that interpreter whatever python3 runs the
suite (as dkim_verify.py does for dkimpy). Debian's prometheus package,
which would bring promtool, is about 100 MB; the client's parser is the
same grammar Prometheus's own Python tooling reads.

Usage: /usr/bin/python3 prom_parse.py < EXPOSITION
Prints a JSON object {"families": {NAME: TYPE}, "samples": [[NAME,
LABELS, VALUE], ...]} and exits 0; exits 1 with the parser's error when
the text does not parse, 2 when the client cannot be imported.
"""

import json
import sys

try:
    from prometheus_client.parser import text_string_to_metric_families
except ImportError as e:
    sys.stderr.write("prom_parse: cannot import prometheus_client "
                     "(python3-prometheus-client): %s\n" % e)
    sys.exit(2)


def main():
    text = sys.stdin.read()
    fams, samples = {}, []
    try:
        for f in text_string_to_metric_families(text):
            if f.name in fams:
                raise ValueError("family %s appears twice" % f.name)
            fams[f.name] = f.type
            seen = set()
            for s in f.samples:
                key = (s.name, tuple(sorted(s.labels.items())))
                if key in seen:
                    raise ValueError("duplicate series %r" % (key,))
                seen.add(key)
                samples.append([s.name, s.labels, s.value])
    except Exception as e:     # the parser raises ValueError and others
        sys.stderr.write("prom_parse: %s\n" % e)
        return 1
    json.dump({"families": fams, "samples": samples}, sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
