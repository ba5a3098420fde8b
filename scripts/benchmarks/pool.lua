-- pool: Pool(2).map of x*x over 1,000,000 integers; 200 CPU-bound tasks on the pool vs
-- sequentially (speedup = sequential / pool); 10,000 sequential apply_async():get() round trips;
-- 100,000 submit + as_completed; 100 tasks of 10 ms while the host is busy in pure Lua.
local N = 1000000
local xs = {}
for i = 1, N do xs[i] = i end
local function sq(x) return x * x end
local function cpu(n)
  local s = 0
  for i = 1, n do s = s + i end
  return s
end
local function one(x) return x end

local pool = mp.Pool(2)
pool:map(one, {1, 2, 3, 4})                       -- workers up and running

collectgarbage()
local t0 = mp.monotonic()
local r = pool:map(sq, xs)
print("map_1m_squares " .. (mp.monotonic() - t0))
assert(r.n == N and r[N] == N * N)

local tasks = {}
for i = 1, 200 do tasks[i] = 2000000 end
t0 = mp.monotonic()
for i = 1, 200 do cpu(tasks[i]) end
local seq = mp.monotonic() - t0
t0 = mp.monotonic()
pool:map(cpu, tasks)
local par = mp.monotonic() - t0
print("cpu_200_sequential " .. seq)
print("cpu_200_pool " .. par)
print("cpu_200_speedup " .. seq / par)   -- not seconds: sequential / pool, higher is better

t0 = mp.monotonic()
for i = 1, 10000 do pool:apply_async(one, {i}):get() end
print("apply_async_get_10k " .. (mp.monotonic() - t0))

-- 100,000 submit + as_completed of a trivial function
local fs = {}
t0 = mp.monotonic()
for i = 1, 100000 do fs[i] = pool:submit(one, i) end
local n = 0
for f in mp.as_completed(fs) do n = n + 1 end
print("submit_as_completed_100k " .. (mp.monotonic() - t0))
assert(n == 100000)
fs = nil

-- progress while the host is busy: 100 tasks of 10 ms, the host in a pure-Lua loop that only
-- reads a shared counter (ideal on 2 workers: 0.5 s)
local count = mp.Value("i", 0)
local lock = count:get_lock()
local function ten_ms() mp.sleep(0.01); lock:acquire(); count.value = count.value + 1; lock:release() end
t0 = mp.monotonic()
local rs = {}
for i = 1, 100 do rs[i] = pool:apply_async(ten_ms) end
while count.value < 100 do for _ = 1, 1000 do end end
print("busy_host_100x10ms " .. (mp.monotonic() - t0))
for i = 1, 100 do assert(rs[i]:ready()) end
pool:terminate()
