"""Bad input, at both ends: the simulator answers with Coinbase Exchange's status and `{"message": ...}`, and
the engine's client turns it into a typed error that names the problem and carries no secret."""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any

import orjson
import pytest

from engine.errors import AuthDiagnosis, AuthError, ExchangeError, NotFound, OrderRejected
from engine.rest import RetryPolicy
from engine.sim import RateLimits
from tests.exchange.conftest import ServedExchange, stdlib_headers
from tests.support.keys import new_exchange_key

ORDER = {"product_id": "BTC-USD", "side": "buy", "type": "limit", "size": "0.01", "price": "50000.00"}


def _secret_free(error: BaseException, served: ServedExchange) -> None:
    text = f"{error!s} {error!r} {getattr(error, 'hint', '')}"
    assert served.key.secret not in text
    assert served.key.passphrase not in text


async def test_stale_timestamp(served: ServedExchange) -> None:
    body = orjson.dumps(ORDER)
    stale = f"{time.time() - 31:.3f}"  # just outside the 30-second window
    status, answer = await served.raw(
        "POST", "/orders", body, stdlib_headers(served.key, "POST", "/orders", body, timestamp=stale)
    )
    assert (status, answer) == (401, {"message": "request timestamp expired"})

    served.sim.keys.hmac_window_s = -1.0  # every timestamp is out of the window, however well measured
    async with served.client() as client:
        with pytest.raises(AuthError) as refused:
            await client.exchange.accounts()
    assert refused.value.status == 401
    assert refused.value.diagnosis is AuthDiagnosis.CLOCK_SKEW
    assert "request timestamp expired" in str(refused.value)
    _secret_free(refused.value, served)
    assert len(served.sim.ledger) == 0


async def test_wrong_passphrase(served: ServedExchange) -> None:
    headers = stdlib_headers(served.key, "GET", "/accounts", b"")
    headers["CB-ACCESS-PASSPHRASE"] = "not-the-passphrase"
    assert await served.raw("GET", "/accounts", headers=headers) == (401, {"message": "Invalid Passphrase"})
    async with served.client(passphrase="not-the-passphrase") as client:
        with pytest.raises(AuthError) as refused:
            await client.exchange.create_order("BTC-USD", "buy", size="0.01", price="50000.00")
    assert refused.value.diagnosis is AuthDiagnosis.BAD_PASSPHRASE
    assert "passphrase" in refused.value.hint
    _secret_free(refused.value, served)
    assert len(served.sim.ledger) == 0


async def test_body_changed_after_signing(served: ServedExchange) -> None:
    signed = orjson.dumps(ORDER)
    changed = orjson.dumps({**ORDER, "size": "1.00"})
    headers = stdlib_headers(served.key, "POST", "/orders", signed)
    assert await served.raw("POST", "/orders", changed, headers) == (401, {"message": "invalid signature"})
    other_secret = new_exchange_key().secret  # well-formed, and not this key's
    async with served.client(secret=other_secret) as client:
        with pytest.raises(AuthError) as refused:
            await client.exchange.accounts()
    assert refused.value.diagnosis is AuthDiagnosis.BAD_SIGNATURE
    _secret_free(refused.value, served)
    assert other_secret not in str(refused.value)
    assert len(served.sim.ledger) == 0


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b'{"product_id": "BTC-USD", "side": ', "request body is not valid JSON"),
        (b'["not", "an", "object"]', "request body must be a JSON object"),
        (orjson.dumps({**ORDER, "size": "a lot"}), "Invalid size"),
        (orjson.dumps({**ORDER, "time_in_force": "GTD"}), "Invalid time_in_force"),
    ],
    ids=["truncated", "array", "size", "time_in_force"],
)
async def test_malformed_body(served: ServedExchange, body: bytes, message: str) -> None:
    assert await served.raw("POST", "/orders", body) == (400, {"message": message})
    client_oid = str(uuid.uuid4())
    async with served.client() as client:
        with pytest.raises(OrderRejected) as refused:
            await client.exchange.submit_order(body, client_oid)
    assert refused.value.status == 400
    assert message in str(refused.value)
    assert refused.value.client_order_id == client_oid
    _secret_free(refused.value, served)
    assert len(served.sim.ledger) == 0


async def test_oversized_body(served: ServedExchange) -> None:
    body = orjson.dumps({**ORDER, "padding": "x" * (1 << 20)})
    status, _ = await served.raw("POST", "/orders", body)
    assert status == 413
    async with served.client() as client:
        with pytest.raises(ExchangeError) as refused:
            await client.exchange.submit_order(body, str(uuid.uuid4()))
    assert refused.value.status == 413
    assert len(str(refused.value)) < 600  # the body is never echoed back
    _secret_free(refused.value, served)
    assert len(served.sim.ledger) == 0


async def test_unknown_product(served: ServedExchange) -> None:
    body = orjson.dumps({**ORDER, "product_id": "DOGE-EUR"})
    assert await served.raw("POST", "/orders", body) == (400, {"message": "Invalid product_id"})
    assert await served.raw("GET", "/products/DOGE-EUR") == (404, {"message": "NotFound"})
    async with served.client() as client:
        api = client.exchange
        with pytest.raises(OrderRejected, match="Invalid product_id") as refused:
            await api.create_order("DOGE-EUR", "buy", size="1", price="1")
        assert refused.value.status == 400
        with pytest.raises(NotFound):
            await api.ticker("DOGE-EUR")
        with pytest.raises(ExchangeError, match="Invalid product_id"):
            await api.cancel_all(product_id="DOGE-EUR")
    assert len(served.sim.ledger) == 0


async def test_a_lost_response_is_confirmed_by_client_oid_never_sent_twice(served: ServedExchange) -> None:
    served.sim.faults.update({"drop_after_accept_rate": 1.0})
    async with served.client() as client:
        order = await client.exchange.create_order("BTC-USD", "buy", size="0.01", price="50000.00")
        requests = served.sim.request_count(served.key.key)
    assert order.confirmed_by_lookup
    assert requests == 2  # the POST, then GET /orders/client:{client_oid}; no second POST
    assert [o.client_order_id for o in served.sim.ledger] == [order.client_oid]
    assert served.sim.ledger.by_client_order_id(order.client_oid).order_id == order.id  # type: ignore[union-attr]


@pytest.mark.parametrize("sim_overrides", [{"rate_limits": RateLimits()}], ids=["limits-on"])
async def test_rate_limit_pools(served: ServedExchange, sim_overrides: dict[str, Any]) -> None:
    """Private 15/s burst 30, /fills 10/s burst 20 (its own pool), public 10/s burst 15 per IP."""

    async def burst(path: str, count: int) -> tuple[int, float, list[Any]]:
        started = time.monotonic()
        answers = [await served.raw("GET", path) for _ in range(count)]
        admitted = sum(1 for status, _ in answers if status == 200)
        return admitted, time.monotonic() - started, [a for s, a in answers if s == 429]

    for path, rate, size, pool in (
        ("/accounts", 15, 30, "Private"),
        ("/fills?product_id=BTC-USD", 10, 20, "Private"),
        ("/products", 10, 15, "Public"),
    ):
        admitted, elapsed, refusals = await burst(path, size + 10)
        # the whole burst, plus what refilled while it ran; never more
        assert size <= admitted <= size + int(rate * elapsed) + 1, path
        assert refusals
        assert refusals[0] == {"message": f"{pool} rate limit exceeded"}


async def test_missing_permission_and_ip_allowlist(served: ServedExchange) -> None:
    from engine.auth import ExchangeKey
    from engine.rest import Client

    view_only, fenced = new_exchange_key(), new_exchange_key()
    served.sim.register_exchange_key(view_only.key, view_only.secret, view_only.passphrase, {"view"})
    served.sim.register_exchange_key(
        fenced.key, fenced.secret, fenced.passphrase, {"view", "trade"}, allowed_ips=["203.0.113.0/24"]
    )
    for test_key, diagnosis in (
        (view_only, AuthDiagnosis.MISSING_PERMISSION),
        (fenced, AuthDiagnosis.IP_NOT_ALLOWED),
    ):
        key = ExchangeKey(test_key.key, test_key.secret, test_key.passphrase)
        async with Client(key, served.base_url) as client:
            with pytest.raises(AuthError) as refused:
                await client.exchange.create_order("BTC-USD", "buy", size="0.01", price="50000.00")
        assert refused.value.status == 403
        assert refused.value.diagnosis is diagnosis
        assert test_key.secret not in str(refused.value)
        assert test_key.passphrase not in str(refused.value)
    assert len(served.sim.ledger) == 0


async def test_under_faults_every_order_is_placed_once(served: ServedExchange) -> None:
    served.sim.faults.update({"error_5xx_rate": 0.2, "drop_after_accept_rate": 0.2, "latency_ms": 1.0})
    patient = RetryPolicy(max_attempts=12, base_delay_s=0.001, max_delay_s=0.02, budget_s=20.0)
    async with served.client(retry=patient) as client:
        orders = await asyncio.gather(
            *(
                client.exchange.create_order("BTC-USD", "buy", size="0.001", price=f"{40000 + i}.00")
                for i in range(20)
            )
        )
    ledger = [o.client_order_id for o in served.sim.ledger]
    assert sorted(ledger) == sorted(o.client_oid for o in orders)  # each once, none lost
    assert served.sim.injected["error_5xx"] > 0
    assert served.sim.injected["drop_after_accept"] > 0
    assert any(o.confirmed_by_lookup for o in orders)
