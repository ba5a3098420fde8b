-- process_tree: a tree of processes — each node starts its children and they print their place.
-- Every process joins its own children when its target returns, so the output ends only after
-- the whole tree has finished. Run: luamp examples/process_tree.lua [depth] [fanout]
local mp = require "mp"

local depth = tonumber(arg and arg[1]) or 3
local fanout = tonumber(arg and arg[2]) or 2

local function node(level, path)
  local me, parent = mp.current_process(), mp.parent_process()
  print(string.format("%s%s  pid %d, parent %s (pid %d)",
    string.rep("  ", level), path, me.pid, parent.name, parent.pid))
  if level < depth then
    for i = 1, fanout do
      mp.Process{target = node, args = {level + 1, path .. "." .. i}, name = path .. "." .. i}:start()
    end
  end
  -- No join here: returning from the target joins this process's children first.
end

print(string.format("MainProcess  pid %d", mp.getpid()))
for i = 1, fanout do
  mp.Process{target = node, args = {1, tostring(i)}, name = tostring(i)}:start()
end
-- The end of the main chunk joins the first level, which waited for theirs.
