#!/usr/bin/env python3
"""label_output: every line a child writes through Lua (print, io.write, io.stdout/io.stderr) starts
with `[its name] `, and lines of different processes never tear, on a pipe and on a file; off by
default; --label-output labels every child; the host's own output is never labelled."""
import os, re, subprocess, sys

from harness import LUAMP, test, finish, scratch  # noqa: F401
TMP, script = scratch("luamp-labels-")


def run(args, **kw):
    p = subprocess.run([LUAMP] + args, capture_output=True, text=True, timeout=120, **kw)
    assert p.returncode == 0, p.stderr
    return p


STORM = r"""
local pool = mp.Pool{processes = 4, label_output = true}
local b = mp.Barrier(4)
pool:map(function(k)
  b:wait()                                   -- all four write at the same time
  local me = mp.current_process().name
  for i = 1, 200 do
    if i % 3 == 0 then io.write("task ", k, " line ", i, " ", string.rep("x", 50 + i % 40), "\n")
    elseif i % 3 == 1 then print("task " .. k .. " line " .. i .. " " .. string.rep("y", 30 + i % 70))
    else io.stdout:write("task ", k, " line ", i, " "); io.stdout:write(string.rep("z", i % 90), "\n") end
  end
  io.stderr:write("task ", k, " done\n")
  return me
end, {1, 2, 3, 4}, 1)
print("host line")
"""


def check_storm(out, err):
    lines = out.splitlines()
    assert lines[-1] == "host line", "the host's own output is not labelled"
    seen = {}
    for line in lines[:-1]:
        m = re.fullmatch(r"\[(PoolWorker-\d)\] task (\d) line (\d+) ([xyz]*)", line)
        assert m, f"torn or unlabelled line: {line!r}"
        k, i, body = int(m.group(2)), int(m.group(3)), m.group(4)
        want = "x" * (50 + i % 40) if i % 3 == 0 else "y" * (30 + i % 70) if i % 3 == 1 else "z" * (i % 90)
        assert body == want, f"line {i} of task {k} is not whole: {line!r}"
        seen.setdefault(k, set()).add((m.group(1), i))
    assert sorted(seen) == [1, 2, 3, 4]
    for k, got in seen.items():
        assert sorted(i for _, i in got) == list(range(1, 201)), f"task {k} lost lines"
        assert len({w for w, _ in got}) == 1, "one task's lines came from one worker"
    errs = sorted(err.splitlines())
    assert len(errs) == 4 and all(re.fullmatch(r"\[PoolWorker-\d\] task \d done", e) for e in errs), errs


@test
def four_workers_times_200_lines_on_a_pipe_are_all_labelled_and_whole():
    p = run([script("storm.lua", STORM)])
    check_storm(p.stdout, p.stderr)


@test
def the_same_into_a_file():
    path = os.path.join(TMP, "out.txt")
    with open(path, "w") as f:
        p = subprocess.run([LUAMP, script("storm2.lua", STORM)], stdout=f, stderr=subprocess.PIPE, text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    check_storm(open(path).read(), p.stderr)


@test
def a_process_with_label_output_and_a_last_line_without_newline():
    p = run(["-e", r"""
      local a = mp.Process{name = "fetcher", label_output = true, target = function()
        print("one"); io.write("two "); io.write("halves\n"); io.stderr:write("warn\n"); io.write("tail")
      end}
      local b = mp.Process{name = "plain", target = function() print("unlabelled") end}
      a:start(); a:join(); b:start(); b:join()
      print("host")
    """])
    assert p.stdout == "[fetcher] one\n[fetcher] two halves\n[fetcher] tail\nunlabelled\nhost\n" or \
           p.stdout == "[fetcher] one\n[fetcher] two halves\n[fetcher] tailunlabelled\nhost\n", repr(p.stdout)
    assert p.stderr == "[fetcher] warn\n", repr(p.stderr)


@test
def the_option_labels_every_child_and_their_children():
    p = run(["--label-output", "-e", r"""
      local a = mp.Process{name = "outer", target = function()
        print("from outer")
        local c = mp.Process{name = "inner", target = function() print("from inner") end}
        c:start(); c:join()
      end}
      a:start(); a:join()
      print(mp.Pool(1):apply(function() print("from worker") return "ok" end))
    """])
    assert p.stdout == "[outer] from outer\n[inner] from inner\n[PoolWorker-1] from worker\nok\n", repr(p.stdout)


@test
def off_by_default():
    p = run(["-e", "mp.Pool(1):apply(function() print('plain') end)"])
    assert p.stdout == "plain\n", repr(p.stdout)


finish()
