"""The embedded Coinbase exchange simulator: `Simulator(SimConfig(...))`, `engine sim` on the command line."""

from engine.sim.app import Simulator
from engine.sim.config import DEFAULT_PRODUCTS, FeeSchedule, ProductSpec, RateLimits, SimConfig
from engine.sim.faults import Faults

__all__ = ["DEFAULT_PRODUCTS", "Faults", "FeeSchedule", "ProductSpec", "RateLimits", "SimConfig", "Simulator"]
