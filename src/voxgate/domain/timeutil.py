"""Time as data: UTC everywhere, one wire format, and parsing that accepts what users paste."""

from __future__ import annotations

from datetime import UTC, datetime

__all__ = ["from_epoch", "iso", "parse_instant", "spoken", "to_epoch", "utcnow"]


def utcnow() -> datetime:
    return datetime.now(UTC)


def iso(value: datetime) -> str:
    """``2018-02-02T22:25:27.521Z``: the spec's example shape, accepted by both SDKs."""
    return (
        value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}Z"
    )


def spoken(value: datetime) -> str:
    """``2020-06-18 21:32:38.917732Z``: Elixir's ``DateTime.to_string``, the shape of the
    default credential name in Telnyx's examples."""
    return str(value.astimezone(UTC)).replace("+00:00", "Z")


def parse_instant(text: str) -> datetime:
    """ISO-8601; naive values (as in Telnyx's docs, ``2024-09-18T00:00:00``) are read as UTC."""
    value = datetime.fromisoformat(text.strip().replace("Z", "+00:00").replace("z", "+00:00"))
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def to_epoch(value: datetime) -> float:
    return value.timestamp()


def from_epoch(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)
