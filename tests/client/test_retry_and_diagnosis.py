"""Backoff bounds, budget exhaustion, error-body parsing and 401/403 diagnosis (pure functions)."""

from __future__ import annotations

import random

import pytest

from engine.errors import AuthDiagnosis
from engine.net.diagnose import AuthContext, diagnose
from engine.net.pipeline import error_detail
from engine.net.retry import RetryBudget, RetryPolicy
from engine.net.transport import reset_after_s
from engine.venues.advanced.types import KeyPermissions


def test_full_jitter_stays_inside_the_exponential_ceiling() -> None:
    policy = RetryPolicy(base_delay_s=0.1, max_delay_s=0.5)
    rng = random.Random(7)
    for retry_number, ceiling in [(1, 0.1), (2, 0.2), (3, 0.4), (4, 0.5), (9, 0.5)]:
        delays = [policy.backoff(retry_number, rng) for _ in range(200)]
        assert all(0.0 <= d <= ceiling for d in delays)
        assert max(delays) > ceiling * 0.5, "jitter spans the range, not a fixed delay"


def test_budget_stops_after_max_attempts_and_honours_a_floor() -> None:
    budget = RetryBudget(RetryPolicy(max_attempts=3, base_delay_s=0.01, budget_s=100), random.Random(1))
    budget.attempts = 1
    assert budget.next_delay(floor_s=0.5) == 0.5
    budget.attempts = 3
    assert budget.next_delay() is None


def test_budget_stops_when_the_wait_would_cross_the_deadline() -> None:
    budget = RetryBudget(RetryPolicy(max_attempts=10, budget_s=1.0))
    budget.attempts = 1
    assert budget.next_delay(floor_s=5.0) is None


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (b'{"error":"INVALID_ARGUMENT","message":"bad size"}', ("INVALID_ARGUMENT", "bad size")),
        (b'{"error":"PERMISSION_DENIED","error_details":"Missing required scopes"}',
         ("PERMISSION_DENIED", "Missing required scopes")),
        (b"Unauthorized\n", ("", "Unauthorized")),
        (b"<html><body><h1>429 Too Many Requests</h1></body></html>", ("", "HTML error page")),
        (b'{"message":"request timestamp expired"}', ("", "request timestamp expired")),
    ],
)  # fmt: skip
def test_error_bodies_in_every_shape(body: bytes, expected: tuple[str, str]) -> None:
    assert error_detail(body) == expected


def test_reset_header_as_delta_or_epoch() -> None:
    assert reset_after_s({"Retry-After": "2"}) == 2.0
    assert reset_after_s({"x-ratelimit-reset": "1.5"}) == 1.5
    import time

    epoch = time.time() + 3
    assert 2.0 < (reset_after_s({"x-ratelimit-reset": f"{epoch:.3f}"}) or 0) <= 3.01
    assert reset_after_s({}) is None


def _ctx(**kw: object) -> AuthContext:
    base: dict[str, object] = {
        "method": "POST",
        "path": "/api/v3/brokerage/orders",
        "status": 401,
        "detail": "Unauthorized",
        "key_kind": "cdp",
        "host": "api.coinbase.com",
    }
    base.update(kw)
    return AuthContext(**base)  # type: ignore[arg-type]


def _perms(view: bool, trade: bool) -> KeyPermissions:
    return KeyPermissions(view, trade, False, "p", "DEFAULT", {})


@pytest.mark.parametrize(
    ("context", "diagnosis"),
    [
        (_ctx(detail="request timestamp expired", key_kind="exchange", host="api.exchange.coinbase.com"),
         AuthDiagnosis.CLOCK_SKEW),
        (_ctx(clock_moved_s=-42.0), AuthDiagnosis.CLOCK_SKEW),
        (_ctx(detail="token expired"), AuthDiagnosis.EXPIRED_TOKEN),
        (_ctx(detail="uri mismatch"), AuthDiagnosis.URI_MISMATCH),
        (_ctx(status=403, detail="ip address not allowed"), AuthDiagnosis.IP_NOT_ALLOWED),
        (_ctx(status=403, detail="Missing required scopes"), AuthDiagnosis.MISSING_PERMISSION),
        (_ctx(permissions=_perms(True, False)), AuthDiagnosis.MISSING_PERMISSION),
        (_ctx(permissions=_perms(True, True)), AuthDiagnosis.URI_MISMATCH),
        (_ctx(key_kind="exchange"), AuthDiagnosis.WRONG_KEY_TYPE),
        (_ctx(host="api.exchange.coinbase.com"), AuthDiagnosis.WRONG_KEY_TYPE),
        (_ctx(probe_refused=True), AuthDiagnosis.BAD_SIGNATURE),
        (_ctx(), AuthDiagnosis.UNKNOWN),
    ],
)  # fmt: skip
def test_diagnosis(context: AuthContext, diagnosis: AuthDiagnosis) -> None:
    error = diagnose(context)
    assert error.diagnosis is diagnosis
    assert error.hint
    assert error.status == context.status
    assert diagnosis.value in str(error)
    assert context.path in str(error)


def test_missing_permission_hint_names_the_permission_and_what_the_key_has() -> None:
    error = diagnose(_ctx(permissions=_perms(True, False)))
    assert "'trade'" in error.hint
    assert "can_trade=False" in error.hint
