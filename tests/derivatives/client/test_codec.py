"""The gateway codec: exact numbers out, frames and typed results in, every error code typed."""

from __future__ import annotations

from decimal import Decimal

import msgspec
import orjson
import pytest

from engine.errors import (
    AuthDiagnosis,
    AuthError,
    ExchangeError,
    GatewayAuthError,
    GatewayError,
    GatewayRateLimited,
    InsufficientFunds,
    InvalidParams,
    MatchingQueueFull,
    MethodNotAllowed,
    OrderRejected,
    RateLimited,
)
from engine.venues.derivatives.codec import (
    MAX_FRAME_BYTES,
    RpcError,
    decode_frame,
    decode_result,
    encode_request,
    error_from,
    number,
)
from engine.venues.derivatives.types import (
    ChartData,
    Direction,
    Order,
    OrderResult,
    OrderState,
    OrderType,
    TimeInForce,
)


def test_decimals_go_out_as_exact_json_numbers() -> None:
    tricky = Decimal("0.1") + Decimal("0.2")  # 0.3 exactly; as floats this is 0.30000000000000004
    frame = encode_request(
        7,
        "private/buy",
        {
            "instrument_name": "BTC_USDC-PERPETUAL",
            "amount": number(Decimal("0.00000001"), "amount"),
            "price": number(tricky, "price"),
            "trigger_price": number(Decimal("1E+5"), "trigger_price"),
            "big": number(Decimal("12345678901234567890.123456789"), "big"),
            "type": OrderType.LIMIT,
            "label": None,
        },
    )
    assert frame == (
        b'{"jsonrpc":"2.0","id":7,"method":"private/buy","params":{"instrument_name":"BTC_USDC-PERPETUAL",'
        b'"amount":0.00000001,"price":0.3,"trigger_price":100000,"big":12345678901234567890.123456789,'
        b'"type":"limit"}}'
    )
    # A JSON parser reading them as numbers (not strings) gets the same values back.
    params = msgspec.json.decode(frame, type=dict[str, object])["params"]
    assert isinstance(params, dict)
    assert isinstance(params["amount"], float)
    assert isinstance(params["price"], float)
    exact = msgspec.json.Decoder(float_hook=Decimal).decode(frame)["params"]
    assert exact["amount"] == Decimal("0.00000001")
    assert exact["price"] == Decimal("0.3")
    assert exact["big"] == Decimal("12345678901234567890.123456789")


@pytest.mark.parametrize("value", [0.1, float("nan"), Decimal("NaN"), Decimal("Infinity"), "abc", True, None])
def test_bad_numbers_are_refused_before_anything_is_sent(value: object) -> None:
    with pytest.raises(InvalidParams) as refused:
        number(value, "price")  # type: ignore[arg-type]
    assert "price" in str(refused.value)
    assert isinstance(refused.value, ValueError)


def test_numbers_from_text_and_ints_are_exact() -> None:
    sent = orjson.dumps([number("0.10000000000000000555", "a"), number(5, "b")])
    assert sent == b"[0.10000000000000000555,5]"


def test_a_request_over_the_frame_limit_is_refused_locally() -> None:
    with pytest.raises(InvalidParams, match="byte limit"):
        encode_request(1, "private/buy", {"label": "x" * MAX_FRAME_BYTES})


def test_an_unknown_param_type_is_invalid_params() -> None:
    with pytest.raises(InvalidParams, match="private/buy"):
        encode_request(1, "private/buy", {"what": object()})


ORDER = (
    b'{"order_id":"ETH-1","instrument_name":"ETH_USDC-PERPETUAL","direction":"sell","order_state":"open",'
    b'"order_type":"limit","time_in_force":"good_til_cancelled","amount":0.30000000000000004,'
    b'"filled_amount":0.1,"price":3000.05,"label":"mm-1","post_only":true,"usIn":1,"newfield":{"a":1}}'
)


def test_replies_and_results_decode_exactly_into_frozen_values() -> None:
    frame = decode_frame(b'{"jsonrpc":"2.0","id":9,"result":{"order":' + ORDER + b',"trades":[]},"usIn":1}')
    assert frame.id == 9
    assert frame.error is None
    result = decode_result(frame.result, OrderResult)
    order = result.order
    assert order.direction is Direction.SELL
    assert order.order_state is OrderState.OPEN
    assert order.time_in_force is TimeInForce.GOOD_TIL_CANCELLED
    assert order.amount == Decimal("0.30000000000000004")  # not rounded through a float
    assert order.price == Decimal("3000.05")
    assert order.remaining == Decimal("0.20000000000000004")
    assert order.is_open
    assert order.post_only
    with pytest.raises(AttributeError):
        order.label = "changed"  # type: ignore[misc]


def test_market_price_of_an_untriggered_order_is_none() -> None:
    order = decode_result(
        b'{"order_id":"1","instrument_name":"B","direction":"buy","order_state":"untriggered",'
        b'"order_type":"stop_market","price":"market_price","trigger":"mark_price","trigger_price":90000}',
        Order,
    )
    assert order.price is None
    assert order.trigger_price == Decimal(90000)


def test_chart_data_decodes_parallel_arrays() -> None:
    chart = decode_result(
        b'{"status":"ok","ticks":[1,2],"open":[1.5,2],"high":[2,3],"low":[1,2],"close":[2,2.5],'
        b'"volume":[0.1,0.2],"cost":[1,2]}',
        ChartData,
    )
    assert chart.close == (Decimal(2), Decimal("2.5"))


def test_notifications_and_heartbeats_decode() -> None:
    note = decode_frame(b'{"jsonrpc":"2.0","method":"subscription","params":{"channel":"c","data":[1,2]}}')
    assert note.method == "subscription"
    assert note.params is not None
    assert note.params.channel == "c"
    assert bytes(note.params.data or b"") == b"[1,2]"
    beat = decode_frame(b'{"jsonrpc":"2.0","method":"heartbeat","params":{"type":"test_request"}}')
    assert beat.params is not None
    assert beat.params.type == "test_request"


@pytest.mark.parametrize("raw", [b"not json", b"[1,2]", b'{"id":"seven"}', b'{"id":1,"error":"x"}', b""])
def test_malformed_frames_raise_msgspec_errors(raw: bytes) -> None:
    with pytest.raises((msgspec.DecodeError, msgspec.ValidationError)):
        decode_frame(raw)


def test_error_codes_map_into_the_one_hierarchy() -> None:
    limited = error_from(RpcError(10028, "too_many_requests", {"retry_after_ms": 1500}), "private/buy")
    assert isinstance(limited, GatewayRateLimited)
    assert isinstance(limited, RateLimited)
    assert limited.retry_after == 1.5
    assert limited.rpc_code == 10028
    assert limited.code == "10028"
    assert error_from(RpcError(10028, "x", {"retry_after": 2}), "m").retry_after == 2.0  # type: ignore[attr-defined]

    funds = error_from(RpcError(10009, "not_enough_funds"), "private/buy")
    assert isinstance(funds, InsufficientFunds)
    assert isinstance(funds, OrderRejected)
    assert funds.failure_reason == "not_enough_funds"

    queue = error_from(RpcError(10047, "matching_engine_queue_full"), "private/sell")
    assert isinstance(queue, MatchingQueueFull)
    assert queue.retryable

    for code in (-32602, 11030):
        invalid = error_from(RpcError(code, "Invalid params", {"param": "amount"}), "private/buy")
        assert isinstance(invalid, InvalidParams)
        assert isinstance(invalid, ValueError)
        assert "amount" in str(invalid)

    wrong_host = error_from(RpcError(-32601, "method not in allowlist"), "public/subscribe")
    assert isinstance(wrong_host, MethodNotAllowed)
    assert "streams host" in str(wrong_host)

    other = error_from(RpcError(10004, "order_not_found"), "private/cancel")
    assert type(other) is GatewayError
    assert isinstance(other, ExchangeError)


@pytest.mark.parametrize(
    ("code", "message", "diagnosis"),
    [
        (13004, "invalid_credentials", AuthDiagnosis.BAD_SIGNATURE),
        (13004, "jwt not yet valid (nbf)", AuthDiagnosis.CLOCK_SKEW),
        (13021, "forbidden", AuthDiagnosis.MISSING_PERMISSION),
        (13004, "missing scope rat#trade", AuthDiagnosis.MISSING_PERMISSION),
        (13009, "unauthorized", AuthDiagnosis.EXPIRED_TOKEN),
    ],
)
def test_auth_errors_carry_a_diagnosis_and_a_hint(code: int, message: str, diagnosis: AuthDiagnosis) -> None:
    assert error_from(
        RpcError(13004, "invalid_credentials", {"reason": "expired"}), "public/auth"
    ).diagnosis is (  # type: ignore[attr-defined]
        AuthDiagnosis.CLOCK_SKEW
    )
    error = error_from(RpcError(code, message), "public/auth", status=401)
    assert isinstance(error, GatewayAuthError)
    assert isinstance(error, AuthError)
    assert error.diagnosis is diagnosis
    assert error.hint
    assert error.status == 401
