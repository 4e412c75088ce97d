"""Product, currency and account JSON in Coinbase's shapes
(Advanced Trade v3, and the v2 endpoints ccxt reads)."""

from __future__ import annotations

from typing import Any

from engine.sim.accounts import Account
from engine.sim.clock import fmt, iso
from engine.sim.market import Market
from engine.sim.trading_status import ONLINE, product_fields

FIAT = {"USD": "US Dollar", "EUR": "Euro", "GBP": "British Pound"}
CRYPTO_NAMES = {"BTC": "Bitcoin", "ETH": "Ethereum", "USDC": "USDC"}


def product_json(market: Market, now: float, status: str = ONLINE) -> dict[str, Any]:
    spec = market.spec
    product: dict[str, Any] = {
        "product_id": spec.product_id,
        "price": fmt(market.last_price),
        "price_percentage_change_24h": fmt(market.price_change_pct_24h()),
        "volume_24h": fmt(market.volume_24h),
        "volume_percentage_change_24h": "0",
        "base_increment": fmt(spec.base_increment),
        "quote_increment": fmt(spec.price_increment),
        "quote_min_size": fmt(spec.quote_min_size),
        "quote_max_size": fmt(spec.quote_max_size),
        "base_min_size": fmt(spec.base_min_size),
        "base_max_size": fmt(spec.base_max_size),
        "base_name": spec.base_name,
        "quote_name": spec.quote_name,
        "watched": False,
        "is_disabled": False,
        "new": False,
        "status": "online" if not spec.is_future else "",
        "cancel_only": False,
        "limit_only": False,
        "post_only": False,
        "trading_disabled": False,
        "auction_mode": False,
        "product_type": spec.product_type,
        "quote_currency_id": spec.quote_currency,
        "base_currency_id": spec.base_currency,
        "fcm_trading_session_details": None,
        "mid_market_price": fmt(market.mid),
        "alias": "",
        "alias_to": [],
        "base_display_symbol": spec.base_currency,
        "quote_display_symbol": spec.quote_currency,
        "view_only": False,
        "price_increment": fmt(spec.price_increment),
        "display_name": spec.display_name or spec.product_id,
        "product_venue": "FCM" if spec.is_future else "CBE",
        "approximate_quote_24h_volume": fmt(market.volume_24h * market.last_price),
    }
    product.update(product_fields(status))
    if spec.is_future and status == ONLINE:
        product["status"] = ""  # Coinbase leaves a future's status empty; its session says it trades
    if spec.is_future:
        product["fcm_trading_session_details"] = {
            "is_session_open": True,
            "open_time": iso(now - 3600),
            "close_time": iso(now + 86400),
            "session_state": "FCM_TRADING_SESSION_STATE_OPEN",
            "after_hours_order_entry_disabled": False,
        }
        product["future_product_details"] = {
            "venue": "cde",
            "contract_code": spec.contract_code,
            "contract_expiry": spec.contract_expiry,
            "contract_size": fmt(spec.contract_size),
            "contract_root_unit": spec.contract_root_unit,
            "group_description": "Nano Bitcoin Perp Style Futures",
            "contract_expiry_timezone": "Europe/London",
            "group_short_description": "Nano BTC",
            "risk_managed_by": "MANAGED_BY_FCM",
            "contract_expiry_type": "EXPIRING",
            "contract_display_name": spec.display_name,
            "funding_interval": "3600s",
            "non_crypto": False,
        }
    return product


def account_json(account: Account, portfolio_uuid: str) -> dict[str, Any]:
    fiat = account.currency in FIAT
    return {
        "uuid": account.uuid,
        "name": account.name,
        "currency": account.currency,
        "available_balance": {"value": fmt(account.available), "currency": account.currency},
        "default": True,
        "active": True,
        "created_at": account.created_iso,
        "updated_at": account.created_iso,
        "deleted_at": None,
        "type": "ACCOUNT_TYPE_FIAT" if fiat else "ACCOUNT_TYPE_CRYPTO",
        "ready": True,
        "hold": {"value": fmt(account.hold), "currency": account.currency},
        "retail_portfolio_id": portfolio_uuid,
        "platform": "ACCOUNT_PLATFORM_CONSUMER",
    }


def v2_account_json(account: Account) -> dict[str, Any]:
    fiat = account.currency in FIAT
    return {
        "id": account.uuid,
        "name": account.name,
        "primary": True,
        "type": "fiat" if fiat else "wallet",
        "currency": {
            "code": account.currency,
            "name": FIAT.get(account.currency) or CRYPTO_NAMES.get(account.currency, account.currency),
            "type": "fiat" if fiat else "crypto",
            "exponent": 2 if fiat else 8,
        },
        "balance": {"amount": fmt(account.balance), "currency": account.currency},
        "created_at": iso(account.created_at),
        "updated_at": iso(account.created_at),
        "resource": "account",
        "resource_path": f"/v2/accounts/{account.uuid}",
        "allow_deposits": True,
        "allow_withdrawals": True,
    }
