#!/usr/bin/env python3
"""Progress bars as a user sees them: stderr on a real pty (80 columns) gets a tqdm-style bar for a
pool call that runs over 0.5 s, redrawn at most 10 times a second, ending at 100% with the failures;
stdout is unchanged byte for byte; nothing without a terminal unless LUAMP_PROGRESS=1 (plain lines);
short calls show nothing; progress = function(done, total, failed) calls the script instead."""
import fcntl, os, pty, re, select, struct, subprocess, sys, termios, time

from harness import LUAMP, test, finish, scratch  # noqa: F401
TMP, script = scratch("luamp-progress-")


def run(args, tty=True, env=None, cols=80):
    """Runs luamp with stdout on a pipe and stderr on a pty (or a pipe): (stdout, stderr bytes, seconds)."""
    e = dict(os.environ)
    for k in ("LUAMP_PROGRESS", "LUAMP_TRACE", "COLUMNS"):
        e.pop(k, None)
    e.update(env or {})
    start = time.monotonic()
    if not tty:
        p = subprocess.run([LUAMP] + args, capture_output=True, env=e, timeout=120)
        assert p.returncode == 0, p.stderr
        return p.stdout, p.stderr, time.monotonic() - start
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, cols, 0, 0))
    p = subprocess.Popen([LUAMP] + args, stdout=subprocess.PIPE, stderr=slave, env=e)
    os.close(slave)
    err = b""
    out = b""
    os.set_blocking(p.stdout.fileno(), False)
    while True:
        r, _, _ = select.select([master, p.stdout], [], [], 0.2)
        if master in r:
            try:
                data = os.read(master, 65536)
            except OSError:
                data = b""
            if not data and p.poll() is not None:
                break
            err += data
        if p.stdout in r:
            out += p.stdout.read() or b""
        if not r and p.poll() is not None:
            break
    p.wait(timeout=60)
    out += p.stdout.read() or b""
    os.close(master)
    assert p.returncode == 0, err
    return out, err, time.monotonic() - start


LONG = r"""
print("before")
local pool = mp.Pool(2)
local items = {} for i = 1, 40 do items[i] = i end
local ok, e = pcall(pool.map, pool, function(x)
  mp.sleep(0.05)
  if x == 17 then error("item 17 fails") end
  return x
end, items, OPTS)
print("after", ok, e.kind)
for i = 1, 3 do io.write("line ", i, "\n") end
"""


def frames(err):
    """The bar states drawn on the terminal: the text between carriage returns, escapes removed."""
    text = re.sub(rb"\x1b\[K", b"", err).decode()
    return [f for f in re.split(r"[\r\n]", text) if f.strip()]


@test
def a_long_map_draws_a_bar_that_reaches_100_percent_with_failures():
    src = script("long.lua", LONG.replace("OPTS", "{chunksize = 1, progress = true}"))
    out, err, secs = run([src])
    assert out == b"before\nafter\tfalse\tRemoteError\nline 1\nline 2\nline 3\n", out
    fs = frames(err)
    bars = [f for f in fs if re.match(r"map +\d+%\|", f)]
    assert bars, f"no bar drawn: {err!r}"
    for f in bars:
        assert len(f) <= 79, f"bar wider than an 80-column terminal: {f!r} ({len(f)})"
        assert re.match(r"map +\d+%\|[█▏▎▍▌▋▊▉ ]+\| \d+/40 \[\d\d:\d\d<(\d\d:\d\d|\?), [\d.]+ (task/s|s/task)(, \d+ failed)?\]$", f), f
    last = bars[-1]
    assert last.startswith("map 100%|") and "| 40/40 [" in last and last.endswith(", 1 failed]"), last
    assert err.endswith(b"\n"), "the final line ends the bar"
    # at most 10 redraws a second (after the first 0.5 s), plus the final line
    assert err.count(b"\r") <= 10 * secs + 2, (err.count(b"\r"), secs)


@test
def no_terminal_means_no_progress_output():
    src = script("long2.lua", LONG.replace("OPTS", "{chunksize = 1, progress = true}"))
    out, err, _ = run([src], tty=False)
    assert out == b"before\nafter\tfalse\tRemoteError\nline 1\nline 2\nline 3\n", out
    assert err == b"", err


@test
def luamp_progress_1_forces_plain_lines():
    src = script("long3.lua", LONG.replace("OPTS", "1"))
    out, err, _ = run([src], tty=False, env={"LUAMP_PROGRESS": "1"})
    assert out == b"before\nafter\tfalse\tRemoteError\nline 1\nline 2\nline 3\n", out
    lines = err.decode().splitlines()
    assert lines and b"\r" not in err and b"\x1b" not in err, err
    assert re.match(r"map 100% 40/40 \[\d\d:\d\d<\d\d:\d\d, [\d.]+ task/s, 1 failed\]$", lines[-1]), lines


@test
def the_option_and_a_pool_label_turn_it_on_and_short_calls_show_nothing():
    src = script("opt.lua", r"""
      local pool = mp.Pool{processes = 2, progress = "resizing"}
      pool:map(function(x) mp.sleep(0.1) return x end, {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20}, 1)
      mp.Pool(2):map(function(x) return x end, {1, 2, 3})          -- short: nothing
    """)
    _, err, _ = run([src])
    fs = frames(err)
    assert fs and all(f.startswith("resizing ") for f in fs), fs
    assert fs[-1].startswith("resizing 100%|") and "20/20" in fs[-1], fs
    src = script("opt2.lua", r"""
      mp.Pool(2):map(function(x) mp.sleep(0.1) return x end, {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20}, 1)
      mp.Pool(2):map(function(x) return x end, {1, 2, 3})
    """)
    _, err, _ = run(["--progress", src])
    fs = frames(err)
    assert fs and fs[-1].startswith("map 100%|") and "20/20" in fs[-1] and len(fs[-1]) <= 79, fs
    assert not any("3/3" in f for f in fs), "a short call drew a bar"


@test
def an_iterator_of_unknown_length_shows_count_and_rate():
    src = script("iter.lua", r"""
      local i = 0
      local function gen() i = i + 1 if i <= 40 then return i end end
      local n = 0
      for r in mp.Pool(2):imap(function(x) mp.sleep(0.05) return x end, gen, {chunksize = 1, progress = "items"}) do n = n + 1 end
      print(n)
    """)
    out, err, _ = run([src], cols=60)
    assert out == b"40\n", out
    fs = frames(err)
    assert fs and re.match(r"items: 40 \[\d\d:\d\d, [\d.]+ task/s\]$", fs[-1]), fs
    assert "%" not in "".join(fs), fs


@test
def a_map_async_bar_moves_while_the_host_sleeps():
    src = script("bg.lua", r"""
      local pool = mp.Pool(2)
      local items = {} for i = 1, 30 do items[i] = i end
      local r = pool:map_async(function(x) mp.sleep(0.05) return x end, items, {chunksize = 1, progress = "bg"})
      while not r:ready() do mp.sleep(0.1) end    -- the host only sleeps; r:ready() does not wait
      io.stderr:write("AFTER-SLEEP\n")
      print(#r:get())
    """)
    out, err, _ = run([src])
    assert out == b"30\n", out
    before = frames(err.split(b"AFTER-SLEEP")[0])
    assert before and before[-1].startswith("bg 100%|") and "30/30" in before[-1], before


@test
def a_progress_function_is_called_instead():
    src = script("cb.lua", r"""
      local calls = {}
      local pool = mp.Pool(2)
      local r = pool:map(function(x) return x end, {1, 2, 3, 4, 5, 6}, {chunksize = 1,
        progress = function(done, total, failed) calls[#calls + 1] = {done, total, failed} end})
      local last = calls[#calls]
      print(#r, last[1], last[2], last[3])
      for i = 2, #calls do assert(calls[i][1] >= calls[i - 1][1]) end
      local ok, e = pcall(pool.map, pool, function(x) return x end, {1, 2},
                          {progress = function() error("display broke") end})
      print(ok, e)
    """)
    out, err, _ = run([src])
    lines = out.decode().splitlines()
    assert lines[0] == "6\t6\t6\t0", lines
    assert lines[1].startswith("false\t") and "display broke" in lines[1], lines
    assert err == b"", err


finish()
