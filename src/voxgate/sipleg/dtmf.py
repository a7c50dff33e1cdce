"""DTMF in SIP INFO: ``application/dtmf-relay`` (``Signal=5`` / ``Duration=160``), as phones and
FreeSWITCH send it, and the bare ``application/dtmf`` (the digit alone)."""

from __future__ import annotations

__all__ = ["DIGITS", "TYPES", "body", "read"]

DIGITS = "0123456789*#ABCD"  # RFC 4733 events 0-15, in order
TYPES = ("application/dtmf-relay", "application/dtmf")
_DEFAULT_MS = 160


def _digit(value: str) -> str | None:
    value = value.strip().upper()
    if len(value) == 1 and value in DIGITS:
        return value
    if value.isdigit() and int(value) < len(DIGITS):  # "Signal=11" is '#'
        return DIGITS[int(value)]
    return None


def read(content_type: str, data: bytes) -> tuple[str, int] | None:
    """(digit, duration in ms) from an INFO body, or None when it holds no digit."""
    text = data.decode("utf-8", "replace")
    if content_type == "application/dtmf":
        digit = _digit(text)
        return (digit, _DEFAULT_MS) if digit else None
    if content_type != "application/dtmf-relay":
        return None
    fields: dict[str, str] = {}
    for line in text.splitlines():
        key, sep, value = line.partition("=")
        if sep:
            fields[key.strip().lower()] = value.strip()
    digit = _digit(fields.get("signal", ""))
    if digit is None:
        return None
    duration = fields.get("duration", "")
    return digit, int(duration) if duration.isdigit() else _DEFAULT_MS


def body(digit: str, duration: int) -> bytes:
    """An ``application/dtmf-relay`` body; ``ValueError`` for anything but one DTMF digit."""
    checked = _digit(digit) if len(digit) == 1 else None
    if checked is None or not 0 < duration <= 60_000:
        raise ValueError(f"not a DTMF digit and duration: {digit!r}, {duration}")
    return f"Signal={checked}\r\nDuration={duration}\r\n".encode()
