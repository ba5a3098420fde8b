#!/usr/bin/env python3
"""Queue fault test: producers and consumers SIGKILLed at random moments of a run.

Each round runs Tests/cli/queue_faults.lua (P producers, C consumers, some killed with kill -9 by
the main script at random times). Consumers log each message they received with one write per
line. Afterwards this driver checks, from the logs:
- survivors finished (the script exits 0 and prints "done"): a kill inside put/get never blocks others;
- no message was received twice; every message carried the exact payload put (checked by consumers);
- per producer, what was received has no gaps other than the in-flight messages of killed
  consumers: a killed consumer may have taken at most one message it did not log yet, so the
  total number of missing messages (from surviving producers, and below the last received
  sequence number of a killed producer) is at most the number of consumers killed.
A killed producer's unsent tail is simply never put: no torn or half-visible message.
"""
import os, random, subprocess, sys, tempfile

LUAMP = os.environ["LUAMP"]
HERE = os.path.dirname(os.path.abspath(__file__))
LONG = os.environ.get("LUAMP_LONG") == "1"
passed = failed = 0
stats = {"rounds": 0, "kills": 0, "messages": 0, "in_flight_lost": 0}


def read_logs(d, consumers):
    got = {}
    dups = []
    for c in range(1, consumers + 1):
        path = os.path.join(d, f"c{c}.log")
        if not os.path.exists(path):
            continue
        with open(path) as f:
            data = f.read()
        lines = data.split("\n")[:-1]          # a line cut by a kill has no newline: not logged
        for line in lines:
            p, i = map(int, line.split())
            if (p, i) in got:
                dups.append((p, i, got[(p, i)], c))
            got[(p, i)] = c
    return got, dups


def round_(seed, P, C, N, maxsize, pkills, ckills):
    global passed, failed
    d = tempfile.mkdtemp(prefix="luamp-qfault-")
    r = subprocess.run([LUAMP, os.path.join(HERE, "queue_faults.lua"), str(seed), d, str(P), str(C),
                        str(N), str(maxsize), str(pkills), str(ckills)],
                       capture_output=True, text=True, timeout=300)
    name = f"round seed={seed} maxsize={maxsize} kills={pkills}p+{ckills}c"
    try:
        assert r.returncode == 0 and "done" in r.stdout, f"exit {r.returncode}\n{r.stdout}\n{r.stderr[-2000:]}"
        killed_p = {int(l.split()[2]) for l in r.stdout.splitlines() if l.startswith("killed producer")}
        killed_c = {int(l.split()[2]) for l in r.stdout.splitlines() if l.startswith("killed consumer")}
        got, dups = read_logs(d, C)
        assert not dups, f"received twice: {dups[:5]}"
        missing = 0
        for p in range(1, P + 1):
            seqs = sorted(i for (pp, i) in got if pp == p)
            top = N if p not in killed_p else (seqs[-1] if seqs else 0)
            missing += top - len([i for i in seqs if i <= top])
            assert all(1 <= i <= N for i in seqs), f"producer {p}: bad sequence numbers"
        assert missing <= len(killed_c), \
            f"{missing} messages missing but only {len(killed_c)} consumers were killed (at most one in flight each)"
        left = int([l for l in r.stdout.splitlines() if l.startswith("left ")][0].split()[1])
        assert left == 0, f"{left} messages left in the queue after the survivors finished"
        stats["rounds"] += 1
        stats["kills"] += len(killed_p) + len(killed_c)
        stats["messages"] += len(got)
        stats["in_flight_lost"] += missing
        passed += 1
    except AssertionError as e:
        failed += 1
        print(f"FAIL {name}: {e}", file=sys.stderr)


# point -> (role, messages the parent finds afterwards). The child is killed at the 3rd hit.
# join: true when every visible message's task is accounted for; false when a message died with
# the consumer (its task can never be done).
CRASH_CASES = {
    "put-before-commit": ("producer", "1,2", "true"),       # the 3rd was written but never published
    "put-in-commit": ("producer", "1,2,3", "true"),         # past the commit point: redone by the next locker
    "get-before-commit": ("consumer", "3,4,5,6", "true"),   # not taken: the next consumer gets it
    "get-in-commit": ("consumer", "4,5,6", "false"),        # taken (commit redone): lost with the dead consumer
    "get-after-commit": ("consumer", "4,5,6", "false"),     # taken, not returned yet: lost with the consumer
}


def crash_points():
    """A child SIGKILLed at each exact point of put/get: nothing torn, duplicated or stuck."""
    global passed, failed
    for point, (role, expect, joined) in CRASH_CASES.items():
        for size in (0, 20000):                       # inline records and big-message blocks
            env = dict(os.environ, LUAMP_QUEUE_FAULT=f"{point}:3")
            r = subprocess.run([LUAMP, os.path.join(HERE, "queue_crash.lua"), role, str(size)],
                               capture_output=True, text=True, timeout=60, env=env)
            want = f"exitcode -9\ngot {expect}\nthen after\njoin {joined}\n"
            if r.returncode == 0 and r.stdout == want:
                passed += 1
            else:
                failed += 1
                print(f"FAIL crash point {point} size {size}: exit {r.returncode}\n{r.stdout}\n{r.stderr[-1500:]}",
                      file=sys.stderr)


def main():
    crash_points()
    rnd = random.Random(int(os.environ.get("LUAMP_SEED", "12345")))
    rounds = 24 if LONG else 6
    for k in range(rounds):
        maxsize = 0 if k % 2 == 0 else 64        # bounded rounds also kill producers blocked in put
        round_(rnd.randrange(1 << 30), P=4, C=4, N=20000 if LONG else 8000, maxsize=maxsize,
               pkills=rnd.randint(1, 2), ckills=rnd.randint(1, 2))
    print(f"# fault rounds {stats['rounds']}, processes killed {stats['kills']}, messages received "
          f"{stats['messages']}, in-flight messages lost with killed consumers {stats['in_flight_lost']}")
    print(f"{passed} passed, {failed} failed")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
