// Lua source of the cluster's shared part (keys, connections, authentication, errors) and of the
// named queues, mp.Queue{address =, name =} / mp.JoinableQueue{…}. Loaded once per Lua state, on
// first use (ClusterModule.swift). Redis does the storage and blocking; these wrap it in the local
// queues' API.

extension ClusterSource {
    /// Receives (native, mp); returns the shared table `C` the other chunks receive.
    static let common = #"""
local native, mp = ...
local C = {native = native, mp = mp, prefix = "luamp:"}
local seal, open, err = native.seal, native.open, native.error
local getenv, monotonic = native.getenv, mp.monotonic

function C.err(kind, message, fields) return err(kind, message, fields) end

-- The shared secret: authkey = "…" or LUAMP_AUTHKEY; refusing to start without one.
local keys = {}
function C.key(opts, what)
  local secret = opts and opts.authkey or getenv("LUAMP_AUTHKEY")
  if secret == nil or secret == "" then
    error(err("AuthenticationError", what .. " needs a shared secret to authenticate its messages: set LUAMP_AUTHKEY (the same value on every host and worker node) or pass authkey = \"…\""), 3)
  end
  if type(secret) ~= "string" then error("authkey must be a string", 3) end
  local k = keys[secret]
  if not k then k = native.key(secret); keys[secret] = k end
  return k
end

-- One connection per address and process (the native object reconnects after fork by itself).
local conns = {}
function C.conn(address, opts)
  local c = conns[address]
  if not c then
    c = native.connect(address, opts and opts.redis_timeout or 10, opts and opts.redis_retry or 5)
    conns[address] = c
  end
  return c
end

-- The results line of this process for an address (ClusterFuture.swift's RedisNotifier): its
-- own connection, blocked in BLMPOP on the list `luamp:host:TOKEN` where DELIVER pushes
-- `POOL TASK result` for every pool this process made on that address; `pools` are the live
-- ones (by id), which every host wait (a HostWait service) moves on without blocking. A forked
-- child makes its own.
local notifiers = {}
function C.notifier(address, opts)
  local n, pid = notifiers[address], mp.getpid()
  if not n or n.pid ~= pid then
    local key = C.prefix .. "host:" .. native.token()
    n = {pid = pid, key = key, address = address, pools = setmetatable({}, {__mode = "v"})}
    n.wire = native.notifier(address, opts and opts.redis_timeout or 10, opts and opts.redis_retry or 5, key,
      function(callbacks)
        -- a pool whose Redis is away is left to the calls made on it (which raise
        -- ConnectionError): a wait on something else neither raises nor retries for it
        for _, p in pairs(n.pools) do
          if p.phase ~= "TERMINATE" and not p.away and (p.inflight > 0 or #p.backlog > 0) then
            p.away = not pcall(p.pump, p, 0)
          end
          if callbacks then p:run_callbacks() end
        end
      end)
    notifiers[address] = n
  end
  return n
end

-- Gives each result on the line to its pool (results of pools gone from this process are
-- dropped); `msgs` from the reply, then the rest of a full batch by LPOP.
local function dispatch(n, msgs)
  while msgs do
    for _, m in ipairs(msgs) do
      local sp = string.find(m, " ", 1, true)
      local p = sp and n.pools[string.sub(m, 1, sp - 1)]
      if p then p:handle(string.sub(m, sp + 1)) end
    end
    if #msgs < 64 then return end
    msgs = C.conn(n.address):call("LPOP", n.key, 64)
  end
end

-- Reads the results that came on the line (waiting up to `secs` for them, 0: not at all), then
-- keeps it armed. True when something came.
function C.take(n, secs)
  local fired, msgs = n.wire:take(secs or 0)
  if fired then
    dispatch(n, msgs)
    n.wire:arm()
  end
  return fired
end

function C.address(opts, what)
  local a = opts and opts.address or getenv("LUAMP_ADDRESS")
  if type(a) ~= "string" or a == "" then error(what .. ": address must be a redis:// URL", 3) end
  return a
end

function C.seal(k, purpose, ...) return seal(k, purpose, ...) end
function C.open(k, purpose, msg) return open(k, purpose, msg) end

-- Sliced blocking: Redis blocks at most `slice` seconds per call, so Ctrl-C and deadlines are
-- noticed; `deadline` nil waits forever.
C.slice = 0.1
function C.left(deadline)
  if deadline == nil then return C.slice end
  local l = deadline - monotonic()
  if l <= 0 then return 0 end
  return l < C.slice and l or C.slice
end

function C.deadline(block, timeout)
  if block == false then return monotonic() end
  if timeout == nil then return nil end
  if type(timeout) ~= "number" then error("timeout must be a number", 3) end
  return monotonic() + math.max(0, timeout)
end

return C
"""#

    /// Receives (C); returns {Queue = fn(opts), JoinableQueue = fn(opts)}.
    static let queue = #"""
local C = ...
local mp, native = C.mp, C.native
local monotonic = mp.monotonic

local Q = {}
Q.__index = Q
Q.__name = "mp.RemoteQueue"
mp.register("mp.RemoteQueue", Q)   -- a queue object crosses by reference to its class

-- KEYS[1] list, KEYS[2] unfinished counter; ARGV[1] message, ARGV[2] maxsize (0: none),
-- ARGV[3] ttl ms, ARGV[4] "1" when joinable. Returns 1, or 0 when full.
local PUT = [[
if tonumber(ARGV[2]) > 0 and redis.call('LLEN', KEYS[1]) >= tonumber(ARGV[2]) then return 0 end
redis.call('RPUSH', KEYS[1], ARGV[1])
redis.call('PEXPIRE', KEYS[1], ARGV[3])
if ARGV[4] == '1' then redis.call('INCR', KEYS[2]); redis.call('PEXPIRE', KEYS[2], ARGV[3]) end
return 1
]]
-- KEYS[1] unfinished counter. Returns the count left, or -1 when there was nothing to finish.
local DONE = [[
local n = tonumber(redis.call('GET', KEYS[1]) or '0')
if n <= 0 then return -1 end
if n == 1 then redis.call('DEL', KEYS[1]) return 0 end
return redis.call('DECR', KEYS[1])
]]

local state = setmetatable({}, {__mode = "k"})   -- per-process: key, closed flag

local function st(q)
  local s = state[q]
  if not s then
    s = {key = C.key(nil, "mp.Queue{address = …}")}   -- a queue that arrived in a message
    state[q] = s
  end
  return s
end

local function new(opts, joinable)
  local what = joinable and "mp.JoinableQueue" or "mp.Queue"
  if type(opts) ~= "table" then error("bad argument #1 to '" .. what:sub(4) .. "' (table expected)", 3) end
  local name = opts.name
  if type(name) ~= "string" or name == "" then
    error(what .. "{address = …}: name must be a non-empty string (the queue's name in Redis)", 3)
  end
  local maxsize = opts.maxsize or 0
  if math.type(maxsize) ~= "integer" then error(what .. ": maxsize must be an integer", 3) end
  local q = setmetatable({address = C.address(opts, what), name = name, maxsize = maxsize,
                          joinable = joinable or false, ttl = opts.ttl or 7 * 86400}, Q)
  state[q] = {key = C.key(opts, what .. "{address = …}")}
  C.conn(q.address, opts):call("PING")   -- a clear ConnectionError now rather than at first use
  return q
end

local function list(q) return C.prefix .. "queue:" .. q.name end
local function unfinished(q) return C.prefix .. "queue:" .. q.name .. ":unfinished" end
local function purpose(q) return "queue " .. q.name end
local function live(q)
  local s = st(q)
  if s.closed then error("the queue is closed (q:close() in this process)", 3) end
  return s
end

function Q:put(v, block, timeout)
  local s = live(self)
  local msg = C.seal(s.key, purpose(self), v)
  local conn = C.conn(self.address)
  local deadline = C.deadline(block, timeout)
  local pause = 0.005
  while true do
    local ok = conn:call("EVAL", PUT, 2, list(self), unfinished(self), msg, self.maxsize,
                         math.floor(self.ttl * 1000), self.joinable and "1" or "0")
    if ok == 1 then return end
    if deadline and monotonic() >= deadline then error(C.err("Full", "the queue is full"), 2) end
    mp.sleep(math.min(pause, C.left(deadline)))
    pause = math.min(pause * 2, 0.05)
  end
end

function Q:get(block, timeout)
  local s = live(self)
  local conn = C.conn(self.address)
  local deadline = C.deadline(block, timeout)
  local msg
  if block == false then
    msg = conn:call("LPOP", list(self))
  else
    while true do
      local wait = C.left(deadline)
      if wait <= 0 then msg = conn:call("LPOP", list(self)) break end
      local r = conn:bcall(wait, "BLPOP", list(self), wait)
      if r then msg = r[2] break end
    end
  end
  if not msg then error(C.err("Empty", "the queue is empty"), 2) end
  return (C.open(s.key, purpose(self), msg))
end

function Q:put_nowait(v) return self:put(v, false) end
function Q:get_nowait() return self:get(false) end
function Q:qsize() return C.conn(self.address):call("LLEN", list(self)) end
function Q:empty() live(self) return self:qsize() == 0 end
function Q:full() return self.maxsize > 0 and self:qsize() >= self.maxsize end
function Q:close() st(self).closed = true end
function Q:join_thread() end
function Q:cancel_join_thread() end

function Q:task_done()
  if not self.joinable then error("task_done: not a JoinableQueue", 2) end
  local n = C.conn(self.address):call("EVAL", DONE, 1, unfinished(self))
  if n < 0 then error("task_done() called too many times", 2) end
end

function Q:join(timeout)
  if not self.joinable then error("join: not a JoinableQueue", 2) end
  local deadline = C.deadline(true, timeout)
  local conn = C.conn(self.address)
  local pause = 0.005
  while true do
    local n = conn:call("GET", unfinished(self))
    if not n or tonumber(n) <= 0 then return true end
    if deadline and monotonic() >= deadline then return false end
    mp.sleep(math.min(pause, C.left(deadline)))
    pause = math.min(pause * 2, 0.05)
  end
end

function Q:__tostring()
  local ok, n = pcall(self.qsize, self)
  return string.format("<%s %s size=%s maxsize=%d address=%s>", self.joinable and "JoinableQueue" or "Queue",
                       self.name, ok and tostring(n) or "?", self.maxsize, self.address:gsub("//[^@/]*@", "//***@"))
end

return {
  Queue = function(opts) return new(opts, false) end,
  JoinableQueue = function(opts) return new(opts, true) end,
}
"""#
}
