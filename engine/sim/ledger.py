"""The ground-truth ledger: every order the simulator accepted, in acceptance order.

Tests prove from it that nothing was lost or duplicated: one entry per accepted `client_order_id`, whatever
faults the transport suffered. Entries point at the live order, so `status` is always current.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from engine.sim.orders import Order


class Accepted(Protocol):
    """An accepted order that is not (yet) the matching core's: a derivatives trigger order waiting."""

    def ledger_entry(self) -> dict[str, Any]: ...


class Ledger:
    def __init__(self) -> None:
        self._orders: list[Order] = []
        self._by_client_order_id: dict[str, Order] = {}
        self._by_order_id: dict[str, Order] = {}
        self._accepted: list[Order | Accepted] = []  # everything, core or not, in acceptance order

    def record(self, order: Order) -> None:
        self._orders.append(order)
        self._accepted.append(order)
        self._by_order_id[order.order_id] = order
        if order.client_order_id:
            self._by_client_order_id[order.client_order_id] = order

    def record_accepted(self, order: Accepted) -> None:
        self._accepted.append(order)

    def __len__(self) -> int:
        return len(self._accepted)

    def __iter__(self) -> Iterator[Order]:
        return iter(self._orders)

    def by_client_order_id(self, client_order_id: str) -> Order | None:
        return self._by_client_order_id.get(client_order_id)

    def by_order_id(self, order_id: str) -> Order | None:
        return self._by_order_id.get(order_id)

    def entries(self, start: int = 0, stop: int | None = None) -> list[dict[str, Any]]:
        """The entries from `start` up to `stop` (acceptance order): a long run's ledger is read in pages."""
        return [order.ledger_entry() for order in self._accepted[start:stop]]
