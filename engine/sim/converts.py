"""Converts between two accounts of one portfolio: a quote that holds a price a short while, then a commit.

A quote fixes the exchange rate (from the mid prices now) and the fee; committing it moves the balances at
that rate. A quote past its expiry, or one already committed, is refused. See
https://docs.cdp.coinbase.com/advanced-trade/reference/retailbrokerageapi_createconvertquote.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from engine.sim.accounts import Account, Accounts
from engine.sim.book import ZERO
from engine.sim.clock import iso
from engine.sim.responses import money
from engine.sim.values import BadRequest

QUOTE_LIFETIME_S = 10.0
CREATED, COMPLETED = "TRADE_STATUS_CREATED", "TRADE_STATUS_COMPLETED"
_RATE_PLACES = Decimal("1e-12")


class ConvertRefused(BadRequest):
    """Refused with a 4xx, in Advanced Trade's error body."""

    def __init__(self, status: int, error: str, message: str) -> None:
        super().__init__(message, status, error)


@dataclass(slots=True)
class ConvertTrade:
    trade_id: str
    source: Account
    target: Account
    amount: Decimal  # in the source currency, fee included
    fee: Decimal  # in the source currency
    rate: Decimal  # target per source
    created: float
    expires: float
    portfolio_uuid: str  # whose accounts both are
    status: str = CREATED

    @property
    def received(self) -> Decimal:
        return (self.amount - self.fee) * self.rate

    def to_json(self) -> dict[str, Any]:
        src, dst = self.source.currency, self.target.currency
        fee = {"title": "Coinbase fee", "description": "Convert fee", "amount": money(self.fee, src)}
        return {
            "id": self.trade_id,
            "status": self.status,
            "user_entered_amount": money(self.amount, src),
            "amount": money(self.received, dst),
            "subtotal": money(self.amount - self.fee, src),
            "total": money(self.amount, src),
            "fees": [fee],
            "total_fee": fee,
            "total_fee_without_tax": fee,
            "source": {"type": "ACCOUNT", "network": "", "identifier": self.source.uuid},
            "target": {"type": "ACCOUNT", "network": "", "identifier": self.target.uuid},
            "unit_price": {
                "target_to_source": money((1 / self.rate).quantize(_RATE_PLACES), src),
                "source_to_target": money(self.rate, dst),
            },
            "user_warnings": [],
            "user_reference": self.trade_id[:8],
            "source_currency": src,
            "target_currency": dst,
            "cancellation_reason": None,
            "source_id": self.source.uuid,
            "target_id": self.target.uuid,
            "exchange_rate": money(self.rate, dst),
            "fiat_denoted_total": money(self.amount, src),
            "expires_at": iso(self.expires),
        }


class Converts:
    def __init__(
        self,
        find_account: Callable[[str], tuple[Account, str] | None],
        wallets: Callable[[str], Accounts],
        usd_price: Callable[[str], Decimal | None],
        fee_rate: Callable[[], Decimal],
        clock: Callable[[], float],
        new_id: Callable[[], str],
    ) -> None:
        # account uuid -> (account, its portfolio); portfolio uuid -> its accounts
        self._find_account, self._wallets = find_account, wallets
        self._usd_price, self._fee_rate, self._now, self._new_id = usd_price, fee_rate, clock, new_id
        self._trades: dict[str, ConvertTrade] = {}

    def _account(self, uuid: object, name: str) -> tuple[Account, str]:
        found = self._find_account(uuid) if isinstance(uuid, str) else None
        if found is None:
            raise ConvertRefused(400, "INVALID_ARGUMENT", f"{name} is not one of your accounts")
        return found

    def quote(self, from_account: object, to_account: object, amount: Decimal) -> ConvertTrade:
        (source, portfolio), (target, target_portfolio) = (
            self._account(from_account, "from_account"),
            self._account(to_account, "to_account"),
        )
        if source is target:
            raise ConvertRefused(400, "INVALID_ARGUMENT", "from_account and to_account are the same")
        if portfolio != target_portfolio:  # a convert moves funds within one portfolio
            raise ConvertRefused(
                400, "INVALID_ARGUMENT", "from_account and to_account are in different portfolios"
            )
        source_usd, target_usd = self._usd_price(source.currency), self._usd_price(target.currency)
        if source_usd is None or target_usd is None or target_usd <= ZERO:
            raise ConvertRefused(400, "INVALID_ARGUMENT", "no conversion between these currencies")
        if source.available < amount:
            raise ConvertRefused(400, "INSUFFICIENT_FUND", "not enough available in from_account")
        now = self._now()
        trade = ConvertTrade(
            self._new_id(),
            source,
            target,
            amount,
            amount * self._fee_rate(),
            (source_usd / target_usd).quantize(_RATE_PLACES),
            now,
            now + QUOTE_LIFETIME_S,
            portfolio,
        )
        self._trades[trade.trade_id] = trade
        return trade

    def get(self, trade_id: str, from_account: object, to_account: object) -> ConvertTrade:
        trade = self._trades.get(trade_id)
        if trade is None or trade.source.uuid != from_account or trade.target.uuid != to_account:
            raise ConvertRefused(404, "NOT_FOUND", "convert trade not found")
        return trade

    def commit(self, trade_id: str, from_account: object, to_account: object) -> ConvertTrade:
        trade = self.get(trade_id, from_account, to_account)
        if trade.status != CREATED:
            raise ConvertRefused(400, "INVALID_ARGUMENT", "this convert trade was already committed")
        if self._now() > trade.expires:
            raise ConvertRefused(400, "INVALID_ARGUMENT", "the quote has expired: ask for a new one")
        if trade.source.available < trade.amount:
            raise ConvertRefused(400, "INSUFFICIENT_FUND", "not enough available in from_account")
        wallet = self._wallets(trade.portfolio_uuid)
        wallet.credit(trade.source.currency, -trade.amount)
        wallet.credit(trade.target.currency, trade.received)
        trade.status = COMPLETED
        return trade
