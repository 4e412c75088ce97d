"""The soak's legs: one per venue and market, each a venue factory plus the order flow it trades.

A leg says how to make a credential the simulator registers, how to build its `Venue` over one, and what the
n-th order is. Adding Coinbase Exchange or the perpetuals gateway is one more `Leg` in `LEGS`: the runner
knows nothing of any venue's client.

Orders are chosen so that nothing stays open: an order that rests is cancelled right after it is
acknowledged, the others end at once (immediate-or-cancel). Market orders alternate buy and sell so balances
and positions stay where they started, however long the run.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from contextlib import AsyncExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

from engine.auth import CdpKey
from engine.net.retry import Backoff, RetryPolicy
from engine.ratelimit import BucketLimit, RateLimits
from engine.sim.keyfiles import generate_key_file
from engine.venues.advanced.client import Client
from engine.venues.advanced.orders import LimitGtc, MarketIoc, Side, SorLimitIoc
from engine.venues.advanced.venue import AdvancedTradeVenue, from_exchange_status
from engine.venues.base import OrderState, Venue


class SoakOrder(NamedTuple):
    product_id: str
    side: str
    configuration: Any
    leverage: str | None = None
    rests: bool = False  # cancel it once acknowledged


@dataclass(frozen=True)
class Credential:
    """One API key: what the Engine signs with, and the `engine sim` flags that register it."""

    key: Any
    sim_flags: tuple[str, ...]


@dataclass(frozen=True)
class Limits:
    """The request budget per key, the same on both sides: the simulator enforces it, the client keeps it."""

    private_per_s: float
    public_per_s: float


@dataclass(frozen=True)
class Leg:
    name: str  # also the client_order_id prefix of its engines: [A-Za-z0-9_.]
    products: tuple[str, ...]  # market data the engines subscribe to
    new_credential: Callable[[Path], Credential]  # writes a fresh key under the directory
    venue: Callable[[AsyncExitStack, str, Credential, Limits], Awaitable[Venue]]
    order: Callable[[int], SoakOrder]  # the n-th order of one engine
    ledger_state: Callable[[Mapping[str, Any]], OrderState]  # a simulator ledger entry's state, as journalled


# Patient retries: under injected 5xx and dropped connections a create is retried with the same
# client_order_id (Advanced Trade honours it: never a second order) rather than left UNKNOWN.
SOAK_RETRY = RetryPolicy(max_attempts=6, base_delay_s=0.01, max_delay_s=0.2, budget_s=10.0)


def _cdp_credential(directory: Path) -> Credential:
    index = len(list(directory.glob("advanced-*.json")))
    path = directory / f"advanced-{index}.json"
    generate_key_file("ed25519", path)
    return Credential(CdpKey.from_json_file(path), ("--key", str(path)))


async def _advanced_venue(
    stack: AsyncExitStack, base_url: str, credential: Credential, limits: Limits
) -> Venue:
    client = Client(
        credential.key,
        base_url,
        rate_limits=RateLimits(
            private=BucketLimit(limits.private_per_s, limits.private_per_s),
            public=BucketLimit(limits.public_per_s, limits.public_per_s),
        ),
        retry=SOAK_RETRY,
        timeout_s=5.0,
    )
    await stack.enter_async_context(client)
    return AdvancedTradeVenue(
        credential.key,
        client=client,
        products=(),  # market data comes through the Engine's config (`Leg.products`)
        ws_backoff=Backoff(initial=0.02, maximum=0.5),
    )


# prices the simulated market never reaches in a run: resting orders rest, IOC limits expire at once
_SPOT_BELOW = "30000"
_FUTURE_BELOW = "30000"


def _spot_order(n: int) -> SoakOrder:
    step = n % 10
    if step < 3:
        return SoakOrder("BTC-USD", Side.BUY, SorLimitIoc(base_size="0.001", limit_price=_SPOT_BELOW))
    if step < 6:
        return SoakOrder(
            "BTC-USD", Side.BUY, LimitGtc(base_size="0.001", limit_price=_SPOT_BELOW), rests=True
        )
    side = Side.BUY if step < 8 else Side.SELL
    return SoakOrder("BTC-USD", side, MarketIoc(base_size="0.0001"))


_NANO_BTC = "BIP-20DEC30-CDE"


def _futures_order(n: int) -> SoakOrder:
    step = n % 10
    if step < 6:
        limit = LimitGtc(base_size="1", limit_price=_FUTURE_BELOW)
        return SoakOrder(_NANO_BTC, Side.BUY, limit, leverage="2", rests=True)
    side = Side.BUY if step < 8 else Side.SELL
    return SoakOrder(_NANO_BTC, side, MarketIoc(base_size="1"), leverage="2")


def _advanced_ledger_state(entry: Mapping[str, Any]) -> OrderState:
    return from_exchange_status(str(entry["status"]))


ADVANCED_SPOT = Leg(
    "advanced_spot", ("BTC-USD",), _cdp_credential, _advanced_venue, _spot_order, _advanced_ledger_state
)
ADVANCED_FUTURES = Leg(
    "advanced_futures", (_NANO_BTC,), _cdp_credential, _advanced_venue, _futures_order, _advanced_ledger_state
)

# every leg the soak can run, by name; Exchange and perpetuals legs are added here
LEGS: dict[str, Leg] = {leg.name: leg for leg in (ADVANCED_SPOT, ADVANCED_FUTURES)}
