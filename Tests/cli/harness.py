"""harness: what the Python CLI tests share — where luamp is, the @test decorator, the summary line."""
import os, sys, tempfile, time

LUAMP = os.environ["LUAMP"]
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
LONG = os.environ.get("LUAMP_LONG") == "1"
_counts = {"passed": 0, "failed": 0}

# Lua for SIGINT storms: `rounds()` calls the script's `round()` under pcall until the file
# arg[1] exists (it sets the script's `stop`), so every instruction of the loop is protected.
LUA_PCALL_ROUNDS = """local function rounds()                 -- every instruction of the loop runs under a pcall
  while not stop do
    pcall(round)
    local f = io.open(arg[1]); if f then f:close(); stop = true end
  end
end
"""


def scratch(prefix):
    """A new temporary directory and `script(name, text)`, which writes a file there and returns its path."""
    tmp = tempfile.mkdtemp(prefix=prefix)

    def script(name, text):
        path = os.path.join(tmp, name)
        with open(path, "w") as f:
            f.write(text)
        return path
    return tmp, script


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


def alive(pid):
    """True if pid exists and is not a zombie."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def children(pid):
    """The pids of pid's children, from /proc (empty if it is gone)."""
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            return [int(x) for x in f.read().split()]
    except (FileNotFoundError, ProcessLookupError):
        return []


def wait_dead(pids, secs):
    """Polls until none of pids is alive (True) or secs pass (False)."""
    deadline = time.monotonic() + secs
    while time.monotonic() < deadline:
        if not any(alive(p) for p in pids):
            return True
        time.sleep(0.02)
    return not any(alive(p) for p in pids)


def wait_blocked(pid, secs=20):
    """Polls /proc/PID/wchan until pid sleeps in the kernel on a futex, i.e. it is blocked in an
    mp wait (lock, semaphore, event, condition, barrier, queue): mp.sleep shows hrtimer_nanosleep
    there, so a process still getting ready never counts. Raises after secs."""
    deadline = time.monotonic() + secs
    while time.monotonic() < deadline:
        try:
            with open(f"/proc/{pid}/wchan") as f:
                if f.read().startswith("futex"):
                    return
        except OSError:
            pass
        time.sleep(0.005)
    raise AssertionError(f"process {pid} never blocked in a wait")
