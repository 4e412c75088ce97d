"""The gateway's JSON-RPC frame decoder (engine/venues/derivatives/codec.py), as the connection and the HTTP
transport use it: `decode_frame`, then `error_from` for an error or `decode_result` into the method's type.

Frames are the fuzzer's bytes, or a reply, error or notification assembled from parts it chose (ids, codes,
messages and data of any JSON type; an `access_token` in a `public/auth` result). Every refusal is msgspec's
`DecodeError` or `ValidationError` (the decoder's documented errors) or, for an error reply, the typed
`GatewayError` that `error_from` returns; nothing repeats the access token.
"""

from __future__ import annotations

import base64
import json

import atheris
import msgspec

from fuzz.harness import Case, Draw, Secret, main

with atheris.instrument_imports(
    include=["engine.venues.derivatives.codec", "engine.venues.derivatives.types"]
):
    from engine.errors import GatewayError
    from engine.venues.derivatives import codec, types

# an error reply becomes the GatewayError the connection raises: checked for echoes like a refusal
DOCUMENTED = (msgspec.DecodeError, msgspec.ValidationError, GatewayError)
RESULT_TYPES: list[object] = [
    types.AuthResult,
    types.OrderResult,
    types.Position,
    types.AccountSummary,
    types.Instrument,
    types.OrderBookSnapshot,
    types.TickerInfo,
    types.UserChanges,
    list[str],
    list[types.Order],
]
METHODS = ["public/auth", "private/buy", "private/cancel", "private/get_positions", "public/ticker"]
CODES = [10028, 10009, 10047, 11030, -32602, -32601, 13004, 13009, 13021, 0, -1, 2**63, 1.5]
MESSAGES = ["invalid_credentials", "unauthorized", "too_many_requests", "not_enough_funds", ""]


def _value(draw: Draw, typical: object) -> object:
    return draw.pick([typical, typical, draw.text(20), draw.float(), None, True, [], {}, 10**20])


def case(data: bytes, secret: Secret) -> Case:
    draw = Draw(data)
    token = secret(base64.urlsafe_b64encode(draw.bytes(48)).decode() if draw.flag() else draw.text(60))
    kind = draw.int(0, 3)
    if kind == 0:
        raw = draw.bytes(2000)
        tokens: list[str] = []
    else:
        frame: dict[str, object] = {"jsonrpc": "2.0"}
        if draw.int(0, 5):
            frame["id"] = _value(draw, draw.int(0, 10**6))
        if kind == 1:
            result = {
                "access_token": _value(draw, token),
                "expires_in": _value(draw, 900),
                "scope": _value(draw, "trade:read_write"),
                "token_type": _value(draw, "bearer"),
            }
            frame["result"] = _value(draw, result)
        elif kind == 2:
            error = {
                "code": draw.pick(CODES),
                "message": _value(draw, draw.pick(MESSAGES)),
                "data": _value(draw, {"reason": draw.text(20), "retry_after": _value(draw, 1)}),
            }
            frame["error"] = _value(draw, error)
        else:
            frame["method"] = _value(draw, "subscription")
            frame["params"] = _value(draw, {"channel": _value(draw, "ticker.BTC-PERP"), "data": {"x": 1}})
        raw = json.dumps(frame, ensure_ascii=draw.flag()).encode("utf-8", "surrogatepass")
        at = draw.int(0, len(raw))
        raw = raw[:at] + draw.bytes(3) + raw[at:]
        tokens = [token]
    method = draw.pick(METHODS)
    result_type = draw.pick(RESULT_TYPES)
    as_text = draw.flag()

    def call() -> object:
        parsed = codec.decode_frame(raw.decode("utf-8", "surrogateescape") if as_text else raw)
        if parsed.error is not None:
            failure = codec.error_from(parsed.error, method, status=draw_status)
            assert isinstance(failure, GatewayError), failure
            raise failure
        return codec.decode_result(parsed.result, result_type)

    draw_status = draw.pick([None, 200, 400, 401, 429, 500])
    return call, tokens


if __name__ == "__main__":
    main(case, DOCUMENTED)
