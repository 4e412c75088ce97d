"""`engine doctor [--config FILE]`: check a key before trusting a worker to it."""

from __future__ import annotations

import argparse
import asyncio
import sys
from typing import Any

import msgspec

from engine.errors import ConfigError
from engine.ops.config import Config, load_config, parse_config


def register(subparsers: Any) -> None:
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "doctor",
        description=(
            "Check the API key a worker would use: that it loads, that its tokens have the right uri, the "
            "clock offset against the exchange's /time, a read-only call (accounts), then its permissions "
            "via "
            "/key_permissions, warning when transfer is enabled or trade is enabled where the config never "
            "trades. Prints a concrete fix for each failure; exits 2 when the key cannot be loaded, 1 when "
            "another check fails."
        ),
    )
    parser.add_argument(
        "--config", metavar="FILE", help="the worker's TOML config (default: the environment's key)"
    )
    parser.add_argument(
        "--base-url", metavar="URL", help="override [exchange].base_url, e.g. the simulator's"
    )
    parser.add_argument(
        "--timeout", type=float, default=10.0, metavar="S", help="per-request timeout (default 10)"
    )
    parser.add_argument(
        "--venue",
        choices=("advanced", "derivatives"),
        default="advanced",
        help="advanced: Advanced Trade (default); derivatives: the perpetuals gateway (token, scopes)",
    )
    parser.add_argument(
        "--gateway-url",
        metavar="URL",
        default="https://drb.coinbase.com",
        help="the derivatives gateway with --venue derivatives (default https://drb.coinbase.com)",
    )
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from engine.doctor import doctor_exit_code, render, run_doctor

    try:
        config: Config = load_config(args.config) if args.config else parse_config({})
        if args.base_url:
            exchange = parse_config({"exchange": {"base_url": args.base_url}}).exchange
            config = msgspec.structs.replace(config, exchange=exchange)
    except ConfigError as exc:
        print(f"engine doctor: {exc}", file=sys.stderr)
        return 2
    gateway_url = args.gateway_url if args.venue == "derivatives" else None
    checks = asyncio.run(run_doctor(config, timeout_s=args.timeout, gateway_url=gateway_url))
    render(checks, sys.stdout, header=f"engine doctor: {gateway_url or config.exchange.base_url}")
    return doctor_exit_code(checks)
