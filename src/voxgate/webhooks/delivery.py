"""Webhook delivery off the signaling path: a bounded queue, a few workers, back-off retries.

Only to permitted addresses (``CheckedTransport``): an event whose target is refused is
dropped at once, logged with the host and the reason (never the URL, whose path or query may
hold a receiver's secret) and counted.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
import structlog

from voxgate.domain.errors import TargetRefused
from voxgate.domain.ids import new_uuid
from voxgate.domain.timeutil import iso, utcnow
from voxgate.domain.webhook_targets import WebhookTargets
from voxgate.tasks import cancel_and_wait
from voxgate.webhooks.signing import WebhookSigner
from voxgate.webhooks.transport import CheckedTransport

__all__ = ["WebhookSender"]

log = structlog.get_logger("voxgate.webhooks")


@dataclass(slots=True)
class _Job:
    url: str
    event_type: str
    payload: dict[str, Any]
    timeout: float
    event_id: str = field(default_factory=new_uuid)
    occurred_at: str = field(default_factory=lambda: iso(utcnow()))
    attempt: int = 0


class WebhookSender:
    def __init__(
        self,
        signer: WebhookSigner,
        targets: WebhookTargets | None = None,
        *,
        on_refused: Callable[[], None] = lambda: None,
        workers: int = 2,
        max_queue: int = 10_000,
        max_attempts: int = 5,
        base_delay: float = 1.0,
    ) -> None:
        self.signer = signer
        self.max_attempts = max_attempts
        self.base_delay = base_delay
        self._queue: asyncio.Queue[_Job] = asyncio.Queue(max_queue)
        self._workers = workers
        self._tasks: list[asyncio.Task[None]] = []
        transport = CheckedTransport(targets or WebhookTargets())
        self._client = httpx.AsyncClient(
            follow_redirects=False, transport=transport, trust_env=False
        )
        self._on_refused = on_refused
        self.delivered = 0
        self.dropped = 0
        self.refused = 0

    def start(self) -> None:
        self._tasks = [asyncio.create_task(self._work()) for _ in range(self._workers)]

    async def close(self) -> None:
        await cancel_and_wait(self._tasks)
        await self._client.aclose()

    def send(
        self, url: str, event_type: str, payload: dict[str, Any], timeout: float | None = None
    ) -> None:
        """Never blocks: a full queue drops the event (counted, logged) rather than stall calls."""
        try:
            self._queue.put_nowait(_Job(url, event_type, payload, timeout or 10.0))
        except asyncio.QueueFull:
            self.dropped += 1
            log.warning("webhook queue full, event dropped", event_type=event_type)

    def _body(self, job: _Job) -> bytes:
        envelope = {
            "data": {
                "event_type": job.event_type,
                "id": job.event_id,
                "occurred_at": job.occurred_at,
                "payload": job.payload,
                "record_type": "event",
            },
            "meta": {"attempt": job.attempt, "delivered_to": job.url},
        }
        return json.dumps(envelope, separators=(",", ":")).encode()

    async def _work(self) -> None:
        while True:
            job = await self._queue.get()
            try:
                await self._deliver(job)
            finally:
                self._queue.task_done()

    async def _deliver(self, job: _Job) -> None:
        while job.attempt < self.max_attempts:
            job.attempt += 1
            body = self._body(job)
            headers = {
                "content-type": "application/json",
                **self.signer.headers(body, int(time.time())),
            }
            try:
                r = await self._client.post(
                    job.url, content=body, headers=headers, timeout=job.timeout
                )
                if 200 <= r.status_code < 300:
                    self.delivered += 1
                    return
                reason = f"status {r.status_code}"
            except httpx.HTTPError as exc:
                reason = type(exc).__name__
            except TargetRefused as exc:  # the same answer on every try: never retried
                self.refused += 1
                self._on_refused()
                log.warning("webhook refused", event_type=job.event_type, reason=exc.detail)
                return
            log.info(
                "webhook attempt failed",
                event_type=job.event_type,
                attempt=job.attempt,
                reason=reason,
            )
            await asyncio.sleep(self.base_delay * 2 ** (job.attempt - 1))
        log.warning("webhook given up", event_type=job.event_type, attempts=job.attempt)
