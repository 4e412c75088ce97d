"""A plain `pip install coinbase-engine`, without the `[redis]` extra, runs all that does not use Redis.

Each command runs in a subprocess whose `import redis` fails as it does where the package is absent
(tests/support/without_redis/sitecustomize.py): `keygen`, `sim`, `doctor`, `demo`, and a worker with webhook
intake against that simulator. A config that does ask for Redis is refused at start, naming the extra.
"""

from __future__ import annotations

import os
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import aiohttp
import pytest

from tests.ops.worker_process import WorkerProcess, post_signal, resting_buy, worker_toml
from tests.support import leaks
from tests.support.keys import new_webhook_secret

ROOT = Path(__file__).resolve().parents[1]
WITHOUT_REDIS = ROOT / "tests" / "support" / "without_redis"
READY = "engine sim listening on "


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": os.pathsep.join((str(WITHOUT_REDIS), str(ROOT)))}


def _engine(*args: str, cwd: Path | None = None, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    completed = subprocess.run(
        [sys.executable, "-m", "engine", *args],
        env=_env(), cwd=cwd, capture_output=True, text=True, timeout=timeout, check=False,
    )  # fmt: skip
    leaks.observe(completed.stdout, f"engine {args[0]} stdout")
    leaks.observe(completed.stderr, f"engine {args[0]} stderr")
    return completed


def test_redis_is_hidden_from_the_subprocess() -> None:
    completed = subprocess.run(
        [sys.executable, "-c", "import redis.asyncio"],
        env=_env(),
        capture_output=True,
        text=True,
        check=False,
    )
    assert completed.returncode == 1
    assert "ModuleNotFoundError: No module named 'redis'" in completed.stderr


def test_doctor_help() -> None:
    completed = _engine("doctor", "--help")
    assert completed.returncode == 0, completed.stderr
    assert "usage: engine doctor" in completed.stdout


def test_demo() -> None:
    completed = _engine("demo", "--duration", "1", timeout=90)
    assert completed.returncode == 0, completed.stderr
    assert "engine demo:" in completed.stdout


async def test_keygen_sim_and_a_webhook_worker(tmp_path: Path) -> None:
    key_file = tmp_path / "cdp_api_key.json"
    keygen = _engine("keygen", "--out", str(key_file))
    assert keygen.returncode == 0, keygen.stderr
    assert key_file.is_file()

    with (tmp_path / "sim.stderr").open("w+") as sim_errors:
        sim = subprocess.Popen(
            [sys.executable, "-m", "engine", "sim", "--port", "0", "--key", str(key_file)],
            env=_env(), stdout=subprocess.PIPE, stderr=sim_errors, text=True,
        )  # fmt: skip
        try:
            assert sim.stdout is not None
            line = sim.stdout.readline()
            assert line.startswith(READY), f"engine sim did not start: {line!r}"
            base_url = line[len(READY) :].strip()
            config = tmp_path / "worker.toml"
            config.write_text(worker_toml(base_url))
            secret = new_webhook_secret()
            worker = await WorkerProcess.start(config, secret, pythonpath=[WITHOUT_REDIS])
            try:
                async with aiohttp.ClientSession() as session:
                    async with session.get(f"{worker.ops_url}/healthz") as response:
                        assert response.status == 200
                    async with session.get(f"{base_url}/api/v3/brokerage/market/products/BTC-USD") as product:
                        mid = (await product.json(content_type=None))["price"]
                    body = resting_buy("no-redis-1", Decimal(mid))
                    assert await post_signal(session, worker.webhook_url, secret, body) == 202
                assert await worker.stop() == 0
            finally:
                await worker.kill()
        finally:
            sim.terminate()
            sim.wait(timeout=10)
            sim_errors.seek(0)
            leaks.observe(sim_errors.read(), "engine sim stderr")


@pytest.mark.parametrize(
    ("table", "setting"),
    [("limits", "limits.redis_url"), ("signals", "signals.redis_url")],
)
def test_a_redis_config_is_refused_naming_the_extra(tmp_path: Path, table: str, setting: str) -> None:
    config = tmp_path / "worker.toml"
    config.write_text(f'[{table}]\nredis_url = "redis://127.0.0.1:6379/0"\n')
    completed = _engine("worker", "--config", str(config), cwd=tmp_path)
    assert completed.returncode == 2, completed.stderr
    assert f"{setting} is set but the redis package is not installed" in completed.stderr
    assert "pip install 'coinbase-engine[redis]'" in completed.stderr
    assert "Traceback" not in completed.stderr
