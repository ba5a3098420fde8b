-- One round of the queue fault test (driven by test_queue_faults.py): producers and consumers on
-- one queue, some of them SIGKILLed at random moments; consumers log every message they got to
-- their own file (one write per line) so the driver can check exactly-once delivery afterwards.
-- Usage: luamp queue_faults.lua SEED DIR PRODUCERS CONSUMERS MESSAGES MAXSIZE PKILLS CKILLS
local seed, dir = tonumber(arg[1]), arg[2]
local P, C, N, maxsize = tonumber(arg[3]), tonumber(arg[4]), tonumber(arg[5]), tonumber(arg[6])
local pkills, ckills = tonumber(arg[7]), tonumber(arg[8])
math.randomseed(seed)

local q = mp.Queue(maxsize)

-- Message i of producer p: every 97th carries a 20 KiB payload (the big-block path), the rest a
-- short one; the consumer checks the payload is exactly what the producer put (no torn message).
local function payload(p, i)
  if i % 97 == 0 then return string.rep(string.char(65 + p), 20000 + i % 13) end
  return string.rep(string.char(97 + p), i % 17)
end

local consumers, producers = {}, {}
for c = 1, C do
  consumers[c] = mp.Process(function()
    local f = assert(io.open(dir .. "/c" .. c .. ".log", "w"))
    f:setvbuf("no")
    while true do
      local m = q:get()
      if m == "stop" then break end
      if m[3] ~= payload(m[1], m[2]) then error(("torn message %d/%d"):format(m[1], m[2])) end
      f:write(m[1], " ", m[2], "\n")
    end
    f:close()
  end)
  consumers[c]:start()
end
for p = 1, P do
  producers[p] = mp.Process(function()
    for i = 1, N do q:put({p, i, payload(p, i)}) end
  end)
  producers[p]:start()
end

-- Kill random victims at random moments of the run.
local victims = {}
local function pick(list, n, tag)
  local idx = {}
  for i = 1, #list do idx[i] = i end
  for k = 1, n do
    local j = math.random(k, #idx)
    idx[k], idx[j] = idx[j], idx[k]
    victims[#victims + 1] = {tag = tag, index = idx[k], proc = list[idx[k]], at = math.random() * 0.25}
  end
end
pick(producers, pkills, "producer")
pick(consumers, ckills, "consumer")
table.sort(victims, function(a, b) return a.at < b.at end)
local t0 = mp.monotonic()
for _, v in ipairs(victims) do
  local wait = v.at - (mp.monotonic() - t0)
  if wait > 0 then mp.sleep(wait) end
  v.proc:kill()
  print(("killed %s %d at %.3f s"):format(v.tag, v.index, mp.monotonic() - t0))
end

-- Survivors must finish.
local killed = {}
for _, v in ipairs(victims) do killed[v.proc] = true end
for p = 1, P do
  if not producers[p]:join(60) then print("producer " .. p .. " did not finish"); os.exit(2) end
  if not killed[producers[p]] and producers[p].exitcode ~= 0 then print("producer " .. p .. " failed"); os.exit(2) end
end
local alive = 0
for c = 1, C do if not killed[consumers[c]] then alive = alive + 1 end end
for _ = 1, alive do q:put("stop", true, 60) end
for c = 1, C do
  if not consumers[c]:join(60) then print("consumer " .. c .. " did not finish"); os.exit(2) end
  if not killed[consumers[c]] and consumers[c].exitcode ~= 0 then
    print("consumer " .. c .. " failed: " .. tostring(consumers[c].error)); os.exit(2)
  end
end
for _, v in ipairs(victims) do print(("exitcode %s %d %s"):format(v.tag, v.index, tostring(v.proc.exitcode))) end
print("left " .. q:qsize())
print("done")
