// Lua source: which global names a function reads (as cloudpickle finds a function's globals), read
// from its own bytecode (`string.dump`, Lua 5.4's format: GETTABUP on an upvalue named _ENV, in the
// function and every nested one). A remote task carries those globals' values (by value, or by
// reference for modules), since a worker on another machine never had the host's globals.

extension ClusterSource {
    /// Receives (C); sets `C.globals_of(fn) -> {name, ...}` (cached per function).
    static let globals = #"""
local C = ...
local byte, sub, unpack = string.byte, string.sub, string.unpack

-- What every luamp worker has already: never sent.
local standard = {}
for name in ([[_G _VERSION _ENV arg assert collectgarbage coroutine debug dofile error getmetatable io ipairs
  load loadfile math mp next os package pairs pcall print rawequal rawget rawlen rawset require select
  setmetatable string table tonumber tostring type utf8 warn xpcall]]):gmatch("%S+") do standard[name] = true end

local function reader(s)
  local pos = 1
  local r = {}
  function r.byte() local b = byte(s, pos) pos = pos + 1 return b end
  function r.size()   -- Lua 5.4's dumpSize: 7-bit groups, most significant first, last has 0x80
    local x = 0
    repeat
      local b = byte(s, pos) pos = pos + 1
      x = x * 128 + (b & 0x7f)
    until b >= 0x80
    return x
  end
  function r.skip(n) pos = pos + n end
  function r.string()
    local n = r.size()
    if n == 0 then return nil end
    local v = sub(s, pos, pos + n - 2)
    pos = pos + n - 1
    return v
  end
  function r.int() local v = unpack("<I4", s, pos) pos = pos + 4 return v end
  return r
end

local OP_LOADK, OP_LOADKX, OP_GETUPVAL, OP_GETTABUP, OP_GETTABLE, OP_EXTRAARG = 3, 4, 9, 11, 12, 82

local function func(r, names)
  r.string()                        -- source
  r.size() r.size()                 -- linedefined, lastlinedefined
  r.skip(3)                         -- numparams, is_vararg, maxstacksize
  local code = {}
  for i = 1, r.size() do code[i] = r.int() end
  local k = {}
  for i = 1, r.size() do
    local t = r.byte()
    if t == 0x13 or t == 0x03 then r.skip(8)            -- float, integer
    elseif t == 0x04 or t == 0x14 then k[i] = r.string() -- short, long string
    end                                                  -- nil, false, true: nothing
  end
  local nup = r.size()
  r.skip(3 * nup)
  local protos = r.size()
  for _ = 1, protos do func(r, names) end
  r.skip(r.size())                                      -- lineinfo
  for _ = 1, r.size() do r.size() r.size() end          -- abslineinfo
  for _ = 1, r.size() do r.string() r.size() r.size() end  -- locvars
  local upnames = {}
  for i = 1, r.size() do upnames[i - 1] = r.string() end
  local function add(name) if name and not standard[name] then names[name] = true end end
  -- A global is GETTABUP _ENV K[C] while its name's constant index fits C (≤ 255) and the name is
  -- a short string; else the compiler emits GETUPVAL r1 _ENV; LOADK(X) r2 K; GETTABLE _ r1 r2.
  local env, keys = {}, {}           -- register → holds _ENV / holds constant name (this pc)
  for pc, ins in ipairs(code) do
    local op, a = ins & 0x7f, (ins >> 7) & 0xff
    if op == OP_GETTABUP and upnames[(ins >> 16) & 0xff] == "_ENV" then
      add(k[((ins >> 24) & 0xff) + 1])
    elseif op == OP_GETTABLE and env[(ins >> 16) & 0xff] == pc - 2 and keys[(ins >> 24) & 0xff] then
      local r = keys[(ins >> 24) & 0xff]
      if r.pc == pc - 1 then add(r.name) end
    end
    if op == OP_GETUPVAL and upnames[(ins >> 16) & 0xff] == "_ENV" then env[a] = pc
    elseif op == OP_LOADK then keys[a] = {pc = pc, name = k[(ins >> 15) + 1]}
    elseif op == OP_LOADKX and code[pc + 1] and code[pc + 1] & 0x7f == OP_EXTRAARG then
      keys[a] = {pc = pc + 1, name = k[(code[pc + 1] >> 7) + 1]}
    end
  end
end

local cache = setmetatable({}, {__mode = "k"})

function C.globals_of(fn)
  local hit = cache[fn]
  if hit then return hit end
  local names = {}
  local ok, dumped = pcall(string.dump, fn)
  if ok then
    local r = reader(dumped)
    -- header: signature(4) version format LUAC_DATA(6) 3 sizes, LUAC_INT(8) LUAC_NUM(8), nupvalues
    r.skip(4 + 1 + 1 + 6 + 3 + 8 + 8 + 1)
    if not pcall(func, r, names) then names = {} end
  end
  local list = {}
  for n in pairs(names) do list[#list + 1] = n end
  table.sort(list)
  cache[fn] = list
  return list
end
"""#
}
