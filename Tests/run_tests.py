#!/usr/bin/env python3
"""Runs the tests that go through the built luamp binary.

- Tests/lua/*_test.lua: Lua scripts using testlib.lua; each prints "N passed, M failed". Each
  runs twice: under luamp, and under the stock lua5.4 with mp.so (`lua5.4 -l mp`, LUA_CPATH at
  the libmp.so built next to LUAMP), except the few in HOST_SKIPS.
- Tests/cli/test_*.py: Python scripts driving luamp as a user would (options, stdin, a pty for the
  REPL, signals); each prints "N passed, M failed" and exits non-zero on failure.
Usage: run_tests.py LUAMP [name-filter]
"""
import os, re, shutil, subprocess, sys, time

# Lua tests that need the luamp binary itself, so they do not run under lua5.4 + mp.so (each
# with the reason). Empty: every Tests/lua script runs under both interpreters.
HOST_SKIPS = {}

def main():
    luamp = os.path.abspath(sys.argv[1])
    filt = sys.argv[2] if len(sys.argv) > 2 else ""
    here = os.path.dirname(os.path.abspath(__file__))
    env = dict(os.environ, LUAMP=luamp, LUA_PATH=os.path.join(here, "lua", "?.lua") + ";;")
    jobs = []
    def listing(sub):
        d = os.path.join(here, sub)
        return sorted(os.listdir(d)) if os.path.isdir(d) else []
    libmp = os.path.join(os.path.dirname(luamp), "libmp.so")
    lua54 = shutil.which("lua5.4")
    host_env = dict(env, LUA_CPATH=os.path.join(os.path.dirname(luamp), "lib?.so") + ";;")
    for f in listing("lua"):
        if f.endswith("_test.lua") and filt in f:
            jobs.append(([luamp, os.path.join(here, "lua", f)], f, env))
    for f in listing("lua"):
        name = f + " (lua5.4 + mp.so)"
        if f.endswith("_test.lua") and f not in HOST_SKIPS and (filt in f or filt in name):
            if not (lua54 and os.path.exists(libmp)):
                print(f"FAIL {name}: needs lua5.4 and {libmp} (swift build --product mp)")
                jobs.append((None, name, None))
                continue
            jobs.append(([lua54, "-l", "mp", os.path.join(here, "lua", f)], name, host_env))
    for f in listing("cli"):
        if f.startswith("test_") and f.endswith(".py") and filt in f:
            jobs.append(([sys.executable, os.path.join(here, "cli", f)], f, env))
    total_p = total_f = 0
    for cmd, name, job_env in jobs:
        if cmd is None:
            total_f += 1
            continue
        t0 = time.monotonic()
        try:
            r = subprocess.run(cmd, env=job_env, cwd=os.path.dirname(here), capture_output=True,
                               timeout=600, stdin=subprocess.DEVNULL)
            out, err, rc = r.stdout.decode(errors="replace"), r.stderr.decode(errors="replace"), r.returncode
        except subprocess.TimeoutExpired as e:
            out, err, rc = (e.stdout or b"").decode(errors="replace"), "TIMEOUT after 600 s", -1
        m = re.findall(r"(\d+) passed, (\d+) failed", out)
        p, f = (int(m[-1][0]), int(m[-1][1])) if m else (0, 1)
        if rc != 0 and f == 0:
            f = 1
        total_p += p; total_f += f
        status = "ok  " if (rc == 0 and f == 0) else "FAIL"
        print(f"{status} {name}: {p} passed, {f} failed ({time.monotonic() - t0:.1f} s)", flush=True)
        if status == "FAIL":
            sys.stdout.write("---- stdout\n" + out[-4000:] + "\n---- stderr\n" + err[-4000:] + "\n")
    print(f"lua+cli: {total_p} passed, {total_f} failed")
    sys.exit(0 if total_f == 0 and total_p > 0 else 1)

if __name__ == "__main__":
    main()
