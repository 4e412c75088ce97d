"""The benchmark runner (`make bench`, or `python benches/runner.py`): the benchmarks with the peers side by
side, the report, the guard against regressions.

It runs the checkout it lives in (or the one ``--checkout`` names), in four steps:

1. pytest over ``benches/`` with timing on, a live progress line, every round's timing written to
   ``<out>/results.json``;
2. ``benches/report.py``: the table of medians, p99 and ratios to the peers, and ``<out>/report.html``;
3. ``benches/callgrind/driver.py``: instructions per Rust signing operation under valgrind (skipped with a
   note when valgrind or cargo is missing);
4. with ``--save-baseline``, both are kept as this machine's baseline; with ``--check``, the run is compared
   with that baseline and fails when a median is more than ``--threshold`` percent slower
   (pytest-benchmark's ``--benchmark-compare-fail``) or an operation costs more than
   ``--callgrind-threshold`` percent more instructions.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

DEFAULT_THRESHOLD_PERCENT = 25.0
DEFAULT_CALLGRIND_THRESHOLD_PERCENT = 2.0
CHECKOUT = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class BenchPaths:
    """Where a run reads the suite from and writes its results to."""

    checkout: Path
    out: Path

    @property
    def results(self) -> Path:
        return self.out / "results.json"

    @property
    def html(self) -> Path:
        return self.out / "report.html"

    @property
    def callgrind(self) -> Path:
        return self.out / "callgrind.json"

    @property
    def baseline_storage(self) -> Path:
        """pytest-benchmark storage holding this machine's saved baseline run."""
        return self.out / "baseline"

    @property
    def callgrind_baseline(self) -> Path:
        return self.out / "callgrind-baseline.json"

    def saved_baseline(self) -> Path | None:
        """The baseline run pytest-benchmark saved (the newest, if several)."""
        saved = sorted(self.baseline_storage.glob("*/*_baseline.json"))
        return saved[-1] if saved else None


def is_checkout(path: Path) -> bool:
    return (path / "benches" / "report.py").is_file() and (path / "pyproject.toml").is_file()


def find_checkout(explicit: Path | None) -> Path | None:
    """The source checkout to run: ``explicit`` if it is one, else the checkout holding this runner."""
    if explicit is not None:
        return explicit.resolve() if is_checkout(explicit) else None
    return CHECKOUT


def pytest_command(paths: BenchPaths, args: argparse.Namespace) -> list[str]:
    """The timed pytest run: every benchmark, peers side by side, JSON with every round's timing."""
    command = [
        sys.executable,
        "-m",
        "pytest",
        "benches",
        "-q",
        "-p",
        "benches._plugin",
        "--bench-progress",
        "-o",
        "console_output_style=classic",
        "--benchmark-only",
        "--benchmark-quiet",
        f"--benchmark-json={paths.results}",
        f"--benchmark-storage=file://{paths.baseline_storage}",
    ]
    if args.save_baseline:
        command += ["--benchmark-save=baseline", "--benchmark-save-data"]
    if args.check:
        command += ["--benchmark-compare", f"--benchmark-compare-fail=median:{args.threshold:g}%"]
    if args.keyword:
        command += ["-k", args.keyword]
    return command + list(args.pytest_args)


def report_command(paths: BenchPaths, baseline: Path | None) -> list[str]:
    command = [sys.executable, str(paths.checkout / "benches" / "report.py"), str(paths.results)]
    command += ["--html", str(paths.html)]
    if baseline is not None:
        command += ["--compare", str(baseline)]
    return command


def callgrind_command(paths: BenchPaths, args: argparse.Namespace) -> list[str]:
    driver = paths.checkout / "benches" / "callgrind" / "driver.py"
    command = [sys.executable, str(driver), "--json", str(paths.callgrind)]
    if args.save_baseline:
        command += ["--save-baseline", str(paths.callgrind_baseline)]
    if args.check:
        command += [
            "--compare",
            str(paths.callgrind_baseline),
            "--threshold",
            f"{args.callgrind_threshold:g}",
        ]
    return command


def _run(command: Sequence[str], paths: BenchPaths) -> int:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, (str(paths.checkout), env.get("PYTHONPATH"))))
    print("$ " + " ".join(command), flush=True)
    # Our own interpreter and scripts of the checkout, as a list (no shell).
    return subprocess.run(list(command), cwd=paths.checkout, env=env, check=False).returncode


def _clear_baseline(paths: BenchPaths) -> None:
    """Forget the previous baseline, so that the one saved now is the one compared with."""
    for old in paths.baseline_storage.glob("*/*_baseline.json"):
        old.unlink()
    paths.callgrind_baseline.unlink(missing_ok=True)


def _missing_baseline(paths: BenchPaths, callgrind: bool, timed: bool) -> str | None:
    if timed and paths.saved_baseline() is None:
        return f"no saved baseline in {paths.baseline_storage}"
    if callgrind and not paths.callgrind_baseline.is_file():
        return f"no callgrind baseline at {paths.callgrind_baseline}"
    return None


def run_bench(args: argparse.Namespace) -> int:
    checkout = find_checkout(args.checkout)
    if checkout is None:
        print(f"bench: {args.checkout} holds no benches/ (and pyproject.toml) to run", file=sys.stderr)
        return 2
    out = args.out if args.out.is_absolute() else checkout / args.out
    paths = BenchPaths(checkout=checkout, out=out)
    paths.out.mkdir(parents=True, exist_ok=True)

    timed = not args.callgrind_only
    callgrind = not args.no_callgrind
    if callgrind and (shutil.which("valgrind") is None or shutil.which("cargo") is None):
        print("bench: valgrind or cargo not found, so no instruction counts (apt-get install valgrind)")
        callgrind = False
    if args.check:
        missing = _missing_baseline(paths, callgrind, timed)
        if missing:
            print(f"bench: {missing}; save one on this machine first: make bench-save", file=sys.stderr)
            return 2
    if args.save_baseline:
        _clear_baseline(paths)

    status = 0
    if timed:
        baseline = paths.saved_baseline() if args.check else None
        paths.results.unlink(missing_ok=True)
        pytest_status = _run(pytest_command(paths, args), paths)
        if paths.results.is_file():
            status = max(status, _run(report_command(paths, baseline), paths))
        else:
            print("bench: pytest wrote no results (no benchmark ran)", file=sys.stderr)
            status = max(status, 1)
        if pytest_status != 0:
            print(
                f"bench: pytest exited {pytest_status}: a benchmark failed its correctness check"
                + (" or regressed beyond the threshold" if args.check else ""),
                file=sys.stderr,
            )
            status = max(status, 1)
    if callgrind:
        status = max(status, _run(callgrind_command(paths, args), paths))
    if timed and paths.html.is_file():
        print(f"bench: JSON {paths.results}, HTML {paths.html}")
    return status


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--checkout", type=Path, help="the source checkout holding benches/ (default: found)")
    parser.add_argument(
        "--out", type=Path, default=Path(".benchmarks"), help="results directory (default: .benchmarks)"
    )
    parser.add_argument("-k", dest="keyword", help="only benchmarks matching this pytest -k expression")
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--save-baseline", action="store_true", help="keep this run as the machine's baseline")
    mode.add_argument(
        "--check", action="store_true", help="fail if slower than the baseline beyond thresholds"
    )
    parser.add_argument(
        "--threshold",
        type=float,
        default=DEFAULT_THRESHOLD_PERCENT,
        help="percent a median may grow over the baseline before --check fails (default %(default)g)",
    )
    parser.add_argument(
        "--callgrind-threshold",
        type=float,
        default=DEFAULT_CALLGRIND_THRESHOLD_PERCENT,
        help="percent more instructions per operation that --check fails on (default %(default)g)",
    )
    which = parser.add_mutually_exclusive_group()
    which.add_argument("--no-callgrind", action="store_true", help="skip the instruction counts")
    which.add_argument("--callgrind-only", action="store_true", help="only the instruction counts")
    parser.add_argument("pytest_args", nargs="*", help="further pytest arguments (after --)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="benches/runner.py", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    add_arguments(parser)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    return run_bench(build_parser().parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
