#!/usr/bin/env luamp
-- args: what a script sees of its command line.
--   luamp examples/args.lua one "two words" three
--   luamp -e 'x = 1' examples/args.lua a b      (options show up at negative indices)

-- `arg` holds the whole command line: the script at 0, its arguments at 1..n,
-- and the interpreter and its options at negative indices.
local first = 0
while arg[first - 1] ~= nil do first = first - 1 end
for i = first, #arg do
  print(string.format("arg[%d] = %q", i, arg[i]))
end

-- The same arguments arrive as the chunk's `...`.
local n = select("#", ...)
print(("the script got %d argument%s through ..."):format(n, n == 1 and "" or "s"))
for i, v in ipairs({...}) do
  print(i, v)
end
