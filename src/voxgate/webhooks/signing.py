"""Ed25519 over ``f"{timestamp}|{body}"``, the scheme the official SDKs' ``webhooks.unwrap`` checks.

The key is derived from the deployment's secret file, so every node signs with the same key and
nothing extra needs storing; ``voxgate keys webhook-public-key`` prints what users configure.
"""

from __future__ import annotations

import base64

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

__all__ = ["WebhookSigner"]

PURPOSE = "voxgate webhook signing v1"


class WebhookSigner:
    def __init__(self, seed: bytes) -> None:
        self._key = Ed25519PrivateKey.from_private_bytes(seed)

    @property
    def public_key(self) -> str:
        """Standard padded base64 of the 32-byte key (Node's SDK insists on the padding)."""
        raw = self._key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
        return base64.b64encode(raw).decode()

    def headers(self, body: bytes, timestamp: int) -> dict[str, str]:
        signature = self._key.sign(str(timestamp).encode() + b"|" + body)
        return {
            "telnyx-signature-ed25519": base64.b64encode(signature).decode(),
            "telnyx-timestamp": str(timestamp),
        }
