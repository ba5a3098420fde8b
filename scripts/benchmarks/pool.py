# pool: the same cases with multiprocessing.Pool (fork context): map of x*x over 1,000,000
# integers, 200 CPU-bound tasks on the pool vs sequentially, 10,000 apply_async().get().
import os, sys
# This folder holds other groups' files (queue.py …) that would shadow the standard library
# modules multiprocessing imports: drop it from the module path first.
sys.path = [p for p in sys.path if os.path.abspath(p or ".") != os.path.dirname(os.path.abspath(__file__))]
import multiprocessing, time  # noqa: E402

def sq(x):
    return x * x

def cpu(n):
    # Python's idiomatic sum of n integers (a Python-level loop would take ~10x longer).
    return sum(range(1, n + 1))

def one(x):
    return x

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
