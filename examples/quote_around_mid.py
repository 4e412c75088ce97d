"""A small market-making strategy to copy: one bid and one ask around the mid, re-quoted as the mid moves.

    engine sim --port 8700 --key key.json          # or point --base-url at Coinbase (real money!)
    python examples/quote_around_mid.py --key key.json --base-url http://127.0.0.1:8700 --seconds 20

It shows the parts a strategy uses: `Engine` as an async context manager, market data by callback (tickers)
and by async iterator (the level2 book), orders placed under risk limits and journalled, cancels, order
updates, positions, and the kill switch on the way out.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
from decimal import Decimal
from pathlib import Path

from engine import Engine, EngineConfig, OrderRefused, OrderState, ProductLimits, RiskConfig, TrackedOrder
from engine.auth import CdpKey
from engine.marketdata.feed import Ticker
from engine.venues.advanced.orders import LimitGtc, Side

PRODUCT = "BTC-USD"
SIZE = Decimal("0.001")
HALF_SPREAD = Decimal("0.0005")  # quote 5 bp either side of the mid
REQUOTE = Decimal("0.0002")  # re-quote once the mid moved 2 bp


class QuoteAroundMid:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
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

    async def requote(self, mid: Decimal) -> None:
        for order in (self.bid, self.ask):
            if order is not None and order.is_open:
                await self.engine.cancel(order)
        tick = Decimal("0.01")
        bid_price = (mid * (1 - HALF_SPREAD)).quantize(tick)
        ask_price = (mid * (1 + HALF_SPREAD)).quantize(tick)
        try:
            self.bid = await self.engine.place(
                PRODUCT, Side.BUY, LimitGtc(base_size=SIZE, limit_price=bid_price)
            )
            self.ask = await self.engine.place(
                PRODUCT, Side.SELL, LimitGtc(base_size=SIZE, limit_price=ask_price)
            )
        except OrderRefused as refused:  # a risk rule said no: log it and keep running
            logging.warning("quote refused by %s: %s", refused.rule.value, refused.detail)
        self.quoted_mid = mid


async def watch_book(engine: Engine, stop: asyncio.Event) -> None:
    async for book in engine.books(PRODUCT):
        if stop.is_set():
            return
        logging.debug("book %s: spread %s, depth(10 bids) %s", book.product_id, book.spread(), len(book.bids))


async def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--key", type=Path, required=True, help="CDP key file (portal JSON)")
    parser.add_argument("--base-url", default=None, help="default: Coinbase; e.g. http://127.0.0.1:8700")
    parser.add_argument("--journal", type=Path, default=Path("quote_around_mid.db"))
    parser.add_argument("--seconds", type=float, default=30.0)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")

    config = EngineConfig(
        journal_path=args.journal,
        worker="mm1",
        products=(PRODUCT,),
        risk=RiskConfig(
            default_limits=ProductLimits(max_order_size=Decimal("0.01"), max_position=Decimal("0.05")),
            max_open_orders=4,
            price_band=Decimal("0.01"),
            max_orders=20,
            rate_window=1.0,
            rate_cooldown=5.0,
            breaker_failures=5,
            daily_loss_limit=Decimal("100"),
        ),
    )
    async with Engine(CdpKey.from_json_file(args.key), config, base_url=args.base_url) as engine:
        report = engine.reconcile_report
        if report is not None and (report.resolved or report.unknown_open_orders):
            logging.info("reconciled after a crash: %s", report)
        await engine.wait_ready()
        strategy = QuoteAroundMid(engine)
        engine.on_ticker(strategy.on_ticker, PRODUCT)
        engine.on_order(
            lambda order: (
                logging.info(
                    "%s %s %s filled %s",
                    order.client_order_id,
                    order.side,
                    order.state.value,
                    order.filled_size,
                )
                if order.state is OrderState.FILLED
                else None
            )
        )
        stop = asyncio.Event()
        book_task = asyncio.create_task(watch_book(engine, stop))
        await asyncio.sleep(args.seconds)
        stop.set()
        cancelled = await engine.kill("example finished")  # take every quote off the book
        book_task.cancel()
        logging.info(
            "done: %d quotes cancelled, position %s %s, balances %s",
            cancelled,
            engine.position(PRODUCT),
            PRODUCT,
            {c: str(v) for c, v in engine.balances().items() if c in ("USD", "BTC")},
        )


if __name__ == "__main__":
    asyncio.run(main())
