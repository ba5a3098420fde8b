#!/usr/bin/env python3
"""mp.Pool seen from outside: workers killed at random while 10,000 tasks run (every task gets a
result or a WorkerLost, none is lost or run twice), Ctrl-C during pool:map, luamp killed, pools left
open at the end of the script, and the seed example. LUAMP_LONG=1 runs a bigger chaos round."""
import os, random, re, signal, subprocess, sys, time

from harness import LUAMP, ROOT, LONG, test, finish, alive, children, wait_dead, scratch, LUA_PCALL_ROUNDS  # noqa: F401
TMP, script = scratch("luamp-pool-")


CHAOS = r"""
local N, log, out = tonumber(arg[1]), arg[2], arg[3]
local pool = mp.Pool{processes = 2, initializer = function(path)
  LOG = assert(io.open(path, "a")); LOG:setvbuf("no")
end, initargs = {log}}
local function task(i)
  LOG:write("s " .. i .. "\n")
  local s = 0
  for k = 1, 50000 do s = s + k end
  LOG:write("d " .. i .. "\n")
  return i * 2
end
local rs = {}
for i = 1, N do rs[i] = pool:apply_async(task, {i}) end
local f = assert(io.open(out, "w"))
local ok, lost, other = 0, 0, 0
for i = 1, N do
  local good, v = pcall(rs[i].get, rs[i])
  if good then
    ok = ok + 1; f:write(i, " ok ", v, "\n")
  elseif type(v) == "table" and v.kind == "WorkerLost" then
    lost = lost + 1; f:write(i, " lost ", v.pid, " ", tostring(v.signal), "\n")
  else
    other = other + 1; f:write(i, " other ", tostring(v):gsub("\n", " "), "\n")
  end
end
f:close()
print("ok " .. ok .. " lost " .. lost .. " other " .. other)
pool:close(); pool:join()
"""


@test
def chaos_random_worker_kills_lose_no_task():
    n = 100000 if LONG else 10000
    log, out = os.path.join(TMP, "chaos.log"), os.path.join(TMP, "chaos.out")
    p = subprocess.Popen([LUAMP, script("chaos.lua", CHAOS), str(n), log, out],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    kills, seen = 0, set()
    rng = random.Random(7)
    deadline = time.monotonic() + (1200 if LONG else 300)
    while p.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
        kids = [c for c in children(p.pid) if alive(c)]
        seen.update(kids)
        if kids:
            try:
                os.kill(rng.choice(kids), signal.SIGKILL)
                kills += 1
            except ProcessLookupError:
                pass
    if p.poll() is None:
        p.kill()
        raise AssertionError("the chaos run did not finish")
    stdout, stderr = p.communicate()
    assert p.returncode == 0, f"exit {p.returncode}: {stderr[-2000:]}"
    m = re.search(r"ok (\d+) lost (\d+) other (\d+)", stdout)
    assert m, stdout
    ok, lost, other = map(int, m.groups())
    assert other == 0, open(out).read()[:2000]
    assert ok + lost == n, (ok, lost, n)
    assert kills >= 5, f"only {kills} kills: the run was too short to mean anything"
    assert lost <= kills, f"{lost} WorkerLost for {kills} kills"
    starts, dones = {}, {}
    with open(log) as f:
        for line in f:
            kind, i = line.split()
            d = starts if kind == "s" else dones
            d[int(i)] = d.get(int(i), 0) + 1
    with open(out) as f:
        for line in f:
            parts = line.split()
            i = int(parts[0])
            assert starts.get(i, 0) <= 1, f"task {i} started {starts[i]} times"
            if parts[1] == "ok":
                assert int(parts[2]) == 2 * i, line
                assert starts.get(i) == 1 and dones.get(i) == 1, f"task {i}: result without exactly one run"
            else:
                assert parts[3] == "9", f"task {i}: WorkerLost should name SIGKILL: {line}"
    assert wait_dead(seen, 5), "workers outlived luamp"
    print(f"# chaos: {n} tasks, {kills} kills, {lost} WorkerLost, {ok} results", file=sys.stderr)


CTRL_C = r"""
local pool = mp.Pool(2)
local pids = pool:map(function() return mp.getpid() end, {1, 2}, 1)
print("pids " .. pids[1] .. " " .. pids[2]); io.stdout:flush()
pool:map(function(x) mp.sleep(30) return x end, {1, 2, 3, 4, 5, 6}, 1)
print("not reached")
"""


@test
def ctrl_c_during_map_stops_everything_with_one_message():
    p = subprocess.Popen([LUAMP, script("ctrlc.lua", CTRL_C)], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True, start_new_session=True)
    line = p.stdout.readline()
    assert line.startswith("pids "), line + p.stderr.read()
    pids = [int(x) for x in line.split()[1:]] + children(p.pid)
    time.sleep(0.3)
    t0 = time.monotonic()
    os.killpg(p.pid, signal.SIGINT)          # what a terminal's Ctrl-C does: the whole group
    try:
        out, err = p.communicate(timeout=10)
    except subprocess.TimeoutExpired:
        p.kill()
        raise AssertionError("luamp did not stop within 10 s of Ctrl-C")
    assert time.monotonic() - t0 < 5, "Ctrl-C took too long"
    assert "not reached" not in out
    assert p.returncode != 0
    assert err.count("interrupted!") <= 1, err
    if p.returncode > 0:                     # the command handles SIGINT: one clear message
        assert err.count("interrupted!") == 1, err
    assert "PoolWorker" not in err and "KeyboardInterrupt" not in err, err
    assert wait_dead(pids, 5), "workers survived Ctrl-C"


STORM = r"""
local mp = require "mp"
local MAXPOOLS = tonumber(arg[3])
local hits = mp.Array("i", 2 * MAXPOOLS + 2)      -- hits[N] = 1 once PoolWorker-N is running
local function init()
  hits[tonumber(mp.current_process().name:match("%d+"))] = 1
end
collectgarbage("stop")          -- a pool lost to an "interrupted!" is never collected (terminated)
local pools, stop, said, made, done = {}, false, false, 0, false
local function round()
  if not said then said = true; io.write("ready\n"); io.flush() end
  if made < MAXPOOLS then
    made = made + 1
    pools[#pools + 1] = mp.Pool(2, init)
  elseif not done then
    io.open(arg[2], "w"):close()
    done = true
  end
end
""" + LUA_PCALL_ROUNDS + r"""local function guarded(f) return function() while not stop do pcall(f) end end end
local loop = rounds                     -- nested guards: an "interrupted!" escapes them all
for _ = 1, 6 do loop = guarded(loop) end            -- only if six land back to back
loop()
-- No more SIGINTs. Every worker forked so far runs its initializer unless a SIGINT killed it
-- first: the numbers seen must have no gap. (Pool calls would raise: the interrupt flag stays set.)
local function gaps()
  local top, missing = 0, {}
  for n = 1, #hits do if hits[n] == 1 then top = n end end
  for n = 1, top do if hits[n] ~= 1 then missing[#missing + 1] = n end end
  return top, missing
end
local top, missing = gaps()
local deadline = os.time() + 10
while #missing > 0 and os.time() < deadline do top, missing = gaps() end
print("workers", top, "missing", #missing, table.concat(missing, ","))
"""


@test
def ctrl_c_just_after_a_worker_fork_does_not_kill_the_worker():
    # Terminal Ctrl-Cs (SIGINT to the whole process group) land at random points while pools are
    # created. A fresh worker must never die of one: it used to, if the SIGINT came before the
    # worker loop set SIGINT to ignored. The host catches its own "interrupted!" and goes on.
    stopfile, donefile = os.path.join(TMP, "storm-stop"), os.path.join(TMP, "storm-done")
    for f in (stopfile, donefile):
        if os.path.exists(f):
            os.remove(f)
    maxpools = 150 if LONG else 60
    p = subprocess.Popen([LUAMP, script("storm.lua", STORM), stopfile, donefile, str(maxpools)],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    assert p.stdout.readline() == "ready\n"
    t0 = time.monotonic()
    while not os.path.exists(donefile) and time.monotonic() - t0 < 60:
        os.killpg(p.pid, signal.SIGINT)
        time.sleep(random.uniform(0.0002, 0.002))
    open(stopfile, "w").close()
    out, err = p.communicate(timeout=60)
    assert p.returncode == 0, (p.returncode, err[-2000:])
    fields = out.split()
    assert fields[0] == "workers" and int(fields[1]) > 0, (out, err[-2000:])
    assert fields[3] == "0", f"workers killed by SIGINT before they ran: {out}"


KILLED = r"""
local pool = mp.Pool(2)
local pids = pool:map(function() return mp.getpid() end, {1, 2}, 1)
print("pids " .. pids[1] .. " " .. pids[2]); io.stdout:flush()
pool:map(function(x) mp.sleep(30) return x end, {1, 2}, 1)
"""


@test
def workers_die_with_a_killed_luamp():
    p = subprocess.Popen([LUAMP, script("killed.lua", KILLED)], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True)
    line = p.stdout.readline()
    assert line.startswith("pids "), line
    pids = children(p.pid)
    assert len(pids) == 2, pids
    p.kill()
    p.wait(10)
    assert wait_dead(pids, 5), "workers outlived a SIGKILLed luamp"


LEFT_OPEN = r"""
local pool = mp.Pool(2)
local r = pool:apply_async(function() mp.sleep(30) end)
local pids = pool:map(function() return mp.getpid() end, {1, 2, 3, 4}, 1)
local seen = {}
for i = 1, 4 do seen[pids[i]] = true end
for pid in pairs(seen) do print("pid " .. pid) end
"""


@test
def pools_left_open_are_terminated_at_the_end():
    t0 = time.monotonic()
    r = subprocess.run([LUAMP, script("open.lua", LEFT_OPEN)], capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stderr
    assert time.monotonic() - t0 < 10, "the end of the script waited for a busy worker"
    pids = [int(l.split()[1]) for l in r.stdout.splitlines() if l.startswith("pid ")]
    assert pids, r.stdout
    assert wait_dead(pids, 5), "a worker outlived the script"


@test
def seed_example_prints_the_articles_output():
    r = subprocess.run([LUAMP, os.path.join(ROOT, "examples", "pool.lua")], capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stderr
    assert r.stdout == "[1, 4, 9, 16, 25]\n", repr(r.stdout)


@test
def more_examples_show_imap_callbacks_and_worker_loss():
    r = subprocess.run([LUAMP, os.path.join(ROOT, "examples", "pool_more.lua")], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[:7] == [f"imap: {i}^2 = {i * i}" for i in range(1, 8)], lines
    assert "callback: 4+10=14, 4*10=40" in lines, lines
    assert "doomed:\tfalse\tWorkerLost\t3" in lines, lines
    assert lines[-1] == "fine:\tstill fine", lines


finish()
