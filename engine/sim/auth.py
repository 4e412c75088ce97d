"""Authentication as Coinbase does it: CDP JWTs (ES256/EdDSA) and Exchange HMAC signatures.

Signatures are checked by the Rust extension (`engine._signer`): a JWT by `JwtVerifier.verify_request`, which
also judges its claims against the simulator's clock (`sub` names the key, the 2-minute window from `nbf`,
`iss`/`aud` from the claim sets clients actually send, the uri (`uri`, or `uris` as ccxt's EdDSA path and
cdp-sdk send) equal to "<METHOD> <Host><path>"), and the HMAC by `hmac_sha256_base64`. Kept here: a nonce is
never accepted twice while its token could still be valid. Failures carry Coinbase's status and body; the
precise reason goes in an `x-sim-auth-failure` header (and the stats), never key material.
"""

from __future__ import annotations

import base64
import binascii
import heapq
import hmac
import ipaddress
from dataclasses import dataclass, field

import orjson

from engine import _signer
from engine.errors import TokenInvalid
from engine.sim.clock import SimClock
from engine.sim.values import InvalidValue, parse_seconds

VIEW = "view"
TRADE = "trade"
TRANSFER = "transfer"
SCOPES = frozenset({VIEW, TRADE, TRANSFER})

IpNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


class AuthFailure(Exception):
    """A refused request: HTTP status, Coinbase-like body, and a short reason code for diagnostics."""

    def __init__(self, status: int, body: bytes, reason: str, content_type: str = "application/json") -> None:
        super().__init__(reason)
        self.status = status
        self.body = body
        self.reason = reason
        self.content_type = content_type


def _unauthorized(reason: str) -> AuthFailure:
    return AuthFailure(401, b"Unauthorized", reason, "text/plain")


def _exchange_401(message: str, reason: str) -> AuthFailure:
    return AuthFailure(401, orjson.dumps({"message": message}), reason)


def _permission_denied(details: str, reason: str) -> AuthFailure:
    body = {"error": "PERMISSION_DENIED", "error_details": details, "message": details}
    return AuthFailure(403, orjson.dumps(body), reason)


def _networks(allowed_ips: list[str] | None) -> tuple[IpNetwork, ...] | None:
    if allowed_ips is None:
        return None
    return tuple(ipaddress.ip_network(entry, strict=False) for entry in allowed_ips)


@dataclass(frozen=True, slots=True)
class CdpKey:
    name: str
    algorithm: str
    permissions: frozenset[str]
    allowed_networks: tuple[IpNetwork, ...] | None = None


@dataclass(frozen=True, slots=True)
class ExchangeKey:
    key: str
    secret: bytes = field(repr=False)
    passphrase: str = field(repr=False)
    permissions: frozenset[str] = SCOPES
    allowed_networks: tuple[IpNetwork, ...] | None = None


class NonceCache:
    """Nonces seen, each kept until its token's exp has passed: memory is bounded by the request rate."""

    __slots__ = ("_expiries", "_seen")

    def __init__(self) -> None:
        self._seen: set[str] = set()
        self._expiries: list[tuple[float, str]] = []

    def __len__(self) -> int:
        return len(self._seen)

    def add(self, nonce: str, expires_at: float, now: float) -> bool:
        """Record a nonce; False if it was already seen (a replay)."""
        while self._expiries and self._expiries[0][0] < now:
            self._seen.discard(heapq.heappop(self._expiries)[1])
        if nonce in self._seen:
            return False
        self._seen.add(nonce)
        heapq.heappush(self._expiries, (expires_at, nonce))
        return True


def _permissions(permissions: set[str] | frozenset[str]) -> frozenset[str]:
    unknown = set(permissions) - SCOPES
    if unknown:
        raise ValueError(f"unknown permissions {sorted(unknown)}; use {sorted(SCOPES)}")
    return frozenset(permissions)


class KeyRing:
    def __init__(
        self, clock: SimClock, nbf_leeway_s: float, max_lifetime_s: float, hmac_window_s: float
    ) -> None:
        self._clock = clock
        self._verifier = _signer.JwtVerifier()
        self._cdp: dict[str, CdpKey] = {}
        self._exchange: dict[str, ExchangeKey] = {}
        self._nonces = NonceCache()
        self.nbf_leeway_s = nbf_leeway_s
        self.max_lifetime_s = max_lifetime_s
        self.hmac_window_s = hmac_window_s

    # ---- registration --------------------------------------------------------------------------------
    def register_cdp_key(
        self,
        name: str,
        public_key_pem: str,
        permissions: set[str] | frozenset[str],
        allowed_ips: list[str] | None,
    ) -> CdpKey:
        algorithm = self._verifier.register(name, public_key_pem)
        key = CdpKey(name, algorithm, _permissions(permissions), _networks(allowed_ips))
        self._cdp[name] = key
        return key

    def register_exchange_key(
        self,
        key: str,
        secret_b64: str,
        passphrase: str,
        permissions: set[str] | frozenset[str],
        allowed_ips: list[str] | None = None,
    ) -> ExchangeKey:
        try:
            secret = base64.b64decode(secret_b64, validate=True)
        except (binascii.Error, ValueError):
            raise ValueError("the Exchange API secret must be base64") from None
        if not (key.isascii() and passphrase.isascii()):
            raise ValueError("an Exchange API key and passphrase are ASCII, as Coinbase issues them")
        record = ExchangeKey(key, secret, passphrase, _permissions(permissions), _networks(allowed_ips))
        self._exchange[key] = record
        return record

    def cdp_keys(self) -> list[CdpKey]:
        return list(self._cdp.values())

    # ---- CDP JWT ---------------------------------------------------------------------------------------
    def verify_jwt(self, token: str, expected_uri: str | None) -> CdpKey:
        """Verify a bearer token; `expected_uri` None for WebSocket tokens (which carry no uri).

        One call into the extension checks the signature and every claim rule against the simulator's clock;
        what is left here is the key's record and the nonce replay check.
        """
        if not token.isascii() or (expected_uri is not None and not expected_uri.isascii()):
            # a JWT is base64url and dots, and a request's method, host and path are ASCII: latin-1 bytes
            # in a header (which arrive as surrogates) cannot be a token Coinbase signed for this request
            raise _unauthorized("malformed")
        now = self._clock.now()
        try:
            kid, nonce, exp = self._verifier.verify_request(
                token, expected_uri, now, self.nbf_leeway_s, self.max_lifetime_s
            )
        except TokenInvalid as exc:
            raise _unauthorized(exc.reason) from None
        key = self._cdp.get(kid)
        if key is None:
            raise _unauthorized("unknown_key")
        if not self._nonces.add(f"{kid}\x00{nonce}", exp, now):
            raise _unauthorized("replayed")
        return key

    # ---- Exchange HMAC ---------------------------------------------------------------------------------
    def verify_hmac(
        self,
        key_id: str | None,
        sign: str | None,
        timestamp: str | None,
        passphrase: str | None,
        prehash_tail: bytes,
    ) -> ExchangeKey:
        """`prehash_tail` is METHOD + request_path (with query) + body, exactly as received."""
        if not key_id:
            raise AuthFailure(
                400, orjson.dumps({"message": "CB-ACCESS-KEY header is required"}), "missing_key"
            )
        if not sign:
            raise AuthFailure(
                400, orjson.dumps({"message": "CB-ACCESS-SIGN header is required"}), "missing_sign"
            )
        if not timestamp:
            raise AuthFailure(
                400, orjson.dumps({"message": "CB-ACCESS-TIMESTAMP header is required"}), "missing_timestamp"
            )
        if not passphrase:
            raise AuthFailure(
                400,
                orjson.dumps({"message": "CB-ACCESS-PASSPHRASE header is required"}),
                "missing_passphrase",
            )
        # Each header is ASCII on the wire; latin-1 bytes arrive as surrogates, which match nothing we hold.
        key = self._exchange.get(key_id) if key_id.isascii() else None
        if key is None:
            raise _exchange_401("Invalid API Key", "unknown_key")
        try:
            ts = parse_seconds(timestamp, "CB-ACCESS-TIMESTAMP")
        except InvalidValue:
            raise _exchange_401("invalid timestamp", "malformed") from None
        if not abs(self._clock.now() - ts) <= self.hmac_window_s:  # written so that NaN on either side fails
            raise _exchange_401("request timestamp expired", "expired")
        if not (passphrase.isascii() and hmac.compare_digest(passphrase, key.passphrase)):
            raise _exchange_401("Invalid Passphrase", "bad_passphrase")
        expected = _signer.hmac_sha256_base64(key.secret, timestamp.encode() + prehash_tail)
        if not (sign.isascii() and hmac.compare_digest(expected, sign)):
            raise _exchange_401("invalid signature", "bad_signature")
        return key

    # ---- access ----------------------------------------------------------------------------------------
    @staticmethod
    def check_access(key: CdpKey | ExchangeKey, scope: str | None, remote: str | None) -> None:
        if key.allowed_networks is not None:
            try:
                address = ipaddress.ip_address(remote or "")
            except ValueError:
                raise _permission_denied("IP address not allowed", "ip_not_allowed") from None
            if not any(address in network for network in key.allowed_networks):
                raise _permission_denied("IP address not allowed", "ip_not_allowed")
        if scope is not None and scope not in key.permissions:
            raise _permission_denied("Missing required scopes", "missing_scope")
