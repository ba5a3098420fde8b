-- Synchronization primitives and shared values within one process: API rows, misuse errors, timeouts.
local T = require "testlib"

--- Runs fn and returns its results plus the seconds it took.
local function timed(fn, ...)
  local t0 = mp.monotonic()
  local r = table.pack(fn(...))
  return mp.monotonic() - t0, table.unpack(r, 1, r.n)
end

T.test("Lock: acquire, locked, release, non-blocking and timed attempts", function()
  local l = mp.Lock()
  T.eq(l:locked(), false)
  T.eq(l:acquire(), true)
  T.eq(l:locked(), true)
  T.eq(l:acquire(false), false)
  local dt, ok = timed(l.acquire, l, true, 0.2)
  T.eq(ok, false, "timed self-acquire")
  assert(dt >= 0.2 and dt < 5, "timeout honoured: " .. dt)
  l:release()
  T.eq(l:locked(), false)
  T.eq(l:acquire(false), true)
  l:release()
  T.eq(tostring(l):match("^mp%.Lock"), "mp.Lock")
end)

T.test("Lock: misuse errors are clear", function()
  local l = mp.Lock()
  T.raises("un%-acquired lock", l.release, l)
  l:acquire()
  T.raises("already holds the lock", l.acquire, l)   -- would deadlock forever in Python
  l:release()
  T.raises("bad argument #1 to 'acquire' %(mp%.Lock expected, got table%)", function() l.acquire({}) end)
  T.raises("bad argument #1 to 'release' %(mp%.Lock expected, got mp%.RLock%)", function() l.release(mp.RLock()) end)
end)

T.test("Lock:with returns fn's results and releases on error, re-raising the same value", function()
  local l = mp.Lock()
  local a, b, c = l:with(function(x, y) assert(l:locked()); return x + y, "two", nil end, 1, 2)
  T.eq(a, 3); T.eq(b, "two"); T.eq(c, nil)
  T.eq(l:locked(), false)
  local err = { code = 7 }
  local ok, got = pcall(l.with, l, function() error(err) end)
  T.eq(ok, false); T.eq(got, err, "same error value")
  T.eq(l:locked(), false)
  local ok2, msg = pcall(l.with, l, function() error("boom") end)
  T.eq(ok2, false); assert(msg:find("boom"), msg)
  T.eq(l:locked(), false)
end)

T.test("RLock: re-entry, depth, release errors", function()
  local r = mp.RLock()
  T.eq(r:acquire(), true); T.eq(r:acquire(), true); T.eq(r:acquire(false), true)
  r:release(); r:release()
  T.eq(r:locked(), true)
  r:release()
  T.eq(r:locked(), false)
  T.raises("un%-acquired lock", r.release, r)
  T.eq(r:with(function() return r:with(function() return "nested" end) end), "nested")
  T.eq(r:locked(), false)
end)

T.test("Semaphore: counting, release(n), get_value, timeout", function()
  local s = mp.Semaphore(2)
  T.eq(s:get_value(), 2)
  T.eq(s:acquire(), true); T.eq(s:acquire(), true)
  T.eq(s:acquire(false), false)
  local dt, ok = timed(s.acquire, s, true, 0.2)
  T.eq(ok, false); assert(dt >= 0.2 and dt < 5, dt)
  s:release(3)
  T.eq(s:get_value(), 3)
  T.eq(s:with(function() return s:get_value() end), 2)
  T.eq(s:get_value(), 3)
  T.eq(mp.Semaphore():get_value(), 1)
  T.eq(mp.Semaphore(0):acquire(false), false)
  T.eq(mp.Semaphore{ value = 4 }:get_value(), 4)
  T.raises("bad argument #1 to '[%w.]*Semaphore'", mp.Semaphore, -1)
end)

T.test("BoundedSemaphore: releasing above the start value is an error", function()
  local s = mp.BoundedSemaphore(2)
  T.raises("released too many times", s.release, s)
  s:acquire()
  s:release()
  T.eq(s:get_value(), 2)
  s:acquire(); s:acquire()
  T.raises("released too many times", s.release, s, 3)
  s:release(2)
  T.eq(s:get_value(), 2)
  T.raises("released too many times", mp.BoundedSemaphore(0).release, mp.BoundedSemaphore(0))
end)

T.test("Event: set, clear, is_set, wait with and without timeout", function()
  local e = mp.Event()
  T.eq(e:is_set(), false)
  local dt, ok = timed(e.wait, e, 0.2)
  T.eq(ok, false); assert(dt >= 0.2 and dt < 5, dt)
  e:set(); e:set()
  T.eq(e:is_set(), true)
  T.eq(e:wait(), true); T.eq(e:wait(0), true)
  e:clear()
  T.eq(e:is_set(), false)
  T.eq(e:wait(0), false)
end)

T.test("Condition: wait/notify need the lock; timeouts; wait_for", function()
  local c = mp.Condition()
  T.raises("un%-acquired lock", c.wait, c, 0.1)
  T.raises("un%-acquired lock", c.notify, c)
  T.raises("un%-acquired lock", c.notify_all, c)
  c:acquire()
  c:acquire()                                    -- default lock is an RLock
  local dt, ok = timed(c.wait, c, 0.2)
  T.eq(ok, false); assert(dt >= 0.2 and dt < 5, dt)
  c:notify(); c:notify(3); c:notify_all()        -- nobody waiting: fine
  c:release(); c:release()
  T.raises("un%-acquired lock", c.release, c)
  T.eq(c:with(function() return c:wait_for(function() return "ready" end) end), "ready")
  local n = 0
  local dt2, v = timed(function()
    return c:with(function() return c:wait_for(function() n = n + 1; return false end, 0.2) end)
  end)
  T.eq(v, false); assert(n >= 2, "predicate re-checked"); assert(dt2 >= 0.2 and dt2 < 5, dt2)
  local l = mp.Lock()
  local c2 = mp.Condition(l)
  c2:acquire(); T.eq(l:locked(), true); c2:release(); T.eq(l:locked(), false)
  T.raises("bad argument #1 to '[%w.]*Condition'", mp.Condition, {})
end)

T.test("Barrier: single party, action, fields, timeout breaks it, abort, reset", function()
  local ran = 0
  local b = mp.Barrier(1, function() ran = ran + 1 end)
  T.eq(b:wait(), 0); T.eq(b:wait(), 0)
  T.eq(ran, 2)
  T.eq(b.parties, 1); T.eq(b.n_waiting, 0); T.eq(b.broken, false)
  local b2 = mp.Barrier(2)
  T.eq(b2:_action(), nil, "no action")
  local dt, ok, err = timed(pcall, b2.wait, b2, 0.2)
  T.eq(ok, false); T.eq(err.kind, "BrokenBarrierError"); assert(dt >= 0.2 and dt < 5, dt)
  T.eq(b2.broken, true)
  T.eq(select(2, pcall(b2.wait, b2)).kind, "BrokenBarrierError")
  b2:reset()
  T.eq(b2.broken, false)
  b2:abort()
  T.eq(b2.broken, true)
  local b3 = mp.Barrier(1, function() error({ why = "action" }) end)
  local ok3, e3 = pcall(b3.wait, b3)
  T.eq(ok3, false); T.eq(e3.why, "action")
  T.eq(b3.broken, true)
  local b4 = mp.Barrier{ parties = 2, timeout = 0.1 }
  T.eq(select(2, pcall(b4.wait, b4)).kind, "BrokenBarrierError")   -- default timeout
  T.raises("bad argument #1 to '[%w.]*Barrier'", mp.Barrier, 0)
end)

T.test("Value: typecodes, ranges, floats, locks", function()
  local ranges = {
    b = { -128, 127 }, B = { 0, 255 }, h = { -32768, 32767 }, H = { 0, 65535 },
    i = { -2147483648, 2147483647 }, I = { 0, 4294967295 },
    l = { math.mininteger, math.maxinteger }, q = { math.mininteger, math.maxinteger },
    L = { 0, math.maxinteger }, Q = { 0, math.maxinteger },
  }
  for code, r in pairs(ranges) do
    local v = mp.Value(code, r[1])
    T.eq(v.value, r[1], code .. " min"); T.eq(math.type(v.value), "integer")
    v.value = r[2]; T.eq(v.value, r[2], code .. " max")
    if r[1] > math.mininteger then T.raises("out of range for typecode '" .. code .. "'", function() v.value = r[1] - 1 end) end
    if r[2] < math.maxinteger then T.raises("out of range", function() v.value = r[2] + 1 end) end
    T.raises("no integer representation", function() v.value = 1.5 end)
    T.raises("number expected, got string", function() v.value = "x" end)
    v.value = 3.0; T.eq(v.value, 3)
  end
  local d = mp.Value("d", 1.5); T.eq(d.value, 1.5); d.value = 1 / 3; T.eq(d.value, 1 / 3)
  d.value = -0.0; T.eq(1 / d.value, -math.huge)
  local f = mp.Value("f", 0.5); f.value = 0.1; assert(math.abs(f.value - 0.1) < 1e-7)
  T.eq(mp.Value("int", 42).value, 42); T.eq(mp.Value("double").value, 0.0)
  T.eq(mp.Value("i").value, 0)
  T.raises("bad typecode 'z'", mp.Value, "z", 1)
  T.raises("bad argument #2 to '[%w.]*Value' %(initial value: 300 out of range", mp.Value, "b", 300)
  local v = mp.Value("i", 1)
  local lk = v:get_lock()
  T.eq(tostring(lk):match("^mp%.RLock") ~= nil, true)
  lk:acquire(); lk:acquire(); lk:release(); lk:release()         -- a re-entrant lock, as Python's
  T.eq(v:get_lock(), lk, "same lock every time (__eq by offset)")
  local raw = mp.Value("i", 1, { lock = false })
  T.eq(raw.get_lock, nil)
  local ok = pcall(function() return raw:get_lock() end); T.eq(ok, false)
  local mine = mp.Lock()
  T.eq(mp.Value("i", 1, { lock = mine }):get_lock(), mine)
  T.raises("cannot set field 'x'", function() v.x = 1 end)
  T.eq(v.typecode, "i")
end)

T.test("Array: 1-based cells, #a, totable, pairs, range and index errors", function()
  local a = mp.Array("i", 5)
  T.eq(#a, 5)
  for i = 1, #a do T.eq(a[i], 0) end
  a[1] = 10; a[5] = -3
  T.eq(table.concat(a:totable(), ","), "10,0,0,0,-3")
  T.raises("index 6 out of range %(1%.%.5%)", function() return a[6] end)
  T.raises("index 0 out of range", function() a[0] = 1 end)
  T.raises("index must be an integer", function() return a[1.5] end)
  T.raises("out of range for typecode 'i'", function() a[2] = 2 ^ 40 end)
  local b = mp.Array("d", { 1.5, 2, -1 })
  T.eq(#b, 3); T.eq(b[2], 2.0); T.eq(math.type(b[2]), "float")
  local seen = {}
  for i, x in pairs(b) do seen[#seen + 1] = i .. "=" .. x end
  T.eq(table.concat(seen, " "), "1=1.5 2=2.0 3=-1.0")
  T.eq(#mp.Array("B", 0), 0)
  T.raises("bad argument #2 to '[%w.]*Array'", mp.Array, "b", { 1, 1000 })
  T.raises("bad argument #2 to '[%w.]*Array'", mp.Array, "b", "x")
  local l = a:get_lock()
  T.eq(l:acquire(), true); l:release()
  T.eq(mp.Array("b", 2, { lock = false }).get_lock, nil)
end)

T.test("objects compare by identity of their shared memory", function()
  local l = mp.Lock()
  T.eq(l == l, true)
  T.eq(l == mp.Lock(), false)
end)

T.test("handles round-trip through mp.dumps/mp.loads when the codec is present", function()
  if not mp.dumps then return end
  local l, v, a = mp.Lock(), mp.Value("q", 5), mp.Array("h", { 1, 2 })
  local l2, v2, a2 = mp.loads(mp.dumps(l)), mp.loads(mp.dumps(v)), mp.loads(mp.dumps(a))
  T.eq(l2, l); l2:acquire(); T.eq(l:locked(), true); l:release()
  v2.value = 9; T.eq(v.value, 9)
  a2[2] = 7; T.eq(a[2], 7)
  local e = mp.Event(); mp.loads(mp.dumps(e)):set(); T.eq(e:is_set(), true)
  local s = mp.dumps(mp.Semaphore(3))
  T.eq(mp.loads(s):get_value(), 3)
  -- another tree's arena id / a garbage offset are DecodeErrors, never crashes
  local forged = s:gsub("(........)(........)$", function(id, off) return ("\0"):rep(8) .. off end)
  if forged ~= s then
    local ok, err = pcall(mp.loads, forged)
    T.eq(ok, false); T.eq(type(err) == "table" and err.kind, "DecodeError")
  end
end)

T.test("many objects: temporary ones are freed when collected", function()
  collectgarbage(); collectgarbage()
  local before = mp._arena().blocks
  for _ = 1, 20000 do local _ = mp.Lock(); local _ = mp.Value("i", 1) end
  collectgarbage(); collectgarbage()
  assert(mp._arena().blocks - before < 1000, "blocks grew by " .. (mp._arena().blocks - before))
end)

T.done()
