#!/usr/bin/env python3
"""Runs the tests that go through the built luamp binary.

- Tests/lua/*_test.lua: Lua scripts using testlib.lua; each prints "N passed, M failed".
- Tests/cli/test_*.py: Python scripts driving luamp as a user would (options, stdin, a pty for the
  REPL, signals); each prints "N passed, M failed" and exits non-zero on failure.
Usage: run_tests.py LUAMP [name-filter]
"""
import os, re, subprocess, sys, time

def main():
    luamp = os.path.abspath(sys.argv[1])
    filt = sys.argv[2] if len(sys.argv) > 2 else ""
    here = os.path.dirname(os.path.abspath(__file__))
    env = dict(os.environ, LUAMP=luamp, LUA_PATH=os.path.join(here, "lua", "?.lua") + ";;")
    jobs = []
    def listing(sub):
        d = os.path.join(here, sub)
        return sorted(os.listdir(d)) if os.path.isdir(d) else []
    for f in listing("lua"):
        if f.endswith("_test.lua") and filt in f:
            jobs.append(([luamp, os.path.join(here, "lua", f)], f))
    for f in listing("cli"):
        if f.startswith("test_") and f.endswith(".py") and filt in f:
            jobs.append(([sys.executable, os.path.join(here, "cli", f)], f))
    total_p = total_f = 0
    for cmd, name in jobs:
        t0 = time.monotonic()
        try:
            r = subprocess.run(cmd, env=env, cwd=os.path.dirname(here), capture_output=True,
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
