"""The trading core: the embeddable `Engine`, order journal, order states, positions and reconciliation."""

from engine.trading.engine import Engine, EngineConfig
from engine.trading.ids import ClientOrderIds
from engine.trading.journal import Durability, OrderJournal
from engine.trading.order_state import OrderState
from engine.trading.reconcile import ReconcileReport
from engine.trading.tracked import TrackedOrder

__all__ = [
    "ClientOrderIds",
    "Durability",
    "Engine",
    "EngineConfig",
    "OrderJournal",
    "OrderState",
    "ReconcileReport",
    "TrackedOrder",
]
