// Lua source of `luamp worker redis://…` (mp.cluster_worker): the node process forks N worker
// processes, renews their leases, replaces the ones that die, stops on SIGTERM; each worker process
// takes tasks from Redis, authenticates them before decoding anything, runs them and delivers the
// result once (the DELIVER script drops a late one).

extension ClusterSource {
    /// Receives (C, S); returns {main = fn(args...) -> exit status}.
    static let worker = #"""
local C, S = ...
local mp, native, monotonic = C.mp, C.native, C.mp.monotonic
local W, pack, unpack = {}, table.pack, table.unpack

local function log(fmt, ...)
  io.stderr:write(string.format("luamp worker %s: " .. fmt .. "\n", W.name or "?", ...))
  io.stderr:flush()
end

local function msg_of(e)
  if type(e) == "table" and e.message ~= nil then return tostring(e.message) end
  return tostring(e)
end

local USAGE = "usage: luamp worker redis://[user:password@]host[:port][/db] [--processes N] [--name NAME]\n" ..
              "                    [--require MODULE]... [--lease SECONDS] [--grace SECONDS]\n" ..
              "The shared secret comes from LUAMP_AUTHKEY (docs/cluster.md)."

local function parse(args)
  local o = {processes = mp.cpu_count(), requires = {}, lease = tonumber(native.getenv("LUAMP_LEASE") or "") or 5, grace = 30}
  local i = 1
  while i <= #args do
    local a = args[i]
    local function value()
      i = i + 1
      if args[i] == nil then error(a .. " needs a value", 0) end
      return args[i]
    end
    if a == "--processes" or a == "-p" then o.processes = math.tointeger(tonumber(value()))
      if not o.processes or o.processes < 1 then error("--processes must be a positive integer", 0) end
    elseif a == "--name" then o.name = value()
    elseif a == "--require" then o.requires[#o.requires + 1] = value()
    elseif a == "--lease" then o.lease = tonumber(value()) or error("--lease must be a number of seconds", 0)
    elseif a == "--grace" then o.grace = tonumber(value()) or error("--grace must be a number of seconds", 0)
    elseif a == "-h" or a == "--help" then o.help = true
    elseif a:sub(1, 1) == "-" then error("unknown option " .. a, 0)
    elseif o.address == nil then o.address = a
    else error("unexpected argument " .. a, 0) end
    i = i + 1
  end
  if not o.help and o.address == nil then error("missing the Redis address", 0) end
  o.name = o.name or (native.hostname() .. "-" .. mp.getpid())
  if o.name:find("[%s:]") then error("--name must not contain spaces or ':'", 0) end
  return o
end

-- Running tasks (in a worker process) -------------------------------------------------------

local inits = {}      -- pool id → true once its initializer ran here
local ninits = 0

-- Plain tables (the host gives them the mp error metatable back).
local function remote_error(e, tb)
  return {kind = "RemoteError", message = msg_of(e), traceback = tb, pid = mp.getpid(), worker = W.wid}
end

local function handler(e)
  -- the task's frames only: cut at the worker's own xpcall
  local tb = debug.traceback("", 2):gsub("^\n", ""):gsub("\n%s*%[C%]: in function 'xpcall'.*$", "")
  return remote_error(e, tb)
end

-- With a per-item timeout (ms), the item running is recorded where the node finds it, and the
-- process's timer armed: SIGALRM (default action) ends the process even inside C; the node then
-- reports TimeoutError for that item (node_timed_out below).
local function run_items(mode, fn, items, tmo, conn, running)
  local results, errs = {n = items.n}, nil
  for i = 1, items.n do
    local a = items[i]
    local r
    if tmo then conn:call("SET", C.prefix .. "running:" .. W.wid, running .. " " .. i .. " " .. tmo, "PX", tmo + 600000) native.alarm(tmo) end
    if mode == "map" then r = pack(xpcall(fn, handler, a))
    else r = pack(xpcall(fn, handler, unpack(a, 1, a.n or #a))) end
    if tmo then native.alarm(0) end
    if r[1] then
      if mode == "apply" then results[i] = pack(unpack(r, 2, r.n)) else results[i] = r[2] end
    else
      errs = errs or {}
      errs[i] = r[2]
    end
  end
  return results, errs
end

local function all_failed(n, e)
  local errs = {}
  for i = 1, n do errs[i] = e end
  return errs
end

local function deliver(conn, base, pool, tid, att, msg, wid)
  local pause, give_up = 0.1, monotonic() + 600
  while true do
    local ok, r = pcall(conn.call, conn, "EVAL", S.DELIVER, 3, base .. "state", base .. "data", base .. "res",
                        tid, att, wid or W.wid, msg, 120000, pool)
    if ok then
      if r == 0 then log("late result of task %s (pool %s) ignored: its lease expired and it went to another worker", tid, pool)
      elseif r == -1 then log("result of task %s (pool %s) dropped: the host cancelled the task", tid, pool) end
      return
    end
    if monotonic() > give_up or native.sigterm() then log("dropped the result of task %s (pool %s): %s", tid, pool, msg_of(r)) return end
    log("cannot deliver the result of task %s: %s; retrying", tid, msg_of(r))
    mp.sleep(pause)
    pause = math.min(pause * 2, 2)
  end
end

local function run_task(conn, key, pool, tid, att, payload)
  local base = C.prefix .. "pool:" .. pool .. ":"
  local purpose = "result " .. pool .. " " .. tid
  -- Authenticate first: nothing in the payload is decoded (no bytecode loaded) unless its MAC holds.
  local ok, mode, fn, items, _, globals, tmo = pcall(C.open, key, "task " .. pool .. " " .. tid, payload)
  if not ok then
    local e = mode
    if type(e) == "table" and e.kind == "AuthenticationError" then
      log("refused task %s of pool %s: %s", tid, pool, msg_of(e))
      pcall(conn.call, conn, "EVAL", S.REFUSE, 1, base .. "state", tid, att, W.wid)
      return
    end
    local n = 1
    local m = C.seal(key, purpose, true, {n = n}, all_failed(n, remote_error("the task could not be loaded in the worker: " .. msg_of(e), "")))
    return deliver(conn, base, pool, tid, att, m)
  end
  if not inits[pool] then
    local init = conn:call("GET", base .. "init")
    if init then
      local ok2, f, args = pcall(C.open, key, "init " .. pool, init)
      local ok3, e = ok2, f
      if ok2 then ok3, e = xpcall(f, handler, unpack(args, 1, args.n or #args)) end
      if not ok3 then
        local err = remote_error("pool initializer failed: " .. msg_of(e), type(e) == "table" and e.traceback or "")
        return deliver(conn, base, pool, tid, att, C.seal(key, purpose, true, {n = items.n}, all_failed(items.n, err)))
      end
    end
    if ninits > 256 then inits, ninits = {}, 0 end
    inits[pool] = true
    ninits = ninits + 1
  end
  if globals then for name, v in pairs(globals) do _G[name] = v end end   -- _ENV stays the worker's
  local results, errs = run_items(mode, fn, items, tmo, conn, pool .. " " .. tid .. " " .. att)
  if tmo then pcall(conn.call, conn, "DEL", C.prefix .. "running:" .. W.wid) end
  local sok, m = pcall(C.seal, key, purpose, true, results, errs)
  if not sok then
    m = C.seal(key, purpose, true, {n = items.n}, all_failed(items.n, remote_error("result" .. msg_of(m):gsub("^args%[2%]", ""), "")))
  end
  deliver(conn, base, pool, tid, att, m)
end

local function process_main(o)
  native.setpgid(0)   -- its own process group: what its tasks start is stopped with it
  native.sigterm_install()
  native.unsetenv("LUAMP_ADDRESS")   -- a task's own mp.Pool() is a local pool here
  W.wid = W.name .. ":" .. mp.getpid()
  local key = C.key(nil, "luamp worker")
  local conn = native.connect(o.address, math.max(5, o.lease), 2)
  local lease = math.floor(o.lease * 1000)
  local pause, down = 0.1, false
  while not native.sigterm() do
    local ok, e = pcall(function()
      local r = conn:bcall(1, "BLPOP", C.prefix .. "tasks", 1)
      if down then log("process %d reconnected to %s", mp.getpid(), conn:address()) down = false end
      if not r then return end
      local pool, tid, att = string.match(r[2], "^(%S+) (%S+) (%d+)$")
      if not pool then return end
      local base = C.prefix .. "pool:" .. pool .. ":"
      local payload = conn:call("EVAL", S.CLAIM, 3, base .. "state", base .. "data", C.prefix .. "worker:" .. W.wid,
                                tid, att, W.wid, lease)
      if payload then
        local rok, re = pcall(run_task, conn, key, pool, tid, att, payload)
        if not rok then   -- never leave a claimed task without an answer
          log("task %s of pool %s: %s", tid, pool, msg_of(re))
          local m = C.seal(key, "result " .. pool .. " " .. tid, true, {n = 1}, {remote_error(re, "")})
          deliver(conn, base, pool, tid, att, m)
        end
      end
    end)
    if ok then pause = 0.1 else
      if not down then log("process %d: %s; reconnecting", mp.getpid(), msg_of(e)) end
      down = true
      mp.sleep(pause)
      pause = math.min(pause * 2, 2)
    end
  end
end

-- The node ----------------------------------------------------------------------------------

-- A worker process died of SIGALRM: its per-item timer fired. Deliver, in its place, the
-- message that makes the host fail that item with TimeoutError (or retry it).
local function node_timed_out(conn, key, p)
  local wid = W.name .. ":" .. p.pid
  local rk = C.prefix .. "running:" .. wid
  local rec = conn:call("GET", rk)
  if not rec then return end
  conn:call("DEL", rk)
  local pool, tid, att, at, tmo = string.match(rec, "^(%S+) (%S+) (%d+) (%d+) (%d+)$")
  if not pool then return end
  log("process %s (pid %d) ran item %s of task %s (pool %s) past its timeout of %g s; stopped", p.name, p.pid, at, tid, pool, tmo / 1000)
  local base = C.prefix .. "pool:" .. pool .. ":"
  local m = C.seal(key, "result " .. pool .. " " .. tid, true, {n = 0}, nil,
                   {at = tonumber(at), pid = p.pid, timeout = tonumber(tmo) / 1000, worker = wid})
  deliver(conn, base, pool, tid, att, m, wid)
end

local function spawn(o, i)
  local p = mp.Process{target = process_main, args = {o}, name = W.name .. "-" .. i}
  p:start()
  native.setpgid(p.pid)   -- also here, so the group exists before any order to stop it
  return p
end

-- Waits up to `wait` seconds for an order on this node's cancel list (`wid pool task attempt
-- sealed`, pushed by a host's CANCEL script). An authenticated order for a process of this node
-- stops its process group (SIGSTOP), checks in Redis that the order still holds (the task did
-- not finish meanwhile; STOP clears it), then kills the group and starts another process, or
-- lets it go on. Returns the index of the process replaced, if any.
local function take_cancel(conn, key, procs, wait, o)
  local r = conn:bcall(wait, "BLPOP", C.prefix .. "cancel:" .. W.name, wait)
  if not r then return end
  local wid, pool, tid, att, sealed = string.match(r[2], "^(%S+) (%S+) (%S+) (%d+) (.*)$")
  if not wid or not pcall(C.open, key, "cancel " .. pool .. " " .. tid .. " " .. att, sealed) then
    log("refused an order to cancel (its HMAC does not match)")
    return
  end
  for i, p in ipairs(procs) do
    if W.name .. ":" .. p.pid == wid and p:is_alive() then
      local base = C.prefix .. "pool:" .. pool .. ":"
      native.killpg(p.pid, 19)   -- SIGSTOP: it cannot deliver nor take another task meanwhile
      local ok, stop = pcall(conn.call, conn, "EVAL", S.STOP, 2, base .. "state", base .. "data", tid, att, wid)
      if not (ok and stop == 1) then native.killpg(p.pid, 18) return end   -- SIGCONT: it finished first
      native.killpg(p.pid, 9)
      p:join()
      log("process %s (pid %d) stopped: the host cancelled task %s (pool %s); starting another", p.name, p.pid, tid, pool)
      procs[i] = spawn(o, i)
      pcall(conn.call, conn, "SET", C.prefix .. "worker:" .. W.name .. ":" .. procs[i].pid, "1", "PX", math.floor(o.lease * 1000))
      return i
    end
  end
end

function W.main(...)
  local ok, o = pcall(parse, {...})
  if not ok then io.stderr:write("luamp worker: ", msg_of(o), "\n", USAGE, "\n") return 2 end
  if o.help then print(USAGE) return 0 end
  W.name = o.name
  local kok, ke = pcall(C.key, nil, "luamp worker")
  if not kok then io.stderr:write("luamp worker: ", msg_of(ke), "\n") return 2 end
  for _, m in ipairs(o.requires) do require(m) end
  native.sigterm_install()
  native.unsetenv("LUAMP_ADDRESS")
  local conn = native.connect(o.address, math.max(5, o.lease), 2)
  while true do
    local pok, e = pcall(conn.call, conn, "PING")
    if pok then break end
    log("%s; retrying", msg_of(e))
    if type(e) == "table" and e.kind == "ConnectionError" and e.message:find("refused the connection") then return 1 end
    for _ = 1, 10 do if native.sigterm() then return 0 end mp.sleep(0.1) end
  end
  local procs = {}
  for i = 1, o.processes do procs[i] = spawn(o, i) end
  local lease = math.floor(o.lease * 1000)
  local nodekey = C.prefix .. "node:" .. W.name
  local function beat()
    for _, p in ipairs(procs) do conn:call("SET", C.prefix .. "worker:" .. W.name .. ":" .. p.pid, "1", "PX", lease) end
    conn:call("SET", nodekey, o.processes, "PX", 2 * lease)
  end
  local bok, be = pcall(beat)
  print(string.format("luamp worker %s ready: %d processes, %s", W.name, o.processes, conn:address()))
  io.stdout:flush()
  local down = not bok
  if down then log("%s; reconnecting", msg_of(be)) end
  while not native.sigterm() do
    for i, p in ipairs(procs) do
      if not p:is_alive() then
        native.killpg(p.pid, 9)   -- what its task started (os.execute's shell and command) goes too
        p:join()
        if p.exitcode == -14 then   -- SIGALRM
          local tok, te = pcall(node_timed_out, conn, ke, p)
          if not tok then log("could not report the timeout of process %s: %s", p.name, msg_of(te)) end
        else
          log("process %s (pid %d) ended (exit code %s); starting another", p.name, p.pid, tostring(p.exitcode))
        end
        procs[i] = spawn(o, i)
      end
    end
    -- Whichever call first meets Redis gone (a beat, or the wait for cancel orders) says so,
    -- and the first to reach it again says it is back: one line each way.
    local function reached(ok, e)
      if ok and down then log("reconnected to %s", conn:address()) down = false
      elseif not ok and not down then log("%s; reconnecting", msg_of(e)) down = true end
      return ok
    end
    reached(pcall(beat))
    -- until the next beat: wait for cancel orders (in slices, so SIGTERM is noticed)
    local until_t = monotonic() + o.lease / 4
    while not native.sigterm() do
      local left = until_t - monotonic()
      if left <= 0.005 then break end
      if not reached(pcall(take_cancel, conn, ke, procs, math.min(0.25, left), o)) then mp.sleep(math.min(0.05, left)) end
    end
  end
  -- SIGTERM: each process finishes the task it runs (bounded by --grace), then the node leaves.
  log("stopping (SIGTERM): letting running tasks finish (at most %g s)", o.grace)
  for _, p in ipairs(procs) do p:terminate() end
  local deadline = monotonic() + o.grace
  for _, p in ipairs(procs) do
    while p:is_alive() and monotonic() < deadline do pcall(beat) p:join(math.min(o.lease / 4, math.max(0, deadline - monotonic()))) end
    if p:is_alive() then p:kill() end
    p:join()
  end
  pcall(function()
    for _, p in ipairs(procs) do conn:call("DEL", C.prefix .. "worker:" .. W.name .. ":" .. p.pid) end
    conn:call("DEL", nodekey)
  end)
  log("stopped")
  return 0
end

return W
"""#
}
