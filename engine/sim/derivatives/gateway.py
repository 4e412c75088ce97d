"""The simulated derivatives gateway, wired: instruments over the matching core, cross margin, the order
desk, funding, market data, tokens, credits and the method table; the market's timer step; and the fan-out
of channel messages to the sockets subscribed to them.

It gets the collaborators it uses from the simulator (the key ring, the clock, the fault dice, the ledger),
not the simulator itself.
"""

from __future__ import annotations

import asyncio
import random
import time
import uuid
from typing import Any

from engine.sim.auth import CdpKey, KeyRing
from engine.sim.clock import SimClock
from engine.sim.config import FeeSchedule
from engine.sim.derivatives import private_methods, public_methods, session_methods
from engine.sim.derivatives.channels import user_channel_matches
from engine.sim.derivatives.config import DerivativesConfig
from engine.sim.derivatives.connections import Connection
from engine.sim.derivatives.credits import CreditLimiter
from engine.sim.derivatives.desk import OrderDesk
from engine.sim.derivatives.dispatcher import TRADING, Caller, MethodTable
from engine.sim.derivatives.funding import Funding
from engine.sim.derivatives.instruments import SETTLEMENT, Instrument, product_spec
from engine.sim.derivatives.margin import CollateralPool, CrossMargin, PerpetualMatching
from engine.sim.derivatives.market_data import RESOLUTIONS, MarketData
from engine.sim.derivatives.orders import PerpOrder
from engine.sim.derivatives.rpc import notification
from engine.sim.derivatives.tokens import TokenStore
from engine.sim.faults import FaultDice
from engine.sim.futures import FuturesPositions
from engine.sim.ledger import Ledger
from engine.sim.market import Market, Trade

_BOOK_DEPTH = 20


class DropAfterAccept(Exception):
    """The drop_after_accept fault: the order stands, the connection goes with no reply."""


class DerivativesGateway:
    def __init__(
        self,
        config: DerivativesConfig,
        *,
        keys: KeyRing,
        clock: SimClock,
        dice: FaultDice,
        ledger: Ledger,
        seed: int,
    ) -> None:
        self.config = config
        self.keys = keys
        self.clock = clock
        self.dice = dice
        rng = random.Random(seed)
        now = clock.now()
        self.pool = CollateralPool(portfolio_uuid=str(uuid.UUID(int=rng.getrandbits(128), version=4)))
        self.pool.open(
            str(uuid.UUID(int=rng.getrandbits(128), version=4)), SETTLEMENT, config.starting_collateral, now
        )
        markets: dict[str, Market] = {}
        self.instruments: dict[str, Instrument] = {}
        for number, spec in enumerate(config.instruments, start=1):
            market = Market(product_spec(spec), random.Random(rng.getrandbits(64)), _BOOK_DEPTH)
            markets[spec.instrument_name] = market
            self.instruments[spec.instrument_name] = Instrument(spec, number, market, int(now * 1000))
        fees = FeeSchedule("", config.maker_fee_rate, config.taker_fee_rate)
        self.core = PerpetualMatching(
            markets,
            self.pool,
            FuturesPositions(),
            ledger,
            fees,
            clock,
            random.Random(rng.getrandbits(64)),
            user_id=str(uuid.UUID(int=rng.getrandbits(128), version=4)),
        )
        self.margin = CrossMargin(self.core, self.pool, self.instruments, config.default_leverage)
        self.desk = OrderDesk(self.core, self.margin, self.instruments, clock, config.market_as_limit)
        self.funding = Funding(self.instruments, self.margin, config.funding_rate_cap)
        self.market_data = MarketData(self.instruments, self.funding)
        self.tokens = TokenStore(config.token_lifetime_s)
        self.credits = CreditLimiter(config.credits)
        self.table = MethodTable(self.credits)
        public_methods.register(self.table, self)
        private_methods.register(self.table, self)
        session_methods.register(self.table, self)
        self.connections: set[Connection] = set()
        self.cod_account_scope: dict[str, bool] = {}
        self.auth_failures: dict[str, int] = {}
        self.injected = {"latency": 0, "error_5xx": 0, "drop_after_accept": 0, "ws_drop": 0, "ws_gap": 0}
        self._index_rng = random.Random(rng.getrandbits(64))
        self._next_funding = time.monotonic() + config.funding_interval_s
        self.core.trade_listeners.append(self._on_trade)
        self.desk.listeners.append(self._on_desk)

    # ---- small services for the methods ----------------------------------------------------------------
    def now_ms(self) -> int:
        return int(self.clock.now() * 1000)

    def key_named(self, name: str) -> CdpKey | None:
        return next((k for k in self.keys.cdp_keys() if k.name == name), None)

    def accepted(
        self, result: tuple[PerpOrder, list[dict[str, Any]]], caller: Caller
    ) -> tuple[PerpOrder, list[dict[str, Any]]]:
        """An order the desk accepted; the drop_after_accept fault loses the reply, never the order."""
        if self.dice.drop_after_accept():
            self.injected["drop_after_accept"] += 1
            raise DropAfterAccept
        return result

    def account_summary(self, extended: bool) -> dict[str, Any]:
        return self.margin.summary_wire(extended, self.credits.limits_wire())

    # ---- the market's timer --------------------------------------------------------------------------------
    def tick(self) -> None:
        now = self.clock.now()
        for instrument in self.instruments.values():
            trade = instrument.market.step(now)
            instrument.step_index(self._index_rng, self.config.premium_bound)
            if trade is not None:
                self._on_trade(trade)
            self.after_move(instrument)
        if self.config.funding_interval_s > 0 and time.monotonic() >= self._next_funding:
            self._next_funding = time.monotonic() + self.config.funding_interval_s
            self.accrue_funding()

    def after_move(self, instrument: Instrument) -> None:
        """Resting orders and triggers react to the market, then what changed is published."""
        self.core.on_tick(instrument.name)
        self.core.expire_due()
        self.desk.on_tick(instrument)
        if self.desk.liquidate_if_due():
            self.publish_portfolio()
        self.publish_market(instrument)

    def set_mark(self, instrument_name: str, price: Any) -> None:
        """Move an instrument's mark (and book) now: for tests and demos."""
        instrument = self.instruments[instrument_name]
        market = instrument.market
        market.set_mid(price)
        market.last_price = market.mid
        instrument.step_index(self._index_rng, 0.0)
        self.after_move(instrument)

    def accrue_funding(self) -> None:
        for instrument, _ in self.funding.accrue(self.now_ms(), self.pool):
            self._publish_prefix(
                f"perpetual.{instrument.name}.", self.market_data.perpetual(instrument, self.now_ms())
            )
        self.publish_portfolio()

    # ---- publishing ----------------------------------------------------------------------------------------
    def _send(self, connection: Connection, channel: str, data: Any) -> None:
        if self.dice.ws_gap():
            self.injected["ws_gap"] += 1
            return
        if self.dice.ws_drop():
            self.injected["ws_drop"] += 1
            connection.abort()
            return
        connection.send(notification(channel, data))

    def _publish_prefix(self, prefix: str, data: Any) -> None:
        for connection in list(self.connections):
            for channel in connection.channels:
                if channel.startswith(prefix):
                    self._send(connection, channel, data)

    def publish_market(self, instrument: Instrument) -> None:
        now_ms = self.now_ms()
        name = instrument.name
        changes = instrument.market.book.drain_changes()
        if changes:
            change = self.market_data.books[name].apply(changes, now_ms, name)
            grouped: dict[str, Any] | None = None
            for connection in list(self.connections):
                for channel in connection.channels:
                    if not channel.startswith(f"book.{name}."):
                        continue
                    if channel.count(".") == 2:
                        self._send(connection, channel, change)
                    else:
                        grouped = grouped or self._grouped(instrument, now_ms)
                        self._send(connection, channel, grouped)
        self._publish_prefix(f"ticker.{name}.", self.market_data.ticker(instrument, now_ms))
        self._publish_prefix(f"quote.{name}", self.market_data.quote(instrument, now_ms))
        self._publish_prefix(f"perpetual.{name}.", self.market_data.perpetual(instrument, now_ms))

    def _grouped(self, instrument: Instrument, now_ms: int) -> dict[str, Any]:
        book = instrument.market.book
        return {
            "timestamp": now_ms,
            "instrument_name": instrument.name,
            "change_id": self.market_data.books[instrument.name].change_id,
            "bids": [[p, s] for p, s in book.bids.levels(20)],
            "asks": [[p, s] for p, s in book.asks.levels(20)],
        }

    def _on_trade(self, trade: Trade) -> None:
        instrument = self.instruments.get(trade.product_id)
        if instrument is None:
            return
        public = self.market_data.record_trade(
            instrument, trade.trade_id, int(trade.time * 1000), trade.price, trade.size, trade.side
        )
        self._publish_prefix(f"trades.{instrument.name}.", [public.to_wire()])
        for connection in list(self.connections):
            for channel in connection.channels:
                if channel.startswith(f"chart.trades.{instrument.name}."):
                    resolution = RESOLUTIONS[channel.rpartition(".")[2]]
                    width = resolution * 1000
                    start = public.timestamp_ms - public.timestamp_ms % width
                    candles = self.market_data.candles(instrument, start, start + width - 1, resolution)
                    if candles:
                        self._send(connection, channel, candles[-1])

    def _on_desk(self, event: str, order: PerpOrder | None, trade: dict[str, Any] | None) -> None:
        if event == "portfolio":
            self.publish_portfolio()
            return
        assert order is not None
        name = order.instrument_name
        wire = self.desk.wire(order)
        position = self.margin.position_wire(name)
        for connection in list(self.connections):
            if connection.kind != TRADING or connection.key is None:
                continue
            for channel in connection.channels:
                raw = channel.endswith(".raw")
                if event == "order" and user_channel_matches(channel, "orders", name):
                    self._send(connection, channel, wire if raw else [wire])
                elif event == "trade" and user_channel_matches(channel, "trades", name):
                    self._send(connection, channel, [trade])
                elif user_channel_matches(channel, "changes", name):
                    self._send(
                        connection,
                        channel,
                        {
                            "instrument_name": name,
                            "orders": [wire] if event == "order" else [],
                            "trades": [trade] if event == "trade" else [],
                            "positions": [position],
                        },
                    )

    def publish_portfolio(self) -> None:
        summary: dict[str, Any] | None = None
        for connection in list(self.connections):
            if connection.kind != TRADING or connection.key is None:
                continue
            for channel in connection.channels:
                if channel.startswith("user.portfolio."):
                    summary = summary or self.account_summary(False)
                    self._send(connection, channel, summary)

    def after_subscribe(self, connection: Connection, channels: list[str]) -> None:
        """First messages of new subscriptions (a book's snapshot, the portfolio), after the reply."""
        if not channels:
            return

        def first_messages() -> None:
            now_ms = self.now_ms()
            for channel in channels:
                if channel not in connection.channels:
                    continue
                parts = channel.split(".")
                instrument = self.instruments.get(parts[1]) if len(parts) > 1 else None
                if parts[0] == "book" and instrument is not None:
                    feed = self.market_data.books[instrument.name]
                    data = (
                        feed.snapshot(now_ms, instrument.name)
                        if len(parts) == 3
                        else self._grouped(instrument, now_ms)
                    )
                    connection.send(notification(channel, data))
                elif parts[0] == "user" and parts[1] == "portfolio":
                    connection.send(notification(channel, self.account_summary(False)))

        asyncio.get_running_loop().call_soon(first_messages)

    # ---- connections ---------------------------------------------------------------------------------------
    def opened(self, connection: Connection) -> None:
        self.connections.add(connection)

    def closed(self, connection: Connection) -> None:
        self.connections.discard(connection)
        connection.stop()
        if connection.cod_enabled and not connection.logged_out:
            self.desk.cancel_connection(connection.id)

    def drop_sockets(self, key_name: str | None = None) -> int:
        """Abort the trading sockets of a key (every trading socket with None), as a network fault would:
        no close handshake, replies in flight lost. Returns how many."""
        dropped = [
            c
            for c in self.connections
            if c.kind == TRADING and (key_name is None or (c.key is not None and c.key.name == key_name))
        ]
        for connection in dropped:
            connection.abort()
        return len(dropped)

    async def close_all(self) -> None:
        for connection in list(self.connections):
            connection.close_after_pending(1001, b"server shutdown")
