"""Payment methods linked to the simulated user: a bank account and a card, opened with the accounts.

See https://docs.cdp.coinbase.com/advanced-trade/reference/retailbrokerageapi_getpaymentmethods.
"""

from __future__ import annotations

from dataclasses import dataclass

from engine.sim.clock import iso


@dataclass(frozen=True, slots=True)
class PaymentMethod:
    id: str
    type: str
    name: str
    currency: str
    allow_deposit: bool
    allow_withdraw: bool
    created: float

    def to_json(self) -> dict[str, object]:
        return {
            "id": self.id,
            "type": self.type,
            "name": self.name,
            "currency": self.currency,
            "verified": True,
            "allow_buy": True,
            "allow_sell": self.allow_withdraw,
            "allow_deposit": self.allow_deposit,
            "allow_withdraw": self.allow_withdraw,
            "created_at": iso(self.created),
            "updated_at": iso(self.created),
        }


def linked_methods(ids: list[str], currency: str, now: float) -> dict[str, PaymentMethod]:
    """The user's methods, by id: an ACH bank account (deposits and withdrawals) and a debit card (buys)."""
    methods = [
        PaymentMethod(ids[0], "ACH", "Simulated Bank ******1234", currency, True, True, now),
        PaymentMethod(ids[1], "DEBIT_CARD", "Simulated Visa ******4321", currency, False, False, now),
    ]
    return {m.id: m for m in methods}
