"""Presence (who holds which registration) and events between API and gateway nodes."""

from voxgate.bus.base import Bus, BusEvent, BusUnavailable, Displaced, NodeMessage, Revoked
from voxgate.bus.local import LocalBus

__all__ = [
    "Bus",
    "BusEvent",
    "BusUnavailable",
    "Displaced",
    "LocalBus",
    "NodeMessage",
    "Revoked",
]
