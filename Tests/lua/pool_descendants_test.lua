-- A worker that dies (timeout, lost, terminate) takes what its task started with it: the
-- shell and command of os.execute are in the worker's process group.
local T = require "testlib"

local running = T.running

local function pidfile()
  local path = os.tmpname()
  os.remove(path)
  return path
end

local function read_pid(path)
  local pid
  T.wait_until(function()
    local f = io.open(path); if not f then return false end
    pid = tonumber(f:read("a")); f:close()
    return pid ~= nil
  end, "the command's pid in " .. path, 30)
  os.remove(path)
  return pid
end

-- The command writes its pid, then becomes `sleep 100` (same pid).
local function sleeper(path) return function() os.execute("echo $$ > " .. path .. "; exec sleep 100") end end

T.test("a timed-out task's os.execute child dies with its worker", function()
  local pool = mp.Pool(1)
  local path = pidfile()
  local e = T.raises("TimeoutError", pool.apply, pool, sleeper(path), {}, {timeout = 0.5})
  T.eq(e.kind, "TimeoutError")
  local pid = read_pid(path)
  T.wait_until(function() return not running(pid) end, "sleep (pid " .. pid .. ") gone", 10)
  T.eq(pool:apply(function(x) return x + 1 end, {1}), 2, "the pool goes on")
  pool:terminate()
end)

T.test("force-cancel and terminate take the task's children too", function()
  local pool = mp.Pool(1)
  local path = pidfile()
  local r = pool:apply_async(sleeper(path))
  local pid = read_pid(path)
  T.eq(running(pid), true, "sleep started")
  r:cancel({force = true})
  T.wait_until(function() return not running(pid) end, "sleep (pid " .. pid .. ") gone after cancel", 10)
  path = pidfile()
  pool:apply_async(sleeper(path))
  pid = read_pid(path)
  pool:terminate()
  T.wait_until(function() return not running(pid) end, "sleep (pid " .. pid .. ") gone after terminate", 10)
end)

T.done()
