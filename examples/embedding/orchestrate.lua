-- orchestrate.lua: fans words out to worker processes; each worker calls the app's Swift
-- function host_checksum (registered by the orchestrator app, inherited by every fork).
local words = {...}
if #words == 0 then words = {"alpha", "beta", "gamma", "delta", "epsilon", "zeta"} end

local function work(word)
    return {word = word, sum = host_checksum(word), pid = mp.getpid()}
end

-- With mp.Pool: three workers forked once, tasks sent to them.
local function with_pool()
    local pool <close> = mp.Pool(3)
    local results = pool:map(work, words)
    pool:close()
    pool:join()
    return results, "a pool of 3 workers"
end

-- Without pools (older luamp): one process per word, results back through files.
local function with_processes()
    local procs, files = {}, {}
    for i, word in ipairs(words) do
        files[i] = os.tmpname()
        procs[i] = mp.Process(function()
            local f = assert(io.open(files[i], "wb"))
            f:write(mp.dumps(work(word)))
            f:close()
        end)
        procs[i]:start()
    end
    local results = {}
    for i, p in ipairs(procs) do
        p:join()
        assert(p.exitcode == 0, "worker for " .. words[i] .. " failed: " .. tostring(p.error))
        local f = assert(io.open(files[i], "rb"))
        results[i] = mp.loads(f:read("a"))
        f:close()
        os.remove(files[i])
    end
    return results, "one process per word; mp.Pool not available"
end

local results, how = (mp.Pool and with_pool or with_processes)()
local pids = {}
for i, r in ipairs(results) do
    assert(r.word == words[i], "results out of order")
    assert(r.sum == host_checksum(r.word), "worker computed a different checksum")
    assert(r.pid ~= mp.getpid(), "work ran in the host, not a worker")
    pids[r.pid] = true
    print(string.format("%-10s %08x", r.word, r.sum))
end
local n = 0
for _ in pairs(pids) do n = n + 1 end
print(string.format("%d words checksummed by Swift in %d worker processes (%s)", #results, n, how))
return #results
