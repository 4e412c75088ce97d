"""Hostile credentials, one table per kind of signature, shared by every venue that takes that kind.

`JWT_ATTACKS` are CDP JWTs (Advanced Trade REST, the perpetuals gateway's `public/auth` over HTTP and
WebSocket); `HMAC_ATTACKS` are Exchange request signatures; `SIGNAL_ATTACKS` are webhook signals. Each row
builds its credential at send time from the registered key (and a stranger's), so a row never holds a stale
token. A row naming `needs` only applies to venues whose tokens carry that claim.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

from tests.support.keys import TestExchangeKey, TestKey


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _sign(key: TestKey, signing_input: bytes) -> bytes:
    private = serialization.load_pem_private_key(key.forms["pkcs8_pem"].encode(), password=None)
    if isinstance(private, ed25519.Ed25519PrivateKey):
        return private.sign(signing_input)
    assert isinstance(private, ec.EllipticCurvePrivateKey)
    r, s = decode_dss_signature(private.sign(signing_input, ec.ECDSA(hashes.SHA256())))
    return r.to_bytes(32, "big") + s.to_bytes(32, "big")


@dataclass(frozen=True)
class Forge:
    """What a row forges from: the registered key, a key the venue never saw, the uri a token is for."""

    key: TestKey
    stranger: TestKey
    uri: str | None  # "<METHOD> <host><path>" for REST; None where tokens carry no uri

    def token(
        self,
        *,
        key: TestKey | None = None,
        header: dict[str, Any] | None = None,
        claims: dict[str, Any] | None = None,
        signature: Callable[[bytes], bytes] | None = None,
    ) -> str:
        """A CDP JWT as Coinbase's SDKs build one, with `header` and `claims` overriding its fields."""
        key = key or self.key
        now = int(time.time())
        body: dict[str, Any] = {"sub": key.name, "iss": "cdp", "nbf": now, "exp": now + 120}
        if self.uri is not None:
            body["uri"] = self.uri
        body.update(claims or {})
        head = {"alg": key.algorithm, "typ": "JWT", "kid": key.name, "nonce": secrets.token_hex()}
        head.update(header or {})
        signing_input = f"{_b64(json.dumps(head).encode())}.{_b64(json.dumps(body).encode())}".encode()
        raw = signature(signing_input) if signature else _sign(key, signing_input)
        return f"{signing_input.decode()}.{_b64(raw)}"


@dataclass(frozen=True)
class JwtAttack:
    name: str
    forge: Callable[[Forge], str]
    needs: str | None = None  # "uri": only where tokens name their request
    oversized: bool = False  # past the venue's size limit: refused before the signature is read


def _tampered_claims(forge: Forge) -> str:
    header, _, signature = forge.token().split(".")
    now = int(time.time())
    claims = {"sub": forge.key.name, "iss": "cdp", "nbf": now, "exp": now + 110, "admin": True}
    return f"{header}.{_b64(json.dumps(claims).encode())}.{signature}"


def _hs256_with_public_key(forge: Forge) -> str:
    public = forge.key.public_key_pem.encode()
    return forge.token(
        header={"alg": "HS256"}, signature=lambda data: hmac.new(public, data, hashlib.sha256).digest()
    )


JWT_ATTACKS: list[JwtAttack] = [
    JwtAttack("forged: signed by a stranger under the key's name", lambda f: f.token(
        key=f.stranger, header={"alg": f.key.algorithm, "kid": f.key.name}, claims={"sub": f.key.name})),
    JwtAttack("forged: claims changed after signing", _tampered_claims),
    JwtAttack("forged: signature bytes flipped", lambda f: f.token(
        signature=lambda data: bytes(b ^ 0x55 for b in _sign(f.key, data)))),
    JwtAttack("expired", lambda f: f.token(claims={"nbf": int(time.time()) - 300,
                                                    "exp": int(time.time()) - 180})),
    JwtAttack("not yet valid", lambda f: f.token(claims={"nbf": int(time.time()) + 300,
                                                          "exp": int(time.time()) + 420})),
    JwtAttack("lifetime over two minutes", lambda f: f.token(claims={"exp": int(time.time()) + 3600})),
    JwtAttack("wrong uri: another path", lambda f: f.token(claims={"uri": (f.uri or "") + "/x"}),
              needs="uri"),
    JwtAttack("wrong uri: another method", lambda f: f.token(claims={"uri": (f.uri or "").replace(
        "POST", "GET", 1)}), needs="uri"),
    JwtAttack("wrong uri: another host", lambda f: f.token(claims={"uri": (f.uri or "").replace(
        "127.0.0.1", "api.coinbase.com", 1)}), needs="uri"),
    JwtAttack("wrong uri: none", lambda f: f.token(claims={"uri": None}), needs="uri"),
    JwtAttack("wrong key: a stranger's, under its own name", lambda f: f.token(key=f.stranger)),
    JwtAttack("wrong key: sub names another key", lambda f: f.token(claims={"sub": f.stranger.name})),
    JwtAttack("alg none, no signature", lambda f: f.token(header={"alg": "none"}, signature=lambda _: b"")),
    JwtAttack("alg none, signature kept", lambda f: f.token(header={"alg": "none"})),
    JwtAttack("HS256 keyed with the public key", _hs256_with_public_key),
    JwtAttack("no nonce", lambda f: f.token(header={"nonce": ""})),
    JwtAttack("oversized: 5 KB", lambda f: f.token() + "A" * 5_000, oversized=True),
    JwtAttack("oversized: 100 KB", lambda f: f.token() + "A" * 100_000, oversized=True),
    JwtAttack("malformed: two parts", lambda f: ".".join(f.token().split(".")[:2])),
    JwtAttack("malformed: four parts", lambda f: f.token() + ".x"),
    JwtAttack("malformed: not base64", lambda f: "%%%.%%%.%%%"),
    JwtAttack("malformed: header not JSON", lambda f: _b64(b"{nope") + "." + f.token().split(".", 1)[1]),
    JwtAttack("malformed: empty", lambda f: ""),
    JwtAttack("malformed: non-ASCII", lambda f: f.token()[:-4] + "\u00e9\u00e9\u00e9\u00e9"),
]  # fmt: skip


# ---- Exchange HMAC -----------------------------------------------------------------------------------------
_Headers = Callable[[TestExchangeKey, TestExchangeKey, str, str, bytes], dict[str, str]]


@dataclass(frozen=True)
class HmacAttack:
    """`headers(key, stranger, method, path, body)` -> the CB-ACCESS-* headers a hostile client sends."""

    name: str
    headers: _Headers
    status: int = 401


def hmac_headers(
    key: TestExchangeKey, method: str, path: str, body: bytes, *, timestamp: str | None = None
) -> dict[str, str]:
    """The headers Coinbase's Exchange API wants, signed as its docs say."""
    timestamp = timestamp if timestamp is not None else f"{time.time():.3f}"
    message = timestamp.encode() + method.encode() + path.encode() + body
    signature = base64.b64encode(hmac.new(base64.b64decode(key.secret), message, hashlib.sha256).digest())
    return {
        "CB-ACCESS-KEY": key.key,
        "CB-ACCESS-SIGN": signature.decode(),
        "CB-ACCESS-TIMESTAMP": timestamp,
        "CB-ACCESS-PASSPHRASE": key.passphrase,
    }


def _with(name: str, value: str) -> _Headers:
    return lambda k, s, m, p, b: hmac_headers(k, m, p, b) | {name: value}


def _drop(name: str) -> _Headers:
    return lambda k, s, m, p, b: {n: v for n, v in hmac_headers(k, m, p, b).items() if n != name}


HMAC_ATTACKS: list[HmacAttack] = [
    HmacAttack("stale timestamp (45 s old)", lambda k, s, m, p, b: hmac_headers(
        k, m, p, b, timestamp=f"{time.time() - 45:.3f}")),
    HmacAttack("timestamp 45 s ahead", lambda k, s, m, p, b: hmac_headers(
        k, m, p, b, timestamp=f"{time.time() + 45:.3f}")),
    HmacAttack("timestamp nan", lambda k, s, m, p, b: hmac_headers(k, m, p, b, timestamp="nan")),
    HmacAttack("wrong passphrase", _with("CB-ACCESS-PASSPHRASE", "not-the-passphrase")),
    HmacAttack("body changed after signing", lambda k, s, m, p, b: hmac_headers(k, m, p, b + b" ")),
    HmacAttack("path changed after signing", lambda k, s, m, p, b: hmac_headers(k, m, "/orders?x=1", b)),
    HmacAttack("method changed after signing", lambda k, s, m, p, b: hmac_headers(k, "GET", p, b)),
    HmacAttack("signed with another key's secret", lambda k, s, m, p, b: hmac_headers(
        TestExchangeKey(k.key, s.secret, k.passphrase), m, p, b)),
    HmacAttack("another key's id", lambda k, s, m, p, b: hmac_headers(
        TestExchangeKey(s.key, k.secret, k.passphrase), m, p, b)),
    HmacAttack("signature not base64", _with("CB-ACCESS-SIGN", "%%% not base64 %%%")),
    HmacAttack("signature oversized (7 KB)", _with("CB-ACCESS-SIGN", "A" * 7000)),
    HmacAttack("signature over a header line (9 KB)", _with("CB-ACCESS-SIGN", "A" * 9000), status=400),
    HmacAttack("no signature", _drop("CB-ACCESS-SIGN"), status=400),
    HmacAttack("no timestamp", _drop("CB-ACCESS-TIMESTAMP"), status=400),
    HmacAttack("no passphrase", _drop("CB-ACCESS-PASSPHRASE"), status=400),
]  # fmt: skip


# ---- webhook signals ---------------------------------------------------------------------------------------
Signer = Callable[[bytes, str | None], dict[str, str]]  # (body, timestamp or now) -> the signal's headers


@dataclass(frozen=True)
class SignalAttack:
    """`send(sign, signal)` -> (body, headers) for one POST; `sign(body, timestamp)` gives valid headers."""

    name: str
    send: Callable[[Signer, dict[str, Any]], tuple[bytes, dict[str, str]]]
    status: int


def _body(signal: dict[str, Any]) -> bytes:
    return json.dumps(signal).encode()


SIGNAL_ATTACKS: list[SignalAttack] = [
    SignalAttack("unsigned", lambda sign, s: (_body(s), {}), 401),
    SignalAttack("signature only", lambda sign, s: (_body(s), {
        "X-Signal-Signature": sign(_body(s), None)["X-Signal-Signature"]}), 401),
    SignalAttack("wrong signature", lambda sign, s: (_body(s), sign(_body(s), None) | {
        "X-Signal-Signature": "0" * 64}), 401),
    SignalAttack("signed for another body", lambda sign, s: (
        _body(s), sign(_body(s | {"size": "9"}), None)), 401),
    SignalAttack("body changed after signing", lambda sign, s: (_body(s) + b" ", sign(_body(s), None)), 401),
    SignalAttack("stale (60 s old)", lambda sign, s: (
        _body(s), sign(_body(s), str(int(time.time()) - 60))), 401),
    SignalAttack("60 s ahead", lambda sign, s: (_body(s), sign(_body(s), str(int(time.time()) + 60))), 401),
    SignalAttack("timestamp nan", lambda sign, s: (_body(s), sign(_body(s), "nan")), 401),
    SignalAttack("oversized (100 KB)", lambda sign, s: (
        big := _body(s | {"tag": "x" * 100_000}), sign(big, None)), 413),
    SignalAttack("malformed: not JSON", lambda sign, s: (b"{not json", sign(b"{not json", None)), 400),
    SignalAttack("malformed: a list", lambda sign, s: (b"[]", sign(b"[]", None)), 400),
    SignalAttack("schema: unknown field", lambda sign, s: (
        b := _body(s | {"leverage": 100}), sign(b, None)), 400),
    SignalAttack("schema: side HOLD", lambda sign, s: (b := _body(s | {"side": "HOLD"}), sign(b, None)), 400),
    SignalAttack("schema: size NaN", lambda sign, s: (b := _body(s | {"size": "NaN"}), sign(b, None)), 400),
    SignalAttack("schema: no product", lambda sign, s: (
        b := _body({k: v for k, v in s.items() if k != "product_id"}), sign(b, None)), 400),
    SignalAttack("schema: market order with a limit price", lambda sign, s: (
        b := _body(s | {"order_type": "market"}), sign(b, None)), 400),
]  # fmt: skip
