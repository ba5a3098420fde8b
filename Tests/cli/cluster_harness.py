"""cluster_harness: a real redis-server on a free loopback port in a temp dir, `luamp worker` nodes,
and a small RESP client to look inside Redis (test_cluster.py, test_cluster_netns.py)."""
import os, select, shutil, signal, socket, subprocess, tempfile, time

from harness import LUAMP

REDIS = shutil.which("redis-server") or "/usr/bin/redis-server"


def free_port(host="127.0.0.1"):
    s = socket.socket()
    s.bind((host, 0))
    port = s.getsockname()[1]
    s.close()
    return port


def wait_for(pred, secs, what):
    deadline = time.monotonic() + secs
    while time.monotonic() < deadline:
        v = pred()
        if v:
            return v
        time.sleep(0.02)
    raise AssertionError(f"timed out after {secs} s waiting for {what}")


class Resp:
    """Just enough of the Redis protocol to inspect keys and push forged messages."""

    def __init__(self, host, port, password=None, user=None):
        self.sock = socket.create_connection((host, port), timeout=5)
        self.buf = b""
        if password is not None:
            self.call(*(["AUTH", user, password] if user else ["AUTH", password]))

    def close(self):
        self.sock.close()

    def _line(self):
        while b"\r\n" not in self.buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("redis closed the connection")
            self.buf += chunk
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line

    def _exact(self, n):
        while len(self.buf) < n + 2:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("redis closed the connection")
            self.buf += chunk
        data, self.buf = self.buf[:n], self.buf[n + 2:]
        return data

    def _reply(self):
        line = self._line()
        t, rest = line[:1], line[1:]
        if t == b"+":
            return rest.decode()
        if t == b"-":
            raise RuntimeError(rest.decode())
        if t == b":":
            return int(rest)
        if t == b"$":
            n = int(rest)
            return None if n < 0 else self._exact(n)
        if t == b"*":
            n = int(rest)
            return None if n < 0 else [self._reply() for _ in range(n)]
        raise RuntimeError(f"bad reply {line!r}")

    def call(self, *args):
        out = [f"*{len(args)}\r\n".encode()]
        for a in args:
            b = a if isinstance(a, bytes) else str(a).encode()
            out.append(f"${len(b)}\r\n".encode() + b + b"\r\n")
        self.sock.sendall(b"".join(out))
        return self._reply()

    def keys(self, pattern="luamp:*"):
        return sorted(k.decode() for k in self.call("KEYS", pattern))


class Redis:
    """redis-server on a free port, data in a temp dir, no persistence; stop() kills it."""

    def __init__(self, host="127.0.0.1", port=None, extra=(), netns=None):
        self.host, self.port = host, port or free_port(host)
        self.dir = tempfile.mkdtemp(prefix="luamp-redis-")
        self.extra, self.netns = list(extra), netns
        self.proc = None
        self.start()

    def start(self):
        cmd = [REDIS, "--port", str(self.port), "--bind", self.host, "--dir", self.dir, "--save", "",
               "--appendonly", "no", "--protected-mode", "no", "--logfile", os.path.join(self.dir, "redis.log")] + self.extra
        if self.netns:
            cmd = ["ip", "netns", "exec", self.netns] + cmd
        self.proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        password = None
        if "--requirepass" in self.extra:
            password = self.extra[self.extra.index("--requirepass") + 1]

        def up():
            try:
                r = Resp(self.host, self.port, password) if not self.netns else None
                if r:
                    r.call("PING")
                    r.close()
                    return True
                return subprocess.run(["ip", "netns", "exec", self.netns, "redis-cli", "-h", self.host, "-p", str(self.port), "ping"],
                                      capture_output=True, text=True).stdout.strip() == "PONG"
            except OSError:
                return False
        wait_for(up, 10, "redis-server to accept connections")

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self.proc = None

    def url(self, auth=""):
        return f"redis://{auth}{self.host}:{self.port}"

    def client(self, **kw):
        return Resp(self.host, self.port, **kw)

    def close(self):
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


class Node:
    """`luamp worker URL --processes N --name NAME`; waits for its ready line."""

    def __init__(self, url, name, processes=1, key="secret", lease=1, extra=(), netns=None, env=None):
        self.name = name
        e = dict(os.environ, LUAMP_AUTHKEY=key)
        e.pop("LUAMP_ADDRESS", None)
        if env:
            e.update(env)
        self.err_path = tempfile.mktemp(prefix="luamp-node-err-")
        cmd = [LUAMP, "worker", url, "--processes", str(processes), "--name", name, "--lease", str(lease)] + list(extra)
        if netns:
            cmd = ["ip", "netns", "exec", netns] + cmd
        self.err = open(self.err_path, "w+")
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=self.err, env=e, start_new_session=True)
        self.ready_line = self._readline(20)
        assert "ready" in self.ready_line, f"node {name}: {self.ready_line!r} {self.log()}"

    def _readline(self, secs):
        r, _, _ = select.select([self.proc.stdout], [], [], secs)
        if not r:
            raise AssertionError(f"node {self.name} printed nothing in {secs} s: {self.log()}")
        return self.proc.stdout.readline().decode()

    @property
    def pid(self):
        return self.proc.pid

    def log(self):
        with open(self.err_path) as f:
            return f.read()

    def signal(self, sig):
        os.killpg(self.proc.pid, sig)

    def signal_all(self, sig):
        """The node, then each worker process's own process group (a whole machine stalling)."""
        from harness import children
        self.signal(sig)
        for pid in children(self.proc.pid):
            try:
                os.killpg(pid, sig)
            except ProcessLookupError:
                pass

    def stop(self):
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.proc.wait()
        self.err.close()


def run_host(script, url, key="secret", args=(), env=None, timeout=60, netns=None):
    """Runs a host script (LUAMP_ADDRESS and LUAMP_AUTHKEY set); returns the CompletedProcess."""
    e = dict(os.environ, LUAMP_AUTHKEY=key, LUAMP_ADDRESS=url)
    if env:
        e.update(env)
    cmd = [LUAMP, script] + list(args)
    if netns:
        cmd = ["ip", "netns", "exec", netns] + cmd
    return subprocess.run(cmd, capture_output=True, text=True, env=e, timeout=timeout)


def started(log):
    """The (pid, item) lines tasks appended to `log` when they started; [] before the first."""
    try:
        with open(log) as f:
            return [tuple(map(int, l.split())) for l in f if l.strip()]
    except FileNotFoundError:
        return []


def slow_map_script(n, pause):
    """A host script: a map of 1..n, chunksize 1; each task appends "<pid> <index>" to the log
    file arg[1] when it starts, sleeps `pause` s, returns {i, pid}; prints "i pid" per item."""
    return r"""
local log, xs = arg[1], {}
for i = 1, %d do xs[i] = i end
local pool = mp.Pool()
local r = pool:map(function(i)
  local f = io.open(log, "a") f:write(mp.getpid(), " ", i, "\n") f:close()
  mp.sleep(%s)
  return {i = i, pid = mp.getpid()}
end, xs, 1)
for i = 1, r.n do print(r[i].i, r[i].pid) end
pool:close() pool:join()
""" % (n, pause)
