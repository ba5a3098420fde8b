"""mp.SharedMemory: both directions with Python's multiprocessing.shared_memory, and tracked unlinking (also after kill -9)."""
import os, struct, subprocess, sys, tempfile
from multiprocessing import resource_tracker, shared_memory
from harness import LUAMP, test, finish


def luamp(code, *args, check=True, **kw):
    """Runs `code` as a script file with `args` (arg[1]…)."""
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as f:
        f.write(code)
    try:
        r = subprocess.run([LUAMP, f.name, *args], capture_output=True, text=True, timeout=60, **kw)
    finally:
        os.unlink(f.name)
    if check:
        assert r.returncode == 0, f"luamp failed ({r.returncode}): {r.stdout}{r.stderr}"
    return r


def exists(name):
    return os.path.exists("/dev/shm/" + name)


def attach(name):
    """Attaches in Python without letting Python's resource tracker unlink it at exit (3.11 bug)."""
    shm = shared_memory.SharedMemory(name=name)
    resource_tracker.unregister(shm._name, "shared_memory")
    return shm


@test
def python_writes_luamp_reads_and_writes_back():
    shm = shared_memory.SharedMemory(create=True, size=8192)
    try:
        shm.buf[:5] = b"hello"
        struct.pack_into("<3d", shm.buf, 64, 1.5, -2.25, 1e300)
        struct.pack_into("<2i", shm.buf, 128, 7, -9)
        r = luamp("""
          local shm = mp.SharedMemory{name = arg[1]}
          assert(shm.size == 8192, shm.size)
          assert(shm:read(0, 5) == "hello")
          local d = mp.Array("d", shm, 64, 3)
          assert(d[1] == 1.5 and d[2] == -2.25 and d[3] == 1e300)
          local i = mp.Array("i", shm, 128, 2)
          assert(i[1] == 7 and i[2] == -9)
          i[1] = i:add(1, 100) + 1
          shm:write(1000, "from luamp")
          d[3] = 0.125
          print(tostring(shm))
          shm:close()
        """, shm.name)
        assert r.stdout.strip() == f"<SharedMemory name='{shm.name}' size=8192>", r.stdout
        assert bytes(shm.buf[1000:1010]) == b"from luamp"
        assert struct.unpack_from("<i", shm.buf, 128)[0] == 108
        assert struct.unpack_from("<d", shm.buf, 80)[0] == 0.125
        assert exists(shm.name), "attaching from luamp must not unlink"
    finally:
        shm.close()
        shm.unlink()


@test
def luamp_creates_python_reads_writes_then_luamp_reads():
    # luamp creates (tracked), runs Python while it holds the segment, reads what Python wrote,
    # and unlinks it at exit because the script never did.
    py = ("import sys, struct; from multiprocessing import resource_tracker, shared_memory; "
          "s = shared_memory.SharedMemory(name=sys.argv[1]); resource_tracker.unregister(s._name, 'shared_memory'); "
          "assert bytes(s.buf[:4]) == b'luam', bytes(s.buf[:4]); "
          "assert struct.unpack_from('<q', s.buf, 8)[0] == 123456789; "
          "s.buf[100:106] = b'python'; struct.pack_into('<q', s.buf, 16, -42); s.close()")
    r = luamp("""
      local shm = mp.SharedMemory{create = true, size = 4096}
      shm:write(0, "luamp")
      mp.Array("q", shm, 8, 1)[1] = 123456789
      local cmd = string.format("%s -c %q %s", arg[1], arg[2], shm.name)
      assert(os.execute(cmd), "python failed")
      assert(shm:read(100, 6) == "python")
      assert(mp.Array("q", shm)[3] == -42)
      print(shm.name)
    """, sys.executable, py, env=dict(os.environ, PYTHONWARNINGS="ignore"))
    name = r.stdout.strip()
    assert name.startswith("luamp_"), r.stdout
    assert not exists(name), "the tracked segment must be unlinked when the script ends"


@test
def track_false_survives_and_named_segments():
    name = "luamp_test_%d" % os.getpid()
    luamp("""
      local shm = mp.SharedMemory{name = arg[1], create = true, size = 100, track = false}
      shm:write(0, "kept")
      local ok, err = pcall(mp.SharedMemory, {name = arg[1], create = true, size = 100})
      assert(not ok and err:find("already exists"), err)
    """, name)
    try:
        assert exists(name)
        s = attach(name)
        assert bytes(s.buf[:4]) == b"kept"
        assert s.size >= 100
        s.close()
    finally:
        os.unlink("/dev/shm/" + name)


@test
def unlink_and_errors():
    r = luamp("""
      local shm = mp.SharedMemory{create = true, size = 10}
      local name = shm.name
      local function err(f, ...) local ok, e = pcall(f, ...) assert(not ok) return tostring(e) end
      assert(err(shm.write, shm, 8, "abc"):find("write of 3 bytes at offset 8 goes past the end %(size 10%)"))
      assert(err(shm.read, shm, 5, 6):find("goes past the end"))
      assert(err(shm.read, shm, -1):find("offset %-1 outside"))
      assert(err(mp.Array, "d", shm, 3):find("not a multiple"))
      assert(err(mp.Array, "d", shm, 0, 2):find("do not fit"))
      assert(err(mp.SharedMemory, {create = true}):find("'size' must be a positive integer"))
      assert(err(mp.SharedMemory, {}):find("'name' is required"))
      assert(err(mp.SharedMemory, {name = "a/b"}):find("bad name"))
      assert(err(mp.SharedMemory, "luamp_no_such_segment"):find("no segment named 'luamp_no_such_segment'"))
      local a = mp.Array("B", shm)
      shm:unlink()
      assert(err(shm.unlink, shm):find("already unlinked"))
      a[1] = 5                                 -- unlinked but still mapped: still usable
      shm:close()
      assert(err(shm.read, shm):find("is closed"))
      assert(err(function() return a[1] end):find("is closed"))
      assert(err(mp.dumps, shm):find("is closed"))
      print(name, tostring(shm))
    """)
    name, desc = r.stdout.split(None, 1)
    assert not exists(name)
    assert desc.strip().endswith("closed>"), desc


@test
def sent_to_a_process_started_earlier():
    r = luamp("""
      local q, back = mp.Queue(), mp.Queue()
      local p = mp.Process(function()
        local shm = q:get()
        local v = mp.Array("i", shm)
        v:add(1, 5)
        shm:write(8, "child")
        local view = q:get()                     -- a typed view travels too
        view[2] = view[1] * 2
        back:put(shm.name .. " " .. tostring(view))
      end)
      p:start()
      local shm = mp.SharedMemory{create = true, size = 64}
      q:put(shm)
      local view = mp.Array("d", shm, 32, 2)
      view[1] = 1.25
      q:put(view)
      assert(back:get(10) == shm.name .. " <Array 'd' len=2 shm='" .. shm.name .. "'>")
      p:join()
      assert(mp.Array("i", shm)[1] == 5 and shm:read(8, 5) == "child")
      assert(view[2] == 2.5)
      print("ok")
    """)
    assert r.stdout.strip() == "ok"


def spawn_holder(code):
    """Starts luamp running `code`, which prints one line and then waits on stdin."""
    p = subprocess.Popen([LUAMP, "-e", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    line = p.stdout.readline().strip()
    return p, line


@test
def root_killed_next_start_cleans_up():
    p, name = spawn_holder("""
      local shm = mp.SharedMemory{create = true, size = 4096}
      local kept = mp.SharedMemory{create = true, size = 4096, track = false}
      print(shm.name .. " " .. kept.name); io.stdout:flush()
      io.read()
    """)
    name, kept = name.split()
    try:
        assert exists(name) and exists(kept)
        trackers = [f for f in os.listdir("/dev/shm") if f.startswith(f"luamp-tracker-{p.pid}-")]
        assert len(trackers) == 1, trackers
        p.kill()
        p.wait()
        assert exists(name), "nothing cleans up before the next start"
        luamp("")                              # any start of luamp on the machine
        assert not exists(name), "the next luamp start unlinks what the killed tree created"
        assert not os.path.exists("/dev/shm/" + trackers[0]), "and removes the record"
        assert exists(kept), "track = false segments are left alone"
    finally:
        if exists(kept):
            os.unlink("/dev/shm/" + kept)


@test
def child_creator_killed_root_cleans_up_at_exit():
    r = luamp("""
      local q = mp.Queue()
      local p = mp.Process(function()
        local shm = mp.SharedMemory{create = true, size = 100}
        q:put(shm.name)
        while true do mp.sleep(1) end
      end)
      p:start()
      local name = q:get(10)
      local f = assert(io.open("/dev/shm/" .. name))
      f:close()
      p:kill(); p:join()
      assert(io.open("/dev/shm/" .. name), "still there while the script runs")
      print(name)
    """)
    assert not exists(r.stdout.strip()), "the root unlinks a killed child's segment when the script ends"


@test
def script_error_still_cleans_up():
    r = luamp("""
      local shm = mp.SharedMemory{create = true, size = 100}
      io.stdout:write(shm.name, "\\n")
      error("boom")
    """, check=False)
    assert r.returncode != 0
    assert not exists(r.stdout.strip())

finish()
