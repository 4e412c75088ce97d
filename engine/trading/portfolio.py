"""Positions and balances, kept current between the exchange's snapshots by the engine's own activity.

Balances: the last accounts snapshot (Coinbase's `available_balance` already excludes holds) minus what the
engine reserved for orders placed since (so two orders sent back to back cannot spend the same money), plus
what fills paid in since. A refresh replaces the snapshot; reservations of orders still in flight are kept,
which errs on the side of refusing an order rather than overspending.

Positions: signed size per product from the orders' cumulative fills, with an average cost, so realized and
unrealized profit and loss (for the daily loss limit) follow from them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from engine.venues.base import Position as VenuePosition

from engine.clock import SYSTEM_CLOCK, Clock

_ZERO = Decimal(0)


@dataclass(slots=True)
class Position:
    product_id: str
    size: Decimal = _ZERO  # signed: negative is short
    average_price: Decimal = _ZERO  # of the open size

    def unrealized(self, mark: Decimal) -> Decimal:
        return self.size * (mark - self.average_price)


@dataclass(frozen=True, slots=True)
class Reservation:
    currency: str
    amount: Decimal


class Portfolio:
    def __init__(self, *, clock: Clock = SYSTEM_CLOCK) -> None:
        self._clock = clock  # its wall time: the trading day of the daily loss limit is the UTC date
        self.currencies: dict[str, tuple[str, str] | None] = {}  # product -> (base, quote); None if margined
        self._snapshot: dict[str, Decimal] = {}  # available per currency at the last refresh
        self._holds: dict[str, Decimal] = {}
        self._delta: dict[str, Decimal] = {}  # paid in by fills since the last refresh
        self._reserved: dict[str, Reservation] = {}  # by client_order_id
        self._reserved_total: dict[str, Decimal] = {}
        self.positions: dict[str, Position] = {}
        self._day = self._today()
        self.realized_today = _ZERO
        self.fees_today = _ZERO
        self.snapshots = 0

    def _today(self) -> str:
        return datetime.fromtimestamp(self._clock.now(), UTC).date().isoformat()

    def _roll_day(self) -> None:
        today = self._today()
        if today != self._day:
            self._day = today
            self.realized_today = _ZERO
            self.fees_today = _ZERO

    # -- balances --------------------------------------------------------------------------------------

    def set_products(self, currencies: dict[str, tuple[str, str] | None]) -> None:
        self.currencies.update(currencies)

    def load_balances(
        self,
        available: dict[str, Decimal],
        holds: dict[str, Decimal] | None = None,
        *,
        in_flight: Iterable[str] = (),
    ) -> None:
        """An accounts snapshot from the exchange replaces what the engine believed.

        The snapshot's holds cover every order the exchange had acknowledged, so only the reservations of
        `in_flight` orders (not acknowledged when the snapshot was requested) are kept.
        """
        keep = set(in_flight)
        for client_order_id in [c for c in self._reserved if c not in keep]:
            self.release(client_order_id)
        self._snapshot = dict(available)
        self._holds = dict(holds or {})
        self._delta.clear()
        self.snapshots += 1

    def available(self, currency: str) -> Decimal | None:
        snapshot = self._snapshot.get(currency)
        if snapshot is None:
            return None
        return snapshot + self._delta.get(currency, _ZERO) - self._reserved_total.get(currency, _ZERO)

    def hold(self, currency: str) -> Decimal:
        return self._holds.get(currency, _ZERO) + self._reserved_total.get(currency, _ZERO)

    def balances(self) -> dict[str, Decimal]:
        """Available per currency, as the risk rules see it."""
        return {
            currency: value for currency in self._snapshot if (value := self.available(currency)) is not None
        }

    def reserve(self, client_order_id: str, currency: str, amount: Decimal) -> None:
        self._reserved[client_order_id] = Reservation(currency, amount)
        self._reserved_total[currency] = self._reserved_total.get(currency, _ZERO) + amount

    def release(self, client_order_id: str, amount: Decimal | None = None) -> None:
        """Give back `amount` of an order's reservation (all of it when None)."""
        reservation = self._reserved.get(client_order_id)
        if reservation is None:
            return
        give_back = reservation.amount if amount is None else min(amount, reservation.amount)
        left = reservation.amount - give_back
        if left > _ZERO:
            self._reserved[client_order_id] = Reservation(reservation.currency, left)
        else:
            del self._reserved[client_order_id]
        self._reserved_total[reservation.currency] -= give_back

    def _consume(self, client_order_id: str, currency: str, amount: Decimal) -> None:
        """A fill spends from the order's hold. A hold the engine reserved since the snapshot becomes a debit;
        one already held at the snapshot was never in `available`, so spending it changes nothing there."""
        reservation = self._reserved.get(client_order_id)
        if reservation is None:
            return
        used = min(amount, reservation.amount)
        self.release(client_order_id, used)
        self._credit(currency, -used)

    def _credit(self, currency: str, amount: Decimal) -> None:
        self._delta[currency] = self._delta.get(currency, _ZERO) + amount

    # -- fills -----------------------------------------------------------------------------------------

    def apply_fill(
        self,
        client_order_id: str,
        product_id: str,
        side: str,
        size: Decimal,
        value: Decimal,
        fees: Decimal,
    ) -> None:
        """An order filled `size` more for `value` (quote, before fees) and `fees` more."""
        if size <= _ZERO:
            return
        self._roll_day()
        currencies = self.currencies.get(product_id)
        buy = side == "BUY"
        if currencies is not None:
            base, quote = currencies
            if buy:  # paid out of the order's hold; base arrives
                self._consume(client_order_id, quote, value + fees)
                self._credit(base, size)
            else:  # base leaves out of the hold; quote arrives, net of fees
                self._consume(client_order_id, base, size)
                self._credit(quote, value - fees)
        self._move_position(product_id, size if buy else -size, value / size)
        self.fees_today += fees

    def apply_fees(self, fees: Decimal) -> None:
        """Fees an order paid that its fills did not carry (a venue that reports them later)."""
        if fees <= _ZERO:
            return
        self._roll_day()
        self.fees_today += fees

    def _move_position(self, product_id: str, change: Decimal, price: Decimal) -> None:
        position = self.positions.get(product_id)
        if position is None:
            position = self.positions[product_id] = Position(product_id)
        current = position.size
        if current == _ZERO or (current > _ZERO) == (change > _ZERO):  # opening or adding
            new_size = current + change
            position.average_price = (current * position.average_price + change * price) / new_size
            position.size = new_size
            return
        closing = min(abs(change), abs(current))
        direction = Decimal(1) if current > _ZERO else Decimal(-1)
        self.realized_today += closing * (price - position.average_price) * direction
        new_size = current + change
        if new_size == _ZERO:
            position.average_price = _ZERO
        elif (new_size > _ZERO) != (current > _ZERO):  # flipped: the rest opens at this price
            position.average_price = price
        position.size = new_size

    def position(self, product_id: str) -> Decimal:
        position = self.positions.get(product_id)
        return _ZERO if position is None else position.size

    def daily_pnl(self, marks: Callable[[str], Decimal | None]) -> Decimal:
        """Realized today, net of today's fees, plus unrealized at the given marks (mid prices)."""
        self._roll_day()
        unrealized = _ZERO
        for position in self.positions.values():
            if position.size != _ZERO:
                mark = marks(position.product_id)
                if mark is not None:
                    unrealized += position.unrealized(mark)
        return self.realized_today - self.fees_today + unrealized

    def load_positions(self, positions: Iterable[VenuePosition]) -> None:
        """The venue's positions replace what fills built (a margined account: its positions are the truth).
        A product the venue does not list is flat; an average price it does not give is kept."""
        listed = {p.product_id: p for p in positions}
        for product_id, held in self.positions.items():
            if product_id not in listed:
                held.size, held.average_price = _ZERO, _ZERO
        for product_id, venue_position in listed.items():
            position = self.positions.get(product_id)
            if position is None:
                position = self.positions[product_id] = Position(product_id)
            position.size = venue_position.size
            if venue_position.average_price is not None:
                position.average_price = venue_position.average_price

    def restore(self, fills: Iterable[tuple[str, str, Decimal, Decimal]]) -> None:
        """Rebuild positions from (product_id, side, size, value) of past fills, oldest first.

        A position close is journalled with side `CLOSE` (its side is the venue's to choose): it moved the
        position toward flat, so it bought back a short and sold a long."""
        for product_id, side, size, value in fills:
            if size <= _ZERO:
                continue
            if side == "CLOSE":
                held = self.positions.get(product_id)
                side = "BUY" if held is not None and held.size < _ZERO else "SELL"
            self._move_position(product_id, size if side == "BUY" else -size, value / size)
        self.realized_today = _ZERO  # history is not today's trading
