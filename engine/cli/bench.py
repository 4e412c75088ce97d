"""`engine bench [ARGS]`: run the benchmark runner of the source checkout this is run from.

The benchmarks and their runner live in the checkout (benches/runner.py, what `make bench` runs), not in
the installed package: this command finds the checkout (the working directory or one above it) and hands
it ARGS; outside one it says how to get one.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path
from typing import Any

RUNNER = Path("benches") / "runner.py"

NO_CHECKOUT_HELP = """\
engine bench: no benchmark suite here.

The benchmarks live in the project's source checkout (benches/), which an installed wheel does not
contain. To run them:

    git clone <this project's repository> coinbase-engine && cd coinbase-engine
    make bench            # sets up .venv with the peers (coinbase-advanced-py, PyJWT, ccxt), builds, runs

or, in an environment that already has the engine and its dev extra, from inside the checkout:

    engine bench          # or: python benches/runner.py --help
"""


def register(subparsers: Any) -> None:
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "bench", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter, add_help=False
    )
    parser.set_defaults(run=run, passthrough=[])  # every argument after `bench` goes to the runner


def find_checkout(start: Path) -> Path | None:
    """The checkout holding the benchmark runner: `start` or the nearest directory above it."""
    start = start.resolve()
    for candidate in (start, *start.parents):
        if (candidate / RUNNER).is_file() and (candidate / "pyproject.toml").is_file():
            return candidate
    return None


def run(args: argparse.Namespace) -> int:
    checkout = find_checkout(Path.cwd())
    if checkout is None:
        print(NO_CHECKOUT_HELP, file=sys.stderr, end="")
        return 2
    # our own interpreter and the checkout's runner, as a list (no shell)
    return subprocess.run([sys.executable, str(checkout / RUNNER), *args.passthrough], check=False).returncode  # noqa: S603
