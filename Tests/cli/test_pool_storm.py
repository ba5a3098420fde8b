#!/usr/bin/env python3
"""The kill storm: SIGKILL luamp's children at random (pool workers — in tasks, between tasks and
in their initializers — and queue producers) while Tests/cli/pool_storm.lua drives two pools
(map with chunksize 1 over uneven tasks, apply_async, imap, imap_unordered, initializers,
maxtasksperchild, tasks putting to a queue) and drains producers' queue. Then check, from the
logs: no task started twice except after its worker was killed, no WorkerLost that is not a
kill, no result lost or duplicated, no queue message lost, duplicated or torn, no hang, and
every pool back to its full worker count. 20 s by default; LUAMP_LONG=1: 5 minutes."""
import collections, os, random, select, signal, subprocess, sys, tempfile, time

from harness import LUAMP, ROOT, LONG, test, finish, alive, children, wait_dead  # noqa: F401

STORM = os.path.join(ROOT, "Tests", "cli", "pool_storm.lua")
P = 3                                    # workers per pool (pool_storm.lua's P), two pools (and a slow one of 1)


def lines(path):
    if not os.path.exists(path):
        return []
    with open(path) as f:
        return [l.split() for l in f.read().splitlines() if l]


def start_ticks(pid):
    """The process's start time (clock ticks after boot): a pid and this name one process."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return int(f.read().rsplit(")", 1)[1].split()[19])
    except (FileNotFoundError, ProcessLookupError, IndexError, ValueError):
        return None


def live(pid):
    """harness.alive, also when the process vanishes while its stat is read (ESRCH)."""
    try:
        return alive(pid)
    except ProcessLookupError:
        return False


@test
def kill_storm_over_pools_and_queues():
    seconds = 300 if LONG else 20
    d = tempfile.mkdtemp(prefix="luamp-storm-")
    stopfile = os.path.join(d, "stop")
    p = subprocess.Popen([LUAMP, STORM, stopfile, d], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True)
    rng = random.Random(11)
    kills = []                                # (monotonic time, pid)
    seen = {}                                 # pid -> start time: pids get reused in 5 minutes
    t0 = time.monotonic()
    try:
        while time.monotonic() - t0 < seconds and p.poll() is None:
            time.sleep(rng.uniform(0.02, 0.12))
            kids = [c for c in children(p.pid) if live(c)]
            for c in kids:
                seen.setdefault(c, start_ticks(c))
            if kids:
                victim = rng.choice(kids)
                t = time.monotonic()              # before the kill: luamp may see the death at once
                try:
                    os.kill(victim, signal.SIGKILL)
                    kills.append((t, victim))
                except ProcessLookupError:
                    pass
        storm_end = time.monotonic()
        with open(os.path.join(d, "kills.log"), "w") as f:      # for a post-mortem
            f.writelines(f"{t:.6f} {pid}\n" for t, pid in kills)
        open(stopfile, "w").close()
        # No hang: the rounds in progress finish, producers stop, both pools come back.
        ready, _, _ = select.select([p.stdout], [], [], 60)
        assert ready, "hang: luamp did not get its pools back within 60 s of the storm's end"
        first = p.stdout.readline()
        recovered = time.monotonic() - storm_end
        assert first.startswith("workers "), f"exit {p.poll()}: {first!r} {p.stderr.read()[-3000:] if p.poll() is not None else ''}"
        workers = [int(x) for x in first.split()[1:]]
        assert len(workers) == 2 * P and len(set(workers)) == 2 * P, f"worker count not restored: {workers}"
        # The first pool's workers are all still there (the second one's recycle after 4 tasks),
        # and nothing else is: no producer left, no extra worker.
        kids = set(c for c in children(p.pid) if live(c))
        assert set(workers[:P]) <= kids and len(kids) <= 2 * P + 1, \
            f"luamp's children {sorted(kids)} are not its {2 * P} pool workers {sorted(workers)}"
        out, err = p.communicate("go\n", timeout=60)
    except BaseException:
        p.kill()
        p.wait()
        raise
    assert p.returncode == 0, f"exit {p.returncode}: {err[-3000:]}"
    last = out.split()
    assert last[0] == "rounds", out
    rounds, tasks = int(last[1]), int(last[3])

    killed = collections.defaultdict(list)    # pid -> kill times
    for t, pid in kills:
        killed[pid].append(t)

    false_lost = []

    def check_lost(pid, sig, when):
        # A WorkerLost must name SIGKILL and a pid killed shortly before the loss was seen (a pid
        # number reused much later cannot pass for the killed one).
        if not (sig == "9" and any(0 <= when - t < 30 for t in killed.get(int(pid), []))):
            false_lost.append((pid, sig, when, killed.get(int(pid))))

    starts = collections.defaultdict(list)    # id -> pids, in start order
    for parts in lines(os.path.join(d, "starts.log")):
        assert parts[0] == "s" and len(parts) == 3, parts
        starts[int(parts[1])].append(int(parts[2]))

    outcome = {}                              # id -> "ok" | "lost" | "missing" | "maplost"
    values, qtasks, qmsgs = {}, set(), collections.Counter()
    worker_lost = unordlost = missing = 0

    def settle(i, what):
        assert 1 <= i <= tasks, f"outcome for unknown task {i}"
        assert i not in outcome, f"task {i}: two outcomes ({outcome[i]}, {what})"
        outcome[i] = what

    for parts in lines(os.path.join(d, "outcomes.log")):
        kind = parts[0]
        if kind == "ok":
            i, v = int(parts[1]), int(parts[2])
            settle(i, "ok")
            assert v == 2 * i, f"task {i}: wrong result {v}"
        elif kind == "lost":
            settle(int(parts[1]), "lost")
            worker_lost += 1
            check_lost(parts[2], parts[3], float(parts[4]))
        elif kind == "maplost":
            worker_lost += 1
            check_lost(parts[1], parts[2], float(parts[3]))
            for x in parts[4:]:
                settle(int(x), "maplost")
        elif kind == "unordlost":
            worker_lost += 1
            unordlost += 1
            check_lost(parts[1], parts[2], float(parts[3]))
        elif kind == "missing":
            settle(int(parts[1]), "missing")
            missing += 1
        elif kind == "qtask":
            qtasks.add(int(parts[1]))
        elif kind == "qmsg":
            assert parts[2] == "true", f"task {parts[1]}'s queue message is torn"
            qmsgs[int(parts[1])] += 1
        else:
            raise AssertionError(f"unknown outcome line {parts}")

    assert not false_lost, f"{len(false_lost)} WorkerLost errors name no killed worker (pid, signal, seen at, kills): {false_lost[:5]}"
    assert unordlost == missing, f"imap_unordered: {unordlost} WorkerLost for {missing} missing results"
    unsettled = [i for i in range(1, tasks + 1) if i not in outcome]
    assert not unsettled, f"{len(unsettled)} tasks without an outcome (lost), e.g. {unsettled[:10]}"
    restarted = 0
    for i, pids in starts.items():
        assert 1 <= i <= tasks, f"start of unknown task {i}"
        if len(pids) > 1:
            # Only a task whose worker was killed while running it may run again.
            assert all(pid in killed for pid in pids[:-1]), f"task {i} started twice: pids {pids}, killed {[x in killed for x in pids]}"
            restarted += 1
        if outcome.get(i) in ("lost", "missing"):
            assert all(pid in killed for pid in pids), f"task {i} reported lost, started by live pids {pids}"
    for i, what in outcome.items():
        if what == "ok":
            assert len(starts.get(i, [])) >= 1, f"task {i}: a result without a start"
    dup_q = [i for i, n in qmsgs.items() if n > 1]
    assert not dup_q, f"queue messages of tasks delivered twice: {dup_q[:10]}"
    lost_q = [i for i in qtasks if outcome.get(i) == "ok" and qmsgs[i] != 1]
    assert not lost_q, f"tasks that returned but whose queue message never came: {lost_q[:10]}"
    assert all(i in qtasks for i in qmsgs), "a queue message from a task that does not put"

    # Producers' queue: every put that returned arrived once, intact, in order per producer.
    got = collections.Counter()
    last_seq = {}
    for parts in lines(os.path.join(d, "recv.log")):
        prod, seq = int(parts[1]), int(parts[2])
        assert parts[3] == "true", f"producer {prod} message {seq} is torn"
        got[(prod, seq)] += 1
        assert seq > last_seq.get(prod, 0), f"producer {prod}: message {seq} after {last_seq.get(prod)}"
        last_seq[prod] = seq
    dups = [k for k, n in got.items() if n > 1]
    assert not dups, f"queue messages delivered twice: {dups[:10]}"
    puts = [(int(x[1]), int(x[2])) for x in lines(os.path.join(d, "puts.log"))]
    lost_puts = [k for k in puts if k not in got]
    assert not lost_puts, f"{len(lost_puts)} messages put and never received, e.g. {lost_puts[:10]}"

    ok = sum(1 for w in outcome.values() if w == "ok")
    print(f"# storm: {seconds} s, {len(kills)} kills ({len(killed)} pids), {rounds} rounds, {tasks} tasks: "
          f"{ok} results, {worker_lost} WorkerLost (0 false), {sum(len(v) for v in starts.values())} starts, "
          f"{restarted} tasks started again after their worker was killed (0 otherwise), 0 results lost or duplicated; "
          f"queue: {len(got)} producer messages ({len(puts)} acknowledged puts, 0 lost, 0 duplicated, 0 torn), "
          f"{len(qmsgs)} task messages; all {2 * P} workers back {recovered:.1f} s after the storm",
          file=sys.stderr)
    for line in err.splitlines():
        if line.startswith("# "):
            print("#   luamp: " + line[2:], file=sys.stderr)
    assert len(kills) >= (1000 if LONG else 60), f"only {len(kills)} kills"
    assert worker_lost >= 1, "no WorkerLost at all: the storm did not hit running tasks"
    deadline = time.monotonic() + 10
    while any(live(c) and start_ticks(c) == t for c, t in seen.items()) and time.monotonic() < deadline:
        time.sleep(0.05)
    left = [c for c, t in seen.items() if live(c) and start_ticks(c) == t]
    assert not left, f"children outlived luamp: {left[:10]}"


finish()
