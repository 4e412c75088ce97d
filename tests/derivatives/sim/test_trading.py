"""Order entry over the trading WebSocket: the matching core fills and rests orders, trigger and linked
orders follow the market, positions and margin follow the fills, and user.* channels report it all."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from tests.derivatives.sim.conftest import Gateway, Socket

BTC = "BTC_USDC-PERPETUAL"
ETH = "ETH_USDC-PERPETUAL"


def best(book: dict[str, Any], side: str) -> Decimal:
    return Decimal(str(book[side][0][0]))


async def _book(socket: Socket, instrument: str = BTC) -> dict[str, Any]:
    return dict(await socket.call("public/get_order_book", {"instrument_name": instrument}))


async def test_limit_order_rests_is_listed_notified_and_cancelled(gateway: Gateway) -> None:
    socket = await gateway.trading()
    accepted = await socket.call(
        "private/subscribe", {"channels": [f"user.orders.{BTC}.raw", "bogus.channel"]}
    )
    assert accepted == [f"user.orders.{BTC}.raw"]
    book = await _book(socket)
    price = float(best(book, "bids") - 1000)
    placed = await socket.call(
        "private/buy",
        {"instrument_name": BTC, "amount": 0.01, "type": "limit", "price": price, "label": "a1"},
    )
    order = placed["order"]
    assert order["order_state"] == "open"
    assert placed["trades"] == []
    assert order["label"] == "a1"
    assert order["price"] == price
    assert order["amount"] == 0.01
    opened = await socket.notification("user.orders.", lambda d: d["order_id"] == order["order_id"])
    assert opened["order_state"] == "open"
    listed = await socket.call("private/get_open_orders_by_instrument", {"instrument_name": BTC})
    assert [o["order_id"] for o in listed] == [order["order_id"]]
    cancelled = await socket.call("private/cancel", {"order_id": order["order_id"]})
    assert cancelled["order_state"] == "cancelled"
    assert cancelled["cancel_reason"] == "user_request"
    assert await socket.call("private/get_open_orders", {}) == []
    state = await socket.call("private/get_order_state", {"order_id": order["order_id"]})
    assert state["order_state"] == "cancelled"
    again = await socket.request("private/cancel", {"order_id": order["order_id"]})
    assert again["error"]["code"] == 11044
    entries = [e for e in gateway.sim.ledger.entries() if e["source"] == "derivatives"]
    assert [e["order_id"] for e in entries] == [order["order_id"]]
    assert entries[0]["status"] == "CANCELLED"


async def test_market_buy_opens_a_position_and_close_position_flattens_it(gateway: Gateway) -> None:
    socket = await gateway.trading()
    await socket.call("private/subscribe", {"channels": [f"user.trades.{BTC}.raw", "user.portfolio.usdc"]})
    ask = best(await _book(socket), "asks")
    placed = await socket.call("private/buy", {"instrument_name": BTC, "amount": 0.5, "type": "market"})
    order = placed["order"]
    assert order["order_state"] == "filled"
    assert order["order_type"] == "limit"
    assert order["original_order_type"] == "market"
    assert sum(Decimal(str(t["amount"])) for t in placed["trades"]) == Decimal("0.5")
    assert Decimal(str(placed["trades"][0]["price"])) == ask
    trades = await socket.notification("user.trades.")
    assert trades[0]["order_id"] == order["order_id"]
    position = await socket.call("private/get_position", {"instrument_name": BTC})
    assert position["direction"] == "buy"
    assert position["size"] == 0.5
    assert Decimal(str(position["initial_margin"])) > 0
    gateway.sim.derivatives.set_mark(BTC, Decimal(str(position["average_price"])) + 1000)
    marked = await socket.call("private/get_position", {"instrument_name": BTC})
    assert marked["floating_profit_loss"] > 0
    summary = await socket.call("private/get_account_summary", {"currency": "USDC"})
    assert summary["session_upl"] == marked["floating_profit_loss"]
    assert summary["equity"] > summary["balance"]
    closed = await socket.call("private/close_position", {"instrument_name": BTC, "type": "market"})
    assert closed["order"]["order_state"] == "filled"
    assert closed["order"]["reduce_only"] is True
    flat = await socket.call("private/get_position", {"instrument_name": BTC})
    assert flat["size"] == 0
    assert flat["realized_profit_loss"] > 0
    assert await socket.call("private/get_positions", {"currency": "USDC"}) == []
    history = await socket.call(
        "private/get_user_trades_by_instrument", {"instrument_name": BTC, "count": 50}
    )
    assert {t["order_id"] for t in history["trades"]} == {order["order_id"], closed["order"]["order_id"]}
    assert await socket.notification("user.portfolio.")


async def test_insufficient_margin_is_refused(gateway: Gateway) -> None:
    socket = await gateway.trading()
    bid = best(await _book(socket), "bids")
    params = {"instrument_name": BTC, "amount": 20, "price": float(bid - 1000)}
    reply = await socket.request("private/buy", params)  # 20 BTC at 10x needs about 118,000 USDC
    assert reply["error"]["code"] == 10009
    await socket.call("private/set_leverage", {"instrument_name": BTC, "leverage": 50})
    assert (await socket.call("private/get_leverage", {"instrument_name": BTC}))["leverage"] == 50
    assert (await socket.call("private/buy", params))["order"]["order_state"] == "open"  # at 50x it fits
    size = await socket.call("private/get_max_order_size", {"instrument_name": BTC})
    assert size["max_tradable_amount"]["buy"] > 50


async def test_trigger_orders_fire_on_the_market(gateway: Gateway) -> None:
    socket = await gateway.trading()
    mark = Decimal(str((await socket.call("public/ticker", {"instrument_name": ETH}))["mark_price"]))
    stop = await socket.call(
        "private/buy",
        {
            "instrument_name": ETH,
            "amount": 1,
            "type": "stop_market",
            "trigger": "mark_price",
            "trigger_price": float(mark + 50),
            "label": "breakout",
        },
    )
    assert stop["order"]["order_state"] == "untriggered"
    take = await socket.call(
        "private/sell",
        {
            "instrument_name": ETH,
            "amount": 1,
            "type": "take_limit",
            "trigger": "last_price",
            "trigger_price": float(mark + 100),
            "price": float(mark + 90),
        },
    )
    assert take["order"]["order_state"] == "untriggered"
    gateway.sim.derivatives.set_mark(ETH, mark + 60)
    fired = await socket.call("private/get_order_state", {"order_id": stop["order"]["order_id"]})
    assert fired["order_state"] == "triggered"
    children = [
        o
        for o in await socket.call(
            "private/get_order_state_by_label", {"currency": "USDC", "label": "breakout"}
        )
        if o.get("trigger_order_id") == stop["order"]["order_id"]
    ]
    assert len(children) == 1
    assert children[0]["order_state"] == "filled"
    assert (await socket.call("private/get_position", {"instrument_name": ETH}))["size"] == 1
    still = await socket.call("private/get_order_state", {"order_id": take["order"]["order_id"]})
    assert still["order_state"] == "untriggered"
    gateway.sim.derivatives.set_mark(ETH, mark + 120)
    assert (await socket.call("private/get_order_state", {"order_id": take["order"]["order_id"]}))[
        "order_state"
    ] == "triggered"


async def test_trailing_stop_follows_the_best_price(gateway: Gateway) -> None:
    socket = await gateway.trading()
    await socket.call("private/buy", {"instrument_name": ETH, "amount": 1, "type": "market"})
    mark = Decimal(str((await socket.call("public/ticker", {"instrument_name": ETH}))["mark_price"]))
    trail = await socket.call(
        "private/sell",
        {
            "instrument_name": ETH,
            "amount": 1,
            "type": "trailing_stop",
            "trigger": "mark_price",
            "trigger_offset": 20,
            "reduce_only": True,
        },
    )
    order_id = trail["order"]["order_id"]
    gateway.sim.derivatives.set_mark(ETH, mark + 100)  # the reference rises to mark + 100
    gateway.sim.derivatives.set_mark(ETH, mark + 90)  # within the offset: nothing
    assert (await socket.call("private/get_order_state", {"order_id": order_id}))[
        "order_state"
    ] == "untriggered"
    gateway.sim.derivatives.set_mark(ETH, mark + 75)
    assert (await socket.call("private/get_order_state", {"order_id": order_id}))[
        "order_state"
    ] == "triggered"
    assert (await socket.call("private/get_position", {"instrument_name": ETH}))["size"] == 0


async def test_post_only_reduce_only_valid_until_and_ticks(gateway: Gateway) -> None:
    socket = await gateway.trading()
    book = await _book(socket)
    ask = best(book, "asks")
    moved = await socket.call(
        "private/buy",
        {
            "instrument_name": BTC,
            "amount": 0.01,
            "price": float(ask + 100),
            "post_only": True,
        },
    )
    assert moved["order"]["order_state"] == "open"
    assert Decimal(str(moved["order"]["price"])) == ask - Decimal("0.5")
    rejected = await socket.request(
        "private/buy",
        {
            "instrument_name": BTC,
            "amount": 0.01,
            "price": float(ask + 100),
            "post_only": True,
            "reject_post_only": True,
        },
    )
    assert rejected["error"]["code"] == 11054
    reduce = await socket.request(
        "private/sell", {"instrument_name": BTC, "amount": 0.01, "type": "market", "reduce_only": True}
    )
    assert reduce["error"]["code"] == 11030
    late = await socket.request(
        "private/buy",
        {
            "instrument_name": BTC,
            "amount": 0.01,
            "price": 100,
            "valid_until": gateway.sim.derivatives.now_ms() - 1,
        },
    )
    assert late["error"]["code"] == 13888
    tick = await socket.request("private/buy", {"instrument_name": BTC, "amount": 0.01, "price": 100.3})
    assert tick["error"]["code"] == 10043
    size = await socket.request("private/buy", {"instrument_name": BTC, "amount": 0.00015, "price": 100})
    assert size["error"]["code"] == -32602
    assert size["error"]["data"]["param"] == "amount"
    market_limit = await socket.call(
        "private/buy", {"instrument_name": BTC, "amount": 10, "type": "market_limit"}
    )
    order = market_limit["order"]
    assert order["original_order_type"] == "market_limit"
    assert order["order_state"] == "open"
    assert Decimal(str(order["price"])) == ask
    assert 0 < order["filled_amount"] < 10


async def test_labels_are_kept_not_unique(gateway: Gateway) -> None:
    socket = await gateway.trading()
    bid = best(await _book(socket), "bids")
    params = {"instrument_name": BTC, "amount": 0.01, "price": float(bid - 500), "label": "grid"}
    first = (await socket.call("private/buy", params))["order"]
    second = (await socket.call("private/buy", params))["order"]
    assert first["order_id"] != second["order_id"]
    by_label = await socket.call("private/get_order_state_by_label", {"currency": "USDC", "label": "grid"})
    assert {o["order_id"] for o in by_label} == {first["order_id"], second["order_id"]}
    ambiguous = await socket.request(
        "private/edit_by_label",
        {"instrument_name": BTC, "label": "grid", "amount": 0.02, "price": float(bid - 400)},
    )
    assert ambiguous["error"]["code"] == -32602
    edited = await socket.call(
        "private/edit", {"order_id": first["order_id"], "amount": 0.02, "price": float(bid - 400)}
    )
    assert edited["order"]["amount"] == 0.02
    assert edited["order"]["replaced"] is True
    assert await socket.call("private/cancel_by_label", {"label": "grid"}) == 2
    assert await socket.call("private/get_open_orders", {}) == []


async def test_otoco_places_the_exits_after_the_entry_and_one_cancels_the_other(gateway: Gateway) -> None:
    socket = await gateway.trading()
    mark = Decimal(str((await socket.call("public/ticker", {"instrument_name": ETH}))["mark_price"]))
    placed = await socket.call(
        "private/buy",
        {
            "instrument_name": ETH,
            "amount": 1,
            "type": "market",
            "linked_order_type": "one_triggers_one_cancels_other",
            "otoco_config": [
                {
                    "direction": "sell",
                    "amount": 1,
                    "type": "take_limit",
                    "trigger": "mark_price",
                    "trigger_price": float(mark + 100),
                    "price": float(mark + 95),
                    "reduce_only": True,
                },
                {
                    "direction": "sell",
                    "amount": 1,
                    "type": "stop_market",
                    "trigger": "mark_price",
                    "trigger_price": float(mark - 100),
                    "reduce_only": True,
                },
            ],
        },
    )
    primary = placed["order"]
    assert primary["is_primary_otoco"] is True
    assert primary["order_state"] == "filled"
    legs = [o for o in await socket.call("private/get_open_orders", {}) if o.get("primary_order_id")]
    assert {o["order_id"] for o in legs} == set(primary["oto_order_ids"])  # the ids announced stay theirs
    assert len(legs) == 2
    assert {o["order_state"] for o in legs} == {"untriggered"}
    assert len({o["oco_ref"] for o in legs}) == 1
    gateway.sim.derivatives.set_mark(ETH, mark - 150)
    stop = next(o for o in legs if o["order_type"] == "stop_market")
    take = next(o for o in legs if o["order_type"] == "take_limit")
    assert (await socket.call("private/get_order_state", {"order_id": stop["order_id"]}))[
        "order_state"
    ] == "triggered"
    other = await socket.call("private/get_order_state", {"order_id": take["order_id"]})
    assert other["order_state"] == "cancelled"
    assert other["cancel_reason"] == "oco_other_closed"
    assert (await socket.call("private/get_position", {"instrument_name": ETH}))["size"] == 0


async def test_public_subscribe_is_refused_on_the_trading_socket(gateway: Gateway) -> None:
    socket = await gateway.trading()
    reply = await socket.request("public/subscribe", {"channels": [f"book.{BTC}.100ms"]})
    assert reply["error"]["code"] == -32601
    market = await socket.call("private/subscribe", {"channels": [f"book.{BTC}.100ms"]})
    assert market == []  # market data is the streams host's


async def test_oto_legs_wait_for_the_primary_and_close_with_it(gateway: Gateway) -> None:
    socket = await gateway.trading()
    mark = Decimal(str((await socket.call("public/ticker", {"instrument_name": ETH}))["mark_price"]))
    placed = await socket.call(
        "private/buy",
        {
            "instrument_name": ETH,
            "amount": 1,
            "price": float(mark - 500),
            "linked_order_type": "one_triggers_other",
            "otoco_config": [
                {
                    "direction": "sell",
                    "amount": 1,
                    "type": "stop_market",
                    "trigger": "mark_price",
                    "trigger_price": float(mark + 100),
                }
            ],  # a sell stop above the mark: armed, it fires
        },
    )
    primary = placed["order"]
    (leg_id,) = primary["oto_order_ids"]
    gateway.sim.derivatives.set_mark(ETH, mark + 1)
    leg = await socket.call("private/get_order_state", {"order_id": leg_id})
    assert leg["order_state"] == "untriggered"
    assert leg["is_secondary_oto"] is True
    await socket.call("private/cancel", {"order_id": primary["order_id"]})
    leg = await socket.call("private/get_order_state", {"order_id": leg_id})
    assert leg["order_state"] == "cancelled"
    assert leg["cancel_reason"] == "oto_primary_closed"


async def test_user_changes_carry_orders_trades_and_the_position(gateway: Gateway) -> None:
    socket = await gateway.trading()
    await socket.call("private/subscribe", {"channels": [f"user.changes.{BTC}.100ms"]})
    await socket.call("private/buy", {"instrument_name": BTC, "amount": 0.01, "type": "market"})
    change = await socket.notification("user.changes.", lambda d: d["trades"])
    assert change["instrument_name"] == BTC
    assert change["positions"][0]["size"] == 0.01


async def test_a_waiting_trigger_order_is_in_the_ledger_and_so_is_what_it_fires(gateway: Gateway) -> None:
    socket = await gateway.trading()
    mark = Decimal(str((await socket.call("public/ticker", {"instrument_name": BTC}))["mark_price"]))
    stop = (
        await socket.call(
            "private/sell",
            {
                "instrument_name": BTC,
                "amount": 0.01,
                "type": "stop_market",
                "trigger": "mark_price",
                "trigger_price": float(mark - 100),
            },
        )
    )["order"]
    entries = [e for e in gateway.sim.ledger.entries() if e["source"] == "derivatives"]
    assert [(e["order_id"], e["status"]) for e in entries] == [(stop["order_id"], "UNTRIGGERED")]
    gateway.sim.derivatives.set_mark(BTC, mark - 200)
    entries = [e for e in gateway.sim.ledger.entries() if e["source"] == "derivatives"]
    assert [e["status"] for e in entries] == ["TRIGGERED", "FILLED"]
    assert entries[0]["order_id"] == stop["order_id"] != entries[1]["order_id"]


async def test_equity_below_maintenance_margin_liquidates(gateway: Gateway) -> None:
    socket = await gateway.trading()
    await socket.call("private/set_leverage", {"instrument_name": ETH, "leverage": 50})
    bought = await socket.call("private/buy", {"instrument_name": ETH, "amount": 40, "type": "market"})
    entry = Decimal(str(bought["order"]["average_price"]))
    ask = best(await _book(socket, ETH), "asks")
    resting = (
        await socket.call("private/sell", {"instrument_name": ETH, "amount": 1, "price": float(ask + 1000)})
    )["order"]  # a sell far above: a crash never fills it
    summary = await socket.call("private/get_account_summary", {"currency": "USDC"})
    assert summary["equity"] > summary["maintenance_margin"]
    # a fall that takes more than the whole collateral: equity goes below maintenance margin
    gateway.sim.derivatives.set_mark(ETH, entry - Decimal(summary["equity"]) / 40 - 10)
    position = await socket.call("private/get_position", {"instrument_name": ETH})
    assert position["size"] == 0
    cancelled = await socket.call("private/get_order_state", {"order_id": resting["order_id"]})
    assert cancelled["cancel_reason"] == "autoliquidation"
    trades = await socket.call(
        "private/get_user_trades_by_instrument", {"instrument_name": ETH, "count": 100}
    )
    closing = [t for t in trades["trades"] if t["label"] == "liquidation"]
    assert closing
    assert sum(Decimal(str(t["amount"])) for t in closing) == 40
