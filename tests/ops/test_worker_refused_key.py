"""A key the exchange refuses at start-up (unknown or deleted, the wrong public key, a disallowed IP, no
permissions) ends `engine worker` as every other bad key does: one "cannot start: ..." line that points at
`engine doctor`, exit 2, no traceback. A real worker process against the simulator, one case a row."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from engine.sim import Simulator
from tests.ops.conftest import RunningSim
from tests.ops.worker_process import ROOT, worker_toml
from tests.support.keys import TestKey, new_ed25519_key, new_es256_key, new_webhook_secret
from tests.support.leaks import observe


def _unregistered(sim: Simulator, key: TestKey) -> None:
    """Never registered, or deleted since: the exchange does not know the key's name."""


def _wrong_public_key(sim: Simulator, key: TestKey) -> None:
    sim.register_cdp_key(key.name, new_es256_key().public_key_pem, {"view", "trade"})


def _other_ip_only(sim: Simulator, key: TestKey) -> None:
    sim.register_cdp_key(key.name, key.public_key_pem, {"view", "trade"}, allowed_ips=["203.0.113.7/32"])


def _no_permissions(sim: Simulator, key: TestKey) -> None:
    sim.register_cdp_key(key.name, key.public_key_pem, set())


CASES: list[tuple[str, Callable[[], TestKey], Callable[[Simulator, TestKey], None]]] = [
    ("unregistered-es256", new_es256_key, _unregistered),
    ("unregistered-ed25519", new_ed25519_key, _unregistered),
    ("wrong-public-key", new_es256_key, _wrong_public_key),
    ("other-ip-only", new_es256_key, _other_ip_only),
    ("no-permissions", new_ed25519_key, _no_permissions),
]


@pytest.mark.parametrize(("make_key", "register"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
async def test_a_key_the_exchange_refuses_stops_the_worker_cleanly(
    running_sim: RunningSim,
    tmp_path: Path,
    make_key: Callable[[], TestKey],
    register: Callable[[Simulator, TestKey], None],
) -> None:
    key = make_key()
    register(running_sim.sim, key)
    key.write_portal_file(tmp_path / "cdp_api_key.json")
    config = tmp_path / "worker.toml"
    config.write_text(worker_toml(running_sim.base_url))
    env = {**os.environ, "ENGINE_WEBHOOK_SECRET": new_webhook_secret(), "PYTHONPATH": str(ROOT)}
    for name in ("COINBASE_API_KEY", "COINBASE_API_SECRET", "COINBASE_API_KEY_FILE"):
        env.pop(name, None)
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "engine", "worker", "--config", str(config),
        env=env, cwd=str(tmp_path), stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    try:
        async with asyncio.timeout(60):
            _, stderr_bytes = await process.communicate()
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    stderr = stderr_bytes.decode(errors="replace")
    observe(stderr, "worker stderr")
    assert process.returncode == 2, stderr[-3000:]
    assert "Traceback" not in stderr, stderr[-3000:]
    records = [json.loads(line) for line in stderr.splitlines() if line.startswith("{")]
    cannot_start = [r for r in records if str(r.get("msg", "")).startswith("cannot start: ")]
    assert len(cannot_start) == 1, stderr[-3000:]
    assert "the exchange refused key" in str(cannot_start[0]["msg"])
    assert not any("exc" in r for r in records)  # no record carries a traceback
    assert f"engine doctor --config {config}" in stderr
    assert key.private_key not in stderr
