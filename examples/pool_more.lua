-- More of mp.Pool: imap over a lazy iterator, apply_async with callbacks, and a worker that dies.
-- Run: luamp examples/pool_more.lua
local mp = require "mp"

local pool <close> = mp.Pool(2)

-- imap reads its input lazily: an endless iterator is fine, `break` stops reading it.
local n = 0
local function naturals() n = n + 1; return n end
for square, i in pool:imap(function(x) return x * x end, naturals) do
  if square > 50 then break end
  print(("imap: %d^2 = %d"):format(i, square))
end

-- apply_async with callbacks: they run here, in the host, while it waits (get/wait/join ...).
local results = {}
local rs = {}
for i = 1, 4 do
  rs[i] = pool:apply_async(function(a, b) return a + b, a * b end, {i, 10},
    function(sum, product) results[#results + 1] = ("%d+10=%d, %d*10=%d"):format(i, sum, i, product) end)
end
for _, r in ipairs(rs) do r:wait() end
table.sort(results)
for _, line in ipairs(results) do print("callback: " .. line) end

-- A worker that dies fails only its own task (WorkerLost); the pool replaces it and goes on.
local doomed = pool:apply_async(function() os.exit(3) end)
local fine = pool:apply_async(function() return "still fine" end)
local ok, err = pcall(doomed.get, doomed)
print("doomed:", ok, err.kind, err.exitcode)
print("fine:", fine:get())

pool:close()
pool:join()
