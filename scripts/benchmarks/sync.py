# sync: 2 processes x 200,000 acquire/increment/release of a shared value, plus uncontended costs (compare sync.lua, sync.c).
import multiprocessing as mp, time
N = 200000

def _child(go, ready, body, args):
    ready.release(); go.wait(); body(*args)

def contended(body, *args):
    go, ready = mp.Event(), mp.Semaphore(0)
    ps = [mp.Process(target=_child, args=(go, ready, body, args)) for _ in range(2)]
    for p in ps: p.start()
    ready.acquire(); ready.acquire()
    t0 = time.monotonic()
    go.set()
    for p in ps: p.join()
    return time.monotonic() - t0

def lock_value(lock, v):
    for _ in range(N):
        lock.acquire(); v.value += 1; lock.release()

def getlock_with(v):
    lk = v.get_lock()
    for _ in range(N):
        with lk: v.value += 1

if __name__ == "__main__":
    v = mp.Value("q", 0)
    dt = contended(lock_value, mp.Lock(), v); assert v.value == 2 * N
    print("lock_value_2x200k", dt)
    v = mp.Value("q", 0, lock=False)
    dt = contended(lock_value, mp.Lock(), v); assert v.value == 2 * N
    print("lock_rawvalue_2x200k", dt)
    v = mp.Value("q", 0)
    dt = contended(getlock_with, v); assert v.value == 2 * N
    print("getlock_with_2x200k", dt)
    lock = mp.Lock()
    t0 = time.monotonic()
    for _ in range(N):
        lock.acquire(); lock.release()
    print("uncontended_acquire_release_200k", time.monotonic() - t0)
