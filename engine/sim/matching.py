"""The matching engine: validates, holds funds, fills against the book, rests, triggers and expires orders.

Taker flow happens inside the request (walking a few book levels). Everything that depends on the market
moving (resting orders crossed, stops triggered, GTD expiry) happens in `on_tick()`, on the timer. Resting
orders are indexed in heaps by price, stop price and end time: O(log n) per order, stale entries skipped
lazily when an order is no longer open.
"""

from __future__ import annotations

import heapq
import random
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from engine.sim.accounts import Accounts, InsufficientFunds
from engine.sim.attached import parse_attached
from engine.sim.book import ZERO
from engine.sim.clock import SimClock
from engine.sim.config import FeeSchedule, ProductSpec
from engine.sim.fees import FeeTiers
from engine.sim.futures import FuturesPositions
from engine.sim.ledger import Ledger
from engine.sim.market import Market, Trade
from engine.sim.orders import (
    BRACKET,
    CANCELLED,
    EXPIRED,
    FILLED,
    FOK,
    GTC,
    GTD,
    IOC,
    LIMIT,
    MARKET,
    OPEN,
    STOP_DOWN,
    STOP_LIMIT,
    STOP_UP,
    TWAP,
    Fill,
    Order,
    OrderRefused,
    OrderSpec,
)
from engine.sim.scaled import ladder
from engine.sim.trading_status import NO_ENTRY, ONLINE, admit
from engine.sim.twap import TwapSchedule

OrderListener = Callable[[Order, Fill | None], None]
TradeListener = Callable[[Trade], None]

# what uuid.UUID(int=..., version=4) does to the bits: RFC 4122 variant, then version 4
_UUID4_CLEAR = ~((0xC000 << 48) | (0xF000 << 64))
_UUID4_SET = (0x8000 << 48) | (4 << 76)

# Coinbase: a triggered bracket places a stop-limit 5% beyond the stop trigger price (below for a sell)
# https://help.coinbase.com/en/coinbase/trading-and-funding/advanced-trade/order-types
BRACKET_STOP_LIMIT = Decimal("0.05")

_INSUFFICIENT = ("INSUFFICIENT_FUND", "PREVIEW_INSUFFICIENT_FUND", "Insufficient balance in source account")


@dataclass(slots=True)
class Preview:
    """What an order would cost, without placing it (POST /orders/preview)."""

    spec: OrderSpec
    base_size: Decimal
    quote_size: Decimal
    commission_total: Decimal
    order_total: Decimal
    best_bid: Decimal
    best_ask: Decimal
    margin: Decimal
    slippage: Decimal = ZERO  # how far the average fill is from the best price, as a fraction of it


class _RestingIndex:
    """Per-product heaps: limit prices (bids max-first, asks min-first) and stop triggers."""

    __slots__ = ("asks", "bids", "stop_down", "stop_up")

    def __init__(self) -> None:
        self.bids: list[tuple[Decimal, int, Order]] = []  # (-price, seq, order)
        self.asks: list[tuple[Decimal, int, Order]] = []
        self.stop_up: list[tuple[Decimal, int, Order]] = []  # trigger when last >= stop
        self.stop_down: list[tuple[Decimal, int, Order]] = []  # (-stop): trigger when last <= stop


class MatchingEngine:
    def __init__(
        self,
        markets: dict[str, Market],
        accounts: Accounts,
        positions: FuturesPositions,
        ledger: Ledger,
        fees: FeeSchedule,
        clock: SimClock,
        rng: random.Random,
        user_id: str,
        statuses: dict[str, str] | None = None,
        wallets: Callable[[str], Accounts] | None = None,
    ) -> None:
        self.markets = markets
        # product_id -> trading status (engine.sim.trading_status), shared with whoever sets it
        self.statuses = statuses if statuses is not None else {}
        self.accounts = accounts
        # portfolio uuid -> the accounts its orders hold and settle in (one set of accounts when not given)
        self._wallets = wallets or (lambda _portfolio_uuid: accounts)
        self.positions = positions
        self.ledger = ledger
        self.fees = FeeTiers(fees, clock.now)  # the rates follow the 30-day volume
        self.clock = clock
        self._rng = rng
        self.user_id = user_id
        self.orders: dict[str, Order] = {}
        self.fills: list[Fill] = []
        self.order_listeners: list[OrderListener] = []
        self.trade_listeners: list[TradeListener] = []
        self._index = {product_id: _RestingIndex() for product_id in markets}
        self._expiries: list[tuple[float, int, Order]] = []
        self._seq = 0
        self.total_volume = ZERO
        self.total_fees = ZERO
        self.order_events = 0
        self._laddering: set[str] = set()
        self._twaps: dict[str, tuple[Order, TwapSchedule]] = {}
        # product_id -> open futures brackets: reduce-only, so trimmed when the position they close shrinks
        self._reduce_only: dict[str, dict[str, Order]] = {}

    # ---- identifiers --------------------------------------------------------------------------------
    def new_id(self) -> str:
        """A version-4 UUID from the seeded generator: `str(uuid.UUID(int=bits, version=4))`, without
        building the UUID object (it is on every order's path)."""
        bits = self._rng.getrandbits(128) & _UUID4_CLEAR | _UUID4_SET
        digits = f"{bits:032x}"
        return f"{digits[:8]}-{digits[8:12]}-{digits[12:16]}-{digits[16:20]}-{digits[20:]}"

    def _next_seq(self) -> int:
        self._seq += 1
        return self._seq

    # ---- queries ------------------------------------------------------------------------------------
    def specs(self) -> dict[str, ProductSpec]:
        return {product_id: market.spec for product_id, market in self.markets.items()}

    def marks(self) -> dict[str, Decimal]:
        return {product_id: market.mid for product_id, market in self.markets.items()}

    def futures_buying_power(self) -> Decimal:
        usd = self.accounts.available("USD")
        return usd - self.positions.initial_margin(self.specs(), self.marks())

    # ---- placing --------------------------------------------------------------------------------------
    def _market(self, product_id: str) -> Market:
        market = self.markets.get(product_id)
        if market is None:
            raise OrderRefused("UNKNOWN_FAILURE_REASON", "PREVIEW_INVALID_PRODUCT_ID", "product not found")
        return market

    def _validate(self, market: Market, side: str, spec: OrderSpec) -> None:
        ps = market.spec
        if spec.quote_size is not None and spec.order_type not in (MARKET, "TWAP") and spec.limit_price:
            # a limit order sized in quote: Coinbase buys the base the quote pays for at the limit price,
            # rounded down to the product's size increment, so it never spends more than asked
            spec.base_size = market.round_size(spec.quote_size / spec.limit_price)
        if side not in ("BUY", "SELL"):
            raise OrderRefused("INVALID_ARGUMENT", "PREVIEW_INVALID_SIDE", "side must be BUY or SELL")
        status = self.statuses.get(ps.product_id, ONLINE)
        if status != ONLINE:
            takes = spec.order_type in (MARKET, TWAP) or (
                spec.order_type != STOP_LIMIT
                and spec.limit_price is not None
                and self._marketable(market, side, spec.limit_price)
            )
            admit(ps.product_id, status, spec.order_type, takes)
        if spec.base_size is not None:
            if spec.base_size < ps.base_min_size:
                raise OrderRefused(
                    "UNKNOWN_FAILURE_REASON", "PREVIEW_INVALID_BASE_SIZE_TOO_SMALL", "size too small"
                )
            if spec.base_size > ps.base_max_size:
                raise OrderRefused(
                    "UNKNOWN_FAILURE_REASON", "PREVIEW_INVALID_BASE_SIZE_TOO_LARGE", "size too large"
                )
            if spec.order_type != "TWAP" and spec.base_size % ps.base_increment != ZERO:
                raise OrderRefused(
                    "INVALID_SIZE_PRECISION", "PREVIEW_INVALID_SIZE_PRECISION", "too many decimals"
                )
        for price in (spec.limit_price, spec.stop_price):
            if (
                price is not None
                and spec.config_key != "scaled_limit_gtc"
                and price % ps.price_increment != ZERO
            ):
                raise OrderRefused(
                    "INVALID_PRICE_PRECISION", "PREVIEW_INVALID_PRICE_PRECISION", "price increment"
                )
        if spec.quote_size is not None and spec.order_type == MARKET and spec.quote_size < ps.quote_min_size:
            raise OrderRefused(
                "UNKNOWN_FAILURE_REASON", "PREVIEW_INVALID_QUOTE_SIZE_TOO_SMALL", "quote too small"
            )
        if (
            spec.post_only
            and spec.limit_price is not None
            and self._marketable(market, side, spec.limit_price)
        ):
            raise OrderRefused(
                "INVALID_LIMIT_PRICE_POST_ONLY",
                "PREVIEW_INVALID_LIMIT_PRICE_POST_ONLY",
                "limit price would cross the book for a post-only order",
            )
        if spec.order_type == STOP_LIMIT and spec.stop_price is not None:
            last = market.last_price
            if spec.stop_direction == STOP_DOWN and spec.stop_price >= last:
                raise OrderRefused("UNKNOWN_FAILURE_REASON", "PREVIEW_STOP_PRICE_ABOVE_LAST_TRADE_PRICE")
            if spec.stop_direction == STOP_UP and spec.stop_price <= last:
                raise OrderRefused("UNKNOWN_FAILURE_REASON", "PREVIEW_STOP_PRICE_BELOW_LAST_TRADE_PRICE")
        if spec.order_type == BRACKET and ps.is_future:
            size = spec.base_size or ZERO
            if self.positions.reducing_contracts(ps.product_id, side, size) < size:
                raise OrderRefused(
                    "INVALID_ARGUMENT",
                    "PREVIEW_INVALID_ARGUMENT",
                    "a futures bracket order is reduce-only: it may only close an open position",
                )
        if spec.order_type == TWAP:  # a schedule that cannot run is refused before anything is held
            TwapSchedule.parse(spec.config, self.clock.now(), spec.end_time or self.clock.now())
        if spec.end_time is not None and spec.end_time <= self.clock.now():
            raise OrderRefused("INVALID_ARGUMENT", "PREVIEW_INVALID_END_TIME", "end_time is in the past")

    def _wallet_of(self, order: Order) -> Accounts:
        return self.wallet(self.markets[order.product_id].spec, order.portfolio_uuid)

    @staticmethod
    def _entry_price(market: Market, side: str, spec: OrderSpec) -> Decimal:
        """Where an order trades: its limit, or the touch for a market order."""
        if spec.limit_price is not None:
            return spec.limit_price
        return market.best_ask() if side == "BUY" else market.best_bid()

    @staticmethod
    def _marketable(market: Market, side: str, price: Decimal) -> bool:
        return price >= market.best_ask() if side == "BUY" else price <= market.best_bid()

    def _fee(self, spec: ProductSpec, price: Decimal, size: Decimal, rate: Decimal) -> Decimal:
        if spec.is_future:
            return size * spec.fee_per_contract
        return price * size * rate

    def _requirement(self, market: Market, side: str, spec: OrderSpec) -> tuple[str, Decimal, Preview]:
        """(currency, amount) the order needs available, and the preview figures. Dry-runs the book walk."""
        ps = market.spec
        taker = self.fees.taker_fee_rate
        best_bid, best_ask = market.best_bid(), market.best_ask()
        if spec.order_type == MARKET:
            budget = spec.quote_size / (1 + taker) if spec.quote_size is not None and side == "BUY" else None
            base = spec.base_size
            if spec.quote_size is not None and side == "SELL":  # sell a quote amount: size it at the bid
                base = market.round_size(spec.quote_size / best_bid)
            fills = market.take(side, None, base, budget, dry_run=True)
            size = sum((s for _, s in fills), ZERO)
            value = sum((p * s for p, s in fills), ZERO)
            best = best_ask if side == "BUY" else best_bid
            price = value / size if size > ZERO else best
            slippage = (abs(price - best) / best).quantize(Decimal("1e-6")) if best > ZERO else ZERO
        else:
            slippage = ZERO
            size = spec.base_size or ZERO
            price = spec.limit_price or ZERO
            value = size * price
        fee = self._fee(ps, price, size, taker)
        if ps.is_future:
            opening = size - self.positions.reducing_contracts(ps.product_id, side, size)
            margin = FuturesPositions.notional(opening, ps, price) * ps.initial_margin_rate
            need = margin + fee
            preview = Preview(
                spec, size, value * ps.contract_size, fee, need, best_bid, best_ask, margin, slippage
            )
            return "USD", need, preview
        if side == "BUY":
            need = (
                spec.quote_size if spec.order_type == MARKET and spec.quote_size is not None else value + fee
            )
            preview = Preview(spec, size, value, fee, value + fee, best_bid, best_ask, ZERO, slippage)
            return ps.quote_currency, need, preview
        preview = Preview(spec, size, value, fee, value - fee, best_bid, best_ask, ZERO, slippage)
        return ps.base_currency, size, preview

    def wallet(self, spec: ProductSpec, portfolio_uuid: str) -> Accounts:
        """Where an order holds and settles: its portfolio's accounts; futures trade on the default
        portfolio's USD (the futures account's collateral)."""
        return self.accounts if spec.is_future else self._wallets(portfolio_uuid)

    def preview(
        self,
        product_id: str,
        side: str,
        spec: OrderSpec,
        attached: Any = None,
        portfolio_uuid: str = "",
    ) -> Preview:
        market = self._market(product_id)
        self._validate(market, side, spec)
        if attached is not None:
            parse_attached(
                attached, spec, side, self._entry_price(market, side, spec), market.spec.price_increment
            )
        currency, need, preview = self._requirement(market, side, spec)
        if self._available_for(market.spec, currency, portfolio_uuid) < need:
            raise OrderRefused(*_INSUFFICIENT)
        return preview

    def _available_for(self, spec: ProductSpec, currency: str, portfolio_uuid: str) -> Decimal:
        if spec.is_future:
            return self.futures_buying_power()
        return self.wallet(spec, portfolio_uuid).available(currency)

    def submit(
        self,
        client_order_id: str,
        product_id: str,
        side: str,
        spec: OrderSpec,
        *,
        key_name: str = "",
        source: str = "advanced",
        leverage: str = "",
        margin_type: str = "",
        portfolio_uuid: str = "",
        attached: Any = None,
    ) -> tuple[Order, bool]:
        """Place an order. Returns (order, created); a known client_order_id returns the existing order.

        Raises OrderRefused when Coinbase would refuse it (nothing is recorded then).
        """
        if client_order_id:
            existing = self.ledger.by_client_order_id(client_order_id)
            if existing is not None:
                return existing, False
        market = self._market(product_id)
        self._validate(market, side, spec)
        bracket = None
        if attached is not None:  # `attached_order_configuration`: checked now, placed when this fills
            bracket = parse_attached(
                attached, spec, side, self._entry_price(market, side, spec), market.spec.price_increment
            )
        legs = ladder(spec.config, market.spec) if spec.config_key == "scaled_limit_gtc" else None
        if legs is not None:  # the children hold the funds: check all of them before placing any
            taker = 1 + self.fees.taker_fee_rate
            buy = side == "BUY"
            currency = market.spec.quote_currency if buy else market.spec.base_currency
            need = sum((size * price * taker if buy else size for size, price in legs), ZERO)
        else:
            currency, need, _ = self._requirement(market, side, spec)
        portfolio_uuid = portfolio_uuid or self.accounts.portfolio_uuid
        if self._available_for(market.spec, currency, portfolio_uuid) < need:
            raise OrderRefused(*_INSUFFICIENT)
        now = self.clock.now()
        order = Order(
            order_id=self.new_id(),
            client_order_id=client_order_id,
            product_id=product_id,
            side=side,
            spec=spec,
            created_time=now,
            product_type=market.spec.product_type,
            status=OPEN,
            key_name=key_name,
            source=source,
            user_id=self.user_id,
            portfolio_uuid=portfolio_uuid,
            leverage=leverage,
            margin_type=margin_type,
            attached=bracket,
        )
        if spec.order_type != MARKET and legs is None:  # market orders execute now: nothing to hold
            self._wallet_of(order).place_hold(currency, need)
            order.hold_currency, order.hold_amount = currency, need
        self.orders[order.order_id] = order
        self.ledger.record(order)
        self._notify(order, None)
        if legs is not None:
            self._place_ladder(order, legs)
        else:
            self._execute(market, order)
        return order, True

    def _place_ladder(self, parent: Order, legs: list[tuple[Decimal, Decimal]]) -> None:
        self._laddering.add(parent.order_id)  # not done while its children are still being placed
        for size, price in legs:
            config: dict[str, object] = {"base_size": format(size, "f"), "limit_price": format(price, "f")}
            if parent.spec.post_only:
                config["post_only"] = True
            child_spec = OrderSpec(
                "limit_limit_gtc",
                config,
                LIMIT,
                GTC,
                base_size=size,
                limit_price=price,
                post_only=parent.spec.post_only,
            )
            child = Order(
                order_id=self.new_id(),
                client_order_id="",
                product_id=parent.product_id,
                side=parent.side,
                spec=child_spec,
                created_time=parent.created_time,
                product_type=parent.product_type,
                status=OPEN,
                key_name=parent.key_name,
                source=parent.source,
                user_id=self.user_id,
                portfolio_uuid=parent.portfolio_uuid,
                originating_order_id=parent.order_id,
            )
            market = self.markets[parent.product_id]
            currency, need, _ = self._requirement(market, child.side, child_spec)
            self._wallet_of(child).place_hold(currency, need)
            child.hold_currency, child.hold_amount = currency, need
            parent.children.append(child.order_id)
            self.orders[child.order_id] = child
            self._notify(child, None)
            self._execute(market, child)
        self._laddering.discard(parent.order_id)
        self._follow_children(parent)

    def _follow_children(self, parent: Order) -> None:
        """A scaled order reports the sum of its children, and is done when they all are."""
        children = [self.orders[c] for c in parent.children]
        parent.filled_size = sum((c.filled_size for c in children), ZERO)
        parent.filled_value = sum((c.filled_value for c in children), ZERO)
        parent.total_fees = sum((c.total_fees for c in children), ZERO)
        parent.number_of_fills = sum((c.number_of_fills for c in children), 0)
        parent.last_fill_time = max((c.last_fill_time or 0.0 for c in children), default=None) or None
        if parent.is_open and parent.order_id not in self._laddering and all(not c.is_open for c in children):
            self._finish(parent, FILLED if all(c.status == FILLED for c in children) else CANCELLED)

    def _execute(self, market: Market, order: Order) -> None:
        spec = order.spec
        if spec.order_type == MARKET and spec.time_in_force == FOK and not self._fillable(market, order):
            self._finish(order, CANCELLED, "Fill or kill: not enough liquidity")
            return
        if spec.order_type == MARKET:
            self._take(market, order, None)
            self._finish(order, FILLED if self._complete(order) else CANCELLED)
            return
        if spec.order_type == STOP_LIMIT and not order.triggered:
            self._arm_stop(order, spec.stop_direction or STOP_UP)
            self._arm_expiry(order)
            return
        if spec.order_type == TWAP:  # slices on the timer, never rests whole
            schedule = TwapSchedule.parse(
                spec.config, order.created_time, spec.end_time or order.created_time
            )
            self._twaps[order.order_id] = (order, schedule)
            self._arm_expiry(order)
            self._slice(market, order, schedule)
            return
        if spec.time_in_force == FOK:
            wanted = order.leaves
            fillable = sum(
                (s for _, s in market.take(order.side, spec.limit_price, wanted, None, True)), ZERO
            )
            if fillable < wanted:
                self._finish(order, CANCELLED, "Fill or kill: not enough liquidity")
                return
        if not spec.post_only and self._crosses(market, order.side, spec.limit_price):
            self._take(market, order, spec.limit_price)
        if self._complete(order):
            self._finish(order, FILLED)
        elif spec.time_in_force in (IOC, FOK):
            self._finish(order, CANCELLED)
        else:
            self._rest(order)
            if spec.order_type == BRACKET and not order.triggered:
                self._arm_stop(order, STOP_DOWN if order.side == "SELL" else STOP_UP)
                if market.spec.is_future:
                    self._reduce_only.setdefault(order.product_id, {})[order.order_id] = order
            self._arm_expiry(order)

    def _fillable(self, market: Market, order: Order) -> bool:
        """Whether the book holds enough for a market order in full now (fill or kill, all or nothing)."""
        spec = order.spec
        if spec.base_size is not None:
            base = spec.base_size
            got = sum((s for _, s in market.take(order.side, None, base, None, True)), ZERO)
            return got >= base
        quote = spec.quote_size or ZERO
        if order.side == "SELL":
            base = market.round_size(quote / market.best_bid())
            got = sum((s for _, s in market.take(order.side, None, base, None, True)), ZERO)
            return got >= base
        budget = quote / (1 + self.fees.taker_fee_rate)
        fills = market.take(order.side, None, None, budget, True)
        spent = sum((p * s for p, s in fills), ZERO)
        # filled when what is left of the budget buys less than one size increment at the last level taken
        return bool(fills) and budget - spent < fills[-1][0] * market.spec.base_increment

    @staticmethod
    def _crosses(market: Market, side: str, limit: Decimal | None) -> bool:
        """Whether an order limited at `limit` would take anything from the book now: one look at the best
        opposite level, so a resting limit order never walks the book."""
        if limit is None:
            return True
        if side == "BUY":
            best_ask = market.book.best_ask()
            return best_ask is not None and best_ask <= limit
        best_bid = market.book.best_bid()
        return best_bid is not None and best_bid >= limit

    def _complete(self, order: Order) -> bool:
        if order.spec.base_size is not None:
            return order.leaves <= ZERO
        return order.filled_size > ZERO  # quote-sized market order: filled if the book had anything

    def _take(self, market: Market, order: Order, limit: Decimal | None) -> None:
        spec = order.spec
        budget = None
        base = order.leaves if spec.base_size is not None else None
        if spec.order_type == MARKET and spec.quote_size is not None:
            if order.side == "BUY":
                budget = spec.quote_size / (1 + self.fees.taker_fee_rate)
            else:
                base = market.round_size(spec.quote_size / market.best_bid())
        for price, size in market.take(order.side, limit, base, budget):
            self._fill(market, order, price, size, "TAKER")

    def _rest(self, order: Order, seq: int | None = None) -> None:
        """Queue the order at its price; `seq` keeps an order's place in time priority when it goes back."""
        index = self._index[order.product_id]
        price = order.resting_price or ZERO
        entry_seq = seq if seq is not None else self._next_seq()
        if order.side == "BUY":
            heapq.heappush(index.bids, (-price, entry_seq, order))
        else:
            heapq.heappush(index.asks, (price, entry_seq, order))

    def _arm_stop(self, order: Order, direction: str) -> None:
        index = self._index[order.product_id]
        stop = order.spec.stop_price or ZERO
        if direction == STOP_UP:
            heapq.heappush(index.stop_up, (stop, self._next_seq(), order))
        else:
            heapq.heappush(index.stop_down, (-stop, self._next_seq(), order))

    def _arm_expiry(self, order: Order) -> None:
        if order.spec.time_in_force == GTD and order.spec.end_time is not None:
            heapq.heappush(self._expiries, (order.spec.end_time, self._next_seq(), order))

    # ---- fills and completion -------------------------------------------------------------------------
    def _fill(self, market: Market, order: Order, price: Decimal, size: Decimal, liquidity: str) -> None:
        ps = market.spec
        rate = self.fees.maker_fee_rate if liquidity == "MAKER" else self.fees.taker_fee_rate
        fee = self._fee(ps, price, size, rate)
        value = price * size
        leaves_before = order.leaves
        wallet = self._wallet_of(order)
        if order.hold_amount > ZERO:
            share = size / leaves_before if leaves_before > ZERO else Decimal(1)
            release = order.hold_amount if share >= 1 else order.hold_amount * share
            wallet.release_hold(order.hold_currency, release)
            order.hold_amount -= release
        if ps.is_future:
            realized = self.positions.apply_fill(ps, order.side, size, price)
            wallet.credit("USD", realized - fee)
        elif order.side == "BUY":
            wallet.credit(ps.base_currency, size)
            wallet.credit(ps.quote_currency, -(value + fee))
        else:
            wallet.credit(ps.base_currency, -size)
            wallet.credit(ps.quote_currency, value - fee)
        now = self.clock.now()
        order.filled_size += size
        order.filled_value += value * ps.contract_size if ps.is_future else value
        order.total_fees += fee
        order.number_of_fills += 1
        order.last_fill_time = now
        self.total_volume += value
        self.fees.record(value * ps.contract_size if ps.is_future else value, now)
        self.total_fees += fee
        trade = market.record_trade(price, size, order.side, now)
        fill = Fill(
            entry_id=self.new_id(),
            trade_id=self.new_id(),
            order_id=order.order_id,
            product_id=order.product_id,
            trade_time=now,
            price=price,
            size=size,
            commission=fee,
            side=order.side,
            liquidity_indicator=liquidity,
            size_in_quote=order.spec.base_size is None,
            user_id=self.user_id,
            retail_portfolio_id=order.portfolio_uuid,
        )
        self.fills.append(fill)
        for listener in self.trade_listeners:
            listener(trade)
        self._notify(order, fill)
        if ps.is_future:
            self._trim_reduce_only(market)

    def _trim_reduce_only(self, market: Market) -> None:
        """A futures bracket only ever closes: when the position shrinks under it, it shrinks too, and it is
        cancelled once there is nothing left for it to close."""
        brackets = self._reduce_only.get(market.spec.product_id)
        if not brackets:
            return
        for order in list(brackets.values()):
            if not order.is_open:
                del brackets[order.order_id]
                continue
            leaves = order.leaves
            room = self.positions.reducing_contracts(order.product_id, order.side, leaves)
            if room >= leaves:
                continue
            if room <= ZERO:
                del brackets[order.order_id]
                self._finish(order, CANCELLED, "Reduce only: no position left to close")
                continue
            if order.hold_amount > ZERO:
                release = order.hold_amount * (leaves - room) / leaves
                self._wallet_of(order).release_hold(order.hold_currency, release)
                order.hold_amount -= release
            spec = order.spec
            spec.base_size = order.filled_size + room
            spec.config = {**spec.config, "base_size": format(spec.base_size, "f")}
            self._notify(order, None)

    def _finish(self, order: Order, status: str, message: str = "") -> None:
        if order.hold_amount > ZERO:
            self._wallet_of(order).release_hold(order.hold_currency, order.hold_amount)
            order.hold_amount = ZERO
        order.status = status
        order.cancel_message = message
        order.done_time = self.clock.now()
        self._notify(order, None)
        if order.attached is not None:
            self._place_attached(order)

    def _place_attached(self, parent: Order) -> None:
        """The parent is done: its attached bracket, sized to what it filled, on the other side. Nothing when
        it filled nothing (cancelled or expired first)."""
        bracket, parent.attached = parent.attached, None
        if bracket is None or parent.filled_size <= ZERO:
            return
        market = self.markets[parent.product_id]
        side = "SELL" if parent.side == "BUY" else "BUY"
        spec = bracket.spec(parent.filled_size)
        try:
            # a futures bracket is reduce-only: the parent's fill opened what it closes
            self._validate(market, side, spec)
            currency, need, _ = self._requirement(market, side, spec)
            self.wallet(market.spec, parent.portfolio_uuid).place_hold(currency, need)
        except (OrderRefused, InsufficientFunds):
            return  # what the fill brought in is gone already (spent, or the position closed): no bracket
        child = Order(
            order_id=self.new_id(),
            client_order_id="",
            product_id=parent.product_id,
            side=side,
            spec=spec,
            created_time=self.clock.now(),
            product_type=parent.product_type,
            status=OPEN,
            key_name=parent.key_name,
            source=parent.source,
            user_id=self.user_id,
            portfolio_uuid=parent.portfolio_uuid,
            leverage=parent.leverage,
            margin_type=parent.margin_type,
        )
        child.hold_currency, child.hold_amount = currency, need
        parent.attached_order_id = child.order_id
        self.orders[child.order_id] = child
        self.ledger.record(child)
        self._notify(child, None)
        self._execute(market, child)

    def _notify(self, order: Order, fill: Fill | None) -> None:
        self.order_events += 1  # the sequence a list of orders reports: it grows with every order event
        for listener in self.order_listeners:
            listener(order, fill)
        if order.originating_order_id:
            self._follow_children(self.orders[order.originating_order_id])

    # ---- cancel / edit --------------------------------------------------------------------------------
    def cancel(self, order_id: str) -> tuple[bool, str]:
        """(success, failure_reason) in batch_cancel's vocabulary."""
        order = self.orders.get(order_id)
        if order is None:
            return False, "UNKNOWN_CANCEL_ORDER"
        if not order.is_open:
            return False, "COMMANDER_REJECTED_CANCEL_ORDER"
        for child_id in order.children:  # a scaled order: its open children go with it
            child = self.orders[child_id]
            if child.is_open:
                self._finish(child, CANCELLED, "User requested cancel")
        if not order.is_open:  # the last child's cancel finished the parent
            order.cancel_message = "User requested cancel"
            return True, "UNKNOWN_CANCEL_FAILURE_REASON"
        self._finish(order, CANCELLED, "User requested cancel")
        return True, "UNKNOWN_CANCEL_FAILURE_REASON"

    def edit(
        self,
        order_id: str,
        size: Decimal | None,
        price: Decimal | None,
        cancel_attached: bool = False,
        attached: Any = None,
    ) -> str | None:
        """Edit a resting GTC limit order; returns an edit_failure_reason or None. `cancel_attached` drops
        the bracket waiting to be attached when it fills (`cancel_attached_order`); `attached` replaces it
        (checked against the new price: OrderRefused when it does not fit, and nothing changes)."""
        order = self.orders.get(order_id)
        if order is None or not order.is_open:
            return "ORDER_NOT_FOUND" if order is None else "CANNOT_EDIT_TO_BELOW_FILLED_SIZE"
        spec = order.spec
        if spec.order_type != LIMIT or spec.time_in_force != GTC:
            return "INVALID_ORDER_CONFIGURATION"
        if self.statuses.get(order.product_id, ONLINE) in NO_ENTRY:  # only cancels go through
            return "COMMANDER_REJECTED_EDIT_ORDER"
        new_size = size if size is not None else spec.base_size or ZERO
        new_price = price if price is not None else spec.limit_price or ZERO
        if new_size <= order.filled_size:
            return "CANNOT_EDIT_TO_BELOW_FILLED_SIZE"
        market = self.markets[order.product_id]
        if spec.post_only and self._marketable(market, order.side, new_price):
            return "INVALID_LIMIT_PRICE_POST_ONLY"
        bracket = order.attached
        if attached is not None and not cancel_attached:
            bracket = parse_attached(attached, spec, order.side, new_price, market.spec.price_increment)
        leaves = new_size - order.filled_size
        ps = market.spec
        if ps.is_future:
            need = FuturesPositions.notional(leaves, ps, new_price) * ps.initial_margin_rate
            need += self._fee(ps, new_price, leaves, self.fees.taker_fee_rate)
        elif order.side == "BUY":
            need = leaves * new_price * (1 + self.fees.taker_fee_rate)
        else:
            need = leaves
        wallet = self._wallet_of(order)
        wallet.release_hold(order.hold_currency, order.hold_amount)
        try:
            wallet.place_hold(order.hold_currency, need)
        except InsufficientFunds:
            wallet.place_hold(order.hold_currency, order.hold_amount)
            return "INSUFFICIENT_FUND"
        order.hold_amount = need
        order.edit_history.append(
            {
                "price": str(new_price),
                "size": str(new_size),
                "replace_accept_timestamp": str(self.clock.now()),
            }
        )
        config = dict(spec.config)
        config["base_size"], config["limit_price"] = format(new_size, "f"), format(new_price, "f")
        spec.config, spec.base_size, spec.limit_price = config, new_size, new_price
        order.attached = None if cancel_attached else bracket
        self._rest(order)  # the old heap entry goes stale: its price no longer matches
        self._take_if_marketable(market, order)
        return None

    def _take_if_marketable(self, market: Market, order: Order) -> None:
        if order.spec.limit_price is not None and self._marketable(
            market, order.side, order.spec.limit_price
        ):
            self._take(market, order, order.spec.limit_price)
            if self._complete(order):
                self._finish(order, FILLED)
        self._notify(order, None)

    # ---- the timer ------------------------------------------------------------------------------------
    def on_tick(self, product_id: str) -> None:
        """After the market moved: trigger stops, fill crossed resting orders, expire GTD orders."""
        if self.statuses.get(product_id, ONLINE) in NO_ENTRY:
            # a halted book does not match: resting orders, stops and TWAP slices wait for it to reopen
            self.expire_due()
            return
        market = self.markets[product_id]
        index = self._index[product_id]
        last = market.last_price
        while index.stop_up and index.stop_up[0][0] <= last:
            self._trigger(market, heapq.heappop(index.stop_up)[2])
        while index.stop_down and -index.stop_down[0][0] >= last:
            self._trigger(market, heapq.heappop(index.stop_down)[2])
        # price-time priority: best price first, then the earliest queued; each order takes what the market
        # offers through its price, so a large order fills partly and keeps its place
        while index.bids and -index.bids[0][0] >= market.best_ask():
            neg_price, seq, order = heapq.heappop(index.bids)
            if not self._fill_resting(market, order, -neg_price):
                self._rest(order, seq)
                break
        while index.asks and index.asks[0][0] <= market.best_bid():
            price, seq, order = heapq.heappop(index.asks)
            if not self._fill_resting(market, order, price):
                self._rest(order, seq)
                break
        self.run_twaps(product_id)
        self.expire_due()

    def _fill_resting(self, market: Market, order: Order, price: Decimal) -> bool:
        """Fill a resting order the market crossed, as maker at its own price, from the book liquidity at
        or through that price. False when it is still open and the crossing liquidity is used up."""
        if (
            not order.is_open
            or order.resting_price != price
            or (order.spec.order_type == STOP_LIMIT and not order.triggered)
        ):
            return True  # a stale queue entry: dropped
        available = sum((s for _, s in market.take(order.side, price, order.leaves, None)), ZERO)
        if available >= order.leaves:  # filled in full: the order's own size, as it was written
            available = order.leaves
        if available > ZERO:
            self._fill(market, order, price, available, "MAKER")
        if order.leaves <= ZERO:
            self._finish(order, FILLED)
            return True
        if available > ZERO:
            self._notify(order, None)
        return False

    def _trigger(self, market: Market, order: Order) -> None:
        if not order.is_open or order.triggered:
            return
        order.triggered = True
        if (
            order.spec.order_type == BRACKET
        ):  # the stop leg: a limit order BRACKET_STOP_LIMIT past the trigger
            stop = order.spec.stop_price or ZERO
            band = 1 - BRACKET_STOP_LIMIT if order.side == "SELL" else 1 + BRACKET_STOP_LIMIT
            order.working_price = market.round_price(stop * band)
        self._take(market, order, order.resting_price)
        if self._complete(order):
            self._finish(order, FILLED)
        else:
            self._rest(order)
            self._notify(order, None)

    def _slice(self, market: Market, order: Order, schedule: TwapSchedule) -> None:
        """Trade what the schedule says is due by now (and not yet filled), at or better than the limit."""
        total = order.spec.base_size or ZERO
        behind = schedule.target(total, self.clock.now(), market.spec.base_increment) - order.filled_size
        if behind <= ZERO or not order.is_open:
            return
        limit = order.spec.limit_price
        for price, size in market.take(order.side, limit, behind, None):
            self._fill(market, order, price, size, "TAKER")
        if order.leaves <= ZERO:
            self._finish(order, FILLED)
            del self._twaps[order.order_id]
        elif order.filled_size:
            self._notify(order, None)

    def run_twaps(self, product_id: str | None = None) -> None:
        for order, schedule in list(self._twaps.values()):
            if not order.is_open:
                self._twaps.pop(order.order_id, None)
            elif product_id is None or order.product_id == product_id:
                self._slice(self.markets[order.product_id], order, schedule)

    def expire_due(self) -> None:
        now = self.clock.now()
        while self._expiries and self._expiries[0][0] <= now:
            order = heapq.heappop(self._expiries)[2]
            if order.is_open:
                self._finish(order, EXPIRED, "Order expired")

    def close_position(
        self, client_order_id: str, product_id: str, size: Decimal | None, key_name: str
    ) -> Order:
        """Market order against the open position (all of it, or `size` contracts)."""
        if client_order_id:
            existing = self.ledger.by_client_order_id(client_order_id)
            if existing is not None:
                return existing
        market = self._market(product_id)
        position = self.positions.get(product_id) if market.spec.is_future else None
        if position is None:
            raise OrderRefused("UNKNOWN_FAILURE_REASON", "PREVIEW_INVALID_ARGUMENT", "no open position")
        contracts = min(size, abs(position.contracts)) if size is not None else abs(position.contracts)
        side = "SELL" if position.contracts > ZERO else "BUY"
        config = {"base_size": format(contracts, "f")}
        spec = OrderSpec("market_market_ioc", config, MARKET, IOC, base_size=contracts)
        order, _ = self.submit(client_order_id, product_id, side, spec, key_name=key_name)
        return order
