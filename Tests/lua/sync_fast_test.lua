-- The C fast paths of Lock/RLock acquire+release and Value/Array access (sync_fast.c): same results and errors as the Swift paths.
local T = require "testlib"

--- Starts fn in a child process.
local function spawn(fn)
  local p = mp.Process(fn)
  p:start()
  return p
end

T.test("plain acquire() of a Lock/RLock whose holder died -> true, 'owner-died' (C path)", function()
  for _, make in ipairs { mp.Lock, mp.RLock } do
    local l, ready = make(), mp.Event()
    local p = spawn(function() l:acquire(); ready:set(); mp.sleep(60) end)
    assert(ready:wait(10))
    p:kill(); p:join()
    local ok, why = l:acquire()
    T.eq(ok, true); T.eq(why, "owner-died")
    T.eq(l:locked(), true)
    l:release()
    T.eq(l:locked(), false)
    local a, b = l:acquire()
    T.eq(a, true); T.eq(b, nil, "consistent again")
    l:release()
  end
end)

T.test("release of a lock held by another process is a clear error, and the lock stays held", function()
  local l, ready, done = mp.Lock(), mp.Event(), mp.Event()
  local p = spawn(function() l:acquire(); ready:set(); done:wait(30); l:release() end)
  assert(ready:wait(10))
  T.raises("cannot release a lock held by another process %(pid " .. p.pid .. "%)", function() l:release() end)
  T.eq(l:locked(), true)
  T.eq(l:acquire(false), false)
  done:set(); p:join()
  T.eq(p.exitcode, 0)
  T.eq(l:acquire(), true); l:release()
end)

T.test("acquire/release with a wrong self go to the full checks", function()
  local l, r = mp.Lock(), mp.RLock()
  T.raises("bad argument #1 to 'acquire' %(mp%.Lock expected, got mp%.RLock%)", function() l.acquire(r) end)
  T.raises("bad argument #1 to 'acquire' %(mp%.RLock expected, got mp%.Lock%)", function() r.acquire(l) end)
  T.raises("bad argument #1 to 'acquire' %(mp%.Lock expected, got no value%)", function() l.acquire() end)
  T.raises("bad argument #1 to 'release' %(mp%.Lock expected, got mp%.Value%)", function() l.release(mp.Value("i")) end)
  T.raises("bad argument #1 to 'acquire' %(mp%.Lock expected, got userdata%)", function() l.acquire(io.stdout) end)
  -- RLock depth through the fast release: three levels, then un-acquired
  T.eq(r:acquire(), true); T.eq(r:acquire(), true); T.eq(r:acquire(), true)
  r:release(); r:release(); T.eq(r:locked(), true); r:release()
  T.eq(r:locked(), false)
  T.raises("un%-acquired lock", function() r:release() end)
end)

T.test("Value: reads and writes of every typecode round-trip; other keys still find methods and fields", function()
  for _, code in ipairs { "b", "B", "h", "H", "i", "I", "l", "L", "q", "Q" } do
    local v = mp.Value(code, 7)
    T.eq(v.value, 7, code)
    v.value = v.value + 1
    T.eq(v.value, 8, code); T.eq(math.type(v.value), "integer")
    v.value = 9.0
    T.eq(v.value, 9, code .. " from an integral float")
  end
  local d = mp.Value("d")
  d.value = 3; T.eq(d.value, 3.0); T.eq(math.type(d.value), "float")
  T.raises("number expected, got string", function() d.value = "1" end)
  T.raises("number expected, got nil", function() d.value = nil end)
  local v = mp.Value("q", 1)
  T.eq(v.typecode, "q")
  T.eq(type(v.get_lock), "function")
  T.eq(v.nope, nil)
  T.eq(v[1], nil)
  T.raises("cannot set field 'values'", function() v.values = 1 end)
  T.raises("mp.Value expected", function() getmetatable(v).__index({}, "value") end)
  T.raises("number expected, got string", function() v.value = "5" end)
  T.eq(v.value, 1, "failed writes change nothing")
  local u = mp.Value("Q", 0)
  T.raises("out of range for typecode 'Q'", function() u.value = -1 end)
end)

T.test("Array: in-range cells of every typecode; out-of-range and non-integer keys still explain", function()
  for _, code in ipairs { "b", "B", "h", "H", "i", "I", "l", "L", "q", "Q", "f", "d" } do
    local a = mp.Array(code, 3)
    for i = 1, 3 do a[i] = i * 2 end
    for i = 1, 3 do T.eq(a[i], i * 2, code .. "[" .. i .. "]") end
    T.raises("index 4 out of range", function() return a[4] end)
    T.raises("index 0 out of range", function() a[0] = 1 end)
  end
  local a = mp.Array("i", 2)
  T.raises("out of range for typecode 'i'", function() a[1] = 2 ^ 31 end)
  T.raises("out of range for typecode 'i'", function() a[1] = math.mininteger end)
  a[2] = -2147483648; T.eq(a[2], -2147483648)
  T.eq(a[1], 0, "failed writes change nothing")
  T.eq(#a, 2); T.eq(type(a.totable), "function")
end)

T.test("a Value and a Lock keep working in a child (pid and arena are per process)", function()
  local l, v = mp.Lock(), mp.Value("q", 0)
  local ps = {}
  for i = 1, 2 do
    ps[i] = spawn(function() for _ = 1, 2000 do l:acquire(); v.value = v.value + 1; l:release() end end)
  end
  for i = 1, 2 do ps[i]:join(); T.eq(ps[i].exitcode, 0) end
  T.eq(v.value, 4000)
  T.eq(l:locked(), false)
end)

T.done()
