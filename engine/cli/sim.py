"""`engine sim`: serve the embedded Coinbase simulator until SIGINT/SIGTERM."""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import signal
import ssl
import sys
from pathlib import Path
from typing import Any

from engine.errors import KeyFormatError
from engine.sim.app import Simulator
from engine.sim.config import RateLimits, SimConfig
from engine.sim.derivatives.config import Credits, DerivativesConfig
from engine.sim.faults import Faults
from engine.sim.keyfiles import public_key_from_file

_FAULT_FLAGS = (
    ("latency_ms", "added latency per request, ms"),
    ("jitter_ms", "random extra latency up to this, ms"),
    ("error_5xx_rate", "fraction of requests answered 503"),
    ("error_200_rate", "fraction of requests answered 200 with an error body, not served"),
    ("storm_429_rate", "fraction of requests answered 429 regardless of limits"),
    ("drop_after_accept_rate", "fraction of accepted orders whose connection is dropped before the response"),
    ("slow_response_rate", "fraction of responses held back --slow-response-s"),
    ("slow_response_s", "how long a slow response is held, s"),
    ("clock_offset_s", "server clock offset, s"),
    ("ws_drop_rate", "per-message probability a WebSocket is dropped"),
    ("ws_gap_rate", "per-message probability a WebSocket message is lost (a sequence gap)"),
)


def register(subparsers: Any) -> None:
    sim = subparsers.add_parser("sim", description="Serve the embedded Coinbase simulator.")
    sim.add_argument("--host", default="127.0.0.1")
    sim.add_argument("--port", type=int, default=0, help="0 picks a free port (printed when ready)")
    sim.add_argument("--key", action="append", default=[], type=Path, help="portal key file (repeatable)")
    sim.add_argument(
        "--permissions", default="view,trade", help="scopes for every --key: view,trade,transfer"
    )
    sim.add_argument(
        "--allowed-ips", default=None, help="comma-separated IPs/CIDRs every --key is limited to"
    )
    sim.add_argument(
        "--exchange-key-file",
        action="append",
        default=[],
        type=Path,
        help="Exchange HMAC credentials as JSON {key, secret, passphrase} (repeatable)",
    )
    sim.add_argument("--tls-cert", type=Path)
    sim.add_argument("--tls-key", type=Path)
    sim.add_argument("--seed", type=int, default=0)
    sim.add_argument("--no-rate-limit", action="store_true", help="lift every rate limit")
    sim.add_argument(
        "--private-rate", type=float, default=30.0, help="Advanced Trade private requests/s per key"
    )
    sim.add_argument(
        "--public-rate", type=float, default=10.0, help="Advanced Trade public requests/s per IP"
    )
    sim.add_argument(
        "--html-429", action="store_true", help="answer 429 with an HTML page, as seen in the wild"
    )
    sim.add_argument("--tick-interval", type=float, default=0.25, help="seconds per market tick (0: frozen)")
    sim.add_argument(
        "--funding-interval", type=float, default=60.0, help="perpetuals: wall seconds per funding hour"
    )
    sim.add_argument(
        "--token-lifetime", type=float, default=900.0, help="perpetuals gateway: access token expires_in, s"
    )
    for name, text in _FAULT_FLAGS:
        sim.add_argument("--" + name.replace("_", "-"), type=float, default=0.0, help=text)
    sim.set_defaults(run=run_sim)


def build_simulator(args: argparse.Namespace) -> Simulator:
    faults = Faults(**{name: getattr(args, name) for name, _ in _FAULT_FLAGS})
    limits = RateLimits(
        enabled=not args.no_rate_limit,
        private_per_s=args.private_rate,
        private_burst=args.private_rate,
        public_per_s=args.public_rate,
        public_burst=args.public_rate,
    )
    config = SimConfig(
        seed=args.seed,
        rate_limits=limits,
        html_429=args.html_429,
        tick_interval_s=args.tick_interval,
        faults=faults,
        derivatives=DerivativesConfig(
            funding_interval_s=args.funding_interval,
            token_lifetime_s=args.token_lifetime,
            credits=Credits(enabled=not args.no_rate_limit),
        ),
    )
    sim = Simulator(config)
    permissions = {p.strip() for p in args.permissions.split(",") if p.strip()}
    allowed = [ip.strip() for ip in args.allowed_ips.split(",")] if args.allowed_ips else None
    for path in args.key:
        name, public_pem = public_key_from_file(path)
        sim.register_cdp_key(name, public_pem, permissions, allowed)
    for path in args.exchange_key_file:
        try:
            creds = json.loads(path.read_text())
            sim.register_exchange_key(
                creds["key"], creds["secret"], creds["passphrase"], permissions, allowed
            )
        except (OSError, ValueError, KeyError, TypeError):
            raise KeyFormatError(f"{path}: expected JSON with key, secret (base64) and passphrase") from None
    return sim


async def _serve(sim: Simulator, host: str, port: int, ssl_context: ssl.SSLContext | None) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    async with sim.serve(host, port, ssl_context) as base_url:
        # a long-lived server allocating per request: move start-up objects out of the collector's sight and
        # collect the young generation less often (the request path creates no reference cycles of note)
        gc.collect()
        gc.freeze()
        gc.set_threshold(20_000, 20, 20)
        print(f"engine sim listening on {base_url}", flush=True)
        await stop.wait()
    print("engine sim stopped", flush=True)


def run_sim(args: argparse.Namespace) -> int:
    try:
        sim = build_simulator(args)
    except (KeyFormatError, ValueError) as exc:
        print(f"engine sim: {exc}", file=sys.stderr)
        return 2
    ssl_context = None
    if args.tls_cert or args.tls_key:
        if not (args.tls_cert and args.tls_key):
            print("engine sim: --tls-cert and --tls-key go together", file=sys.stderr)
            return 2
        ssl_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ssl_context.load_cert_chain(args.tls_cert, args.tls_key)
    try:
        import uvloop
    except ImportError:  # Windows: the standard loop
        asyncio.run(_serve(sim, args.host, args.port, ssl_context))
    else:
        uvloop.run(_serve(sim, args.host, args.port, ssl_context))
    return 0
