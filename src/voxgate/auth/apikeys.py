"""API keys are random and high-entropy, so one SHA-256 is enough and keeps each request cheap."""

from __future__ import annotations

import hashlib
import hmac

__all__ = ["digest_api_key", "digests_match"]


def digest_api_key(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()


def digests_match(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode(), b.encode())
