#!/usr/bin/env python3
"""mp.so in the stock interpreter: `lua5.4` with LUA_CPATH at the libmp.so built next to LUAMP.

What the Lua test scripts cannot see from inside: one copy of Lua in the process, the end of the
script (children joined, daemons and pools stopped) on every way out, and Ctrl-C.
Run: LUAMP=.build/debug/luamp python3 Tests/cli/test_host.py
"""
import os, shutil, signal, subprocess, time
from harness import LUAMP, alive, children, finish, scratch, test, wait_dead

LUA = shutil.which("lua5.4")
BUILD = os.path.dirname(os.path.abspath(LUAMP))
LIBMP = os.path.join(BUILD, "libmp.so")
TMP, script = scratch("luamp-host-")
ENV = {k: v for k, v in os.environ.items() if not k.startswith(("LUA_INIT", "LUA_PATH", "LUA_CPATH"))}
ENV["LUA_CPATH"] = os.path.join(BUILD, "lib?.so") + ";;"


def lua(code, *args, timeout=60):
    """Runs `lua5.4 -e code args...`; returns (status, stdout, stderr)."""
    p = subprocess.run([LUA, "-e", code, *args], capture_output=True, text=True, env=ENV, timeout=timeout, cwd=TMP)
    return p.returncode, p.stdout, p.stderr


def marking_child(flag, delay):
    """Lua: requires mp and starts a child that waits for the event `ev`, sleeps `delay` s, then
    creates `flag` (so `flag` exists only if the child was joined before the script ended)."""
    return f'''
local mp = require "mp"
local ev = mp.Event()
mp.Process(function() ev:wait(); mp.sleep({delay}); io.open("{flag}", "w"):close() end):start()
'''


@test
def one_lua_in_the_process():
    out = subprocess.run(["readelf", "-d", LIBMP], capture_output=True, text=True, check=True).stdout
    assert "NEEDED" in out and "liblua" not in out, out
    und = subprocess.run(["nm", "-D", "--undefined-only", LIBMP], capture_output=True, text=True, check=True).stdout
    assert " lua_pcallk" in und and " luaL_traceback" in und, "lua_* come from the host"
    exported = subprocess.run(["nm", "-D", "--defined-only", LIBMP], capture_output=True, text=True, check=True).stdout
    assert [l.split()[-1] for l in exported.splitlines() if " T " in l] == ["luaopen_mp"], exported
    st, out, err = lua('local mp = require "mp"\n'
                       'for l in io.lines("/proc/self/maps") do if l:find("liblua") then print(l) end end\n'
                       'print(mp.version, package.loaded.mp == mp, require "mp" == mp, rawget(_G, "mp"))')
    assert (st, out, err) == (0, "0.1.0\ttrue\ttrue\tnil\n", ""), (st, out, err)


@test
def the_whole_api_is_there():
    # Every function of luamp's built-in mp table is in mp.so's, with the same kind of value.
    probe = 'local t = {} for k, v in pairs(mp) do t[#t + 1] = k .. ":" .. type(v) end table.sort(t) print(table.concat(t, " "))'
    a = subprocess.run([LUAMP, "-e", probe], capture_output=True, text=True, env=ENV, check=True).stdout
    st, b, err = lua('mp = require "mp" ' + probe)
    assert st == 0 and a == b and len(a.split()) > 20, (a, b, err)


@test
def end_of_script_joins_children_and_stops_daemons_and_pools():
    flag = os.path.join(TMP, "joined")
    path = script("end.lua", marking_child(flag, 0.2) + f'''local d = mp.Process{{target = function() mp.sleep(60) end, daemon = true}}
d:start()
local pool = mp.Pool(2)
assert(pool:map(function(x) return x + 1 end, {{1, 2}})[2] == 3)
print(d.pid)
io.stdout:flush()
ev:set()
''')
    p = subprocess.Popen([LUA, path], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=ENV, cwd=TMP)
    daemon = int(p.stdout.readline())
    kids = children(p.pid)
    out, err = p.communicate(timeout=60)
    assert p.returncode == 0, (p.returncode, out, err)
    assert os.path.exists(flag), "the non-daemon child was joined: it finished its work"
    assert wait_dead(kids + [daemon], 5), "no child outlives lua5.4"


@test
def os_exit_and_errors_clean_up_too():
    for i, (end, want) in enumerate([("os.exit(3)", 3), ("error('boom')", 1), ("os.exit(true, true)", 0)]):
        flag = os.path.join(TMP, f"exit{i}")
        path = script(f"exit{i}.lua", marking_child(flag, 0.1) + f'''ev:set()
{end}
''')
        p = subprocess.run([LUA, path], capture_output=True, text=True, env=ENV, cwd=TMP, timeout=60)
        assert p.returncode == want, (end, p.returncode, p.stderr)
        assert os.path.exists(flag), f"{end}: the child was joined before lua5.4 exited"
        if want == 1:
            assert "boom" in p.stderr and "stack traceback" in p.stderr, p.stderr


def wait_for(path, secs=30):
    deadline = time.monotonic() + secs
    while not os.path.exists(path):
        assert time.monotonic() < deadline, f"{path} never appeared"
        time.sleep(0.02)


@test
def ctrl_c_wakes_a_blocking_wait_and_stops_the_children():
    ready = os.path.join(TMP, "ready")
    path = script("sigint.lua", f'''
local mp = require "mp"
local q = mp.Queue()
local p = mp.Process(function() mp.sleep(60) end)
p:start()
print(p.pid)
io.stdout:flush()
io.open("{ready}", "w"):close()
q:get()
''')
    p = subprocess.Popen([LUA, path], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=ENV, cwd=TMP)
    child = int(p.stdout.readline())
    wait_for(ready)
    time.sleep(0.1)   # lets q:get() reach its wait; the assertion below does not depend on it
    t0 = time.monotonic()
    p.send_signal(signal.SIGINT)
    out, err = p.communicate(timeout=30)
    assert p.returncode == 1 and "interrupted!" in err, (p.returncode, err)
    assert err.count("interrupted!") == 1, err
    assert time.monotonic() - t0 < 10, "stopped, not joined (the child sleeps 60 s)"
    assert wait_dead([child], 5)


@test
def ctrl_c_caught_by_pcall_once():
    ready = os.path.join(TMP, "ready2")
    path = script("sigint2.lua", f'''
local mp = require "mp"
io.open("{ready}", "w"):close()
local t0 = mp.monotonic()
local ok, err = pcall(mp.sleep, 30)
print(ok, err, mp.monotonic() - t0 < 10)   -- woken by the Ctrl-C, not at the end of the sleep
local x = 0
for i = 1, 1e6 do x = x + i end   -- no second interrupted! fires in plain Lua code
mp.sleep(0.05)                     -- nor in the next wait
print("after", x)
''')
    p = subprocess.Popen([LUA, path], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=ENV, cwd=TMP)
    wait_for(ready)
    time.sleep(0.1)
    p.send_signal(signal.SIGINT)
    out, err = p.communicate(timeout=60)
    assert p.returncode == 0 and out == "false\tinterrupted!\ttrue\nafter\t500000500000\n", (p.returncode, out, err)


if not (LUA and os.path.exists(LIBMP)):
    raise SystemExit(f"needs lua5.4 and {LIBMP} (swift build --product mp)")
finish()
