-- Synchronization across processes: counter exactness, owner death, dead waiters, late-created objects, timeouts.
local T = require "testlib"

if not mp.Process then
  print("sync_procs_test: skipped (needs mp.Process)")
  T.done()
end

local N = T.long and 50000 or 50000     -- the issue's size; ~1 s per counter test in debug builds

local spawn = T.spawn
--- Joins every process (generous bound) and asserts they all exited 0.
local function joinAll(ps) T.join_all(ps, 60) end

--- In a child: waits at barrier `b` (30 s bound) and sets `broken.value = 1` if the wait
--- raised BrokenBarrierError.
local function waitNotingBroken(b, broken)
  local ok, err = pcall(b.wait, b, 30)
  if not ok and err.kind == "BrokenBarrierError" then broken.value = 1 end
end

--- Polls `cond` until true (bounded): for waiting on a child to reach a state.
local function waitUntil(cond, what)
  local t0 = mp.monotonic()
  while not cond() do
    assert(mp.monotonic() - t0 < 10, "timed out waiting for " .. what)
    mp.sleep(0.005)
  end
end

T.test("counter exactness: 4 processes x N lock:with increments of a Value", function()
  local lock, v = mp.Lock(), mp.Value("q", 0, { lock = false })
  local ps = {}
  for _ = 1, 4 do
    ps[#ps + 1] = spawn(function()
      local function inc() v.value = v.value + 1 end
      for _ = 1, N do lock:with(inc) end
    end)
  end
  joinAll(ps)
  T.eq(v.value, 4 * N)
end)

T.test("counter exactness: Array slots under the array's own lock", function()
  local a = mp.Array("i", 4)
  local ps = {}
  for w = 1, 4 do
    ps[#ps + 1] = spawn(function()
      local lk = a:get_lock()
      for i = 1, N do
        local k = (i + w) % 4 + 1
        lk:acquire(); a[k] = a[k] + 1; lk:release()
      end
    end)
  end
  joinAll(ps)
  local sum = 0
  for i = 1, 4 do sum = sum + a[i]; T.eq(a[i], N, "slot " .. i) end
  T.eq(sum, 4 * N)
end)

T.test("counter exactness: RLock re-entry", function()
  local r, v = mp.RLock(), mp.Value("i", 0)
  local ps = {}
  for _ = 1, 4 do
    ps[#ps + 1] = spawn(function()
      for _ = 1, N // 2 do
        r:with(function() r:with(function() v.value = v.value + 1 end) end)
      end
    end)
  end
  joinAll(ps)
  T.eq(v.value, 4 * (N // 2))
  T.eq(r:locked(), false)
end)

--- A child that takes `acquire` (a function) then signals `ready` and sleeps until killed.
local function holder(acquire, ready)
  return spawn(function() acquire(); ready:set(); mp.sleep(60) end)
end

for _, case in ipairs {
  { "Lock", function() local l = mp.Lock(); return l, function() return l:acquire() end end },
  { "RLock", function() local l = mp.RLock(); return l, function() l:acquire(); return l:acquire() end end },
  { "Condition", function() local c = mp.Condition(); return c, function() return c:acquire() end end },
} do
  T.test("owner death: " .. case[1] .. " held by a SIGKILLed process -> true, 'owner-died'", function()
    local obj, take = case[2]()
    local ready = mp.Event()
    local p = holder(take, ready)
    assert(ready:wait(10))
    T.eq(obj:acquire(false), false)
    p:kill(); p:join()
    local t0 = mp.monotonic()
    local ok, why = obj:acquire(true, 5)
    T.eq(ok, true); T.eq(why, "owner-died")
    assert(mp.monotonic() - t0 < 1, "took " .. (mp.monotonic() - t0))
    obj:release()
    T.eq((obj:acquire()), true); obj:release()   -- consistent again: a plain acquire
  end)
end

T.test("owner death soak: workers hammering a lock are killed at random moments; nobody hangs", function()
  local rounds = T.long and 200 or 20
  local l, v, died = mp.Lock(), mp.Value("q", 0), 0
  local function worker() while true do l:acquire(); v.value = v.value + 1; l:release() end end
  local ps = { spawn(worker), spawn(worker) }
  for r = 1, rounds do
    mp.sleep(0.001 + math.random() * 0.01)
    local k = (r % 2) + 1
    ps[k]:kill(); ps[k]:join()
    local before = v.value
    local ok, why = l:acquire(true, 10)          -- the survivor never blocks us for long
    T.eq(ok, true, "round " .. r)
    if why == "owner-died" then died = died + 1 end
    l:release()
    ps[k] = spawn(worker)
    waitUntil(function() return v.value > before end, "progress after round " .. r)
  end
  for _, p in ipairs(ps) do p:kill(); p:join() end
  l:acquire(true, 5); l:release()
  T.eq((l:acquire(false)), true); l:release()
  assert(v.value > rounds)
  print(string.format("# owner-death soak: %d rounds, holder killed inside the lock %d times", rounds, died))
end)

T.test("owner death: a process exiting (os.exit) while holding a Lock", function()
  local l = mp.Lock()
  local p = spawn(function() l:acquire(); os.exit(3) end)
  p:join()
  T.eq(p.exitcode, 3)
  local ok, why = l:acquire(true, 5)
  T.eq(ok, true); T.eq(why, "owner-died")
  l:release()
end)

T.test("owner death: a blocked acquirer gets the lock when the holder is killed", function()
  local l, ready, got = mp.Lock(), mp.Event(), mp.Value("i", 0)
  local h = holder(function() l:acquire() end, ready)
  assert(ready:wait(10))
  local w = spawn(function()
    local ok, why = l:acquire(true, 20)
    got.value = (ok and why == "owner-died") and 1 or 2
    l:release()
  end)
  T.wait_blocked(w.pid, "the acquirer blocked on the lock")
  h:kill()
  local t0 = mp.monotonic()
  joinAll { w }
  assert(mp.monotonic() - t0 < 2)
  T.eq(got.value, 1)
  h:join()
end)

T.test("a process killed while waiting for a lock harms nobody", function()
  local l = mp.Lock()
  l:acquire()
  local w = spawn(function() l:acquire(); os.exit(9) end)
  T.wait_blocked(w.pid, "the waiter blocked on the lock")
  w:kill(); w:join()
  l:release()
  local w2 = spawn(function() assert(l:acquire(true, 5)); l:release() end)
  joinAll { w2 }
  T.eq((l:acquire(false)), true); l:release()
end)

T.test("Condition: a waiter killed inside wait harms nobody; notify(1) wakes exactly one live waiter", function()
  local c, woken, inwait = mp.Condition(), mp.Value("i", 0), mp.Value("i", 0)
  local function waiter(t)
    c:acquire()
    inwait.value = inwait.value + 1
    if c:wait(t) then woken.value = woken.value + 1 end
    c:release()
  end
  local dead = spawn(waiter, 30)
  waitUntil(function() return inwait.value == 1 end, "first waiter")
  T.wait_blocked(dead.pid, "the first waiter inside wait")
  dead:kill(); dead:join()
  local live = { spawn(waiter, 2), spawn(waiter, 2) }
  waitUntil(function() return inwait.value == 3 end, "live waiters")
  c:with(function() c:notify(1) end)
  waitUntil(function() return woken.value == 1 end, "one waiter woken")   -- not the dead one's turn
  joinAll(live)                                  -- the other one times out
  T.eq(woken.value, 1, "exactly one woken")
  c:with(function() c:notify_all() end)
end)

T.test("Event: a waiter killed inside wait harms nobody", function()
  local e = mp.Event()
  local dead = spawn(function() e:wait() end)
  T.wait_blocked(dead.pid, "the first waiter inside wait")
  dead:kill(); dead:join()
  local live = spawn(function() assert(e:wait(10)) end)
  T.wait_blocked(live.pid, "the live waiter inside wait")
  e:set()
  joinAll { live }
end)

T.test("Barrier: parties in different processes get distinct indices; the action runs once", function()
  local runs = mp.Value("i", 0)
  local b = mp.Barrier(3, function() runs.value = runs.value + 1 end)
  local seen = mp.Array("i", 3)
  local ps = {}
  for w = 1, 2 do ps[w] = spawn(function() for r = 1, 3 do local i = b:wait(10); seen[i + 1] = seen[i + 1] + 1 end end) end
  for _ = 1, 3 do local i = b:wait(10); seen[i + 1] = seen[i + 1] + 1 end
  joinAll(ps)
  T.eq(runs.value, 3)
  T.eq(seen[1] + seen[2] + seen[3], 9)
  for i = 1, 3 do T.eq(seen[i], 3, "index " .. (i - 1)) end
end)

T.test("Barrier: a dead waiter breaks the barrier instead of hanging", function()
  local b = mp.Barrier(3)
  local p = spawn(function() b:wait() end)
  waitUntil(function() return b.n_waiting == 1 end, "the child at the barrier")
  p:kill(); p:join()
  local t0 = mp.monotonic()
  local ok, err = pcall(b.wait, b, 30)
  T.eq(ok, false); T.eq(err.kind, "BrokenBarrierError")
  assert(mp.monotonic() - t0 < 1, "took " .. (mp.monotonic() - t0))
  T.eq(b.broken, true)
end)

T.test("Barrier(2): the next arrival after the only waiter was killed gets BrokenBarrierError", function()
  for _, parties in ipairs { 2, 3 } do
    local b = mp.Barrier(parties)
    local others = {}
    for i = 1, parties - 2 do others[i] = spawn(function() pcall(b.wait, b, 30) end) end
    local victim = spawn(function() b:wait() end)
    waitUntil(function() return b.n_waiting == parties - 1 end, "the waiters at the barrier")
    victim:kill(); victim:join()
    local ok, err = pcall(b.wait, b, 30)     -- this arrival would release everyone: one is dead
    T.eq(ok, false, parties .. " parties: wait passed for a dead party")
    T.eq(type(err) == "table" and err.kind, "BrokenBarrierError")
    T.eq(b.broken, true)
    joinAll(others)
  end
end)

T.test("Barrier: a waiter killed while others wait wakes them with BrokenBarrierError", function()
  local b, broken = mp.Barrier(3), mp.Value("i", 0)
  local w = spawn(function() waitNotingBroken(b, broken) end)
  local victim = spawn(function() b:wait() end)
  waitUntil(function() return b.n_waiting == 2 end, "two waiters")
  victim:kill(); victim:join()
  local t0 = mp.monotonic()
  joinAll { w }
  assert(mp.monotonic() - t0 < 1, "took " .. (mp.monotonic() - t0))
  T.eq(broken.value, 1)
end)

T.test("Barrier: the last party killed inside the action breaks it for the waiters", function()
  local inaction, broken = mp.Event(), mp.Value("i", 0)
  local b = mp.Barrier(2, function() inaction:set(); mp.sleep(60) end)
  local a = spawn(function() waitNotingBroken(b, broken) end)
  waitUntil(function() return b.n_waiting == 1 end, "the first party")
  local last = spawn(function() b:wait() end)
  assert(inaction:wait(10))
  last:kill(); last:join()
  local t0 = mp.monotonic()
  joinAll { a }
  assert(mp.monotonic() - t0 < 1, "took " .. (mp.monotonic() - t0))
  T.eq(broken.value, 1)
  T.eq(select(2, pcall(b.wait, b, 5)).kind, "BrokenBarrierError")
end)

T.test("Barrier: reset breaks current waiters, then the barrier works again", function()
  local b, broken = mp.Barrier(2), mp.Value("i", 0)
  local w = spawn(function()
    waitNotingBroken(b, broken)
    T.eq(b:wait(30), 0)                        -- usable again after the reset
  end)
  waitUntil(function() return b.n_waiting == 1 end, "the waiter")
  b:reset()
  waitUntil(function() return broken.value == 1 end, "BrokenBarrierError in the waiter")
  waitUntil(function() return b.n_waiting == 1 end, "the waiter, again")
  T.eq(b:wait(30), 1)
  joinAll { w }
  T.eq(b.broken, false)
end)

T.test("timeouts across processes: 0.2 s on a lock held elsewhere returns false, not early", function()
  local l, s, ready = mp.Lock(), mp.Semaphore(0), mp.Event()
  local h = holder(function() l:acquire() end, ready)
  assert(ready:wait(10))
  for _, try in ipairs { function() return l:acquire(true, 0.2) end, function() return s:acquire(true, 0.2) end } do
    local t0 = mp.monotonic()
    T.eq(try(), false)
    local dt = mp.monotonic() - t0
    assert(dt >= 0.2 and dt < 3, "waited " .. dt)
  end
  h:kill(); h:join()
end)

T.test("objects created after workers started, sent to them (mp.dumps through a file), work the same", function()
  if not mp.dumps then return end
  local path = os.tmpname()
  local go = mp.Event()
  local ps = {}
  for _ = 1, 3 do
    ps[#ps + 1] = spawn(function()
      assert(go:wait(30))
      local f = assert(io.open(path, "rb")); local bytes = f:read("a"); f:close()
      local objs = mp.loads(bytes)
      for _ = 1, 2000 do objs.lock:with(function() objs.v.value = objs.v.value + 1 end) end
      objs.sem:release()
      objs.a[mp.getpid() % 3 + 1] = 1
      objs.b:wait(10)
      objs.done:set()
    end)
  end
  -- created only now, after the workers were forked
  local objs = { lock = mp.Lock(), v = mp.Value("i", 0), sem = mp.Semaphore(0), a = mp.Array("b", 3),
                 b = mp.Barrier(4), done = mp.Event() }
  local f = assert(io.open(path, "wb")); f:write(mp.dumps(objs)); f:close()
  go:set()
  for _ = 1, 3 do assert(objs.sem:acquire(true, 30)) end
  objs.b:wait(10)
  joinAll(ps)
  os.remove(path)
  T.eq(objs.v.value, 3 * 2000)
  T.eq(objs.done:is_set(), true)
end)

T.test("objects created later reach running workers through a queue (when queues exist)", function()
  if not mp.Queue then return end
  local q = mp.Queue()
  local ps = {}
  for w = 1, 3 do
    ps[w] = spawn(function()
      local objs = q:get()
      for _ = 1, 1000 do objs.lock:with(function() objs.v.value = objs.v.value + 1 end) end
      objs.a[w] = w
      objs.done:release()
    end)
  end
  local objs = { lock = mp.Lock(), v = mp.Value("i", 0), a = mp.Array("i", 3), done = mp.Semaphore(0) }
  for _ = 1, 3 do q:put(objs) end
  for _ = 1, 3 do assert(objs.done:acquire(true, 30)) end
  joinAll(ps)
  T.eq(objs.v.value, 3000)
  T.eq(table.concat(objs.a:totable(), ","), "1,2,3")
end)

T.test("objects created after a pool started reach its tasks as upvalues (when pools exist)", function()
  if not mp.Pool then return end
  local pool = mp.Pool(2)
  local lock, v = mp.Lock(), mp.Value("i", 0)
  local r = pool:map(function(k)
    for _ = 1, 500 do lock:with(function() v.value = v.value + 1 end) end
    return k * 2
  end, { 1, 2, 3, 4 })
  pool:close(); pool:join()
  T.eq(v.value, 2000)
  T.eq(r[4], 8)
end)

T.test("semaphore hand-off between processes", function()
  local items, space, v = mp.Semaphore(0), mp.Semaphore(2), mp.Value("i", 0)
  local prod = spawn(function() for _ = 1, 200 do assert(space:acquire(true, 10)); v.value = v.value + 1; items:release() end end)
  for _ = 1, 200 do assert(items:acquire(true, 10)); space:release() end
  joinAll { prod }
  T.eq(v.value, 200)
end)

T.done()
