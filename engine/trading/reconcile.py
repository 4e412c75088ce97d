"""Crash reconciliation: make the journal agree with the exchange before trading resumes.

1. Every journalled order whose outcome is unknown (PENDING_NEW: the process died between writing the intent
   and learning the answer; UNKNOWN: the answer was lost) is looked up by `client_order_id`. Found: it takes
   the exchange's state. Not found: it never reached the exchange and becomes NOT_PLACED. It is never resent:
   an order decided before a crash may no longer be wanted.
2. Every order the journal last saw open is refreshed: it may have filled or been cancelled while we were
   down.
3. Open orders on the exchange that the journal does not know are reported (another process, a manual order,
   or a journal that was deleted): never silently adopted, never silently cancelled.
4. Fills of every order whose fills changed are fetched and journalled.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import TypeVar

from engine.errors import NotFound
from engine.trading.journal import JournalEntry, JournalFill, OrderJournal
from engine.trading.order_state import OrderState, advance
from engine.venues.base import Venue, VenueOrder

log = logging.getLogger(__name__)

_ZERO = Decimal(0)
_CONCURRENCY = 8
T = TypeVar("T")
R = TypeVar("R")


@dataclass
class ReconcileReport:
    resolved: dict[str, OrderState] = field(
        default_factory=dict
    )  # unknown outcome -> what it turned out to be
    refreshed: dict[str, OrderState] = field(default_factory=dict)  # live orders whose state moved while down
    unknown_open_orders: list[VenueOrder] = field(default_factory=list)  # on the exchange, not in the journal
    fills_fetched: int = 0

    @property
    def not_placed(self) -> list[str]:
        return [coid for coid, state in self.resolved.items() if state is OrderState.NOT_PLACED]


@dataclass(frozen=True, slots=True)
class ExchangeView:
    """What the exchange says about one journalled order."""

    state: OrderState
    order_id: str | None
    filled_size: Decimal | None
    filled_value: Decimal | None
    total_fees: Decimal | None

    @classmethod
    def of(cls, order: VenueOrder) -> ExchangeView:
        return cls(
            order.state,
            order.order_id or None,
            order.filled_size,
            order.filled_value,
            order.total_fees,
        )


async def _bounded(items: Iterable[T], work: Callable[[T], Awaitable[R]]) -> list[R]:
    gate = asyncio.Semaphore(_CONCURRENCY)

    async def one(item: T) -> R:
        async with gate:
            return await work(item)

    return list(await asyncio.gather(*(one(item) for item in items)))


def _record(journal: OrderJournal, entry: JournalEntry, view: ExchangeView) -> OrderState:
    state = advance(entry.state, view.state)
    journal.record_outcome(
        entry.client_order_id,
        state,
        order_id=view.order_id,
        filled_size=view.filled_size,
        filled_value=view.filled_value,
        total_fees=view.total_fees,
    )
    return state


async def reconcile(venue: Venue, journal: OrderJournal) -> ReconcileReport:
    report = ReconcileReport()
    filled_changed: list[str] = []  # order ids whose fills must be fetched

    async def lookup(entry: JournalEntry) -> tuple[JournalEntry, VenueOrder | None]:
        return entry, await venue.find_order(entry.client_order_id)

    for entry, order in await _bounded(journal.unresolved(), lookup):
        if order is None:
            journal.record_outcome(entry.client_order_id, OrderState.NOT_PLACED, failure_reason="NOT_FOUND")
            report.resolved[entry.client_order_id] = OrderState.NOT_PLACED
            continue
        view = ExchangeView.of(order)
        report.resolved[entry.client_order_id] = _record(journal, entry, view)
        if view.filled_size and view.order_id:
            filled_changed.append(view.order_id)

    async def refresh(entry: JournalEntry) -> tuple[JournalEntry, VenueOrder | None]:
        if entry.order_id is None:
            return entry, await venue.find_order(entry.client_order_id)
        try:
            return entry, await venue.order(entry.order_id)
        except NotFound:
            return entry, None

    for entry, order in await _bounded(journal.live(), refresh):
        if order is None:
            log.warning(
                "order %s was open in the journal and is unknown to the exchange", entry.client_order_id
            )
            continue
        view = ExchangeView.of(order)
        state = _record(journal, entry, view)
        if state is not entry.state:
            report.refreshed[entry.client_order_id] = state
        if view.order_id and (view.filled_size or _ZERO) != entry.filled_size:
            filled_changed.append(view.order_id)
    journal.flush()

    for order in await venue.open_orders():
        if journal.get(order.client_order_id) is None:
            report.unknown_open_orders.append(order)
    for order in report.unknown_open_orders:
        log.warning(
            "open order %s (client_order_id %s) on %s is not in the journal",
            order.order_id,
            order.client_order_id,
            order.product_id,
        )

    report.fills_fetched = await fetch_fills(venue, journal, filled_changed)
    return report


async def fetch_fills(venue: Venue, journal: OrderJournal, order_ids: list[str]) -> int:
    """Fetch and journal the fills of these orders; returns how many were new to the journal."""
    new = 0
    for start in range(0, len(order_ids), 50):
        fills = await venue.fills(order_ids[start : start + 50])
        known = await journal.known_fills(fill.entry_id for fill in fills)
        for fill in fills:
            if fill.entry_id in known:
                continue
            known.add(fill.entry_id)
            new += 1
            journal.record_fill(
                JournalFill(
                    fill.entry_id,
                    fill.trade_id,
                    fill.order_id,
                    fill.client_order_id,
                    fill.product_id,
                    fill.side,
                    fill.price,
                    fill.size,
                    fill.commission,
                    fill.trade_time,
                )
            )
    await journal.written()
    return new
