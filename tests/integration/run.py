#!/usr/bin/env python3
"""run.py - runs Petrel's integration tests (Python 3 standard library only).

    python3 tests/integration/run.py                 # every test_*.py
    python3 tests/integration/run.py test_basic      # one module
    python3 tests/integration/run.py test_auth.AuthTest.test_wrong_password

Prints unittest's verbose report, then as its very last line exactly
"N passed, N failed" (", N skipped" appended when any were skipped). Exits 0
only if nothing failed or errored. PETREL_KEEP=1 keeps temporary
directories; PETREL_TEST_TIMEOUT (seconds, default 300) bounds each test,
so that a hung test fails the run with every thread's stack instead of
hanging CI, however many tests the suite grows to.
"""

import faulthandler
import os
import sys
import threading
import time
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
# (monotonic start, test id) of the test running now; the watchdog reads it.
_running = [time.monotonic(), "(loading)"]


class Result(unittest.TextTestResult):
    """Remembers itself, and when each test starts, for the watchdog."""

    def __init__(self, *a, **kw):
        super().__init__(*a, **kw)
        _current.append(self)

    def startTest(self, test):
        _running[:] = [time.monotonic(), test.id()]
        super().startTest(test)


def fire(seconds, name):
    sys.stderr.write("\nrun.py: %s ran longer than %ds; killing every "
                     "process started and giving up\n" % (name, seconds))
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


def watchdog(seconds):
    def watch():
        while True:
            started, name = _running
            left = started + seconds - time.monotonic()
            if left <= 0:
                fire(seconds, name)
            time.sleep(min(left, 5.0))
    t = threading.Thread(target=watch, daemon=True)
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
    watchdog(int(os.environ.get("PETREL_TEST_TIMEOUT", "300")))
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
