"""A portfolio's breakdown (GET /portfolios/{uuid}): what it holds, valued in one currency.

The totals are the sums of the rows they summarise, and futures count their margin and unrealized PnL, so a
client can check that the breakdown adds up. See
https://docs.cdp.coinbase.com/advanced-trade/reference/retailbrokerageapi_getportfoliobreakdown.
"""

from __future__ import annotations

from decimal import Decimal
from typing import TYPE_CHECKING, Any

from engine.sim.book import ZERO
from engine.sim.clock import fmt
from engine.sim.futures import FuturesPositions
from engine.sim.portfolios import DEFAULT, Portfolio
from engine.sim.responses import money

if TYPE_CHECKING:
    from engine.sim.app import Simulator

_CASH = frozenset({"USD", "USDC", "EUR", "GBP"})
_CENTS = Decimal("0.01")


def portfolio_breakdown(sim: Simulator, portfolio: Portfolio, currency: str) -> dict[str, Any]:
    per_unit = sim.usd_price(currency) or Decimal(1)
    holdings = sim.portfolios.holdings(portfolio)
    valued: list[tuple[str, Decimal, Decimal, Decimal]] = []  # currency, total, available, value
    for asset, (total, available) in sorted(holdings.items()):
        price = sim.usd_price(asset)
        if price is None or total == ZERO:
            continue
        valued.append((asset, total, available, total * price / per_unit))
    grand = sum((v for *_, v in valued), ZERO)
    cash = sum((v for a, *_, v in valued if a in _CASH), ZERO)
    accounts = {a.currency: a.uuid for a in portfolio.wallet}
    spot = [
        {
            "asset": asset,
            "account_uuid": accounts.get(asset, ""),
            "total_balance_fiat": float(value.quantize(_CENTS)),
            "total_balance_crypto": float(total),
            "available_to_trade_fiat": float((value * available / total).quantize(_CENTS)),
            "available_to_trade_crypto": float(available),
            "allocation": float(value / grand) if grand > ZERO else 0.0,
            "cost_basis": money(value, currency),
            "asset_img_url": "",
            "is_cash": asset in _CASH,
        }
        for asset, total, available, value in valued
    ]
    futures: list[dict[str, Any]] = []
    unrealized = ZERO
    if portfolio.type == DEFAULT:  # futures trade on the default portfolio's collateral
        for position in sim.engine.positions.open_positions():
            market = sim.markets[position.product_id]
            pnl = FuturesPositions.unrealized_pnl(position, market.spec, market.mid) / per_unit
            unrealized += pnl
            futures.append(
                {
                    "product_id": position.product_id,
                    "contract_size": fmt(market.spec.contract_size),
                    "side": "FUTURES_POSITION_SIDE_" + position.side,
                    "amount": fmt(abs(position.contracts)),
                    "avg_entry_price": fmt(position.avg_entry_price),
                    "current_price": fmt(market.mid),
                    "unrealized_pnl": fmt(pnl),
                    "expiry": market.spec.contract_expiry,
                    "underlying_asset": market.spec.base_currency,
                    "asset_img_url": "",
                    "product_name": market.spec.product_id,
                    "venue": "FCM",
                    "notional_value": fmt(
                        FuturesPositions.notional(position.contracts, market.spec, market.mid) / per_unit
                    ),
                }
            )
    return {
        "portfolio": portfolio.to_json(),
        "portfolio_balances": {
            "total_balance": money(grand + unrealized, currency),
            "total_futures_balance": money(unrealized, currency),
            "total_cash_equivalent_balance": money(cash, currency),
            "total_crypto_balance": money(grand - cash, currency),
            "futures_unrealized_pnl": money(unrealized, currency),
            "perp_unrealized_pnl": money(ZERO, currency),
        },
        "spot_positions": spot,
        "perp_positions": [],
        "futures_positions": futures,
    }
