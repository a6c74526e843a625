"""The worker protocol of `make bench-peers`, shared by the Python contenders.

A contender module defines a client class with `try_lock(name)` (one attempt: a handle, or
None when the lock is held), `lock(name)` (waits with the library's own default waiting) and
`unlock(handle)`, all with a 10 s TTL, and calls `main(ClientClass)`. The scenarios and their
output are those of bench/c_bench.c:

  uncontended URL SECONDS              -> cycles_per_sec X
  contend URL SECONDS HOLD_MS PAUSE_MS -> cs ASKED ACQUIRED RELEASED (CLOCK_MONOTONIC ns);
                                          HOLD_MS and PAUSE_MS may be 0 (no think time)
  fanin URL SECONDS THREADS            -> cycles_per_sec X (THREADS threads, one client)
  waiters URL SECONDS WAITERS          -> "held", then after a line on stdin holds SECONDS,
                                          releases, and each waiter (own client) takes the
                                          lock once; -> acquisitions N
"""

import os
import sys
import threading
import time

TTL_SECONDS = 10
# python-redilock encodes the name in its token with ':' as separator: names avoid it.
PREFIX = f"bench-{os.getpid()}"


def cycles(client, name, seconds):
    """Lock + unlock `name` until `seconds` have passed; returns the number of cycles."""
    end = time.monotonic() + seconds
    count = 0
    while time.monotonic() < end:
        handle = client.try_lock(name)
        if handle is None:
            sys.exit(f"{name} was held")
        client.unlock(handle)
        count += 1
    return count


def uncontended(client_class, url, seconds):
    client = client_class(url)
    start = time.monotonic()
    count = cycles(client, f"{PREFIX}-uncontended", seconds)
    print(f"cycles_per_sec {count / (time.monotonic() - start):.1f}")


def contend(client_class, url, seconds, hold_ms, pause_ms):
    client = client_class(url)
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        asked = time.monotonic_ns()
        handle = client.lock("bench-contended")
        acquired = time.monotonic_ns()
        time.sleep(hold_ms / 1000)
        released = time.monotonic_ns()
        client.unlock(handle)
        print(f"cs {asked} {acquired} {released}")
        time.sleep(pause_ms / 1000)


def fanin(client_class, url, seconds, threads):
    client = client_class(url)
    counts = [0] * threads

    def run(i):
        counts[i] = cycles(client, f"{PREFIX}-fanin-{i}", seconds)

    start = time.monotonic()
    workers = [threading.Thread(target=run, args=(i,)) for i in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    print(f"cycles_per_sec {sum(counts) / (time.monotonic() - start):.1f}")


def waiters(client_class, url, seconds, count):
    name = "bench-held"
    holder = client_class(url)
    clients = [client_class(url) for _ in range(count)]
    for i, client in enumerate(clients):  # connected and warm before the count starts
        client.unlock(client.try_lock(f"{PREFIX}-warm-{i}"))
    handle = holder.lock(name)
    print("held", flush=True)
    sys.stdin.readline()

    def wait_once(client):
        client.unlock(client.lock(name))

    workers = [threading.Thread(target=wait_once, args=(c,)) for c in clients]
    for worker in workers:
        worker.start()
    time.sleep(seconds)
    holder.unlock(handle)
    for worker in workers:
        worker.join()
    print(f"acquisitions {count}")


SCENARIOS = {
    "uncontended": (uncontended, (float,)),
    "contend": (contend, (float, float, float)),
    "fanin": (fanin, (float, int)),
    "waiters": (waiters, (float, int)),
}


def main(client_class):
    scenario = SCENARIOS.get(sys.argv[1] if len(sys.argv) > 1 else "")
    if scenario is None or len(sys.argv) != 3 + len(scenario[1]):
        sys.exit(f"usage: {sys.argv[0]} {'|'.join(SCENARIOS)} URL SECONDS [ARGS...]")
    run, types = scenario
    run(client_class, sys.argv[2], *(kind(arg) for kind, arg in zip(types, sys.argv[3:])))
