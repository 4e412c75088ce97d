"""A small perpetuals strategy to copy: one bid and one ask around the mid of BTC_USDC-PERPETUAL on Coinbase's
global perpetuals gateway, re-quoted as the mid moves, under leverage and margin limits.

    engine sim --port 8700 --key key.json          # or leave --base-url out for Coinbase (real money!)
    python examples/perp_quoter.py --key key.json --base-url http://127.0.0.1:8700 --seconds 20

It shows what differs from spot: the venue (`derivatives_venue`), orders as `PerpLimit` (sizes in the base
coin), positions, margin and PnL from the gateway, the margin rules, and a SIGTERM that drains: no new orders,
every quote cancelled, then a clean stop (the gateway's cancel-on-disconnect is only the safety net).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
from decimal import Decimal
from pathlib import Path

from engine import Engine, EngineConfig, OrderRefused, OrderState, ProductLimits, RiskConfig, TrackedOrder
from engine.auth import CdpKey
from engine.marketdata.feed import Ticker
from engine.venues.derivatives import DerivativesVenue, PerpLimit, derivatives_venue

PRODUCT = "BTC_USDC-PERPETUAL"
SIZE = Decimal("0.001")  # BTC
HALF_SPREAD = Decimal("0.0005")  # quote 5 bp either side of the mid
REQUOTE = Decimal("0.0002")  # re-quote once the mid moved 2 bp


class PerpQuoter:
    def __init__(self, engine: Engine, tick: Decimal) -> None:
        self.engine = engine
        self.tick = tick
        self.quoted_mid: Decimal | None = None
        self.bid: TrackedOrder | None = None
        self.ask: TrackedOrder | None = None
        self.busy = False

    async def on_ticker(self, ticker: Ticker) -> None:
        if self.busy or ticker.best_bid is None or ticker.best_ask is None:
            return
        mid = (ticker.best_bid + ticker.best_ask) / 2
        if self.quoted_mid is not None and abs(mid - self.quoted_mid) / self.quoted_mid < REQUOTE:
            return
        self.busy = True  # one re-quote at a time
        try:
            await self.requote(mid)
        finally:
            self.busy = False

    def on_tick(self, price: Decimal) -> Decimal:
        return price - price % self.tick

    async def requote(self, mid: Decimal) -> None:
        for order in (self.bid, self.ask):
            if order is not None and order.is_open:
                await self.engine.cancel(order)
        bid_price = self.on_tick(mid * (1 - HALF_SPREAD))
        ask_price = self.on_tick(mid * (1 + HALF_SPREAD)) + self.tick
        try:
            self.bid = await self.engine.place(PRODUCT, "BUY", PerpLimit(SIZE, bid_price, post_only=True))
            self.ask = await self.engine.place(PRODUCT, "SELL", PerpLimit(SIZE, ask_price, post_only=True))
        except OrderRefused as refused:  # a risk rule said no: log it and keep running
            logging.warning("quote refused by %s: %s", refused.rule.value, refused.detail)
        self.quoted_mid = mid


async def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--key", type=Path, required=True, help="CDP key file (portal JSON)")
    parser.add_argument("--base-url", default=None, help="default: Coinbase; e.g. http://127.0.0.1:8700")
    parser.add_argument("--journal", type=Path, default=Path("perp_quoter.db"))
    parser.add_argument("--seconds", type=float, default=30.0)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")

    config = EngineConfig(
        journal_path=args.journal,
        worker="perp1",
        risk=RiskConfig(
            default_limits=ProductLimits(
                max_order_size=Decimal("0.01"), max_position=Decimal("0.05"), max_leverage=Decimal("3")
            ),
            max_open_orders=4,
            price_band=Decimal("0.01"),  # around the gateway's mark price
            max_orders=20,
            rate_window=1.0,
            breaker_failures=5,
            max_margin_usage=Decimal("0.5"),
            min_liquidation_distance=Decimal("0.2"),
        ),
    )
    venue = derivatives_venue(CdpKey.from_json_file(args.key), args.base_url, products=(PRODUCT,))
    async with Engine(config=config, venue=venue) as engine:
        report = engine.reconcile_report
        if report is not None and (report.resolved or report.unknown_open_orders):
            logging.info("reconciled after a crash: %s", report)
        await engine.wait_ready()
        instrument = await venue.client.get_instrument(PRODUCT)
        strategy = PerpQuoter(engine, instrument.tick_size)
        engine.on_ticker(strategy.on_ticker, PRODUCT)
        engine.on_order(
            lambda order: (
                logging.info("%s %s filled %s", order.client_order_id, order.side, order.filled_size)
                if order.state is OrderState.FILLED
                else None
            )
        )
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        loop.add_signal_handler(signal.SIGTERM, stop.set)
        loop.add_signal_handler(signal.SIGINT, stop.set)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), args.seconds)
        cancelled = await engine.drain("example stopping")  # no new orders; every quote off the book
        report_state(engine, venue, cancelled)


def report_state(engine: Engine, venue: DerivativesVenue, cancelled: int) -> None:
    account = venue.margin_account()
    position = venue.position_risk(PRODUCT)
    logging.info(
        "drained: %d quotes cancelled; position %s %s; equity %s, initial margin %s; "
        "unrealized %s, realized %s, funding %s",
        cancelled,
        engine.position(PRODUCT),
        PRODUCT,
        account and account.equity,
        account and account.initial_margin,
        position and position.unrealized_pnl,
        position and position.realized_pnl,
        position and position.realized_funding,
    )


if __name__ == "__main__":
    asyncio.run(main())
