-- Pipe ends shared between processes: exact-one-message receives, ends handed over and closed at
-- once, ends sent to processes started earlier, and what an end costs after close().
local T = require "testlib"

T.test("a child's recv takes one message and leaves the rest to the parent", function()
  local r, w = mp.Pipe(false)
  w:send("first"); w:send("second"); w:send({third = 3})
  local p = mp.Process(function() T.eq(r:recv(), "first") end)
  p:start(); p:join()
  T.eq(p.exitcode, 0)
  T.eq(r:poll(5), true, "the messages after the child's one are still in the pipe")
  T.eq(r:recv(), "second")
  T.eq(r:recv().third, 3)
end)

T.test("the parent's recv leaves the next message to a child forked after it", function()
  local r, w = mp.Pipe(false)
  w:send(1); w:send(2); w:send(string.rep("b", 200000)); w:send(4)
  T.eq(r:recv(), 1)
  local got = mp.Queue()
  local p = mp.Process(function()
    if not r:poll(5) then got:put("nothing to read"); return end
    got:put(r:recv()); got:put(#r:recv())
  end)
  p:start()
  T.eq(got:get(true, 30), 2)
  T.eq(got:get(true, 30), 200000)
  p:join()
  T.eq(r:recv(), 4)
end)

T.test("readers in several processes taking turns get every message exactly once", function()
  local r, w = mp.Pipe(false)
  local lock, out = mp.Lock(), mp.Queue()
  local N, K = 3, 300
  local ps = {}
  for k = 1, N do
    ps[k] = mp.Process(function()
      for _ = 1, K do
        local v = lock:with(function() return r:recv() end)
        out:put(v)
      end
    end)
    ps[k]:start()
  end
  for i = 1, N * K do w:send(i % 7 == 0 and string.rep("x", 70000 + i) or i) end
  local seen, count = {}, 0
  for _ = 1, N * K do
    local v = out:get(true, 60)
    local key = type(v) == "string" and #v - 70000 or v
    assert(not seen[key], "message " .. key .. " received twice")
    seen[key] = true; count = count + 1
  end
  T.eq(count, N * K)
  for k = 1, N do ps[k]:join(); T.eq(ps[k].exitcode, 0) end
end)

T.test("conn:send(w); w:close() hands the end over (Python's pattern)", function()
  local inbox_r, inbox_w = mp.Pipe(false)
  local child = mp.Process(function()
    local w = inbox_r:recv()
    w:send("hello through the handed-over end")
    w:close()
  end)
  child:start()
  local r, w = mp.Pipe(false)
  inbox_w:send(w)
  w:close()                             -- at once, before the child received it
  T.eq(r:recv(), "hello through the handed-over end")
  child:join()
  T.eq(child.exitcode, 0)
  T.raises("EOFError", r.recv, r)       -- the only writer left was the child's, now closed
end)

T.test("a child sends a pipe end and exits before the parent receives it", function()
  local q = mp.Queue()
  local p = mp.Process(function()
    local a, b = mp.Pipe()
    a:send("waiting in the pipe")
    q:put(b)
    a:close(); b:close()
  end)
  p:start(); p:join()
  T.eq(p.exitcode, 0)
  local b = q:get(true, 30)
  T.eq(b:recv(), "waiting in the pipe")
  T.raises("EOFError", b.recv, b)
end)

T.test("an end received twice from the same bytes: the second is a clear error", function()
  local a, b = mp.Pipe()
  local s = mp.dumps(b)
  b:close()
  local b2 = mp.loads(s)
  a:send(1); T.eq(b2:recv(), 1)
  b2:close()
  T.raises("already received", mp.loads, s)
end)

T.test("an end sent to many pool-like receivers in one message each", function()
  local inbox = mp.Queue()
  local ps = {}
  for k = 1, 3 do
    ps[k] = mp.Process(function() local w = inbox:get(); w:send(k); w:close() end)
    ps[k]:start()
  end
  local r, w = mp.Pipe(false)
  for _ = 1, 3 do inbox:put(w) end
  w:close()
  local sum = 0
  for _ = 1, 3 do sum = sum + r:recv() end
  T.eq(sum, 6)
  for k = 1, 3 do ps[k]:join(); T.eq(ps[k].exitcode, 0) end
  T.raises("EOFError", r.recv, r)
end)

local function rss_kib()
  local f = assert(io.open("/proc/self/status"))
  local s = f:read("a"); f:close()
  return tonumber(s:match("VmRSS:%s*(%d+)"))
end

T.test("Pipe() + close() cycles keep memory flat (close frees everything)", function()
  local N = T.long and 200000 or 20000
  for _ = 1, 2000 do local a, b = mp.Pipe(); a:send(1); b:recv(); a:close(); b:close() end
  local before = rss_kib()
  for _ = 1, N do
    local a, b = mp.Pipe()
    a:close(); b:close()
  end
  local grown = rss_kib() - before
  print(string.format("  %d Pipe()+close() cycles: RSS grew %d KiB", N, grown))
  assert(grown < 16 * 1024, "RSS grew by " .. grown .. " KiB")
end)

T.done()
