-- Modules, classes and files cross by reference: run with `luamp examples/by_reference.lua`
-- (needs Debian's lua-cjson; scripts/setup installs it).
local json = require "cjson"

-- A class registered at load time, before any worker starts: instances keep it on arrival.
local Point = {}
Point.__index = Point
function Point.new(x, y) return setmetatable({ x = x, y = y }, Point) end
function Point:len() return math.sqrt(self.x ^ 2 + self.y ^ 2) end
mp.register("example.Point", Point)

local pool = mp.Pool(2)

-- `json` is an upvalue: it crosses as the module name, the worker uses its own cjson.
print(table.concat(pool:map(function(p) return json.encode({ p.x, p:len() }) end,
  { Point.new(3, 4), Point.new(6, 8) }), " "))

-- cjson.null keeps its identity both ways.
print(pool:apply(function(v) return v == json.null end, { json.null }))

-- An open file: the worker reads on from where the host stopped.
local path = os.tmpname()
local f = assert(io.open(path, "w")); f:write("first\nsecond\n"); f:close()
local h = assert(io.open(path))
h:read("l")
print(pool:apply(function(file) return file:read("l") end, { h }))
h:close(); os.remove(path)

pool:close(); pool:join()
