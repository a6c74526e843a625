"""python-redilock, the design redilock grew from, as a `make bench-peers` worker.

Waiting is the library's own: SET NX PX, and on failure sleep its default interval (0.25 s).
"""

from urllib.parse import urlparse

from redilock.sync_redilock import DistributedLock

import lockbench


class Client:
    def __init__(self, url):
        address = urlparse(url)
        self.lock_service = DistributedLock(
            redis_host=address.hostname, redis_port=address.port or 6379, ttl=lockbench.TTL_SECONDS
        )

    def try_lock(self, name):
        return self.lock_service.lock(name, block=False) or None

    def lock(self, name):
        return self.lock_service.lock(name)

    def unlock(self, token):
        if not self.lock_service.unlock(token):
            raise RuntimeError(f"unlock failed for {token}")


if __name__ == "__main__":
    lockbench.main(Client)
