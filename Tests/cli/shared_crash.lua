-- kill -9 storms while processes update one Dict and one List, then consistency checks.
-- Run by test_shared_crash.py: luamp shared_crash.lua ROUNDS LEAK_PER_KILL [fault]
-- With LUAMP_JOURNAL_FAULT set, each worker kills itself at that point of an update; without
-- it, the parent kills the workers at random moments.
local T = require "testlib"

local ROUNDS = tonumber(arg[1]) or 12       -- kill rounds; each kills every worker once
local LEAK = tonumber(arg[2]) or 2048        -- arena bytes a kill may leak
local FAULT = arg[3] ~= nil                  -- workers die by themselves (fault injection)
local WORKERS = 3

--- A worker: random updates forever. Every value it writes is self-describing, so a torn or
--- half-applied update shows up as a mismatch: d[k] is {k = k, pad = ...}, d.pair is {a = n, b = n}.
local function worker(d, l, seed, ready)
  math.randomseed(seed)
  ready:add(1)
  local pad = string.rep("p", 300)
  while true do
    local r = math.random(100)
    local k = math.random(400)
    if r <= 35 then
      d[k] = { k = k, pad = pad:sub(1, math.random(300)) }
    elseif r <= 55 then
      d[k] = nil
    elseif r <= 65 then
      d:incr("n")
    elseif r <= 70 then
      d:with("pair", function(o) local n = (o and o.a or 0) + 1; return { a = n, b = n } end)
    elseif r <= 80 then
      l:append({ k = k, pad = pad:sub(1, k % 200) })
    elseif r <= 88 then
      if #l > 0 then pcall(l.pop, l) end
    elseif r <= 93 then
      local n = #l
      if n > 0 then pcall(function() l[math.random(n)] = { k = k, pad = "" } end) end
    elseif r <= 96 then
      local n = #l
      pcall(l.insert, l, math.random(n + 1), { k = k, pad = "i" })
    elseif r <= 97 and #l > 300 then
      l:clear()
    elseif r == 98 and #d > 350 then
      d:clear()
    else
      local _ = d[k]
    end
  end
end

local function consistent(d, l)
  local n = 0
  for k, v in pairs(d) do
    n = n + 1
    if k == "n" then
      assert(math.type(v) == "integer", "counter is not an integer")
    elseif k == "pair" then
      T.eq(v.a, v.b, "the pair written by one with()")
    else
      assert(type(v) == "table" and v.k == k, "entry " .. tostring(k) .. " holds a value written for another key")
    end
  end
  T.eq(#d, n, "#d matches the entries")
  T.eq(#d:keys(), n)
  local items = l:totable()
  T.eq(#l, #items, "#l matches the items")
  for i, v in ipairs(items) do
    assert(type(v) == "table" and type(v.k) == "number", "list item " .. i .. " is not a written value")
  end
end

T.test("kill -9 storm during Dict/List updates leaves both consistent and unlocked", function()
  local d, l = mp.Dict(), mp.List()
  collectgarbage()
  local base = mp._arena().bytes
  local kills = 0
  for round = 1, ROUNDS do
    local ready = mp.Value("q", 0, { lock = false })
    local ps = {}
    for w = 1, WORKERS do
      local p = mp.Process { target = worker, args = { d, l, round * 10 + w, ready } }
      p:start()
      ps[w] = p
    end
    while ready.value < WORKERS do mp.sleep(0.001) end
    if not FAULT then
      mp.sleep(0.01 + (round % 5) * 0.01)   -- let them run a little (any moment is a good moment)
      for _, p in ipairs(ps) do p:kill() end
    end
    for _, p in ipairs(ps) do
      assert(p:join(60), "a worker did not die")
      T.eq(p.exitcode, -9, "worker killed by SIGKILL")
      kills = kills + 1
    end
    consistent(d, l)                      -- also proves no lock is held: these take every lock
    d.probe = { k = "probe" }; T.eq(d.probe.k, "probe"); d.probe = nil
  end
  -- Memory: after emptying both, at most a couple of blocks per kill may have leaked.
  d:clear(); l:clear()
  collectgarbage()
  local grown = mp._arena().bytes - base
  assert(grown <= kills * LEAK, ("arena grew %d bytes over %d kills (allowed %d per kill)"):format(grown, kills, LEAK))
end)

T.done()
