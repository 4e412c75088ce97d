"""Structured JSON logs, one object a line, with a redaction filter as defence in depth.

Nothing in the engine is meant to log a secret. The filter is there for the day something does: it replaces
every secret registered with `register_secret` (the loaded private key, the webhook secret) and anything that
looks like key material (PEM blocks, bearer tokens, JWTs) before a record is formatted.
"""

from __future__ import annotations

import logging
import re
import sys
import threading
import time
from typing import IO, Any

import orjson

from engine.clock import SYSTEM_CLOCK, Clock

__all__ = [
    "JsonFormatter",
    "LogThrottle",
    "RedactingFilter",
    "configure_logging",
    "redact",
    "register_secret",
]

REDACTED = "[REDACTED]"
_PATTERNS = (
    re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----.*?(?:-----END [A-Z ]*PRIVATE KEY-----|$)", re.DOTALL),
    re.compile(r"(?i)\bbearer\s+[A-Za-z0-9._~+/=-]+"),
    re.compile(r"\beyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]*"),  # a JWT
)
_MIN_SECRET = 8  # shorter strings would redact ordinary words
_secrets: set[str] = set()
_secrets_lock = threading.Lock()
_STANDARD_ATTRS = frozenset(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {"message", "asctime"}


def register_secret(secret: str) -> None:
    """Make the redaction filter strip `secret` (and each of its lines, for a PEM) from every log record."""
    pieces = {secret.strip()}
    pieces.update(line.strip() for line in secret.replace("\\n", "\n").splitlines())
    with _secrets_lock:
        _secrets.update(p for p in pieces if len(p) >= _MIN_SECRET and not _is_armor(p))


def _is_armor(piece: str) -> bool:
    # a PEM's BEGIN/END line, however mangled, is public text; redacting it as a secret would cut the block
    # apart before the PEM pattern could take the key lines between
    return piece.startswith("-----") or "PRIVATE KEY" in piece


def redact(text: str) -> str:
    """`text` with registered secrets and key-shaped material replaced by `[REDACTED]`."""
    # the patterns go first: a PEM block is taken whole, before any registered piece can break its armor
    for pattern in _PATTERNS:
        text = pattern.sub(REDACTED, text)
    with _secrets_lock:
        known = sorted(_secrets, key=len, reverse=True)
    for secret in known:
        if secret in text:
            text = text.replace(secret, REDACTED)
    return text


def _redact_value(value: Any) -> Any:
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, int | float | bool) or value is None:
        return value
    return redact(repr(value))


class RedactingFilter(logging.Filter):
    """Renders the message, exception and `extra` fields of a record and redacts them in place."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = redact(record.getMessage())
        record.args = None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        record.exc_info = None  # the redacted exc_text stands in for it
        for key, value in list(record.__dict__.items()):
            if key not in _STANDARD_ATTRS:
                setattr(record, key, _redact_value(value))
        return True


class JsonFormatter(logging.Formatter):
    """`{"ts", "level", "logger", "msg", ...extra, "exc"?}` as one line of JSON."""

    def format(self, record: logging.LogRecord) -> str:
        document: dict[str, Any] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname,
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for key, value in record.__dict__.items():
            if key not in _STANDARD_ATTRS and not key.startswith("_"):
                document[key] = value
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            document["exc"] = record.exc_text
        return orjson.dumps(document, default=str).decode()


def configure_logging(
    level: str = "INFO", *, json: bool = True, stream: IO[str] | None = None
) -> logging.Handler:
    """Send the engine's logs to `stream` (stderr) through the redaction filter; returns the handler."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.addFilter(RedactingFilter())
    handler.setFormatter(
        JsonFormatter() if json else logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s")
    )
    root = logging.getLogger()
    root.addHandler(handler)
    root.setLevel(level)
    return handler


class LogThrottle:
    """One log line per `interval_s` at most for an event anyone can cause at will (a client hanging up
    mid-request, say): the first occurrence is logged at once, later ones are counted into the next line."""

    __slots__ = ("_clock", "_logger", "_next_at", "_suppressed", "interval_s", "level")

    def __init__(
        self,
        logger: logging.Logger,
        *,
        level: int = logging.INFO,
        interval_s: float = 60.0,
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        self._logger = logger
        self.level = level
        self.interval_s = interval_s
        self._clock = clock.monotonic
        self._next_at = float("-inf")
        self._suppressed = 0

    def log(self, message: str, *args: object) -> bool:
        """Log `message % args` unless a line went out less than `interval_s` ago; True if it did now."""
        now = self._clock()
        if now < self._next_at:
            self._suppressed += 1
            return False
        self._next_at = now + self.interval_s
        suppressed, self._suppressed = self._suppressed, 0
        if suppressed:
            self._logger.log(
                self.level, f"{message} (and {suppressed} more in the last %.0f s)", *args, self.interval_s
            )
        else:
            self._logger.log(self.level, message, *args)
        return True
