"""Advanced Trade REST (`/api/v3/brokerage/...`) and the v2 endpoints ccxt's `coinbase` reads at start.

Handlers only translate HTTP to the matching engine and back; authentication, rate limits and faults are
applied around them by the gateway (see `gateway.py`), from the access level each route declares.
"""

from __future__ import annotations

from decimal import Decimal
from typing import TYPE_CHECKING, Any

import orjson

from engine.sim.book import ZERO
from engine.sim.breakdown import portfolio_breakdown
from engine.sim.candles import GRANULARITIES, MAX_CANDLES
from engine.sim.clock import fmt, iso
from engine.sim.futures import FuturesPositions
from engine.sim.margin_window import current_window
from engine.sim.messages import SimRequest, SimResponse
from engine.sim.orders import Order, OrderRefused, OrderSpec
from engine.sim.products import CRYPTO_NAMES, FIAT, account_json, product_json, v2_account_json
from engine.sim.responses import (
    BadRequest,
    DropConnection,
    advanced_error,
    json_response,
    money,
    page,
    query_list,
    read_json,
)
from engine.sim.values import ANY_INT, parse_decimal, query_int, query_time


def query_int_or_none(request: SimRequest, name: str) -> int | None:
    """A UNIX-seconds bound (`start`, `end`); absent or empty gives None."""
    if not request.query.get(name):
        return None
    return query_int(request.query, name, 0, minimum=0, maximum=ANY_INT)


if TYPE_CHECKING:
    from engine.sim.app import Simulator

PREFIX = "/api/v3/brokerage"

# access levels: "public" (per-IP limit, no auth), or a scope a JWT key must hold
PUBLIC, VIEW, TRADE = "public", "view", "trade"


class AdvancedTradeApi:
    def __init__(self, sim: Simulator) -> None:
        self.sim = sim
        # GET /accounts is what clients poll: its body is rendered once per balance change
        self._accounts_body: tuple[tuple[int, int, str], bytes] | None = None

    def routes(self) -> list[tuple[str, str, Any, str]]:
        p = PREFIX
        return [
            ("GET", f"{p}/time", self.time, PUBLIC),
            ("GET", f"{p}/market/products", self.list_products, PUBLIC),
            ("GET", f"{p}/market/products/{{product_id}}", self.get_product, PUBLIC),
            ("GET", f"{p}/market/products/{{product_id}}/ticker", self.ticker, PUBLIC),
            ("GET", f"{p}/market/product_book", self.product_book, PUBLIC),
            ("GET", f"{p}/market/products/{{product_id}}/candles", self.candles, PUBLIC),
            ("GET", f"{p}/products/{{product_id}}/candles", self.candles, VIEW),
            ("GET", f"{p}/accounts", self.list_accounts, VIEW),
            ("GET", f"{p}/accounts/{{account_uuid}}", self.get_account, VIEW),
            ("GET", f"{p}/products", self.list_products, VIEW),
            ("GET", f"{p}/products/{{product_id}}", self.get_product, VIEW),
            ("GET", f"{p}/products/{{product_id}}/ticker", self.ticker, VIEW),
            ("GET", f"{p}/product_book", self.product_book, VIEW),
            ("GET", f"{p}/best_bid_ask", self.best_bid_ask, VIEW),
            ("GET", f"{p}/key_permissions", self.key_permissions, VIEW),
            ("GET", f"{p}/transaction_summary", self.transaction_summary, VIEW),
            ("GET", f"{p}/portfolios", self.portfolios, VIEW),
            ("POST", f"{p}/portfolios", self.create_portfolio, TRADE),
            ("POST", f"{p}/portfolios/move_funds", self.move_funds, TRADE),
            ("GET", f"{p}/portfolios/{{portfolio_uuid}}", self.portfolio_breakdown, VIEW),
            ("PUT", f"{p}/portfolios/{{portfolio_uuid}}", self.edit_portfolio, TRADE),
            ("DELETE", f"{p}/portfolios/{{portfolio_uuid}}", self.delete_portfolio, TRADE),
            ("POST", f"{p}/convert/quote", self.convert_quote, TRADE),
            ("GET", f"{p}/convert/trade/{{trade_id}}", self.get_convert_trade, VIEW),
            ("POST", f"{p}/convert/trade/{{trade_id}}", self.commit_convert_trade, TRADE),
            ("GET", f"{p}/payment_methods", self.list_payment_methods, VIEW),
            ("GET", f"{p}/payment_methods/{{payment_method_id}}", self.get_payment_method, VIEW),
            ("POST", f"{p}/orders", self.create_order, TRADE),
            ("POST", f"{p}/orders/preview", self.preview_order, TRADE),
            ("POST", f"{p}/orders/batch_cancel", self.batch_cancel, TRADE),
            ("POST", f"{p}/orders/edit", self.edit_order, TRADE),
            ("POST", f"{p}/orders/edit_preview", self.edit_preview, TRADE),
            ("POST", f"{p}/orders/close_position", self.close_position, TRADE),
            ("GET", f"{p}/orders/historical/batch", self.list_orders, VIEW),
            ("GET", f"{p}/orders/historical/fills", self.list_fills, VIEW),
            ("GET", f"{p}/orders/historical/{{order_id}}", self.get_order, VIEW),
            ("GET", f"{p}/cfm/balance_summary", self.balance_summary, VIEW),
            ("GET", f"{p}/cfm/positions", self.list_positions, VIEW),
            ("GET", f"{p}/cfm/positions/{{product_id}}", self.get_position, VIEW),
            ("GET", f"{p}/cfm/sweeps", self.list_sweeps, VIEW),
            ("POST", f"{p}/cfm/sweeps/schedule", self.schedule_sweep, TRADE),
            ("DELETE", f"{p}/cfm/sweeps", self.cancel_sweep, TRADE),
            ("GET", f"{p}/cfm/intraday/margin_setting", self.margin_setting, VIEW),
            ("POST", f"{p}/cfm/intraday/margin_setting", self.set_margin_setting, TRADE),
            ("GET", f"{p}/cfm/intraday/current_margin_window", self.current_margin_window, VIEW),
            ("GET", "/v2/time", self.v2_time, PUBLIC),
            ("GET", "/v2/currencies", self.v2_currencies, PUBLIC),
            ("GET", "/v2/currencies/crypto", self.v2_crypto_currencies, PUBLIC),
            ("GET", "/v2/exchange-rates", self.v2_exchange_rates, PUBLIC),
            ("GET", "/v2/accounts", self.v2_accounts, VIEW),
        ]

    # ---- time, products, books ------------------------------------------------------------------------
    async def time(self, request: SimRequest) -> SimResponse:
        now = self.sim.clock.now()
        return json_response(
            {"iso": iso(now), "epochSeconds": str(int(now)), "epochMillis": str(int(now * 1000))}
        )

    async def list_products(self, request: SimRequest) -> SimResponse:
        now = self.sim.clock.now()
        wanted_type = request.query.get("product_type")
        wanted_ids = set(query_list(request, "product_ids"))
        products = [
            product_json(m, now, self.sim.product_status[m.spec.product_id])
            for m in self.sim.markets.values()
            if (not wanted_type or m.spec.product_type == wanted_type)
            and (not wanted_ids or m.spec.product_id in wanted_ids)
        ]
        return json_response({"products": products, "num_products": len(products)})

    def _market_or_404(self, product_id: str) -> Any:
        market = self.sim.markets.get(product_id)
        if market is None:
            raise BadRequest("ProductID is invalid", 404, "NOT_FOUND")
        return market

    async def get_product(self, request: SimRequest) -> SimResponse:
        market = self._market_or_404(request.match_info["product_id"])
        status = self.sim.product_status[market.spec.product_id]
        return json_response(product_json(market, self.sim.clock.now(), status))

    def _pricebook(self, product_id: str, depth: int | None) -> dict[str, Any]:
        market = self._market_or_404(product_id)
        snap = market.book.snapshot(depth)
        return {
            "product_id": product_id,
            "bids": [{"price": fmt(p), "size": fmt(s)} for p, s in snap["bids"]],
            "asks": [{"price": fmt(p), "size": fmt(s)} for p, s in snap["asks"]],
            "time": iso(self.sim.clock.now()),
        }

    async def product_book(self, request: SimRequest) -> SimResponse:
        product_id = request.query.get("product_id", "")
        limit = query_int(request.query, "limit", 0, minimum=0, maximum=ANY_INT) or None
        book = self._pricebook(product_id, limit)
        market = self.sim.markets[product_id]
        return json_response(
            {
                "pricebook": book,
                "last": fmt(market.last_price),
                "mid_market": fmt(market.mid),
                "spread_bps": fmt(
                    ((market.best_ask() - market.best_bid()) / market.mid * 10000).quantize(Decimal("0.01"))
                ),
                "spread_absolute": fmt(market.best_ask() - market.best_bid()),
            }
        )

    async def best_bid_ask(self, request: SimRequest) -> SimResponse:
        ids = query_list(request, "product_ids") or list(self.sim.markets)
        return json_response({"pricebooks": [self._pricebook(pid, 1) for pid in ids]})

    async def ticker(self, request: SimRequest) -> SimResponse:
        market = self._market_or_404(request.match_info["product_id"])
        limit = query_int(request.query, "limit", 10, minimum=0, maximum=ANY_INT) or 10
        start, end = query_int_or_none(request, "start"), query_int_or_none(request, "end")
        trades = [
            {
                "trade_id": t.trade_id,
                "product_id": t.product_id,
                "price": fmt(t.price),
                "size": fmt(t.size),
                "time": iso(t.time),
                "side": t.side,
                "exchange": "",
            }
            for t in [
                t
                for t in self.sim.recent_trades(market.spec.product_id)
                if (start is None or t.time >= start) and (end is None or t.time <= end)
            ][-limit:][::-1]
        ]
        return json_response(
            {"trades": trades, "best_bid": fmt(market.best_bid()), "best_ask": fmt(market.best_ask())}
        )

    async def candles(self, request: SimRequest) -> SimResponse:
        market = self._market_or_404(request.match_info["product_id"])
        granularity = GRANULARITIES.get(request.query.get("granularity", ""))
        if granularity is None:
            raise BadRequest("granularity must be one of " + ", ".join(GRANULARITIES))
        now = int(self.sim.clock.now())
        end = query_int(request.query, "end", now, minimum=0, maximum=ANY_INT)
        start = query_int(request.query, "start", end - granularity * 300, minimum=0, maximum=end)
        limit = query_int(request.query, "limit", MAX_CANDLES, minimum=1, maximum=MAX_CANDLES)
        if (end - start) // granularity >= MAX_CANDLES:
            raise BadRequest(f"the range spans more than {MAX_CANDLES} candles: narrow start and end")
        found = self.sim.candles.candles(market.spec.product_id, start, end, granularity)[:limit]
        return json_response({"candles": [c.to_json() for c in found]})

    # ---- accounts, permissions, fees ------------------------------------------------------------------
    async def list_accounts(self, request: SimRequest) -> SimResponse:
        wanted = request.query.get("retail_portfolio_id")
        wallet = self.sim.portfolios.get(wanted).wallet if wanted else self.sim.accounts
        cache_key = (id(wallet), wallet.version, request.query_string)
        if self._accounts_body is None or self._accounts_body[0] != cache_key:
            portfolio = wallet.portfolio_uuid
            accounts = [account_json(a, portfolio) for a in wallet]
            chunk, cursor, has_next = page(accounts, request, 49, 250)
            body = {"accounts": chunk, "has_next": has_next, "cursor": cursor, "size": len(chunk)}
            self._accounts_body = (cache_key, orjson.dumps(body))
        return SimResponse(self._accounts_body[1])

    async def get_account(self, request: SimRequest) -> SimResponse:
        found = self.sim.portfolios.account(request.match_info["account_uuid"])
        if found is None:
            return advanced_error(404, "NOT_FOUND", "account not found")
        account, portfolio = found
        return json_response({"account": account_json(account, portfolio)})

    async def key_permissions(self, request: SimRequest) -> SimResponse:
        key = request.cdp_key
        assert key is not None  # the gateway verified it
        return json_response(
            {
                "can_view": "view" in key.permissions,
                "can_trade": "trade" in key.permissions,
                "can_transfer": "transfer" in key.permissions,
                "portfolio_uuid": self.sim.accounts.portfolio_uuid,
                "portfolio_type": "DEFAULT",
            }
        )

    async def transaction_summary(self, request: SimRequest) -> SimResponse:
        tier = self.sim.engine.fees.current()
        volume, paid = self.sim.engine.fees.volume_30d(), self.sim.engine.total_fees
        return json_response(
            {
                "total_volume": float(volume),  # Coinbase sends these two as JSON numbers
                "total_fees": float(paid),
                "fee_tier": {
                    "pricing_tier": tier.name,
                    "usd_from": fmt(tier.usd_from),
                    "usd_to": fmt(tier.usd_to) if tier.usd_to is not None else "",
                    "taker_fee_rate": fmt(tier.taker_fee_rate),
                    "maker_fee_rate": fmt(tier.maker_fee_rate),
                    "aop_from": "",
                    "aop_to": "",
                },
                "margin_rate": None,
                "goods_and_services_tax": None,
                "advanced_trade_only_volume": float(volume),
                "advanced_trade_only_fees": float(paid),
                "coinbase_pro_volume": 0,
                "coinbase_pro_fees": 0,
                "total_balance": "",
                "has_promo_fee": False,
            }
        )

    async def portfolios(self, request: SimRequest) -> SimResponse:
        listed = self.sim.portfolios.listed(request.query.get("portfolio_type"))
        return json_response({"portfolios": [p.to_json() for p in listed]})

    async def create_portfolio(self, request: SimRequest) -> SimResponse:
        body = await read_json(request)
        new_id = self.sim.engine.new_id
        portfolio = self.sim.portfolios.create(new_id(), body.get("name"), new_id)
        return json_response({"portfolio": portfolio.to_json()})

    async def edit_portfolio(self, request: SimRequest) -> SimResponse:
        body = await read_json(request)
        portfolio = self.sim.portfolios.rename(request.match_info["portfolio_uuid"], body.get("name"))
        return json_response({"portfolio": portfolio.to_json()})

    async def delete_portfolio(self, request: SimRequest) -> SimResponse:
        self.sim.portfolios.delete(request.match_info["portfolio_uuid"])
        return json_response({})

    async def move_funds(self, request: SimRequest) -> SimResponse:
        body = await read_json(request)
        funds = body.get("funds")
        if not isinstance(funds, dict) or not isinstance(funds.get("currency"), str):
            raise BadRequest("funds must be an object with value and currency")
        source, target = body.get("source_portfolio_uuid"), body.get("target_portfolio_uuid")
        if not isinstance(source, str) or not isinstance(target, str):
            raise BadRequest("source_portfolio_uuid and target_portfolio_uuid are required")
        amount = parse_decimal(funds.get("value"), "funds.value")
        self.sim.portfolios.move(amount, funds["currency"], source, target)
        return json_response({"source_portfolio_uuid": source, "target_portfolio_uuid": target})

    async def portfolio_breakdown(self, request: SimRequest) -> SimResponse:
        portfolio = self.sim.portfolios.get(request.match_info["portfolio_uuid"])
        currency = request.query.get("currency") or "USD"
        if self.sim.usd_price(currency) is None:
            raise BadRequest(f"currency {currency} has no USD price")
        return json_response({"breakdown": portfolio_breakdown(self.sim, portfolio, currency)})

    # ---- converts, payment methods ------------------------------------------------------------------
    async def convert_quote(self, request: SimRequest) -> SimResponse:
        body = await read_json(request)
        amount = parse_decimal(body.get("amount"), "amount")
        trade = self.sim.converts.quote(body.get("from_account"), body.get("to_account"), amount)
        return json_response({"trade": trade.to_json()})

    async def get_convert_trade(self, request: SimRequest) -> SimResponse:
        q, trade_id = request.query, request.match_info["trade_id"]
        trade = self.sim.converts.get(trade_id, q.get("from_account"), q.get("to_account"))
        return json_response({"trade": trade.to_json()})

    async def commit_convert_trade(self, request: SimRequest) -> SimResponse:
        body = await read_json(request)
        trade = self.sim.converts.commit(
            request.match_info["trade_id"], body.get("from_account"), body.get("to_account")
        )
        return json_response({"trade": trade.to_json()})

    async def list_payment_methods(self, request: SimRequest) -> SimResponse:
        return json_response({"payment_methods": [m.to_json() for m in self.sim.payment_methods.values()]})

    async def get_payment_method(self, request: SimRequest) -> SimResponse:
        method = self.sim.payment_methods.get(request.match_info["payment_method_id"])
        if method is None:
            return advanced_error(404, "NOT_FOUND", "payment method not found")
        return json_response({"payment_method": method.to_json()})

    # ---- orders -----------------------------------------------------------------------------------------
    @staticmethod
    def _order_request(body: dict[str, Any]) -> tuple[str, str, str]:
        client_order_id = body.get("client_order_id", "")
        product_id, side = body.get("product_id"), body.get("side")
        if not isinstance(client_order_id, str) or len(client_order_id) > 128:
            raise BadRequest("client_order_id must be a string of at most 128 characters")
        if not isinstance(product_id, str) or not product_id:
            raise BadRequest("product_id is required")
        if side not in ("BUY", "SELL"):
            raise BadRequest("side must be BUY or SELL")
        return client_order_id, product_id, side

    @staticmethod
    def _refusal(refused: OrderRefused, body: dict[str, Any]) -> SimResponse:
        return json_response(
            {
                "success": False,
                "failure_reason": "UNKNOWN_FAILURE_REASON",
                "order_id": "",
                "error_response": refused.error_response(),
                "order_configuration": body.get("order_configuration"),
            }
        )

    @staticmethod
    def _accepted(order: Order) -> SimResponse:
        return json_response(
            {
                "success": True,
                "failure_reason": "UNKNOWN_FAILURE_REASON",
                "order_id": order.order_id,
                "success_response": {
                    "order_id": order.order_id,
                    "product_id": order.product_id,
                    "side": order.side,
                    "client_order_id": order.client_order_id,
                },
                "order_configuration": {order.spec.config_key: order.spec.config},
            }
        )

    async def create_order(self, request: SimRequest) -> SimResponse:
        body = await read_json(request)
        client_order_id, product_id, side = self._order_request(body)
        if not client_order_id:
            raise BadRequest("client_order_id is required")
        key = request.cdp_key
        assert key is not None  # the gateway verified it
        portfolio = self._portfolio(body)
        try:
            spec = OrderSpec.parse(body.get("order_configuration"))
            order, created = self.sim.engine.submit(
                client_order_id,
                product_id,
                side,
                spec,
                key_name=key.name,
                leverage=str(body.get("leverage") or ""),
                margin_type=str(body.get("margin_type") or ""),
                portfolio_uuid=portfolio,
                attached=body.get("attached_order_configuration"),
            )
        except OrderRefused as refused:
            return self._refusal(refused, body)
        self.sim.publish_book(product_id)
        if created and self.sim.dice.drop_after_accept():
            raise DropConnection
        return self._accepted(order)

    def _portfolio(self, body: dict[str, Any]) -> str:
        """The order's `retail_portfolio_id`, checked (an unknown one is a 404, as on Coinbase), or ""."""
        portfolio = body.get("retail_portfolio_id")
        return self.sim.portfolios.get(str(portfolio)).uuid if portfolio else ""

    async def preview_order(self, request: SimRequest) -> SimResponse:
        body = await read_json(request)
        _, product_id, side = self._order_request(body)
        is_max = body.get("is_max") is True
        portfolio = self._portfolio(body)
        try:
            configuration = body.get("order_configuration")
            if is_max:
                configuration = self._sized_to_max(product_id, side, configuration, portfolio)
            spec = OrderSpec.parse(configuration)
            preview = self.sim.engine.preview(
                product_id, side, spec, body.get("attached_order_configuration"), portfolio
            )
        except OrderRefused as refused:
            return json_response(
                {
                    "order_total": "0",
                    "commission_total": "0",
                    "errs": [refused.preview_failure_reason],
                    "warning": [],
                    "quote_size": "0",
                    "base_size": "0",
                    "best_bid": "0",
                    "best_ask": "0",
                    "is_max": False,
                }
            )
        return json_response(
            {
                "order_total": fmt(preview.order_total),
                "commission_total": fmt(preview.commission_total),
                "errs": [],
                "warning": [],
                "quote_size": fmt(preview.quote_size),
                "base_size": fmt(preview.base_size),
                "best_bid": fmt(preview.best_bid),
                "best_ask": fmt(preview.best_ask),
                "is_max": is_max,
                "order_margin_total": fmt(preview.margin),
                "leverage": str(body.get("leverage") or "1"),
                "slippage": fmt(preview.slippage),
                "preview_id": self.sim.engine.new_id(),
            }
        )

    def _sized_to_max(self, product_id: str, side: str, configuration: Any, portfolio: str) -> Any:
        """is_max: a market order sized to everything available (quote to buy with, base to sell)."""
        market = self._market_or_404(product_id)
        if not isinstance(configuration, dict) or len(configuration) != 1:
            return configuration
        ((key, config),) = configuration.items()
        if not key.startswith("market_market_") or not isinstance(config, dict) or market.spec.is_future:
            raise BadRequest("is_max applies to spot market orders")
        spec = market.spec
        wallet = self.sim.engine.wallet(spec, portfolio)
        if side == "BUY":
            # the fee comes out of the quote: what is available is the whole budget
            sized = {"quote_size": fmt(wallet.available(spec.quote_currency))}
        else:
            sized = {"base_size": fmt(market.round_size(wallet.available(spec.base_currency)))}
        return {key: sized}

    async def batch_cancel(self, request: SimRequest) -> SimResponse:
        body = await read_json(request)
        order_ids = body.get("order_ids")
        if not isinstance(order_ids, list) or not all(isinstance(o, str) for o in order_ids):
            raise BadRequest("order_ids must be a list of strings")
        results = []
        touched = set()
        for order_id in order_ids:
            success, reason = self.sim.engine.cancel(order_id)
            results.append({"success": success, "failure_reason": reason, "order_id": order_id})
            order = self.sim.engine.orders.get(order_id)
            if order is not None:
                touched.add(order.product_id)
        for product_id in touched:
            self.sim.publish_book(product_id)
        return json_response({"results": results})

    @staticmethod
    def _edit_args(body: dict[str, Any]) -> tuple[str, Decimal | None, Decimal | None]:
        order_id = body.get("order_id")
        if not isinstance(order_id, str):
            raise BadRequest("order_id is required")
        size = parse_decimal(body["size"], "size") if body.get("size") else None
        price = parse_decimal(body["price"], "price") if body.get("price") else None
        return order_id, size, price

    async def edit_order(self, request: SimRequest) -> SimResponse:
        body = await read_json(request)
        order_id, size, price = self._edit_args(body)
        preview_reason = "UNKNOWN_PREVIEW_FAILURE_REASON"
        try:
            reason = self.sim.engine.edit(
                order_id,
                size,
                price,
                body.get("cancel_attached_order") is True,
                body.get("attached_order_configuration"),
            )
        except OrderRefused as refused:  # the new attached order does not fit the order
            reason, preview_reason = "COMMANDER_REJECTED_EDIT_ORDER", refused.preview_failure_reason
        if reason is not None:
            errors = [{"edit_failure_reason": reason, "preview_failure_reason": preview_reason}]
            return json_response({"success": False, "errors": errors})
        order = self.sim.engine.orders[order_id]
        self.sim.publish_book(order.product_id)
        return json_response({"success": True, "errors": []})

    async def edit_preview(self, request: SimRequest) -> SimResponse:
        order_id, size, price = self._edit_args(await read_json(request))
        order = self.sim.engine.orders.get(order_id)
        if order is None or not order.is_open:
            errors = [{"edit_failure_reason": "ORDER_NOT_FOUND", "preview_failure_reason": ""}]
            return json_response({"errors": errors})
        new_size = size or order.spec.base_size or ZERO
        new_price = price or order.spec.limit_price or ZERO
        commission = new_size * new_price * self.sim.engine.fees.taker_fee_rate
        return json_response(
            {
                "errors": [],
                "slippage": "0",
                "order_total": fmt(new_size * new_price + commission),
                "commission_total": fmt(commission),
                "quote_size": fmt(new_size * new_price),
                "base_size": fmt(new_size),
                "best_bid": fmt(self.sim.markets[order.product_id].best_bid()),
                "best_ask": fmt(self.sim.markets[order.product_id].best_ask()),
                "average_filled_price": fmt(order.average_filled_price),
            }
        )

    async def close_position(self, request: SimRequest) -> SimResponse:
        body = await read_json(request)
        client_order_id, product_id = body.get("client_order_id", ""), body.get("product_id")
        if not isinstance(client_order_id, str) or not isinstance(product_id, str):
            raise BadRequest("client_order_id and product_id are required")
        size = parse_decimal(body["size"], "size") if body.get("size") else None
        key = request.cdp_key
        assert key is not None  # the gateway verified it
        try:
            order = self.sim.engine.close_position(client_order_id, product_id, size, key.name)
        except OrderRefused as refused:
            # what close_position would have placed: the SDK parses order_configuration as an object
            config = {"base_size": fmt(size)} if size is not None else {}
            return self._refusal(refused, {"order_configuration": {"market_market_ioc": config}})
        self.sim.publish_book(product_id)
        return self._accepted(order)

    async def get_order(self, request: SimRequest) -> SimResponse:
        order = self.sim.engine.orders.get(request.match_info["order_id"])
        if order is None:
            return advanced_error(404, "NOT_FOUND", "order with this orderID was not found")
        return json_response({"order": order.to_advanced()})

    async def list_orders(self, request: SimRequest) -> SimResponse:
        product_ids = set(query_list(request, "product_ids", "product_id"))
        statuses = set(query_list(request, "order_status"))
        order_ids = set(query_list(request, "order_ids"))
        client_ids = set(query_list(request, "client_order_id", "client_order_ids"))
        side = request.query.get("order_side")
        start, end = query_time(request.query, "start_date"), query_time(request.query, "end_date")
        if client_ids:  # the lookup a client makes to confirm an order whose response was lost
            candidates = [o for c in client_ids if (o := self.sim.ledger.by_client_order_id(c)) is not None]
        else:
            candidates = list(self.sim.ledger)
        selected = [
            o.to_advanced()
            for o in reversed(candidates)
            if (not product_ids or o.product_id in product_ids)
            and (not statuses or o.status in statuses)
            and (not order_ids or o.order_id in order_ids)
            and (side is None or o.side == side)
            and (start is None or o.created_time >= start)
            and (end is None or o.created_time <= end)
        ]
        chunk, cursor, has_next = page(selected, request, 100, 1000)
        return json_response(
            {
                "orders": chunk,
                "sequence": str(self.sim.engine.order_events),
                "has_next": has_next,
                "cursor": cursor,
            }
        )

    async def list_fills(self, request: SimRequest) -> SimResponse:
        order_ids = set(query_list(request, "order_ids", "order_id"))
        product_ids = set(query_list(request, "product_ids", "product_id"))
        trade_ids = set(query_list(request, "trade_ids"))
        selected = [
            f.to_advanced()
            for f in reversed(self.sim.engine.fills)
            if (not order_ids or f.order_id in order_ids)
            and (not product_ids or f.product_id in product_ids)
            and (not trade_ids or f.trade_id in trade_ids)
        ]
        chunk, cursor, _ = page(selected, request, 100, 1000)
        return json_response({"fills": chunk, "cursor": cursor})

    # ---- futures (CFM) --------------------------------------------------------------------------------
    def balance_summary_json(self) -> dict[str, Any]:
        engine, accounts = self.sim.engine, self.sim.accounts
        specs, marks = engine.specs(), engine.marks()
        usd = accounts.get("USD")
        balance = usd.balance if usd is not None else ZERO
        hold = usd.hold if usd is not None else ZERO
        unrealized = sum(
            (
                FuturesPositions.unrealized_pnl(p, specs[p.product_id], marks[p.product_id])
                for p in engine.positions.open_positions()
            ),
            ZERO,
        )
        realized = engine.positions.daily_realized_pnl()  # closed positions' PnL counts too
        initial = engine.positions.initial_margin(specs, marks)
        maintenance = engine.positions.maintenance_margin(specs, marks)
        buying_power = engine.futures_buying_power()
        equity = balance + unrealized
        buffer_amount = equity - maintenance
        buffer_pct = (
            (buffer_amount / maintenance * 100).quantize(Decimal("0.01"))
            if maintenance > ZERO
            else Decimal(1000)
        )

        def window(kind: str) -> dict[str, str]:
            return {
                "margin_window_type": kind,
                "margin_level": "MARGIN_LEVEL_TYPE_BASE",
                "initial_margin": fmt(initial),
                "maintenance_margin": fmt(maintenance),
                "liquidation_buffer_percentage": fmt(buffer_pct),
                "total_hold": fmt(hold),
                "futures_buying_power": fmt(buying_power),
            }

        return {
            "futures_buying_power": money(buying_power, "USD"),
            "total_usd_balance": money(balance, "USD"),
            "cbi_usd_balance": money(balance - initial, "USD"),
            "cfm_usd_balance": money(initial, "USD"),
            "total_open_orders_hold_amount": money(hold, "USD"),
            "unrealized_pnl": money(unrealized, "USD"),
            "daily_realized_pnl": money(realized, "USD"),
            "initial_margin": money(initial, "USD"),
            "available_margin": money(buying_power, "USD"),
            "liquidation_threshold": money(maintenance, "USD"),
            "liquidation_buffer_amount": money(buffer_amount, "USD"),
            "liquidation_buffer_percentage": fmt(buffer_pct),
            "intraday_margin_window_measure": window("FCM_MARGIN_WINDOW_TYPE_INTRADAY"),
            "overnight_margin_window_measure": window("FCM_MARGIN_WINDOW_TYPE_OVERNIGHT"),
        }

    async def balance_summary(self, request: SimRequest) -> SimResponse:
        return json_response({"balance_summary": self.balance_summary_json()})

    def _position_json(self, product_id: str) -> dict[str, Any] | None:
        position = self.sim.engine.positions.get(product_id)
        if position is None:
            return None
        market = self.sim.markets[product_id]
        spec = market.spec
        return {
            "product_id": product_id,
            "expiration_time": spec.contract_expiry,
            "side": position.side,
            "number_of_contracts": fmt(abs(position.contracts)),
            "current_price": fmt(market.mid),
            "avg_entry_price": fmt(position.avg_entry_price),
            "unrealized_pnl": fmt(FuturesPositions.unrealized_pnl(position, spec, market.mid)),
            "daily_realized_pnl": fmt(position.daily_realized_pnl),
        }

    async def list_positions(self, request: SimRequest) -> SimResponse:
        positions = [self._position_json(p.product_id) for p in self.sim.engine.positions.open_positions()]
        return json_response({"positions": positions})

    async def get_position(self, request: SimRequest) -> SimResponse:
        product_id = request.match_info["product_id"]
        self._market_or_404(product_id)
        position = self._position_json(product_id)
        return json_response({"position": position if position is not None else {}})

    async def list_sweeps(self, request: SimRequest) -> SimResponse:
        sweep = self.sim.pending_sweep
        return json_response({"sweeps": [sweep] if sweep is not None else []})

    async def schedule_sweep(self, request: SimRequest) -> SimResponse:
        body = await read_json(request)
        if self.sim.pending_sweep is not None:
            raise BadRequest("a sweep is already pending: cancel it before scheduling another")
        raw = body.get("usd_amount")
        amount = None if raw is None or raw == "" else parse_decimal(raw, "usd_amount")
        self.sim.pending_sweep = {
            "id": self.sim.engine.new_id(),
            "requested_amount": money(amount if amount is not None else ZERO, "USD"),
            "should_sweep_all": amount is None,
            "status": "PENDING",
            "scheduled_time": iso(self.sim.clock.now()),
        }
        return json_response({"success": True})

    async def cancel_sweep(self, request: SimRequest) -> SimResponse:
        cancelled = self.sim.pending_sweep is not None
        self.sim.pending_sweep = None
        return json_response({"success": cancelled})

    async def margin_setting(self, request: SimRequest) -> SimResponse:
        return json_response({"setting": self.sim.intraday_margin_setting})

    async def set_margin_setting(self, request: SimRequest) -> SimResponse:
        body = await read_json(request)
        setting = body.get("setting")
        if setting not in ("INTRADAY_MARGIN_SETTING_STANDARD", "INTRADAY_MARGIN_SETTING_INTRADAY"):
            raise BadRequest("setting must be INTRADAY_MARGIN_SETTING_STANDARD or _INTRADAY")
        self.sim.intraday_margin_setting = str(setting)
        return json_response({})

    async def current_margin_window(self, request: SimRequest) -> SimResponse:
        kind, ends = current_window(self.sim.clock.now())
        return json_response(
            {
                "margin_window": {"margin_window_type": kind, "end_time": iso(ends)},
                "is_intraday_margin_killswitch_enabled": False,
                "is_intraday_margin_enrollment_killswitch_enabled": False,
            }
        )

    # ---- v2 (what ccxt loads at start and reads balances from) ----------------------------------------
    def _currencies(self) -> set[str]:
        names = {a.currency for a in self.sim.accounts}
        for market in self.sim.markets.values():
            names.update(c for c in (market.spec.base_currency, market.spec.quote_currency) if c)
        return names

    async def v2_time(self, request: SimRequest) -> SimResponse:
        now = self.sim.clock.now()
        return json_response({"data": {"iso": iso(now).split(".")[0] + "Z", "epoch": int(now)}})

    async def v2_currencies(self, request: SimRequest) -> SimResponse:
        data = [
            {"id": c, "name": FIAT[c], "min_size": "0.01"} for c in sorted(self._currencies()) if c in FIAT
        ]
        return json_response({"data": data})

    async def v2_crypto_currencies(self, request: SimRequest) -> SimResponse:
        data = [
            {
                "asset_id": str(self.sim.asset_ids[c]),
                "code": c,
                "name": CRYPTO_NAMES.get(c, c),
                "color": "#0052FF",
                "sort_index": i,
                "exponent": 8,
                "type": "crypto",
                "address_regex": "^.+$",
            }
            for i, c in enumerate(sorted(self._currencies() - set(FIAT)))
        ]
        return json_response({"data": data})

    async def v2_exchange_rates(self, request: SimRequest) -> SimResponse:
        currency = request.query.get("currency", "USD")
        rates: dict[str, str] = {currency: "1"}
        for market in self.sim.markets.values():
            spec = market.spec
            if spec.quote_currency == currency and spec.base_currency and market.mid > ZERO:
                rates[spec.base_currency] = fmt((1 / market.mid).quantize(Decimal("1e-12")))
        return json_response({"data": {"currency": currency, "rates": rates}})

    async def v2_accounts(self, request: SimRequest) -> SimResponse:
        data = [v2_account_json(a) for a in self.sim.accounts]
        pagination = {
            "ending_before": None,
            "starting_after": None,
            "previous_ending_before": None,
            "next_starting_after": None,
            "limit": len(data),
            "order": "desc",
            "previous_uri": None,
            "next_uri": None,
        }
        return json_response({"pagination": pagination, "data": data})
