-- mp.Process through the built binary: every API row, exit codes, errors, closures, leaks.
local T = require "testlib"

-- A file the child writes and the parent reads (no queue needed to see what the child saw).
local function tmpname() return os.tmpname() end
local function slurp(path)
  local f = assert(io.open(path, "rb")); local s = f:read("a"); f:close(); os.remove(path); return s
end

T.test("constructor forms, fields before start, default names", function()
  local p = mp.Process{target = print, args = {1}, name = "w1"}
  T.eq(p.name, "w1"); T.eq(p.daemon, false); T.eq(p.pid, nil); T.eq(p.exitcode, nil); T.eq(p.error, nil)
  T.eq(p:is_alive(), false)
  local q = mp.Process(print, 1, 2)
  assert(q.name:match("^Process%-%d+$"), q.name)
  local r = mp.Process(print)
  T.eq(tonumber(r.name:match("%d+$")), tonumber(q.name:match("%d+$")) + 1, "names count up")
  T.eq(mp.Process{target = print, daemon = true}.daemon, true)
  assert(tostring(p):find("<Process name='w1' initial>", 1, true), tostring(p))
end)

T.test("bad constructor arguments are clear errors", function()
  T.raises("bad argument #1 to '[%w.]*Process' %(function or table expected, got number%)", mp.Process, 3)
  T.raises("target' must be a function", mp.Process, {args = {}})
  T.raises("'args' must be a table", mp.Process, {target = print, args = 3})
  T.raises("'name' must be a string", mp.Process, {target = print, name = {}})
  T.raises("'daemon' must be a boolean", mp.Process, {target = print, daemon = 1})
end)

T.test("start runs target(table.unpack(args)) with args.n honoured, join gives exitcode 0", function()
  local out = tmpname()
  local p = mp.Process{target = function(a, b, c, d)
    local f = io.open(out, "w"); f:write(tostring(a), ",", tostring(b), ",", tostring(c), ",", tostring(d)); f:close()
  end, args = {1, nil, "x", n = 4}}
  p:start()
  assert(math.type(p.pid) == "integer" and p.pid > 0 and p.pid ~= mp.getpid())
  T.eq(p:join(), true)
  T.eq(p.exitcode, 0)
  T.eq(p.error, nil)
  T.eq(p:is_alive(), false)
  T.eq(slurp(out), "1,nil,x,nil")
  assert(tostring(p):find("stopped exitcode=0", 1, true), tostring(p))
end)

T.test("the positional form passes nils through", function()
  local out = tmpname()
  local p = mp.Process(function(...) local f = io.open(out, "w"); f:write(select("#", ...)); f:close() end, nil, 2, nil)
  p:start(); p:join()
  T.eq(slurp(out), "3")
end)

T.test("starting twice and joining unstarted are errors", function()
  local p = mp.Process(function() end)
  T.raises("can only join a started process", p.join, p)
  T.raises("not started", p.terminate, p)
  p:start()
  T.raises("cannot start a process twice", p.start, p)
  p:join()
  T.raises("cannot start a process twice", p.start, p)
end)

T.test("closures, upvalues and globals are visible in the child", function()
  local secret = {n = 41}
  GLOBAL_FROM_PARENT = "g"
  local function bump() secret.n = secret.n + 1; return secret.n end
  local p = mp.Process(function() os.exit(bump() + (GLOBAL_FROM_PARENT == "g" and 1 or 0)) end)
  p:start(); p:join()
  T.eq(p.exitcode, 43)
  T.eq(secret.n, 41, "the parent's copy is untouched")
end)

T.test("os.exit(n), os.exit(true/false) give the exit code", function()
  for _, c in ipairs{{7, 7}, {0, 0}, {true, 0}, {false, 1}, {255, 255}} do
    local p = mp.Process(function() io.write(""); os.exit(c[1]) end)
    p:start(); p:join()
    T.eq(p.exitcode, c[2], "os.exit(" .. tostring(c[1]) .. ")")
  end
end)

T.test("an uncaught error: exitcode 1 and p.error has message and traceback", function()
  local function inner() error("boom 42") end
  local p = mp.Process{target = function() inner() end, name = "failing"}
  p:start(); p:join()
  T.eq(p.exitcode, 1)
  assert(p.error:find("process_test.lua:%d+: boom 42"), p.error)
  assert(p.error:find("stack traceback:", 1, true), p.error)
  assert(p.error:find("in upvalue 'inner'", 1, true) or p.error:find("inner", 1, true), p.error)
  assert(not p.error:find("in method 'start'", 1, true), "the parent's frames are not in the child's traceback")
end)

T.test("non-string errors are described", function()
  local p = mp.Process(function() error({}) end); p:start(); p:join()
  T.eq(p.exitcode, 1)
  assert(p.error:find("(error object is a table value)", 1, true), p.error)
  local q = mp.Process(function() error(setmetatable({}, {__tostring = function() return "custom!" end})) end)
  q:start(); q:join()
  T.eq(q.error, "custom!")
end)

T.test("an error object whose __tostring fails: a fixed description and the child's traceback", function()
  local p = mp.Process(function()
    error(setmetatable({}, {__tostring = function() error("tostring boom") end}))
  end)
  local ok, err = pcall(function() p:start(); p:join() end)
  assert(ok, err)
  T.eq(p.exitcode, 1)
  assert(p.error:find("(error object is a table value; its __tostring failed)", 1, true), p.error)
  assert(p.error:find("stack traceback:", 1, true), p.error)
  -- a __tostring returning a non-string is described like any other table
  local q = mp.Process(function() error(setmetatable({}, {__tostring = function() return {} end})) end)
  q:start(); q:join()
  T.eq(q.exitcode, 1)
  assert(q.error:find("(error object is a table value)", 1, true), q.error)
end)

T.test("5,000 target arguments all arrive in order", function()
  local path = tmpname()
  local args = {}
  for i = 1, 5000 do args[i] = i * 3 end
  local p = mp.Process{target = function(...)
    local n, sum, inorder = select('#', ...), 0, true
    for i = 1, n do
      local v = select(i, ...)
      sum = sum + v
      if v ~= i * 3 then inorder = false end
    end
    local f = io.open(path, "w"); f:write(n, " ", sum, " ", tostring(inorder)); f:close()
  end, args = args}
  p:start(); p:join()
  T.eq(p.exitcode, 0, p.error)
  T.eq(slurp(path), "5000 " .. (3 * 5000 * 5001 // 2) .. " true")
end)

T.test("args.n beyond the stack limit is refused at construction; near it the child fails cleanly", function()
  for _, n in ipairs{math.maxinteger, 1000001, 2^31} do
    local ok, err = pcall(mp.Process, {target = print, args = {n = n}})
    assert(not ok, n)
    assert(tostring(err):find("bad argument #1 to '[%w.]*Process' %(args.n too large: %d+ > 1000000%)"), err)
  end
  local p = mp.Process{target = function() end, args = {n = 1000000}}
  p:start(); p:join()
  T.eq(p.exitcode, 1)
  assert(p.error:find("too many arguments for the target (1000000)", 1, true), p.error)
end)

T.test("join with a timeout that expires, then one that does not", function()
  local p = mp.Process(function() mp.sleep(0.5) end)
  p:start()
  local t0 = mp.monotonic()
  T.eq(p:join(0.05), false)
  assert(mp.monotonic() - t0 >= 0.05)
  T.eq(p:is_alive(), true)
  T.eq(p.exitcode, nil)
  T.eq(p:join(30), true)
  T.eq(p.exitcode, 0)
  T.eq(p:join(0), true, "joining again")
  T.raises("bad argument #2", p.join, p, "soon")
end)

T.test("terminate, kill and interrupt give -15, -9, -2", function()
  for _, c in ipairs{{"terminate", -15}, {"kill", -9}, {"interrupt", -2}} do
    local p = mp.Process(function() mp.sleep(30) end)
    p:start()
    p[c[1]](p)
    T.eq(p:join(10), true, c[1])
    T.eq(p.exitcode, c[2], c[1])
    T.eq(p.error, nil, "no error report from a signalled child")
    p[c[1]](p)                                   -- signalling a finished process does nothing
  end
end)

T.test("current_process, parent_process in host and child", function()
  local me = mp.current_process()
  T.eq(me.name, "MainProcess"); T.eq(me.pid, mp.getpid())
  T.eq(mp.parent_process(), nil)
  local out = tmpname()
  local host = mp.getpid()
  local p = mp.Process{name = "kid", target = function()
    local c, par = mp.current_process(), mp.parent_process()
    local f = io.open(out, "w")
    f:write(c.name, " ", tostring(c.pid == mp.getpid()), " ", par.name, " ", tostring(par.pid == host))
    f:close()
  end}
  p:start(); p:join()
  T.eq(slurp(out), "kid true MainProcess true")
end)

T.test("name and daemon can be set before start; other fields cannot", function()
  local p = mp.Process(function() end)
  p.name = "renamed"; p.daemon = true
  T.eq(p.name, "renamed"); T.eq(p.daemon, true)
  T.raises("cannot set field 'pid'", function() p.pid = 3 end)
  p.daemon = false
  p:start()
  T.raises("cannot set daemon of a started process", function() p.daemon = true end)
  p:join()
end)

T.test("active_children lists live children and reaps finished ones", function()
  local a = mp.Process(function() mp.sleep(30) end)
  local b = mp.Process(function() end)
  a:start(); b:start()
  local t0 = mp.monotonic()
  while b:is_alive() and mp.monotonic() - t0 < 10 do mp.sleep(0.01) end
  local kids = mp.active_children()
  T.eq(#kids, 1); T.eq(kids[1], a)
  a:kill(); a:join()
  T.eq(#mp.active_children(), 0)
end)

T.test("nested processes: a child's children are joined before it exits", function()
  local out = tmpname()
  local p = mp.Process(function()
    local q = mp.Process(function()
      mp.sleep(0.2)
      local f = io.open(out, "w"); f:write(mp.current_process().name, " ", mp.parent_process().name); f:close()
    end)
    q:start()                                   -- not joined: the child's end joins it
  end)
  p:start(); p:join()
  T.eq(p.exitcode, 0)
  T.eq(slurp(out), p.name .. ":1 " .. p.name)
end)

T.test("os.exit in a child joins that child's own children first", function()
  local out = tmpname()
  local p = mp.Process(function()
    mp.Process(function() mp.sleep(0.2); local f = io.open(out, "w"); f:write("grandchild done"); f:close() end):start()
    os.exit(5)
  end)
  p:start(); p:join()
  T.eq(p.exitcode, 5)
  T.eq(slurp(out), "grandchild done")
end)

T.test("os.exit with a bad argument in a child raises like the original", function()
  local p = mp.Process(function() os.exit("nope") end)
  p:start(); p:join()
  T.eq(p.exitcode, 1)
  assert(p.error:find("bad argument #1", 1, true), p.error)
end)

-- Open fds of this process, not counting popen's own pipe (its write end closes in the host
-- while the shell may already be listing).
local function fdcount()
  local h = io.popen("me=$(readlink /proc/$$/fd/1); n=0; for f in /proc/" .. mp.getpid() ..
    "/fd/*; do t=$(readlink $f); if [ -n \"$t\" ] && [ \"$t\" != \"$me\" ]; then n=$((n+1)); fi; done; echo $n")
  local n = tonumber(h:read("a")); h:close()
  return n
end
local function zombies()
  local f = io.open("/proc/" .. mp.getpid() .. "/task/" .. mp.getpid() .. "/children")
  local s = f:read("a"); f:close()
  return s:match("%d") and s or nil
end

T.test("2,000 start/join cycles leave fds and children unchanged", function()
  local before = fdcount()
  local N = T.long and 10000 or 2000
  for i = 1, N do
    local p = mp.Process(function() end)
    p:start(); p:join()
    if p.exitcode ~= 0 then error("cycle " .. i .. " exitcode " .. tostring(p.exitcode)) end
  end
  T.eq(fdcount(), before, "open fds")
  T.eq(zombies(), nil, "children left")
  T.eq(#mp.active_children(), 0)
end)

T.test("errored and signalled cycles leak nothing either", function()
  local before = fdcount()
  for i = 1, 200 do
    local p = mp.Process(function() error("x") end)
    local q = mp.Process(function() mp.sleep(10) end)
    p:start(); q:start(); q:kill(); p:join(); q:join()
  end
  T.eq(fdcount(), before, "open fds")
  T.eq(zombies(), nil, "children left")
end)

T.done()
