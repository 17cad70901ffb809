#!/usr/bin/env python3
"""run.py - runs Petrel's integration tests (Python 3 standard library only).

    python3 tests/integration/run.py                 # every test_*.py
    python3 tests/integration/run.py test_basic      # one module
    python3 tests/integration/run.py test_auth.AuthTest.test_wrong_password

Prints unittest's verbose report, then as its very last line exactly
"N passed, N failed" (", N skipped" appended when any were skipped). Exits 0
only if nothing failed or errored. PETREL_KEEP=1 keeps temporary
directories; PETREL_SUITE_TIMEOUT (seconds, default 900) bounds the run.
"""

import faulthandler
import os
import sys
import threading
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.dont_write_bytecode = True     # no __pycache__ in the tree

import harness  # noqa: E402


def summary(result):
    # A test whose subtests fail is one failed test, not one per subtest.
    bad = {getattr(t, "test_case", t).id()
           for t, _ in result.failures + result.errors}
    failed = len(bad) + len(result.unexpectedSuccesses)
    skipped = len(result.skipped)
    passed = result.testsRun - failed - skipped - \
        len(result.expectedFailures)
    line = "%d passed, %d failed" % (passed, failed)
    if skipped:
        line += ", %d skipped" % skipped
    return line, failed


_current = []


class Result(unittest.TextTestResult):
    """Remembers itself so that the watchdog can count what ran."""

    def __init__(self, *a, **kw):
        super().__init__(*a, **kw)
        _current.append(self)


def watchdog(seconds):
    def fire():
        sys.stderr.write("\nrun.py: the suite exceeded %ds; killing every "
                         "process started and giving up\n" % seconds)
        faulthandler.dump_traceback(all_threads=True)
        harness.kill_everything()
        sys.stdout.flush()
        sys.stderr.flush()
        # The test that was running (counted in testsRun) failed.
        failed = 1
        passed = skipped = 0
        if _current:
            r = _current[0]
            _, failed = summary(r)
            failed += 1
            skipped = len(r.skipped)
            passed = max(0, r.testsRun - failed - skipped -
                         len(r.expectedFailures))
        line = "%d passed, %d failed" % (passed, failed)
        if skipped:
            line += ", %d skipped" % skipped
        print(line, flush=True)
        os._exit(1)
    t = threading.Timer(seconds, fire)
    t.daemon = True
    t.start()


def main(argv):
    os.chdir(harness.REPO)
    loader = unittest.TestLoader()
    names = [a for a in argv if not a.startswith("-")]
    if names:
        names = [n[:-3] if n.endswith(".py") else n for n in names]
        names = [os.path.basename(n) if "/" in n else n for n in names]
        suite = loader.loadTestsFromNames(names)
    else:
        suite = loader.discover(HERE, pattern="test_*.py", top_level_dir=HERE)
    missing = harness.missing_binaries()
    if missing:
        sys.stderr.write("run.py: warning: not built yet: %s\n"
                         % ", ".join("build/" + m for m in missing))
    watchdog(int(os.environ.get("PETREL_SUITE_TIMEOUT", "900")))
    runner = unittest.TextTestRunner(stream=sys.stdout, verbosity=2,
                                     resultclass=Result)
    result = runner.run(suite)
    harness.kill_everything()
    line, failed = summary(result)
    sys.stdout.flush()
    sys.stderr.flush()
    print(line, flush=True)
    return 0 if failed == 0 and result.testsRun > 0 else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
