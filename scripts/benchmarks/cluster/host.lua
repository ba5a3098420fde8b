-- scripts/bench cluster, luamp's side: the remote pool (LUAMP_ADDRESS, 2 worker processes on one
-- `luamp worker` node) and, for scale, the same map on a local mp.Pool(2). Prints `CASE SECONDS`.
local N = tonumber(os.getenv("BENCH_MAP_N") or "100000")
local RTT = tonumber(os.getenv("BENCH_RTT_N") or "2000")
local BIG = tonumber(os.getenv("BENCH_BIG_N") or "200")
local xs = {}
for i = 1, N do xs[i] = i end
local function sq(x) return x * x end
-- BENCH_CASES: a comma-separated subset of the cases below (default: all)
local only = os.getenv("BENCH_CASES")
local function want(case) return only == nil or only == "" or ("," .. only .. ","):find("," .. case .. ",", 1, true) end

local pool = mp.Pool()
pool:map(sq, {1, 2, 3, 4})   -- warm: the connection, both worker processes
local t, r, dt
if want("map_100k") then
  t = mp.monotonic()
  r = pool:map(sq, xs)
  dt = mp.monotonic() - t
  assert(r.n == N and r[N] == N * N)
  print("map_100k " .. dt)
end

if want("apply_async_get_2000") then
  t = mp.monotonic()
  for i = 1, RTT do assert(pool:apply_async(sq, {i}):get() == i * i) end
  print("apply_async_get_2000 " .. (mp.monotonic() - t))
end

if want("big_1mib_200") then
  local blob = string.rep("x", 1024 * 1024)
  local blobs = {}
  for i = 1, BIG do blobs[i] = blob .. i end
  t = mp.monotonic()
  local back = pool:map(function(s) return s end, blobs, 1)
  dt = mp.monotonic() - t
  assert(back.n == BIG and back[BIG] == blobs[BIG])
  print("big_1mib_200 " .. dt)
  print("# big_1mib_200 MB/s (in + out) " .. string.format("%.1f", 2 * BIG * 1.048576 / dt))
end

-- the host's CPU seconds while it waits 5 s on one remote result (get, then mp.wait): the wait
-- sleeps in poll() on the notification connection, so this should be near 0
if want("idle_wait_cpu") then
  for _, how in ipairs({"get", "mp.wait"}) do
    local f = pool:apply_async(function() mp.sleep(5) return 1 end)
    local c = os.clock()
    if how == "get" then assert(f:get() == 1) else assert(#mp.wait({f}, 60) == 1) end
    print("idle_wait_cpu_" .. (how == "get" and "get" or "mpwait") .. " " .. (os.clock() - c))
  end
end
pool:close() pool:join()

if want("local_map_100k") then
  local lp = mp.Pool{processes = 2, address = false}
  lp:map(sq, {1, 2})
  t = mp.monotonic()
  r = lp:map(sq, xs)
  print("local_map_100k " .. (mp.monotonic() - t))
  lp:close() lp:join()
end
