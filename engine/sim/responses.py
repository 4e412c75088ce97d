"""Small response helpers shared by the REST modules: JSON bodies, Coinbase's error shapes, money objects."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import orjson

from engine.sim.clock import fmt
from engine.sim.messages import SimRequest, SimResponse
from engine.sim.values import ANY_INT, query_int
from engine.sim.values import BadRequest as BadRequest  # the handlers' refusal, raised from here as before


class DropConnection(Exception):
    """Raised by a handler to have the connection closed with no response (the drop_after_accept fault)."""


def json_response(payload: Any, status: int = 200) -> SimResponse:
    return SimResponse(orjson.dumps(payload), status)


def advanced_error(status: int, error: str, message: str) -> SimResponse:
    """Coinbase's default error body: error, code, message, details (plus error_details, as seen)."""
    codes = {400: 3, 401: 16, 403: 7, 404: 5, 429: 8, 500: 13, 503: 14}
    body = {
        "error": error,
        "code": codes.get(status, 2),
        "message": message,
        "details": [],
        "error_details": message,
    }
    return json_response(body, status)


def money(value: Decimal, currency: str) -> dict[str, str]:
    return {"value": fmt(value), "currency": currency}


async def read_json(request: SimRequest) -> dict[str, Any]:
    raw = request.body
    if not raw:
        return {}
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise BadRequest("request body is not valid JSON") from None
    if not isinstance(body, dict):
        raise BadRequest("request body must be a JSON object")
    return body


def query_list(request: SimRequest, *names: str) -> list[str]:
    """Repeated query parameters (`product_ids=a&product_ids=b`, or comma-separated) under any of `names`."""
    values: list[str] = []
    for name in names:
        for raw in request.query.getall(name, []):
            values.extend(part for part in raw.split(",") if part)
    return values


def page(
    items: list[Any], request: SimRequest, default_limit: int, max_limit: int
) -> tuple[list[Any], str, bool]:
    """Offset pagination behind an opaque cursor: (page, next cursor or "", has_next)."""
    # Coinbase clamps a limit out of range rather than refusing it; it must still be an integer
    limit = query_int(request.query, "limit", default_limit, minimum=-ANY_INT, maximum=ANY_INT)
    start = query_int(request.query, "cursor", 0, minimum=0, maximum=ANY_INT)
    limit = min(max(limit, 1), max_limit)
    chunk = items[start : start + limit]
    has_next = start + limit < len(items)
    return chunk, str(start + limit) if has_next else "", has_next
