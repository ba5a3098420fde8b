"""scripts/bench cluster, Ray's side: ray.util.multiprocessing.Pool(2) (a local Ray cluster that
this script starts), the same cases as host.lua. Prints `CASE SECONDS`."""
import os, time
import ray
from ray.util.multiprocessing import Pool

N = int(os.environ.get("BENCH_MAP_N", "100000"))
RTT = int(os.environ.get("BENCH_RTT_N", "2000"))
BIG = int(os.environ.get("BENCH_BIG_N", "200"))


def sq(x):
    return x * x


def ident(s):
    return s


ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
pool = Pool(processes=2)
pool.map(sq, range(4))
t = time.monotonic()
r = pool.map(sq, range(N))            # Ray's own default chunking
dt = time.monotonic() - t
assert len(r) == N and r[-1] == (N - 1) ** 2
print("map_100k", dt, flush=True)

t = time.monotonic()
for i in range(RTT):
    assert pool.apply_async(sq, (i,)).get() == i * i
print("apply_async_get_2000", time.monotonic() - t, flush=True)

blob = "x" * (1024 * 1024)
blobs = [blob + str(i) for i in range(BIG)]
t = time.monotonic()
back = pool.map(ident, blobs, chunksize=1)
dt = time.monotonic() - t
assert back[-1] == blobs[-1]
print("big_1mib_200", dt)
print(f"# big_1mib_200 MB/s (in + out) {2 * BIG * 1.048576 / dt:.1f}")
pool.terminate()
ray.shutdown()
