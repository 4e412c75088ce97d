"""engine._signer.JwtVerifier: what the exchange simulator runs on every request."""

from __future__ import annotations

import base64
import json

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from engine._signer import JwtVerifier
from engine.auth import CdpKey
from engine.errors import KeyFormatError, TokenInvalid
from tests.support.keys import TestKey, new_ed25519_key, new_es256_key


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _reason(verifier: JwtVerifier, token: str) -> str:
    with pytest.raises(TokenInvalid) as caught:
        verifier.verify(token)
    return caught.value.reason


@pytest.fixture
def verifier(test_key: TestKey) -> JwtVerifier:
    verifier = JwtVerifier()
    assert verifier.register(test_key.name, test_key.public_key_pem) == test_key.algorithm
    return verifier


def test_engine_tokens_verify_and_return_header_and_claims(
    verifier: JwtVerifier, cdp_key: CdpKey, test_key: TestKey
) -> None:
    token = cdp_key.rest_jwt("POST", "/api/v3/brokerage/orders", host="127.0.0.1:9999")
    kid, header_json, claims_json = verifier.verify(token)
    assert kid == test_key.name
    assert json.loads(header_json) == jwt.get_unverified_header(token)
    claims = json.loads(claims_json)
    assert claims["uri"] == "POST 127.0.0.1:9999/api/v3/brokerage/orders"
    assert json.loads(verifier.verify(cdp_key.ws_jwt())[2])["sub"] == test_key.name


def test_pyjwt_tokens_with_ccxt_claims_verify(verifier: JwtVerifier, test_key: TestKey) -> None:
    private = serialization.load_pem_private_key(test_key.forms["pkcs8_pem"].encode(), None)
    claims = {
        "sub": test_key.name,
        "iss": "coinbase-cloud",
        "aud": ["retail_rest_api_proxy"],
        "nbf": 1,
        "exp": 2,
    }
    token = jwt.encode(claims, private, algorithm=test_key.algorithm, headers={"kid": test_key.name})  # type: ignore[arg-type]
    assert json.loads(verifier.verify(token)[2]) == claims


def test_tampered_claims_fail_as_bad_signature(verifier: JwtVerifier, cdp_key: CdpKey) -> None:
    header, claims, signature = cdp_key.rest_jwt("GET", "/api/v3/brokerage/accounts").split(".")
    forged = json.loads(base64.urlsafe_b64decode(claims + "=="))
    forged["uri"] = "POST api.coinbase.com/api/v3/brokerage/orders"
    assert _reason(verifier, f"{header}.{_b64(json.dumps(forged).encode())}.{signature}") == "bad_signature"
    flipped = signature[:10] + ("A" if signature[10] != "A" else "B") + signature[11:]
    assert _reason(verifier, f"{header}.{claims}.{flipped}") == "bad_signature"


def test_unknown_kid_and_unregistered_key(verifier: JwtVerifier, test_key: TestKey) -> None:
    stranger = new_es256_key()
    assert _reason(verifier, CdpKey(stranger.name, stranger.private_key).ws_jwt()) == "unknown_key"
    token = CdpKey(test_key.name, test_key.private_key).ws_jwt()
    verifier.unregister(test_key.name)
    assert _reason(verifier, token) == "unknown_key"


def test_alg_swapped_header_is_an_alg_mismatch(
    verifier: JwtVerifier, cdp_key: CdpKey, test_key: TestKey
) -> None:
    header, claims, signature = cdp_key.ws_jwt().split(".")
    fields = json.loads(base64.urlsafe_b64decode(header + "=="))
    for alg in ({"ES256": "EdDSA", "EdDSA": "ES256"}[test_key.algorithm], "none", "HS256"):
        fields["alg"] = alg
        assert (
            _reason(verifier, f"{_b64(json.dumps(fields).encode())}.{claims}.{signature}") == "alg_mismatch"
        )


def test_a_token_signed_by_another_key_under_a_registered_kid_fails(
    verifier: JwtVerifier, test_key: TestKey
) -> None:
    impostor = new_es256_key() if test_key.algorithm == "ES256" else new_ed25519_key()
    token = CdpKey(test_key.name, impostor.private_key).ws_jwt()
    assert _reason(verifier, token) == "bad_signature"


@pytest.mark.parametrize(
    "token",
    [
        "",
        "abc",
        "a.b",
        "a.b.c.d",
        "!!!.e30.AAAA",
        _b64(b"not json") + "." + _b64(b"{}") + "." + _b64(bytes(64)),
        _b64(b'{"alg":"ES256"}') + "." + _b64(b"{}") + "." + _b64(bytes(64)),
        _b64(b'{"alg":"ES256","kid":"k"}') + "." + _b64(b"[1]") + "." + _b64(bytes(64)),
        _b64(b'{"alg":"ES256","kid":"k"}') + "." + _b64(b"{}") + "." + _b64(bytes(70)),
    ],
)
def test_malformed_tokens(verifier: JwtVerifier, token: str) -> None:
    assert _reason(verifier, token) == "malformed"


_UNDECODABLE: list[object] = [
    "\udcff",  # a header's latin-1 byte as Python's surrogateescape hands it over
    "abc.\ud800.def",  # a lone surrogate inside an otherwise well-shaped token
    b"\xff.\xfe.\xfd",  # bytes that are not UTF-8
    b"abc.\xed\xa0\x80.def",  # an encoded surrogate, which UTF-8 forbids
    12345,  # not text at all
    None,
]


@pytest.mark.parametrize("token", _UNDECODABLE, ids=repr)
def test_a_token_that_is_not_text_is_malformed(verifier: JwtVerifier, cdp_key: CdpKey, token: object) -> None:
    with pytest.raises(TokenInvalid) as caught:
        verifier.verify(token)  # type: ignore[arg-type]
    assert caught.value.reason == "malformed"
    with pytest.raises(TokenInvalid) as caught:
        verifier.verify_request(token, None, 0.0, 5.0, 120.0)  # type: ignore[arg-type]
    assert caught.value.reason == "malformed"
    # the same refusal for the URI a real token is checked against
    real = cdp_key.rest_jwt("GET", "/api/v3/brokerage/accounts", host="127.0.0.1:9999")
    with pytest.raises(TokenInvalid) as caught:
        verifier.verify_request(real, token if token is not None else "\udcff", 0.0, 5.0, 120.0)  # type: ignore[arg-type]
    assert caught.value.reason == "malformed"


def test_unregistering_a_kid_that_is_not_text_forgets_nothing(
    verifier: JwtVerifier, cdp_key: CdpKey, test_key: TestKey
) -> None:
    token = cdp_key.ws_jwt()
    for kid in ("\udcff", test_key.name + "\ud800", b"\xff", 7):
        verifier.unregister(kid)  # type: ignore[arg-type]
    assert verifier.verify(token)[0] == test_key.name
    verifier.unregister(test_key.name)
    with pytest.raises(TokenInvalid) as caught:
        verifier.verify(token)
    assert caught.value.reason == "unknown_key"


def test_a_token_as_utf8_bytes_verifies_as_its_text(verifier: JwtVerifier, cdp_key: CdpKey) -> None:
    token = cdp_key.rest_jwt("GET", "/api/v3/brokerage/accounts", host="127.0.0.1:9999")
    assert verifier.verify(token.encode()) == verifier.verify(token)
    nbf = jwt.decode(token, options={"verify_signature": False})["nbf"]
    uri = "GET 127.0.0.1:9999/api/v3/brokerage/accounts"
    assert verifier.verify_request(token.encode(), uri.encode(), nbf, 5.0, 120.0) == (
        verifier.verify_request(token, uri, nbf, 5.0, 120.0)
    )


def test_register_refuses_what_is_not_a_cdp_public_key() -> None:
    verifier = JwtVerifier()
    p384 = ec.generate_private_key(ec.SECP384R1()).public_key()
    pem = p384.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode()
    with pytest.raises(KeyFormatError, match="neither ECDSA P-256 nor Ed25519"):
        verifier.register("k", pem)
    with pytest.raises(KeyFormatError, match="SubjectPublicKeyInfo"):
        verifier.register("k", new_es256_key().forms["pkcs8_pem"])
    with pytest.raises(KeyFormatError):
        verifier.register("k", "")


def test_verify_request_judges_the_claims_and_returns_kid_nonce_exp(
    verifier: JwtVerifier, cdp_key: CdpKey, test_key: TestKey
) -> None:
    token = cdp_key.rest_jwt("POST", "/api/v3/brokerage/orders", host="127.0.0.1:9999")
    claims = jwt.decode(token, options={"verify_signature": False})
    uri = "POST 127.0.0.1:9999/api/v3/brokerage/orders"
    kid, nonce, exp = verifier.verify_request(token, uri, claims["nbf"] + 1, 5.0, 120.0)
    assert (kid, nonce, exp) == (test_key.name, jwt.get_unverified_header(token)["nonce"], claims["exp"])
    for expected_uri, now, reason in [
        ("GET 127.0.0.1:9999/api/v3/brokerage/orders", claims["nbf"], "uri_mismatch"),
        (uri, claims["exp"], "expired"),
        (uri, claims["nbf"] - 6, "not_yet_valid"),
    ]:
        with pytest.raises(TokenInvalid) as caught:
            verifier.verify_request(token, expected_uri, now, 5.0, 120.0)
        assert caught.value.reason == reason
    with pytest.raises(TokenInvalid) as caught:  # signature faults come first, as from verify
        verifier.verify_request(
            token[:-4] + ("AAAA" if token[-4:] != "AAAA" else "BBBB"), uri, 0.0, 5.0, 120.0
        )
    assert caught.value.reason in ("bad_signature", "malformed")
    ws = cdp_key.ws_jwt()
    assert (
        verifier.verify_request(
            ws, None, jwt.decode(ws, options={"verify_signature": False})["nbf"], 5.0, 120.0
        )[0]
        == kid
    )


@pytest.mark.parametrize("as_bytes", [False, True], ids=["str", "bytes"])
def test_a_token_far_longer_than_any_coinbase_token_is_refused_before_it_is_decoded(
    verifier: JwtVerifier, cdp_key: CdpKey, as_bytes: bool
) -> None:
    real = cdp_key.rest_jwt("GET", "/api/v3/brokerage/accounts", host="127.0.0.1:9999")
    header, claims, signature = real.split(".")
    padded = header + "." + claims + "A" * (8 * 1024) + "." + signature  # well-shaped, only too long
    token: str | bytes = padded.encode() if as_bytes else padded
    for verify in (
        lambda: verifier.verify(token),
        lambda: verifier.verify_request(token, None, 0.0, 5.0, 120.0),
    ):  # type: ignore[arg-type]
        with pytest.raises(TokenInvalid, match="this long") as caught:
            verify()
        assert caught.value.reason == "malformed"
