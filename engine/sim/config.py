"""Simulator configuration: products, rate limits, fees, starting balances. Plain frozen data."""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal

from engine.sim.derivatives.config import DerivativesConfig
from engine.sim.faults import Faults
from engine.sim.values import parse_number

D = Decimal
# immutable Decimal defaults, named once (a call in a dataclass default would be re-read as shared state)
_D_1 = D("1")
_D_100000000 = D("100000000")
_D_0_01 = D("0.01")
_D_2 = D("2")
_D_0_10 = D("0.10")
_D_0_08 = D("0.08")
_D_0_20 = D("0.20")
_D_0_004 = D("0.004")
_D_0_006 = D("0.006")


@dataclass(frozen=True, slots=True)
class ProductSpec:
    """One tradable product. Futures sizes are in contracts; spot sizes in the base currency."""

    product_id: str
    base_currency: str
    quote_currency: str
    start_price: Decimal
    price_increment: Decimal
    base_increment: Decimal
    base_min_size: Decimal
    base_max_size: Decimal
    quote_min_size: Decimal = _D_1
    quote_max_size: Decimal = _D_100000000
    base_name: str = ""
    quote_name: str = "US Dollar"
    # relative standard deviation of the mid per market tick
    volatility: float = 0.0002
    # synthetic liquidity per book level, drawn uniformly in [min, max] base units
    level_size_min: Decimal = _D_0_01
    level_size_max: Decimal = _D_2
    # distance between synthetic levels, in price increments
    level_step_ticks: int = 1
    product_type: str = "SPOT"  # "SPOT" or "FUTURE"
    contract_size: Decimal = _D_1
    contract_root_unit: str = ""
    contract_code: str = ""
    contract_expiry: str = ""
    display_name: str = ""
    initial_margin_rate: Decimal = _D_0_10
    maintenance_margin_rate: Decimal = _D_0_08
    fee_per_contract: Decimal = _D_0_20

    @property
    def is_future(self) -> bool:
        return self.product_type == "FUTURE"


DEFAULT_PRODUCTS: tuple[ProductSpec, ...] = (
    ProductSpec(
        product_id="BTC-USD",
        base_currency="BTC",
        quote_currency="USD",
        base_name="Bitcoin",
        start_price=D("60000.00"),
        price_increment=D("0.01"),
        base_increment=D("0.00000001"),
        base_min_size=D("0.00000001"),
        base_max_size=D("3400"),
        level_size_min=D("0.01"),
        level_size_max=D("1.5"),
        level_step_ticks=50,
    ),
    ProductSpec(
        product_id="ETH-USD",
        base_currency="ETH",
        quote_currency="USD",
        base_name="Ethereum",
        start_price=D("3000.00"),
        price_increment=D("0.01"),
        base_increment=D("0.00000001"),
        base_min_size=D("0.00000001"),
        base_max_size=D("50000"),
        level_size_min=D("0.1"),
        level_size_max=D("20"),
        level_step_ticks=10,
    ),
    # Coinbase's US perpetual-style nano Bitcoin future: 0.01 BTC per contract, $5 price increment.
    ProductSpec(
        product_id="BIP-20DEC30-CDE",
        base_currency="",
        quote_currency="USD",
        start_price=D("60000"),
        price_increment=D("5"),
        base_increment=D("1"),
        base_min_size=D("1"),
        base_max_size=D("100000"),
        quote_min_size=D("0"),
        level_size_min=D("1"),
        level_size_max=D("50"),
        level_step_ticks=1,
        product_type="FUTURE",
        contract_size=D("0.01"),
        contract_root_unit="BTC",
        contract_code="BIP",
        contract_expiry="2030-12-20T16:00:00Z",
        display_name="BTC PERP",
    ),
)


@dataclass(frozen=True, slots=True)
class RateLimits:
    """Token-bucket limits. Advanced Trade: private per key, public per IP. Exchange: lazy-fill buckets."""

    enabled: bool = True
    private_per_s: float = 30.0
    private_burst: float = 30.0
    public_per_s: float = 10.0
    public_burst: float = 10.0
    exchange_private_per_s: float = 15.0
    exchange_private_burst: float = 30.0
    exchange_public_per_s: float = 10.0
    exchange_public_burst: float = 15.0
    exchange_fills_per_s: float = 10.0
    exchange_fills_burst: float = 20.0


@dataclass(frozen=True, slots=True)
class FeeSchedule:
    """Advanced 1 tier (Coinbase's entry tier) by default."""

    pricing_tier: str = "Advanced 1"
    maker_fee_rate: Decimal = _D_0_004
    taker_fee_rate: Decimal = _D_0_006


@dataclass(slots=True)
class SimConfig:
    """Everything that shapes one simulator instance. Same seed and config, same market."""

    seed: int = 0
    products: tuple[ProductSpec, ...] = DEFAULT_PRODUCTS
    rate_limits: RateLimits = field(default_factory=RateLimits)
    fees: FeeSchedule = field(default_factory=FeeSchedule)
    starting_balances: dict[str, Decimal] = field(
        default_factory=lambda: {"USD": D("100000"), "USDC": D("10000"), "BTC": D("2"), "ETH": D("20")}
    )
    # answer 429s with the HTML page seen in the wild instead of JSON
    html_429: bool = False
    # a fixed server clock offset in seconds (faults.clock_offset_s adds to it at run time)
    clock_offset: float = 0.0
    # seconds between market ticks (price walk, book refresh, resting-order checks); 0 disables the timer
    tick_interval_s: float = 0.25
    heartbeat_interval_s: float = 1.0
    book_depth: int = 20
    # JWT checks: tolerance for an nbf slightly in the future (Coinbase's own is strict)
    jwt_nbf_leeway_s: float = 0.0
    jwt_max_lifetime_s: float = 120.0
    hmac_window_s: float = 30.0
    # a request (head and body) must arrive whole within this many seconds of its first byte, or the
    # connection is answered 408 and closed: a client that never finishes its head holds nothing for long
    request_timeout_s: float = 10.0
    # an idle keep-alive connection is closed after this long (aiohttp's default)
    keepalive_timeout_s: float = 3630.0
    faults: Faults = field(default_factory=Faults)
    # how many request timestamps to keep per key for rate-limit proofs
    timestamps_per_key: int = 100_000
    # the derivatives gateway (perpetuals over JSON-RPC) served beside the Advanced Trade and Exchange APIs
    derivatives: DerivativesConfig = field(default_factory=DerivativesConfig)

    def __post_init__(self) -> None:
        """Each time setting is a finite number of seconds in range: a NaN window passes every check made
        against it, and a NaN interval stops a timer."""
        for name in _DURATIONS:
            parse_number(getattr(self, name), name, minimum=0.0, maximum=_YEAR_S)
        parse_number(self.clock_offset, "clock_offset", minimum=-10 * _YEAR_S, maximum=10 * _YEAR_S)


_YEAR_S = 366 * 86400.0
_DURATIONS = (
    "tick_interval_s",
    "heartbeat_interval_s",
    "jwt_nbf_leeway_s",
    "jwt_max_lifetime_s",
    "hmac_window_s",
    "request_timeout_s",
    "keepalive_timeout_s",
)
