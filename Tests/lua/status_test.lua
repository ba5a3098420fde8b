-- mp.status(): what this process runs now, while a pool is busy and after.
local T = require "testlib"

T.test("status while a pool is busy and after", function()
  local go = mp.Event()
  local q = mp.Queue(5)
  q:put("a"); q:put("b")
  local p = mp.Process{name = "waiter", target = function() go:wait() end}
  p:start()
  local pool = mp.Pool(2)
  local r = pool:map_async(function(x) go:wait() return x end, {1, 2, 3}, 1)
  -- wait (on observable state) until both workers have started a task
  local st
  local deadline = mp.monotonic() + 20
  repeat
    st = mp.status()
    local busy = 0
    for _, w in ipairs(st.pools[1].workers) do if w.task then busy = busy + 1 end end
    if busy == 2 then break end
    mp.sleep(0.01)
  until mp.monotonic() > deadline
  T.eq(st.process.name, "MainProcess")
  T.eq(st.process.pid, mp.getpid())
  T.eq(#st.processes, 1)
  local pr = st.processes[1]
  T.eq(pr.name, "waiter"); T.eq(pr.pid, p.pid); T.eq(pr.alive, true); T.eq(pr.exitcode, nil)
  assert(type(pr.cpu) == "number" and pr.rss > 1024 * 1024, "cpu and rss of a live process")
  local pl = st.pools[1]
  T.eq(pl.processes, 2); T.eq(pl.state, "running"); T.eq(pl.backlog, 3); T.eq(pl.done, 0); T.eq(pl.failed, 0)
  T.eq(#pl.workers, 2)
  local tasks = {}
  for _, w in ipairs(pl.workers) do
    assert(w.name:match("^PoolWorker%-%d+$"), w.name)
    assert(w.pid > 0 and w.rss > 0)
    tasks[#tasks + 1] = w.task
  end
  table.sort(tasks)
  T.eq(table.concat(tasks, ","), "map 1,map 2")
  T.eq(#st.queues, 1); T.eq(st.queues[1].kind, "Queue"); T.eq(st.queues[1].size, 2); T.eq(st.queues[1].maxsize, 5)
  local text = tostring(st)
  assert(text:find("waiter", 1, true) and text:find("pool 1", 1, true) and text:find("map 1", 1, true), text)
  go:set()
  T.eq(#r:get(), 3)
  p:join()
  st = mp.status()
  T.eq(st.pools[1].done, 3); T.eq(st.pools[1].backlog, 0)
  for _, w in ipairs(st.pools[1].workers) do T.eq(w.task, nil) end
  T.eq(#st.processes, 0, "a joined process is no longer listed")
  local ok = pcall(pool.map, pool, function(x) error("no") end, {1})
  T.eq(ok, false)
  T.eq(mp.status().pools[1].failed, 1)
  pool:terminate()
  T.eq(#mp.status().pools, 0)
end)

T.test("queues no longer referenced leave the status", function()
  local q = mp.SimpleQueue()
  q = nil
  collectgarbage(); collectgarbage()
  for _, e in ipairs(mp.status().queues) do assert(e.kind ~= "SimpleQueue") end
end)

T.done()
