"""The TOML config: every error names the bad key; relative paths follow the file; secrets are refused."""

from __future__ import annotations

import math
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.errors import ConfigError
from engine.ops.config import KeySource, load_config, parse_config
from engine.worker import engine_config
from tests.support.hostile_values import EDGE_DECIMALS, HOSTILE_DECIMALS

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "worker.toml"


def test_empty_config_takes_safe_defaults() -> None:
    config = parse_config({})
    assert config.exchange.base_url == "https://api.coinbase.com"
    assert config.credentials.source is KeySource.ENV
    assert config.signals.host == "127.0.0.1"
    assert config.metrics.host == "127.0.0.1"
    assert config.worker.cancel_open_orders_on_exit is True
    assert config.worker.busy_poll is False
    assert config.trades is True


def test_the_sample_config_loads() -> None:
    config = load_config(EXAMPLE)
    assert config.risk.allows_product("BTC-USD")
    assert not config.risk.allows_product("DOGE-USD")
    assert config.risk.limits_for("BTC-USD").max_order_size == Decimal("0.05")
    assert config.journal.path.is_absolute()


@pytest.mark.parametrize(
    ("document", "named"),
    [
        ({"exchange": {"base_url": "api.coinbase.com"}}, "exchange.base_url"),
        ({"exchange": {"base_url": "http://api.coinbase.com"}}, "exchange.base_url"),
        ({"exchange": {"base_url": "https://api.coinbase.com/api/v3/brokerage"}}, "exchange.base_url"),
        ({"exchange": {"request_timeout_s": 0}}, "exchange.request_timeout_s"),
        ({"exchange": {"request_timeout_s": "10"}}, "exchange.request_timeout_s"),
        ({"exchange": {"colour": "blue"}}, "exchange.colour"),
        ({"credentials": {"source": "vault"}}, "credentials.source"),
        ({"credentials": {"source": "file"}}, "credentials.file"),
        ({"credentials": {"private_key": "-----BEGIN EC PRIVATE KEY-----"}}, "credentials.private_key"),
        ({"signals": {"secret": "hunter2hunter2"}}, "signals.secret"),
        ({"signals": {"port": 70000}}, "signals.port"),
        ({"signals": {"secret_env": "not a name"}}, "signals.secret_env"),
        ({"signals": {"webhook": False}}, "signals.webhook"),
        ({"signals": {"redis_url": "http://localhost"}}, "signals.redis_url"),
        ({"signals": {"redis_stream": "engine:signals"}}, "signals.redis_stream"),
        ({"signals": {"redis_namespace": "a b"}}, "signals.redis_namespace"),
        ({"signals": {"reclaim_idle_s": 0}}, "signals.reclaim_idle_s"),
        ({"signals": {"max_attempts": 0}}, "signals.max_attempts"),
        ({"signals": {"consumer": ""}}, "signals.consumer"),
        ({"limits": {"redis_url": "127.0.0.1:6379"}}, "limits.redis_url"),
        ({"limits": {"redis_namespace": "{x}"}}, "limits.redis_namespace"),
        ({"limits": {"expected_workers": 0}}, "limits.expected_workers"),
        ({"limits": {"fallback_fraction": 1.5}}, "limits.fallback_fraction"),
        ({"limits": {"fallback_fraction": 0}}, "limits.fallback_fraction"),
        ({"limits": {"burst": 0.5}}, "limits.burst"),
        ({"limits": {"redis_password": "x"}}, "limits.redis_password"),
        ({"risk": {"max_order_size": "lots"}}, "risk.max_order_size"),
        ({"risk": {"max_order_size": "-1"}}, "risk.max_order_size"),
        ({"risk": {"price_band": "5"}}, "risk.price_band"),
        ({"risk": {"products": "BTC-USD"}}, "risk.products"),
        ({"risk": {"products": ["btc"]}}, "risk.products"),
        ({"risk": {"product": {"btc-usd": {}}}}, "risk.product.btc-usd"),
        ({"risk": {"product": {"BTC-USD": {"max_open_orders": 0}}}}, "risk.product.BTC-USD.max_open_orders"),
        ({"risk": {"product": {"BTC-USD": {"max_size": "1"}}}}, "risk.product.BTC-USD.max_size"),
        ({"journal": {"durability": "paranoid"}}, "journal.durability"),
        ({"worker": {"dry_run": "yes"}}, "worker.dry_run"),
        ({"worker": {"client_order_prefix": "a-b"}}, "worker.client_order_prefix"),
        ({"worker": {"busy_poll": 1}}, "worker.busy_poll"),
        ({"logging": {"level": "LOUD"}}, "logging.level"),
        ({"metrics": []}, "metrics"),
        ({"extra": {}}, "extra"),
    ],
)
def test_each_bad_value_is_named(document: dict[str, object], named: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config(document)
    assert str(caught.value).startswith(f"{named}:"), str(caught.value)


def test_secret_values_are_never_echoed() -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config({"credentials": {"api_secret": "s3cr3t-value-do-not-echo"}})
    assert "s3cr3t" not in str(caught.value)
    assert "environment" in str(caught.value)


def test_load_names_the_file_and_the_key(tmp_path: Path) -> None:
    path = tmp_path / "worker.toml"
    path.write_text("[worker]\nconcurrency = 0\n")
    with pytest.raises(ConfigError, match=r"worker\.toml: worker\.concurrency: must be between"):
        load_config(path)
    path.write_text("[worker\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config(path)
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "missing.toml")


def load_refused(tmp_path: Path, raw: bytes) -> tuple[Path, ConfigError]:
    """The config file `raw` written, loaded, and the `ConfigError` it was refused with."""
    path = tmp_path / "worker.toml"
    path.write_bytes(raw)
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    return path, caught.value


@pytest.mark.parametrize(
    ("raw", "offset"),
    [
        (b'[worker]\nclient_order_prefix = "\xff"\n', 32),  # a byte no UTF-8 text starts with
        (b"# caf\xc3\n", 5),  # a sequence cut short
        (b'a = "\xed\xa0\x80"\n', 5),  # an encoded surrogate
        (b"\xfe\xff[worker]\n", 0),  # a UTF-16 byte order mark
    ],
)
def test_a_file_that_is_not_utf8_is_refused_naming_the_file_and_the_offset(
    tmp_path: Path, raw: bytes, offset: int
) -> None:
    path, refused = load_refused(tmp_path, raw)
    assert str(refused) == f"{path}: not UTF-8 text (invalid byte at offset {offset})"
    assert refused.__cause__ is None
    assert refused.__context__ is None  # the decoder's error holds the whole file


def test_a_file_refused_as_not_toml_keeps_nothing_of_it_chained(tmp_path: Path) -> None:
    # found by fuzzing: the refusal's __context__ held the decoder's error, and with it the whole file
    raw = b'[limits]\nredis_url = "redis://:hunter2hunter2@127.0.0.1/0"\n\xff'
    _, refused = load_refused(tmp_path, raw)
    assert refused.__context__ is None
    _, refused = load_refused(tmp_path, b'[limits]\nredis_url = "redis://:hunter2hunter2@h/0"\n= broken\n')
    assert "not valid TOML" in str(refused)
    assert refused.__context__ is None


def test_a_utf8_byte_order_mark_is_accepted(tmp_path: Path) -> None:
    path = tmp_path / "worker.toml"
    path.write_bytes(b'\xef\xbb\xbf[worker]\nclient_order_prefix = "bom"\n')  # as Windows editors save it
    assert load_config(path).worker.client_order_prefix == "bom"


def test_relative_paths_resolve_against_the_config_file(tmp_path: Path) -> None:
    path = tmp_path / "conf" / "worker.toml"
    path.parent.mkdir()
    path.write_text('[credentials]\nsource = "file"\nfile = "keys/cdp.json"\n[journal]\npath = "j.sqlite"\n')
    config = load_config(path)
    assert config.credentials.file == path.parent.resolve() / "keys" / "cdp.json"
    assert config.journal.path == path.parent.resolve() / "j.sqlite"


def test_plain_http_is_allowed_to_the_local_simulator_only() -> None:
    config = parse_config({"exchange": {"base_url": "http://127.0.0.1:8080/"}, "worker": {"dry_run": True}})
    assert config.exchange.base_url == "http://127.0.0.1:8080"
    assert config.trades is False


def test_per_product_limits_replace_the_defaults() -> None:
    config = parse_config(
        {
            "risk": {
                "max_order_size": "1",
                "price_band": 0.05,
                "product": {"ETH-USD": {"max_order_size": "10", "max_open_orders": 3}},
            }
        }
    )
    assert config.risk.limits_for("BTC-USD").max_order_size == Decimal("1")
    assert config.risk.limits_for("ETH-USD").max_order_size == Decimal("10")
    assert config.risk.limits_for("ETH-USD").max_open_orders == 3
    assert config.risk.price_band == Decimal("0.05")
    assert config.risk.allows_product("ETH-USD")
    assert not config.risk.allows_product("BTC-USD")


def test_redis_intake_and_limiter_are_chosen_by_config() -> None:
    config = parse_config({})
    assert config.signals.redis_url is None  # the webhook feeds a local queue
    assert config.limits.redis_url is None  # a local limiter
    assert config.limits.burst is None
    config = parse_config(
        {
            "signals": {
                "webhook": False,
                "redis_url": "redis://127.0.0.1:6379/0",
                "redis_namespace": "desk1",
                "consumer": "host-2",
                "reclaim_idle_s": 5,
                "max_attempts": 3,
            },
            "limits": {
                "redis_url": "redis://127.0.0.1:6379/1",
                "expected_workers": 4,
                "fallback_fraction": 0.5,
                "burst": 1,
            },
        }
    )
    signals, limits = config.signals, config.limits
    assert (signals.redis_namespace, signals.consumer, signals.reclaim_idle_s) == ("desk1", "host-2", 5.0)
    assert signals.max_attempts == 3
    assert (limits.redis_url, limits.expected_workers, limits.fallback_fraction) == (
        "redis://127.0.0.1:6379/1",
        4,
        0.5,
    )
    assert limits.burst == 1.0


def test_every_setting_is_documented_in_the_sample_config() -> None:
    """Every key the loader reads appears in examples/worker.toml (set, or commented out with its default)."""
    import msgspec

    from engine.ops import config as module

    text = EXAMPLE.read_text()
    tables = {
        "exchange": module.ExchangeConfig,
        "credentials": module.CredentialsConfig,
        "limits": module.LimitsConfig,
        "risk": module.RiskConfig,
        "signals": module.SignalsConfig,
        "journal": module.JournalConfig,
        "metrics": module.MetricsConfig,
        "worker": module.WorkerConfig,
        "logging": module.LoggingConfig,
    }
    for table, kind in tables.items():
        section = text.split(f"\n[{table}]\n", 1)[1].split("\n[", 1)[0]
        names = [item.encode_name for item in msgspec.structs.fields(kind)]
        if kind is module.RiskConfig:  # default caps sit inline in [risk], per product in [risk.product.X]
            names.remove("default_limits")
            names.remove("product")
            names += [item.encode_name for item in msgspec.structs.fields(module.ProductLimits)]
            assert "\n[risk.product." in text
        for name in names:
            assert f"{name} =" in section, f"{table}.{name} is not in examples/worker.toml"


def test_busy_poll_reaches_the_engine() -> None:
    assert engine_config(parse_config({"worker": {"busy_poll": True}})).busy_poll is True
    assert engine_config(parse_config({})).busy_poll is False


# -- hostile numbers: decimals bounded by value and exponent, other numbers so timers can hold them

_DECIMAL_KEYS = [
    ("risk", "max_order_size"),
    ("risk", "max_order_notional"),
    ("risk", "daily_loss_limit"),
    ("risk.product.BTC-USD", "max_position"),
    ("risk.product.BTC-USD", "max_allocation"),
]


def _nested(dotted: str, key: str, value: object) -> dict[str, object]:
    document: dict[str, object] = {key: value}
    for part in reversed(dotted.split(".", 2)):
        document = {part: document}
    return document


@pytest.mark.parametrize(("text", "reason"), HOSTILE_DECIMALS, ids=[t[:24] for t, _ in HOSTILE_DECIMALS])
def test_hostile_decimals_in_the_config_are_refused_naming_the_key(text: str, reason: str) -> None:
    for table, key in _DECIMAL_KEYS:
        with pytest.raises(ConfigError, match=reason) as caught:
            parse_config(_nested(table, key, text))
        assert str(caught.value).startswith(f"{table}.{key}:"), str(caught.value)
        assert len(str(caught.value)) < 120


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf, 1e308, 1e300, 1e-300, 1e16])
def test_hostile_toml_floats_for_decimals_are_refused(value: float) -> None:
    with pytest.raises(ConfigError, match=r"risk\.price_band"):
        parse_config({"risk": {"price_band": value}})


@pytest.mark.parametrize(("text", "value"), EDGE_DECIMALS)
def test_edge_decimals_in_the_config_are_taken(text: str, value: str) -> None:
    caps = parse_config({"risk": {"max_order_notional": text}}).risk.default_limits
    assert caps.max_order_notional == Decimal(value)


@pytest.mark.parametrize(
    ("table", "key"),
    [("exchange", "request_timeout_s"), ("limits", "private_rps"), ("limits", "redis_timeout_s"),
     ("signals", "window_s"), ("signals", "reclaim_idle_s"), ("worker", "drain_timeout_s"),
     ("risk", "order_window_s"), ("risk", "breaker_pause_s"), ("limits", "burst"),
     ("risk", "breaker_window_s")],
)  # fmt: skip
@pytest.mark.parametrize("value", [1e308, 1e10, math.inf, math.nan])
def test_numbers_too_large_for_a_timer_are_refused(table: str, key: str, value: float) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config({table: {key: value}})
    assert str(caught.value).startswith(f"{table}.{key}:"), str(caught.value)


# -- the file as written: each malformed config is refused naming the file and the dotted key

MALFORMED_FILES = [
    ("[exchange]\nbase_url = 42\n", "exchange.base_url", "must be a non-empty string"),
    ("[exchange]\nrequest_timeout_s = -1.0\n", "exchange.request_timeout_s", "must be > 0"),
    ("[exchange]\nretries = 3\n", "exchange.retries", "unknown key"),
    ('[credentials]\nsource = "vault"\n', "credentials.source", "must be one of 'env', 'file', 'keyring'"),
    ('[credentials]\nsource = "file"\n', "credentials.file", 'required when source = "file"'),
    ("[credentials]\nfile = 7\n", "credentials.file", "must be a path"),
    ("[limits]\nprivate_rps = true\n", "limits.private_rps", "must be a number"),
    ("[limits]\nmax_retries = 21\n", "limits.max_retries", "must be between 0 and 20"),
    ("[limits]\nexpected_workers = 1.5\n", "limits.expected_workers", "must be an integer"),
    ("[risk]\nmax_open_orders = 0\n", "risk.max_open_orders", "must be between 1 and"),
    ('[risk]\nmax_open_orders_total = "20"\n', "risk.max_open_orders_total", "must be an integer"),
    ("[risk]\nmax_orders_per_window = -5\n", "risk.max_orders_per_window", "must be between 1 and"),
    ("[risk]\norder_window_s = 0\n", "risk.order_window_s", "must be > 0"),
    ("[risk]\norder_cooldown_s = -1\n", "risk.order_cooldown_s", "must be between 0 and"),
    ("[risk]\nbreaker_failures = 0\n", "risk.breaker_failures", "must be between 1 and"),
    ('[risk]\ndaily_loss_limit = "1E+999999"\n', "risk.daily_loss_limit", "too large"),
    ('[risk]\nmax_allocation = "1_000"\n', "risk.max_allocation", "not a decimal"),
    ('[risk]\nfee_rate = "NaN"\n', "risk.fee_rate", "not a decimal"),
    ("[risk]\nmax_position = true\n", "risk.max_position", "must be a decimal string"),
    ('[risk]\ncheck_balance = "no"\n', "risk.check_balance", "must be true or false"),
    ('[risk]\nproducts = ["BTC-USD", "doge"]\n', "risk.products", "product id"),
    ("[risk]\nmax_ordersize = 1\n", "risk.max_ordersize", "unknown key"),
    ("[risk.default_limits]\nmax_order_size = '1'\n", "risk.default_limits", "unknown key"),
    ("[risk.product.BTC-USD]\nmax_open_orders = 1.5\n", "risk.product.BTC-USD.max_open_orders", "integer"),
    (
        '[risk.product.BTC-USD]\nmax_order_size = "0"\n',
        "risk.product.BTC-USD.max_order_size",
        "greater than zero",
    ),
    ("[risk.product.BTC-USD]\nprice_band = 0.1\n", "risk.product.BTC-USD.price_band", "unknown key"),
    ("[risk.product.btc_usd]\n", "risk.product.btc_usd", "product id"),
    ("[signals]\nport = -1\n", "signals.port", "must be between 0 and 65535"),
    ('[signals]\nqueue_size = "big"\n', "signals.queue_size", "must be an integer"),
    ('[signals]\nwebhook_secret = "x"\n', "signals.webhook_secret", "secrets do not belong"),
    ('[journal]\ndurability = "fsync"\n', "journal.durability", "must be one of"),
    ("[journal]\naudit_log = []\n", "journal.audit_log", "must be a path"),
    ('[journal]\npath = ""\n', "journal.path", "non-empty"),
    ('[metrics]\nenabled = "true"\n', "metrics.enabled", "must be true or false"),
    ("[worker]\nconcurrency = 2000\n", "worker.concurrency", "must be between 1 and 1024"),
    ("[worker]\ndrain_timeout_s = inf\n", "worker.drain_timeout_s", "at most 1,000,000,000"),
    ('[worker]\nclient_order_prefix = ""\n', "worker.client_order_prefix", "1-64 characters"),
    ("[logging]\njson = 1\n", "logging.json", "must be true or false"),
    ('[logging]\nlevel = "TRACE"\n', "logging.level", "must be one of DEBUG"),
    ("logging = 3\n", "logging", "must be a table"),
    ("[workers]\nconcurrency = 1\n", "workers", "unknown key"),
]


@pytest.mark.parametrize(("text", "key", "reason"), MALFORMED_FILES, ids=[k for _, k, _ in MALFORMED_FILES])
def test_a_malformed_file_is_refused_naming_the_file_and_the_key(
    tmp_path: Path, text: str, key: str, reason: str
) -> None:
    path, refused = load_refused(tmp_path, text.encode())
    message = str(refused)
    assert message.startswith(f"{path}: {key}: "), message
    assert reason in message, message


def test_the_worker_decodes_the_engines_own_risk_config() -> None:
    """One RiskConfig: the worker's differs from the embedded Engine's only in its circuit breaker."""
    from engine.ops.config import WORKER_BREAKER_FAILURES
    from engine.risk import RiskConfig

    assert parse_config({}).risk == RiskConfig(breaker_failures=WORKER_BREAKER_FAILURES)
    assert parse_config({"risk": {"price_band": "0.05"}}).risk == RiskConfig(
        price_band=Decimal("0.05"), breaker_failures=WORKER_BREAKER_FAILURES
    )
    assert parse_config({"risk": {"breaker_failures": 2}}).risk.breaker_failures == 2
    config = load_config(EXAMPLE)
    assert engine_config(config).risk is config.risk  # no mapping by hand: the gate gets what was decoded
    assert config.risk.max_open_orders == 20  # max_open_orders_total in the file
    assert config.risk.max_orders == 20
    assert config.risk.rate_window == 1.0


_KEYS = [
    *("exchange", "risk", "product", "BTC-USD", "signals", "worker", "limits", "journal", "port", "path"),
    *("max_open_orders", "max_order_size", "products", "breaker_failures", "level", "webhook", "x"),
]
_SCALARS = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8) | st.just("1")
_VALUES = st.recursive(
    _SCALARS,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.sampled_from(_KEYS), inner, max_size=4),
    max_leaves=12,
)


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(st.sampled_from(_KEYS), _VALUES, max_size=4))
def test_any_document_decodes_or_is_refused_naming_a_key_it_has(document: dict[str, object]) -> None:
    """No document crashes the loader or gets past it untyped: a Config, or a ConfigError naming its key."""
    message = None
    try:
        config = parse_config(document)
    except ConfigError as exc:
        message = str(exc)
    if message is None:
        assert isinstance(config.risk.breaker_failures, int)
        return
    node: object = document
    for part in message.split(":", 1)[0].split("."):  # the named key is in the document
        assert isinstance(node, dict), message
        assert part in node, message
        node = node[part]
