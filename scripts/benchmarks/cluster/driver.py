#!/usr/bin/env python3
"""scripts/bench cluster: luamp's remote pool against Celery and Ray's ray.util.multiprocessing.Pool,
all on one machine, 2 worker processes each, one Redis (started here on a free loopback port).

Celery and Ray are installed from PyPI into a virtualenv (.build/cluster-venv) on first use. The
runs are interleaved (luamp, Celery, Ray, luamp, ...) and the report gives medians and ratios of
medians: ratio = luamp time / other time. If Ray cannot start here, the report says so and goes on.

Usage: driver.py LUAMP RUNS
BENCH_CLUSTER_IMPLS=luamp[,celery][,ray] runs only those systems (Celery's unchunked 100k map alone
takes ~18 minutes here); BENCH_CASES=case,... only those cases of host.lua (luamp's side).
"""
import os, shutil, signal, socket, statistics, subprocess, sys, tempfile, time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(HERE)))
VENV = os.path.join(ROOT, ".build", "cluster-venv")


def venv():
    py = os.path.join(VENV, "bin", "python")
    probe = subprocess.run([py, "-c", "import celery, redis, ray"], capture_output=True) if os.path.exists(py) else None
    if probe is None or probe.returncode != 0:
        print("cluster: installing celery[redis] and ray into .build/cluster-venv (PyPI)", file=sys.stderr)
        subprocess.run([sys.executable, "-m", "venv", VENV], check=True)
        subprocess.run([py, "-m", "pip", "install", "-q", "celery[redis]", "ray"], check=True)
    return py


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def parse(out):
    res = {}
    for line in out.splitlines():
        parts = line.split()
        if len(parts) == 2 and not line.startswith("#"):
            try:
                res[parts[0]] = float(parts[1])
            except ValueError:
                pass
    return res


def wait_line(proc, word, secs):
    deadline = time.monotonic() + secs
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        if word in line:
            return True
    return False


def main():
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))   # run the clean-up below
    luamp, runs = sys.argv[1], int(sys.argv[2])
    chosen = [x for x in os.environ.get("BENCH_CLUSTER_IMPLS", "luamp,celery,ray").split(",") if x]
    py = venv() if chosen != ["luamp"] else sys.executable
    tmp = tempfile.mkdtemp(prefix="luamp-bench-cluster-")
    port = free_port()
    redis = subprocess.Popen(["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--dir", tmp, "--save", "",
                              "--appendonly", "no"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    procs = []
    try:
        for _ in range(200):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                time.sleep(0.05)
        key = "bench-" + os.urandom(8).hex()
        lenv = dict(os.environ, LUAMP_AUTHKEY=key, LUAMP_ADDRESS=f"redis://127.0.0.1:{port}")
        node = subprocess.Popen([luamp, "worker", f"redis://127.0.0.1:{port}", "--processes", "2", "--name", "bench"],
                                stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=lenv, start_new_session=True)
        procs.append(node)
        assert wait_line(node, "ready", 30), "luamp worker did not start"
        cenv = dict(os.environ, BENCH_REDIS_URL=f"redis://127.0.0.1:{port}/1", PYTHONPATH=HERE)
        clog = os.path.join(tmp, "celery.log")
        open(clog, "w").write("ready." if "celery" not in chosen else "")
        celery = None if "celery" not in chosen else subprocess.Popen([os.path.join(VENV, "bin", "celery"), "-A", "celery_app", "worker", "--pool=prefork",
                                   "--concurrency=2", "-l", "info", "--without-gossip", "--without-mingle", "--without-heartbeat"],
                                  cwd=HERE, env=cenv, stdout=open(clog, "w"), stderr=subprocess.STDOUT, start_new_session=True)
        procs += [celery] if celery else []
        deadline = time.monotonic() + 60
        while "ready." not in open(clog).read():
            assert time.monotonic() < deadline and celery.poll() is None, "celery worker did not start: " + open(clog).read()
            time.sleep(0.1)
        impls = {"luamp": ([luamp, os.path.join(HERE, "host.lua")], lenv),
                 "celery": ([py, os.path.join(HERE, "celery_host.py")], cenv),
                 "ray": ([py, os.path.join(HERE, "ray_host.py")], dict(os.environ, RAY_DISABLE_USAGE_STATS="1"))}
        impls = {k: v for k, v in impls.items() if k in chosen}
        samples = {k: {} for k in ("luamp", "celery", "ray")}
        notes = {}
        for r in range(runs):
            for name, (cmd, env) in impls.items():
                if name in notes:
                    continue
                p = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=HERE, timeout=3600)
                if p.returncode != 0:
                    if name == "ray":
                        notes[name] = "Ray could not run here: " + (p.stderr.strip().splitlines() or ["?"])[-1][:300]
                        continue
                    print(f"cluster/{name} failed:\n{p.stdout}\n{p.stderr}", file=sys.stderr)
                    sys.exit(1)
                for case, secs in parse(p.stdout).items():
                    samples[name].setdefault(case, []).append(secs)
                print(f"# run {r + 1} {name}: " + " ".join(f"{c}={v:.3f}" for c, v in parse(p.stdout).items()), file=sys.stderr)
        print(f"\ncluster: medians of {runs} run(s), one machine (2 cores, shared), 2 worker processes each;"
              " ratio = luamp time / other time\n")
        print(f"{'case':24} {'luamp s':>9} {'celery s':>9} {'ratio':>7} {'ray s':>9} {'ratio':>7}")
        med = {k: {c: statistics.median(v) for c, v in s.items()} for k, s in samples.items()}
        for case in med["luamp"]:
            l = med["luamp"][case]
            c = med["celery"].get(case)
            y = med["ray"].get(case)
            f = lambda x: f"{x:9.3f}" if x is not None else f"{'-':>9}"
            q = lambda x: f"{l / x:7.3f}" if x else f"{'-':>7}"
            print(f"{case:24} {f(l)} {f(c)} {q(c)} {f(y)} {q(y)}")
        big = "big_1mib_200"
        nbig = int(os.environ.get("BENCH_BIG_N", "200"))
        print(f"\nMB/s moved ({nbig} × 1 MiB in and out):", ", ".join(
            f"{k} {2 * nbig * 1.048576 / med[k][big]:.1f}" for k in med if big in med[k]))
        for n in notes.values():
            print(n)
    finally:
        for p in procs:
            try:
                os.killpg(p.pid, signal.SIGTERM)
                p.wait(timeout=20)
            except (ProcessLookupError, subprocess.TimeoutExpired):
                os.killpg(p.pid, signal.SIGKILL)
        redis.kill()
        redis.wait()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
