"""SIP trunks: the peers towards the phone network (a carrier's SIP trunking, or a PBX).

A trunk's password answers the carrier's 401/407 challenges, so voxgate must be able to read
it back (unlike a credential's, which only ever needs checking): it is sealed under the
deployment's secret file (``auth/keyring.py``, bound to the trunk's id) and opened only by
``Trunks.password``, for the SIP edge. No render, log line or error carries it.
"""

from __future__ import annotations

from typing import Any

from voxgate.auth.keyring import Sealer
from voxgate.domain import ids
from voxgate.domain.errors import NotFound, ValidationFailed
from voxgate.domain.records import Page, Trunk
from voxgate.domain.timeutil import utcnow
from voxgate.services.trunk_schemas import TrunkCreate, TrunkUpdate
from voxgate.store.base import Store

__all__ = ["Trunks"]

# Fields a PATCH may not set to null (the others clear: see ``TrunkUpdate``).
_REQUIRED = ("name", "host", "port", "transport", "register", "enabled")
_MISSING = "No SIP trunk with that id could be found."


class Trunks:
    def __init__(self, store: Store, sealer: Sealer) -> None:
        self.store = store
        self.sealer = sealer

    async def create(self, body: TrunkCreate) -> Trunk:
        username = body.username
        password = body.password.get_secret_value() if body.password is not None else None
        _check_credentials(username, password is not None, body.registration)
        now, trunk_id = utcnow(), ids.new_uuid()
        trunk = Trunk(
            id=trunk_id,
            name=body.name,
            host=body.host,
            port=body.port or 5060,  # TrunkCreate fills it in from the transport
            transport=body.transport,
            username=username,
            secret=self._seal(trunk_id, password),
            caller_id=body.caller_id,
            register=body.registration,
            source_addresses=list(body.source_addresses),
            concurrent_call_limit=body.concurrent_call_limit,
            enabled=body.enabled,
            created_at=now,
            updated_at=now,
        )
        await self.store.add_trunk(trunk)
        return trunk

    async def get(self, trunk_id: str) -> Trunk:
        found = await self.store.get_trunk(trunk_id)
        if found is None:
            raise NotFound(_MISSING, pointer="/")
        return found

    async def list(self, number: int, size: int) -> Page[Trunk]:
        return await self.store.list_trunks(number, size)

    async def update(self, trunk_id: str, body: TrunkUpdate) -> Trunk:
        trunk = await self.get(trunk_id)
        fields: dict[str, Any] = body.model_dump(exclude_unset=True, by_alias=True)
        fields.pop("password", None)  # read below from the model: a SecretStr, not its dump
        for key in _REQUIRED:
            if key in fields and fields[key] is None:
                raise ValidationFailed(f"{key} cannot be null", pointer=f"/{key}")
        changes: dict[str, Any] = {"updated_at": utcnow()}
        changes |= {k: v for k, v in fields.items() if k != "username"}
        if fields.get("source_addresses", []) is None:
            changes["source_addresses"] = []
        username, has_password = trunk.username, trunk.secret is not None
        cleared = ("username" in fields and fields["username"] is None) or (
            "password" in body.model_fields_set and body.password is None
        )
        if cleared:  # null for either clears both: a user name alone answers no challenge
            username, has_password = None, False
            changes |= {"username": None, "secret": None}
        else:
            if fields.get("username") is not None:
                username = changes["username"] = fields["username"]
            if body.password is not None:
                changes["secret"] = self._seal(trunk_id, body.password.get_secret_value())
                has_password = True
        _check_credentials(username, has_password, changes.get("register", trunk.register))
        updated = await self.store.update_trunk(trunk_id, **changes)
        if updated is None:
            raise NotFound(_MISSING, pointer="/")
        return updated

    async def delete(self, trunk_id: str) -> Trunk:
        """Numbers that arrived on it take any enabled trunk; connections that sent their
        calls out on it have those calls refused until they are given another."""
        found = await self.store.delete_trunk(trunk_id)
        if found is None:
            raise NotFound(_MISSING, pointer="/")
        return found

    def password(self, trunk: Trunk) -> str | None:
        """The trunk's password in the clear (for the carrier's digest challenges), or None."""
        if trunk.secret is None:
            return None
        return self.sealer.open(trunk.secret, _purpose(trunk.id)).decode()

    async def check_outbound(self, settings: dict[str, Any]) -> None:
        """A connection's create or update body (its settings): ``outbound.trunk_id``, when
        set, names a trunk that exists."""
        outbound = settings.get("outbound")
        trunk_id = outbound.get("trunk_id") if isinstance(outbound, dict) else None
        if trunk_id is not None and await self.store.get_trunk(trunk_id) is None:
            raise ValidationFailed(
                "outbound.trunk_id does not name an existing SIP trunk",
                pointer="/outbound/trunk_id",
            )

    def _seal(self, trunk_id: str, password: str | None) -> bytes | None:
        return None if password is None else self.sealer.seal(password.encode(), _purpose(trunk_id))


def _purpose(trunk_id: str) -> str:
    return "trunk:" + trunk_id


def _check_credentials(username: str | None, has_password: bool, register: bool) -> None:
    if (username is not None) != has_password:
        missing = "password" if username is not None else "username"
        raise ValidationFailed(
            "username and password go together: give both or neither", pointer=f"/{missing}"
        )
    if register and username is None:
        raise ValidationFailed(
            "register needs the trunk's username and password (the carrier challenges it)",
            pointer="/register",
        )
