"""The engine's exception hierarchy.

Every error subclasses `EngineError`; those caused by bad input also subclass `ValueError` (as orjson's do),
so callers can catch either. No message ever carries secret material: key errors name the problem and the fix,
never any part of the input.
"""

from __future__ import annotations

import enum


class EngineError(Exception):
    """Base class of every error the engine raises."""


class KeyFormatError(EngineError, ValueError):
    """A private key or credential could not be loaded. The message says what was wrong and how to fix it."""


class ConfigError(EngineError, ValueError):
    """A configuration value is missing or invalid."""


class InvalidValue(EngineError, ValueError):
    """A value given to the engine is malformed or out of bounds. `field` names it, `reason` says why.

    The message never repeats the value itself: it may be huge, or hostile."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


class TokenInvalid(EngineError, ValueError):
    """A JWT failed verification (raised by the verifier the simulator uses). `reason` is a short code."""

    def __init__(self, message: str, reason: str = "invalid") -> None:
        super().__init__(message)
        self.reason = reason


class ExchangeError(EngineError):
    """The exchange answered with an error: `status` is the HTTP status, `code` Coinbase's code if any."""

    def __init__(self, message: str, *, status: int | None = None, code: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code


class AuthDiagnosis(enum.Enum):
    """Why a request was refused authentication, as best the client can tell."""

    CLOCK_SKEW = "clock_skew"
    EXPIRED_TOKEN = "expired_token"  # noqa: S105 - a diagnosis name, not a credential
    URI_MISMATCH = "uri_mismatch"
    MISSING_PERMISSION = "missing_permission"
    IP_NOT_ALLOWED = "ip_not_allowed"
    WRONG_KEY_TYPE = "wrong_key_type"
    BAD_SIGNATURE = "bad_signature"
    BAD_PASSPHRASE = "bad_passphrase"  # noqa: S105 - a diagnosis name, not a credential
    UNKNOWN = "unknown"


class AuthError(ExchangeError):
    """401/403 from the exchange, with a `diagnosis` and a human `hint` on how to fix it."""

    def __init__(
        self,
        message: str,
        *,
        diagnosis: AuthDiagnosis = AuthDiagnosis.UNKNOWN,
        hint: str = "",
        status: int | None = None,
        code: str | None = None,
    ) -> None:
        super().__init__(message, status=status, code=code)
        self.diagnosis = diagnosis
        self.hint = hint


class RateLimited(ExchangeError):
    """429 from the exchange (or the local limiter refused). `retry_after` in seconds, when known."""

    def __init__(
        self,
        message: str,
        *,
        retry_after: float | None = None,
        status: int | None = 429,
        code: str | None = None,
    ) -> None:
        super().__init__(message, status=status, code=code)
        self.retry_after = retry_after


class OrderRejected(ExchangeError):
    """The exchange refused an order. `failure_reason` is Coinbase's reason (e.g. INSUFFICIENT_FUND)."""

    def __init__(
        self,
        message: str,
        *,
        failure_reason: str | None = None,
        client_order_id: str | None = None,
        status: int | None = None,
        code: str | None = None,
    ) -> None:
        super().__init__(message, status=status, code=code)
        self.failure_reason = failure_reason
        self.client_order_id = client_order_id


class OrderEntryDisabled(OrderRejected):
    """The product takes no orders of this kind now: it is offline, trading-disabled or cancel-only, or a
    market order met a limit-only or post-only product (Coinbase's ORDER_ENTRY_DISABLED or
    UNTRADABLE_PRODUCT). Retrying will not help until the product's status changes."""


class NotFound(ExchangeError):
    """404: the order, product or account does not exist."""


class ExchangeUnavailable(ExchangeError):
    """5xx or the connection failed, after the retry budget was spent."""


class RequestTimeout(EngineError, TimeoutError):
    """A request did not complete within its timeout, after the retry budget was spent."""


class OutcomeUnknown(EngineError):
    """An order request's outcome could not be established; the order may or may not exist.

    Raised only after the client has tried to confirm by looking the order up by `client_order_id`.
    """

    def __init__(self, message: str, *, client_order_id: str) -> None:
        super().__init__(message)
        self.client_order_id = client_order_id


class InvalidRequest(EngineError, ValueError):
    """A request the engine was asked to sign is malformed: a method or path with CR, LF, NUL or spaces
    (which could split one request into two), or a timestamp that is not a number of seconds."""


# -- the derivatives gateway (JSON-RPC 2.0) --------------------------------------------------------------


class GatewayError(ExchangeError):
    """The derivatives gateway answered a JSON-RPC `error`: `rpc_code`, its `data`, and the `method` called.

    `code` (the base class's) is the same number as text, `status` the HTTP status when it came over HTTP.
    """

    def __init__(
        self,
        message: str,
        *,
        rpc_code: int,
        method: str = "",
        data: object = None,
        status: int | None = None,
    ) -> None:
        super().__init__(message, status=status, code=str(rpc_code))
        self.rpc_code = rpc_code
        self.method = method
        self.data = data


class GatewayRateLimited(GatewayError, RateLimited):
    """10028 `too_many_requests`: the key's credits are spent and the gateway ends the session.

    `retry_after` is the gateway's cool-down hint in seconds, when it sent one.
    """

    def __init__(
        self,
        message: str,
        *,
        rpc_code: int,
        method: str = "",
        data: object = None,
        status: int | None = None,
        retry_after: float | None = None,
    ) -> None:
        GatewayError.__init__(self, message, rpc_code=rpc_code, method=method, data=data, status=status)
        self.retry_after = retry_after


class InsufficientFunds(GatewayError, OrderRejected):
    """10009 `not_enough_funds`: the order needs more margin than the account has."""

    def __init__(
        self, message: str, *, rpc_code: int, method: str = "", data: object = None, status: int | None = None
    ) -> None:
        GatewayError.__init__(self, message, rpc_code=rpc_code, method=method, data=data, status=status)
        self.failure_reason = "not_enough_funds"
        self.client_order_id = None


class MatchingQueueFull(GatewayError):
    """10047 `matching_engine_queue_full`: the request did not run; safe to send again after a backoff."""

    retryable = True


class InvalidParams(GatewayError, ValueError):
    """-32602 or 11030: the gateway refused the request's parameters (the message names them)."""


class MethodNotAllowed(GatewayError):
    """-32601: this host does not serve the method (market data is on the streams host, RPC on the other)."""


class GatewayAuthError(GatewayError, AuthError):
    """13004 `invalid_credentials` or 13009 `unauthorized`, with a `diagnosis` and a `hint` on the fix."""

    def __init__(
        self,
        message: str,
        *,
        rpc_code: int,
        method: str = "",
        data: object = None,
        status: int | None = None,
        diagnosis: AuthDiagnosis = AuthDiagnosis.UNKNOWN,
        hint: str = "",
    ) -> None:
        GatewayError.__init__(self, message, rpc_code=rpc_code, method=method, data=data, status=status)
        self.diagnosis = diagnosis
        self.hint = hint


class SubscriptionRejected(GatewayError):
    """The gateway subscribed only some channels: `rejected` names the others, `accepted` what it took."""

    def __init__(self, message: str, *, rejected: list[str], accepted: list[str], method: str = "") -> None:
        super().__init__(message, rpc_code=0, method=method)
        self.rejected = rejected
        self.accepted = accepted


class RequestLost(OutcomeUnknown):
    """The socket dropped with this request in flight: it may or may not have run, and is never sent again.

    For an order, look it up by `label` (`client_order_id` holds the same text) before deciding to resend.
    """

    def __init__(self, message: str, *, method: str, label: str | None = None) -> None:
        super().__init__(message, client_order_id=label or "")
        self.method = method
        self.label = label
