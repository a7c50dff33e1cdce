"""``/call_reports`` and ``/call_quality`` (ours): the SDK's call reports as kept, and what they
add up to for one call leg (the SDK's ``call.id``)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from voxgate.api import render
from voxgate.api.deps import control
from voxgate.api.paging import filters, page_args, page_envelope
from voxgate.domain.callquality import series, summarize
from voxgate.domain.errors import NotFound

__all__ = ["router"]

router = APIRouter(tags=["Call Reports"])


@router.get(
    "/call_reports",
    summary="Call reports, newest first; filter[call_id] (the SDK's call.id), "
    "filter[credential_id]",
)
async def list_(request: Request) -> dict[str, Any]:
    number, size = page_args(request.query_params, default=50, maximum=250)
    flt = filters(request.query_params)
    page = await control(request).store.list_call_reports(
        flt.get("call_id"), flt.get("credential_id"), number, size
    )
    return page_envelope(page, render.call_report)


@router.get("/call_reports/{report_id}", summary="One call report, with the SDK's body")
async def retrieve(report_id: str, request: Request) -> dict[str, Any]:
    report = await control(request).store.get_call_report(report_id)
    if report is None:
        raise NotFound("No call report with that id", pointer="/report_id")
    return {"data": {**render.call_report(report), "body": report.body}}


@router.get(
    "/call_quality/{call_id}",
    summary="One call leg's quality: duration, RTT, jitter, loss, packets and bytes, MOS "
    "(simplified E-model), and the per-interval series",
)
async def quality(call_id: str, request: Request) -> dict[str, Any]:
    reports = [
        r for r in await control(request).store.call_reports_of(call_id) if r.kind == "report"
    ]
    if not reports:
        raise NotFound("No call reports for that call", pointer="/call_id")
    bodies = [r.body for r in reports]
    return {
        "data": {
            "record_type": "call_quality",
            "call_id": call_id,
            "credential_id": reports[-1].credential_id,
            "reports": len(reports),
            "final": any(r.final for r in reports),
            **summarize(bodies),
            "series": series(bodies),
        }
    }
