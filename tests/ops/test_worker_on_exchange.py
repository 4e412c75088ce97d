"""The worker and `engine demo` on Coinbase Exchange: `[exchange].venue = "exchange"`, the Exchange key from
the environment or a key file (never logged), signals through the webhook into the simulator's ledger as
exactly one order each under a UUID `client_oid`, key rotation, open orders cancelled on exit."""

from __future__ import annotations

import json
import logging
import re
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator
from dataclasses import asdict
from pathlib import Path

import aiohttp
import pytest

from engine.doctor import Status, run_doctor
from engine.errors import ConfigError, KeyFormatError
from engine.ops.config import VENUE_BASE_URLS, CredentialsConfig, KeySource, parse_config
from engine.ops.credentials import read_exchange_credentials, read_exchange_key_file
from engine.signals.model import parse_signal
from engine.sim import SimConfig, Simulator
from engine.worker import Worker
from tests.exchange.engine_support import eventually
from tests.ops.worker_process import post_signal, resting_buy
from tests.support.keys import TestExchangeKey, new_exchange_key, new_webhook_secret
from tests.support.leaks import observe


def exchange_env(key: TestExchangeKey) -> dict[str, str]:
    return {
        "COINBASE_EXCHANGE_KEY": key.key,
        "COINBASE_EXCHANGE_SECRET": key.secret,
        "COINBASE_EXCHANGE_PASSPHRASE": key.passphrase,
    }


# == config ===============================================================================================


def test_the_venue_picks_its_base_url_unless_one_is_given() -> None:
    assert parse_config({}).exchange.venue == "advanced"
    assert parse_config({}).exchange.base_url == "https://api.coinbase.com"
    on_exchange = parse_config({"exchange": {"venue": "exchange"}}).exchange
    assert on_exchange.base_url == VENUE_BASE_URLS["exchange"] == "https://api.exchange.coinbase.com"
    local = parse_config({"exchange": {"venue": "exchange", "base_url": "http://127.0.0.1:9/"}}).exchange
    assert local.base_url == "http://127.0.0.1:9"


@pytest.mark.parametrize("venue", ["derivatives", "pro", 3, ""])
def test_an_unknown_venue_is_refused_naming_the_key(venue: object) -> None:
    with pytest.raises(ConfigError, match=r"exchange\.venue") as refused:
        parse_config({"exchange": {"venue": venue}})
    assert "'advanced'" in str(refused.value)
    assert "'exchange'" in str(refused.value)


def test_a_passphrase_in_the_config_file_is_refused() -> None:
    with pytest.raises(ConfigError, match=r"credentials\.passphrase: secrets do not belong"):
        parse_config({"exchange": {"venue": "exchange"}, "credentials": {"passphrase": "hunter2"}})


# == credentials ==========================================================================================


def test_exchange_credentials_from_the_environment_never_show_the_secret() -> None:
    key = new_exchange_key()
    credentials = read_exchange_credentials(CredentialsConfig(), exchange_env(key))
    assert credentials.name == key.key
    assert key.secret not in repr(credentials)
    assert key.passphrase not in repr(credentials)
    assert credentials.signing_key().key == key.key


@pytest.mark.parametrize("missing", ["COINBASE_EXCHANGE_SECRET", "COINBASE_EXCHANGE_PASSPHRASE"])
def test_a_partial_exchange_key_names_what_is_missing(missing: str) -> None:
    key = new_exchange_key()
    env = exchange_env(key)
    del env[missing]
    with pytest.raises(ConfigError, match=f"{missing} not set") as refused:
        read_exchange_credentials(CredentialsConfig(), env)
    assert key.secret not in str(refused.value)
    assert key.passphrase not in str(refused.value)


def test_no_exchange_key_anywhere_says_where_to_put_one() -> None:
    with pytest.raises(ConfigError, match="COINBASE_EXCHANGE_KEY_FILE"):
        read_exchange_credentials(CredentialsConfig(), {})


def test_exchange_key_files(tmp_path: Path) -> None:
    key = new_exchange_key()
    path = tmp_path / "exchange.json"
    path.write_text(json.dumps(asdict(key)))
    path.chmod(0o600)
    from_file = read_exchange_credentials(CredentialsConfig(source=KeySource.FILE, file=path), {})
    assert (from_file.name, from_file.warnings) == (key.key, ())
    from_env = read_exchange_credentials(CredentialsConfig(), {"COINBASE_EXCHANGE_KEY_FILE": str(path)})
    assert from_env.name == key.key
    path.chmod(0o644)
    assert "readable by other users" in read_exchange_key_file(path).warnings[0]
    cdp = tmp_path / "cdp.json"
    cdp.write_text(json.dumps({"name": "organizations/x/apiKeys/y", "privateKey": "-----BEGIN..."}))
    with pytest.raises(KeyFormatError, match="looks like a CDP key file"):
        read_exchange_key_file(cdp)
    partial = tmp_path / "partial.json"
    partial.write_text(json.dumps({"key": key.key, "secret": key.secret}))
    with pytest.raises(KeyFormatError, match='"passphrase" field is missing') as refused:
        read_exchange_key_file(partial)
    assert key.secret not in str(refused.value)
    not_base64 = tmp_path / "not-base64.json"
    not_base64.write_text(json.dumps({**asdict(key), "secret": "not base64 at all!"}))
    with pytest.raises(KeyFormatError) as bad_secret:
        read_exchange_key_file(not_base64).signing_key()
    assert "not base64 at all" not in str(bad_secret.value)


# == the worker ===========================================================================================


@pytest.fixture
async def exchange_sim() -> AsyncIterator[tuple[Simulator, str, TestExchangeKey]]:
    sim = Simulator(SimConfig(seed=7, tick_interval_s=0.05))
    key = new_exchange_key()
    sim.register_exchange_key(key.key, key.secret, key.passphrase, {"view", "trade"})
    async with sim.serve(host="127.0.0.1", port=0) as base_url:
        yield sim, base_url, key


def worker_config(base_url: str, tmp_path: Path) -> dict[str, object]:
    return {
        "exchange": {"venue": "exchange", "base_url": base_url, "request_timeout_s": 5.0},
        "risk": {"products": ["BTC-USD"], "max_order_size": "1"},
        "signals": {"port": 0},
        "metrics": {"enabled": False},
        "journal": {"path": str(tmp_path / "journal.sqlite")},
        "logging": {"json": False},
    }


async def test_the_worker_trades_signals_on_exchange(
    exchange_sim: tuple[Simulator, str, TestExchangeKey], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    sim, base_url, key = exchange_sim
    secret = new_webhook_secret()
    config = parse_config(worker_config(base_url, tmp_path))
    worker = Worker(config, environ={**exchange_env(key), "ENGINE_WEBHOOK_SECRET": secret})
    caplog.set_level(logging.DEBUG)
    await worker.start()
    try:
        engine, executor = worker.engine, worker.executor
        assert engine is not None
        assert executor is not None
        assert engine.venue.name == "exchange"
        mid = sim.markets["BTC-USD"].mid
        async with aiohttp.ClientSession() as session:
            for signal_id in ("ex-0", "ex-1"):
                body = resting_buy(signal_id, mid)
                assert await post_signal(session, worker.webhook_url, secret, body) == 202
            assert await post_signal(session, worker.webhook_url, secret, resting_buy("ex-0", mid)) == 409
        await eventually(lambda: len(engine.open_orders()) == 2)
        by_coid = {order.client_order_id: order for order in sim.ledger}
        assert len(by_coid) == 2
        for coid in by_coid:
            assert uuid.UUID(coid).version == 5  # derived from the signal id: the same on every worker
        again = parse_signal(resting_buy("ex-1", mid))
        assert executor.client_order_id(again) in by_coid
        recovered = await executor.recover(again)  # a signal handed over again: found, not placed twice
        assert recovered is not None
        assert recovered.order_id == by_coid[executor.client_order_id(again)].order_id
        # rotation: the same key read again passes its check (accounts answer) and is swapped in
        assert await worker.reload_credentials()
    finally:
        await worker.stop()
    assert all(order.status == "CANCELLED" for order in sim.ledger)  # cancelled on exit
    assert worker.stats.cancelled_on_exit == 2
    logged = "\n".join(record.getMessage() for record in caplog.records)
    observe(logged, "worker log")
    assert key.secret not in logged
    assert key.passphrase not in logged
    assert "exchange" in logged


# == engine demo --venue exchange ========================================================================


def test_engine_demo_runs_on_exchange() -> None:
    completed = subprocess.run(
        [sys.executable, "-m", "engine", "demo", "--duration", "3", "--venue", "exchange"],
        capture_output=True,
        text=True,
        timeout=90,
        check=False,
    )
    observe(completed.stdout, "engine demo stdout")
    observe(completed.stderr, "engine demo stderr")
    assert completed.returncode == 0, completed.stderr
    out = completed.stdout
    assert "against the simulator (Coinbase Exchange)" in out
    acknowledged = re.search(r"orders .*acknowledged (\d+)", out)
    assert acknowledged is not None, out
    assert int(acknowledged.group(1)) > 0
    fills = re.search(r"^  fills +(\d+)$", out, re.MULTILINE)
    assert fills is not None
    assert int(fills.group(1)) > 0, out
    assert re.search(r"^  refusals +", out, re.MULTILINE), out
    assert re.search(r"order placed \(risk, journal, request\): p50 [\d.]+ ms", out), out


# == engine doctor on an Exchange config =================================================================


async def test_doctor_checks_an_exchange_key(exchange_sim: tuple[Simulator, str, TestExchangeKey]) -> None:
    _, base_url, key = exchange_sim
    config = parse_config({"exchange": {"venue": "exchange", "base_url": base_url}})
    checks = {c.name: c for c in await run_doctor(config, environ=exchange_env(key))}
    assert [checks[n].status for n in ("credentials", "key format", "clock", "read-only call")] == [
        Status.OK
    ] * 4
    assert checks["permissions"].status is Status.SKIP  # Exchange has no call that lists them
    wrong = {**exchange_env(key), "COINBASE_EXCHANGE_PASSPHRASE": "not-the-passphrase"}
    refused = {c.name: c for c in await run_doctor(config, environ=wrong)}
    assert refused["read-only call"].status is Status.FAIL
    assert "passphrase" in refused["read-only call"].summary
    assert "passphrase" in refused["read-only call"].fix
    missing = {c.name: c for c in await run_doctor(config, environ={})}
    assert missing["credentials"].status is Status.FAIL
    assert "COINBASE_EXCHANGE_KEY" in missing["credentials"].fix
    for check in [*checks.values(), *refused.values()]:
        assert key.secret not in check.summary + check.fix
        assert key.passphrase not in check.summary + check.fix
