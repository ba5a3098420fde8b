-- testlib: the tiny assertion library Lua-level tests use (run through the built luamp).
local T = { passed = 0, failed = 0 }

--- Runs `fn` as the test `name`; an error inside fails it with the message and traceback.
function T.test(name, fn)
  local ok, err = xpcall(fn, debug.traceback)
  if ok then
    T.passed = T.passed + 1
  else
    T.failed = T.failed + 1
    io.stderr:write("FAIL ", name, ": ", tostring(err), "\n")
  end
end

--- Asserts `a == b`, naming both in the message.
function T.eq(a, b, what)
  if a ~= b then
    error(string.format("%sexpected %s, got %s", what and (what .. ": ") or "", tostring(b), tostring(a)), 2)
  end
end

--- Asserts that `fn(...)` raises and returns the error value; `pattern` must match its text.
function T.raises(pattern, fn, ...)
  local ok, err = pcall(fn, ...)
  if ok then error("expected an error matching '" .. tostring(pattern) .. "'", 2) end
  if pattern and not tostring(err):find(pattern) then
    error("error '" .. tostring(err) .. "' does not match '" .. pattern .. "'", 2)
  end
  return err
end

--- Prints the summary line and exits non-zero when anything failed.
function T.done()
  io.stdout:write(string.format("%s: %d passed, %d failed\n", arg and arg[0] or "?", T.passed, T.failed))
  io.stdout:flush()
  os.exit(T.failed == 0 and 0 or 1)
end

--- Makes a fresh directory; returns it and a function naming a file in it.
function T.tempdir()
  local dir = os.tmpname()
  os.remove(dir)
  assert(os.execute("mkdir -p " .. dir))
  return dir, function(name) return dir .. "/" .. name end
end

--- The size of `file` in bytes (0 when it does not exist): tasks that append one byte each.
function T.filesize(file)
  local f = io.open(file)
  if not f then return 0 end
  local n = f:seek("end")
  f:close()
  return n
end

--- True when scripts/test --long asked for the long versions of soaks and fuzz runs.
T.long = os.getenv("LUAMP_LONG") == "1"

--- Polls `cond()` until it is true; fails after `secs` (default 20) naming `what`.
function T.wait_until(cond, what, secs)
  local t0 = mp.monotonic()
  while not cond() do
    if mp.monotonic() - t0 > (secs or 20) then error("timed out waiting for " .. tostring(what), 2) end
    mp.sleep(0.002)
  end
end

--- Waits until process `pid` sleeps in the kernel on a futex, i.e. it is blocked in an mp wait
--- (lock, semaphore, event, condition, queue): read from /proc/PID/wchan (mp.sleep shows
--- hrtimer_nanosleep there, so a process still getting ready never counts).
function T.wait_blocked(pid, what)
  local path = "/proc/" .. pid .. "/wchan"
  T.wait_until(function()
    local f = io.open(path)
    if not f then return false end
    local w = f:read("a") or ""
    f:close()
    return w:find("^futex") ~= nil
  end, what or ("process " .. pid .. " to block"))
end

--- Starts `fn(...)` in a new mp.Process and returns it.
function T.spawn(fn, ...)
  local p = mp.Process { target = fn, args = table.pack(...) }
  p:start()
  return p
end

--- Joins every process of `ps` (bounded by `secs` each, default 120) and asserts each exited 0.
function T.join_all(ps, secs)
  for _, p in ipairs(ps) do
    assert(p:join(secs or 120), "process " .. p.pid .. " did not finish")
    T.eq(p.exitcode, 0, "exit code of " .. p.pid)
  end
end

--- True while process `pid` exists and is not a zombie (a zombie has ended; /proc/PID/stat).
function T.running(pid)
  local f = io.open("/proc/" .. pid .. "/stat")
  if not f then return false end
  local s = f:read("a"); f:close()
  return s:match("^%d+ %b() (%a)") ~= "Z"
end

--- Builds the C test module Tests/lua/modules/NAME.c (next to this file) into a new temporary
--- directory, puts that directory first in package.cpath and returns it (remove it when done).
function T.build_module(name)
  local here = debug.getinfo(1, "S").source:match("^@(.*)/[^/]*$") or "."
  local dir = os.tmpname()
  os.remove(dir)
  assert(os.execute("mkdir -p " .. dir))
  package.cpath = dir .. "/?.so;" .. package.cpath
  local cflags = io.popen("pkg-config --cflags lua5.4"):read("l") or "-I/usr/include/lua5.4"
  assert(os.execute(string.format("cc -shared -fPIC -O1 %s -o %s/%s.so %s/modules/%s.c", cflags, dir, name, here, name)),
    "building the " .. name .. " test module")
  return dir
end

return T
