-- Futures on a pool: submit, as_completed, wait, timeouts, retries, errors = "return", cancel.
-- Run: luamp examples/pool_futures.lua
local mp = require "mp"

local pool <close> = mp.Pool(2)

-- Results in completion order (two workers: 0.3 and 0.4 start first).
local fs = {}
for i = 1, 4 do fs[i] = pool:submit(function(d) mp.sleep(d) return d end, (5 - i) * 0.1) end
for f, i in mp.as_completed(fs) do print("finished", i, f:result()) end

-- Work goes on while the host does something else (here: sleeps).
local later = pool:submit(function() return "ready" end)
mp.sleep(0.2)
print("done while the host slept:", later:done(), later:result())

-- ... and while it blocks on another mp object: 2,000 tasks with 4 KiB each way (more than the
-- pipes hold, and slower than the host submits) all run while the host waits on a queue for the
-- last one's message.
local q = mp.Queue()
local big = string.rep("x", 4096)
for i = 1, 2000 do
  pool:apply_async(function(s, last) mp.sleep(0.001) if last then q:put("the last task ran") end return s end, {big, i == 2000})
end
print(q:get(true, 60))

-- A task stuck (even in C) is killed at its timeout; the others go on.
local r = pool:map(function(x)
  if x == 3 then os.execute("sleep 5") end
  return x * 10
end, {1, 2, 3, 4}, {timeout = 0.5, errors = "return"})
for i = 1, r.n do print(i, type(r[i]) == "table" and r[i].kind or r[i]) end

-- Errors keep their value.
local e = pool:submit(function() error({code = 42}) end):exception()
print(e.kind, e.value.code)

-- mp.wait mixes futures with events, queues, pipe ends and processes.
local ev = mp.Event()
local slow = pool:submit(mp.sleep, 10)
local done = mp.wait({slow, ev}, 0.1)
print("after 0.1 s:", #done, "done")
print("cancelled a running task:", slow:cancel{force = true}, slow:cancelled())
