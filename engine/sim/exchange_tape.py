"""What the Coinbase Exchange API remembers beyond the matching core: per-product sequence numbers, candles
built from the simulator's trades, and each account's ledger of balance movements.

Fed by the matching engine's trade and order listeners, so every trade and fill, whichever API placed the
order, lands here once, in the order it happened.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from decimal import Decimal
from itertools import count
from typing import TYPE_CHECKING

from engine.sim.book import ZERO

if TYPE_CHECKING:
    from engine.sim.accounts import Accounts
    from engine.sim.market import Market, Trade
    from engine.sim.orders import Fill, Order

GRANULARITIES = (60, 300, 900, 3600, 21600, 86400)  # what Coinbase Exchange's /candles accepts
_MINUTES_KEPT = 2 * 24 * 60
_LEDGER_KEPT = 100_000


@dataclass(slots=True)
class Candle:
    start: int
    low: Decimal
    high: Decimal
    open: Decimal
    close: Decimal
    volume: Decimal

    def add(self, price: Decimal, size: Decimal) -> None:
        self.low = min(self.low, price)
        self.high = max(self.high, price)
        self.close = price
        self.volume += size


@dataclass(frozen=True, slots=True)
class LedgerEntry:
    """One movement of one account: `kind` is Coinbase's `type` (match, fee, conversion)."""

    entry_id: int
    account_id: str
    currency: str
    created_at: float
    amount: Decimal
    balance: Decimal
    kind: str
    order_id: str = ""
    trade_id: str = ""
    product_id: str = ""
    conversion_id: str = ""


class ExchangeTape:
    def __init__(self, markets: dict[str, Market], accounts: Accounts) -> None:
        self._markets = markets
        self._accounts = accounts
        self._sequence = dict.fromkeys(markets, 0)
        self._minutes: dict[str, deque[Candle]] = {pid: deque(maxlen=_MINUTES_KEPT) for pid in markets}
        self.ledger: deque[LedgerEntry] = deque(maxlen=_LEDGER_KEPT)
        self._entry_ids = count(1)
        # what each account's balance was after the last recorded entry: a fill's entries are its difference
        self._balances = {a.currency: a.balance for a in accounts}

    # ---- sequence numbers -----------------------------------------------------------------------------
    def sequence(self, product_id: str) -> int:
        return self._sequence[product_id]

    def next_sequence(self, product_id: str) -> int:
        self._sequence[product_id] += 1
        return self._sequence[product_id]

    # ---- candles --------------------------------------------------------------------------------------
    def on_trade(self, trade: Trade) -> None:
        minutes = self._minutes[trade.product_id]
        start = int(trade.time) // 60 * 60
        if minutes and minutes[-1].start == start:
            minutes[-1].add(trade.price, trade.size)
        else:
            minutes.append(Candle(start, trade.price, trade.price, trade.price, trade.price, trade.size))

    def candles(self, product_id: str, granularity: int, start: float, end: float) -> list[Candle]:
        """Newest first, as Coinbase returns them; buckets with no trade are absent, as on Coinbase."""
        buckets: dict[int, Candle] = {}
        for minute in self._minutes[product_id]:
            if not start <= minute.start <= end:
                continue
            key = minute.start // granularity * granularity
            candle = buckets.get(key)
            if candle is None:
                buckets[key] = Candle(key, minute.low, minute.high, minute.open, minute.close, minute.volume)
            else:
                candle.low = min(candle.low, minute.low)
                candle.high = max(candle.high, minute.high)
                candle.close = minute.close
                candle.volume += minute.volume
        return [buckets[k] for k in sorted(buckets, reverse=True)]

    # ---- the accounts' ledger -------------------------------------------------------------------------
    def on_order(self, order: Order, fill: Fill | None) -> None:
        if fill is None:
            return
        spec = self._markets[order.product_id].spec
        fee_currency = "USD" if spec.is_future else spec.quote_currency
        for currency in (spec.base_currency, spec.quote_currency):
            if not currency:
                continue
            fee = fill.commission if currency == fee_currency else ZERO
            self._record(
                currency, fill.trade_time, fee, "match", order.order_id, fill.trade_id, order.product_id
            )

    def record_conversion(self, currency: str, now: float, conversion_id: str) -> None:
        self._record(currency, now, ZERO, "conversion", conversion_id=conversion_id)

    def _record(
        self,
        currency: str,
        now: float,
        fee: Decimal,
        kind: str,
        order_id: str = "",
        trade_id: str = "",
        product_id: str = "",
        conversion_id: str = "",
    ) -> None:
        account = self._accounts.get(currency)
        if account is None:
            return
        before = self._balances.get(currency, ZERO)
        moved = account.balance - before
        if moved == ZERO and fee == ZERO:
            return
        # the fee was taken in the same movement: show it as its own entry, after the match
        match_amount = moved + fee
        running = before
        for amount, entry_kind in ((match_amount, kind), (-fee, "fee")):
            if amount == ZERO:
                continue
            running += amount
            self.ledger.append(
                LedgerEntry(
                    next(self._entry_ids), account.uuid, currency, now, amount, running, entry_kind,
                    order_id, trade_id, product_id, conversion_id,
                )
            )  # fmt: skip
        self._balances[currency] = account.balance

    def entries(self, account_id: str) -> list[LedgerEntry]:
        """Newest first."""
        return [e for e in reversed(self.ledger) if e.account_id == account_id]
