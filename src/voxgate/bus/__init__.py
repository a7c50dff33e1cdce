"""Presence (who holds which registration) and events between API and gateway nodes."""

from voxgate.bus.base import Bus, BusEvent, Displaced, Registration, Revoked
from voxgate.bus.local import LocalBus

__all__ = ["Bus", "BusEvent", "Displaced", "LocalBus", "Registration", "Revoked"]
