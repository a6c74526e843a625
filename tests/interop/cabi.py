"""libredilock through ctypes: its C ABI, called exactly as a C program calls it.

Every function used has its signature declared from include/redilock.h, and the constants
(statuses, token size, timeouts) are read from that header's #defines, not copied here.
"""

import ctypes
import re
from pathlib import Path

HEADER = Path(__file__).resolve().parents[2] / "include" / "redilock.h"

# `#define REDILOCK_NAME <integer>` lines of the header.
DEFINES = {
    match[1]: int(match[2])
    for match in re.finditer(r"^#define (REDILOCK_\w+) (-?\d+)\s*$", HEADER.read_text(), re.M)
}
STATUS = {name: value for name, value in DEFINES.items() if name.startswith("REDILOCK_STATUS_")}
OK = STATUS["REDILOCK_STATUS_OK"]
NOT_ACQUIRED = STATUS["REDILOCK_STATUS_NOT_ACQUIRED"]
NOT_OWNER = STATUS["REDILOCK_STATUS_NOT_OWNER"]
TOKEN_LEN = DEFINES["REDILOCK_TOKEN_LEN"]
NO_WAIT = DEFINES["REDILOCK_NO_WAIT"]

_status = ctypes.c_uint32  # redilock_status
_client = ctypes.c_void_p  # redilock * (opaque)

_SIGNATURES = {
    "redilock_new": (_status, [ctypes.c_char_p, ctypes.c_uint64, ctypes.POINTER(_client)]),
    "redilock_lock": (
        _status,
        [_client, ctypes.c_char_p, ctypes.c_uint64, ctypes.c_int64,
         ctypes.POINTER(ctypes.c_char), ctypes.c_size_t],
    ),
    "redilock_unlock": (_status, [_client, ctypes.c_char_p, ctypes.c_char_p]),
    "redilock_free": (None, [_client]),
    "redilock_last_error": (ctypes.c_char_p, []),
    "redilock_status_str": (ctypes.c_char_p, [_status]),
}


def load(path):
    """Loads libredilock from `path` and declares the signatures of the functions used."""
    lib = ctypes.CDLL(path)
    for name, (restype, argtypes) in _SIGNATURES.items():
        function = getattr(lib, name)
        function.restype, function.argtypes = restype, argtypes
    return lib


def status_name(status):
    names = [name for name, value in STATUS.items() if value == status]
    return names[0] if names else f"status {status}"


class Client:
    """One `redilock *`, freed by close() with redilock_free."""

    def __init__(self, lib, url):
        self.lib = lib
        handle = _client()
        status = lib.redilock_new(url.encode(), 0, ctypes.byref(handle))
        if status != OK:
            raise RuntimeError(f"redilock_new: {self._describe(status)}")
        self.handle = handle

    def _describe(self, status):
        # redilock_last_error() is per thread: call this on the thread of the failed call.
        return f"{status_name(status)}: {self.lib.redilock_last_error().decode()}"

    def lock(self, name, ttl_ms, timeout_ms):
        """redilock_lock: returns (status, token, message); token is "" unless status is OK."""
        token = ctypes.create_string_buffer(TOKEN_LEN)
        status = self.lib.redilock_lock(self.handle, name.encode(), ttl_ms, timeout_ms, token, TOKEN_LEN)
        message = "" if status == OK else self._describe(status)
        return status, token.value.decode(), message

    def unlock(self, name, token):
        """redilock_unlock: returns the status."""
        return self.lib.redilock_unlock(self.handle, name.encode(), token.encode())

    def close(self):
        self.lib.redilock_free(self.handle)
        self.handle = None
