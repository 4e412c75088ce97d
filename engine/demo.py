"""`engine demo`: the whole engine against the in-process simulator, fed a synthetic signal stream.

Everything is real except the exchange: a key is generated for this run (never stored) and registered with the
simulator, a worker starts from a config as `engine worker` would, and a seeded stream of signals arrives over
HTTP through the HMAC-authenticated webhook: market and limit orders, some too large (the risk gate's size
rule), some priced far from the market (the price band), some sent twice (refused as replays). The simulator
injects a light 429 storm, so the client's backoff shows too. At the end: orders, fills, refusals by rule,
429s, and latency percentiles, signal to acknowledgement and placing the order (risk, journal, request).

`venue="exchange"` (`engine demo --venue exchange`) trades on Coinbase Exchange instead: an HMAC key with its
passphrase is generated and registered, and the worker runs with `[exchange].venue = "exchange"`.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import random
import secrets
import sys
import tempfile
import time
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import IO, Any

import aiohttp
import orjson
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from engine.ops.config import parse_config
from engine.ops.metrics import LatencySamples
from engine.signals.auth import SIGNATURE_HEADER, TIMESTAMP_HEADER, SignalAuthenticator
from engine.worker import Worker

__all__ = ["DemoSummary", "run_demo"]

PRODUCTS = ("BTC-USD", "ETH-USD")
_VENUE_NAMES = {"advanced": "Advanced Trade", "exchange": "Coinbase Exchange"}
log = logging.getLogger("engine.demo")


@dataclass
class DemoSummary:
    venue: str = "advanced"
    duration_s: float = 0.0
    signals_sent: int = 0
    signals_accepted: int = 0
    replays_refused: int = 0
    orders: dict[str, int] = field(default_factory=dict)
    fills: int = 0
    refusals: dict[str, int] = field(default_factory=dict)
    rate_limited: int = 0
    cancelled_on_exit: int = 0
    signal_to_ack: dict[float, float] = field(default_factory=dict)
    order_request: dict[float, float] = field(default_factory=dict)

    def render(self) -> str:
        def pct(samples: dict[float, float]) -> str:
            if not samples:
                return "no samples"
            return "  ".join(f"p{round(q * 100)} {v * 1e3:.2f} ms" for q, v in samples.items())

        refusals = ", ".join(f"{rule} {n}" for rule, n in sorted(self.refusals.items())) or "none"
        orders = ", ".join(f"{outcome} {n}" for outcome, n in sorted(self.orders.items())) or "none"
        return "\n".join(
            [
                f"engine demo: {self.duration_s:.1f} s against the simulator ({_VENUE_NAMES[self.venue]})",
                f"  signals    {self.signals_sent} sent, {self.signals_accepted} accepted, "
                f"{self.replays_refused} replays refused",
                f"  orders     {orders}",
                f"  fills      {self.fills}",
                f"  refusals   {refusals}",
                f"  429s       {self.rate_limited} (retried by the client)",
                f"  cancelled  {self.cancelled_on_exit} open orders on exit",
                f"  latency    signal -> order acknowledged:            {pct(self.signal_to_ack)}",
                f"             order placed (risk, journal, request): {pct(self.order_request)}",
            ]
        )


def _new_key() -> tuple[str, str, str]:
    """(name, private key PEM, public key PEM): made for this run, held in memory only."""
    private = ec.generate_private_key(ec.SECP256R1())
    pem = private.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    ).decode()
    public = (
        private.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    rng = secrets.token_hex
    return f"organizations/demo-{rng(4)}/apiKeys/{rng(8)}", pem, public


def _new_exchange_key() -> tuple[str, str, str]:
    """(key, base64 secret, passphrase) of a Coinbase Exchange key made for this run, in memory only."""
    return (
        secrets.token_hex(16),
        base64.b64encode(secrets.token_bytes(64)).decode(),
        secrets.token_urlsafe(12),
    )


def _signal(rng: random.Random, index: int, mids: dict[str, Decimal]) -> dict[str, Any]:
    product_id = rng.choice(PRODUCTS)
    mid = mids[product_id]
    side = rng.choice(("BUY", "SELL"))
    unit = Decimal("0.001") if product_id == "BTC-USD" else Decimal("0.01")
    size = unit * rng.randint(1, 20)
    roll = rng.random()
    document: dict[str, Any] = {"id": f"demo-{index:06d}", "product_id": product_id, "side": side}
    if roll < 0.08:  # too large: the order-size rule
        document.update(order_type="market", size=str(unit * 5000))
    elif roll < 0.14:  # priced 20% away from the market: the price band
        away = Decimal("0.8") if side == "BUY" else Decimal("1.2")
        document.update(
            order_type="limit", size=str(size), limit_price=str((mid * away).quantize(Decimal("0.01")))
        )
    elif roll < 0.55:
        document.update(order_type="market", size=str(size))
    else:  # a limit order near the touch: some cross at once, some rest and fill as the price walks
        offset = Decimal(rng.uniform(-0.002, 0.002)).quantize(Decimal("0.00001"))
        price = (mid * (1 + offset)).quantize(Decimal("0.01"))
        document.update(order_type="limit", size=str(size), limit_price=str(price))
    return document


class _Progress:
    """One line rewritten with \\r on a terminal; a plain line every few seconds otherwise."""

    def __init__(self, stream: IO[str]) -> None:
        self._stream = stream
        self._tty = stream.isatty()
        self._last_plain = 0.0

    def update(self, text: str) -> None:
        if self._tty:
            self._stream.write("\r\x1b[2K" + text)
            self._stream.flush()
        elif time.monotonic() - self._last_plain >= 2.0:
            self._last_plain = time.monotonic()
            print(text, file=self._stream, flush=True)

    def done(self) -> None:
        if self._tty:
            self._stream.write("\n")
            self._stream.flush()


async def run_demo(
    duration_s: float = 30.0,
    *,
    seed: int = 7,
    rate_per_s: float = 15.0,
    stream: IO[str] | None = None,
    venue: str = "advanced",
) -> DemoSummary:
    from engine.sim import Faults, SimConfig, Simulator

    if venue not in ("advanced", "exchange"):
        raise ValueError(f"venue must be 'advanced' or 'exchange', got {venue!r}")
    out = stream or sys.stdout
    rng = random.Random(seed)
    webhook_secret = secrets.token_urlsafe(24)
    sim = Simulator(SimConfig(seed=seed, tick_interval_s=0.05, faults=Faults(storm_429_rate=0.005)))
    environ = {"ENGINE_WEBHOOK_SECRET": webhook_secret}
    if venue == "exchange":
        key, secret, passphrase = _new_exchange_key()
        sim.register_exchange_key(key, secret, passphrase, {"view", "trade"})
        environ.update(
            COINBASE_EXCHANGE_KEY=key,
            COINBASE_EXCHANGE_SECRET=secret,
            COINBASE_EXCHANGE_PASSPHRASE=passphrase,
        )
    else:
        name, private_pem, public_pem = _new_key()
        sim.register_cdp_key(name, public_pem, {"view", "trade"})
        environ.update(COINBASE_API_KEY=name, COINBASE_API_SECRET=private_pem)
    summary = DemoSummary(venue=venue)
    with tempfile.TemporaryDirectory(prefix="engine-demo-") as workdir:
        async with sim.serve(host="127.0.0.1", port=0) as base_url:
            config = parse_config(
                {
                    "exchange": {"venue": venue, "base_url": base_url, "request_timeout_s": 5.0},
                    "risk": {
                        "products": list(PRODUCTS),
                        "max_order_size": "0.5",
                        "price_band": "0.05",
                        "max_open_orders_total": 200,
                        "product": {"ETH-USD": {"max_order_size": "5"}},
                    },
                    "signals": {"port": 0},
                    "metrics": {"enabled": False},
                    "journal": {"path": str(Path(workdir) / "journal.sqlite")},
                    "worker": {"concurrency": 32, "drain_timeout_s": 10.0},
                }
            )
            worker = Worker(config, environ=environ)
            await worker.start()
            try:
                await _feed(worker, sim, rng, webhook_secret, duration_s, rate_per_s, summary, _Progress(out))
            finally:
                await worker.stop()
    metrics = worker.metrics
    summary.orders = {k: int(v) for k, v in metrics.labelled("engine_orders_total", "outcome").items()}
    summary.refusals = {k: int(v) for k, v in metrics.labelled("engine_risk_refusals_total", "rule").items()}
    summary.fills = int(metrics.value("engine_fills_total"))
    summary.rate_limited = int(metrics.value("engine_rate_limited_total"))
    summary.cancelled_on_exit = worker.stats.cancelled_on_exit
    summary.signal_to_ack = _percentiles(worker.stats.signal_to_ack)
    summary.order_request = _percentiles(worker.stats.order_request)
    return summary


def _percentiles(samples: LatencySamples) -> dict[float, float]:
    return samples.percentiles((0.5, 0.9, 0.99))


async def _feed(
    worker: Worker,
    sim: Any,
    rng: random.Random,
    webhook_secret: str,
    duration_s: float,
    rate_per_s: float,
    summary: DemoSummary,
    progress: _Progress,
) -> None:
    auth = SignalAuthenticator([webhook_secret])
    url = f"{worker.webhook_url}/signals"
    started = time.monotonic()
    interval = 1.0 / rate_per_s
    index = 0
    recent: list[bytes] = []
    async with aiohttp.ClientSession() as session:
        while (elapsed := time.monotonic() - started) < duration_s:
            mids = {p: sim.markets[p].mid for p in PRODUCTS}
            if recent and rng.random() < 0.03:
                body = rng.choice(recent)  # the platform sending a signal twice
            else:
                body = orjson.dumps(_signal(rng, index, mids))
                index += 1
                recent = [*recent[-20:], body]
            timestamp, signature = auth.sign(body)
            headers = {
                TIMESTAMP_HEADER: timestamp,
                SIGNATURE_HEADER: signature,
                "Content-Type": "application/json",
            }
            async with session.post(url, data=body, headers=headers) as response:
                summary.signals_sent += 1
                if response.status == 202:
                    summary.signals_accepted += 1
                elif response.status == 409:
                    summary.replays_refused += 1
            metrics = worker.metrics
            acked = int(metrics.value("engine_orders_total", {"outcome": "acknowledged"}))
            refused = int(sum(metrics.labelled("engine_risk_refusals_total", "rule").values()))
            progress.update(
                f"{elapsed:5.1f}/{duration_s:.0f} s  signals {summary.signals_sent}  orders {acked}  "
                f"fills {int(metrics.value('engine_fills_total'))}  refused {refused}  "
                f"429s {int(metrics.value('engine_rate_limited_total'))}"
            )
            await asyncio.sleep(max(0.0, started + (summary.signals_sent * interval) - time.monotonic()))
    progress.done()
    summary.duration_s = time.monotonic() - started


def main(duration_s: float, seed: int, rate_per_s: float, venue: str = "advanced") -> int:
    logging.basicConfig(level=logging.ERROR, format="%(levelname)s %(name)s: %(message)s")
    summary = asyncio.run(run_demo(duration_s, seed=seed, rate_per_s=rate_per_s, venue=venue))
    print(summary.render())
    return 0
