"""The `engine` command line. Each command is a module of this package providing `register(subparsers)`,
imported only when that command runs: `engine keygen` loads neither the trading stack nor the simulator."""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

# command -> (its module, the line `engine --help` shows for it)
COMMANDS: dict[str, tuple[str, str]] = {
    "sim": ("engine.cli.sim", "serve the embedded Coinbase simulator"),
    "keygen": ("engine.cli.keygen", "write a new CDP key file in the portal's JSON format"),
    "doctor": (
        "engine.cli.doctor",
        "check an API key: format, clock, a read-only call, permissions (with a fix for each failure)",
    ),
    "bench": (
        "engine.cli.bench",
        "run the benchmarks (peers side by side), print the table, write JSON and an HTML report",
    ),
    "worker": (
        "engine.cli.worker",
        "run a headless worker: signals from the webhook, risk-checked, placed as orders",
    ),
    "demo": (
        "engine.cli.demo",
        "run a worker against the in-process simulator for ~30 s and print a summary",
    ),
}


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The parser, with `command`'s arguments in full (its module imported); the others only listed."""
    parser = argparse.ArgumentParser(
        prog="engine", description="High-throughput async trading engine for Coinbase."
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, (module_path, summary) in COMMANDS.items():
        if name == command:
            importlib.import_module(module_path).register(subparsers)
        else:
            subparsers.add_parser(name, help=summary)
    return parser


def main(argv: Sequence[str] | None = None) -> None:
    arguments = list(sys.argv[1:] if argv is None else argv)
    command = next((a for a in arguments if not a.startswith("-")), None)
    parser = build_parser(command if command in COMMANDS else None)
    args, extra = parser.parse_known_args(arguments)
    if extra:
        if not hasattr(args, "passthrough"):  # only a command that hands its arguments on takes unknown ones
            parser.error(f"unrecognized arguments: {' '.join(extra)}")
        args.passthrough = extra
    sys.exit(args.run(args) or 0)
