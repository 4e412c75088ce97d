"""A product's trading status, and the new orders each one refuses.

Coinbase describes a product's state with `status` and four flags
(https://docs.cdp.coinbase.com/advanced-trade/reference/retailbrokerageapi_getproduct): `trading_disabled`
and `cancel_only` take no new orders (resting ones may still be cancelled), `limit_only` refuses market
orders, `post_only` accepts only orders that add liquidity. The simulator holds one of these modes per
product (set at run time through `/sim/market`) and refuses as Coinbase does: `ORDER_ENTRY_DISABLED`, or
`INVALID_LIMIT_PRICE_POST_ONLY` for a limit order that would take liquidity in post-only mode.
"""

from __future__ import annotations

from typing import Any

from engine.sim.orders import MARKET, OrderRefused

ONLINE = "online"
OFFLINE = "offline"
TRADING_DISABLED = "trading_disabled"
CANCEL_ONLY = "cancel_only"
LIMIT_ONLY = "limit_only"
POST_ONLY = "post_only"

STATUSES = (ONLINE, OFFLINE, TRADING_DISABLED, CANCEL_ONLY, LIMIT_ONLY, POST_ONLY)
# no new order of any kind, and no edit: only cancels
NO_ENTRY = frozenset({OFFLINE, TRADING_DISABLED, CANCEL_ONLY})


def product_fields(status: str) -> dict[str, Any]:
    """The fields of a product's JSON that say what it trades."""
    return {
        "status": OFFLINE if status == OFFLINE else ONLINE,
        "trading_disabled": status in (OFFLINE, TRADING_DISABLED),
        "is_disabled": status == OFFLINE,
        "cancel_only": status == CANCEL_ONLY,
        "limit_only": status == LIMIT_ONLY,
        "post_only": status == POST_ONLY,
    }


def _entry_disabled(product_id: str, why: str) -> OrderRefused:
    # no preview reason names this: a preview reports the order-entry reason itself
    return OrderRefused("ORDER_ENTRY_DISABLED", "ORDER_ENTRY_DISABLED", f"{product_id} is {why}")


def admit(product_id: str, status: str, order_type: str, takes_liquidity: bool) -> None:
    """Refuse a new order the product's status does not allow (OrderRefused); `takes_liquidity` says whether
    the order would trade against the book now."""
    if status == ONLINE:
        return
    if status in NO_ENTRY:
        raise _entry_disabled(product_id, status.replace("_", " ") + ": new orders are not accepted")
    if order_type == MARKET:
        raise _entry_disabled(product_id, status.replace("_", " ") + ": market orders are not accepted")
    if status == POST_ONLY and takes_liquidity:
        raise OrderRefused(
            "INVALID_LIMIT_PRICE_POST_ONLY",
            "PREVIEW_INVALID_LIMIT_PRICE_POST_ONLY",
            f"{product_id} is post only: the limit price would take liquidity",
        )
