"""Turning a signal into an order, and what came of it.

An executor is any `async def execute(signal) -> SignalOutcome`: the trading core (risk checks first) or,
as `ClientExecutor` here, the REST `engine.Client` directly. The contract the stream consumer relies on:

- return a `SignalOutcome` when the signal's fate is settled (placed, rejected by the exchange, refused by
  risk): it is recorded and the signal is never executed again;
- raise when it is not (exchange unreachable, outcome unknown): the signal stays pending and is retried later,
  by this worker or another, and a retry first *looks the order up* (`recover`) before placing it.

Either way the order's `client_order_id` is derived from the signal id, so even a retry that does place
again is answered by Coinbase with the existing order.
"""

from __future__ import annotations

import enum
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import orjson

from engine.errors import OrderRejected
from engine.rest import Client
from engine.signals.model import Signal
from engine.venues.advanced.orders import OrderConfiguration, OrderRequest
from engine.venues.advanced.orders import Side as OrderSide

__all__ = [
    "ClientExecutor",
    "Executor",
    "OutcomeStatus",
    "Recoverer",
    "SignalOutcome",
    "order_configuration",
    "order_request",
]

log = logging.getLogger("engine.signals.execution")


class OutcomeStatus(enum.StrEnum):
    PLACED = "placed"  # the exchange holds the order
    REJECTED = "rejected"  # the exchange refused it (e.g. INSUFFICIENT_FUND)
    REFUSED = "refused"  # our risk controls refused it
    FAILED = "failed"  # gave up after the retry budget: an operator must look


@dataclass(frozen=True, slots=True)
class SignalOutcome:
    signal_id: str
    status: OutcomeStatus
    client_order_id: str
    order_id: str | None = None
    reason: str = ""

    def to_json(self) -> bytes:
        return orjson.dumps(
            {
                "signal_id": self.signal_id,
                "status": self.status.value,
                "client_order_id": self.client_order_id,
                "order_id": self.order_id,
                "reason": self.reason,
            }
        )

    @classmethod
    def from_json(cls, data: bytes | str) -> SignalOutcome:
        document: dict[str, Any] = orjson.loads(data)
        return cls(
            document["signal_id"],
            OutcomeStatus(document["status"]),
            document["client_order_id"],
            document.get("order_id"),
            document.get("reason") or "",
        )


Executor = Callable[[Signal], Awaitable[SignalOutcome]]
# Looks a signal's order up on the exchange: its outcome if the order exists, None if it was never placed.
Recoverer = Callable[[Signal], Awaitable[SignalOutcome | None]]


def order_configuration(signal: Signal) -> OrderConfiguration:
    """The typed Advanced Trade configuration a signal asks for, built when the signal was validated."""
    return signal.configuration


def order_request(signal: Signal, prefix: str = "eng") -> OrderRequest:
    """The create-order request for a signal, under its signal-derived `client_order_id`."""
    return OrderRequest(
        product_id=signal.product_id,
        side=OrderSide(signal.side.value),
        configuration=order_configuration(signal),
        client_order_id=signal.client_order_id(prefix),
    )


class ClientExecutor:
    """Executes signals straight through an `engine.Client` (no risk checks: use the trading core for those).

    `await executor(signal)` places the order; `await executor.recover(signal)` looks it up by its
    `client_order_id`. Exchange rejections are settled outcomes; anything else propagates, to be retried.
    """

    __slots__ = ("client", "prefix")

    def __init__(self, client: Client, *, prefix: str = "eng") -> None:
        self.client = client
        self.prefix = prefix

    async def __call__(self, signal: Signal) -> SignalOutcome:
        request = order_request(signal, self.prefix)
        try:
            result = await self.client.submit_order(request)
        except OrderRejected as exc:
            return SignalOutcome(
                signal.id,
                OutcomeStatus.REJECTED,
                request.client_order_id,
                reason=exc.failure_reason or str(exc),
            )
        return SignalOutcome(signal.id, OutcomeStatus.PLACED, request.client_order_id, result.order_id)

    async def recover(self, signal: Signal) -> SignalOutcome | None:
        client_order_id = signal.client_order_id(self.prefix)
        order = await self.client.find_order(client_order_id)
        if order is None:
            return None
        log.info("signal %s was already placed as order %s; not placing it again", signal.id, order.order_id)
        return SignalOutcome(signal.id, OutcomeStatus.PLACED, client_order_id, order.order_id)
