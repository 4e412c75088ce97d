"""A high-throughput async trading engine for Coinbase, with a Rust signing core."""

__version__ = "0.1.0"

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
