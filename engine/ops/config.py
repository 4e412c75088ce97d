"""The worker's TOML configuration, decoded straight into typed structs; every error names the bad key.

Each table is a `msgspec.Struct`: its fields, defaults and bounds are written once, there, and the file
decodes into them (`msgspec.convert`), refusing unknown keys, wrong types and out-of-range values with the
key's dotted path. `[risk]` decodes into the engine's own `engine.risk.RiskConfig`.

Secrets never live in this file. The API key comes from the environment, a key file or the OS keyring
(`[credentials]`); the webhook's HMAC secret from the environment variable `[signals].secret_env` names.
A secret-looking key in the file is refused outright, so a pasted key never sits in a config repository.

Relative paths (key file, journal, audit log) are resolved against the config file's directory, so a worker
started from any working directory reads the same files.
"""

from __future__ import annotations

import enum
import re
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

import msgspec
import msgspec.inspect as mi

from engine.decimals import bounded_decimal
from engine.errors import ConfigError, InvalidValue
from engine.risk.gate import RiskConfig
from engine.risk.limits import ProductLimits

__all__ = [
    "VENUE_BASE_URLS",
    "WORKER_BREAKER_FAILURES",
    "Config",
    "CredentialsConfig",
    "ExchangeConfig",
    "JournalConfig",
    "KeySource",
    "LimitsConfig",
    "LoggingConfig",
    "MetricsConfig",
    "ProductLimits",
    "RiskConfig",
    "SignalsConfig",
    "WorkerConfig",
    "load_config",
    "parse_config",
]

DEFAULT_BASE_URL = "https://api.coinbase.com"
# The Coinbase venues a worker trades on ([exchange].venue), each with its REST base URL by default.
Venue = Literal["advanced", "exchange"]
VENUE_BASE_URLS: dict[str, str] = {
    "advanced": DEFAULT_BASE_URL,  # Advanced Trade
    "exchange": "https://api.exchange.coinbase.com",  # Coinbase Exchange (HMAC key and passphrase)
}
# The worker's one default that differs from the embedded Engine's `RiskConfig`: a worker trading unattended
# pauses after this many exchange failures within `breaker_window_s` unless `[risk].breaker_failures` says
# otherwise; an embedded Engine's caller decides for itself (its breaker is off unless configured).
WORKER_BREAKER_FAILURES = 5
# Keys that would mean a secret was pasted into the file; refused wherever they appear.
_SECRET_KEYS = frozenset(
    {"secret", "api_secret", "private_key", "privatekey", "passphrase", "password", "token", "webhook_secret"}
)
# The default caps for every product sit inline in [risk]; they decode into RiskConfig.default_limits.
_INLINE_CAPS = frozenset(field.encode_name for field in msgspec.structs.fields(ProductLimits))
_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")

# Bounds, with the refusal each one gives (a field's `description` is its error message).
_MAX_NUMBER = 1e9  # seconds (31 years), requests per second, ...: past any meaningful setting
_Seconds = Annotated[float, msgspec.Meta(gt=0, le=_MAX_NUMBER)]
_Text = Annotated[str, msgspec.Meta(min_length=1, max_length=4096)]
_Port = Annotated[int, msgspec.Meta(ge=0, le=65535)]
_RedisUrl = Annotated[
    str,
    msgspec.Meta(
        pattern=r"^(?:redis|rediss|unix)://", description="must be a redis://, rediss:// or unix:// URL"
    ),
]
_Prefix = Annotated[
    str, msgspec.Meta(pattern=r"^[A-Za-z0-9_.]{1,64}$", description="1-64 characters of [A-Za-z0-9_.]")
]
_EnvName = Annotated[
    str,
    msgspec.Meta(
        pattern=r"^[A-Za-z_][A-Za-z0-9_]{0,127}$", description="must be the name of an environment variable"
    ),
]


class KeySource(enum.Enum):
    ENV = "env"  # COINBASE_API_KEY + COINBASE_API_SECRET, or COINBASE_API_KEY_FILE
    FILE = "file"  # the portal's JSON download
    KEYRING = "keyring"  # the OS keyring (pip install 'coinbase-engine[keyring]')


class ExchangeConfig(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Where the worker trades: the Coinbase venue and its REST base URL (the venue's own by default)."""

    venue: Venue = "advanced"
    base_url: _Text = ""  # scheme and host; trailing slashes dropped; "": the venue's (VENUE_BASE_URLS)
    request_timeout_s: _Seconds = 10.0

    def __post_init__(self) -> None:
        default = VENUE_BASE_URLS[self.venue]
        base_url = (self.base_url or default).rstrip("/")
        parts = urlsplit(base_url)
        if parts.scheme not in ("https", "http") or not parts.hostname:
            raise ValueError(f"base_url: must be an http(s) URL such as {default}")
        if parts.scheme == "http" and parts.hostname not in ("127.0.0.1", "localhost", "::1"):
            # a bearer token over plain http to anywhere but this machine would be readable on the wire
            raise ValueError("base_url: plain http only to 127.0.0.1 (the simulator)")
        if parts.path not in ("", "/"):
            raise ValueError(
                f"base_url: give only scheme and host (e.g. {default}); the client adds the API's path itself"
            )
        msgspec.structs.force_setattr(self, "base_url", base_url)


class CredentialsConfig(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    source: KeySource = KeySource.ENV
    file: Path | None = None  # source = "file"
    keyring_service: _Text = "coinbase-engine"  # source = "keyring"
    keyring_username: _Text = "default"

    def __post_init__(self) -> None:
        if self.source is KeySource.FILE and self.file is None:
            raise ValueError('file: required when source = "file"')


class LimitsConfig(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Client-side request budgets: Coinbase's published defaults, configurable as they are unconfirmed."""

    # None: the venue's published defaults (Advanced Trade 30 and 10; Exchange 15 and 10, `/fills` 10)
    private_rps: _Seconds | None = None
    public_rps: _Seconds | None = None
    # requests a bucket lets through at once; None: one second's worth
    burst: Annotated[float, msgspec.Meta(ge=1, le=_MAX_NUMBER)] | None = None
    max_retries: Annotated[int, msgspec.Meta(ge=0, le=20)] = 3
    # One budget shared by every worker on the key, in Redis (`RedisRateLimiter`); None: a local limiter.
    redis_url: _RedisUrl | None = None
    redis_namespace: _Prefix = "engine"
    redis_timeout_s: _Seconds = 0.5
    expected_workers: Annotated[int, msgspec.Meta(ge=1, le=10_000)] = (
        1  # divides the budget while Redis is away
    )
    # of that share, to leave room for peers still on Redis
    fallback_fraction: Annotated[float, msgspec.Meta(gt=0, le=1, description="a fraction in (0, 1]")] = 0.7


class SignalsConfig(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    webhook: bool = True
    host: _Text = "127.0.0.1"
    port: _Port = 8787
    # the name of the environment variable holding the webhook's HMAC secret (not the secret)
    secret_env: _EnvName = "ENGINE_WEBHOOK_SECRET"  # noqa: S105
    window_s: _Seconds = 30.0
    queue_size: Annotated[int, msgspec.Meta(ge=1, le=1_000_000)] = 1000
    # Signals on a Redis stream (`engine.signals.stream`): the webhook, if on, publishes there and the worker
    # consumes it through a consumer group shared with its peers. None: a local queue.
    redis_url: _RedisUrl | None = None
    redis_namespace: _Prefix = "engine"  # stream {ns}:signals; every worker of one engine uses the same
    redis_group: _Text = "engine"
    redis_timeout_s: _Seconds = 0.5
    consumer: _Text | None = None  # this worker's name in the group, stable across restarts; None: hostname
    reclaim_idle_s: _Seconds = 30.0  # a peer's signal pending this long is taken over (its worker died)
    max_attempts: Annotated[int, msgspec.Meta(ge=1, le=1000)] = 5  # tries before a signal is failed

    def __post_init__(self) -> None:
        if not self.webhook and self.redis_url is None:
            raise ValueError("webhook: no signal source: enable the webhook or set redis_url")


class JournalConfig(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    path: Path = Path("engine-journal.sqlite")
    durability: Literal["os", "full"] = "os"  # "os": survives a crash of the process; "full": power loss
    audit_log: Path | None = None


class MetricsConfig(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    enabled: bool = True
    host: _Text = "127.0.0.1"
    port: _Port = 9464


class WorkerConfig(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    dry_run: bool = False  # risk-check signals and log them; never journal or send an order
    cancel_open_orders_on_exit: bool = True
    drain_timeout_s: _Seconds = 10.0
    concurrency: Annotated[int, msgspec.Meta(ge=1, le=1024)] = 16  # signals worked at once
    client_order_prefix: Annotated[
        str,
        msgspec.Meta(
            pattern=r"^[A-Za-z0-9_.]{1,64}$", description="1-64 characters of [A-Za-z0-9_.] (no '-')"
        ),
    ] = "eng"
    busy_poll: bool = False  # poll instead of sleeping between events: lower tail latency, one core at 100%


class LoggingConfig(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    level: _Text = "INFO"  # any case
    json: bool = True

    def __post_init__(self) -> None:
        level = self.level.upper()
        if level not in _LEVELS:
            raise ValueError(f"level: must be one of {', '.join(_LEVELS)}")
        msgspec.structs.force_setattr(self, "level", level)


class Config(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    exchange: ExchangeConfig = msgspec.field(default_factory=ExchangeConfig)
    credentials: CredentialsConfig = msgspec.field(default_factory=CredentialsConfig)
    limits: LimitsConfig = msgspec.field(default_factory=LimitsConfig)
    risk: RiskConfig = msgspec.field(
        default_factory=lambda: RiskConfig(breaker_failures=WORKER_BREAKER_FAILURES)
    )
    signals: SignalsConfig = msgspec.field(default_factory=SignalsConfig)
    journal: JournalConfig = msgspec.field(default_factory=JournalConfig)
    metrics: MetricsConfig = msgspec.field(default_factory=MetricsConfig)
    worker: WorkerConfig = msgspec.field(default_factory=WorkerConfig)
    logging: LoggingConfig = msgspec.field(default_factory=LoggingConfig)

    @property
    def trades(self) -> bool:
        """Whether this config ever places an order (doctor warns a non-trading one holding a trade key)."""
        return not self.worker.dry_run


def load_config(path: str | Path) -> Config:
    """Read and validate a TOML config file. Raises `ConfigError` naming the file and the bad key."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise ConfigError(f"{path}: config file not found") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read config file ({exc.strerror})") from None
    # Both refusals are raised outside their `except`: the decoder's error holds the whole file (a Redis
    # password with it) and would stay chained as the refusal's __context__ even with `from None`.
    refusal: str | None = None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        # TOML is UTF-8 (https://toml.io/en/v1.0.0#spec); the offset finds the byte, which is not echoed
        refusal = f"{path}: not UTF-8 text (invalid byte at offset {exc.start})"
    if refusal is not None:
        raise ConfigError(refusal)
    # Editors on Windows may start a UTF-8 file with a byte order mark, which tomllib refuses as a bare key
    text = text.removeprefix("\ufeff")
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        refusal = f"{path}: not valid TOML ({exc})"
    if refusal is not None:
        raise ConfigError(refusal)
    return parse_config(document, base_dir=path.resolve().parent, source=path)


def parse_config(
    document: Mapping[str, Any], *, base_dir: Path | None = None, source: Path | None = None
) -> Config:
    """Validate an already-parsed TOML document; an error names `source` (if given) and the dotted key."""
    try:
        config = _decode(document)
    except ConfigError as exc:
        raise ConfigError(f"{source}: {exc}" if source is not None else str(exc)) from None
    base = base_dir or Path.cwd()
    credentials, journal = config.credentials, config.journal
    return msgspec.structs.replace(
        config,
        credentials=msgspec.structs.replace(credentials, file=_resolve(credentials.file, base)),
        journal=msgspec.structs.replace(
            journal, path=_resolve(journal.path, base), audit_log=_resolve(journal.audit_log, base)
        ),
    )


def _decode(document: Mapping[str, Any]) -> Config:
    prepared = _prepare(document, _CONFIG_INFO, "")
    if isinstance(prepared, dict) and isinstance(prepared.get("risk"), dict):
        risk = prepared["risk"]
        if "default_limits" in risk:
            raise ConfigError("risk.default_limits: unknown key (the default caps sit directly in [risk])")
        risk.setdefault("breaker_failures", WORKER_BREAKER_FAILURES)
        inline = {key: risk.pop(key) for key in _INLINE_CAPS & set(risk)}
        try:
            risk["default_limits"] = msgspec.convert(inline, ProductLimits)
        except msgspec.ValidationError as exc:
            raise ConfigError(_explain(exc, "risk", _PRODUCT_INFO)) from None
    try:
        return msgspec.convert(prepared, Config, dec_hook=_dec_hook)
    except msgspec.ValidationError as exc:
        raise ConfigError(_explain(exc, "", _CONFIG_INFO)) from None


def _dec_hook(kind: type, value: object) -> object:
    if kind is Path and isinstance(value, str) and value:  # "" would be the config file's directory
        return Path(value).expanduser()
    raise TypeError(f"Expected `{kind.__name__}`, got `{type(value).__name__}`")


def _resolve(path: Path | None, base: Path) -> Path | None:
    return path if path is None or path.is_absolute() else base / path


# -- the one pass msgspec cannot do: secret keys, decimals through engine.decimals, names with dict keys


def _dotted(prefix: str, key: str) -> str:
    return f"{prefix}.{key}" if prefix else key


def _prepare(value: Any, info: mi.Type, dotted: str) -> Any:
    """`value` with its decimals bounded and its strings stripped, refusing secret-looking keys.

    msgspec would parse decimals with `Decimal()`, which takes `1_000`, other scripts' digits and `nan`;
    `bounded_decimal` takes only ASCII decimal text and bounds it by value and exponent. Tables under a
    dict (`[risk.product.X]`) are decoded here, so an error names the product.
    """
    info = _unwrap(info)
    if isinstance(info, mi.StructType) and isinstance(value, Mapping):
        fields = {field.encode_name: field for field in info.fields}
        out: dict[str, Any] = {}
        for key, item in value.items():
            name = _dotted(dotted, str(key))
            if str(key).lower() in _SECRET_KEYS:
                raise ConfigError(
                    f"{name}: secrets do not belong in the config file; put the API key in "
                    "the environment (COINBASE_API_KEY/COINBASE_API_SECRET), a key file or the OS keyring, "
                    "and the webhook secret in the environment variable [signals].secret_env names"
                )
            field = fields.get(key)
            if field is None and info.cls is RiskConfig and key in _INLINE_CAPS:
                field = next(f for f in _PRODUCT_INFO.fields if f.encode_name == key)  # inline default caps
            out[key] = item if field is None else _prepare(item, field.type, name)
        return out
    if isinstance(info, mi.DictType) and isinstance(value, Mapping):
        decoded: dict[Any, Any] = {}
        for key, item in value.items():
            name = _dotted(dotted, str(key))
            if not isinstance(key, str) or not _matches(key, info.key_type):
                raise ConfigError(f"{name}: {_reason(info.key_type)}")
            prepared = _prepare(item, info.value_type, name)
            value_info = _unwrap(info.value_type)
            if isinstance(value_info, mi.StructType):
                try:
                    prepared = msgspec.convert(prepared, value_info.cls, dec_hook=_dec_hook)
                except msgspec.ValidationError as exc:
                    raise ConfigError(_explain(exc, name, value_info)) from None
            decoded[key] = prepared
        return decoded
    if isinstance(info, mi.DecimalType) and value is not None:
        # decimal strings are exact; a TOML float is taken through its shortest repr
        if isinstance(value, bool) or not isinstance(value, str | int | float):
            raise ConfigError(f'{dotted}: must be a decimal string such as "0.5"')
        try:
            # the sign is the struct's to check: a fee rate may be negative (a rebate), a cap may not
            return bounded_decimal(
                value if isinstance(value, str | int) else repr(value), dotted, positive=False
            )
        except InvalidValue as exc:
            raise ConfigError(str(exc)) from None
    if isinstance(value, str):
        return value.strip()
    return value


def _unwrap(info: mi.Type) -> mi.Type:
    """The type behind an optional and its metadata: what a present value must be."""
    while True:
        if isinstance(info, mi.Metadata):
            info = info.type
        elif isinstance(info, mi.UnionType):
            present = [member for member in info.types if not isinstance(member, mi.NoneType)]
            if len(present) != 1:
                return info
            info = present[0]
        else:
            return info


def _description(info: mi.Type) -> str | None:
    while isinstance(info, mi.UnionType | mi.Metadata):
        if isinstance(info, mi.Metadata):
            description = (info.extra_json_schema or {}).get("description")
            if description:
                return str(description)
            info = info.type
        else:
            present = [member for member in info.types if not isinstance(member, mi.NoneType)]
            if len(present) != 1:
                return None
            info = present[0]
    return None


def _matches(key: str, info: mi.Type) -> bool:
    kind = _unwrap(info)
    return (
        not isinstance(kind, mi.StrType) or kind.pattern is None or re.search(kind.pattern, key) is not None
    )


def _number(value: float) -> str:
    if not float(value).is_integer():
        return f"{value:g}"
    return f"{int(value):,}" if value >= 1_000_000 else str(int(value))


def _bounds(low: float | None, high: float | None, strict_low: bool) -> str:
    if low is not None and high is not None and not strict_low:
        return f" between {_number(low)} and {_number(high)}"
    parts = []
    if low is not None:
        parts.append(f"{'>' if strict_low else '>='} {_number(low)}")
    if high is not None:
        parts.append(f"at most {_number(high)}")
    return (" " + " and ".join(parts)) if parts else ""


def _reason(info: mi.Type, *, out_of_range: bool = False) -> str:
    """What a value of this type must be, in the file's words (never echoing the value given)."""
    description = _description(info)
    if description is not None:
        return description
    kind = _unwrap(info)
    if isinstance(kind, mi.BoolType):
        return "must be true or false"
    if isinstance(kind, mi.IntType):
        return (
            "must be" + _bounds(kind.ge, kind.le, strict_low=False) if out_of_range else "must be an integer"
        )
    if isinstance(kind, mi.FloatType):
        low, strict = (kind.gt, True) if kind.gt is not None else (kind.ge, False)
        return "must be" + _bounds(low, kind.le, strict_low=strict) if out_of_range else "must be a number"
    if isinstance(kind, mi.StrType):
        return "must be a non-empty string"
    if isinstance(kind, mi.EnumType):
        return "must be one of " + ", ".join(repr(member.value) for member in kind.cls)
    if isinstance(kind, mi.LiteralType):
        return "must be one of " + ", ".join(repr(value) for value in sorted(kind.values, key=str))
    if isinstance(kind, mi.StructType | mi.DictType):
        return "must be a table"
    if isinstance(kind, mi.ListType | mi.VarTupleType):
        return f"must be a list, each item {_reason(kind.item_type).removeprefix('must be ')}"
    if isinstance(kind, mi.DecimalType):
        return 'must be a decimal string such as "0.5"'
    if isinstance(kind, mi.CustomType) and kind.cls is Path:
        return "must be a path (a non-empty string)"
    return "invalid value"


_PATH = re.compile(r"\.([^.\[]+)|\[([^\]]*)\]")
_RELATIVE = re.compile(r"([A-Za-z_][A-Za-z0-9_]*): (.+)", re.DOTALL)


def _explain(error: msgspec.ValidationError, prefix: str, info: mi.Type) -> str:
    """msgspec's error as `dotted.key: reason`, the reason from the field's type or its own check."""
    message, _, at = str(error).partition(" - at `$")
    dotted, list_item = prefix, False
    for key, index in _PATH.findall(at.removesuffix("`")):
        kind = _unwrap(info)
        if key and isinstance(kind, mi.StructType):
            field = next((f for f in kind.fields if f.encode_name == key), None)
            dotted, info = _dotted(dotted, key), field.type if field else info
        elif index and isinstance(kind, mi.ListType | mi.VarTupleType):
            info, list_item = kind.item_type, True
        elif index and isinstance(kind, mi.DictType):
            info = kind.value_type
    unknown = re.fullmatch(r"Object contains unknown field `(.*)`", message)
    if unknown:
        return f"{_dotted(dotted, unknown.group(1))}: unknown key"
    relative = _RELATIVE.fullmatch(message)
    if relative:  # a struct's own check (__post_init__), naming its field
        return f"{_dotted(dotted, relative.group(1))}: {relative.group(2)}"
    reason = _reason(info, out_of_range=re.match(r"Expected `(?:int|float)` [<>]", message) is not None)
    return f"{dotted}: {'each item ' + reason if list_item else reason}"


def _struct_info(kind: type[msgspec.Struct]) -> mi.StructType:
    info = mi.type_info(kind)
    assert isinstance(info, mi.StructType)
    return info


_CONFIG_INFO = _struct_info(Config)
_PRODUCT_INFO = _struct_info(ProductLimits)
