"""AI assistants: the only thing an ``anonymous_login`` may reach, and what answers its call."""

from __future__ import annotations

from voxgate.domain import ids
from voxgate.domain.errors import NotFound, ValidationFailed
from voxgate.domain.records import Assistant, Page
from voxgate.domain.timeutil import utcnow
from voxgate.store.base import Store

__all__ = ["ASSISTANT_KINDS", "Assistants"]

ASSISTANT_KINDS = ("echo", "tone", "greeting", "custom")


class Assistants:
    def __init__(self, store: Store) -> None:
        self.store = store

    async def create(
        self, name: str, kind: str = "echo", instructions: str | None = None
    ) -> Assistant:
        if not name or len(name) > 255:
            raise ValidationFailed("name must be 1-255 characters", pointer="/name")
        if kind not in ASSISTANT_KINDS:
            raise ValidationFailed(
                f"kind must be one of {', '.join(ASSISTANT_KINDS)}", pointer="/kind"
            )
        settings = {"instructions": instructions} if instructions else {}
        assistant = Assistant("assistant-" + ids.new_uuid(), name, kind, utcnow(), settings)
        await self.store.add_assistant(assistant)
        return assistant

    async def get(self, assistant_id: str) -> Assistant:
        found = await self.store.get_assistant(assistant_id)
        if found is None:
            raise NotFound(pointer="/")
        return found

    async def list(self, number: int, size: int) -> Page[Assistant]:
        return await self.store.list_assistants(number, size)

    async def delete(self, assistant_id: str) -> Assistant:
        found = await self.store.delete_assistant(assistant_id)
        if found is None:
            raise NotFound(pointer="/")
        return found
