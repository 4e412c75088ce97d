"""`engine doctor` against the simulator with good and bad keys: each failure is found and carries its fix."""

from __future__ import annotations

import io
import json
import secrets
from pathlib import Path

import pytest

from engine import cli
from engine.doctor import (
    FIX_BAD_SIGNATURE,
    FIX_CLOCK,
    FIX_ESCAPED,
    FIX_LEAST_TRADE,
    FIX_TRADE,
    FIX_TRANSFER,
    FIX_WRONG_TYPE,
    Check,
    Status,
    doctor_exit_code,
    render,
    run_doctor,
)
from engine.ops.config import Config, parse_config
from tests.ops.conftest import RunningSim
from tests.support.keys import TestKey, new_ed25519_key, new_es256_key, new_exchange_key
from tests.support.leaks import observe


def _config(base_url: str, *, dry_run: bool = False) -> Config:
    return parse_config({"exchange": {"base_url": base_url}, "worker": {"dry_run": dry_run}})


def _env(key: TestKey, secret: str | None = None) -> dict[str, str]:
    return {"COINBASE_API_KEY": key.name, "COINBASE_API_SECRET": secret or key.private_key}


def _by_name(checks: list[Check]) -> dict[str, Check]:
    text = io.StringIO()
    render(checks, text)
    observe(text.getvalue(), "doctor output")
    worst: dict[str, Check] = {}
    rank = {Status.FAIL: 3, Status.WARN: 2, Status.OK: 1, Status.SKIP: 0}
    for check in checks:
        if check.name not in worst or rank[check.status] > rank[worst[check.name].status]:
            worst[check.name] = check
    return worst


@pytest.mark.parametrize("make_key", [new_es256_key, new_ed25519_key])
async def test_good_key_passes_every_check(running_sim: RunningSim, make_key: type[TestKey]) -> None:
    key = make_key()
    running_sim.sim.register_cdp_key(key.name, key.public_key_pem, {"view", "trade"})
    checks = await run_doctor(_config(running_sim.base_url), environ=_env(key))
    by_name = _by_name(checks)
    assert [c.status for c in checks] == [Status.OK] * len(checks), checks
    assert set(by_name) == {"credentials", "key format", "token", "clock", "read-only call", "permissions"}
    assert doctor_exit_code(checks) == 0


async def test_bad_format_fails_before_any_request(running_sim: RunningSim) -> None:
    key = new_es256_key()
    body = secrets.token_urlsafe(40)
    garbage = f"-----BEGIN EC PRIVATE KEY-----\n{body}\n-----END EC PRIVATE KEY-----"
    checks = await run_doctor(_config(running_sim.base_url), environ=_env(key, garbage))
    by_name = _by_name(checks)
    assert by_name["key format"].status is Status.FAIL
    assert by_name["read-only call"].status is Status.SKIP
    assert running_sim.sim.request_count(key.name) == 0
    assert doctor_exit_code(checks) == 2  # no key loaded: as `engine worker` exits then


async def test_exchange_key_given_as_cdp_key_is_the_wrong_key_type(running_sim: RunningSim) -> None:
    exchange = new_exchange_key()
    env = {"COINBASE_API_KEY": exchange.key, "COINBASE_API_SECRET": exchange.secret}
    checks = await run_doctor(_config(running_sim.base_url), environ=env)
    by_name = _by_name(checks)
    assert by_name["key format"].status is Status.FAIL
    assert by_name["key format"].fix == FIX_WRONG_TYPE


async def test_escaped_newlines_load_with_a_warning(running_sim: RunningSim) -> None:
    key = new_es256_key()
    running_sim.sim.register_cdp_key(key.name, key.public_key_pem, {"view", "trade"})
    checks = await run_doctor(_config(running_sim.base_url), environ=_env(key, key.forms["sec1_pem_escaped"]))
    by_name = _by_name(checks)
    assert by_name["key format"].status is Status.WARN
    assert by_name["key format"].fix == FIX_ESCAPED
    assert by_name["read-only call"].status is Status.OK
    assert doctor_exit_code(checks) == 0


async def test_unregistered_key_fails_the_read_only_call(running_sim: RunningSim) -> None:
    key = new_ed25519_key()
    checks = await run_doctor(_config(running_sim.base_url), environ=_env(key))
    by_name = _by_name(checks)
    assert by_name["key format"].status is Status.OK
    assert by_name["read-only call"].status is Status.FAIL
    assert by_name["read-only call"].fix == FIX_BAD_SIGNATURE
    assert by_name["permissions"].status is Status.SKIP
    assert doctor_exit_code(checks) == 1


async def test_view_only_key_cannot_run_a_trading_worker(running_sim: RunningSim) -> None:
    key = new_es256_key()
    running_sim.sim.register_cdp_key(key.name, key.public_key_pem, {"view"})
    checks = await run_doctor(_config(running_sim.base_url), environ=_env(key))
    by_name = _by_name(checks)
    assert by_name["read-only call"].status is Status.OK
    assert by_name["permissions"].status is Status.FAIL
    assert by_name["permissions"].fix == FIX_TRADE
    # the same key is exactly right for a worker that never trades
    dry = await run_doctor(_config(running_sim.base_url, dry_run=True), environ=_env(key))
    assert doctor_exit_code(dry) == 0
    assert _by_name(dry)["permissions"].status is Status.OK


async def test_least_privilege_warnings(running_sim: RunningSim) -> None:
    key = new_es256_key()
    running_sim.sim.register_cdp_key(key.name, key.public_key_pem, {"view", "trade", "transfer"})
    checks = await run_doctor(_config(running_sim.base_url, dry_run=True), environ=_env(key))
    permission_checks = [c for c in checks if c.name == "permissions"]
    assert {c.fix for c in permission_checks} == {FIX_TRANSFER, FIX_LEAST_TRADE}
    assert all(c.status is Status.WARN for c in permission_checks)
    assert doctor_exit_code(checks) == 0  # warnings, not failures


async def test_server_clock_offset_is_reported_with_the_fix(running_sim: RunningSim) -> None:
    key = new_es256_key()
    running_sim.sim.register_cdp_key(key.name, key.public_key_pem, {"view", "trade"})
    running_sim.sim.faults.clock_offset_s = 300.0
    checks = await run_doctor(_config(running_sim.base_url), environ=_env(key))
    by_name = _by_name(checks)
    assert by_name["clock"].status is Status.FAIL
    assert "+300" in by_name["clock"].summary or "+299" in by_name["clock"].summary
    assert by_name["clock"].fix == FIX_CLOCK
    # the engine compensated for the offset, so the key itself still proves good
    assert by_name["read-only call"].status is Status.OK
    assert doctor_exit_code(checks) == 1
    running_sim.sim.faults.clock_offset_s = 2.0
    small = _by_name(await run_doctor(_config(running_sim.base_url), environ=_env(key)))
    assert small["clock"].status is Status.WARN


async def test_unreachable_exchange_fails_clearly() -> None:
    key = new_es256_key()
    checks = await run_doctor(_config("http://127.0.0.1:9"), environ=_env(key), timeout_s=2.0)
    by_name = _by_name(checks)
    assert by_name["clock"].status is Status.FAIL
    assert "base_url" in by_name["clock"].fix


async def test_missing_credentials_say_where_to_put_them() -> None:
    checks = await run_doctor(_config("http://127.0.0.1:9"), environ={})
    by_name = _by_name(checks)
    assert by_name["credentials"].status is Status.FAIL
    assert "COINBASE_API_KEY" in by_name["credentials"].summary


def test_cli_reads_the_config_and_exits_nonzero_on_failure(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    key = new_es256_key()
    key_file = tmp_path / "cdp.json"
    key_file.write_text(json.dumps(key.portal_json()))
    key_file.chmod(0o600)
    config = tmp_path / "worker.toml"
    config.write_text(f'[credentials]\nsource = "file"\nfile = "{key_file.name}"\n')
    with pytest.raises(SystemExit) as exited:
        cli.main(["doctor", "--config", str(config), "--base-url", "http://127.0.0.1:9", "--timeout", "1"])
    assert exited.value.code == 1
    out = capsys.readouterr().out
    observe(out, "engine doctor stdout")
    assert "FAIL  clock" in out
    assert "fix:" in out
