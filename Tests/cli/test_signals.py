"""Ctrl-C caught by pcall during every blocking mp call, once (issue 11 item 5).

The script says which call it is about to block in by writing a marker file; the driver waits for
the file, then for luamp's only thread to be asleep in the kernel (/proc/PID/stat state S), and
only then sends SIGINT. pcall must catch `interrupted!` and the script must go on: no second
`interrupted!` outside the pcall (at the next instruction, or in the next blocking call).
"""
import os, signal, subprocess, sys, tempfile, time
from harness import LUAMP, test, finish

TMP = tempfile.mkdtemp(prefix="luamp-signals-")

SCRIPT = r"""
local mp = require "mp"
local dir = arg[1]
local function blocking(name)            -- the driver sends SIGINT once this file exists
  local f = assert(io.open(dir .. "/" .. name, "w")); f:close()
end
local function case(name, setup)
  local call, cleanup = setup()
  local ok, err = pcall(function() blocking(name); call() end)
  -- Outside the pcall from here: a hook left armed raises at the next instruction, a flag
  -- left set raises in the next blocking call.
  local after = 0
  for i = 1, 1000 do after = after + i end
  mp.sleep(0.001)
  if cleanup then cleanup() end
  io.write(name, "\t", tostring(ok), "\t", tostring(err):match("interrupted!") or tostring(err), "\n")
  io.flush()
end

case("sleep", function() return function() mp.sleep(60) end end)
case("queue_get", function() local q = mp.Queue(); return function() q:get() end end)
case("event_wait", function() local e = mp.Event(); return function() e:wait() end end)
case("semaphore_acquire", function() local s = mp.Semaphore(0); return function() s:acquire() end end)
case("lock_acquire", function()
  local l, held = mp.Lock(), mp.Event()
  local p = mp.Process(function() l:acquire(); held:set(); mp.sleep(60) end)
  p:start(); held:wait()
  return function() l:acquire() end, function() p:kill(); p:join() end
end)
case("condition_wait", function()
  local c = mp.Condition()
  return function() c:acquire(); c:wait() end, function() c:release() end
end)
case("pipe_recv", function() local a, b = mp.Pipe(); return function() a:recv() end, function() b:close() end end)
case("process_join", function()
  local p = mp.Process(function() mp.sleep(60) end)
  p:start()
  return function() p:join() end, function() p:kill(); p:join() end
end)
case("pool_map", function()
  local pool = mp.Pool(1)
  return function() pool:map(function() mp.sleep(60) end, {1}) end, function() pool:terminate() end
end)
print("end")
"""

CASES = ["sleep", "queue_get", "event_wait", "semaphore_acquire", "lock_acquire", "condition_wait",
         "pipe_recv", "process_join", "pool_map"]


def state(pid):
    with open(f"/proc/{pid}/stat") as f:
        return f.read().rsplit(")", 1)[1].split()[0]


def wait_for(cond, secs, what):
    deadline = time.monotonic() + secs
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting for " + what)
        time.sleep(0.005)


@test
def ctrl_c_in_every_blocking_call_is_caught_once_by_pcall():
    path = os.path.join(TMP, "blocking.lua")
    with open(path, "w") as f:
        f.write(SCRIPT)
    p = subprocess.Popen([LUAMP, path, TMP], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        for name in CASES:
            marker = os.path.join(TMP, name)
            wait_for(lambda: os.path.exists(marker) or p.poll() is not None, 60, name + " to start")
            assert p.poll() is None, (name, p.returncode, p.stderr.read())
            # Asleep in the kernel: the blocking call is under way (a Lua loop would be R).
            wait_for(lambda: state(p.pid) in ("S", "D"), 30, name + " to block")
            p.send_signal(signal.SIGINT)
            line = p.stdout.readline()
            assert line == f"{name}\tfalse\tinterrupted!\n", (name, line, p.stderr.read() if not line else "")
        out = p.stdout.read()   # not communicate(): it would skip what readline buffered
        err = p.stderr.read()
        p.wait(timeout=60)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    assert p.returncode == 0 and out == "end\n", (p.returncode, out, err)


@test
def ctrl_c_caught_in_one_blocking_call_leaves_the_next_ones_alone():
    # After a caught Ctrl-C, later blocking calls (join, map, get) wait normally and finish.
    marker = os.path.join(TMP, "second")
    code = f"""
local q = mp.Queue()
local ok, err = pcall(function()
  local f = io.open({marker!r}, "w"); f:close()
  mp.sleep(60)
end)
assert(not ok and err:match("interrupted!"), err)
local p = mp.Process(function() q:put("from child") end)
p:start(); p:join()
local pool = mp.Pool(1)
local r = pool:map(function(x) return x * 2 end, {{1, 2, 3}})
pool:close(); pool:join()
print(q:get(), p.exitcode, table.concat(r, ","))
"""
    p = subprocess.Popen([LUAMP, "-e", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        wait_for(lambda: os.path.exists(marker) or p.poll() is not None, 60, "the sleep")
        wait_for(lambda: p.poll() is not None or state(p.pid) in ("S", "D"), 30, "the sleep to block")
        p.send_signal(signal.SIGINT)
        out, err = p.communicate(timeout=60)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    assert p.returncode == 0 and out == "from child\t0\t2,4,6\n", (p.returncode, out, err)


finish()
