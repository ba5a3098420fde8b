-- Pools keep working while the host blocks on another mp object: a queue, an event, a lock, a
-- semaphore, a condition, a process's join, a pipe — also inside a coroutine. Each case submits
-- more work than the pipes hold both ways (1,500 tasks with 4 KiB arguments and 4 KiB results,
-- about 6 MiB each way, where the pipes take 1 MiB each), gated on a file so that nothing runs
-- before the host blocks; a watcher process releases the host only once every task has marked a
-- file. Without the pool service running from inside those waits, the workers stall once the
-- pipes are full and the host's wait times out.
local T = require "testlib"

local dir, path = T.tempdir()
local count = T.filesize

local N, SIZE = 1500, 4096

-- Tasks: wait for the go file, append one byte to `file`, return a string as long as the argument.
local function task(start, file, arg)
  GO = GO or {}
  while not GO[start] do
    local f = io.open(start)
    if f then f:close(); GO[start] = true else mp.sleep(0.001) end
  end
  OPEN = OPEN or {}
  local f = OPEN[file]
  if not f then f = assert(io.open(file, "a")); OPEN[file] = f end
  f:write("x")
  f:flush()
  return string.rep("r", #arg)
end

-- Submits the N tasks of case `name`; returns their results, the file they mark and a function
-- that lets them run. Everything is submitted (and as much as fits sent) before any runs.
local function submit(pool, name)
  local start, file = path(name .. "-go"), path(name)
  local arg = string.rep("a", SIZE)
  local rs = {}
  for i = 1, N do rs[i] = pool:apply_async(task, {start, file, arg}) end
  return rs, file, function() assert(io.open(start, "w")):close() end
end

-- A process that waits (polling the file, no mp object) until every task marked it, then runs
-- `release` — what the host is blocked on.
local function watcher(file, release, before)
  local p = mp.Process{target = function()
    if before then before() end
    local deadline = os.time() + 90
    while count(file) < N do
      if os.time() > deadline then os.exit(3) end
      mp.sleep(0.005)
    end
    if release then release() end
  end}
  p:start()
  return p
end

local function all_done(rs)
  for i = 1, N do T.eq(#rs[i]:get(5), SIZE) end
end

-- The host blocks in `get(q)` until the watcher puts "all ran".
local function queue_case(name, get)
  return function(pool)
    local q = mp.Queue()
    local rs, file, go = submit(pool, name)
    local w = watcher(file, function() q:put("all ran") end)
    go()
    T.eq(get(q), "all ran")
    w:join()
    return rs
  end
end

local cases = {
  {"a queue's get", queue_case("queue", function(q) return q:get(true, 60) end)},
  {"an event's wait", function(pool)
    local ev = mp.Event()
    local rs, file, go = submit(pool, "event")
    local w = watcher(file, function() ev:set() end)
    go()
    T.eq(ev:wait(60), true)
    w:join()
    return rs
  end},
  {"a lock's acquire", function(pool)
    local lock, held = mp.Lock(), mp.Event()
    local rs, file, go = submit(pool, "lock")
    local w = watcher(file, function() lock:release() end, function() lock:acquire() held:set() end)
    T.eq(held:wait(30), true)
    go()
    T.eq(lock:acquire(true, 60), true)
    lock:release()
    w:join()
    return rs
  end},
  {"a semaphore's acquire", function(pool)
    local sem = mp.Semaphore(0)
    local rs, file, go = submit(pool, "sem")
    local w = watcher(file, function() sem:release() end)
    go()
    T.eq(sem:acquire(true, 60), true)
    w:join()
    return rs
  end},
  {"a condition's wait_for", function(pool)
    local cond, flag = mp.Condition(), mp.Value("i", 0)
    local rs, file, go = submit(pool, "cond")
    local w = watcher(file, function() cond:acquire() flag.value = 1 cond:notify_all() cond:release() end)
    go()
    cond:acquire()
    T.eq(cond:wait_for(function() return flag.value == 1 end, 60), true)
    cond:release()
    w:join()
    return rs
  end},
  {"a process's join", function(pool)
    local rs, file, go = submit(pool, "join")
    local w = watcher(file)
    go()
    w:join(60)
    T.eq(w:is_alive(), false, "the watcher ended within the join")
    T.eq(w.exitcode, 0)
    return rs
  end},
  {"a pipe's recv", function(pool)
    local a, b = mp.Pipe()
    local rs, file, go = submit(pool, "pipe")
    local w = watcher(file, function() b:send("all ran") end)
    go()
    T.eq(a:poll(60), true)
    T.eq(a:recv(), "all ran")
    w:join()
    return rs
  end},
  {"a queue's get inside a coroutine", queue_case("coroutine", function(q)
    return coroutine.wrap(function() return q:get(true, 60) end)()
  end)},
}

for _, c in ipairs(cases) do
  T.test(N .. " tasks (6 MiB each way) finish while the host blocks on " .. c[1], function()
    local pool <close> = mp.Pool(2)
    local rs = c[2](pool)
    all_done(rs)
  end)
end

os.execute("rm -rf " .. dir)
T.done()
