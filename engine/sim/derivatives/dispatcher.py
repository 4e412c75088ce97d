"""The JSON-RPC dispatcher: one table of methods, and the checks every call passes in the gateway's order:
the method exists and is served on this transport (-32601), the caller is authenticated for a private
method (13009) and its key holds the scope (13021), the key has credits left (10028, which ends the
session), then the handler.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from engine.sim.auth import TRADE, VIEW, CdpKey
from engine.sim.derivatives.credits import MATCHING, NON_MATCHING, CreditLimiter
from engine.sim.derivatives.rpc import (
    FORBIDDEN,
    METHOD_NOT_FOUND,
    TOO_MANY_REQUESTS,
    UNAUTHORIZED,
    Params,
    Request,
    RpcError,
)

if TYPE_CHECKING:
    from engine.sim.derivatives.connections import Connection

HTTP = "http"
TRADING = "trading"
STREAMS = "streams"
ALL = frozenset({HTTP, TRADING})
WS_ONLY = frozenset({TRADING})


@dataclass(slots=True)
class Caller:
    """Who is calling and over what: the transport, the authenticated key (if any), the socket (if any)."""

    transport: str
    remote: str
    key: CdpKey | None = None
    connection: Connection | None = None


Handler = Callable[[Params, Caller], Any]


@dataclass(frozen=True, slots=True)
class Method:
    name: str
    handler: Handler
    scope: str | None  # None: public
    bucket: str = NON_MATCHING
    transports: frozenset[str] = ALL
    subscribe: bool = False


class SessionEnded(RpcError):
    """Credits exhausted: the reply is sent, then the session is closed."""


@dataclass
class MethodTable:
    credits: CreditLimiter
    methods: dict[str, Method] = field(default_factory=dict)
    calls: dict[str, int] = field(default_factory=dict)

    def add(
        self,
        name: str,
        handler: Handler,
        scope: str | None = None,
        *,
        matching: bool = False,
        transports: frozenset[str] = ALL,
        subscribe: bool = False,
    ) -> None:
        bucket = MATCHING if matching else NON_MATCHING
        self.methods[name] = Method(name, handler, scope, bucket, transports, subscribe)

    def public(self, name: str, handler: Handler, transports: frozenset[str] = ALL) -> None:
        self.add(name, handler, None, transports=transports)

    def read(self, name: str, handler: Handler, transports: frozenset[str] = ALL) -> None:
        self.add(name, handler, VIEW, transports=transports)

    def trade(self, name: str, handler: Handler, *, matching: bool = True) -> None:
        self.add(name, handler, TRADE, matching=matching)

    def dispatch(self, request: Request, caller: Caller) -> Any:
        method = self.methods.get(request.method)
        if method is None or caller.transport not in method.transports:
            raise RpcError(METHOD_NOT_FOUND, {"method": request.method[:128]})
        if method.scope is not None:
            key = caller.key
            if key is None:
                raise RpcError(UNAUTHORIZED, {"reason": "authorization required for private methods"})
            if method.scope not in key.permissions and not (
                method.scope == VIEW and TRADE in key.permissions
            ):
                raise RpcError(FORBIDDEN, {"reason": f"the key lacks the {method.scope} permission"})
        who = caller.key.name if caller.key is not None else f"ip:{caller.remote}"
        wait_ms = self.credits.admit(who, method.bucket, method.subscribe)
        if wait_ms is not None:
            raise SessionEnded(TOO_MANY_REQUESTS, {"retry_after_ms": int(wait_ms), "bucket": method.bucket})
        self.calls[request.method] = self.calls.get(request.method, 0) + 1
        return method.handler(Params(request.params), caller)
