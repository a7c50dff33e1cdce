"""The phone numbers voxgate holds: each is assigned to a credential connection, and may be
to one of its credentials (a trunk's call to it rings that credential, or else the
connection's registrations), and may be tied to the trunk it arrives on."""

from __future__ import annotations

from typing import Any

from voxgate.domain import ids
from voxgate.domain.errors import Conflict, NotFound, ValidationFailed
from voxgate.domain.records import Credential, Page, PhoneNumber
from voxgate.domain.timeutil import utcnow
from voxgate.services.numbering import e164
from voxgate.services.trunk_schemas import NumberCreate, NumberUpdate
from voxgate.store.base import Store

__all__ = ["Numbers"]

_MISSING = "The requested resource or URL could not be found."


class Numbers:
    def __init__(self, store: Store) -> None:
        self.store = store

    async def create(self, body: NumberCreate) -> PhoneNumber:
        """Exactly one of ``credential_id`` (the number rings it; its connection is taken
        from it) and ``connection_id`` (the number rings the connection's registrations)."""
        phone_number = e164(body.phone_number)
        if (body.credential_id is None) == (body.connection_id is None):
            raise ValidationFailed(
                "give exactly one of credential_id and connection_id",
                pointer="/credential_id" if body.credential_id else "/connection_id",
            )
        if body.credential_id is not None:
            connection_id = (await self._credential(body.credential_id)).connection_id
        else:
            connection_id = await self._connection(body.connection_id)
        if body.trunk_id is not None:
            await self._trunk(body.trunk_id)
        if await self.store.number_by_e164(phone_number) is not None:
            raise Conflict("phone_number is already held by voxgate", pointer="/phone_number")
        now = utcnow()
        number = PhoneNumber(
            id=ids.new_uuid(),
            phone_number=phone_number,
            connection_id=connection_id,
            credential_id=body.credential_id,
            trunk_id=body.trunk_id,
            created_at=now,
            updated_at=now,
        )
        await self.store.add_number(number)
        return number

    async def get(self, number_id: str) -> PhoneNumber:
        found = await self.store.get_number(number_id)
        if found is None:
            raise NotFound(_MISSING, pointer="/")
        return found

    async def list(
        self,
        number: int,
        size: int,
        connection_id: str | None = None,
        credential_id: str | None = None,
    ) -> Page[PhoneNumber]:
        return await self.store.list_numbers(number, size, connection_id, credential_id)

    async def update(self, number_id: str, body: NumberUpdate) -> PhoneNumber:
        """``credential_id`` moves the number to that credential and its connection (a
        ``connection_id`` given with it must be that one); ``connection_id`` alone moves it to
        the connection, off a credential of another connection; ``null`` clears the
        credential or the trunk (a number always has a connection)."""
        current = await self.get(number_id)
        fields = body.model_dump(exclude_unset=True)
        changes: dict[str, Any] = {"updated_at": utcnow()}
        if "connection_id" in fields:
            if fields["connection_id"] is None:
                raise ValidationFailed("connection_id cannot be null", pointer="/connection_id")
            changes["connection_id"] = await self._connection(fields["connection_id"])
            if changes["connection_id"] != current.connection_id:
                changes["credential_id"] = None  # the old connection's credential
        if fields.get("credential_id") is not None:
            cred = await self._credential(fields["credential_id"])
            if changes.get("connection_id", cred.connection_id) != cred.connection_id:
                raise ValidationFailed(
                    "connection_id is not the connection of the credential given",
                    pointer="/connection_id",
                )
            changes |= {"credential_id": cred.id, "connection_id": cred.connection_id}
        elif "credential_id" in fields:
            changes["credential_id"] = None
        if "trunk_id" in fields:
            if fields["trunk_id"] is not None:
                await self._trunk(fields["trunk_id"])
            changes["trunk_id"] = fields["trunk_id"]
        updated = await self.store.update_number(number_id, **changes)
        if updated is None:
            raise NotFound(_MISSING, pointer="/")
        return updated

    async def delete(self, number_id: str) -> PhoneNumber:
        found = await self.store.delete_number(number_id)
        if found is None:
            raise NotFound(_MISSING, pointer="/")
        return found

    # -- references ------------------------------------------------------------------------
    async def _credential(self, cred_id: str) -> Credential:
        cred = await self.store.get_credential(cred_id)
        if cred is None:
            raise ValidationFailed(
                "credential_id does not name an existing telephony credential",
                pointer="/credential_id",
            )
        return cred

    async def _connection(self, conn_id: str | None) -> str:
        if conn_id is None or await self.store.get_connection(conn_id) is None:
            raise ValidationFailed(
                "connection_id does not name an existing credential connection",
                pointer="/connection_id",
            )
        return conn_id

    async def _trunk(self, trunk_id: str) -> None:
        if await self.store.get_trunk(trunk_id) is None:
            raise ValidationFailed(
                "trunk_id does not name an existing SIP trunk", pointer="/trunk_id"
            )
