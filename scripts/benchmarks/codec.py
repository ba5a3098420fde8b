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

# 100,000 instances of a module-level class (pickled by reference to the class).
class Point:
    def __init__(self, x, y):
        self.x = x
        self.y = y

points = [Point(i, i * 0.5) for i in range(1, 100001)]
pdata = pickle.dumps(points, protocol=5)
print("encode_instances_100k %.6f" % best(lambda: pickle.dumps(points, protocol=5)))
print("decode_instances_100k %.6f" % best(lambda: pickle.loads(pdata)))

# The nearest pickle peer of a closure over three modules: a module-level function using three
# modules (pickle sends it by name; it cannot send closures at all). Seconds for 10,000 dumps + loads.
import json, re, os

def task(x):
    return json.dumps(x), re.match("a", x), os.stat(x)

def roundtrip():
    for _ in range(10000):
        pickle.loads(pickle.dumps(task, protocol=5))
print("roundtrip_closure_3_modules_x10k %.6f" % best(roundtrip))
