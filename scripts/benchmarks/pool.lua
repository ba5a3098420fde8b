-- pool: Pool(2).map of x*x over 1,000,000 integers; 200 CPU-bound tasks on the pool vs
-- sequentially (speedup = sequential / pool); 10,000 sequential apply_async():get() round trips.
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
pool:terminate()
