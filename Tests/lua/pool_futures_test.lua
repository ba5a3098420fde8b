-- Pools that keep working while the host does anything else; futures, mp.wait, as_completed,
-- cancel, per-item timeouts, retries, errors = "return", error values, references given back.
local T = require "testlib"

-- A shared counter tasks bump when they finish: read by the host without any pool call.
local function counter()
  local c = mp.Value("i", 0)
  local lock = c:get_lock()
  local function bump() lock:acquire(); c.value = c.value + 1; lock:release() end
  return c, bump
end

local function busy_until(cond, secs)
  local t0 = os.clock()
  local wall = mp.monotonic()
  while not cond() do
    if mp.monotonic() - wall > (secs or 30) then error("timed out (host busy loop)", 2) end
    for _ = 1, 1000 do end
  end
  return os.clock() - t0
end

local function proc_state(pid)
  local f = io.open("/proc/" .. pid .. "/stat")
  if not f then return nil end
  local s = f:read("a"); f:close()
  return s:match("^%d+ %b() (%a)")
end

T.test("tasks go on while the host sleeps in mp.sleep", function()
  local pool <close> = mp.Pool(2)
  local c, bump = counter()
  local rs = {}
  for i = 1, 100 do rs[i] = pool:apply_async(function() mp.sleep(0.01); bump(); return i end) end
  -- only mp.sleep and reading the shared counter: no pool call until all are done
  T.wait_until(function() return c.value == 100 end, "100 tasks while the host sleeps", 60)
  for i = 1, 100 do T.eq(rs[i]:ready(), true, "ready at once") end
  T.eq(rs[42]:get(), 42)
end)

T.test("a worker that died is replaced while the host sleeps", function()
  local pool <close> = mp.Pool(2)
  local me = mp.getpid()
  local function kids()
    local f = io.open("/proc/" .. me .. "/task/" .. me .. "/children")
    local t = {}
    if f then for pid in f:read("a"):gmatch("%d+") do
      local st = io.open("/proc/" .. pid .. "/stat")
      if st then local line = st:read("a"); st:close(); if not line:match("^%d+ %b() Z") then t[#t + 1] = tonumber(pid) end end
    end f:close() end
    return t
  end
  T.eq(#kids(), 2)
  local victim = pool:apply(mp.getpid)
  local r = pool:apply_async(function() os.execute("kill -9 " .. mp.getpid()) end)
  T.wait_until(function()
    local k = kids()
    if #k ~= 2 then return false end
    for _, pid in ipairs(k) do if pid == victim then return false end end
    return true
  end, "a replacement forked during mp.sleep", 60)
  T.eq(r:exception().kind, "WorkerLost")
end)

T.test("tasks go on while the host is blocked on a queue (the issue's map_async example)", function()
  local pool <close> = mp.Pool(2)
  local q = mp.Queue()
  local r = pool:map_async(function(x) q:put(x) return x end, {1, 2, 3, 4, 5, 6, 7, 8, 9, 10}, 1)
  local got = {}
  for _ = 1, 10 do got[#got + 1] = q:get(30) end
  table.sort(got)
  T.eq(table.concat(got, ","), "1,2,3,4,5,6,7,8,9,10")
  T.eq(#r:get(), 10)
end)

T.test("tasks go on while the host runs pure Lua", function()
  local pool <close> = mp.Pool(2)
  local c, bump = counter()
  local rs = {}
  for i = 1, 100 do rs[i] = pool:apply_async(function() mp.sleep(0.01); bump(); return i end) end
  busy_until(function() return c.value == 100 end, 60)
  for i = 1, 100 do T.eq(rs[i]:ready(), true, "ready at once after the loop") end
end)

T.test("submit and the futures vocabulary", function()
  local pool <close> = mp.Pool(2)
  local f = pool:submit(function(a, b) return a + b, a * b end, 3, 4)
  local s, p = f:result()
  T.eq(s, 7); T.eq(p, 12)
  T.eq(f:done(), true); T.eq(f:cancelled(), false); T.eq(f:running(), false)
  T.eq(f:exception(), nil)
  T.eq(tostring(f), "<AsyncResult ready>")
  local seen
  f:add_done_callback(function(r) seen = r end)
  T.eq(seen, f, "called at once when already done")
  local ev = mp.Event()
  local g = pool:submit(function() ev:wait() return "late" end)
  local got
  g:add_done_callback(function(r) got = r:result() end)
  T.wait_until(function() return g:running() end, "g to start")
  T.eq(got, nil)
  ev:set()
  T.eq(g:result(30), "late")
  T.eq(got, "late", "the done-callback ran by the time result() returned")
  local e = T.raises("TimeoutError", function() pool:submit(mp.sleep, 5):result(0.05) end)
  T.eq(e.kind, "TimeoutError")
end)

T.test("as_completed gives results in completion order", function()
  local pool <close> = mp.Pool(4)
  local evs, fs = {}, {}
  for i = 1, 4 do
    evs[i] = mp.Event()
    local e = evs[i]
    fs[i] = pool:submit(function() e:wait() return i end)
  end
  local it = mp.as_completed(fs, 60)
  for _, k in ipairs{3, 1, 4, 2} do
    evs[k]:set()
    local f, i = it()
    T.eq(i, k, "position")
    T.eq(f, fs[k])
    T.eq(f:result(), k)
  end
  T.eq(it(), nil, "the end")
  local slow = pool:submit(mp.sleep, 5)
  T.raises("TimeoutError", function() for _ in mp.as_completed({slow}, 0.05) do end end)
  slow:cancel{force = true}
end)

T.test("mp.wait: each return_when, every object kind", function()
  local pool <close> = mp.Pool(3)
  local ev1, ev2 = mp.Event(), mp.Event()
  local a = pool:submit(function() ev1:wait() return 1 end)
  local b = pool:submit(function() ev2:wait() error("b failed") end)
  local c = pool:submit(function() return 3 end)
  local done, not_done = mp.wait({a, b, c}, 30)                -- FIRST_COMPLETED
  T.eq(#done, 1); T.eq(done[1], c); T.eq(#not_done, 2)
  done, not_done = mp.wait({a, b}, 0.05, "ALL_COMPLETED")
  T.eq(#done, 0, "timeout: nothing done"); T.eq(#not_done, 2)
  ev2:set()
  done, not_done = mp.wait({a, b, c}, 30, "FIRST_EXCEPTION")
  T.eq(#done, 2); T.eq(not_done[1], a)
  ev1:set()
  done = mp.wait({a, b, c}, 30, "ALL_COMPLETED")
  T.eq(#done, 3)
  T.raises("return_when", mp.wait, {a}, 1, "SOMETIMES")
  T.raises("cannot be waited for", mp.wait, {a, 42})

  -- processes, pipe ends, queues, events
  local q, ev = mp.Queue(), mp.Event()
  local r, w = mp.Pipe(false)
  local go = mp.Event()
  local p = mp.Process{target = function() go:wait() end}
  p:start()
  local objs = {p, r, q, ev, a}
  done, not_done = mp.wait(objs, 0)
  T.eq(#done, 1); T.eq(done[1], a, "only the finished future")
  ev:set()
  done = mp.wait({p, r, q, ev}, 30)
  T.eq(#done, 1); T.eq(done[1], ev)
  q:put("x")
  T.wait_until(function() return not q:empty() end, "the put")
  done = mp.wait({p, r, q}, 30)
  T.eq(#done, 1); T.eq(done[1], q)
  w:send("hello")
  done = mp.wait({p, r}, 30)
  T.eq(#done, 1); T.eq(done[1], r)
  go:set()
  done = mp.wait({p}, 30)
  T.eq(#done, 1); T.eq(done[1], p)
  p:join()
end)

T.test("cancel before start, and cancel{force = true} of a running task", function()
  local pool <close> = mp.Pool(1)
  local c, bump = counter()
  local ev = mp.Event()
  local blocker = pool:submit(function() ev:wait() return "b" end)
  local queued = pool:submit(function() bump() return "q" end)
  T.wait_until(function() return blocker:running() end, "the blocker to start")
  T.eq(queued:running(), false)
  T.eq(queued:cancel(), true, "not started: cancelled")
  T.eq(queued:cancelled(), true); T.eq(queued:done(), true)
  T.eq(queued:exception().kind, "CancelledError")
  T.raises("CancelledError", queued.result, queued)
  T.eq(tostring(queued), "<AsyncResult cancelled>")
  ev:set()
  T.eq(blocker:result(30), "b")
  T.eq(pool:apply(function() return 1 end), 1)
  T.eq(c.value, 0, "the cancelled task never ran")
  T.eq(blocker:cancel(), false, "done: not cancelled")

  local pid0 = pool:apply(mp.getpid)
  local long = pool:submit(function() mp.sleep(60) end)
  T.wait_until(function() return long:running() end, "the long task to start")
  T.eq(long:cancel(), false, "running: not without force")
  T.eq(long:cancel{force = true}, true)
  T.eq(long:exception().kind, "CancelledError")
  local pid1 = pool:apply(mp.getpid)
  T.eq(pid1 ~= pid0, true, "a replacement worker runs the next task")
end)

T.test("per-item timeout: the host busy in pure Lua, a task stuck in C, inside a chunk", function()
  local pool <close> = mp.Pool(2)
  local pidv = mp.Value("i", 0)
  local r = pool:apply_async(function() pidv.value = mp.getpid(); mp.sleep(60) end, {}, {timeout = 0.3})
  T.wait_until(function() return pidv.value ~= 0 end, "the task to start")
  local pid = pidv.value
  -- no mp call: the worker's own timer ends it (a zombie until the host reaps it)
  busy_until(function() local st = proc_state(pid); return st == nil or st == "Z" end, 30)
  local e = r:exception(30)
  T.eq(e.kind, "TimeoutError"); T.eq(e.pid, pid); T.eq(e.timeout, 0.3)

  e = T.raises("TimeoutError", pool.apply, pool, function() os.execute("sleep 5") end, {}, {timeout = 0.3})
  T.eq(e.kind, "TimeoutError")

  local res = pool:map(function(x) if x == 3 then os.execute("sleep 5") end return x * 10 end,
                       {1, 2, 3, 4, 5}, {chunksize = 5, timeout = 0.5, errors = "return"})
  T.eq(res.n, 5)
  T.eq(res[1], 10); T.eq(res[2], 20); T.eq(res[4], 40); T.eq(res[5], 50)
  T.eq(res[3].kind, "TimeoutError", "the stuck item")
  e = T.raises("TimeoutError", pool.map, pool, function(x) if x == 2 then mp.sleep(60) end return x end,
               {1, 2, 3}, {timeout = 0.3, chunksize = 3})
  T.eq(mp.Pool{processes = 1, task_timeout = 0.2}:apply_async(mp.sleep, {30}):exception(30).kind, "TimeoutError",
       "pool-wide task_timeout")
end)

T.test("retries after kill -9; no retry without it", function()
  local pool <close> = mp.Pool(2)
  local flag = os.tmpname()
  local starts = mp.Value("i", 0)
  local function f(x)
    if x == 2 then
      starts:get_lock():acquire(); starts.value = starts.value + 1; starts:get_lock():release()
      local g = io.open(flag)
      if g then g:close(); os.remove(flag); os.execute("kill -9 " .. mp.getpid()); mp.sleep(10) end
    end
    return x
  end
  local r = pool:map(f, {1, 2, 3}, {retries = 1, chunksize = 1})
  T.eq(table.concat(r, ","), "1,2,3")
  T.eq(starts.value, 2, "item 2 ran again once")
  io.open(flag, "w"):close()
  local e = T.raises("WorkerLost", pool.map, pool, f, {1, 2, 3})
  T.eq(e.signal, 9)
  -- an ordinary error is not retried
  starts.value = 0
  T.raises("plain", pool.apply, pool, function() starts.value = starts.value + 1; error("plain") end, {}, {retries = 3})
  T.eq(starts.value, 1)
  os.remove(flag)
end)

T.test("errors = \"return\" keeps every result, errors keep their value and traceback", function()
  local pool <close> = mp.Pool(2)
  local r = pool:map(function(x) if x % 2 == 0 then error({code = x}) end return x end, {1, 2, 3, 4}, {errors = "return"})
  T.eq(r[1], 1); T.eq(r[3], 3)
  T.eq(r[2].kind, "RemoteError"); T.eq(r[2].value.code, 2); T.eq(r[4].value.code, 4)
  local s = pool:starmap(function(a, b) if a == b then error("same") end return a + b end, {{1, 2}, {3, 3}}, {errors = "return"})
  T.eq(s[1], 3); T.eq(s[2].kind, "RemoteError")
  local e = pool:submit(function() error({code = 42}) end):exception()
  T.eq(e.value.code, 42); T.eq(e.message, "(error object is a table value)")
  T.eq(e.traceback:find("stack traceback") ~= nil, true)
  e = pool:submit(function() return mp.Queue():get_nowait() end):exception()
  T.eq(e.value.kind, "Empty", "an mp error keeps its kind")
  T.eq(e.message:find("Empty") ~= nil, true)
  T.eq(e.traceback ~= "", true, "a traceback also for an error with __tostring")
  T.eq(pool:submit(function() error("text") end):exception().value:find("text") ~= nil, true)
  local seen = {}
  for v, i in pool:imap(function(x) if x == 2 then error("two") end return x end, {1, 2, 3}, {errors = "return"}) do
    seen[i] = type(v) == "table" and v.kind or v
  end
  T.eq(seen[1], 1); T.eq(seen[2], "RemoteError"); T.eq(seen[3], 3)
end)

T.test("an unsendable result names its input position", function()
  local pool <close> = mp.Pool(2)
  local e = T.raises("result%[8%]", pool.map, pool, function(x) if x == 8 then return coroutine.create(print) end return x end,
                     {1, 2, 3, 4, 5, 6, 7, 8, 9}, 3)
  T.eq(e.kind, "RemoteError")
end)

T.test("objects sent as task arguments are given back", function()
  collectgarbage(); collectgarbage()
  local base = mp._arena().bytes
  local pool = mp.Pool(2)
  for _ = 1, 100 do pool:apply(function(q) return 1 end, {mp.Queue()}) end
  local vs = {}
  for i = 1, 40 do vs[i] = mp.Value("i", i) end
  T.eq(pool:map(function(v) return v.value end, vs)[40], 40)
  vs = nil
  pool:close(); pool:join()
  collectgarbage(); collectgarbage()
  T.eq(mp._arena().bytes - base, 0, "arena bytes back to where they were")
end)

T.done()
