#!/usr/bin/env python3
"""A kill storm on futures: SIGKILL random pool workers every 20-100 ms while luamp submits
5,000 tasks (a third of them with retries = 2) and collects them with mp.as_completed. Every
task must complete or fail exactly once (a failure only as WorkerLost by signal 9, never more
than the kills), results must be right, nothing may hang, and no child may outlive luamp.
LUAMP_LONG=1: 50,000 tasks."""
import os, random, subprocess, tempfile, time

from harness import LUAMP, LONG, test, finish, alive, children

SCRIPT = r'''
local mp = require "mp"
local N = tonumber(arg[1])
local out = assert(io.open(arg[2], "w"))
out:setvbuf("line")
local pool <close> = mp.Pool(3)
print("ready") io.stdout:flush()
local function f(x) mp.sleep(0.001 * (x % 4)) return x * 2 end
local fs = {}
for i = 1, N do
  if i % 3 == 0 then fs[i] = pool:apply_async(f, {i}, {retries = 2}) else fs[i] = pool:submit(f, i) end
end
local n = 0
for r, i in mp.as_completed(fs, 600) do
  local e = r:exception()
  if e then out:write(i, " lost ", e.kind, " ", tostring(e.signal), "\n")
  else out:write(i, " ok ", r:result(), "\n") end
  n = n + 1
end
out:write("done ", n, "\n")
'''


@test
def storm_on_submit_and_as_completed():
    n = 50000 if LONG else 5000
    d = tempfile.mkdtemp(prefix="luamp-fstorm-")
    script = os.path.join(d, "storm.lua")
    log = os.path.join(d, "log")
    with open(script, "w") as f:
        f.write(SCRIPT)
    p = subprocess.Popen([LUAMP, script, str(n), log], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert p.stdout.readline().strip() == "ready"
    kills = 0
    rng = random.Random(16)
    deadline = time.monotonic() + (1200 if LONG else 240)
    seen_children = set()
    while p.poll() is None:
        assert time.monotonic() < deadline, f"no end after {kills} kills: a hang"
        kids = [c for c in children(p.pid) if alive(c)]
        seen_children.update(kids)
        if kids:
            try:
                os.kill(rng.choice(kids), 9)
                kills += 1
            except ProcessLookupError:
                pass
        time.sleep(rng.uniform(0.02, 0.1))
    err = p.stderr.read()
    assert p.returncode == 0, f"luamp exited {p.returncode}: {err[-2000:]}"
    outcome = {}
    done = None
    with open(log) as f:
        for line in f:
            w = line.split()
            if w[0] == "done":
                done = int(w[1])
                continue
            i = int(w[0])
            assert i not in outcome, f"task {i} reported twice"
            outcome[i] = w[1:]
    assert done == n, f"as_completed gave {done} of {n}"
    assert sorted(outcome) == list(range(1, n + 1)), "every task has an outcome"
    lost = 0
    for i, o in outcome.items():
        if o[0] == "ok":
            assert int(o[1]) == 2 * i, f"task {i}: wrong result {o}"
        else:
            assert o[1:] == ["WorkerLost", "9"], f"task {i}: {o}"
            lost += 1
    assert lost <= kills, f"{lost} tasks lost for {kills} kills"
    time.sleep(0.2)
    left = [c for c in seen_children if alive(c)]
    assert not left, f"children outlived luamp: {left}"
    print(f"  {n} tasks, {kills} kills, {lost} lost (WorkerLost), the rest ok")


finish()
