"""Pipe ends and open files reach processes that are already running without ptrace rights.

Sending a pipe end used to copy the sender's descriptor with pidfd_getfd, which needs ptrace
rights over the sender: Yama's ptrace_scope=1 (Ubuntu's default) refuses them to a child over its
parent and between siblings, and so does a non-dumpable process tree for a user without
CAP_SYS_PTRACE. The descriptors now travel by SCM_RIGHTS. Two settings deny ptrace here:
- when the test runs as root: luamp started with a real uid (nobody) that differs from its
  effective uid and no capabilities — the kernel then makes every process of the tree
  non-dumpable and refuses ptrace between them, Yama or not;
- when the kernel has Yama and the test may write /proc/sys/kernel/yama/ptrace_scope: scope 1,
  restored afterwards (root keeps CAP_SYS_PTRACE, so luamp runs as nobody).
"""
import os, shutil, subprocess, sys, tempfile
from harness import LUAMP, test, finish

SCRIPT = r"""
local inbox, back = mp.Queue(), mp.Queue()
-- a child started before the pipe existed receives an end from its parent
local p = mp.Process(function()
  local w = inbox:get(true, 20)
  w:send("child got the parent's end"); w:close()
  -- an open Lua file the parent opened after this child started arrives at the parent's position
  local f = inbox:get(true, 20)
  print("child read " .. tostring(f:read("l"))); f:close()
  -- and passes one of its own to a sibling started after it
  local r2, w2 = mp.Pipe(false)
  back:put(w2)                 -- kept open until received: only ptrace rights are in question
  assert(r2:poll(20), "the sibling's message never came")
  print(r2:recv())
  w2:close()
end)
p:start()
local sib = mp.Process(function() local w = back:get(true, 20); w:send("sibling got the child's end"); w:close() end)
sib:start()
local r, w = mp.Pipe(false)
inbox:put(w)
local f = assert(io.open("data.txt"))
assert(f:read("l") == "line one")
inbox:put(f)
assert(r:poll(20), "the child's message never came")
print(r:recv())
w:close()
sib:join(); p:join()
print("exitcodes", p.exitcode, sib.exitcode)
"""

EXPECTED = ["child got the parent's end", "child read line two", "sibling got the child's end", "exitcodes\t0\t0"]


def run_unprivileged(binary, workdir, split_uids=False):
    cmd = [binary, os.path.join(workdir, "scenario.lua")]
    if os.geteuid() == 0:
        ids = ["--ruid=65534", "--euid=65533"] if split_uids else ["--reuid=65534"]
        cmd = ["setpriv"] + ids + ["--regid=65534", "--clear-groups", "--inh-caps=-all"] + cmd
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": workdir}
    return subprocess.run(cmd, cwd=workdir, env=env, capture_output=True, timeout=120,
                          stdin=subprocess.DEVNULL)


def check(r):
    out = r.stdout.decode(errors="replace").splitlines()
    err = r.stderr.decode(errors="replace")
    assert r.returncode == 0, f"exit {r.returncode}: {err.strip()[-600:]}"
    assert sorted(out) == sorted(EXPECTED), f"output {out!r}, stderr {err.strip()[-400:]!r}"


def workspace():
    d = tempfile.mkdtemp(prefix="luamp-ptrace-")
    os.chmod(d, 0o755)
    with open(os.path.join(d, "scenario.lua"), "w") as f:
        f.write(SCRIPT)
    os.chmod(os.path.join(d, "scenario.lua"), 0o644)
    with open(os.path.join(d, "data.txt"), "w") as f:
        f.write("line one\nline two\n")
    os.chmod(os.path.join(d, "data.txt"), 0o644)
    return d


can_switch = os.geteuid() != 0 or shutil.which("setpriv") is not None


@test
def pipe_ends_reach_running_processes_in_a_non_dumpable_tree():
    if os.geteuid() != 0 or shutil.which("setpriv") is None:
        print("skipped: needs root and setpriv to start luamp with split real/effective uids")
        return
    d = workspace()
    try:
        exe = os.path.join(d, "luamp")
        shutil.copy(LUAMP, exe)
        os.chmod(exe, 0o755)
        check(run_unprivileged(exe, d, split_uids=True))
    finally:
        shutil.rmtree(d, ignore_errors=True)


@test
def pipe_ends_reach_running_processes_under_yama_ptrace_scope_1():
    knob = "/proc/sys/kernel/yama/ptrace_scope"
    if not os.path.exists(knob):
        print(f"skipped: {knob} is absent (this kernel has no Yama LSM)")
        return
    if not can_switch or not os.access(knob, os.W_OK):
        print(f"skipped: cannot write {knob} (or become an unprivileged user) here")
        return
    with open(knob) as f:
        saved = f.read().strip()
    d = workspace()
    try:
        try:
            with open(knob, "w") as f:
                f.write("1")
        except OSError as e:
            print(f"skipped: cannot set {knob} to 1: {e}")
            return
        exe = os.path.join(d, "luamp")
        shutil.copy(LUAMP, exe)
        os.chmod(exe, 0o755)
        check(run_unprivileged(exe, d))
    finally:
        with open(knob, "w") as f:
            f.write(saved)
        shutil.rmtree(d, ignore_errors=True)


finish()
