-- Remote results under mp.wait / mp.as_completed (mixed with local futures and processes), the
-- local pool's option names on a remote pool, and per-item timeouts enforced on the worker.
-- arg[1]: a scratch directory. Prints "checks N" at the end; any failure raises.
local dir = arg[1]
local n = 0
local function check(c, what) n = n + 1 if not c then error("check failed: " .. what, 2) end end
local function exists(p) local f = io.open(p) if f then f:close() return true end return false end
local function touch(p) local f = assert(io.open(p, "w")) f:close() end

local pool = mp.Pool{}                      -- remote: LUAMP_ADDRESS is set
check(tostring(pool):find("address="), "remote pool")
local lpool = mp.Pool{processes = 1, address = false}

-- a remote task that waits for a file the host creates: it is pending until the host says so
local gate = dir .. "/gate"
local function blocked(p) while not io.open(p) do mp.sleep(0.01) end return "opened" end

-- FIRST_COMPLETED: the fast remote result is done, the gated one is not
local slow = pool:apply_async(blocked, {gate})
local fast = pool:apply_async(function(x) return x * 2 end, {21})
local done, pending = mp.wait({slow, fast}, 30)
check(#done == 1 and done[1] == fast and pending[1] == slow, "FIRST_COMPLETED gives the fast remote result only")
check(fast:get() == 42 and fast:successful(), "its value")
check(not slow:ready(), "the gated one is still pending")

-- timeout: nothing more completes
local d2, p2 = mp.wait({slow}, 0.2)
check(#d2 == 0 and #p2 == 1, "mp.wait timeout with a pending remote result")

-- FIRST_EXCEPTION: a remote failure ends the wait while the gated one still runs
local bad = pool:apply_async(function() error("boom") end)
local d3, p3 = mp.wait({slow, bad}, 30, "FIRST_EXCEPTION")
check(#d3 == 1 and d3[1] == bad and p3[1] == slow, "FIRST_EXCEPTION returns on the remote failure")
check(bad:exception().kind == "RemoteError" and tostring(bad:exception().message):find("boom"), "its error")

-- mixed: a local pool's result, a local process and remote results; ALL_COMPLETED after the gate
local lres = lpool:apply_async(function(x) return x + 1 end, {1})
local proc = mp.Process{target = function() end}
proc:start()
touch(gate)
local d4, p4 = mp.wait({slow, lres, proc, fast}, 60, "ALL_COMPLETED")
check(#d4 == 4 and #p4 == 0, "ALL_COMPLETED over remote, local pool and process")
check(slow:get() == "opened" and lres:get() == 2, "values after ALL_COMPLETED")
proc:join()

-- as_completed: the gated remote result comes last, after a local and a remote one
local gate2 = dir .. "/gate2"
local order = {}
local items = {pool:apply_async(blocked, {gate2}), pool:submit(function() return "r" end), lpool:apply_async(function() return "l" end)}
for f, i in mp.as_completed(items, 60) do
  order[#order + 1] = i
  if #order == 2 then touch(gate2) end
end
check(#order == 3 and order[3] == 1, "as_completed yields the gated remote result last (got " .. table.concat(order, ",") .. ")")
check(items[1]:get() == "opened" and items[2]:get() == "r" and items[3]:get() == "l", "as_completed values")

-- as_completed timeout raises TimeoutError naming how many were not ready
local gate3 = dir .. "/gate3"
local late = pool:apply_async(blocked, {gate3})
local ok, e = pcall(function() for _ in mp.as_completed({late}, 0.3) do end end)
check(not ok and e.kind == "TimeoutError", "as_completed timeout over a remote result")
touch(gate3)
check(late:get(30) == "opened", "then it completes")

-- done-callbacks of remote results run while mp.wait waits
local seen
local cb = pool:apply_async(function() return 7 end)
cb:add_done_callback(function(r) seen = r:get() end)
mp.wait({cb}, 30)
check(seen == 7, "add_done_callback ran by mp.wait")

-- options tables, as on a local pool
local r = pool:map(function(x) return x * x end, {1, 2, 3, 4}, {chunksize = 2})
check(r.n == 4 and r[4] == 16, "map options table with chunksize")
r = pool:map(function(x) return x * x end, {1, 2, 3}, 1)
check(r[3] == 9, "a number stays the chunksize")
r = pool:map(function(x) if x == 2 then error("two") end return x end, {1, 2, 3}, {errors = "return"})
check(r[1] == 1 and r[3] == 3 and r[2].kind == "RemoteError", "errors = \"return\" in the options table")
local got
local a = pool:apply_async(function(x) return x end, {5}, {callback = function(v) got = v end})
check(a:get() == 5, "apply_async options table")
check(got == 5, "its callback")
local gerr
a = pool:apply_async(function() error("cb") end, {}, {error_callback = function(err) gerr = err end})
a:wait(30)
check(gerr and gerr.kind == "RemoteError", "error_callback in the options table")
local ok2, e2 = pcall(pool.map, pool, function(x) return x end, {1}, {timeout = -1})
check(not ok2 and tostring(e2):find("timeout must be a positive number"), "bad timeout option")

-- per-item timeout: the worker process's own timer stops it; the other items still run
r = pool:map(function(x) if x == 2 then mp.sleep(100) end return x end, {1, 2, 3}, {chunksize = 3, timeout = 0.5, errors = "return"})
check(r[1] == 1 and r[3] == 3, "the chunk's other items ran (" .. tostring(r[1]) .. "," .. tostring(r[3]) .. ")")
check(type(r[2]) == "table" and r[2].kind == "TimeoutError", "the hung item failed with TimeoutError")
check(math.type(r[2].pid) == "integer" and r[2].timeout == 0.5, "TimeoutError names pid and timeout")
-- in C too (os.execute), and it raises from map without errors = "return"
local ok3, e3 = pcall(pool.map, pool, function() os.execute("sleep 30") return 1 end, {1}, {timeout = 0.5})
check(not ok3 and e3.kind == "TimeoutError", "timeout of an item blocked in C raises from map")
-- retries: a timeout is one attempt; the second attempt (marker present) returns
local mark = dir .. "/mark"
r = pool:map(function(m)
  local f = io.open(m) if f then f:close() return "second" end
  f = io.open(m, "w") f:close()
  mp.sleep(100)
end, {mark}, {timeout = 0.5, retries = 1})
check(r[1] == "second", "a timed-out item runs again with retries left")
-- with no retries left it fails after 1 + retries attempts
r = pool:map(function() mp.sleep(100) end, {1}, {timeout = 0.3, retries = 1, errors = "return"})
check(r[1].kind == "TimeoutError" and r[1].attempts == 2, "TimeoutError after 2 attempts")
-- an error the function raised is its outcome: retries never run it again (as locally)
local runs = dir .. "/runs"
r = pool:map(function(m)
  local f = io.open(m, "a") f:write("x") f:close()
  error({code = 7})
end, {runs}, {retries = 2, errors = "return"})
local rf = io.open(runs) local ran = rf:read("a") rf:close()
check(r[1].kind == "RemoteError" and ran == "x", "a raised error is not retried (ran " .. #ran .. " times)")
-- imap with errors = "return" gives the error object in the failed position
local got = {}
for v, i in pool:imap(function(x) if x == 2 then error("two") end return x * 10 end, {1, 2, 3}, {errors = "return"}) do
  got[i] = v
end
check(got[1] == 10 and type(got[2]) == "table" and got[2].kind == "RemoteError" and got[3] == 30,
      "imap with errors = \"return\" yields the error in place")
-- the pool's default task_timeout, and apply_async's timeout option
local tp = mp.Pool{task_timeout = 0.4}
local ok4, e4 = pcall(tp.apply, tp, function() mp.sleep(100) end)
check(not ok4 and e4.kind == "TimeoutError" and e4.timeout == 0.4, "Pool{task_timeout =}")
check(tp:apply(function() return "quick" end) == "quick", "the pool goes on")
local t = pool:apply_async(function() mp.sleep(100) end, {}, {timeout = 0.4})
local d5 = mp.wait({t}, 60)
check(#d5 == 1 and t:exception().kind == "TimeoutError", "apply_async timeout seen by mp.wait")
tp:close() tp:join()

pool:close() pool:join()
lpool:close() lpool:join()
print("checks " .. n)
