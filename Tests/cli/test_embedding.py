#!/usr/bin/env python3
"""The LuaMP library embedded in an app (Tests/EmbedHarness): Swift functions called from forked
workers, the thread guard's clear error instead of a deadlock, and the fork-server start mode for
apps with threads (single-threaded server, 200 repetitions, whole-app restarts)."""
import os, shutil, subprocess, sys, tempfile

from harness import LUAMP, ROOT, LONG, test, finish  # noqa: F401
BUILD_DIR = os.path.dirname(LUAMP)
HARNESS = os.path.join(BUILD_DIR, "luamp-embed-harness")


def ensure_harness():
    """scripts/test builds it; when only luamp was built, build the harness the same way."""
    if os.path.exists(HARNESS):
        return
    config = "release" if os.path.basename(BUILD_DIR.rstrip("/")) == "release" else "debug"
    subprocess.run(["swift", "build", "-c", config, "--product", "luamp-embed-harness"],
                   cwd=ROOT, check=True, capture_output=True)


def harness(*args, timeout=120):
    return subprocess.run([HARNESS, *args], capture_output=True, text=True, timeout=timeout,
                          stdin=subprocess.DEVNULL)


ensure_harness()


@test
def swift_functions_are_callable_in_forked_workers():
    r = harness("direct")
    assert r.returncode == 0, r.stdout + r.stderr
    # Each worker returned host_add(10, i) as its exit code; the parent checked and returned them.
    assert "direct results 11 12 13" in r.stdout, r.stdout + r.stderr


@test
def an_app_idle_outside_lua_keeps_pools_going_with_service_while_idle():
    # 1,500 tasks, 4 KiB each way (6 MiB, the pipes take 1 MiB each): without the app calling
    # serviceWhileIdle from its poll loop, the workers stall once the pipes are full.
    d = tempfile.mkdtemp(prefix="luamp-idle-")
    try:
        r = harness("idle-service", d, timeout=120)
        assert r.returncode == 0, r.stdout + r.stderr
        assert "idle marks 1500 woke true" in r.stdout, r.stdout + r.stderr
        assert "idle results 1500" in r.stdout, r.stdout + r.stderr
    finally:
        shutil.rmtree(d, ignore_errors=True)


@test
def one_runtime_finishing_leaves_another_runtimes_children_and_pools_alone():
    # Two runtimes in one process: B's finish() joins B's children and terminates B's pools
    # only; A's child (waiting for A's event) and A's pool are still A's afterwards.
    r = harness("two-runtimes", timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "after b finished: alive=true children=1 map=1,4,9 exitcode=0" in r.stdout, r.stdout + r.stderr
    assert "b children after its finish: 0" in r.stdout, r.stdout + r.stderr


@test
def forking_with_threads_gives_a_clear_error_not_a_deadlock():
    r = harness("thread-guard", timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr
    threads = int(r.stdout.split("app threads ")[1].split()[0])
    assert threads > 1, r.stdout
    assert "start ok=false" in r.stdout, r.stdout
    err = r.stdout.split("error: ", 1)[1]
    assert "cannot start a process: this process has" in err and "threads" in err, err
    assert "LuaForkServer" in err, err


@test
def fork_server_runs_200_forking_scripts_from_a_threaded_app():
    r = harness("fork-server", "200", timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    lines = r.stdout.splitlines()
    assert int(lines[0].split()[-1]) > 1, r.stdout           # the app really has threads
    assert lines.count("server threads 1") == 2, r.stdout     # the server never gets one
    assert "sequential reps 200 ok" in lines, r.stdout
    assert "concurrent runtimes 4/4 ok" in lines, r.stdout


@test
def fork_server_whole_app_restarts_complete_every_time():
    # Each run: start Dispatch/async work, spawn a server, run forking scripts, stop.
    runs = 200 if LONG else 20
    for i in range(runs):
        r = harness("fork-server", "3", timeout=60)
        assert r.returncode == 0 and "concurrent runtimes 4/4 ok" in r.stdout, \
            f"run {i}: rc={r.returncode}\n{r.stdout}\n{r.stderr}"


@test
def remote_runtime_api_values_and_errors():
    r = harness("remote-api", timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "FAIL" not in r.stdout, r.stdout
    assert "21 passed, 0 failed" in r.stdout, r.stdout


@test
def forgetting_serve_if_requested_fails_clearly():
    r = harness("no-serve", timeout=60)
    assert r.returncode == 2, r.stdout + r.stderr
    # The spawned copy refuses to recurse; the app is told why instead of hanging.
    assert "call LuaForkServer.serveIfRequested(setup:) first thing in main" in r.stdout, r.stdout
    assert "exited before it served" in r.stdout, r.stdout


@test
def no_process_outlives_the_app():
    # The harness stopped its server; nothing it started may still be running under its name.
    r = harness("fork-server", "1", timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr
    leftovers = subprocess.run(["pgrep", "-f", HARNESS + " fork-server 1"], capture_output=True, text=True)
    assert leftovers.stdout.strip() == "", leftovers.stdout


finish()
