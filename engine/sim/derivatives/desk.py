"""The order desk: turns the gateway's order requests into orders of the matching core, and adds what the
gateway has and the core does not: trigger orders (stop, take, trailing) watched on the index, mark or last
price; market-limit and post-only price moves; reduce-only sizing; linked OTO/OCO/OTOCO orders; cancel
reasons; and the user trades and order events the trading socket publishes.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from engine.sim.book import ZERO
from engine.sim.clock import SimClock
from engine.sim.derivatives.instruments import SETTLEMENT, Instrument
from engine.sim.derivatives.margin import CrossMargin, PerpetualMatching
from engine.sim.derivatives.orders import (
    LINKED_TYPES,
    PRICED_TYPES,
    REJECTED,
    TRIGGER_TYPES,
    TRIGGERED,
    UNTRIGGERED,
    PerpOrder,
)
from engine.sim.derivatives.rpc import (
    ALREADY_CLOSED,
    NOT_ENOUGH_FUNDS,
    ORDER_NOT_FOUND,
    POST_ONLY_REJECT,
    PRICE_WRONG_TICK,
    TIMED_OUT,
    Params,
    RpcError,
    invalid_param,
)
from engine.sim.orders import EXPIRED, FOK, GTC, GTD, IOC, LIMIT, MARKET, Fill, Order, OrderRefused, OrderSpec

OTHER_REJECT = 11030
_TIF = {
    "good_til_cancelled": GTC,
    "good_til_day": GTD,
    "fill_or_kill": FOK,
    "immediate_or_cancel": IOC,
}
_USER_TRADES = 10_000

# (event, order or trade record) -> the trading sockets
DeskListener = Callable[[str, PerpOrder | None, dict[str, Any] | None], None]


def _next_settlement(now: float) -> float:
    """Daily settlement is at 08:00 UTC: a good_til_day order lives until the next one."""
    moment = datetime.fromtimestamp(now, UTC)
    settlement = moment.replace(hour=8, minute=0, second=0, microsecond=0)
    if settlement <= moment:
        settlement += timedelta(days=1)
    return settlement.timestamp()


class OrderDesk:
    def __init__(
        self,
        core: PerpetualMatching,
        margin: CrossMargin,
        instruments: dict[str, Instrument],
        clock: SimClock,
        market_as_limit: bool,
    ) -> None:
        self.core = core
        self.margin = margin
        self.instruments = instruments
        self.clock = clock
        self.market_as_limit = market_as_limit
        self.orders: dict[str, PerpOrder] = {}
        self._by_core: dict[str, PerpOrder] = {}
        self._binding: PerpOrder | None = None
        self.user_trades: list[dict[str, Any]] = []
        self._trade_seq = itertools.count(1)
        self._oco_refs = itertools.count(1)
        self.listeners: list[DeskListener] = []
        # live trigger orders by instrument: what each market tick checks (not every order ever placed)
        self._armed: dict[str, dict[str, PerpOrder]] = {name: {} for name in instruments}
        core.order_listeners.append(self._on_core)

    # ---- time and lookups -------------------------------------------------------------------------------
    def now_ms(self) -> int:
        return int(self.clock.now() * 1000)

    def instrument(self, params: Params, name: str = "instrument_name") -> Instrument:
        instrument_name = params.string(name)
        instrument = self.instruments.get(instrument_name)
        if instrument is None:
            raise invalid_param(name, "unknown instrument")
        return instrument

    def get(self, order_id: str) -> PerpOrder:
        order = self.orders.get(order_id)
        if order is None:
            raise RpcError(ORDER_NOT_FOUND, {"order_id": order_id})
        return order

    def wire(self, order: PerpOrder) -> dict[str, Any]:
        contract = self.instruments[order.instrument_name].spec.contract_size
        return order.to_wire(contract, self.market_as_limit)

    # ---- placing ------------------------------------------------------------------------------------------
    def place(
        self, direction: str, params: Params, key_name: str, connection_id: int | None
    ) -> tuple[PerpOrder, list[dict[str, Any]]]:
        """private/buy or private/sell: the order and the trades it made at once."""
        instrument = self.instrument(params)
        valid_until = params.integer("valid_until", 0)
        if valid_until and self.now_ms() > valid_until:
            raise RpcError(TIMED_OUT, {"valid_until": valid_until})
        order = self._parse(instrument, direction, params, key_name, connection_id)
        linked = params.optional_string("linked_order_type")
        legs: list[PerpOrder] = []
        if linked is not None:
            if linked not in LINKED_TYPES:
                raise invalid_param("linked_order_type", f"must be one of {sorted(LINKED_TYPES)}")
            configs = params.objects("otoco_config")
            if not configs:
                raise invalid_param("otoco_config", "required with linked_order_type")
            order.linked_order_type = linked
            order.trigger_fill_condition = params.string(
                "trigger_fill_condition",
                "first_hit",
                choices=frozenset({"first_hit", "complete_fill", "incremental"}),
            )
            order.is_primary_otoco = True
            for leg in configs:
                leg_direction = leg.string("direction", choices=frozenset({"buy", "sell"}))
                legs.append(self._parse(instrument, leg_direction, leg, key_name, connection_id))
        first_trade = len(self.user_trades)
        self._start(order)
        if legs:
            self._link(order, legs)
        trades = [t for t in self.user_trades[first_trade:] if t["order_id"] == order.order_id]
        return order, trades

    def _parse(
        self, instrument: Instrument, direction: str, params: Params, key_name: str, connection_id: int | None
    ) -> PerpOrder:
        spec = instrument.spec
        order_type = params.string(
            "type",
            "limit",
            choices=frozenset(
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
            ),
        )
        amount = params.decimal("amount")
        contracts = params.decimal("contracts")
        if contracts is not None:
            from_contracts = contracts * spec.contract_size
            if amount is not None and amount != from_contracts:
                raise invalid_param("contracts", "does not agree with amount")
            amount = from_contracts
        if amount is None:
            raise invalid_param("amount", "required (or contracts)")
        if not instrument.amount_ok(amount):
            raise invalid_param(
                "amount", f"must be a multiple of {spec.contract_size}, at least {spec.min_trade_amount}"
            )
        price = params.decimal("price")
        if order_type in PRICED_TYPES and price is None:
            raise invalid_param("price", f"required for {order_type}")
        if price is not None and price % spec.tick_size != ZERO:
            raise RpcError(PRICE_WRONG_TICK, {"param": "price", "tick_size": spec.tick_size})
        tif = params.string("time_in_force", "good_til_cancelled", choices=frozenset(_TIF))
        trigger = None
        trigger_price = trigger_offset = None
        if order_type in TRIGGER_TYPES:
            trigger = params.string("trigger", choices=frozenset({"index_price", "mark_price", "last_price"}))
            if order_type == "trailing_stop":
                trigger_offset = params.required_decimal("trigger_offset")
            else:
                trigger_price = params.required_decimal("trigger_price")
                if trigger_price % spec.tick_size != ZERO:
                    raise RpcError(PRICE_WRONG_TICK, {"param": "trigger_price", "tick_size": spec.tick_size})
        label = params.optional_string("label", 64) or ""
        return PerpOrder(
            order_id="",
            instrument_name=spec.instrument_name,
            direction=direction,
            amount=amount,
            order_type=order_type,
            time_in_force=tif,
            creation_ms=self.now_ms(),
            key_name=key_name,
            connection_id=connection_id,
            price=price,
            label=label,
            post_only=params.boolean("post_only"),
            reject_post_only=params.boolean("reject_post_only"),
            reduce_only=params.boolean("reduce_only"),
            trigger=trigger,
            trigger_price=trigger_price,
            trigger_offset=trigger_offset,
        )

    def _start(self, order: PerpOrder) -> None:
        """An order goes live: a trigger order waits untriggered; anything else goes to the core now."""
        if order.order_type in TRIGGER_TYPES:
            order.order_id = order.order_id or self.core.new_id()  # a linked leg keeps the id it was given
            order.state = UNTRIGGERED
            order.triggered = False
            instrument = self.instruments[order.instrument_name]
            order.trigger_reference = self._reference(instrument, order.trigger or "last_price")
            self.orders[order.order_id] = order
            self._armed[order.instrument_name][order.order_id] = order  # watched from the next tick
            self.core.ledger.record_accepted(order)
            self._emit("order", order)
            return
        self._submit(order)

    def _submit(self, order: PerpOrder) -> None:
        instrument = self.instruments[order.instrument_name]
        market = instrument.market
        tick = instrument.spec.tick_size
        core_type, limit = LIMIT, order.price
        tif = _TIF[order.time_in_force]
        if order.order_type in ("market", "stop_market", "take_market", "trailing_stop"):
            core_type, limit, tif = MARKET, None, IOC
        elif order.order_type == "market_limit":
            best = market.book.best_ask() if order.direction == "buy" else market.book.best_bid()
            if best is None:
                raise RpcError(OTHER_REJECT, {"reason": "no liquidity for a market_limit order"})
            limit, tif = best, GTC
        side = "BUY" if order.direction == "buy" else "SELL"
        if order.post_only and limit is not None and self.core._marketable(market, side, limit):
            if order.reject_post_only:
                raise RpcError(POST_ONLY_REJECT, {"price": limit})
            limit = market.best_ask() - tick if side == "BUY" else market.best_bid() + tick
            order.price = limit
        amount = order.amount
        if order.reduce_only:
            position = self.margin.position(order.instrument_name)
            opposing = position is not None and (position.contracts > ZERO) == (side == "SELL")
            if not opposing or position is None:
                raise RpcError(OTHER_REJECT, {"reason": "reduce_only order would not reduce the position"})
            amount = min(amount, abs(position.contracts))
            order.amount = amount
        config: dict[str, Any] = {"amount": format(amount, "f"), "label": order.label}
        if limit is not None:
            config["price"] = format(limit, "f")
        spec = OrderSpec(
            order.order_type,
            config,
            core_type,
            tif,
            base_size=amount,
            limit_price=limit,
            post_only=order.post_only,
        )
        if tif == GTD:
            spec.end_time = _next_settlement(self.clock.now())
        self._binding = order
        try:
            self.core.submit(
                "", order.instrument_name, side, spec, key_name=order.key_name, source="derivatives"
            )
        except OrderRefused as refused:
            if refused.error == "INSUFFICIENT_FUND":
                raise RpcError(NOT_ENOUGH_FUNDS, {"reason": "insufficient margin"}) from None
            raise RpcError(OTHER_REJECT, {"reason": refused.message or refused.error}) from None
        finally:
            self._binding = None

    def _on_core(self, core_order: Order, fill: Fill | None) -> None:
        order = self._by_core.get(core_order.order_id)
        if order is None:
            order = self._binding
            if order is None or order.core is not None:
                return
            order.core = core_order
            # a linked leg keeps the id its primary announced; any other order takes the core's
            order.order_id = order.order_id or core_order.order_id
            self._by_core[core_order.order_id] = order
            self.orders[order.order_id] = order
        order.last_update_ms = self.now_ms()
        if core_order.status == EXPIRED and not order.cancel_reason:
            order.cancel_reason = "settlement"
        trade = self._record_trade(order, fill) if fill is not None else None
        self._emit("order", order)
        if trade is not None:
            self._emit("trade", order, trade)
            self._emit("portfolio", None)
        self._follow_links(order, fill)

    def _record_trade(self, order: PerpOrder, fill: Fill) -> dict[str, Any]:
        instrument = self.instruments[order.instrument_name]
        trade = {
            "trade_id": fill.trade_id,
            "trade_seq": next(self._trade_seq),
            "timestamp": int(fill.trade_time * 1000),
            "tick_direction": 0 if order.direction == "buy" else 2,
            "state": order.order_state,
            "reduce_only": order.reduce_only,
            "post_only": order.post_only,
            "price": fill.price,
            "mark_price": instrument.mark_price,
            "index_price": instrument.index_price,
            "order_id": order.order_id,
            "order_type": "limit"
            if order.core is not None and order.core.spec.order_type == LIMIT
            else "market",
            "matching_id": None,
            "liquidity": "M" if fill.liquidity_indicator == "MAKER" else "T",
            "instrument_name": order.instrument_name,
            "fee": fill.commission,
            "fee_currency": SETTLEMENT,
            "direction": order.direction,
            "amount": fill.size,
            "contracts": fill.size / instrument.spec.contract_size,
            "label": order.label,
            "api": True,
        }
        self.user_trades.append(trade)
        if len(self.user_trades) > _USER_TRADES:
            del self.user_trades[: len(self.user_trades) - _USER_TRADES]
        return trade

    def _emit(self, event: str, order: PerpOrder | None, trade: dict[str, Any] | None = None) -> None:
        for listener in self.listeners:
            listener(event, order, trade)

    # ---- triggers -----------------------------------------------------------------------------------------
    def _reference(self, instrument: Instrument, trigger: str) -> Decimal:
        if trigger == "index_price":
            return instrument.index_price
        if trigger == "mark_price":
            return instrument.mark_price
        return instrument.market.last_price

    def on_tick(self, instrument: Instrument) -> None:
        armed = self._armed[instrument.name]
        for order in list(armed.values()):
            if order.state != UNTRIGGERED:  # cancelled since it was armed
                del armed[order.order_id]
                continue
            price = self._reference(instrument, order.trigger or "last_price")
            if self._fires(order, price):
                del armed[order.order_id]
                self._fire(order)

    @staticmethod
    def _fires(order: PerpOrder, price: Decimal) -> bool:
        buy = order.direction == "buy"
        if order.order_type == "trailing_stop":
            offset = order.trigger_offset or ZERO
            reference = order.trigger_reference or price
            # a sell trails the highest price seen, a buy the lowest
            reference = max(reference, price) if not buy else min(reference, price)
            order.trigger_reference = reference
            return price >= reference + offset if buy else price <= reference - offset
        trigger_price = order.trigger_price or ZERO
        if order.order_type.startswith("stop"):
            return price >= trigger_price if buy else price <= trigger_price
        return price <= trigger_price if buy else price >= trigger_price  # take profit

    def _fire(self, order: PerpOrder) -> None:
        order.state = TRIGGERED
        order.triggered = True
        order.last_update_ms = self.now_ms()
        child_type = "limit" if order.order_type in ("stop_limit", "take_limit") else "market"
        child = PerpOrder(
            order_id="",
            instrument_name=order.instrument_name,
            direction=order.direction,
            amount=order.amount,
            order_type=child_type,
            time_in_force=order.time_in_force if child_type == "limit" else "immediate_or_cancel",
            creation_ms=self.now_ms(),
            key_name=order.key_name,
            connection_id=order.connection_id,
            price=order.price if child_type == "limit" else None,
            label=order.label,
            reduce_only=order.reduce_only,
            trigger_order_id=order.order_id,
            oco_ref=order.oco_ref,
        )
        self._emit("order", order)
        try:
            self._submit(child)
        except RpcError as refused:
            child.order_id = self.core.new_id()
            child.state = REJECTED
            child.cancel_reason = str((refused.data or {}).get("reason", refused.message))
            self.orders[child.order_id] = child
            self._emit("order", child)

    # ---- linked orders -------------------------------------------------------------------------------------
    def _link(self, primary: PerpOrder, legs: list[PerpOrder]) -> None:
        linked = primary.linked_order_type
        oco_ref = f"OCO-{next(self._oco_refs)}"
        for leg in legs:
            leg.linked_order_type = linked
            leg.primary_order_id = primary.order_id
            if linked == "one_cancels_other":
                leg.oco_ref = primary.oco_ref = oco_ref
            elif linked == "one_triggers_one_cancels_other":
                leg.oco_ref = oco_ref
        if linked == "one_cancels_other":
            for leg in legs:
                self._start_leg(leg)
            return
        for leg in legs:
            leg.is_secondary_oto = True
            leg.waiting_for_primary = True
            leg.order_id = self.core.new_id()
            leg.state = UNTRIGGERED
            self.orders[leg.order_id] = leg
            primary.oto_order_ids.append(leg.order_id)
            self._emit("order", leg)
        self._follow_links(primary, None)  # the primary may have filled already

    def _start_leg(self, leg: PerpOrder) -> None:
        try:
            self._start(leg)
        except RpcError as refused:
            if not leg.order_id:
                leg.order_id = self.core.new_id()
            leg.state = REJECTED
            leg.cancel_reason = str((refused.data or {}).get("reason", refused.message))
            self.orders[leg.order_id] = leg
            self._emit("order", leg)

    def _follow_links(self, order: PerpOrder, fill: Fill | None) -> None:
        if order.oto_order_ids:
            condition_met = (
                order.filled_amount >= order.amount
                if order.trigger_fill_condition == "complete_fill"
                else order.filled_amount > ZERO
            )
            waiting = [
                self.orders[i]
                for i in order.oto_order_ids
                if self.orders[i].waiting_for_primary and self.orders[i].is_live
            ]
            if waiting and condition_met:
                for leg in waiting:
                    leg.waiting_for_primary = False
                    self._start_leg(leg)
            elif waiting and not order.is_live:
                for leg in waiting:
                    self._close(leg, "oto_primary_closed")
        if fill is not None and order.oco_ref is not None:
            for other in [
                o for o in self.orders.values() if o.oco_ref == order.oco_ref and o is not order and o.is_live
            ]:
                self._close(other, "oco_other_closed")

    # ---- cancelling ----------------------------------------------------------------------------------------
    def _close(self, order: PerpOrder, reason: str) -> bool:
        if not order.is_live:
            return False
        order.cancel_reason = reason
        order.last_update_ms = self.now_ms()
        if order.core is None:
            order.state = "cancelled"
            self._emit("order", order)
            for leg_id in order.oto_order_ids:
                leg = self.orders.get(leg_id)
                if leg is not None and leg.core is None and leg.is_live:
                    self._close(leg, "oto_primary_closed")
            return True
        ok, _ = self.core.cancel(order.core.order_id)
        return ok

    def cancel(self, order_id: str, reason: str = "user_request") -> PerpOrder:
        order = self.get(order_id)
        if not order.is_live:
            raise RpcError(ALREADY_CLOSED, {"order_id": order_id, "order_state": order.order_state})
        self._close(order, reason)
        return order

    def cancel_where(
        self, keep: Callable[[PerpOrder], bool], reason: str = "user_request"
    ) -> list[PerpOrder]:
        chosen = [o for o in list(self.orders.values()) if o.is_live and keep(o)]
        return [o for o in chosen if self._close(o, reason)]

    def cancel_connection(self, connection_id: int) -> list[PerpOrder]:
        return self.cancel_where(lambda o: o.connection_id == connection_id, "cancel_on_disconnect")

    # ---- editing -------------------------------------------------------------------------------------------
    def edit(self, order: PerpOrder, params: Params) -> tuple[PerpOrder, list[dict[str, Any]]]:
        if not order.is_live:
            raise RpcError(ALREADY_CLOSED, {"order_id": order.order_id, "order_state": order.order_state})
        instrument = self.instruments[order.instrument_name]
        spec = instrument.spec
        amount = params.decimal("amount")
        contracts = params.decimal("contracts")
        if contracts is not None:
            amount = contracts * spec.contract_size
        if amount is not None and not instrument.amount_ok(amount):
            raise invalid_param("amount", f"must be a multiple of {spec.contract_size}")
        price = params.decimal("price")
        if price is not None and price % spec.tick_size != ZERO:
            raise RpcError(PRICE_WRONG_TICK, {"param": "price", "tick_size": spec.tick_size})
        trigger_price = params.decimal("trigger_price")
        if "post_only" in params:
            order.post_only = params.boolean("post_only")
        if "reduce_only" in params:
            order.reduce_only = params.boolean("reduce_only")
        if order.core is None:  # untriggered: the terms change in place
            order.amount = amount or order.amount
            order.price = price or order.price
            order.trigger_price = trigger_price or order.trigger_price
            if "trigger_offset" in params:
                order.trigger_offset = params.required_decimal("trigger_offset")
            order.replaced = True
            order.last_update_ms = self.now_ms()
            self._emit("order", order)
            return order, []
        market = instrument.market
        side = "BUY" if order.direction == "buy" else "SELL"
        new_price = price or order.core.spec.limit_price
        if order.post_only and new_price is not None and self.core._marketable(market, side, new_price):
            if order.reject_post_only or params.boolean("reject_post_only"):
                raise RpcError(POST_ONLY_REJECT, {"price": new_price})
            new_price = (
                market.best_ask() - spec.tick_size if side == "BUY" else market.best_bid() + spec.tick_size
            )
        first_trade = len(self.user_trades)
        failure = self.core.edit(order.core.order_id, amount, new_price)
        if failure == "INSUFFICIENT_FUND":
            raise RpcError(NOT_ENOUGH_FUNDS, {"reason": "insufficient margin"})
        if failure == "CANNOT_EDIT_TO_BELOW_FILLED_SIZE":
            raise invalid_param("amount", "below the filled amount")
        if failure is not None:
            raise RpcError(OTHER_REJECT, {"reason": failure.lower()})
        order.amount = amount or order.amount
        order.price = new_price
        order.replaced = True
        order.last_update_ms = self.now_ms()
        trades = [t for t in self.user_trades[first_trade:] if t["order_id"] == order.order_id]
        return order, trades

    # ---- positions -----------------------------------------------------------------------------------------
    def liquidate_if_due(self) -> bool:
        """When equity falls below maintenance margin, the account is liquidated: every open order is
        cancelled (`autoliquidation`) and every position closed at market. True if it happened."""
        figures = self.margin.figures()
        if figures.maintenance_margin <= ZERO or figures.equity >= figures.maintenance_margin:
            return False
        self.cancel_where(lambda o: True, "autoliquidation")
        self.core.liquidating = True
        try:
            self._close_all_positions()
        finally:
            self.core.liquidating = False
        return True

    def _close_all_positions(self) -> None:
        for position in list(self.core.positions.open_positions()):
            direction = "sell" if position.contracts > ZERO else "buy"
            order = PerpOrder(
                order_id="",
                instrument_name=position.product_id,
                direction=direction,
                amount=abs(position.contracts),
                order_type="market",
                time_in_force="immediate_or_cancel",
                creation_ms=self.now_ms(),
                key_name="",
                connection_id=None,
                reduce_only=True,
                label="liquidation",
                api=False,
                is_liquidation=True,
            )
            self._submit(order)

    def close_position(
        self, params: Params, key_name: str, connection_id: int | None
    ) -> tuple[PerpOrder, list[dict[str, Any]]]:
        instrument = self.instrument(params)
        order_type = params.string("type", choices=frozenset({"limit", "market"}))
        position = self.margin.position(instrument.name)
        if position is None:
            raise RpcError(OTHER_REJECT, {"reason": "no open position"})
        direction = "sell" if position.contracts > ZERO else "buy"
        raw: dict[str, Any] = {
            "instrument_name": instrument.name,
            "amount": abs(position.contracts),
            "type": order_type,
            "reduce_only": True,
        }
        if order_type == "limit":
            raw["price"] = params.required_decimal("price")
        return self.place(direction, Params(raw), key_name, connection_id)
