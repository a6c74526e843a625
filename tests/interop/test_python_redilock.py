"""libredilock (through its C ABI) and python-redilock 0.6.0 on one Redis exclude each other,
as README.md claims: both use the lock's name as the Redis key and a token as its value.

python-redilock 0.6.0 (redilock/sync_redilock.py): lock(name, ttl, block, interval) does
`SET name token NX PX ttl*1000` (ttl in seconds), retried every `interval` seconds while
`block` is True or a number of seconds; it returns the token "_LOCK:<name>:<uuid hex>" or False.
unlock(token) finds the name inside the token and deletes the key only if it holds that token.

Synchronisation waits for observable state (polling), never for a fixed time; the bounds are
generous, for a loaded 2-core machine.
"""

import threading
import time
import uuid

import pytest

import cabi

TTL_S = 60  # no lock of these tests may expire while a test runs
TTL_MS = TTL_S * 1000
WAIT_S = 10  # a waiter's timeout: a few seconds, far above what each hand-off needs
WAIT_MS = WAIT_S * 1000
SETTLE_S = 30  # upper bound for polling and joins


def wait_until(predicate, what, timeout=SETTLE_S):
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.01)


def in_background(function):
    """Runs function() on a thread; returns (thread, result), result filled when it returns,
    with "at" the monotonic time of its return."""
    result = {}

    def run():
        try:
            result["value"] = function()
        except BaseException as error:  # reported by the test, not lost on the thread
            result["error"] = error
        result["at"] = time.monotonic()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, result


def finished(thread, result):
    thread.join(timeout=WAIT_S + SETTLE_S)
    assert not thread.is_alive(), "the waiter never returned"
    if "error" in result:
        raise result["error"]
    return result["value"]


def is_queued(raw, name):
    """True when a libredilock waiter of `name` is in its queue, redilock:queue:{T}:<name>."""
    return any(True for _ in raw.scan_iter(match=f"redilock:queue:*:{name}"))


def set_calls(raw):
    """SET commands Redis has run so far: python-redilock's attempts (libredilock uses EVALSHA)."""
    return raw.info("commandstats").get("cmdstat_set", {}).get("calls", 0)


def assert_pttl(raw, name, ttl_ms):
    pttl = raw.pttl(name)
    assert ttl_ms // 2 < pttl <= ttl_ms, f"PTTL {pttl} ms of a lock taken for {ttl_ms} ms"


def test_python_redilock_holder_excludes_c_abi(py_lock, c_client, raw, name):
    py_token = py_lock.lock(name, ttl=TTL_S, block=False)
    assert py_token and py_token.startswith(f"_LOCK:{name}:")
    assert raw.get(name) == py_token  # the key is the name, the value the token
    assert_pttl(raw, name, TTL_MS)  # python-redilock's ttl is in seconds

    status, token, message = c_client.lock(name, TTL_MS, cabi.NO_WAIT)
    assert status == cabi.NOT_ACQUIRED, message
    assert token == ""
    assert raw.get(name) == py_token

    waiter, result = in_background(lambda: c_client.lock(name, TTL_MS, WAIT_MS))
    wait_until(lambda: is_queued(raw, name) or "at" in result, "the C-ABI waiter to queue")
    assert "at" not in result, f"the C-ABI waiter returned while python-redilock held the lock: {result}"
    waiter.join(timeout=0.5)  # it stays out while python-redilock holds the lock
    assert waiter.is_alive(), f"the C-ABI waiter returned while python-redilock held the lock: {result}"
    assert raw.get(name) == py_token

    released_at = time.monotonic()
    assert py_lock.unlock(py_token) is True
    status, token, message = finished(waiter, result)
    assert status == cabi.OK, message
    assert result["at"] >= released_at, "the C-ABI waiter acquired before python-redilock unlocked"
    assert len(token) == cabi.TOKEN_LEN - 1
    assert raw.get(name) == token
    assert_pttl(raw, name, TTL_MS)

    assert c_client.unlock(name, token) == cabi.OK
    assert raw.exists(name) == 0


def test_c_abi_holder_excludes_python_redilock(py_lock, c_client, raw, name):
    status, c_token, message = c_client.lock(name, TTL_MS, cabi.NO_WAIT)
    assert status == cabi.OK, message
    assert raw.get(name) == c_token  # the key is the name, the value the token
    assert_pttl(raw, name, TTL_MS)

    assert py_lock.lock(name, ttl=TTL_S, block=False) is False
    assert raw.get(name) == c_token

    attempts_before = set_calls(raw)
    waiter, result = in_background(lambda: py_lock.lock(name, ttl=TTL_S, block=WAIT_S, interval=0.05))
    # Two refused SET NX attempts show python-redilock waiting (it retries every 0.05 s).
    wait_until(
        lambda: set_calls(raw) >= attempts_before + 2 or "at" in result,
        "python-redilock's blocking lock to retry",
    )
    assert "at" not in result, f"python-redilock returned while the C-ABI caller held the lock: {result}"
    assert raw.get(name) == c_token

    released_at = time.monotonic()
    assert c_client.unlock(name, c_token) == cabi.OK
    py_token = finished(waiter, result)
    assert py_token, "python-redilock's blocking lock timed out after the C-ABI unlock"
    assert result["at"] >= released_at, "python-redilock acquired before the C-ABI caller unlocked"
    assert py_token.startswith(f"_LOCK:{name}:")
    assert raw.get(name) == py_token
    assert_pttl(raw, name, TTL_MS)

    assert py_lock.unlock(py_token) is True
    assert raw.exists(name) == 0


def test_c_abi_cannot_unlock_python_redilock_lock(py_lock, c_client, raw, name):
    py_token = py_lock.lock(name, ttl=TTL_S, block=False)
    assert py_token

    status, other_token, message = c_client.lock(f"{name}-other", TTL_MS, cabi.NO_WAIT)
    assert status == cabi.OK, message
    wrong_tokens = [
        other_token,  # a real C-ABI token, of another lock
        uuid.uuid4().hex,  # a token of the C ABI's form that holds nothing
        f"_LOCK:{name}:{uuid.uuid4().hex}",  # python-redilock's form, not the holder's
    ]
    for wrong in wrong_tokens:
        assert c_client.unlock(name, wrong) == cabi.NOT_OWNER, wrong
        assert raw.get(name) == py_token

    assert py_lock.unlock(py_token) is True
    assert raw.exists(name) == 0
    assert c_client.unlock(f"{name}-other", other_token) == cabi.OK


def test_python_redilock_cannot_unlock_c_abi_lock(py_lock, c_client, raw, name):
    status, c_token, message = c_client.lock(name, TTL_MS, cabi.NO_WAIT)
    assert status == cabi.OK, message

    wrong_tokens = [
        f"_LOCK:{name}:{uuid.uuid4().hex}",  # python-redilock's form, naming this lock
        f"_LOCK:{name}:{c_token}",  # the holder's token inside python-redilock's form
        c_token,  # python-redilock cannot even address a token of the C ABI's form
    ]
    for wrong in wrong_tokens:
        assert py_lock.unlock(wrong) is False, wrong
        assert raw.get(name) == c_token

    assert c_client.unlock(name, c_token) == cabi.OK
    assert raw.exists(name) == 0
