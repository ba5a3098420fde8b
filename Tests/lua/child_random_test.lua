-- math.random in forked children: every Process and pool worker draws its own numbers
-- (reseeded from getrandom at the fork), and math.randomseed(x) in a task still reproduces.
local T = require "testlib"

local function all_distinct(values, what)
  local seen = {}
  for i, v in ipairs(values) do
    if seen[v] then error(string.format("%s: draws %d and %d are both %s", what, seen[v], i, tostring(v)), 2) end
    seen[v] = i
  end
end

T.test("each Process draws different numbers from the host and from its siblings", function()
  local q = mp.Queue()
  local procs = {}
  for i = 1, 4 do
    procs[i] = mp.Process(function() q:put({math.random(1 << 62), math.random(1 << 62)}) end)
    procs[i]:start()
  end
  local draws = {math.random(1 << 62), math.random(1 << 62)}   -- the host's next two
  for _ = 1, 4 do
    local d = q:get()
    draws[#draws + 1] = d[1]; draws[#draws + 1] = d[2]
  end
  for _, p in ipairs(procs) do p:join(); T.eq(p.exitcode, 0) end
  all_distinct(draws, "host and 4 children")
end)

T.test("a grandchild draws differently from its parent Process", function()
  local q = mp.Queue()
  local p = mp.Process(function()
    local g = mp.Process(function() q:put(math.random(1 << 62)) end)
    g:start()
    q:put(math.random(1 << 62))
    g:join()
  end)
  p:start()
  local a, b = q:get(), q:get()
  p:join()
  T.eq(p.exitcode, 0)
  assert(a ~= b, "child and grandchild drew the same number " .. tostring(a))
end)

T.test("each pool worker draws different numbers", function()
  local q = mp.Queue()
  local pool = mp.Pool(3, function() q:put({mp.getpid(), math.random(1 << 62)}) end)
  local got = {}
  for i = 1, 3 do got[i] = q:get() end     -- every worker ran its initializer
  local pids, draws = {}, {math.random(1 << 62)}
  for i, g in ipairs(got) do pids[i] = g[1]; draws[#draws + 1] = g[2] end
  all_distinct(pids, "worker pids")
  all_distinct(draws, "host and 3 workers")
  -- Tasks see a reseeded generator too: no two of 30 draws repeat.
  local r = pool:map(function() return math.random(1 << 62) end, {1, 2, 3, 4, 5, 6, 7, 8, 9, 10}, 1)
  for _, v in ipairs(r) do draws[#draws + 1] = v end
  all_distinct(draws, "host, initializers and tasks")
  pool:close(); pool:join()
end)

T.test("math.randomseed(x) in a Process or a pool task reproduces the host's sequence", function()
  math.randomseed(42)
  local want = {math.random(1 << 62), math.random(), math.random(1, 6)}
  local q = mp.Queue()
  local p = mp.Process(function()
    math.randomseed(42)
    q:put({math.random(1 << 62), math.random(), math.random(1, 6)})
  end)
  p:start()
  local got = q:get()
  p:join()
  for i = 1, 3 do T.eq(got[i], want[i], "Process draw " .. i) end
  local pool = mp.Pool(2)
  local r = pool:map(function()
    math.randomseed(42)
    return {math.random(1 << 62), math.random(), math.random(1, 6)}
  end, {1, 2, 3, 4}, 1)
  pool:close(); pool:join()
  for _, t in ipairs(r) do for i = 1, 3 do T.eq(t[i], want[i], "task draw " .. i) end end
end)

T.test("a script's own math.randomseed replacement is not called in the child", function()
  local orig = math.randomseed
  local called = mp.Value("i", 0)
  math.randomseed = function(...) called.value = called.value + 1; return orig(...) end
  local q = mp.Queue()
  local p = mp.Process(function() q:put(math.random(1 << 62)) end)
  p:start()
  local theirs, mine = q:get(), math.random(1 << 62)
  p:join()
  math.randomseed = orig
  T.eq(called.value, 0, "calls of the replacement")
  assert(theirs ~= mine, "the child was not reseeded")
end)

T.done()
