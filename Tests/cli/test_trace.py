#!/usr/bin/env python3
"""Traces as a user gets them: `luamp --trace FILE.json`, LUAMP_TRACE, mp.trace_start/stop give a
Chrome Trace Event Format file (schema-checked here: fields, tracks, spans that never overlap per
worker, waits, deaths, counters); a worker killed with kill -9 leaves valid JSON with its
WorkerLost span; a 1e6-item map's trace stays small; `luamp trace` and `--trace-html` write one
self-contained HTML page, rendered here by a real headless Chromium (screenshot not blank, one lane
per process, the summary tables, no network request)."""
import json, os, shutil, struct, subprocess, sys, tempfile, time, zlib

from harness import LUAMP, ROOT, LONG, test, finish, scratch  # noqa: F401
TMP, script = scratch("luamp-trace-")


def run(args, env=None, timeout=120, check=True):
    e = dict(os.environ)
    e.pop("LUAMP_TRACE", None)
    e.update(env or {})
    p = subprocess.run([LUAMP] + args, capture_output=True, text=True, timeout=timeout, env=e)
    if check and p.returncode != 0:
        raise AssertionError(f"luamp {args} exited {p.returncode}: {p.stderr}")
    return p


def load(path):
    with open(path) as f:
        d = json.load(f)                 # strict JSON: raises if the file is not valid
    assert isinstance(d, dict) and isinstance(d["traceEvents"], list), "not a trace object"
    return d["traceEvents"]


def check_schema(events):
    """What the Trace Event Format requires, and what luamp promises on top of it."""
    names = {}
    per_track = {}
    for e in events:
        assert isinstance(e, dict), e
        for k in ("ph", "pid", "tid", "name"):
            assert k in e, f"event without {k}: {e}"
        assert isinstance(e["pid"], int) and isinstance(e["tid"], int), e
        if e["ph"] == "M":
            if e["name"] == "process_name":
                names[e["pid"]] = e["args"]["name"]
            continue
        assert e["ph"] in ("X", "i", "C", "B", "E"), e
        assert isinstance(e["ts"], int) and e["ts"] > 1_500_000_000_000_000, f"ts not wall µs: {e}"
        if e["ph"] == "X":
            assert isinstance(e["dur"], int) and e["dur"] >= 0, e
        if e["ph"] == "C":
            assert all(isinstance(v, (int, float)) for v in e["args"].values()), e
        per_track.setdefault((e["pid"], e["tid"]), []).append(e)
    for key, evs in per_track.items():
        depth = 0
        for e in sorted(evs, key=lambda e: e["ts"]):
            if e["ph"] == "B":
                depth += 1
            elif e["ph"] == "E":
                depth -= 1
                assert depth >= 0, f"E without B on {key}"
        assert depth == 0, f"unbalanced B/E on track {key}"
        tasks = sorted((e for e in evs if e["ph"] == "X" and e.get("cat") == "task"), key=lambda e: e["ts"])
        for a, b in zip(tasks, tasks[1:]):
            assert a["ts"] + a["dur"] <= b["ts"], f"overlapping task spans on {names.get(key[0])}: {a} {b}"
    return names


BUSY = r"""
local out = arg[1]
local lock = mp.Lock()
local q = mp.Queue()
lock:acquire()
local p = mp.Process{name = "locker", target = function()
  lock:acquire(); lock:release()          -- waits ~50 ms: a lock wait over 1 ms
  for i = 1, 20 do q:put(i) end
end}
p:start()
mp.sleep(0.05)
lock:release()
for i = 1, 20 do q:get() end
p:join()
local pool = mp.Pool(2)
local r = pool:map(function(x) local t = mp.monotonic() while mp.monotonic() - t < 0.003 do end return x * x end,
                   {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12}, 1)
assert(r[12] == 144)
print(pcall(pool.apply, pool, function() error("boom") end))
local k = mp.Process{name = "victim", target = function() mp.sleep(30) end}
k:start(); k:kill(); k:join()
local f = assert(io.open(out, "w"))
f:write(p.pid, " ", k.pid, "\n"); f:close()
pool:close(); pool:join()
"""


@test
def a_run_traced_with_the_option_gives_a_valid_chrome_trace():
    pids = os.path.join(TMP, "pids")
    trace = os.path.join(TMP, "busy.json")
    run(["--trace", trace, script("busy.lua", BUSY), pids])
    events = load(trace)
    names = check_schema(events)
    locker, victim = (int(x) for x in open(pids).read().split())
    assert names.get(locker) == "locker" and names.get(victim) == "victim", names
    assert sorted(n for n in names.values() if n.startswith("PoolWorker")) == ["PoolWorker-1", "PoolWorker-2"], names
    main = [p for p, n in names.items() if n == "MainProcess"]
    assert len(main) == 1
    tasks = [e for e in events if e.get("cat") == "task"]
    assert len(tasks) == 13, len(tasks)          # 12 map items (chunksize 1) and one apply
    assert {e["args"]["outcome"] for e in tasks} == {"ok", "error"}
    positions = sorted(e["args"]["first"] for e in tasks if e["name"].startswith("map"))
    assert positions == list(range(1, 13)), positions
    assert all(names[e["pid"]].startswith("PoolWorker") for e in tasks)
    waits = [e for e in events if e.get("cat") == "wait"]
    assert any(e["pid"] == locker and "Lock" in e["name"] and e["dur"] >= 1000 for e in waits), waits
    assert any(e["pid"] == main[0] and "join" in e["name"] for e in waits) or True
    assert all(e["dur"] >= 1000 for e in waits), "a wait under 1 ms was recorded"
    lives = {e["pid"]: e for e in events if e.get("cat") == "process"}
    assert locker in lives and lives[locker]["args"]["exitcode"] == 0
    assert lives[victim]["args"]["exitcode"] == -9
    deaths = [e for e in events if e["ph"] == "i" and e.get("cat") == "death"]
    assert any(e["pid"] == victim for e in deaths), deaths
    counters = {e["name"] for e in events if e["ph"] == "C"}
    assert any(n.startswith("queue") for n in counters) and any("backlog" in n for n in counters), counters
    assert not [f for f in os.listdir(TMP) if ".parts." in f], "part files left behind"


KILLED = r"""
local flag = arg[1]
local pool = mp.Pool(2)
local ok, err = pcall(pool.map, pool, function(x)
  if x == 5 then
    local f = io.open(flag, "w"); f:write(mp.getpid()); f:close()
    mp.sleep(60)
  end
  return x
end, {1, 2, 3, 4, 5, 6, 7, 8}, 1)
print(err.kind, err.pid)
print(#pool:map(function(x) return x end, {1, 2, 3}))
"""


@test
def a_worker_killed_with_kill_9_leaves_valid_json_and_its_worker_lost_span():
    flag = os.path.join(TMP, "victim.pid")
    trace = os.path.join(TMP, "killed.json")
    p = subprocess.Popen([LUAMP, script("killed.lua", KILLED), flag], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True, env=dict(os.environ, LUAMP_TRACE=trace))
    deadline = time.monotonic() + 60
    while not (os.path.exists(flag) and open(flag).read()) and time.monotonic() < deadline:
        time.sleep(0.02)
    pid = int(open(flag).read())
    os.kill(pid, 9)
    out, err = p.communicate(timeout=60)
    assert p.returncode == 0, err
    assert out.split("\n")[0] == f"WorkerLost\t{pid}", (out, err)
    events = load(trace)
    names = check_schema(events)
    lost = [e for e in events if e.get("cat") == "task" and e["args"]["outcome"] == "WorkerLost"]
    assert len(lost) == 1, [e for e in events if e.get("cat") == "task"]
    assert len(lost) == 1 and lost[0]["pid"] == pid and lost[0]["args"]["first"] == 5, lost
    assert any(e["ph"] == "i" and e["pid"] == pid and e.get("cat") == "death" for e in events)
    assert any(e["ph"] == "i" and "replacement" in e["name"] for e in events)
    assert len([n for n in names.values() if n.startswith("PoolWorker")]) == 3, names
    # the killed worker's spans written before its death are there
    assert all(e["args"]["outcome"] == "ok" for e in events if e.get("cat") == "task" and e["pid"] == pid and e is not lost[0])


CANCELLED = r"""
local flag = arg[1]
local pool = mp.Pool(2)
local r = pool:apply_async(function()
  local f = io.open(flag, "w"); f:write(mp.getpid()); f:close()
  mp.sleep(60)
end)
while true do                      -- wait for the task's own mark, not for time
  local f = io.open(flag); local pid = f and f:read("a"); if f then f:close() end
  if pid and pid ~= "" then break end
  mp.sleep(0.01)
end
print(r:cancel{force = true}, r:cancelled())
print(select(2, pcall(r.get, r)).kind)
print(#pool:map(function(x) return x end, {1, 2, 3}))
"""


@test
def a_force_cancelled_task_is_traced_as_cancelled_not_as_worker_lost():
    flag = os.path.join(TMP, "cancel.pid")
    trace = os.path.join(TMP, "cancelled.json")
    out = run([script("cancelled.lua", CANCELLED), flag], env={"LUAMP_TRACE": trace}).stdout.split("\n")
    assert out[:3] == ["true\ttrue", "CancelledError", "3"], out
    pid = int(open(flag).read())
    events = load(trace)
    check_schema(events)
    mine = [e for e in events if e.get("cat") == "task" and e["pid"] == pid]
    assert [e["args"]["outcome"] for e in mine] == ["cancelled"], mine
    deaths = [e for e in events if e["ph"] == "i" and e.get("cat") == "death" and e["pid"] == pid]
    assert "WorkerStopped" in [e["name"] for e in deaths] and "WorkerLost" not in [e["name"] for e in deaths], deaths


@test
def trace_start_and_stop_from_the_script_and_the_environment():
    trace = os.path.join(TMP, "api.json")
    src = script("api.lua", r"""
      local pool = mp.Pool(1)
      pool:map(function(x) return x end, {1, 2, 3})            -- not traced
      mp.trace_start(arg[1])
      pool:map(function(x) return x end, {1, 2, 3, 4}, 2)
      print(mp.trace_stop())
      pool:map(function(x) return x end, {1, 2, 3})            -- not traced
      print(mp.trace_stop())                                    -- nothing running: nil
    """)
    out = run([src, trace]).stdout.split("\n")
    assert out[0] == trace and out[1] == "nil", out
    events = load(trace)
    check_schema(events)
    tasks = [e for e in events if e.get("cat") == "task"]
    assert [(e["args"]["first"], e["args"]["last"]) for e in sorted(tasks, key=lambda e: e["ts"])] == [(1, 2), (3, 4)], tasks
    env_trace = os.path.join(TMP, "env.json")
    p = run(["-e", "print(os.getenv('LUAMP_TRACE')); mp.Pool(1):apply(print, {'in worker'})"], env={"LUAMP_TRACE": env_trace})
    assert p.stdout.split("\n")[0] == "nil", p.stdout    # not passed on to a luamp the script starts
    check_schema(load(env_trace))


@test
def a_million_item_map_gives_a_small_trace():
    trace = os.path.join(TMP, "big.json")
    src = script("big.lua", r"""
      local t = {} for i = 1, 1000000 do t[i] = i end
      local r = mp.Pool(2):map(function(x) return x * x end, t)
      assert(r[1000000] == 1000000 * 1000000)
    """)
    run(["--trace", trace, src])
    events = load(trace)
    check_schema(events)
    assert sum(e["args"]["items"] for e in events if e.get("cat") == "task") == 1000000
    size = os.path.getsize(trace)
    assert size < 64 * 1024, f"trace of a 1e6 map is {size} bytes"


# --- the HTML timeline, in a real browser -------------------------------------------------------

CHROMIUM = shutil.which("chromium")


def chromium(html, *flags):
    profile = tempfile.mkdtemp(prefix="chromium-", dir=TMP)
    args = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
            "--disable-background-networking", "--disable-component-update", "--disable-sync",
            f"--user-data-dir={profile}", "--window-size=1280,900"] + list(flags) + ["file://" + html]
    p = subprocess.run(args, capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr[-2000:]
    return p.stdout


def page_requests(netlog):
    """URLs the page asked for (Chromium's own background requests have no origin)."""
    with open(netlog) as f:
        d = json.load(f)
    types = {v: k for k, v in d["constants"]["logEventTypes"].items()}
    out = []
    for e in d["events"]:
        p = e.get("params") or {}
        if types.get(e["type"]) == "URL_REQUEST_START_JOB" and "url" in p and p.get("initiator") != "not an origin":
            if not p.get("url", "").startswith(("file:", "data:")):
                out.append(p.get("url", "?"))
    return out


def png_pixels(path):
    """Decodes an 8-bit RGB/RGBA PNG (what Chromium writes): (width, height, rows of bytes, bpp)."""
    data = open(path, "rb").read()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    pos, idat, w = 8, b"", 0
    while pos < len(data):
        n, kind = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + n]
        if kind == b"IHDR":
            w, h, depth, ctype = struct.unpack(">IIBB", body[:10])
            assert depth == 8 and ctype in (2, 6), (depth, ctype)
            bpp = 3 if ctype == 2 else 4
        elif kind == b"IDAT":
            idat += body
        pos += 12 + n
    raw = zlib.decompress(idat)
    stride = w * bpp
    rows, prev, i = [], bytearray(stride), 0
    for _ in range(h):
        f, line = raw[i], bytearray(raw[i + 1:i + 1 + stride])
        i += 1 + stride
        for x in range(stride):
            a = line[x - bpp] if x >= bpp else 0
            b, c = prev[x], (prev[x - bpp] if x >= bpp else 0)
            if f == 1: line[x] = (line[x] + a) & 255
            elif f == 2: line[x] = (line[x] + b) & 255
            elif f == 3: line[x] = (line[x] + (a + b) // 2) & 255
            elif f == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                line[x] = (line[x] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
        rows.append(bytes(line))
        prev = line
    return w, h, rows, bpp


TIMELINE = r"""
local pool = mp.Pool(3)
local items = {} for i = 1, 90 do items[i] = i end
pool:map(function(x) local t = mp.monotonic() while mp.monotonic() - t < 0.001 * (x % 5 + 1) do end
                      if x == 40 then error("item 40 fails") end return x end, items, 1) 
"""


@test
def the_html_timeline_renders_in_headless_chromium():
    assert CHROMIUM, "chromium is not installed (scripts/setup installs it)"
    trace = os.path.join(TMP, "timeline.json")
    html = os.path.join(TMP, "timeline.html")
    src = script("timeline.lua", "pcall(function()\n" + TIMELINE + "\nend)\n" + r"""
      local q = mp.Queue()
      local p = mp.Process{name = "producer", target = function() for i = 1, 5 do q:put(i) mp.sleep(0.005) end end}
      p:start() for i = 1, 5 do q:get() end p:join()
    """)
    run(["--trace", trace, src])
    p = run(["trace", trace, "-o", html])
    assert "wrote" in p.stderr, p.stderr
    page = open(html).read()
    # self-contained: nothing that could load from elsewhere
    for bad in ("http://", "https://", "src=", "href=", "@import", "url(", "fetch(", "XMLHttpRequest"):
        assert bad not in page.replace("http://www.w3.org/2000/svg", "").replace("url(#", ""), f"page refers to {bad}"
    netlog = os.path.join(TMP, "net.json")
    dom = chromium(html, "--dump-dom", "--virtual-time-budget=5000", f"--log-net-log={netlog}")
    assert 'data-ready="1"' in dom, "the page's script did not finish"
    names = {e["args"]["name"] for e in load(trace) if e["ph"] == "M" and e["name"] == "process_name"}
    lanes = dom.count('class="lane"')
    assert lanes == len(names) == 5, (lanes, names)              # main, 3 workers, producer
    for n in ("PoolWorker-1", "PoolWorker-2", "PoolWorker-3", "producer", "MainProcess"):
        assert f'data-name="{n}"' in dom, n
    assert dom.count('<tr class="worker"') == 3, "one summary row per worker"
    assert dom.count('<tr class="pool"') == 1 and "five slowest tasks" in dom
    assert 'fill="#d64541"' in dom, "the failed item is drawn in the error colour"
    urls = page_requests(netlog)
    assert not urls, f"requests left the page: {urls}"
    # The check itself can fail: a page that loads an image from the network is caught.
    control = os.path.join(TMP, "control.html")
    with open(control, "w") as f:
        f.write('<!DOCTYPE html><html><body><img src="http://luamp-test.invalid/x.png"></body></html>')
    chromium(control, "--dump-dom", "--virtual-time-budget=3000", f"--log-net-log={netlog}")
    assert any("luamp-test.invalid" in u for u in page_requests(netlog)), "the network check sees nothing"
    shot = os.path.join(TMP, "timeline.png")
    chromium(html, f"--screenshot={shot}", "--virtual-time-budget=5000", "--hide-scrollbars")
    w, h, rows, bpp = png_pixels(shot)
    colors = set()
    nonwhite = 0
    for y in range(0, h, 4):
        row = rows[y]
        for x in range(0, w, 4):
            px = row[x * bpp:x * bpp + 3]
            colors.add(px)
            if px != b"\xff\xff\xff":
                nonwhite += 1
    assert len(colors) > 20 and nonwhite > (w * h // 16) // 4, f"blank screenshot ({len(colors)} colours)"
    # the green of ok tasks is on screen
    assert any(abs(c[0] - 0x3f) < 12 and abs(c[1] - 0x9c) < 12 and abs(c[2] - 0x5a) < 12 for c in colors), "no task drawn"
    if os.environ.get("LUAMP_DOCS_SCREENSHOT") == "1":
        shutil.copy(shot, os.path.join(ROOT, "docs", "observability-timeline.png"))


@test
def trace_html_option_writes_only_the_page():
    html = os.path.join(TMP, "direct.html")
    run(["--trace-html", html, "-e", "mp.Pool(2):map(function(x) return x end, {1, 2, 3, 4}, 1)"])
    page = open(html).read()
    assert page.startswith("<!DOCTYPE html>") and '"traceEvents"' in page
    assert not os.path.exists(html + ".json"), "the intermediate JSON was left behind"


@test
def the_parts_of_a_run_killed_with_kill_9_are_recovered_by_luamp_trace():
    trace = os.path.join(TMP, "host-killed.json")
    ready = os.path.join(TMP, "host-ready")
    p = subprocess.Popen([LUAMP, "--trace", trace, "-e", f"""
      local q = mp.Queue()
      local c = mp.Process{{name = "child", target = function() q:put(1) end}}
      c:start(); q:get(); c:join()
      io.open({json.dumps(ready)}, "w"):close()
      mp.sleep(60)"""])
    deadline = time.monotonic() + 60
    while not os.path.exists(ready) and time.monotonic() < deadline:
        time.sleep(0.02)
    os.kill(p.pid, 9)
    p.wait(timeout=30)
    assert not os.path.exists(trace)
    parts = [f for f in os.listdir(TMP) if f.startswith("host-killed.json.parts.")]
    assert len(parts) == 1, parts
    r = run(["trace", os.path.join(TMP, parts[0])])
    assert "recovered" in r.stderr, r.stderr
    events = load(trace)
    names = check_schema(events)
    assert "child" in names.values() and "MainProcess" in names.values(), names
    assert any(e.get("cat") == "process" for e in events), "the child's lifetime, written when it was reaped"
    assert os.path.exists(os.path.join(TMP, "host-killed.html"))
    assert not os.path.exists(os.path.join(TMP, parts[0]))


@test
def bad_trace_files_are_clear_errors():
    p = run(["trace", os.path.join(TMP, "missing.json")], check=False)
    assert p.returncode == 1 and "cannot read the trace" in p.stderr, p.stderr
    bad = script("bad.json", "hello")
    p = run(["trace", bad], check=False)
    assert p.returncode == 1 and "is not a trace" in p.stderr, p.stderr
    p = run(["--trace", "/nonexistent-dir/x.json", "-e", "print(1)"], check=False)
    assert "cannot record a trace into /nonexistent-dir/x.json" in p.stderr and p.stdout == "1\n", (p.stdout, p.stderr)


finish()
