"""JSON-RPC 2.0 as the derivatives gateway speaks it: the request envelope, the error object, typed params.

One request per frame, named params only, at most 32 KB a frame; numbers are JSON numbers. Every way a
request can be wrong ends in an `RpcError` carrying the gateway's code, so a handler never sees a param of
the wrong type and a bad frame never reaches one.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

import orjson

MAX_FRAME = 32 * 1024
_LARGEST = Decimal(10) ** 15

PARSE_ERROR = -32700
INVALID_REQUEST = -32600
METHOD_NOT_FOUND = -32601
INVALID_PARAMS = -32602
INTERNAL_ERROR = -32603

AUTHORIZATION_REQUIRED = 10000
ORDER_NOT_FOUND = 10004
NOT_ENOUGH_FUNDS = 10009
TOO_MANY_REQUESTS = 10028
PRICE_WRONG_TICK = 10043
POST_ONLY_REJECT = 11054
ALREADY_CLOSED = 11044
INVALID_CREDENTIALS = 13004
UNAUTHORIZED = 13009
FORBIDDEN = 13021
TIMED_OUT = 13888

_MESSAGES = {
    PARSE_ERROR: "Parse error",
    INVALID_REQUEST: "Invalid Request",
    METHOD_NOT_FOUND: "Method not found",
    INVALID_PARAMS: "Invalid params",
    INTERNAL_ERROR: "Internal error",
    AUTHORIZATION_REQUIRED: "authorization_required",
    ORDER_NOT_FOUND: "order_not_found",
    NOT_ENOUGH_FUNDS: "not_enough_funds",
    TOO_MANY_REQUESTS: "too_many_requests",
    PRICE_WRONG_TICK: "price_wrong_tick",
    POST_ONLY_REJECT: "post_only_reject",
    ALREADY_CLOSED: "already_closed",
    INVALID_CREDENTIALS: "invalid_credentials",
    UNAUTHORIZED: "unauthorized",
    FORBIDDEN: "forbidden",
    TIMED_OUT: "timed_out",
}


class RpcError(Exception):
    """A JSON-RPC error object: the gateway's code, its name as the message, and optional detail."""

    def __init__(self, code: int, data: dict[str, Any] | None = None, message: str | None = None) -> None:
        self.code = code
        self.message = message or _MESSAGES.get(code, "error")
        self.data = data
        super().__init__(f"[{code}] {self.message}")

    def to_wire(self) -> dict[str, Any]:
        error: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.data is not None:
            error["data"] = self.data
        return error


def invalid_param(name: str, reason: str) -> RpcError:
    return RpcError(INVALID_PARAMS, {"param": name, "reason": reason})


@dataclass(slots=True)
class Request:
    """A well-formed call: `id` is None only over HTTP, where the official SDK sends none."""

    id: int | str | None
    method: str
    params: dict[str, Any]


def _json_default(value: Any) -> Any:
    if isinstance(value, Decimal):
        # the wire carries numbers; an integral Decimal stays an integer
        return int(value) if value == value.to_integral_value() and abs(value) < 2**53 else float(value)
    raise TypeError(type(value).__name__)


def dumps(payload: Any) -> bytes:
    return orjson.dumps(payload, default=_json_default)


def decode(raw: bytes | str, require_id: bool) -> Request:
    """Parse one frame; raises RpcError(-32700/-32600/-32602) with the id it could read (or None)."""
    if len(raw) > MAX_FRAME:
        raise RpcError(INVALID_REQUEST, {"reason": f"message larger than {MAX_FRAME} bytes"})
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise RpcError(PARSE_ERROR) from None
    return envelope(body, require_id)


def envelope(body: Any, require_id: bool) -> Request:
    if isinstance(body, list):
        raise RpcError(INVALID_REQUEST, {"reason": "batch requests are not supported"})
    if not isinstance(body, dict):
        raise RpcError(INVALID_REQUEST, {"reason": "a request is a JSON object"})
    request_id = body.get("id")
    if request_id is not None and (isinstance(request_id, bool) or not isinstance(request_id, int | str)):
        raise RpcError(INVALID_REQUEST, {"reason": "id must be an integer or a string"})
    if request_id is None and require_id:
        raise RpcError(INVALID_REQUEST, {"reason": "notifications (requests without an id) are not accepted"})
    method = body.get("method")
    if not isinstance(method, str) or not method:
        raise RpcError(INVALID_REQUEST, {"reason": "method must be a non-empty string"})
    params = body.get("params", {})
    if params is None:
        params = {}
    if not isinstance(params, dict):
        raise RpcError(INVALID_PARAMS, {"reason": "params must be an object (named params only)"})
    return Request(request_id, method, params)


def request_id_of(raw: bytes | str) -> int | str | None:
    """The id of a frame that failed to decode, if one can be read: the error reply carries it."""
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return None
    if isinstance(body, dict):
        request_id = body.get("id")
        if isinstance(request_id, int | str) and not isinstance(request_id, bool):
            return request_id
    return None


def result_frame(request_id: int | str | None, result: Any, us_in: int, us_out: int) -> bytes:
    return dumps(
        {
            "jsonrpc": "2.0",
            "id": request_id,
            "result": result,
            "usIn": us_in,
            "usOut": us_out,
            "usDiff": us_out - us_in,
            "testnet": False,
        }
    )


def error_frame(request_id: int | str | None, error: RpcError) -> bytes:
    return dumps({"jsonrpc": "2.0", "id": request_id, "error": error.to_wire(), "testnet": False})


def notification(channel: str, data: Any) -> bytes:
    return dumps({"jsonrpc": "2.0", "method": "subscription", "params": {"channel": channel, "data": data}})


class Params:
    """Typed access to a request's named params; every miss or wrong type is -32602 naming the param."""

    __slots__ = ("_raw",)

    def __init__(self, raw: Mapping[str, Any]) -> None:
        self._raw = raw

    def __contains__(self, name: str) -> bool:
        return self._raw.get(name) is not None

    def string(
        self,
        name: str,
        default: str | None = None,
        *,
        choices: frozenset[str] | None = None,
        max_length: int = 256,
    ) -> str:
        value = self._raw.get(name)
        if value is None:
            if default is None:
                raise invalid_param(name, "required")
            return default
        if not isinstance(value, str):
            raise invalid_param(name, "must be a string")
        if len(value) > max_length:
            raise invalid_param(name, f"at most {max_length} characters")
        if choices is not None and value not in choices:
            raise invalid_param(name, f"must be one of {sorted(choices)}")
        return value

    def optional_string(self, name: str, max_length: int = 256) -> str | None:
        value = self._raw.get(name)
        if value is None:
            return None
        if not isinstance(value, str):
            raise invalid_param(name, "must be a string")
        if len(value) > max_length:
            raise invalid_param(name, f"at most {max_length} characters")
        return value

    def decimal(self, name: str, *, positive: bool = True) -> Decimal | None:
        """A number (or a numeric string, as a GET query carries it), finite; None when absent."""
        value = self._raw.get(name)
        if value is None:
            return None
        if isinstance(value, Decimal):
            number = value
        elif (
            isinstance(value, bool)
            or not isinstance(value, int | float | str)
            or (isinstance(value, str) and len(value) > 64)
        ):
            raise invalid_param(name, "must be a number")
        else:
            try:
                number = Decimal(repr(value)) if isinstance(value, float) else Decimal(value)
            except InvalidOperation:
                raise invalid_param(name, "must be a number") from None
        if not number.is_finite():
            raise invalid_param(name, "must be finite")
        exponent = number.as_tuple().exponent
        if abs(number) > _LARGEST or (isinstance(exponent, int) and exponent < -18):
            raise invalid_param(name, "out of range")
        if positive and number <= 0:
            raise invalid_param(name, "must be positive")
        return number

    def required_decimal(self, name: str, *, positive: bool = True) -> Decimal:
        number = self.decimal(name, positive=positive)
        if number is None:
            raise invalid_param(name, "required")
        return number

    def integer(self, name: str, default: int | None = None, *, low: int = 0, high: int = 2**63) -> int:
        value = self._raw.get(name)
        if value is None:
            if default is None:
                raise invalid_param(name, "required")
            return default
        if isinstance(value, str) and value.lstrip("-").isdigit() and len(value) < 20:
            value = int(value)
        if isinstance(value, bool) or not isinstance(value, int):
            raise invalid_param(name, "must be an integer")
        if not low <= value <= high:
            raise invalid_param(name, f"must be between {low} and {high}")
        return value

    def boolean(self, name: str, default: bool = False) -> bool:
        value = self._raw.get(name)
        if value is None:
            return default
        if isinstance(value, str) and value in ("true", "false"):
            return value == "true"
        if not isinstance(value, bool):
            raise invalid_param(name, "must be a boolean")
        return value

    def string_list(self, name: str, max_items: int = 1024) -> list[str]:
        value = self._raw.get(name)
        if value is None:
            raise invalid_param(name, "required")
        if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
            raise invalid_param(name, "must be a list of strings")
        if len(value) > max_items:
            raise invalid_param(name, f"at most {max_items} items")
        return list(value)

    def objects(self, name: str, max_items: int = 16) -> list[Params]:
        value = self._raw.get(name)
        if value is None:
            return []
        if not isinstance(value, list) or not all(isinstance(item, dict) for item in value):
            raise invalid_param(name, "must be a list of objects")
        if len(value) > max_items:
            raise invalid_param(name, f"at most {max_items} items")
        return [Params(item) for item in value]

    def raw(self) -> Mapping[str, Any]:
        return self._raw
