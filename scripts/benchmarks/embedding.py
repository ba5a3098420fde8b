# embedding: Python's multiprocessing "forkserver" start method, the counterpart of LuaForkServer.
import multiprocessing as mp, threading, time


def noop():
    pass


def echo(conn):
    while True:
        m = conn.recv()
        if m is None:
            return
        conn.send(m)


if __name__ == "__main__":
    threading.Thread(target=lambda: time.sleep(3600), daemon=True).start()   # an app with threads
    ctx = mp.get_context("forkserver")
    t0 = time.perf_counter()
    a, b = ctx.Pipe()
    p = ctx.Process(target=echo, args=(b,))
    p.start()
    a.send(1); a.recv()
    print("forkserver_first_worker", time.perf_counter() - t0)
    t0 = time.perf_counter()
    for _ in range(1000):
        a.send(1); a.recv()
    print("roundtrip_x1000", time.perf_counter() - t0)
    a.send(None); p.join()
    t0 = time.perf_counter()
    for _ in range(50):
        q = ctx.Process(target=noop); q.start(); q.join()
    print("process_start_join_x50", time.perf_counter() - t0)
