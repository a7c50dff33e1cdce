"""Secrets: API keys, password hashing, the signing key ring, JWT mint/verify, login throttle."""
