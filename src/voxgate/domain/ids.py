"""Identifier and secret shapes, matching what Telnyx emits so user code that parses them works."""

from __future__ import annotations

import secrets
import string
import uuid

__all__ = [
    "new_api_key",
    "new_connection_id",
    "new_kid",
    "new_sip_password",
    "new_sip_username",
    "new_uuid",
]

_ALNUM = string.ascii_letters + string.digits
API_KEY_PREFIX = "KEYvx"


def new_uuid() -> str:
    return str(uuid.uuid4())


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
