"""Who a session speaks for, as one small value type.

A principal is what owns a registration and what a revocation names: a telephony credential,
a credential connection (user name/password logins) or an AI assistant (anonymous logins). It
is a ``str`` (``cred:<id>``, ``conn:<id>``, ``anon:<id>``) so it can key Redis, dicts and bus
messages as it is; it is built and taken apart only here.
"""

from __future__ import annotations

from typing import Literal

__all__ = ["Principal", "PrincipalKind"]

PrincipalKind = Literal["cred", "conn", "anon"]
_KINDS: tuple[PrincipalKind, ...] = ("cred", "conn", "anon")


class Principal(str):
    __slots__ = ()

    @classmethod
    def credential(cls, credential_id: str) -> Principal:
        return cls(f"cred:{credential_id}")

    @classmethod
    def connection(cls, connection_id: str) -> Principal:
        return cls(f"conn:{connection_id}")

    @classmethod
    def assistant(cls, assistant_id: str) -> Principal:
        return cls(f"anon:{assistant_id}")

    @property
    def kind(self) -> PrincipalKind | None:
        prefix = self.partition(":")[0]
        for kind in _KINDS:
            if prefix == kind:
                return kind
        return None

    @property
    def id(self) -> str:
        return self.partition(":")[2]

    @staticmethod
    def ids_of(principals: tuple[str, ...] | list[str]) -> tuple[list[str], list[str]]:
        """The credential ids and the connection ids named by ``principals``."""
        named = [Principal(p) for p in principals]
        return (
            [p.id for p in named if p.kind == "cred"],
            [p.id for p in named if p.kind == "conn"],
        )
