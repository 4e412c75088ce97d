"""Coinbase Exchange's private REST API for HMAC keys: accounts (holds, ledger), orders (limit, market, stop;
GTC/GTT/IOC/FOK), fills, fees, profiles and USD/USDC conversions, in the Exchange's shapes and errors
(https://docs.cdp.coinbase.com/exchange/reference). The public market data is `rest_exchange_market`.

Exchange orders go through the same matching engine and accounts as Advanced Trade orders (one portfolio);
`client_oid` gives the same idempotency as `client_order_id`. Lists run newest first behind Coinbase's
`before`/`after` cursors, answered in the `CB-BEFORE`/`CB-AFTER` headers.
"""

from __future__ import annotations

import uuid
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from engine.sim.clock import fmt, iso
from engine.sim.exchange_tape import ExchangeTape, LedgerEntry
from engine.sim.market import Trade
from engine.sim.messages import SimRequest, SimResponse
from engine.sim.orders import (
    CANCELLED,
    EXPIRED,
    FILLED,
    GTD,
    OPEN,
    STOP_DOWN,
    STOP_LIMIT,
    STOP_UP,
    Fill,
    Order,
    OrderRefused,
    OrderSpec,
)
from engine.sim.ratelimit import EXCHANGE_FILLS, EXCHANGE_PRIVATE, EXCHANGE_PUBLIC
from engine.sim.responses import BadRequest, DropConnection, json_response, read_json
from engine.sim.rest_exchange_market import ExchangeMarketApi, message, query_cursor
from engine.sim.values import InvalidValue, parse_decimal, query_int
from engine.sim.ws_exchange import ExchangeFeed

if TYPE_CHECKING:
    from engine.sim.app import Simulator

VIEW, TRADE = "view", "trade"

_TIF = {"GTC": "gtc", "GTT": "gtd", "IOC": "ioc", "FOK": "fok"}
_TIF_BACK = {
    "GOOD_UNTIL_CANCELLED": "GTC",
    "GOOD_UNTIL_DATE_TIME": "GTT",
    "IMMEDIATE_OR_CANCEL": "IOC",
    "FILL_OR_KILL": "FOK",
}
_CANCEL_AFTER = {"min": 60, "hour": 3600, "day": 86400}
_STP = frozenset({"dc", "co", "cn", "cb"})
_STOPS = {"loss": STOP_DOWN, "entry": STOP_UP}
_STOPS_BACK = {v: k for k, v in _STOPS.items()}
_STATUSES = frozenset({"open", "pending", "rejected", "done", "active", "received", "all"})
_CONVERTIBLE = frozenset({("USD", "USDC"), ("USDC", "USD")})


def _decimal(body: dict[str, Any], name: str) -> Decimal | None:
    raw = body.get(name)
    if raw is None or raw == "":
        return None
    if isinstance(raw, float):  # a JSON number with a fraction: its shortest text
        raw = repr(raw)
    try:
        return parse_decimal(raw, name)
    except InvalidValue:
        raise BadRequest(f"Invalid {name}") from None


def _status(order: Order) -> str:
    if order.status == OPEN:
        return "active" if order.spec.order_type == STOP_LIMIT and not order.triggered else "open"
    return {FILLED: "done", CANCELLED: "done", EXPIRED: "done"}.get(order.status, "pending")


def _limit(request: SimRequest) -> int:
    try:
        return query_int(request.query, "limit", 100, minimum=1, maximum=1000)
    except InvalidValue:
        raise BadRequest("limit must be between 1 and 1000") from None


def paged(request: SimRequest, rows: list[tuple[int, dict[str, Any]]]) -> SimResponse:
    """`rows` newest first, each with its cursor: the page `before`/`after`/`limit` select, with headers."""
    before, after, limit = query_cursor(request, "before"), query_cursor(request, "after"), _limit(request)
    if before is not None:
        newer = [row for row in rows if row[0] > before]
        chosen = newer[-limit:]  # the page just newer than the cursor, still newest first
    else:
        chosen = [row for row in rows if after is None or row[0] < after][:limit]
    response = json_response([body for _, body in chosen])
    if chosen:
        response.headers["cb-before"] = str(chosen[0][0])
        response.headers["cb-after"] = str(chosen[-1][0])
    return response


class ExchangeApi:
    def __init__(self, sim: Simulator) -> None:
        self.sim = sim
        self.tape = ExchangeTape(sim.markets, sim.accounts)
        self.feed = ExchangeFeed(sim, self.tape)
        self.market = ExchangeMarketApi(sim, self.tape, self.feed.resting_user_orders)
        # what an Exchange order said that the matching core does not keep: stp, max_floor, stop, expire
        self._terms: dict[str, dict[str, Any]] = {}
        self._conversions: dict[str, dict[str, Any]] = {}
        sim.engine.order_listeners.append(self.tape.on_order)
        sim.engine.order_listeners.append(self.feed.on_order)

    def on_trade(self, trade: Trade) -> None:
        """Every trade on the tape, the market's own and our fills alike (the simulator calls this)."""
        self.tape.on_trade(trade)
        self.feed.on_trade(trade)

    def routes(self) -> list[tuple[str, str, Any, str, str]]:
        """(method, path, handler, access, rate-limit pool)."""
        public = [(m, p, h, a, EXCHANGE_PUBLIC) for m, p, h, a in self.market.routes()]
        return [
            *public,
            ("GET", "/accounts", self.accounts, VIEW, EXCHANGE_PRIVATE),
            ("GET", "/accounts/{account_id}", self.account, VIEW, EXCHANGE_PRIVATE),
            ("GET", "/accounts/{account_id}/holds", self.holds, VIEW, EXCHANGE_PRIVATE),
            ("GET", "/accounts/{account_id}/ledger", self.ledger, VIEW, EXCHANGE_PRIVATE),
            ("POST", "/orders", self.create_order, TRADE, EXCHANGE_PRIVATE),
            ("GET", "/orders", self.list_orders, VIEW, EXCHANGE_PRIVATE),
            ("DELETE", "/orders", self.cancel_all, TRADE, EXCHANGE_PRIVATE),
            ("GET", "/orders/{order_id}", self.get_order, VIEW, EXCHANGE_PRIVATE),
            ("DELETE", "/orders/{order_id}", self.cancel_order, TRADE, EXCHANGE_PRIVATE),
            ("GET", "/fills", self.fills, VIEW, EXCHANGE_FILLS),
            ("GET", "/fees", self.fees, VIEW, EXCHANGE_PRIVATE),
            ("GET", "/profiles", self.profiles, VIEW, EXCHANGE_PRIVATE),
            ("GET", "/profiles/{profile_id}", self.profile, VIEW, EXCHANGE_PRIVATE),
            ("POST", "/conversions", self.convert, TRADE, EXCHANGE_PRIVATE),
            ("GET", "/conversions/{conversion_id}", self.conversion, VIEW, EXCHANGE_PRIVATE),
        ]

    # ---- shapes ---------------------------------------------------------------------------------------
    def order_json(self, order: Order) -> dict[str, Any]:
        spec = order.spec
        status = _status(order)
        terms = self._terms.get(order.order_id, {})
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
            "stp": terms.get("stp", "dc"),
            "profile_id": order.portfolio_uuid,
        }
        if spec.limit_price is not None:
            body["price"] = fmt(spec.limit_price)
        if spec.base_size is not None:
            body["size"] = fmt(spec.base_size)
        if spec.quote_size is not None:
            body["funds"] = fmt(spec.quote_size)
        if spec.order_type == STOP_LIMIT:
            body["stop"] = _STOPS_BACK.get(spec.stop_direction or "", "loss")
            body["stop_price"] = fmt(spec.stop_price)
        if spec.time_in_force == GTD and spec.end_time is not None:
            body["expire_time"] = iso(spec.end_time)
        if "max_floor" in terms:
            body["max_floor"] = terms["max_floor"]
        if order.client_order_id:
            body["client_oid"] = order.client_order_id
        if status == "done":
            body["done_reason"] = "filled" if order.status == FILLED else "canceled"
            body["done_at"] = iso(order.done_time or order.created_time)
        return body

    def fill_json(self, trade_id: int, fill: Fill) -> dict[str, Any]:
        return {
            "created_at": iso(fill.trade_time),
            "trade_id": trade_id,
            "product_id": fill.product_id,
            "order_id": fill.order_id,
            "user_id": fill.user_id,
            "profile_id": self.sim.accounts.portfolio_uuid,
            "liquidity": "M" if fill.liquidity_indicator == "MAKER" else "T",
            "price": fmt(fill.price),
            "size": fmt(fill.size),
            "fee": fmt(fill.commission),
            "side": fill.side.lower(),
            "settled": True,
            "usd_volume": fmt(fill.price * fill.size),
        }

    # ---- accounts -------------------------------------------------------------------------------------
    def _account_json(self, uuid_: str) -> dict[str, Any] | None:
        account = self.sim.accounts.by_uuid(uuid_)
        if account is None:
            return None
        return {
            "id": account.uuid,
            "currency": account.currency,
            "balance": fmt(account.balance),
            "hold": fmt(account.hold),
            "available": fmt(account.available),
            "profile_id": self.sim.accounts.portfolio_uuid,
            "trading_enabled": True,
            "pending_deposit": "0",
            "display_name": account.name,
        }

    async def accounts(self, request: SimRequest) -> SimResponse:
        return json_response([self._account_json(a.uuid) for a in self.sim.accounts])

    def _account_id(self, request: SimRequest) -> str:
        account_id = request.match_info["account_id"]
        if self.sim.accounts.by_uuid(account_id) is None:
            raise BadRequest("NotFound", 404)
        return account_id

    async def account(self, request: SimRequest) -> SimResponse:
        return json_response(self._account_json(self._account_id(request)))

    async def holds(self, request: SimRequest) -> SimResponse:
        account_id = self._account_id(request)
        account = self.sim.accounts.by_uuid(account_id)
        assert account is not None
        rows = []
        for position, order in reversed(list(enumerate(self.sim.ledger, 1))):
            if order.is_open and order.hold_amount > 0 and order.hold_currency == account.currency:
                hold = {
                    "id": str(uuid.uuid5(uuid.NAMESPACE_OID, order.order_id)),
                    "account_id": account_id,
                    "created_at": iso(order.created_time),
                    "updated_at": iso(order.last_fill_time or order.created_time),
                    "amount": fmt(order.hold_amount),
                    "type": "order",
                    "ref": order.order_id,
                }
                rows.append((position, hold))
        return paged(request, rows)

    async def ledger(self, request: SimRequest) -> SimResponse:
        account_id = self._account_id(request)
        return paged(request, [(e.entry_id, _ledger_json(e)) for e in self.tape.entries(account_id)])

    # ---- orders ---------------------------------------------------------------------------------------
    def _spec(self, body: dict[str, Any], now: float) -> tuple[OrderSpec, dict[str, Any]]:
        """Translate an Exchange order body into the matching core's configuration, plus the terms it keeps
        only here."""
        order_type = body.get("type", "limit")
        terms: dict[str, Any] = {}
        stp = body.get("stp")
        if stp is not None:
            if stp not in _STP:
                raise BadRequest("Invalid stp")
            terms["stp"] = stp
        stop, stop_price = body.get("stop"), _decimal(body, "stop_price")
        if (stop is None) != (stop_price is None):
            raise BadRequest("stop and stop_price must be given together")
        if stop is not None and stop not in _STOPS:
            raise BadRequest("Invalid stop: must be loss or entry")
        size, funds, price = _decimal(body, "size"), _decimal(body, "funds"), _decimal(body, "price")
        if order_type == "market":
            if stop is not None:
                raise BadRequest("stop orders must be limit orders")
            if (size is None) == (funds is None):
                raise BadRequest("market orders must specify exactly one of size or funds")
            sized = {"base_size": fmt(size)} if size is not None else {"quote_size": fmt(funds)}
            return OrderSpec.parse({"market_market_ioc": sized}), terms
        if order_type != "limit":
            raise BadRequest("Invalid order type")
        if size is None:
            raise BadRequest("size is required")
        if price is None:
            raise BadRequest("price is required")
        tif = str(body.get("time_in_force", "GTC"))
        if tif not in _TIF:
            raise BadRequest("Invalid time_in_force")
        post_only = body.get("post_only", False)
        if not isinstance(post_only, bool):
            raise BadRequest("Invalid post_only")
        if post_only and tif in ("IOC", "FOK"):
            raise BadRequest("post_only is invalid with time_in_force IOC or FOK")
        cancel_after = body.get("cancel_after")
        if cancel_after is not None and tif != "GTT":
            raise BadRequest("cancel_after requires time_in_force GTT")
        max_floor = _decimal(body, "max_floor")
        if max_floor is not None:
            terms["max_floor"] = fmt(max_floor)
        config: dict[str, Any] = {"base_size": fmt(size), "limit_price": fmt(price)}
        if tif == "GTT":
            seconds = _CANCEL_AFTER.get(str(cancel_after or "day"))
            if seconds is None:
                raise BadRequest("Invalid cancel_after: must be min, hour or day")
            config["end_time"] = iso(now + seconds)
        if stop is not None:
            if tif in ("IOC", "FOK"):
                raise BadRequest("stop orders must be GTC or GTT")
            config["stop_price"] = fmt(stop_price)
            config["stop_direction"] = _STOPS[str(stop)]
            key = "stop_limit_stop_limit_gtd" if tif == "GTT" else "stop_limit_stop_limit_gtc"
            return OrderSpec.parse({key: config}), terms
        key = {
            "GTC": "limit_limit_gtc",
            "GTT": "limit_limit_gtd",
            "IOC": "sor_limit_ioc",
            "FOK": "limit_limit_fok",
        }[tif]
        if tif in ("GTC", "GTT"):
            config["post_only"] = post_only
        return OrderSpec.parse({key: config}), terms

    async def create_order(self, request: SimRequest) -> SimResponse:
        body = await read_json(request)
        product_id, side = body.get("product_id"), body.get("side")
        client_oid = body.get("client_oid") or ""
        if not isinstance(client_oid, str) or len(client_oid) > 128:
            return message(400, "Invalid client_oid")
        if side not in ("buy", "sell"):
            return message(400, "Invalid side")
        if not isinstance(product_id, str) or self.market.spot(product_id) is None:
            return message(400, "Invalid product_id")
        key = request.exchange_key
        assert key is not None  # the gateway verified it
        try:
            spec, terms = self._spec(body, self.sim.clock.now())
            order, created = self.sim.engine.submit(
                client_oid, product_id, side.upper(), spec, key_name=key.key, source="exchange"
            )
        except OrderRefused as refused:
            if refused.error == "INSUFFICIENT_FUND":
                return message(400, "Insufficient funds")
            if refused.error == "INVALID_LIMIT_PRICE_POST_ONLY":
                return message(400, "Post only mode")
            return message(400, refused.message or refused.preview_failure_reason or refused.error)
        if created and terms:
            self._terms[order.order_id] = terms
        self.sim.publish_book(product_id)
        if created and self.sim.dice.drop_after_accept():
            raise DropConnection
        return json_response(self.order_json(order))

    def _statuses(self, request: SimRequest) -> set[str]:
        statuses = set(request.query.getall("status", ["open", "pending", "active"]))
        if not statuses <= _STATUSES:
            raise BadRequest("Invalid status")
        return statuses

    async def list_orders(self, request: SimRequest) -> SimResponse:
        statuses = self._statuses(request)
        product_id = request.query.get("product_id")
        rows = []
        for position, order in reversed(list(enumerate(self.sim.ledger, 1))):
            if product_id is not None and order.product_id != product_id:
                continue
            shaped = self.order_json(order)
            if "all" in statuses or shaped["status"] in statuses:
                rows.append((position, shaped))
        return paged(request, rows)

    def _find(self, ref: str) -> Order | None:
        if ref.startswith("client:"):
            return self.sim.ledger.by_client_order_id(ref[len("client:") :])
        return self.sim.engine.orders.get(ref)

    async def get_order(self, request: SimRequest) -> SimResponse:
        order = self._find(request.match_info["order_id"])
        if order is None:
            return message(404, "NotFound")
        return json_response(self.order_json(order))

    async def cancel_order(self, request: SimRequest) -> SimResponse:
        order = self._find(request.match_info["order_id"])
        product_id = request.query.get("product_id")
        if order is None or (product_id is not None and order.product_id != product_id):
            return message(404, "NotFound")
        success, _ = self.sim.engine.cancel(order.order_id)
        if not success:
            return message(400, "Order already done")
        self.sim.publish_book(order.product_id)
        return json_response(order.order_id)

    async def cancel_all(self, request: SimRequest) -> SimResponse:
        product_id = request.query.get("product_id")
        if product_id is not None and self.market.spot(product_id) is None:
            return message(400, "Invalid product_id")
        cancelled = []
        for order in list(self.sim.engine.orders.values()):
            if order.is_open and (product_id is None or order.product_id == product_id):
                success, _ = self.sim.engine.cancel(order.order_id)
                if success:
                    cancelled.append(order.order_id)
        for pid in {self.sim.engine.orders[i].product_id for i in cancelled}:
            self.sim.publish_book(pid)
        return json_response(cancelled)

    # ---- fills, fees, profiles ------------------------------------------------------------------------
    async def fills(self, request: SimRequest) -> SimResponse:
        order_id, product_id = request.query.get("order_id"), request.query.get("product_id")
        if order_id is None and product_id is None:
            return message(400, "Either order_id or product_id is required")
        rows = [
            (trade_id, self.fill_json(trade_id, fill))
            for trade_id, fill in reversed(list(enumerate(self.sim.engine.fills, 1)))
            if (order_id is None or fill.order_id == order_id)
            and (product_id is None or fill.product_id == product_id)
        ]
        return paged(request, rows)

    async def fees(self, request: SimRequest) -> SimResponse:
        fees = self.sim.engine.fees.current()  # one user, one volume: the tier its fills pay
        return json_response(
            {
                "taker_fee_rate": fmt(fees.taker_fee_rate),
                "maker_fee_rate": fmt(fees.maker_fee_rate),
                "usd_volume": fmt(self.sim.engine.fees.volume_30d()),
            }
        )

    def _profile(self) -> dict[str, Any]:
        return {
            "id": self.sim.accounts.portfolio_uuid,
            "user_id": self.sim.engine.user_id,
            "name": "default",
            "active": True,
            "is_default": True,
            "has_margin": False,
            "created_at": iso(min((a.created_at for a in self.sim.accounts), default=0.0)),
        }

    async def profiles(self, request: SimRequest) -> SimResponse:
        return json_response([self._profile()])

    async def profile(self, request: SimRequest) -> SimResponse:
        if request.match_info["profile_id"] != self.sim.accounts.portfolio_uuid:
            return message(404, "NotFound")
        return json_response(self._profile())

    # ---- conversions ----------------------------------------------------------------------------------
    async def convert(self, request: SimRequest) -> SimResponse:
        body = await read_json(request)
        source, target = body.get("from"), body.get("to")
        if not isinstance(source, str) or not isinstance(target, str) or (source, target) not in _CONVERTIBLE:
            return message(400, "Invalid conversion: only USD and USDC convert into each other")
        amount = _decimal(body, "amount")
        if amount is None:
            return message(400, "amount is required")
        accounts = self.sim.accounts
        from_account, to_account = accounts.get(str(source)), accounts.get(str(target))
        if from_account is None or to_account is None:
            return message(400, "Invalid conversion: no such account")
        if from_account.available < amount:
            return message(400, "Insufficient funds")
        accounts.credit(str(source), -amount)
        accounts.credit(str(target), amount)
        conversion_id = str(uuid.uuid4())
        now = self.sim.clock.now()
        self.tape.record_conversion(str(source), now, conversion_id)
        self.tape.record_conversion(str(target), now, conversion_id)
        conversion = {
            "id": conversion_id,
            "amount": fmt(amount),
            "from_account_id": from_account.uuid,
            "to_account_id": to_account.uuid,
            "from": source,
            "to": target,
        }
        self._conversions[conversion_id] = conversion
        return json_response(conversion)

    async def conversion(self, request: SimRequest) -> SimResponse:
        conversion = self._conversions.get(request.match_info["conversion_id"])
        if conversion is None:
            return message(404, "NotFound")
        return json_response(conversion)


def _ledger_json(entry: LedgerEntry) -> dict[str, Any]:
    details: dict[str, str] = {}
    if entry.order_id:
        details = {"order_id": entry.order_id, "trade_id": entry.trade_id, "product_id": entry.product_id}
    elif entry.conversion_id:
        details = {"conversion_id": entry.conversion_id}
    return {
        "id": str(entry.entry_id),
        "amount": fmt(entry.amount),
        "balance": fmt(entry.balance),
        "created_at": iso(entry.created_at),
        "type": entry.kind,
        "details": details,
    }
