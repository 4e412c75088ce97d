"""`engine keygen --out FILE [--type ed25519|es256]`: write a new CDP key file in the portal's JSON format."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any


def register(subparsers: Any) -> None:
    keygen: argparse.ArgumentParser = subparsers.add_parser(
        "keygen", description="Write a new CDP key file in the portal's JSON format (mode 0600)."
    )
    keygen.add_argument("--type", choices=("es256", "ed25519"), default="ed25519")
    keygen.add_argument("--out", type=Path, required=True)
    keygen.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from engine.sim.keyfiles import generate_key_file

    try:
        name = generate_key_file(args.type, args.out)
    except FileExistsError:
        print(f"engine keygen: {args.out} exists; not overwriting", file=sys.stderr)
        return 1
    print(f"wrote {args.type} key {name} to {args.out} (mode 0600)")
    return 0
