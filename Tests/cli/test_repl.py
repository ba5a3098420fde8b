#!/usr/bin/env python3
"""The luamp REPL through a real pseudo-terminal: prompts, values, continuation, history, Ctrl-C, Ctrl-D.

Every wait reads until an expected text appears (generous timeouts), never sleep-and-hope.
Run: LUAMP=.build/debug/luamp python3 Tests/cli/test_repl.py
"""
import os
import time, pty, re, select, shutil, signal, sys, tempfile, time

LUAMP = os.environ.get("LUAMP") or os.path.join(os.path.dirname(__file__), "..", "..", ".build", "debug", "luamp")
TIMEOUT = 20.0
passed = failed = 0
TERM = "dumb"
CASES = []
ANSI = re.compile(rb"\x1b\[[0-9;?]*[a-zA-Z]|\x1b[=>]|\r")


class Session:
    """luamp in a pty; `expect` reads until a pattern shows up in the (escape-stripped) output."""

    def __init__(self, home, args=(), env_extra=None):
        env = dict(os.environ, HOME=home, TERM=TERM, COLUMNS="80", LINES="24")
        env.pop("LUA_INIT", None)
        env.pop("LUA_INIT_5_4", None)
        env.update(env_extra or {})
        self.pid, self.fd = pty.fork()
        if self.pid == 0:
            os.execve(LUAMP, [LUAMP, *args], env)
        self.buf = b""
        self.mark = 0
        self.status = None

    def text(self):
        return ANSI.sub(b"", self.buf).decode(errors="replace")

    def expect(self, pattern, timeout=TIMEOUT):
        """Waits until `pattern` (a regex) matches the output that came after the last `send`."""
        deadline = time.monotonic() + timeout
        while True:
            m = re.search(pattern, self.since_mark(), re.S)
            if m:
                return m
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"timed out waiting for {pattern!r}; output so far:\n{self.text()!r}")
            r, _, _ = select.select([self.fd], [], [], min(left, 0.5))
            if r:
                try:
                    data = os.read(self.fd, 4096)
                except OSError:
                    data = b""
                if not data:
                    raise AssertionError(f"EOF waiting for {pattern!r}; output:\n{self.text()!r}")
                self.buf += data

    def since_mark(self):
        # The mark is a raw byte offset, so escape sequences split across reads cannot shift it.
        return ANSI.sub(b"", self.buf[self.mark:]).decode(errors="replace")

    def set_mark(self):
        self.mark = len(self.buf)

    def send(self, s):
        self.set_mark()
        os.write(self.fd, s.encode() if isinstance(s, str) else s)

    def wait_exit(self, timeout=TIMEOUT):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            pid, st = os.waitpid(self.pid, os.WNOHANG)
            if pid:
                self.status = st
                return os.waitstatus_to_exitcode(st)
            r, _, _ = select.select([self.fd], [], [], 0.2)
            if r:
                try:
                    self.buf += os.read(self.fd, 4096)
                except OSError:
                    pass
        raise AssertionError("luamp did not exit; output:\n" + self.text())

    def close(self):
        if self.status is None:
            try:
                os.kill(self.pid, signal.SIGKILL)
                os.waitpid(self.pid, 0)
            except OSError:
                pass
        try:
            os.close(self.fd)
        except OSError:
            pass


def case(name):
    def register(fn):
        CASES.append((name, fn))
        return fn
    return register


def run_case(name, fn):
    global passed, failed
    home = tempfile.mkdtemp(prefix="luamp-repl-")
    s = None
    try:
        s = Session(home)
        s.expect(r"luamp \d+\.\d+\.\d+\r?\nLua 5\.4\.\d+  Copyright \(C\) 1994-\d+ Lua\.org, PUC-Rio")
        s.expect(r"> ")
        fn(s, home)
        passed += 1
        print("ok  ", f"[TERM={TERM}]", name)
    except Exception as e:
        failed += 1
        print("FAIL", f"[TERM={TERM}]", name, "\n   ", str(e).replace("\n", "\n    "))
    finally:
        if s:
            s.close()
        shutil.rmtree(home, ignore_errors=True)


@case("1+1 prints 2")
def _(s, home):
    s.send("1+1\n")
    s.expect(r"\n2\n> ")


@case("several values are tab-separated, strings unquoted at top level")
def _(s, home):
    s.send("1, 'a', nil, true\n")
    s.expect(r"\n1\ta\tnil\ttrue\n> ")


@case("a statement prints nothing and its effect persists")
def _(s, home):
    s.send("x = 40\n")
    s.expect(r"x = 40\n> ")
    s.send("x + 2\n")
    s.expect(r"\n42\n> ")


@case("multi-line function definition continues with >>")
def _(s, home):
    s.send("function f(a)\n")
    s.expect(r"\n>> ")
    s.send("  return a * 2\n")
    s.expect(r"\n>> ")
    s.send("end\n")
    s.expect(r"end\n> ")
    s.send("f(21)\n")
    s.expect(r"\n42\n> ")


@case("a table prints pretty (sorted keys, nested strings quoted, no table: 0x)")
def _(s, home):
    s.send("{3, 4, name = 'w', b = {x = 1}, [10] = true}\n")
    m = s.expect(r"\n(\{.*\})\n> ")
    assert m.group(1) == '{3, 4, [10] = true, b = {x = 1}, name = "w"}', m.group(1)


@case("a cyclic table is marked, a long one elided")
def _(s, home):
    s.send("t = {1}; t.self = t\n")
    s.expect(r"\n> ")
    s.send("t\n")
    m = s.expect(r"\n(\{.*?\})\n> ")
    assert "<cycle: table: 0x" in m.group(1), m.group(1)
    s.send("local r = {} for i = 1, 500 do r[i] = i end return r\n")
    m = s.expect(r"… \(450 more\)\n\}\n> ")


@case("a runtime error prints message and traceback, REPL goes on")
def _(s, home):
    s.send("error('boom')\n")
    s.expect(r"stdin:1: boom\nstack traceback:")
    s.expect(r"> ")
    s.send("1+2\n")
    s.expect(r"\n3\n> ")


@case("a syntax error is reported, REPL goes on")
def _(s, home):
    s.send("x = = 1\n")
    s.expect(r"stdin:1: unexpected symbol near '='")
    s.expect(r"> ")
    s.send("'ok'\n")
    s.expect(r"\nok\n> ")


@case("shared objects show their live state (tostring), alone and inside tables")
def _(s, home):
    s.send("q = mp.Queue(); q:put(1); lk = mp.Lock(); lk:acquire()\n")
    s.expect(r"> ")
    s.send("q\n")
    s.expect(r"\n<Queue size=1 maxsize=0>\n> ")
    s.send("{q, mp.Event(), mp.Value('i', 42)}\n")
    s.expect(r"\n\{<Queue size=1 maxsize=0>, <Event unset>, <Value 'i' 42>\}\n> ")
    s.send("lk\n")
    s.expect(r"\n<Lock locked by pid \d+>\n> ")


@case("the README's 'Watching objects live' transcript is what the REPL shows")
def _(s, home):
    with open(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "README.md")) as f:
        text = f.read()
    block = text.split("## Watching objects live", 1)[1].split("```", 2)[1].strip("\n").split("\n")
    steps = []                               # (input line, [expected output lines])
    for line in block:
        if line.startswith("> "):
            steps.append((line[2:], []))
        else:
            steps[-1][1].append(line)
    assert len(steps) >= 5, block
    for entry, outputs in steps:
        s.send(entry + "\n")
        # every pid in the transcript stands for whatever pid the run has
        want = "".join(re.escape(o).replace("4242", r"\d+").replace("4250", r"\d+") + r"\n" for o in outputs)
        s.expect(re.escape(entry) + r"\n" + want + r"> ")


@case("_PROMPT and _PROMPT2 set the prompts")
def _(s, home):
    s.send("_PROMPT = 'lua$ '; _PROMPT2 = '...'\n")
    s.expect(r"lua\$ ")
    s.send("do\n")
    s.expect(r"\.\.\.")
    s.send("end\n")
    s.expect(r"lua\$ ")


@case("history file written to $HOME/.luamp_history")
def _(s, home):
    s.send("y = 123\n")
    s.expect(r"\n> ")
    s.send("y\n")
    s.expect(r"\n123\n> ")
    s.send(b"\x04")
    assert s.wait_exit() == 0
    with open(os.path.join(home, ".luamp_history")) as f:
        lines = f.read().split("\n")
    assert "y = 123" in lines and "y" in lines, lines


@case("a multi-line entry is one history entry, also after a restart (Up gives the whole chunk)")
def _(s, home):
    with open(os.path.join(home, ".luamp_history"), "w") as f:
        f.write("old = 1\nold + 1\n")       # a history file of the old, one-line-per-entry kind
    s.send(b"\x04")
    assert s.wait_exit() == 0
    s2 = Session(home)
    try:
        s2.expect(r"> ")
        s2.send("function f(a)\n")
        s2.expect(r"\n>> ")
        s2.send("  return a * 2\n")
        s2.expect(r"\n>> ")
        s2.send("end\n")
        s2.expect(r"end\n> ")
        s2.send(b"\x04")
        assert s2.wait_exit() == 0
    finally:
        s2.close()
    s3 = Session(home)
    try:
        s3.expect(r"> ")
        s3.send(b"\x1b[A")                  # Up: the last entry, all three lines
        s3.expect(r"return a \* 2")
        s3.send("\n")
        s3.expect(r"\n> ")
        s3.send("f(21)\n")
        s3.expect(r"\n42\n> ")
        # f(21), the chunk twice (recalled and entered again), then the old file's entries,
        # still one per line
        s3.send(b"\x1b[A\x1b[A\x1b[A\x1b[A")
        s3.expect(r"old \+ 1")
        s3.send(b"\x15'fine'\n")            # Ctrl-U: a fresh line
        s3.expect(r"\nfine\n> ")
    finally:
        s3.close()


@case("Ctrl-C at the prompt drops the line and keeps the REPL alive")
def _(s, home):
    s.send("this is not lua")
    s.expect(r"this is not lua")
    s.send(b"\x03")
    s.expect(r"\n> ")
    s.send("6*7\n")
    s.expect(r"\n42\n> ")


@case("a storm of Ctrl-C and window changes at the prompt never crashes the REPL")
def _(s, home):
    # The handler only sets C flags: it used to write Swift globals, and a Ctrl-C landing while
    # the editor cleared one aborted luamp ("Simultaneous accesses … Fatal access conflict").
    deadline = time.monotonic() + (30 if os.environ.get("LUAMP_LONG") == "1" else 8)
    sent = 0
    while time.monotonic() < deadline:
        for _ in range(100):
            os.kill(s.pid, signal.SIGWINCH if sent % 50 == 0 else signal.SIGINT)
            sent += 1
        r, _, _ = select.select([s.fd], [], [], 0)
        if r:
            s.buf += os.read(s.fd, 65536)
        pid, st = os.waitpid(s.pid, os.WNOHANG)
        if pid:
            s.status = st
            raise AssertionError(f"luamp died ({os.waitstatus_to_exitcode(st)}) after {sent} signals:\n"
                                 + s.text()[-1500:])
    for attempt in range(3):             # a signal still pending may drop the first try
        s.send("6*7\n")
        try:
            s.expect(r"\n42\n> ", timeout=5 if attempt < 2 else TIMEOUT)
            break
        except AssertionError:
            if attempt == 2:
                raise


@case("Ctrl-C in a continuation drops the whole chunk")
def _(s, home):
    s.send("function g()\n")
    s.expect(r"\n>> ")
    s.send(b"\x03")
    s.expect(r"\n> ")
    s.send("g == nil\n")
    s.expect(r"\ntrue\n> ")


@case("Ctrl-C during while true do end prints interrupted! and the REPL keeps working")
def _(s, home):
    s.send("print('spinning') while true do end\n")
    s.expect(r"\nspinning\n")
    s.send(b"\x03")
    s.expect(r"interrupted!")
    s.expect(r"\n> ")
    s.send("1+1\n")
    s.expect(r"\n2\n> ")
    # and a second time: the handler is re-armed
    s.send("print('again') while true do end\n")
    s.expect(r"\nagain\n")
    s.send(b"\x03")
    s.expect(r"interrupted!.*\n> ")
    s.send("'still here'\n")
    s.expect(r"\nstill here\n> ")


@case("Ctrl-C during mp.sleep interrupts it")
def _(s, home):
    s.send("print('sleeping') mp.sleep(60)\n")
    s.expect(r"\nsleeping\n")
    s.send(b"\x03")
    s.expect(r"interrupted!.*\n> ")
    s.send("2+2\n")
    s.expect(r"\n4\n> ")


def live_children(pid):
    """Pids of the processes whose parent is `pid`, zombies left out (read from /proc)."""
    out = set()
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid and fields[0] != "Z":
            out.add(int(d))
    return out


def entered(s, line, answer, children):
    """Sends `line`, waits for `answer` (a pattern) and returns luamp's live children, asserting
    that there are `children` of them."""
    s.send(line)
    s.expect(answer)
    kids = live_children(s.pid)
    assert len(kids) == children, kids
    return kids


def interrupt_when_started(s, mark):
    """Waits until the two tasks created `mark`1 and `mark`2, then sends Ctrl-C: the line ends
    with "interrupted!" and the prompt comes back."""
    deadline = time.time() + 30
    while not (os.path.exists(f"{mark}1") and os.path.exists(f"{mark}2")):
        assert time.time() < deadline, "the tasks did not start"
        time.sleep(0.01)
    s.send(b"\x03")
    s.expect(r"interrupted!.*\n> ")


@case("an interrupted line's processes are stopped; earlier lines' keep running")
def _(s, home):
    s.send("p1 = mp.Process(function() mp.sleep(600) end) p1:start()\n")
    s.expect(r"\n> ")
    s.send("p2 = mp.Process(function() mp.sleep(600) end) p2:start() print('spinning') while true do end\n")
    s.expect(r"\nspinning\n")
    # Only luamp gets the SIGINT (a terminal's Ctrl-C would reach the children too and kill them
    # itself), so what happens to them is luamp's doing.
    os.kill(s.pid, signal.SIGINT)
    s.expect(r"interrupted!.*\n> ")
    s.send("p2:is_alive(), p2.exitcode\n")
    s.expect(r"\nfalse\t-15\n> ")
    s.send("p1:is_alive()\n")
    s.expect(r"\ntrue\n> ")
    # the same when the interrupt lands in mp.sleep, and with a process already ended
    s.send("p3 = mp.Process(function() mp.sleep(600) end) p3:start() "
           "p4 = mp.Process(function() end) p4:start() p4:join() print('sleeping') mp.sleep(600)\n")
    s.expect(r"\nsleeping\n")
    os.kill(s.pid, signal.SIGINT)
    s.expect(r"interrupted!.*\n> ")
    s.send("p3:is_alive(), p3.exitcode, p4.exitcode, p1:is_alive()\n")
    s.expect(r"\nfalse\t-15\t0\ttrue\n> ")
    s.send("p1:terminate() p1:join() print(p1.exitcode)\n")
    s.expect(r"\n-15\n> ")


@case("Ctrl-C stops a pool the interrupted line created; an earlier pool keeps working")
def _(s, home):
    before = entered(s, "pool0 = mp.Pool(2) print('ready')\n", r"\nready\n> ", 2)
    s.send("pool = mp.Pool(2) print('pooled') while true do end\n")
    s.expect(r"\npooled\n")
    created = live_children(s.pid) - before
    assert len(created) == 2, created
    s.send(b"\x03")                       # pool workers ignore SIGINT: only luamp can stop them
    s.expect(r"interrupted!.*\n> ")
    now = live_children(s.pid)
    assert not (now & created), f"workers of the interrupted line's pool still running: {now & created}"
    assert before <= now, f"pool0's workers are gone: {before - now}"
    s.send("select(2, pcall(pool.map, pool, print, {1}))\n")
    s.expect(r"the pool was terminated\n> ")
    s.send("table.concat(pool0:map(function(x) return x * 2 end, {1, 2, 3}), ',')\n")
    s.expect(r"\n2,4,6\n> ")


@case("a pool's tasks run to the end while the prompt waits for the next line")
def _(s, home):
    # 1,500 tasks with 4 KiB arguments and results: about 6 MiB each way, where the pipes take
    # 1 MiB each. Without the pool service at the prompt the workers stall once they are full.
    # The tasks wait for a file made once the prompt is back, so none runs during the line.
    marks, go = os.path.join(home, "marks"), os.path.join(home, "go")
    s.send(f"pool = mp.Pool(2) rs = {{}} arg = string.rep('a', 4096) "
           f"for i = 1, 1500 do rs[i] = pool:apply_async(function(a) while not io.open({go!r}) do mp.sleep(0.001) end "
           f"local f = io.open({marks!r}, 'a') f:write('x') f:close() return string.rep('r', #a) end, {{arg}}) end "
           f"print('submitted')\n")
    s.expect(r"\nsubmitted\n> ")
    open(go, "w").close()
    deadline = time.monotonic() + 60
    while (os.path.getsize(marks) if os.path.exists(marks) else 0) < 1500:
        assert time.monotonic() < deadline, f"only {os.path.getsize(marks) if os.path.exists(marks) else 0} of 1500 tasks ran while the prompt waited"
        time.sleep(0.02)
    s.send("n = 0 for i = 1, 1500 do if #rs[i]:get(5) == 4096 then n = n + 1 end end print(n)\n")
    s.expect(r"\n1500\n> ")


@case("Ctrl-C during map or get on an earlier line's pool cancels that call; the pool stays usable")
def _(s, home):
    mark = os.path.join(home, "started")
    workers = entered(s, "pool0 = mp.Pool(2) print('ready')\n", r"\nready\n> ", 2)
    for what in ("map", "get"):
        for x in (1, 2):
            if os.path.exists(f"{mark}{x}"):
                os.remove(f"{mark}{x}")
        task = f"function(x) io.open('{mark}' .. x, 'w'):close() mp.sleep(60) return x end"
        if what == "map":
            s.send(f"pool0:map({task}, {{1, 2}}, 1)\n")
        else:
            s.send(f"r = pool0:map_async({task}, {{1, 2}}, 1) r:get()\n")
        interrupt_when_started(s, mark)
        s.send("print(tostring(pool0))\n")
        s.expect(r"<Pool processes=2 state=RUN>\n> ")
        s.send("table.concat(pool0:map(function(x) return x * 2 end, {1, 2, 3}), ',')\n")
        s.expect(r"\n2,4,6\n> ")
        now = live_children(s.pid)
        assert len(now) == 2, f"pool0 should have 2 workers, has {now}"
        assert not (now & workers), "the workers running the interrupted tasks were replaced"
        workers = now
    s.send("print(tostring(r))\n")
    s.expect(r"<AsyncResult cancelled>")


@case("Ctrl-C during imap or join cancels that call's tasks; the pool stays")
def _(s, home):
    mark = os.path.join(home, "started")
    task = f"function(x) io.open('{mark}' .. x, 'w'):close() mp.sleep(60) return x end"

    def interrupt_and_clear():
        interrupt_when_started(s, mark)
        for x in (1, 2):
            os.remove(f"{mark}{x}")

    workers = entered(s, "pool0 = mp.Pool(2) print('ready')\n", r"\nready\n> ", 2)
    s.send(f"it = pool0:imap({task}, {{1, 2, 3}}) for v in it do print(v) end\n")
    interrupt_and_clear()
    s.send("print(tostring(pool0), (it()))\n")
    s.expect(r"<Pool processes=2 state=RUN>\tnil\n> ")
    s.send("table.concat(pool0:map(function(x) return x * 2 end, {1, 2, 3}), ',')\n")
    s.expect(r"\n2,4,6\n> ")
    now = live_children(s.pid)
    assert len(now) == 2 and not (now & workers), f"the imap's workers should be replaced: {workers} -> {now}"
    s.send(f"r = pool0:map_async({task}, {{1, 2}}, 1) pool0:close() pool0:join()\n")
    interrupt_and_clear()
    s.send("print(tostring(pool0), r:exception().kind)\n")
    s.expect(r"<Pool processes=2 state=CLOSE>\tCancelledError\n> ")
    s.send("pool0:join() print('joined')\n")
    s.expect(r"\njoined\n> ")
    deadline = time.time() + 30
    while live_children(s.pid):
        assert time.time() < deadline, f"workers left after join: {live_children(s.pid)}"
        time.sleep(0.01)


@case("Ctrl-Z at the prompt (no job control here: nothing stops) leaves the line editable")
def _(s, home):
    s.send("1+")
    s.expect(r"1\+")
    s.send(b"\x1a")
    s.send("1\n")
    s.expect(r"\n2\n> ")


@case("Ctrl-D exits with status 0")
def _(s, home):
    s.send(b"\x04")
    assert s.wait_exit() == 0


@case("Ctrl-D with children running says it waits for them, and waits")
def _(s, home):
    flag = os.path.join(home, "go")
    s.send("for i = 1, 2 do mp.Process(function() while not io.open(%r) do mp.sleep(0.01) end end):start() end\n" % flag)
    s.expect(r"\n> ")
    s.send(b"\x04")
    s.expect(r"waiting for 2 children \(Ctrl-C to stop them\)")
    assert s.status is None and len(live_children(s.pid)) == 2
    open(flag, "w").close()
    assert s.wait_exit() == 0


@case("Ctrl-C while Ctrl-D waits for a child stops it and leaves with 130")
def _(s, home):
    kids = entered(s, "p = mp.Process(mp.sleep, 600) p:start()\n", r"\n> ", 1)
    s.send(b"\x04")
    s.expect(r"waiting for 1 child \(Ctrl-C to stop it\)")
    os.kill(s.pid, signal.SIGINT)         # luamp alone: stopping the child is luamp's doing
    assert s.wait_exit() == 130
    assert not live_children(s.pid) and not any(os.path.exists(f"/proc/{k}/stat") and
                                                open(f"/proc/{k}/stat").read().split()[2] != "Z" for k in kids)


@case("os.exit(3) from the REPL exits 3")
def _(s, home):
    s.send("os.exit(3)\n")
    assert s.wait_exit() == 3


def script_then_repl():
    """-i after a script: the script's globals are there."""
    global passed, failed
    home = tempfile.mkdtemp(prefix="luamp-repl-")
    fd, path = tempfile.mkstemp(suffix=".lua")
    os.write(fd, b"answer = 42\n")
    os.close(fd)
    s = Session(home, ["-i", path])
    try:
        s.expect(r"luamp \d")
        s.expect(r"> ")
        s.send("answer\n")
        s.expect(r"\n42\n> ")
        s.send(b"\x04")
        assert s.wait_exit() == 0
        passed += 1
        print("ok   -i script leaves its globals to the REPL")
    except Exception as e:
        failed += 1
        print("FAIL -i script leaves its globals to the REPL\n   ", e)
    finally:
        s.close()
        os.unlink(path)
        shutil.rmtree(home, ignore_errors=True)


def suspend_and_resume_under_bash():
    """Ctrl-Z under a job-control shell stops luamp with the terminal restored; fg redraws the line."""
    global passed, failed
    name = "Ctrl-Z under bash: stopped, terminal sane, fg brings the half-typed line back"
    if not shutil.which("bash"):
        print("skip", name)
        return
    home = tempfile.mkdtemp(prefix="luamp-repl-")
    b = Session.__new__(Session)
    env = dict(os.environ, HOME=home, TERM="xterm", PS1="BASH$ ")
    b.pid, b.fd = pty.fork()
    if b.pid == 0:
        os.execve(shutil.which("bash"), ["bash", "--norc", "--noprofile", "-i"], env)
    b.buf, b.mark, b.status = b"", 0, None
    try:
        b.expect(r"BASH\$ ")
        b.send(os.path.abspath(LUAMP) + "\n")
        b.expect(r"\n> ")
        b.send("x = 5\n")
        b.expect(r"\n> ")
        b.send("1+")
        b.expect(r"1\+")
        b.send(b"\x1a")
        b.expect(r"Stopped.*BASH\$ ")
        b.send("stty -a\n")
        b.expect(r" icanon .* echo .*BASH\$ ")   # bash got a cooked terminal back
        b.send("fg\n")
        b.expect(r"luamp.*> 1\+")                  # the half-typed line is redrawn
        b.send("x\n")
        b.expect(r"x\n6\n> ")
        b.send(b"\x04")
        b.expect(r"BASH\$ ")
        passed += 1
        print("ok  ", name)
    except Exception as e:
        failed += 1
        print("FAIL", name, "\n   ", str(e).replace("\n", "\n    "))
    finally:
        b.close()
        shutil.rmtree(home, ignore_errors=True)


# A dumb terminal and a real one (readline then emits cursor and bracketed-paste sequences).
for TERM in ("dumb", "xterm-256color"):
    for name, fn in CASES:
        run_case(name, fn)
script_then_repl()
suspend_and_resume_under_bash()
print(f"{passed} passed, {failed} failed")
sys.exit(1 if failed else 0)
