-- orchestrate.lua: fans words out to worker processes; each worker calls the app's Swift
-- function host_checksum (registered by the orchestrator app, inherited by every fork).
local words = {...}
if #words == 0 then words = {"alpha", "beta", "gamma", "delta", "epsilon", "zeta"} end

local function work(word)
    return {word = word, sum = host_checksum(word), pid = mp.getpid()}
end

-- Three workers forked once; each task calls the Swift function in its worker.
local pool <close> = mp.Pool(3)
local results = pool:map(work, words)
pool:close()
pool:join()
local how = "a pool of 3 workers"

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
