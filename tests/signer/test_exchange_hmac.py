"""Coinbase Exchange HMAC headers against an independent implementation of the documented recipe."""

from __future__ import annotations

import base64
import hashlib
import hmac
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine import _signer
from engine.auth import ExchangeKey
from engine.errors import KeyFormatError
from tests.support.keys import new_exchange_key

CREDENTIALS = new_exchange_key()
KEY = ExchangeKey(CREDENTIALS.key, CREDENTIALS.secret, CREDENTIALS.passphrase)


def reference_sign(secret_b64: str, timestamp: str, method: str, request_path: str, body: bytes) -> str:
    """base64(HMAC_SHA256(b64decode(secret), timestamp + METHOD + request_path + body)).

    As https://docs.cdp.coinbase.com/exchange/rest-api/authentication describes it."""
    prehash = timestamp.encode() + method.upper().encode() + request_path.encode() + body
    return base64.b64encode(hmac.new(base64.b64decode(secret_b64), prehash, hashlib.sha256).digest()).decode()


paths = st.text(alphabet=st.characters(min_codepoint=0x21, max_codepoint=0x7E), max_size=80).map(
    lambda p: "/" + p
)
timestamps = st.one_of(
    st.integers(min_value=1_500_000_000, max_value=2_500_000_000),
    st.floats(min_value=1_500_000_000, max_value=2_500_000_000, allow_nan=False),
    st.integers(min_value=1_500_000_000, max_value=2_500_000_000).map(lambda t: f"{t}.123"),
)


@settings(max_examples=300, deadline=None)
@given(
    method=st.sampled_from(["GET", "POST", "DELETE", "PUT", "get", "post"]),
    path=paths,
    body=st.binary(max_size=512),
    timestamp=timestamps,
)
def test_headers_match_the_documented_recipe(
    method: str, path: str, body: bytes, timestamp: float | str
) -> None:
    headers = KEY.headers(method, path, body, timestamp)
    assert list(headers) == ["CB-ACCESS-KEY", "CB-ACCESS-SIGN", "CB-ACCESS-TIMESTAMP", "CB-ACCESS-PASSPHRASE"]
    assert headers["CB-ACCESS-KEY"] == CREDENTIALS.key
    assert headers["CB-ACCESS-PASSPHRASE"] == CREDENTIALS.passphrase
    sent = headers["CB-ACCESS-TIMESTAMP"]
    if isinstance(timestamp, str):
        assert sent == timestamp
    else:
        assert float(sent) == timestamp
    assert headers["CB-ACCESS-SIGN"] == reference_sign(CREDENTIALS.secret, sent, method, path, body)


@settings(max_examples=200, deadline=None)
@given(secret=st.binary(max_size=200), message=st.binary(max_size=500))
def test_hmac_sha256_base64_matches_stdlib(secret: bytes, message: bytes) -> None:
    expected = base64.b64encode(hmac.new(secret, message, hashlib.sha256).digest()).decode()
    assert _signer.hmac_sha256_base64(secret, message) == expected


def test_default_timestamp_is_now_on_the_exchange_clock() -> None:
    key = ExchangeKey(CREDENTIALS.key, CREDENTIALS.secret, CREDENTIALS.passphrase)
    assert abs(int(key.headers("GET", "/time")["CB-ACCESS-TIMESTAMP"]) - time.time()) <= 2
    key.clock_offset = 42.0
    headers = key.headers("GET", "/accounts", b"")
    assert abs(int(headers["CB-ACCESS-TIMESTAMP"]) - (time.time() + 42)) <= 2
    sent = headers["CB-ACCESS-TIMESTAMP"]
    assert headers["CB-ACCESS-SIGN"] == reference_sign(CREDENTIALS.secret, sent, "GET", "/accounts", b"")


def test_repr_shows_the_key_id_only() -> None:
    assert repr(KEY) == f"ExchangeKey(key={CREDENTIALS.key!r})"
    assert KEY.key == CREDENTIALS.key


@pytest.mark.parametrize(
    ("key", "secret", "passphrase", "message"),
    [
        ("k", "not base64 %%%", "p", "not base64"),
        ("k", "", "p", "secret is empty"),
        ("", CREDENTIALS.secret, "p", "key is empty"),
        ("k", CREDENTIALS.secret, "", "passphrase is empty"),
    ],
    ids=["secret not base64", "secret empty", "key empty", "passphrase empty"],  # no secret in a test id
)
def test_unusable_credentials_are_refused(key: str, secret: str, passphrase: str, message: str) -> None:
    with pytest.raises(KeyFormatError, match=message) as caught:
        ExchangeKey(key, secret, passphrase)
    assert CREDENTIALS.secret[:16] not in str(caught.value)


def test_timestamp_type_is_checked() -> None:
    with pytest.raises(TypeError):
        KEY.headers("GET", "/x", b"", [1])  # type: ignore[arg-type]
