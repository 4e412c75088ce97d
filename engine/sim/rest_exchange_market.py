"""Coinbase Exchange public market data: products, the book at levels 1/2/3, ticker, trades, candles, 24 h
stats, currencies and the time, in the Exchange's shapes (https://docs.cdp.coinbase.com/exchange/reference).

Only spot products trade on Exchange: the simulator's futures are Advanced Trade's alone.
"""

from __future__ import annotations

import uuid
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from engine.sim.clock import fmt, iso
from engine.sim.exchange_tape import GRANULARITIES, ExchangeTape
from engine.sim.messages import SimRequest, SimResponse
from engine.sim.products import CRYPTO_NAMES, FIAT
from engine.sim.responses import BadRequest, json_response
from engine.sim.trading_status import ONLINE, product_fields
from engine.sim.values import InvalidValue, parse_int, query_int, query_time

if TYPE_CHECKING:
    from collections.abc import Callable

    from engine.sim.app import Simulator
    from engine.sim.market import Market
    from engine.sim.orders import Order

PUBLIC = "exchange_public"
_STABLECOINS = {"USDC": "USD"}  # converts 1:1 with its fiat at /conversions


def message(status: int, text: str) -> SimResponse:
    """Coinbase Exchange's error body: `{"message": ...}`."""
    return json_response({"message": text}, status)


def level_order_id(product_id: str, side: str, price: Decimal) -> str:
    """A synthetic level is one resting order at level 3; its id stays the same while the level lives."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"{product_id}/{side}/{price}"))


def exchange_product(market: Market, status: str = ONLINE) -> dict[str, Any]:
    spec = market.spec
    product = {
        "id": spec.product_id,
        "base_currency": spec.base_currency,
        "quote_currency": spec.quote_currency,
        "quote_increment": fmt(spec.price_increment),
        "base_increment": fmt(spec.base_increment),
        "display_name": spec.display_name or f"{spec.base_currency}/{spec.quote_currency}",
        "min_market_funds": fmt(spec.quote_min_size),
        "margin_enabled": False,
        "post_only": False,
        "limit_only": False,
        "cancel_only": False,
        "status": "online",
        "status_message": "",
        "trading_disabled": False,
        "fx_stablecoin": False,
        "max_slippage_percentage": "0.03000000",
        "auction_mode": False,
        "high_bid_limit_percentage": "",
    }
    fields = product_fields(status)
    del fields["is_disabled"]  # an Advanced Trade field
    product.update(fields)
    return product


class ExchangeMarketApi:
    def __init__(self, sim: Simulator, tape: ExchangeTape, user_orders: Callable[[str], list[Order]]) -> None:
        self.sim = sim
        self.tape = tape
        self._user_orders = user_orders  # the user's resting orders: level 3 lists them beside the rest

    def routes(self) -> list[tuple[str, str, Any, str]]:
        return [
            ("GET", "/time", self.time, PUBLIC),
            ("GET", "/products", self.products, PUBLIC),
            ("GET", "/products/{product_id}", self.product, PUBLIC),
            ("GET", "/products/{product_id}/book", self.book, PUBLIC),
            ("GET", "/products/{product_id}/ticker", self.ticker, PUBLIC),
            ("GET", "/products/{product_id}/trades", self.trades, PUBLIC),
            ("GET", "/products/{product_id}/candles", self.candles, PUBLIC),
            ("GET", "/products/{product_id}/stats", self.stats, PUBLIC),
            ("GET", "/currencies", self.currencies, PUBLIC),
            ("GET", "/currencies/{currency_id}", self.currency, PUBLIC),
        ]

    def spot(self, product_id: str) -> Market | None:
        market = self.sim.markets.get(product_id)
        return market if market is not None and not market.spec.is_future else None

    def _market(self, request: SimRequest) -> Market:
        market = self.spot(request.match_info["product_id"])
        if market is None:
            raise BadRequest("NotFound", 404)
        return market

    async def time(self, request: SimRequest) -> SimResponse:
        now = self.sim.clock.now()
        return json_response({"iso": iso(now), "epoch": round(now, 3)})

    async def products(self, request: SimRequest) -> SimResponse:
        return json_response(
            [
                exchange_product(m, self.sim.product_status[m.spec.product_id])
                for m in self.sim.markets.values()
                if not m.spec.is_future
            ]
        )

    async def product(self, request: SimRequest) -> SimResponse:
        market = self._market(request)
        return json_response(exchange_product(market, self.sim.product_status[market.spec.product_id]))

    async def book(self, request: SimRequest) -> SimResponse:
        market = self._market(request)
        level = request.query.get("level", "1")
        if level not in ("1", "2", "3"):
            raise BadRequest("Invalid level")
        depth = 1 if level == "1" else None
        snapshot = market.book.snapshot(depth)
        product_id = market.spec.product_id

        def rows(side: str, levels: list[tuple[Decimal, Decimal]]) -> list[list[Any]]:
            if level != "3":
                return [[fmt(p), fmt(s), 1] for p, s in levels]
            entries = [(p, s, level_order_id(product_id, side, p)) for p, s in levels]
            for order in self._user_orders(product_id):
                if order.side.lower() == side and order.spec.limit_price is not None:
                    entries.append((order.spec.limit_price, order.leaves, order.order_id))
            entries.sort(key=lambda e: -e[0] if side == "buy" else e[0])
            return [[fmt(p), fmt(s), order_id] for p, s, order_id in entries]

        return json_response(
            {
                "bids": rows("buy", snapshot["bids"]),
                "asks": rows("sell", snapshot["asks"]),
                "sequence": self.tape.sequence(product_id),
                "auction_mode": False,
                "auction": None,
                "time": iso(self.sim.clock.now()),
            }
        )

    async def ticker(self, request: SimRequest) -> SimResponse:
        market = self._market(request)
        trades = self.sim.recent_trades(market.spec.product_id)
        last = trades[-1] if trades else None
        return json_response(
            {
                "ask": fmt(market.best_ask()),
                "bid": fmt(market.best_bid()),
                "volume": fmt(market.volume_24h),
                "trade_id": int(last.trade_id) if last else 0,
                "price": fmt(market.last_price),
                "size": fmt(last.size) if last else "0",
                "time": iso(last.time if last else self.sim.clock.now()),
                "rfq_volume": "0",
            }
        )

    async def trades(self, request: SimRequest) -> SimResponse:
        market = self._market(request)
        limit = _limit(request, 100, 1000)
        after = query_cursor(request, "after")
        rows = []
        for trade in reversed(self.sim.recent_trades(market.spec.product_id)):
            trade_id = int(trade.trade_id)
            if after is not None and trade_id >= after:
                continue
            rows.append(
                {
                    "time": iso(trade.time),
                    "trade_id": trade_id,
                    "price": fmt(trade.price),
                    "size": fmt(trade.size),
                    # Exchange names the maker's side: a taker buy lifted a resting sell
                    "side": "sell" if trade.side == "BUY" else "buy",
                }
            )
            if len(rows) >= limit:
                break
        response = json_response(rows)
        if rows:
            response.headers["cb-before"] = str(rows[0]["trade_id"])
            response.headers["cb-after"] = str(rows[-1]["trade_id"])
        return response

    async def candles(self, request: SimRequest) -> SimResponse:
        market = self._market(request)
        try:
            granularity = query_int(request.query, "granularity", 60, minimum=1, maximum=86_400)
        except InvalidValue:
            raise BadRequest("Unsupported granularity") from None
        if granularity not in GRANULARITIES:
            raise BadRequest("Unsupported granularity")
        now = self.sim.clock.now()
        try:
            end = query_time(request.query, "end")
            end = now if end is None else end
            start = query_time(request.query, "start")
            start = end - 300 * granularity if start is None else start
        except InvalidValue:
            raise BadRequest("Invalid start or end") from None
        if (end - start) / granularity > 300:
            raise BadRequest(
                "granularity too small for the requested time range. "
                "Count of aggregations requested exceeds 300"
            )
        rows = [
            [c.start, float(c.low), float(c.high), float(c.open), float(c.close), float(c.volume)]
            for c in self.tape.candles(market.spec.product_id, granularity, start, end)
        ]
        return json_response(rows)

    async def stats(self, request: SimRequest) -> SimResponse:
        market = self._market(request)
        return json_response(
            {
                "open": fmt(market.open_24h),
                "high": fmt(market.high_24h),
                "low": fmt(market.low_24h),
                "last": fmt(market.last_price),
                "volume": fmt(market.volume_24h),
                "volume_30day": fmt(market.volume_24h),
                "rfq_volume_24hour": "0",
                "rfq_volume_30day": "0",
                "conversions_volume_24hour": "0",
                "conversions_volume_30day": "0",
            }
        )

    def _currency(self, currency: str) -> dict[str, Any]:
        fiat = currency in FIAT
        converts = [c for c, f in _STABLECOINS.items() if f == currency]
        converts += [_STABLECOINS[currency]] if currency in _STABLECOINS else []
        return {
            "id": currency,
            "name": FIAT.get(currency) or CRYPTO_NAMES.get(currency, currency),
            "min_size": "0.01" if fiat else "0.00000001",
            "status": "online",
            "message": "",
            "max_precision": "0.01" if fiat else "0.00000001",
            "convertible_to": converts,
            "details": {
                "type": "fiat" if fiat else "crypto",
                "symbol": "$" if currency == "USD" else "",
                "network_confirmations": 0 if fiat else 6,
                "sort_order": 0,
                "crypto_address_link": "",
                "crypto_transaction_link": "",
                "push_payment_methods": [],
                "min_withdrawal_amount": 0,
                "max_withdrawal_amount": 0,
            },
            "default_network": "" if fiat else currency.lower(),
            "supported_networks": [],
        }

    async def currencies(self, request: SimRequest) -> SimResponse:
        return json_response([self._currency(a.currency) for a in self.sim.accounts])

    async def currency(self, request: SimRequest) -> SimResponse:
        currency = request.match_info["currency_id"]
        if self.sim.accounts.get(currency) is None:
            raise BadRequest("NotFound", 404)
        return json_response(self._currency(currency))


def _limit(request: SimRequest, default: int, maximum: int) -> int:
    try:
        return query_int(request.query, "limit", default, minimum=1, maximum=maximum)
    except InvalidValue:
        raise BadRequest(f"limit must be between 1 and {maximum}") from None


def query_cursor(request: SimRequest, name: str) -> int | None:
    """A `before`/`after` page cursor: a non-negative integer, absent or empty gives None."""
    raw = request.query.get(name)
    if raw is None or raw == "":
        return None
    try:
        return parse_int(raw, name, minimum=0, maximum=2**63 - 1)
    except InvalidValue:
        raise BadRequest(f"Invalid {name}") from None


__all__ = ["ExchangeMarketApi", "exchange_product", "level_order_id", "message", "query_cursor"]
