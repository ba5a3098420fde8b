-- The seed article's Pool example: square five numbers on a pool of worker processes.
-- Run: luamp examples/pool.lua   →   [1, 4, 9, 16, 25]
local mp = require "mp"

local function f(x)
  return x * x
end

local pool <close> = mp.Pool(5)
local squares = pool:map(f, {1, 2, 3, 4, 5})
print("[" .. table.concat(squares, ", ") .. "]")
