# shared: Manager().dict() set+get from 2 processes, locked increments, 64 MiB shared_memory copies (compare shared.lua, shared.c).
import multiprocessing as mp, time
from multiprocessing import shared_memory
N_DICT, N_ADD, MIB, REPS = 100000, 200000, 64, 10

def _child(go, ready, body, i, args):
    ready.release(); go.wait(); body(i, *args)

def contended(body, *args):
    go, ready = mp.Event(), mp.Semaphore(0)
    ps = [mp.Process(target=_child, args=(go, ready, body, i + 1, args)) for i in range(2)]
    for p in ps: p.start()
    ready.acquire(); ready.acquire()
    t0 = time.monotonic()
    go.set()
    for p in ps: p.join(); assert p.exitcode == 0
    return time.monotonic() - t0

def dict_body(p, d):
    base = p * N_DICT
    for i in range(1, N_DICT + 1): d[base + i] = i
    s = 0
    for i in range(1, N_DICT + 1): s += d[base + i]
    assert s == N_DICT * (N_DICT + 1) // 2

def locked_inc(p, v):
    lk = v.get_lock()
    for _ in range(N_ADD):
        with lk: v.value += 1

if __name__ == "__main__":
    with mp.Manager() as m:
        d = m.dict()
        dt = contended(dict_body, d)
        assert len(d) == 2 * N_DICT
        print("dict_set_get_2x100k", dt)
    v = mp.Value("q", 0)
    dt = contended(locked_inc, v); assert v.value == 2 * N_ADD
    print("value_add_2x200k", dt)          # Python has no atomic add: the locked increment is its way
    v = mp.Value("q", 0)
    dt = contended(locked_inc, v); assert v.value == 2 * N_ADD
    print("locked_increment_2x200k", dt)
    size = MIB << 20
    shm = shared_memory.SharedMemory(create=True, size=size)
    data = b"0123456789abcdef" * (size // 16)
    shm.buf[:size] = data
    t0 = time.monotonic()
    for _ in range(REPS): shm.buf[:size] = data
    print("shm_write_64mib_x10", time.monotonic() - t0)
    t0 = time.monotonic()
    for _ in range(REPS): s = bytes(shm.buf[:size]); assert len(s) == size
    print("shm_read_64mib_x10", time.monotonic() - t0)
    shm.close(); shm.unlink()
