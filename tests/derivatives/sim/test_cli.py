"""`engine sim` serves the gateway on its one port, with the gateway's flags."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import aiohttp

from tests.sim.conftest import mint
from tests.support.keys import new_ed25519_key
from tests.support.simproc import running_sim


async def test_engine_sim_serves_the_gateway(tmp_path: Path) -> None:
    key = new_ed25519_key()
    key_file = key.write_portal_file(tmp_path / "key.json")
    with running_sim(key_file, "--token-lifetime", "30", "--tick-interval", "0") as sim:
        async with aiohttp.ClientSession() as http:
            body = {
                "jsonrpc": "2.0",
                "method": "public/auth",
                "params": {"grant_type": "coinbase_cdp", "token": mint(key, None)},
            }
            async with http.post(sim.base_url + "/api/v2/public/auth", json=body) as response:
                auth = await response.json()
            assert auth["result"]["expires_in"] == 30
            async with http.ws_connect(sim.base_url + "/streams/ws/api/v2") as ws:
                await ws.send_json(
                    {
                        "jsonrpc": "2.0",
                        "id": 1,
                        "method": "public/subscribe",
                        "params": {"channels": ["book.SOL_USDC-PERPETUAL.100ms"]},
                    }
                )
                frames = [await asyncio.wait_for(ws.receive_json(), 10) for _ in range(2)]
    assert frames[0]["result"] == ["book.SOL_USDC-PERPETUAL.100ms"]
    assert frames[1]["params"]["data"]["type"] == "snapshot"


async def test_a_bad_gateway_flag_is_refused(tmp_path: Path) -> None:
    key_file = new_ed25519_key().write_portal_file(tmp_path / "key.json")
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "engine",
        "sim",
        "--key",
        str(key_file),
        "--token-lifetime",
        "0",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    _, err = await asyncio.wait_for(process.communicate(), 30)
    assert process.returncode == 2
    assert b"token lifetime" in err
