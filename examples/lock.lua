-- lock.lua: two processes print a block of numbers each under one mp.Lock, so blocks never interleave.
--
-- Output: 1 2 3 4 5 then 6 7 8 9 10 (one per line), or the 6..10 block first — whichever
-- process takes the lock first — but never a mix. Without the lock the sleeps would interleave them.
--
--   luamp examples/lock.lua
local mp = require "mp"

local function printer(lock, first)
  lock:with(function()
    for i = first, first + 4 do
      print(i)
      io.stdout:flush()
      mp.sleep(0.05)          -- give the other process every chance to cut in
    end
  end)
end

local lock = mp.Lock()
local a = mp.Process { target = printer, args = { lock, 1 } }
local b = mp.Process { target = printer, args = { lock, 6 } }
a:start(); b:start()
a:join(); b:join()
