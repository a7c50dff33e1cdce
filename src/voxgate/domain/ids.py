"""Identifier and secret shapes, matching what Telnyx emits so user code that parses them works."""

from __future__ import annotations

import os
import secrets
import string
import threading
import time

__all__ = [
    "new_api_key",
    "new_connection_id",
    "new_kid",
    "new_request_id",
    "new_sip_password",
    "new_sip_username",
    "new_time_uuid",
    "new_uuid",
    "random_bytes",
]

_ALNUM = string.ascii_letters + string.digits
API_KEY_PREFIX = "KEYvx"


class _RandomPool:
    """Random bytes from the OS in 4 KiB reads: one ``getrandom`` per 256 ids, not per id.

    Every login creates a session id and audit ids; a syscall each showed up in the login
    profile. The bytes are the same CSPRNG output ``uuid.uuid4()`` uses, only read in bulk.
    """

    def __init__(self, size: int = 4096) -> None:
        self._size = size
        self._buf = b""
        self._pos = 0
        self._lock = threading.Lock()

    def take(self, n: int) -> bytes:
        with self._lock:
            if self._pos + n > len(self._buf):
                self._buf, self._pos = os.urandom(self._size), 0
            out = self._buf[self._pos : self._pos + n]
            self._pos += n
            return out


_POOL = _RandomPool()


def random_bytes(n: int) -> bytes:
    """``os.urandom(n)`` for hot paths, from the bulk pool."""
    return _POOL.take(n)


def new_request_id() -> str:
    return _POOL.take(16).hex()


def new_time_uuid() -> str:
    """A UUIDv7 (RFC 9562): milliseconds first, so rows keyed by it are appended in order
    instead of landing at random places in the primary-key index (the audit table)."""
    millis = time.time_ns() // 1_000_000
    return _uuid_text(millis.to_bytes(6, "big") + _POOL.take(10), 7)


def new_uuid() -> str:
    """A random (version 4) UUID in its usual text form."""
    return _uuid_text(_POOL.take(16), 4)


def _uuid_text(raw: bytes, version: int) -> str:
    """16 bytes with the version and RFC variant bits set, as 8-4-4-4-12 hex."""
    b = bytearray(raw)
    b[6] = (b[6] & 0x0F) | (version << 4)
    b[8] = (b[8] & 0x3F) | 0x80
    h = b.hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def new_connection_id() -> str:
    """A positive int64 as a decimal string, like ``1293384261075731499``."""
    return str(secrets.randbelow(2**62) + 10**18)


def new_sip_username() -> str:
    return "gencred" + "".join(secrets.choice(_ALNUM) for _ in range(28))


def new_sip_password() -> str:
    return secrets.token_hex(16)


def new_api_key() -> str:
    """256 bits of randomness; stored only as a SHA-256 digest."""
    return API_KEY_PREFIX + secrets.token_urlsafe(32)


def new_kid() -> str:
    return "vx" + secrets.token_hex(8)
