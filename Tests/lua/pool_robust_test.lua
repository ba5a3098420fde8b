-- mp.Pool under stress without any kill: work stealing never runs a task twice, a function a
-- worker cannot load fails only its tasks, initializer failures back off and recover.
local T = require "testlib"

local function sq(x) return x * x end

-- Each task appends "<id> <pid>\n" to a shared log with one unbuffered write (O_APPEND), so
-- the log holds one line per start of a task.
local function starts(path)
  local n, seen, twice, pids, npids = 0, {}, {}, {}, 0
  for line in io.lines(path) do
    local id, pid = line:match("^(%d+) (%d+)$")
    n = n + 1
    if seen[id] then twice[#twice + 1] = id end
    seen[id] = true
    if not pids[pid] then pids[pid] = true; npids = npids + 1 end
  end
  return n, twice, npids
end

T.test("stealing never runs a task twice: many short maps with chunksize 1 and uneven tasks", function()
  -- Many small maps of uneven tasks keep workers idle next to busy ones, so chunks are taken back
  -- from a worker's pipe all the time, several while one task runs. Each must run exactly once,
  -- and no worker may be stopped for answering a chunk it was not running.
  local log = os.tmpname()
  for _, run in ipairs{{4, 2500}, {2, 1500}} do     -- Pool(4) showed the most double starts
    local size, calls = run[1], run[2]
    io.open(log, "w"):close()
    local pool <close> = mp.Pool{processes = size, initializer = function(path)
      LOG = assert(io.open(path, "a")); LOG:setvbuf("no")
    end, initargs = {log}}
    local tasks = 0
    for call = 1, calls do
      local xs = {}
      for i = 1, 5 + call % 4 do xs[i] = {call * 10 + i, (i * 7 + call) % 5} end
      tasks = tasks + #xs
      local r = pool:map(function(x)
        LOG:write(x[1] .. " " .. mp.getpid() .. "\n")
        local s = 0
        for k = 1, x[2] * 3000 do s = s + k end
        return x[1]
      end, xs, 1)
      T.eq(r.n, #xs)
      for i = 1, #xs do T.eq(r[i], xs[i][1]) end
    end
    local n, twice, npids = starts(log)
    T.eq(#twice, 0, "Pool(" .. size .. "): tasks started twice (" .. table.concat(twice, " ", 1, math.min(#twice, 10)) .. ")")
    T.eq(n, tasks, "Pool(" .. size .. "): task starts")
    T.eq(npids <= size, true, "Pool(" .. size .. "): " .. npids .. " workers ran tasks (healthy ones were replaced)")
  end
  os.remove(log)
end)

T.test("a function a worker cannot load fails its tasks and leaks nothing in the worker", function()
  local pool <close> = mp.Pool(1)
  -- How deep a task can recurse before "stack overflow": one stack slot per level, so a slot
  -- left behind on the worker's task thread shows as one level less.
  local function depth()
    local d = 0
    local function r() d = d + 1; r() end
    pcall(r)
    return d
  end
  local pid, d0 = pool:apply(function() return mp.getpid() end), pool:apply(depth)
  -- A C function the host can name (mp.unknown_here) but the worker, forked before, cannot.
  mp.unknown_here = coroutine.wrap(function() end)
  local g = mp.unknown_here
  for i = 1, 300 do
    local e = T.raises("could not be loaded in the worker: unknown C function 'mp.unknown_here'",
                       pool.apply, pool, function() return g, i end)
    T.eq(e.kind, "RemoteError")
  end
  mp.unknown_here = nil
  T.eq(pool:apply(function(x) return x * 2 end, {21}), 42)
  T.eq(pool:apply(depth), d0, "recursion depth in the worker (stack slots leaked)")
  T.eq(pool:apply(function() return mp.getpid() end), pid, "the worker was replaced")
end)

T.test("an initializer that keeps failing: tasks fail, retries back off, the pool recovers", function()
  local flag, log = os.tmpname(), os.tmpname()     -- the initializer fails while `flag` exists
  io.open(log, "w"):close()
  local pool <close> = mp.Pool{processes = 2, initializer = function(f, l)
    local out = assert(io.open(l, "a")); out:write("x"); out:close()
    if io.open(f) then error("not yet") end
  end, initargs = {flag, log}}
  local function runs() local f = io.open(log); local n = #f:read("a"); f:close(); return n end
  local e = T.raises("pool initializer failed in %d+ workers in a row .*not yet", pool.apply, pool, sq, {3})
  T.eq(e.kind, "RemoteError")
  -- Broken: calls fail at once; meanwhile replacements are tried with a growing delay, not
  -- in a loop (Python's pool forks a new worker as fast as they die).
  local t0, before, calls = mp.monotonic(), runs(), 0
  while mp.monotonic() - t0 < 1.5 do
    T.raises("pool initializer failed", pool.apply, pool, sq, {3})
    calls = calls + 1
  end
  T.eq(calls > 10, true, "calls while broken")
  T.eq(runs() - before <= 6, true, (runs() - before) .. " initializer runs in 1.5 s (no backoff)")
  -- The cause goes away: a later attempt succeeds and the pool runs tasks on every worker again.
  os.remove(flag)
  local t1, ok, v = mp.monotonic(), false, nil
  while not ok and mp.monotonic() - t1 < 30 do ok, v = pcall(pool.apply, pool, sq, {3}) end
  T.eq(v, 9, "after the initializer recovered")
  local pids, n = {}, 0
  for _, pid in ipairs(pool:map(function() mp.sleep(0.2) return mp.getpid() end, {1, 2, 3, 4}, 1)) do
    if not pids[pid] then pids[pid] = true; n = n + 1 end
  end
  T.eq(n, 2, "workers running tasks after the recovery")
  os.remove(log)
end)

T.done()
