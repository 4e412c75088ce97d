"""Admin endpoints under `/sim/...`: ground truth and controls for tests, loopback clients only, no auth.

GET  /sim/ledger                 every accepted order (`?client_order_id=` filters; `?offset=&limit=` pages)
GET  /sim/faults, POST /sim/faults   read / partially update live faults (`{"clear": true}` resets)
GET  /sim/stats                  per-key request/429 counts and request times, auth failures, faults hit
GET  /sim/book/{product_id}      the simulator's own level2 book, every level
POST /sim/market                 {"paused": bool, "mid": {"BTC-USD": "61000"}, "ticks": n,
                                  "status": {"BTC-USD": "cancel_only"}}: steer the market
"""

from __future__ import annotations

import ipaddress
from typing import TYPE_CHECKING, Any

from engine.sim.clock import fmt
from engine.sim.messages import Handler, SimRequest, SimResponse
from engine.sim.responses import json_response, read_json
from engine.sim.trading_status import STATUSES as PRODUCT_STATUSES
from engine.sim.values import BadRequest, parse_decimal, parse_int

if TYPE_CHECKING:
    from engine.sim.app import Simulator


def _loopback(request: SimRequest) -> bool:
    try:
        return ipaddress.ip_address(request.remote or "").is_loopback
    except ValueError:
        return False


class AdminApi:
    def __init__(self, sim: Simulator) -> None:
        self.sim = sim

    def routes(self) -> list[tuple[str, str, Any]]:
        return [
            ("GET", "/sim/ledger", self.ledger),
            ("GET", "/sim/faults", self.get_faults),
            ("POST", "/sim/faults", self.set_faults),
            ("GET", "/sim/stats", self.stats),
            ("GET", "/sim/book/{product_id}", self.book),
            ("POST", "/sim/market", self.steer_market),
        ]

    def wrap(self, handler: Handler) -> Handler:
        async def loopback_only(request: SimRequest) -> SimResponse:
            if not _loopback(request):
                return json_response({"error": "PERMISSION_DENIED", "message": "admin is loopback only"}, 403)
            try:
                return await handler(request)
            except BadRequest as bad:
                return json_response({"error": bad.error, "message": str(bad)}, bad.status)

        return loopback_only

    async def ledger(self, request: SimRequest) -> SimResponse:
        wanted = request.query.get("client_order_id")
        if wanted is not None:  # every entry with the id: a duplicate shows as two
            entries = [e for e in self.sim.ledger.entries() if e["client_order_id"] == wanted]
        else:
            # a page of a long run's ledger: `total` says how many there are in all
            offset = parse_int(request.query.get("offset") or 0, "offset", minimum=0, maximum=1 << 62)
            limit = request.query.get("limit")
            stop = None if limit is None else offset + parse_int(limit, "limit", minimum=0, maximum=1 << 32)
            entries = self.sim.ledger.entries(offset, stop)
        return json_response({"orders": entries, "count": len(entries), "total": len(self.sim.ledger)})

    async def get_faults(self, request: SimRequest) -> SimResponse:
        return json_response(self.sim.faults.to_dict())

    async def set_faults(self, request: SimRequest) -> SimResponse:
        body = await read_json(request)
        clear = body.pop("clear", False)
        changes = self.sim.faults.checked(body)  # all or nothing: a bad value changes no fault
        if clear:
            self.sim.faults.clear()
        self.sim.faults.apply(changes)
        return json_response(self.sim.faults.to_dict())

    async def stats(self, request: SimRequest) -> SimResponse:
        with_timestamps = request.query.get("timestamps", "1") != "0"
        keys = {
            key_id: {
                "requests": stats.requests,
                "rate_limited": stats.rate_limited,
                **({"timestamps": list(stats.timestamps)} if with_timestamps else {}),
            }
            for key_id, stats in self.sim.limiter.stats.items()
        }
        hub = self.sim.hub
        return json_response(
            {
                "keys": keys,
                "auth_failures": self.sim.auth_failures,
                "injected": self.sim.injected,
                "ledger_size": len(self.sim.ledger),
                "ws": {
                    "connections": len(hub.sessions),
                    "messages_sent": hub.messages_sent,
                    "gaps_injected": hub.gaps_injected,
                    "drops_injected": hub.drops_injected,
                },
            }
        )

    async def book(self, request: SimRequest) -> SimResponse:
        market = self.sim.markets.get(request.match_info["product_id"])
        if market is None:
            return json_response({"error": "NOT_FOUND", "message": "unknown product"}, 404)
        snap = market.book.snapshot()
        return json_response(
            {
                "product_id": market.spec.product_id,
                "mid": fmt(market.mid),
                "last": fmt(market.last_price),
                "bids": [[fmt(p), fmt(s)] for p, s in snap["bids"]],
                "asks": [[fmt(p), fmt(s)] for p, s in snap["asks"]],
            }
        )

    async def steer_market(self, request: SimRequest) -> SimResponse:
        body = await read_json(request)
        if "paused" in body:
            self.sim.market_paused = bool(body["paused"])
        mids = body.get("mid", {})
        if not isinstance(mids, dict):
            raise BadRequest("mid must be an object")
        ticks = parse_int(body.get("ticks") or 0, "ticks", minimum=0, maximum=10_000)
        prices = {}
        for product_id, price in mids.items():  # every price checked before the market moves
            if product_id not in self.sim.markets:
                raise BadRequest("unknown product in mid", 404, "NOT_FOUND")
            prices[product_id] = parse_decimal(price if isinstance(price, str) else str(price), "mid")
        statuses = body.get("status", {})
        if not isinstance(statuses, dict) or not all(
            pid in self.sim.markets and value in PRODUCT_STATUSES for pid, value in statuses.items()
        ):
            raise BadRequest("status must map known products to one of " + ", ".join(PRODUCT_STATUSES))
        for product_id, status in statuses.items():
            self.sim.set_product_status(product_id, status)
        for product_id, mid in prices.items():
            self.sim.set_mid(product_id, mid)
        for _ in range(ticks):
            self.sim.tick()
        return json_response(
            {
                "paused": self.sim.market_paused,
                "status": dict(self.sim.product_status),
                "mid": {pid: fmt(m.mid) for pid, m in self.sim.markets.items()},
            }
        )
