// The Redis scripts (run atomically inside Redis) that make a task's life exactly-once: submit,
// claim under a worker's lease, deliver only by the attempt that holds it, reap lost leases.
//
// Keys of pool P (prefix `luamp:pool:P:`): `state` (hash: task → `q<attempt>` queued,
// `r<attempt> <worker>` running, `a<attempt> <worker>` refused by a worker with another key;
// `_ttl`: the pool's keys_ttl in ms, which keeps the hash alive while the pool lives),
// `data` (hash: task → sealed payload), `res` (list of `task sealed-result`), `init` (the sealed
// initializer). `luamp:tasks` is the one list every worker node takes `P task attempt` from;
// `luamp:worker:W` exists while worker process W's node renews its lease.

enum ClusterSource {
    /// Receives nothing; returns the table of script texts.
    static let scripts = #"""
local S = {}

-- KEYS state, data, tasks. ARGV pool, ttl ms, the host's notification list, then (task,
-- attempt, payload) triples.
S.SUBMIT = [[
redis.call('HSET', KEYS[1], '_ttl', ARGV[2], '_note', ARGV[3])
for i = 4, #ARGV, 3 do
  redis.call('HSET', KEYS[1], ARGV[i], 'q' .. ARGV[i + 1])
  redis.call('HSET', KEYS[2], ARGV[i], ARGV[i + 2])
  redis.call('RPUSH', KEYS[3], ARGV[1] .. ' ' .. ARGV[i] .. ' ' .. ARGV[i + 1])
end
redis.call('PEXPIRE', KEYS[1], ARGV[2])
redis.call('PEXPIRE', KEYS[2], ARGV[2])
-- the shared list outlives every pool's state, no longer (stale entries expire with it)
local t = redis.call('PTTL', KEYS[3])
if t >= 0 and t < tonumber(ARGV[2]) then redis.call('PEXPIRE', KEYS[3], ARGV[2]) end
return 1
]]

-- KEYS state, data, worker. ARGV task, attempt, worker, lease ms. The payload, or false when
-- the task is not queued at that attempt any more (done, reassigned, its pool gone).
S.CLAIM = [[
if redis.call('HGET', KEYS[1], ARGV[1]) ~= 'q' .. ARGV[2] then return false end
redis.call('HSET', KEYS[1], ARGV[1], 'r' .. ARGV[2] .. ' ' .. ARGV[3])
redis.call('SET', KEYS[3], '1', 'PX', ARGV[4])
return redis.call('HGET', KEYS[2], ARGV[1])
]]

-- KEYS state, data, res. ARGV task, attempt, worker, message, ttl ms, pool. 1 when delivered;
-- 0 when this attempt lost its lease meanwhile (the late result is dropped: exactly once); -1
-- when the host cancelled it (the mark is cleared, so the node does not stop this worker for
-- it). The result goes to the host process's results list (`_note`, where its connection waits
-- in BLMPOP) as `pool task message`.
S.DELIVER = [[
local st = redis.call('HGET', KEYS[1], ARGV[1])
if st ~= 'r' .. ARGV[2] .. ' ' .. ARGV[3] then
  if st ~= 'k' .. ARGV[2] .. ' ' .. ARGV[3] then return 0 end
  redis.call('HDEL', KEYS[1], ARGV[1])
  redis.call('HDEL', KEYS[2], ARGV[1])
  return -1
end
redis.call('HDEL', KEYS[1], ARGV[1])
redis.call('HDEL', KEYS[2], ARGV[1])
-- the results live as long as the pool's state (its keys_ttl, renewed while the host pumps)
local ttl = tonumber(redis.call('HGET', KEYS[1], '_ttl')) or tonumber(ARGV[5])
local list = redis.call('HGET', KEYS[1], '_note')
redis.call('RPUSH', list, ARGV[6] .. ' ' .. ARGV[1] .. ' ' .. ARGV[4])
redis.call('PEXPIRE', list, ttl)
return 1
]]

-- KEYS state, data. ARGV pool, force (0/1), the nodes' cancel list prefix, ttl ms, then (task,
-- attempt, sealed order) triples. Without force: 0, changing nothing, when one of the tasks is
-- not queued any more (it runs or finished); else they are removed (never claimed): 1. With
-- force: tasks running at that attempt are marked `k<attempt> <worker>` (a late result is
-- ignored) and the sealed order goes to the list of the worker's node; the others are removed.
-- Returns 1 + the number of workers told to stop.
S.CANCEL = [[
if ARGV[2] ~= '1' then
  for i = 5, #ARGV, 3 do
    if redis.call('HGET', KEYS[1], ARGV[i]) ~= 'q' .. ARGV[i + 1] then return 0 end
  end
end
local n = 1
for i = 5, #ARGV, 3 do
  local st = redis.call('HGET', KEYS[1], ARGV[i])
  local att, wid
  if st then att, wid = string.match(st, '^r(%d+) (.*)$') end
  if att == ARGV[i + 1] then
    local list = ARGV[3] .. string.match(wid, '^(.*):%d+$')
    redis.call('HSET', KEYS[1], ARGV[i], 'k' .. att .. ' ' .. wid)
    redis.call('RPUSH', list, wid .. ' ' .. ARGV[1] .. ' ' .. ARGV[i] .. ' ' .. att .. ' ' .. ARGV[i + 2])
    redis.call('PEXPIRE', list, ARGV[4])
    n = n + 1
  elseif st then
    redis.call('HDEL', KEYS[1], ARGV[i])
    redis.call('HDEL', KEYS[2], ARGV[i])
  end
end
return n
]]

-- KEYS state, data. ARGV task, attempt, worker: the node, with that worker stopped (SIGSTOP),
-- checks the host's cancel order still holds (the worker did not deliver meanwhile) and clears
-- it: 1 then (the node kills the worker), else 0.
S.STOP = [[
if redis.call('HGET', KEYS[1], ARGV[1]) ~= 'k' .. ARGV[2] .. ' ' .. ARGV[3] then return 0 end
redis.call('HDEL', KEYS[1], ARGV[1])
redis.call('HDEL', KEYS[2], ARGV[1])
return 1
]]

-- KEYS state. ARGV task, attempt, worker: a worker whose key does not authenticate the task.
S.REFUSE = [[
if redis.call('HGET', KEYS[1], ARGV[1]) ~= 'r' .. ARGV[2] .. ' ' .. ARGV[3] then return 0 end
redis.call('HSET', KEYS[1], ARGV[1], 'a' .. ARGV[2] .. ' ' .. ARGV[3])
return 1
]]

-- KEYS state, data, tasks, res, init. ARGV pool, attempts, worker key prefix, ttl ms.
-- Requeues tasks whose worker lost its lease (or refused them) while attempts remain; returns
-- {task, 'retry'|'lost'|'refused', worker, attempt} rows, and 'gone' first when the state is gone.
S.REAP = [[
local out = {}
if redis.call('EXISTS', KEYS[1]) == 0 then out[1] = 'gone' end
local all = redis.call('HGETALL', KEYS[1])
local qlen = redis.call('LLEN', KEYS[3])
for i = 1, #all, 2 do
  local id, st = all[i], all[i + 1]
  local c = string.sub(st, 1, 1)
  if string.sub(id, 1, 1) == '_' or c == 'k' then
    -- the pool's own fields; a cancelled task its node has not stopped yet
  elseif c == 'r' or c == 'a' then
    local att, wid = string.match(st, '^.(%d+) (.*)$')
    att = tonumber(att)
    if c == 'a' or redis.call('EXISTS', ARGV[3] .. wid) == 0 then
      if att < tonumber(ARGV[2]) then
        redis.call('HSET', KEYS[1], id, 'q' .. (att + 1))
        redis.call('RPUSH', KEYS[3], ARGV[1] .. ' ' .. id .. ' ' .. (att + 1))
        out[#out + 1] = id .. ' retry ' .. att .. ' ' .. wid
      else
        redis.call('HDEL', KEYS[1], id)
        redis.call('HDEL', KEYS[2], id)
        out[#out + 1] = id .. (c == 'a' and ' refused ' or ' lost ') .. att .. ' ' .. wid
      end
    end
  elseif qlen == 0 then
    -- queued, yet no worker can see it: taken by a worker that died before its claim
    redis.call('RPUSH', KEYS[3], ARGV[1] .. ' ' .. id .. ' ' .. string.sub(st, 2))
  end
end
for i = 1, 5 do if i ~= 3 then redis.call('PEXPIRE', KEYS[i], ARGV[4]) end end
return out
]]

-- KEYS state, data, tasks, res, init. ARGV pool. Removes every key of the pool and its entries
-- from the task list (queued ones, and duplicates REAP may have pushed).
S.CLEAN = [[
local mine = ARGV[1] .. ' '
local n = #mine
for _, e in ipairs(redis.call('LRANGE', KEYS[3], 0, -1)) do
  if string.sub(e, 1, n) == mine then redis.call('LREM', KEYS[3], 0, e) end
end
redis.call('DEL', KEYS[1], KEYS[2], KEYS[4], KEYS[5])
return 1
]]

-- No keys. ARGV prefix. The number of worker processes of the nodes alive now.
S.NODES = [[
local n, cursor = 0, '0'
repeat
  local r = redis.call('SCAN', cursor, 'MATCH', ARGV[1] .. '*', 'COUNT', 1000)
  cursor = r[1]
  for _, k in ipairs(r[2]) do n = n + (tonumber(redis.call('GET', k)) or 0) end
until cursor == '0'
return n
]]

return S
"""#
}
