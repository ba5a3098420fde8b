-- codec benchmark: mp.dumps / mp.loads on a million floats, 100,000 records and a 64 MiB string.
local clock = mp.monotonic

local function best(f, runs)
  local b = math.huge
  for _ = 1, runs or 3 do
    collectgarbage()
    local t0 = clock()
    f()
    local dt = clock() - t0
    if dt < b then b = dt end
  end
  return b
end

local floats = {}
for i = 1, 1000000 do floats[i] = i * 0.5 end
local records = {}
for i = 1, 100000 do records[i] = { id = i, name = "n" .. i, tags = { "a", "b" } } end
local big = string.rep("x", 64 << 20)

local cases = { { "floats_1m", floats }, { "records_100k", records }, { "string_64m", big } }
for _, c in ipairs(cases) do
  local name, v = c[1], c[2]
  local bytes
  print(string.format("encode_%s %.6f", name, best(function() bytes = mp.dumps(v) end)))
  print(string.format("decode_%s %.6f", name, best(function() local _ = mp.loads(bytes) end)))
end

-- 100,000 instances of one class (by reference: the class is registered), as pickle sends
-- instances of a module-level Python class.
local Point = {}
Point.__index = Point
function Point:len() return math.sqrt(self.x * self.x + self.y * self.y) end
mp.register("bench.Point", Point)
local points = {}
for i = 1, 100000 do points[i] = setmetatable({ x = i, y = i * 0.5 }, Point) end
local pbytes
print(string.format("encode_instances_100k %.6f", best(function() pbytes = mp.dumps(points) end)))
print(string.format("decode_instances_100k %.6f", best(function() local _ = mp.loads(pbytes) end)))

-- A closure holding three C modules in upvalues (each sent by reference): seconds for 10,000
-- mp.dumps + mp.loads (so the row reads as µs per round trip × 10^-4), the cost of shipping a
-- typical task function.
local json, lpeg, lfs = require "cjson", require "lpeg", require "lfs"
local function task(x) return json.encode(x), lpeg.match(lpeg.P "a", x), lfs.attributes(x, "mode") end
print(string.format("roundtrip_closure_3_modules_x10k %.6f", best(function()
  for _ = 1, 10000 do mp.loads(mp.dumps(task)) end
end)))
