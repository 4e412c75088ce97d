"""The webhook's signal intake: the signature check (`SignalAuthenticator.verify`) and the signal parser
(`parse_signal`, `declared_signal_id`), in the webhook's order: authenticated first, then parsed.

Bodies are the fuzzer's bytes, a valid signal with a field or two changed or dropped, or a signal document
assembled from fields it chose (every field of the schema, stray ones, any JSON type, numbers as text or
not). Signatures are the right one, one for another body or timestamp, damaged, or the fuzzer's own text.
Every refusal is a `SignalAuthError` or an `InvalidSignal`, and repeats none of the signature.
"""

from __future__ import annotations

import json
import time

import atheris

from fuzz.harness import Case, Draw, Secret, main
from tests.support.keys import new_webhook_secret

with atheris.instrument_imports(include=["engine.signals.auth", "engine.signals.model", "engine.decimals"]):
    from engine.signals.auth import SignalAuthenticator, SignalAuthError
    from engine.signals.model import InvalidSignal, declared_signal_id, parse_signal

DOCUMENTED = (SignalAuthError, InvalidSignal)
AUTHENTICATOR = SignalAuthenticator([new_webhook_secret(), new_webhook_secret()])
FIELDS: dict[str, list[object]] = {
    "id": ["sig-1", "a" * 128, "a" * 129, "", "bad id", "\u00e9"],
    "product_id": ["BTC-USD", "btc-usd", "BTC", "BTC-USD-X-Y-Z", ""],
    "side": ["BUY", "SELL", "buy", "HOLD"],
    "order_type": ["limit", "market", "stop_limit", "LIMIT", "twap"],
    "size": ["0.01", "1E-18", "1E+999999", "NaN", "-1", 0.01, 1e308, "0x10", "\u0661"],
    "quote_size": ["10", "12345678901234.12345678901234", "Infinity"],
    "limit_price": ["100", "1E-19", "999999999999999", "1_000"],
    "stop_price": ["110", "0"],
    "stop_direction": ["up", "down", "sideways"],
    "time_in_force": ["GTC", "GTD", "IOC", "FOK", "gtc", "DAY"],
    "end_time": ["2031-01-01T00:00:00Z", "0001-01-01T00:00:00+14:00", "2031-01-01T00:00:00", "nan"],
    "post_only": [True, False, "true", 1],
    "tag": ["t", "\U0001f4a5" * 16, "x" * 65],
}


# valid signals of each order type: a start the fuzzer changes a field or two of, to reach what parses
VALID: list[dict[str, object]] = [
    {"id": "s1", "product_id": "BTC-USD", "side": "BUY", "order_type": "limit", "size": "0.01",
     "limit_price": "100"},
    {"id": "s2", "product_id": "ETH-USD", "side": "SELL", "order_type": "market", "quote_size": "10"},
    {"id": "s3", "product_id": "BTC-USD", "side": "SELL", "order_type": "stop_limit", "size": "0.01",
     "limit_price": "90", "stop_price": "95", "stop_direction": "down"},
    {"id": "s4", "product_id": "BTC-USD", "side": "BUY", "order_type": "limit", "size": "0.01",
     "limit_price": "100", "time_in_force": "GTD", "end_time": "2031-01-01T00:00:00Z", "tag": "t"},
]  # fmt: skip


def _body(draw: Draw) -> bytes:
    how = draw.int(0, 3)
    if how == 0:
        return draw.bytes(400)
    if how == 1:
        start = dict(draw.pick(VALID))
        for _ in range(draw.int(0, 2)):
            name = draw.pick(list(FIELDS))
            if draw.flag():
                start.pop(name, None)
            else:
                start[name] = draw.pick([*FIELDS[name], draw.text(30), None, draw.float()])
        return json.dumps(start, ensure_ascii=draw.flag()).encode("utf-8", "surrogatepass")
    document: dict[str, object] = {}
    for name, typical in FIELDS.items():
        if draw.int(0, 2):
            document[name] = draw.pick(
                [*typical, draw.text(30), None, [], {}, draw.float(), draw.int(-(2**63), 2**63)]
            )
    for _ in range(draw.int(0, 1)):
        document[draw.text(10)] = 1
    return json.dumps(document, ensure_ascii=draw.flag()).encode("utf-8", "surrogatepass")


def case(data: bytes, secret: Secret) -> Case:
    draw = Draw(data)
    body = _body(draw)
    now = int(time.time())
    timestamp = draw.pick(
        [str(now), str(now - 31), str(now + 31), f"{now}.5", "nan", "1e9", " 1", draw.text(16), None, ""]
    )
    signed_body = body if draw.int(0, 3) else body + draw.bytes(3)  # changed after signing
    signed_at = timestamp if isinstance(timestamp, str) and timestamp.isascii() else str(now)
    _, signature = AUTHENTICATOR.sign(signed_body, signed_at)
    signature = secret(
        draw.pick(
            [signature, "sha256=" + signature, signature.upper(), draw.damage(signature), draw.text(70)]
        )
    )
    header = signature if draw.int(0, 7) else None

    def call() -> object:
        declared_signal_id(body)
        AUTHENTICATOR.verify(timestamp, header, body)
        return parse_signal(body)

    return call, [signature]


def _parse_only(data: bytes, secret: Secret) -> Case:
    """The parser alone on every body, signed or not (the webhook only parses what is signed)."""
    body = Draw(data).bytes(4096)
    return (lambda: (declared_signal_id(body), parse_signal(body))), []


def _both(data: bytes, secret: Secret) -> Case:
    return _parse_only(data[1:], secret) if data[:1] == b"\x00" else case(data, secret)


if __name__ == "__main__":
    main(_both, DOCUMENTED)
