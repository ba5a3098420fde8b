// Lua source of the remote pool's imap / imap_unordered iterators: lazy input fed a few tasks
// ahead of the loop, results given in input order or as they arrive. Part of the pool's chunk
// (`ClusterSource.pool`, ClusterSourcePool.swift): it uses that chunk's locals (options, job_new,
// add_task, finish_job).

extension ClusterSource {
    /// The iterators' part of `pool` (between its submitting and its AsyncResult methods).
    static let poolIterators = #"""
-- imap / imap_unordered: lazy input, at most `ahead` tasks beyond what the loop consumed.
local function imap(self, name, fn, iterable, chunksize, ordered)
  live(self, name)
  check_fn(fn, name)
  if type(iterable) ~= "table" and type(iterable) ~= "function" then
    terr("bad argument #3 to '" .. name .. "' (table or iterator function expected, got " .. type(iterable) .. ")", 2)
  end
  local opts
  chunksize, opts = options(name, chunksize)
  chunksize = chunksize or 1
  local job = job_new(self, "imap", 0, opts)
  local it = setmetatable({pool = self, job = job, fn = fn, src = iterable, pos = 0, next_out = 1,
                           ordered = ordered, chunksize = chunksize, taken = 0,
                           ahead = 3 * (self.cap or math.max(1, self:cluster_size()))}, I)
  it:feed()
  return it
end

function I:feed()
  local job, pool = self.job, self.pool
  while not job.sealed_input and (self.pos - self.taken) < self.ahead * self.chunksize do
    local items = {n = 0}
    while items.n < self.chunksize do
      local v
      if type(self.src) == "table" then
        if self.pos + items.n + 1 > (self.src.n or #self.src) then break end
        v = self.src[self.pos + items.n + 1]
      else
        v = self.src()
        if v == nil then break end
      end
      items.n = items.n + 1
      items[items.n] = v
    end
    if items.n == 0 then job.sealed_input = true break end
    add_task(pool, job, "map", self.fn, self.pos + 1, items)
    self.pos = self.pos + items.n
    job.n = self.pos
    job.results.n = self.pos
  end
  if job.sealed_input and job.finished == job.chunks and not job.done then finish_job(pool, job) end
  pool:flush()
end

function I:__call()
  local job, pool = self.job, self.pool
  if self.closed then return nil end
  while true do
    local i   -- the next item to give: in input order, or as they arrived
    if self.ordered then
      local k = self.next_out
      if k <= job.n and (job.results[k] ~= nil or job.errs[k] ~= nil or self:arrived(k)) then
        self.next_out = k + 1
        i = k
      end
    elseif #job.arrivals > 0 then
      i = table.remove(job.arrivals, 1)
    end
    if i then
      self.taken = self.taken + 1
      self:feed()
      if job.errs[i] ~= nil then return self:failed(i) end
      return job.results[i], i
    end
    if job.sealed_input and self.taken >= job.n then return nil end
    pool:pump(C.slice)
    pool:run_callbacks()
  end
end

-- A failed item: raised, or with errors = "return" given in its place (as the local imap does).
function I:failed(i)
  if self.job.errors == "return" then return self.job.errs[i], i end
  error(self.job.errs[i], 3)
end

function I:arrived(i)
  local s = self.seen
  if not s then s = {} self.seen = s end
  local a = self.job.arrivals
  while #a > 0 do s[table.remove(a)] = true end
  return s[i]
end

function I:close() self.closed = true; self.job.sealed_input = true end
I.__close = I.close
function I:__tostring()
  return string.format("<PoolIterator %s taken=%d>", self.ordered and "imap" or "imap_unordered", self.taken)
end

function P:imap(fn, iterable, chunksize) return imap(self, "imap", fn, iterable, chunksize, true) end
function P:imap_unordered(fn, iterable, chunksize) return imap(self, "imap_unordered", fn, iterable, chunksize, false) end


"""#
}
