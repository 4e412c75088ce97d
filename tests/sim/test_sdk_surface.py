"""The official coinbase-advanced-py RESTClient, unchanged, calls every endpoint method it has against the
simulator over HTTPS, and each answer parses into the SDK's typed response with the fields a caller reads.

The methods are enumerated from the SDK itself (every RESTClient method that names an endpoint), so a method
the SDK gains and the simulator does not serve fails here. The INTX perpetuals methods are refused (Coinbase
moved those products to the Deribit-powered gateway); the SDK surfaces that refusal as an HTTPError.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from coinbase.rest import RESTClient
from requests.exceptions import HTTPError

from engine.sim import Simulator
from tests.sim.conftest import Tls, quiet_config
from tests.support.keys import new_es256_key

FUTURE = "BIP-20DEC30-CDE"


def endpoint_methods() -> set[str]:
    names = set()
    for name, fn in inspect.getmembers(RESTClient, inspect.isfunction):
        if not name.startswith("_") and "endpoint = " in inspect.getsource(fn):
            names.add(name)
    return names


def _cid() -> str:
    return uuid.uuid4().hex


def _iso(seconds_from_now: float) -> str:
    return (datetime.now(UTC) + timedelta(seconds=seconds_from_now)).strftime("%Y-%m-%dT%H:%M:%SZ")


class Surface:
    """One call per SDK method, in an order where each finds the state it needs; each returns what it got."""

    def __init__(self, client: RESTClient) -> None:
        self.c = client
        self.state: dict[str, Any] = {}

    def account_uuid(self, currency: str) -> str:
        accounts = self.c.get_accounts(limit=250).accounts
        return next(a.uuid for a in accounts if a.currency == currency)

    def calls(self) -> dict[str, Callable[[], Any]]:
        c, st = self.c, self.state
        now = int(time.time())

        def resting_order() -> str:
            placed = c.limit_order_gtc_buy(_cid(), "BTC-USD", base_size="0.01", limit_price="50000.00")
            assert placed.success, placed.to_dict()
            return str(placed.success_response["order_id"])

        def create_order() -> Any:
            r = c.create_order(_cid(), "BTC-USD", "BUY", {"market_market_ioc": {"quote_size": "100"}})
            assert r.success
            assert r.order_configuration.market_market_ioc.quote_size == "100"
            return r

        def futures_open() -> Any:
            r = c.market_order_buy(_cid(), FUTURE, base_size="2")
            assert r.success, r.to_dict()
            return r

        def portfolio_new() -> Any:
            r = c.create_portfolio(name="Sim " + _cid()[:8])
            st["portfolio"] = r.portfolio.uuid
            return r

        def quote() -> Any:
            r = c.create_convert_quote(self.account_uuid("USD"), self.account_uuid("USDC"), amount="100")
            st["trade"] = r.trade.id
            assert r.trade.status == "TRADE_STATUS_CREATED"
            return r

        return {
            "get_unix_time": lambda: c.get_unix_time(),
            "get_public_products": lambda: c.get_public_products(),
            "get_public_product": lambda: c.get_public_product("BTC-USD"),
            "get_public_product_book": lambda: c.get_public_product_book("BTC-USD", limit=5),
            "get_public_market_trades": lambda: c.get_public_market_trades("BTC-USD", limit=5),
            "get_public_candles": lambda: c.get_public_candles(
                "BTC-USD", str(now - 3600), str(now + 60), "ONE_MINUTE"
            ),
            "get_accounts": lambda: c.get_accounts(),
            "get_account": lambda: c.get_account(self.account_uuid("BTC")),
            "get_api_key_permissions": lambda: c.get_api_key_permissions(),
            "get_products": lambda: c.get_products(),
            "get_product": lambda: c.get_product("BTC-USD"),
            "get_product_book": lambda: c.get_product_book("BTC-USD", limit=5),
            "get_best_bid_ask": lambda: c.get_best_bid_ask(["BTC-USD", "ETH-USD"]),
            "create_order": create_order,
            "get_market_trades": lambda: c.get_market_trades("BTC-USD", limit=5),
            "get_candles": lambda: c.get_candles("BTC-USD", str(now - 3600), str(now + 60), "FIVE_MINUTE"),
            "preview_order": lambda: c.preview_order(
                "BTC-USD", "BUY", {"limit_limit_gtc": {"base_size": "0.01", "limit_price": "50000.00"}}
            ),
            "get_order": lambda: c.get_order(st.setdefault("order", resting_order())),
            "list_orders": lambda: c.list_orders(product_ids=["BTC-USD"]),
            "get_fills": lambda: c.get_fills(product_ids=["BTC-USD"]),
            "edit_order": lambda: c.edit_order(st["order"], size="0.02", price="50000.00"),
            "preview_edit_order": lambda: c.preview_edit_order(st["order"], size="0.03", price="50000.00"),
            "cancel_orders": lambda: c.cancel_orders([st["order"]]),
            "get_transaction_summary": lambda: c.get_transaction_summary(),
            "get_portfolios": lambda: c.get_portfolios(),
            "create_portfolio": portfolio_new,
            "edit_portfolio": lambda: c.edit_portfolio(st["portfolio"], name="Renamed " + _cid()[:8]),
            "move_portfolio_funds": lambda: c.move_portfolio_funds(
                "10", "USD", c.get_api_key_permissions().portfolio_uuid, st["portfolio"]
            ),
            "get_portfolio_breakdown": lambda: c.get_portfolio_breakdown(st["portfolio"]),
            "delete_portfolio": lambda: (
                c.move_portfolio_funds(
                    "10", "USD", st["portfolio"], c.get_api_key_permissions().portfolio_uuid
                ),
                c.delete_portfolio(st["portfolio"]),
            )[1],
            "create_convert_quote": quote,
            "get_convert_trade": lambda: c.get_convert_trade(
                st["trade"], self.account_uuid("USD"), self.account_uuid("USDC")
            ),
            "commit_convert_trade": lambda: c.commit_convert_trade(
                st["trade"], self.account_uuid("USD"), self.account_uuid("USDC")
            ),
            "list_payment_methods": lambda: c.list_payment_methods(),
            "get_payment_method": lambda: c.get_payment_method(
                c.list_payment_methods().payment_methods[0].id
            ),
            "get_futures_balance_summary": lambda: (futures_open(), c.get_futures_balance_summary())[1],
            "list_futures_positions": lambda: c.list_futures_positions(),
            "get_futures_position": lambda: c.get_futures_position(FUTURE),
            "close_position": lambda: c.close_position(_cid(), FUTURE, size="1"),
            "schedule_futures_sweep": lambda: c.schedule_futures_sweep("10"),
            "list_futures_sweeps": lambda: c.list_futures_sweeps(),
            "cancel_pending_futures_sweep": lambda: c.cancel_pending_futures_sweep(),
            "get_intraday_margin_setting": lambda: c.get_intraday_margin_setting(),
            "set_intraday_margin_setting": lambda: c.set_intraday_margin_setting(
                "INTRADAY_MARGIN_SETTING_INTRADAY"
            ),
            "get_current_margin_window": lambda: c.get_current_margin_window(
                "MARGIN_PROFILE_TYPE_RETAIL_REGULAR"
            ),
        }

    def retired(self) -> dict[str, Callable[[], Any]]:
        c = self.c
        pf = "00000000-0000-4000-8000-000000000000"
        return {
            "allocate_portfolio": lambda: c.allocate_portfolio(pf, "BTC-PERP-INTX", "10", "USDC"),
            "get_perps_portfolio_summary": lambda: c.get_perps_portfolio_summary(pf),
            "list_perps_positions": lambda: c.list_perps_positions(pf),
            "get_perps_position": lambda: c.get_perps_position(pf, "BTC-PERP-INTX"),
            "get_perps_portfolio_balances": lambda: c.get_perps_portfolio_balances(pf),
            "opt_in_or_out_multi_asset_collateral": lambda: c.opt_in_or_out_multi_asset_collateral(pf, True),
        }


def _run_surface(key_file: Path, host_port: str, ca_path: Path) -> tuple[dict[str, Any], dict[str, str]]:
    client = RESTClient(key_file=str(key_file), base_url=host_port, timeout=10)
    client.session.verify = str(ca_path)
    surface = Surface(client)
    answers: dict[str, Any] = {}
    failures: dict[str, str] = {}
    for name, call in surface.calls().items():
        try:
            answers[name] = call().to_dict()
        except Exception as failure:  # each failure is reported by its method
            failures[name] = f"{type(failure).__name__}: {failure}"
    for name, call in surface.retired().items():
        try:
            call()
            failures[name] = "a retired INTX endpoint answered 2xx"
        except HTTPError as refused:
            answers[name] = {"refused": refused.response.status_code}
    return answers, failures


async def test_the_official_sdk_runs_its_whole_surface(
    tls: Tls, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(tls.ca_path))
    monkeypatch.setenv("CURL_CA_BUNDLE", str(tls.ca_path))
    key = new_es256_key()
    key_file = tmp_path / "key.json"
    key_file.write_text(json.dumps(key.portal_json()))
    sim = Simulator(quiet_config())
    sim.register_cdp_key(key.name, key.public_key_pem)
    async with sim.serve(ssl_context=tls.server_context) as base_url:
        for _ in range(40):  # trades for the candles and market trades to report
            sim.tick()
        answers, failures = await asyncio.to_thread(
            _run_surface, key_file, base_url.split("://")[1], tls.ca_path
        )
    calls = Surface(RESTClient(api_key="k", api_secret="s"))
    covered = set(calls.calls()) | set(calls.retired())
    assert covered == endpoint_methods(), "the SDK has methods this test does not call"
    assert not failures, "\n".join(f"{name}: {why}" for name, why in sorted(failures.items()))
    assert len(answers) == len(endpoint_methods())
    # the answers carry state, not placeholders
    assert answers["get_public_candles"]["candles"], "no candles from the trades just printed"
    assert answers["get_market_trades"]["trades"]
    assert answers["commit_convert_trade"]["trade"]["status"] == "TRADE_STATUS_COMPLETED"
    assert answers["close_position"]["success"] is True
    assert answers["get_futures_position"]["position"]["number_of_contracts"] == "2"
    assert {a["refused"] for n, a in answers.items() if n in calls.retired()} == {404}
    assert (
        Decimal(
            answers["get_portfolio_breakdown"]["breakdown"]["portfolio_balances"]["total_balance"]["value"]
        )
        == 10
    )
