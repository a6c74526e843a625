"""redis-py's `Lock` as a `make bench-peers` worker.

Waiting is the library's own default: retry SET NX PX every 0.1 s (`sleep=0.1`).
"""

import redis

import lockbench


class Client:
    def __init__(self, url):
        self.redis = redis.Redis.from_url(url)

    def try_lock(self, name):
        lock = self.redis.lock(name, timeout=lockbench.TTL_SECONDS)
        return lock if lock.acquire(blocking=False) else None

    def lock(self, name):
        lock = self.redis.lock(name, timeout=lockbench.TTL_SECONDS)
        lock.acquire()
        return lock

    def unlock(self, lock):
        lock.release()


if __name__ == "__main__":
    lockbench.main(Client)
