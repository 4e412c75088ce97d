"""The example strategy a user copies runs against the simulator and leaves nothing open."""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path

from engine.sim import SimConfig, Simulator
from tests.support import leaks
from tests.support.keys import new_ed25519_key

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "quote_around_mid.py"


async def test_quote_around_mid_runs_against_the_simulator(tmp_path: Path) -> None:
    sim = Simulator(SimConfig(seed=2, tick_interval_s=0.05, heartbeat_interval_s=0.5))
    key = new_ed25519_key()
    sim.register_cdp_key(key.name, key.public_key_pem)
    key_file = tmp_path / "key.json"
    key_file.write_text(json.dumps(key.portal_json()))
    async with sim.serve() as base_url:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            str(EXAMPLE),
            "--key",
            str(key_file),
            "--base-url",
            base_url,
            "--journal",
            str(tmp_path / "mm.db"),
            "--seconds",
            "2",
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        out, err = await asyncio.wait_for(process.communicate(), 60)
    text = out.decode() + err.decode()
    leaks.observe(text)
    assert process.returncode == 0, text[-3000:]
    quotes = [o for o in sim.ledger if o.client_order_id.startswith("mm1-")]
    assert {o.side for o in quotes} == {"BUY", "SELL"}
    assert all(o.status != "OPEN" for o in quotes)  # the kill switch took every quote off the book
    assert "done:" in text
