-- codec_test: mp.dumps / mp.loads as users see them — round trips, errors and paths, _ENV, C functions.
local T = require "testlib"
local G = require "codec_gen"

local function rt(v) return mp.loads(mp.dumps(v)) end

T.test("scalars keep their type and exact value", function()
  T.eq(rt(nil), nil)
  T.eq(rt(true), true)
  T.eq(rt(false), false)
  T.eq(math.type(rt(3)), "integer")
  T.eq(math.type(rt(3.0)), "float")
  T.eq(rt(math.maxinteger), math.maxinteger)
  T.eq(rt(math.mininteger), math.mininteger)
  T.eq(rt(1 / 0), 1 / 0)
  T.eq(rt(-1 / 0), -1 / 0)
  local nan = rt(0 / 0)
  assert(nan ~= nan, "NaN stays NaN")
  T.eq(1 / rt(-0.0), -1 / 0, "-0.0 keeps its sign")
  T.eq(rt(0.1), 0.1)
end)

T.test("strings are binary-safe at any length", function()
  local s = {}
  for i = 0, 255 do s[#s + 1] = string.char(i) end
  s = table.concat(s)
  T.eq(rt(s), s)
  T.eq(rt(""), "")
  local big = string.rep("ab\0", 1 << 20)
  T.eq(rt(big), big)
end)

T.test("tables: arrays, hashes, holes, shared references and cycles", function()
  local shared = { "s" }
  local t = { 1, 2, nil, 4, x = "y", [1.5] = true, [true] = "t", a = shared, b = shared }
  t.self = t
  local r = rt(t)
  T.eq(r[1], 1); T.eq(r[2], 2); T.eq(r[3], nil); T.eq(r[4], 4)
  T.eq(r.x, "y"); T.eq(r[1.5], true); T.eq(r[true], "t")
  assert(r.a == r.b and r.a[1] == "s", "shared reference kept")
  assert(r.self == r, "cycle kept")
  local k = {}
  local m = rt({ [k] = k })
  local kk = next(m)
  assert(m[kk] == kk, "a table used as key and value stays one table")
end)

T.test("metatables travel with their tables (by value when local)", function()
  local r = rt(setmetatable({ 1 }, { __index = function() return "meta" end }))
  T.eq(type(getmetatable(r)), "table")
  T.eq(r.missing, "meta")
end)

T.test("random values round-trip (seeded)", function()
  for seed = 1, T.long and 20000 or 1000 do
    math.randomseed(seed)
    local v = G.value(math.random(1, 7))
    local ok, why = G.equal(v, rt(v))
    if not ok then error("seed " .. seed .. ": " .. why) end
  end
end)

T.test("Lua functions travel with their upvalues, copied by value", function()
  local n = 10
  local conf = { step = 2 }
  local function f(x) return x * conf.step + n end
  local g = rt(f)
  T.eq(g(1), 12)
  conf.step = 100
  T.eq(g(1), 12, "the copy does not see later changes")
  local function fact(k) if k <= 1 then return 1 end return k * fact(k - 1) end
  T.eq(rt(fact)(10), 3628800, "recursive local function")
  local info = debug.getinfo(rt(f), "S")
  T.eq(info.source, debug.getinfo(1, "S").source, "source name kept (not stripped)")
  assert(info.linedefined > 0, "line numbers kept")
end)

T.test("functions shared between upvalues stay shared within one message", function()
  local counter = 0
  local function inc() counter = counter + 1; return counter end
  local pair = { a = function() return inc end, b = function() return inc end }
  local r = rt(pair)
  assert(r.a() == r.b(), "one function, not two copies")
  T.eq(r.a()(), 1)
  T.eq(r.b()(), 2, "the shared copy keeps one counter")
end)

T.test("closures sharing a local keep sharing it within one message", function()
  local function counter()
    local n = 0
    return { inc = function() n = n + 1; return n end, get = function() return n end }
  end
  local c = counter()
  c.inc()
  local r = rt(c)
  T.eq(r.get(), 1, "the value is copied")
  r.inc(); r.inc()
  T.eq(r.get(), 3, "inc and get still share one n")
  T.eq(c.get(), 1, "the sender's n is untouched")
  local a, b = rt({ counter(), counter() }), nil
  a[1].inc()
  T.eq(a[2].get(), 0, "separate objects stay separate")
  b = rt(c.inc)
  T.eq(b(), 2, "a lone closure carries its own copy")
end)

T.test("_ENV binds to the receiver's globals", function()
  CODEC_GLOBAL = "sender"
  local function reads() return CODEC_GLOBAL end
  local bytes = mp.dumps(reads)
  CODEC_GLOBAL = "receiver"
  T.eq(mp.loads(bytes)(), "receiver", "globals are looked up in the loading process's _G")
  T.eq(rt(_G), _G, "_G itself is the receiver's _G")
  local env = { CODEC_GLOBAL = "private" }
  local function sandboxed() local _ENV = env; return CODEC_GLOBAL end
  T.eq(rt(sandboxed)(), "private", "a private environment table is copied by value")
  local fresh = mp.loads(mp.dumps(function() return _ENV end))
  assert(fresh() == _G)
end)

T.test("standard-library and mp C functions travel by name", function()
  T.eq(rt(math.sqrt), math.sqrt)
  T.eq(rt(print), print)
  T.eq(rt(string.format)("%03d", 7), "007")
  T.eq(rt(table.unpack), table.unpack)
  T.eq(rt(coroutine.wrap), coroutine.wrap)
  T.eq(rt(mp.dumps), mp.dumps)
  local r = rt({ f = math.floor, g = function(x) return math.floor(x) end })
  T.eq(r.f(2.5), 2); T.eq(r.g(3.5), 3)
end)

local function send_error(v, path, what)
  local ok, e = pcall(mp.dumps, v)
  assert(not ok, "expected SendError")
  T.eq(type(e), "table")
  T.eq(e.kind, "SendError")
  T.eq(e.path, path)
  T.eq(e.message, path .. ": " .. what)
  T.eq(tostring(e), "SendError: " .. path .. ": " .. what)
end

local lpeg = require "lpeg"   -- its patterns are userdata without __mp_reduce
local NOT_UD = "cannot send a userdata (it is not a field of a loaded module: require it inside the function, "
  .. "make it a module, or mp.register it, or give its metatable an __mp_reduce)"

T.test("unsendable values name their type and path", function()
  local pat = lpeg.P "a"
  send_error(pat, "value", NOT_UD)
  send_error({ conn = pat }, "value.conn", NOT_UD)
  send_error({ 1, { 2, 3, coroutine.create(print) } }, "value[2][3]", "cannot send a thread (coroutine)")
  send_error({ ["two words"] = pat }, 'value["two words"]', NOT_UD)
  -- keys are written as Lua source would write them: a reserved word or a control byte is quoted
  send_error({ ["end"] = pat }, 'value["end"]', NOT_UD)
  send_error({ ["a\tb\1"] = pat }, 'value["a\\tb\\1"]', NOT_UD)
  local x = pat
  send_error({ f = function() return x end }, "value.f.<upvalue x>", NOT_UD)
  send_error({ w = coroutine.wrap(print) }, "value.w",
    "cannot send a C function (it is not a field of a loaded module: require it inside the function, "
    .. "make it a module, or mp.register it)")
  send_error({ [pat] = 1 }, "value.<key>", NOT_UD)
  send_error({ p = debug.upvalueid(function() return x end, 1) }, "value.p",
    "cannot send a light userdata (it is not a field of a loaded module: require it inside the function, "
    .. "make it a module, or mp.register it)")
  local closed = io.open(os.tmpname(), "w"); closed:close()
  send_error({ closed }, "value[1]", "cannot send a closed file")
  local deep = {}
  local c = deep
  for _ = 1, 250 do c[1] = {}; c = c[1] end
  local ok, e = pcall(mp.dumps, deep)
  assert(not ok and e.kind == "SendError")
  assert(e.message:find("nesting deeper than 200 levels", 1, true), e.message)
  local fine = {}
  c = fine
  for _ = 1, 199 do c[1] = {}; c = c[1] end
  assert(pcall(mp.dumps, fine), "199 levels are fine")
end)

T.test("encoding pauses the garbage collector only while it runs", function()
  assert(collectgarbage("isrunning"))
  mp.dumps({ 1, { 2 } })
  assert(collectgarbage("isrunning"), "running again after dumps")
  pcall(mp.dumps, { coroutine.create(print) })
  assert(collectgarbage("isrunning"), "running again after a SendError")
  collectgarbage("stop")
  mp.dumps({ 1 })
  assert(not collectgarbage("isrunning"), "a stopped collector stays stopped")
  collectgarbage("restart")
end)

T.test("loads rejects malformed, truncated and forged input", function()
  local good = mp.dumps({ 1, "two", { three = 3 }, function() return 4 end })
  for cut = 0, #good - 1 do
    local ok, e = pcall(mp.loads, good:sub(1, cut))
    assert(not ok and e.kind == "DecodeError", "truncated at " .. cut)
  end
  local e = T.raises("DecodeError", mp.loads, "not a message")
  T.eq(e.kind, "DecodeError")
  T.raises("bad argument #1 to '[%w.]*loads' %(string expected, got no value%)", mp.loads)
  -- flipping a byte inside a function chunk: the MAC no longer verifies, bytecode never loads
  local fbytes = mp.dumps(function() return 1 end)
  local pos = 12
  local forged = fbytes:sub(1, pos - 1) .. string.char((fbytes:byte(pos) + 1) % 256) .. fbytes:sub(pos + 1)
  T.raises("function from an unverified source", mp.loads, forged)
  -- string.dump output wrapped by hand is refused too
  local chunk = string.dump(function() return 1 end)
  local handmade = "\1\0\13" .. string.pack("<I4", #chunk) .. chunk .. string.rep("\0", 8) .. "\0"
  T.raises("function from an unverified source", mp.loads, handmade)
end)

T.test("another luamp run refuses functions from this run, but loads plain data", function()
  local luamp = os.getenv("LUAMP")
  assert(luamp, "run through Tests/run_tests.py (LUAMP is the binary)")
  local fpath, dpath = os.tmpname(), os.tmpname()
  local fh = io.open(fpath, "wb"); fh:write(mp.dumps(function() return 1 end)); fh:close()
  fh = io.open(dpath, "wb"); fh:write(mp.dumps({ 1, "two", { 3.5 } })); fh:close()
  local spath = os.tmpname()
  fh = io.open(spath, "w")
  fh:write([[local fh = io.open((...), "rb"); local ok, v = pcall(mp.loads, fh:read("a"))
    io.write(ok and ("ok " .. v[2] .. " " .. v[3][1]) or tostring(v))]])
  fh:close()
  local function other(path)
    local p = io.popen(string.format("%q %q %q", luamp, spath, path))
    local out = p:read("a"); p:close(); return out
  end
  local f_out, d_out = other(fpath), other(dpath)
  os.remove(fpath); os.remove(dpath); os.remove(spath)
  T.eq(f_out, "DecodeError: function from an unverified source (functions load only from this luamp process tree)")
  T.eq(d_out, "ok two 3.5")
end)

T.test("a forked child loads functions its parent dumped, with the child's globals", function()
  if not mp.Process then io.stderr:write("codec_test: mp.Process not in this build, cross-process case skipped\n") return end
  local path = os.tmpname()
  local shared = 5
  CODEC_WHO = "parent"
  local fh = io.open(path, "wb"); fh:write(mp.dumps(function(x) return x + shared, CODEC_WHO end)); fh:close()
  local p = mp.Process{ target = function(file)
    CODEC_WHO = "child"
    local h = io.open(file, "rb"); local g = mp.loads(h:read("a")); h:close()
    local a, b = g(1)
    assert(a == 6 and b == "child", tostring(a) .. " " .. tostring(b))
  end, args = { path } }
  p:start(); p:join()
  os.remove(path)
  T.eq(p.exitcode, 0)
end)

T.done()
