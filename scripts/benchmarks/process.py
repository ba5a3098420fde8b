# process: 500 sequential start+join of a no-op target with multiprocessing's fork context.
import multiprocessing, time

def noop():
    pass

if __name__ == "__main__":
    ctx = multiprocessing.get_context("fork")
    n = 500
    t0 = time.monotonic()
    for _ in range(n):
        p = ctx.Process(target=noop)
        p.start()
        p.join()
    print(f"process_start_join_500 {time.monotonic() - t0}")
