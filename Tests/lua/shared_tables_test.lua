-- mp.Dict, mp.List and atomic Values: every member, many processes at once, sending, memory reuse, errors.
local T = require "testlib"

local spawn, joinAll = T.spawn, T.join_all

local function sorted(t) table.sort(t, function(a, b) return tostring(a) < tostring(b) end) return t end

T.test("Dict: indexing, key types, nil deletes, #d, tostring", function()
  local d = mp.Dict()
  T.eq(tostring(d), "<Dict n=0>")
  d.a = 1; d[2] = "two"; d[2.5] = { x = { y = 3 } }; d[true] = false; d[false] = "f"
  T.eq(#d, 5); T.eq(tostring(d), "<Dict n=5>")
  T.eq(d.a, 1); T.eq(d[2], "two"); T.eq(d[2.5].x.y, 3); T.eq(d[true], false); T.eq(d[false], "f")
  T.eq(d[2.0], "two", "2.0 is the key 2")
  T.eq(math.type(d.a), "integer")
  d.a = 1.5; T.eq(d.a, 1.5)
  d.a = nil; T.eq(d.a, nil); T.eq(#d, 4)
  d.a = nil; T.eq(#d, 4, "deleting an absent key")
  T.eq(d.missing, nil)
  local bin = "\0\1\2\255"
  d[bin] = bin; T.eq(d[bin], bin)
end)

T.test("Dict: methods shadow string keys; get/set reach them", function()
  local d = mp.Dict()
  d:set("keys", 5)
  T.eq(type(d.keys), "function")
  T.eq(d:get("keys"), 5)
  T.eq(d:get("nope", "dflt"), "dflt")
end)

T.test("Dict: update, keys, values, totable, pairs snapshot, clear", function()
  local d = mp.Dict { x = 1, y = 2 }
  d:update { z = 3, [10] = "ten" }
  T.eq(#d, 4)
  T.eq(table.concat(sorted(d:keys()), ","), "10,x,y,z")
  T.eq(table.concat(sorted(d:values()), ","), "1,2,3,ten")
  local t = d:totable()
  T.eq(t.x + t.y + t.z, 6); T.eq(t[10], "ten")
  local n = 0
  for k, v in pairs(d) do
    n = n + 1
    d[k] = nil                     -- mutating during the loop is fine: the loop walks a snapshot
    T.eq(t[k], v)
  end
  T.eq(n, 4); T.eq(#d, 0)
  d:update(mp.Dict { q = 1 })
  T.eq(d.q, 1)
  d:clear(); T.eq(#d, 0); T.eq(d.q, nil)
  d.after = "clear"; T.eq(d.after, "clear")
end)

T.test("Dict: pop, setdefault, incr, with", function()
  local d = mp.Dict()
  d.k = "v"
  T.eq(d:pop("k"), "v"); T.eq(d.k, nil); T.eq(d:pop("k"), nil); T.eq(d:pop("k", 7), 7)
  T.eq(d:setdefault("s", { 1 })[1], 1)
  T.eq(d:setdefault("s", { 2 })[1], 1)
  T.eq(d:incr("n"), 1); T.eq(d:incr("n", 10), 11); T.eq(d:incr("n", -12), -1)
  d.str = "x"
  T.raises("value at key \"str\" is a string, not an integer", d.incr, d, "str")
  T.eq(d:with("w", function(old) T.eq(old, nil); return { count = 1 } end).count, 1)
  T.eq(d:with("w", function(old) old.count = old.count + 1; return old end).count, 2)
  T.eq(d.w.count, 2)
  local err = T.raises(nil, d.with, d, "w", function() error({ msg = "boom" }) end)
  T.eq(err.msg, "boom", "the error value passes through")
  T.eq(d.w.count, 2, "a failed with stores nothing")
  d:with("w", function() return nil end)
  T.eq(d.w, nil, "returning nil deletes")
  d:with("a", function() return d:with("a", function() return 1 end) + 1 end)   -- nested on one key
  T.eq(d.a, 2)
end)

T.test("Dict: bad keys and unsendable values are clear errors", function()
  local d = mp.Dict()
  T.raises("Dict key must be a string, number or boolean, got table", function() d[{}] = 1 end)
  T.raises("Dict key must be a string, number or boolean, got table", function() return d[{}] end)
  T.raises("Dict key is NaN", function() d[0 / 0] = 1 end)
  T.raises("Dict key is nil", d.set, d, nil, 1)
  T.raises("value: cannot send a thread", function() d.co = coroutine.create(print) end)
  T.eq(#d, 0, "nothing stored")
  T.raises("mp.Dict expected", d.get, {}, "x")
end)

T.test("Dict: many keys, O(1) lookups, deleted memory reused", function()
  local d = mp.Dict()
  local N = 20000
  for i = 1, N do d[i] = i * 2 end
  for i = 1, N do d["s" .. i] = i end
  T.eq(#d, 2 * N)
  for i = 1, N, 97 do T.eq(d[i], i * 2); T.eq(d["s" .. i], i) end
  for i = 1, N do d[i] = nil; d["s" .. i] = nil end
  T.eq(#d, 0)
  collectgarbage()
  local base = mp._arena().bytes
  for round = 1, 5 do
    for i = 1, 2000 do d[i] = string.rep("x", 100) end
    for i = 1, 2000 do d[i] = nil end
  end
  T.eq(#d, 0)
  assert(mp._arena().bytes <= base + 4096, "arena bytes grew from " .. base .. " to " .. mp._arena().bytes)
end)

T.test("Dict/List: scalar values round-trip exactly (the short encoding and the codec's)", function()
  local d, l = mp.Dict(), mp.List()
  local vals = { 0, -1, 127, 128, -129, 2 ^ 31, math.maxinteger, math.mininteger, 0.5, -0.0, 1 / 0, 1e300,
                 true, false, "", "x", string.rep("a", 255), string.rep("b", 256), string.rep("c", 9000) }
  for i, v in ipairs(vals) do d[i] = v; l:append(v) end
  l:append(nil)
  for i, v in ipairs(vals) do
    T.eq(d[i], v, "Dict value " .. i); T.eq(math.type(d[i]), math.type(v), "Dict subtype " .. i)
    T.eq(l[i], v, "List value " .. i); T.eq(math.type(l[i]), math.type(v), "List subtype " .. i)
  end
  T.eq(1 / d[10], -1 / 0, "-0.0 kept")
  T.eq(#l, #vals + 1); T.eq(l[#l], nil, "nil is a List value")
  local nan = mp.List { 0 / 0 }
  assert(nan[1] ~= nan[1], "NaN kept")
end)

T.test("Dict: large values and values holding mp objects", function()
  local d = mp.Dict()
  local big = string.rep("0123456789", 100000)
  d.big = big
  T.eq(d.big, big)
  local l = mp.Lock()
  d.lock = l
  T.eq(d.lock, l)
  d.inner = mp.Dict { a = 1 }
  T.eq(d.inner.a, 1)
  d.inner.a = 2
  T.eq(d.inner.a, 2, "a Dict inside a Dict is the same shared Dict")
end)

T.test("Dict: 4 processes x 10,000 incr = 40,000 exactly; with and incr together", function()
  local d = mp.Dict()
  local ps = {}
  for p = 1, 4 do
    ps[#ps + 1] = spawn(function()
      for i = 1, 10000 do
        d:incr("n")
        if i % 20 == 0 then d["p" .. p .. "_" .. i] = i end
      end
      for _ = 1, 200 do d:with("w", function(o) return (o or 0) + 1 end); d:incr("w") end
    end)
  end
  joinAll(ps)
  T.eq(d.n, 40000)
  T.eq(d.w, 4 * 400)
  T.eq(#d, 2 + 4 * 500)
end)

T.test("Dict: sent through a queue to a process started earlier", function()
  local q, back = mp.Queue(), mp.Queue()
  local p = spawn(function()
    local d = q:get()
    d.from_child = "hi"
    d:incr("n", 5)
    back:put(tostring(d))
  end)
  local d = mp.Dict { n = 1 }      -- created after the child started
  q:put(d)
  T.eq(back:get(10), "<Dict n=2>")
  joinAll({ p })
  T.eq(d.from_child, "hi"); T.eq(d.n, 6)
  local l = mp.List { 1 }
  local p2 = spawn(function() local l2 = q:get(); l2:append(2) end)
  q:put(l)
  joinAll({ p2 })
  T.eq(#l, 2); T.eq(l[2], 2)
end)

T.test("List: members", function()
  local l = mp.List()
  T.eq(tostring(l), "<List n=0>")
  l:append("a"); l:extend { "b", "c" }; l[4] = "d"
  T.eq(#l, 4); T.eq(tostring(l), "<List n=4>")
  T.eq(l[1], "a"); T.eq(l[4], "d"); T.eq(l[5], nil); T.eq(l[0], nil)
  l[2] = { x = 1 }; T.eq(l[2].x, 1)
  l:insert(1, "first"); l:insert(#l + 1, "last"); l:insert(3, "mid")
  T.eq(table.concat({ l[1], l[2], l[3], l[5], l[6], l[7] }, ","), "first,a,mid,c,d,last")
  T.eq(l:pop(), "last"); T.eq(l:pop(1), "first"); T.eq(l:pop(2), "mid")
  local seen = {}
  for i, v in ipairs(l) do seen[#seen + 1] = i .. "=" .. tostring(type(v) == "table" and "t" or v) end
  T.eq(table.concat(seen, " "), "1=a 2=t 3=c 4=d")
  local n = 0
  for i, v in pairs(l) do n = n + 1 end
  T.eq(n, 4)
  T.eq(#l:totable(), 4)
  l:extend(mp.List { "e" }); T.eq(l[5], "e")
  l:clear(); T.eq(#l, 0)
  T.raises("pop from an empty mp.List", l.pop, l)
  T.raises("out of range", function() l[3] = 1 end)
  T.raises("out of range", l.insert, l, 5, 1)
  T.raises("index must be an integer", function() l.x = 1 end)
  for i = 1, 1000 do l:append(i) end
  T.eq(#l, 1000); T.eq(l[1000], 1000)
  for i = 1, 500 do l:append(i) end for i = 1, 500 do l:pop() end   -- the table grows once
  local base = mp._arena().bytes
  for _ = 1, 5 do for i = 1, 500 do l:append(i) end for i = 1, 500 do l:pop() end end
  assert(mp._arena().bytes <= base, "append/pop churn grew the arena")
  local l2 = mp.List { 1, 2, 3 }; T.eq(#l2, 3)
end)

T.test("List: 4 processes append concurrently", function()
  local l = mp.List()
  local ps = {}
  for p = 1, 4 do ps[#ps + 1] = spawn(function() for i = 1, 2000 do l:append(p * 100000 + i) end end) end
  joinAll(ps)
  T.eq(#l, 8000)
  local last = {}
  for _, v in ipairs(l:totable()) do
    local p, i = v // 100000, v % 100000
    assert(i == (last[p] or 0) + 1, "process " .. p .. "'s appends out of order")
    last[p] = i
  end
end)

T.test("Value: add, exchange, compare_exchange; Array:add", function()
  local v = mp.Value("i", 5)
  T.eq(v:add(), 6); T.eq(v:add(10), 16); T.eq(v:add(-20), -4)
  T.eq(v:exchange(3), -4); T.eq(v.value, 3)
  local ok, cur = v:compare_exchange(3, 9); T.eq(ok, true); T.eq(cur, 3); T.eq(v.value, 9)
  ok, cur = v:compare_exchange(3, 1); T.eq(ok, false); T.eq(cur, 9); T.eq(v.value, 9)
  T.raises("out of range for typecode 'i'", v.add, v, 2 ^ 31)
  T.eq(v.value, 9, "an overflowing add changes nothing")
  local q = mp.Value("q", math.maxinteger); T.eq(q:add(1), math.mininteger, "64-bit wraps like Lua")
  local u = mp.Value("B", 250); T.raises("out of range", u.add, u, 10); T.eq(u:add(5), 255)
  local f = mp.Value("d", 1)
  T.raises("needs an integer typecode", f.add, f, 1)
  local a = mp.Array("h", 3)
  T.eq(a:add(2, 7), 7); T.eq(a:add(2), 8); T.eq(a[2], 8)
  T.raises("out of range", a.add, a, 4)
end)

T.test("Value:add from 4 processes x 10,000 = 40,000 without a lock", function()
  local v = mp.Value("q", 0, { lock = false })
  local a = mp.Array("i", 2, { lock = false })
  local ps = {}
  for _ = 1, 4 do ps[#ps + 1] = spawn(function() for _ = 1, 10000 do v:add(1); a:add(2, 1) end end) end
  joinAll(ps)
  T.eq(v.value, 40000); T.eq(a[2], 40000)
end)

T.test("Dict churn keeps a flat arena footprint", function()
  -- LUAMP_LONG: 1e6 keys written and deleted for a minute; CI: 20,000 keys, 6 rounds.
  local N, seconds = T.long and 1000000 or 20000, T.long and 60 or 0
  local d = mp.Dict()
  local function round()
    for i = 1, N do d[i] = i end
    for i = 1, N do d[i] = nil end
  end
  round()
  collectgarbage()
  local first = mp._arena().bytes
  local t0, rounds = mp.monotonic(), 0
  repeat round(); rounds = rounds + 1 until rounds >= 5 and mp.monotonic() - t0 >= seconds
  T.eq(#d, 0)
  collectgarbage()
  local now = mp._arena().bytes
  assert(now <= first + 65536, ("arena bytes %d after round 1, %d after %d more"):format(first, now, rounds))
end)

T.done()
