"""Risk controls checked before every order: one module per rule, composed by `RiskGate`."""

from engine.risk.audit import AuditLog
from engine.risk.circuit_breaker import BreakerState, CircuitBreaker
from engine.risk.gate import RiskConfig, RiskGate
from engine.risk.kill_switch import KillSwitch
from engine.risk.limits import ProductLimits
from engine.risk.order_rate import OrderRateLimit
from engine.risk.refusal import OrderRefused, RiskRule
from engine.risk.terms import OrderTerms
from engine.risk.view import RiskView

__all__ = [
    "AuditLog",
    "BreakerState",
    "CircuitBreaker",
    "KillSwitch",
    "OrderRateLimit",
    "OrderRefused",
    "OrderTerms",
    "ProductLimits",
    "RiskConfig",
    "RiskGate",
    "RiskRule",
    "RiskView",
]
