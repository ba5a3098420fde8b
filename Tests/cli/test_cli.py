#!/usr/bin/env python3
"""luamp as a drop-in `lua`: the applicable cases of Lua 5.4's testes/main.lua, plus luamp's own promises.

Where lua5.4 is the reference, a case runs the same invocation through both and compares exit
status, stdout and stderr (program name and the C frame `[C]: in ?` that lua.c's pmain adds at the
bottom of tracebacks normalised away).
Run: LUAMP=.build/debug/luamp python3 Tests/cli/test_cli.py
"""
import os, re, shutil, signal, subprocess, sys, tempfile, time

LUAMP = os.path.abspath(os.environ.get("LUAMP") or os.path.join(os.path.dirname(__file__), "..", "..", ".build", "debug", "luamp"))
LUA = shutil.which("lua5.4")
TMP = tempfile.mkdtemp(prefix="luamp-cli-")
PROG = os.path.join(TMP, "prog.lua")
OTHER = os.path.join(TMP, "other.lua")
passed = failed = 0


def base_env(extra=None):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LUA_INIT", "LUA_PATH", "LUA_CPATH"))}
    env.update(extra or {})
    return env


def prepfile(text, path=PROG):
    with open(path, "wb") as f:
        f.write(text.encode("latin-1") if isinstance(text, str) else text)


def run(args, stdin=b"", env=None, prog=LUAMP, argv0=None, timeout=60):
    """Runs prog with args; returns (status, stdout, stderr) as text."""
    if isinstance(stdin, str):
        stdin = stdin.encode()
    p = subprocess.run([argv0 or prog, *args], executable=prog, input=stdin, capture_output=True,
                       env=base_env(env), timeout=timeout, cwd=TMP)
    return p.returncode, p.stdout.decode(errors="replace"), p.stderr.decode(errors="replace")


def normalise(text, prog):
    text = text.replace(prog + ":", "PROG:").replace("usage: " + prog, "usage: PROG")
    return re.sub(r"\n\t\[C\]: in \?(?=\n|$)", "", text)


def check(name, cond, detail=""):
    global passed, failed
    if cond:
        passed += 1
        print("ok  ", name)
    else:
        failed += 1
        print("FAIL", name, ("\n    " + str(detail).replace("\n", "\n    ")) if detail else "")


def same_as_lua(name, args, stdin=b"", env=None, compare_stderr=True):
    """Runs luamp and lua5.4 the same way and requires the same status, stdout and stderr."""
    a = run(args, stdin, env)
    b = run(args, stdin, env, prog=LUA)
    got = (a[0], a[1], normalise(a[2], LUAMP) if compare_stderr else "")
    want = (b[0], b[1], normalise(b[2], LUA) if compare_stderr else "")
    check(name, got == want, f"luamp: {got!r}\nlua5.4: {want!r}")
    return a


def expect(name, args, status=0, out=None, err=None, stdin=b"", env=None, err_contains=None, argv0=None):
    rc, o, e = run(args, stdin, env, argv0=argv0)
    problems = []
    if rc != status:
        problems.append(f"status {rc}, expected {status}")
    if out is not None and o != out:
        problems.append(f"stdout {o!r}, expected {out!r}")
    if err is not None and e != err:
        problems.append(f"stderr {e!r}, expected {err!r}")
    for piece in err_contains or []:
        if piece not in e:
            problems.append(f"stderr lacks {piece!r}: {e!r}")
    check(name, not problems, "\n".join(problems))
    return rc, o, e


# ---- version, usage, options ------------------------------------------------------------------

rc, o, e = run(["-v"])
lua_v = run(["-v"], prog=LUA)
check("-v prints 'luamp X.Y.Z', then Lua's own version line (what lua5.4 -v prints), and exits 0",
      rc == 0 and re.fullmatch(r"luamp \d+\.\d+\.\d+\n", o.split("\n", 1)[0] + "\n") is not None
      and o.split("\n", 1)[1] == lua_v[1] and lua_v[1].startswith("Lua 5.4") and "PUC-Rio" in lua_v[1], (rc, o, e, lua_v))
luamp_line = o.split("\n", 1)[0] + "\n"   # luamp's stdout is this line, then exactly what lua5.4 prints
version_line = o
expect("-v -e runs after printing the version", ["-v", "-e", "print'hello'"], out=version_line + "hello\n")
rc, o, e = run(["-v", "-e", "print'hello'"])
check("-v: 'PUC-Rio' then 'hello' on the next line (testes/main.lua)", "PUC-Rio\nhello" in o and o == luamp_line
      + run(["-v", "-e", "print'hello'"], prog=LUA)[1], o)
rc, o, e = run(["-h"])
check("-h prints usage to stdout, exit 0", rc == 0 and "usage: " + LUAMP in o and "-l g=mod" in o, (rc, o, e))
rc, o, e = run(["--help"])
check("--help prints usage too", rc == 0 and "Available options are:" in o, (rc, o, e))
for bad in ["-x", "---", "-Ex", "-vv", "-iv", "-Wx", "--x"]:
    expect(f"unknown option {bad}: message + usage on stderr, exit 1", [bad], status=1, out="",
           err_contains=[f"{LUAMP}: unrecognized option '{bad}'\nusage: {LUAMP} [options] [script [args]]\n"])
expect("'-e' needs argument", ["-e"], status=1, err_contains=["'-e' needs argument", "usage:"])
expect("'-l' needs argument", ["-l"], status=1, err_contains=["'-l' needs argument"])
expect("-e followed by an option counts as missing", ["-e", "-v"], status=1, err_contains=["'-e' needs argument"])
for bad in [["-x"], ["---"], ["-Ex"], ["-e"], ["-l"], ["-vv"]]:
    same_as_lua(f"usage text for {bad[0]} matches lua5.4's (but for -h)",
                bad, compare_stderr=False)
expect("-e with a syntax error", ["-e", "a"], status=1, err_contains=["syntax error"])
same_as_lua("-e syntax error reported as lua does", ["-e", "x = = 1"])

# ---- -e ordering, -l ---------------------------------------------------------------------------

same_as_lua("-e chunks run in order, joined or separate", ["-eprint(1)", "-ea=3", "-e", "print(a)"])
LIB1, LIB2 = os.path.join(TMP, "lib1"), os.path.join(TMP, "lib2")   # no dots: require maps them to '/'
prepfile("print(1); a=2; return {x=15}", LIB1)
prepfile(f"print(a); print(_G['{LIB1}'].x)", LIB2)
expect("-l over multiple libraries", ["-l", LIB1, f"-l{LIB2}", "-lstring", "-l", "io", LIB2],
       out="1\n2\n15\n2\n15\n", env={"LUA_PATH": "?;;"})
prepfile("print(str.upper'alo alo', m.max(10, 20))")
expect("-l g=mod puts the module in global g", ["-l", "str=string", "-lm=math", "-e", "print(m.sin(0))", PROG],
       out="0.0\nALO ALO\t20\n")
expect("-e and -l interleave in command-line order", ["-e", "x = 1", "-l", "s=string", "-e", "print(x, s.rep('ab', 2))"],
       out="1\tabab\n")
expect("-l of a missing module fails with lua's message", ["-l", "no_such_mod_xyz"], status=1,
       err_contains=[f"{LUAMP}: module 'no_such_mod_xyz' not found"])
expect("-l mp gives the mp module", ["-l", "m=mp", "-e", "print(m == mp, type(m.getpid()))"], out="true\tnumber\n")
expect("require 'mp' returns the global mp", ["-e", "print(require 'mp' == mp)"], out="true\n")

# ---- stdin as the script -----------------------------------------------------------------------

prepfile("")
same_as_lua("- runs an empty stdin", ["-"], stdin=b"")
prepfile("  print(\n1, a\n)\n")
expect("- runs stdin as the script", ["-"], stdin=open(PROG, "rb").read(), out="1\tnil\n")
expect("no script, stdin not a terminal: run stdin", [], stdin="print(10)\nprint(2)\n", out="10\n2\n")
expect("- stops options: -h after it is an argument", ["-", "-h"], stdin="print(arg[1])", out="-h\n")
expect("script args reach stdin's chunk as ...", ["-", "a", "b"], stdin="print(...)", out="a\tb\n")
same_as_lua("a file named '-' after --", ["--", "-"])

# ---- shebang, BOM, binary chunks ---------------------------------------------------------------

prepfile("#!/usr/bin/env luamp\nprint('shebang skipped')\n")
expect("first line starting with # is skipped", [PROG], out="shebang skipped\n")
prepfile("#comment in 1st line without \\n at the end")
expect("a lone # line without newline", [PROG], out="")
for i, (content, want) in enumerate([(b"\xEF\xBB\xBF", ""), (b"\xEF\xBB\xBFprint(3)", "3\n"),
                                     (b"\xEF\xBB\xBF# comment!!\nprint(3)", "3\n")]):
    prepfile(content)
    same_as_lua(f"BOM case {i + 1}", [PROG])
for i, content in enumerate([b"\xEF", b"\xEF\xBB", b"\xEFprint(3)"]):
    prepfile(content)
    same_as_lua(f"bad BOM case {i + 1}", [PROG])
prepfile(b"#comment\n" + subprocess.run([LUA, "-e", "io.write(string.dump(load('print(3)')))"],
                                        capture_output=True).stdout)
expect("first-line comment before a binary chunk", [PROG], out="3\n")

# ---- environment: LUA_PATH, LUA_CPATH, LUA_INIT, -E --------------------------------------------

prepfile("print(package.path)")
expect("LUA_PATH sets package.path", [PROG], out="x\n", env={"LUA_PATH": "x"})
expect("LUA_PATH_5_4 wins over LUA_PATH", [PROG], out="y\n", env={"LUA_PATH_5_4": "y", "LUA_PATH": "x"})
prepfile("print(package.cpath)")
expect("LUA_CPATH sets package.cpath", [PROG], out="xuxu\n", env={"LUA_CPATH": "xuxu"})
expect("LUA_CPATH_5_4 wins", [PROG], out="yacc\n", env={"LUA_CPATH_5_4": "yacc", "LUA_CPATH": "x"})
for p in [";", ";;", "a;;b", ";;b", "a;;", "a;b;;c"]:
    prepfile("print(package.path)")
    same_as_lua(f"LUA_PATH {p!r} expands ;; like lua", [PROG], env={"LUA_PATH": p})
prepfile("print(X)")
expect("LUA_INIT runs first and sees arg", [PROG, "3.2"], out="3.2\n", env={"LUA_INIT": "X=tonumber(arg[1])"})
expect("LUA_INIT_5_4 wins over LUA_INIT", [PROG], out="10\n", env={"LUA_INIT_5_4": "X=10", "LUA_INIT": "X=3"})
prepfile("x = x or 10; print(x); x = x + 1")
expect("LUA_INIT=@file runs the file", [PROG], out="10\n11\n", env={"LUA_INIT": "@" + PROG})
expect("an error in LUA_INIT stops with status 1", [], status=1, out="",
       err_contains=[f"{LUAMP}: LUA_INIT:1: msg\nstack traceback:"], env={"LUA_INIT": "error('msg')"})
same_as_lua("an error in LUA_INIT is reported as lua does", ["-e", ""], env={"LUA_INIT": "error('msg')"})
expect("an error in LUA_INIT_5_4 names it", ["-e", ""], status=1, err_contains=["LUA_INIT_5_4:1: boom"],
       env={"LUA_INIT_5_4": "error('boom')"})
expect("a missing LUA_INIT @file", ["-e", ""], status=1, err_contains=["cannot open /no/such/init.lua"],
       env={"LUA_INIT": "@/no/such/init.lua"})
prepfile("print(package.path, package.cpath)")
rc, o, e = expect("-E ignores LUA_INIT, LUA_PATH and LUA_CPATH", ["-E", PROG],
                  env={"LUA_INIT": "error(10)", "LUA_PATH": "xxx", "LUA_CPATH": "xxx"})
check("-E gives the default paths", "xxx" not in o and "lua" in o, o)
rc2, o2, _ = run([PROG], env={})
check("-E paths equal an empty environment's", o2 == o, (o, o2))
same_as_lua("-E paths equal lua5.4 -E paths", ["-E", PROG], env={"LUA_PATH": "xxx", "LUA_CPATH": "xxx"})

# ---- the arg table and ... --------------------------------------------------------------------

prepfile(f"""
assert(#arg == 3 and arg[1] == 'a' and arg[2] == 'b' and arg[3] == 'c')
assert(arg[-1] == '--' and arg[-2] == "-e " and arg[-3] == {LUAMP!r})
assert(arg[4] == nil and arg[-4] == nil)
local a, b, c = ...
assert(... == 'a' and a == 'a' and b == 'b' and c == 'c')
print(arg[0] == {PROG!r})
""")
expect("arg: negative indices for interpreter and options, ... for the script", ["-e ", "--", PROG, "a", "b", "c"],
       out="true\n")
expect("arg without a script: options from 1", ["-e", "print(arg[0], arg[1], arg[2], arg[-1])"],
       out=f"{LUAMP}\t-e\tprint(arg[0], arg[1], arg[2], arg[-1])\tnil\n")
prepfile("assert(arg)")
prepfile("assert(arg); print('ok')", OTHER)
expect("arg is set before -l libraries load", [f"-l{os.path.basename(PROG)[:-4]}", "-"],
       stdin=open(OTHER).read(), out="ok\n", env={"LUA_PATH": os.path.join(TMP, "?.lua") + ";;"})
expect("changing arg before the script changes ...", ["-e", "arg[1] = 100", "-"], stdin="print(...)", out="100\n")
expect("arg that is not a table", ["-e", "arg = 1", "-"], stdin="", status=1,
       err_contains=["'arg' is not a table"])
prepfile("print(({...})[30])")
expect("many arguments", [PROG] + ["a"] * 30, out="a\n")
prepfile("print(select('#', ...), ...)")
expect("empty and spaced arguments survive", [PROG, "", "x y", "-e"], out="3\t\tx y\t-e\n")

# ---- errors and exit statuses ------------------------------------------------------------------

prepfile("local function f() error('boom') end\nf()\n")
rc, o, e = expect("uncaught error: 'progname: msg' + traceback, status 1", [PROG], status=1, out="",
                  err_contains=[f"{LUAMP}: {PROG}:1: boom\nstack traceback:\n\t[C]: in function 'error'\n",
                                f"{PROG}:1: in local 'f'", f"{PROG}:2: in main chunk"])
same_as_lua("uncaught error output matches lua5.4", [PROG])
expect("the program name is argv[0] as invoked", [PROG], status=1, argv0="myluamp",
       err_contains=[f"myluamp: {PROG}:1: boom"])
prepfile("""
debug = require "debug"
m = {x=0}
setmetatable(m, {__tostring = function(x)
  return tostring(debug.getinfo(4).currentline + x.x)
end})
error(m)
""")
expect("error object with __tostring", [PROG], status=1, err=f"{LUAMP}: 7\n")
same_as_lua("error object with __tostring as lua", [PROG])
prepfile("error{}")
expect("error object without __tostring", [PROG], status=1,
       err_contains=[f"{LUAMP}: (error object is a table value)\nstack traceback:"])
same_as_lua("table error object as lua", [PROG])
same_as_lua("nil error object as lua", ["-e", "error()"])
expect("a missing script", ["/no/such/script.lua"], status=1,
       err=f"{LUAMP}: cannot open /no/such/script.lua: No such file or directory\n")
same_as_lua("a missing script as lua", ["/no/such/script.lua"])
prepfile("x = = 1")
same_as_lua("a script with a syntax error", [PROG])
for code, status in [("os.exit(nil, true)", 0), ("os.exit(0, true)", 0), ("os.exit(true, true)", 0),
                     ("os.exit(1, true)", 1), ("os.exit(false, true)", 1), ("os.exit(7)", 7), ("os.exit(0)", 0),
                     ("os.exit(false)", 1), ("os.exit(255)", 255)]:
    prepfile(code)
    expect(f"{code} exits {status} silently", [PROG], status=status, out="", err="")
prepfile("""
local x <close> = setmetatable({}, {__close = function (self, err) assert(err == nil) print("Ok") end})
local e1 <close> = setmetatable({}, {__close = function () print(120) end})
os.exit(true, true)
""")
expect("to-be-closed variables run on os.exit(true, true)", [PROG], out="120\nOk\n")
prepfile(f"io.output({os.path.join(TMP, 'out.txt')!r}); io.write('alo')")
expect("an open file is flushed at exit", [PROG])
check("... and holds its data", open(os.path.join(TMP, "out.txt")).read() == "alo")
prepfile("io.write('no newline')")
expect("stdout is flushed at exit", [PROG], out="no newline")

# ---- warnings ----------------------------------------------------------------------------------

expect("no warnings by default", [], stdin="io.stderr:write(1); warn[[XXX]]", err="1")
prepfile("""
warn("@allow")
warn("@off", "XXX", "@off")
warn("@off")
warn("@on", "YYY", "@on")
warn("@off")
warn("@on")
warn("", "@on")
warn("@on")
warn("Z", "Z", "Z")
""")
expect("-W turns warnings on", ["-W", PROG], err="Lua warning: @offXXX@off\nLua warning: @on\nLua warning: ZZZ\n")
prepfile("""
u1 = setmetatable({}, {__gc = function () error("XYZ") end})
u2 = setmetatable({}, {__gc = function () error("ZYX") end})
""")
rc, o, e = expect("finalizers run when the state closes (warnings on)", ["-W", PROG])
check("finalizer errors warn in reverse order", "ZYX)" in e and "XYZ)" in e and e.index("ZYX)") < e.index("XYZ)"), e)
prepfile("""
print("creating 1")
setmetatable({}, {__gc = function () print(1) end})
print("creating 2")
setmetatable({}, {__gc = function ()
  print("2")
  print("creating 3")
  setmetatable({}, {__gc = function () print(3) end})
  print(collectgarbage())
  os.exit(0, true)
end})
""")
same_as_lua("finalizer order at close (lua 5.2 bug case)", ["-W", PROG])

# ---- interactive mode on a non-terminal stdin --------------------------------------------------

prepfile("(6*2-6) -- ===\na =\n10\nprint(a)\na")
rc, o, e = run(["-e", "_PROMPT='' _PROMPT2=''", "-i"], stdin=open(PROG).read())
lua_o = run(["-e", "_PROMPT='' _PROMPT2=''", "-i"], stdin=open(PROG).read(), prog=LUA)[1]
check("-i reads chunks from stdin, expressions print", rc == 0 and o.startswith(version_line) and o == luamp_line + lua_o
      and all(line in o for line in ["6\n", "10\n", "10\n", "\n"]), (rc, o, e))
s = """ --
function f ( x )
  local a = [[
xuxu
]]
  local b = "\\
xuxu\\n"
  if x == 11 then return 1 + 12 , 2 + 20 end  --[[ test multiple returns ]]
  return x + 1
  --\\\\
end
return( f( 100 ) )
assert( a == b )
do return f( 11 ) end  """.replace(" ", "\n\n")
rc, o, e = run(["-e", "_PROMPT='' _PROMPT2=''", "-i"], stdin=s)
lua_o = run(["-e", "_PROMPT='' _PROMPT2=''", "-i"], stdin=s, prog=LUA)[1]
check("-i: a chunk broken over many lines", rc == 0 and "101\n" in o and "13\t22\n" in o and o == luamp_line + lua_o, (rc, o, e))
rc, o, e = run(["-e", "_PROMPT='alo'", "-i"], stdin=" --\na = 2\n")
check("-i: _PROMPT is used", re.search("alo.*alo.*alo", o, re.S) is not None, o)
rc, o, e = run(["-i"], stdin=" --\na = 2\n")
check("-i: default prompt", re.search("> .*> .*> ", o, re.S) is not None, o)
rc, o, e = run(["-i"], stdin="do\nend\n")
check("-i: continuation prompt", ">> " in o, o)
rc, o, e = run(["-e", "local C = 0; _PROMPT=setmetatable({},{__tostring = function () C = C + 1; return C end})", "-i"],
               stdin=" --\na = 2\n")
check("-i: a prompt with __tostring", re.search(r"1.*2.*3", o.split("\n", 1)[1], re.S) is not None, o)
# The same transcripts as lua5.4 -i (readline echoes each line it reads from a pipe): luamp's stdout
# is its own version line, then byte for byte what lua5.4 writes.
for name, args, stdin in [
        ("-i: a session piped in gives lua5.4's transcript", ["-i"], "x = 1\nx\nfunction f()\nreturn 2 end\nf()\n"),
        ("-i: empty prompts, an expression, a chunk over lines", ["-e", "_PROMPT='' _PROMPT2=''", "-i"],
         "(6*2-6) -- ===\na =\n10\nprint(a)\na"),
        ("-i: a non-string _PROMPT goes through __tostring at each prompt (1, 2, 3)",
         ["-e", "local C = 0; _PROMPT=setmetatable({},{__tostring = function () C = C + 1; return C end})", "-i"],
         " --\na = 2\n"),
        ("-i: an error and the session going on", ["-i"], "error('x')\nprint('after')\n"),
        ("-i: a first line '=expr' means return (testes/main.lua)", ["-e", "_PROMPT='' _PROMPT2=''", "-i"],
         "a = [[b\nc\nd\ne]]\n=a"),
        ("-i: a replaced print gets the values", ["-e", "print = function(...) io.write('[', select('#', ...), ']\\n') end", "-i"],
         "1, 2\n'x'\n")]:
    a = run(args, stdin=stdin)
    b = run(args, stdin=stdin, prog=LUA)
    check(name, (a[0], a[1], normalise(a[2], LUAMP)) == (b[0], luamp_line + b[1], normalise(b[2], LUA)), f"luamp: {a!r}\nlua5.4: {b!r}")
a = run(["-e", "print=nil", "-i"], stdin="10\n")
b = run(["-e", "print=nil", "-i"], stdin="10\n", prog=LUA)
check("-i with print=nil: \"error calling 'print' (attempt to call a nil value)\" on stderr, as lua5.4",
      a == (b[0], luamp_line + b[1], b[2]) and a[2] == "error calling 'print' (attempt to call a nil value)\n", (a, b))
rc, o, e = run(["-i"], stdin="error('x')\nprint('after')\n")
check("-i: an error does not end the session; no progname in REPL errors",
      rc == 0 and "after" in o and e.startswith("stdin:1: x\nstack traceback:"), (rc, o, e))
rc, o, e = run(["-i"], stdin="os.exit(4)\n")
check("-i: os.exit(4) exits 4", rc == 4, (rc, o, e))

# ---- Ctrl-C ------------------------------------------------------------------------------------


def interrupt_case(name, code, want_status, want_out, want_err=None):
    p = subprocess.Popen([LUAMP, "-e", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=base_env())
    try:
        first = p.stdout.readline().decode()   # the script says it is ready
        p.send_signal(signal.SIGINT)
        out, err = p.communicate(timeout=30)
        out, err = first + out.decode(), err.decode()
        ok = p.returncode == want_status and out == want_out and all(w in err for w in (want_err or []))
        check(name, ok, (p.returncode, out, err))
    except subprocess.TimeoutExpired:
        p.kill()
        p.wait()
        check(name, False, "timed out")


interrupt_case("SIGINT inside pcall is caught and the script goes on (status 0)",
               "pcall(function () print(12); io.stdout:flush(); while true do end end); print(42)", 0, "12\n42\n")
interrupt_case("uncaught SIGINT: 'luamp: ...interrupted!' + traceback, status 130",
               "print(1); io.stdout:flush(); while true do end", 130, "1\n",
               [f"{LUAMP}: ", "interrupted!\nstack traceback:\n"])
interrupt_case("SIGINT during mp.sleep: interrupted!, status 130",
               "print(1); io.stdout:flush(); mp.sleep(60)", 130, "1\n", ["interrupted!"])
interrupt_case("an error after a caught SIGINT is an ordinary error (status 1)",
               "pcall(function () print(1); io.stdout:flush(); while true do end end); error('later')", 1, "1\n",
               ["later"])

# ---- examples ----------------------------------------------------------------------------------

root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
rc, o, e = run([os.path.join(root, "examples", "args.lua"), "one", "two"])
check("examples/args.lua shows arg and ...", rc == 0 and "one" in o and "two" in o, (rc, o, e))
rc, o, e = run([os.path.join(root, "examples", "by_reference.lua")])
check("examples/by_reference.lua: modules, a registered class and a file cross",
      rc == 0 and o == "[3,5] [6,10]\ntrue\nsecond\n", (rc, o, e))
rc, o, e = run([os.path.join(root, "examples", "pool_futures.lua")])
check("examples/pool_futures.lua: completion order, a timeout in a map, error values, cancel",
      rc == 0 and "finished\t" in o and "3\tTimeoutError\n" in o and "RemoteError\t42\n" in o
      and "cancelled a running task:\ttrue\ttrue" in o and "the last task ran\n" in o, (rc, o, e))

shutil.rmtree(TMP, ignore_errors=True)
print(f"{passed} passed, {failed} failed")
sys.exit(1 if failed else 0)
