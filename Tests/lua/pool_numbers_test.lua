-- map over lists of plain numbers takes the packed fast path (input read from the table's
-- array part, results stored straight into the results table): every kind of number, and
-- every way out of the fast path, gives exactly what the general path gives.
local T = require "testlib"

local pool = mp.Pool(2)

local function same(fn, xs, chunksize)
  local r = pool:map(fn, xs, chunksize)
  local n = xs.n or #xs
  T.eq(r.n, n, "results n")
  for i = 1, n do
    local want = fn(xs[i])
    if want ~= want then T.eq(r[i] ~= r[i], true, "NaN at " .. i)
    else
      T.eq(r[i], want, "result " .. i)
      T.eq(math.type(r[i]), math.type(want), "number kind at " .. i)
    end
  end
  return r
end

local function id(x) return x end
local function sq(x) return x * x end

T.test("integers of every width and floats keep their values and kinds", function()
  local xs = {0, 1, -1, 127, -128, 128, -129, 32767, 2147483647, -2147483648, 2147483648, -2147483649,
              math.maxinteger, math.mininteger, 0.0, -0.0, 1.5, -2.25, 1e300, math.huge, -math.huge, 0/0, 3.0}
  same(id, xs)
  same(id, xs, 1)
  same(id, xs, 5)
  local r = pool:map(id, {-0.0})
  T.eq(1 / r[1], -math.huge, "negative zero kept")
end)

T.test("1e5 squares, chunks of every size", function()
  local xs = {}
  for i = 1, 100000 do xs[i] = i end
  local r = pool:map(sq, xs)
  T.eq(r[100000], 100000 * 100000)
  for i = 1, 100000, 997 do T.eq(r[i], i * i) end
  same(sq, {1, 2, 3, 4, 5, 6, 7}, 3)
end)

T.test("mixed, sparse and hash-part inputs take the general path", function()
  same(id, {1, "two", 3, true, 5.5})
  local mixed = {1, 2, 3, {4}, 5}
  local r = pool:map(function(x) return type(x) == "table" and x[1] or x end, mixed)
  T.eq(r[4], 4)
  same(id, {n = 5, 1, nil, 3, nil, 5})
  local hashed = {}
  for i = 10, 1, -1 do hashed[i] = i * 1.5 end   -- filled backwards: mostly in the hash part
  same(sq, hashed)
  same(sq, {n = 3, [1] = 2, [2] = 3, [3] = 4})
end)

T.test("numbers in, other values out; nil results", function()
  local r = pool:map(function(x) return tostring(x) end, {1, 2.5, 3})
  T.eq(r[1], "1"); T.eq(r[2], "2.5"); T.eq(r[3], "3")
  r = pool:map(function(x) if x % 2 == 0 then return x end end, {1, 2, 3, 4})
  T.eq(r.n, 4); T.eq(r[1], nil); T.eq(r[2], 2); T.eq(r[3], nil); T.eq(r[4], 4)
  r = pool:map(function(x) return x, "extra" end, {7, 8})
  T.eq(r[1], 7); T.eq(r[2], 8)
end)

T.test("an error in a packed chunk names its input position", function()
  local ok, e = pcall(pool.map, pool, function(x) if x == 777 then error("bad " .. x) end return x end,
                      (function() local t = {} for i = 1, 1000 do t[i] = i end return t end)())
  T.eq(ok, false)
  T.eq(tostring(e):find("bad 777", 1, true) ~= nil, true, "message: " .. tostring(e))
end)

pool:terminate()
T.done()
