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

--- 1 producer -> 1 consumer: a child sends `n` items (`i`, or `item`) with `tx[put]`, this
--- process receives them with `rx[get]` (`x[m](x, ...)` is what `x:m(...)` runs).
local function one_to_one(name, channel, put, get, n, item)
  case(name, function()
    local rx, tx = channel()
    local p = mp.Process(function() for i = 1, n do tx[put](tx, item or i) end end)
    p:start()
    for _ = 1, n do
      local v = rx[get](rx)
      if item then assert(#v == #item) end
    end
    p:join()
  end)
end
local function queue() local q = mp.Queue() return q, q end
local function pipe() return mp.Pipe(false) end

one_to_one("queue_small_1to1", queue, "put", "get", SMALL)
one_to_one("queue_1mib_1to1", queue, "put", "get", BIG, MiB)

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

one_to_one("pipe_small_1to1", pipe, "send", "recv", SMALL)
one_to_one("pipe_1mib_1to1", pipe, "send", "recv", BIG, MiB)

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

