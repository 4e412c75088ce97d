"""The Rust signing core (built from rust_signer/ by `make build`). Use it through `engine.auth`."""

from collections.abc import Sequence
from typing import Final, Self, final

from typing_extensions import disjoint_base

__all__ = ["CdpKey", "ExchangeKey", "JwtVerifier", "__version__", "hmac_sha256_base64"]

__version__: Final[str]

@disjoint_base
class CdpKey:
    """A Coinbase CDP API key, parsed once and held only in Rust memory (wiped on drop).

    Raises `engine.errors.KeyFormatError` for any key that is not P-256 (SEC1/PKCS#8 PEM) or Ed25519
    (base64 of 64 or 32 bytes, or PKCS#8 PEM), and for a name or key that is not a string, not valid text
    (a lone surrogate), holds a non-ASCII or control character, or is longer than any key; the message says
    what was wrong, never any part of the input.
    """

    def __new__(cls, name: str, private_key: str) -> Self: ...
    @property
    def name(self) -> str: ...
    @property
    def algorithm(self) -> str:
        """ "ES256" or "EdDSA"."""
    def public_key_pem(self) -> str:
        """SubjectPublicKeyInfo PEM of the public key."""
    @property
    def clock_offset(self) -> float:
        """Seconds added to local time for `nbf`/`exp` (the exchange's clock minus ours)."""
    @clock_offset.setter
    def clock_offset(self, seconds: float) -> None: ...
    def rest_jwt(self, method: str, path: str, host: str = ...) -> str:
        """A REST token for `METHOD host path` (query string stripped); pooled if pre-minted, else minted now.

        `host` is a bare host (default "api.coinbase.com") or `host:port`; `path` starts with "/".
        """
    def ws_jwt(self) -> str:
        """A token without `uri`: WebSocket subscribe messages and the derivatives gateway's `public/auth`."""
    def premint(
        self, requests: Sequence[tuple[str, str]], *, depth: int = 16, max_age: float = 30.0, host: str = ...
    ) -> None:
        """Keep `depth` tokens ready per `(method, path)`, minted by a Rust thread, none over `max_age` s."""
    def pooled(self, method: str, path: str, host: str = ...) -> int:
        """How many fresh pre-minted tokens are ready for this request (0 if it is not pooled)."""
    def close(self) -> None:
        """Stop pre-minting; the key still mints on demand."""
    def __enter__(self) -> Self: ...
    def __exit__(self, *_exc_info: object) -> None: ...

@final
class ExchangeKey:
    """Coinbase Exchange HMAC credentials: key id, base64 secret, passphrase; the secret stays in Rust.

    Raises `engine.errors.KeyFormatError`, naming the field and never quoting it, for a value that is empty,
    not a string, not valid text, holds a non-ASCII or control character, or is longer than any credential.
    """

    def __new__(cls, key: str, secret: str, passphrase: str) -> Self: ...
    @property
    def key(self) -> str: ...
    @property
    def clock_offset(self) -> float: ...
    @clock_offset.setter
    def clock_offset(self, seconds: float) -> None: ...
    def headers(
        self, method: str, path: str, body: bytes = ..., timestamp: float | str | None = None
    ) -> dict[str, str]:
        """The `CB-ACCESS-KEY`, `-SIGN`, `-TIMESTAMP` and `-PASSPHRASE` headers for one request.

        `path` includes any query string, `body` is the exact bytes sent; `timestamp` defaults to the
        exchange's current second. A timestamp must be a finite, non-negative number of seconds (a `str` of
        ASCII digits with an optional fraction, as `CB-ACCESS-TIMESTAMP` is), the method an HTTP method and
        the path printable ASCII from "/" (no CR, LF, NUL or space); anything else raises
        `engine.errors.InvalidRequest`.
        """

@final
class JwtVerifier:
    """Verifies CDP JWTs against registered public keys; the exchange simulator's check on every request."""

    def __init__(self) -> None: ...
    def register(self, kid: str, public_key_pem: str) -> str:
        """Register a SubjectPublicKeyInfo PEM (P-256 or Ed25519) under `kid`; returns "ES256" or "EdDSA".

        Raises `engine.errors.KeyFormatError` for anything else.
        """
    def unregister(self, kid: str) -> None:
        """Forget `kid`; a kid that is not text (never registered) is a no-op."""
    def verify(self, token: str | bytes) -> tuple[str, bytes, bytes]:
        """`(kid, header_json, claims_json)` after checking structure, kid, alg and signature.

        A token that is not UTF-8 text (a lone surrogate, bytes that do not decode) is "malformed".

        Raises `engine.errors.TokenInvalid` with `reason` in {"malformed", "unknown_key", "alg_mismatch",
        "bad_signature"}. Claims (time window, uri, sub, nonce) are the caller's to check.
        """
    def verify_request(
        self,
        token: str | bytes,
        expected_uri: str | bytes | None,
        now: float,
        nbf_leeway_s: float,
        max_lifetime_s: float,
    ) -> tuple[str, str, float]:
        """`(kid, nonce, exp)` of a request token whose signature and claims hold at `now` (epoch seconds).

        `expected_uri` is "<METHOD> <host><path>" (None for a WebSocket token, which has no uri). Checks what
        `verify` checks, then sub == kid, iss, aud, nbf within `nbf_leeway_s` of now, exp, a lifetime of at
        most `max_lifetime_s`, the uri (`uri`, or `uris`), and a non-empty header nonce. Raises
        `engine.errors.TokenInvalid` with `reason` one of verify's or "sub_mismatch", "bad_issuer",
        "bad_audience", "not_yet_valid", "expired", "missing_uri", "uri_mismatch", "missing_nonce",
        "malformed" (nbf or exp not a number). The nonce replay check is the caller's.
        """

def hmac_sha256_base64(secret: bytes, message: bytes) -> str:
    """base64(HMAC-SHA256(secret, message))."""
