-- mp basics through the built binary: the module, pid, cpu count, clock, sleep.
local T = require "testlib"

T.test("require returns the global mp", function()
  T.eq(require("mp"), mp)
  T.eq(type(mp.version), "string")
end)

T.test("getpid and cpu_count are positive integers", function()
  assert(math.type(mp.getpid()) == "integer" and mp.getpid() > 0)
  assert(math.type(mp.cpu_count()) == "integer" and mp.cpu_count() >= 1)
end)

T.test("sleep waits at least as long as asked", function()
  local t0 = mp.monotonic()
  mp.sleep(0.05)
  assert(mp.monotonic() - t0 >= 0.05)
  T.raises("bad argument #1 to '[%w.]*sleep'", mp.sleep, "x")
end)

T.test("an absurdly long sleep sleeps (no crash) and is stoppable", function()
  local p = mp.Process(function() mp.sleep(1e19) end)
  p:start()
  T.eq(p:join(0.3), false, "still sleeping")
  p:terminate()
  p:join()
  T.eq(p.exitcode, -15)
end)

T.done()
