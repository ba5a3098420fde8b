#!/usr/bin/env python3
"""The cluster on one machine: a real redis-server (started here on a free loopback port), real
`luamp worker` nodes, host scripts through the built binary. API rows, kill -9 of a node mid-map,
a node stalled past its lease (late result ignored), wrong keys (no bytecode loaded), Redis AUTH,
Redis restarted mid-run, the host killed (its keys expire), SIGTERM, LUAMP_ADDRESS."""
import hmac, hashlib, os, signal, subprocess, sys, tempfile, time

from harness import LUAMP, ROOT, test, finish, alive
from cluster_harness import Redis, Node, run_host, slow_map_script, started, wait_for

TMP = tempfile.mkdtemp(prefix="luamp-cluster-")
HERE = os.path.dirname(os.path.abspath(__file__))


def script(name, text):
    path = os.path.join(TMP, name)
    with open(path, "w") as f:
        f.write(text)
    return path


redis = Redis()
URL = redis.url()


def pool_keys():
    return [k for k in redis.client().keys() if k.startswith("luamp:pool:") or k == "luamp:tasks"]


@test
def every_api_row_against_two_nodes():
    a, b = Node(URL, "api-a", processes=1), Node(URL, "api-b", processes=1)
    try:
        r = run_host(os.path.join(HERE, "cluster_api.lua"), URL, timeout=120)
        assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-3000:]
        assert "checks " in r.stdout, r.stdout
        # nothing of the pools or queues is left in Redis once they are closed
        wait_for(lambda: pool_keys() == [], 5, f"no pool keys left (have {pool_keys()})")
        left = [k for k in redis.client().keys() if k.startswith("luamp:queue:")]
        assert left == [], left
    finally:
        a.stop(); b.stop()


@test
def a_pool_without_a_key_refuses_to_start_and_says_what_to_set():
    p = script("nokey.lua", 'local ok, e = pcall(mp.Pool, {address = arg[1]}) print(e.kind, e.message)')
    env = dict(os.environ)
    env.pop("LUAMP_AUTHKEY", None)
    r = subprocess.run([LUAMP, p, URL], capture_output=True, text=True, env=env, timeout=30)
    assert "AuthenticationError" in r.stdout and "LUAMP_AUTHKEY" in r.stdout, r.stdout + r.stderr
    r = subprocess.run([LUAMP, "worker", URL], capture_output=True, text=True, env=env, timeout=30)
    assert r.returncode == 2 and "LUAMP_AUTHKEY" in r.stderr, r.stderr


SLOW_MAP = slow_map_script(8, 0.4)


def node_children(node):
    from harness import children
    return set(children(node.pid))


def slow_map_on_two_nodes(name):
    """Nodes NAME-a and NAME-b (one process each, 1 s leases) and a host running SLOW_MAP, once a
    task runs on node a. Returns (a, b, log, a's worker pids, the host's Popen)."""
    a, b = Node(URL, name + "-a", processes=1, lease=1), Node(URL, name + "-b", processes=1, lease=1)
    log = os.path.join(TMP, name + ".log")
    try:
        kids_a = node_children(a)
        host = subprocess.Popen([LUAMP, script(name + ".lua", SLOW_MAP), log], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True, env=dict(os.environ, LUAMP_ADDRESS=URL, LUAMP_AUTHKEY="secret"))
        wait_for(lambda: any(pid in kids_a for pid, _ in started(log)), 30, "a task running on node a")
    except BaseException:
        a.stop(); b.stop()
        raise
    return a, b, log, kids_a, host


@test
def a_node_killed_mid_map_loses_nothing_and_duplicates_nothing():
    a, b, log, kids_a, host = slow_map_on_two_nodes("kill")
    try:
        os.killpg(a.pid, signal.SIGKILL)
        out, err = host.communicate(timeout=60)
        assert host.returncode == 0, err
        rows = [tuple(map(int, l.split())) for l in out.split("\n") if l.strip()]
        assert [i for i, _ in rows] == list(range(1, 9)), out
        # the task node a was running was finished by node b
        killed = [i for pid, i in started(log) if pid in kids_a]
        kids_b = node_children(b)
        for i in killed:
            assert rows[i - 1][1] in kids_b, (killed, rows)
        assert "lost its lease" in err, err
    finally:
        a.stop(); b.stop()


@test
def a_node_stalled_past_its_lease_has_its_late_result_ignored():
    a, b, log, kids_a, host = slow_map_on_two_nodes("stall")
    try:
        a.signal_all(signal.SIGSTOP)    # no heartbeats: the lease expires, node b takes the task
        out, err = host.communicate(timeout=60)
        a.signal_all(signal.SIGCONT)    # node a wakes, finishes, and tries to deliver
        assert host.returncode == 0, err
        rows = [tuple(map(int, l.split())) for l in out.split("\n") if l.strip()]
        assert [i for i, _ in rows] == list(range(1, 9)), out
        kids_b = node_children(b)
        stalled = [i for pid, i in started(log) if pid in kids_a]
        assert all(rows[i - 1][1] in kids_b for i in stalled), (stalled, rows)
        wait_for(lambda: "late result" in a.log(), 20, "node a's late result to be refused")
    finally:
        a.signal_all(signal.SIGCONT)
        a.stop(); b.stop()


MARK_MODULE = r"""
-- loading this module leaves a mark: the pid of every process that loaded it
local f = io.open(os.getenv("MARK_FILE"), "a") f:write(mp.getpid(), "\n") f:close()
return {value = function() return "marked" end}
"""
WRONG_KEY = r"""
local markmod = require "markmod"
local pool = mp.Pool{lost_attempts = 1}
local ok, e = pcall(pool.apply, pool, function() return markmod.value() end)
print(ok, type(e) == "table" and e.kind or e, type(e) == "table" and e.message or "")
pool:close() pool:join()
"""


def marks(path):
    try:
        with open(path) as f:
            return [int(l) for l in f if l.strip()]
    except FileNotFoundError:
        return []


@test
def a_wrong_key_is_refused_before_any_bytecode_or_module_loads():
    mods = os.path.join(TMP, "mods")
    os.makedirs(mods, exist_ok=True)
    with open(os.path.join(mods, "markmod.lua"), "w") as f:
        f.write(MARK_MODULE)
    mark = os.path.join(TMP, "mark.log")
    env = {"LUA_PATH": mods + "/?.lua;;", "MARK_FILE": mark}
    p = script("wrongkey.lua", WRONG_KEY)
    # a node with another key: the task is refused and the host gets AuthenticationError
    bad = Node(URL, "badkey", processes=1, key="not-the-secret", env=env)
    try:
        r = run_host(p, URL, env=env, timeout=60)
        assert r.stdout.startswith("false\tAuthenticationError"), r.stdout + r.stderr
        assert "refused task" in bad.log(), bad.log()
        host_marks = marks(mark)
        assert len(host_marks) == 1, host_marks          # only the host loaded markmod
    finally:
        bad.stop()
    # the control: with the right key the worker does load it (so the check above could fail)
    good = Node(URL, "goodkey", processes=1, env=env)
    try:
        r = run_host(p, URL, env=env, timeout=60)
        assert r.stdout.startswith("true\tmarked"), r.stdout + r.stderr
        assert len(marks(mark)) == 3, marks(mark)         # two hosts, one worker
    finally:
        good.stop()


@test
def forged_and_foreign_queue_messages_are_refused_and_the_mac_is_standard_hmac_sha256():
    put = script("put.lua", 'local q = mp.Queue{address = arg[1], name = "mac-q"} q:put(string.rep("z", 100003)) q:put({x = 1, s = "hello"})')
    r = subprocess.run([LUAMP, put, URL], capture_output=True, text=True, env=dict(os.environ, LUAMP_AUTHKEY="secret"), timeout=30)
    assert r.returncode == 0, r.stderr
    c = redis.client()
    big = c.call("LPOP", "luamp:queue:mac-q")   # many SHA-256 blocks and an odd tail
    assert big[1:33] == hmac.new(b"secret", b"queue mac-q\x00" + big[33:], hashlib.sha256).digest()
    msg = c.call("LPOP", "luamp:queue:mac-q")
    assert msg[0] == 0xC1, msg[:4]
    want = hmac.new(b"secret", b"queue mac-q\x00" + msg[33:], hashlib.sha256).digest()
    assert msg[1:33] == want, "the MAC is not HMAC-SHA256(key, purpose || 0 || body)"
    # a flipped body bit, the same message under another queue name, and a message under another key
    forged = msg[:40] + bytes([msg[40] ^ 1]) + msg[41:]
    c.call("RPUSH", "luamp:queue:mac-q", forged)
    c.call("RPUSH", "luamp:queue:other-q", msg)
    get = script("get.lua", 'local q = mp.Queue{address = arg[1], name = arg[2]} local ok, e = pcall(q.get, q, true, 5) print(ok, e.kind)')
    for name in ("mac-q", "other-q"):
        r = subprocess.run([LUAMP, get, URL, name], capture_output=True, text=True, env=dict(os.environ, LUAMP_AUTHKEY="secret"), timeout=30)
        assert r.stdout.strip() == "false\tAuthenticationError", (name, r.stdout, r.stderr)
    wait_for(lambda: pool_keys() == [], 5, f"no pool keys (have {pool_keys()})")


@test
def redis_auth_in_the_url():
    secured = Redis(extra=["--requirepass", "pw0", "--user", "alice", "on", ">pw1", "~*", "&*", "+@all"])
    try:
        n = Node(secured.url("alice:pw1@"), "auth-node", processes=1)
        try:
            p = script("auth.lua", 'local p = mp.Pool{address = arg[1]} print(p:apply(function() return "authed" end)) p:close() p:join()')
            r = run_host(p, secured.url("alice:pw1@"), args=[secured.url("alice:pw1@")])
            assert r.stdout.strip() == "authed", r.stdout + r.stderr
            r = run_host(p, secured.url(":pw0@"), args=[secured.url(":pw0@")])
            assert r.stdout.strip() == "authed", r.stdout + r.stderr
            r = run_host(p, secured.url("alice:wrong@"), args=[secured.url("alice:wrong@")])
            assert r.returncode == 1 and "ConnectionError" in r.stderr and "refused the connection" in r.stderr, r.stderr
            assert "wrong" not in r.stderr, "the password must not be printed"
        finally:
            n.stop()
    finally:
        secured.close()


RESTART = r"""
local pool = mp.Pool{redis_retry = 0.5, redis_timeout = 2}
print("running") io.stdout:flush()
local seen_error, recovered = nil, false
local deadline = mp.monotonic() + 60
while mp.monotonic() < deadline do
  local ok, e = pcall(pool.apply, pool, function(x) return x + 1 end, {1})
  if not ok then
    if not seen_error then seen_error = e.kind print(e.kind, e.message) io.stdout:flush() end
  elseif seen_error then recovered = true break end
end
print("recovered", recovered)
pool:terminate()
"""


@test
def redis_restarted_mid_run_raises_connection_error_then_works_again():
    node = Node(URL, "restart-node", processes=1)
    try:
        host = subprocess.Popen([LUAMP, script("restart.lua", RESTART)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True, env=dict(os.environ, LUAMP_ADDRESS=URL, LUAMP_AUTHKEY="secret"))
        assert host.stdout.readline().strip() == "running"
        redis.stop()
        line = host.stdout.readline()
        assert line.startswith("ConnectionError") and f"127.0.0.1:{redis.port}" in line, line
        redis.start()
        out, err = host.communicate(timeout=60)
        assert "recovered\ttrue" in out, out + err
        try:
            wait_for(lambda: "reconnected" in node.log(), 20, "the node to say it reconnected")
        except AssertionError as e:
            raise AssertionError(f"{e}; its log: {node.log()!r}") from None
    finally:
        node.stop()


HOST_KILLED = r"""
local pool = mp.Pool{keys_ttl = 2}
for i = 1, 50 do pool:apply_async(function() mp.sleep(0.05) return i end) end
print("submitted") io.stdout:flush()
mp.sleep(60)
"""


@test
def a_host_killed_leaves_keys_that_expire_and_workers_go_on():
    node = Node(URL, "hostkill-node", processes=1)
    try:
        host = subprocess.Popen([LUAMP, script("hostkill.lua", HOST_KILLED)], stdout=subprocess.PIPE, text=True,
                                env=dict(os.environ, LUAMP_ADDRESS=URL, LUAMP_AUTHKEY="secret"))
        assert host.stdout.readline().strip() == "submitted"
        host.kill(); host.wait()
        assert pool_keys() != []
        wait_for(lambda: [k for k in pool_keys() if k != "luamp:tasks"] == [], 15, f"the dead host's keys to expire ({pool_keys()})")
        p = script("after.lua", 'local p = mp.Pool() print(p:apply(function() return "still serving" end)) p:close() p:join()')
        r = run_host(p, URL, timeout=60)
        assert r.stdout.strip() == "still serving", r.stdout + r.stderr
        wait_for(lambda: pool_keys() == [], 30, "stale task entries drained")
    finally:
        node.stop()


SIGTERM_TASK = r"""
local pool = mp.Pool()
local f = pool:apply_async(function() local g = io.open(arg_file, "w") g:write("started") g:close() mp.sleep(1) return "finished" end)
print(f:get(60))
pool:close() pool:join()
"""


@test
def sigterm_lets_the_running_task_finish_then_the_node_leaves():
    node = Node(URL, "term-node", processes=1, lease=1)
    flag = os.path.join(TMP, "term.flag")
    try:
        p = script("term.lua", f"local arg_file = {flag!r}\n" + SIGTERM_TASK)
        host = subprocess.Popen([LUAMP, p], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                env=dict(os.environ, LUAMP_ADDRESS=URL, LUAMP_AUTHKEY="secret"))
        wait_for(lambda: os.path.exists(flag), 30, "the task to start")
        os.kill(node.pid, signal.SIGTERM)
        assert node.proc.wait(timeout=30) == 0, node.log()
        out, err = host.communicate(timeout=30)
        assert out.strip() == "finished", out + err
        assert not [k for k in redis.client().keys() if "term-node" in k], redis.client().keys()
    finally:
        node.stop()


LOCAL_OR_REMOTE = r"""
local pool = mp.Pool(2)
local r = pool:map(function(x) return x * x end, {1, 2, 3, 4})
print(table.concat(r, " "))
print(pool:apply(function() return mp.getpid() end))
pool:close() pool:join()
"""


@test
def luamp_address_turns_an_unchanged_local_script_distributed():
    node = Node(URL, "env-node", processes=1)
    try:
        p = script("unchanged.lua", LOCAL_OR_REMOTE)
        env = dict(os.environ, LUAMP_AUTHKEY="secret")
        env.pop("LUAMP_ADDRESS", None)
        local = subprocess.run([LUAMP, p], capture_output=True, text=True, env=env, timeout=30)
        remote = run_host(p, URL)
        assert local.returncode == 0 and remote.returncode == 0, local.stderr + remote.stderr
        assert local.stdout.split("\n")[0] == remote.stdout.split("\n")[0] == "1 4 9 16"
        assert int(remote.stdout.split("\n")[1]) in node_children(node), remote.stdout
        assert int(local.stdout.split("\n")[1]) not in node_children(node)
        ex = run_host(os.path.join(ROOT, "examples", "cluster.lua"), URL)
        assert ex.stdout == "10, 40, 90, 160, 250\n42\tran in a worker\nresize\n", ex.stdout + ex.stderr
    finally:
        node.stop()


@test
def remote_results_under_mp_wait_and_as_completed_options_and_per_item_timeouts():
    node = Node(URL, "wait-node", processes=3)
    d = tempfile.mkdtemp(dir=TMP)
    try:
        kids = node_children(node)
        r = run_host(os.path.join(HERE, "cluster_wait.lua"), URL, args=[d], timeout=120)
        assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-3000:] + node.log()[-2000:]
        assert "checks " in r.stdout, r.stdout
        log = node.log()
        assert "past its timeout of 0.5 s; stopped" in log, log
        # the node replaced each process its timer stopped: still 3 live workers
        wait_for(lambda: len(node_children(node)) == 3, 10, "3 worker processes again")
        assert node_children(node) != kids
        wait_for(lambda: [k for k in redis.client().keys() if k.startswith("luamp:running:")] == [], 5, "no running: keys left")
    finally:
        node.stop()


FORCE_CANCEL = r"""
-- arg[1]: a scratch directory. A task blocked in C (os.execute's shell exec's sleep 30) on the
-- node's only process; a second task queued behind it in Redis.
local dir = arg[1]
local pool = mp.Pool{}
local function wait_file(p) while not io.open(p) do mp.sleep(0.01) end end
local r = pool:apply_async(function(d)
  local f = io.open(d .. "/worker", "w") f:write(mp.getpid()) f:close()
  os.execute("sh -c 'echo $$ > " .. d .. "/sleep; exec sleep 30'")
  return "slept"
end, {dir})
wait_file(dir .. "/sleep")
local queued = pool:apply_async(function(d) io.open(d .. "/queued-ran", "w"):close() return 1 end, {dir})
print("queued cancel", queued:cancel(), queued:cancelled())
print("running", r:running(), "plain cancel", r:cancel())
local cbs = 0
r:add_done_callback(function(f) cbs = cbs + 1 end)
print("force cancel", r:cancel{force = true}, r:cancelled(), r:done())
local ok, e = pcall(r.get, r)
print("get", ok, e.kind)
print("again", r:cancel{force = true}, select(2, pcall(r.get, r)).kind, r:exception().kind)
print("next", pool:apply(function() return mp.getpid() end))
print("callbacks", cbs)
pool:close() pool:join()
"""


@test
def force_cancel_stops_the_remote_worker_and_its_children_and_the_node_goes_on():
    node = Node(URL, "cancel-node", processes=1)
    d = tempfile.mkdtemp(dir=TMP)
    try:
        r = run_host(script("force_cancel.lua", FORCE_CANCEL), URL, args=[d], timeout=60)
        assert r.returncode == 0, r.stdout + r.stderr + node.log()
        lines = r.stdout.split("\n")
        assert lines[0] == "queued cancel\ttrue\ttrue", r.stdout
        assert lines[1] == "running\ttrue\tplain cancel\tfalse", r.stdout
        assert lines[2] == "force cancel\ttrue\ttrue\ttrue", r.stdout
        assert lines[3] == "get\tfalse\tCancelledError", r.stdout
        assert lines[4] == "again\tfalse\tCancelledError\tCancelledError", r.stdout
        assert lines[6] == "callbacks\t1", r.stdout
        worker, sleeper = (int(open(os.path.join(d, f)).read()) for f in ("worker", "sleep"))
        # the worker process and the command its task started are gone; another serves the next task
        wait_for(lambda: not os.path.exists(f"/proc/{worker}") and not os.path.exists(f"/proc/{sleeper}"), 10,
                 "the cancelled worker and its sleep to be gone")
        nxt = int(lines[5].split("\t")[1])
        assert nxt != worker and nxt in node_children(node), (nxt, worker)
        assert not os.path.exists(os.path.join(d, "queued-ran"))    # cancelled before any worker took it
        assert "stopped: the host cancelled task" in node.log(), node.log()
        wait_for(lambda: pool_keys() == [], 5, f"no pool keys left (have {pool_keys()})")
    finally:
        node.stop()


redis.close()
finish()
