-- The same script, local or on many machines (docs/cluster.md):
--   luamp examples/cluster.lua                         a local pool
--   export LUAMP_AUTHKEY=…; luamp worker redis://HOST:6379 &   (on each worker machine)
--   LUAMP_ADDRESS=redis://HOST:6379 luamp examples/cluster.lua  the cluster's workers
SCALE = 10                                   -- a global the task reads: sent with it

local pool <close> = mp.Pool()
local squares = pool:map(function(x) return x * x * SCALE end, {1, 2, 3, 4, 5})
print(table.concat(squares, ", "))           -- 10, 40, 90, 160, 250

local f = pool:apply_async(function(a, b) return a + b, mp.getpid() end, {20, 22})
local sum, pid = f:get(30)
print(sum, pid ~= mp.getpid() and "ran in a worker" or "ran here?")   -- 42  ran in a worker

if os.getenv("LUAMP_ADDRESS") then
  -- a named queue: any luamp process on any machine can open it by name
  local jobs = mp.Queue{name = "example-jobs"}
  jobs:put({task = "resize", file = "a.png"})
  print(jobs:get(true, 5).task)               -- resize
end
