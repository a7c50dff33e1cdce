"""deepObject query parsing (``filter[a][b]=``, ``page[number]=``) and the list envelope."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from starlette.datastructures import QueryParams

from voxgate.domain.errors import BadRequest
from voxgate.domain.records import Page

__all__ = ["filters", "page_args", "page_envelope"]

T = TypeVar("T")


def page_args(query: QueryParams, *, default: int, maximum: int) -> tuple[int, int]:
    number = _positive(query, "page[number]", 1)
    size = _positive(query, "page[size]", default)
    if size > maximum:
        raise BadRequest(f"page[size] must be between 1 and {maximum}", pointer="/page/size")
    if number > 10_000_000:
        raise BadRequest("page[number] is too large", pointer="/page/number")
    return number, size


def _positive(query: QueryParams, key: str, default: int) -> int:
    raw = query.get(key)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise BadRequest(
            f"{key} must be a positive integer",
            pointer="/" + key.replace("[", "/").rstrip("]").replace("]", ""),
        ) from None
    if value < 1:
        raise BadRequest(
            f"{key} must be a positive integer",
            pointer="/" + key.replace("[", "/").rstrip("]").replace("]", ""),
        )
    return value


def filters(query: QueryParams) -> dict[str, str]:
    """``filter[connection_name][contains]=x`` → ``{"connection_name.contains": "x"}``."""
    out: dict[str, str] = {}
    for key, value in query.multi_items():
        if key.startswith("filter[") and key.endswith("]"):
            path = key[len("filter[") : -1].replace("][", ".")
            out[path] = value
    return out


def page_envelope(page: Page[T], render: Callable[[T], dict[str, Any]]) -> dict[str, Any]:
    return {
        "data": [render(item) for item in page.items],
        "meta": {
            "page_number": page.number,
            "page_size": page.size,
            "total_pages": page.total_pages,
            "total_results": page.total,
        },
    }
