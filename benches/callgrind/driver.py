"""Instructions per signing operation, counted by valgrind's callgrind, with a regression check.

For each operation of the ``signer-callgrind`` binary (``benches/callgrind/src/main.rs``) this runs

    valgrind --tool=callgrind --toggle-collect=*measured_region* signer-callgrind OP N

at N = ``low`` and N = ``high`` iterations and reports (I(high) - I(low)) / (high - low): the instructions one
operation costs, with key generation, process start and first-call lazy initialisation cancelled out. The
binary checks that every operation's result is correct (tokens verify, HMAC matches an independent
computation) and fails otherwise, so a count is never taken of a wrong answer.

Instruction counts are deterministic for a given binary and valgrind version, whatever else the machine is
doing: that is what makes them a regression guard on a shared 2-core box. They are not time; ring picks its
assembly by the CPU features valgrind reports, which may differ from the host's.

Usage::

    python benches/callgrind/driver.py                          # build, count, print the table
    python benches/callgrind/driver.py --save-baseline FILE     # ... and save the counts as the baseline
    python benches/callgrind/driver.py --compare FILE --threshold 2   # fail (exit 1) beyond +2 %
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import platform
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

CRATE = "signer-callgrind"
TOGGLE = "*measured_region*"
ROOT = Path(__file__).resolve().parents[2]
DEFAULT_THRESHOLD_PERCENT = 2.0


@dataclass(frozen=True)
class Measurement:
    operation: str
    description: str
    instructions: float
    low: int
    high: int


@dataclass(frozen=True)
class Comparison:
    operation: str
    baseline: float | None
    current: float | None

    @property
    def change_percent(self) -> float | None:
        if self.baseline is None or self.current is None or self.baseline == 0:
            return None
        return (self.current / self.baseline - 1.0) * 100.0

    def regressed(self, threshold_percent: float) -> bool:
        change = self.change_percent
        return change is not None and change > threshold_percent


class CallgrindError(RuntimeError):
    """valgrind, cargo or the benchmark binary failed, or the output is not what callgrind writes."""


def parse_callgrind_totals(text: str) -> dict[str, int]:
    """Event totals (e.g. ``{"Ir": 233409}``) from a callgrind output file.

    Uses the ``totals:`` line (or ``summary:`` from older versions) against the ``events:`` header.
    """
    events: list[str] | None = None
    totals: list[int] | None = None
    summary: list[int] | None = None
    for line in text.splitlines():
        if line.startswith("events:"):
            events = line.split(":", 1)[1].split()
        elif line.startswith("totals:"):
            totals = [int(v) for v in line.split(":", 1)[1].split()]
        elif line.startswith("summary:"):
            summary = [int(v) for v in line.split(":", 1)[1].split()]
    values = totals if totals is not None else summary
    if events is None or values is None:
        raise CallgrindError("not a callgrind output file: no 'events:' header or no 'totals:' line")
    # A trailing event with zero cost may be left out of the totals line.
    return {event: (values[i] if i < len(values) else 0) for i, event in enumerate(events)}


def instructions_per_operation(low_total: int, high_total: int, low: int, high: int) -> float:
    if high <= low:
        raise ValueError("the high iteration count must exceed the low one")
    if high_total < low_total:
        raise CallgrindError(f"more iterations counted fewer instructions ({high_total} < {low_total})")
    return (high_total - low_total) / (high - low)


def find_binary() -> Path:
    metadata = subprocess.run(
        ["cargo", "metadata", "--format-version", "1", "--no-deps"],
        cwd=ROOT,
        check=True,
        capture_output=True,
        text=True,
    )
    target = Path(json.loads(metadata.stdout)["target_directory"])
    return target / "release" / CRATE


def build() -> Path:
    """Build the binary in release mode (the workspace profile: fat LTO, one codegen unit)."""
    subprocess.run(["cargo", "build", "--release", "--quiet", "-p", CRATE], cwd=ROOT, check=True)
    return find_binary()


def list_operations(binary: Path) -> dict[str, str]:
    out = subprocess.run([str(binary), "--list"], check=True, capture_output=True, text=True).stdout
    return dict(line.split("\t", 1) for line in out.splitlines() if "\t" in line)


def count(binary: Path, operation: str, iterations: int, workdir: Path) -> int:
    """Instructions executed inside ``measured_region`` for ``iterations`` runs of ``operation``."""
    out_file = workdir / f"callgrind.{operation}.{iterations}.out"
    command = [
        "valgrind",
        "--tool=callgrind",
        f"--callgrind-out-file={out_file}",
        f"--toggle-collect={TOGGLE}",
        str(binary),
        operation,
        str(iterations),
    ]
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise CallgrindError(
            f"{operation} x{iterations} failed under valgrind (exit {result.returncode}):\n"
            f"{result.stdout}{result.stderr[-2000:]}"
        )
    totals = parse_callgrind_totals(out_file.read_text(encoding="utf-8"))
    if "Ir" not in totals:
        raise CallgrindError("callgrind output has no Ir (instructions) event")
    return totals["Ir"]


def measure(binary: Path, operations: Mapping[str, str], low: int = 1, high: int = 101) -> list[Measurement]:
    results: list[Measurement] = []
    with tempfile.TemporaryDirectory(prefix="callgrind-") as tmp:
        for operation, description in operations.items():
            low_total = count(binary, operation, low, Path(tmp))
            high_total = count(binary, operation, high, Path(tmp))
            per_op = instructions_per_operation(low_total, high_total, low, high)
            results.append(Measurement(operation, description, per_op, low, high))
    return results


def valgrind_version() -> str:
    return subprocess.run(
        ["valgrind", "--version"], capture_output=True, text=True, check=True
    ).stdout.strip()


def to_document(measurements: Sequence[Measurement], valgrind: str) -> dict[str, Any]:
    return {
        "tool": "callgrind",
        "valgrind": valgrind,
        "datetime": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": {"node": platform.node(), "machine": platform.machine(), "system": platform.system()},
        "operations": {
            m.operation: {
                "instructions": m.instructions,
                "description": m.description,
                "iterations": [m.low, m.high],
            }
            for m in measurements
        },
    }


def instructions_of(document: Mapping[str, Any]) -> dict[str, float]:
    operations = document.get("operations")
    if not isinstance(operations, Mapping):
        raise ValueError("not a callgrind results file: no 'operations' table")
    return {name: float(entry["instructions"]) for name, entry in operations.items()}


def compare(current: Mapping[str, float], baseline: Mapping[str, float]) -> list[Comparison]:
    names = list(current) + [name for name in baseline if name not in current]
    return [Comparison(name, baseline.get(name), current.get(name)) for name in names]


def render_table(
    measurements: Sequence[Measurement],
    comparisons: Sequence[Comparison] | None = None,
    threshold_percent: float = DEFAULT_THRESHOLD_PERCENT,
) -> str:
    by_name = {c.operation: c for c in comparisons or ()}
    lines = ["Instructions per operation (callgrind; deterministic, not time)"]
    header = f"  {'operation':<20} {'instructions':>13}"
    if comparisons is not None:
        header += f" {'baseline':>13} {'change':>8}"
    lines.append(header + "  what")
    for m in measurements:
        line = f"  {m.operation:<20} {m.instructions:>13,.0f}"
        if comparisons is not None:
            c = by_name.get(m.operation)
            base = f"{c.baseline:,.0f}" if c and c.baseline is not None else "new"
            change = c.change_percent if c else None
            flag = " !" if c and c.regressed(threshold_percent) else ""
            line += f" {base:>13} {(f'{change:+.2f}%' if change is not None else '-'):>8}{flag}"
        lines.append(f"{line}  {m.description}")
    for c in comparisons or ():
        if c.current is None:
            lines.append(
                f"  {c.operation:<20} {'(missing)':>13} {c.baseline or 0:>13,.0f}  in the baseline only"
            )
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Instruction counts of the Rust signing core under callgrind."
    )
    parser.add_argument("--ops", nargs="*", help="operations to count (default: all the binary lists)")
    parser.add_argument("--binary", type=Path, help="use this binary instead of building it")
    parser.add_argument("--iterations", type=int, default=100, help="extra iterations of the high run")
    parser.add_argument("--json", type=Path, help="write the counts here")
    parser.add_argument("--save-baseline", type=Path, help="write the counts here as the baseline")
    parser.add_argument("--compare", type=Path, help="baseline to compare with; exit 1 on a regression")
    parser.add_argument(
        "--threshold",
        type=float,
        default=DEFAULT_THRESHOLD_PERCENT,
        help="percent more instructions than the baseline that counts as a regression (default %(default)s)",
    )
    args = parser.parse_args(argv)

    if shutil.which("valgrind") is None:
        print("callgrind: valgrind is not installed (apt-get install valgrind)", file=sys.stderr)
        return 2
    try:
        binary = args.binary or build()
        available = list_operations(binary)
        unknown = [op for op in args.ops or () if op not in available]
        if unknown:
            print(f"callgrind: unknown operations {unknown}; known: {list(available)}", file=sys.stderr)
            return 2
        chosen = {op: available[op] for op in args.ops} if args.ops else available
        print(f"callgrind: counting {len(chosen)} operations with {binary.name}", file=sys.stderr)
        measurements = measure(binary, chosen, low=1, high=1 + args.iterations)
    except (CallgrindError, subprocess.CalledProcessError) as exc:
        print(f"callgrind: {exc}", file=sys.stderr)
        return 1
    document = to_document(measurements, valgrind_version())
    for path in (args.json, args.save_baseline):
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")

    if args.compare is None:
        sys.stdout.write(render_table(measurements))
        return 0
    try:
        baseline_document = json.loads(args.compare.read_text(encoding="utf-8"))
        baseline = instructions_of(baseline_document)
    except (OSError, ValueError) as exc:
        print(f"callgrind: no usable baseline at {args.compare} ({exc}); run `make bench-save` first")
        return 2
    if args.ops:
        baseline = {op: n for op, n in baseline.items() if op in chosen}
    comparisons = compare(instructions_of(document), baseline)
    sys.stdout.write(render_table(measurements, comparisons, args.threshold))
    if baseline_document.get("valgrind") != document["valgrind"]:
        print(f"note: baseline taken with {baseline_document.get('valgrind')}, now {document['valgrind']}")
    regressions = [c for c in comparisons if c.regressed(args.threshold)]
    if regressions:
        print(
            "callgrind: instruction count regressed beyond "
            f"{args.threshold}%: " + ", ".join(f"{c.operation} {c.change_percent:+.2f}%" for c in regressions)
        )
        return 1
    print(f"callgrind: no operation costs more than {args.threshold}% over the baseline")
    return 0


if __name__ == "__main__":
    sys.exit(main())
