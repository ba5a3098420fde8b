"""harness: what the Python CLI tests share — where luamp is, the @test decorator, the summary line."""
import os, sys

LUAMP = os.environ["LUAMP"]
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
LONG = os.environ.get("LUAMP_LONG") == "1"
_counts = {"passed": 0, "failed": 0}


def test(fn):
    """Runs `fn` now as one test case; a failure is reported on stderr and the run goes on."""
    try:
        fn()
        _counts["passed"] += 1
    except Exception as e:  # noqa: BLE001 - report every failure and go on
        _counts["failed"] += 1
        print(f"FAIL {fn.__name__}: {type(e).__name__}: {e}", file=sys.stderr)
    return fn


def finish():
    """Prints `N passed, M failed` (what Tests/run_tests.py reads) and exits non-zero on failure."""
    print(f"{_counts['passed']} passed, {_counts['failed']} failed")
    sys.exit(1 if _counts["failed"] else 0)
