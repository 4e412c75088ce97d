"""Every refusal Coinbase makes, with status and body: JWT, Exchange HMAC, permissions, IP, rate limits."""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from typing import Any

import aiohttp
import jwt
import orjson
from cryptography.hazmat.primitives import serialization

from engine.sim import RateLimits, Simulator
from tests.sim.conftest import Served, mint, quiet_config
from tests.support.keys import TestExchangeKey, TestKey, new_ed25519_key, new_es256_key, new_exchange_key

ACCOUNTS = "/api/v3/brokerage/accounts"
ORDERS = "/api/v3/brokerage/orders"


async def get(served: Served, path: str, headers: dict[str, str]) -> tuple[int, str, Any]:
    async with served.http.get(served.base_url + path, headers=headers) as response:
        return response.status, await response.text(), response.headers


async def test_valid_es256_and_ed25519_tokens_are_accepted_in_every_claim_set(served: Served) -> None:
    uri = f"GET {served.host}{ACCOUNTS}"
    ed = new_ed25519_key()
    served.sim.register_cdp_key(ed.name, ed.public_key_pem)
    tokens = [
        mint(served.key, uri),  # coinbase-advanced-py
        mint(ed, uri),
        # ccxt ES256: iss coinbase-cloud, aud retail_rest_api_proxy, iat
        mint(
            served.key,
            uri,
            extra_claims={"iss": "coinbase-cloud", "aud": ["retail_rest_api_proxy"], "iat": int(time.time())},
        ),
        # ccxt EdDSA / cdp-sdk: aud cdp_service with `uris`
        mint(ed, uri, use_uris=True, extra_claims={"aud": ["cdp_service"]}),
    ]
    for token in tokens:
        status, body, _ = await get(served, ACCOUNTS, {"Authorization": f"Bearer {token}"})
        assert status == 200, body
        assert orjson.loads(body)["accounts"]


def _without_nonce(key: TestKey, uri: str) -> str:
    private = serialization.load_pem_private_key(key.forms["pkcs8_pem"].encode(), password=None)
    now = int(time.time())
    claims = {"sub": key.name, "iss": "cdp", "nbf": now, "exp": now + 120, "uri": uri}
    return jwt.encode(claims, private, algorithm=key.algorithm, headers={"kid": key.name})  # type: ignore[arg-type]


async def test_each_bad_token_is_refused_with_401_unauthorized(served: Served) -> None:
    uri = f"GET {served.host}{ACCOUNTS}"
    stranger = new_es256_key()
    signed_part = mint(served.key, uri).rsplit(".", 1)[0]
    other_signature = mint(served.key, uri).rsplit(".", 1)[1]  # a real signature, over other content
    cases = {
        "bad_signature": f"{signed_part}.{other_signature}",
        "expired": mint(served.key, uri, nbf=time.time() - 121),
        "not_yet_valid": mint(served.key, uri, nbf=time.time() + 30),
        "uri_mismatch": mint(served.key, f"GET api.coinbase.com{ACCOUNTS}"),
        "missing_uri": mint(served.key, None),
        "unknown_key": mint(stranger, uri),
        "query_in_uri": mint(served.key, f"GET {served.host}{ACCOUNTS}?limit=5"),
        "sub_mismatch": mint(served.key, uri, extra_claims={"sub": "someone-else"}),
        "bad_issuer": mint(served.key, uri, extra_claims={"iss": "evil"}),
        "bad_audience": mint(served.key, uri, extra_claims={"aud": ["elsewhere"]}),
        "malformed": mint(served.key, uri, extra_claims={"exp": "soon"}),
        "missing_nonce": _without_nonce(served.key, uri),
    }
    expected_reason = {"query_in_uri": "uri_mismatch", "bad_signature": "bad_signature"}
    for case, token in cases.items():
        path = ACCOUNTS + ("?limit=5" if case == "query_in_uri" else "")
        status, body, headers = await get(served, path, {"Authorization": f"Bearer {token}"})
        assert (status, body) == (401, "Unauthorized"), case
        assert headers["x-sim-auth-failure"] == expected_reason.get(case, case), case
    status, body, _ = await get(served, ACCOUNTS, {})
    assert (status, body) == (401, "Unauthorized")


async def test_a_replayed_token_is_refused(served: Served) -> None:
    headers = served.auth("GET", ACCOUNTS)
    assert (await get(served, ACCOUNTS, headers))[0] == 200
    status, body, response_headers = await get(served, ACCOUNTS, headers)
    assert (status, body, response_headers["x-sim-auth-failure"]) == (401, "Unauthorized", "replayed")


async def test_missing_permission_and_ip_allowlist_are_403_permission_denied(served: Served) -> None:
    view_only = new_es256_key()
    served.sim.register_cdp_key(view_only.name, view_only.public_key_pem, permissions={"view"})
    elsewhere = new_ed25519_key()
    served.sim.register_cdp_key(elsewhere.name, elsewhere.public_key_pem, allowed_ips=["10.0.0.0/8"])
    order = {
        "client_order_id": "perm-1",
        "product_id": "BTC-USD",
        "side": "BUY",
        "order_configuration": {"market_market_ioc": {"quote_size": "10"}},
    }
    status, body = await served.call("POST", ORDERS, order, key=view_only)
    assert status == 403
    assert body["error"] == "PERMISSION_DENIED"
    assert body["error_details"] == "Missing required scopes"
    assert (await served.call("GET", ACCOUNTS, key=view_only))[0] == 200
    status, body = await served.call("GET", ACCOUNTS, key=elsewhere)
    assert status == 403
    assert body["error"] == "PERMISSION_DENIED"
    assert len(served.sim.ledger) == 0
    status, body = await served.call("GET", "/api/v3/brokerage/key_permissions", key=view_only)
    assert body["can_view"] is True
    assert body["can_trade"] is False


def hmac_headers(
    key: TestExchangeKey, method: str, path: str, body: bytes, timestamp: float | None = None
) -> dict[str, str]:
    ts = f"{time.time() if timestamp is None else timestamp:.3f}"
    message = ts.encode() + method.encode() + path.encode() + body
    signature = base64.b64encode(
        hmac.new(base64.b64decode(key.secret), message, hashlib.sha256).digest()
    ).decode()
    return {
        "CB-ACCESS-KEY": key.key,
        "CB-ACCESS-SIGN": signature,
        "CB-ACCESS-TIMESTAMP": ts,
        "CB-ACCESS-PASSPHRASE": key.passphrase,
        "Content-Type": "application/json",
    }


async def test_exchange_hmac_orders_and_refusals(served: Served) -> None:
    key = new_exchange_key()
    served.sim.register_exchange_key(key.key, key.secret, key.passphrase)
    body = orjson.dumps(
        {
            "product_id": "BTC-USD",
            "side": "buy",
            "type": "limit",
            "size": "0.01",
            "price": "50000.00",
            "client_oid": "hmac-1",
        }
    )
    url = served.base_url

    async def send(method: str, path: str, payload: bytes, headers: dict[str, str]) -> tuple[int, Any]:
        async with served.http.request(method, url + path, data=payload, headers=headers) as response:
            return response.status, await response.json(content_type=None)

    status, order = await send("POST", "/orders", body, hmac_headers(key, "POST", "/orders", body))
    assert status == 200
    assert order["status"] == "open"
    assert order["client_oid"] == "hmac-1"
    status, orders = await send(
        "GET", "/orders?status=open", b"", hmac_headers(key, "GET", "/orders?status=open", b"")
    )
    assert status == 200
    assert [o["id"] for o in orders] == [order["id"]]
    status, accounts = await send("GET", "/accounts", b"", hmac_headers(key, "GET", "/accounts", b""))
    assert status == 200
    assert {a["currency"] for a in accounts} >= {"USD", "BTC"}
    path = f"/orders/{order['id']}"
    status, cancelled = await send("DELETE", path, b"", hmac_headers(key, "DELETE", path, b""))
    assert (status, cancelled) == (200, order["id"])

    stale = hmac_headers(key, "GET", "/accounts", b"", timestamp=time.time() - 31)
    assert await send("GET", "/accounts", b"", stale) == (401, {"message": "request timestamp expired"})
    wrong_passphrase = hmac_headers(key, "GET", "/accounts", b"") | {"CB-ACCESS-PASSPHRASE": "not-it"}
    assert (await send("GET", "/accounts", b"", wrong_passphrase))[0] == 401
    signed_other_body = hmac_headers(key, "POST", "/orders", b"{}")
    assert await send("POST", "/orders", body, signed_other_body) == (401, {"message": "invalid signature"})
    signed_without_query = hmac_headers(key, "GET", "/orders", b"")
    assert (await send("GET", "/orders?status=all", b"", signed_without_query))[0] == 401
    assert len(served.sim.ledger) == 1


async def test_rate_limit_429_with_headers_counted_per_key() -> None:
    sim = Simulator(quiet_config(rate_limits=RateLimits(private_per_s=5, private_burst=5)))
    key = new_es256_key()
    sim.register_cdp_key(key.name, key.public_key_pem)
    async with sim.serve() as base_url, aiohttp.ClientSession() as http:
        served = Served(sim, base_url, http, key)
        statuses = []
        for _ in range(12):
            status, body, headers = await get(served, ACCOUNTS, served.auth("GET", ACCOUNTS))
            statuses.append(status)
            if status == 429:
                assert all(
                    h in headers for h in ("x-ratelimit-limit", "x-ratelimit-remaining", "x-ratelimit-reset")
                )
                assert orjson.loads(body)["error"] == "rate_limit_exceeded"
        assert statuses[:5] == [200] * 5
        assert 429 in statuses
        assert sim.rate_limited_count(key.name) == statuses.count(429)
        assert len(sim.request_timestamps(key.name)) == 12
        sim.config.html_429 = True
        sim.limiter.limits = RateLimits(private_per_s=0.001, private_burst=0.5)
        sim.limiter._buckets.clear()
        status, body, headers = await get(served, ACCOUNTS, served.auth("GET", ACCOUNTS))
        assert status == 429
        assert headers["Content-Type"].startswith("text/html")
        assert "<html>" in body
        async with http.get(base_url + "/sim/stats") as response:
            stats = await response.json()
        assert stats["keys"][key.name]["rate_limited"] == sim.rate_limited_count(key.name)
