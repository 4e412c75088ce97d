"""Balances and holds per currency. One simulated user: every key (CDP or Exchange) trades this portfolio.

available = balance - hold. An open order holds what it could spend; a fill turns hold into movement.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal

from engine.sim.book import ZERO
from engine.sim.clock import iso


@dataclass(slots=True)
class Account:
    uuid: str
    currency: str
    name: str
    balance: Decimal
    hold: Decimal
    created_at: float
    created_iso: str  # rendered once: accounts are listed on every balance poll

    @property
    def available(self) -> Decimal:
        return self.balance - self.hold


class InsufficientFunds(Exception):
    """The hold or debit would take the available balance below zero."""


class Accounts:
    def __init__(self, portfolio_uuid: str) -> None:
        self.portfolio_uuid = portfolio_uuid
        self._by_currency: dict[str, Account] = {}
        self._by_uuid: dict[str, Account] = {}
        # bumped on every balance or hold change, so renderings of the balances can be cached between changes
        self.version = 0

    def open(self, uuid: str, currency: str, balance: Decimal, now: float) -> Account:
        account = Account(uuid, currency, f"{currency} Wallet", balance, ZERO, now, iso(now))
        self._by_currency[currency] = account
        self._by_uuid[uuid] = account
        return account

    def __iter__(self) -> Iterator[Account]:
        return iter(self._by_currency.values())

    def all(self) -> list[Account]:
        return list(self._by_currency.values())

    def get(self, currency: str) -> Account | None:
        return self._by_currency.get(currency)

    def by_uuid(self, uuid: str) -> Account | None:
        return self._by_uuid.get(uuid)

    def available(self, currency: str) -> Decimal:
        account = self._by_currency.get(currency)
        return account.available if account is not None else ZERO

    def place_hold(self, currency: str, amount: Decimal) -> None:
        account = self._by_currency.get(currency)
        if account is None or account.available < amount:
            raise InsufficientFunds(currency)
        account.hold += amount
        self.version += 1

    def release_hold(self, currency: str, amount: Decimal) -> None:
        account = self._by_currency[currency]
        account.hold = max(ZERO, account.hold - amount)
        self.version += 1

    def credit(self, currency: str, amount: Decimal) -> None:
        """Add (or, negative, remove) balance. Settlement of fills: the hold was already released."""
        self._by_currency[currency].balance += amount
        self.version += 1
