"""The REST control plane, wire-compatible with the official ``telnyx`` SDKs."""

from voxgate.api.app import create_api

__all__ = ["create_api"]
