"""How the simulated gateway behaves: instruments, margin, funding, credits, token lifetime, and the choices
the public sources leave open (each named where it is set). Plain frozen data, defaults written once."""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal

D = Decimal
_D_100000 = D("100000")
_D_0 = D("0")
_D_0_0005 = D("0.0005")
_D_10 = D("10")
_D_0_005 = D("0.005")
_D_0_1 = D("0.1")
_D_2 = D("2")


@dataclass(frozen=True, slots=True)
class InstrumentSpec:
    """A linear USDC-settled perpetual: amounts in the base coin, prices and PnL in USDC."""

    instrument_name: str
    base_currency: str
    index_name: str
    start_price: Decimal
    tick_size: Decimal
    contract_size: Decimal  # base coin per contract; amounts are whole multiples of it
    min_trade_amount: Decimal
    max_leverage: int = 50
    maintenance_margin_rate: Decimal = _D_0_005
    # synthetic liquidity: base coin per level, drawn in [min, max]; levels `level_step_ticks` apart
    level_size_min: Decimal = _D_0_1
    level_size_max: Decimal = _D_2
    level_step_ticks: int = 1
    volatility: float = 0.0002


DEFAULT_INSTRUMENTS: tuple[InstrumentSpec, ...] = (
    InstrumentSpec(
        "BTC_USDC-PERPETUAL",
        "BTC",
        "btc_usdc",
        D("60000"),
        D("0.5"),
        D("0.0001"),
        D("0.0001"),
        level_size_min=D("0.05"),
        level_size_max=D("1.5"),
        level_step_ticks=20,
    ),
    InstrumentSpec(
        "ETH_USDC-PERPETUAL",
        "ETH",
        "eth_usdc",
        D("3000"),
        D("0.05"),
        D("0.001"),
        D("0.001"),
        level_size_min=D("0.5"),
        level_size_max=D("20"),
        level_step_ticks=10,
    ),
    InstrumentSpec(
        "SOL_USDC-PERPETUAL",
        "SOL",
        "sol_usdc",
        D("150"),
        D("0.01"),
        D("0.1"),
        D("0.1"),
        max_leverage=20,
        maintenance_margin_rate=D("0.01"),
        level_size_min=D("5"),
        level_size_max=D("300"),
        level_step_ticks=5,
    ),
)


@dataclass(frozen=True, slots=True)
class Credits:
    """Deribit's credit model (the gateway publishes no numbers): a leaky bucket per key for requests that
    reach the matching engine (buy, sell, edit, cancel*) and one for everything else; subscribe costs more.
    Exhaustion answers 10028 and ends the session (the socket closes; over HTTP the connection)."""

    enabled: bool = True
    non_matching_cost: int = 500
    non_matching_pool: int = 50_000
    non_matching_refill_per_s: int = 10_000
    matching_cost: int = 10_000
    matching_pool: int = 200_000  # a burst of 20 orders
    matching_refill_per_s: int = 50_000  # 5 orders a second sustained
    subscribe_cost: int = 3_000


@dataclass(frozen=True, slots=True)
class DerivativesConfig:
    enabled: bool = True
    instruments: tuple[InstrumentSpec, ...] = DEFAULT_INSTRUMENTS
    # the cross-margin account's collateral, in USDC
    starting_collateral: Decimal = _D_100000
    default_leverage: Decimal = _D_10
    maker_fee_rate: Decimal = _D_0
    taker_fee_rate: Decimal = _D_0_0005
    # access token lifetime: the SDK's tests mock 900 s, the spec example says 3600 (not settled publicly)
    token_lifetime_s: float = 900.0
    # funding accrues every `funding_interval_s` of wall time (an accelerated clock: each accrual is one
    # funding hour), at the premium of mark over index clamped to +-`funding_rate_cap` per hour
    funding_interval_s: float = 60.0
    funding_rate_cap: Decimal = _D_0_0005
    # the mark's premium over the index: a seeded walk bounded by this fraction
    premium_bound: float = 0.0005
    credits: Credits = field(default_factory=Credits)
    # `public/set_heartbeat` refuses intervals below this (Deribit: 10 s)
    heartbeat_min_interval_s: float = 10.0
    # market-data `raw` intervals on the streams host need authentication there, so are refused by default
    public_raw_channels: bool = False
    # Starbase reports a market order as order_type "limit" with original_order_type "market" (SDK models)
    market_as_limit: bool = True
    # accept a CDP JWT carrying a `uri` claim at public/auth (the SDK sends none; a third-party client does)
    accept_jwt_uri: bool = True

    def __post_init__(self) -> None:
        if not self.token_lifetime_s > 0:
            raise ValueError("the gateway's token lifetime must be a positive number of seconds")
        if not self.funding_interval_s >= 0:
            raise ValueError("the funding interval is seconds, 0 to switch funding off")
        if not self.heartbeat_min_interval_s > 0:
            raise ValueError("the least heartbeat interval must be positive")
