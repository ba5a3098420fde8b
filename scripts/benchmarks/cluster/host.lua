-- scripts/bench cluster, luamp's side: the remote pool (LUAMP_ADDRESS, 2 worker processes on one
-- `luamp worker` node) and, for scale, the same map on a local mp.Pool(2). Prints `CASE SECONDS`.
local N = tonumber(os.getenv("BENCH_MAP_N") or "100000")
local RTT = tonumber(os.getenv("BENCH_RTT_N") or "2000")
local BIG = tonumber(os.getenv("BENCH_BIG_N") or "200")
local xs = {}
for i = 1, N do xs[i] = i end
local function sq(x) return x * x end

local pool = mp.Pool()
pool:map(sq, {1, 2, 3, 4})   -- warm: the connection, both worker processes
local t = mp.monotonic()
local r = pool:map(sq, xs)
local dt = mp.monotonic() - t
assert(r.n == N and r[N] == N * N)
print("map_100k " .. dt)

t = mp.monotonic()
for i = 1, RTT do assert(pool:apply_async(sq, {i}):get() == i * i) end
print("apply_async_get_2000 " .. (mp.monotonic() - t))

local blob = string.rep("x", 1024 * 1024)
local blobs = {}
for i = 1, BIG do blobs[i] = blob .. i end
t = mp.monotonic()
local back = pool:map(function(s) return s end, blobs, 1)
dt = mp.monotonic() - t
assert(back.n == BIG and back[BIG] == blobs[BIG])
print("big_1mib_200 " .. dt)
print("# big_1mib_200 MB/s (in + out) " .. string.format("%.1f", 2 * BIG * 1.048576 / dt))
pool:close() pool:join()

local lp = mp.Pool{processes = 2, address = false}
lp:map(sq, {1, 2})
t = mp.monotonic()
r = lp:map(sq, xs)
print("local_map_100k " .. (mp.monotonic() - t))
lp:close() lp:join()
