"""Portfolios: the default one trades on the simulator's accounts; others hold funds moved into them.

`move_funds` takes from the source's available balance and gives to the target, so the sum over portfolios
of any currency never changes. A portfolio that still holds funds cannot be deleted, as on Coinbase
(https://docs.cdp.coinbase.com/advanced-trade/reference/retailbrokerageapi_deleteportfolio).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from decimal import Decimal

from engine.sim.accounts import Accounts
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
    balances: dict[str, Decimal] = field(default_factory=dict)  # only for portfolios other than the default
    deleted: bool = False

    def to_json(self) -> dict[str, object]:
        return {"name": self.name, "uuid": self.uuid, "type": self.type, "deleted": self.deleted}


class Portfolios:
    def __init__(self, accounts: Accounts) -> None:
        self.accounts = accounts
        default = Portfolio(accounts.portfolio_uuid, "Default", DEFAULT)
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

    def _check_name(self, name: object, uuid: str = "") -> str:
        if not isinstance(name, str) or not name.strip() or len(name) > 128:
            raise PortfolioRefused(400, "INVALID_ARGUMENT", "name must be 1 to 128 characters")
        if any(p.name == name and p.uuid != uuid for p in self):
            raise PortfolioRefused(409, "ALREADY_EXISTS", "a portfolio with this name exists")
        return name

    def create(self, uuid: str, name: object) -> Portfolio:
        portfolio = Portfolio(uuid, self._check_name(name), CONSUMER)
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
        if any(amount > ZERO for amount in portfolio.balances.values()):
            raise PortfolioRefused(400, "INVALID_ARGUMENT", "move its funds out before deleting it")
        portfolio.deleted = True

    def available(self, portfolio: Portfolio, currency: str) -> Decimal:
        if portfolio.type == DEFAULT:
            return self.accounts.available(currency)
        return portfolio.balances.get(currency, ZERO)

    def holdings(self, portfolio: Portfolio) -> dict[str, tuple[Decimal, Decimal]]:
        """currency -> (total, available)."""
        if portfolio.type == DEFAULT:
            return {a.currency: (a.balance, a.available) for a in self.accounts}
        return {c: (amount, amount) for c, amount in portfolio.balances.items()}

    def move(self, amount: Decimal, currency: str, source_uuid: str, target_uuid: str) -> None:
        source, target = self.get(source_uuid), self.get(target_uuid)
        if source is target:
            raise PortfolioRefused(400, "INVALID_ARGUMENT", "source and target are the same portfolio")
        if self.accounts.get(currency) is None:
            raise PortfolioRefused(400, "INVALID_ARGUMENT", f"unknown currency {currency}")
        if self.available(source, currency) < amount:
            raise PortfolioRefused(400, "INSUFFICIENT_FUND", "not enough available in the source portfolio")
        for portfolio, delta in ((source, -amount), (target, amount)):
            if portfolio.type == DEFAULT:
                self.accounts.credit(currency, delta)
            else:
                portfolio.balances[currency] = portfolio.balances.get(currency, ZERO) + delta
