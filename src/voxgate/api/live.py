"""What is live right now, across every node (ours, for the operator console and scripts):
registrations, sessions per node, calls in progress, and the last hour's per-minute counts.
Presence and the nodes' reports come from the bus, so any API node sees the whole cluster."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, Request

from voxgate.api import render
from voxgate.api.deps import control
from voxgate.api.paging import filters, page_args, page_envelope
from voxgate.domain.records import Page
from voxgate.domain.registrations import Registration
from voxgate.store.base import CredentialFilter, Store

__all__ = ["router"]

router = APIRouter(tags=["Live"])


@router.get(
    "/registrations",
    summary="Who is registered where, newest first; filter[connection_id], filter[credential_id], "
    "filter[node_id], filter[name] (the credential's name)",
)
async def registrations(request: Request) -> dict[str, Any]:
    number, size = page_args(request.query_params, default=50, maximum=250)
    flt = filters(request.query_params)
    plane = control(request)
    found = await plane.bus.all_registrations()
    named: set[str] | None = None
    if "name" in flt:
        creds = await plane.list_credentials(CredentialFilter(name=flt["name"]), 1, 250)
        named = {c.id for c in creds.items}
    keep = [
        r
        for r in found
        if flt.get("connection_id", r.connection_id) == r.connection_id
        and flt.get("credential_id", r.credential_id) == r.credential_id
        and flt.get("node_id", r.node_id) == r.node_id
        and (named is None or r.credential_id in named)
    ]
    keep.sort(key=lambda r: r.registered_at, reverse=True)
    start = (number - 1) * size
    page: Page[Registration] = Page(keep[start : start + size], len(keep), number, size)
    names = await _names(plane.store, page.items)
    return page_envelope(page, lambda r: {**render.registration(r), **names(r)})


async def _names(
    store: Store, regs: list[Registration]
) -> Callable[[Registration], dict[str, Any]]:
    """The credentials' and connections' names, for people (the console shows them, with the
    ids a click away): one read per distinct record on the page."""
    creds = {i: await store.get_credential(i) for i in {r.credential_id for r in regs} if i}
    conns = {i: await store.get_connection(i) for i in {r.connection_id for r in regs} if i}

    def named(r: Registration) -> dict[str, Any]:
        cred = creds.get(r.credential_id or "")
        conn = conns.get(r.connection_id)
        return {
            "credential_name": cred.name if cred else None,
            "connection_name": conn.connection_name if conn else None,
        }

    return named


@router.get("/sessions", summary="Live sessions on each gateway node, as each last reported")
async def sessions(request: Request) -> dict[str, Any]:
    reports = await control(request).bus.node_reports()
    nodes = sorted(
        (
            {
                "record_type": "node_sessions",
                "node_id": r.get("node_id"),
                "pid": r.get("pid"),
                "sessions": r.get("sessions", 0),
                "registered": r.get("registered", 0),
                "detached": r.get("detached", 0),
                "calls": len(r.get("calls") or []),
                "reported_at": render.instant(float(r.get("at") or 0.0)),
            }
            for r in reports
        ),
        key=lambda n: str(n["node_id"]),
    )
    total = sum(int(n["sessions"]) for n in nodes)
    return {"data": nodes, "meta": {"total_sessions": total, "nodes": len(nodes)}}


@router.get("/calls", summary="Calls in progress (ringing or answered) on every node")
async def calls(request: Request) -> dict[str, Any]:
    reports = await control(request).bus.node_reports()
    found = [c for r in reports for c in r.get("calls") or []]
    found.sort(key=lambda c: float(c.get("started") or 0.0), reverse=True)
    return {"data": [render.live_call(c) for c in found], "meta": {"total_results": len(found)}}


@router.get(
    "/stats",
    summary="The last hour, per minute, summed over the nodes: logins ok and failed, "
    "revocations, live sessions",
)
async def stats(request: Request) -> dict[str, Any]:
    reports = await control(request).bus.node_reports()
    minutes: dict[float, dict[str, float]] = defaultdict(
        lambda: {"logins_ok": 0.0, "logins_failed": 0.0, "revocations": 0.0, "sessions": 0.0}
    )
    for report in reports:
        for row in report.get("minutes") or []:
            total = minutes[float(row["minute"])]
            for name in total:
                total[name] += float(row.get(name) or 0.0)
    rows = [
        {"minute": render.instant(minute), **{k: int(v) for k, v in counts.items()}}
        for minute, counts in sorted(minutes.items())
    ]
    return {"data": rows}
