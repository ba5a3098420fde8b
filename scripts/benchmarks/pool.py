# pool: the same cases with multiprocessing.Pool (fork context): map of x*x over 1,000,000
# integers, 200 CPU-bound tasks on the pool vs sequentially, 10,000 apply_async().get().
import os, sys
# This folder holds other groups' files (queue.py …) that would shadow the standard library
# modules multiprocessing imports: drop it from the module path first.
sys.path = [p for p in sys.path if os.path.abspath(p or ".") != os.path.dirname(os.path.abspath(__file__))]
import multiprocessing, time  # noqa: E402
import concurrent.futures  # noqa: E402

def sq(x):
    return x * x

def cpu(n):
    # Python's idiomatic sum of n integers (a Python-level loop would take ~10x longer).
    return sum(range(1, n + 1))

def one(x):
    return x

def ten_ms_global():
    time.sleep(0.01)
    with COUNTER.get_lock():  # noqa: F821 - set by the pool initializer
        COUNTER.value += 1

if __name__ == "__main__":
    ctx = multiprocessing.get_context("fork")
    with ctx.Pool(2) as pool:
        pool.map(one, [1, 2, 3, 4])
        xs = list(range(1, 1000001))
        t0 = time.monotonic()
        r = pool.map(sq, xs)
        print(f"map_1m_squares {time.monotonic() - t0}")
        assert len(r) == 1000000
        tasks = [2000000] * 200
        t0 = time.monotonic()
        for n in tasks:
            cpu(n)
        seq = time.monotonic() - t0
        t0 = time.monotonic()
        pool.map(cpu, tasks)
        par = time.monotonic() - t0
        print(f"cpu_200_sequential {seq}")
        print(f"cpu_200_pool {par}")
        print(f"cpu_200_speedup {seq / par}")  # not seconds: sequential / pool
        t0 = time.monotonic()
        for i in range(10000):
            pool.apply_async(one, (i,)).get()
        print(f"apply_async_get_10k {time.monotonic() - t0}")
    # progress while the host is busy: the pool's own threads feed it; the host spins on a
    # shared counter (ideal on 2 workers: 0.5 s)
    counter = ctx.Value("i", 0)
    with ctx.Pool(2, initializer=globals().__setitem__, initargs=("COUNTER", counter)) as pool:
        pool.map(one, [1, 2, 3, 4])
        t0 = time.monotonic()
        rs = [pool.apply_async(ten_ms_global) for _ in range(100)]
        while counter.value < 100:
            for _ in range(1000):
                pass
        print(f"busy_host_100x10ms {time.monotonic() - t0}")
        assert all(r.ready() or r.wait(5) is None for r in rs)
    # 100,000 submit + as_completed (ProcessPoolExecutor, fork context)
    with concurrent.futures.ProcessPoolExecutor(2, mp_context=ctx) as ex:
        list(ex.map(one, [1, 2, 3, 4]))
        t0 = time.monotonic()
        fs = [ex.submit(one, i) for i in range(100000)]
        n = sum(1 for _ in concurrent.futures.as_completed(fs))
        print(f"submit_as_completed_100k {time.monotonic() - t0}")
        assert n == 100000
