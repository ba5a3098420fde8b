-- codec_gen: random sendable values and a structural equality that follows shared refs and cycles.
-- Used by Tests/lua/codec_test.lua and (as a string) by the Swift codec property test.
local G = {}

local specials = { 0.0, -0.0, 1 / 0, -1 / 0, 0 / 0, math.maxinteger, math.mininteger, 2^53, -1.5e-308, 5e-324 }

--- A random value, depth-bounded: scalars, binary strings, tables (arrays, hashes, mixed keys,
--- shared refs, cycles) and Lua functions with upvalues (which may be tables or functions).
function G.value(depth, pool)
  pool = pool or {}
  local r = math.random(1, depth > 0 and 12 or 7)
  if r == 1 then return nil
  elseif r == 2 then return math.random() < 0.5
  elseif r == 3 then return math.random(-1000, 1000) * (math.random() < 0.2 and 1 << math.random(0, 50) or 1)
  elseif r == 4 then return specials[math.random(#specials)]
  elseif r == 5 then return math.random() * 10 ^ math.random(-10, 10)
  elseif r == 6 then
    local n = math.random(0, math.random() < 0.05 and 3000 or 20)
    local b = {}
    for i = 1, n do b[i] = string.char(math.random(0, 255)) end
    return table.concat(b)
  elseif r == 7 then return ({ "id", "name", "", "_ENV", "x y" })[math.random(5)]
  elseif r <= 10 then
    if #pool > 0 and math.random() < 0.2 then return pool[math.random(#pool)] end   -- shared / cycle
    local t = {}
    pool[#pool + 1] = t
    for i = 1, math.random(0, 6) do t[i] = G.value(depth - 1, pool) end
    for _ = 1, math.random(0, 4) do
      local k = G.value(depth - 1, pool)
      if k ~= nil and k == k then t[k] = G.value(depth - 1, pool) end
    end
    if math.random() < 0.1 then t.self = t end
    return t
  elseif r == 11 then
    local a, b = G.value(depth - 1, pool), G.value(depth - 1, pool)
    return function(x) if x == 1 then return a elseif x == 2 then return b end return math.type(x) end
  else
    local n = math.random(0, 1000)
    local function rec(k) if type(k) ~= "number" or k <= 0 then return n end return rec(k - 1) end
    return rec
  end
end

--- Deep equality: NaN equals NaN, -0.0 differs from 0.0, integer/float subtype must match,
--- the sharing structure must match (a bijection between tables/functions), and functions
--- are compared by calling them with 1, 2 and "probe".
function G.equal(a, b, seen)
  seen = seen or {}
  if type(a) ~= type(b) then return false, "type " .. type(a) .. " vs " .. type(b) end
  local ta = type(a)
  if ta == "number" then
    if math.type(a) ~= math.type(b) then return false, "subtype" end
    if a ~= a then return b ~= b, "nan" end
    if a == 0 and b == 0 and math.type(a) == "float" then return 1 / a == 1 / b, "signed zero" end
    return a == b, tostring(a) .. " vs " .. tostring(b)
  elseif ta == "table" or ta == "function" then
    if seen[a] ~= nil then return seen[a] == b, "sharing" end
    seen[a] = b
    if ta == "function" then
      for _, x in ipairs({ 1, 2, "probe", 0 }) do
        local ok, why = G.equal(a(x), b(x), seen)
        if not ok then return false, "function result: " .. why end
      end
      return true
    end
    local n = 0
    for k, v in pairs(a) do
      n = n + 1
      local bk = k
      if type(k) == "table" or type(k) == "function" then
        bk = seen[k]   -- table/function keys: checked only once their image is known
      end
      if bk ~= nil then
        local ok, why = G.equal(v, b[bk], seen)
        if not ok then return false, "[" .. tostring(k) .. "] " .. why end
      end
    end
    for _ in pairs(b) do n = n - 1 end
    return n == 0, "key count"
  else
    return a == b, tostring(a) .. " vs " .. tostring(b)
  end
end

return G
