"""The Coinbase Exchange subset for HMAC keys: `/time`, `/accounts`, `/orders` (create, list, get, cancel).

Exchange orders go through the same matching engine and ledger as Advanced Trade orders (one portfolio);
`client_oid` gives the same idempotency as `client_order_id`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from engine.sim.clock import fmt, iso
from engine.sim.messages import SimRequest, SimResponse
from engine.sim.orders import CANCELLED, EXPIRED, FILLED, GTC, GTD, OPEN, Order, OrderRefused, OrderSpec
from engine.sim.responses import DropConnection, json_response, read_json

if TYPE_CHECKING:
    from engine.sim.app import Simulator

PUBLIC, VIEW, TRADE = "exchange_public", "view", "trade"

_TIF = {
    "GTC": ("limit_limit_gtc", GTC),
    "GTT": ("limit_limit_gtd", GTD),
    "IOC": ("sor_limit_ioc", ""),
    "FOK": ("limit_limit_fok", ""),
}
_TIF_BACK = {
    "GOOD_UNTIL_CANCELLED": "GTC",
    "GOOD_UNTIL_DATE_TIME": "GTT",
    "IMMEDIATE_OR_CANCEL": "IOC",
    "FILL_OR_KILL": "FOK",
}


def _message(status: int, message: str) -> SimResponse:
    return json_response({"message": message}, status)


def exchange_order_json(order: Order) -> dict[str, Any]:
    spec = order.spec
    status = {OPEN: "open", FILLED: "done", CANCELLED: "done", EXPIRED: "done"}.get(order.status, "pending")
    done_reason = {FILLED: "filled", CANCELLED: "canceled", EXPIRED: "canceled"}.get(order.status)
    body: dict[str, Any] = {
        "id": order.order_id,
        "product_id": order.product_id,
        "side": order.side.lower(),
        "type": "market" if spec.order_type == "MARKET" else "limit",
        "time_in_force": _TIF_BACK.get(spec.time_in_force, "GTC"),
        "post_only": spec.post_only,
        "created_at": iso(order.created_time),
        "fill_fees": fmt(order.total_fees),
        "filled_size": fmt(order.filled_size),
        "executed_value": fmt(order.filled_value),
        "status": status,
        "settled": status == "done",
        "stp": "dc",
        "profile_id": order.portfolio_uuid,
    }
    if spec.limit_price is not None:
        body["price"] = fmt(spec.limit_price)
    if spec.base_size is not None:
        body["size"] = fmt(spec.base_size)
    if spec.quote_size is not None:
        body["funds"] = fmt(spec.quote_size)
    if order.client_order_id:
        body["client_oid"] = order.client_order_id
    if done_reason is not None:
        body["done_reason"] = done_reason
        body["done_at"] = iso(order.done_time or order.created_time)
    return body


class ExchangeApi:
    def __init__(self, sim: Simulator) -> None:
        self.sim = sim

    def routes(self) -> list[tuple[str, str, Any, str]]:
        return [
            ("GET", "/time", self.time, PUBLIC),
            ("GET", "/accounts", self.accounts, VIEW),
            ("POST", "/orders", self.create_order, TRADE),
            ("GET", "/orders", self.list_orders, VIEW),
            ("GET", "/orders/{order_id}", self.get_order, VIEW),
            ("DELETE", "/orders/{order_id}", self.cancel_order, TRADE),
        ]

    async def time(self, request: SimRequest) -> SimResponse:
        now = self.sim.clock.now()
        return json_response({"iso": iso(now), "epoch": round(now, 3)})

    async def accounts(self, request: SimRequest) -> SimResponse:
        return json_response(
            [
                {
                    "id": a.uuid,
                    "currency": a.currency,
                    "balance": fmt(a.balance),
                    "hold": fmt(a.hold),
                    "available": fmt(a.available),
                    "profile_id": self.sim.accounts.portfolio_uuid,
                    "trading_enabled": True,
                    "pending_deposit": "0",
                    "display_name": a.name,
                }
                for a in self.sim.accounts
            ]
        )

    @staticmethod
    def _spec(body: dict[str, Any], now: float) -> OrderSpec:
        """Translate an Exchange order body into the equivalent Advanced Trade configuration."""
        order_type = body.get("type", "limit")
        if order_type == "market":
            sizes = (("base_size", "size"), ("quote_size", "funds"))
            return OrderSpec.parse({"market_market_ioc": {k: str(body[v]) for k, v in sizes if body.get(v)}})
        if order_type != "limit":
            raise OrderRefused("INVALID_ARGUMENT", "", "type must be limit or market")
        key, _ = _TIF.get(str(body.get("time_in_force", "GTC")), (None, None))
        if key is None:
            raise OrderRefused("INVALID_ARGUMENT", "", "Invalid time_in_force")
        config: dict[str, Any] = {
            "base_size": str(body.get("size", "")),
            "limit_price": str(body.get("price", "")),
        }
        if key in ("limit_limit_gtc", "limit_limit_gtd"):
            config["post_only"] = bool(body.get("post_only", False))
        if key == "limit_limit_gtd":
            cancel_after = {"min": 60, "hour": 3600, "day": 86400}.get(
                str(body.get("cancel_after", "day")), 86400
            )
            config["end_time"] = iso(now + cancel_after)
        return OrderSpec.parse({key: config})

    async def create_order(self, request: SimRequest) -> SimResponse:
        body = await read_json(request)
        product_id, side = body.get("product_id"), str(body.get("side", "")).upper()
        client_oid = body.get("client_oid") or ""
        if not isinstance(product_id, str) or side not in ("BUY", "SELL") or not isinstance(client_oid, str):
            return _message(400, "Invalid order: product_id, side (buy/sell) required")
        key = request.exchange_key
        assert key is not None  # the gateway verified it
        try:
            spec = self._spec(body, self.sim.clock.now())
            order, created = self.sim.engine.submit(
                client_oid, product_id, side, spec, key_name=key.key, source="exchange"
            )
        except OrderRefused as refused:
            if refused.error == "INSUFFICIENT_FUND":
                return _message(400, "Insufficient funds")
            if refused.error == "INVALID_LIMIT_PRICE_POST_ONLY":
                return _message(400, "Post only mode")
            return _message(400, refused.message or refused.preview_failure_reason or refused.error)
        self.sim.publish_book(product_id)
        if created and self.sim.dice.drop_after_accept():
            raise DropConnection
        return json_response(exchange_order_json(order))

    async def list_orders(self, request: SimRequest) -> SimResponse:
        statuses = set(request.query.getall("status", ["open", "pending", "active"]))
        product_id = request.query.get("product_id")
        try:
            limit = min(max(int(request.query.get("limit", 100)), 1), 1000)
        except ValueError:
            return _message(400, "Invalid limit")
        rows = []
        for order in reversed(list(self.sim.ledger)):
            shaped = exchange_order_json(order)
            if ("all" in statuses or shaped["status"] in statuses) and (
                product_id is None or order.product_id == product_id
            ):
                rows.append(shaped)
                if len(rows) >= limit:
                    break
        return json_response(rows)

    def _find(self, ref: str) -> Order | None:
        if ref.startswith("client:"):
            return self.sim.ledger.by_client_order_id(ref[len("client:") :])
        return self.sim.engine.orders.get(ref)

    async def get_order(self, request: SimRequest) -> SimResponse:
        order = self._find(request.match_info["order_id"])
        if order is None:
            return _message(404, "NotFound")
        return json_response(exchange_order_json(order))

    async def cancel_order(self, request: SimRequest) -> SimResponse:
        order = self._find(request.match_info["order_id"])
        if order is None:
            return _message(404, "order not found")
        success, _ = self.sim.engine.cancel(order.order_id)
        if not success:
            return _message(400, "Order already done")
        self.sim.publish_book(order.product_id)
        return json_response(order.order_id)
