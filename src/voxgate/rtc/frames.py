"""JSON-RPC 2.0 frames as the Telnyx SDKs send them, parsed without trusting any field."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from voxgate.domain.errors import InvalidParams, InvalidRequest, ParseError, VoxgateError

__all__ = [
    "FrameError",
    "Request",
    "Response",
    "error_frame",
    "parse_frame",
    "request_frame",
    "result_frame",
]

Id = str | int


@dataclass(frozen=True, slots=True)
class Request:
    """A request (``id`` set) or notification (``id`` None). ``method`` may be None: the SDK's
    debug reports are method-less requests that still need an answer."""

    id: Id | None
    method: str | None
    params: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Response:
    """A client's ack or answer to one of our requests."""

    id: Id | None
    result: Any
    error: Any


@dataclass(frozen=True, slots=True)
class FrameError:
    """A frame we cannot take; answered with ``error``'s JSON-RPC code."""

    error: VoxgateError
    id: Id | None = None


def _valid_id(value: object) -> bool:
    return (isinstance(value, str) and len(value) <= 128) or (
        isinstance(value, int) and not isinstance(value, bool)
    )


def parse_frame(data: str | bytes | dict[str, Any]) -> Request | Response | FrameError:
    if isinstance(data, dict):
        obj: Any = data
    else:
        try:
            obj = json.loads(data)
        except (ValueError, UnicodeDecodeError, RecursionError):
            return FrameError(ParseError())
    if not isinstance(obj, dict):
        return FrameError(InvalidRequest())
    raw_id = obj.get("id")
    frame_id: Id | None = raw_id if _valid_id(raw_id) else None
    if raw_id is not None and frame_id is None:
        return FrameError(InvalidRequest("Invalid Request: bad id"))
    if ("result" in obj or "error" in obj) and "method" not in obj:
        return Response(frame_id, obj.get("result"), obj.get("error"))
    method = obj.get("method")
    if method is not None and (not isinstance(method, str) or len(method) > 64):
        return FrameError(InvalidRequest("Invalid Request: bad method"), frame_id)
    params = obj.get("params", {})
    if params is None:
        params = {}
    if not isinstance(params, dict):
        return FrameError(InvalidParams("Invalid params: must be an object"), frame_id)
    return Request(frame_id, method, params)


def result_frame(frame_id: Id | None, result: dict[str, Any], **top: Any) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": frame_id, "result": result, **top}


def error_frame(frame_id: Id | None, error: VoxgateError) -> dict[str, Any]:
    """The error's JSON-RPC code and its message (which never holds a secret)."""
    body = {"code": error.rpc_code, "message": error.detail}
    return {"jsonrpc": "2.0", "id": frame_id, "error": body}


def request_frame(frame_id: Id, method: str, params: dict[str, Any], **top: Any) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": frame_id, "method": method, "params": params, **top}
