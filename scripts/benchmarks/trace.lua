-- trace: the cost of tracing. Pool(2):map of x*x over 1,000,000 integers and 10,000 sequential
-- apply_async():get() round trips, each timed with tracing off and on (mp.trace_start/stop around
-- the call), alternating, 5 times each in this one process; medians. The `_on_over_off` cases are
-- ratios, not seconds (goal: <= 1.05 for the map, <= 1.10 for the round trips); the `_bytes`
-- cases are the size of one call's trace file.
local N = 1000000
local xs = {}
for i = 1, N do xs[i] = i end
local function sq(x) return x * x end
local function one(x) return x end
local dir = os.tmpname()
os.remove(dir)
local file = dir .. ".trace.json"

local pool = mp.Pool(2)
pool:map(one, {1, 2, 3, 4})

local function median(t)
  table.sort(t)
  return t[(#t + 1) // 2]
end

local function size(path)
  local f = assert(io.open(path, "rb"))
  local n = f:seek("end")
  f:close()
  return n
end

local cases = {
  {"map_1m", function() local r = pool:map(sq, xs) assert(r[N] == N * N) end},
  {"apply_async_get_10k", function() for i = 1, 10000 do pool:apply_async(one, {i}):get() end end},
}
for _, c in ipairs(cases) do
  local name, fn = c[1], c[2]
  local off, on, bytes = {}, {}, 0
  for round = 1, 5 do
    collectgarbage()
    local t0 = mp.monotonic()
    fn()
    off[#off + 1] = mp.monotonic() - t0
    collectgarbage()
    mp.trace_start(file)
    t0 = mp.monotonic()
    fn()
    on[#on + 1] = mp.monotonic() - t0
    mp.trace_stop()
    bytes = size(file)
    os.remove(file)
  end
  local a, b = median(off), median(on)
  print(name .. "_off " .. a)
  print(name .. "_on " .. b)
  print(name .. "_on_over_off " .. b / a)     -- a ratio, not seconds
  print(name .. "_trace_bytes " .. bytes)      -- bytes, not seconds
end
pool:terminate()
