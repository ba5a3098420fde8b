#!/usr/bin/env python3
"""Descriptors the host holds for its children (pidfds, status pipes, pool pipes) never reach a
sibling, however many there are: past the first 4096 the list grows instead of dropping them."""
import os, resource, subprocess, tempfile

from harness import LUAMP, test
import harness

# 2,100 unjoined (ended) processes hold a pidfd and a status pipe each in the host: 4,200 held
# descriptors, past the first 4,096. Then a pool, then a probe process that lists its own
# descriptors: it must have no more than a probe started before all that.
SCRIPT = r"""
local function fds()                 -- the calling process's descriptors, listed from /proc
  local n, ls = 0, io.popen("ls /proc/" .. mp.getpid() .. "/fd")
  for _ in ls:lines() do n = n + 1 end
  ls:close()
  return n - 1                       -- less the pipe popen reads from
end
local function probe()
  local q = mp.Queue()
  local p = mp.Process(function() q:put(fds()) end)
  p:start()
  local n = q:get(60)
  p:join()
  return n
end
local before = probe()
local ps = {}
for i = 1, 2100 do
  ps[i] = mp.Process(function() end)
  ps[i]:start()
end
local pool = mp.Pool(2)
local after = probe()
local worker = pool:apply(fds)       -- a worker started after all that, too
print("fds", before, after, worker)
pool:terminate()
for _, p in ipairs(ps) do p:join() end
"""


def with_fd_room():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = 9000
    if soft < want and (hard == resource.RLIM_INFINITY or hard >= want):
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))


@test
def children_never_inherit_the_hosts_descriptors_past_4096():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < 9000:
        print(f"skip: RLIMIT_NOFILE hard limit {hard} < 9000")
        return
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as f:
        f.write(SCRIPT)
    try:
        r = subprocess.run([LUAMP, f.name], capture_output=True, text=True, timeout=300,
                           preexec_fn=with_fd_room)
    finally:
        os.unlink(f.name)
    assert r.returncode == 0, r.stderr
    line = [l for l in r.stdout.splitlines() if l.startswith("fds")][0]
    before, after, worker = (int(x) for x in line.split("\t")[1:])
    assert after <= before + 1, f"a process started with 4,200 held descriptors has {after} open, {before} before"
    assert worker <= before + 4, f"a pool worker started then has {worker} open (a probe before: {before})"


harness.finish()
