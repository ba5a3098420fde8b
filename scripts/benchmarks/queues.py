# queue benchmark, Python side: multiprocessing.Queue and Pipe (fork) on the same cases as queues.lua.
import os, sys
# This file is named queue.py: drop its folder from the path so `import queue` (used by
# multiprocessing) finds the standard library module, not this script.
sys.path = [d for d in sys.path if os.path.abspath(d or '.') != os.path.dirname(os.path.abspath(__file__))]
import gc, multiprocessing as mp, time  # noqa: E402

SMALL, BIG, MPMC = 200000, 200, 50000
MiB = b"x" * (1 << 20)
ctx = mp.get_context("fork")


def case(name, f):
    gc.collect()
    t0 = time.perf_counter()
    f()
    print("%s %.6f" % (name, time.perf_counter() - t0), flush=True)


def producer(q, n, item):
    for i in range(n):
        q.put(item if item is not None else i)


def small():
    q = ctx.Queue()
    p = ctx.Process(target=producer, args=(q, SMALL, None)); p.start()
    for _ in range(SMALL):
        q.get()
    p.join()


def big():
    q = ctx.Queue()
    p = ctx.Process(target=producer, args=(q, BIG, MiB)); p.start()
    for _ in range(BIG):
        assert len(q.get()) == 1 << 20
    p.join()


def consumer(q, done):
    n = 0
    while q.get() is not False:
        n += 1
    done.put(n)


def mpmc():
    q, done = ctx.Queue(), ctx.Queue()
    cs = [ctx.Process(target=consumer, args=(q, done)) for _ in range(4)]
    ps = [ctx.Process(target=producer, args=(q, MPMC, None)) for _ in range(4)]
    for p in cs + ps:
        p.start()
    for p in ps:
        p.join()
    for _ in range(4):
        q.put(False)
    assert sum(done.get() for _ in range(4)) == 4 * MPMC
    for p in cs:
        p.join()


def sender(w, n, item):
    for i in range(n):
        w.send(item if item is not None else i)


def pipe_small():
    r, w = ctx.Pipe(False)
    p = ctx.Process(target=sender, args=(w, SMALL, None)); p.start()
    for _ in range(SMALL):
        r.recv()
    p.join()


def pipe_big():
    r, w = ctx.Pipe(False)
    p = ctx.Process(target=sender, args=(w, BIG, MiB)); p.start()
    for _ in range(BIG):
        assert len(r.recv()) == 1 << 20
    p.join()


if __name__ == "__main__":
    case("queue_small_1to1", small)
    case("queue_1mib_1to1", big)
    case("queue_mpmc_4x4", mpmc)
    case("pipe_small_1to1", pipe_small)
    case("pipe_1mib_1to1", pipe_big)
