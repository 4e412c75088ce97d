"""Run the fuzz targets: each in its own atheris process, `--jobs` at a time, `--runs` inputs each.

    python fuzz/run.py --runs 3000            # the short run `make test` makes
    python fuzz/run.py --runs 1000000 --jobs 1 keys config   # a full run of two targets

Each target starts from its committed seeds (fuzz/corpus/<target>, read only) and a working corpus under
target/fuzz/ that a run adds to and the next run starts from. A crash, an undocumented exception or a
confirmed echo of secret material stops that target with its input saved under target/fuzz/artifacts/;
the run then fails. The summary gives, per target, the inputs run, the rate, what was refused or accepted.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TARGETS = ["keys", "keyfile", "env", "sim_auth", "signals", "codec", "config"]
_DONE = re.compile(r"^Done (\d+) runs in (\d+) second")
_STATS = re.compile(r"^FUZZ-STATS (.*)$")


@dataclass
class Result:
    target: str
    runs: int
    seconds: float
    returncode: int
    stats: str
    artifact: str

    @property
    def rate(self) -> float:
        return self.runs / self.seconds if self.seconds else 0.0


def run_target(target: str, runs: int, work: Path, nice: int, max_len: int) -> Result:
    corpus = work / "corpus" / target
    artifacts = work / "artifacts"
    corpus.mkdir(parents=True, exist_ok=True)
    artifacts.mkdir(parents=True, exist_ok=True)
    seeds = ROOT / "fuzz" / "corpus" / target
    command = [
        sys.executable,
        "-m",
        f"fuzz.{target}",
        f"-runs={runs}",
        f"-max_len={max_len}",
        "-rss_limit_mb=3072",
        "-timeout=30",
        f"-artifact_prefix={artifacts}/{target}-",
        str(corpus),
        *([str(seeds)] if seeds.is_dir() else []),
    ]
    if nice:
        command = ["nice", "-n", str(nice), *command]
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    log_path = work / f"{target}.log"
    started = time.monotonic()
    with open(log_path, "wb") as log:
        returncode = subprocess.call(  # noqa: S603 - our own interpreter on our own modules
            command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT
        )
    seconds = time.monotonic() - started
    done_runs, stats, artifact = 0, "", ""
    for line in log_path.read_text(errors="replace").splitlines():
        if match := _DONE.match(line):
            done_runs = int(match.group(1))
        elif match := _STATS.match(line):
            stats = match.group(1)
        elif "Test unit written to" in line:
            artifact = line.rsplit(" ", 1)[-1]
    if not done_runs and stats:  # stopped early (a finding): count what the last stats line saw
        done_runs = sum(int(n) for n in re.findall(r"(?:accepted|refused)=(\d+)", stats))
    return Result(target, done_runs, seconds, returncode, stats, artifact)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("targets", nargs="*", default=TARGETS, help=f"default: all ({', '.join(TARGETS)})")
    parser.add_argument("--runs", type=int, default=1_000_000, help="inputs per target (default 1,000,000)")
    parser.add_argument("--jobs", type=int, default=2, help="targets run at once (default 2)")
    parser.add_argument("--nice", type=int, default=0, help="run the fuzzers at this nice level")
    parser.add_argument("--max-len", type=int, default=4096, help="the longest input libFuzzer makes")
    parser.add_argument("--work", type=Path, default=ROOT / "target" / "fuzz", help="corpora, logs, crashes")
    args = parser.parse_args(argv)
    unknown = sorted(set(args.targets) - set(TARGETS))
    if unknown:
        parser.error(f"no such target: {', '.join(unknown)}")
    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:
        results = list(
            pool.map(lambda t: run_target(t, args.runs, args.work, args.nice, args.max_len), args.targets)
        )
    print(f"{'target':<10} {'inputs':>10} {'seconds':>8} {'inputs/s':>9}  outcome")
    failed = []
    for result in results:
        ok = result.returncode == 0 and result.runs >= args.runs
        outcome = (
            result.stats if ok else f"FAILED (exit {result.returncode}) {result.artifact} {result.stats}"
        )
        print(
            f"{result.target:<10} {result.runs:>10,} {result.seconds:>8.1f} {result.rate:>9,.0f}  {outcome}"
        )
        if not ok:
            failed.append(result.target)
    failures = f": {', '.join(failed)}" if failed else ""
    total = sum(r.runs for r in results)
    elapsed = time.monotonic() - started
    print(
        f"fuzz: {len(results)} targets, {total:,} inputs in {elapsed:.0f} s; {len(failed)} failed{failures}"
    )
    print(f"fuzz: logs, corpora and saved inputs in {args.work}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
