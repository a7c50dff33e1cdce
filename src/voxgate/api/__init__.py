"""The REST control plane, wire-compatible with the official ``telnyx`` SDKs (``api.app``).

Nothing is imported here: the CLI renders records with ``api.render`` without loading FastAPI.
"""
