#!/usr/bin/env python3
"""Sync primitives seen from outside: kill -9 (from another program) of lock holders and waiters,
and Ctrl-C of a blocked acquire. Each case must end promptly, never hang."""
import os, signal, subprocess, sys, tempfile, time

from harness import LUAMP, ROOT, LONG, test  # noqa: F401
import harness
TMP = tempfile.mkdtemp(prefix="luamp-sync-")


def start(text):
    path = os.path.join(TMP, f"s{abs(hash(text))}.lua")
    with open(path, "w") as f:
        f.write(text)
    return subprocess.Popen([LUAMP, path], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def expect_line(proc, prefix):
    """Reads stdout lines until one starts with prefix; returns it (without the newline)."""
    while True:
        line = proc.stdout.readline()
        if not line:
            raise AssertionError(f"luamp ended before '{prefix}'; stderr: {proc.stderr.read()}")
        if line.startswith(prefix):
            return line.rstrip("\n")


def finish(proc, secs=20):
    try:
        out, err = proc.communicate(timeout=secs)
    except subprocess.TimeoutExpired:
        proc.kill()
        raise AssertionError("luamp hung")
    return proc.returncode, out, err


def interrupted(rc, err):
    """Ctrl-C ended the script: `interrupted!` and status 130 (or 1), as the CLI reports it; a
    build whose command does not route SIGINT yet dies of the signal (still promptly)."""
    return (rc in (1, 130) and "interrupted!" in err) or rc == -signal.SIGINT


HOLDER = """
io.stdout:setvbuf("line")
local obj, ready = %s, mp.Event()
local p = mp.Process{target = function() %s; ready:set(); mp.sleep(60) end, daemon = true}
p:start()
assert(ready:wait(20))
print("holder " .. p.pid)
local t0 = mp.monotonic()
local ok, why = obj:acquire(true, 30)
print("acquired", ok, why, mp.monotonic() - t0)
obj:release()
"""


def owner_death(ctor, take):
    proc = start(HOLDER % (ctor, take))
    pid = int(expect_line(proc, "holder ").split()[1])
    harness.wait_blocked(proc.pid)      # the host is now blocked in acquire
    t_kill = time.monotonic()
    os.kill(pid, signal.SIGKILL)
    line = expect_line(proc, "acquired")
    elapsed = time.monotonic() - t_kill
    _, ok, why, _ = line.split("\t")
    assert (ok, why) == ("true", "owner-died"), line
    assert elapsed < 1.0, f"took {elapsed:.2f} s after the kill"
    rc, _, err = finish(proc)
    assert rc == 0, err


@test
def lock_holder_killed_from_outside():
    owner_death("mp.Lock()", "obj:acquire()")


@test
def rlock_holder_killed_from_outside():
    owner_death("mp.RLock()", "obj:acquire(); obj:acquire()")


@test
def condition_lock_holder_killed_from_outside():
    owner_death("mp.Condition()", "obj:acquire()")


@test
def barrier_waiter_killed_from_outside():
    proc = start("""
io.stdout:setvbuf("line")
local b = mp.Barrier(3)
local p = mp.Process{target = function() b:wait() end, daemon = true}
p:start()
while b.n_waiting < 1 do mp.sleep(0.01) end
print("waiter " .. p.pid)
local ok, err = pcall(b.wait, b, 30)
print("result", ok, type(err) == "table" and err.kind or tostring(err))
""")
    pid = int(expect_line(proc, "waiter ").split()[1])
    harness.wait_blocked(proc.pid)      # the host is in b:wait too
    t_kill = time.monotonic()
    os.kill(pid, signal.SIGKILL)
    line = expect_line(proc, "result")
    assert line.split("\t")[1:] == ["false", "BrokenBarrierError"], line
    assert time.monotonic() - t_kill < 1.0
    rc, _, err = finish(proc)
    assert rc == 0, err


def run_with_stdin(text):
    path = os.path.join(TMP, f"s{abs(hash(text))}.lua")
    with open(path, "w") as f:
        f.write(text)
    return subprocess.Popen([LUAMP, path], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


@test
def condition_waiter_killed_then_notify_reaches_the_live_one():
    proc = run_with_stdin("""
io.stdout:setvbuf("line")
local c, woke = mp.Condition(), mp.Value("i", 0)
local function waiter() c:acquire(); if c:wait(20) then woke.value = woke.value + 1 end; c:release() end
local function blocked(pid)          -- in c:wait: asleep on a futex (/proc/PID/wchan)
  while true do
    local f = io.open("/proc/" .. pid .. "/wchan")
    local w = f and f:read("a") or ""
    if f then f:close() end
    if w:find("^futex") then return end
    mp.sleep(0.005)
  end
end
local victim = mp.Process{target = waiter, daemon = true}
victim:start()
print("victim " .. victim.pid)
io.read("l")
local other = mp.Process{target = waiter}
other:start()
blocked(other.pid)
c:with(function() c:notify() end)
assert(other:join(10), "the live waiter was not woken")
print("woke", woke.value)
""")
    pid = int(expect_line(proc, "victim ").split()[1])
    harness.wait_blocked(pid)           # the victim is inside c:wait
    os.kill(pid, signal.SIGKILL)
    assert harness.wait_dead([pid], 10)
    proc.stdin.write("go\n")
    proc.stdin.flush()
    line = expect_line(proc, "woke")
    assert line == "woke\t1", line
    rc, _, err = finish(proc)
    assert rc == 0, err


@test
def ctrl_c_interrupts_a_blocked_acquire():
    proc = start("""
io.stdout:setvbuf("line")
local l, ready = mp.Lock(), mp.Event()
local p = mp.Process{target = function() l:acquire(); ready:set(); mp.sleep(60) end, daemon = true}
p:start()
assert(ready:wait(20))
print("blocking")
l:acquire()
print("not reached")
""")
    expect_line(proc, "blocking")
    harness.wait_blocked(proc.pid)
    t_int = time.monotonic()
    proc.send_signal(signal.SIGINT)
    rc, out, err = finish(proc)
    assert time.monotonic() - t_int < 2.0
    assert interrupted(rc, err), (rc, err)
    assert "not reached" not in out


@test
def ctrl_c_interrupts_condition_and_event_waits():
    for wait in ("local c = mp.Condition(); c:acquire(); c:wait()", "mp.Event():wait()",
                 "mp.Semaphore(0):acquire()", "mp.Barrier(2):wait()"):
        proc = start('io.stdout:setvbuf("line"); print("blocking"); ' + wait + '; print("not reached")')
        expect_line(proc, "blocking")
        harness.wait_blocked(proc.pid)
        proc.send_signal(signal.SIGINT)
        rc, out, err = finish(proc)
        assert interrupted(rc, err) and "not reached" not in out, (wait, rc, err)


@test
def lock_example_prints_whole_blocks():
    here = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    for _ in range(2):
        r = subprocess.run([LUAMP, os.path.join(here, "examples", "lock.lua")], capture_output=True,
                           text=True, timeout=60)
        assert r.returncode == 0, r.stderr
        lines = r.stdout.split()
        assert lines in ([str(i) for i in range(1, 11)], [str(i) for i in [6, 7, 8, 9, 10, 1, 2, 3, 4, 5]]), lines


harness.finish()
