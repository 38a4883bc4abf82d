"""Run one end-to-end test module with unittest and print 'e2e-result: N passed, M failed'.

Usage: /usr/bin/python3 tests/e2e/runner.py tests/e2e/test_x.py
"""
import os
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))


def main():
    path = os.path.abspath(sys.argv[1])
    suite = unittest.defaultTestLoader.discover(os.path.dirname(path), pattern=os.path.basename(path))
    result = unittest.TextTestRunner(verbosity=2, stream=sys.stdout).run(suite)
    bad = len(result.failures) + len(result.errors) + len(result.unexpectedSuccesses)
    skipped = len(result.skipped)
    # setUpClass/tearDownClass errors are reported but not counted in testsRun
    class_level = sum(1 for t, _ in result.errors if not isinstance(t, unittest.TestCase))
    ok = max(0, result.testsRun - (bad - class_level) - skipped)
    # Skips are failures here: no test may skip itself by default.
    print("e2e-result: %d passed, %d failed" % (ok, bad + skipped))
    return 0 if bad + skipped == 0 and result.testsRun > 0 else 1


if __name__ == "__main__":
    sys.exit(main())
