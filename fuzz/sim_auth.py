"""The simulator's request authentication: CDP JWTs through the Rust verifier (`JwtVerifier`, behind
`KeyRing.verify_jwt`) and Exchange HMAC signatures (`KeyRing.verify_hmac`).

Tokens are the fuzzer's own text, or assembled from a header and claims it chose (any `alg`, `kid`, `nonce`,
`sub`, `iss`, `nbf`, `exp`, `uri`, `uris`, of any JSON type), signed with a registered key, another key, or
not at all, then optionally damaged. HMAC requests carry its key id, signature, timestamp and passphrase,
around a real signature or not. Every refusal is an `AuthFailure` with Coinbase's status (or the verifier's
`TokenInvalid`, when called directly), and repeats none of the token, signature or passphrase.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time

import atheris
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

from fuzz.harness import Case, Draw, Secret, main
from tests.support.keys import TestKey, new_ed25519_key, new_es256_key, new_exchange_key

with atheris.instrument_imports(include=["engine.sim.auth", "engine.sim.values"]):
    from engine import _signer
    from engine.errors import KeyFormatError, TokenInvalid
    from engine.sim.auth import SCOPES, AuthFailure, KeyRing
    from engine.sim.clock import SimClock
    from engine.sim.faults import Faults

DOCUMENTED = (AuthFailure, TokenInvalid, KeyFormatError)
HOST = "127.0.0.1:8080"
URIS = [f"GET {HOST}/api/v3/brokerage/accounts", f"POST {HOST}/api/v3/brokerage/orders"]
_ES, _ED, _STRANGER = new_es256_key(), new_ed25519_key(), new_es256_key()
_EXCHANGE = new_exchange_key()
KEYS = KeyRing(SimClock(0.0, Faults()), nbf_leeway_s=0.0, max_lifetime_s=120.0, hmac_window_s=30.0)
for _key in (_ES, _ED):
    KEYS.register_cdp_key(_key.name, _key.public_key_pem, SCOPES, None)
KEYS.register_exchange_key(_EXCHANGE.key, _EXCHANGE.secret, _EXCHANGE.passphrase, SCOPES)
VERIFIER = _signer.JwtVerifier()
VERIFIER.register(_ES.name, _ES.public_key_pem)
_PRIVATE = {
    id(key): serialization.load_pem_private_key(key.forms["pkcs8_pem"].encode(), password=None)
    for key in (_ES, _ED, _STRANGER)
}
ALGS = ["ES256", "EdDSA", "none", "HS256", "RS256", "es256", "", "ES384"]
CLAIM_NAMES = ["sub", "iss", "aud", "nbf", "exp", "uri", "uris", "iat"]


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _sign(key: TestKey, signing_input: bytes) -> bytes:
    private = _PRIVATE[id(key)]
    if isinstance(private, ed25519.Ed25519PrivateKey):
        return private.sign(signing_input)
    assert isinstance(private, ec.EllipticCurvePrivateKey)
    r, s = decode_dss_signature(private.sign(signing_input, ec.ECDSA(hashes.SHA256())))
    return r.to_bytes(32, "big") + s.to_bytes(32, "big")


def _claim(draw: Draw, name: str, key: TestKey, now: int, uri: str) -> object:
    typical: dict[str, object] = {
        "sub": key.name,
        "iss": "cdp",
        "aud": ["cdp_service"],
        "nbf": now,
        "exp": now + 120,
        "uri": uri,
        "uris": [uri],
        "iat": now,
    }
    return draw.pick(
        [
            typical[name],
            typical[name],
            draw.text(30),
            draw.float(),
            now + draw.int(-(10**6), 10**6),
            None,
            True,
            [typical[name]],
            {"x": 1},
            10**30,
        ]
    )


def _token(draw: Draw) -> str:
    if draw.int(0, 4) == 0:
        return draw.text(300)
    key = draw.pick([_ES, _ED, _STRANGER])
    uri = draw.pick(URIS)
    now = int(time.time())
    header: dict[str, object] = {"alg": key.algorithm if draw.int(0, 3) else draw.pick(ALGS), "typ": "JWT"}
    header["kid"] = draw.pick([key.name, _ES.name, draw.text(20), 5, None])
    if draw.int(0, 3):
        header["nonce"] = draw.pick([draw.ascii(32).encode().hex(), "", 7, None, draw.text(10)])
    claims = {name: _claim(draw, name, key, now, uri) for name in CLAIM_NAMES if draw.int(0, 4)}
    header_raw = json.dumps(header).encode() if draw.int(0, 5) else draw.bytes(40)
    claims_raw = json.dumps(claims).encode() if draw.int(0, 5) else draw.bytes(80)
    signing_input = f"{_b64(header_raw)}.{_b64(claims_raw)}".encode()
    how = draw.int(0, 4)
    if how == 0:
        signature = ""  # alg none, as an attacker sends it
    elif how == 1:  # HS256 keyed with the public key: the classic confusion
        mac = hmac.new(key.public_key_pem.encode(), signing_input, hashlib.sha256)
        signature = _b64(mac.digest())
    elif how == 2:
        signature = _b64(draw.bytes(70))
    else:
        signature = _b64(_sign(key, signing_input))
    token = f"{signing_input.decode()}.{signature}"
    return draw.damage(token) if draw.int(0, 3) == 0 else token


def case(data: bytes, secret: Secret) -> Case:
    draw = Draw(data)
    mode = draw.int(0, 2)
    if mode == 0:
        return _hmac(draw, secret)
    token = secret(_token(draw))
    if mode == 1:
        uri = draw.pick([*URIS, None, draw.text(40)])
        return (lambda: KEYS.verify_jwt(token, uri)), [token]
    as_bytes = token.encode("utf-8", "surrogatepass") if draw.flag() else token  # any text, as bytes

    def direct() -> object:
        VERIFIER.verify(as_bytes)
        return VERIFIER.verify_request(as_bytes, draw_uri, time.time(), 0.0, 120.0)

    draw_uri = draw.pick([URIS[0], None, URIS[0].encode(), draw.text(20)])
    return direct, [token]


def _hmac(draw: Draw, secret: Secret) -> Case:
    method, path = draw.pick([("GET", "/accounts"), ("POST", "/orders")])
    body = draw.bytes(40)
    timestamp = draw.pick([f"{time.time():.3f}", str(int(time.time()) - 45), draw.text(20), "nan", ""])
    prehash = method.encode() + path.encode() + body
    signature = base64.b64encode(
        hmac.new(
            base64.b64decode(_EXCHANGE.secret),
            timestamp.encode("utf-8", "surrogatepass") + prehash,  # any text the fuzzer drew
            hashlib.sha256,
        ).digest()
    ).decode()
    key_id = draw.pick([_EXCHANGE.key, draw.text(40), None, ""])
    sign = secret(draw.damage(signature) if draw.flag() else draw.pick([signature, draw.text(60)]))
    passphrase = secret(draw.pick([_EXCHANGE.passphrase, draw.damage(_EXCHANGE.passphrase), draw.text(30)]))
    tail = prehash if draw.int(0, 3) else prehash + draw.bytes(4)  # the body changed after signing

    def call() -> object:
        return KEYS.verify_hmac(key_id, sign, timestamp, passphrase, tail)

    return call, [value for value in (sign, passphrase) if value]


if __name__ == "__main__":
    main(case, DOCUMENTED)
