-- The kill storm's workload (driven by test_pool_storm.py, which SIGKILLs luamp's children at
-- random while this runs): two pools with initializers (one recycling its workers), used through
-- map with chunksize 1 over uneven tasks, apply_async, imap, imap_unordered and tasks that put to
-- a queue, while producer processes feed a bounded queue the host drains.
-- Usage: luamp pool_storm.lua STOPFILE DIR
-- Logs (in DIR): starts.log ("s ID PID" when a task starts, written by the worker),
-- outcomes.log (the host: "ok ID VALUE", "lost ID PID SIGNAL TIME", "maplost PID SIGNAL TIME
-- ID…", "unordlost PID SIGNAL TIME", "missing ID", "qtask ID" for a task that puts to the queue,
-- "qmsg ID INTACT" for its message; TIME is mp.monotonic() when the loss was seen),
-- puts.log ("p PRODUCER SEQ" after a put returned), recv.log ("r PRODUCER SEQ INTACT" for each
-- message the host got).
-- Ends with "workers PID…" (the two big pools' workers, all running at once, after the slow
-- pool ran a task), waits for a line on stdin, then prints "rounds N tasks N".
local stopfile, dir = arg[1], arg[2]
local P = 3

local function open(name) local f = assert(io.open(dir .. "/" .. name, "a")); f:setvbuf("no"); return f end
local outcomes, recv = open("outcomes.log"), open("recv.log")
local function out(...) outcomes:write(table.concat({...}, " ") .. "\n") end

local function init(path)
  mp.sleep(0.005 + (mp.getpid() % 7) * 0.004)   -- long enough for kills to land in it
  LOG = assert(io.open(path, "a")); LOG:setvbuf("no")
  INIT = mp.getpid()
end

-- x = {id, work, sleep [, queue]}: logs its start, computes, sleeps (so kills land in running
-- tasks), puts to the queue if given.
local function task(x)
  assert(INIT == mp.getpid(), "a task ran in a worker whose initializer did not run")
  LOG:write("s " .. x[1] .. " " .. mp.getpid() .. "\n")
  local s = 0
  for k = 1, x[2] do s = s + k end
  if x[3] > 0 then mp.sleep(x[3]) end
  if x[4] then x[4]:put({x[1], string.rep("t", x[1] % 300)}) end
  return x[1] * 2
end

local pools = {
  mp.Pool{processes = P, initializer = init, initargs = {dir .. "/starts.log"}},
  mp.Pool{processes = P, initializer = init, initargs = {dir .. "/starts.log"}, maxtasksperchild = 4},
}
-- One worker that spends most of its life in a slow initializer (it retires after each task):
-- kills land there, several in a row.
local slow = mp.Pool{processes = 1, initializer = function(path) mp.sleep(0.2); init(path) end,
                     initargs = {dir .. "/starts.log"}, maxtasksperchild = 1}
local tq = mp.Queue()                    -- tasks' messages
local pq = mp.Queue(200)                 -- producers' messages
local stop = mp.Event()

local nextID = 0
local function newTask(round, i, q, quick)
  nextID = nextID + 1
  local k = (i * 7 + round) % 5
  if quick then return {nextID, k * 3000, 0} end         -- uneven, short: stealing all the time
  return {nextID, k * 20000, (nextID % 3) * 0.004, q}
end

local function isLost(e) return type(e) == "table" and e.kind == "WorkerLost" end
local function fail(what, e)
  error(what .. ": " .. (type(e) == "table" and (tostring(e.kind) .. ": " .. tostring(e.message)) or tostring(e)), 0)
end

-- Producers: processes putting numbered messages whose content is a function of the number.
local function payload(prod, seq) return string.rep(string.char(65 + (prod + seq) % 26), (prod * 31 + seq) % 2000) end
local producers, nextProducer = {}, 0
local function producer(prod)
  local log = open("puts.log")
  local seq = 0
  while not stop:is_set() do
    seq = seq + 1
    local ok, e = pcall(pq.put, pq, {prod, seq, payload(prod, seq)}, true, 0.2)
    if ok then log:write("p " .. prod .. " " .. seq .. "\n") else seq = seq - 1; assert(e.kind == "Full", tostring(e)) end
    mp.sleep(0.002)
  end
end
local function keepProducers()
  for k = 1, 2 do
    local p = producers[k]
    if p == nil or not p:is_alive() then
      if p then p:join() end
      nextProducer = nextProducer + 1
      producers[k] = mp.Process(producer, nextProducer)
      producers[k]:start()
    end
  end
end
local function drain(q, each)
  while true do
    local ok, m = pcall(q.get_nowait, q)
    if not ok then if m.kind ~= "Empty" then fail("get", m) end return end
    each(m)
  end
end
local function drainAll()
  drain(pq, function(m) recv:write("r " .. m[1] .. " " .. m[2] .. " " .. tostring(m[3] == payload(m[1], m[2])) .. "\n") end)
  drain(tq, function(m) out("qmsg", m[1], tostring(m[2] == string.rep("t", m[1] % 300))) end)
end

-- The slow pool runs in the background of the rounds: two tasks in flight, collected when ready.
local slowPending = {}
local function slowTick(wait)
  while #slowPending < 2 and not wait do
    local x = newTask(0, #slowPending, nil, true)
    slowPending[#slowPending + 1] = {x, slow:apply_async(task, {x})}
  end
  for k = #slowPending, 1, -1 do
    local x, r = slowPending[k][1], slowPending[k][2]
    if wait or r:ready() then
      local ok, v = pcall(r.get, r)
      if ok then out("ok", x[1], v)
      elseif isLost(v) then out("lost", x[1], v.pid, tostring(v.signal), mp.monotonic())
      else fail("slow pool", v) end
      table.remove(slowPending, k)
    end
  end
end

local rounds = 0
local function stopped() local f = io.open(stopfile); if f then f:close() end; return f ~= nil end
while not stopped() do
  rounds = rounds + 1
  keepProducers()
  local pool = pools[rounds % 2 + 1]
  local kind = rounds % 5
  if kind == 0 then                        -- 8 maps, chunksize 1, of 5–8 short uneven tasks
    for m = 1, 8 do
      local xs = {}
      for i = 1, 5 + (rounds + m) % 4 do xs[i] = newTask(rounds + m, i, nil, true) end
      local ok, r = pcall(pool.map, pool, task, xs, 1)
      if ok then
        for i, x in ipairs(xs) do out("ok", x[1], r[i]) end
      elseif isLost(r) then
        local ids = {}
        for i, x in ipairs(xs) do ids[i] = x[1] end
        out("maplost", r.pid, tostring(r.signal), mp.monotonic(), table.concat(ids, " "))
      else fail("map", r) end
    end
  elseif kind == 1 or kind == 4 then       -- apply_async (4: the tasks also put to a queue)
    local xs, rs = {}, {}
    for i = 1, 12 do
      xs[i] = newTask(rounds, i, kind == 4 and tq or nil)
      if kind == 4 then out("qtask", xs[i][1]) end
      rs[i] = pool:apply_async(task, {xs[i]})
    end
    for i, r in ipairs(rs) do
      local ok, v = pcall(r.get, r)
      if ok then out("ok", xs[i][1], v)
      elseif isLost(v) then out("lost", xs[i][1], v.pid, tostring(v.signal), mp.monotonic())
      else fail("apply_async", v) end
    end
  elseif kind == 2 then                    -- ordered imap over an iterator: failures keep their place
    local xs, n = {}, 0
    for i = 1, 10 do xs[i] = newTask(rounds, i) end
    local it = pool:imap(task, function() n = n + 1; return xs[n] end)
    local expect = 1
    while true do
      local ok, v, i = pcall(it)
      if ok then
        if v == nil then break end
        if i ~= expect then fail("imap", "position " .. tostring(i) .. " where " .. expect .. " was due") end
        out("ok", xs[i][1], v)
      elseif isLost(v) then out("lost", xs[expect][1], v.pid, tostring(v.signal), mp.monotonic())
      else fail("imap", v) end
      expect = expect + 1
    end
    if expect ~= #xs + 1 then fail("imap", (expect - 1) .. " outcomes for " .. #xs .. " items") end
  else                                     -- imap_unordered over a list
    local xs = {}
    for i = 1, 10 do xs[i] = newTask(rounds, i) end
    local it, seen = pool:imap_unordered(task, xs), {}
    while true do
      local ok, v, i = pcall(it)
      if ok then
        if v == nil then break end
        if seen[i] then fail("imap_unordered", "position " .. i .. " twice") end
        seen[i] = true
        out("ok", xs[i][1], v)
      elseif isLost(v) then out("unordlost", v.pid, tostring(v.signal), mp.monotonic())
      else fail("imap_unordered", v) end
    end
    for i, x in ipairs(xs) do if not seen[i] then out("missing", x[1]) end end
  end
  slowTick()
  drainAll()
end
slowTick(true)

-- The storm is over. Producers stop; every pool must be back to P live workers: P tasks that
-- wait for each other at a barrier can only finish if P workers run them at the same time.
stop:set()
local t0 = mp.monotonic()
local function took(what) io.stderr:write(string.format("# %s after %.1f s\n", what, mp.monotonic() - t0)) end
local deadline = mp.monotonic() + 30
while mp.monotonic() < deadline do
  drainAll()
  local running = false
  for _, p in ipairs(producers) do if p:is_alive() then running = true end end
  if not running then break end
  mp.sleep(0.01)
end
for _, p in ipairs(producers) do p:join() end
drainAll()
took("producers stopped")
local pids = {}
assert(slow:apply(function() return 1 end) == 1)
took("slow pool ran a task")
for _, pool in ipairs(pools) do
  local b = mp.Barrier(P, nil, 20)
  local bs = {}
  for i = 1, P do bs[i] = b end
  for _, pid in ipairs(pool:map(function(barrier) barrier:wait() return mp.getpid() end, bs, 1)) do
    pids[#pids + 1] = pid
  end
end
took("both pools ran " .. P .. " tasks at once")
print("workers " .. table.concat(pids, " "))
io.stdout:flush()
io.read("l")
for _, pool in ipairs(pools) do pool:close(); pool:join() end
slow:close(); slow:join()
print("rounds " .. rounds .. " tasks " .. nextID)
