-- The seed article's Queue example: worker processes compute squares and put them on a queue;
-- the main process collects them. Workers finish in any order, so the results arrive in any
-- order: we sort them before printing so the output is always [1, 4, 9, 16, 25].
local function square(n, q)
  q:put(n * n)
end

local q = mp.Queue()
local workers = {}
for i = 1, 5 do
  workers[i] = mp.Process{target = square, args = {i, q}}
  workers[i]:start()
end
for _, p in ipairs(workers) do p:join() end   -- fine before draining: puts never wait for a reader

local results = {}
for i = 1, #workers do results[i] = q:get() end
table.sort(results)                             -- deterministic output (arrival order varies)
print("[" .. table.concat(results, ", ") .. "]")
