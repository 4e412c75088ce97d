"""A gateway order: what the client asked for (type, trigger, label, flags, links to other orders) over the
matching core's live order, and its JSON shape.

A trigger order (stop, take, trailing) waits here, untriggered, with no core order; when it fires, a new
order with its own id goes to the core and names the trigger order (`trigger_order_id`): two ids, as the
gateway documents for stop orders. The label is stored, never unique.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from engine.sim.book import ZERO
from engine.sim.clock import fmt, iso
from engine.sim.orders import CANCELLED, EXPIRED, FILLED, OPEN, Order

ORDER_TYPES = frozenset(
    {
        "limit",
        "market",
        "stop_limit",
        "stop_market",
        "take_limit",
        "take_market",
        "market_limit",
        "trailing_stop",
    }
)
TRIGGER_TYPES = frozenset({"stop_limit", "stop_market", "take_limit", "take_market", "trailing_stop"})
PRICED_TYPES = frozenset({"limit", "stop_limit", "take_limit"})
TIME_IN_FORCE = frozenset({"good_til_cancelled", "good_til_day", "fill_or_kill", "immediate_or_cancel"})
TRIGGERS = frozenset({"index_price", "mark_price", "last_price"})
LINKED_TYPES = frozenset({"one_triggers_other", "one_cancels_other", "one_triggers_one_cancels_other"})
FILL_CONDITIONS = frozenset({"first_hit", "complete_fill", "incremental"})

UNTRIGGERED = "untriggered"
TRIGGERED = "triggered"
REJECTED = "rejected"


@dataclass(slots=True)
class PerpOrder:
    order_id: str
    instrument_name: str
    direction: str  # "buy" / "sell"
    amount: Decimal
    order_type: str
    time_in_force: str
    creation_ms: int
    key_name: str
    connection_id: int | None  # the trading socket that created it (cancel-on-disconnect), None for HTTP
    price: Decimal | None = None
    label: str = ""
    post_only: bool = False
    reject_post_only: bool = False
    reduce_only: bool = False
    trigger: str | None = None
    trigger_price: Decimal | None = None
    trigger_offset: Decimal | None = None
    trigger_reference: Decimal | None = None  # trailing stops: the best price seen since placing
    trigger_order_id: str | None = None
    triggered: bool | None = None
    core: Order | None = None
    state: str = OPEN  # for orders with no core order: untriggered / triggered / cancelled / rejected
    cancel_reason: str = ""
    last_update_ms: int = 0
    replaced: bool = False
    api: bool = True
    is_liquidation: bool = False
    # linked orders
    linked_order_type: str | None = None
    trigger_fill_condition: str = "first_hit"
    oco_ref: str | None = None
    primary_order_id: str | None = None
    is_primary_otoco: bool = False
    is_secondary_oto: bool = False
    waiting_for_primary: bool = False  # a one-triggers-other leg not yet placed
    oto_order_ids: list[str] = field(default_factory=list)
    pending_legs: list[dict[str, Any]] = field(default_factory=list)

    @property
    def order_state(self) -> str:
        core = self.core
        if core is None:
            return self.state
        if core.status == OPEN:
            return "open"
        if core.status == FILLED:
            return "filled"
        if core.status in (CANCELLED, EXPIRED):
            return "filled" if core.filled_size >= self.amount else "cancelled"
        return "open"

    @property
    def is_live(self) -> bool:
        return self.order_state in ("open", UNTRIGGERED)

    @property
    def filled_amount(self) -> Decimal:
        return self.core.filled_size if self.core is not None else ZERO

    @property
    def average_price(self) -> Decimal:
        return self.core.average_filled_price if self.core is not None else ZERO

    def ledger_entry(self) -> dict[str, Any]:
        """The ledger's line for an order accepted before it reached the matching core (a trigger order,
        a linked leg waiting for its primary); once it fires, its own core order has a line too."""
        terms: dict[str, Any] = {"amount": fmt(self.amount), "label": self.label}
        for name, value in (
            ("price", self.price),
            ("trigger_price", self.trigger_price),
            ("trigger_offset", self.trigger_offset),
        ):
            if value is not None:
                terms[name] = fmt(value)
        return {
            "client_order_id": "",
            "order_id": self.order_id,
            "product_id": self.instrument_name,
            "side": self.direction.upper(),
            "order_configuration": {self.order_type: terms},
            "status": self.order_state.upper(),
            "created_time": iso(self.creation_ms / 1000),
            "filled_size": fmt(self.filled_amount),
            "key_name": self.key_name,
            "source": "derivatives",
        }

    def to_wire(self, contract_size: Decimal, market_as_limit: bool) -> dict[str, Any]:
        market = self.order_type in ("market", "stop_market", "take_market", "trailing_stop")
        reported_type = self.order_type
        original: str | None = None
        if market_as_limit and self.order_type in ("market", "market_limit"):
            reported_type, original = "limit", self.order_type
        elif self.order_type == "market_limit":
            reported_type = "limit"
        price: Any = self.price if self.price is not None else ("market_price" if market else ZERO)
        if self.core is not None and self.price is None and self.core.spec.limit_price is not None:
            price = self.core.spec.limit_price
        wire: dict[str, Any] = {
            "order_id": self.order_id,
            "instrument_name": self.instrument_name,
            "direction": self.direction,
            "amount": self.amount,
            "contracts": self.amount / contract_size,
            "filled_amount": self.filled_amount,
            "average_price": self.average_price,
            "price": price,
            "order_type": reported_type,
            "order_state": self.order_state,
            "time_in_force": self.time_in_force,
            "label": self.label,
            "post_only": self.post_only,
            "reject_post_only": self.reject_post_only,
            "reduce_only": self.reduce_only,
            "creation_timestamp": self.creation_ms,
            "last_update_timestamp": self.last_update_ms or self.creation_ms,
            "replaced": self.replaced,
            "api": self.api,
            "web": False,
            "mobile": False,
            "is_liquidation": self.is_liquidation,
            "risk_reducing": False,
            "mmp": False,
            "commission": self.core.total_fees if self.core is not None else ZERO,
            "starbase_order_id": self.order_id,
        }
        if original is not None:
            wire["original_order_type"] = original
        if self.cancel_reason:
            wire["cancel_reason"] = self.cancel_reason
        if self.trigger is not None:
            wire["trigger"] = self.trigger
            wire["triggered"] = bool(self.triggered)
            if self.trigger_price is not None:
                wire["trigger_price"] = self.trigger_price
            if self.trigger_offset is not None:
                wire["trigger_offset"] = self.trigger_offset
            if self.trigger_reference is not None:
                wire["trigger_reference_price"] = self.trigger_reference
        if self.trigger_order_id is not None:
            wire["trigger_order_id"] = self.trigger_order_id
        if self.linked_order_type is not None:
            wire["trigger_fill_condition"] = self.trigger_fill_condition
            wire["is_primary_otoco"] = self.is_primary_otoco
            wire["is_secondary_oto"] = self.is_secondary_oto
            if self.oco_ref is not None:
                wire["oco_ref"] = self.oco_ref
            if self.primary_order_id is not None:
                wire["primary_order_id"] = self.primary_order_id
            if self.oto_order_ids:
                wire["oto_order_ids"] = list(self.oto_order_ids)
        return wire
