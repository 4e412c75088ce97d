"""Portfolios, each with accounts of its own: the default one trades on the simulator's first accounts, every
other one on a wallet opened with it (every currency, empty).

An order placed with a `retail_portfolio_id` holds and settles in that portfolio's accounts, so it is
refused for want of funds there whatever the others hold. `move_funds` takes from the source's available
balance (what open orders hold stays) and gives to the target, so the sum over portfolios of any currency
never changes. A portfolio that still holds funds cannot be deleted, as on Coinbase
(https://docs.cdp.coinbase.com/advanced-trade/reference/retailbrokerageapi_deleteportfolio).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from decimal import Decimal

from engine.sim.accounts import Account, Accounts
from engine.sim.book import ZERO
from engine.sim.values import BadRequest

DEFAULT, CONSUMER = "DEFAULT", "CONSUMER"


class PortfolioRefused(BadRequest):
    """Refused with a 4xx, in Advanced Trade's error body."""

    def __init__(self, status: int, error: str, message: str) -> None:
        super().__init__(message, status, error)


@dataclass(slots=True)
class Portfolio:
    uuid: str
    name: str
    type: str
    wallet: Accounts  # its accounts: what its orders hold and settle in
    deleted: bool = False

    def to_json(self) -> dict[str, object]:
        return {"name": self.name, "uuid": self.uuid, "type": self.type, "deleted": self.deleted}


class Portfolios:
    def __init__(self, accounts: Accounts, now: Callable[[], float]) -> None:
        self.accounts = accounts
        self._now = now
        default = Portfolio(accounts.portfolio_uuid, "Default", DEFAULT, accounts)
        self._by_uuid: dict[str, Portfolio] = {default.uuid: default}

    def __iter__(self) -> Iterator[Portfolio]:
        return iter([p for p in self._by_uuid.values() if not p.deleted])

    def listed(self, portfolio_type: str | None) -> list[Portfolio]:
        return [p for p in self if not portfolio_type or p.type == portfolio_type]

    def get(self, uuid: str) -> Portfolio:
        portfolio = self._by_uuid.get(uuid)
        if portfolio is None or portfolio.deleted:
            raise PortfolioRefused(404, "NOT_FOUND", "portfolio not found")
        return portfolio

    def wallet(self, uuid: str) -> Accounts:
        """The accounts an order of portfolio `uuid` trades on (the default's for an empty or unknown id: an
        order's portfolio was checked when it was placed)."""
        portfolio = self._by_uuid.get(uuid)
        return portfolio.wallet if portfolio is not None else self.accounts

    def account(self, account_uuid: str) -> tuple[Account, str] | None:
        """An account of any live portfolio by its uuid, with that portfolio's uuid."""
        for portfolio in self:
            found = portfolio.wallet.by_uuid(account_uuid)
            if found is not None:
                return found, portfolio.uuid
        return None

    def _check_name(self, name: object, uuid: str = "") -> str:
        if not isinstance(name, str) or not name.strip() or len(name) > 128:
            raise PortfolioRefused(400, "INVALID_ARGUMENT", "name must be 1 to 128 characters")
        if any(p.name == name and p.uuid != uuid for p in self):
            raise PortfolioRefused(409, "ALREADY_EXISTS", "a portfolio with this name exists")
        return name

    def create(self, uuid: str, name: object, new_id: Callable[[], str]) -> Portfolio:
        checked = self._check_name(name)
        wallet = Accounts(uuid)
        now = self._now()
        for account in self.accounts:  # the same currencies as the default, empty
            wallet.open(new_id(), account.currency, ZERO, now)
        portfolio = Portfolio(uuid, checked, CONSUMER, wallet)
        self._by_uuid[uuid] = portfolio
        return portfolio

    def rename(self, uuid: str, name: object) -> Portfolio:
        portfolio = self.get(uuid)
        portfolio.name = self._check_name(name, uuid)
        return portfolio

    def delete(self, uuid: str) -> None:
        portfolio = self.get(uuid)
        if portfolio.type == DEFAULT:
            raise PortfolioRefused(400, "INVALID_ARGUMENT", "the default portfolio cannot be deleted")
        if any(account.balance > ZERO for account in portfolio.wallet):
            raise PortfolioRefused(400, "INVALID_ARGUMENT", "move its funds out before deleting it")
        portfolio.deleted = True

    def available(self, portfolio: Portfolio, currency: str) -> Decimal:
        return portfolio.wallet.available(currency)

    def holdings(self, portfolio: Portfolio) -> dict[str, tuple[Decimal, Decimal]]:
        """currency -> (total, available)."""
        return {a.currency: (a.balance, a.available) for a in portfolio.wallet}

    def move(self, amount: Decimal, currency: str, source_uuid: str, target_uuid: str) -> None:
        source, target = self.get(source_uuid), self.get(target_uuid)
        if source is target:
            raise PortfolioRefused(400, "INVALID_ARGUMENT", "source and target are the same portfolio")
        if self.accounts.get(currency) is None:
            raise PortfolioRefused(400, "INVALID_ARGUMENT", f"unknown currency {currency}")
        if amount <= ZERO:
            raise PortfolioRefused(400, "INVALID_ARGUMENT", "funds.value must be positive")
        if source.wallet.available(currency) < amount:
            raise PortfolioRefused(400, "INSUFFICIENT_FUND", "not enough available in the source portfolio")
        source.wallet.credit(currency, -amount)
        target.wallet.credit(currency, amount)
