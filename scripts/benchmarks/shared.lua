-- shared: Dict set+get from 2 processes, atomic vs locked increments, 64 MiB SharedMemory copies (compare shared.py, shared.c).
-- Timed from "go" to "both done": process start-up is excluded (children wait on an Event first).
local N_DICT, N_ADD, MIB, REPS = 100000, 200000, 64, 10

local function contended(body)
  local go, ready = mp.Event(), mp.Semaphore(0)
  local ps = {}
  for i = 1, 2 do
    ps[i] = mp.Process(function() ready:release(); go:wait(); body(i) end)
    ps[i]:start()
  end
  ready:acquire(); ready:acquire()
  local t0 = mp.monotonic()
  go:set()
  for i = 1, 2 do ps[i]:join(); assert(ps[i].exitcode == 0) end
  return mp.monotonic() - t0
end

do -- 2 processes x 100,000 d[k] = v, then 100,000 d[k] reads, on one Dict
  local d = mp.Dict()
  local dt = contended(function(p)
    local base = p * N_DICT
    for i = 1, N_DICT do d[base + i] = i end
    local sum = 0
    for i = 1, N_DICT do sum = sum + d[base + i] end
    assert(sum == N_DICT * (N_DICT + 1) // 2)
  end)
  assert(#d == 2 * N_DICT)
  print("dict_set_get_2x100k " .. dt)
end

do -- v:add(1), lock-free
  local v = mp.Value("q", 0, { lock = false })
  local dt = contended(function() for _ = 1, N_ADD do v:add(1) end end)
  assert(v.value == 2 * N_ADD)
  print("value_add_2x200k " .. dt)
end

do -- luamp's own lock + increment, for comparison
  local v = mp.Value("q", 0)
  local lk = v:get_lock()
  local dt = contended(function() for _ = 1, N_ADD do lk:acquire(); v.value = v.value + 1; lk:release() end end)
  assert(v.value == 2 * N_ADD)
  print("locked_increment_2x200k " .. dt)
end

do -- SharedMemory: write then read 64 MiB, REPS times each
  local size = MIB << 20
  local shm = mp.SharedMemory{create = true, size = size}
  local data = string.rep("0123456789abcdef", size // 16)
  shm:write(0, data)                       -- touch the pages once
  local t0 = mp.monotonic()
  for _ = 1, REPS do shm:write(0, data) end
  print("shm_write_64mib_x10 " .. (mp.monotonic() - t0))
  t0 = mp.monotonic()
  for _ = 1, REPS do local s = shm:read(); assert(#s == size) end
  print("shm_read_64mib_x10 " .. (mp.monotonic() - t0))
  shm:close(); shm:unlink()
end
