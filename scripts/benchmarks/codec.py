# codec benchmark, Python side: pickle protocol 5 on the same data as codec.lua.
import gc, pickle, time

def best(f, runs=3):
    b = float("inf")
    for _ in range(runs):
        gc.collect()
        t0 = time.perf_counter()
        f()
        b = min(b, time.perf_counter() - t0)
    return b

floats = [i * 0.5 for i in range(1, 1000001)]
records = [{"id": i, "name": "n%d" % i, "tags": ["a", "b"]} for i in range(1, 100001)]
big = b"x" * (64 << 20)

for name, v in (("floats_1m", floats), ("records_100k", records), ("string_64m", big)):
    data = pickle.dumps(v, protocol=5)
    print("encode_%s %.6f" % (name, best(lambda: pickle.dumps(v, protocol=5))))
    print("decode_%s %.6f" % (name, best(lambda: pickle.loads(data))))
