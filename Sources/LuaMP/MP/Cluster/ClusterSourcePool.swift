// Lua source of the remote pool, mp.Pool{address = "redis://…"}: jobs cut into tasks (chunks),
// submitted to Redis, results read back in the host while it is inside a pool call (there are no
// threads), leases reaped, callbacks run at the same safe points as the local pool's; its imap
// iterators are in ClusterSourcePoolIterators.swift (the same chunk).

extension ClusterSource {
    /// Receives (C, S); returns {Pool = fn(opts)}. One chunk: the pool's jobs, results and
    /// submitting, its imap iterators (`poolIterators`, ClusterSourcePoolIterators.swift), then
    /// its AsyncResult methods and lifetime.
    static let pool = poolJobs + poolIterators + poolLifetime

    private static let poolJobs = #"""
local C, S = ...
local mp, native = C.mp, C.native
local monotonic = mp.monotonic
local pack, unpack = table.pack, table.unpack

local P = {}
P.__index = P
P.__name = "mp.RemotePool"
local J = {}          -- a job's methods for its AsyncResult (ClusterFuture.swift calls them)
local I = {}          -- imap iterators
I.__index = I
I.__name = "mp.RemotePoolIterator"

local function terr(msg, level) error(msg, level + 1) end

local function check_fn(fn, name)
  if type(fn) ~= "function" then terr("bad argument #1 to '" .. name .. "' (function expected, got " .. type(fn) .. ")", 3) end
end

local function items_of(list, name, pos)
  if type(list) == "table" then return list, list.n or #list end
  if type(list) == "function" then
    local t, n = {}, 0
    for v in list do n = n + 1; t[n] = v end
    return t, n
  end
  terr("bad argument #" .. pos .. " to '" .. name .. "' (table or iterator function expected, got " .. type(list) .. ")", 3)
end

-- mp.Pool{address =, processes =, initializer =, initargs =, authkey =, retries =, task_timeout =,
-- lost_attempts =, keys_ttl =, redis_timeout =, redis_retry =} (or mp.Pool() with LUAMP_ADDRESS set).
local function new(opts)
  opts = opts or {}
  if type(opts) ~= "table" then opts = {processes = opts} end
  local address = C.address(opts, "mp.Pool")
  local cap = opts.processes
  if cap ~= nil and (math.type(cap) ~= "integer" or cap < 1) then terr("mp.Pool: processes must be a positive integer", 2) end
  local retries, task_timeout = opts.retries, opts.task_timeout
  if retries ~= nil and (math.type(retries) ~= "integer" or retries < 0) then terr("mp.Pool: retries must be a non-negative integer", 2) end
  if task_timeout ~= nil and (type(task_timeout) ~= "number" or task_timeout <= 0) then terr("mp.Pool: task_timeout must be a positive number of seconds", 2) end
  local key = C.key(opts, "a pool with a remote address (mp.Pool{address = \"" .. address:gsub("//[^@/]*@", "//***@") .. "\"})")
  local conn = C.conn(address, opts)
  conn:call("PING")
  local note = C.notifier(address, opts)
  local id = native.token()
  local base = C.prefix .. "pool:" .. id .. ":"
  local self = setmetatable({
    address = address, id = id, key = key, cap = cap, phase = "RUN",
    k = {state = base .. "state", data = base .. "data", res = base .. "res", init = base .. "init",
         tasks = C.prefix .. "tasks"},
    attempts = (opts.lost_attempts or 3) + (retries or 0), retries = retries or 0, task_timeout = task_timeout,
    ttl = math.floor((opts.keys_ttl or 120) * 1000), reap_every = opts.reap_interval or 0.5,
    next_reap = 0, seq = 0, recs = {}, backlog = {}, inflight = 0, dueq = {}, jobs = 0,
    owner = mp.getpid(), note = note,
  }, P)
  note.pools[id] = self
  if opts.initializer ~= nil then
    if type(opts.initializer) ~= "function" then terr("mp.Pool: initializer must be a function", 2) end
    local init = C.seal(key, "init " .. id, opts.initializer, opts.initargs or {})
    conn:call("SET", self.k.init, init, "PX", self.ttl)
    self.has_init = true
  end
  return self
end

local function live(self, name)
  if self.phase == "CLOSE" then terr("the pool is closed (no new tasks after close())", 3) end
  if self.phase == "TERMINATE" then terr("the pool was terminated", 3) end
  if mp.getpid() ~= self.owner then terr(name .. ": this pool belongs to process " .. self.owner, 3) end
end

function P:cluster_size()
  local ok, n = pcall(C.conn(self.address).call, C.conn(self.address), "EVAL", S.NODES, 0, C.prefix .. "node:")
  return ok and n or 0
end

-- Jobs ----------------------------------------------------------------------------------------

local function job_new(self, kind, n, opts)
  self.jobs = self.jobs + 1
  return setmetatable({pool = self, kind = kind, n = n, results = {n = n}, errs = {}, chunks = 0, finished = 0,
          callback = opts.callback, error_callback = opts.error_callback, errors = opts.errors,
          timeout = opts.timeout or self.task_timeout, retries = opts.retries or self.retries,
          arrivals = {}, done = false, running = false}, J)
end

local function add_task(self, job, mode, fn, first, items)
  self.seq = self.seq + 1
  local tid = tostring(self.seq)
  -- the globals fn reads that have a value here travel with it (a worker elsewhere never had them)
  -- (and those of global functions among them, and so on)
  local globals
  local todo, seen = {fn}, {[fn] = true}
  while #todo > 0 do
    for _, name in ipairs(C.globals_of(table.remove(todo))) do
      local v = rawget(_G, name)
      if v ~= nil and (globals == nil or globals[name] == nil) then
        globals = globals or {}
        globals[name] = v
        if type(v) == "function" and not seen[v] then seen[v] = true todo[#todo + 1] = v end
      end
    end
  end
  local tmo = job.timeout and math.max(1, math.floor(job.timeout * 1000 + 0.5)) or nil
  local payload = C.seal(self.key, "task " .. self.id .. " " .. tid, mode, fn, items, job.errors == "return", globals, tmo)
  local rec = {job = job, first = first, count = items.n, payload = payload, attempt = 1, id = tid}
  if tmo then rec.items, rec.fn, rec.mode = items, fn, mode end   -- kept to resend the rest after a timeout
  job.chunks = job.chunks + 1
  self.recs[tid] = rec
  self.backlog[#self.backlog + 1] = rec
end

-- Sends queued tasks (up to `processes` in flight), batched into SUBMIT calls of ≤ 8 MiB.
function P:flush()
  local b = self.backlog
  if #b == 0 then return end
  local conn = C.conn(self.address)
  local args, bytes, sent = {}, 0, 0
  local function go()
    if #args == 0 then return end
    conn:call("EVAL", S.SUBMIT, 3, self.k.state, self.k.data, self.k.tasks, self.id, self.ttl, self.note.key, unpack(args))
    args, bytes = {}, 0
  end
  local i = 1
  while i <= #b and (self.cap == nil or self.inflight < self.cap) do
    local rec = b[i]
    args[#args + 1] = rec.id; args[#args + 1] = rec.attempt; args[#args + 1] = rec.payload
    if not rec.job.running then
      rec.job.running = true
      if rec.job.handle then native.started(rec.job.handle) end
    end
    self.inflight = self.inflight + 1
    bytes = bytes + #rec.payload
    if bytes > 8 * 1024 * 1024 or #args >= 3000 then go() end
    i = i + 1
  end
  go()
  local rest = {}
  for j = i, #b do rest[#rest + 1] = b[j] end
  self.backlog = rest
end

local function finish_job(self, job)
  job.done = true
  if job.kind ~= "imap" then
    local first
    for i = 1, job.n do if job.errs[i] ~= nil then first = job.errs[i] break end end
    if first ~= nil and job.errors ~= "return" then job.error = first end
    if job.errors == "return" then for i, e in pairs(job.errs) do job.results[i] = e end end
  end
  self.dueq[#self.dueq + 1] = job
  if job.handle then native.settled(job.handle, job.error ~= nil, false) end
end

local function chunk_done(self, rec, ok, results, errs)
  self.recs[rec.id] = nil
  self.inflight = self.inflight - 1
  local job = rec.job
  for i = 1, rec.count do
    local pos = rec.first + i - 1
    local e = errs and errs[i]
    if e ~= nil then
      if type(e) == "table" and getmetatable(e) == nil and type(e.kind) == "string" then e = C.err(e.kind, e.message, e) end
      job.errs[pos] = e
    else
      job.results[pos] = results[i]
    end
    job.arrivals[#job.arrivals + 1] = pos
  end
  job.finished = job.finished + 1
  if job.sealed_input and job.finished == job.chunks then finish_job(self, job) end
end

local function fail_chunk(self, rec, e)
  local errs = {}
  for i = 1, rec.count do errs[i] = e end
  chunk_done(self, rec, false, nil, errs)
end

local function resubmit(self, rec)
  rec.attempt = rec.attempt + 1
  self.inflight = self.inflight - 1
  table.insert(self.backlog, 1, rec)
end

function P:handle(msg)
  local sp = string.find(msg, " ", 1, true)
  if not sp then return end
  local tid = string.sub(msg, 1, sp - 1)
  local rec = self.recs[tid]
  if not rec then return end   -- not ours any more (cannot happen: DELIVER lets one attempt through)
  local ok, _, results, errs, tmo = pcall(C.open, self.key, "result " .. self.id .. " " .. tid, string.sub(msg, sp + 1))
  if not ok then results = _ end
  if not ok then return fail_chunk(self, rec, results) end
  if type(tmo) == "table" and rec.items then return self:timed_out(rec, tmo) end
  -- As in the local pool, an error the function raised is its outcome: retries are for items
  -- lost with their worker (a lease that expired) or stopped by their timeout, never for errors.
  chunk_done(self, rec, true, results, errs)
end

-- Item `t.at` of `rec` outlived its timeout: its worker process was stopped by its own timer and
-- the node reported it. That item fails with TimeoutError (or, with retries left, is sent alone
-- again); the chunk's other items (the results of those before it died with the process) are
-- sent again.
function P:timed_out(rec, t)
  self.recs[rec.id] = nil
  self.inflight = self.inflight - 1
  local job, at = rec.job, t.at
  job.chunks = job.chunks - 1
  local function again(a, b, tries)
    if b < a then return end
    add_task(self, job, rec.mode, rec.fn, rec.first + a - 1, table.move(rec.items, a, b, 1, {n = b - a + 1}))
    self.recs[tostring(self.seq)].ttries = tries
  end
  local tries = (rec.count == 1 and rec.ttries or 0) + 1
  again(1, at - 1, 0)
  if tries <= job.retries then
    again(at, at, tries)
  else
    local pos = rec.first + at - 1
    job.errs[pos] = C.err("TimeoutError", string.format(
      "a task ran longer than its timeout of %g s; worker pid %d (%s) was stopped", t.timeout, t.pid, t.worker),
      {pid = t.pid, timeout = t.timeout, worker = t.worker, attempts = tries})
    job.arrivals[#job.arrivals + 1] = pos
  end
  again(at + 1, rec.count, 0)
  if job.sealed_input and job.finished == job.chunks and not job.done then finish_job(self, job) end
end

function P:reap()
  local rows = C.conn(self.address):call("EVAL", S.REAP, 5, self.k.state, self.k.data, self.k.tasks,
                                       self.k.res, self.k.init, self.id, self.attempts, C.prefix .. "worker:", self.ttl)
  local gone = false
  for _, row in ipairs(rows) do
    if row == "gone" then gone = true else
      local tid, what, att, wid = string.match(row, "^(%S+) (%S+) (%d+) (.*)$")
      local rec = self.recs[tid]
      if rec then
        if what == "retry" then
          rec.attempt = tonumber(att) + 1
          io.stderr:write(string.format("luamp: pool task %s: worker %s lost its lease (attempt %s); retrying\n", tid, wid, att))
        elseif what == "lost" then
          fail_chunk(self, rec, C.err("WorkerLost", string.format(
            "worker %s stopped renewing its lease while running a task (attempt %s of %d)", wid, att, self.attempts),
            {worker = wid, attempts = tonumber(att)}))
        else
          fail_chunk(self, rec, C.err("AuthenticationError", string.format(
            "worker %s refused the task: its LUAMP_AUTHKEY does not match this host's (attempt %s of %d)", wid, att, self.attempts),
            {worker = wid}))
        end
      end
    end
  end
  return gone
end

-- Reads the results that came (waiting up to `wait` seconds for some), reaps leases when due,
-- sends more.
function P:pump(wait)
  self:flush()
  local now = monotonic()
  if now >= self.next_reap and self.inflight > 0 then
    self.next_reap = now + self.reap_every
    if self:reap() then
      C.take(self.note, 0)
      if self.inflight > 0 and next(self.recs) then
        -- the pool's keys vanished (Redis restarted empty, or they expired): nothing will come back
        for _, rec in pairs(self.recs) do
          if rec.attempt and rec.job.running then
            fail_chunk(self, rec, C.err("ConnectionError", "the pool's tasks vanished from Redis at " ..
              C.conn(self.address):address() .. " (Redis restarted, or the keys expired)"))
          end
        end
        self.backlog = {}
      end
    end
  end
  if self.inflight == 0 then self:flush() return end
  C.take(self.note, wait)
  self:flush()
end

-- Runs callbacks of finished jobs (only from calls that wait or check, as the local pool does).
function P:run_callbacks()
  while #self.dueq > 0 do
    local job = table.remove(self.dueq, 1)
    if job.error ~= nil then
      if job.error_callback then job.error_callback(job.error) end
    elseif job.callback then
      if job.kind == "apply" then job.callback(unpack(job.results[1], 1, job.results[1].n))
      else job.callback(job.results) end
    end
  end
end

-- Waits for `job` until `deadline` (nil: forever). True when done.
function P:wait_job(job, deadline)
  while not job.done do
    local left = C.left(deadline)
    if left <= 0 then return false end
    self:pump(left)
  end
  return true
end

-- Submitting ---------------------------------------------------------------------------------

local function default_chunksize(self, n)
  local procs = self.cap or math.max(1, self:cluster_size())
  local c = math.ceil(n / (4 * procs))
  return math.max(1, math.min(c, 200000))
end

-- A number where the chunksize goes stays the chunksize; a table there is the options
-- {chunksize =, timeout =, retries =, errors =, callback =, error_callback =}.
local function options(name, c, opts)
  if type(c) == "table" then opts, c = c, c.chunksize end
  opts = opts or {}
  local t, r, e = opts.timeout, opts.retries, opts.errors
  if t ~= nil and (type(t) ~= "number" or t <= 0) then terr("bad argument to '" .. name .. "' (timeout must be a positive number of seconds)", 3) end
  if r ~= nil and (math.type(r) ~= "integer" or r < 0) then terr("bad argument to '" .. name .. "' (retries must be a non-negative integer)", 3) end
  if e ~= nil and e ~= "return" and e ~= "raise" then terr("bad argument to '" .. name .. "' (errors must be \"raise\" or \"return\")", 3) end
  return c, opts
end

local function submit_list(self, name, mode, fn, list, chunksize, opts, listpos)
  live(self, name)
  check_fn(fn, name)
  local t, n = items_of(list, name, listpos or 2)
  if chunksize ~= nil and (math.type(chunksize) ~= "integer" or chunksize < 1) then
    terr("bad argument #3 to '" .. name .. "' (chunksize must be a positive integer)", 2)
  end
  chunksize = chunksize or default_chunksize(self, n)
  local job = job_new(self, mode == "apply" and "apply" or "map", n, opts)
  local i = 1
  while i <= n do
    local c = math.min(chunksize, n - i + 1)
    local items = table.move(t, i, i + c - 1, 1, {n = c})
    local ok, e = pcall(add_task, self, job, mode, fn, i, items)
    if not ok then
      if type(e) == "table" and type(e.message) == "string" then
        e.message = e.message:gsub("^args%[3%]", "input"):gsub("^args%[2%]", "function"):gsub("^args%[5%]", "globals")
      end
      error(e, 3)
    end
    i = i + c
  end
  job.sealed_input = true
  if job.chunks == 0 then finish_job(self, job) end
  self:flush()
  return job
end

-- The AsyncResult of `job`: the local pool's userdata over a RemoteFuture (ClusterFuture.swift).
local function future(job)
  local r, h = native.future(job, job.pool.note.wire)
  job.handle = h
  if job.running then native.started(h) end
  if job.done then native.settled(h, job.error ~= nil, job.cancelled == true) end
  return r
end

-- Waits for a blocking call's job; runs due callbacks; raises its error.
local function outcome_of(self, job)
  self:wait_job(job)
  self:run_callbacks()
  if job.error ~= nil then error(job.error, 3) end
  return job.results
end

-- map and starmap (blocking), map_async and starmap_async (an AsyncResult)
for name, mode in pairs({map = "map", starmap = "star"}) do
  P[name] = function(self, fn, list, chunksize, opts)
    chunksize, opts = options(name, chunksize, opts)
    return outcome_of(self, submit_list(self, name, mode, fn, list, chunksize, opts))
  end
  P[name .. "_async"] = function(self, fn, list, chunksize, callback, error_callback)
    local opts
    chunksize, opts = options(name .. "_async", chunksize, {callback = callback, error_callback = error_callback})
    if opts.callback == nil then opts.callback, opts.error_callback = callback, error_callback end
    return future(submit_list(self, name .. "_async", mode, fn, list, chunksize, opts))
  end
end

function P:apply_async(fn, args, callback, error_callback)
  if args ~= nil and type(args) ~= "table" then terr("bad argument #2 to 'apply_async' (table expected, got " .. type(args) .. ")", 2) end
  local _, opts = options("apply_async", callback, {callback = callback, error_callback = error_callback})
  if type(callback) == "table" and opts.error_callback == nil then opts.error_callback = error_callback end
  return future(submit_list(self, "apply_async", "apply", fn, {args or {n = 0}}, 1, opts))
end

function P:submit(fn, ...)
  return future(submit_list(self, "submit", "apply", fn, {pack(...)}, 1, {}))
end

function P:apply(fn, args, opts)
  if args ~= nil and type(args) ~= "table" then terr("bad argument #2 to 'apply' (table expected, got " .. type(args) .. ")", 2) end
  local _, o = options("apply", opts)
  local r = outcome_of(self, submit_list(self, "apply", "apply", fn, {args or {n = 0}}, 1, o))[1]
  return unpack(r, 1, r.n)
end


"""#

    private static let poolLifetime = #"""
-- AsyncResult (the methods RemoteFuture calls) ---------------------------------------------

function J.service(job)
  local pool = job.pool
  if mp.getpid() ~= pool.owner then error("this AsyncResult belongs to process " .. pool.owner, 0) end
  if not job.done and pool.phase ~= "TERMINATE" then
    pool:pump(0)
    pool.away = nil
  end
  pool:run_callbacks()
end

function J.outcome(job)
  if job.error ~= nil then error(job.error, 0) end
  if job.kind == "apply" then local r = job.results[1] return unpack(r, 1, r.n) end
  return job.results
end

function J.exception(job) return job.error end

function J.cancel(job, force) return job.pool:cancel_job(job, force) end

-- cancel(): a job none of whose tasks has started is taken back (from the backlog here, and
-- atomically from Redis): true. With `force`, the nodes running its tasks are told (a sealed
-- order on their list) to stop those worker processes; their late results are ignored. The job
-- then fails with CancelledError, once. False when it is done, or started and not forced.
function P:cancel_job(job, force)
  if job.done or mp.getpid() ~= self.owner then return false end
  if not force and job.finished > 0 then return false end
  local queued = {}
  for _, rec in ipairs(self.backlog) do queued[rec] = true end
  local sent, args = {}, {}
  for _, rec in pairs(self.recs) do
    if rec.job == job and not queued[rec] then
      sent[#sent + 1] = rec
      args[#args + 1] = rec.id; args[#args + 1] = rec.attempt
      args[#args + 1] = C.seal(self.key, "cancel " .. self.id .. " " .. rec.id .. " " .. rec.attempt, true)
    end
  end
  local stopped = 0
  if #sent > 0 then
    local r = C.conn(self.address):call("EVAL", S.CANCEL, 2, self.k.state, self.k.data, self.id, force and 1 or 0,
                                        C.prefix .. "cancel:", self.ttl, unpack(args))
    if r == 0 then return false end
    stopped = r - 1
  end
  for i = #self.backlog, 1, -1 do if self.backlog[i].job == job then table.remove(self.backlog, i) end end
  for _, rec in ipairs(sent) do self.inflight = self.inflight - 1 end
  for tid, rec in pairs(self.recs) do if rec.job == job then self.recs[tid] = nil end end
  job.cancelled = true
  job.error = C.err("CancelledError", stopped > 0 and "the task was cancelled (its worker was stopped)"
                                      or "the task was cancelled before it started")
  job.done = true
  self.dueq[#self.dueq + 1] = job
  if job.handle then native.settled(job.handle, true, true) end
  self:flush()
  return true
end

-- Lifetime -----------------------------------------------------------------------------------

function P:close()
  if self.phase == "RUN" then self.phase = "CLOSE" end
end

function P:clean()
  if self.cleaned then return end
  self.cleaned = true
  self.note.pools[self.id] = nil
  local k = self.k
  C.conn(self.address):call("EVAL", S.CLEAN, 5, k.state, k.data, k.tasks, k.res, k.init, self.id)
end

function P:join()
  if self.phase == "RUN" then terr("join: the pool is still running (call close() or terminate() first)", 2) end
  while self.inflight > 0 or #self.backlog > 0 do self:pump(C.slice) end
  self:run_callbacks()
  self:clean()
end

function P:terminate()
  if self.phase == "TERMINATE" then return end
  self.phase = "TERMINATE"
  for _, rec in pairs(self.recs) do
    local job = rec.job
    if not job.done then
      job.error = C.err("RemoteError", "the pool was terminated before this task finished")
      job.done = true
      if job.handle then native.settled(job.handle, true, false) end
    end
  end
  self.recs, self.backlog, self.inflight = {}, {}, 0
  if mp.getpid() == self.owner then pcall(self.clean, self) end
end

P.__close = P.terminate
function P:__gc() if not self.cleaned and mp.getpid() == self.owner then pcall(self.clean, self) end end

function P:__tostring()
  return string.format("<Pool address=%s state=%s inflight=%d>", self.address:gsub("//[^@/]*@", "//***@"), self.phase, self.inflight)
end

return {Pool = new}
"""#
}
