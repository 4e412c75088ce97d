"""`engine demo`: the engine against the in-process simulator, fed a synthetic signal stream (`make demo`)."""

from __future__ import annotations

import argparse
from typing import Any


def register(subparsers: Any) -> None:
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "demo",
        description=(
            "Start the exchange simulator in-process, a worker with a key generated for this run, and feed "
            "it a seeded synthetic signal stream through the HMAC-authenticated webhook; show a live "
            "progress line, then orders, fills, refusals by risk rule, 429s and latency percentiles."
        ),
    )
    parser.add_argument(
        "--duration", type=float, default=30.0, metavar="S", help="seconds of signals (default 30)"
    )
    parser.add_argument("--seed", type=int, default=7, help="seed for the market and the signals (default 7)")
    parser.add_argument(
        "--rate",
        type=float,
        default=None,
        metavar="N",
        help="signals per second (default 15; 8 on Exchange, whose private budget is 15 requests/s)",
    )
    parser.add_argument(
        "--venue",
        choices=("advanced", "exchange"),
        default="advanced",
        help="the Coinbase venue to trade on: Advanced Trade (default) or Coinbase Exchange",
    )
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from engine.demo import main

    rate = args.rate if args.rate is not None else (8.0 if args.venue == "exchange" else 15.0)
    if args.duration <= 0 or rate <= 0:
        raise SystemExit("engine demo: --duration and --rate must be positive")
    return main(args.duration, args.seed, rate, args.venue)
