-- sync: 2 processes x 200,000 acquire/increment/release of a shared value, plus uncontended costs (compare sync.py, sync.c).
-- Timed from "go" to "both done": process start-up is excluded (children wait on an Event first).
local N = 200000

--- Runs `body` in 2 processes at once and returns the seconds from the go signal to both joins.
local function contended(body)
  local go, ready = mp.Event(), mp.Semaphore(0)
  local ps = {}
  for i = 1, 2 do
    ps[i] = mp.Process(function() ready:release(); go:wait(); body() end)
    ps[i]:start()
  end
  ready:acquire(); ready:acquire()
  local t0 = mp.monotonic()
  go:set()
  for i = 1, 2 do ps[i]:join() end
  return mp.monotonic() - t0
end

do -- a Lock and a Value (the Value has its own lock, as Python's default)
  local lock, v = mp.Lock(), mp.Value("q", 0)
  local dt = contended(function() for _ = 1, N do lock:acquire(); v.value = v.value + 1; lock:release() end end)
  assert(v.value == 2 * N, "lost updates: " .. v.value)
  print("lock_value_2x200k " .. dt)
end

do -- a Lock and a Value without its own lock (Python's fastest form)
  local lock, v = mp.Lock(), mp.Value("q", 0, { lock = false })
  local dt = contended(function() for _ = 1, N do lock:acquire(); v.value = v.value + 1; lock:release() end end)
  assert(v.value == 2 * N)
  print("lock_rawvalue_2x200k " .. dt)
end

do -- the Value's own lock with `with`
  local v = mp.Value("q", 0)
  local lk = v:get_lock()
  local function inc() v.value = v.value + 1 end
  local dt = contended(function() for _ = 1, N do lk:with(inc) end end)
  assert(v.value == 2 * N)
  print("getlock_with_2x200k " .. dt)
end

do -- uncontended acquire+release
  local lock = mp.Lock()
  local t0 = mp.monotonic()
  for _ = 1, N do lock:acquire(); lock:release() end
  print("uncontended_acquire_release_200k " .. (mp.monotonic() - t0))
end
