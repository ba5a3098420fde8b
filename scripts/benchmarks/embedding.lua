-- embedding: the fork-server start mode as an app sees it, measured by the release
-- luamp-embed-harness (a Swift app with Dispatch threads), relayed as CASE SECONDS lines.
-- Python's counterpart (embedding.py) uses multiprocessing's "forkserver" start method, its
-- answer to the same problem (forking from a threaded process).
local luamp = assert(os.getenv("LUAMP"), "run through scripts/bench")
local harness = luamp:gsub("luamp$", "luamp-embed-harness")
if not io.open(harness) then
    assert(os.execute("swift build -c release --product luamp-embed-harness >/dev/null"))
end
local p = assert(io.popen(harness .. " bench"))
for line in p:lines() do print(line) end
assert(p:close(), "harness bench failed")
