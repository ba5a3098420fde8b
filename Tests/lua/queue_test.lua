-- mp.Queue, mp.SimpleQueue, mp.JoinableQueue through the built binary: API, blocking, MPMC, big messages.
local T = require "testlib"

local function kind_of(err) return type(err) == "table" and err.kind or tostring(err) end

T.test("put/get keep order and every sendable value, nil included", function()
  local q = mp.Queue()
  local values = {1, 2.5, "s", true, false, {a = {1, 2}}, -0.0, math.huge, ""}
  q:put(nil)
  for _, v in ipairs(values) do q:put(v) end
  T.eq(q:qsize(), #values + 1)
  T.eq(q:empty(), false)
  T.eq(q:get(), nil)
  for i, v in ipairs(values) do
    local got = q:get()
    if type(v) == "table" then T.eq(got.a[2], 2) else T.eq(got, v, "value " .. i) end
  end
  T.eq(math.type(1 // 1), "integer")
  T.eq(q:empty(), true)
  T.eq(q:qsize(), 0)
end)

T.test("get on an empty queue raises Empty (nowait, block=false, timeout)", function()
  local q = mp.Queue()
  T.eq(kind_of(T.raises("Empty", q.get_nowait, q)), "Empty")
  T.eq(kind_of(T.raises("Empty", q.get, q, false)), "Empty")
  local t0 = mp.monotonic()
  T.eq(kind_of(T.raises("Empty", q.get, q, true, 0.2)), "Empty")
  assert(mp.monotonic() - t0 >= 0.19, "get waited for its timeout")
  local err = T.raises("Empty", q.get_nowait, q)
  assert(tostring(err):find("^Empty: "), tostring(err))
end)

T.test("a bounded queue raises Full after its timeout and frees room on get", function()
  local q = mp.Queue(2)
  q:put(1); q:put(2)
  T.eq(q:full(), true)
  T.eq(kind_of(T.raises("Full", q.put_nowait, q, 3)), "Full")
  T.eq(kind_of(T.raises("Full", q.put, q, 3, false)), "Full")
  local t0 = mp.monotonic()
  T.eq(kind_of(T.raises("Full", q.put, q, 3, true, 0.2)), "Full")
  assert(mp.monotonic() - t0 >= 0.19, "put waited for its timeout")
  T.eq(q:get(), 1)
  T.eq(q:full(), false)
  q:put(3)
  T.eq(q:get(), 2); T.eq(q:get(), 3)
  T.eq(mp.Queue{maxsize = 1}:full(), false)
  local b = mp.Queue{maxsize = 1}; b:put("x"); T.eq(b:full(), true)
end)

T.test("a blocked put resumes when a consumer in another process makes room", function()
  local q = mp.Queue(1)
  q:put("first")
  local host = mp.getpid()
  local p = mp.Process(function()
    T.wait_blocked(host, "the host blocked in put")   -- the put below must really be waiting
    assert(q:get() == "first")
  end)
  p:start()
  q:put("second", true, 30)     -- waits for the child's get
  p:join()
  T.eq(p.exitcode, 0)
  T.eq(q:get(), "second")
end)

T.test("bad arguments and unsendable values are clear errors, and put nothing", function()
  T.raises("bad argument #1 to '[%w.]*Queue' %(number expected, got string%)", mp.Queue, "x")
  T.raises("'maxsize' must be an integer", mp.Queue, {maxsize = "x"})
  local q = mp.Queue()
  T.raises("mp.Queue expected", q.put, 3, 1)
  local err = T.raises("cannot send a thread", q.put, q, {co = coroutine.create(print)})
  T.eq(err.kind, "SendError")
  T.eq(q:qsize(), 0)
  T.raises("number expected", q.get, q, true, "soon")
end)

T.test("close: this process puts no more; a child forked later may", function()
  local q = mp.Queue()
  q:put(1)
  q:close()
  T.raises("closed", q.put, q, 2)
  local p = mp.Process(function() q:put("from child") end)
  p:start(); p:join()
  T.eq(p.exitcode, 0)
  local q2 = mp.Queue()
  q2:put(1); q2:close(); T.raises("closed", q2.get, q2)
  q2 = nil
  for _ = 1, 20 do collectgarbage(); local fresh = mp.Queue(); fresh:put(1); T.eq(fresh:get(), 1) end
  q:join_thread(); q:cancel_join_thread()   -- Python compatibility: no feeder thread here
end)

T.test("self put/get of 1,000,000 messages without blocking", function()
  local q = mp.Queue()
  local n = 1000000
  for i = 1, n do q:put(i) end
  T.eq(q:qsize(), n)
  for i = 1, n do
    local v = q:get(false)
    if v ~= i then error("got " .. tostring(v) .. " at " .. i) end
  end
  T.eq(q:empty(), true)
end)

T.test("drained queues give their segments back to the arena", function()
  local q = mp.Queue()
  local before = mp._arena().bytes
  for i = 1, 200000 do q:put(i) end
  assert(mp._arena().bytes > before + 1000000, "segments were allocated")
  for _ = 1, 200000 do q:get() end
  assert(mp._arena().bytes <= before + 256 * 1024, "segments were freed: " .. (mp._arena().bytes - before))
end)

T.test("MPMC: 4 producers x 25,000, 4 consumers, exactly once, per-producer order", function()
  local P, C, N = 4, 4, T.long and 250000 or 25000
  local q, results = mp.Queue(), mp.Queue()
  local producers, consumers = {}, {}
  for c = 1, C do
    consumers[c] = mp.Process(function()
      local last, counts, sum = {}, {}, 0
      while true do
        local m = q:get()
        if m == "stop" then break end
        local p, i = m[1], m[2]
        if last[p] and i <= last[p] then error(("producer %d: %d after %d"):format(p, i, last[p])) end
        last[p] = i
        counts[p] = (counts[p] or 0) + 1
        sum = sum + i
      end
      results:put({counts = counts, sum = sum})
    end)
    consumers[c]:start()
  end
  for p = 1, P do
    producers[p] = mp.Process(function() for i = 1, N do q:put({p, i}) end end)
    producers[p]:start()
  end
  for p = 1, P do producers[p]:join(); T.eq(producers[p].exitcode, 0) end
  for _ = 1, C do q:put("stop") end
  local total, sum = {}, 0
  for _ = 1, C do
    local r = results:get(true, 120)
    for p, n in pairs(r.counts) do total[p] = (total[p] or 0) + n end
    sum = sum + r.sum
  end
  for c = 1, C do consumers[c]:join(); T.eq(consumers[c].exitcode, 0, "consumer " .. c) end
  for p = 1, P do T.eq(total[p], N, "messages of producer " .. p) end
  T.eq(sum, P * N * (N + 1) // 2, "sum of sequence numbers")
  T.eq(q:qsize(), 0)
end)

T.test("a child that puts and exits loses nothing; join before draining does not deadlock", function()
  local q = mp.Queue()
  local p = mp.Process(function() for i = 1, 50000 do q:put(string.rep("m", 100) .. i) end end)
  p:start()
  T.eq(p:join(60), true)
  T.eq(p.exitcode, 0)
  T.eq(q:qsize(), 50000)
  for i = 1, 50000 do T.eq(q:get(), string.rep("m", 100) .. i) end
end)

T.test("a queue created after the workers started reaches them through another queue", function()
  local inbox = mp.Queue()
  local w = mp.Process(function()
    local reply = inbox:get()
    reply:put(mp.getpid())
    local jq = inbox:get()
    jq:get(); jq:task_done()
  end)
  w:start()
  local reply = mp.Queue()
  inbox:put(reply)
  T.eq(reply:get(true, 30), w.pid)
  local jq = mp.JoinableQueue()
  jq:put("task")
  inbox:put(jq)
  T.eq(jq:join(30), true)
  w:join()
  T.eq(w.exitcode, 0)
  T.eq(tostring(reply), "<Queue size=0 maxsize=0>")
end)

T.test("JoinableQueue: join waits until every item was task_done'd", function()
  local jq, log = mp.JoinableQueue(), mp.Queue()
  for i = 1, 20 do jq:put(i) end
  local w = mp.Process(function()
    for _ = 1, 20 do
      local i = jq:get()
      mp.sleep(0.005)
      log:put(i)
      jq:task_done()
    end
  end)
  T.eq(jq:join(0.01), false, "join times out while tasks are pending")
  w:start()
  T.eq(jq:join(), true)
  T.eq(log:qsize(), 20, "every task was logged before its task_done")
  w:join()
  T.raises("task_done%(%) called too many times", jq.task_done, jq)
  local j2 = mp.JoinableQueue{maxsize = 1}
  j2:put(1); T.eq(j2:full(), true); T.eq(j2:get(), 1); j2:task_done(); T.eq(j2:join(), true)
end)

T.test("SimpleQueue: put, get, empty, close", function()
  local q = mp.SimpleQueue()
  T.eq(q:empty(), true)
  local p = mp.Process(function() q:put({"hello", 42}) end)
  p:start()
  local m = q:get()
  T.eq(m[1], "hello"); T.eq(m[2], 42)
  p:join()
  T.eq(q.qsize, nil, "SimpleQueue has no qsize")
  q:close()
  T.raises("closed", q.put, q, 1)
  T.raises("is closed", q.get, q)
  T.raises("is closed", q.empty, q)
end)

T.test("after close, the closing process's empty/get/get_nowait raise 'is closed' (Python)", function()
  for _, make in ipairs({mp.Queue, mp.JoinableQueue}) do
    local q = make()
    q:put(1)
    q:close()
    T.raises("is closed", q.empty, q)
    T.raises("is closed", q.get, q)
    T.raises("is closed", q.get_nowait, q)
    T.raises("is closed", q.put_nowait, q, 2)
    T.eq(q:qsize(), 1, "qsize still answers, as in Python")
    T.eq(q:full(), false)
    local p = mp.Process(function() assert(not q:empty()); assert(q:get() == 1) end)
    p:start(); p:join()
    T.eq(p.exitcode, 0, "a child forked later has it open")
  end
end)

T.test("256 MiB message round trip through a queue between processes", function()
  local size = 256 << 20
  local q, back = mp.Queue(), mp.Queue()
  local w = mp.Process(function()
    local s = q:get()
    back:put(#s == size and s:sub(1, 4) == "head" and s:sub(-4) == "tail")
  end)
  w:start()
  q:put("head" .. string.rep("z", size - 8) .. "tail")
  T.eq(back:get(true, 120), true)
  w:join()
  T.eq(w.exitcode, 0)
  local big = string.rep("q", 20 << 20)
  q:put(big); q:put(big)
  T.eq(q:get() == big, true); T.eq(q:get() == big, true)
end)

T.test("examples/queue.lua prints the sorted squares", function()
  local luamp = os.getenv("LUAMP") or arg[-1]
  local f = assert(io.popen(string.format("%q examples/queue.lua", luamp)))
  local out = f:read("a")
  local ok = f:close()
  T.eq(out, "[1, 4, 9, 16, 25]\n")
  T.eq(ok, true)
end)

T.done()
