"""Fixtures of the interop test: libredilock through its C ABI (cabi.py, path from
REDILOCK_LIB) and python-redilock, both on the Redis of REDIS_URL (tests/harness/with-redis)."""

import os
import uuid
from urllib.parse import urlparse

import pytest
import redis
from redilock.sync_redilock import DistributedLock

import cabi


def _env(name, how):
    value = os.environ.get(name)
    if not value:
        pytest.exit(f"{name} is not set: {how}", returncode=2)
    return value


@pytest.fixture(scope="session")
def lib():
    return cabi.load(_env("REDILOCK_LIB", "point it at libredilock.so (see `make test-interop`)"))


@pytest.fixture(scope="session")
def redis_url():
    return _env("REDIS_URL", "run under tests/harness/with-redis")


@pytest.fixture
def name():
    # No ':' in it: python-redilock finds the lock of a token "_LOCK:<name>:<hex>" by splitting it.
    return f"interop-{uuid.uuid4().hex[:12]}"


@pytest.fixture
def raw(redis_url):
    """A plain redis-py client, to look at the keys both libraries write."""
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    yield client
    client.close()


@pytest.fixture
def c_client(lib, redis_url):
    client = cabi.Client(lib, redis_url)
    yield client
    client.close()


@pytest.fixture
def py_lock(redis_url):
    """python-redilock's sync client. It takes host/port/db, not a URL."""
    address = urlparse(redis_url)
    db = int(address.path.lstrip("/") or 0)
    locks = DistributedLock(redis_host=address.hostname, redis_port=address.port or 6379, redis_db=db)
    yield locks
    if locks._redis is not None:
        locks._redis.close()
