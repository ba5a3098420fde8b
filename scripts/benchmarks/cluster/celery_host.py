"""scripts/bench cluster, Celery's side: the same cases as host.lua, against a `celery worker
--pool=prefork --concurrency=2` started by driver.py. Prints `CASE SECONDS`."""
import os, sys, time
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from celery import group
from celery_app import sq, ident

N = int(os.environ.get("BENCH_MAP_N", "100000"))
RTT = int(os.environ.get("BENCH_RTT_N", "2000"))
BIG = int(os.environ.get("BENCH_BIG_N", "200"))

group(sq.s(i) for i in range(4))().get(timeout=60)      # warm
t = time.monotonic()
r = group(sq.s(i) for i in range(N))().get(timeout=3600)   # Celery does not chunk by default
dt = time.monotonic() - t
assert len(r) == N and r[-1] == (N - 1) ** 2
print("map_100k", dt, flush=True)

t = time.monotonic()
for i in range(RTT):
    assert sq.delay(i).get(timeout=60) == i * i
print("apply_async_get_2000", time.monotonic() - t, flush=True)

blob = "x" * (1024 * 1024)
blobs = [blob + str(i) for i in range(BIG)]
t = time.monotonic()
back = group(ident.s(b) for b in blobs)().get(timeout=3600)
dt = time.monotonic() - t
assert back[-1] == blobs[-1]
print("big_1mib_200", dt)
print(f"# big_1mib_200 MB/s (in + out) {2 * BIG * 1.048576 / dt:.1f}")
