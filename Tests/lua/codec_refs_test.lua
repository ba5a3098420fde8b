-- Values by reference through the built binary, with Debian's real C modules (cjson, lpeg, lfs):
-- modules and their fields, classes, mp.register, __mp_reduce (a C module built here), open files.
local T = require "testlib"
local json = require "cjson"
local lpeg = require "lpeg"

local here = arg[0]:match("^(.*)/[^/]*$") or "."
local dir = os.tmpname()
os.remove(dir)
assert(os.execute("mkdir -p " .. dir))
package.path = dir .. "/?.lua;" .. package.path
package.cpath = dir .. "/?.so;" .. package.cpath

-- The C test module whose objects define __mp_reduce.
local cflags = io.popen("pkg-config --cflags lua5.4"):read("l") or "-I/usr/include/lua5.4"
assert(os.execute(string.format("cc -shared -fPIC -O1 %s -o %s/mpcounter.so %s/modules/mpcounter.c", cflags, dir, here)),
  "building the mpcounter test module")
local counter = require "mpcounter"

-- A pure-Lua module defining a class.
local f = assert(io.open(dir .. "/geom.lua", "w"))
f:write([[
local M = {}
M.Point = {}
M.Point.__index = M.Point
function M.Point.new(x, y) return setmetatable({ x = x, y = y }, M.Point) end
function M.Point:len() return math.sqrt(self.x * self.x + self.y * self.y) end
return M
]])
f:close()
local geom = require "geom"

-- A class registered by name (at load time, before any worker starts).
local Vec = {}
Vec.__index = Vec
function Vec.new(a, b) return setmetatable({ a, b }, Vec) end
function Vec:sum() return self[1] + self[2] end
mp.register("tests.Vec", Vec)

-- A class that is neither: it travels by value, methods and all.
local Local = {}
Local.__index = Local
function Local:twice() return 2 * self.v end

local pool = mp.Pool(2)
local lfs = require "lfs"   -- loaded after the workers started: they require it on arrival

local function errmsg(e) return type(e) == "table" and e.message or tostring(e) end

T.test("closures holding C modules in locals run in pool workers", function()
  local r = pool:map(function(x) return json.encode({ x = x }) end, { 1, 2, 3 })
  T.eq(r[1], '{"x":1}'); T.eq(r[3], '{"x":3}')
  -- patterns are userdata without __mp_reduce: the closure builds its own from the module
  T.eq(pool:apply(function(s) return lpeg.match(lpeg.C(lpeg.R("az") ^ 1), s) end, { "hello world" }), "hello")
  T.eq(pool:apply(function() return lfs.attributes("/", "mode") end), "directory")
  -- the module itself, not only a closure over it
  T.eq(pool:apply(function(m) return m == require("cjson") and m.encode({ 1 }) end, { json }), "[1]")
end)

T.test("closures over modules work in processes and after a queue and a pipe trip", function()
  local q, back = mp.Queue(), mp.Queue()
  local p = mp.Process(function()
    local fn = q:get(true, 10)    -- a closure arriving through a queue
    back:put(fn({ a = 1 }))
    local r = q:get(true, 10)     -- a pipe end, then a closure through the pipe
    assert(r:poll(10), "nothing on the pipe")
    local g = r:recv()
    back:put(g("ab"))
  end)
  p:start()
  q:put(function(t) return json.encode(t) end)
  T.eq(back:get(5), '{"a":1}')
  local r, w = mp.Pipe(false)
  q:put(r)
  w:send(function(s) return lpeg.match(lpeg.C(lpeg.P("a")), s) end)
  T.eq(back:get(5), "a")
  T.eq(p:join(5), true); T.eq(p.exitcode, 0)
end)

T.test("cjson.null and module values keep their identity", function()
  local t = mp.loads(mp.dumps({ json.null, json, json.encode, lpeg.match }))
  T.eq(t[1], json.null); T.eq(t[2], json); T.eq(t[3], json.encode); T.eq(t[4], lpeg.match)
  T.eq(pool:apply(function(v) return v == json.null end, { json.null }), true)
  T.eq(pool:apply(function() return json.null end), json.null)
  T.eq(pool:apply(function() return require("cjson").decode('[null]')[1] end), json.null)
  -- the standard library keeps working by name, and its tables by reference
  local s = mp.loads(mp.dumps({ string, string.format, io.write }))
  T.eq(s[1], string); T.eq(s[2], string.format); T.eq(s[3], io.write)
end)

T.test("class instances keep their methods and metatable identity", function()
  -- a class from a module
  local ok, len = pool:apply(function(pt) return getmetatable(pt) == require("geom").Point, pt:len() end,
    { geom.Point.new(3, 4) })
  T.eq(ok, true); T.eq(len, 5.0)
  local back = pool:apply(function() return require("geom").Point.new(6, 8) end)
  T.eq(getmetatable(back), geom.Point); T.eq(back:len(), 10.0)
  -- a registered class
  local same, sum = pool:apply(function(v) return getmetatable(v) == Vec, v:sum() end, { Vec.new(2, 5) })
  T.eq(same, true); T.eq(sum, 7)
  T.eq(getmetatable(pool:apply(function() return Vec.new(1, 1) end)), Vec)
  -- a class by value: methods work, and instances in one message share one copy
  local a, b = setmetatable({ v = 2 }, Local), setmetatable({ v = 5 }, Local)
  local shared, t1, t2 = pool:apply(function(x, y) return getmetatable(x) == getmetatable(y), x:twice(), y:twice() end, { a, b })
  T.eq(shared, true); T.eq(t1, 4); T.eq(t2, 10)
  local copy = mp.loads(mp.dumps(a))
  T.eq(copy:twice(), 4)
  assert(getmetatable(copy) ~= Local, "a local class arrives as a copy")
end)

T.test("10,000 instances of one class cost one metatable", function()
  local plain, inst = {}, {}
  for i = 1, 10000 do
    plain[i] = { v = i }
    inst[i] = setmetatable({ v = i }, Local)
  end
  local a, b = #mp.dumps(plain), #mp.dumps(inst)
  -- each instance adds one 9-byte reference to the one copy of the class
  assert(b - a <= 10000 * 9 + #mp.dumps(Local), "instances cost " .. (b - a) .. " bytes more")
  local back = mp.loads(mp.dumps(inst))
  local mt = getmetatable(back[1])
  for i = 2, 10000 do assert(getmetatable(back[i]) == mt, "instance " .. i) end
  T.eq(back[10000]:twice(), 20000)
  -- by reference: the same, with the class itself not copied at all
  local pts = {}
  for i = 1, 10000 do pts[i] = geom.Point.new(i, 0) end
  local pb = mp.loads(mp.dumps(pts))
  T.eq(getmetatable(pb[1]), geom.Point); T.eq(getmetatable(pb[10000]), geom.Point)
end)

T.test("__mp_reduce sends a C library's userdata", function()
  local c = counter.new(41)
  T.eq(pool:apply(function(x) return x:add(1):value() end, { c }), 42)
  T.eq(c:value(), 41, "the sender's object is untouched")
  local made = pool:apply(function() return require("mpcounter").new(5) end)
  T.eq(made:value(), 5)
  T.eq(getmetatable(made), getmetatable(c))
  local t = mp.loads(mp.dumps({ c, c, counter.new(7) }))
  assert(t[1] == t[2], "one userdata twice in a message arrives as one object")
  T.eq(t[1]:value(), 41); T.eq(t[3]:value(), 7)
  -- registered userdata cross by reference instead
  local shared = counter.new(100)
  mp.register("tests.shared_counter", shared)
  T.eq(mp.loads(mp.dumps(shared)), shared)
end)

T.test("__mp_reduce failures are SendErrors naming the value", function()
  local e = T.raises("SendError", mp.dumps, { 1, counter.new(1, 1) })
  T.eq(e.path, "value[2]")
  assert(errmsg(e):find("value[2]: __mp_reduce failed: ", 1, true) and errmsg(e):find("refuses to be sent", 1, true), errmsg(e))
  e = T.raises("SendError", mp.dumps, counter.new(1, 2))
  T.eq(errmsg(e), "value.<__mp_reduce arg 1>: __mp_reduce returned the userdata itself (directly or inside its arguments)")
  e = T.raises("SendError", mp.dumps, counter.new(1, 3))
  T.eq(errmsg(e), "value: __mp_reduce must return a constructor function and its arguments (it returned number)")
end)

T.test("open files cross as descriptors to a process started earlier", function()
  local path = dir .. "/lines.txt"
  local w = assert(io.open(path, "w"))
  w:write("one\ntwo\nthree\n")
  w:close()
  local q, back = mp.Queue(), mp.Queue()
  local p = mp.Process(function()
    local fh = q:get(true, 10)
    back:put(fh:read("l"))        -- continues where the host stopped reading
    fh:close()
    local out = q:get(true, 10)
    out:write("from the child\n")
    out:close()
    back:put("written")
  end)
  p:start()
  local fh = assert(io.open(path, "r"))   -- opened after the process started
  T.eq(fh:read("l"), "one")
  q:put(fh)
  T.eq(back:get(5), "two")
  T.eq(fh:read("l"), "two", "each side moves on from there on its own")
  fh:close()
  local out = assert(io.open(dir .. "/out.txt", "w"))
  out:write("from the host\n")   -- buffered: flushed when sent
  q:put(out)
  T.eq(back:get(5), "written")
  out:close()
  T.eq(p:join(5), true)
  local all = io.open(dir .. "/out.txt"):read("a")
  T.eq(all, "from the host\nfrom the child\n")
  -- pool workers and popen handles too
  local ph = io.popen("echo popen-line")
  T.eq(pool:apply(function(h) return h:read("l") end, { ph }), "popen-line")
  ph:close()
  local closed = io.open(path); closed:close()
  T.eq(errmsg(T.raises("SendError", mp.dumps, { closed })), "value[1]: cannot send a closed file")
end)

T.test("unresolvable values say what would make them work", function()
  local e = T.raises("SendError", mp.dumps, { w = coroutine.wrap(print) })
  T.eq(errmsg(e), "value.w: cannot send a C function (it is not a field of a loaded module: require it inside "
    .. "the function, make it a module, or mp.register it)")
  e = T.raises("SendError", mp.dumps, { 1, 2, setmetatable({}, { __index = { handle = lpeg.P("a") } }) })
  T.eq(e.path, "value[3].<metatable>.__index.handle")
  assert(errmsg(e):find("value[3].<metatable>.__index.handle: cannot send a userdata (it is not a field of a loaded module", 1, true), errmsg(e))
  T.raises("bad argument #2 to '[%w.]*register' %(table, function or userdata expected, got number", mp.register, "n", 1)
  T.raises("bad argument #1 to '[%w.]*register' %(string expected, got nil", mp.register, nil, {})
  T.raises("another value is already registered as 'tests.Vec'", mp.register, "tests.Vec", {})
  T.raises("this value is already registered as 'tests.Vec'", mp.register, "tests.Vec2", Vec)
  mp.register("tests.Vec", Vec)   -- the same registration again is fine
end)

T.test("a name that exists on the sender only is a DecodeError naming it", function()
  local q, back = mp.Queue(), mp.Queue()
  local p = mp.Process(function()
    for _ = 1, 3 do
      local ok, e = pcall(q.get, q, true, 10)
      back:put(ok and "decoded" or (e.kind .. ": " .. e.message))
    end
  end)
  p:start()
  package.loaded.onlyhere = { answer = function() return 42 end }   -- after the fork
  q:put(package.loaded.onlyhere)
  local m = back:get(5)
  assert(m:find("DecodeError: cannot resolve module 'onlyhere': module 'onlyhere' cannot be loaded here", 1, true), m)
  q:put(setmetatable({}, mp.loads(mp.dumps(setmetatable({}, {})))))   -- plain data still decodes
  T.eq(back:get(5), "decoded")
  q:put(package.loaded.onlyhere.answer)
  m = back:get(5)
  assert(m:find("DecodeError: cannot resolve onlyhere.answer", 1, true), m)
  T.eq(p:join(5), true)
  -- in a pool worker, the task's error says why its function did not load
  local late = {}
  mp.register("tests.after_the_pool", late)
  local e = T.raises("RemoteError", pool.apply, pool, function() return late end)
  assert(errmsg(e):find("the task function could not be loaded in the worker: cannot resolve "
    .. "registered value 'tests.after_the_pool': nothing is registered under that name in this process", 1, true), errmsg(e))
  package.loaded.onlyhere = nil
end)

T.test("references are MAC-checked before anything resolves", function()
  local s = mp.dumps(json)
  local at = s:find("cjson", 1, true)
  local forged = s:sub(1, at - 1) .. "d" .. s:sub(at + 1)
  T.raises("reference from an unverified source", mp.loads, forged)
  for cut = 0, #s - 1 do
    local ok, e = pcall(mp.loads, s:sub(1, cut))
    assert(not ok and e.kind == "DecodeError", "truncated at " .. cut)
  end
end)

T.test("mp.loads(s, {functions = false}) refuses code and global references", function()
  local data = { 1, "two", { three = 3 }, setmetatable({ v = 1 }, { kind = "data only" }) }
  local back = mp.loads(mp.dumps(data), { functions = false })
  T.eq(back[3].three, 3); T.eq(getmetatable(back[4]).kind, "data only")
  for what, v in pairs({ ["a function"] = function() end, ["a C function"] = print, ["the globals table"] = _G,
                         ["a reference to a module value or registered value"] = json,
                         ["a userdata rebuilt by a constructor"] = counter.new(1), ["an open file"] = io.stdout }) do
    local e = T.raises("DecodeError", mp.loads, mp.dumps({ v }), { functions = false })
    assert(errmsg(e):find("refused " .. what, 1, true), what .. ": " .. errmsg(e))
  end
  T.raises("bad argument #2 to '[%w.]*loads' %(table expected, got string", mp.loads, mp.dumps(1), "x")
end)

pool:close()
pool:join()
os.execute("rm -rf " .. dir)
T.done()
