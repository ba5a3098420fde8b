-- Every row of the remote Pool and named Queue API against real worker nodes (test_cluster.py runs
-- it with LUAMP_ADDRESS and LUAMP_AUTHKEY set, two nodes up). Prints "ok NAME" per check.
local address = os.getenv("LUAMP_ADDRESS")
local checks = 0
local function ok(name, cond, detail)
  if not cond then error("FAILED " .. name .. (detail and (": " .. tostring(detail)) or ""), 2) end
  checks = checks + 1
  print("ok " .. name)
end

local pool <close> = mp.Pool{address = address}
ok("tostring", tostring(pool):find("^<Pool address=redis://") ~= nil, tostring(pool))

-- map, starmap, chunksize, nil results keep their places
local xs = {}
for i = 1, 1000 do xs[i] = i end
local r = pool:map(function(x) return x * x end, xs)
local good = r.n == 1000
for i = 1, 1000 do good = good and r[i] == i * i end
ok("map", good)
ok("map chunksize", pool:map(function(x) return x + 1 end, {1, 2, 3}, 1)[3] == 4)
local nils = pool:map(function(x) if x % 2 == 0 then return nil end return x end, {1, 2, 3, 4})
ok("map nil results", nils.n == 4 and nils[1] == 1 and nils[2] == nil and nils[3] == 3)
local s = pool:starmap(function(a, b) return a .. b end, {{"a", "b"}, {"c", "d"}})
ok("starmap", s[1] == "ab" and s[2] == "cd")
ok("map iterator input", pool:map(function(x) return -x end, coroutine.wrap(function() for i = 1, 3 do coroutine.yield(i) end end))[3] == -3)

-- closures and upvalues, modules by reference, tables by value
local k = 10
ok("upvalues", pool:map(function(x) return x + k end, {1})[1] == 11)
local json = require "cjson"
ok("module by reference", pool:apply(function(t) return json.encode(t) end, {{1, 2}}) == "[1,2]")

-- globals the function reads travel with it (the worker never ran this script)
OFFSET = 100
function helper(x) return x + OFFSET end
ok("globals read by the function", pool:map(function(x) return helper(x) end, {1, 2})[2] == 102)
-- a global whose name's constant index is above 255 (a function with more than 256 constants),
-- and one with a long name (not a short string): both are read through GETTABLE, not GETTABUP
local src = {"return function() local t = {"}
for i = 1, 300 do src[#src + 1] = string.format("%q,", "c" .. i) end
src[#src + 1] = "} return FAR_GLOBAL + #t + LONG_" .. string.rep("N", 50) .. " end"
FAR_GLOBAL = 1000
_G["LONG_" .. string.rep("N", 50)] = 20000
ok("globals past constant 255", pool:apply(assert(load(table.concat(src)))()) == 21300)
CONFIG = {scale = 3}
ok("global table by value", pool:apply(function() return CONFIG.scale end) == 3)
BAD_GLOBAL = require("lpeg").P("x")
local ge = select(2, pcall(pool.apply, pool, function() return BAD_GLOBAL end))
ok("unsendable global names its path", type(ge) == "table" and ge.kind == "SendError" and ge.message:find("^globals%.BAD_GLOBAL"), ge)
BAD_GLOBAL = nil

-- apply (all return values), apply_async, submit, AsyncResult
local a, b, c = pool:apply(function(x, y) return x + y, x * y, nil end, {3, 4})
ok("apply", a == 7 and b == 12 and c == nil)
local f = pool:apply_async(function(x) return x * 2 end, {21})
ok("AsyncResult get", f:get(30) == 42)
ok("AsyncResult ready/successful", f:ready() and f:successful() and f:done())
local sub = pool:submit(function(...) return select("#", ...), ... end, 1, nil, 3)
local n1, x1, x2, x3 = sub:result()
ok("submit keeps nils", n1 == 3 and x1 == 1 and x2 == nil and x3 == 3)
local slow = pool:apply_async(function() mp.sleep(0.3) return 1 end)
ok("wait timeout", slow:wait(0.01) == false or slow:ready())
local terr = select(2, pcall(slow.get, slow, 0))
ok("get timeout", slow:ready() or (type(terr) == "table" and terr.kind == "TimeoutError"), terr)
ok("wait", slow:wait(30) == true and slow:get() == 1)

-- errors
local e = select(2, pcall(pool.map, pool, function(x) if x == 3 then error("boom " .. x) end return x end, {1, 2, 3, 4, 5}, 1))
ok("RemoteError", type(e) == "table" and e.kind == "RemoteError" and e.message:find("boom 3") and e.traceback ~= nil and e.pid ~= nil, e)
local ret = pool:map(function(x) if x == 2 then error("two") end return x end, {1, 2, 3}, 1, {errors = "return"})
ok("errors = return", ret[1] == 1 and type(ret[2]) == "table" and ret[2].kind == "RemoteError" and ret[3] == 3)
local ef = pool:apply_async(function() error({code = 7}) end)
ok("exception()", ef:exception(30).kind == "RemoteError")
ok("successful false", ef:successful() == false)
local se = select(2, pcall(pool.apply, pool, function() return io.stdout end))
ok("unsendable result", type(se) == "table" and se.kind == "RemoteError", se)
local lu = require "lpeg"
local pe = select(2, pcall(pool.map, pool, function(x) return x end, {lu.P("a")}))
ok("unsendable input", type(pe) == "table" and pe.kind == "SendError", pe)
local qe = select(2, pcall(pool.apply, pool, function(q) return q end, {mp.Queue()}))
ok("local mp objects refused", type(qe) == "table" and qe.kind == "SendError" and tostring(qe.message):find("another machine"), qe)

-- callbacks run in the host at the next waiting call
local got, gerr = nil, nil
local cb = pool:apply_async(function() return "cb" end, nil, function(v) got = v end)
local ecb = pool:apply_async(function() error("bad") end, nil, nil, function(err) gerr = err end)
cb:wait(30); ecb:wait(30)
ok("callback", got == "cb")
ok("error_callback", type(gerr) == "table" and gerr.kind == "RemoteError")
local done_seen
local dc = pool:apply_async(function() return 5 end)
dc:add_done_callback(function(fut) done_seen = fut:get() end)
dc:wait(30)
ok("add_done_callback", done_seen == 5)
local ma = pool:map_async(function(x) return x end, {1, 2})
ok("map_async", ma:get(30)[2] == 2)
ok("starmap_async", pool:starmap_async(function(x, y) return x - y end, {{5, 1}}):get(30)[1] == 4)

-- imap, imap_unordered (lazy), break
local order = {}
for v, i in pool:imap(function(x) return x * 10 end, {1, 2, 3, 4}) do order[#order + 1] = v .. "@" .. i end
ok("imap", table.concat(order, ",") == "10@1,20@2,30@3,40@4", table.concat(order, ","))
local seen = {}
for v in pool:imap_unordered(function(x) return x end, {1, 2, 3}) do seen[v] = true end
ok("imap_unordered", seen[1] and seen[2] and seen[3])
local count = 0
for _ in pool:imap(function(x) return x end, function() count = count + 1 return count end) do
  if count >= 5 then break end
end
ok("imap infinite input, break", count >= 5)

-- initializer: runs in each worker process before its first task of this pool
local ip <close> = mp.Pool{address = address, initializer = function(v) INIT_VALUE = v end, initargs = {"set"}}
ok("initializer", ip:apply(function() return INIT_VALUE end) == "set")
ip:close(); ip:join()

-- processes caps this pool's tasks in flight
local capped <close> = mp.Pool{address = address, processes = 1}
ok("processes cap", capped:map(function(x) return x end, {1, 2, 3, 4}, 1)[4] == 4)
capped:close(); capped:join()

-- named queues
local q = mp.Queue{address = address, name = "api-q", maxsize = 2}
q:put(1); q:put({t = "two", f = function() return 2 end})
local full = select(2, pcall(q.put, q, 3, false))
ok("Queue Full", type(full) == "table" and full.kind == "Full", full)
local ft = select(2, pcall(q.put, q, 3, true, 0.05))
ok("Queue put timeout", type(ft) == "table" and ft.kind == "Full")
ok("Queue qsize/full", q:qsize() == 2 and q:full())
ok("Queue get", q:get() == 1)
local two = q:get()
ok("Queue values with functions", two.t == "two" and two.f() == 2)
local em = select(2, pcall(q.get, q, true, 0.05))
ok("Queue Empty", type(em) == "table" and em.kind == "Empty", em)
ok("Queue get_nowait", select(2, pcall(q.get_nowait, q)).kind == "Empty")
ok("Queue empty", q:empty())
-- the same queue opened by name in a worker on another node, and a queue object sent to a task
local q2 = mp.Queue{address = address, name = "api-q"}
pool:apply(function(qq) qq:put("from a worker") end, {q2})
ok("Queue sent to a task", q:get(true, 30) == "from a worker")
-- a forked child never shares its parent's Redis socket: it opens its own
local fq = mp.Queue{address = address, name = "api-fork-q"}
fq:put("before")
local child = mp.Process(function() for i = 1, 50 do fq:put(i) end end)
child:start()
for _ = 1, 50 do fq:qsize() end   -- the parent talks on its socket meanwhile
child:join()
ok("fork: the child's own connection", child.exitcode == 0)
local got_all = fq:get(true, 10) == "before"
for i = 1, 50 do got_all = got_all and fq:get(true, 10) == i end
ok("fork: both connections intact", got_all)
local jq = mp.JoinableQueue{address = address, name = "api-jq"}
for i = 1, 3 do jq:put(i) end
ok("join timeout", jq:join(0.05) == false)
pool:apply(function() local w = mp.JoinableQueue{address = address, name = "api-jq"}
  for _ = 1, 3 do w:get(); w:task_done() end end)
ok("JoinableQueue join", jq:join(30) == true)
ok("task_done too many", not pcall(jq.task_done, jq))
q:close()
ok("closed queue", select(2, pcall(q.put, q, 1)):find("closed") ~= nil)

pool:close()
pool:join()
ok("closed pool refuses", select(2, pcall(pool.map, pool, print, {1})):find("closed") ~= nil)
print("checks " .. checks)
