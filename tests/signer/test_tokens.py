"""CDP JWTs: exact header and claims, verified by PyJWT + cryptography, shaped as coinbase-advanced-py's."""

from __future__ import annotations

import re
import time

import pytest
from coinbase import jwt_generator

from engine.auth import CdpKey
from engine.errors import InvalidRequest
from tests.signer.conftest import decode
from tests.support.keys import TestKey

ORDERS = "/api/v3/brokerage/orders"


def test_rest_token_header_and_claims_are_exact(cdp_key: CdpKey, test_key: TestKey) -> None:
    before = int(time.time())
    header, claims = decode(cdp_key.rest_jwt("POST", ORDERS), test_key)
    after = int(time.time())
    assert list(header) == ["alg", "kid", "nonce", "typ"]
    assert header["alg"] == test_key.algorithm
    assert header["kid"] == test_key.name
    assert header["typ"] == "JWT"
    assert re.fullmatch(r"[0-9a-f]{64}", str(header["nonce"]))
    assert list(claims) == ["sub", "iss", "nbf", "exp", "uri"]
    assert claims["sub"] == test_key.name
    assert claims["iss"] == "cdp"
    assert isinstance(claims["nbf"], int)
    assert before <= claims["nbf"] <= after
    assert claims["exp"] == claims["nbf"] + 120
    assert claims["uri"] == f"POST api.coinbase.com{ORDERS}"


def test_ws_token_has_no_uri(cdp_key: CdpKey, test_key: TestKey) -> None:
    header, claims = decode(cdp_key.ws_jwt(), test_key)
    assert header["kid"] == test_key.name
    assert list(claims) == ["sub", "iss", "nbf", "exp"]


def test_es256_signature_is_jose_not_der(test_key: TestKey) -> None:
    import base64

    token = CdpKey(test_key.name, test_key.private_key).ws_jwt()
    signature = base64.urlsafe_b64decode(token.rsplit(".", 1)[1] + "==")
    assert len(signature) == 64  # r ‖ s for ES256 and R ‖ S for Ed25519; DER would be 70-72 bytes


@pytest.mark.parametrize(
    ("method", "path", "host", "uri"),
    [
        ("get", "/api/v3/brokerage/orders/historical/batch?limit=5&order_status=OPEN", "api.coinbase.com",
         "GET api.coinbase.com/api/v3/brokerage/orders/historical/batch"),
        ("POST", "/api/v3/brokerage/orders/batch_cancel", "127.0.0.1:18443",
         "POST 127.0.0.1:18443/api/v3/brokerage/orders/batch_cancel"),
        ("DELETE", "/api/v3/brokerage/cfm/sweeps", "localhost",
         "DELETE localhost/api/v3/brokerage/cfm/sweeps"),
    ],
)  # fmt: skip
def test_uri_strips_query_upper_cases_method_and_keeps_port(
    cdp_key: CdpKey, test_key: TestKey, method: str, path: str, host: str, uri: str
) -> None:
    _, claims = decode(cdp_key.rest_jwt(method, path, host=host), test_key)
    assert claims["uri"] == uri


@pytest.mark.parametrize(
    ("method", "path", "host"),
    [
        ("GET", "https://api.coinbase.com/api/v3/brokerage/accounts", "api.coinbase.com"),
        ("GET", "api/v3/brokerage/accounts", "api.coinbase.com"),
        ("GET", "/api/v3/brokerage/accounts", "https://api.coinbase.com"),
        ("", "/api/v3/brokerage/accounts", "api.coinbase.com"),
    ],
)
def test_request_lines_coinbase_would_401_are_refused_early(
    cdp_key: CdpKey, method: str, path: str, host: str
) -> None:
    with pytest.raises(ValueError, match="must"):
        cdp_key.rest_jwt(method, path, host=host)


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/api/v3/brokerage/orders\r\nX-Injected: 1"),
        ("GET", "/api/v3/brokerage/orders\n"),
        ("GET", "/api/v3/brokerage/orders\x00"),
        ("GET", "/api/v3/brokerage/orders\x7f"),
        ("GET", "/api/v3/brokerage/orders\udcff"),  # a lone surrogate: not text at all
        ("G\udcffT", "/api/v3/brokerage/orders"),
    ],
    ids=["CRLF", "LF", "NUL", "DEL", "surrogate in the path", "surrogate in the method"],
)
def test_a_request_line_that_cannot_be_sent_is_refused_with_a_typed_error(
    cdp_key: CdpKey, method: str, path: str
) -> None:
    for mint in (cdp_key.rest_jwt, cdp_key.pooled):
        with pytest.raises(InvalidRequest) as caught:
            mint(method, path)
        assert "must" in str(caught.value)
        assert "\udcff" not in repr(caught.value.args)  # the refused text is not carried along
        assert caught.value.__cause__ is None


def test_clock_offset_shifts_nbf_and_exp(cdp_key: CdpKey, test_key: TestKey) -> None:
    assert cdp_key.clock_offset == 0.0
    cdp_key.clock_offset = -3600.5
    assert cdp_key.clock_offset == -3600.5
    now = time.time()
    _, claims = decode(cdp_key.rest_jwt("GET", "/api/v3/brokerage/accounts"), test_key)
    assert abs(int(claims["nbf"]) - (now - 3600.5)) <= 2
    assert claims["exp"] == int(claims["nbf"]) + 120
    with pytest.raises(ValueError, match="finite"):
        cdp_key.clock_offset = float("nan")


def test_nonces_are_unique(cdp_key: CdpKey, test_key: TestKey) -> None:
    nonces = {decode(cdp_key.rest_jwt("GET", "/x"), test_key)[0]["nonce"] for _ in range(200)}
    assert len(nonces) == 200


def test_same_shape_as_coinbase_advanced_py(test_key: TestKey) -> None:
    """Same header keys, claim names and values as the official SDK's jwt_generator, for the same key."""
    uri = jwt_generator.format_jwt_uri("POST", ORDERS)
    theirs = jwt_generator.build_rest_jwt(uri, test_key.name, test_key.private_key)
    ours = CdpKey(test_key.name, test_key.private_key).rest_jwt("POST", ORDERS)
    (their_header, their_claims), (our_header, our_claims) = decode(theirs, test_key), decode(ours, test_key)
    assert list(our_header) == list(their_header)
    assert list(our_claims) == list(their_claims)
    for field in ("alg", "kid", "typ"):
        assert our_header[field] == their_header[field]
    assert len(str(our_header["nonce"])) == len(str(their_header["nonce"]))
    for field in ("sub", "iss", "uri"):
        assert our_claims[field] == their_claims[field]
    assert abs(int(our_claims["nbf"]) - int(their_claims["nbf"])) <= 2
    # and the WebSocket shape
    their_ws = decode(jwt_generator.build_ws_jwt(test_key.name, test_key.private_key), test_key)[1]
    our_ws = decode(CdpKey(test_key.name, test_key.private_key).ws_jwt(), test_key)[1]
    assert list(our_ws) == list(their_ws)
