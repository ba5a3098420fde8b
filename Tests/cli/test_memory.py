"""Out of memory is Lua's memory error, never a crash (issue 11 item 7).

Each case runs luamp under an address-space limit (RLIMIT_AS, what `ulimit -v` sets). The script
builds its data, then *squeezes*: it allocates 1 MiB strings until that fails and frees FREE of
them, so the operation under test starts with about FREE MiB left whatever the limit and the
arena took. Several FREE values make allocation fail at different points of the operation.
Every run must end cleanly: status 0 with the operation's outcome printed (success, or an error
saying `not enough memory` caught by pcall) and the process still working afterwards — never a
signal, a Swift `Fatal error`, a Lua panic or a hang.
"""
import os, resource, shutil, subprocess, tempfile
from harness import LUAMP, ROOT, test, finish

TMP = tempfile.mkdtemp(prefix="luamp-memory-")
LIMIT_MIB = 512
ENV = dict(os.environ, SWIFT_BACKTRACE="enable=no", SQUEEZE=os.path.join(TMP, "squeeze_prelude.lua"))

# squeeze(left): fill memory, then free `left` MiB of it (the Lua scripts and the embedding
# harness load this file).
SQUEEZE = r"""
ballast = {}
function squeeze(left)
  collectgarbage()
  while true do
    local ok, s = pcall(string.rep, "x", 1 << 20)
    if not ok then break end
    ballast[#ballast + 1] = s
  end
  for _ = 1, math.min(left, #ballast) do ballast[#ballast] = nil end
  collectgarbage()
end
"""
squeeze_path = os.path.join(TMP, "squeeze_prelude.lua")
with open(squeeze_path, "w") as f:
    f.write(SQUEEZE)

SCRIPT = r"""
local case, n, free_mib = arg[1], tonumber(arg[2]), tonumber(arg[3])
local function floats(n) local t = {} for i = 1, n do t[i] = i + 0.5 end return t end
local function mixed(n) local t = {} for i = 1, n do t[i] = {i, "s" .. i} end return t end
dofile(os.getenv("SQUEEZE"))
local op, again
if case == "dumps" then
  local t = floats(n)
  op = function() return #mp.dumps(t) end
elseif case == "put" then
  local t, q = floats(n), mp.Queue()
  op = function() q:put(t); return #q:get() end
elseif case == "loads" then
  local s = mp.dumps(mixed(n)); collectgarbage()
  op = function() return #mp.loads(s) end
elseif case == "get" then
  local q = mp.Queue(); q:put(mixed(n)); collectgarbage()
  op = function() return #q:get() end
  again = function() q:put({1, 2}); return #q:get() end
elseif case == "worker_result" then    -- the worker runs out while encoding its result
  local pool = mp.Pool(1)
  op = function()
    return #pool:apply(function(n, left)
      local t = {} for i = 1, n do t[i] = i + 0.5 end
      squeeze(left)
      return t
    end, {n, free_mib})
  end
  again = function() return pool:apply(function() return 7 end) end
elseif case == "host_result" then      -- the host runs out while receiving it
  local pool = mp.Pool(1)
  assert(pool:apply(function() return 7 end) == 7)
  op = function() return #pool:apply(function(n) local t = {} for i = 1, n do t[i] = i + 0.5 end return t end, {n}) end
  again = function() return pool:apply(function() return 7 end) end
elseif case == "child" then            -- a Process runs out while sending
  local q = mp.Queue()
  op = function()
    local p = mp.Process(function() local t = {} for i = 1, n do t[i] = i + 0.5 end squeeze(free_mib); q:put(t) end)
    p:start(); p:join()
    if p.exitcode ~= 0 then error("child exit " .. p.exitcode .. ": " .. tostring(p.error), 0) end
    return #q:get()
  end
end
print("built"); io.stdout:flush()
if case ~= "worker_result" and case ~= "child" then squeeze(free_mib) end
local ok, r = pcall(op)
ballast = {}; collectgarbage()
print(ok and "op ok" or ("op failed: " .. tostring(r)))
if again then print("again", again()) end
print("alive", #mp.dumps({1, 2, 3}) > 0)
"""


def run(args, limit_mib=LIMIT_MIB, timeout=120):
    def limited():
        resource.setrlimit(resource.RLIMIT_AS, (limit_mib << 20, limit_mib << 20))
    return subprocess.run(args, preexec_fn=limited, capture_output=True, text=True, env=ENV, timeout=timeout)


path = os.path.join(TMP, "squeeze.lua")
with open(path, "w") as f:
    f.write(SCRIPT)


def clean_run(args, what, alive):
    """Runs args; it must end cleanly: status 0, no trap or Lua panic, `built` first and `alive`
    last. Returns its stdout lines and a description for assertions."""
    r = run(args)
    lines = r.stdout.splitlines()
    where = f"{what}: rc {r.returncode}, stdout {lines}, stderr {r.stderr[-1500:]!r}"
    assert r.returncode == 0, where
    assert "Fatal error" not in r.stderr and "PANIC" not in r.stderr, where
    assert lines and lines[0] == "built" and lines[-1] == alive, where
    return lines, where


def sweep(case, n, frees=(0, 24), outcomes=None):
    """Runs `case` at each FREE; every run must be clean; returns how many ran out in the operation
    (and appends each run's outcome line to `outcomes`)."""
    out_of_memory = 0
    for free in frees:
        lines, where = clean_run([LUAMP, path, case, str(n), str(free)], f"{case} FREE={free}", "alive\ttrue")
        outcome = lines[1]
        assert outcome.startswith("op ok") or ("not enough memory" in outcome), where
        # Lua's own memory error, or a RemoteError naming what did not fit: never another kind.
        assert "DecodeError" not in outcome and "MemoryError" not in outcome, where
        if case in ("worker_result", "host_result"):
            assert "again\t7" in lines and "WorkerLost" not in outcome, where   # the same worker goes on
        if "not enough memory" in outcome:
            out_of_memory += 1
        if outcomes is not None:
            outcomes.append(outcome)
    return out_of_memory


def catchable(name, case, items):
    """One test: the sweep of `case` over a table of `items` items runs out of memory at least
    once, always catchably (`sweep` checks every outcome)."""
    def run():
        assert sweep(case, items) >= 1
    run.__name__ = name
    test(run)


catchable("mp_dumps_of_a_big_table_out_of_memory_is_catchable", "dumps", 2_000_000)
catchable("queue_put_of_a_big_table_out_of_memory_is_catchable", "put", 2_000_000)
catchable("mp_loads_of_a_big_table_out_of_memory_is_catchable", "loads", 300_000)
catchable("queue_get_of_a_big_table_out_of_memory_is_catchable", "get", 300_000)
catchable("pool_worker_out_of_memory_encoding_its_result_is_a_remote_error", "worker_result", 2_000_000)
catchable("pool_host_out_of_memory_receiving_a_result_is_an_error_not_a_hang", "host_result", 2_000_000)


@test
def pool_host_out_of_memory_decoding_a_result_is_luas_memory_error():
    # With 24-32 MiB left the 18 MB frame arrives, and building its table runs out: the error
    # is Lua's own (what pcall gives for any allocation failure), not "DecodeError: …".
    outcomes = []
    sweep("host_result", 2_000_000, frees=(24, 32), outcomes=outcomes)
    assert "op failed: not enough memory" in outcomes, outcomes


@test
def process_out_of_memory_ends_the_child_with_the_error():
    assert sweep("child", 2_000_000) >= 1


# The embedding API (Tests/EmbedHarness): LuaValue conversions of big tables both ways. Swift
# allocations are checked before they are made, Lua's under Swift frames are protected or stop
# the walk once luamp's reserve is spent: Lua's memory error, never a trap or a Lua panic.
HARNESS = os.path.join(os.path.dirname(LUAMP), "luamp-embed-harness")


def ensure_harness():
    """scripts/test builds it; when only luamp was built, build the harness the same way."""
    if not os.path.exists(HARNESS):
        config = "release" if os.path.basename(os.path.dirname(LUAMP).rstrip("/")) == "release" else "debug"
        subprocess.run(["swift", "build", "-c", config, "--product", "luamp-embed-harness"],
                       cwd=ROOT, check=True, capture_output=True)


def embedding_sweep(case, n, frees=(0, 24)):
    ensure_harness()
    failed = 0
    for free in frees:
        lines, where = clean_run([HARNESS, "memory", case, str(n), str(free), squeeze_path],
                                 f"embedding {case} FREE={free}", "alive 2")
        assert lines[1] in ("op ok", "op failed: not enough memory"), where
        failed += lines[1] != "op ok"
    return failed


@test
def embedding_evaluate_of_a_big_table_out_of_memory_is_an_error():
    assert embedding_sweep("to_swift", 150_000) >= 1          # LuaRuntime.evaluate → LuaValue


@test
def embedding_swift_function_given_a_big_table_out_of_memory_is_catchable():
    assert embedding_sweep("argument", 150_000) >= 1          # its arguments → [LuaValue]


@test
def embedding_set_global_of_a_big_table_out_of_memory_is_an_error():
    assert embedding_sweep("to_lua", 300_000) >= 1            # setGlobal pushes a LuaTable


@test
def embedding_swift_function_returning_a_big_table_out_of_memory_is_catchable():
    assert embedding_sweep("result", 300_000) >= 1            # its results are pushed


UNCAUGHT = {
    "small_tables": "local t, i = {}, 0 while true do i = i + 1; t[i] = {i} end",
    "global_strings": "t = {} for i = 1, 1e9 do t[i] = tostring(i) end",
    "doubling_string": "local s = 'x' while true do s = s .. s end",
}


@test
def uncaught_out_of_memory_exits_1_with_not_enough_memory_as_lua_does():
    for name, code in UNCAUGHT.items():
        script = os.path.join(TMP, name + ".lua")
        with open(script, "w") as f:
            f.write(code + "\n")
        r = run([LUAMP, script], limit_mib=300)
        assert (r.returncode, r.stderr) == (1, f"{LUAMP}: not enough memory\n"), (name, r.returncode, r.stderr[-1500:])
        lua = shutil.which("lua5.4")
        if lua:   # the peer says the same thing
            p = run([lua, script], limit_mib=64)      # (no arena: a smaller limit, so it fails as fast)
            assert (p.returncode, p.stderr) == (1, f"{lua}: not enough memory\n"), (name, p.returncode, p.stderr)


finish()
shutil.rmtree(TMP, ignore_errors=True)
