-- Pools keep working while the host runs pure Lua (no mp call at all): results are read, big
-- results drained, a dead worker's queued tasks given to the others, uneven work rebalanced.
-- Every task records that it ran by appending one byte to a file; the host's busy loop reads
-- that file with io only, so the loop itself makes no mp call.
local T = require "testlib"

local dir, path = T.tempdir()
local count = T.filesize

-- Pure Lua until `cond()` holds (checked every ~20,000 loop turns); fails after `secs` of wall time.
local function busy_until(cond, what, secs)
  local deadline = os.time() + (secs or 60)
  while not cond() do
    if os.time() > deadline then error("timed out with the host busy in pure Lua: " .. what, 2) end
    local x = 0
    for i = 1, 20000 do x = x + i end
  end
end

-- A task body: appends one byte to `file` (the handle kept in the worker, per file).
local function mark(file)
  OPEN = OPEN or {}
  local f = OPEN[file]
  if not f then f = assert(io.open(file, "a")); OPEN[file] = f end
  f:write("x")
  f:flush()
end

-- 100,000 of each with LUAMP_LONG=1 (about 5 s in a release build; the debug build pays the
-- pump's O(pending jobs) scans, see docs/pools.md), 3,000 in CI.
local N = T.long and 100000 or 3000

-- A task body: waits until the host created `file` (so everything is submitted before any
-- task runs, and the host is in its busy loop while they run).
local function wait_go(file)
  GO = GO or {}
  while not GO[file] do
    local f = io.open(file)
    if f then f:close(); GO[file] = true else mp.sleep(0.001) end
  end
end

local function go(file) assert(io.open(file, "w")):close() end

T.test(N .. " apply_async and a " .. N .. "-item map_async (chunksize 1) finish while the host runs pure Lua", function()
  local pool <close> = mp.Pool(2)
  local file, start = path("many"), path("many-go")
  local function one(i) wait_go(start); mark(file); return i end
  local rs = {}
  for i = 1, N do rs[i] = pool:apply_async(one, {i}) end
  local xs = {}
  for i = 1, N do xs[i] = i end
  local m = pool:map_async(function(x) wait_go(start); mark(file); return x * 2 end, xs, 1)
  go(start)
  busy_until(function() return count(file) >= 2 * N end, (2 * N) .. " tasks", 120)
  -- A task marks before its result is written: a little more pure Lua (about 60 service ticks)
  -- lets the last results travel, then every one must be ready without waiting.
  local c0 = os.clock()
  while os.clock() - c0 < 0.3 do end
  for i = N, 1, -1 do
    if not rs[i]:ready() then error("apply_async #" .. i .. " not ready when the loop ended") end
  end
  T.eq(m:ready(), true, "map_async ready when the loop ended")
  T.eq(rs[N]:get(), N)
  local r = m:get()
  T.eq(#r, N)
  T.eq(r[N], 2 * N)
end)

T.test("results beyond the pipes' capacity (300 x 64 KiB) do not stall workers while the host is busy", function()
  local pool <close> = mp.Pool(2)
  local file, start = path("big"), path("big-go")
  local function big() wait_go(start); mark(file); return string.rep("y", 65536) end
  local rs = {}
  for i = 1, 300 do rs[i] = pool:apply_async(big) end
  go(start)
  busy_until(function() return count(file) >= 300 end, "300 results of 64 KiB", 60)
  for i = 1, 300 do T.eq(#rs[i]:get(), 65536) end
end)

T.test("kill -9 of a worker while the host runs pure Lua: only its running task fails, the rest run on", function()
  local pool <close> = mp.Pool(2)
  local pidfile, file = path("victim"), path("after-kill")
  local victim = pool:apply_async(function()
    local f = assert(io.open(pidfile .. ".tmp", "w")); f:write(mp.current_process().pid); f:close()
    os.rename(pidfile .. ".tmp", pidfile)
    local deadline = os.time() + 60
    while os.time() < deadline do end          -- runs until it is killed
    return "not killed"
  end)
  local rs = {}
  for i = 1, 200 do rs[i] = pool:apply_async(function() mp.sleep(0.005); mark(file); return i end) end
  busy_until(function() return count(pidfile) > 0 end, "the victim's pid", 60)
  local f = io.open(pidfile); local pid = tonumber(f:read("a")); f:close()
  assert(os.execute("kill -9 " .. pid))
  busy_until(function() return count(file) >= 200 end, "200 tasks after the kill", 60)
  for i = 1, 200 do T.eq(rs[i]:get(), i) end
  local ok, err = pcall(victim.get, victim)
  T.eq(ok, false, "the killed task failed")
  T.eq(err.kind, "WorkerLost")
  T.eq(err.pid, pid, "WorkerLost names the killed worker")
  -- The next pool call starts the replacement: two workers again, meeting at a rendezvous.
  local met = mp.Value("i", 0)
  local both = pool:map(function()
    local lock = met:get_lock()
    lock:acquire(); met.value = met.value + 1; lock:release()
    local deadline = os.time() + 30
    while met.value < 2 and os.time() < deadline do mp.sleep(0.001) end
    return met.value >= 2 and mp.current_process().pid or false
  end, {1, 2}, 1)
  T.eq(type(both[1]), "number", "two workers run at once after the replacement")
  T.eq(both[1] ~= both[2] and both[1] ~= pid and both[2] ~= pid, true, "two live workers, neither the dead one")
end)

T.test("uneven work in one go: short tasks finish on the other worker while a long one runs", function()
  local pool <close> = mp.Pool(2)
  local file = path("short")
  local long = pool:apply_async(function()
    local deadline = os.time() + 30
    while count(file) < 200 and os.time() < deadline do end   -- runs until the short ones are done
    return count(file)
  end)
  local rs = {}
  for i = 1, 200 do rs[i] = pool:apply_async(function() mp.sleep(0.005); mark(file); return i end) end
  busy_until(function() return count(file) >= 200 end, "200 short tasks beside a long one", 60)
  T.eq(long:get(), 200, "the long task saw every short task finish while it ran")
  for i = 1, 200 do T.eq(rs[i]:get(), i) end
end)

T.test("pure Lua inside the coroutine that submitted keeps the pool moving (1,000 tasks, 4 MiB each way)", function()
  local pool <close> = mp.Pool(2)
  local file, start = path("co"), path("co-go")
  local arg = string.rep("a", 4096)
  local function big(a) wait_go(start); mark(file); return string.rep("r", #a) end
  local rs = {}
  coroutine.wrap(function()
    for i = 1, 1000 do rs[i] = pool:apply_async(big, {arg}) end
    go(start)
    busy_until(function() return count(file) >= 1000 end, "1000 tasks submitted from a coroutine", 60)
  end)()
  for i = 1, 1000 do T.eq(#rs[i]:get(), 4096) end
end)

os.execute("rm -rf " .. dir)
T.done()
