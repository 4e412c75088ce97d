"""`attached_order_configuration`: a take-profit / stop-loss bracket that comes to life when its parent
fills, sized to the parent's fill, on the other side; none when the parent is cancelled first or the edit
drops it (`cancel_attached_order`). Checked on the matching core, over REST, and with the official SDK."""

from __future__ import annotations

import asyncio
import itertools
import json
import uuid
from decimal import Decimal as D
from pathlib import Path
from typing import Any

import pytest
from coinbase.rest import RESTClient

from engine import Client
from engine.auth import CdpKey
from engine.rest import LimitGtc, MarketIoc, Side, TriggerBracketGtc
from engine.sim import Simulator
from engine.sim.orders import Order, OrderRefused, OrderSpec
from tests.sim.conftest import Served, Tls, quiet_config
from tests.support.keys import new_es256_key

_ids = itertools.count()
FUTURE = "BIP-20DEC30-CDE"
P = "/api/v3/brokerage"


@pytest.fixture
def sim() -> Simulator:
    sim = Simulator(quiet_config())
    sim.accounts.credit("USD", D(10_000_000))
    return sim


def bracket(take_profit: D, stop: D) -> dict[str, Any]:
    return {
        "trigger_bracket_gtc": {
            "limit_price": format(take_profit, "f"),
            "stop_trigger_price": format(stop, "f"),
        }
    }


def place(
    sim: Simulator, side: str, config: dict[str, Any], attached: Any, product: str = "BTC-USD"
) -> Order:
    order, created = sim.engine.submit(
        f"a-{next(_ids)}", product, side, OrderSpec.parse(config), attached=attached
    )
    assert created
    return order


def child_of(sim: Simulator, parent: Order) -> Order:
    assert parent.attached_order_id, "the parent names its attached order"
    return sim.engine.orders[parent.attached_order_id]


def test_a_resting_buy_gets_its_bracket_when_it_fills(sim: Simulator) -> None:
    market = sim.markets["BTC-USD"]
    mid = market.mid
    entry, take_profit, stop = mid - 1000, mid + 2000, mid - 3000
    before = set(sim.engine.orders)
    parent = place(
        sim, "BUY", {"limit_limit_gtc": {"base_size": "0.5", "limit_price": format(entry, "f")}},
        bracket(take_profit, stop),
    )  # fmt: skip
    assert parent.status == "OPEN"
    assert set(sim.engine.orders) - before == {parent.order_id}, "no bracket before the fill"
    assert parent.to_advanced()["attached_order_id"] == ""
    btc = sim.accounts.available("BTC")
    sim.set_mid("BTC-USD", entry - 500)  # the market trades down through the entry
    assert parent.status == "FILLED"
    child = child_of(sim, parent)
    assert child.side == "SELL"
    assert child.spec.order_type == "BRACKET"
    assert child.spec.base_size == parent.filled_size == D("0.5")
    assert (child.spec.limit_price, child.spec.stop_price) == (take_profit, stop)
    assert child.status == "OPEN"
    assert child.hold_currency == "BTC"
    assert child.hold_amount == D("0.5")
    assert sim.accounts.available("BTC") == btc  # bought 0.5, all of it held by the bracket
    assert parent.to_advanced()["attached_order_id"] == child.order_id
    assert child in list(sim.ledger), "the attached order is listed like any other"
    # the take-profit leg sells when the market reaches it
    sim.set_mid("BTC-USD", take_profit + 500)
    assert child.status == "FILLED"
    assert child.average_filled_price == take_profit


def test_the_stop_leg_triggers_as_a_limit_below_the_stop(sim: Simulator) -> None:
    mid = sim.markets["BTC-USD"].mid
    parent = place(sim, "BUY", {"market_market_ioc": {"base_size": "0.2"}}, bracket(mid + 5000, mid - 2000))
    child = child_of(sim, parent)  # a market order fills now: its bracket comes at once
    assert child.spec.base_size == parent.filled_size == D("0.2")
    sim.set_mid("BTC-USD", mid - 2500)
    assert child.triggered
    assert child.status == "FILLED"
    assert child.average_filled_price < mid - 2000


def test_a_partly_filled_parent_brackets_only_what_it_filled(sim: Simulator) -> None:
    market = sim.markets["BTC-USD"]
    depth = sum((size for _, size in market.book.asks.walk()), D(0))
    mid = market.mid
    parent = place(
        sim, "BUY", {"market_market_ioc": {"base_size": format(depth + 1, "f")}}, bracket(mid * 3, mid / 10)
    )
    assert parent.status == "CANCELLED"  # IOC: the rest of it found no liquidity
    assert parent.filled_size == depth
    assert child_of(sim, parent).spec.base_size == depth


def test_a_sell_gets_a_buy_bracket(sim: Simulator) -> None:
    mid = sim.markets["BTC-USD"].mid
    sim.accounts.credit("BTC", D(1))
    parent = place(sim, "SELL", {"market_market_ioc": {"base_size": "0.1"}}, bracket(mid - 3000, mid + 3000))
    child = child_of(sim, parent)
    assert child.side == "BUY"
    assert child.hold_currency == "USD"


def test_cancelled_before_a_fill_no_bracket(sim: Simulator) -> None:
    mid = sim.markets["BTC-USD"].mid
    parent = place(
        sim, "BUY", {"limit_limit_gtc": {"base_size": "0.1", "limit_price": format(mid - 1000, "f")}},
        bracket(mid + 1000, mid - 2000),
    )  # fmt: skip
    count = len(sim.engine.orders)
    assert sim.engine.cancel(parent.order_id) == (True, "UNKNOWN_CANCEL_FAILURE_REASON")
    sim.set_mid("BTC-USD", mid - 1500)
    assert parent.attached_order_id == ""
    assert len(sim.engine.orders) == count


def test_cancel_attached_order_on_edit_drops_the_bracket(sim: Simulator) -> None:
    mid = sim.markets["BTC-USD"].mid
    entry = mid - 1000
    parent = place(
        sim, "BUY", {"limit_limit_gtc": {"base_size": "0.1", "limit_price": format(entry, "f")}},
        bracket(mid + 1000, mid - 2000),
    )  # fmt: skip
    assert sim.engine.edit(parent.order_id, D("0.2"), None) is None  # an edit alone keeps it
    assert parent.attached is not None
    assert sim.engine.edit(parent.order_id, None, None, cancel_attached=True) is None
    sim.set_mid("BTC-USD", entry - 500)
    assert parent.status == "FILLED"
    assert parent.attached_order_id == ""


def test_a_futures_bracket_is_reduce_only_and_closes_the_fill(sim: Simulator) -> None:
    mid = sim.markets[FUTURE].mid
    increment = sim.markets[FUTURE].spec.price_increment
    take_profit = (mid * D("1.2") / increment).to_integral_value() * increment
    stop = (mid * D("0.8") / increment).to_integral_value() * increment
    parent = place(sim, "BUY", {"market_market_ioc": {"base_size": "3"}}, bracket(take_profit, stop), FUTURE)
    child = child_of(sim, parent)
    assert child.side == "SELL"
    assert child.spec.base_size == D(3)
    position = sim.engine.positions.get(FUTURE)
    assert position is not None
    assert position.contracts == D(3)
    # it only reduces: the same bracket with no position behind it is refused
    with pytest.raises(OrderRefused, match="reduce-only"):
        sim.engine.submit("naked", FUTURE, "BUY", child.spec)


@pytest.mark.parametrize(
    ("parent", "attached", "reason"),
    [
        # a buy's take-profit below its entry, or its stop above it
        (
            {"market_market_ioc": {"base_size": "0.1"}},
            "tp_below",
            "PREVIEW_INVALID_ORDER_SIDE_FOR_ATTACHED_TPSL",
        ),
        (
            {"market_market_ioc": {"base_size": "0.1"}},
            "stop_above",
            "PREVIEW_INVALID_ORDER_SIDE_FOR_ATTACHED_TPSL",
        ),
        ({"market_market_ioc": {"base_size": "0.1"}}, "limit", "PREVIEW_INVALID_ORDER_TYPE_FOR_ATTACHED"),
        ({"market_market_ioc": {"base_size": "0.1"}}, "sized", "PREVIEW_INVALID_ARGUMENT"),
        ({"market_market_ioc": {"base_size": "0.1"}}, "odd_price", "PREVIEW_INVALID_PRICE_PRECISION"),
        ({"market_market_ioc": {"base_size": "0.1"}}, [], "PREVIEW_INVALID_ORDER_TYPE_FOR_ATTACHED"),
        ("stop_parent", "ok", "PREVIEW_INVALID_ORDER_TYPE_FOR_ATTACHED"),
    ],
)
def test_what_cannot_be_attached_is_refused_before_anything_is_placed(
    sim: Simulator, parent: Any, attached: Any, reason: str
) -> None:
    mid = sim.markets["BTC-USD"].mid
    attachments = {
        "ok": bracket(mid + 1000, mid - 1000),
        "tp_below": bracket(mid - 1000, mid - 2000),
        "stop_above": bracket(mid + 2000, mid + 1000),
        "limit": {"limit_limit_gtc": {"base_size": "0.1", "limit_price": format(mid + 1000, "f")}},
        "sized": {
            "trigger_bracket_gtc": {
                **bracket(mid + 1000, mid - 1000)["trigger_bracket_gtc"],
                "base_size": "1",
            }
        },
        "odd_price": bracket(mid + D("1000.001"), mid - 1000),
    }
    if parent == "stop_parent":
        parent = {
            "stop_limit_stop_limit_gtc": {
                "base_size": "0.1",
                "limit_price": format(mid + 600, "f"),
                "stop_price": format(mid + 500, "f"),
                "stop_direction": "STOP_DIRECTION_STOP_UP",
            }
        }
    count, usd = len(sim.engine.orders), sim.accounts.available("USD")
    with pytest.raises(OrderRefused) as refused:
        place(
            sim, "BUY", parent, attachments.get(attached, attached) if isinstance(attached, str) else attached
        )
    assert refused.value.preview_failure_reason == reason
    assert len(sim.engine.orders) == count
    assert sim.accounts.available("USD") == usd


async def test_over_rest_the_parent_names_its_attached_order(served: Served) -> None:
    served.sim.accounts.credit("USD", D(1_000_000))
    mid = served.sim.markets["BTC-USD"].mid
    body = {
        "client_order_id": "with-bracket",
        "product_id": "BTC-USD",
        "side": "BUY",
        "order_configuration": {"market_market_ioc": {"base_size": "0.1"}},
        "attached_order_configuration": bracket(mid + 1000, mid - 1000),
    }
    code, placed = await served.call("POST", f"{P}/orders", body)
    assert code == 200
    assert placed["success"] is True
    code, parent = await served.call("GET", f"{P}/orders/historical/{placed['order_id']}")
    attached_id = parent["order"]["attached_order_id"]
    assert attached_id
    code, child = await served.call("GET", f"{P}/orders/historical/{attached_id}")
    assert code == 200
    assert child["order"]["side"] == "SELL"
    assert child["order"]["order_type"] == "BRACKET"
    assert child["order"]["order_configuration"]["trigger_bracket_gtc"]["base_size"] == "0.1"
    # a refused attachment answers with Coinbase's refusal body
    body["client_order_id"] = "bad-bracket"
    body["attached_order_configuration"] = bracket(mid - 1000, mid - 2000)
    code, refused = await served.call("POST", f"{P}/orders", body)
    assert code == 200
    assert refused["success"] is False
    assert (
        refused["error_response"]["preview_failure_reason"] == "PREVIEW_INVALID_ORDER_SIDE_FOR_ATTACHED_TPSL"
    )
    # preview checks the same thing
    preview_body = {k: v for k, v in body.items() if k != "client_order_id"}
    code, preview = await served.call("POST", f"{P}/orders/preview", preview_body)
    assert preview["errs"] == ["PREVIEW_INVALID_ORDER_SIDE_FOR_ATTACHED_TPSL"]


def _sdk_calls(key_file: Path, host_port: str, ca_path: Path, mid: D) -> dict[str, Any]:
    client = RESTClient(key_file=str(key_file), base_url=host_port, timeout=10)
    client.session.verify = str(ca_path)
    attached = bracket(mid + 1000, mid - 1000)
    entry = format(mid - 500, "f")
    created = client.create_order(
        uuid.uuid4().hex, "BTC-USD", "BUY", {"limit_limit_gtc": {"base_size": "0.01", "limit_price": entry}},
        attached_order_configuration=attached,
    )  # fmt: skip
    order_id = created.success_response["order_id"]
    edited = client.edit_order(order_id, size="0.02", price=entry, cancel_attached_order=False)
    preview = client.preview_order(
        "BTC-USD", "BUY", {"market_market_ioc": {"base_size": "0.01"}}, attached_order_configuration=attached
    )
    return {
        "created": created.to_dict(),
        "order_configuration": created.order_configuration.limit_limit_gtc.limit_price,
        "edited": edited.to_dict(),
        "preview": preview.to_dict(),
        "order": client.get_order(order_id).order.to_dict(),
    }


async def test_the_official_sdk_creates_an_order_with_an_attached_bracket(
    tls: Tls, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(tls.ca_path))
    key = new_es256_key()
    key_file = tmp_path / "key.json"
    key_file.write_text(json.dumps(key.portal_json()))
    sim = Simulator(quiet_config())
    sim.register_cdp_key(key.name, key.public_key_pem)
    mid = sim.markets["BTC-USD"].mid
    async with sim.serve(ssl_context=tls.server_context) as base_url:
        answers = await asyncio.to_thread(_sdk_calls, key_file, base_url.split("://")[1], tls.ca_path, mid)
        parent = sim.engine.orders[answers["created"]["success_response"]["order_id"]]
        assert parent.attached is not None, "the bracket waits for the fill"
        sim.set_mid("BTC-USD", mid - 1000)
        assert parent.status == "FILLED"
        assert sim.engine.orders[parent.attached_order_id].spec.base_size == D("0.02")
    assert answers["created"]["success"] is True
    assert answers["edited"]["success"] is True
    assert answers["preview"]["errs"] == []
    assert answers["order"]["attached_order_configuration"]["trigger_bracket_gtc"]["limit_price"]
    assert answers["order"]["attached_order_id"] == ""  # not yet filled


async def test_the_client_sees_the_attached_order_and_can_drop_it(served: Served) -> None:
    served.sim.accounts.credit("USD", D(1_000_000))
    mid = served.sim.markets["BTC-USD"].mid
    take = TriggerBracketGtc(limit_price=str(mid + 1000), stop_trigger_price=str(mid - 1000))
    key = CdpKey(served.key.name, served.key.private_key)
    async with Client(key, served.base_url) as client:
        filled = await client.create_order(
            "BTC-USD", Side.BUY, MarketIoc(base_size="0.05"), attached_configuration=take
        )
        parent = await client.get_order(filled.order_id)
        assert parent.attached_order_id
        child = await client.get_order(parent.attached_order_id)
        assert (child.side, child.order_type, child.filled_size) == ("SELL", "BRACKET", D(0))
        assert child.configuration["trigger_bracket_gtc"]["base_size"] == "0.05"
        resting = await client.create_order(
            "BTC-USD", Side.BUY, LimitGtc(base_size="0.05", limit_price=str(mid - 500)),
            attached_configuration=take,
        )  # fmt: skip
        edited = await client.edit_order(
            resting.order_id, size="0.05", price=str(mid - 500), cancel_attached_order=True
        )
        assert edited.success
        served.sim.set_mid("BTC-USD", mid - 1000)
        dropped = await client.get_order(resting.order_id)
        assert dropped.status == "FILLED"
        assert dropped.attached_order_id == ""


def test_a_futures_bracket_shrinks_with_its_position_and_never_opens_one(sim: Simulator) -> None:
    market = sim.markets[FUTURE]
    mid, increment = market.mid, market.spec.price_increment
    take_profit = (mid * D("1.2") / increment).to_integral_value() * increment
    stop = (mid * D("0.8") / increment).to_integral_value() * increment
    parent = place(sim, "BUY", {"market_market_ioc": {"base_size": "3"}}, bracket(take_profit, stop), FUTURE)
    child = child_of(sim, parent)
    place(sim, "SELL", {"market_market_ioc": {"base_size": "2"}}, None, FUTURE)  # closed by hand, partly
    assert child.status == "OPEN"
    assert child.spec.base_size == D(1)  # it closes what is left, no more
    assert child.to_advanced()["order_configuration"]["trigger_bracket_gtc"]["base_size"] == "1"
    place(sim, "SELL", {"market_market_ioc": {"base_size": "1"}}, None, FUTURE)
    assert child.status == "CANCELLED"  # nothing left to close
    assert sim.engine.positions.get(FUTURE) is None
    sim.set_mid(FUTURE, take_profit + 10 * increment)  # where it would have sold: no short opens
    assert sim.engine.positions.get(FUTURE) is None


async def test_an_edit_replaces_the_waiting_bracket_or_refuses_one_that_does_not_fit(served: Served) -> None:
    sim = served.sim
    sim.accounts.credit("USD", D(1_000_000))
    mid = sim.markets["BTC-USD"].mid
    entry = mid - 1000
    parent = place(
        sim, "BUY", {"limit_limit_gtc": {"base_size": "0.1", "limit_price": format(entry, "f")}},
        bracket(mid + 1000, mid - 2000),
    )  # fmt: skip
    edit = {"order_id": parent.order_id, "price": format(entry, "f"), "size": "0.1"}
    wrong = dict(
        edit, attached_order_configuration=bracket(entry - 10, entry - 20)
    )  # take-profit below a buy
    code, answer = await served.call("POST", f"{P}/orders/edit", wrong)
    assert code == 200
    assert answer["success"] is False
    assert answer["errors"][0]["preview_failure_reason"] == "PREVIEW_INVALID_ORDER_SIDE_FOR_ATTACHED_TPSL"
    assert parent.attached is not None
    assert parent.attached.config["limit_price"] == format(mid + 1000, "f")  # unchanged
    wider = dict(edit, attached_order_configuration=bracket(mid + 3000, mid - 4000))
    code, answer = await served.call("POST", f"{P}/orders/edit", wider)
    assert answer["success"] is True
    sim.set_mid("BTC-USD", entry - 500)
    child = child_of(sim, parent)
    assert (child.spec.limit_price, child.spec.stop_price) == (mid + 3000, mid - 4000)
