"""JSON logs: one object a line, `extra` fields kept, key material redacted even when something logs it."""

from __future__ import annotations

import io
import json
import logging
import secrets
from collections.abc import Iterator

import pytest

from engine.clock import ManualClock
from engine.ops.logs import REDACTED, LogThrottle, configure_logging, redact, register_secret
from tests.support.leaks import observe


@pytest.fixture
def log_stream() -> Iterator[io.StringIO]:
    stream = io.StringIO()
    handler = configure_logging("DEBUG", stream=stream)
    try:
        yield stream
    finally:
        logging.getLogger().removeHandler(handler)


def _lines(stream: io.StringIO) -> list[dict[str, object]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def test_records_are_json_lines_with_extra_fields(log_stream: io.StringIO) -> None:
    logging.getLogger("engine.test").info("order %s acknowledged", "eng-s-1", extra={"product_id": "BTC-USD"})
    (line,) = _lines(log_stream)
    assert line["msg"] == "order eng-s-1 acknowledged"
    assert line["level"] == "INFO"
    assert line["logger"] == "engine.test"
    assert line["product_id"] == "BTC-USD"
    assert str(line["ts"]).endswith("Z")
    observe(log_stream.getvalue(), "json log")


def test_redaction_is_defence_in_depth() -> None:
    # a throwaway secret made here (not one of the suite's keys: the suite's own log capture sees the raw
    # record before this handler redacts it, and would rightly call that a leak)
    secret = secrets.token_urlsafe(32)
    register_secret(secret)
    pem = "-----BEGIN EC PRIVATE KEY-----\nMHcCAQEEIB\n-----END EC PRIVATE KEY-----"
    jwt = "eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJvcmdhbml6YXRpb25zIn0.c2lnbmF0dXJl"
    text = redact(f"key={secret} pem={pem} auth=Bearer abc.def.ghi token={jwt}")
    assert secret not in text
    assert "MHcCAQEEIB" not in text
    assert "abc.def" not in text
    assert jwt not in text
    assert text.count(REDACTED) == 4


def test_a_registered_piece_of_armor_does_not_break_the_pem_pattern() -> None:
    # a mangled key (a hostile-input table registers many) can contribute a line such as "-BEGIN EC PRIVATE
    # KEY-----": replaced first, it cut the armor off a later PEM and left that PEM's key line in the text
    for piece in ("-BEGIN EC PRIVATE KEY-----", "BEGIN EC PRIVATE KEY", "EC PRIVATE KEY-----\nMHcC"):
        register_secret(piece)
    pem = "-----BEGIN EC PRIVATE KEY-----\nMHcCAQEEIBkeyline\n-----END EC PRIVATE KEY-----"
    text = redact(f"pem={pem} after")
    assert "MHcCAQEEIBkeyline" not in text
    assert text == f"pem={REDACTED} after"
    # a secret that merely starts with a dash (token_urlsafe makes one in 64) is still a secret
    dashed = "-" + secrets.token_urlsafe(16)
    register_secret(dashed)
    assert redact(f"key={dashed}") == f"key={REDACTED}"


def test_the_handler_redacts_messages_extras_and_tracebacks() -> None:
    stream = io.StringIO()
    handler = configure_logging("DEBUG", stream=stream)
    secret = secrets.token_hex(24)
    register_secret(secret)
    logger = logging.getLogger("engine.redaction")
    # keep the suite's capturing handler from seeing this deliberately leaky record
    logger.propagate = False
    logger.addHandler(handler)
    try:
        logger.warning("oops %s", secret, extra={"detail": f"x{secret}x"})
        try:
            raise ValueError(f"bad key {secret}")
        except ValueError:
            logger.exception("failed")
    finally:
        logger.removeHandler(handler)
        logger.propagate = True
        logging.getLogger().removeHandler(handler)
    output = stream.getvalue()
    assert secret not in output
    first, second = _lines(stream)
    assert first["msg"] == f"oops {REDACTED}"
    assert first["detail"] == f"x{REDACTED}x"
    assert "ValueError: bad key [REDACTED]" in str(second["exc"])


def test_a_throttle_logs_the_first_occurrence_then_one_line_per_interval_with_the_count() -> None:
    records: list[str] = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record.getMessage())

    logger = logging.getLogger("engine.test.throttle")
    handler = Collect()
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    clock = ManualClock(monotonic=100.0)
    throttle = LogThrottle(logger, interval_s=60.0, clock=clock)
    try:
        assert throttle.log("client %s hung up", "a")
        for n in range(500):  # a flood within the minute: counted, not logged
            clock.advance(0.1)
            assert not throttle.log("client %s hung up", f"b{n}")
        clock.advance(161.0 - clock.monotonic())
        assert throttle.log("client %s hung up", "c")
        clock.advance(500.0 - clock.monotonic())
        assert throttle.log("client %s hung up", "d")  # nothing suppressed since: no count
    finally:
        logger.removeHandler(handler)
    assert records == [
        "client a hung up",
        "client c hung up (and 500 more in the last 60 s)",
        "client d hung up",
    ]
