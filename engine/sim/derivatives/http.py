"""JSON-RPC over HTTP: `POST /api/v2/{method}` (as the official SDK calls it), `GET` with the params in the
query, and `POST /api/v2` with the method in the body. Private methods take the access token from
`Authorization: Bearer`. Errors are JSON-RPC error objects (HTTP 400, or 401 for a refused credential);
credit exhaustion answers 10028 and closes the connection.
"""

from __future__ import annotations

import asyncio
import logging
import time

import orjson

from engine.sim.derivatives.dispatcher import HTTP, Caller, SessionEnded
from engine.sim.derivatives.gateway import DerivativesGateway, DropAfterAccept
from engine.sim.derivatives.rpc import (
    INTERNAL_ERROR,
    INVALID_CREDENTIALS,
    INVALID_REQUEST,
    MAX_FRAME,
    PARSE_ERROR,
    UNAUTHORIZED,
    Request,
    RpcError,
    decode,
    envelope,
    error_frame,
    request_id_of,
    result_frame,
)
from engine.sim.messages import Handler, SimRequest, SimResponse

log = logging.getLogger(__name__)

_UNAVAILABLE = 13028
_AUTH_CODES = frozenset({INVALID_CREDENTIALS, UNAUTHORIZED})


def _error(request_id: int | str | None, error: RpcError) -> SimResponse:
    return SimResponse(error_frame(request_id, error), 401 if error.code in _AUTH_CODES else 400)


def _request(request: SimRequest) -> Request:
    scope, name = request.match_info.get("scope"), request.match_info.get("name")
    path_method = f"{scope}/{name}" if scope and name else None
    if request.method == "GET":
        if path_method is None:
            raise RpcError(INVALID_REQUEST, {"reason": "GET names the method in the path"})
        query = request.query
        return Request(None, path_method, {k: query[k] for k in query})
    if len(request.body) > MAX_FRAME:
        raise RpcError(INVALID_REQUEST, {"reason": f"message larger than {MAX_FRAME} bytes"})
    if not request.body and path_method is not None:
        return Request(None, path_method, {})
    body_request = (
        decode(request.body, require_id=False)
        if path_method is None
        else _with_path(request.body, path_method)
    )
    return body_request


def _with_path(body: bytes, path_method: str) -> Request:
    try:
        parsed = orjson.loads(body)
    except orjson.JSONDecodeError:
        raise RpcError(PARSE_ERROR) from None
    if isinstance(parsed, dict) and parsed.get("method") is None:
        parsed = {**parsed, "method": path_method}
    request = envelope(parsed, require_id=False)
    if request.method != path_method:
        raise RpcError(INVALID_REQUEST, {"reason": "the body's method differs from the path's"})
    return request


def rpc_handler(gw: DerivativesGateway) -> Handler:
    dice = gw.dice

    async def handle(request: SimRequest) -> SimResponse:
        us_in = time.time_ns() // 1000
        delay = dice.delay_s()
        if delay:
            gw.injected["latency"] += 1
            await asyncio.sleep(delay)
        if dice.server_error():
            gw.injected["error_5xx"] += 1
            return SimResponse(
                error_frame(None, RpcError(_UNAVAILABLE, message="temporarily_unavailable")), 503
            )
        try:
            call = _request(request)
        except RpcError as error:
            return _error(request_id_of(request.body) if len(request.body) <= MAX_FRAME else None, error)
        key = None
        token_error: RpcError | None = None
        authorization = request.headers.get("Authorization", "")
        if authorization.startswith("Bearer "):
            try:
                key = gw.key_named(gw.tokens.verify(authorization[7:], gw.clock.now()).key_name)
            except RpcError as error:
                token_error = error
            if key is None and token_error is None:
                token_error = RpcError(UNAUTHORIZED, {"reason": "the token's key is no longer registered"})
        if token_error is not None and call.method.startswith("private/"):
            return _error(call.id, token_error)
        try:
            result = gw.table.dispatch(call, Caller(HTTP, request.remote or "", key))
        except SessionEnded as error:
            transport = request.transport
            if transport is not None:
                asyncio.get_running_loop().call_soon(transport.close)
            return _error(call.id, error)
        except RpcError as error:
            return _error(call.id, error)
        except DropAfterAccept:
            transport = request.transport
            if transport is not None:
                transport.abort()
            raise asyncio.CancelledError from None
        except Exception:
            log.exception("derivatives gateway: %s failed", call.method[:64])
            return SimResponse(error_frame(call.id, RpcError(INTERNAL_ERROR)), 500)
        return SimResponse(result_frame(call.id, result, us_in, time.time_ns() // 1000))

    return handle


def routes(gw: DerivativesGateway) -> list[tuple[str, str, Handler]]:
    # one handler object per route, as every other route has (the router is checked route by route)
    return [
        ("POST", "/api/v2/{scope}/{name}", rpc_handler(gw)),
        ("GET", "/api/v2/{scope}/{name}", rpc_handler(gw)),
        ("POST", "/api/v2", rpc_handler(gw)),
    ]
