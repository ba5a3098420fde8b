-- mp.Pool through the built binary: every member, order, nils, errors, callbacks, recycling, WorkerLost.
local T = require "testlib"

local function sq(x) return x * x end

local pool = mp.Pool(2)

T.test("map keeps input order and carries n", function()
  local xs = {}
  for i = 1, 1000 do xs[i] = i end
  local r = pool:map(sq, xs)
  T.eq(r.n, 1000)
  for i = 1, 1000 do T.eq(r[i], i * i, "r[" .. i .. "]") end
  local e = pool:map(sq, {})
  T.eq(e.n, 0); T.eq(#e, 0)
end)

T.test("map with every chunksize gives the same list", function()
  local xs = {}
  for i = 1, 37 do xs[i] = i end
  for _, cs in ipairs{1, 2, 5, 36, 37, 100} do
    local r = pool:map(sq, xs, cs)
    T.eq(r.n, 37)
    for i = 1, 37 do T.eq(r[i], i * i) end
  end
end)

T.test("nil results keep their positions; nil items reach the function (list.n)", function()
  local r = pool:map(function(x) if x % 2 == 0 then return nil end return x end, {1, 2, 3, 4, 5})
  T.eq(r.n, 5)
  T.eq(r[1], 1); T.eq(r[2], nil); T.eq(r[3], 3); T.eq(r[4], nil); T.eq(r[5], 5)
  local s = pool:map(function(x) return x == nil end, {1, nil, 3, n = 4})
  T.eq(s.n, 4)
  T.eq(s[1], false); T.eq(s[2], true); T.eq(s[3], false); T.eq(s[4], true)
end)

T.test("map reads an iterator function to its end", function()
  local i = 0
  local r = pool:map(sq, function() i = i + 1; if i <= 4 then return i end end)
  T.eq(r.n, 4); T.eq(r[4], 16)
end)

T.test("starmap unpacks argument lists (honouring n)", function()
  local r = pool:starmap(function(a, b, c) return tostring(a) .. tostring(b) .. tostring(c) end,
                         {{1, 2, 3}, {"x", nil, "z", n = 3}, {}})
  T.eq(r.n, 3)
  T.eq(r[1], "123"); T.eq(r[2], "xnilz"); T.eq(r[3], "nilnilnil")
  T.raises("item 2 is a number, not a table of arguments", pool.starmap, pool, print, {{1}, 2})
end)

T.test("apply returns every return value, nils included", function()
  local a, b, c, d = pool:apply(function(x, y) return x + y, nil, x * y end, {3, 4})
  T.eq(a, 7); T.eq(b, nil); T.eq(c, 12); T.eq(d, nil)
  T.eq(select("#", pool:apply(function() return 1, nil, nil end)), 3)
  T.eq(select("#", pool:apply(function() end)), 0)
  T.eq(pool:apply(function(...) return select("#", ...) end, {nil, nil, n = 2}), 2)
end)

T.test("the task runs in a worker, not in the host", function()
  local pid = pool:apply(mp.getpid)
  assert(pid ~= mp.getpid(), "apply ran in the host")
  T.eq(pool:apply(function() return mp.current_process().name end):match("^PoolWorker%-%d+$") ~= nil, true)
end)

T.test("closures made after the pool started, with upvalues, and C functions", function()
  local k, tag = 10, "v"
  local f = function(x) return tag .. (x + k) end
  T.eq(pool:map(f, {1, 2})[2], "v12")
  k = 20                                   -- upvalue changed: the new value must be used
  T.eq(pool:map(f, {1, 2})[2], "v22")
  local t = {scale = 3}
  local g = function(x) return x * t.scale end
  T.eq(pool:apply(g, {2}), 6)
  t.scale = 5                              -- a table upvalue's contents changed
  T.eq(pool:apply(g, {2}), 10)
  local r = pool:map(math.sqrt, {4, 9, 16})
  T.eq(r[1], 2.0); T.eq(r[3], 4.0)
  T.eq(pool:apply(string.rep, {"ab", 3}), "ababab")
  for i = 1, 300 do                        -- more functions than the cache keeps
    local c = i
    T.eq(pool:apply(function() return c end), i)
  end
end)

T.test("apply_async: get, wait, ready, successful, timeout", function()
  local r = pool:apply_async(function(x) return x + 1, "two" end, {41})
  local a, b = r:get()
  T.eq(a, 42); T.eq(b, "two")
  T.eq(r:ready(), true); T.eq(r:successful(), true); T.eq(r:wait(), true); T.eq(r:wait(0), true)
  local slow = pool:apply_async(function() mp.sleep(0.5) return "late" end)
  local e = T.raises("TimeoutError", slow.get, slow, 0.05)
  T.eq(e.kind, "TimeoutError")
  T.eq(slow:wait(0.01), false)
  T.eq(slow:ready(), false)
  T.raises("not ready", slow.successful, slow)
  T.eq(slow:get(), "late")
  assert(tostring(slow):find("ready"), tostring(slow))
end)

T.test("map_async and starmap_async", function()
  local r = pool:map_async(sq, {1, 2, 3})
  local t = r:get()
  T.eq(t.n, 3); T.eq(t[3], 9)
  local s = pool:starmap_async(function(a, b) return a - b end, {{5, 1}, {7, 2}})
  T.eq(s:get()[2], 5)
end)

T.test("task errors come back as RemoteError with message and traceback", function()
  local function boom(x) if x == 3 then error("boom " .. x) end return x end
  local e = T.raises("boom 3", pool.map, pool, boom, {1, 2, 3, 4, 5}, 1)
  T.eq(e.kind, "RemoteError")
  assert(e.message:find("pool_test.lua:%d+: boom 3"), e.message)
  assert(type(e.traceback) == "string" and e.traceback:find("stack traceback:", 1, true), tostring(e.traceback))
  assert(e.traceback:find("pool_test.lua:%d+: in"), e.traceback)
  assert(not e.traceback:find("main chunk", 1, true), "host frames in the worker's traceback: " .. e.traceback)
  assert(tostring(e):find("^RemoteError: "), tostring(e))
  local r = pool:apply_async(error, {"plain"})
  local e2 = T.raises("plain", r.get, r)
  T.eq(e2.kind, "RemoteError")
  T.eq(r:successful(), false)
  -- map raises the failure at the lowest input position
  local e3 = T.raises(nil, pool.map, pool, function(x) if x % 4 == 0 then error("at " .. x) end end, {1, 2, 3, 4, 5, 6, 7, 8}, 1)
  assert(e3.message:find("at 4"), e3.message)
  -- the pool goes on
  T.eq(pool:apply(sq, {9}), 81)
end)

T.test("unsendable functions, arguments and results are SendErrors", function()
  local ud = coroutine.create(print)
  local e = T.raises("cannot send", pool.apply, pool, function() return ud end)
  T.eq(e.kind, "SendError")
  local e2 = T.raises("args%[1%]", pool.apply, pool, print, {ud})
  T.eq(e2.kind, "SendError")
  local e3 = T.raises("input%[3%]", pool.map, pool, print, {1, 2, ud}, 10)
  T.eq(e3.kind, "SendError")
  local e4 = T.raises("result", pool.apply, pool, function() return coroutine.create(print) end)
  T.eq(e4.kind, "RemoteError")
  local co = coroutine.create(print)
  T.raises("cannot send a thread", pool.map, pool, function() return co end, {1})
end)

T.test("callbacks and error callbacks run in the host", function()
  local got, failed = {}, nil
  local r1 = pool:apply_async(sq, {7}, function(v) got[#got + 1] = {v, mp.getpid()} end)
  local r2 = pool:apply_async(error, {"bad"}, nil, function(e) failed = e end)
  local r3 = pool:map_async(sq, {1, 2}, nil, function(list) got[#got + 1] = {list, mp.getpid()} end)
  r1:wait(); r2:wait(); r3:wait()
  T.eq(#got, 2)
  for _, g in ipairs(got) do T.eq(g[2], mp.getpid()) end
  T.eq(failed.kind, "RemoteError")
  assert(failed.message:find("bad"))
  -- a callback's error is raised by the pool call that ran it
  local r4 = pool:apply_async(sq, {2}, function() error("callback failed") end)
  T.raises("callback failed", r4.wait, r4)
  T.eq(r4:get(), 4)
end)

T.test("imap and imap_unordered over lists and iterators", function()
  local out = {}
  for v, i in pool:imap(sq, {1, 2, 3, 4, 5}) do out[#out + 1] = v; T.eq(v, i * i) end
  T.eq(#out, 5)
  local seen, sum = 0, 0
  for v, i in pool:imap_unordered(sq, {1, 2, 3, 4, 5}, 2) do seen = seen + 1; sum = sum + v; T.eq(v, i * i) end
  T.eq(seen, 5); T.eq(sum, 55)
  local n = 0
  local it = function() n = n + 1; if n <= 50 then return n end end
  local c = 0
  for v, i in pool:imap(sq, it, 3) do c = c + 1; T.eq(v, i * i) end
  T.eq(c, 50)
  local e = T.raises("imap boom", function()
    for v in pool:imap(function(x) if x == 3 then error("imap boom") end return x end, {1, 2, 3, 4}) do end
  end)
  T.eq(e.kind, "RemoteError")
  T.raises("iterator failed", function()
    local k = 0
    for v in pool:imap(sq, function() k = k + 1; if k == 4 then error("iterator failed") end return k end) do end
  end)
end)

T.test("imap over an infinite iterator: break after 100 results reads bounded input", function()
  local pulled = 0
  local function naturals() pulled = pulled + 1; return pulled end
  local got = 0
  for v, i in pool:imap(sq, naturals) do
    T.eq(v, i * i)
    got = got + 1
    if got == 100 then break end
  end
  T.eq(got, 100)
  assert(pulled >= 100 and pulled <= 100 + 20, "pulled " .. pulled .. " items for 100 results")
  local after = pulled
  T.eq(pool:apply(sq, {3}), 9)             -- the pool is free again; nothing more is read
  T.eq(pulled, after)
end)

T.test("maxtasksperchild recycles workers (pids change)", function()
  local p <close> = mp.Pool{processes = 2, maxtasksperchild = 2}
  local pids = p:map(function() mp.sleep(0.01) return mp.getpid() end, {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12}, 1)
  local distinct, count = {}, {}
  for i = 1, pids.n do
    if not count[pids[i]] then distinct[#distinct + 1] = pids[i] end
    count[pids[i]] = (count[pids[i]] or 0) + 1
  end
  assert(#distinct >= 6, "only " .. #distinct .. " distinct worker pids for 12 tasks with maxtasksperchild=2")
  for pid, c in pairs(count) do assert(c <= 2, "pid " .. pid .. " ran " .. c .. " tasks") end
end)

T.test("initializer runs once per worker, with initargs", function()
  local log = os.tmpname()
  local function init(path, tag)
    INIT_TAG = tag
    local f = assert(io.open(path, "a")); f:write(mp.getpid(), "\n"); f:close()
  end
  local p <close> = mp.Pool{processes = 3, initializer = init, initargs = {log, "ready"}}
  local r = p:map(function() return INIT_TAG end, {1, 2, 3, 4, 5, 6}, 1)
  for i = 1, 6 do T.eq(r[i], "ready") end
  p:close(); p:join()
  local lines = {}
  for l in io.lines(log) do lines[#lines + 1] = l end
  os.remove(log)
  T.eq(#lines, 3, "initializer calls")
  T.eq(INIT_TAG, nil, "the initializer ran in the host")
  -- positional form, and an initializer that fails: tasks fail instead of hanging
  local bad <close> = mp.Pool(1, function() error("init failed") end)
  local e = T.raises("init failed", bad.apply, bad, sq, {2})
  T.eq(e.kind, "RemoteError")
end)

T.test("WorkerLost names pid and signal or exit code; other tasks go on", function()
  local p <close> = mp.Pool(2)
  local killed = p:apply_async(function() os.execute("kill -9 " .. mp.getpid()); mp.sleep(5) end)
  local exited = p:apply_async(function() os.exit(7) end)
  local fine = {}
  for i = 1, 20 do fine[i] = p:apply_async(sq, {i}) end
  local e = T.raises("WorkerLost", killed.get, killed)
  T.eq(e.kind, "WorkerLost")
  T.eq(e.signal, 9)
  assert(math.type(e.pid) == "integer" and e.pid > 0)
  assert(e.message:find("worker pid " .. e.pid .. " died %(signal 9%)"), e.message)
  local e2 = T.raises("WorkerLost", exited.get, exited)
  T.eq(e2.exitcode, 7); T.eq(e2.signal, nil)
  assert(e2.message:find("exit code 7"), e2.message)
  for i = 1, 20 do T.eq(fine[i]:get(), i * i) end
  T.eq(p:apply(sq, {12}), 144)                -- replacements work
  local e3 = T.raises("WorkerLost", p.map, p, function(x) if x == 3 then os.exit(1) end return x end, {1, 2, 3, 4, 5}, 1)
  T.eq(e3.kind, "WorkerLost")
end)

T.test("close, join, terminate, <close> and misuse", function()
  local p = mp.Pool(2)
  local r = p:apply_async(function() mp.sleep(0.1) return "done" end)
  T.raises("cannot join a running pool", p.join, p)
  p:close()
  T.raises("closed", p.map, p, sq, {1})
  T.raises("closed", p.apply_async, p, sq, {1})
  p:join()
  T.eq(r:get(), "done")
  p:terminate()                               -- after join: harmless
  local q = mp.Pool(1)
  local pending = q:apply_async(function() mp.sleep(10) end)
  local t0 = mp.monotonic()
  q:terminate()
  assert(mp.monotonic() - t0 < 3, "terminate took too long")
  T.raises("terminated", pending.get, pending)
  T.raises("terminated", q.map, q, sq, {1})
  q:join()
  local pid
  do
    local s <close> = mp.Pool(1)
    pid = s:apply(mp.getpid)
  end
  mp.sleep(0.05)
  local f = io.open("/proc/" .. pid .. "/stat")
  local state = f and f:read("a"):match("%) (%a)")
  if f then f:close() end
  assert(state == nil or state == "Z", "worker " .. pid .. " still running after <close>")
  T.raises("Pool expected", p.map, {}, sq, {1})
  T.raises("function expected", pool.map, pool, 3, {1})
  T.raises("table or iterator function expected", pool.map, pool, sq, 3)
  T.raises("chunksize must be a positive integer", pool.map, pool, sq, {1}, 0)
  T.raises("processes must be between 1", mp.Pool, 0)
  T.raises("field 'maxtasksperchild' must be a positive integer", mp.Pool, {maxtasksperchild = -1})
  T.raises("field 'initializer' must be a function", mp.Pool, {initializer = 3})
  T.raises("initializer must be a function", mp.Pool, 1, 3)
  assert(tostring(pool):find("<Pool processes=2 state=RUN>", 1, true), tostring(pool))
end)

T.test("a worker's collector starts when it allocates: garbage-heavy tasks stay bounded", function()
  local p <close> = mp.Pool(1)
  local peak = p:apply(function()
    local peak = 0
    for i = 1, 400 do
      local s = string.rep("x", 1000000)       -- 400 MB of garbage in one task
      peak = math.max(peak, collectgarbage("count"))
    end
    return peak / 1024
  end)
  assert(peak < 200, ("worker heap reached %.0f MiB"):format(peak))
  local co = p:apply(function()
    local t = {}
    for i = 1, 200000 do t[i] = {i} end
    return #t
  end)
  T.eq(co, 200000)
end)

T.test("pools in child processes and in workers; an inherited pool is not usable", function()
  local out = os.tmpname()
  local p = mp.Process(function()
    local cp = mp.Pool(2)                      -- left open: the child's end terminates it
    local r = cp:map(function(x) return x + 1 end, {1, 2, 3})
    local f = io.open(out, "w"); f:write(table.concat(r, ",")); f:close()
  end)
  p:start(); p:join()
  T.eq(p.exitcode, 0)
  local f = io.open(out); T.eq(f:read("a"), "2,3,4"); f:close(); os.remove(out)
  T.eq(pool:apply(function()
    local inner <close> = mp.Pool(2)
    local r = inner:map(function(x) return x * 10 end, {1, 2})
    return r[1] + r[2]
  end), 30)
  local msg = os.tmpname()
  local c = mp.Process(function()
    local ok, err = pcall(pool.map, pool, print, {1})
    local f = io.open(msg, "w"); f:write(tostring(err)); f:close()
  end)
  c:start(); c:join()
  local m = io.open(msg); local text = m:read("a"); m:close(); os.remove(msg)
  assert(text:find("only be used by the process that created it", 1, true), text)
  local e = T.raises("fn.<upvalue pool>: cannot send a userdata", pool.apply, pool, function() return pool end)
  T.eq(e.kind, "SendError")
end)

T.test("mp.Pool() defaults to cpu_count workers", function()
  local p <close> = mp.Pool()
  local pids, distinct = p:map(function() mp.sleep(0.05) return mp.getpid() end, {1, 2, 3, 4, 5, 6, 7, 8}, 1), {}
  local n = 0
  for i = 1, pids.n do if not distinct[pids[i]] then distinct[pids[i]] = true; n = n + 1 end end
  assert(n <= mp.cpu_count(), n .. " workers for cpu_count " .. mp.cpu_count())
end)

pool:close()
pool:join()
T.done()
