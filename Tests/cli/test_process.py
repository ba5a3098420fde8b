#!/usr/bin/env python3
"""mp.Process as a user sees it from outside: output through pipes and files, signals, Ctrl-C,
kill -9 of luamp, end-of-script join/terminate, os.exit, and the multi-thread guard."""
import os, signal, subprocess, sys, tempfile, time

from harness import LUAMP, ROOT, LONG, test, finish, alive, children, wait_dead, LUA_PCALL_ROUNDS  # noqa: F401
TMP = tempfile.mkdtemp(prefix="luamp-proc-")


def script(text):
    path = os.path.join(TMP, f"s{abs(hash(text))}.lua")
    with open(path, "w") as f:
        f.write(text)
    return path


def run(text, timeout=60, **kw):
    return subprocess.run([LUAMP, script(text)], capture_output=True, text=True, timeout=timeout, **kw)


def read_pids(proc, n):
    """Reads 'pid N' lines from a running luamp until n are seen."""
    pids = []
    while len(pids) < n:
        line = proc.stdout.readline()
        if not line:
            raise AssertionError(f"luamp ended early; stderr: {proc.stderr.read()}")
        if line.startswith("pid "):
            pids.append(int(line.split()[1]))
    return pids


FLOOD = """
io.write("before fork, no newline yet ")
local ps = {}
for i = 1, 50 do
  ps[i] = mp.Process(function()
    for j = 1, 100 do print("child " .. i .. " line " .. j) end
    io.write("child " .. i .. " unterminated")   -- no newline: must still arrive (flush + _exit)
  end)
  ps[i]:start()
end
for i = 1, 50 do ps[i]:join() end
print("\\nparent done")
"""


def check_flood(out):
    assert out.count("before fork, no newline yet ") == 1, "the parent's pending output was duplicated or lost"
    # The parent's pending text prefixes whichever child writes first; unterminated writes run into the next.
    lines = out.replace("before fork, no newline yet ", "").replace(" unterminated", " unterminated\n").splitlines()
    for i in range(1, 51):
        for j in range(1, 101):
            n = lines.count(f"child {i} line {j}")
            assert n == 1, f"'child {i} line {j}' seen {n} times"
    for i in range(1, 51):
        assert out.count(f"child {i} unterminated") == 1, f"child {i}'s unterminated write seen {out.count(f'child {i} unterminated')} times"
    assert out.count("parent done") == 1


@test
def flood_through_a_pipe_every_line_once():
    r = run(FLOOD)
    assert r.returncode == 0, r.stderr
    check_flood(r.stdout)


@test
def flood_into_a_file_every_line_once():
    path = os.path.join(TMP, "flood.txt")
    with open(path, "w") as f:
        r = subprocess.run([LUAMP, script(FLOOD)], stdout=f, stderr=subprocess.PIPE, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    with open(path) as f:
        check_flood(f.read())


@test
def uncaught_error_in_child_prints_name_pid_and_traceback():
    r = run("""
local p = mp.Process{name = "w1", target = function() local t = nil; return t.x end}
p:start(); p:join()
print("exitcode", p.exitcode, "pid", p.pid)
""")
    assert r.returncode == 0, r.stderr
    pid = r.stdout.split()[-1]
    assert f"exitcode\t1\tpid\t{pid}" in r.stdout, r.stdout
    assert f"Process w1 (pid {pid}): " in r.stderr, r.stderr
    assert "attempt to index a nil value" in r.stderr and "stack traceback:" in r.stderr, r.stderr


@test
def end_of_script_joins_children_and_terminates_daemons():
    t0 = time.monotonic()
    r = run("""
mp.Process(function() mp.sleep(0.3); print("worker finished") end):start()
local d = mp.Process{target = function() mp.sleep(60); print("daemon should not print") end, daemon = true}
d:start()
print("pid " .. d.pid)
print("main chunk ends")
""")
    assert r.returncode == 0, r.stderr
    assert r.stdout.index("main chunk ends") < r.stdout.index("worker finished"), r.stdout
    assert "daemon should not print" not in r.stdout
    pid = int(r.stdout.split("pid ")[1].split()[0])
    assert not alive(pid), "daemon still alive"
    assert time.monotonic() - t0 < 30


@test
def error_in_main_chunk_still_joins_children():
    r = run("""
mp.Process(function() mp.sleep(0.2); print("worker finished") end):start()
error("main failed")
""")
    assert r.returncode == 1, (r.returncode, r.stderr)
    assert "worker finished" in r.stdout and "main failed" in r.stderr, (r.stdout, r.stderr)


@test
def os_exit_in_host_joins_children_first_and_keeps_its_code():
    r = run("""
mp.Process(function() mp.sleep(0.2); print("worker finished") end):start()
os.exit(3)
""")
    assert r.returncode == 3 and "worker finished" in r.stdout, (r.returncode, r.stdout, r.stderr)
    r = run("mp.Process(function() print('w') end):start(); os.exit(false, true)")
    assert r.returncode == 1 and r.stdout == "w\n", (r.returncode, r.stdout, r.stderr)
    r = run("mp.Process(function() print('w') end):start(); os.exit(true)")
    assert r.returncode == 0 and r.stdout == "w\n", (r.returncode, r.stdout, r.stderr)


SLEEPERS = """
local ps = {}
for i = 1, 4 do ps[i] = mp.Process(function() mp.sleep(60) end); ps[i]:start(); print("pid " .. ps[i].pid) end
io.stdout:flush()
for i = 1, 4 do ps[i]:join() end
"""


@test
def kill_9_of_luamp_leaves_no_child_alive():
    p = subprocess.Popen([LUAMP, script(SLEEPERS)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    pids = read_pids(p, 4)
    assert all(alive(x) for x in pids)
    p.kill()
    p.wait()
    assert wait_dead(pids, 1.0), [x for x in pids if alive(x)]


@test
def ctrl_c_to_the_group_stops_everyone_quietly():
    p = subprocess.Popen([LUAMP, script(SLEEPERS)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                         start_new_session=True)
    pids = read_pids(p, 4)
    os.killpg(p.pid, signal.SIGINT)
    try:
        rc = p.wait(timeout=20)
    except subprocess.TimeoutExpired:
        p.kill()
        raise AssertionError("luamp hung after Ctrl-C")
    err = p.stderr.read()
    # 130 from a CLI that handles SIGINT, or death by SIGINT from one that does not.
    assert rc in (130, -signal.SIGINT), (rc, err)
    assert "Process Process-" not in err, f"a child reported an error: {err}"
    assert wait_dead(pids, 1.0)


@test
def sigint_to_the_host_alone_leaves_no_child_behind():
    p = subprocess.Popen([LUAMP, script(SLEEPERS)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                         start_new_session=True)
    pids = read_pids(p, 4)
    p.send_signal(signal.SIGINT)
    try:
        p.wait(timeout=20)
    except subprocess.TimeoutExpired:
        p.kill()
        raise AssertionError("luamp hung after SIGINT")
    assert wait_dead(pids, 2.0), [x for x in pids if alive(x)]


@test
def child_interrupted_by_p_interrupt_dies_quietly():
    r = run("""
local p = mp.Process(function() mp.sleep(60) end)
p:start(); mp.sleep(0.05); p:interrupt(); p:join()
print(p.exitcode)
""")
    assert r.returncode == 0 and r.stdout == "-2\n", (r.stdout, r.stderr)
    assert "interrupted" not in r.stderr and "traceback" not in r.stderr, r.stderr


@test
def extra_threads_make_start_refuse_with_a_clear_error():
    src = os.path.join(TMP, "thread.c")
    lib = os.path.join(TMP, "libthread.so")
    with open(src, "w") as f:
        f.write("#include <pthread.h>\n#include <unistd.h>\n"
                "static void *idle(void *a) { (void)a; for (;;) pause(); return 0; }\n"
                "__attribute__((constructor)) static void start(void) { pthread_t t; pthread_create(&t, 0, idle, 0); }\n")
    subprocess.run(["gcc", "-shared", "-fPIC", "-o", lib, src, "-lpthread"], check=True)
    env = dict(os.environ, LD_PRELOAD=lib)
    r = run("""
local ok, err = pcall(function() mp.Process(print):start() end)
print(ok, err)
""", env=env)
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("false\t") and "this process has 2 threads" in r.stdout, r.stdout
    # Without the extra thread the same script forks fine.
    r = run("local p = mp.Process(function() end); p:start(); p:join(); print(p.exitcode)")
    assert r.stdout == "0\n", (r.stdout, r.stderr)


@test
def child_does_not_inherit_other_childrens_descriptors():
    r = run("""
local function fds(tag)   -- every open fd of this process with its target, on stderr
  local h = io.popen("for f in /proc/" .. mp.getpid() .. "/fd/*; do echo " .. tag .. " $(readlink $f); done")
  io.stderr:write(h:read("a")); h:close()
end
fds("before")
local a = mp.Process(function() mp.sleep(5) end); a:start()
fds("host")
local b = mp.Process(function() fds("child") end); b:start(); b:join()
a:kill(); a:join()
""")
    assert r.returncode == 0, r.stderr
    seen = {}
    for line in r.stderr.splitlines():
        tag, _, target = line.partition(" ")
        if target:   # popen's own write end may close while the shell lists: gone, empty target
            seen.setdefault(tag, []).append(target)
    held_for_a = [t for t in seen["host"] if t not in seen["before"]]
    assert any("pidfd" in t for t in held_for_a) and any(t.startswith("pipe:") for t in held_for_a), held_for_a
    leaked = [t for t in held_for_a if t in seen["child"]]
    assert not leaked, f"child b holds a's descriptors {leaked}"


@test
def failing_tostring_in_child_never_resumes_the_hosts_script():
    # The child's error object has a __tostring that raises. Before the fix that raise unwound
    # into the pcall the parent was inside at fork, so the child ran the rest of the script.
    r = run("""
local mp = require "mp"
local ok, err = pcall(function()
  local p = mp.Process(function()
    error(setmetatable({}, {__tostring = function() error("tostring boom") end}))
  end)
  p:start(); p:join()
  print("joined", p.exitcode)
end)
print("after pcall", mp.getpid(), ok)
""")
    assert r.returncode == 0, r.stderr
    assert r.stdout.count("after pcall") == 1 and "joined\t1" in r.stdout, r.stdout
    assert "(error object is a table value; its __tostring failed)" in r.stderr, r.stderr


@test
def ctrl_c_just_before_a_fork_does_not_interrupt_the_child():
    # SIGINTs land at random points of a start/join loop. One that arrives after the last Lua
    # instruction before the fork arms the parent's interrupt hook; the child must not inherit
    # it (it used to raise "interrupted!" at its first instruction). Every child that starts
    # must exit 0; the parent catches its own "interrupted!" errors and goes on.
    path = script("""
local mp = require "mp"
local procs, stop, said = {}, false, false
local function round()
  if not said then said = true; io.write("ready\\n"); io.flush() end
  local p = mp.Process(function() end)
  procs[#procs + 1] = p
  p:start()
  while p:is_alive() do end           -- join would keep raising once the interrupt flag is set
end
""" + LUA_PCALL_ROUNDS + """-- A SIGINT can also land between one pcall returning and the next one taking over (its call
-- hook fires before it protects anything): each level of nesting retries that window, so the
-- chunk itself is only hit if every level's window is hit in a row.
local function nested1() while not stop do pcall(rounds) end end
local function nested2() while not stop do pcall(nested1) end end
while not stop do pcall(nested2) end
local started, bad = 0, 0
for _, p in ipairs(procs) do
  if p.pid then
    started = started + 1
    while p:is_alive() do end
    if p.exitcode ~= 0 then bad = bad + 1; io.stderr:write("child: ", tostring(p.error), "\\n") end
  end
end
print("started", started, "bad", bad)
""")
    stopfile = os.path.join(TMP, "stop-sigint")
    if os.path.exists(stopfile):
        os.remove(stopfile)
    p = subprocess.Popen([LUAMP, path, stopfile], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert p.stdout.readline() == "ready\n"
    rounds = 10000 if os.environ.get("LUAMP_LONG") else 2000   # ~10 hits expected per 2,000 unfixed
    for _ in range(rounds):
        p.send_signal(signal.SIGINT)
        time.sleep(0.0005)
    open(stopfile, "w").close()
    out, err = p.communicate(timeout=60)
    assert p.returncode == 0, (p.returncode, err[-2000:])
    fields = out.split()
    assert fields[0] == "started" and int(fields[1]) > 0 and fields[3] == "0", (out, err[-2000:])


@test
def example_process_says_hello_bob():
    r = subprocess.run([LUAMP, os.path.join(ROOT, "examples", "process.lua")], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and r.stdout == "hello bob\n", (r.stdout, r.stderr)


@test
def example_process_tree_prints_every_node_once():
    r = subprocess.run([LUAMP, os.path.join(ROOT, "examples", "process_tree.lua"), "3", "2"],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert len(lines) == 15, r.stdout
    paths = sorted(l.split()[0] for l in lines[1:])
    want = sorted([a for a in "12"] + [f"{a}.{b}" for a in "12" for b in "12"] +
                  [f"{a}.{b}.{c}" for a in "12" for b in "12" for c in "12"])
    assert paths == want, paths


finish()
