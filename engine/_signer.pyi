"""The Rust signing core (built from rust_signer/ by `make build`)."""

from typing import Final, final

__all__ = ["JwtVerifier", "__version__", "hmac_sha256_base64"]

__version__: Final[str]

@final
class JwtVerifier:
    """Verifies CDP JWTs against registered public keys; the exchange simulator's check on every request."""

    def __init__(self) -> None: ...
    def register(self, kid: str, public_key_pem: str) -> str:
        """Register a SubjectPublicKeyInfo PEM (P-256 or Ed25519) under `kid`; returns "ES256" or "EdDSA".

        Raises `engine.errors.KeyFormatError` for anything else.
        """
    def unregister(self, kid: str) -> None: ...
    def verify(self, token: str) -> tuple[str, bytes, bytes]:
        """`(kid, header_json, claims_json)` after checking structure, kid, alg and signature.

        Raises `engine.errors.TokenInvalid` with `reason` in {"malformed", "unknown_key", "alg_mismatch",
        "bad_signature"}. Claims (time window, uri, sub, nonce) are the caller's to check.
        """

def hmac_sha256_base64(secret: bytes, message: bytes) -> str:
    """base64(HMAC-SHA256(secret, message))."""
