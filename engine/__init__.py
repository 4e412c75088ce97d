"""A high-throughput async trading engine for Coinbase, with a Rust signing core.

The public names below are imported on first use (PEP 562), so a command that needs none of them
(`engine keygen`, say) does not load the trading stack.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

if TYPE_CHECKING:
    from engine.auth import CdpKey as CdpKey  # credentials: CDP JWT keys and Exchange HMAC keys
    from engine.auth import ExchangeKey as ExchangeKey
    from engine.rest import Client as Client  # the REST client
    from engine.risk import OrderRefused as OrderRefused  # the trading core ...
    from engine.risk import ProductLimits as ProductLimits
    from engine.risk import RiskConfig as RiskConfig
    from engine.risk import RiskRule as RiskRule
    from engine.trading import Engine as Engine
    from engine.trading import EngineConfig as EngineConfig
    from engine.trading import OrderState as OrderState
    from engine.trading import TrackedOrder as TrackedOrder  # ... the types a strategy needs

# public name -> the module that defines it
_EXPORTS = {
    "CdpKey": "engine.auth",
    "ExchangeKey": "engine.auth",
    "Client": "engine.rest",
    "OrderRefused": "engine.risk",
    "ProductLimits": "engine.risk",
    "RiskConfig": "engine.risk",
    "RiskRule": "engine.risk",
    "Engine": "engine.trading",
    "EngineConfig": "engine.trading",
    "OrderState": "engine.trading",
    "TrackedOrder": "engine.trading",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'engine' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # found once; later lookups do not come here
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_EXPORTS])
