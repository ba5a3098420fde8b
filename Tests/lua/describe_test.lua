-- describe: what tostring(obj) (and so the REPL) shows for queues, locks, values, pipes and the rest.
local T = require "testlib"

--- Asserts that tostring(obj) is exactly `want`.
local function shows(obj, want, what)
  T.eq(tostring(obj), want, what)
end

--- Polls (generously: up to 30 s) until tostring(obj) equals `want`; fails with the last text.
local function becomes(obj, want)
  local deadline = mp.monotonic() + 30
  while tostring(obj) ~= want do
    if mp.monotonic() > deadline then error("still " .. tostring(obj) .. ", expected " .. want, 2) end
    mp.sleep(0.01)
  end
end

--- Runs each step on obj — a method name (`obj:name()`), a function of obj, or false (nothing)
--- — and asserts what tostring(obj) shows after it.
local function shows_steps(obj, steps)
  for _, step in ipairs(steps) do
    local act = step[1]
    if type(act) == "function" then act(obj) elseif act then obj[act](obj) end
    shows(obj, step[2])
  end
end

local me = mp.getpid()

T.test("Queue, SimpleQueue, JoinableQueue: size, maxsize, unfinished, closed", function()
  local q = mp.Queue()
  shows(q, "<Queue size=0 maxsize=0>")
  q:put(1)
  shows(q, "<Queue size=1 maxsize=0>")
  q:put("two"); q:put({3})
  shows(q, "<Queue size=3 maxsize=0>")
  q:get()
  shows(q, "<Queue size=2 maxsize=0>")
  shows(mp.Queue(5), "<Queue size=0 maxsize=5>")
  shows(mp.Queue{maxsize = 2}, "<Queue size=0 maxsize=2>")
  q:close()
  shows(q, "<Queue size=2 maxsize=0 closed>")

  local sq = mp.SimpleQueue()
  sq:put(1)
  shows(sq, "<SimpleQueue size=1>")

  local jq = mp.JoinableQueue(4)
  shows(jq, "<JoinableQueue size=0 maxsize=4 unfinished=0>")
  jq:put("a"); jq:put("b")
  shows(jq, "<JoinableQueue size=2 maxsize=4 unfinished=2>")
  jq:get()
  shows(jq, "<JoinableQueue size=1 maxsize=4 unfinished=2>")
  jq:task_done()
  shows(jq, "<JoinableQueue size=1 maxsize=4 unfinished=1>")
end)

T.test("Lock and RLock: unlocked, locked by this pid, depth", function()
  shows_steps(mp.Lock(), {
    {false, "<Lock unlocked>"},
    {"acquire", "<Lock locked by pid " .. me .. ">"},
    {"release", "<Lock unlocked>"},
  })
  shows_steps(mp.RLock(), {
    {false, "<RLock unlocked>"},
    {function(r) r:acquire(); r:acquire() end, "<RLock locked by pid " .. me .. " depth=2>"},
    {"release", "<RLock locked by pid " .. me .. " depth=1>"},
    {"release", "<RLock unlocked>"},
  })
  shows(mp.Value("i", 1):get_lock(), "<RLock unlocked>")
end)

T.test("Lock held by a child shows the child's pid", function()
  local l, held, done = mp.Lock(), mp.Event(), mp.Event()
  local p = mp.Process(function()
    l:acquire(); held:set(); done:wait(30); l:release()
  end)
  p:start()
  assert(held:wait(30), "child never took the lock")
  shows(l, "<Lock locked by pid " .. p.pid .. ">")
  done:set()
  p:join()
  T.eq(p.exitcode, 0)
  shows(l, "<Lock unlocked>")
end)

T.test("Semaphore and BoundedSemaphore: value and max", function()
  shows_steps(mp.Semaphore(2), {{false, "<Semaphore value=2>"}, {"acquire", "<Semaphore value=1>"}})
  shows(mp.Semaphore(), "<Semaphore value=1>")
  shows_steps(mp.BoundedSemaphore(2), {
    {false, "<BoundedSemaphore value=2 max=2>"},
    {"acquire", "<BoundedSemaphore value=1 max=2>"},
    {"release", "<BoundedSemaphore value=2 max=2>"},
  })
end)

T.test("Event: set and unset", function()
  shows_steps(mp.Event(), {{false, "<Event unset>"}, {"set", "<Event set>"}, {"clear", "<Event unset>"}})
end)

T.test("Condition: waiters and its lock", function()
  local c = mp.Condition()
  shows_steps(c, {
    {false, "<Condition waiters=0 <RLock unlocked>>"},
    {"acquire", "<Condition waiters=0 <RLock locked by pid " .. me .. " depth=1>>"},
  })
  c:release()
  shows(mp.Condition(mp.Lock()), "<Condition waiters=0 <Lock unlocked>>")

  local p = mp.Process(function()
    c:acquire(); c:wait(30); c:release()
  end)
  p:start()
  becomes(c, "<Condition waiters=1 <RLock unlocked>>")
  c:acquire(); c:notify(); c:release()
  p:join()
  T.eq(p.exitcode, 0)
  shows(c, "<Condition waiters=0 <RLock unlocked>>")
end)

T.test("Barrier: parties, waiting, broken", function()
  local b = mp.Barrier(2)
  shows(b, "<Barrier parties=2 waiting=0>")
  local p = mp.Process(function() b:wait(30) end)
  p:start()
  becomes(b, "<Barrier parties=2 waiting=1>")
  b:wait(30)
  p:join()
  T.eq(p.exitcode, 0)
  shows(b, "<Barrier parties=2 waiting=0>")
  b:abort()
  shows(b, "<Barrier parties=2 waiting=0 broken>")
  b:reset()
  shows(b, "<Barrier parties=2 waiting=0>")
end)

T.test("Value and Array: typecode, value, length", function()
  local v = mp.Value("i", 42)
  shows(v, "<Value 'i' 42>")
  v.value = -7
  shows(v, "<Value 'i' -7>")
  shows(mp.Value("d", 0.5), "<Value 'd' 0.5>")
  shows(mp.Value("d", 2), "<Value 'd' 2.0>")
  shows(mp.Array("d", 10), "<Array 'd' len=10>")
  shows(mp.Array("i", {1, 2, 3}), "<Array 'i' len=3>")
end)

T.test("Connection: mode, descriptors, closed", function()
  local a, b = mp.Pipe()
  assert(tostring(a):match("^<Connection duplex fd=%d+,%d+>$"), tostring(a))
  local r, w = mp.Pipe(false)
  assert(tostring(r):match("^<Connection receive fd=%d+>$"), tostring(r))
  assert(tostring(w):match("^<Connection send fd=%d+>$"), tostring(w))
  a:close(); r:close()
  shows(a, "<Connection closed>")
  shows(r, "<Connection closed>")
  b:close(); w:close()
end)

T.test("objects received from another process describe the same shared state", function()
  local q, back = mp.Queue(), mp.Queue()
  local ev = mp.Event(); ev:set()
  q:put(1); q:put(2)
  local p = mp.Process(function(e) back:put({tostring(e), tostring(q)}) end, ev)
  p:start()
  local got = back:get(30)
  p:join()
  T.eq(got[1], "<Event set>")
  T.eq(got[2], "<Queue size=2 maxsize=0>")
end)

T.test("Pool, AsyncResult and PoolIterator print their state like every mp object", function()
  local pool = mp.Pool(1)
  shows(pool, "<Pool processes=1 state=RUN>")
  local gate = mp.Event()
  local it = pool:imap(function(x) gate:wait(30); return x * 10 end, {1, 2, 3})
  assert(tostring(it):find("^<PoolIterator imap running=%d+ ready=0 taken=0>$"), tostring(it))
  gate:set()
  T.eq((it()), 10)
  assert(tostring(it):find("^<PoolIterator imap running=%d+ ready=%d+ taken=1>$"), tostring(it))
  T.eq((it()), 20); T.eq((it()), 30)
  T.eq(it(), nil)
  shows(it, "<PoolIterator imap done>")
  local un = pool:imap_unordered(function(x) return x end, {1, 2, 3})
  for _ in un, nil, nil, un do break end   -- what `for v in pool:imap_unordered(...)` gets
  shows(un, "<PoolIterator imap_unordered closed>")
  local r = pool:apply_async(math.max, {1, 2})
  r:wait(30)
  shows(r, "<AsyncResult ready>")
  local never = mp.Event()
  local late = pool:imap(function(x) never:wait(30); return x end, {1})
  pool:terminate()
  shows(pool, "<Pool processes=1 state=TERMINATE>")
  shows(late, "<PoolIterator imap terminated>")
end)

T.done()
