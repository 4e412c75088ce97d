"""JSON-RPC 2.0 frames for the gateway: requests out with exact numbers, replies in, errors typed.

Prices and amounts are written as JSON numbers, as the gateway wants them, from the `Decimal`'s own digits:
orjson cannot write a `Decimal` as a number, so each one becomes an `orjson.Fragment` of its fixed-point
text, spliced into the frame verbatim. No value ever passes through a float on its way out.

Replies are decoded by msgspec into a `Frame` whose `result` stays raw bytes; the caller decodes that into
the method's own type in a second pass over just those bytes (https://docs.cdp.coinbase.com/api-reference/).
"""

from __future__ import annotations

import enum
import logging
from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from typing import Any, TypeVar

import msgspec
import orjson

from engine.errors import (
    AuthDiagnosis,
    GatewayAuthError,
    GatewayError,
    GatewayRateLimited,
    InsufficientFunds,
    InvalidParams,
    MatchingQueueFull,
    MethodNotAllowed,
)

__all__ = [
    "MAX_FRAME_BYTES",
    "Frame",
    "RpcError",
    "decode_frame",
    "decode_result",
    "encode_request",
    "error_from",
    "number",
]

log = logging.getLogger("engine.venues.derivatives")

T = TypeVar("T")

# The gateway takes one request per frame, at most 32 KB.
MAX_FRAME_BYTES = 32 * 1024

RATE_LIMITED = 10028
NOT_ENOUGH_FUNDS = 10009
MATCHING_QUEUE_FULL = 10047
INVALID_ARGUMENTS = 11030
JSONRPC_INVALID_PARAMS = -32602
JSONRPC_METHOD_NOT_FOUND = -32601
INVALID_CREDENTIALS = 13004
UNAUTHORIZED = 13009
FORBIDDEN = 13021  # the key's scopes do not cover the method
TOKEN_REJECTED = frozenset((INVALID_CREDENTIALS, UNAUTHORIZED))


class RpcError(msgspec.Struct, frozen=True):
    code: int = 0
    message: str = ""
    data: Any = None


class FrameParams(msgspec.Struct, frozen=True):
    channel: str | None = None
    data: msgspec.Raw = msgspec.Raw()  # empty when absent
    type: str | None = None  # heartbeat: "heartbeat" or "test_request"


class Frame(msgspec.Struct, frozen=True):
    """Any frame the gateway sends: a reply (`id` with `result` or `error`) or a notification (`method`)."""

    id: int | None = None
    result: msgspec.Raw = msgspec.Raw()  # empty when absent (an error, or a notification)
    error: RpcError | None = None
    method: str | None = None
    params: FrameParams | None = None


_frame_decoder = msgspec.json.Decoder(Frame)
_decoders: dict[Any, msgspec.json.Decoder[Any]] = {}


def decode_frame(data: str | bytes) -> Frame:
    """Raises `msgspec.DecodeError` (not JSON) or `msgspec.ValidationError` (not a JSON-RPC frame)."""
    try:
        return _frame_decoder.decode(data)
    except UnicodeEncodeError:  # text with a lone surrogate, which no frame carries: msgspec cannot encode it
        pass
    # raised outside the except: the UnicodeEncodeError holds the whole frame, and would be its __context__
    raise msgspec.DecodeError("JSON is malformed: the frame is not UTF-8 text")


def decode_result(raw: msgspec.Raw | bytes, result_type: type[T] | Any) -> T:
    """A result's bytes as `result_type` (absent is null); one cached decoder per type."""
    decoder = _decoders.get(result_type)
    if decoder is None:
        decoder = _decoders[result_type] = msgspec.json.Decoder(result_type)
    result: T = decoder.decode(raw if len(raw) else b"null")
    return result


def number(value: Decimal | int | str, name: str) -> orjson.Fragment:
    """A price or amount as the exact JSON number to send. Floats are refused: they are already rounded."""
    if isinstance(value, Decimal):
        decimal = value
    elif isinstance(value, bool) or not isinstance(value, int | str):
        raise InvalidParams(
            f"{name} must be a Decimal, int or str, not {type(value).__name__} (a float is already rounded)",
            rpc_code=JSONRPC_INVALID_PARAMS,
        )
    else:
        try:
            decimal = Decimal(value)
        except InvalidOperation:
            raise InvalidParams(
                f"{name}={value!r} is not a number", rpc_code=JSONRPC_INVALID_PARAMS
            ) from None
    if not decimal.is_finite():
        raise InvalidParams(f"{name} must be finite, got {decimal}", rpc_code=JSONRPC_INVALID_PARAMS)
    return orjson.Fragment(format(decimal, "f"))


def _default(value: Any) -> Any:
    if isinstance(value, Decimal):
        return number(value, "a number")
    if isinstance(value, enum.Enum):
        return value.value
    raise TypeError(f"cannot send a {type(value).__name__} to the gateway")


def encode_request(request_id: int, method: str, params: Mapping[str, Any]) -> bytes:
    """One request frame. `None` params are left out (the gateway's defaults apply)."""
    body = {name: value for name, value in params.items() if value is not None}
    try:
        frame = orjson.dumps(
            {"jsonrpc": "2.0", "id": request_id, "method": method, "params": body}, default=_default
        )
    except TypeError as exc:  # orjson.JSONEncodeError, or an InvalidParams from a bad Decimal
        if isinstance(exc.__cause__, InvalidParams):
            raise exc.__cause__ from None
        raise InvalidParams(f"{method}: {exc}", rpc_code=JSONRPC_INVALID_PARAMS, method=method) from None
    if len(frame) > MAX_FRAME_BYTES:
        raise InvalidParams(
            f"{method}: the request is {len(frame)} bytes, over the gateway's {MAX_FRAME_BYTES}-byte limit",
            rpc_code=JSONRPC_INVALID_PARAMS,
            method=method,
        )
    return frame


# -- errors ---------------------------------------------------------------------------------------------

_FIX_CLOCK = (
    "the CDP JWT's nbf/exp were refused: sync this host's clock (`timedatectl set-ntp true` or chrony); "
    "a token lives 2 minutes"
)
_FIX_KEY = (
    "the gateway does not accept this CDP key: it was deleted, is not enabled for derivatives, or its name "
    "and private key come from two downloads. Create an ECDSA or Ed25519 key at "
    "https://portal.cdp.coinbase.com/access/api and use its JSON file"
)
_FIX_SCOPE = (
    "the key lacks a permission this method needs: enable View (reads) and Trade (orders) on the key at "
    "https://portal.cdp.coinbase.com/access/api"
)
_FIX_EXPIRED = (
    "the access token expired or was never issued for this session: authenticate again with a fresh "
    "CDP JWT (public/auth); the clients do this once by themselves"
)
_FIX_HOST = (
    "market data subscriptions (public/subscribe) are served only by the streams host, RPC and user.* "
    "channels only by the trading host: use the matching client"
)


def _auth_diagnosis(code: int, message: str, data: Any) -> tuple[AuthDiagnosis, str]:
    reason = data.get("reason") if isinstance(data, dict) else None
    text = f"{message} {reason if isinstance(reason, str) else ''}".lower()
    if code == INVALID_CREDENTIALS and any(
        word in text for word in ("nbf", "not_yet_valid", "not yet valid", "clock", "expired")
    ):
        return AuthDiagnosis.CLOCK_SKEW, _FIX_CLOCK
    if code == FORBIDDEN or any(word in text for word in ("scope", "permission", "forbidden")):
        return AuthDiagnosis.MISSING_PERMISSION, _FIX_SCOPE
    if "alg_mismatch" in text or "key type" in text:
        return AuthDiagnosis.WRONG_KEY_TYPE, _FIX_KEY
    if "uri" in text:
        return (
            AuthDiagnosis.URI_MISMATCH,
            "the gateway's public/auth JWT carries no uri claim; sign it without one",
        )
    if code == UNAUTHORIZED or ("token" in text and "expired" in text):
        return AuthDiagnosis.EXPIRED_TOKEN, _FIX_EXPIRED
    if code == INVALID_CREDENTIALS:
        return AuthDiagnosis.BAD_SIGNATURE, _FIX_KEY
    return AuthDiagnosis.UNKNOWN, _FIX_KEY


def _retry_after(data: Any) -> float | None:
    if not isinstance(data, dict):
        return None
    seconds = data.get("retry_after")
    if isinstance(seconds, int | float) and not isinstance(seconds, bool) and seconds >= 0:
        return float(seconds)
    millis = data.get("retry_after_ms")
    if isinstance(millis, int | float) and not isinstance(millis, bool) and millis >= 0:
        return millis / 1000.0
    return None


def error_from(error: RpcError, method: str, *, status: int | None = None) -> GatewayError:
    """The engine's typed error for a JSON-RPC error object."""
    code, data = error.code, error.data
    message = error.message[:200] or "error"
    text = f"{method}: [{code}] {message}"
    if code == RATE_LIMITED:
        retry_after = _retry_after(data)
        return GatewayRateLimited(
            f"{text}: the key's request credits are spent (the gateway ends the session)",
            rpc_code=code,
            method=method,
            data=data,
            status=status,
            retry_after=retry_after,
        )
    if code == NOT_ENOUGH_FUNDS:
        return InsufficientFunds(text, rpc_code=code, method=method, data=data, status=status)
    if code == MATCHING_QUEUE_FULL:
        return MatchingQueueFull(
            f"{text}: the matching engine's queue is full; safe to send again after a backoff",
            rpc_code=code,
            method=method,
            data=data,
            status=status,
        )
    if code in (JSONRPC_INVALID_PARAMS, INVALID_ARGUMENTS):
        detail = f" ({data})" if data else ""
        return InvalidParams(f"{text}{detail}"[:400], rpc_code=code, method=method, data=data, status=status)
    if code == JSONRPC_METHOD_NOT_FOUND:
        return MethodNotAllowed(
            f"{text}: this host does not serve {method}; {_FIX_HOST}",
            rpc_code=code,
            method=method,
            data=data,
            status=status,
        )
    if code in TOKEN_REJECTED or code == FORBIDDEN:
        diagnosis, hint = _auth_diagnosis(code, message, data)
        return GatewayAuthError(
            f"{text}: {hint}",
            rpc_code=code,
            method=method,
            data=data,
            status=status,
            diagnosis=diagnosis,
            hint=hint,
        )
    return GatewayError(text, rpc_code=code, method=method, data=data, status=status)
