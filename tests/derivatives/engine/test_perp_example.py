"""The perpetuals example a user copies: it quotes on the gateway simulator, and a SIGTERM drains it (its
quotes cancelled by the engine, not by the gateway's cancel-on-disconnect) before it exits cleanly."""

from __future__ import annotations

import asyncio
import json
import signal
import sys
from pathlib import Path

from engine.sim import SimConfig, Simulator
from engine.sim.derivatives.config import Credits, DerivativesConfig
from tests.derivatives.engine.conftest import until
from tests.support import leaks
from tests.support.keys import new_ed25519_key

EXAMPLE = Path(__file__).resolve().parents[3] / "examples" / "perp_quoter.py"


async def test_the_perp_quoter_quotes_and_a_sigterm_drains_it(tmp_path: Path) -> None:
    sim = Simulator(
        SimConfig(
            seed=3,
            tick_interval_s=0.05,
            heartbeat_interval_s=60.0,
            derivatives=DerivativesConfig(credits=Credits(enabled=False)),
        )
    )
    key = new_ed25519_key()
    sim.register_cdp_key(key.name, key.public_key_pem)
    key_file = tmp_path / "key.json"
    key_file.write_text(json.dumps(key.portal_json()))
    desk = sim.derivatives.desk
    async with sim.serve() as base_url:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            str(EXAMPLE),
            "--key",
            str(key_file),
            "--base-url",
            base_url,
            "--journal",
            str(tmp_path / "perp.db"),
            "--seconds",
            "120",
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        try:
            await until(
                lambda: {o.direction for o in desk.orders.values() if o.is_live} == {"buy", "sell"},
                timeout=30.0,
                what="the example's bid and ask",
            )
            process.send_signal(signal.SIGTERM)
            out, err = await asyncio.wait_for(process.communicate(), 60)
        finally:
            if process.returncode is None:
                process.kill()
                await process.wait()
        text = out.decode() + err.decode()
        leaks.observe(text)
        assert process.returncode == 0, text[-3000:]
        quotes = [o for o in desk.orders.values() if o.label.startswith("perp1-")]
        assert quotes
        assert not any(o.is_live for o in quotes)
        assert {o.cancel_reason for o in quotes if o.order_state == "cancelled"} == {"user_request"}
        assert "drained:" in text
