"""What a leg is given: where it is, where its proxy is, its timers, and where its ids come from.

Ids are injected so that a test with a seed sees the same Call-IDs, tags and branches every
run; in service they come from the OS's CSPRNG (tags and Call-IDs must not be guessable: a
guessed dialog could be hung up by a stranger's BYE).
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Protocol

from voxgate.domain.ids import random_bytes
from voxgate.sipleg.messages import Transport

__all__ = ["Ids", "LegConfig", "RandomIds", "SeededIds", "Timers"]


@dataclass(frozen=True, slots=True)
class Timers:
    """RFC 3261 17.1.1.1 and table 4. Every other timer is derived from these three."""

    t1: float = 0.5  # round-trip estimate: first retransmission
    t2: float = 4.0  # cap on non-INVITE (and 2xx, Timer G) retransmission intervals
    t4: float = 5.0  # how long a message may linger in the network (Timers I, K)

    @property
    def transaction(self) -> float:
        """64*T1: Timers B, F, H, J, and how long a 2xx waits for its ACK."""
        return 64 * self.t1


@dataclass(frozen=True, slots=True)
class LegConfig:
    """A leg's place on the network: its own address (Via sent-by, Contact) and the outbound
    proxy every request goes through (voxgate's Kamailio)."""

    local_host: str
    local_port: int
    proxy_host: str
    proxy_port: int
    transport: Transport = Transport.UDP
    user_agent: str = "voxgate"
    timers: Timers = field(default_factory=Timers)


class Ids(Protocol):
    def token(self) -> str:
        """A fresh identifier: letters and digits only (a tag, a branch, a Call-ID's left)."""
        ...

    def fraction(self) -> float:
        """A number in [0, 1), for the randomized wait after a 491 (RFC 3261 14.1)."""
        ...


class RandomIds:
    """Unguessable ids, from the same bulk CSPRNG pool as the rest of voxgate."""

    def token(self) -> str:
        return random_bytes(10).hex()

    def fraction(self) -> float:
        return int.from_bytes(random_bytes(4), "big") / 2**32


class SeededIds:
    """The same ids for the same seed: for tests and replays."""

    def __init__(self, seed: int = 0) -> None:
        self._random = random.Random(seed)

    def token(self) -> str:
        return f"{self._random.getrandbits(64):016x}"

    def fraction(self) -> float:
        return self._random.random()
