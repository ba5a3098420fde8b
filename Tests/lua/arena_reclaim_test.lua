-- Arena memory comes back: objects shared with children (by fork or in messages) are freed once
-- nobody holds them, and big queue messages take blocks close to their size.
local T = require "testlib"

local function arena_bytes()
  collectgarbage(); collectgarbage()
  return mp._arena().bytes
end

T.test("a 1 MiB queue message takes at most ~12% more arena than its size", function()
  local q = mp.Queue()
  local MiB = string.rep("m", 1 << 20)
  local before = arena_bytes()
  for _ = 1, 40 do q:put(MiB) end
  local per = (mp._arena().bytes - before) / 40
  print(string.format("  arena per queued 1 MiB message: %.3f MiB", per / 2^20))
  assert(per <= 1.13 * 2^20, string.format("%.0f bytes per 1 MiB message", per))
  for _ = 1, 40 do assert(#q:get() == 1 << 20) end
  for _, n in ipairs({9000, 70000, 300000, 5000000}) do      -- odd sizes come back intact
    local s = string.rep("z", n - 1) .. "!"
    q:put(s); T.eq(q:get() == s, true)
  end
end)

T.test("queue-per-task churn, inherited by children and sent to a worker: arena use stays flat", function()
  local cmd = mp.Queue()
  local worker = mp.Process(function()
    while true do
      local r = cmd:get()
      if r == false then break end
      r:put("ok")
      r = nil
      collectgarbage()                -- drop this process's hold now
    end
  end)
  worker:start()
  local N = T.long and 2000 or 150
  local before
  for i = 1, N do
    local q = mp.Queue()               -- inherited by a child forked after it
    q:put(i)
    local p = mp.Process(function() assert(q:get() == i); q:put(i * 2) end)
    p:start(); p:join()
    assert(p.exitcode == 0)
    assert(q:get() == i * 2)
    local r = mp.Queue()               -- sent to a worker started before it
    cmd:put(r)
    assert(r:get(true, 30) == "ok")
    local l, e = mp.Lock(), mp.Event()  -- other kinds, through a pipe to a child
    local a, b = mp.Pipe()
    local c = mp.Process(function() local l2, e2 = b:recv(), b:recv(); l2:acquire(); l2:release(); e2:set() end)
    c:start(); a:send(l); a:send(e); c:join()
    assert(e:is_set())
    q, r, l, e, a, b, p, c = nil
    if i == 20 then before = arena_bytes() end
  end
  local grown = arena_bytes() - before
  print(string.format("  %d iterations after warm-up: arena grew %d bytes", N - 20, grown))
  cmd:put(false); worker:join()
  assert(grown < 256 * 1024, "arena grew by " .. grown .. " bytes")
end)

T.test("queues made by pool workers and returned to the host are freed", function()
  local before = arena_bytes()
  local pool = mp.Pool(2)
  for i = 1, 100 do
    local q = pool:apply(function(k) local q = mp.Queue(); q:put(k); return q end, {i})
    T.eq(q:get(), i)
    q = nil
  end
  pool:close(); pool:join()           -- the workers end normally: their holds go
  local grown = arena_bytes() - before
  print(string.format("  a pool and 100 queues its workers made: arena grew %d bytes", grown))
  assert(grown < 256 * 1024, "arena grew by " .. grown .. " bytes")
end)

T.test("an object stays alive while a child forked after it still runs", function()
  local go, done = mp.Event(), mp.Queue()
  local q = mp.Queue()
  local p = mp.Process(function()
    go:wait(30)
    q:put("still here")                -- the parent dropped its userdata long ago
    done:put(true)
  end)
  p:start()
  q = nil
  collectgarbage(); collectgarbage()
  T.eq(mp._arena().deferred >= 1, true, "the parent's release waits for the child")
  go:set()
  T.eq(done:get(true, 30), true)
  p:join()
  T.eq(p.exitcode, 0)
  collectgarbage()
  T.eq(mp._arena().deferred, 0, "released once the child was reaped")
end)

T.test("a queue sent in a message stays alive until the message is taken", function()
  local box = mp.Queue()
  do
    local q = mp.Queue()
    q:put("inside")
    box:put(q)
  end
  collectgarbage(); collectgarbage()
  for _ = 1, 5 do local x = mp.Queue(); x:put("reuse?") end   -- would reuse a freed offset
  collectgarbage()
  local q = box:get()
  T.eq(q:get(), "inside")
end)

T.test("a failed put gives back the reference its encoding took", function()
  local full = mp.Queue(1)
  full:put(0)
  local before = arena_bytes()
  for _ = 1, 50 do
    local q = mp.Queue()
    T.raises("Full", full.put, full, q, false)
  end
  T.eq(arena_bytes() - before <= 0, true, "no queue kept alive by a put that failed")
end)

T.done()
