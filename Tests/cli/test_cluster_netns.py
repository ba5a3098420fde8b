#!/usr/bin/env python3
"""The cluster across separate network stacks: network namespaces made here (`ip netns add`, veth
pairs on a bridge in a switch namespace), Redis in one, two worker nodes in two others, the host in
a fourth. A map across them; one worker namespace's link set down mid-run and brought back: its
tasks finish on the other node and its late result is ignored. Skipped, with the reason, only where
namespaces cannot be made."""
import os, random, subprocess, sys, tempfile

from harness import LUAMP, test, finish, children
from cluster_harness import Redis, Node, slow_map_script, started, wait_for

TMP = tempfile.mkdtemp(prefix="luamp-netns-")
TAG = f"lmp{os.getpid() % 100000}"
NET = f"10.{random.randint(100, 250)}.{random.randint(1, 250)}"
SPACES = {"redis": 1, "w1": 2, "w2": 3, "host": 4}


def ip(*args, check=True):
    return subprocess.run(["ip"] + list(args), capture_output=True, text=True, check=check)


def ns(name):
    return f"{TAG}-{name}"


def make_network():
    sw = ns("sw")
    ip("netns", "add", sw)
    ip("-n", sw, "link", "add", "br0", "type", "bridge")
    ip("-n", sw, "link", "set", "br0", "up")
    for name, n in SPACES.items():
        space = ns(name)
        ip("netns", "add", space)
        ip("-n", space, "link", "set", "lo", "up")
        # one veth pair: eth0 in the space, the other end on the switch's bridge
        ip("-n", space, "link", "add", "eth0", "type", "veth", "peer", "name", f"p{n}", "netns", sw)
        ip("-n", space, "addr", "add", f"{NET}.{n}/24", "dev", "eth0")
        ip("-n", space, "link", "set", "eth0", "up")
        ip("-n", sw, "link", "set", f"p{n}", "master", "br0")
        ip("-n", sw, "link", "set", f"p{n}", "up")


def remove_network():
    for name in list(SPACES) + ["sw"]:
        ip("netns", "del", ns(name), check=False)


SKIP = None
if os.geteuid() != 0:
    SKIP = "not root: cannot make network namespaces"
else:
    try:
        make_network()
    except (subprocess.CalledProcessError, FileNotFoundError) as e:
        SKIP = f"cannot make network namespaces here: {getattr(e, 'stderr', '') or e}"
        remove_network()

MAP = slow_map_script(10, 0.3)


if SKIP:
    print(f"skipped: {SKIP}", file=sys.stderr)
else:
    try:
        redis = Redis(host=f"{NET}.1", port=6379, netns=ns("redis"))   # a fresh stack: any port is free
    except BaseException:
        remove_network()
        raise
    URL = redis.url()

    @test
    def a_map_across_namespaces_survives_a_worker_link_going_down():
        a = Node(URL, "ns-w1", processes=1, lease=1, netns=ns("w1"))
        b = Node(URL, "ns-w2", processes=1, lease=1, netns=ns("w2"))
        log = os.path.join(TMP, "map.log")
        script = os.path.join(TMP, "map.lua")
        with open(script, "w") as f:
            f.write(MAP)
        try:
            kids_a, kids_b = set(children(a.pid)), set(children(b.pid))
            env = dict(os.environ, LUAMP_ADDRESS=URL, LUAMP_AUTHKEY="secret")
            host = subprocess.Popen(["ip", "netns", "exec", ns("host"), LUAMP, script, log], stdout=subprocess.PIPE,
                                    stderr=subprocess.PIPE, text=True, env=env)
            wait_for(lambda: any(p in kids_a for p, _ in started(log)), 30, "a task running in namespace w1")
            wait_for(lambda: any(p in kids_b for p, _ in started(log)), 30, "a task running in namespace w2")
            ip("-n", ns("w1"), "link", "set", "eth0", "down")     # w1 is cut off mid-task
            out, err = host.communicate(timeout=90)
            assert host.returncode == 0, err
            rows = [tuple(map(int, l.split())) for l in out.split("\n") if l.strip()]
            assert [i for i, _ in rows] == list(range(1, 11)), out
            cut = [i for p, i in started(log) if p in kids_a]
            assert cut, "w1 ran nothing"
            # every task w1 was running when cut off came back from w2
            from_a = {i for i, p in rows if p in kids_a}
            for i in cut:
                assert i in from_a or rows[i - 1][1] in kids_b, (cut, rows)
            assert "lost its lease" in err, err
            ip("-n", ns("w1"), "link", "set", "eth0", "up")
            wait_for(lambda: "late result" in a.log() or "reconnected" in a.log(), 60, "w1 to come back")
            if cut[-1] not in from_a:
                wait_for(lambda: "late result" in a.log(), 60, "w1's late result to be ignored")
        finally:
            ip("-n", ns("w1"), "link", "set", "eth0", "up", check=False)
            a.stop(); b.stop()

    redis.close()
    remove_network()
finish()
