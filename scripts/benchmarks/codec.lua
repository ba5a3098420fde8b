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
