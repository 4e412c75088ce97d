"""Signing, side by side with its peers in one run; every benchmark also checks what it timed.

Bars: a cold ES256 token ≤ 1.0x the bare `cryptography` ECDSA-P256 signature of a 32-byte digest and
≥ 4x faster than PyJWT with a preloaded key (EdDSA likewise against bare Ed25519); a pooled token ≤ 1 µs
median and ≥ 100x faster than coinbase-advanced-py's `build_rest_jwt`; Exchange HMAC headers ≥ 3x faster
than the stdlib recipe. Groups keep the ratios readable: `pytest benches/bench_signing.py --benchmark-only`.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import time
from typing import Any

import jwt
import pytest
from coinbase import jwt_generator
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed

from engine.auth import CdpKey, ExchangeKey
from tests.support.keys import TestKey, new_ed25519_key, new_es256_key, new_exchange_key

ORDERS = ("POST", "/api/v3/brokerage/orders")
URI = f"POST api.coinbase.com{ORDERS[1]}"
DIGEST = hashlib.sha256(b"header.claims of a token").digest()
KEYS: dict[str, TestKey] = {"ES256": new_es256_key(), "EdDSA": new_ed25519_key()}


def _check_token(token: str, test_key: TestKey, uri: str | None = URI) -> None:
    claims = jwt.decode(token, test_key.public_key_pem, algorithms=[test_key.algorithm])
    header = jwt.get_unverified_header(token)
    assert header["kid"] == claims["sub"] == test_key.name
    assert claims.get("uri") == uri
    assert claims["exp"] == claims["nbf"] + 120


def _private_key(test_key: TestKey) -> Any:
    return serialization.load_pem_private_key(test_key.forms["pkcs8_pem"].encode(), None)


def _engine(benchmark: Any, label: str, *peers: str) -> None:
    benchmark.extra_info.update(role="engine", label=label, vs=list(peers))


def _peer(benchmark: Any, label: str) -> None:
    benchmark.extra_info.update(role="peer", label=label)


# -- cold tokens: the whole token against the bare signature, per algorithm ---------------------------------


@pytest.mark.parametrize("alg", ["ES256", "EdDSA"])
def test_engine_cold_token(benchmark: Any, alg: str) -> None:
    benchmark.group = f"cold token {alg}"
    _engine(benchmark, f"engine rest_jwt {alg} (cold)")
    key = CdpKey(KEYS[alg].name, KEYS[alg].private_key)
    token = benchmark(key.rest_jwt, *ORDERS)
    _check_token(token, KEYS[alg])


@pytest.mark.parametrize("alg", ["ES256", "EdDSA"])
def test_bare_cryptography_signature(benchmark: Any, alg: str) -> None:
    benchmark.group = f"cold token {alg}"
    private = _private_key(KEYS[alg])
    if alg == "ES256":
        _peer(benchmark, "cryptography ECDSA-P256 sign(32-byte digest)")
        algorithm = ec.ECDSA(Prehashed(hashes.SHA256()))
        signature = benchmark(private.sign, DIGEST, algorithm)
        private.public_key().verify(signature, DIGEST, algorithm)
    else:
        _peer(benchmark, "cryptography Ed25519 sign(32 bytes)")
        assert isinstance(private, ed25519.Ed25519PrivateKey)
        signature = benchmark(private.sign, DIGEST)
        private.public_key().verify(signature, DIGEST)


@pytest.mark.parametrize("alg", ["ES256", "EdDSA"])
def test_pyjwt_preloaded_key(benchmark: Any, alg: str) -> None:
    benchmark.group = f"cold token {alg}"
    _peer(benchmark, f"PyJWT {alg}, key preloaded")
    test_key, private = KEYS[alg], _private_key(KEYS[alg])

    def mint() -> str:
        now = int(time.time())
        claims = {"sub": test_key.name, "iss": "cdp", "nbf": now, "exp": now + 120, "uri": URI}
        return jwt.encode(
            claims, private, algorithm=alg, headers={"kid": test_key.name, "nonce": secrets.token_hex()}
        )

    _check_token(benchmark(mint), test_key)


@pytest.mark.parametrize("alg", ["ES256", "EdDSA"])
def test_coinbase_advanced_py_build_rest_jwt(benchmark: Any, alg: str) -> None:
    benchmark.group = f"cold token {alg}"
    _peer(benchmark, f"coinbase-advanced-py build_rest_jwt {alg}")
    test_key = KEYS[alg]
    token = benchmark(jwt_generator.build_rest_jwt, URI, test_key.name, test_key.private_key)
    _check_token(token, test_key)


# -- pooled tokens ------------------------------------------------------------------------------------------


def test_engine_pooled_token(benchmark: Any) -> None:
    benchmark.group = "pooled token"
    _engine(benchmark, "engine rest_jwt (pooled)", "coinbase-advanced-py build_rest_jwt ES256")
    test_key = KEYS["ES256"]
    depth, rounds = (
        4096,
        2000,
    )  # the pool never runs below half, so the refill thread stays parked while timed
    with CdpKey(test_key.name, test_key.private_key) as key:
        key.premint([ORDERS], depth=depth, max_age=100.0)
        deadline = time.monotonic() + 120
        while key.pooled(*ORDERS) < depth:
            assert time.monotonic() < deadline, "the pool did not fill"
            time.sleep(0.01)
        token = benchmark.pedantic(key.rest_jwt, args=ORDERS, rounds=rounds, iterations=1)
        taken = depth - key.pooled(*ORDERS)
        assert 1 <= taken <= rounds + 1, "pooled calls must be served from the pool"
        assert token != key.rest_jwt(*ORDERS)
    _check_token(token, test_key)


def test_coinbase_advanced_py_build_rest_jwt_pooled_peer(benchmark: Any) -> None:
    benchmark.group = "pooled token"
    _peer(benchmark, "coinbase-advanced-py build_rest_jwt ES256")
    test_key = KEYS["ES256"]
    token = benchmark(jwt_generator.build_rest_jwt, URI, test_key.name, test_key.private_key)
    _check_token(token, test_key)


# -- Coinbase Exchange HMAC headers -------------------------------------------------------------------------

EXCHANGE = new_exchange_key()
BODY = b'{"product_id":"BTC-USD","side":"buy","type":"limit","price":"50000.00","size":"0.001"}'


def _reference_sign(timestamp: str, method: str, path: str, body: bytes) -> str:
    message = timestamp.encode() + method.encode() + path.encode() + body
    digest = hmac.new(base64.b64decode(EXCHANGE.secret), message, hashlib.sha256).digest()
    return base64.b64encode(digest).decode()


def test_engine_exchange_headers(benchmark: Any) -> None:
    benchmark.group = "exchange hmac headers"
    _engine(benchmark, "engine ExchangeKey.headers", "stdlib hmac recipe")
    key = ExchangeKey(EXCHANGE.key, EXCHANGE.secret, EXCHANGE.passphrase)
    headers = benchmark(key.headers, "POST", "/orders", BODY)
    expected = _reference_sign(headers["CB-ACCESS-TIMESTAMP"], "POST", "/orders", BODY)
    assert headers["CB-ACCESS-SIGN"] == expected


def test_stdlib_hmac_recipe(benchmark: Any) -> None:
    benchmark.group = "exchange hmac headers"
    _peer(benchmark, "stdlib hmac recipe")
    secret = base64.b64decode(EXCHANGE.secret)  # decoded once, as a client would

    def headers(method: str, path: str, body: bytes) -> dict[str, str]:
        timestamp = str(int(time.time()))
        message = timestamp.encode() + method.encode() + path.encode() + body
        signature = base64.b64encode(hmac.new(secret, message, hashlib.sha256).digest()).decode()
        return {
            "CB-ACCESS-KEY": EXCHANGE.key,
            "CB-ACCESS-SIGN": signature,
            "CB-ACCESS-TIMESTAMP": timestamp,
            "CB-ACCESS-PASSPHRASE": EXCHANGE.passphrase,
        }

    result = benchmark(headers, "POST", "/orders", BODY)
    assert result["CB-ACCESS-SIGN"] == _reference_sign(result["CB-ACCESS-TIMESTAMP"], "POST", "/orders", BODY)
