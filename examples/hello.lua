-- hello.lua: the smallest luamp script. Run it with: scripts/luamp examples/hello.lua
local mp = require "mp"
print(string.format("hello from luamp %s (pid %d, %d CPUs)", mp.version, mp.getpid(), mp.cpu_count()))
