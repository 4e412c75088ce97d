"""The `engine` CLI. Each command lives in its own module, which provides `register(subparsers)`;
this module only assembles them, so adding a command never touches another's code."""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

# module path -> registered by that module's `register(subparsers)`
_COMMAND_MODULES: tuple[str, ...] = (
    "engine.sim.cli",
    "engine.ops.cli_doctor",
    "engine.bench_cli",
    "engine.ops.cli_worker",
    "engine.ops.cli_demo",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="engine", description="High-throughput async trading engine for Coinbase."
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for module_path in _COMMAND_MODULES:
        importlib.import_module(module_path).register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> None:
    parser = build_parser()
    args = parser.parse_args(argv)
    sys.exit(args.run(args) or 0)
