-- Watching a pool work: a progress bar, labelled worker output, mp.status() mid-run, and a trace.
--   luamp examples/observe.lua                 (the bar shows when stderr is a terminal)
--   luamp --trace-html run.html examples/observe.lua   then open run.html in a browser
local pool = mp.Pool{processes = 2, label_output = true}

local items = {}
for i = 1, 40 do items[i] = i end

-- one worker line per tenth item: "[PoolWorker-1] item 10"
local r = pool:map_async(function(x)
  mp.sleep(0.02 * (x % 4 + 1))              -- uneven tasks
  if x % 10 == 0 then print("item " .. x) end
  return x * x
end, items, {chunksize = 1, progress = "squares"})

mp.sleep(0.3)
pool:apply_async(function() end)             -- any pool call moves the pool on
print(mp.status())                           -- workers, their current tasks, the backlog

local squares = r:get()                      -- the bar moves while this waits
print("sum of squares", (function() local s = 0 for _, v in ipairs(squares) do s = s + v end return s end)())
