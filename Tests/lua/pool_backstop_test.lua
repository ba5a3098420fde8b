-- The timeout backstop: a task that defeats its worker's timer (a C module ignores, blocks or
-- catches SIGALRM) is still stopped by the host a little after its timeout, with TimeoutError.
local T = require "testlib"

local dir = T.build_module("alarmctl")

-- Defeats the timer, then runs pure Lua for `secs` seconds (wall time) and returns "finished".
-- Without the backstop each of these returns "finished" after 20 s instead of failing.
local function stubborn(how, secs)
  return function()
    assert(require("alarmctl")[how]())
    local t0 = mp.monotonic()
    while mp.monotonic() - t0 < secs do end
    return "finished"
  end
end

for _, how in ipairs({ "ignore", "block", "catch" }) do
  T.test("a task that does alarmctl." .. how .. "() still times out", function()
    local pool = mp.Pool(1)
    local pid = pool:apply(function() return mp.current_process().pid end)
    local t0 = mp.monotonic()
    local e = T.raises("TimeoutError", pool.apply, pool, stubborn(how, 20), {}, { timeout = 0.3 })
    T.eq(e.kind, "TimeoutError")
    T.eq(e.pid, pid)
    T.eq(e.timeout, 0.3)
    assert(mp.monotonic() - t0 < 15, "stopped long before the task's own end")
    local pid2 = pool:apply(function() return mp.current_process().pid end)
    assert(pid2 ~= pid, "a replacement worker runs the next task")
    pool:terminate()
  end)
end

T.test("inside a chunk: only the stubborn item fails, the others run", function()
  local pool = mp.Pool(1)
  local function f(x)
    if x == 2 then stubborn("ignore", 20)() end
    return x * 10
  end
  local r = pool:map(f, { 1, 2, 3 }, { chunksize = 3, timeout = 0.3, errors = "return" })
  T.eq(r[1], 10)
  T.eq(type(r[2]) == "table" and r[2].kind, "TimeoutError")
  T.eq(r[3], 30)
  pool:terminate()
end)

T.test("while the host only sleeps: mp.sleep's pool service kills the worker", function()
  local pool = mp.Pool(1)
  local pid = pool:apply(function() return mp.current_process().pid end)
  local r = pool:apply_async(stubborn("ignore", 20), {}, { timeout = 0.3 })
  -- No pool call until the worker is gone: only mp.sleep (inside wait_until) runs the service.
  T.wait_until(function() return not T.running(pid) end, "worker pid " .. pid .. " killed", 15)
  T.eq(r:exception().kind, "TimeoutError")
  T.eq(r:exception().pid, pid)
  pool:terminate()
end)

os.execute("rm -rf " .. dir)
T.done()
