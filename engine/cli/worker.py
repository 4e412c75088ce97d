"""`engine worker --config FILE [--dry-run]`: run a headless worker until SIGTERM/SIGINT."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from typing import Any

from engine.errors import ConfigError, KeyFormatError


def register(subparsers: Any) -> None:
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "worker",
        description=(
            "Run a worker from a TOML config (see examples/worker.toml). SIGTERM/SIGINT stop intake, drain "
            "what is in flight, cancel open orders if configured, flush the journal and exit 0. SIGHUP "
            "reloads the credentials, keeping the current key if the new one fails its checks."
        ),
    )
    parser.add_argument("--config", metavar="FILE", required=True, help="the worker's TOML config")
    parser.add_argument("--dry-run", action="store_true", help="check and log signals, never place an order")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from engine.ops.config import load_config
    from engine.ops.logs import configure_logging
    from engine.redis_conn import require_redis
    from engine.worker import Worker

    try:
        config = load_config(args.config)
        for setting, url in (
            ("limits.redis_url", config.limits.redis_url),
            ("signals.redis_url", config.signals.redis_url),
        ):
            if url:
                require_redis(setting)
    except ConfigError as exc:
        print(f"engine worker: {exc}", file=sys.stderr)
        return 2
    configure_logging(config.logging.level, json=config.logging.json)
    worker = Worker(config, dry_run=True if args.dry_run else None)
    try:
        _run_loop(worker.run())
    except (ConfigError, KeyFormatError) as exc:
        # The message names what was wrong and never the key; one line, as a supervisor's log shows it.
        logging.getLogger("engine.worker").error("cannot start: %s", exc)
        print(
            f"engine worker: cannot start: {exc} "
            f"(run `engine doctor --config {args.config}` for a full check)",
            file=sys.stderr,
        )
        return 2
    return 0


def _run_loop(main: Any) -> None:
    try:
        import uvloop
    except ImportError:  # Windows, or uvloop not installed: the stdlib loop works, only slower
        asyncio.run(main)
        return
    uvloop.run(main)
