"""The worker's TOML configuration: typed, validated once at load, every error naming the bad key.

Secrets never live in this file. The API key comes from the environment, a key file or the OS keyring
(`[credentials]`); the webhook's HMAC secret from the environment variable `[signals].secret_env` names.
A secret-looking key in the file is refused outright, so a pasted key never sits in a config repository.

Relative paths (key file, journal, audit log) are resolved against the config file's directory, so a worker
started from any working directory reads the same files.
"""

from __future__ import annotations

import enum
import math
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit

from engine.decimals import bounded_decimal
from engine.errors import ConfigError, InvalidValue

__all__ = [
    "Config",
    "CredentialsConfig",
    "ExchangeConfig",
    "JournalConfig",
    "KeySource",
    "LimitsConfig",
    "LoggingConfig",
    "MetricsConfig",
    "ProductRiskConfig",
    "RiskConfig",
    "SignalsConfig",
    "WorkerConfig",
    "load_config",
    "parse_config",
]

DEFAULT_BASE_URL = "https://api.coinbase.com"
_PRODUCT_ID = re.compile(r"[A-Z0-9]{1,24}(?:-[A-Z0-9]{1,24}){1,3}")
_PREFIX = re.compile(r"[A-Za-z0-9_.]{1,64}")
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,127}")
# Keys that would mean a secret was pasted into the file; refused wherever they appear.
_SECRET_KEYS = frozenset(
    {"secret", "api_secret", "private_key", "privatekey", "passphrase", "password", "token", "webhook_secret"}
)
_MAX_NUMBER = 1e9  # seconds (31 years), requests per second, ...: past any meaningful setting
_E = TypeVar("_E", bound=enum.Enum)


class KeySource(enum.Enum):
    ENV = "env"  # COINBASE_API_KEY + COINBASE_API_SECRET, or COINBASE_API_KEY_FILE
    FILE = "file"  # the portal's JSON download
    KEYRING = "keyring"  # the OS keyring (pip install 'coinbase-engine[keyring]')


@dataclass(frozen=True, slots=True)
class ExchangeConfig:
    base_url: str = DEFAULT_BASE_URL
    request_timeout_s: float = 10.0


@dataclass(frozen=True, slots=True)
class CredentialsConfig:
    source: KeySource = KeySource.ENV
    file: Path | None = None  # source = "file"
    keyring_service: str = "coinbase-engine"  # source = "keyring"
    keyring_username: str = "default"


@dataclass(frozen=True, slots=True)
class LimitsConfig:
    """Client-side request budgets: Coinbase's published defaults, configurable as they are unconfirmed."""

    private_rps: float = 30.0
    public_rps: float = 10.0
    burst: float | None = None  # requests a bucket lets through at once; None: one second's worth
    max_retries: int = 3
    # One budget shared by every worker on the key, in Redis (`RedisRateLimiter`); None: a local limiter.
    redis_url: str | None = None
    redis_namespace: str = "engine"
    redis_timeout_s: float = 0.5
    expected_workers: int = 1  # divides the budget while Redis is unreachable
    fallback_fraction: float = 0.7  # of that share, to leave room for peers still on Redis


@dataclass(frozen=True, slots=True)
class ProductRiskConfig:
    """Caps for one product; None switches a cap off."""

    max_order_size: Decimal | None = None
    max_order_notional: Decimal | None = None
    max_position: Decimal | None = None
    max_allocation: Decimal | None = None
    max_open_orders: int | None = None


@dataclass(frozen=True, slots=True)
class RiskConfig:
    products: tuple[str, ...] = ()  # the products the worker may trade; empty: only those in [risk.product.*]
    default: ProductRiskConfig = field(default_factory=ProductRiskConfig)
    per_product: Mapping[str, ProductRiskConfig] = field(default_factory=dict)
    max_open_orders: int | None = None  # across all products
    max_orders_per_window: int | None = None
    order_window_s: float = 1.0
    daily_loss_limit: Decimal | None = None  # quote currency
    price_band: Decimal | None = None  # fraction of the mid, e.g. 0.05 for 5%
    breaker_failures: int = 5  # consecutive-ish exchange failures that trip the circuit breaker
    breaker_window_s: float = 30.0
    breaker_pause_s: float = 30.0

    def limits_for(self, product_id: str) -> ProductRiskConfig:
        return self.per_product.get(product_id, self.default)

    def allows_product(self, product_id: str) -> bool:
        allowed = self.products or tuple(self.per_product)
        return not allowed or product_id in allowed


@dataclass(frozen=True, slots=True)
class SignalsConfig:
    webhook: bool = True
    host: str = "127.0.0.1"
    port: int = 8787
    # the name of the environment variable holding the webhook's HMAC secret (not the secret)
    secret_env: str = "ENGINE_WEBHOOK_SECRET"  # noqa: S105
    window_s: float = 30.0
    queue_size: int = 1000
    # Signals on a Redis stream (`engine.signals.stream`): the webhook, if on, publishes there and the worker
    # consumes it through a consumer group shared with its peers. None: a local queue.
    redis_url: str | None = None
    redis_namespace: str = "engine"  # stream {ns}:signals; every worker of one engine uses the same
    redis_group: str = "engine"
    redis_timeout_s: float = 0.5
    consumer: str | None = None  # this worker's name in the group, stable across restarts; None: hostname
    reclaim_idle_s: float = 30.0  # a peer's signal pending this long is taken over (its worker died)
    max_attempts: int = 5  # tries before a signal is recorded as failed for an operator


@dataclass(frozen=True, slots=True)
class JournalConfig:
    path: Path = Path("engine-journal.sqlite")
    durability: str = "os"  # "os" (survives a crash of the process) or "full" (survives power loss)
    audit_log: Path | None = None


@dataclass(frozen=True, slots=True)
class MetricsConfig:
    enabled: bool = True
    host: str = "127.0.0.1"
    port: int = 9464


@dataclass(frozen=True, slots=True)
class WorkerConfig:
    dry_run: bool = False  # risk-check signals and log them; never journal or send an order
    cancel_open_orders_on_exit: bool = True
    drain_timeout_s: float = 10.0
    concurrency: int = 16  # signals worked at once
    client_order_prefix: str = "eng"
    busy_poll: bool = False  # poll instead of sleeping between events: lower tail latency, one core at 100%


@dataclass(frozen=True, slots=True)
class LoggingConfig:
    level: str = "INFO"
    json: bool = True


@dataclass(frozen=True, slots=True)
class Config:
    exchange: ExchangeConfig = field(default_factory=ExchangeConfig)
    credentials: CredentialsConfig = field(default_factory=CredentialsConfig)
    limits: LimitsConfig = field(default_factory=LimitsConfig)
    risk: RiskConfig = field(default_factory=RiskConfig)
    signals: SignalsConfig = field(default_factory=SignalsConfig)
    journal: JournalConfig = field(default_factory=JournalConfig)
    metrics: MetricsConfig = field(default_factory=MetricsConfig)
    worker: WorkerConfig = field(default_factory=WorkerConfig)
    logging: LoggingConfig = field(default_factory=LoggingConfig)
    source: Path | None = None  # the file it was read from

    @property
    def trades(self) -> bool:
        """Whether this config ever places an order (doctor warns a non-trading one holding a trade key)."""
        return not self.worker.dry_run


def load_config(path: str | Path) -> Config:
    """Read and validate a TOML config file. Raises `ConfigError` naming the file and the bad key."""
    path = Path(path)
    try:
        with path.open("rb") as handle:
            document = tomllib.load(handle)
    except FileNotFoundError:
        raise ConfigError(f"{path}: config file not found") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read config file ({exc.strerror})") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML ({exc})") from None
    try:
        return parse_config(document, base_dir=path.resolve().parent, source=path)
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from None


def parse_config(
    document: Mapping[str, Any], *, base_dir: Path | None = None, source: Path | None = None
) -> Config:
    """Validate an already-parsed TOML document."""
    root = _Table(document, "")
    base = base_dir or Path.cwd()
    exchange = _exchange(root.table("exchange"))
    credentials = _credentials(root.table("credentials"), base)
    limits = _limits(root.table("limits"))
    risk = _risk(root.table("risk"))
    signals = _signals(root.table("signals"))
    journal = _journal(root.table("journal"), base)
    metrics = _metrics(root.table("metrics"))
    worker = _worker(root.table("worker"))
    logging_ = _logging(root.table("logging"))
    root.done()
    return Config(exchange, credentials, limits, risk, signals, journal, metrics, worker, logging_, source)


class _Table:
    """One TOML table; typed getters record which keys were read so `done()` can name any unknown key."""

    def __init__(self, data: Any, dotted: str) -> None:
        if not isinstance(data, Mapping):
            raise ConfigError(f"{dotted or 'config'}: must be a table")
        self._data = data
        self._dotted = dotted
        self._seen: set[str] = set()
        for key in data:
            if str(key).lower() in _SECRET_KEYS:
                raise ConfigError(
                    f"{self.name(str(key))}: secrets do not belong in the config file; put the API key in "
                    "the environment (COINBASE_API_KEY/COINBASE_API_SECRET), a key file or the OS keyring, "
                    "and the webhook secret in the environment variable [signals].secret_env names"
                )

    def name(self, key: str) -> str:
        return f"{self._dotted}.{key}" if self._dotted else key

    @property
    def dotted(self) -> str:
        return self._dotted

    def raw(self, key: str) -> Any:
        return self._get(key)

    def _get(self, key: str) -> Any:
        self._seen.add(key)
        return self._data.get(key)

    def table(self, key: str) -> _Table:
        value = self._get(key)
        return _Table({} if value is None else value, self.name(key))

    def names(self) -> list[str]:
        return [str(k) for k in self._data]

    def string(self, key: str, default: str) -> str:
        value = self.optional_string(key)
        return default if value is None else value

    def optional_string(self, key: str) -> str | None:
        value = self._get(key)
        if value is None:
            return None
        if not isinstance(value, str) or not value.strip():
            raise ConfigError(f"{self.name(key)}: must be a non-empty string")
        return value.strip()

    def boolean(self, key: str, default: bool) -> bool:
        value = self._get(key)
        if value is None:
            return default
        if not isinstance(value, bool):
            raise ConfigError(f"{self.name(key)}: must be true or false")
        return value

    def number(self, key: str, default: float, *, minimum: float = 0.0, positive: bool = True) -> float:
        value = self._get(key)
        if value is None:
            return default
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
            raise ConfigError(f"{self.name(key)}: must be a number")
        if value < minimum or (positive and value <= 0):
            raise ConfigError(f"{self.name(key)}: must be {'> 0' if positive else f'>= {minimum}'}")
        if value > _MAX_NUMBER:  # a timeout or a rate this large overflows the timers and sockets it sets
            raise ConfigError(f"{self.name(key)}: must be at most {_MAX_NUMBER:,.0f}")
        return float(value)

    def integer(self, key: str, default: int, *, minimum: int = 1, maximum: int = 2**31) -> int:
        value = self.optional_integer(key, minimum=minimum, maximum=maximum)
        return default if value is None else value

    def optional_integer(self, key: str, *, minimum: int = 1, maximum: int = 2**31) -> int | None:
        value = self._get(key)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{self.name(key)}: must be an integer")
        if not minimum <= value <= maximum:
            raise ConfigError(f"{self.name(key)}: must be between {minimum} and {maximum}")
        return value

    def decimal(self, key: str) -> Decimal | None:
        value = self._get(key)
        if value is None:
            return None
        # decimal strings are exact; a TOML float is accepted through its shortest repr
        if isinstance(value, bool) or not isinstance(value, str | int | float):
            raise ConfigError(f'{self.name(key)}: must be a decimal string such as "0.5"')
        try:
            return bounded_decimal(value if isinstance(value, str | int) else repr(value), self.name(key))
        except InvalidValue as exc:
            raise ConfigError(f"{exc.field}: {exc.reason}") from None

    def choice(self, key: str, kind: type[_E], default: _E) -> _E:
        value = self._get(key)
        if value is None:
            return default
        for member in kind:
            if value == member.value:
                return member
        names = ", ".join(repr(m.value) for m in kind)
        raise ConfigError(f"{self.name(key)}: must be one of {names}")

    def port(self, key: str, default: int) -> int:
        return self.integer(key, default, minimum=0, maximum=65535)

    def path(self, key: str, base: Path) -> Path | None:
        value = self.optional_string(key)
        if value is None:
            return None
        candidate = Path(value).expanduser()
        return candidate if candidate.is_absolute() else base / candidate

    def done(self) -> None:
        unknown = sorted(set(self.names()) - self._seen)
        if unknown:
            raise ConfigError(f"{self.name(unknown[0])}: unknown key")


def _exchange(table: _Table) -> ExchangeConfig:
    base_url = table.string("base_url", DEFAULT_BASE_URL).rstrip("/")
    parts = urlsplit(base_url)
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise ConfigError(f"{table.name('base_url')}: must be an http(s) URL such as {DEFAULT_BASE_URL}")
    if parts.scheme == "http" and parts.hostname not in ("127.0.0.1", "localhost", "::1"):
        # a bearer token over plain http to anywhere but this machine would be readable on the wire
        raise ConfigError(f"{table.name('base_url')}: plain http only to 127.0.0.1 (the simulator)")
    if parts.path not in ("", "/"):
        raise ConfigError(
            f"{table.name('base_url')}: give only scheme and host (e.g. {DEFAULT_BASE_URL}); "
            "the client adds /api/v3/brokerage itself"
        )
    timeout = table.number("request_timeout_s", 10.0)
    table.done()
    return ExchangeConfig(base_url, timeout)


def _credentials(table: _Table, base: Path) -> CredentialsConfig:
    source = table.choice("source", KeySource, KeySource.ENV)
    key_file = table.path("file", base)
    service = table.string("keyring_service", "coinbase-engine")
    username = table.string("keyring_username", "default")
    table.done()
    if source is KeySource.FILE and key_file is None:
        raise ConfigError(f'{table.name("file")}: required when source = "file"')
    return CredentialsConfig(source, key_file, service, username)


def _redis_url(table: _Table) -> str | None:
    url = table.optional_string("redis_url")
    if url is not None and urlsplit(url).scheme not in ("redis", "rediss", "unix"):
        raise ConfigError(f"{table.name('redis_url')}: must be a redis://, rediss:// or unix:// URL")
    return url


def _namespace(table: _Table) -> str:
    namespace = table.string("redis_namespace", "engine")
    if not _PREFIX.fullmatch(namespace):
        raise ConfigError(f"{table.name('redis_namespace')}: 1-64 characters of [A-Za-z0-9_.]")
    return namespace


def _limits(table: _Table) -> LimitsConfig:
    burst = None if table.raw("burst") is None else table.number("burst", 1.0, minimum=1.0, positive=False)
    fraction = table.number("fallback_fraction", 0.7)
    if fraction > 1:
        raise ConfigError(f"{table.name('fallback_fraction')}: a fraction in (0, 1]")
    limits = LimitsConfig(
        private_rps=table.number("private_rps", 30.0),
        public_rps=table.number("public_rps", 10.0),
        burst=burst,
        max_retries=table.integer("max_retries", 3, minimum=0, maximum=20),
        redis_url=_redis_url(table),
        redis_namespace=_namespace(table),
        redis_timeout_s=table.number("redis_timeout_s", 0.5),
        expected_workers=table.integer("expected_workers", 1, maximum=10_000),
        fallback_fraction=fraction,
    )
    table.done()
    return limits


def _product_risk(table: _Table) -> ProductRiskConfig:
    return ProductRiskConfig(
        max_order_size=table.decimal("max_order_size"),
        max_order_notional=table.decimal("max_order_notional"),
        max_position=table.decimal("max_position"),
        max_allocation=table.decimal("max_allocation"),
        max_open_orders=table.optional_integer("max_open_orders"),
    )


def _risk(table: _Table) -> RiskConfig:
    products_value = table.raw("products")
    products: tuple[str, ...] = ()
    if products_value is not None:
        if not isinstance(products_value, list) or not all(isinstance(p, str) for p in products_value):
            raise ConfigError(f'{table.name("products")}: must be a list of product ids, e.g. ["BTC-USD"]')
        products = tuple(products_value)
    per_product: dict[str, ProductRiskConfig] = {}
    product_tables = table.table("product")
    for product_id in product_tables.names():
        sub = product_tables.table(product_id)
        if not _PRODUCT_ID.fullmatch(product_id):
            raise ConfigError(f"{sub.dotted}: not a product id (expected e.g. BTC-USD)")
        per_product[product_id] = _product_risk(sub)
        sub.done()
    product_tables.done()
    for product_id in products:
        if not _PRODUCT_ID.fullmatch(product_id):
            raise ConfigError(f"{table.name('products')}: {product_id[:32]!r} is not a product id")
    # the defaults for every product sit directly in [risk]; a [risk.product.X] table replaces them for X
    default = _product_risk(table)
    band = table.decimal("price_band")
    if band is not None and band >= 1:
        raise ConfigError(f"{table.name('price_band')}: a fraction of the mid price, e.g. 0.05 for 5%")
    risk = RiskConfig(
        products=products,
        default=default,
        per_product=per_product,
        max_open_orders=table.optional_integer("max_open_orders_total"),
        max_orders_per_window=table.optional_integer("max_orders_per_window"),
        order_window_s=table.number("order_window_s", 1.0),
        daily_loss_limit=table.decimal("daily_loss_limit"),
        price_band=band,
        breaker_failures=table.integer("breaker_failures", 5),
        breaker_window_s=table.number("breaker_window_s", 30.0),
        breaker_pause_s=table.number("breaker_pause_s", 30.0),
    )
    table.done()
    return risk


def _signals(table: _Table) -> SignalsConfig:
    secret_env = table.string("secret_env", "ENGINE_WEBHOOK_SECRET")
    if not _ENV_NAME.fullmatch(secret_env):
        raise ConfigError(f"{table.name('secret_env')}: must be the name of an environment variable")
    signals = SignalsConfig(
        webhook=table.boolean("webhook", True),
        host=table.string("host", "127.0.0.1"),
        port=table.port("port", 8787),
        secret_env=secret_env,
        window_s=table.number("window_s", 30.0),
        queue_size=table.integer("queue_size", 1000, maximum=1_000_000),
        redis_url=_redis_url(table),
        redis_namespace=_namespace(table),
        redis_group=table.string("redis_group", "engine"),
        redis_timeout_s=table.number("redis_timeout_s", 0.5),
        consumer=table.optional_string("consumer"),
        reclaim_idle_s=table.number("reclaim_idle_s", 30.0),
        max_attempts=table.integer("max_attempts", 5, maximum=1000),
    )
    table.done()
    if not signals.webhook and signals.redis_url is None:
        raise ConfigError(f"{table.name('webhook')}: no signal source: enable the webhook or set redis_url")
    return signals


def _journal(table: _Table, base: Path) -> JournalConfig:
    durability = table.string("durability", "os")
    if durability not in ("os", "full"):
        raise ConfigError(f'{table.name("durability")}: must be "os" or "full"')
    journal = JournalConfig(
        path=table.path("path", base) or base / "engine-journal.sqlite",
        durability=durability,
        audit_log=table.path("audit_log", base),
    )
    table.done()
    return journal


def _metrics(table: _Table) -> MetricsConfig:
    metrics = MetricsConfig(
        enabled=table.boolean("enabled", True),
        host=table.string("host", "127.0.0.1"),
        port=table.port("port", 9464),
    )
    table.done()
    return metrics


def _worker(table: _Table) -> WorkerConfig:
    prefix = table.string("client_order_prefix", "eng")
    if not _PREFIX.fullmatch(prefix):
        raise ConfigError(f"{table.name('client_order_prefix')}: 1-64 characters of [A-Za-z0-9_.] (no '-')")
    worker = WorkerConfig(
        dry_run=table.boolean("dry_run", False),
        cancel_open_orders_on_exit=table.boolean("cancel_open_orders_on_exit", True),
        drain_timeout_s=table.number("drain_timeout_s", 10.0),
        concurrency=table.integer("concurrency", 16, maximum=1024),
        client_order_prefix=prefix,
        busy_poll=table.boolean("busy_poll", False),
    )
    table.done()
    return worker


def _logging(table: _Table) -> LoggingConfig:
    level = table.string("level", "INFO").upper()
    if level not in ("DEBUG", "INFO", "WARNING", "ERROR"):
        raise ConfigError(f"{table.name('level')}: must be one of DEBUG, INFO, WARNING, ERROR")
    config = LoggingConfig(level=level, json=table.boolean("json", True))
    table.done()
    return config
