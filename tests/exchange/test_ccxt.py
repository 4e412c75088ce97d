"""ccxt's async `coinbaseexchange`, unchanged, against the simulator over HTTPS: a client no one here wrote
speaks the Exchange API end to end."""

from __future__ import annotations

import logging
from decimal import Decimal

import ccxt.async_support as ccxt
import pytest

from engine.sim.orders import CANCELLED, FILLED, OPEN
from tests.exchange.conftest import exchange_sim
from tests.sim.conftest import Tls


async def test_ccxt_coinbaseexchange(tls: Tls, caplog: pytest.LogCaptureFixture) -> None:
    # ccxt logs every request's headers at DEBUG, the passphrase among them: that is ccxt's to fix
    caplog.set_level(logging.INFO, logger="ccxt")
    sim, key = exchange_sim()
    # a few trades on the tape, so candles, trades and the ticker have something to say
    for price in ("60010", "60020", "60000"):
        sim.set_mid("BTC-USD", Decimal(price))
        sim.tick()
    async with sim.serve(ssl_context=tls.server_context) as base_url:
        exchange = ccxt.coinbaseexchange(
            {
                "apiKey": key.key,
                "secret": key.secret,
                "password": key.passphrase,
                "cafile": str(tls.ca_path),
            }
        )
        exchange.urls["api"] = {"public": base_url, "private": base_url}
        try:
            markets = await exchange.load_markets()
            assert {"BTC/USD", "ETH/USD"} <= set(markets)
            assert not any(m["contract"] for m in markets.values())  # futures are Advanced Trade's alone
            assert markets["BTC/USD"]["precision"]["price"] == 0.01
            assert "USD" in exchange.currencies

            book = await exchange.fetch_order_book("BTC/USD")
            assert book["bids"][0][0] < book["asks"][0][0]
            assert book["bids"][0][0] == float(sim.markets["BTC-USD"].book.best_bid() or 0)
            ticker = await exchange.fetch_ticker("BTC/USD")
            assert ticker["bid"] == book["bids"][0][0]
            assert ticker["last"] == float(sim.markets["BTC-USD"].last_price)
            trades = await exchange.fetch_trades("BTC/USD")
            assert trades
            assert all(t["symbol"] == "BTC/USD" for t in trades)
            candles = await exchange.fetch_ohlcv("BTC/USD", "1m")
            assert candles
            assert sum(c[5] for c in candles) > 0
            fees = await exchange.fetch_trading_fees()
            assert fees["BTC/USD"]["maker"] == float(sim.config.fees.maker_fee_rate)

            balance = await exchange.fetch_balance()
            assert balance["USD"]["total"] == float(sim.accounts.get("USD").balance)  # type: ignore[union-attr]
            assert balance["BTC"]["total"] == 2

            resting = await exchange.create_order("BTC/USD", "limit", "buy", 0.01, 50000)
            assert resting["status"] == "open"
            fetched = await exchange.fetch_order(resting["id"])
            assert (fetched["price"], fetched["amount"], fetched["status"]) == (50000, 0.01, "open")
            after_hold = await exchange.fetch_balance()
            assert after_hold["USD"]["used"] > 0  # the resting buy holds its funds
            open_orders = await exchange.fetch_open_orders("BTC/USD")
            assert [o["id"] for o in open_orders] == [resting["id"]]
            await exchange.cancel_order(resting["id"])
            assert (await exchange.fetch_order(resting["id"]))["status"] == "canceled"

            second = await exchange.create_order("ETH/USD", "limit", "sell", 0.5, 9000)
            await exchange.cancel_all_orders()
            assert (await exchange.fetch_order(second["id"]))["status"] == "canceled"

            bought = await exchange.create_order("BTC/USD", "market", "buy", 0.02)
            assert (await exchange.fetch_order(bought["id"]))["status"] == "closed"
            mine = await exchange.fetch_my_trades("BTC/USD")
            assert {t["order"] for t in mine} == {bought["id"]}
            assert sum(t["amount"] for t in mine) == 0.02
            assert all(t["side"] == "buy" and t["takerOrMaker"] == "taker" for t in mine)
        finally:
            await exchange.close()
    statuses = [(entry["source"], entry["status"]) for entry in sim.ledger.entries()]
    assert statuses == [("exchange", CANCELLED), ("exchange", CANCELLED), ("exchange", FILLED)]
    assert OPEN not in {s for _, s in statuses}
