"""Simulator headroom: requests/s served by `engine sim` (a subprocess, one process, every request's JWT
verified by the Rust extension) when driven by one bare aiohttp client process with pre-minted tokens.

Beside the achieved rate (served_rps), CPU time on each side gives each side's capacity: requests per
CPU-second of the simulator process (sim_capacity_rps) vs. of the client process (client_capacity_rps); their
ratio is sim_vs_client. The simulator is not the bottleneck when its capacity is at least the client's.
Correctness first: every response must be 200 and every order must be in the simulator's ledger, once.

For steadier figures each endpoint is driven twice: a warm-up pass of WARMUP requests (fresh connections and
code paths on both sides; not measured), then the measured pass of REQUESTS. The measured pass is long
enough (about a CPU-second on each side) that /proc's 10 ms CPU-time ticks move the ratio by about 1%, not the
7% they did over 3000 requests. Each pass opens its own 64 connections: connection set-up stays measured.
Untimed (--benchmark-disable, as CI runs it) the same checks run on 2,000 requests.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import secrets
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ed25519

from engine.sim.keyfiles import generate_key_file
from tests.support.simproc import running_sim

REQUESTS = 20_000
WARMUP = 2_000
# with timing off (CI's --benchmark-disable) the benchmark still checks correctness, on fewer requests
CHECK_ONLY_REQUESTS, CHECK_ONLY_WARMUP = 2_000, 200
CONCURRENCY = 64
ACCOUNTS = "/api/v3/brokerage/accounts"
ORDERS = "/api/v3/brokerage/orders"


@dataclass
class SimProcess:
    process: subprocess.Popen[str]
    base_url: str
    key_name: str
    private_key: ed25519.Ed25519PrivateKey

    @property
    def host(self) -> str:
        return self.base_url.split("://", 1)[1]

    def cpu_seconds(self) -> float:
        fields = Path(f"/proc/{self.process.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@pytest.fixture(scope="module")
def sim_process(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SimProcess]:
    key_file = tmp_path_factory.mktemp("sim") / "key.json"
    name = generate_key_file("ed25519", key_file)
    seed = base64.b64decode(json.loads(key_file.read_text())["privateKey"])[:32]
    with running_sim(key_file, "--no-rate-limit") as sim:
        private_key = ed25519.Ed25519PrivateKey.from_private_bytes(seed)
        yield SimProcess(sim.process, sim.base_url, name, private_key)


def mint_tokens(sim: SimProcess, method: str, path: str, count: int) -> list[str]:
    now = int(time.time())
    claims = {
        "sub": sim.key_name,
        "iss": "cdp",
        "nbf": now,
        "exp": now + 120,
        "uri": f"{method} {sim.host}{path}",
    }
    return [
        jwt.encode(
            claims,
            sim.private_key,
            algorithm="EdDSA",
            headers={"kid": sim.key_name, "nonce": secrets.token_hex()},
        )
        for _ in range(count)
    ]


async def drive(
    sim: SimProcess, method: str, path: str, tokens: list[str], bodies: list[bytes] | None
) -> list[int]:
    statuses: list[int] = []
    connector = aiohttp.TCPConnector(limit=CONCURRENCY)
    async with aiohttp.ClientSession(connector=connector) as http:
        queue = list(range(len(tokens)))

        async def worker() -> None:
            while queue:
                i = queue.pop()
                headers = {"Authorization": f"Bearer {tokens[i]}", "Content-Type": "application/json"}
                data = bodies[i] if bodies is not None else None
                async with http.request(method, sim.base_url + path, data=data, headers=headers) as response:
                    await response.read()
                    statuses.append(response.status)

        await asyncio.gather(*(worker() for _ in range(CONCURRENCY)))
    return statuses


def passes(benchmark: Any) -> tuple[int, int]:
    """(warm-up requests, measured requests): the full counts when timed."""
    return (CHECK_ONLY_WARMUP, CHECK_ONLY_REQUESTS) if benchmark.disabled else (WARMUP, REQUESTS)


def run_load(
    benchmark: Any, sim: SimProcess, method: str, path: str, bodies: list[bytes] | None
) -> list[int]:
    warmup, requests = passes(benchmark)
    warmup_tokens = mint_tokens(sim, method, path, warmup)
    tokens = mint_tokens(sim, method, path, requests)
    warmup_bodies = bodies[:warmup] if bodies is not None else None
    measured_bodies = bodies[warmup:] if bodies is not None else None
    assert asyncio.run(drive(sim, method, path, warmup_tokens, warmup_bodies)) == [200] * warmup
    result: dict[str, Any] = {}

    def timed() -> None:
        server_cpu, client_cpu, wall = sim.cpu_seconds(), time.process_time(), time.perf_counter()
        result["statuses"] = asyncio.run(drive(sim, method, path, tokens, measured_bodies))
        result["wall"] = time.perf_counter() - wall
        result["server_cpu"] = sim.cpu_seconds() - server_cpu
        result["client_cpu"] = time.process_time() - client_cpu

    benchmark.pedantic(timed, rounds=1, iterations=1)
    served = requests / result["wall"]
    sim_capacity = requests / max(result["server_cpu"], 1e-9)
    client_capacity = requests / max(result["client_cpu"], 1e-9)
    benchmark.extra_info.update(
        {
            "requests": requests,
            "served_rps": round(served),
            "sim_capacity_rps": round(sim_capacity),
            "client_capacity_rps": round(client_capacity),
            "sim_vs_client": round(sim_capacity / client_capacity, 2),
            "sim_cpu_s": round(result["server_cpu"], 3),
            "client_cpu_s": round(result["client_cpu"], 3),
        }
    )
    print(f"\n{method} {path}: {benchmark.extra_info}")
    statuses: list[int] = result["statuses"]
    return statuses


def test_sim_get_accounts_throughput(benchmark: Any, sim_process: SimProcess) -> None:
    statuses = run_load(benchmark, sim_process, "GET", ACCOUNTS, None)
    assert statuses == [200] * passes(benchmark)[1]


def test_sim_create_order_throughput(benchmark: Any, sim_process: SimProcess) -> None:
    run = secrets.token_hex(4)
    warmup, requests = passes(benchmark)
    # The warm-up pass places the first WARMUP orders, the measured pass the rest. Each rests far below the
    # market holding 0.10 USD, so 22,000 of them use 2% of the simulator's starting 100,000 USD.
    bodies = [
        json.dumps(
            {
                "client_order_id": f"bench-{run}-{i}",
                "product_id": "BTC-USD",
                "side": "BUY",
                "order_configuration": {"limit_limit_gtc": {"base_size": "0.0001", "limit_price": "1000.00"}},
            }
        ).encode()
        for i in range(warmup + requests)
    ]
    statuses = run_load(benchmark, sim_process, "POST", ORDERS, bodies)
    assert statuses == [200] * requests

    async def ledger() -> list[str]:
        async with (
            aiohttp.ClientSession() as http,
            http.get(sim_process.base_url + "/sim/ledger") as response,
        ):
            return [o["client_order_id"] for o in (await response.json())["orders"]]

    placed = [cid for cid in asyncio.run(ledger()) if cid.startswith(f"bench-{run}-")]
    assert sorted(placed) == sorted(f"bench-{run}-{i}" for i in range(warmup + requests))
