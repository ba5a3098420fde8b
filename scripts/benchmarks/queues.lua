-- queue benchmark: 1 producer -> 1 consumer (small integers, 1 MiB strings), 4x4 MPMC, and Pipe 1 -> 1.
-- Each case times from starting the producer process(es) to the last message received.
local clock = mp.monotonic
local SMALL, BIG, MPMC = 200000, 200, 50000      -- MPMC: per producer (4 x 50,000 = 200,000)
local MiB = string.rep("x", 1 << 20)

local function case(name, f)
  collectgarbage(); collectgarbage()
  local t0 = clock()
  f()
  print(string.format("%s %.6f", name, clock() - t0))
end

case("queue_small_1to1", function()
  local q = mp.Queue()
  local p = mp.Process(function() for i = 1, SMALL do q:put(i) end end)
  p:start()
  for _ = 1, SMALL do q:get() end
  p:join()
end)

case("queue_1mib_1to1", function()
  local q = mp.Queue()
  local p = mp.Process(function() for _ = 1, BIG do q:put(MiB) end end)
  p:start()
  for _ = 1, BIG do assert(#q:get() == 1 << 20) end
  p:join()
end)

case("queue_mpmc_4x4", function()
  local q, done = mp.Queue(), mp.Queue()
  local ps = {}
  for c = 1, 4 do
    ps[#ps + 1] = mp.Process(function()
      local n = 0
      while q:get() ~= false do n = n + 1 end
      done:put(n)
    end)
  end
  for _ = 1, 4 do ps[#ps + 1] = mp.Process(function() for i = 1, MPMC do q:put(i) end end) end
  for _, p in ipairs(ps) do p:start() end
  for k = 5, 8 do ps[k]:join() end
  for _ = 1, 4 do q:put(false) end
  local total = 0
  for _ = 1, 4 do total = total + done:get() end
  assert(total == 4 * MPMC)
  for k = 1, 4 do ps[k]:join() end
end)

case("pipe_small_1to1", function()
  local r, w = mp.Pipe(false)
  local p = mp.Process(function() for i = 1, SMALL do w:send(i) end end)
  p:start()
  for _ = 1, SMALL do r:recv() end
  p:join()
end)

case("pipe_1mib_1to1", function()
  local r, w = mp.Pipe(false)
  local p = mp.Process(function() for _ = 1, BIG do w:send(MiB) end end)
  p:start()
  for _ = 1, BIG do assert(#r:recv() == 1 << 20) end
  p:join()
end)

-- Put cost with a growing backlog (no consumer yet): the second 1,000 queued 1 MiB messages
-- should cost what the first 1,000 did. luamp only: Python's put hands messages to a feeder
-- thread, and a backlog there sits in that process's memory.
do
  local q = mp.Queue()
  for _, name in ipairs({"queue_1mib_backlog_first1000", "queue_1mib_backlog_next1000"}) do
    collectgarbage()
    local t0 = clock()
    for _ = 1, 1000 do q:put(MiB) end
    print(string.format("%s %.6f", name, clock() - t0))
  end
  local a = mp._arena()
  print(string.format("# arena for 2,000 queued 1 MiB messages: %.0f MiB", a.bytes / 2^20))
  for _ = 1, 2000 do assert(#q:get() == 1 << 20) end
end

