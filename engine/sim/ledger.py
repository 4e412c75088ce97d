"""The ground-truth ledger: every order the simulator accepted, in acceptance order.

Tests prove from it that nothing was lost or duplicated: one entry per accepted `client_order_id`, whatever
faults the transport suffered. Entries point at the live order, so `status` is always current.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from engine.sim.orders import Order


class Ledger:
    def __init__(self) -> None:
        self._orders: list[Order] = []
        self._by_client_order_id: dict[str, Order] = {}
        self._by_order_id: dict[str, Order] = {}

    def record(self, order: Order) -> None:
        self._orders.append(order)
        self._by_order_id[order.order_id] = order
        if order.client_order_id:
            self._by_client_order_id[order.client_order_id] = order

    def __len__(self) -> int:
        return len(self._orders)

    def __iter__(self) -> Iterator[Order]:
        return iter(self._orders)

    def by_client_order_id(self, client_order_id: str) -> Order | None:
        return self._by_client_order_id.get(client_order_id)

    def by_order_id(self, order_id: str) -> Order | None:
        return self._by_order_id.get(order_id)

    def entries(self) -> list[dict[str, Any]]:
        return [order.ledger_entry() for order in self._orders]
