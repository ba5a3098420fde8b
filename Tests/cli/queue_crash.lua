-- Deterministic crash points (driven by test_queue_faults.py with LUAMP_QUEUE_FAULT=point:3 set):
-- a child is SIGKILLed at an exact point inside put or get; the parent then shows what is visible.
-- Usage: luamp queue_crash.lua producer|consumer SIZE
local role, size = arg[1], tonumber(arg[2])
local q = mp.JoinableQueue()
local function msg(i) return size > 0 and (i .. string.rep("x", size)) or i end
local function id(m) return type(m) == "string" and tonumber(m:match("^%d+")) or m end

if role == "producer" then
  local p = mp.Process(function() for i = 1, 6 do q:put(msg(i)) end end)
  p:start(); p:join()
  print("exitcode " .. p.exitcode)
else
  for i = 1, 6 do q:put(msg(i)) end
  local p = mp.Process(function() while true do q:get(); q:task_done() end end)
  p:start(); p:join()
  print("exitcode " .. p.exitcode)
end
local got = {}
while true do
  local ok, m = pcall(q.get_nowait, q)
  if not ok then assert(m.kind == "Empty", tostring(m)); break end
  got[#got + 1] = id(m)
end
print("got " .. table.concat(got, ","))
q:put("after"); print("then " .. q:get())
-- Every visible put counted one task, exactly: finish them and join. (A message lost with a
-- killed consumer was never task_done'd, so join then times out, as in Python.)
for _ = 1, #got + 1 do q:task_done() end
print("join " .. tostring(q:join(0.3)))
