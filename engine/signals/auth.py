"""Webhook authentication: HMAC-SHA256 over the timestamp and the exact body, with a shared secret.

The recipe a signal platform implements (this is the whole contract):

    timestamp = str(int(time.time()))                       # Unix seconds: digits, and a point if need be
    message   = timestamp.encode() + b"." + body            # body: the exact bytes of the POST body
    signature = hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()
    POST /signals
    Content-Type: application/json
    X-Signal-Timestamp: <timestamp>
    X-Signal-Signature: <signature>                         # lower-case hex; a "sha256=" prefix is allowed

The timestamp must be within 30 seconds of the engine's clock, in either direction, so a captured request
cannot be replayed later; inside the window a replay is refused by its signal id (`engine.signals.replay`).
Signatures are compared in constant time. Several secrets may be active at once, so a secret can be rotated
without dropping signals: add the new one, move the platform over, remove the old one.

The secrets never appear in a log, an error or a repr.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Sequence

from engine.clock import SYSTEM_CLOCK, Clock
from engine.errors import EngineError

__all__ = [
    "SIGNATURE_HEADER",
    "TIMESTAMP_HEADER",
    "SignalAuthError",
    "SignalAuthenticator",
]

TIMESTAMP_HEADER = "X-Signal-Timestamp"
SIGNATURE_HEADER = "X-Signal-Signature"
_MIN_SECRET_BYTES = 16
_UNIX_SECONDS = re.compile(r"[0-9]{1,12}(?:\.[0-9]{1,9})?", re.ASCII)


class SignalAuthError(EngineError):
    """A signal failed authentication. `reason`: missing, malformed, stale, future, signature."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


class SignalAuthenticator:
    """Verifies (and, for senders and tests, makes) webhook signatures."""

    __slots__ = ("_clock", "_keys", "window_s")

    def __init__(
        self,
        secrets: Sequence[str | bytes],
        *,
        window_s: float = 30.0,
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        if not secrets:
            raise ValueError("at least one webhook secret is required")
        keys = tuple(s.encode() if isinstance(s, str) else bytes(s) for s in secrets)
        if any(len(k) < _MIN_SECRET_BYTES for k in keys):
            raise ValueError(f"a webhook secret must be at least {_MIN_SECRET_BYTES} bytes")
        if window_s <= 0:
            raise ValueError("the timestamp window must be positive")
        self._keys = keys
        self.window_s = window_s
        self._clock = clock.now  # the sender's timestamp is Unix seconds

    def __repr__(self) -> str:
        return f"SignalAuthenticator(secrets=<{len(self._keys)} hidden>, window_s={self.window_s})"

    def sign(self, body: bytes, timestamp: str | None = None) -> tuple[str, str]:
        """(timestamp, signature) headers for `body`, signed with the first secret."""
        if timestamp is None:
            timestamp = str(int(self._clock()))
        return timestamp, _digest(self._keys[0], timestamp, body)

    def verify(self, timestamp: str | None, signature: str | None, body: bytes) -> None:
        """Raise `SignalAuthError` unless the headers authenticate `body` now."""
        if not timestamp or not signature:
            missing = TIMESTAMP_HEADER if not timestamp else SIGNATURE_HEADER
            raise SignalAuthError("missing", f"missing header {missing}")
        # Digits and one optional point, nothing else: float() alone would also take "nan", "inf", "1e9",
        # "1_700_000_000", surrounding whitespace and other scripts' digits, and NaN is never out of window.
        if not _UNIX_SECONDS.fullmatch(timestamp):
            raise SignalAuthError("malformed", f"{TIMESTAMP_HEADER} is not a Unix time in seconds")
        sent_at = float(timestamp)
        skew = self._clock() - sent_at
        if skew > self.window_s:
            raise SignalAuthError("stale", f"{TIMESTAMP_HEADER} is older than {self.window_s:g} s")
        if skew < -self.window_s:
            raise SignalAuthError("future", f"{TIMESTAMP_HEADER} is more than {self.window_s:g} s ahead")
        given = signature.strip().lower().removeprefix("sha256=").encode("utf-8", "replace")
        # Compare against every active secret, always all of them: timing reveals neither which nor whether.
        matched = False
        for key in self._keys:
            matched |= hmac.compare_digest(_digest(key, timestamp, body).encode(), given)
        if not matched:
            raise SignalAuthError("signature", f"{SIGNATURE_HEADER} does not match the body")


def _digest(key: bytes, timestamp: str, body: bytes) -> str:
    mac = hmac.new(key, timestamp.encode(), hashlib.sha256)
    mac.update(b".")
    mac.update(body)
    return mac.hexdigest()
