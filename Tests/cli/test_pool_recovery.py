#!/usr/bin/env python3
"""Workers that fail or are killed while they start, and big error reports over one-page pipes:
a pool whose starting workers are killed from outside keeps working; a child's large error report
never deadlocks the parent's join when the user's pipes are down to one page each."""
import fcntl, os, subprocess, sys, tempfile, time

from harness import LUAMP, test, finish, alive  # noqa: F401
TMP = tempfile.mkdtemp(prefix="luamp-recovery-")
os.chmod(TMP, 0o755)                 # the one-page-pipe test runs luamp as another user


def script(name, text):
    path = os.path.join(TMP, name)
    with open(path, "w") as f:
        f.write(text)
    os.chmod(path, 0o644)
    return path


SLOW_INIT = r"""
local log = arg[1]
-- The first three workers announce themselves and wait in their initializer to be killed; the
-- fourth starts normally.
local pool = mp.Pool(1, function(path)
  local f = assert(io.open(path, "a")); f:write(mp.getpid(), "\n"); f:close()
  local n = 0
  for _ in io.lines(path) do n = n + 1 end
  if n <= 3 then mp.sleep(60) end
end, {log})
print(pool:apply(function(x) return "ran " .. x end, {7}))
print(#pool:map(function() return mp.getpid() end, {1, 2, 3}, 1))
pool:close(); pool:join()
"""


@test
def workers_killed_during_a_slow_initializer_are_replaced_for_good():
    # Three workers in a row SIGKILLed while they run their initializer: that is not an
    # initializer failure, and the pool must neither give up nor slow down.
    log = os.path.join(TMP, "slow-init.log")
    open(log, "w").close()
    p = subprocess.Popen([LUAMP, script("slow_init.lua", SLOW_INIT), log], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True)
    killed = []
    deadline = time.monotonic() + 60
    while len(killed) < 3 and time.monotonic() < deadline and p.poll() is None:
        with open(log) as f:
            pids = [int(x) for x in f.read().split()]
        if len(pids) > len(killed):
            pid = pids[len(killed)]
            assert alive(pid), f"worker {pid} left its initializer before it was killed"
            os.kill(pid, 9)
            killed.append(pid)
        else:
            time.sleep(0.01)
    try:
        out, err = p.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        p.kill()
        raise AssertionError("the pool hung after its starting workers were killed")
    assert len(killed) == 3, (killed, err[-2000:])
    assert p.returncode == 0, (p.returncode, err[-2000:])
    assert out.splitlines() == ["ran 7", "3"], (out, err[-2000:])
    assert "initializer failed" not in err, err[-2000:]


# --- one-page pipes -------------------------------------------------------------------------
# Past `pipe-user-pages-soft` (16384 pages by default), an unprivileged user's new pipes get one
# page (4 KiB; two on newer kernels). A child that writes a larger error report must not block forever while its
# parent waits for it to end. The wrapper becomes a uid nobody else uses (pipe pages are counted
# per user, so other tests are unaffected), fills that user's quota with 1 MiB pipes it keeps
# open across exec, checks that a new pipe is that small, and runs luamp.
WRAPPER = r"""
import fcntl, os, sys
uid = int(sys.argv[1])
os.setgroups([]); os.setgid(uid); os.setuid(uid)
held = []
while True:
    r, w = os.pipe()
    held += [r, w]
    try:
        fcntl.fcntl(w, 1031, 1 << 20)            # F_SETPIPE_SZ
    except OSError:
        break
    if len(held) > 20000:
        sys.exit("the pipe quota never ran out")
r, w = os.pipe()
size = fcntl.fcntl(w, 1032)                      # F_GETPIPE_SZ
os.close(r); os.close(w)
if size > 8192:                                  # one page; two since Linux 5.16 (PIPE_MIN_DEF_BUFFERS)
    sys.exit(f"a new pipe got {size} bytes, not one or two pages")
for fd in held:
    os.set_inheritable(fd, True)
os.execv(sys.argv[2], sys.argv[2:])
"""

BIG_REPORTS = r"""
local p = mp.Process(function() error(string.rep("x", 50000)) end)
p:start()
assert(p:join(20), "join of a child with a big error report did not finish")
print("process", p.exitcode, #p.error >= 50000)
local pool = mp.Pool(1, function() error(string.rep("y", 50000)) end)
local ok, e = pcall(pool.apply, pool, function() return 1 end)
print("pool", ok, e.kind, #e.message >= 50000)
pool:terminate()
"""


@test
def big_error_reports_do_not_deadlock_with_one_page_pipes():
    if os.geteuid() != 0:
        print("# skipped: needs root to become an unused uid", file=sys.stderr)
        return
    uid = 50000 + os.getpid() % 10000
    wrapper = script("one_page.py", WRAPPER)
    try:
        r = subprocess.run([sys.executable, wrapper, str(uid), LUAMP, script("big_reports.lua", BIG_REPORTS)],
                           capture_output=True, text=True, timeout=60, close_fds=False)
    except subprocess.TimeoutExpired as e:
        # The deadlock: the parent and any child still blocked on its report.
        raise AssertionError(f"deadlock: luamp did not finish ({(e.stdout or b'')[-500:]!r})")
    assert r.returncode == 0, (r.returncode, r.stdout, r.stderr[-1500:])
    assert r.stdout.splitlines() == ["process\t1\ttrue", "pool\tfalse\tRemoteError\ttrue"], (r.stdout, r.stderr[-1500:])


finish()
